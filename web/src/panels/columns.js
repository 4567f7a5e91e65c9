// The Columns panel: parameters (defaults from Rust), find & fit, overlay colouring, click
// for details and residual, manual add/delete + refit, amplitude histogram, CSV/JSON export.
import { fmt } from '../views/plots.js';
import { download } from '../actions.js';
import { binned, clearPlot, plot } from '../views/charts.js';
import { fillSelect } from '../forms.js';

const STATUS = ['fitted', 'centre of mass (fit failed)', 'too few pixels', 'not significant'];
const STATUS_COLOURS = ['#5ad17a', '#ffb347', '#ff6b6b', '#9aa3ad'];

/** `lut` (256 RGB entries, from Rust) at t in [0, 1] as a CSS colour; magenta where t is not a number. */
export function lutColour(lut, t) {
  if (!Number.isFinite(t)) return '#ff00ff';
  const [r, g, b] = lut[Math.round(Math.min(1, Math.max(0, t)) * 255)];
  return `rgb(${r},${g},${b})`;
}

function quantiles(values, lo, hi) {
  const v = values.filter(Number.isFinite).sort((a, b) => a - b);
  if (!v.length) return [0, 1];
  return [v[Math.floor(lo * (v.length - 1))], v[Math.floor(hi * (v.length - 1))]];
}

export class ColumnsPanel {
  constructor(app) {
    const $ = app.$;
    Object.assign(this, { app, bridge: app.bridge, viewer: app.viewer, store: app.store, $ });
    this.table = null;
    app.store.on('image', () => this.clear());
    $('col-run').onclick = () => this.run();
    $('col-refit').onclick = () => this.refit();
    $('col-clear').onclick = () => this.clear();
    // Manual edits (shift-click adds, alt-click deletes) can be undone and redone until the next
    // fit; Refit sends the positions to the engine, which journals them.
    this.undoStack = [];
    this.redoStack = [];
    $('col-undo').onclick = () => this.undo();
    $('col-redo').onclick = () => this.redo();
    window.addEventListener('keydown', (e) => {
      if (!(e.ctrlKey || e.metaKey) || e.target.matches?.('input, textarea, select')) return;
      const k = e.key.toLowerCase();
      if (k === 'z' && !e.shiftKey && this.undoStack.length) { e.preventDefault(); this.undo(); }
      else if (((k === 'z' && e.shiftKey) || k === 'y') && this.redoStack.length) { e.preventDefault(); this.redo(); }
    });
    $('col-color').onchange = () => this.paint();
    $('col-csv').onclick = () => this.export('csv');
    $('col-json').onclick = () => this.export('json');
  }

  get state() { return this.store.state; }

  setDefaults({ columns: d, finders, shapes, noise, sublattices, luts }) {
    this.defaults = d;
    this.luts = luts;
    fillSelect(this.$('col-finder'), finders, { classical: 'classical (local maxima)', learned: 'learned (network)' });
    this.$('col-finder').value = d.finder;
    fillSelect(this.$('col-shape'), shapes);
    fillSelect(this.$('col-noise'), noise, { poisson: 'Poisson', gaussian: 'Gaussian' });
    fillSelect(this.$('col-subl'), sublattices, { intensity: 'by intensity', position: 'by unit-cell site' });
    this.$('col-thr').value = d.find.threshold;
    this.$('col-shape').value = d.fit.shape;
    this.$('col-subl').value = d.sublattices;
    this.$('col-noise').value = d.fit.noise;
    this.$('col-fa').value = d.single.false_alarms;
    this.$('col-atoms').checked = d.atoms;
  }

  params() {
    const p = structuredClone(this.defaults);
    const sep = this.$('col-sep').value;
    p.find.separation = sep === '' ? null : +sep;
    p.find.threshold = +this.$('col-thr').value;
    p.find.dark = this.$('col-dark').checked;
    p.fit.shape = this.$('col-shape').value;
    p.sublattices = this.$('col-subl').value;
    p.fit.noise = this.$('col-noise').value;
    p.atoms = this.$('col-atoms').checked;
    p.finder = this.$('col-finder').value;
    // Empty means the default; anything else goes to the engine, which says why a bad rate is refused.
    const fa = this.$('col-fa').value;
    p.single.false_alarms = fa === '' ? this.defaults.single.false_alarms : +fa;
    return p;
  }

  run() {
    return this.app.actions.run('Finding and fitting columns…', async () => {
      const t0 = performance.now();
      const table = await this.bridge.call('findColumns', { params: this.params() }, [], (seeds) => this.preview(seeds, performance.now() - t0));
      this.show(table, performance.now() - t0);
    }, 'Columns');
  }

