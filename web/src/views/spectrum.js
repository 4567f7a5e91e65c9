// The power-spectrum view: the engine's rendered spectrum with reciprocal axes, a readout of
// |g|, d and angle under the pointer, and the GPA masks: click a Bragg spot for g1, shift-click
// for g2, drag a mask to move it, drag its rim to resize it (the maps follow live). Wheel zooms
// around the pointer, a drag elsewhere pans, double-click shows the whole spectrum again, so
// spots of a large image can be picked to the pixel.

const MAX_ZOOM = 64;

/** Where the spectrum lies on `canvas`: `s` canvas px per spectrum pixel, `x0, y0` the canvas
 * position of pixel (0, 0)'s corner, `m` the axes' margin. `view`: `zoom` ≥ 1 and the pan
 * `px, py` (spectrum pixels from the centre to the middle of the plot). */
export function spectrumLayout(canvas, sp, view = { zoom: 1, px: 0, py: 0 }) {
  const W = canvas.width, H = canvas.height, m = 28 * (window.devicePixelRatio || 1);
  const s = Math.min((W - m) / sp.width, (H - m) / sp.height) * view.zoom;
  return { s, x0: m + (W - m) / 2 - (sp.width / 2 + view.px) * s, y0: (H - m) / 2 - (sp.height / 2 + view.py) * s, m };
}

/** Frequency (fx, fy) under a canvas point, in sp.unit; fy positive upwards; null off the plot. */
export function spectrumAt(canvas, sp, cx, cy, view) {
  const { s, x0, y0, m } = spectrumLayout(canvas, sp, view);
  if (cx < m || cy > canvas.height - m) return null;
  const i = Math.floor((cx - x0) / s), j = Math.floor((cy - y0) / s);
  if (i < 0 || j < 0 || i >= sp.width || j >= sp.height) return null;
  return { fx: (i - Math.floor(sp.width / 2)) * sp.step_x, fy: -(j - Math.floor(sp.height / 2)) * sp.step_y };
}

function niceStep(target) {
  const k = 10 ** Math.floor(Math.log10(target));
  for (const n of [5, 2, 1]) if (n * k <= target) return n * k;
  return k;
}

