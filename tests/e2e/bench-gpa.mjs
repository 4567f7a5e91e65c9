// Browser vs native GPA on the 2048² synthetic strain step, in one run:
//   node tests/e2e/bench-gpa.mjs   (after `cargo xtask build` and `cargo build --release -p atomlens-cli`)
// The image is written by `atomlens bench gpa` (target/bench-gpa-step-2048.tif; made here if missing).
// Native: the `gpa()` time the CLI prints; browser: the Strain panel's call through the worker.
// Medians of 3 after a warm-up.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';
import { serve, browser, openApp, drop } from './harness.mjs';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../..');
const CLI = path.join(ROOT, 'target/release/atomlens');
const FILE = path.join(ROOT, 'target/bench-gpa-step-2048.tif');
const REF = { x0: 160, y0: 256, x1: 800, y1: 1792 };
const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

if (!fs.existsSync(FILE)) execFileSync(CLI, ['bench', 'gpa', '--no-peer', '--repeat', '1'], { cwd: ROOT, stdio: 'inherit' });

/** The CLI's own gpa() time: it prints "...; 1.068 s" on stderr. */
function nativeTime() {
  const r = spawnSync(CLI, ['gpa', FILE, '--reference', `${REF.x0},${REF.y0},${REF.x1},${REF.y1}`], { encoding: 'utf8' });
  const m = r.stderr.match(/([\d.]+) s\n/);
  if (!m) throw new Error(`atomlens gpa failed: ${r.stderr}`);
  return 1000 * +m[1];
}
nativeTime(); // warm-up
const native = [nativeTime(), nativeTime(), nativeTime()];

async function inBrowser(ctx, url) {
  const { page } = await openApp(ctx, url);
  await drop(page, [{ name: 'step2048.tif', mimeType: 'image/tiff', buffer: fs.readFileSync(FILE) }]);
  const times = [];
  for (let k = 0; k <= 3; k++) {
    const runs = await page.evaluate((ref) => { window.__atomlensTest.strain().reference = ref; return window.__atomlens.gpaRuns ?? 0; }, REF);
    await page.click('[data-testid=gpa-run]');
    await page.waitForFunction((n) => window.__atomlens.gpaRuns > n && !window.__atomlens.busy, runs, { timeout: 600000 });
    if (k > 0) times.push(await page.evaluate(() => window.__atomlens.gpa.ms));
  }
  const engine = await page.evaluate(() => `${window.__atomlens.engine} (${window.__atomlens.threads} threads)`);
  await page.close();
  return { ms: median(times), engine };
}

const isolated = await serve({ isolate: true });
const plain = await serve({ isolate: false });
const chrome = await browser();
try {
  const t = await inBrowser(chrome.ctx, `${isolated.url}/?sw=off`);
  const s = await inBrowser(chrome.ctx, `${plain.url}/?sw=off`);
  const n = median(native);
  console.log('| image | native CLI | wasm threads | ratio | wasm single | ratio |');
  console.log('|---|---|---|---|---|---|');
  console.log(`| 2048² strain step | ${n.toFixed(0)} ms | ${t.ms.toFixed(0)} ms | ${(t.ms / n).toFixed(2)}× | ${s.ms.toFixed(0)} ms | ${(s.ms / n).toFixed(2)}× |`);
  console.log(`engines: ${t.engine}, ${s.engine}`);
} finally {
  await chrome.close(); await isolated.close(); await plain.close();
}
