// The Strain panel: GPA parameters (defaults from Rust), g-vectors picked on the power spectrum
// (click = g1, shift-click = g2), a reference rectangle drawn on the image, the four maps with
// colour bars and a line profile, the self-test against synthetic truth, and TIFF/PNG/JSON export.
import { clearPlot, plot } from '../views/charts.js';
import { fmt } from '../views/plots.js';
import { download } from '../actions.js';
import { fillSelect } from '../forms.js';

const MAPS = [['exx', 'εxx'], ['eyy', 'εyy'], ['exy', 'εxy'], ['rotation', 'rotation (rad)']];
const G_COLOURS = ['#4fd1c5', '#f6ad55'];

export class StrainPanel {
  constructor(app) {
    const $ = app.$;
    Object.assign(this, { app, bridge: app.bridge, viewer: app.viewer, store: app.store, $ });
    app.store.on('image', () => this.reset());
    app.spectrum.strain = this;
    this.g = null;          // user-chosen [[gx, gy], [gx, gy]] in cycles/px, or null = automatic
    this.reference = null;  // {x0, y0, x1, y1} px, or null = whole image
    this.result = null;
    this.bitmaps = {};
    this.profileRow = null;
    $('gpa-run').onclick = () => this.run();
    $('gpa-auto').onclick = () => { this.g = null; this.reference = null; this.viewer.rect = null; this.run(); };
    $('gpa-selftest').onclick = () => this.selfTest();
    $('gpa-tiff').onclick = () => this.exportTiffs();
    $('gpa-png').onclick = () => this.exportFigure();
    $('gpa-svg').onclick = () => this.exportSvg();
    $('gpa-json').onclick = () => this.exportJson();
    $('gpa-show').onchange = () => this.showLayer();
    $('gpa-disp').onchange = () => { if (this.result) this.run(); };
    $('gpa-pickref').onchange = (e) => { this.viewer.rectMode = e.target.checked; };
    this.viewer.onRect = (r) => {
      this.reference = r;
      $('gpa-pickref').checked = false;
      this.viewer.rectMode = false;
      this.run();
    };
    for (const [name] of MAPS) {
      const c = $(`gpa-${name}`);
      c.addEventListener('pointermove', (e) => this.hover(e, c));
      c.addEventListener('click', (e) => { this.profileRow = this.mapPoint(e, c)?.y ?? null; this.drawProfile(); this.drawMaps(); });
    }
  }

  get state() { return this.store.state; }

  setDefaults({ gpa: d, masks, luts }) {
    this.defaults = d;
    this.luts = luts;
    fillSelect(this.$('gpa-shape'), masks, { gaussian: 'Gaussian' });
    this.$('gpa-radius').value = d.mask_radius;
    this.$('gpa-shape').value = d.mask;
  }

  showLayer() {
    const name = this.$('gpa-show').value;
    if ((name === 'ux' || name === 'uy') && this.result && !this.bitmaps[name]) {
      this.$('gpa-disp').checked = true;
      this.run();
      return;
    }
    this.viewer.layer = (name && this.bitmaps[name]) || null;
    const lim = this.limits?.[name];
    this.viewer.layerKey = this.viewer.layer && lim != null
      ? { label: `${(MAPS.find(([n]) => n === name) || [name, name])[1]} (GPA)`, lo: -lim, hi: lim, lut: this.luts.rdbu } : null;
    this.viewer.draw();
  }

  /** The image changed: forget maps and choices tied to it. */
  reset() {
    this.result = null; this.g = null; this.reference = null; this.viewer.rect = null; this.viewer.layer = null; this.viewer.layerKey = null;
    this.bitmaps = {};
    this.$('gpa-maps').hidden = true;
    this.$('gpa-summary').textContent = '';
    for (const id of ['gpa-tiff', 'gpa-png', 'gpa-svg', 'gpa-json']) this.$(id).disabled = true;
  }

  /** Map names to export: the strain maps, and the displacement when computed. */
  exported() {
    return [...MAPS.map(([n]) => n), ...(this.bitmaps.ux ? ['ux', 'uy'] : [])];
  }

  params() {
    const p = structuredClone(this.defaults);
    p.g = this.g;
    p.mask_radius = +this.$('gpa-radius').value;
    p.mask = this.$('gpa-shape').value;
    p.frame_angle = (+this.$('gpa-angle').value || 0) * Math.PI / 180;
    p.reference = this.reference;
    p.displacement = this.$('gpa-disp').checked;
    return p;
  }

