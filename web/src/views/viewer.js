// The image view: zoom (wheel, around the pointer), pan (drag), fit (double-click), a scale bar
// from the calibration, and a readout of the pixel under the pointer.

import { fmt, fmtLength } from './plots.js';

const NICE = [1, 2, 5];

/** A round length (1, 2 or 5 × 10^k) near `target`, in the image's unit; label in pm, Å, nm, µm or px. */
export function scaleBarLength(target, unit) {
  const k = Math.floor(Math.log10(target));
  let best = 10 ** k;
  for (const n of NICE) if (n * 10 ** k <= target) best = n * 10 ** k;
  let label;
  if (unit === 'nm') label = fmtLength(best);
  else label = `${+best.toPrecision(3)} px`;
  return { length: best, label };
}

export class Viewer {
  constructor(canvas, onHover, onClick) {
    this.canvas = canvas;
    this.ctx = canvas.getContext('2d');
    this.onHover = onHover;
    this.onClick = onClick;
    this.overlay = null; // {x, y, colors, selected}
    this.paths = null;   // [{points: [x0, y0, …], color, closed, width}] drawn under the overlay
    this.layer = null;    // a map drawn over the image (same size), e.g. a strain map
    this.layerKey = null; // its colour key: { label, lo, hi, lut (256 RGB) }; an overlay's is overlay.key
    this.compare = null;  // {bitmap, split}: another image shown left of a draggable divider
    this.rect = null;     // a region drawn over the image {x0, y0, x1, y1} (GPA reference)
    this.rectMode = false; // dragging draws `rect` instead of panning, then calls onRect
    this.onRect = null;
    this.bitmap = null;
    this.meta = null;
    this.zoom = 1; this.ox = 0; this.oy = 0;
    new ResizeObserver(() => this.resize()).observe(canvas);
    canvas.addEventListener('wheel', (e) => this.wheel(e), { passive: false });
    canvas.addEventListener('pointerdown', (e) => this.down(e));
    canvas.addEventListener('pointermove', (e) => this.move(e));
    canvas.addEventListener('pointerup', (e) => {
      const d = this.drag;
      this.drag = null;
      if (d?.rect) {
        canvas.releasePointerCapture?.(e.pointerId);
        const r = this.rect;
        if (r && r.x1 - r.x0 >= 4 && r.y1 - r.y0 >= 4) this.onRect?.(r);
        return;
      }
      canvas.releasePointerCapture?.(e.pointerId);
      // A click (no drag): hand the image position and the modifier keys on.
      if (d && Math.hypot(e.clientX - d.x, e.clientY - d.y) < 4 && this.meta) {
        const { x, y } = this.toImage(e);
        this.onClick?.({ x, y, shift: e.shiftKey, alt: e.altKey, zoom: this.zoom });
      }
    });
    canvas.addEventListener('pointerleave', () => this.onHover?.(null));
    canvas.addEventListener('dblclick', () => { this.fit(); this.draw(); });
  }

  resize() {
    const r = this.canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    this.canvas.width = Math.max(1, Math.round(r.width * dpr));
    this.canvas.height = Math.max(1, Math.round(r.height * dpr));
    if (this.bitmap && this.autoFit) this.fit();
    this.draw();
  }

  setImage(bitmap, meta) {
    const sameSize = this.meta && this.meta.width === meta.width && this.meta.height === meta.height;
    this.bitmap = bitmap;
    this.meta = meta;
    if (!sameSize) this.fit();
    this.draw();
  }

  fit() {
    if (!this.meta) return;
    const { width: W, height: H } = this.canvas;
    this.zoom = Math.min(W / this.meta.width, H / this.meta.height) * 0.98;
    this.ox = (W - this.meta.width * this.zoom) / 2 + this.zoom / 2;
    this.oy = (H - this.meta.height * this.zoom) / 2 + this.zoom / 2;
    this.autoFit = true;
  }

  toImage(e) {
    const r = this.canvas.getBoundingClientRect();
    const dpr = this.canvas.width / r.width;
    const cx = (e.clientX - r.left) * dpr, cy = (e.clientY - r.top) * dpr;
    return { cx, cy, x: (cx - this.ox) / this.zoom, y: (cy - this.oy) / this.zoom };
  }

