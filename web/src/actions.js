// How every user action runs: the progress bar while it works (Cancel restarts the engine), its
// error in the banner, prefixed with what was being done, unless it was cancelled.
export function createActions({ store, $ }) {
  let bannerShownAt = 0;
  let depth = 0;

  /** Show `msg` in the banner; `kind` is the engine's name for the failure (`too_large`,
   * `corrupt`, `no_lattice`, …), kept with it for whoever reacts to it. */
  function showError(msg, kind = null) {
    store.set({ errors: [...store.state.errors, msg], lastError: { message: msg, kind } });
    $('banner-text').textContent = msg;
    $('banner').hidden = false;
    bannerShownAt = performance.now();
  }
  $('banner-close').onclick = () => { $('banner').hidden = true; };

  /** Show `text` as busy; returns the function that ends it. */
  function busy(text) {
    // A new action retires an error the user has had time to read (a step chained straight after
    // the error, like reopening after a cancel, keeps it; the message stays in state.errors).
    if (performance.now() - bannerShownAt > 1500) $('banner').hidden = true;
    depth++;
    store.set({ busy: true });
    $('progress-text').textContent = text;
    $('progress-bar').removeAttribute('value');
    $('progress').hidden = false;
    return () => {
      if (--depth <= 0) { depth = 0; store.set({ busy: false }); $('progress').hidden = true; store.emit('idle'); }
    };
  }

  /** Run `fn` as `text`; its error shows as `prefix: message`. Resolves to fn's result, or
   * undefined when it failed. */
  async function run(text, fn, prefix = '') {
    const done = busy(text);
    try {
      return await fn();
    } catch (e) {
      if (!e.cancelled) showError(prefix ? `${prefix}: ${e.message}` : e.message, e.kind);
    } finally { done(); }
  }

  /** Say what is being done; `fraction` (0–1), when known, fills the bar (else it runs). */
  function progress(text, fraction) {
    $('progress-text').textContent = text;
    if (Number.isFinite(fraction)) $('progress-bar').value = fraction;
    else $('progress-bar').removeAttribute('value');
  }

  return { showError, busy, run, progress };
}

/** Save `blob` as `name`. */
export function download(blob, name) {
  const a = Object.assign(document.createElement('a'), { href: URL.createObjectURL(blob), download: name });
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}
