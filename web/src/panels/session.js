// Sessions: the engine's journal (every operation with its parameters and manual edits, the
// files by name, size and SHA-256, the result tables; crates/atomlens-session/src/session/
// journal.rs) saved as a `*.atomlens.json`, opened again with its files, and autosaved to
// IndexedDB after every action with the files it read, so a reload or a crashed tab loses
// nothing. Restoring replays the journal in the engine (the same code `atomlens replay` runs)
// and each panel draws its result again.
import { download } from '../actions.js';

const DB = 'atomlens', STORE = 'session', KEY = 'last';

function idb() {
  return new Promise((resolve, reject) => {
    const req = indexedDB.open(DB, 1);
    req.onupgradeneeded = () => req.result.createObjectStore(STORE);
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
    req.onblocked = () => reject(new Error('the store is held by another tab'));
  });
}

async function idbDo(mode, fn) {
  const db = await idb();
  try {
    return await new Promise((resolve, reject) => {
      const tx = db.transaction(STORE, mode);
      const req = fn(tx.objectStore(STORE));
      tx.oncomplete = () => resolve(req?.result);
      tx.onerror = tx.onabort = () => reject(tx.error || new Error('transaction aborted'));
    });
  } finally { db.close(); }
}

const when = (t) => new Date(t).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });

export class SessionPanel {
  constructor(app) {
    const { $ } = app;
    Object.assign(this, { app, $, bridge: app.bridge, store: app.store });
    this.autosave = !new URLSearchParams(location.search).has('noautosave');
    this.offered = null; // the autosaved session waiting for Restore / Discard
    this.saving = false;
    this.dirty = false;
    $('session-save').onclick = () => this.save();
    $('session-report').onclick = () => this.report();
    // What failed on the image shown goes into its report.
    this.errorsAtImage = 0;
    app.store.on('image', () => { this.errorsAtImage = app.store.state.errors.length; });
    $('session-open').onchange = (e) => { this.openFiles([...e.target.files]); e.target.value = ''; };
    $('session-restore').onclick = () => this.restoreOffered();
    $('session-discard').onclick = () => this.discard();
    // After every action: autosave (debounced by the engine being idle).
    app.store.on('idle', () => this.scheduleAutosave());
  }

  status(text) { this.$('session-status').textContent = text; }

  /** The session as a file. */
  save() {
    return this.app.actions.run('Saving the session…', async () => {
      const json = await this.bridge.call('saveSession');
      download(new Blob([json], { type: 'application/json' }), `${this.app.baseName()}.atomlens.json`);
      this.store.set({ sessionSaved: JSON.parse(json).steps.length });
    }, 'Save session');
  }

  /** The shown image's report (HTML, self-contained). */
  report() {
    return this.app.actions.run('Writing the report…', async () => {
      const failures = this.store.state.errors.slice(this.errorsAtImage).map((e) => {
        const at = e.indexOf(': ');
        return at > 0 ? [e.slice(0, at), e.slice(at + 2)] : ['', e];
      });
      const html = await this.bridge.call('report', { title: this.store.state.dataset || 'image', generated: new Date().toUTCString(), failures });
      download(new Blob([html], { type: 'text/html' }), `${this.app.baseName()}_report.html`);
      this.store.set({ reported: html.length });
    }, 'Report');
  }

  /** Every File the page holds (listed datasets), with `extra` first. */
  candidates(extra = []) {
    const listed = this.app.open.datasets.flatMap((d) => d.files || []);
    return [...extra, ...listed];
  }

  /** The picked files: one session file and, optionally, the files it needs. */
  async openFiles(files) {
    const json = files.find((f) => /\.json$/i.test(f.name));
    if (!json) return this.app.actions.showError('Open session: pick a *.atomlens.json (and, with it, the files it was made from).');
    const data = files.filter((f) => f !== json);
    await this.restore(await json.text(), this.candidates(data), json.name);
  }

  /** Replay `text` on the files among `files` it needs; every panel draws its result. */
  restore(text, files, label) {
    return this.app.actions.run(`Restoring ${label}…`, async () => {
      const needs = await this.bridge.call('sessionNeeds', { json: text });
      // By name, else by size (the engine checks every file's SHA-256 and finds renamed ones).
      const chosen = [];
      const missing = [];
      for (const f of needs.files) {
        const hit = files.find((c) => c.name === f.name) || files.find((c) => c.size === f.size && !chosen.includes(c));
        if (hit) { if (!chosen.includes(hit)) chosen.push(hit); } else missing.push(`${f.name} (${(f.size / 1e6).toFixed(1)} MB)`);
      }
      if (missing.length) {
        const e = new Error(`this session needs ${missing.join(', ')}: pick them together with the session file, or drop them first`);
        e.kind = 'missing_files';
        throw e;
      }
      const buffers = await Promise.all(chosen.map((f) => f.arrayBuffer()));
      const r = await this.bridge.call('restoreSession', { json: text, names: chosen.map((f) => f.name), buffers }, buffers);
      await this.show(r, chosen);
      this.status(`Restored ${label}: ${needs.steps} steps on ${chosen.length} file(s) (${needs.software}); ${r.check}.`);
      this.store.set({ sessionRestored: { steps: needs.steps, files: chosen.length, same: r.same, check: r.check } });
      if (!r.same) this.app.actions.showError(`Restored, but not every number came out as saved: ${r.check}`, 'replay_differs');
    }, 'Open session');
  }

