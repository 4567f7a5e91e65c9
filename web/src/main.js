// The page: wires the drop zone, panels and plots to the engine worker. All science runs in
// Rust in the worker; this file only moves files, numbers and pixels around.
import { Bridge } from './bridge.js';
import { Viewer } from './viewer.js';
import { drawHistogram, drawSpectrum, spectrumAt, spectrumLayout, fmt } from './plots.js';
import { ColumnsPanel } from './columns.js';
import { StrainPanel } from './strain.js';
import { TomoPanel } from './tomo.js';
import { ParticlesPanel } from './particles.js';
import { BatchPanel } from './batch.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

// State visible to the e2e suite (and handy in the console).
const state = window.__atomlens = {
  ready: false, engine: null, threads: 0, gpu: null, isolated: self.crossOriginIsolated,
  dataset: null, signals: [], image: null, view: null, errors: [], spectrum: null, busy: false,
};

let datasets = [];      // [{primary, names, files: File[]|null}]
let current = null;     // {datasetIndex, signal, frame}
let spectrumBitmap = null;

const viewer = new Viewer($('view'), hover, (c) => columns?.click(c));
let columns = null; // the Columns panel, once the engine is ready
let strain = null;  // the Strain panel

// ---- banner, progress ------------------------------------------------------------------
let bannerShownAt = 0;
function showError(msg) {
  state.errors.push(msg);
  $('banner-text').textContent = msg;
  $('banner').hidden = false;
  bannerShownAt = performance.now();
}
$('banner-close').onclick = () => { $('banner').hidden = true; };

let progressDepth = 0;
function busy(text) {
  // A new action retires an error the user has had time to read (a step chained straight after
  // the error, like reopening after a cancel, keeps it; the message stays in state.errors).
  if (performance.now() - bannerShownAt > 1500) $('banner').hidden = true;
  progressDepth++;
  state.busy = true;
  $('progress-text').textContent = text;
  $('progress').hidden = false;
  return () => { if (--progressDepth <= 0) { progressDepth = 0; state.busy = false; $('progress').hidden = true; } };
}

// ---- engine ----------------------------------------------------------------------------
const bridge = new Bridge({
  engine: params.get('engine') || 'auto',
  onReady(r) {
    Object.assign(state, { ready: true, engine: r.engine, threads: r.threads, version: r.version });
    const label = r.engine === 'threads' ? `wasm threads · ${r.threads} threads` : 'wasm single-threaded · 1 thread';
    $('engine').textContent = `engine: ${label}`;
    $('engine').title = r.note || 'cross-origin isolated: rayon runs on a pool of Web Workers';
    $('engine').classList.add('ok');
    if (!$('cmap').options.length) {
      for (const c of r.colormaps) $('cmap').add(new Option(c, c));
    }
    if (!columns) columns = new ColumnsPanel({ bridge, viewer, state, busy, showError, download, $ });
    columns.setDefaults(r.columnDefaults);
    if (!strain) {
      strain = new StrainPanel({ bridge, viewer, state, busy, showError, download, baseName, $,
        redrawSpectrum: () => drawSpectrum($('fft'), spectrumBitmap, state.spectrum || {}, null, strain.gmarks()) });
    }
    strain.setDefaults(r.gpaDefaults);
  },
  onGpu(g) {
    state.gpu = g.adapter ? g.adapter.label : 'none';
    $('gpu').textContent = g.adapter ? `GPU: ${g.adapter.label}` : 'GPU: none (CPU path)';
    $('gpu').title = g.adapter ? JSON.stringify(g.adapter) : g.reason;
    $('gpu').classList.toggle('ok', !!g.adapter);
  },
  onProgress(p) { $('progress-text').textContent = p.text; },
  onCrash(msg) { showError(`The engine stopped (${msg}); it was restarted and your files are still listed.`); },
});

// Particles, counting and the identical-location comparison.
const particles = new ParticlesPanel({
  bridge, viewer, state, busy, showError, download, baseName, $, current: () => current,
  columnParams: () => columns?.params() ?? null,
  async onSignals(signals, shown, split) {
    state.signals = signals;
    renderSignals(signals);
    $('signal-box').hidden = false;
    $('signal').value = shown;
    if (split) {
      // The registered after image, with the before image left of the divider.
      state.split = split;
      $('dn-compare').disabled = false;
      $('dn-compare').checked = true;
    }
    await selectSignal(shown, 0);
  },
});

