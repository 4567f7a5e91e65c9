// The engine worker: loads the threaded wasm build when the page is cross-origin isolated (and
// SharedArrayBuffer exists), the single-threaded build otherwise; owns the Session and the
// WebGPU adapter. Messages: {id, op, args} in; {id, result} or {id, error, kind} out. Every op
// is one call into the engine (crates/atomlens-wasm/src/bind.rs); the ones that stream post
// progress and partial results between calls.
const params = new URL(import.meta.url).searchParams;
const want = params.get('engine') || 'auto';
let pkg, session, engine;
// This worker's GPU: {kernels: {nlm, tomo, fit}, soft} once `gpu_init` has answered (`gpuReady`);
// reason when none.
let gpu = { kernels: {}, reason: 'probing' };
let gpuReady;

async function load(kind) {
  const m = await import(`../../pkg/${kind}/atomlens_wasm.js`);
  await m.default();
  if (kind === 'threads') await m.initThreadPool(Math.max(1, navigator.hardwareConcurrency || 2));
  return m;
}

async function init() {
  const canThread = self.crossOriginIsolated && typeof SharedArrayBuffer !== 'undefined';
  engine = want === 'single' || !canThread ? 'single' : 'threads';
  let note = canThread ? '' : 'page is not cross-origin isolated: single-threaded engine';
  try {
    pkg = await load(engine);
  } catch (e) {
    if (engine !== 'threads') throw e;
    note = `threaded engine failed (${e.message}); using the single-threaded one`;
    engine = 'single';
    pkg = await load(engine);
  }
  session = new pkg.Session();
  const info = pkg.engine_info();
  postMessage({ type: 'ready', engine, threads: info.threads, version: info.version, note, defaults: pkg.defaults(),
    isolated: self.crossOriginIsolated });
  gpuReady = pkg.gpu_init()
    .then((g) => {
      gpu = { kernels: g.kernels, soft: g.device_type === 'Cpu', reason: '' };
      postMessage({ type: 'gpu', adapter: g });
    })
    .catch((e) => {
      gpu = { kernels: {}, reason: String(e.message || e) };
      postMessage({ type: 'gpu', adapter: null, reason: gpu.reason });
    });
}

// `fraction` (0–1) where the work can say how far it is: the page's bar shows it.
const progress = (id, text, fraction) => postMessage({ type: 'progress', id, text, fraction });

// Whether `kernel` runs on the GPU under the page's compute setting (`auto`: a hardware
// adapter whose self-check passed; `gpu`: any adapter that passed; `cpu`: never), or why not.
async function onGpu(kernel, compute) {
  if (compute === 'cpu') return { use: false, why: '' };
  await gpuReady;
  const verdict = gpu.kernels[kernel];
  if (verdict !== 'ok') return { use: false, why: verdict || gpu.reason || 'no GPU' };
  if (compute !== 'gpu' && gpu.soft) return { use: false, why: 'the adapter is a software one (slower than the CPU path); set compute to GPU to use it' };
  return { use: true };
}

// Say which ran: the page's header shows it per operation.
const ran = (what, device, t0, note = '') =>
  postMessage({ type: 'ran', what, device, seconds: (performance.now() - t0) / 1000, note });
const bytes = (buffers) => buffers.map((b) => new Uint8Array(b));
const opened = (signals) => ({ ...signals, image: session.select(0, 0) });

