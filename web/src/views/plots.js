// Number and length formats and canvas sizing (the histograms and profiles are charts.js, the
// power spectrum spectrum.js).

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