new BatchPanel({ bridge, state, showError, download, $, params: () => particles.params(),
  files: () => datasets.filter((d) => d.files && !d.series) });

$('cancel').onclick = async () => {
  bridge.cancel();
  showError('Cancelled. The engine was restarted; reopening the last image.');
  await bridge.ready;
  if (current) await openDataset(current.datasetIndex, { quiet: true });
  else await loadDemo();
};

// ---- loading ---------------------------------------------------------------------------
async function loadDemo() {
  const done = busy('Rendering the demo particle…');
  try {
    const r = await bridge.call('demo');
    datasets = datasets.filter((d) => d.files);
    datasets.unshift({ primary: 'Demo: Pt nanoparticle', names: [], files: null });
    renderDatasets();
    await showDataset(0, r);
  } catch (e) { if (!e.cancelled) showError(`Demo failed: ${e.message}`); } finally { done(); }
}

/** A synthetic particle demo (`ordered`, `pair`) with known truth, in place of the dataset. */
async function loadParticleDemo(kind) {
  const done = busy('Rendering the demo…');
  try {
    const r = await bridge.call('particleDemo', { kind });
    datasets = datasets.filter((d) => d.files);
    datasets.unshift({ primary: kind === 'pair' ? 'Demo: before/after pair' : 'Demo: ordered PtCo particle', names: [], files: null, demo: kind });
    renderDatasets();
    await showDataset(0, r);
  } catch (e) { if (!e.cancelled) showError(`Demo failed: ${e.message}`); } finally { done(); }
}

async function addFiles(fileList) {
  const files = [...fileList].filter((f) => !f.name.startsWith('.'));
  if (!files.length) return;
  const names = files.map((f) => f.name);
  let groups;
  try { groups = await bridge.call('group', { names }); } catch (e) { return showError(e.message); }
  const first = datasets.length;
  for (const [primary, members] of groups) {
    datasets.push({ primary, names: members, files: members.map((n) => files[names.indexOf(n)]) });
  }
  renderDatasets();
  await openDataset(first);
}

async function openDataset(i, { quiet } = {}) {
  const d = datasets[i];
  if (!d) return;
  if (!d.files) return d.demo ? loadParticleDemo(d.demo) : loadDemo();
  const done = busy(`Reading ${d.primary}…`);
  try {
    const buffers = await Promise.all(d.files.map((f) => f.arrayBuffer()));
    const r = d.series
      ? await bridge.call('openSeries', { primaries: d.series.primaries, counts: d.series.counts, names: d.names, buffers }, buffers)
      : await bridge.call('open', { primary: d.primary, names: d.names, buffers }, buffers);
    d.failed = false;
    await showDataset(i, r);
  } catch (e) {
    if (e.cancelled) return;
    d.failed = true;
    renderDatasets();
    if (!quiet) showError(e.message);
  } finally { done(); }
}

async function showDataset(i, { signals, image }) {
  state.dataset = datasets[i].primary;
  state.signals = signals;
  current = { datasetIndex: i, signal: 0, frame: 0 };
  $('banner').hidden = true;
  renderDatasets();
  renderSignals(signals);
  $('signal-box').hidden = signals.length < 2 && signals[0].frames < 2;
  await showImage(image);
}

/** The signal picker; derived signals (aligned averages, clean-ups) are appended to it. */
function renderSignals(signals) {
  particles.setSignals(signals, current?.signal ?? 0);
  $('signal').replaceChildren(...signals.map((s, k) => new Option(`${k}: ${s.title || '(untitled)'} · ${s.width}×${s.height}${s.frames > 1 ? '×' + s.frames : ''} ${s.dtype}`, k)));
}

async function selectSignal(signal, frame) {
  const done = busy('Selecting…');
  try {
    const image = await bridge.call('select', { signal, frame });
    Object.assign(current, { signal, frame });
    await showImage(image);
  } catch (e) { if (!e.cancelled) showError(e.message); } finally { done(); }
}

async function showImage(image) {
  state.image = image;
  columns?.clear(); // columns and strain maps belong to the image they were measured on
  strain?.reset();
  particles.onImage(current.signal);
  const s = state.signals[current.signal];
  $('frame-row').hidden = s.frames < 2;
  $('align-row').hidden = s.frames < 2;
  $('frame').max = s.frames - 1;
  $('frame').value = current.frame;
  $('frame-label').textContent = `${current.frame + 1} / ${s.frames}`;
  renderMetadata(s, image);
  await Promise.all([refreshView(), refreshSpectrum()]);
}

