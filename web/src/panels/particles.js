// The Particles section: segmentation, facets, surface columns, cross-section histogram with the
// counting mixture, ordering, a rotatable 3-D model and the exports (the CLI's files). Its
// parameters (a core `AnalysisParams`, from the engine's defaults) are also the Compare and
// Batch sections'. Science in Rust; this file draws.
import { fitCanvas, fmt } from '../views/plots.js';
import { binned, clearPlot, component, plot } from '../views/charts.js';
import { download } from '../actions.js';

const SITE = ['interior', 'surface', 'edge'];
const LATTICE_OUTLINE = {
  zone_axis: { color: 'rgba(120,200,255,0.8)', label: 'zone axis' },
  fringes: { color: '#ffd43b', label: 'fringes only (off axis, not counted)' },
  none: { color: '#ff6b6b', label: 'no lattice (not counted)' },
};
const SITE_COLOURS = ['#9aa3ad', '#ffb347', '#ff6b6b'];
const KIND = ['Pt-rich', 'M-rich', 'uniform'];
const KIND_COLOURS = ['#ffe066', '#4dabf7', '#9aa3ad'];

function ramp(t) {
  const u = Math.max(0, Math.min(1, t));
  return `hsl(${Math.round(260 - 220 * u)}, 85%, ${Math.round(35 + 30 * u)}%)`;
}

export class ParticlesPanel {
  constructor(app) {
    const $ = app.$;
    Object.assign(this, { app, bridge: app.bridge, viewer: app.viewer, store: app.store, $ });
    app.store.on('image', () => this.clear());
    $('pa-demo-ordered').onclick = () => app.open.openDemo('ordered');
    $('pa-demo-pair').onclick = () => app.open.openDemo('pair');
    this.result = null;
    this.model = null;
    this.rot = { yaw: 0.6, pitch: 0.5 };
    $('pa-run').onclick = () => this.run();
    $('pa-color').onchange = () => this.paint();
    $('pa-library').onchange = () => this.readLibrary();
    for (const [id, what, ext] of [['pa-csv', 'particles_csv', 'particles.csv'], ['pa-cols', 'columns_csv', 'columns.csv'],
      ['pa-facets', 'facets_csv', 'facets.csv'], ['pa-defects', 'defects_csv', 'defects.csv'], ['pa-json', 'json', 'particles.json'], ['pa-xyz', 'xyz', 'model.xyz']]) {
      $(id).onclick = () => this.export(what, ext);
    }
    this.modelDrag(this.$('pa-model'));
  }

  get state() { return this.store.state; }

  setDefaults({ analysis, beam_step_nm }) {
    this.defaults = analysis;
    this.beamStep = beam_step_nm;
    this.$('pa-maxg').value = analysis.counting.statistical?.max_components ?? '';
  }

  /** The image changed: the particle results belong to the image they were measured on. */
  clear() {
    this.result = null;
    this.$('pa-summary').textContent = '';
    this.$('pa-panel').hidden = true;
    for (const id of ['pa-csv', 'pa-cols', 'pa-facets', 'pa-defects', 'pa-json', 'pa-xyz']) this.$(id).disabled = true;
    this.viewer.paths = null;
  }

  /** The analysis parameters (`core::particles::chain::AnalysisParams`): the engine's defaults,
   * the Columns panel's settings, and this form. */
  params() {
    const v = (id) => (this.$(id).value === '' ? null : +this.$(id).value);
    const p = structuredClone(this.defaults);
    p.columns = this.app.columns.params();
    Object.assign(p.particles, { smoothing: v('pa-smooth'), threshold: v('pa-thr'), no_split: !this.$('pa-split').checked });
    p.counting = this.library ? { library: this.library } : { statistical: { max_components: v('pa-maxg') ?? this.defaults.counting.statistical.max_components } };
    return p;
  }

  async readLibrary() {
    const f = this.$('pa-library').files[0];
    this.library = null;
    this.$('pa-lib-label').textContent = 'ICL';
    if (!f) return;
    try {
      this.library = Array.from(await this.bridge.call('parseLibrary', { text: await f.text() }));
      this.$('pa-lib-label').textContent = `${this.library.length} entries`;
    } catch (e) {
      this.app.actions.showError(`Library ${f.name}: ${e.message}`, e.kind);
      this.$('pa-library').value = '';
    }
  }

  run() {
    return this.app.actions.run('Segmenting particles, counting atoms…', async () => {
      const t0 = performance.now();
      const r = await this.bridge.call('analyseParticles', { params: this.params() });
      r.seconds = (performance.now() - t0) / 1000;
      this.show(r);
    }, 'Particles');
  }

