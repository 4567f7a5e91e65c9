// Workspaces: the left column shows one tab's sections at a time (each section says its tab in
// `data-tab`), chosen by the tab bar or the keys 1–8; `?` lists every shortcut; each section's
// `?` link opens its method page (docs/methods/, copied into pkg/docs/ by the build).
export const TABS = [
  ['image', 'Image'], ['cleanup', 'Clean-up'], ['columns', 'Columns'], ['strain', 'Strain'],
  ['particles', 'Particles'], ['compare', 'Compare'], ['tomo', 'Tomography'], ['batch', 'Batch'],
];

/** Every shortcut of the page, in one list (the help dialog is built from it). */
export const SHORTCUTS = [
  ['1 … 8', TABS.map(([, label]) => label).join(', ')],
  ['?', 'this list'],
  ['O', 'open files'],
  ['Ctrl+S', 'save the session (*.atomlens.json)'],
  ['Ctrl+Z', 'undo the last column added or deleted by hand'],
  ['Ctrl+Shift+Z, Ctrl+Y', 'redo it'],
  ['Esc', 'close this list'],
];

export class Tabs {
  constructor(app) {
    const { $ } = app;
    this.app = app;
    this.sections = [...document.querySelectorAll('aside.left section[data-tab]')];
    this.buttons = TABS.map(([name, label], k) => {
      const b = Object.assign(document.createElement('button'), { textContent: label, title: `${label} (${k + 1})` });
      b.setAttribute('role', 'tab');
      b.dataset.testid = `tab-${name}`;
      b.onclick = () => this.select(name);
      return b;
    });
    $('tabs').replaceChildren(...this.buttons);
    $('shortcuts-table').replaceChildren(...SHORTCUTS.map(([k, what]) => {
      const tr = document.createElement('tr');
      tr.append(Object.assign(document.createElement('td'), { textContent: k }), Object.assign(document.createElement('td'), { textContent: what }));
      return tr;
    }));
    window.addEventListener('keydown', (e) => this.key(e));
    this.select('image');
  }

  /** Show tab `name`'s sections only. */
  select(name) {
    for (const s of this.sections) s.classList.toggle('off', s.dataset.tab !== name);
    TABS.forEach(([n], k) => this.buttons[k].setAttribute('aria-selected', String(n === name)));
    this.app.store.set({ tab: name });
  }

  /** Show the tab holding `el`. */
  reveal(el) {
    const s = el?.closest?.('section[data-tab]');
    if (s) this.select(s.dataset.tab);
  }

  key(e) {
    if (e.target.matches?.('input, textarea, select') || e.altKey) return;
    const { $ } = this.app;
    if ((e.ctrlKey || e.metaKey) && e.key.toLowerCase() === 's') { e.preventDefault(); this.app.session.save(); return; }
    if (e.ctrlKey || e.metaKey) return;
    const k = +e.key;
    if (k >= 1 && k <= TABS.length) this.select(TABS[k - 1][0]);
    else if (e.key === '?') $('shortcuts').open ? $('shortcuts').close() : $('shortcuts').showModal();
    else if (e.key.toLowerCase() === 'o') $('pick-files').click();
  }
}
