// The power-spectrum view: the engine's rendered spectrum with reciprocal axes, a readout of
// |g|, d and angle under the pointer, and the GPA masks: click a Bragg spot for g1, shift-click
// for g2, drag a mask to move it, drag its rim to resize it (the maps follow live).
import { drawSpectrum, spectrumAt, spectrumLayout } from './plots.js';

export class SpectrumView {
  constructor({ canvas, readout, unitLabel, bridge, store }) {
    Object.assign(this, { canvas, readout, unitLabel, bridge, store });
    this.bitmap = null;
    this.strain = null; // the Strain panel: picks g, has masks
    this.drag = null;   // {hit, moved} while a mask is dragged
    this.suppressClick = false;
    canvas.addEventListener('pointermove', (e) => this.move(e));
    canvas.addEventListener('pointerdown', (e) => {
      const f = this.point(e);
      const hit = f && this.strain?.hitMask(f);
      if (!hit) return;
      this.drag = { hit, moved: false };
      canvas.setPointerCapture?.(e.pointerId);
    });
    canvas.addEventListener('pointerup', () => { if (this.drag) { this.suppressClick = this.drag.moved; this.drag = null; } });
    canvas.addEventListener('click', (e) => {
      if (this.suppressClick) { this.suppressClick = false; return; } // the end of a drag, not a pick
      const f = this.point(e);
      if (f && this.strain && (f.fx || f.fy)) this.strain.pickG(f, e.shiftKey);
    });
  }

  /** The spectrum frequency under a pointer event (display units, fy up), or null. */
  point(e) {
    const sp = this.store.state.spectrum, c = this.canvas, r = c.getBoundingClientRect(), dpr = c.width / r.width;
    return sp && spectrumAt(c, sp, (e.clientX - r.left) * dpr, (e.clientY - r.top) * dpr);
  }

  move(e) {
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

  /** Fetch and draw the shown image's spectrum; an image without one says why. */
  async refresh() {
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
    drawSpectrum(this.canvas, this.bitmap, this.store.state.spectrum || {}, mark, this.strain?.gmarks() ?? []);
  }

  /** Client coordinates of frequency (fx, fy) (display units, fy up), for the e2e suite. */
  clientPoint(fx, fy) {
    const c = this.canvas, sp = this.store.state.spectrum, r = c.getBoundingClientRect(), dpr = c.width / r.width;
    const { s, x0, y0 } = spectrumLayout(c, sp);
    const cx = x0 + Math.floor(sp.width / 2) * s + s / 2, cy = y0 + Math.floor(sp.height / 2) * s + s / 2;
    return { x: r.left + (cx + (fx / sp.step_x) * s) / dpr, y: r.top + (cy - (fy / sp.step_y) * s) / dpr };
  }
}