// ---- display ---------------------------------------------------------------------------
async function refreshView() {
  if (!state.image) return;
  const plo = +$('plo').value, phi = +$('phi').value;
  if (!(plo >= 0 && phi <= 100 && plo < phi)) return showError('Display limits: need 0 ≤ low % < high % ≤ 100.');
  const r = await bridge.call('view', { plo, phi, cmap: $('cmap').value || 'gray' });
  const { width, height, pixel_size, unit } = state.image;
  const bitmap = await createImageBitmap(new ImageData(new Uint8ClampedArray(r.rgba.buffer), width, height));
  viewer.setImage(bitmap, { width, height, pixel_size, unit });
  drawHistogram($('hist'), r);
  $('limits').textContent = `shown ${fmt(r.lo)} … ${fmt(r.hi)}   (data ${fmt(r.min)} … ${fmt(r.max)})`;
  state.view = { lo: r.lo, hi: r.hi, min: r.min, max: r.max };
  if (viewer.compare || $('dn-compare').checked) await showCompare();
}

async function refreshSpectrum() {
  try {
    const sp = await bridge.call('spectrum', { cmap: 'inferno' });
    spectrumBitmap = await createImageBitmap(new ImageData(new Uint8ClampedArray(sp.rgba.buffer), sp.width, sp.height));
    state.spectrum = { width: sp.width, height: sp.height, step_x: sp.step_x, step_y: sp.step_y, unit: sp.unit };
    $('fft-unit').textContent = `(${sp.unit})`;
  } catch (e) {
    spectrumBitmap = null;
    state.spectrum = null;
    $('fft-readout').textContent = e.message;
  }
  drawSpectrum($('fft'), spectrumBitmap, state.spectrum || {}, null, strain?.gmarks() ?? []);
}

$('fft').addEventListener('pointermove', (e) => {
  const sp = state.spectrum;
  if (!sp || fftDrag) return;
  const c = $('fft'), r = c.getBoundingClientRect(), dpr = c.width / r.width;
  const f = spectrumAt(c, sp, (e.clientX - r.left) * dpr, (e.clientY - r.top) * dpr);
  if (!f) return;
  const g = Math.hypot(f.fx, f.fy);
  const d = g > 0 ? 1 / g : Infinity;
  const dText = sp.unit === '1/nm' ? (d < 1 ? `${(d * 10).toFixed(3)} Å` : `${d.toFixed(3)} nm`) : `${d.toFixed(2)} px`;
  $('fft-readout').textContent = `|g| = ${g.toFixed(3)} ${sp.unit}   d = ${dText}   angle ${(Math.atan2(f.fy, f.fx) * 180 / Math.PI).toFixed(1)}°`;
  drawSpectrum(c, spectrumBitmap, sp, f, strain?.gmarks() ?? []);
});
// GPA on the spectrum: click a Bragg spot for g1, shift-click for g2; drag a mask to move it,
// drag its rim to resize it (the maps follow live).
const fftPoint = (e) => {
  const c = $('fft'), r = c.getBoundingClientRect(), dpr = c.width / r.width;
  return state.spectrum && spectrumAt(c, state.spectrum, (e.clientX - r.left) * dpr, (e.clientY - r.top) * dpr);
};
let fftDrag = null; // {hit, moved} while a GPA mask is dragged
$('fft').addEventListener('pointerdown', (e) => {
  const f = fftPoint(e);
  const hit = f && strain?.hitMask(f);
  if (!hit) return;
  fftDrag = { hit, moved: false };
  $('fft').setPointerCapture?.(e.pointerId);
});
$('fft').addEventListener('pointermove', (e) => {
  if (!fftDrag) return;
  const f = fftPoint(e);
  if (!f) return;
  fftDrag.moved = true;
  strain.dragMask(fftDrag.hit, f);
});
let suppressClick = false;
$('fft').addEventListener('pointerup', () => { if (fftDrag) { suppressClick = fftDrag.moved; fftDrag = null; } });
$('fft').addEventListener('click', (e) => {
  if (suppressClick) { suppressClick = false; return; } // the end of a drag, not a pick
  const f = fftPoint(e);
  if (f && strain && (f.fx || f.fy)) strain.pickG(f, e.shiftKey);
});