  /** Found positions, drawn while their fits run. */
  preview(seeds, ms) {
    this.store.set({ columnsPreview: { count: seeds.x.length, ms } });
    this.viewer.overlay = { x: seeds.x, y: seeds.y, colors: Array.from(seeds.x, () => '#9aa3ad'), radius: 4, selected: null };
    this.viewer.draw();
    this.$('col-summary').textContent = `${seeds.x.length} columns found in ${(ms / 1000).toFixed(2)} s; fitting…`;
  }

  refit() {
    if (!this.table) return;
    return this.app.actions.run('Refitting…', async () => {
      const t0 = performance.now();
      const table = await this.bridge.call('refit', { xs: Array.from(this.table.x), ys: Array.from(this.table.y) });
      this.show(table, performance.now() - t0);
    }, 'Refit');
  }

  /** Drop the columns and what they drew (the image changed, or Clear). */
  clear() {
    this.table = null;
    this.strain = null;
    this.selected = null;
    this.undoStack = [];
    this.redoStack = [];
    this.history();
    this.store.set({ columns: null, columnsPreview: null, columnStrain: null, selectedColumn: null });
    this.viewer.overlay = null;
    this.viewer.draw();
    this.$('col-summary').textContent = '';
    this.$('col-detail').hidden = true;
    for (const id of ['col-refit', 'col-csv', 'col-json']) this.$(id).disabled = true;
    clearPlot(this.$('col-hist'));
  }

  show(table, ms) {
    this.table = table;
    this.undoStack = [];
    this.redoStack = [];
    this.history();
    const n = table.x.length;
    const counts = [0, 0, 0, 0];
    for (const s of table.status) counts[s]++;
    this.store.set({ columns: { count: n, fitted: counts[0], status: counts, separation: table.separation, spacing: table.spacing, ms, lattice: table.lattice, single: table.single, notes: table.notes } });
    // The sentence is Rust's (`columns::precision::summary`): empirical error beside the bound.
    const precision = `${table.precision_summary[0].toUpperCase()}${table.precision_summary.slice(1)}. ${Number.isFinite(ms) ? `${(ms / 1000).toFixed(2)} s.` : '(restored)'}`;
    this.$('col-summary').textContent = table.single
      ? `No lattice in this image: ${n} single atoms, each ${table.single.threshold.toFixed(2)} σ or more above its local support ` +
        `(about ${table.single.false_alarms} false detection per image expected; atom width ${table.single.sigma.toFixed(2)} px). ` +
        `${counts[0]} fitted. ${precision}`
      : `${n} columns: ${counts[0]} fitted, ${counts[1]} centre of mass, ${counts[2] + counts[3]} weak/edge. ` +
        `Spacing ${table.spacing ? table.spacing.toFixed(2) + ' px' : 'given'}, separation ${table.separation.toFixed(2)} px. ` +
        precision +
        (table.lattice ? ` Lattice |a| ${table.lattice.a.toFixed(2)} px, |b| ${table.lattice.b.toFixed(2)} px, ${table.lattice.angle.toFixed(1)}°.` : '') +
        table.notes.map((n) => `\nNote: ${n}.`).join('');
    this.fittedSummary = this.$('col-summary').textContent;
    for (const id of ['col-refit', 'col-csv', 'col-json']) this.$(id).disabled = false;
    this.paint();
    if (this.selected != null && this.selected < n) this.select(this.selected); else this.$('col-detail').hidden = true;
  }

  values(kind) {
    const t = this.table;
    if (kind === 'sigma') return Array.from(t.sigma_x, (v, i) => Math.sqrt(v * t.sigma_y[i]));
    if (kind === 'error') return Array.from(t.x_err_empirical, (v, i) => Math.hypot(v, t.y_err_empirical[i]));
    if (kind === 'sublattice') return Array.from(t.sublattice);
    if (kind === 'coordination') return Array.from(t.coordination ?? []);
    if (kind === 'significance') return t.significance?.length ? Array.from(t.significance) : Array.from(t.x, () => NaN);
    return Array.from(t.amplitude);
  }

  /** Per-column strain against the lattice from the spectrum, or the GPA reference region. */
  async strainValues(kind) {
    const t = this.table;
    const reference = this.state.gpa?.summary?.reference ?? null;
    if (!this.strain || this.strain.table !== t || this.strain.reference !== reference) {
      const s = await this.bridge.call('columnStrain', { xs: Array.from(t.x), ys: Array.from(t.y), reference });
      this.strain = { table: t, reference, values: s };
      this.store.set({ columnStrain: { measured: Array.from(s.exx).filter(Number.isFinite).length } });
    }
    return Array.from(this.strain.values[kind === 'lattice_rotation' ? 'rotation' : kind]);
  }

