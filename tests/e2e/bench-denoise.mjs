// Browser vs native NLM and BM3D on one shared image (syn_cubic_sub_px, 512²), in one run:
//   node tests/e2e/bench-denoise.mjs      (after `cargo xtask build` and `cargo build --release -p atomlens-cli`)
// Prints a markdown table: native CLI (the filter's own time, as `atomlens denoise` reports it),
// threaded wasm (SIMD) and single-threaded wasm. Medians of 3 after a warm-up.
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { serve, browser, openApp, drop } from './harness.mjs';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const FILE = path.resolve(ROOT, '../shared/data/synthetic/syn_cubic_sub_px.tif');
if (!fs.existsSync(FILE)) {
  console.error(`skipped: ${FILE} not found (../shared is absent)`);
  process.exit(0);
}
const OUT = path.join(ROOT, 'target/bench');
fs.mkdirSync(OUT, { recursive: true });
const METHODS = [['non_local_means', 'nlm', 2], ['bm3d', 'bm3d', 8]];
const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

/** The filter's own time from `atomlens denoise`'s "… in 0.032 s" line on stderr. */
function nativeMs(cli) {
  const times = [];
  for (let k = 0; k < 4; k++) {
    const args = ['denoise', FILE, '--method', cli, '--out', path.join(OUT, 'denoised.tif')];
    const r = spawnSync(path.join(ROOT, 'target/release/atomlens'), args, { encoding: 'utf8' });
    const s = Number(/in ([0-9.]+) s/.exec(r.stderr)?.[1]);
    if (k > 0) times.push(1000 * s);
  }
  return median(times);
}

async function inBrowser(ctx, url) {
  const { page } = await openApp(ctx, url);
  await drop(page, [FILE]);
  const ms = {};
  for (const [method, , search] of METHODS) {
    const times = [];
    for (let k = 0; k < 4; k++) {
      const t = await page.evaluate(async ([method, search]) => {
        const t0 = performance.now();
        await window.__atomlensTest.bridge.call('denoise', { method: { method, patch: 2, search, h: null, noise: 'auto' } });
        return performance.now() - t0;
      }, [method, search]);
      if (k > 0) times.push(t);
    }
    ms[method] = median(times);
  }
  const engine = await page.evaluate(() => `${window.__atomlens.engine} (${window.__atomlens.threads} threads)`);
  await page.close();
  return { ms, engine };
}

const isolated = await serve({ isolate: true });
const plain = await serve({ isolate: false });
const chrome = await browser();
let thr, one;
try {
  thr = await inBrowser(chrome.ctx, `${isolated.url}/?sw=off`);
  one = await inBrowser(chrome.ctx, `${plain.url}/?sw=off`);
} finally {
  await chrome.close(); await isolated.close(); await plain.close();
}
console.log(`| filter (512²) | native CLI | ${thr.engine} | ratio | ${one.engine} | ratio |`);
console.log('|---|---|---|---|---|---|');
for (const [method, cli] of METHODS) {
  const nat = nativeMs(cli);
  const [t, o] = [thr.ms[method], one.ms[method]];
  console.log(`| ${method} | ${nat.toFixed(0)} ms | ${t.toFixed(0)} ms | ${(t / nat).toFixed(2)}× | ${o.toFixed(0)} ms | ${(o / nat).toFixed(2)}× |`);
}