  /** g in cycles/px from a spectrum point (display units, fy up). */
  pickG(f, second) {
    const ps = this.state.image?.unit === 'nm' ? this.state.image.pixel_size : 1;
    const g = [f.fx * ps, -f.fy * ps];
    const cur = this.g || (this.result ? this.result.summary.g.map((v) => v.per_px) : [g, g]);
    this.g = second ? [cur[0], g] : [g, cur[1]];
    if (this.result || this.g[0] !== this.g[1]) this.run();
  }

  /** Marks for the spectrum: the g-vectors used and their mask radii (display units). */
  gmarks() {
    if (!this.result) return [];
    const ps = this.state.image?.unit === 'nm' ? this.state.image.pixel_size : 1;
    const r = this.result.summary.mask_radius_per_px / ps;
    return this.result.summary.g.map((g, k) => ({ fx: g.per_px[0] / ps, fy: -g.per_px[1] / ps, r, label: `g${k + 1}`, color: G_COLOURS[k] }));
  }

  /** A mask under spectrum point `f` (display units): drag its inside to move g, its rim to resize. */
  hitMask(f) {
    // The drag works from the marks and g-vectors as they were when it started.
    const marks = this.gmarks();
    const g0 = this.result?.summary.g.map((v) => v.per_px);
    for (const [k, m] of marks.entries()) {
      for (const sgn of [1, -1]) {
        const d = Math.hypot(f.fx - sgn * m.fx, f.fy - sgn * m.fy);
        if (Math.abs(d - m.r) < 0.25 * m.r) return { k, sgn, mode: 'resize', mark: m, g0 };
        if (d < m.r) return { k, sgn, mode: 'move', mark: m, g0 };
      }
    }
    return null;
  }

  /** Drag in progress: update g or the radius and rerun, at most one run at a time (live). */
  dragMask(hit, f) {
    const ps = this.state.image?.unit === 'nm' ? this.state.image.pixel_size : 1;
    if (hit.mode === 'move') {
      const g = hit.g0.map((v) => [...v]);
      g[hit.k] = [hit.sgn * f.fx * ps, -hit.sgn * f.fy * ps];
      this.g = g;
    } else {
      const m = hit.mark;
      const d = Math.hypot(f.fx - hit.sgn * m.fx, f.fy - hit.sgn * m.fy) * ps;
      const gmin = Math.min(...hit.g0.map((v) => Math.hypot(...v)));
      this.$('gpa-radius').value = Math.max(0.02, Math.min(0.5, d / gmin)).toFixed(3);
    }
    this.live();
  }

  live() {
    if (this.running) { this.pending = true; return; }
    this.run().then(() => { if (this.pending) { this.pending = false; this.live(); } });
  }

  async run() {
    this.running = true;
    const done = this.app.actions.busy('Geometric phase analysis…');
    try {
      const t0 = performance.now();
      const r = await this.bridge.call('gpa', { params: this.params() });
      await this.show(r, performance.now() - t0);
    } catch (e) {
      if (!e.cancelled) this.app.actions.showError(`Strain: ${e.message}`);
    } finally { this.running = false; done(); }
  }

  /** GPA's reply drawn: maps, summary, reference, profile. */
  async show(r, ms) {
    this.result = r;
    this.ms = ms;
    this.limits = Object.fromEntries(MAPS.map(([n], k) => [n, r.limits[k]]));
    const bits = await Promise.all(MAPS.map(([n]) => this.bridge.call('gpaMap', { name: n, limit: this.limits[n] })));
    this.bitmaps = {};
    for (let k = 0; k < MAPS.length; k++) {
      this.bitmaps[MAPS[k][0]] = await createImageBitmap(new ImageData(new Uint8ClampedArray(bits[k].buffer), r.width, r.height));
    }
    if (r.displacement_limit != null) {
      for (const n of ['ux', 'uy']) {
        this.limits[n] = r.displacement_limit;
        const px = await this.bridge.call('gpaMap', { name: n, limit: r.displacement_limit });
        this.bitmaps[n] = await createImageBitmap(new ImageData(new Uint8ClampedArray(px.buffer), r.width, r.height));
      }
    }
    this.values = {};
    this.store.set({ gpa: { summary: r.summary, ms: this.ms }, gpaRuns: (this.state.gpaRuns || 0) + 1 });
    this.reference = r.summary.reference;
    this.viewer.rect = r.summary.reference;
    this.viewer.draw();
    this.$('gpa-maps').hidden = false;
    for (const id of ['gpa-tiff', 'gpa-png', 'gpa-svg', 'gpa-json']) this.$(id).disabled = false;
    this.showSummary();
    this.showLayer();
    this.drawMaps();
    await this.drawProfile();
    this.app.spectrum.draw();
  }

