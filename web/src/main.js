// The page's boot: the store, the engine, the views and the panels, wired once. All science runs
// in Rust in the worker (engine/); panels/ build their forms from the engine's defaults and draw
// its results; views/ are the image, the plots and the spectrum. See store.js for the state.
import { Bridge } from './engine/bridge.js';
import { createStore } from './store.js';
import { createActions } from './actions.js';
import { Viewer } from './views/viewer.js';
import { SpectrumView } from './views/spectrum.js';
import { OpenPanel } from './panels/open.js';
import { SignalPanel } from './panels/signal.js';
import { DisplayPanel } from './panels/display.js';
import { CleanupPanel } from './panels/cleanup.js';
import { ColumnsPanel } from './panels/columns.js';
import { StrainPanel } from './panels/strain.js';
import { ParticlesPanel } from './panels/particles.js';
import { ComparePanel } from './panels/compare.js';
import { BatchPanel } from './panels/batch.js';
import { TomoPanel } from './panels/tomo.js';
import { SessionPanel } from './panels/session.js';
import { Tabs } from './panels/tabs.js';

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

const store = createStore({
  ready: false, engine: null, threads: 0, gpu: null, isolated: self.crossOriginIsolated, version: null,
  dataset: null, signals: [], image: null, view: null, spectrum: null, errors: [], busy: false,
});
const actions = createActions({ store, $ });

const app = { $, store, actions, baseName: () => (store.state.dataset || 'image').replace(/\.[^.]+$/, '').replace(/[^\w.-]+/g, '_') };
app.bridge = new Bridge({
  engine: params.get('engine') || 'auto',
  // `?startup_ms=` shortens the start-up watchdog (the e2e suite's stalled-engine test).
  ...(Number(params.get('startup_ms')) > 0 ? { startupMs: Number(params.get('startup_ms')) } : {}),
  onReady(r) {
    store.set({ ready: true, engine: r.engine, threads: r.threads, version: r.version });
    const label = r.engine === 'threads' ? `wasm threads · ${r.threads} threads` : 'wasm single-threaded · 1 thread';
    $('engine').textContent = `engine: ${label}`;
    $('engine').title = r.note || 'cross-origin isolated: rayon runs on a pool of Web Workers';
    $('engine').classList.add('ok');
    for (const p of [app.display, app.cleanup, app.columns, app.strain, app.particles, app.batch, app.tomo]) p.setDefaults(r.defaults);
  },
  onGpu(g) {
    const a = g.adapter;
    const failed = a ? Object.entries(a.kernels).filter(([, v]) => v !== 'ok') : [];
    store.set({ gpu: a ? a.label : 'none', gpuKernels: a ? a.kernels : {} });
    $('gpu').textContent = !a ? 'GPU: none (CPU path)'
      : a.device_type === 'Cpu' ? `GPU: ${a.label}, auto → CPU` : `GPU: ${a.label}`;
    $('gpu').title = !a ? g.reason
      : [`${a.label}${a.driver ? `, ${a.driver}` : ''}`,
        ...Object.entries(a.kernels).map(([k, v]) => `${k}: ${v === 'ok' ? 'checked against the CPU' : v}`)].join('\n');
    $('gpu').classList.toggle('ok', !!a && !failed.length);
  },
  onRan(r) {
    // "non local means: GPU · 0.31 s"; the reason the GPU was not used, when it was not.
    $('ran').hidden = false;
    $('ran').textContent = `${r.what}: ${r.device} · ${r.seconds.toFixed(2)} s`;
    $('ran').title = r.note || `ran on the ${r.device}`;
    $('ran').classList.toggle('ok', r.device === 'GPU');
    store.set({ ran: r });
  },
  onProgress(p) { actions.progress(p.text, p.fraction); },
  onCrash(msg) { actions.showError(`The engine stopped (${msg}); it was restarted and your files are still listed.`); },
  onStall(msg) { actions.showError(`${msg[0].toUpperCase()}${msg.slice(1)}.`); },
});

