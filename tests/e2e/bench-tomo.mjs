// Browser vs native tomography, in one run:
//   node tests/e2e/bench-tomo.mjs   (after `cargo xtask build` and `cargo build --release -p atomlens-cli`)
// 20 SIRT iterations of a 128³ Shepp–Logan phantom from 71 tilts over ±70° (native: the time
// `atomlens bench tomo --no-peer` prints for the same case), and FBP of a 256³ phantom from 71
// tilts, to show the largest browser volume fits (with the wasm heap it needed).
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { serve, browser, openApp } from './harness.mjs';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const CLI = path.join(ROOT, 'target/release/atomlens');
const r = spawnSync(CLI, ['bench', 'tomo', '--no-peer'], { cwd: ROOT, encoding: 'utf8' });
const m = r.stderr.match(/atomlens SIRT \(20 iterations\): ([\d.]+) s/);
if (!m) throw new Error(`atomlens bench tomo failed: ${r.stderr}`);
const native = 1000 * +m[1];

async function inBrowser(ctx, url) {
  const { page } = await openApp(ctx, url);
  const run = (n, method) => page.evaluate(async ({ n, method }) => {
    const b = window.__atomlensTest.bridge;
    const s = await b.call('tomoDemo', { kind: 'shepp_logan', n, start: -70, end: 70, count: 71, dose: 0 });
    const t0 = performance.now();
    await b.call('reconstruct', { signal: s.index, angles: Array.from(s.angles), method, align: 'none' });
    return performance.now() - t0;
  }, { n, method });
  const sirt = await run(128, { method: 'sirt', iterations: 20, nonnegative: true });
  const fbp256 = await run(256, { method: 'fbp', filter: 'shepp_logan' });
  const heap = await page.evaluate(() => window.__atomlensTest.bridge.call('memory', {}).catch(() => null));
  const engine = await page.evaluate(() => `${window.__atomlens.engine} (${window.__atomlens.threads} threads)`);
  await page.close();
  return { sirt, fbp256, heap, engine };
}

const isolated = await serve({ isolate: true });
const chrome = await browser();
try {
  const t = await inBrowser(chrome.ctx, `${isolated.url}/?sw=off`);
  console.log('| case | native CLI | wasm threads | ratio |');
  console.log('|---|---|---|---|');
  console.log(`| SIRT, 20 iterations, 128³, 71 tilts | ${native.toFixed(0)} ms | ${t.sirt.toFixed(0)} ms | ${(t.sirt / native).toFixed(2)}× |`);
  console.log(`| FBP, 256³, 71 tilts | – | ${t.fbp256.toFixed(0)} ms | – |`);
  console.log(`engine: ${t.engine}; wasm heap after: ${t.heap ? (t.heap / 2 ** 20).toFixed(0) + ' MiB' : 'n/a'}`);
} finally {
  await chrome.close(); await isolated.close();
}
