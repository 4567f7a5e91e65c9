// Shared pieces of the browser suite: a static server for web/ (with or without the COOP/COEP
// headers), Debian's Chromium through playwright-core, page-error capture, and a tiny TIFF
// writer so the suite makes its own test files.
import http from 'node:http';
import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const { chromium } = createRequire(import.meta.url)('playwright-core');
const here = path.dirname(fileURLToPath(import.meta.url));
export const WEB = path.resolve(here, '../../web');
export const ARTIFACTS = path.join(here, 'artifacts');
export const SHARED = process.env.ATOMLENS_SHARED || path.resolve(here, '../../../shared');
export const hasShared = fs.existsSync(path.join(SHARED, 'data'));

const MIME = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.css': 'text/css',
  '.wasm': 'application/wasm', '.json': 'application/json', '.md': 'text/plain; charset=utf-8' };

/** Serve web/ on 127.0.0.1; `isolate` adds COOP/COEP. `/host/embed.html` is a third-party page embedding the app. */
export async function serve({ isolate }) {
  // `override`: pathname → (url) => a body to send instead of the file, or null for the file
  // (a new release, a worker that never answers).
  const override = new Map();
  const server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://x');
    const body = override.get(url.pathname)?.(url);
    if (body != null) {
      res.writeHead(200, { 'Content-Type': MIME[path.extname(url.pathname.endsWith('/') ? 'index.html' : url.pathname)] || 'text/plain', 'Cache-Control': 'no-store',
        ...(isolate ? { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp', 'Cross-Origin-Resource-Policy': 'same-origin' } : {}) });
      return res.end(body);
    }
    if (url.pathname === '/host/embed.html') {
      res.writeHead(200, { 'Content-Type': 'text/html' });
      return res.end('<!doctype html><title>Group site</title><h1>Our lab</h1>'
        + '<script type="module" src="/embed.js"></script><atomlens-app style="height:600px"></atomlens-app>');
    }
    let file = path.normalize(path.join(WEB, decodeURIComponent(url.pathname)));
    if (!file.startsWith(WEB)) { res.writeHead(403); return res.end(); }
    if (fs.existsSync(file) && fs.statSync(file).isDirectory()) file = path.join(file, 'index.html');
    if (!fs.existsSync(file)) { res.writeHead(404); return res.end(); }
    const headers = { 'Content-Type': MIME[path.extname(file)] || 'application/octet-stream', 'Cache-Control': 'no-store' };
    if (isolate) Object.assign(headers, { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp',
      'Cross-Origin-Resource-Policy': 'same-origin' });
    // As `cargo xtask serve`: the page's policy (its meta) also as a header.
    if (isolate && file.endsWith('.html')) {
      const csp = /http-equiv="Content-Security-Policy" content="([^"]*)"/.exec(fs.readFileSync(file, 'utf8'));
      if (csp) headers['Content-Security-Policy'] = csp[1];
    }
    res.writeHead(200, headers);
    fs.createReadStream(file).pipe(res);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  const sockets = new Set();
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  return {
    url: `http://127.0.0.1:${server.address().port}`,
    override,
    close: () => new Promise((r) => { for (const s of sockets) s.destroy(); server.close(r); }),
  };
}

/** A fresh Chromium profile (so no service worker or cache carries over between contexts). */
export async function browser() {
  const udd = fs.mkdtempSync(path.join(os.tmpdir(), 'atomlens-chromium-'));
  const ctx = await chromium.launchPersistentContext(udd, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium', headless: true,
    viewport: { width: 1400, height: 860 },
    args: ['--no-sandbox', '--disable-gpu', '--enable-unsafe-webgpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
  return { ctx, close: async () => { await ctx.close(); fs.rmSync(udd, { recursive: true, force: true }); } };
}

/** Open the app and collect page errors; resolves once the engine and the demo are ready. */
export async function openApp(ctx, url) {
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(`pageerror: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console: ${m.text()}`); });
  page.on('crash', () => errors.push('page crashed'));
  // The sidebar shows one tab at a time: before acting on a control, show its tab, as a user
  // clicks the tab first (the 'navigation' test drives the tabs themselves).
  for (const m of ['click', 'fill', 'selectOption', 'check', 'uncheck', 'press']) {
    const act = page[m].bind(page);
    page[m] = async (selector, ...rest) => {
      await page.evaluate((s) => window.__atomlensTest?.reveal(s), selector).catch(() => {});
      return act(selector, ...rest);
    };
  }
  // Nothing leaves the machine: any request to another origin is an error (blob: and data: are
  // the page's own bytes).
  const origin = new URL(url).origin;
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith('blob:') && !u.startsWith('data:') && new URL(u).origin !== origin) errors.push(`left the origin: ${u}`);
  });
  await page.goto(url);
  await waitReady(page);
  return { page, errors };
}

export async function waitReady(page) {
  await page.waitForFunction(() => window.__atomlens?.ready && window.__atomlens.image && !window.__atomlens.busy, null, { timeout: 60000 });
}

