// Embed atomlens in any page of a group website, hosted from your own static files:
//
//   <script type="module" src="/atomlens/embed.js"></script>
//   <atomlens-app style="height: 720px"></atomlens-app>
//
// The app runs in an iframe next to this script (same folder), so its service worker, wasm
// and worker stay in its own scope. Attributes: engine="single|threads|auto" (default auto).
// Threads need cross-origin isolation of the embedding page too (COOP/COEP headers on it);
// without them the single-threaded engine runs, with the same results.
class AtomlensApp extends HTMLElement {
  connectedCallback() {
    const src = new URL('./index.html', import.meta.url);
    const engine = this.getAttribute('engine');
    if (engine) src.searchParams.set('engine', engine);
    const frame = document.createElement('iframe');
    frame.src = src.href;
    frame.title = 'atomlens: atomic-resolution image analysis';
    frame.allow = 'cross-origin-isolated; clipboard-write';
    frame.style.cssText = 'width:100%;height:100%;border:0;display:block';
    if (!this.style.display) this.style.display = 'block';
    if (!this.style.height) this.style.height = '720px';
    this.replaceChildren(frame);
  }
}
if (!customElements.get('atomlens-app')) customElements.define('atomlens-app', AtomlensApp);