  showSummary() {
    const s = this.result.summary;
    const unit = this.state.image?.unit === 'nm';
    const g = s.g.map((v, k) => `g${k + 1} (${v.per_px.map((x) => x.toFixed(4)).join(', ')}) /px, d ${unit ? `${(v.d_nm * 10).toFixed(3)} Å` : `${v.d_px.toFixed(2)} px`}`);
    const ref = s.reference;
    const lines = [
      ...g,
      `mask ${s.mask} ${s.mask_radius_per_px.toFixed(4)} /px → resolution ${s.resolution_px.toFixed(1)} px${unit ? ` (${s.resolution_nm.toFixed(2)} nm)` : ''}`,
      `reference x ${ref.x0}–${ref.x1}, y ${ref.y0}–${ref.y1}${s.refined ? '' : ' (g as given, not refined)'}; edge band ${s.border_px} px unreliable`,
      `${(100 * s.valid_fraction).toFixed(0)} % of pixels measured (no colour where a fringe is absent)${Number.isFinite(this.ms) ? ` · ${this.ms.toFixed(0)} ms` : ' · restored'}`,
      ...MAPS.map(([n, label]) => `${label}: core mean ${fmt(s.stats[n].core_mean)} ± ${fmt(s.stats[n].core_std)}`),
    ];
    this.$('gpa-summary').textContent = lines.join('\n');
  }

  drawMaps() {
    for (const [name, label] of MAPS) {
      const c = this.$(`gpa-${name}`);
      const ctx = c.getContext('2d');
      const dpr = window.devicePixelRatio || 1;
      const rect = c.getBoundingClientRect();
      c.width = Math.round(rect.width * dpr); c.height = Math.round(rect.height * dpr);
      ctx.fillStyle = '#1a1d21'; ctx.fillRect(0, 0, c.width, c.height);
      const bm = this.bitmaps[name];
      if (!bm) continue;
      const lay = this.layout(c);
      ctx.drawImage(bm, lay.x0, lay.y0, bm.width * lay.s, bm.height * lay.s);
      // Edge band and reference.
      const s = this.result.summary;
      ctx.strokeStyle = 'rgba(255,255,255,0.35)'; ctx.setLineDash([3 * dpr, 3 * dpr]); ctx.lineWidth = dpr;
      const b = s.border_px;
      ctx.strokeRect(lay.x0 + b * lay.s, lay.y0 + b * lay.s, (bm.width - 2 * b) * lay.s, (bm.height - 2 * b) * lay.s);
      ctx.setLineDash([]); ctx.strokeStyle = '#ffe066';
      const r = s.reference;
      ctx.strokeRect(lay.x0 + r.x0 * lay.s, lay.y0 + r.y0 * lay.s, (r.x1 - r.x0) * lay.s, (r.y1 - r.y0) * lay.s);
      if (this.profileRow != null) {
        ctx.strokeStyle = '#ffffff';
        const y = lay.y0 + (this.profileRow + 0.5) * lay.s;
        ctx.beginPath(); ctx.moveTo(lay.x0, y); ctx.lineTo(lay.x0 + bm.width * lay.s, y); ctx.stroke();
      }
      // Title and colour bar (red = positive: tension / rotation towards +y).
      ctx.fillStyle = '#e6e6e6'; ctx.font = `${11 * dpr}px system-ui, sans-serif`; ctx.textAlign = 'left';
      ctx.fillText(label, 4 * dpr, 12 * dpr);
      const lim = this.limits[name];
      const barX = c.width - 14 * dpr, barY = 18 * dpr, barH = c.height - 36 * dpr;
      const grad = ctx.createLinearGradient(0, barY, 0, barY + barH);
      grad.addColorStop(0, '#b2182b'); grad.addColorStop(0.5, '#f7f7f7'); grad.addColorStop(1, '#2166ac');
      ctx.fillStyle = grad; ctx.fillRect(barX, barY, 8 * dpr, barH);
      ctx.fillStyle = '#c8c8c8'; ctx.textAlign = 'right'; ctx.font = `${9 * dpr}px system-ui, sans-serif`;
      ctx.fillText(`+${fmt(lim)}`, c.width - 2 * dpr, barY - 3 * dpr);
      ctx.fillText('0', barX - 2 * dpr, barY + barH / 2 + 3 * dpr);
      ctx.fillText(`−${fmt(lim)}`, c.width - 2 * dpr, barY + barH + 11 * dpr);
    }
  }

