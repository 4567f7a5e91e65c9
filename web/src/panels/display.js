// The Display section and the image view around it: display limits and colormap, the
// histogram, the pixel readout, the before/after split (another image left of a divider), the
// metadata table, and the image exports.
import { fmt, fmtLength } from '../views/plots.js';
import { plot } from '../views/charts.js';
import { download } from '../actions.js';

/** A figure (`Viewer.figure`) as SVG: the image embedded as PNG, the caption as text. */
async function figureSvg(f) {
  const data = await new Promise((res) => { const r = new FileReader(); r.onload = () => res(r.result); r.readAsDataURL(f.image); });
  const esc = (t) => t.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${f.width}" height="${f.height}" viewBox="0 0 ${f.width} ${f.height}">
<rect width="100%" height="100%" fill="#fff"/>
<image href="${data}" width="${f.width}" height="${f.imageHeight}" style="image-rendering:pixelated"/>
${f.lines.map((t, i) => `<text x="${0.5 * f.size}" y="${f.imageHeight + (i + 1) * f.lineH}" font-family="system-ui, sans-serif" font-size="${f.size}" fill="#111">${esc(t)}</text>`).join('\n')}
</svg>
`;
}

export class DisplayPanel {
  constructor(app) {
    this.app = app;
    const { $ } = app;
    this.hoverSeq = 0;
    for (const id of ['plo', 'phi', 'cmap']) $(id).addEventListener('change', () => this.view().catch((e) => app.actions.showError(e.message)));
    $('dn-compare').onchange = () => this.showSplit().catch((e) => app.actions.showError(e.message));
    $('export-tiff').onclick = async () => {
      try {
        download(new Blob([await app.bridge.call('exportTiff')], { type: 'image/tiff' }), `${app.baseName()}.tif`);
      } catch (e) { app.actions.showError(e.message); }
    };
    $('export-png').onclick = async () => download(await app.viewer.toPNG(), `${app.baseName()}_view.png`);
    $('fig-png').onclick = () => app.actions.run('Drawing the figure…', async () => {
      const f = await app.viewer.figure(+$('fig-scale').value, this.caption());
      download(f.png, `${app.baseName()}_figure.png`);
    }, 'Figure');
    $('fig-svg').onclick = () => app.actions.run('Drawing the figure…', async () => {
      const f = await app.viewer.figure(+$('fig-scale').value, this.caption());
      download(new Blob([await figureSvg(f)], { type: 'image/svg+xml' }), `${app.baseName()}_figure.svg`);
    }, 'Figure');
    // The shown image's pixel size, and setting it (parsed in Rust: `Calibration::parse`).
    app.store.on('image', (im) => { $('pixel-size').value = im.unit === 'px' ? 'px' : `${+im.pixel_size.toPrecision(4)} ${im.unit}`; });
    const calibrate = () => app.actions.run('Setting the pixel size…', async () => {
      const r = await app.bridge.call('calibrate', { signal: app.signals.shown.signal, size: $('pixel-size').value });
      await app.signals.update(r.signals, r.index);
    }, 'Pixel size');
    $('pixel-size-set').onclick = calibrate;
    $('pixel-size').onkeydown = (e) => { if (e.key === 'Enter') calibrate(); };
    // A new dataset: no split over images of another.
    app.store.on('dataset', () => {
      app.store.set({ split: null, compare: false });
      $('dn-compare').checked = false;
      $('dn-compare').disabled = true;
      app.viewer.compare = null;
    });
  }

  setDefaults(d) {
    if (!this.app.$('cmap').options.length) for (const c of d.colormaps) this.app.$('cmap').add(new Option(c, c));
  }

  /** The shown image changed: its view, spectrum and metadata. */
  async refresh() {
    this.metadata();
    await Promise.all([this.view(), this.app.spectrum.refresh()]);
  }

  async view() {
    const { $, store, bridge, viewer } = this.app;
    const image = store.state.image;
    if (!image) return;
    const plo = +$('plo').value, phi = +$('phi').value;
    if (!(plo >= 0 && phi <= 100 && plo < phi)) return this.app.actions.showError('Display limits: need 0 ≤ low % < high % ≤ 100.');
    const r = await bridge.call('view', { plo, phi, cmap: $('cmap').value || 'gray' });
    const { width, height, pixel_size, unit } = image;
    const bitmap = await createImageBitmap(new ImageData(new Uint8ClampedArray(r.rgba.buffer), width, height));
    viewer.setImage(bitmap, { width, height, pixel_size, unit });
    const n = r.hist.length, w = (r.max - r.min) / n || 1;
    const dtype = store.state.signals?.[this.app.signals.shown.signal]?.dtype ?? '';
    plot($('hist'), {
      title: 'pixel values', x: { label: `pixel value${dtype ? ` (${dtype})` : ''}`, min: r.min, max: r.max }, y: { label: 'pixels', log: true },
      series: [{ name: 'pixels', type: 'line', step: true, area: true, color: '#6f8aa6', data: Array.from(r.hist, (c, i) => [r.min + (i + 0.5) * w, c || null]) }],
      marks: [{ x: r.lo, label: 'low' }, { x: r.hi, label: 'high' }],
    });
    $('limits').textContent = `shown ${fmt(r.lo)} … ${fmt(r.hi)}   (data ${fmt(r.min)} … ${fmt(r.max)})`;
    store.set({ view: { lo: r.lo, hi: r.hi, min: r.min, max: r.max } });
    if (viewer.compare || $('dn-compare').checked) await this.showSplit();
  }

  /** The split: `split` = {source: {signal, frame}, left, right}, the shown image on the right;
   * `show` turns it on. */
  setSplit(split, show) {
    this.app.store.set({ split });
    this.app.$('dn-compare').disabled = false;
    this.app.$('dn-compare').checked = show;
  }

  async showSplit() {
    const { $, store, bridge, viewer } = this.app;
    const d = store.state.split, image = store.state.image;
    const src = d && store.state.signals[d.source.signal];
    if (!$('dn-compare').checked || !src || !store.state.view || src.width !== image.width || src.height !== image.height) {
      viewer.compare = null;
      viewer.draw();
      return;
    }
    const { lo, hi } = store.state.view;
    const rgba = await bridge.call('renderSignal', { ...d.source, lo, hi, cmap: $('cmap').value || 'gray' });
    const bitmap = await createImageBitmap(new ImageData(new Uint8ClampedArray(rgba.buffer), src.width, src.height));
    viewer.compare = { bitmap, split: viewer.compare?.split ?? 0.5, left: d.left, right: d.right };
    store.set({ compare: true });
    viewer.draw();
  }

  /** The pixel under the pointer (the viewer calls this). */
  async hover(p) {
    const { $, store, bridge } = this.app;
    if (!p || !store.state.image) { $('readout').textContent = ''; return; }
    const seq = ++this.hoverSeq;
    const v = await bridge.call('value', p).catch(() => NaN);
    if (seq !== this.hoverSeq) return;
    const { pixel_size, unit } = store.state.image;
    const pos = unit === 'nm' ? `  (${(p.x * pixel_size).toFixed(3)}, ${(p.y * pixel_size).toFixed(3)}) nm` : '';
    $('readout').textContent = `x ${p.x}  y ${p.y}${pos}  value ${fmt(v)}`;
  }

  /** What a figure of the shown image says under it: file, signal, size and calibration, the
   * display, the colour key, the software. */
  caption() {
    const { store, viewer } = this.app;
    const st = store.state, s = st.signals[this.app.signals.shown.signal];
    const key = viewer.key();
    const cal = s.unit === 'nm' ? `pixel ${fmtLength(s.pixel_size)}, field of view ${fmtLength(s.width * s.pixel_size)} × ${fmtLength(s.height * s.pixel_size)}` : 'uncalibrated (px)';
    return [
      `${st.dataset} — ${s.title}${s.frames > 1 ? `, frame ${this.app.signals.shown.frame + 1} of ${s.frames}` : ''}`,
      `${s.width} × ${s.height} px, ${cal}; display ${this.app.$('cmap').value}, ${this.app.$('plo').value}–${this.app.$('phi').value} percentile.`,
      ...(key ? [`Colour: ${key.label}, ${fmt(key.lo)} … ${fmt(key.hi)}.`] : []),
      `atomlens ${st.version || ''} · ${new Date().toISOString().slice(0, 10)}`,
    ];
  }

  metadata() {
    const { $, store } = this.app;
    const s = store.state.signals[this.app.signals.shown.signal], image = store.state.image;
    const m = s.metadata || {};
    const cal = s.unit === 'nm' ? fmtLength(s.pixel_size) : 'uncalibrated (px)';
    const rows = [
      ['File', store.state.dataset], ['Format', m.format], ['Title', s.title],
      ['Size', `${s.width} × ${s.height} px${s.frames > 1 ? ` × ${s.frames} frames` : ''}`], ['Type', s.dtype],
      ['Pixel size', cal],
      ['Field of view', s.unit === 'nm' ? `${fmtLength(s.width * s.pixel_size)} × ${fmtLength(s.height * s.pixel_size)}` : null],
      ['Voltage', m.voltage_kv && `${+(+m.voltage_kv).toPrecision(4)} kV`], ['Microscope', m.microscope], ['Detector', m.detector], ['Mode', m.mode],
      ['Magnification', m.magnification && (m.magnification >= 1e6 ? `${+(m.magnification / 1e6).toPrecision(3)} M×` : `${+(m.magnification / 1e3).toPrecision(3)} k×`)], ['Dwell time', m.dwell_time_us && `${m.dwell_time_us} µs`],
      ['Acquired', m.acquired], ['Min / max', `${fmt(image.summary.min)} / ${fmt(image.summary.max)}`],
      ['Mean ± std', `${fmt(image.summary.mean)} ± ${fmt(image.summary.std)}`],
      ['NaN / inf pixels', image.summary.non_finite ? String(image.summary.non_finite) : null],
      ...(m.notes || []).map((n) => ['Note', n]),
    ];
    $('meta').replaceChildren(...rows.filter(([, v]) => v !== null && v !== undefined && v !== '').map(([k, v]) => {
      const tr = document.createElement('tr');
      tr.append(Object.assign(document.createElement('td'), { textContent: k }), Object.assign(document.createElement('td'), { textContent: v }));
      return tr;
    }));
  }
}