/** Set files on the picker and wait until loading settles; returns the app state. */
export async function drop(page, files) {
  // Done when a new image is shown or a new error said (the previous image stays shown while
  // a large file is read, so "an image is shown" alone can be the old one).
  const before = await page.evaluate(() => { window.__dropPrevImage = window.__atomlens.image; return window.__atomlens.errors.length; });
  await page.setInputFiles('[data-testid=pick-files]', files);
  await page.waitForFunction((n) => {
    const s = window.__atomlens;
    return !s.busy && (s.errors.length > n || (s.image && s.image !== window.__dropPrevImage));
  }, before, { timeout: 60000 });
  await page.waitForFunction(() => !window.__atomlens.busy, null, { timeout: 60000 });
  return page.evaluate(() => ({ ...window.__atomlens }));
}

/** A little-endian single-strip TIFF: `kind` 'f32' | 'u16' | 'u8', optional ImageJ nm calibration. */
export function tiff({ width, height, kind = 'f32', pixels, pixelSizeNm, frames = 1 }) {
  const bps = { f32: 32, u16: 16, u8: 8 }[kind];
  const fmt = kind === 'f32' ? 3 : 1;
  const plane = width * height * (bps / 8);
  const desc = pixelSizeNm ? `ImageJ=1.11a\nimages=${frames}\nunit=nm\n\0` : null;
  const entries = [];
  const extra = []; // out-of-line data: [offsetPlaceholderIndex, bytes]
  const add = (tag, type, count, value) => entries.push({ tag, type, count, value });
  const n = 11 + (desc ? 4 : 0);
  const ifdSize = 2 + n * 12 + 4;
  const pages = [];
  let off = 8;
  for (let f = 0; f < frames; f++) {
    const ifd = off; off += ifdSize;
    const dataOff = off; off += plane;
    const descOff = off; off += desc ? desc.length : 0;
    const resOff = off; off += desc ? 8 : 0;
    pages.push({ ifd, dataOff, descOff, resOff });
  }
  const buf = Buffer.alloc(off);
  buf.write('II', 0); buf.writeUInt16LE(42, 2); buf.writeUInt32LE(8, 4);
  pages.forEach((p, f) => {
    entries.length = 0;
    add(256, 4, 1, width); add(257, 4, 1, height); add(258, 3, 1, bps); add(259, 3, 1, 1); add(262, 3, 1, 1);
    if (desc) add(270, 2, desc.length, p.descOff);
    add(273, 4, 1, p.dataOff); add(277, 3, 1, 1); add(278, 4, 1, height); add(279, 4, 1, plane);
    if (desc) { add(282, 5, 1, p.resOff); add(283, 5, 1, p.resOff); }
    add(339, 3, 1, fmt);
    add(254, 4, 1, 0);
    if (desc) add(296, 3, 1, 1);
    entries.sort((a, b) => a.tag - b.tag);
    let o = p.ifd;
    buf.writeUInt16LE(entries.length, o); o += 2;
    for (const e of entries) {
      buf.writeUInt16LE(e.tag, o); buf.writeUInt16LE(e.type, o + 2); buf.writeUInt32LE(e.count, o + 4);
      if (e.type === 3 && e.count === 1) buf.writeUInt16LE(e.value, o + 8); else buf.writeUInt32LE(e.value, o + 8);
      o += 12;
    }
    buf.writeUInt32LE(f + 1 < pages.length ? pages[f + 1].ifd : 0, o);
    for (let i = 0; i < width * height; i++) {
      const v = pixels(i % width, Math.floor(i / width), f);
      if (kind === 'f32') buf.writeFloatLE(v, p.dataOff + 4 * i);
      else if (kind === 'u16') buf.writeUInt16LE(v, p.dataOff + 2 * i);
      else buf.writeUInt8(v, p.dataOff + i);
    }
    if (desc) {
      buf.write(desc, p.descOff, 'latin1');
      buf.writeUInt32LE(Math.round(1e6 / pixelSizeNm), p.resOff); buf.writeUInt32LE(1e6, p.resOff + 4);
    }
  });
  return buf;
}

/** A TIFF header that claims `width × height` float pixels but carries none (for size limits). */
export function hugeTiffHeader(width, height) {
  const b = tiff({ width: 1, height: 1, kind: 'f32', pixels: () => 0 });
  // Patch ImageWidth/ImageLength/StripByteCounts in the (sorted) IFD at offset 8.
  const n = b.readUInt16LE(8);
  for (let i = 0; i < n; i++) {
    const o = 10 + 12 * i, tag = b.readUInt16LE(o);
    if (tag === 256) b.writeUInt32LE(width, o + 8);
    if (tag === 257 || tag === 278) b.writeUInt32LE(height, o + 8);
    if (tag === 279) b.writeUInt32LE((width * height * 4) >>> 0, o + 8);
  }
  return b;
}

export function saveArtifact(name, data) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  fs.writeFileSync(path.join(ARTIFACTS, name), data);
  return path.join(ARTIFACTS, name);
}