const ops = {
  group: (a) => pkg.group_files(a.names),
  demo: (a) => opened(session.load_demo(a.kind || 'particle')),
  open: (a, id) => {
    progress(id, `decoding ${a.primary}`);
    const signals = session.load_files(a.primary, a.names, bytes(a.buffers));
    progress(id, 'preparing the view');
    return opened(signals);
  },
  addFiles: (a, id) => {
    progress(id, `decoding ${a.primary}`);
    return session.add_files(a.primary, a.names, bytes(a.buffers));
  },
  openSeries: (a, id) => {
    progress(id, `decoding ${a.primaries.length} images as one series`);
    return opened(session.load_series(a.primaries, a.counts, a.names, bytes(a.buffers)));
  },
  select: (a) => session.select(a.signal, a.frame),
  saveSession: () => session.save_session(),
  sessionNeeds: (a) => pkg.session_needs(a.json),
  restoreSession: (a, id) => {
    progress(id, `replaying the session on ${a.names.length} file(s)`);
    return session.restore_session(a.json, a.names, bytes(a.buffers));
  },
  columnTable: () => session.column_table(),
  report: (a, id) => {
    progress(id, 'writing the report');
    return session.report(a.title, a.generated, a.failures || []);
  },
  gpaResult: () => session.gpa_result(),
  particlesResult: () => session.particles_result(),
  compareResult: () => session.compare_result(),
  calibrate: (a) => session.set_calibration(a.signal, a.size),
  view: (a) => session.view(a.plo ?? 0, a.phi ?? 100, a.lo ?? NaN, a.hi ?? NaN, a.cmap),
  spectrum: (a) => session.spectrum(a.cmap),
  renderSignal: (a) => session.render_signal(a.signal, a.frame, a.lo, a.hi, a.cmap),
  value: (a) => session.value_at(a.x, a.y),
  exportTiff: () => session.export_tiff(),
  register: (a, id) => {
    progress(id, a.nonrigid ? 'aligning the frames and their scan distortions' : 'aligning the frames');
    return session.register_frames(a.signal, !!a.nonrigid);
  },
  denoise: async (a, id) => {
    const t0 = performance.now();
    const name = a.method.method.replaceAll('_', ' ');
    let why = '';
    if (a.method.method === 'non_local_means') {
      const g = await onGpu('nlm', a.compute);
      why = g.why;
      if (g.use) {
        progress(id, `cleaning up on the GPU (${name})`);
        try {
          const r = session.denoised(a.method, await pkg.gpu_denoise(session.gpu_image(), a.method));
          ran(name, 'GPU', t0);
          return r;
        } catch (e) {
          if (e.kind !== 'gpu' && e.kind !== 'no_gpu') throw e;
          why = `the GPU failed: ${e.message}`;
        }
      }
    }
    if (a.method.method === 'noise2void') {
      // Trained here, in steps, so the page shows how far it is (cancel = restart the worker).
      const { steps } = session.n2v_begin(a.method);
      progress(id, `noise2void: training 0 / ${steps} steps`);
      for (let done = 0; done < steps;) {
        const s = session.n2v_step(10);
        done = s.done;
        progress(id, `noise2void: training ${done} / ${steps} steps, loss ${s.loss.toFixed(3)}`, done / steps);
      }
      progress(id, 'noise2void: denoising the image');
      const r = session.n2v_finish();
      ran(name, 'CPU', t0, why);
      return r;
    }
    progress(id, `cleaning up (${a.method.method})`);
    const r = session.denoise(a.method);
    ran(name, 'CPU', t0, why);
    return r;
  },
  // Positions first (posted as a partial result the page draws at once), then the fits.
  findColumns: async (a, id) => {
    const t0 = performance.now();
    progress(id, 'finding columns');
    const seeds = session.find_seeds(a.params);
    postMessage({ type: 'partial', id, data: seeds });
    const what = `columns ${seeds.x.length.toLocaleString('en').replaceAll(',', ' ')}`;
    const g = await onGpu('fit', a.compute);
    let why = g.why;
    if (g.use) {
      progress(id, `fitting ${seeds.x.length} columns on the GPU`);
      try {
        const r = session.fitted(await pkg.gpu_fit(session.gpu_fit_job()));
        ran(what, 'GPU', t0);
        return r;
      } catch (e) {
        if (e.kind !== 'gpu' && e.kind !== 'no_gpu') throw e;
        why = `the GPU failed: ${e.message}`;
      }
    }
    progress(id, `fitting ${seeds.x.length} columns`);
    const r = session.fit_found();
    ran(what, 'CPU', t0, why);
    return r;
  },
  refit: (a, id) => {
    progress(id, `refitting ${a.xs.length} columns`);
    return session.refit(a.xs, a.ys);
  },
  columnsCsv: () => session.columns_csv(),
  columnsJson: (a) => session.columns_json(a.source),
  columnResidual: (a) => session.column_residual(a.i, a.half),
  columnStrain: (a) => session.column_strain(a.xs, a.ys, a.reference ?? null),
  gpa: (a, id) => {
    progress(id, 'geometric phase analysis');
    return session.gpa(a.params);
  },
  gpaMap: (a) => session.gpa_map(a.name, a.limit),
  gpaValues: (a) => session.gpa_values(a.name),
  gpaTiff: (a) => session.gpa_tiff(a.name),
  gpaSelfTest: (a, id) => {
    progress(id, 'GPA self-test on synthetic strain fields');
    return pkg.gpa_self_test();
  },
  analyseParticles: (a, id) => {
    progress(id, 'columns, particles, cross-sections, counts, ordering');
    return session.analyse_particles(a.params);
  },
  particleModel: (a) => session.particle_model(a.step),
  particleExport: (a) => session.particle_export(a.what, a.source),
  compare: (a, id) => {
    progress(id, 'analysing both images, registering, matching columns');
    return session.compare_signals(a.before, a.after, a.params);
  },
  compareExport: (a) => session.compare_export(a.what, a.before || '', a.after || ''),
  // One image of a batch in its own session, so the shown image stays: a summary row.
  batchOne: (a, id) => {
    progress(id, `batch: ${a.primary}`);
    const s = new pkg.Session();
    try {
      s.load_files(a.primary, a.names, bytes(a.buffers));
      s.select(0, 0);
      return s.batch_row(a.primary, a.recipe);
    } finally { s.free(); }
  },
  batchCsv: (a) => pkg.batch_csv(a.rows),
  parseLibrary: (a) => pkg.parse_library(a.text),
  tomoDemo: (a, id) => {
    progress(id, 'projecting the phantom');
    return session.tomo_demo(a);
  },
  // On the GPU when it may (every slice of a slab at once, a live slice every few iterations);
  // on the CPU in steps of slices, so progress and the latest slice reach the page. What the GPU
  // did not finish (it failed, or was lost) the CPU does, and the header says why.
  reconstruct: async (a, id) => {
    const t0 = performance.now();
    const begun = session.tomo_begin(a.signal, Float64Array.from(a.angles), a.method, a.thickness || 0, a.prep || {});
    const what = `${a.method.method.toUpperCase()} ${begun.nx}×${begun.ny}×${begun.nz}`;
    let done = 0, device = 'CPU';
    const g = await onGpu('tomo', a.compute);
    let why = g.why;
    if (g.use) {
      const job = await pkg.gpu_reconstruct(session.tomo_take(), 'gray', (text, preview) => {
        progress(id, text);
        if (preview) postMessage({ type: 'partial', id, data: preview });
      });
      const error = job.error;
      done = session.tomo_put(job);
      device = error ? (done > 0 ? 'GPU + CPU' : 'CPU') : 'GPU';
      if (error) why = `the GPU failed after ${done} of ${begun.ny} slices: ${error}`;
    }
    const chunk = Math.max(1, Math.ceil(begun.ny / 32));
    while (done < begun.ny) {
      done = session.tomo_step(chunk);
      progress(id, `reconstructing: slice ${done} / ${begun.ny}`, done / begun.ny);
      if (done < begun.ny) postMessage({ type: 'partial', id, data: session.tomo_preview('gray') });
    }
    ran(what, device, t0, why);
    return { ...begun, ...session.tomo_volume(), device };
  },
  gpuDestroy: () => pkg.gpu_destroy(),
  tomoSlice: (a) => session.tomo_slice(a.plane, a.index, a.lo, a.hi, a.cmap, a.threshold ?? NaN),
  tomoProjection: (a) => session.tomo_projection(a.angle, a.cmap),
  tomoMrc: () => session.tomo_mrc(),
  memory: () => pkg.memory_bytes(),
};

// Typed arrays in a result (top level or one level down) are transferred, not copied.
const transferables = (r) => {
  if (ArrayBuffer.isView(r)) return [r.buffer];
  if (!r || typeof r !== 'object') return [];
  return Object.values(r).filter((v) => ArrayBuffer.isView(v)).map((v) => v.buffer);
};

const started = init().catch((e) => postMessage({ type: 'init-error', error: `could not start the engine: ${e.message || e}` }));

onmessage = async ({ data: { id, op, args } }) => {
  await started;
  try {
    if (!ops[op]) throw new Error(`unknown operation ${op}`);
    const result = await ops[op](args || {}, id);
    postMessage({ id, result }, transferables(result));
  } catch (e) {
    postMessage({ id, error: String(e?.message ?? e), kind: e?.kind ?? 'internal' });
  }
};