  wheel(e) {
    if (!this.meta) return;
    e.preventDefault();
    const { cx, cy, x, y } = this.toImage(e);
    const f = Math.exp(-e.deltaY * 0.0015);
    this.zoom = Math.min(64, Math.max(0.02, this.zoom * f));
    this.ox = cx - x * this.zoom; this.oy = cy - y * this.zoom;
    this.autoFit = false;
    this.draw();
  }

  down(e) {
    this.drag = { x: e.clientX, y: e.clientY, ox: this.ox, oy: this.oy };
    if (this.compare) {
      const r = this.canvas.getBoundingClientRect(), dpr = this.canvas.width / r.width;
      if (Math.abs((e.clientX - r.left) * dpr - this.compare.split * this.canvas.width) < 10 * dpr) this.drag.divider = true;
    }
    if (this.rectMode && this.meta) this.drag.rect = this.toImage(e);
    this.canvas.setPointerCapture?.(e.pointerId);
  }

  move(e) {
    const dpr = this.canvas.width / this.canvas.getBoundingClientRect().width;
    if (this.drag?.divider) {
      const r = this.canvas.getBoundingClientRect();
      this.compare.split = Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
      this.draw();
      return;
    }
    if (this.drag?.rect) {
      const a = this.drag.rect, b = this.toImage(e);
      const clamp = (v, n) => Math.max(0, Math.min(n, Math.round(v)));
      this.rect = {
        x0: clamp(Math.min(a.x, b.x), this.meta.width), x1: clamp(Math.max(a.x, b.x), this.meta.width),
        y0: clamp(Math.min(a.y, b.y), this.meta.height), y1: clamp(Math.max(a.y, b.y), this.meta.height),
      };
      this.draw();
      return;
    }
    if (this.drag) {
      this.ox = this.drag.ox + (e.clientX - this.drag.x) * dpr;
      this.oy = this.drag.oy + (e.clientY - this.drag.y) * dpr;
      this.autoFit = false;
      this.draw();
    }
    if (!this.meta) return;
    const { x, y } = this.toImage(e);
    const ix = Math.round(x), iy = Math.round(y); // pixel centres at integers
    const inside = ix >= 0 && iy >= 0 && ix < this.meta.width && iy < this.meta.height;
    this.onHover?.(inside ? { x: ix, y: iy } : null);
  }

  draw() {
    const { ctx, canvas } = this;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    ctx.fillStyle = '#0b0c0e';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    if (!this.bitmap) return;
    ctx.imageSmoothingEnabled = this.zoom < 1;
    // Image coordinate x sits at canvas ox + x·zoom; pixel i covers [i − ½, i + ½] (centres at
    // integers, as in the CSV exports), so the bitmap starts half a pixel before the origin.
    ctx.drawImage(this.bitmap, this.ox - this.zoom / 2, this.oy - this.zoom / 2, this.meta.width * this.zoom, this.meta.height * this.zoom);
    if (this.compare) {
      // Before on the left of the divider, the shown image on the right.
      const sx = this.compare.split * canvas.width;
      ctx.save();
      ctx.beginPath(); ctx.rect(0, 0, sx, canvas.height); ctx.clip();
      ctx.drawImage(this.compare.bitmap, this.ox - this.zoom / 2, this.oy - this.zoom / 2, this.meta.width * this.zoom, this.meta.height * this.zoom);
      ctx.restore();
      const dpr = this.ui();
      ctx.fillStyle = '#ffe066'; ctx.fillRect(sx - dpr, 0, 2 * dpr, canvas.height);
      ctx.font = `${12 * dpr}px system-ui, sans-serif`; ctx.textAlign = 'right';
      ctx.fillText(this.compare.left, sx - 6 * dpr, 18 * dpr);
      ctx.textAlign = 'left'; ctx.fillText(this.compare.right, sx + 6 * dpr, 18 * dpr);
    }
    if (this.layer) {
      ctx.globalAlpha = 0.7;
      ctx.drawImage(this.layer, this.ox - this.zoom / 2, this.oy - this.zoom / 2, this.meta.width * this.zoom, this.meta.height * this.zoom);
      ctx.globalAlpha = 1;
    }
    this.drawOverlay();
    this.drawRect();
    this.drawScaleBar();
    this.drawKey(this.key());
  }

