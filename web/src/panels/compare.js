// The Compare section (identical location): two of the dataset's signals registered and their
// columns matched (kept / lost / new), the after image shown registered right of a divider,
// per-facet bars of atoms gained and lost, and the exports.
import { fmt } from '../views/plots.js';
import { clearPlot, plot } from '../views/charts.js';
import { download } from '../actions.js';

const STATUS = ['kept', 'lost', 'new'];
const STATUS_COLOURS = ['rgba(255,255,255,0.55)', '#ff4d4f', '#51cf66'];

export class ComparePanel {
  constructor(app) {
    const $ = app.$;
    Object.assign(this, { app, bridge: app.bridge, viewer: app.viewer, store: app.store, $ });
    this.compared = null;
    $('cmp-run').onclick = () => this.run();
    for (const [id, what, ext] of [['cmp-csv', 'columns_csv', 'compare-columns.csv'], ['cmp-facets', 'facets_csv', 'compare-facets.csv'],
      ['cmp-json', 'summary_json', 'compare-summary.json']]) {
      $(id).onclick = () => this.export(what, ext);
    }
    app.store.on('signals', (signals) => this.pickers(signals));
    app.store.on('dataset', () => {
      this.compared = null;
      this.store.set({ ilCompare: null });
      this.$('cmp-panel').hidden = true;
      this.$('cmp-summary').textContent = this.$('cmp-legend').textContent = '';
      for (const id of ['cmp-csv', 'cmp-facets', 'cmp-json']) this.$(id).disabled = true;
    });
    // The comparison overlay belongs to the images in the before frame: drawn on them only.
    app.store.on('image', () => {
      const c = this.compared, s = app.signals.shown.signal;
      if (c && [c.before, c.registered, c.change].includes(s)) this.paint();
    });
  }

  /** The signal list changed: refill the before/after pickers with the dataset's signals and
   * the other files listed (added to the dataset when compared); after = the next signal, or
   * the next file. */
  pickers(signals) {
    const shown = this.app.signals.shown.signal, open = this.app.open;
    const others = open.datasets.map((d, i) => ({ d, i })).filter(({ d, i }) => d.files && !d.series && i !== open.current);
    const opts = () => [...signals.map((s, k) => new Option(`${k}: ${s.title || '(untitled)'}`, `s:${k}`)),
      ...others.map(({ d, i }) => new Option(`${d.primary} (another file)`, `f:${i}`))];
    this.$('cmp-before').replaceChildren(...opts());
    this.$('cmp-after').replaceChildren(...opts());
    this.$('cmp-before').value = `s:${shown}`;
    this.$('cmp-after').value = signals.length > 1 ? `s:${(shown + 1) % signals.length}` : others.length ? `f:${others[0].i}` : `s:${shown}`;
  }

  /** A picker's choice as a signal index: another file's image is first added to the dataset. */
  async resolve(value) {
    const [what, k] = value.split(':');
    if (what === 's') return +k;
    const d = this.app.open.datasets[+k];
    const buffers = await Promise.all(d.files.map((f) => f.arrayBuffer()));
    const r = await this.bridge.call('addFiles', { primary: d.primary, names: d.names, buffers }, buffers);
    await this.app.signals.update(r.signals);
    return r.index;
  }

  run() {
    const picked = [this.$('cmp-before').value, this.$('cmp-after').value];
    return this.app.actions.run('Registering the pair and matching columns…', async () => {
      const before = await this.resolve(picked[0]), after = await this.resolve(picked[1]);
      const t0 = performance.now();
      const r = await this.bridge.call('compare', { before, after, params: this.app.particles.params() });
      r.seconds = (performance.now() - t0) / 1000;
      this.show(r);
      await this.app.signals.update(r.signals, r.registered);
    }, 'Compare');
  }

  /** A comparison's reply (`before`, `after`: the signals compared), drawn; the registered
   * image is shown by the caller. */
  show(r) {
    this.compared = r;
    const s = r.summary;
    this.store.set({ ilCompare: { ...s, seconds: r.seconds, facets: r.facets.length } });
    // The sentence is Rust's (`CompareSummary::describe`).
    this.$('cmp-summary').textContent = `${r.seconds == null ? 'Restored' : `Registered in ${fmt(r.seconds)} s`}: ${r.summary_text}.`;
    for (const id of ['cmp-csv', 'cmp-facets', 'cmp-json']) this.$(id).disabled = false;
    this.$('cmp-panel').hidden = false;
    this.drawFacetBars();
    this.app.display.setSplit({ source: { signal: r.before, frame: 0 }, left: 'before', right: 'after (registered)' }, true);
    if ([r.before, r.registered, r.change].includes(this.app.signals.shown.signal)) this.paint();
  }

  /** Kept / lost / new columns and the facets coloured by their net change. */
  paint() {
    const c = this.compared;
    if (!c) return;
    this.viewer.overlay = { x: c.x, y: c.y, colors: Array.from(c.status, (s) => STATUS_COLOURS[s]), radius: 3.5, selected: null };
    this.$('cmp-legend').innerHTML = STATUS.map((s, k) => `<span style="color:${STATUS_COLOURS[k]}">●</span> ${s}`).join(' ') +
      ' · facets: <span style="color:#ff4d4f">net loss</span> <span style="color:#51cf66">net gain</span>';
    // Facet traces of the before particle, coloured by their net change (the bars' order).
    this.viewer.paths = this.compared.facets.map((f) => {
      const net = f.atoms_gained - f.atoms_lost;
      return { points: [...f.from, ...f.to], color: net < 0 ? '#ff4d4f' : net > 0 ? '#51cf66' : 'rgba(154,163,173,0.7)', closed: false, width: 3 };
    });
    this.viewer.draw();
  }

  /** Atoms lost (down, red) and gained (up, green) per facet of the before particle, with the
   * net change and its counting sd. */
  drawFacetBars() {
    const f = this.compared.facets;
    if (!f.length) { clearPlot(this.$('cmp-bars')); return; }
    plot(this.$('cmp-bars'), {
      title: 'atoms gained and lost per facet', x: { label: 'facet of the before particle (angle)', values: f.map((x) => `#${x.facet} ${Math.round(x.angle)}°`) },
      y: { label: 'atoms' },
      series: [
        { name: 'gained', type: 'bar', color: '#51cf66', data: f.map((x) => x.atoms_gained), stack: 'change' },
        { name: 'lost', type: 'bar', color: '#ff4d4f', data: f.map((x) => -x.atoms_lost), stack: 'change' },
        { name: 'net', type: 'line', color: '#e9ecef', data: f.map((x) => x.atoms_gained - x.atoms_lost), symbol: true },
        ...(f.some((x) => Number.isFinite(x.net_sd)) ? [{ name: 'net sd', type: 'line', color: 'rgba(233,236,239,0.5)', data: f.map((x) => x.net_sd), symbol: true, hidden: true }] : []),
      ],
    });
  }

  async export(what, ext) {
    try {
      const names = this.store.state.signals;
      const text = await this.bridge.call('compareExport', { what, before: names[this.compared.before]?.title, after: names[this.compared.after]?.title });
      download(new Blob([text], { type: ext.endsWith('json') ? 'application/json' : 'text/csv' }), `${this.app.baseName()}-${ext}`);
    } catch (e) { this.app.actions.showError(`Export: ${e.message}`); }
  }
}