function drawSpectrum(canvas, bitmap, sp, view, mark, gmarks) {
  const ctx = canvas.getContext('2d');
  const dpr = window.devicePixelRatio || 1;
  const r = canvas.getBoundingClientRect();
  canvas.width = Math.round(r.width * dpr); canvas.height = Math.round(r.height * dpr);
  ctx.fillStyle = '#000'; ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (!bitmap) return;
  const W = canvas.width, H = canvas.height;
  const { s, x0, y0, m } = spectrumLayout(canvas, sp, view);
  ctx.save();
  ctx.beginPath(); ctx.rect(m, 0, W - m, H - m); ctx.clip();
  ctx.imageSmoothingEnabled = s < 1;
  ctx.drawImage(bitmap, x0, y0, sp.width * s, sp.height * s);
  // Zero frequency at the centre pixel (width/2, height/2).
  const cx = x0 + Math.floor(sp.width / 2) * s + s / 2, cy = y0 + Math.floor(sp.height / 2) * s + s / 2;
  // GPA g-vectors and their masks (display units, fy up); both ±g, as the spectrum is symmetric.
  ctx.font = `${11 * dpr}px system-ui, sans-serif`; ctx.textAlign = 'left';
  for (const g of gmarks) {
    ctx.strokeStyle = g.color; ctx.fillStyle = g.color; ctx.lineWidth = 1.5 * dpr;
    for (const sgn of [1, -1]) {
      const x = cx + sgn * (g.fx / sp.step_x) * s, y = cy - sgn * (g.fy / sp.step_y) * s;
      ctx.beginPath(); ctx.arc(x, y, Math.max(3 * dpr, (g.r / sp.step_x) * s), 0, 2 * Math.PI); ctx.stroke();
      if (sgn > 0) ctx.fillText(g.label, x + 6 * dpr, y - 6 * dpr);
    }
  }
  if (mark) {
    ctx.strokeStyle = '#4fb3ff'; ctx.lineWidth = 1.5 * dpr;
    const rad = Math.hypot(mark.fx / sp.step_x, mark.fy / sp.step_y) * s;
    ctx.beginPath(); ctx.arc(cx, cy, rad, 0, 2 * Math.PI); ctx.stroke();
  }
  ctx.restore();
  // Axes in sp.unit over the visible range, ticks at a step that suits the zoom.
  ctx.strokeStyle = '#8a939c'; ctx.fillStyle = '#8a939c'; ctx.lineWidth = dpr;
  ctx.font = `${10 * dpr}px system-ui, sans-serif`;
  const fx = (x) => ((x - cx) / s) * sp.step_x, fy = (y) => ((cy - y) / s) * sp.step_y;
  const tick = niceStep((fx(W) - fx(m)) / 4);
  const yAxis = H - m + 4 * dpr;
  ctx.textAlign = 'center';
  for (let f = Math.ceil(fx(m) / tick) * tick; f <= fx(W); f += tick) {
    const x = cx + (f / sp.step_x) * s;
    ctx.beginPath(); ctx.moveTo(x, yAxis); ctx.lineTo(x, yAxis + 4 * dpr); ctx.stroke();
    ctx.fillText(+f.toPrecision(3) + '', x, yAxis + 14 * dpr);
  }
  ctx.textAlign = 'right';
  for (let f = Math.ceil(fy(H - m) / tick) * tick; f <= fy(0); f += tick) {
    const y = cy - (f / sp.step_y) * s;
    ctx.beginPath(); ctx.moveTo(m - 4 * dpr, y); ctx.lineTo(m, y); ctx.stroke();
    ctx.fillText(+f.toPrecision(3) + '', m - 6 * dpr, y + 3 * dpr);
  }
  if (view.zoom > 1) {
    ctx.textAlign = 'right'; ctx.fillStyle = '#dfe3e8';
    ctx.fillText(`${+view.zoom.toPrecision(3)}× · double-click: whole`, W - 4 * dpr, 12 * dpr);
  }
}

export class SpectrumView {
  constructor({ canvas, readout, unitLabel, bridge, store }) {
    Object.assign(this, { canvas, readout, unitLabel, bridge, store });
    this.bitmap = null;
    this.strain = null; // the Strain panel: picks g, has masks
    this.drag = null;   // {hit, moved} while a mask is dragged, {pan, x, y, moved} while panning
    this.view = { zoom: 1, px: 0, py: 0 };
    this.suppressClick = false;
    canvas.addEventListener('pointermove', (e) => this.move(e));
    canvas.addEventListener('pointerdown', (e) => {
      const f = this.point(e);
      const hit = f && this.strain?.hitMask(f);
      this.drag = hit ? { hit, moved: false } : { pan: true, x: e.clientX, y: e.clientY, moved: false };
      canvas.setPointerCapture?.(e.pointerId);
    });
    canvas.addEventListener('pointerup', () => { if (this.drag) { this.suppressClick = this.drag.moved; this.drag = null; } });
    canvas.addEventListener('click', (e) => {
      if (this.suppressClick) { this.suppressClick = false; return; } // the end of a drag, not a pick
      const f = this.point(e);
      if (f && this.strain && (f.fx || f.fy)) this.strain.pickG(f, e.shiftKey);
    });
    canvas.addEventListener('wheel', (e) => { e.preventDefault(); this.zoomAt(e, Math.exp(-e.deltaY * 0.002)); }, { passive: false });
    canvas.addEventListener('dblclick', () => { this.view = { zoom: 1, px: 0, py: 0 }; this.draw(); });
  }

