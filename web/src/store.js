// The page's state, in one place. Panels read `store.state` and change it only through
// `store.set`; `window.__atomlens` is a frozen snapshot of it for the e2e suite and the console.
// What was measured on an image (PER_IMAGE) is dropped in one step when another image is shown,
// and panels listening to 'image' clear what they drew: no result outlives its image.
const PER_IMAGE = ['columns', 'columnsPreview', 'columnStrain', 'selectedColumn', 'gpa', 'particles'];

export function createStore(initial) {
  const state = { ...initial };
  const listeners = {};
  const store = {
    state,
    /** Merge `patch` into the state. */
    set(patch) { Object.assign(state, patch); },
    /** Call `fn(data)` on `event` ('image', 'signals'). */
    on(event, fn) { (listeners[event] ||= []).push(fn); },
    emit(event, data) { for (const fn of listeners[event] || []) fn(data); },
    /** Another image is shown: every per-image result goes, then the panels hear of it. */
    imageShown(image) {
      for (const k of PER_IMAGE) state[k] = null;
      state.image = image;
      store.emit('image', image);
    },
    /** The dataset's signal list changed (a file opened, a signal derived). */
    signalsChanged(signals) {
      state.signals = signals;
      store.emit('signals', signals);
    },
  };
  Object.defineProperty(window, '__atomlens', { get: () => Object.freeze({ ...state }), configurable: true });
  return store;
}
