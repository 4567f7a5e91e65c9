// The Open section: files from the picker, a folder or a drop (folders walked), grouped by the
// engine (a TIA .emi travels with its .ser), listed; a listed dataset opens on click; several
// images can open as one series; the demos. The files stay listed when the engine restarts.
export class OpenPanel {
  constructor(app) {
    this.app = app;
    const { $ } = app;
    this.datasets = []; // [{primary, names, files: File[] | null, demo?, series?, failed?}]
    this.current = null; // index of the dataset shown
    $('pick-files').onchange = (e) => { this.addFiles(e.target.files); e.target.value = ''; };
    $('pick-folder').onchange = (e) => { this.addFiles(e.target.files); e.target.value = ''; };
    $('demo').onclick = () => this.openDemo('particle');
    $('as-series').onclick = () => this.openAsSeries();
    window.addEventListener('dragover', (e) => { e.preventDefault(); $('dropzone').hidden = false; });
    window.addEventListener('dragleave', (e) => { if (!e.relatedTarget) $('dropzone').hidden = true; });
    window.addEventListener('drop', async (e) => {
      e.preventDefault();
      $('dropzone').hidden = true;
      const items = [...(e.dataTransfer.items || [])].map((i) => i.webkitGetAsEntry?.()).filter(Boolean);
      this.addFiles(items.length ? (await Promise.all(items.map(entryFiles))).flat() : [...e.dataTransfer.files]);
    });
  }

  /** The demo titled for the list: the engine's demo names with a label. */
  static DEMOS = { particle: 'Demo: Pt nanoparticle', ordered: 'Demo: ordered PtCo particle', pair: 'Demo: before/after pair' };

  /** Files that can be analysed one by one (for the batch). */
  files() { return this.datasets.filter((d) => d.files && !d.series); }

  async openDemo(kind) {
    this.datasets = this.datasets.filter((d) => d.files);
    this.datasets.unshift({ primary: OpenPanel.DEMOS[kind], names: [], files: null, demo: kind });
    this.render();
    await this.open(0);
  }

  async addFiles(fileList) {
    const files = [...fileList].filter((f) => !f.name.startsWith('.'));
    if (!files.length) return;
    const names = files.map((f) => f.name);
    let groups;
    try { groups = await this.app.bridge.call('group', { names }); } catch (e) { return this.app.actions.showError(e.message); }
    const first = this.datasets.length;
    for (const [primary, members] of groups) {
      this.datasets.push({ primary, names: members, files: members.map((n) => files[names.indexOf(n)]) });
    }
    this.render();
    await this.open(first);
  }

  /** Several listed images (first frame of each) as the frames of one series. */
  openAsSeries() {
    const parts = this.files();
    this.datasets.push({
      primary: `series of ${parts.length} images`,
      names: parts.flatMap((d) => d.names),
      files: parts.flatMap((d) => d.files),
      series: { primaries: parts.map((d) => d.primary), counts: parts.map((d) => d.names.length) },
    });
    this.render();
    this.open(this.datasets.length - 1);
  }

  /** Open dataset `i`; `quiet` keeps an error out of the banner (reopening after a cancel). */
  async open(i, { quiet } = {}) {
    const d = this.datasets[i];
    if (!d) return;
    const { bridge, actions } = this.app;
    const done = actions.busy(d.files ? `Reading ${d.primary}…` : 'Rendering the demo…');
    try {
      let r;
      if (!d.files) r = await bridge.call('demo', { kind: d.demo });
      else {
        const buffers = await Promise.all(d.files.map((f) => f.arrayBuffer()));
        r = d.series
          ? await bridge.call('openSeries', { primaries: d.series.primaries, counts: d.series.counts, names: d.names, buffers }, buffers)
          : await bridge.call('open', { primary: d.primary, names: d.names, buffers }, buffers);
      }
      d.failed = false;
      this.current = i;
      this.app.store.set({ dataset: d.primary });
      this.app.$('banner').hidden = true;
      this.render();
      await this.app.signals.opened(r.signals, r.image);
    } catch (e) {
      if (e.cancelled) return;
      d.failed = true;
      this.render();
      if (!quiet) actions.showError(d.files ? e.message : `Demo failed: ${e.message}`, e.kind);
    } finally { done(); }
  }

  /** After the engine restarted: the dataset that was shown, or the demo. */
  reopen() {
    return this.current !== null && this.datasets[this.current] ? this.open(this.current, { quiet: true }) : this.openDemo('particle');
  }

  render() {
    const $ = this.app.$;
    $('as-series').hidden = this.files().length < 2;
    $('datasets').replaceChildren(...this.datasets.map((d, i) => {
      const li = document.createElement('li');
      li.textContent = d.names.length > 1 ? `${d.primary} (+${d.names.length - 1})` : d.primary;
      li.title = d.names.join(', ') || 'built-in synthetic image';
      li.classList.toggle('active', this.current === i);
      li.classList.toggle('failed', !!d.failed);
      li.onclick = () => this.open(i);
      return li;
    }));
    // The compare pickers offer the other listed files.
    if (this.app.compare && this.app.store.state.signals) this.app.compare.pickers(this.app.store.state.signals);
  }
}

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
