// Browser vs native column finding + fitting on the same synthetic lattices, in one run:
//   node tests/e2e/bench-columns.mjs      (after `cargo xtask build` and `cargo build --release -p atomlens-cli`)
// Prints a markdown table: native CLI, threaded wasm and single-threaded wasm, and the wasm heap
// after the 4096² case. Timings are medians of 3 after a warm-up.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { serve, browser, openApp, drop, tiff } from './harness.mjs';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const OUT = path.join(ROOT, 'target/bench');
fs.mkdirSync(OUT, { recursive: true });

/** Square lattice of Gaussian columns (σ 2.5 px, height 100 on 20) with deterministic noise. */
function lattice(size, a) {
  const img = new Float32Array(size * size).fill(20);
  let n = 0;
  for (let y = a / 2; y < size - a / 4; y += a) {
    for (let x = a / 2; x < size - a / 4; x += a) {
      n++;
      const cx = x + 0.3 * Math.sin(n), cy = y + 0.3 * Math.cos(n);
      for (let j = Math.max(0, Math.floor(cy - 10)); j <= Math.min(size - 1, Math.ceil(cy + 10)); j++) {
        for (let i = Math.max(0, Math.floor(cx - 10)); i <= Math.min(size - 1, Math.ceil(cx + 10)); i++) {
          img[j * size + i] += 100 * Math.exp(-((i - cx) ** 2 + (j - cy) ** 2) / (2 * 2.5 * 2.5));
        }
      }
    }
  }
  let s = 7;
  for (let k = 0; k < img.length; k++) { s = (s * 1664525 + 1013904223) >>> 0; img[k] += ((s >>> 8) / 16777216 - 0.5) * 6; }
  return { buffer: tiff({ width: size, height: size, kind: 'f32', pixels: (x, y) => img[y * size + x] }), columns: n };
}

const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

function native(file) {
  const times = [];
  for (let k = 0; k < 4; k++) {
    const t = performance.now();
    execFileSync(path.join(ROOT, 'target/release/atomlens'), ['columns', file, '--out', path.join(OUT, 'native.csv')], { stdio: 'pipe' });
    if (k > 0) times.push(performance.now() - t);
  }
  return median(times);
}

async function inBrowser(ctx, url, file, runs = 3) {
  const { page } = await openApp(ctx, url);
  await drop(page, [file]);
  const times = [];
  let count = 0;
  for (let k = 0; k <= runs; k++) {
    await page.evaluate(() => { window.__atomlens.columns = null; });
    await page.click('[data-testid=col-run]');
    await page.waitForFunction(() => window.__atomlens.columns && !window.__atomlens.busy, null, { timeout: 600000 });
    const c = await page.evaluate(() => window.__atomlens.columns);
    count = c.count;
    if (k > 0) times.push(c.ms);
  }
  const engine = await page.evaluate(() => `${window.__atomlens.engine} (${window.__atomlens.threads} threads)`);
  const memory = await page.evaluate(() => window.__atomlensTest.bridge.call('memory'));
  await page.close();
  return { ms: median(times), count, engine, memory };
}

const isolated = await serve({ isolate: true });
const plain = await serve({ isolate: false });
const chrome = await browser();
const rows = [];
try {
  for (const [size, a, single] of [[1024, 22, true], [4096, 23.5, false]]) {
    const { buffer, columns } = lattice(size, a);
    const file = path.join(OUT, `lattice_${size}.tif`);
    fs.writeFileSync(file, buffer);
    const nat = native(file);
    const thr = await inBrowser(chrome.ctx, `${isolated.url}/?sw=off`, file, size > 2000 ? 1 : 3);
    const one = single ? await inBrowser(chrome.ctx, `${plain.url}/?sw=off`, file) : null;
    rows.push({ size, columns, found: thr.count, nat, thr, one });
    console.error(`${size}²: native ${nat.toFixed(0)} ms, ${thr.engine} ${thr.ms.toFixed(0)} ms` + (one ? `, ${one.engine} ${one.ms.toFixed(0)} ms` : ''));
  }
} finally {
  await chrome.close(); await isolated.close(); await plain.close();
}
console.log('| image | columns (true / found) | native CLI | wasm threads | ratio | wasm single | ratio | wasm heap after |');
console.log('|---|---|---|---|---|---|---|---|');
for (const r of rows) {
  const one = r.one ? `${r.one.ms.toFixed(0)} ms | ${(r.one.ms / r.nat).toFixed(2)}×` : '– | –';
  console.log(`| ${r.size}² lattice | ${r.columns} / ${r.found} | ${r.nat.toFixed(0)} ms | ${r.thr.ms.toFixed(0)} ms | ${(r.thr.ms / r.nat).toFixed(2)}× | ${one} | ${(r.thr.memory / 2 ** 20).toFixed(0)} MiB |`);
}