  show(r) {
    this.result = r;
    const u = r.unit === 'nm' ? 'nm' : 'px', px = r.unit === 'nm' ? r.pixel_size : 1;
    const atoms = r.particles.reduce((s, p) => s + p.atoms, 0);
    this.store.set({ particles: {
      count: r.particles.length, columns: r.x.length, atoms, seconds: r.seconds,
      diameters: r.particles.map((p) => p.diameter_px * px), lattices: r.particles.map((p) => p.lattice.kind), ordered: r.particles.map((p) => p.ordered_fraction),
      facets: r.particles.reduce((s, p) => s + p.facets.length, 0),
      defects: r.particles.reduce((s, p) => s + p.defects.length, 0), misfit: Array.from(r.misfit).filter(Boolean).length, errors: r.particles.map((p) => p.counting_error).filter(Boolean),
    } });
    const lines = [`${r.particles.length} particle(s), ${r.x.length} of ${r.total_columns} columns inside${r.seconds == null ? ' (restored)' : `, ${fmt(r.seconds)} s`}.`];
    for (const p of r.particles) {
      lines.push(`#${p.id}: ${fmt(p.diameter_px * px)} ${u} across, aspect ${fmt(p.aspect_ratio)}, ${p.lattice_summary}, ${p.columns} columns ` +
        `(${p.surface} surface, ${p.edge} edge), ${p.facets.length} facets` +
        (p.atoms ? `, ${p.atoms}${p.atoms_sd > 0 ? ` ± ${Math.round(p.atoms_sd)}` : ''} atoms` : '') + (p.ordering_summary ? `, ${p.ordering_summary}` : '') +
        (p.touches_border ? ' — touches the border (size and surface cut)' : ''));
      if (p.counting_error) lines.push(`   not counted: ${p.counting_error}`);
      if (p.counting_note) lines.push(`   counted: ${p.counting_note}`);
      if (p.counting_warning) lines.push(`   ⚠ ${p.counting_warning}`);
      const miss = p.defects.filter((d) => d.kind === 'missing').length, extra = p.defects.length - miss;
      const faults = p.regions.filter((g) => g.kind === 'stacking_fault').length, twins = p.regions.length - faults;
      if (p.defects.length || p.regions.length) {
        lines.push(`   defects: ${miss} missing, ${extra} extra columns (magenta); ${faults} stacking fault(s), ${twins} twin domain(s) (colour by defects)`);
      }
    }
    for (const n of r.notes || []) lines.push(`Note: ${n}.`);
    this.$('pa-summary').textContent = lines.join('\n');
    for (const id of ['pa-csv', 'pa-cols', 'pa-facets', 'pa-defects', 'pa-json']) this.$(id).disabled = false;
    this.$('pa-xyz').disabled = !atoms;
    this.$('pa-panel').hidden = false;
    this.paint();
    this.drawHistogram();
    this.drawOrdering();
    this.loadModel(!!atoms);
  }

