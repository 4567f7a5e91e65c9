// The one worker that owns the wasm module, behind a promise API with progress and cancel.
// Cancel terminates the worker (wasm cannot be interrupted) and starts a fresh one; callers
// re-open what they had (the Open panel keeps the files). Errors carry the engine's `kind`.
// A worker that has not said 'ready' within STARTUP_MS is started again (a module script of
// the thread pool can go unanswered under load, and the page would wait forever); after
// RETRIES the single-threaded engine is used, and the page says why.

const STARTUP_MS = 20000;
const RETRIES = 2;

export class Bridge {
  constructor({ onReady, onGpu, onRan, onProgress, onCrash, onStall, engine, startupMs = STARTUP_MS }) {
    this.handlers = { onReady, onGpu, onRan, onProgress, onCrash, onStall };
    // The page's compute setting ('auto' | 'cpu' | 'gpu'), sent with every call.
    this.compute = 'auto';
    this.startupMs = startupMs;
    this.engine = engine; // 'auto' | 'single' | 'threads'
    this.nextId = 1;
    this.pending = new Map();
    this.start();
  }

  start(attempt = 0) {
    const url = new URL('./worker.js', import.meta.url);
    url.searchParams.set('engine', attempt > RETRIES ? 'single' : this.engine || 'auto');
    this.worker = new Worker(url, { type: 'module', name: 'atomlens-engine' });
    // Callers already waiting keep waiting on the same promise across a start-up retry.
    if (!this.ready || this.settled) {
      this.settled = false;
      this.ready = new Promise((resolve, reject) => { this.resolveReady = resolve; this.rejectReady = reject; });
    }
    this.worker.onmessage = (e) => this.receive(e.data);
    this.worker.onerror = (e) => this.crash(e.message || 'the analysis worker failed to start');
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => this.stalled(attempt), this.startupMs);
  }

  stalled(attempt) {
    this.worker.terminate();
    const said = `the engine did not start within ${this.startupMs / 1000} s`;
    if (attempt > RETRIES) {
      // The single-threaded engine did not start either: fail the waiting callers, not hang them.
      this.settled = true;
      this.rejectReady(new Error(`${said}, single-threaded either; reload the page`));
      this.handlers.onStall?.(`${said} (single-threaded either); reload the page`);
      return;
    }
    const next = attempt === RETRIES ? 'the single-threaded engine is tried instead' : `starting it again (try ${attempt + 2} of ${RETRIES + 1})`;
    this.handlers.onStall?.(`${said}; ${next}`);
    this.start(attempt + 1);
  }

  receive(msg) {
    if (msg.type === 'ready' || msg.type === 'init-error') { clearTimeout(this.watchdog); this.settled = true; }
    if (msg.type === 'ready') { this.resolveReady(msg); this.handlers.onReady?.(msg); return; }
    if (msg.type === 'init-error') { this.rejectReady(new Error(msg.error)); this.handlers.onCrash?.(msg.error); return; }
    if (msg.type === 'gpu') { this.handlers.onGpu?.(msg); return; }
    if (msg.type === 'ran') { this.handlers.onRan?.(msg); return; }
    if (msg.type === 'progress') { this.handlers.onProgress?.(msg); return; }
    if (msg.type === 'partial') { this.pending.get(msg.id)?.onPartial?.(msg.data); return; }
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (msg.error !== undefined) p.reject(Object.assign(new Error(msg.error), { kind: msg.kind })); else p.resolve(msg.result);
  }

  crash(message) {
    // A panic or trap kills the module: fail what was pending, then restart the worker.
    for (const p of this.pending.values()) p.reject(new Error(`the engine stopped: ${message}`));
    this.pending.clear();
    this.worker.terminate();
    this.handlers.onCrash?.(message);
    this.start();
  }

  /** Run `op` in the worker; `onPartial` receives results streamed before the final one. */
  async call(op, args = {}, transfer = [], onPartial = null) {
    await this.ready;
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject, op, onPartial });
      this.worker.postMessage({ id, op, args: { compute: this.compute, ...args } }, transfer);
    });
  }

  get busy() { return this.pending.size > 0; }

  cancel() {
    for (const p of this.pending.values()) { const e = new Error('cancelled'); e.cancelled = true; p.reject(e); }
    this.pending.clear();
    this.worker.terminate();
    this.start();
  }
}