let hoverSeq = 0;
async function hover(p) {
  if (!p || !state.image) { $('readout').textContent = ''; return; }
  const seq = ++hoverSeq;
  const v = await bridge.call('value', p).catch(() => NaN);
  if (seq !== hoverSeq) return;
  const { pixel_size, unit } = state.image;
  const pos = unit === 'nm' ? `  (${(p.x * pixel_size).toFixed(3)}, ${(p.y * pixel_size).toFixed(3)}) nm` : '';
  $('readout').textContent = `x ${p.x}  y ${p.y}${pos}  value ${fmt(v)}`;
}

function renderMetadata(s, image) {
  const m = s.metadata || {};
  const cal = s.unit === 'nm' ? `${+s.pixel_size.toPrecision(6)} nm (${+(s.pixel_size * 10).toPrecision(6)} Å)` : 'uncalibrated (px)';
  const rows = [
    ['File', state.dataset], ['Format', m.format], ['Title', s.title],
    ['Size', `${s.width} × ${s.height} px${s.frames > 1 ? ` × ${s.frames} frames` : ''}`], ['Type', s.dtype],
    ['Pixel size', cal],
    ['Field of view', s.unit === 'nm' ? `${(s.width * s.pixel_size).toFixed(3)} × ${(s.height * s.pixel_size).toFixed(3)} nm` : null],
    ['Voltage', m.voltage_kv && `${m.voltage_kv} kV`], ['Microscope', m.microscope], ['Detector', m.detector], ['Mode', m.mode],
    ['Magnification', m.magnification && `${m.magnification}×`], ['Dwell time', m.dwell_time_us && `${m.dwell_time_us} µs`],
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

// Several dropped images as the frames of one series (to align and average).
$('as-series').onclick = () => {
  const parts = datasets.filter((d) => d.files && !d.series);
  datasets.push({
    primary: `series of ${parts.length} images`,
    names: parts.flatMap((d) => d.names),
    files: parts.flatMap((d) => d.files),
    series: { primaries: parts.map((d) => d.primary), counts: parts.map((d) => d.names.length) },
  });
  renderDatasets();
  openDataset(datasets.length - 1);
};

function renderDatasets() {
  $('as-series').hidden = datasets.filter((d) => d.files && !d.series).length < 2;
  $('datasets').replaceChildren(...datasets.map((d, i) => {
    const li = document.createElement('li');
    li.textContent = d.names.length > 1 ? `${d.primary} (+${d.names.length - 1})` : d.primary;
    li.title = d.names.join(', ') || 'built-in synthetic image';
    li.classList.toggle('active', current?.datasetIndex === i);
    li.classList.toggle('failed', !!d.failed);
    li.onclick = () => openDataset(i);
    return li;
  }));
}

// ---- controls --------------------------------------------------------------------------
for (const id of ['plo', 'phi', 'cmap']) $(id).addEventListener('change', () => refreshView().catch((e) => showError(e.message)));
$('signal').onchange = () => selectSignal(+$('signal').value, 0);
$('frame').oninput = () => selectSignal(current.signal, +$('frame').value);
$('demo').onclick = loadDemo;
$('align').onclick = async () => {
  const done = busy('Aligning the frames…');
  try {
    const nonrigid = $('nonrigid').checked;
    const r = await bridge.call('register', { signal: current.signal, nonrigid });
    state.signals = r.signals;
    const max = Math.max(...Array.from(r.dx, (x, k) => Math.hypot(x, r.dy[k])));
    state.registration = { frames: r.dx.length, maxDrift: max, signal: r.index, nonrigid, maxField: Math.max(...r.field) };
    renderSignals(r.signals);
    $('signal').value = r.index;
    drawDrift(r);
    await selectSignal(r.index, 0);
  } catch (e) { if (!e.cancelled) showError(`Align: ${e.message}`); } finally { done(); }
};

$('pa-demo-ordered').onclick = () => loadParticleDemo('ordered');
$('pa-demo-pair').onclick = () => loadParticleDemo('pair');

// Tomography: a phantom tilt series is appended as a signal and shown; the shown stack is
// reconstructed.
new TomoPanel({
  bridge, state, busy, showError, download, baseName, $, current: () => current, viewer,
  onSignals(signals) { state.signals = signals; renderSignals(signals); $('signal').value = current.signal; },
  async showFrame(signal, frame) {
    if (current.signal !== signal) { $('signal-box').hidden = false; $('signal').value = signal; }
    await selectSignal(signal, frame);
  },
  async onSeries(r) {
    state.signals = r.signals;
    renderSignals(r.signals);
    $('signal-box').hidden = false;
    $('signal').value = r.index;
    await selectSignal(r.index, 0);
  },
});

// Clean-up: one or two parameters per method (defaults as the CLI's).
const DENOISE = {
  wiener: [['radius', 'radius px', 2]], gaussian: [['sigma', 'σ px', 1]], median: [['radius', 'radius px', 1]],
  bandpass: [['small', 'small px', 1], ['large', 'large px', 20]], bragg: [['radius', 'radius ×|g|', 0.15]],
  background: [['sigma', 'σ px', 30]], non_local_means: [['patch', 'patch px', 2], ['search', 'search px', 2]],
  bm3d: [['search', 'search px', 8]], rolling_ball: [['radius', 'ball radius px', 20]],
};
function denoiseForm() {
  const p = DENOISE[$('dn-method').value];
  $('dn-lattice-row').hidden = !['non_local_means', 'bm3d'].includes($('dn-method').value);
  ['a', 'b'].forEach((k, i) => {
    $(`dn-${k}`).hidden = $(`dn-${k}-label`).hidden = !p[i];
    if (p[i]) { $(`dn-${k}-label`).textContent = p[i][1]; $(`dn-${k}`).value = p[i][2]; }
  });
}
$('dn-method').onchange = denoiseForm;
// Before/after: the signal the last clean-up started from, at the shown image's display limits.
/** The before/after split: `state.split` = {source: {signal, frame}, left, right} on the left of
 * the divider, the shown image on the right (set by a clean-up and by a comparison). */
async function showCompare() {
  const d = state.split;
  if (!$('dn-compare').checked || !d || !state.view) { viewer.compare = null; viewer.draw(); return; }
  const src = state.signals[d.source.signal];
  if (src.width !== state.image.width || src.height !== state.image.height) { viewer.compare = null; viewer.draw(); return; }
  const rgba = await bridge.call('renderSignal', { ...d.source, lo: state.view.lo, hi: state.view.hi, cmap: $('cmap').value || 'gray' });
  const bitmap = await createImageBitmap(new ImageData(new Uint8ClampedArray(rgba.buffer), src.width, src.height));
  viewer.compare = { bitmap, split: viewer.compare?.split ?? 0.5, left: d.left, right: d.right };
  state.compare = true;
  viewer.draw();
}
$('dn-compare').onchange = () => showCompare().catch((e) => showError(e.message));
denoiseForm();
$('dn-apply').onclick = async () => {
  const name = $('dn-method').value;
  const method = { method: name };
  DENOISE[name].forEach(([key], i) => { method[key] = +$(`dn-${'ab'[i]}`).value; });
  if (name === 'wiener') method.noise = null;
  if (name === 'non_local_means') method.h = null;
  if (name === 'bm3d' || name === 'non_local_means') Object.assign(method, { noise: 'auto', lattice: $('dn-lattice').checked });
  const done = busy('Cleaning up…');
  try {
    const r = await bridge.call('denoise', { method });
    state.signals = r.signals;
    state.denoised = { method: name, index: r.index, source: { signal: current.signal, frame: current.frame } };
    state.split = { source: state.denoised.source, left: 'before', right: 'shown' };
    $('dn-compare').disabled = false;
    renderSignals(r.signals);
    $('signal-box').hidden = false;
    $('signal').value = r.index;
    await selectSignal(r.index, 0);
  } catch (e) { if (!e.cancelled) showError(`Clean-up: ${e.message}`); } finally { done(); }
};

/** Drift per frame: dx and dy (px) against frame number. */
function drawDrift({ dx, dy }) {
  const c = $('drift');
  c.hidden = false;
  const dpr = window.devicePixelRatio || 1, r = c.getBoundingClientRect();
  c.width = Math.round(r.width * dpr); c.height = Math.round(r.height * dpr);
  const ctx = c.getContext('2d'), n = dx.length, pad = 24 * dpr;
  const lim = Math.max(0.5, ...Array.from(dx, Math.abs), ...Array.from(dy, Math.abs));
  const X = (k) => pad + (k / Math.max(1, n - 1)) * (c.width - pad - 6 * dpr), Y = (v) => c.height / 2 - (v / lim) * (c.height / 2 - 8 * dpr);
  ctx.clearRect(0, 0, c.width, c.height);
  ctx.strokeStyle = '#555'; ctx.beginPath(); ctx.moveTo(pad, Y(0)); ctx.lineTo(c.width, Y(0)); ctx.stroke();
  for (const [v, col] of [[dx, '#ff6b6b'], [dy, '#4fb3ff']]) {
    ctx.strokeStyle = col; ctx.lineWidth = 1.5 * dpr; ctx.beginPath();
    v.forEach((d, k) => (k ? ctx.lineTo(X(k), Y(d)) : ctx.moveTo(X(k), Y(d))));
    ctx.stroke();
  }
  ctx.fillStyle = '#8a939c'; ctx.font = `${10 * dpr}px system-ui, sans-serif`;
  ctx.fillText(`±${fmt(lim)} px`, 2, 10 * dpr);
  const reg = state.registration;
  $('drift-label').textContent = `drift per frame: dx (red), dy (blue); ${n} frames, largest ${fmt(reg.maxDrift)} px from the mean`
    + (reg.nonrigid ? `; scan-distortion fields up to ${fmt(reg.maxField)} px RMS` : '');
}
$('pick-files').onchange = (e) => { addFiles(e.target.files); e.target.value = ''; };
$('pick-folder').onchange = (e) => { addFiles(e.target.files); e.target.value = ''; };

$('export-tiff').onclick = async () => {
  try {
    const bytes = await bridge.call('exportTiff');
    download(new Blob([bytes], { type: 'image/tiff' }), `${baseName()}.tif`);
  } catch (e) { showError(e.message); }
};
$('export-png').onclick = async () => download(await viewer.toPNG(), `${baseName()}_view.png`);

function baseName() {
  return (state.dataset || 'image').replace(/\.[^.]+$/, '').replace(/[^\w.-]+/g, '_');
}

function download(blob, name) {
  const a = Object.assign(document.createElement('a'), { href: URL.createObjectURL(blob), download: name });
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

// Drag and drop (files and folders) anywhere on the page.
window.addEventListener('dragover', (e) => { e.preventDefault(); $('dropzone').hidden = false; });
window.addEventListener('dragleave', (e) => { if (!e.relatedTarget) $('dropzone').hidden = true; });
window.addEventListener('drop', async (e) => {
  e.preventDefault();
  $('dropzone').hidden = true;
  const items = [...(e.dataTransfer.items || [])].map((i) => i.webkitGetAsEntry?.()).filter(Boolean);
  const files = items.length ? (await Promise.all(items.map(entryFiles))).flat() : [...e.dataTransfer.files];
  addFiles(files);
});

async function entryFiles(entry) {
  if (entry.isFile) return [await new Promise((res, rej) => entry.file(res, rej))];
  const reader = entry.createReader();
  const out = [];
  for (;;) {
    const batch = await new Promise((res, rej) => reader.readEntries(res, rej));
    if (!batch.length) break;
    for (const e of batch) out.push(...(await entryFiles(e)));
  }
  return out;
}

// Keep a page error visible rather than silent.
window.addEventListener('unhandledrejection', (e) => { if (!e.reason?.cancelled) showError(String(e.reason?.message || e.reason)); });

// Offline use and isolation headers where the host sends none (see sw.js).
if ('serviceWorker' in navigator && params.get('sw') !== 'off') {
  navigator.serviceWorker.register(new URL('../sw.js', import.meta.url), { scope: new URL('../', import.meta.url).pathname })
    .then(() => { state.serviceWorker = 'registered'; })
    .catch((e) => { state.serviceWorker = `failed: ${e.message}`; });
  // First visit to a host without isolation headers: once the worker controls the page, reload
  // once so the headers it adds take effect (threads). Not when the user has opened files, and
  // not when embedded (the parent page decides isolation there).
  navigator.serviceWorker.addEventListener('controllerchange', () => {
    if (self.crossOriginIsolated || sessionStorage.getItem('atomlens-coi-reload') || datasets.some((d) => d.files)) return;
    if (window.top !== window) return;
    sessionStorage.setItem('atomlens-coi-reload', '1');
    location.reload();
  });
}

/** Client coordinates of spectrum frequency (fx, fy) (display units, fy up), for the e2e suite. */
function spectrumPoint(fx, fy) {
  const c = $('fft'), sp = state.spectrum, r = c.getBoundingClientRect(), dpr = c.width / r.width;
  const { s, x0, y0 } = spectrumLayout(c, sp);
  const cx = x0 + Math.floor(sp.width / 2) * s + s / 2, cy = y0 + Math.floor(sp.height / 2) * s + s / 2;
  return { x: r.left + (cx + (fx / sp.step_x) * s) / dpr, y: r.top + (cy - (fy / sp.step_y) * s) / dpr };
}

window.__atomlensTest = { addFiles, openDataset, loadDemo, columns: () => columns, strain: () => strain, spectrumPoint, bridge };
loadDemo();
