// Service worker: makes the app work offline after the first visit (network first, cache as
// fallback, everything precached on install), and adds the cross-origin-isolation headers to
// same-origin responses so hosts that cannot set headers (a group website, a USB stick served
// by any static server) still get the threaded engine after one reload.
const CACHE = 'atomlens-v2';
// The page's own files; its modules (src/) and the engines (pkg/) come from pkg/files.json.
const SHELL = ['./', 'index.html', 'style.css', 'icon.svg', 'embed.js'];

self.addEventListener('install', (event) => {
  event.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    await cache.addAll(SHELL);
    try {
      const files = await (await fetch('pkg/files.json', { cache: 'no-store' })).json();
      await cache.addAll(['pkg/files.json', ...files]);
    } catch (e) {
      // Without the list the app still runs online; offline then lacks the wasm.
      console.warn('atomlens sw: could not precache the engine', e);
    }
    await self.skipWaiting();
  })());
});

// A new release (a new CACHE name) takes over at once and drops the caches of older ones.
self.addEventListener('activate', (event) => event.waitUntil((async () => {
  for (const key of await caches.keys()) if (key.startsWith('atomlens-') && key !== CACHE) await caches.delete(key);
  await self.clients.claim();
})()));

function isolated(response) {
  if (!response || response.status === 0 || response.type === 'opaque') return response;
  const headers = new Headers(response.headers);
  headers.set('Cross-Origin-Opener-Policy', 'same-origin');
  headers.set('Cross-Origin-Embedder-Policy', 'require-corp');
  headers.set('Cross-Origin-Resource-Policy', 'same-origin');
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

self.addEventListener('fetch', (event) => {
  const req = event.request;
  if (req.method !== 'GET' || new URL(req.url).origin !== self.location.origin) return;
  event.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const res = await fetch(req);
      if (res.ok) cache.put(req, res.clone()).catch(() => {});
      return isolated(res);
    } catch (err) {
      const hit = await cache.match(req, { ignoreSearch: true });
      if (hit) return isolated(hit);
      throw err;
    }
  })());
});
