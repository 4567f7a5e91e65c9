// Every histogram and profile of the page, drawn by ECharts (vendored into pkg/vendor/ by the
// build): axes with units, hover values, wheel / drag zoom on x (box zoom and reset in the
// toolbox), and export as PNG at a chosen scale or as SVG. One spec format for all of them:
//   { title, x: { label, values?, min?, max?, integer? (frames, counts) }, y: { label, log? }, series: [{ name, type: 'bar' |
//     'line', data: [y] or [[x, y]], color, colors?: [per bar], area? }],
//     marks: [{ x, color, label }] }
import * as echarts from '../../pkg/vendor/echarts.esm.min.mjs';
import { fmt } from './plots.js';

const TEXT = '#8a939c', LINE = '#2d3238';
const charts = new WeakMap(); // element → { chart, spec }

/** A number as the plots print it. */
const num = (v) => (typeof v === 'number' ? fmt(v) : String(v));

function option(spec, { exporting = false } = {}) {
  const fg = exporting ? '#222' : TEXT;
  const grid = exporting ? '#ccc' : LINE;
  const axis = (a, type) => ({
    type, name: a.label || '', nameLocation: 'middle', nameGap: type === 'value' && a === spec.y ? 42 : 22,
    nameTextStyle: { color: fg, fontSize: 10 }, min: a.min, max: a.max,
    // Bars start at zero (a bar's length is its value); profiles and x axes fit their data.
    scale: type === 'value' && !(a === spec.y && spec.series.some((s) => (s.type || 'bar') === 'bar')),
    axisLabel: { color: fg, fontSize: 9, formatter: (v) => num(v), hideOverlap: true, showMinLabel: a.min == null || a.integer, showMaxLabel: a.max == null || a.integer },
    ...(a.integer ? { minInterval: 1 } : {}),
    axisLine: { lineStyle: { color: grid } }, splitLine: { show: a === spec.y, lineStyle: { color: grid, opacity: 0.5 } },
    ...(a.values ? { data: a.values.map((v) => num(v)) } : {}),
  });
  const xType = spec.x.values ? 'category' : 'value';
  // Series of one name (a mixture's components) share one legend entry and stay out of the tooltip.
  const keyed = [...new Set(spec.series.map((s) => s.name))];
  return {
    animation: false,
    backgroundColor: exporting ? '#fff' : 'transparent',
    title: exporting ? { text: spec.title, left: 'center', textStyle: { fontSize: 12, color: fg } } : undefined,
    grid: { left: 50, right: 10, top: (exporting ? 30 : 22) + (keyed.length > 1 && spec.marks?.length ? 14 : 0), bottom: 34 },
    legend: keyed.length > 1 ? {
      data: keyed,
      top: exporting ? 14 : 0, left: 40, right: 60, itemWidth: 10, itemHeight: 6, textStyle: { color: fg, fontSize: 9 },
      selected: Object.fromEntries(spec.series.filter((s) => s.hidden).map((s) => [s.name, false])),
    } : undefined,
    tooltip: exporting ? undefined : {
      trigger: 'axis', confine: true, axisPointer: { type: xType === 'category' ? 'shadow' : 'line' },
      backgroundColor: '#1d2024', borderColor: LINE, textStyle: { color: '#dfe3e8', fontSize: 11 },
      valueFormatter: (v) => num(v),
    },
    toolbox: exporting ? undefined : {
      right: 0, top: -4, itemSize: 10, iconStyle: { borderColor: TEXT },
      feature: { dataZoom: { yAxisIndex: 'none', title: { zoom: 'box zoom', back: 'back' } }, restore: { title: 'reset' } },
    },
    dataZoom: exporting ? undefined : [{ type: 'inside', xAxisIndex: 0, filterMode: 'none' }],
    xAxis: axis(spec.x, xType),
    yAxis: { ...axis(spec.y, spec.y.log ? 'log' : 'value'), ...(spec.y.log ? { logBase: 10, min: 1 } : {}) },
    series: spec.series.map((s) => ({
      name: s.name, type: s.type || 'bar', tooltip: { show: spec.series.filter((t) => t.name === s.name).length === 1 }, data: s.colors ? s.data.map((v, i) => ({ value: v, itemStyle: { color: s.colors[i] } })) : s.data,
      itemStyle: { color: s.color }, lineStyle: { color: s.color, width: 1.3 }, showSymbol: !!s.symbol, barCategoryGap: '8%', stack: s.stack,
      areaStyle: s.area ? { opacity: 0.35 } : undefined, large: s.data.length > 2000, connectNulls: false,
      step: s.step ? 'middle' : undefined, z: s.type === 'line' && !s.step ? 3 : 2,
      markLine: spec.marks?.length && s === spec.series[0] ? {
        symbol: 'none', silent: true, animation: false,
        label: { color: fg, fontSize: 9, formatter: (p) => p.name },
        data: spec.marks.map((m) => ({ xAxis: m.x, name: m.label || '', lineStyle: { color: m.color || '#ffb347', type: 'solid', width: 1.5 } })),
      } : undefined,
    })),
  };
}

