// Number and length formats, and the power spectrum with its reciprocal-space axes (the
// histograms and profiles are charts.js).

/** Size `canvas`'s backing store to its CSS box × devicePixelRatio; returns the ratio. */
export function fitCanvas(canvas) {
  const dpr = window.devicePixelRatio || 1;
  const r = canvas.getBoundingClientRect();
  canvas.width = Math.max(1, Math.round(r.width * dpr));
  canvas.height = Math.max(1, Math.round(r.height * dpr));
  return dpr;
}

export function fmt(v) {
  if (!Number.isFinite(v)) return String(v);
  const a = Math.abs(v);
  return a !== 0 && (a >= 1e5 || a < 1e-3) ? v.toExponential(2) : +v.toPrecision(4) + '';
}

/** A length given in nm, in the unit that reads best: pm, Å, nm or µm. */
export function fmtLength(nm) {
  const a = Math.abs(nm);
  if (a >= 1000) return `${+(nm / 1000).toPrecision(4)} µm`;
  if (a >= 1) return `${+nm.toPrecision(4)} nm`;
  if (a >= 0.1) return `${+(nm * 10).toPrecision(4)} Å`;
  return `${+(nm * 1000).toPrecision(4)} pm`;
}

/** Spectrum layout: the spectrum drawn square-fitted with a margin for axes. */
export function spectrumLayout(canvas, sp) {
  const W = canvas.width, H = canvas.height, m = 28 * (window.devicePixelRatio || 1);
  const s = Math.min((W - m) / sp.width, (H - m) / sp.height);
  return { s, x0: m + (W - m - sp.width * s) / 2, y0: (H - m - sp.height * s) / 2, m };
}

export function drawSpectrum(canvas, bitmap, sp, mark, gmarks = []) {
  const ctx = canvas.getContext('2d');
  const dpr = window.devicePixelRatio || 1;
  const r = canvas.getBoundingClientRect();
  canvas.width = Math.round(r.width * dpr); canvas.height = Math.round(r.height * dpr);
  ctx.fillStyle = '#000'; ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (!bitmap) return;
  const { s, x0, y0 } = spectrumLayout(canvas, sp);
  ctx.imageSmoothingEnabled = s < 1;
  ctx.drawImage(bitmap, x0, y0, sp.width * s, sp.height * s);
  // Axes: frequency in sp.unit, zero at the centre pixel (width/2, height/2).
  const fmaxX = (sp.width / 2) * sp.step_x;
  const tick = niceStep(fmaxX / 2);
  ctx.strokeStyle = '#8a939c'; ctx.fillStyle = '#8a939c'; ctx.lineWidth = dpr;
  ctx.font = `${10 * dpr}px system-ui, sans-serif`; ctx.textAlign = 'center';
  const cx = x0 + Math.floor(sp.width / 2) * s + s / 2, cy = y0 + Math.floor(sp.height / 2) * s + s / 2;
  const yAxis = y0 + sp.height * s + 4 * dpr;
  for (let f = -Math.floor(fmaxX / tick) * tick; f <= fmaxX + 1e-12; f += tick) {
    const x = cx + (f / sp.step_x) * s;
    ctx.beginPath(); ctx.moveTo(x, yAxis); ctx.lineTo(x, yAxis + 4 * dpr); ctx.stroke();
    ctx.fillText(+f.toPrecision(3) + '', x, yAxis + 14 * dpr);
  }
  const fmaxY = (sp.height / 2) * sp.step_y;
  ctx.textAlign = 'right';
  for (let f = -Math.floor(fmaxY / tick) * tick; f <= fmaxY + 1e-12; f += tick) {
    const y = cy - (f / sp.step_y) * s;
    ctx.beginPath(); ctx.moveTo(x0 - 4 * dpr, y); ctx.lineTo(x0, y); ctx.stroke();
    ctx.fillText(+f.toPrecision(3) + '', x0 - 6 * dpr, y + 3 * dpr);
  }
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
}

function niceStep(target) {
  const k = 10 ** Math.floor(Math.log10(target));
  for (const n of [5, 2, 1]) if (n * k <= target) return n * k;
  return k;
}

/** Frequency (fx, fy) under a canvas point, in sp.unit; fy positive upwards. */
export function spectrumAt(canvas, sp, cx, cy) {
  const { s, x0, y0 } = spectrumLayout(canvas, sp);
  const i = Math.floor((cx - x0) / s), j = Math.floor((cy - y0) / s);
  if (i < 0 || j < 0 || i >= sp.width || j >= sp.height) return null;
  return { fx: (i - Math.floor(sp.width / 2)) * sp.step_x, fy: -(j - Math.floor(sp.height / 2)) * sp.step_y };
}
