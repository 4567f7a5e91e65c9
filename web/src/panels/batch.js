// The Batch section: every listed file through one recipe (core::Recipe: the Particles panel's
// analysis) in a second engine session, so the shown image stays; a row per image with its own
// progress bar, the summary table, the size distribution and atoms per image, and the summary
// as CSV written by the engine (the same writer as `atomlens batch`).
import { fmt } from '../views/plots.js';
import { binned, clearPlot, plot } from '../views/charts.js';
import { download } from '../actions.js';

export class BatchPanel {
  constructor(app) {
    const $ = app.$;
    Object.assign(this, { app, bridge: app.bridge, store: app.store, $ });
    this.rows = [];
    $('batch-run').onclick = () => this.run();
    $('batch-csv').onclick = () => this.exportCsv();
  }

  async run() {
    const $ = this.$, list = this.app.open.files();
    if (!list.length) return this.app.actions.showError('Batch: open some files (or a folder) first; they are listed under Open.');
    this.rows = list.map((d) => ({ name: d.primary, state: 'waiting' }));
    const batch = { total: list.length, done: 0, rows: this.rows };
    this.store.set({ batch });
    const recipe = { ...this.defaults, analysis: this.app.particles.params() };
    $('batch-box').hidden = false;
    this.render();
    $('batch-run').disabled = true;
    const t0 = performance.now();
    try {
      for (const [k, d] of list.entries()) {
        const row = this.rows[k];
        row.state = 'running';
        this.render();
        const t = performance.now();
        try {
          const buffers = await Promise.all(d.files.map((f) => f.arrayBuffer()));
          const r = await this.bridge.call('batchOne', { primary: d.primary, names: d.names, buffers, recipe }, buffers);
          // The engine's row (for the CSV), its totals flat for the table and the plots.
          Object.assign(row, r.row.totals, { row: r.row, mean_diameter: r.mean_diameter, diameters: r.diameters, unit: r.row.calibration.unit, state: 'done' });
        } catch (e) {
          if (e.cancelled) throw e;
          Object.assign(row, { state: 'failed', error: e.message });
        }
        row.seconds = (performance.now() - t) / 1000;
        batch.done = k + 1;
        this.render();
      }
      batch.seconds = (performance.now() - t0) / 1000;
      $('batch-csv').disabled = false;
      this.plot();
    } catch (e) { if (!e.cancelled) this.app.actions.showError(`Batch: ${e.message}`); } finally { $('batch-run').disabled = false; }
  }

  render() {
    const body = this.rows.flatMap((r) => {
      const tr = document.createElement('tr');
      const bar = Object.assign(document.createElement('progress'), { max: 1 });
      if (r.state === 'done' || r.state === 'failed') bar.value = 1;
      else if (r.state === 'waiting') bar.value = 0; // running: indeterminate
      const cells = [r.name, bar, r.state === 'done' ? `${r.particles}` : '', r.state === 'done' ? fmt(r.mean_diameter) : '',
        r.state === 'done' ? `${r.atoms}` : '', r.state === 'done' ? fmt(100 * r.ordered_fraction) : ''];
      for (const c of cells) {
        const td = document.createElement('td');
        if (c instanceof Node) td.append(c); else td.textContent = c;
        tr.append(td);
      }
      tr.title = `${r.name}${r.seconds ? ` · ${fmt(r.seconds)} s` : ''}`;
      if (r.state !== 'failed') return [tr];
      // The reason on its own full-width row under the image's.
      tr.className = 'failed';
      const why = Object.assign(document.createElement('td'), { textContent: r.error, colSpan: 6 });
      const tr2 = document.createElement('tr');
      tr2.className = 'failed why';
      tr2.append(why);
      return [tr, tr2];
    });
    this.$('batch-rows').replaceChildren(...body);
    const done = this.rows.filter((r) => r.state === 'done' || r.state === 'failed').length;
    this.$('batch-status').textContent = `${done} / ${this.rows.length} images`;
  }

  /** Size distribution over every particle, and atoms per image. */
  plot() {
    const ok = this.rows.filter((r) => r.state === 'done');
    const d = ok.flatMap((r) => r.diameters);
    this.histogram(this.$('batch-sizes'), d, `equivalent diameter (${ok[0]?.unit ?? 'px'}), ${d.length} particles`);
    this.bars(this.$('batch-atoms'), ok.map((r) => r.atoms), ok.map((r) => r.name), 'atoms counted per image');
  }

  histogram(el, values, label) {
    const b = binned(values, 20);
    if (!b.total) { clearPlot(el); return; }
    plot(el, { title: 'size distribution', x: { label, values: b.centres }, y: { label: 'particles' },
      series: [{ name: 'particles', type: 'bar', color: '#6f8aa6', data: b.counts }] });
  }

  bars(el, values, names, label) {
    if (!values.length) { clearPlot(el); return; }
    plot(el, { title: label, x: { label: 'image', values: names }, y: { label: 'atoms' },
      series: [{ name: 'atoms', type: 'bar', color: '#ffb347', data: values }] });
  }

  setDefaults({ recipe }) { this.defaults = recipe; }

  /** The summary as `atomlens batch` writes it (one writer: io::tables::batch_csv). */
  async exportCsv() {
    const rows = this.rows.map((r) => (r.state === 'done'
      ? { ...r.row, seconds: r.seconds }
      : { file: r.name, totals: null, calibration: { pixel_size: 1, unit: 'px' }, seconds: r.seconds ?? 0, error: r.error ?? 'not run' }));
    try {
      download(new Blob([await this.bridge.call('batchCsv', { rows })], { type: 'text/csv' }), 'batch-summary.csv');
    } catch (e) { this.app.actions.showError(`Batch: ${e.message}`); }
  }

}
