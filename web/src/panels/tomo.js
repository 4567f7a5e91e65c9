// The Tomography section and the Volume panel: a phantom tilt series for demos, reconstruction of
// the shown stack (angles from the file, or start + k·step), three linked orthoslices, a
// projection of the volume that rotates about the tilt axis, a threshold overlay and MRC export.
// Methods, alignments and phantoms come from the engine (core::tomo::Algorithm::ALL, …).
import { fmt } from '../views/plots.js';
import { download } from '../actions.js';
import { fillSelect } from '../forms.js';

const LABELS = {
  sirt: 'SIRT', sart: 'SART', fbp: 'FBP', none: 'none', center_of_mass: 'centre of mass', axis_offset: 'tilt-axis offset',
  cross_correlation: 'cross-correlation + axis', reprojection: '… + re-projection refinement', faceted_particle: 'faceted particle',
  core_shell: 'core–shell', shepp_logan: 'Shepp–Logan', cluster: 'particles, axis turned 8°',
};

export class TomoPanel {
  constructor(app) {
    const $ = app.$;
    Object.assign(this, { app, bridge: app.bridge, store: app.store, viewer: app.viewer, $ });
    app.store.on('dataset', () => this.clear());
    $('tomo-method').onchange = () => this.methodChanged();
    this.volume = null;
    $('tomo-demo').onclick = () => this.demo();
    $('tomo-run').onclick = () => this.run();
    $('tomo-mrc').onclick = () => this.exportMrc();
    $('tomo-movie').onclick = () => this.play();
    for (const [axis, plane] of [['z', 'xy'], ['y', 'xz'], ['x', 'yz']]) $(`tomo-${axis}`).oninput = () => this.drawSlice(plane);
    $('tomo-rot').oninput = () => this.drawProjection();
    $('tomo-thr').onchange = () => this.drawSlices();
  }

  get state() { return this.store.state; }

  setDefaults(d) {
    const $ = this.$;
    this.methods = Object.fromEntries(d.tomo.map((m) => [m.method, m]));
    fillSelect($('tomo-method'), d.tomo.map((m) => m.method), LABELS);
    fillSelect($('tomo-align'), d.align, LABELS);
    fillSelect($('tomo-kind'), d.phantoms, LABELS);
    this.methodChanged();
  }

  /** The iterations field shows the chosen method's default (FBP has none). */
  methodChanged() {
    const m = this.methods[this.$('tomo-method').value];
    this.$('tomo-iter').disabled = m.iterations === undefined;
    if (m.iterations !== undefined) this.$('tomo-iter').value = m.iterations;
  }

  /** A new dataset: the volume of the old one goes. */
  clear() {
    this.volume = null;
    this.$('tomo-view').hidden = true;
    this.$('tomo-mrc').disabled = true;
    this.$('tomo-movie').hidden = true;
  }

  demo() {
    const $ = this.$;
    const [start, end, count] = [-70, 70, 71];
    return this.app.actions.run('Projecting the phantom…', async () => {
      const kind = $('tomo-kind').value;
      const r = await this.bridge.call('tomoDemo', { kind, n: 96, start, end, count, dose: 500, axis: kind === 'cluster' ? 8 : 0 });
      $('tomo-start').value = start;
      $('tomo-step').value = (end - start) / (count - 1);
      await this.app.signals.update(r.signals, r.index);
    }, 'Tomography');
  }