  /** The colour key of what is colour-coded on the image now (the map's, else the overlay's). */
  key() { return (this.layer && this.layerKey) || this.overlay?.key || null; }

  /** The colour bar of what is colour-coded on the image (bottom left): the map's own colours
   * from `lo` to `hi`, with the ends and zero (when inside) labelled. */
  drawKey(key) {
    if (!key?.lut) return;
    const { ctx, canvas } = this;
    const dpr = this.ui();
    // Above the pointer readout, which sits at the bottom left.
    const w = Math.min(220 * dpr, canvas.width * 0.35), h = 10 * dpr, x = 24 * dpr, y = canvas.height - 64 * dpr;
    ctx.fillStyle = 'rgba(0,0,0,0.55)';
    ctx.fillRect(x - 8 * dpr, y - 22 * dpr, w + 16 * dpr, 48 * dpr);
    for (let i = 0; i < 256; i++) {
      const [r, g, b] = key.lut[i];
      ctx.fillStyle = `rgb(${r},${g},${b})`;
      ctx.fillRect(x + (i * w) / 256, y, w / 256 + 1, h);
    }
    ctx.fillStyle = '#fff';
    ctx.font = `${12 * dpr}px system-ui, sans-serif`;
    ctx.textAlign = 'left';
    ctx.fillText(key.label, x, y - 7 * dpr);
    ctx.font = `${11 * dpr}px system-ui, sans-serif`;
    const tick = (v, align) => {
      const tx = x + ((v - key.lo) / (key.hi - key.lo || 1)) * w;
      ctx.textAlign = align;
      ctx.fillRect(tx - dpr / 2, y + h, dpr, 3 * dpr);
      ctx.fillText(fmt(v), tx, y + h + 14 * dpr);
    };
    tick(key.lo, 'left');
    tick(key.hi, 'right');
    if (key.lo < 0 && key.hi > 0 && -key.lo / (key.hi - key.lo) > 0.2 && key.hi / (key.hi - key.lo) > 0.2) tick(0, 'center');
  }

  drawOverlay() {
    const { ctx } = this;
    const dpr = this.ui();
    // Paths (particle outlines, facets): flat [x0, y0, x1, y1, …] in image pixels.
    for (const p of this.paths || []) {
      ctx.strokeStyle = p.color; ctx.lineWidth = p.width * dpr;
      ctx.beginPath();
      for (let i = 0; i < p.points.length; i += 2) {
        const cx = this.ox + p.points[i] * this.zoom, cy = this.oy + p.points[i + 1] * this.zoom;
        i ? ctx.lineTo(cx, cy) : ctx.moveTo(cx, cy);
      }
      if (p.closed) ctx.closePath();
      ctx.stroke();
    }
    const o = this.overlay;
    if (!o) return;
    const r = Math.max(2.5 * dpr, Math.min(o.radius * this.zoom, 12 * dpr));
    ctx.lineWidth = Math.max(1, 1.5 * dpr);
    for (let i = 0; i < o.x.length; i++) {
      const cx = this.ox + o.x[i] * this.zoom, cy = this.oy + o.y[i] * this.zoom;
      if (cx < -r || cy < -r || cx > this.canvas.width + r || cy > this.canvas.height + r) continue;
      ctx.strokeStyle = o.colors[i];
      ctx.beginPath(); ctx.arc(cx, cy, r, 0, 2 * Math.PI); ctx.stroke();
    }
    if (o.selected != null && o.selected < o.x.length) {
      const cx = this.ox + o.x[o.selected] * this.zoom, cy = this.oy + o.y[o.selected] * this.zoom;
      ctx.strokeStyle = '#ffffff'; ctx.lineWidth = 2.5 * dpr;
      ctx.beginPath(); ctx.arc(cx, cy, r + 3 * dpr, 0, 2 * Math.PI); ctx.stroke();
    }
  }

