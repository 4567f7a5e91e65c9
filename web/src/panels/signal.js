// The Signal section: which signal and frame of the dataset is shown, and the one path every
// change of either takes (`select` → the engine → `show`), so each result panel hears of it once
// through the store's 'image' event. Also: aligning a series' frames, with its drift plot.
import { fmt } from '../views/plots.js';
import { plot } from '../views/charts.js';

export class SignalPanel {
  constructor(app) {
    this.app = app;
    this.shown = { signal: 0, frame: 0 };
    const { $ } = app;
    $('signal').onchange = () => this.select(+$('signal').value, 0);
    $('frame').oninput = () => this.select(this.shown.signal, +$('frame').value);
    $('align').onclick = () => this.align();
  }

  /** A dataset was opened: its signals, and its first image already selected by the engine. */
  async opened(signals, image) {
    this.shown = { signal: 0, frame: 0 };
    this.app.store.emit('dataset');
    this.list(signals);
    this.app.$('signal-box').hidden = signals.length < 2 && signals[0].frames < 2;
    await this.show(image);
  }

  /** A session was restored: its signals and the image it showed (`shown`), results kept. */
  async restored(signals, image, shown) {
    this.shown = shown;
    this.app.store.emit('dataset');
    this.list(signals);
    this.app.$('signal-box').hidden = signals.length < 2 && signals[0].frames < 2;
    await this.show(image);
  }

  /** The signal list changed (something was derived); show signal `index` if given. */
  async update(signals, index = null) {
    this.list(signals);
    if (index === null) return;
    this.app.$('signal-box').hidden = false;
    await this.select(index, 0);
  }

  list(signals) {
    this.app.store.signalsChanged(signals);
    this.app.$('signal').replaceChildren(...signals.map((s, k) => new Option(
      `${k}: ${s.title || '(untitled)'} · ${s.width}×${s.height}${s.frames > 1 ? '×' + s.frames : ''} ${s.dtype}`, k)));
    this.app.$('signal').value = this.shown.signal;
  }

  /** Show frame `frame` of signal `signal`. */
  select(signal, frame) {
    return this.app.actions.run('Selecting…', async () => {
      const image = await this.app.bridge.call('select', { signal, frame });
      this.shown = { signal, frame };
      this.app.$('signal').value = signal;
      await this.show(image);
    });
  }

  async show(image) {
    const { $, store } = this.app;
    const s = store.state.signals[this.shown.signal];
    store.imageShown(image);
    $('frame-row').hidden = s.frames < 2;
    $('align-row').hidden = s.frames < 2;
    $('frame').max = s.frames - 1;
    $('frame').value = this.shown.frame;
    $('frame-label').textContent = `${this.shown.frame + 1} / ${s.frames}`;
    await this.app.display.refresh();
  }

  align() {
    const { $, bridge, actions, store } = this.app;
    return actions.run('Aligning the frames…', async () => {
      const nonrigid = $('nonrigid').checked;
      const r = await bridge.call('register', { signal: this.shown.signal, nonrigid });
      const max = Math.max(...Array.from(r.dx, (x, k) => Math.hypot(x, r.dy[k])));
      store.set({ registration: { frames: r.dx.length, maxDrift: max, signal: r.index, nonrigid, maxField: Math.max(...r.field) } });
      this.drawDrift(r);
      await this.update(r.signals, r.index);
    }, 'Align');
  }

  /** Drift per frame: dx and dy (px) against frame number. */
  drawDrift({ dx, dy }) {
    const c = this.app.$('drift');
    c.hidden = false;
    const pts = (v) => Array.from(v, (d, k) => [k + 1, d]);
    plot(c, {
      title: 'drift per frame', x: { label: 'frame', min: 1, max: dx.length, integer: true }, y: { label: 'drift (px)' },
      series: [{ name: 'dx', type: 'line', symbol: true, color: '#ff6b6b', data: pts(dx) }, { name: 'dy', type: 'line', symbol: true, color: '#4fb3ff', data: pts(dy) }],
    });
    const reg = this.app.store.state.registration;
    this.app.$('drift-label').textContent = `drift per frame: dx (red), dy (blue); ${dx.length} frames, largest ${fmt(reg.maxDrift)} px from the mean`
      + (reg.nonrigid ? `; scan-distortion fields up to ${fmt(reg.maxField)} px RMS` : '');
  }
}