  /** A restored session drawn: its files listed, its image, each panel's result. */
  async show(r, files) {
    const { app, bridge } = this;
    const open = app.open;
    for (const f of files) {
      if (!open.datasets.some((d) => d.files?.includes(f))) open.datasets.push({ primary: f.name, names: [f.name], files: [f] });
    }
    open.current = open.datasets.findIndex((d) => d.files?.includes(files[0]));
    if (open.current < 0) open.current = null;
    this.store.set({ dataset: files[0]?.name ?? 'demo' });
    open.render();
    if (!r.shown) { await app.signals.update(r.signals); return; }
    await app.signals.restored(r.signals, r.image, r.shown);
    if (r.has.columns) app.columns.show(await bridge.call('columnTable'), NaN);
    if (r.has.gpa) await app.strain.show(await bridge.call('gpaResult'), NaN);
    if (r.has.particles) app.particles.show(await bridge.call('particlesResult'));
    if (r.has.compared) app.compare.show(await bridge.call('compareResult'));
  }

  scheduleAutosave() {
    if (!this.autosave || this.offered) return;
    if (this.saving) { this.dirty = true; return; }
    this.saving = true;
    setTimeout(() => this.autosaveNow().finally(() => {
      this.saving = false;
      if (this.dirty) { this.dirty = false; this.scheduleAutosave(); }
    }), 300);
  }

  /** The journal and the files it needs into IndexedDB; a full store or a broken one is said,
   * and work goes on. */
  async autosaveNow() {
    let json, needs;
    try {
      json = await this.bridge.call('saveSession');
      needs = await this.bridge.call('sessionNeeds', { json });
    } catch { return; } // no engine or no image: nothing to save
    // Nothing done yet but the start-up demo: keep the last real session.
    if (!needs.files.length && needs.steps <= 2) return;
    const files = needs.files.map((f) => ({ ...f, blob: this.candidates().find((c) => c.name === f.name && c.size === f.size) }));
    if (files.some((f) => !f.blob)) return; // a file no longer listed (the engine restarted): keep the previous save
    try {
      await idbDo('readwrite', (s) => s.put({ json, savedAt: Date.now(), files: files.map((f) => ({ name: f.name, blob: f.blob })) }, KEY));
      this.store.set({ autosaved: { steps: needs.steps, files: files.length } });
      this.status(`Autosaved ${when(Date.now())}: ${needs.steps} steps, ${files.length} file(s).`);
    } catch (e) {
      const full = e?.name === 'QuotaExceededError';
      this.status(full
        ? 'Autosave is off: the browser\'s storage is full. Your work goes on; use Save session to keep it.'
        : `Autosave failed (${e?.message || e}); your work goes on; use Save session to keep it.`);
      this.store.set({ autosaved: { error: full ? 'quota' : String(e?.message || e) } });
    }
  }

  /** At start-up: offer the last autosaved session, or say why it could not be read. */
  async offer() {
    if (!this.autosave || !('indexedDB' in self)) return;
    let saved;
    try {
      saved = await idbDo('readonly', (s) => s.get(KEY));
    } catch (e) {
      try { await new Promise((res) => { const q = indexedDB.deleteDatabase(DB); q.onsuccess = q.onerror = q.onblocked = res; }); } catch { /* nothing more to do */ }
      this.status(`The autosaved session could not be read (${e?.message || e}); starting clean. Your files are untouched.`);
      return;
    }
    if (!saved?.json) return;
    this.offered = saved;
    const names = saved.files.map((f) => f.name).join(', ') || 'the demo';
    this.$('session-offer-text').textContent = `Your last session (${names}; ${when(saved.savedAt)}) can be restored.`;
    this.$('session-offer').hidden = false;
    this.store.set({ sessionOffered: { files: saved.files.length, savedAt: saved.savedAt } });
  }

  async restoreOffered() {
    const saved = this.offered;
    if (!saved) return;
    this.$('session-offer').hidden = true;
    const files = saved.files.map((f) => (f.blob instanceof File ? f.blob : new File([f.blob], f.name)));
    try {
      await this.restore(saved.json, this.candidates(files), 'the last session');
    } finally { this.offered = null; }
  }

  async discard() {
    this.offered = null;
    this.$('session-offer').hidden = true;
    try { await idbDo('readwrite', (s) => s.delete(KEY)); } catch { /* a broken store is recreated on the next save */ }
    this.status('The last session was discarded.');
  }
}