  drawRect() {
    const r = this.rect;
    if (!r) return;
    const dpr = this.ui();
    this.ctx.strokeStyle = '#ffe066'; this.ctx.lineWidth = 1.5 * dpr; this.ctx.setLineDash([6 * dpr, 4 * dpr]);
    // Pixel edges: pixel i covers [i − ½, i + ½].
    this.ctx.strokeRect(this.ox + (r.x0 - 0.5) * this.zoom, this.oy + (r.y0 - 0.5) * this.zoom, (r.x1 - r.x0) * this.zoom, (r.y1 - r.y0) * this.zoom);
    this.ctx.setLineDash([]);
  }

  drawScaleBar() {
    const { ctx, canvas, meta } = this;
    const dpr = this.ui();
    const perPx = meta.unit === 'nm' ? meta.pixel_size : 1;
    const target = (canvas.width * 0.18) / this.zoom * perPx;
    const { length, label } = scaleBarLength(target, meta.unit);
    const w = (length / perPx) * this.zoom;
    const x = canvas.width - w - 24 * dpr, y = canvas.height - 24 * dpr;
    ctx.fillStyle = 'rgba(0,0,0,0.55)';
    ctx.fillRect(x - 8 * dpr, y - 22 * dpr, w + 16 * dpr, 34 * dpr);
    ctx.fillStyle = '#fff';
    ctx.fillRect(x, y, w, 5 * dpr);
    ctx.font = `${13 * dpr}px system-ui, sans-serif`;
    ctx.textAlign = 'center';
    ctx.fillText(label, x + w / 2, y - 6 * dpr);
  }

  /** Canvas px per CSS px for text and lines: the screen's ratio, or a figure's own. */
  ui() { return this.uiScale ?? (window.devicePixelRatio || 1); }

  toPNG() {
    return new Promise((res) => this.canvas.toBlob(res, 'image/png'));
  }

  /** The whole image (not the screen's view) at `scale` output px per image pixel, with what is
   * drawn over it, its scale bar and colour bar, and `caption` (lines, wrapped) in a strip
   * below: `png` (all of it), `image` (the image part) and the wrapped `lines` for an SVG. */
  async figure(scale, caption) {
    if (!this.bitmap) throw new Error('no image to export');
    const W = this.meta.width * scale, H = this.meta.height * scale;
    if (W * H > 16384 * 16384 / 4) throw new Error(`a ${W} × ${H} px figure is too large; choose a smaller scale`);
    const saved = { canvas: this.canvas, ctx: this.ctx, ox: this.ox, oy: this.oy, zoom: this.zoom, compare: this.compare };
    const img = new OffscreenCanvas(W, H);
    // Pixel i covers [i − ½, i + ½]: its left edge at canvas 0.
    Object.assign(this, { canvas: img, ctx: img.getContext('2d'), zoom: scale, ox: scale / 2, oy: scale / 2, uiScale: Math.max(1, W / 640) });
    if (this.compare) this.compare = { ...this.compare };
    try { this.draw(); } finally { Object.assign(this, saved); this.uiScale = undefined; }
    const ui = Math.max(1, W / 640), size = 12 * ui, lineH = 1.4 * size;
    const font = `${size}px system-ui, sans-serif`;
    // The caption wrapped to the figure's width.
    const measure = new OffscreenCanvas(1, 1).getContext('2d');
    measure.font = font;
    const lines = caption.flatMap((t) => {
      const words = t.split(' '), wrapped = [];
      let line = '';
      for (const w of words) {
        const next = line ? `${line} ${w}` : w;
        if (line && measure.measureText(next).width > W - size) { wrapped.push(line); line = w; } else line = next;
      }
      return [...wrapped, line];
    });
    const out = new OffscreenCanvas(W, H + Math.ceil(lines.length * lineH + size));
    const ctx = out.getContext('2d');
    ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, out.width, out.height);
    ctx.drawImage(img, 0, 0);
    ctx.fillStyle = '#111'; ctx.font = font; ctx.textAlign = 'left';
    lines.forEach((t, i) => ctx.fillText(t, 0.5 * size, H + (i + 1) * lineH));
    return {
      png: await out.convertToBlob({ type: 'image/png' }), image: await img.convertToBlob({ type: 'image/png' }),
      width: W, height: out.height, imageHeight: H, lines, size, lineH,
    };
  }
}