/** `values` (finite ones) in `n` equal bins: `{ centres, counts, width, lo, hi, total }`. */
export function binned(values, n) {
  const v = Array.from(values).filter(Number.isFinite);
  let lo = Infinity, hi = -Infinity;
  for (const x of v) { if (x < lo) lo = x; if (x > hi) hi = x; }
  if (!v.length) { lo = 0; hi = 1; }
  const width = (hi - lo) / n || 1;
  const counts = new Array(n).fill(0);
  for (const x of v) counts[Math.min(n - 1, Math.floor((x - lo) / width))]++;
  return { centres: counts.map((_, i) => lo + (i + 0.5) * width), counts, width, lo, hi, total: v.length };
}

/** A mixture component (weight `w`, mean `mu`, sd `sigma`) as counts per bin of `b`: [[x, y]]. */
export function component(b, w, mu, sigma) {
  return Array.from({ length: 161 }, (_, i) => {
    const x = b.lo + ((b.hi - b.lo) * i) / 160;
    return [x, (b.total * w * b.width * Math.exp(-0.5 * ((x - mu) / sigma) ** 2)) / (sigma * Math.sqrt(2 * Math.PI))];
  });
}

/** Draw `spec` into `el` (a block element), replacing what was there. */
export function plot(el, spec) {
  let entry = charts.get(el);
  if (!entry) {
    const chart = echarts.init(el, null, { renderer: 'canvas' });
    new ResizeObserver(() => chart.resize()).observe(el);
    entry = { chart };
    charts.set(el, entry);
    el.addEventListener('contextmenu', (e) => { e.preventDefault(); exportMenu(el, e); });
    el.title = 'wheel: zoom · drag: pan · right-click: export PNG / SVG';
  }
  entry.spec = spec;
  entry.chart.setOption(option(spec), true);
  el.dataset.plotted = spec.title || 'plot';
}

/** Forget what `el` showed. */
export function clearPlot(el) {
  const entry = charts.get(el);
  if (entry) { entry.chart.clear(); entry.spec = null; }
  delete el.dataset.plotted;
}

/** The spec shown in `el` (tests, exports). */
export function specOf(el) { return charts.get(el)?.spec ?? null; }

/** `el`'s plot as an SVG document (white background, title, axes), `width` × `height` px. */
export function svgOf(el, width = 640, height = 400) {
  const spec = specOf(el);
  if (!spec) return null;
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width, height });
  chart.setOption(option(spec, { exporting: true }));
  const svg = chart.renderToSVGString();
  chart.dispose();
  return svg;
}

/** `el`'s plot as a PNG blob at `scale` × (640 × 400) px, through its SVG. */
export async function pngOf(el, scale = 2) {
  const svg = svgOf(el);
  if (!svg) return null;
  const url = URL.createObjectURL(new Blob([svg], { type: 'image/svg+xml' }));
  try {
    const img = new Image();
    await new Promise((res, rej) => { img.onload = res; img.onerror = () => rej(new Error('the figure could not be rendered')); img.src = url; });
    const c = Object.assign(document.createElement('canvas'), { width: 640 * scale, height: 400 * scale });
    c.getContext('2d').drawImage(img, 0, 0, c.width, c.height);
    return await new Promise((res) => c.toBlob(res, 'image/png'));
  } finally { URL.revokeObjectURL(url); }
}

function save(blob, name) {
  const a = Object.assign(document.createElement('a'), { href: URL.createObjectURL(blob), download: name });
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

/** Right-click on a plot: PNG (1×, 2×, 4×) or SVG. */
function exportMenu(el, e) {
  document.querySelector('.plot-menu')?.remove();
  const spec = specOf(el);
  if (!spec) return;
  const base = (spec.title || 'plot').replace(/[^\w.-]+/g, '_');
  const menu = Object.assign(document.createElement('div'), { className: 'plot-menu' });
  menu.style.left = `${e.clientX}px`; menu.style.top = `${e.clientY}px`;
  const item = (label, fn) => {
    const b = Object.assign(document.createElement('button'), { textContent: label });
    b.onclick = async () => { menu.remove(); await fn(); };
    menu.append(b);
  };
  for (const s of [1, 2, 4]) item(`PNG ${640 * s}×${400 * s}`, async () => save(await pngOf(el, s), `${base}.png`));
  item('SVG', () => save(new Blob([svgOf(el)], { type: 'image/svg+xml' }), `${base}.svg`));
  item('CSV (the plotted values)', () => save(new Blob([csvOf(spec)], { type: 'text/csv' }), `${base}.csv`));
  document.body.append(menu);
  setTimeout(() => document.addEventListener('click', () => menu.remove(), { once: true }), 0);
}

/** The plotted values as CSV: x, then one column per series. */
export function csvOf(spec) {
  const xs = spec.x.values || spec.series[0].data.map((p) => p[0]);
  const col = (s, i) => { const d = s.data[i]; return Array.isArray(d) ? d[1] : d; };
  const head = [spec.x.label || 'x', ...spec.series.map((s) => s.name || spec.y.label || 'y')].map((h) => `"${h}"`).join(',');
  return [head, ...xs.map((x, i) => [x, ...spec.series.map((s) => col(s, i))].join(','))].join('\n') + '\n';
}