  /** Outline and facets as paths; columns coloured by the chosen property. */
  paint() {
    const r = this.result;
    if (!r) return;
    const by = this.$('pa-color').value, c = r;
    let colors, legend;
    if (by === 'site') {
      colors = Array.from(c.site, (s) => SITE_COLOURS[s]);
      legend = SITE.map((s, k) => `<span style="color:${SITE_COLOURS[k]}">●</span> ${s}`).join(' ');
    } else if (by === 'kind') {
      colors = Array.from(c.kind, (s) => KIND_COLOURS[s]);
      legend = KIND.map((s, k) => `<span style="color:${KIND_COLOURS[k]}">●</span> ${s}`).join(' ');
    } else if (by === 'misfit') {
      colors = Array.from(c.misfit, (o) => (o ? '#ff4d4f' : '#9aa3ad'));
      legend = '<span style="color:#ff4d4f">●</span> off the lattice (twin / fault / boundary) <span style="color:#9aa3ad">●</span> on it · ◇ missing ✕ extra';
    } else if (by === 'ordered') {
      colors = Array.from(c.ordered, (o) => (o ? '#51cf66' : '#9aa3ad'));
      legend = '<span style="color:#51cf66">●</span> ordered <span style="color:#9aa3ad">●</span> not';
    } else {
      const v = Array.from(by === 'atoms' ? c.atoms : c.cross_section);
      const lo = Math.min(...v), hi = Math.max(...v);
      colors = v.map((x) => ramp((x - lo) / (hi - lo || 1)));
      legend = `${by === 'atoms' ? 'atoms' : 'cross-section'}: <span style="color:${ramp(0)}">●</span> ${fmt(lo)} … <span style="color:${ramp(1)}">●</span> ${fmt(hi)}`;
    }
    // Outlines by each particle's own lattice: off a zone axis its columns are not resolved.
    legend += ` · outline: ${Object.values(LATTICE_OUTLINE).map((o) => `<span style="color:${o.color}">▭</span> ${o.label}`).join(' ')}`;
    this.$('pa-legend').innerHTML = legend;
    this.viewer.overlay = { x: c.x, y: c.y, colors, radius: 3.5, selected: null };
    const s = r.spacing * 0.3;
    this.viewer.paths = r.particles.flatMap((p) => [
      { points: p.outline, color: LATTICE_OUTLINE[p.lattice.kind].color, closed: true, width: p.lattice.kind === 'zone_axis' ? 1 : 2.5 },
      ...p.facets.map((f) => ({ points: [...f.from, ...f.to], color: '#ff922b', closed: false, width: 2.5 })),
      // Missing columns as magenta diamonds, extra ones as crosses.
      ...p.defects.map((d) => (d.kind === 'missing'
        ? { points: [d.x, d.y - s, d.x + s, d.y, d.x, d.y + s, d.x - s, d.y], color: '#f06595', closed: true, width: 2.5 }
        : { points: [d.x - s, d.y - s, d.x + s, d.y + s, d.x, d.y, d.x + s, d.y - s, d.x - s, d.y + s], color: '#f06595', closed: false, width: 2.5 })),
    ]);
    this.viewer.draw();
  }

  /** Cross-sections of the largest counted particle with the mixture's components. */
  drawHistogram() {
    const el = this.$('pa-hist');
    const r = this.result;
    const p = r.particles.find((q) => q.mixture) || r.particles[0];
    if (!p) { clearPlot(el); return; }
    // The columns counted by their own cross-section (an alloy's M-rich ones take their neighbours').
    const v = Array.from(r.cross_section).filter((_, i) => r.particle[i] === p.id && !r.from_neighbours[i]);
    const aside = Array.from(r.from_neighbours).filter((f, i) => f && r.particle[i] === p.id).length;
    const b = binned(v, 60), m = p.mixture;
    plot(el, {
      title: `cross-sections of particle ${p.id}`, x: { label: 'cross-section (image units × px²)', min: b.lo, max: b.hi }, y: { label: 'columns' },
      series: [
        { name: 'columns', type: 'line', step: true, area: true, color: '#6f8aa6', data: b.centres.map((x, i) => [x, b.counts[i]]) },
        // Each class of the mixture as counts per bin, named by its atoms.
        ...(m ? m.means.map((mu, k) => ({ name: 'classes (atoms on top)', type: 'line', color: '#ff922b', data: component(b, m.weights[k], mu, m.sigmas[k]) })) : []),
      ],
      marks: m ? m.means.map((mu, k) => ({ x: mu, label: String(m.atoms[k]), color: 'rgba(255,179,71,0.35)' })) : [],
    });
    this.$('pa-hist-label').textContent = m
      ? `Cross-sections of particle ${p.id}: ${m.means.length} thickness classes on one curve, chosen by ICL (atoms on top); 1 atom = ${fmt(m.unit)}`
      : `Cross-sections of particle ${p.id}${p.counting_error ? ' (not counted)' : ''}`;
    if (aside) this.$('pa-hist-label').textContent += `; ${aside} M-rich columns (counted from their neighbours' thickness) not drawn`;
  }