  /** Zoom by `factor` keeping the spectrum point under the pointer where it is. */
  zoomAt(e, factor) {
    const sp = this.store.state.spectrum;
    if (!sp) return;
    const c = this.canvas, r = c.getBoundingClientRect(), dpr = c.width / r.width;
    const x = (e.clientX - r.left) * dpr, y = (e.clientY - r.top) * dpr;
    const before = spectrumLayout(c, sp, this.view);
    const u = (x - before.x0) / before.s, v = (y - before.y0) / before.s;
    const zoom = Math.min(MAX_ZOOM, Math.max(1, this.view.zoom * factor));
    const s = before.s * (zoom / this.view.zoom);
    const W = c.width, H = c.height, m = before.m;
    this.view = zoom === 1 ? { zoom, px: 0, py: 0 }
      : { zoom, px: (m + (W - m) / 2 - (x - u * s)) / s - sp.width / 2, py: ((H - m) / 2 - (y - v * s)) / s - sp.height / 2 };
    this.draw();
  }

  /** The spectrum frequency under a pointer event (display units, fy up), or null. */
  point(e) {
    const sp = this.store.state.spectrum, c = this.canvas, r = c.getBoundingClientRect(), dpr = c.width / r.width;
    return sp && spectrumAt(c, sp, (e.clientX - r.left) * dpr, (e.clientY - r.top) * dpr, this.view);
  }

  move(e) {
    if (this.drag?.pan) {
      const sp = this.store.state.spectrum;
      if (!sp || this.view.zoom === 1) return;
      const dx = e.clientX - this.drag.x, dy = e.clientY - this.drag.y;
      if (!this.drag.moved && Math.hypot(dx, dy) < 3) return;
      const c = this.canvas, dpr = c.width / c.getBoundingClientRect().width, { s } = spectrumLayout(c, sp, this.view);
      this.view.px -= (dx * dpr) / s; this.view.py -= (dy * dpr) / s;
      Object.assign(this.drag, { x: e.clientX, y: e.clientY, moved: true });
      this.draw();
      return;
    }
    const f = this.point(e);
    if (!f) return;
    if (this.drag) {
      this.drag.moved = true;
      this.strain.dragMask(this.drag.hit, f);
      return;
    }
    const sp = this.store.state.spectrum;
    const g = Math.hypot(f.fx, f.fy);
    const d = g > 0 ? 1 / g : Infinity;
    const dText = sp.unit === '1/nm' ? (d < 1 ? `${(d * 10).toFixed(3)} Å` : `${d.toFixed(3)} nm`) : `${d.toFixed(2)} px`;
    this.readout.textContent = `|g| = ${g.toFixed(3)} ${sp.unit}   d = ${dText}   angle ${(Math.atan2(f.fy, f.fx) * 180 / Math.PI).toFixed(1)}°`;
    this.draw(f);
  }

  /** Fetch and draw the shown image's spectrum (the whole of it); an image without one says why. */
  async refresh() {
    this.view = { zoom: 1, px: 0, py: 0 };
    try {
      const sp = await this.bridge.call('spectrum', { cmap: 'inferno' });
      this.bitmap = await createImageBitmap(new ImageData(new Uint8ClampedArray(sp.rgba.buffer), sp.width, sp.height));
      this.store.set({ spectrum: { width: sp.width, height: sp.height, step_x: sp.step_x, step_y: sp.step_y, unit: sp.unit } });
      this.unitLabel.textContent = `(${sp.unit})`;
    } catch (e) {
      this.bitmap = null;
      this.store.set({ spectrum: null });
      this.readout.textContent = e.message;
    }
    this.draw();
  }

  draw(mark = null) {
    drawSpectrum(this.canvas, this.bitmap, this.store.state.spectrum || {}, this.view, mark, this.strain?.gmarks() ?? []);
  }

  /** Client coordinates of frequency (fx, fy) (display units, fy up), for the e2e suite. */
  clientPoint(fx, fy) {
    const c = this.canvas, sp = this.store.state.spectrum, r = c.getBoundingClientRect(), dpr = c.width / r.width;
    const { s, x0, y0 } = spectrumLayout(c, sp, this.view);
    const cx = x0 + Math.floor(sp.width / 2) * s + s / 2, cy = y0 + Math.floor(sp.height / 2) * s + s / 2;
    return { x: r.left + (cx + (fx / sp.step_x) * s) / dpr, y: r.top + (cy - (fy / sp.step_y) * s) / dpr };
  }
}