  layout(c) {
    const bm = this.bitmaps.exx;
    const dpr = window.devicePixelRatio || 1;
    const W = c.width - 22 * dpr, H = c.height - 16 * dpr;
    const s = Math.min(W / bm.width, H / bm.height);
    return { s, x0: 0, y0: 16 * dpr };
  }

  mapPoint(e, c) {
    if (!this.bitmaps.exx) return null;
    const r = c.getBoundingClientRect(), dpr = c.width / r.width;
    const lay = this.layout(c);
    const x = Math.floor(((e.clientX - r.left) * dpr - lay.x0) / lay.s), y = Math.floor(((e.clientY - r.top) * dpr - lay.y0) / lay.s);
    if (x < 0 || y < 0 || x >= this.result.width || y >= this.result.height) return null;
    return { x, y };
  }

  async valuesOf(name) {
    if (!this.values[name]) this.values[name] = await this.bridge.call('gpaValues', { name });
    return this.values[name];
  }

  async hover(e, c) {
    const p = this.mapPoint(e, c);
    if (!p) return;
    const w = this.result.width;
    const vals = await Promise.all(MAPS.map(([n]) => this.valuesOf(n)));
    this.$('gpa-readout').textContent = `x ${p.x} y ${p.y}: ` + MAPS.map(([, label], k) => `${label.split(' ')[0]} ${fmt(vals[k][p.y * w + p.x])}`).join('  ');
  }

  /** Profiles of all four maps along the chosen row (default: the middle). */
  async drawProfile() {
    const c = this.$('gpa-profile');
    if (!this.result) { clearPlot(c); return; }
    const { width: w, height: h } = this.result;
    const row = this.profileRow ?? Math.floor(h / 2);
    const vals = await Promise.all(MAPS.map(([n]) => this.valuesOf(n)));
    const im = this.state.image, nm = im?.unit === 'nm' ? im.pixel_size : null;
    const colours = ['#ff6b6b', '#4fb3ff', '#5ad17a', '#e0c060'];
    plot(c, {
      title: `strain profile along row y = ${row}`,
      x: { label: nm ? 'x (nm)' : 'x (px)', min: 0, max: (w - 1) * (nm ?? 1) },
      y: { label: `strain, rotation (rad) · row y = ${row}` },
      series: MAPS.map(([n, label], k) => ({
        name: label.split(' ')[0], type: 'line', color: colours[k],
        data: Array.from({ length: w }, (_, x) => { const v = vals[k][row * w + x]; return [x * (nm ?? 1), Number.isFinite(v) ? v : null]; }),
      })),
    });
  }

  selfTest() {
    return this.app.actions.run('GPA self-test on synthetic strain fields…', async () => {
      const t0 = performance.now();
      const cases = await this.bridge.call('gpaSelfTest');
      const ms = performance.now() - t0;
      const rows = [];
      let pass = 0, total = 0;
      for (const c of cases) {
        rows.push(`<tr><th colspan="4">${c.name}</th></tr>`);
        for (const k of c.checks) {
          const ok = Math.abs(k.measured - k.truth) <= k.tolerance;
          pass += ok; total++;
          rows.push(`<tr class="${ok ? 'pass' : 'fail'}"><td>${k.quantity}</td><td>${fmt(k.truth)}</td><td>${fmt(k.measured)}</td><td>${ok ? '✓' : '✗'} ${k.tolerance.toExponential(0)}</td></tr>`);
        }
      }
      this.$('gpa-selftest-result').innerHTML =
        `<p>${pass} of ${total} checks within tolerance (${(ms / 1000).toFixed(1)} s)</p>` +
        `<table class="meta"><tr><td>quantity</td><td>true</td><td>measured</td><td>tolerance</td></tr>${rows.join('')}</table>`;
      this.$('gpa-selftest-box').hidden = false;
      this.store.set({ gpaSelfTest: { pass, total } });
    }, 'Self-test');
  }

  async exportTiffs() {
    for (const name of this.exported()) {
      const bytes = await this.bridge.call('gpaTiff', { name });
      download(new Blob([bytes], { type: 'image/tiff' }), `${this.app.baseName()}_${name}.tif`);
    }
  }

  exportJson() {
    const text = JSON.stringify({ source: this.state.dataset, gpa: this.result.summary }, null, 2);
    download(new Blob([text], { type: 'application/json' }), `${this.app.baseName()}_gpa.json`);
  }