  async paint() {
    if (!this.table) return;
    const kind = this.$('col-color').value, label = this.$('col-color').selectedOptions[0]?.textContent || kind;
    this.$('col-legend').textContent = '';
    let colors, hist, key = null;
    if (['exx', 'eyy', 'exy', 'lattice_rotation'].includes(kind)) {
      let v;
      try { v = await this.strainValues(kind); } catch (e) { this.app.actions.showError(`Column strain: ${e.message}`); return; }
      // Red = positive (tension), blue = negative, symmetric about zero; grey = not measured.
      const lim = quantiles(v.map(Math.abs), 0.95, 0.95)[1] || 1e-3;
      const colorOf = (x) => (Number.isFinite(x) ? lutColour(this.luts.rdbu, 0.5 + x / (2 * lim)) : '#808080');
      colors = v.map(colorOf);
      hist = { v, colorOf, label };
      key = { label: `${label} of the columns`, lo: -lim, hi: lim, lut: this.luts.rdbu };
      this.$('col-legend').textContent = `${kind}: red +${fmt(lim)}, white 0, blue −${fmt(lim)} (reference: ${this.state.gpa ? 'the GPA reference region' : 'lattice from the spectrum'})`;
    } else if (kind === 'status') {
      colors = Array.from(this.table.status, (s) => STATUS_COLOURS[s]);
      hist = { v: this.values('amplitude'), colorOf: () => '#7fb0d9', label: 'amplitude' };
    } else {
      const v = this.values(kind);
      const [lo, hi] = quantiles(v, 0.02, 0.98);
      const colorOf = (x) => lutColour(this.luts.viridis, (x - lo) / (hi - lo || 1));
      colors = v.map(colorOf);
      hist = { v, colorOf, label };
      key = { label: `column ${label}`, lo, hi, lut: this.luts.viridis };
      this.$('col-legend').textContent = `${label}: dark ${fmt(lo)} … bright ${fmt(hi)} (2–98 % of the columns; the histogram below is the colour key)`;
    }
    const medSigma = quantiles(this.values('sigma'), 0.5, 0.5)[0];
    this.viewer.overlay = { x: this.table.x, y: this.table.y, colors, radius: Number.isFinite(medSigma) ? 1.5 * medSigma : 3, selected: this.selected, key };
    this.viewer.draw();
    this.histogram(hist);
  }

  /** Histogram of what the columns are coloured by, each bar in its colour (the colour key). */
  histogram({ v: all, colorOf, label }) {
    const b = binned(all, 40);
    if (!b.total) { clearPlot(this.$('col-hist')); return; }
    plot(this.$('col-hist'), {
      title: `columns by ${label}`, x: { label, values: b.centres }, y: { label: 'columns' },
      series: [{ name: 'columns', type: 'bar', data: b.counts, colors: b.centres.map(colorOf) }],
    });
  }

  nearest(x, y) {
    let best = -1, bd = Infinity;
    for (let i = 0; i < this.table.x.length; i++) {
      const d = Math.hypot(this.table.x[i] - x, this.table.y[i] - y);
      if (d < bd) { bd = d; best = i; }
    }
    return { i: best, d: bd };
  }

  /** Viewer click: select, add (shift) or delete (alt). Returns true when handled. */
  click({ x, y, shift, alt }) {
    if (!this.table) return false;
    const t = this.table;
    if (shift) {
      this.remember();
      const add = (a, v) => Float64Array.from([...a, v]);
      this.table = { ...t, x: add(t.x, x), y: add(t.y, y), sigma_x: add(t.sigma_x, NaN), sigma_y: add(t.sigma_y, NaN),
        amplitude: add(t.amplitude, NaN), x_err: add(t.x_err, NaN), y_err: add(t.y_err, NaN),
        x_err_empirical: add(t.x_err_empirical, NaN), y_err_empirical: add(t.y_err_empirical, NaN),
        status: Uint8Array.from([...t.status, 1]), sublattice: Uint32Array.from([...t.sublattice, 0]),
        nn_distance: add(t.nn_distance, NaN), coordination: Uint32Array.from([...t.coordination, 0]),
        significance: t.significance?.length ? add(t.significance, NaN) : t.significance };
      this.edited();
      return true;
    }
    const { i, d } = this.nearest(x, y);
    if (i < 0 || d > Math.max(4, t.separation)) return false;
    if (alt) {
      this.remember();
      const drop = (a) => a.filter((_, k) => k !== i);
      this.table = Object.fromEntries(Object.entries(t).map(([k, v]) => [k, ArrayBuffer.isView(v) ? drop(v) : v]));
      this.selected = null;
      this.edited();
      return true;
    }
    this.select(i);
    return true;
  }

  /** Keep the table before an edit, for Undo. */
  remember() {
    this.undoStack.push(this.table);
    this.redoStack = [];
  }

  undo() {
    if (!this.undoStack.length) return;
    this.redoStack.push(this.table);
    this.table = this.undoStack.pop();
    this.selected = null;
    this.edited();
  }