  run() {
    const $ = this.$;
    const { signal } = this.app.signals.shown;
    const frames = this.state.signals[signal]?.frames ?? 1;
    const [start, step] = [+$('tomo-start').value, +$('tomo-step').value];
    const recorded = this.state.signals[signal]?.metadata?.tilt_angles_deg;
    const fromFile = $('tomo-file-angles').checked && recorded?.length === frames;
    const angles = fromFile ? recorded : Array.from({ length: frames }, (_, k) => start + k * step);
    const axis = $('tomo-axis-auto').checked ? 'estimate' : { angle: +$('tomo-axis').value };
    const prep = { align: $('tomo-align').value, axis, stretch: $('tomo-stretch').checked };
    const name = $('tomo-method').value, method = { ...this.methods[name] };
    if (method.iterations !== undefined) method.iterations = Math.round(+$('tomo-iter').value);
    return this.app.actions.run('Reconstructing…', async () => {
      const t0 = performance.now();
      this.store.set({ tomoPreviews: 0 });
      this.volume = await this.bridge.call('reconstruct', { signal, angles, method, prep }, [], (p) => this.preview(p));
      this.volume.seconds = (performance.now() - t0) / 1000;
      this.store.set({ volume: { ...this.volume, method: name, frames } });
      const v = this.volume;
      this.aligned = v.aligned ?? null;
      $('tomo-movie').hidden = this.aligned === null;
      if (this.aligned !== null) await this.app.signals.update(v.signals);
      $('tomo-view').hidden = false;
      $('tomo-mrc').disabled = false;
      const shift = v.shifts ? ` · aligned, shifts up to ${fmt(Math.max(...v.shifts.map(([x, y]) => Math.hypot(x, y))))} px` : '';
      const source = fromFile ? ' (angles recorded with the series)' : '';
      const turned = v.axis_contrast != null && !v.notes.length ? ` · tilt axis ${fmt(v.axis_deg)}° (estimated)`
        : v.axis_deg ? ` · tilt axis ${fmt(v.axis_deg)}°` : '';
      $('tomo-dims').textContent = `${v.nx}×${v.ny}×${v.nz} from ${frames} tilts${source} · ${name.toUpperCase()} · ${fmt(v.seconds)} s${shift}${turned}`;
      $('tomo-notes').textContent = v.notes.join(' ');
      for (const [axis, n] of [['z', v.nz], ['y', v.ny], ['x', v.nx]]) { $(`tomo-${axis}`).max = n - 1; $(`tomo-${axis}`).value = Math.floor(n / 2); }
      await this.drawSlices();
      await this.drawProjection();
    }, 'Tomography');
  }

  /** A slice finished while the reconstruction runs: shown in the xz panel. */
  preview(p) {
    if (!p) return;
    const $ = this.$;
    $('tomo-view').hidden = false;
    $('tomo-dims').textContent = `reconstructing… slice y = ${p.y}`;
    paint($('tomo-xz'), p);
    this.store.set({ tomoPreviews: (this.state.tomoPreviews || 0) + 1 });
  }

  async drawSlices() {
    await Promise.all(['xy', 'xz', 'yz'].map((p) => this.drawSlice(p)));
  }

  async drawSlice(plane) {
    const $ = this.$, v = this.volume;
    if (!v) return;
    const axis = { xy: 'z', xz: 'y', yz: 'x' }[plane];
    const thr = $('tomo-thr').value === '' ? null : +$('tomo-thr').value;
    const r = await this.bridge.call('tomoSlice', { plane, index: +$(`tomo-${axis}`).value, lo: v.lo, hi: v.hi, cmap: 'gray', threshold: thr });
    paint($(`tomo-${plane}`), r);
    $('tomo-above').textContent = thr === null ? '' : `${fmt(100 * r.above)} % of the volume ≥ threshold`;
    this.store.set({ volume: { ...this.state.volume, above: r.above } });
  }

  async drawProjection() {
    const $ = this.$;
    if (!this.volume) return;
    const angle = +$('tomo-rot').value;
    $('tomo-rot-label').textContent = `${angle}°`;
    paint($('tomo-proj'), await this.bridge.call('tomoProjection', { angle, cmap: 'inferno' }));
  }

  /** The aligned series as a movie (every tilt in turn) with the tilt axis drawn: after a good
   * alignment features turn about the dashed line without wandering. */
  async play() {
    const { frames, width, height } = this.state.signals[this.aligned];
    const axis = [{ points: [(width - 1) / 2, 0, (width - 1) / 2, height - 1], color: '#ffe066', closed: false, width: 1.5 }];
    this.store.set({ tomoMovie: { frames, shown: 0 } });
    this.$('tomo-movie').disabled = true;
    try {
      for (let k = 0; k < frames; k++) {
        await this.app.signals.select(this.aligned, k);
        this.viewer.paths = axis;
        this.viewer.draw();
        this.store.set({ tomoMovie: { frames, shown: k + 1 } });
        await new Promise((r) => setTimeout(r, 60));
      }
    } catch (e) { this.app.actions.showError(`Tomography: ${e.message}`); } finally { this.$('tomo-movie').disabled = false; }
  }

  async exportMrc() {
    const bytes = await this.bridge.call('tomoMrc', {});
    download(new Blob([bytes], { type: 'application/octet-stream' }), `${this.app.baseName()}-volume.mrc`);
  }
}

function paint(canvas, { width, height, rgba }) {
  canvas.width = width;
  canvas.height = height;
  canvas.getContext('2d').putImageData(new ImageData(new Uint8ClampedArray(rgba.buffer, rgba.byteOffset, rgba.byteLength), width, height), 0, 0);
}