  /** The four maps, their colour bars and the profile, as one PNG figure. */
  async exportFigure() {
    const tiles = MAPS.map(([n]) => this.$(`gpa-${n}`));
    const prof = this.$('gpa-profile');
    const w = tiles[0].width, h = tiles[0].height;
    const fig = new OffscreenCanvas(2 * w, 2 * h + prof.height);
    const ctx = fig.getContext('2d');
    tiles.forEach((t, k) => ctx.drawImage(t, (k % 2) * w, Math.floor(k / 2) * h));
    ctx.drawImage(prof, 0, 2 * h, 2 * w, prof.height);
    download(await fig.convertToBlob({ type: 'image/png' }), `${this.app.baseName()}_strain.png`);
  }

  /**
   * The four maps as an SVG figure: each map an embedded PNG at its pixel size, with vector
   * titles, red–blue colour bars, limits, the reference and edge band, and the source and
   * parameters as a caption.
   */
  async exportSvg() {
    const { width: w, height: h, summary: s } = this.result;
    const scale = 256 / Math.max(w, h), W = Math.round(w * scale), H = Math.round(h * scale);
    const cell = { w: W + 90, h: H + 40 };
    const esc = (t) => String(t).replace(/&/g, '&amp;').replace(/</g, '&lt;');
    const parts = [];
    for (const [k, [name, label]] of MAPS.entries()) {
      const bm = this.bitmaps[name];
      const c = new OffscreenCanvas(bm.width, bm.height);
      c.getContext('2d').drawImage(bm, 0, 0);
      const url = await new Promise((res) => { const fr = new FileReader(); c.convertToBlob({ type: 'image/png' }).then((b) => { fr.onload = () => res(fr.result); fr.readAsDataURL(b); }); });
      const x = (k % 2) * cell.w + 10, y = Math.floor(k / 2) * cell.h + 10;
      const r = s.reference, b = s.border_px, lim = this.limits[name];
      parts.push(`<g transform="translate(${x},${y})">
  <text x="0" y="12" font-size="12">${esc(label)}</text>
  <image x="0" y="18" width="${W}" height="${H}" preserveAspectRatio="none" style="image-rendering:pixelated" href="${url}"/>
  <rect x="${b * scale}" y="${18 + b * scale}" width="${(w - 2 * b) * scale}" height="${(h - 2 * b) * scale}" fill="none" stroke="#888" stroke-dasharray="3 3"/>
  <rect x="${r.x0 * scale}" y="${18 + r.y0 * scale}" width="${(r.x1 - r.x0) * scale}" height="${(r.y1 - r.y0) * scale}" fill="none" stroke="#d4a800"/>
  <rect x="${W + 8}" y="18" width="10" height="${H}" fill="url(#rdbu)"/>
  <text x="${W + 22}" y="26" font-size="10">+${esc(fmt(lim))}</text>
  <text x="${W + 22}" y="${18 + H / 2 + 3}" font-size="10">0</text>
  <text x="${W + 22}" y="${18 + H}" font-size="10">−${esc(fmt(lim))}</text>
</g>`);
    }
    const g = s.g.map((v, k) => `g${k + 1} (${v.per_px.map((x) => x.toFixed(4)).join(', ')}) /px`).join(', ');
    const caption = [
      `${this.state.dataset || 'image'}: ${g}`,
      `${s.mask} mask ${s.mask_radius_per_px.toFixed(4)} /px, resolution ${s.resolution_px.toFixed(1)} px; reference (yellow) x ${s.reference.x0}–${s.reference.x1}, y ${s.reference.y0}–${s.reference.y1}; dashed: edge band; atomlens ${this.state.version || ''}`,
    ];
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${2 * cell.w + 20}" height="${2 * cell.h + 40}" font-family="sans-serif">
<defs><linearGradient id="rdbu" x1="0" y1="0" x2="0" y2="1"><stop offset="0" stop-color="#b2182b"/><stop offset="0.5" stop-color="#f7f7f7"/><stop offset="1" stop-color="#2166ac"/></linearGradient></defs>
<rect width="100%" height="100%" fill="#fff"/>
${parts.join('\n')}
${caption.map((t, i) => `<text x="10" y="${2 * cell.h + 22 + 13 * i}" font-size="10">${esc(t)}</text>`).join('\n')}
</svg>`;
    download(new Blob([svg], { type: 'image/svg+xml' }), `${this.app.baseName()}_strain.svg`);
  }
}