  redo() {
    if (!this.redoStack.length) return;
    this.undoStack.push(this.table);
    this.table = this.redoStack.pop();
    this.selected = null;
    this.edited();
  }

  history() {
    this.$('col-undo').disabled = !this.undoStack.length;
    this.$('col-redo').disabled = !this.redoStack.length;
  }

  /** The table changed by hand (or back to the fitted one by Undo). */
  edited() {
    this.history();
    const edited = this.undoStack.length > 0;
    this.$('col-summary').textContent = edited ? `${this.table.x.length} columns (edited: press Refit to fit them again; Ctrl+Z undoes)` : this.fittedSummary;
    this.store.set({ columns: { ...this.state.columns, count: this.table.x.length, edited } });
    this.paint();
  }

  async select(i) {
    this.selected = i;
    this.paint();
    const t = this.table;
    const { pixel_size, unit } = this.state.image;
    const nm = (v) => (unit === 'nm' && Number.isFinite(v) ? ` = ${(v * pixel_size * 1000).toFixed(1)} pm` : '');
    const rows = [
      ['x, y (px)', `${t.x[i].toFixed(3)}, ${t.y[i].toFixed(3)}`],
      ['± x, y empirical (px)', `${fmt(t.x_err_empirical[i])}${nm(t.x_err_empirical[i])}, ${fmt(t.y_err_empirical[i])}`],
      ['± x, y Cramér–Rao (px)', `${fmt(t.x_err[i])}${nm(t.x_err[i])}, ${fmt(t.y_err[i])} (shot noise only)`],
      ['σx, σy (px)', `${fmt(t.sigma_x[i])}, ${fmt(t.sigma_y[i])}`],
      ['rotation', Number.isFinite(t.rotation?.[i]) ? `${(t.rotation[i] * 180 / Math.PI).toFixed(1)}°` : '—'],
      ['amplitude', fmt(t.amplitude[i])], ['volume', fmt(t.volume?.[i])], ['background', fmt(t.background?.[i])],
      ['residual rms', fmt(t.residual_rms?.[i])], ['status', STATUS[t.status[i]]], ['sublattice', String(t.sublattice[i])],
      ['nearest neighbour', t.nn_distance ? `${fmt(t.nn_distance[i])} px` : '–'], ['first-shell neighbours', t.coordination ? String(t.coordination[i]) : '–'],
      ...(t.significance?.length ? [['significance', `${fmt(t.significance[i])} σ (threshold ${fmt(t.single?.threshold)})`]] : []),
    ];
    this.$('col-detail-id').textContent = `#${i}`;
    this.$('col-detail-table').replaceChildren(...rows.map(([k, v]) => {
      const tr = document.createElement('tr');
      tr.append(Object.assign(document.createElement('td'), { textContent: k }), Object.assign(document.createElement('td'), { textContent: v }));
      return tr;
    }));
    this.$('col-detail').hidden = false;
    this.store.set({ selectedColumn: i });
    try {
      const half = Math.max(4, Math.round((t.separation || 8) * 0.8));
      const r = await this.bridge.call('columnResidual', { i, half });
      const [lo, hi] = quantiles(Array.from(r.data), 0.01, 0.99);
      const rr = Array.from(r.residual).filter(Number.isFinite).map(Math.abs).sort((a, b) => a - b);
      const span = rr.length ? rr[Math.floor(0.99 * (rr.length - 1))] || 1 : 1;
      paintSmall(this.$('res-data'), r.data, r.size, (v) => (v - lo) / (hi - lo || 1));
      paintSmall(this.$('res-model'), r.model, r.size, (v) => (v - lo) / (hi - lo || 1));
      paintSmall(this.$('res-resid'), r.residual, r.size, (v) => 0.5 + v / (2 * span));
    } catch { /* columns changed meanwhile: the details stay as text */ }
  }

  async export(kind) {
    try {
      const base = this.app.baseName();
      if (kind === 'csv') download(new Blob([await this.bridge.call('columnsCsv')], { type: 'text/csv' }), `${base}_columns.csv`);
      else download(new Blob([await this.bridge.call('columnsJson', { source: this.state.dataset })], { type: 'application/json' }), `${base}_columns.json`);
    } catch (e) { this.app.actions.showError(e.message); }
  }
}

function paintSmall(canvas, values, n, norm) {
  canvas.width = n; canvas.height = n;
  const ctx = canvas.getContext('2d');
  const img = ctx.createImageData(n, n);
  for (let i = 0; i < n * n; i++) {
    const v = values[i];
    const g = Number.isFinite(v) ? Math.round(255 * Math.min(1, Math.max(0, norm(v)))) : 0;
    img.data.set([g, g, g, 255], 4 * i);
  }
  ctx.putImageData(img, 0, 0);
}