  /** ln(contrast) of the largest particle's columns with the ordering mixture: M-rich on the
   * left, Pt-rich (and any pure shell) to the right; one component means no ordering. */
  drawOrdering() {
    const el = this.$('pa-order');
    // The largest particle whose columns are resolved (on a zone axis).
    const r = this.result, p = r.particles.find((q) => q.lattice.kind === 'zone_axis') || r.particles[0];
    const v = p ? Array.from(r.contrast).filter((c, i) => r.particle[i] === p.id && c > 0).map(Math.log) : [];
    if (!v.length) { clearPlot(el); return; }
    const b = binned(v, 50), m = p.ordering_mixture;
    // M-rich (blue) left of the midpoint between the two populations, Pt-rich (yellow) right.
    const cut = m?.means.length > 1 ? (m.means[0] + m.means[1]) / 2 : -Infinity;
    const half = (left) => b.centres.map((x, i) => [x, (x < cut) === left ? b.counts[i] : null]);
    plot(el, {
      title: `ordering of particle ${p.id}`, x: { label: 'ln(contrast against the thickness trend)', min: b.lo, max: b.hi }, y: { label: 'columns' },
      series: [
        ...(cut > -Infinity ? [{ name: 'M-rich', type: 'line', step: true, area: true, color: '#4dabf7', data: half(true) }] : []),
        { name: 'Pt-rich', type: 'line', step: true, area: true, color: '#ffe066', data: half(false) },
        ...(m ? m.means.map((mu, k) => ({ name: 'populations', type: 'line', color: '#ff922b', data: component(b, m.weights[k], mu, m.sigmas[k]) })) : []),
      ],
    });
    this.$('pa-order-label').textContent = m && m.means.length > 1
      ? `Ordering of particle ${p.id}: ${m.means.length} populations; M-rich (blue) at ${fmt(Math.exp(m.means[0]))}× what their neighbours' thickness trend predicts; ${p.ordering_summary || 'no column in an ordered neighbourhood'}`
      : `Ordering of particle ${p.id}: one population — no ordering visible`;
  }

  async loadModel(counted) {
    this.model = counted ? await this.bridge.call('particleModel', { step: this.beamStep }).catch(() => null) : null;
    this.drawModel();
  }

  modelDrag(canvas) {
    let last = null;
    canvas.addEventListener('pointerdown', (e) => { last = [e.clientX, e.clientY]; canvas.setPointerCapture?.(e.pointerId); });
    canvas.addEventListener('pointermove', (e) => {
      if (!last) return;
      this.rot.yaw += (e.clientX - last[0]) * 0.01;
      this.rot.pitch = Math.max(-1.5, Math.min(1.5, this.rot.pitch + (e.clientY - last[1]) * 0.01));
      last = [e.clientX, e.clientY];
      this.drawModel();
    });
    canvas.addEventListener('pointerup', () => { last = null; });
  }

  /** The stacked-atom model as shaded spheres, back to front, rotated by dragging. */
  drawModel() {
    const canvas = this.$('pa-model');
    const dpr = fitCanvas(canvas);
    const ctx = canvas.getContext('2d'), W = canvas.width, H = canvas.height;
    ctx.fillStyle = '#0b0c0e'; ctx.fillRect(0, 0, W, H);
    const m = this.model;
    ctx.fillStyle = '#8a939c'; ctx.font = `${10 * dpr}px system-ui, sans-serif`;
    if (!m || !m.length) { ctx.fillText('no counted atoms', 8 * dpr, 16 * dpr); return; }
    const n = m.length / 3;
    let cx = 0, cy = 0;
    for (let i = 0; i < n; i++) { cx += m[3 * i]; cy += m[3 * i + 1]; }
    cx /= n; cy /= n;
    const { yaw, pitch } = this.rot, [sy, cyw, sp, cp] = [Math.sin(yaw), Math.cos(yaw), Math.sin(pitch), Math.cos(pitch)];
    const pts = [];
    let extent = 1;
    for (let i = 0; i < n; i++) {
      const x = m[3 * i] - cx, y = m[3 * i + 1] - cy, z = m[3 * i + 2];
      const x1 = cyw * x + sy * z, z1 = -sy * x + cyw * z;
      const y2 = cp * y - sp * z1, z2 = sp * y + cp * z1;
      pts.push([x1, y2, z2]);
      extent = Math.max(extent, Math.abs(x1), Math.abs(y2));
    }
    pts.sort((a, b) => a[2] - b[2]);
    const s = (Math.min(W, H) * 0.45) / extent, r = Math.max(1.5 * dpr, 0.9 * s);
    const zmin = pts[0][2], zmax = pts[pts.length - 1][2];
    for (const [x, y, z] of pts) {
      const t = (z - zmin) / (zmax - zmin || 1);
      ctx.fillStyle = `hsl(45, 70%, ${Math.round(25 + 45 * t)}%)`;
      ctx.beginPath(); ctx.arc(W / 2 + x * s, H / 2 + y * s, r, 0, 2 * Math.PI); ctx.fill();
    }
    ctx.fillStyle = '#8a939c';
    ctx.fillText(`${n} atoms · drag to rotate`, 8 * dpr, 16 * dpr);
  }

  async export(what, ext) {
    try {
      const text = await this.bridge.call('particleExport', { what, source: this.state.dataset || '' });
      download(new Blob([text], { type: ext.endsWith('json') ? 'application/json' : 'text/plain' }), `${this.app.baseName()}-${ext}`);
    } catch (e) { this.app.actions.showError(`Export: ${e.message}`); }
  }

}