// Where GPU kernels run: `?compute=` at load (the e2e suite), else the user's last choice in the
// header's menu (kept in this browser), else auto.
const computes = ['auto', 'cpu', 'gpu'];
const saved = (() => { try { return localStorage.getItem('atomlens-compute'); } catch { return null; } })();
const compute = [params.get('compute'), saved].find((c) => computes.includes(c)) || 'auto';
$('compute').value = compute;
app.bridge.compute = compute;
$('compute').addEventListener('change', () => {
  app.bridge.compute = $('compute').value;
  try { localStorage.setItem('atomlens-compute', $('compute').value); } catch { /* private mode */ }
});

app.viewer = new Viewer($('view'), (p) => app.display.hover(p), (c) => app.columns.click(c));
app.spectrum = new SpectrumView({ canvas: $('fft'), readout: $('fft-readout'), unitLabel: $('fft-unit'), bridge: app.bridge, store });
// Order matters for the 'image' event: the panels that clear the overlay before the one that
// redraws the comparison on the images of its before frame.
app.open = new OpenPanel(app);
app.signals = new SignalPanel(app);
app.display = new DisplayPanel(app);
app.cleanup = new CleanupPanel(app);
app.columns = new ColumnsPanel(app);
app.strain = new StrainPanel(app);
app.particles = new ParticlesPanel(app);
app.compare = new ComparePanel(app);
app.batch = new BatchPanel(app);
app.tomo = new TomoPanel(app);
app.session = new SessionPanel(app);
app.tabs = new Tabs(app);

$('cancel').onclick = async () => {
  app.bridge.cancel();
  actions.showError('Cancelled. The engine was restarted; reopening the last image.');
  await app.bridge.ready;
  await app.open.reopen();
};

// Keep a page error visible rather than silent.
window.addEventListener('unhandledrejection', (e) => { if (!e.reason?.cancelled) actions.showError(String(e.reason?.message || e.reason)); });

// Offline use and isolation headers where the host sends none (see sw.js).
if ('serviceWorker' in navigator && params.get('sw') !== 'off') {
  navigator.serviceWorker.register(new URL('../sw.js', import.meta.url), { scope: new URL('../', import.meta.url).pathname })
    .then(() => store.set({ serviceWorker: 'registered' }))
    .catch((e) => store.set({ serviceWorker: `failed: ${e.message}` }));
  // First visit to a host without isolation headers: once the worker controls the page, reload
  // once so the headers it adds take effect (threads). Not when the user has opened files, and
  // not when embedded (the parent page decides isolation there).
  navigator.serviceWorker.addEventListener('controllerchange', () => {
    if (self.crossOriginIsolated || sessionStorage.getItem('atomlens-coi-reload') || app.open.files().length) return;
    if (window.top !== window) return;
    sessionStorage.setItem('atomlens-coi-reload', '1');
    location.reload();
  });
}

// For the e2e suite: the panels and the engine (the state is window.__atomlens, read-only).
window.__atomlensTest = {
  addFiles: (f) => app.open.addFiles(f), columns: () => app.columns, strain: () => app.strain,
  // The colour bar drawn on the image now: { label, lo, hi } or null.
  colourKey: () => { const k = app.viewer.key(); return k ? { label: k.label, lo: k.lo, hi: k.hi } : null; },
  // Show the tab holding the element `selector` names (as a user clicks its tab first).
  reveal: (selector) => {
    let el = null;
    try { el = document.querySelector(selector.replace(/:has-text\([^)]*\)/g, '')); } catch { /* not CSS */ }
    if (el) app.tabs.reveal(el);
  },
  forgetFiles: () => { app.open.datasets = app.open.datasets.filter((d) => !d.files); app.open.current = null; app.open.render(); },
  spectrumPoint: (fx, fy) => app.spectrum.clientPoint(fx, fy), spectrumZoom: () => app.spectrum.view.zoom, bridge: app.bridge,
  drawn: () => ({ overlay: !!app.viewer.overlay?.x?.length, paths: app.viewer.paths?.length || 0, split: !!app.viewer.compare }),
};
app.open.openDemo('particle').then(() => app.session.offer());
