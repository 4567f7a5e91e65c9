// The Clean-up section: one form for every filter, built from the engine's list of methods at
// their defaults (core::denoise::Method::ALL): the method's numeric parameters as inputs, its
// lattice switch as a checkbox. The result and what it removed are added as signals, with the
// before/after split over the result.
import { fillSelect } from '../forms.js';

const LABELS = {
  wiener: 'Wiener (adaptive)', gaussian: 'Gaussian', median: 'median', bandpass: 'band-pass', bragg: 'Bragg (periodic)',
  non_local_means: 'non-local means', bm3d: 'BM3D (Poisson-aware)', noise2void: 'Noise2Void (learns this image)', background: 'background (Gaussian)', rolling_ball: 'background (rolling ball)',
};
const FIELDS = { sigma: 'σ px', radius: 'radius px', small: 'small px', large: 'large px', patch: 'patch px', search: 'search px', steps: 'training steps', seed: 'seed' };

export class CleanupPanel {
  constructor(app) {
    this.app = app;
    app.$('dn-method').onchange = () => this.form();
    app.$('dn-apply').onclick = () => this.apply();
  }

  setDefaults(d) {
    this.methods = Object.fromEntries(d.denoise.map((m) => [m.method, m]));
    fillSelect(this.app.$('dn-method'), d.denoise.map((m) => m.method), LABELS);
    this.form();
  }

  /** The chosen method's numeric parameters (at most two) with their defaults. */
  fields(name) {
    return Object.entries(this.methods[name]).filter(([k, v]) => k !== 'method' && typeof v === 'number');
  }

  form() {
    const $ = this.app.$, name = $('dn-method').value;
    const f = this.fields(name);
    $('dn-lattice-row').hidden = !('lattice' in this.methods[name]);
    ['a', 'b'].forEach((k, i) => {
      $(`dn-${k}`).hidden = $(`dn-${k}-label`).hidden = !f[i];
      if (!f[i]) return;
      $(`dn-${k}-label`).textContent = name === 'bragg' && f[i][0] === 'radius' ? 'radius ×|g|' : FIELDS[f[i][0]] || f[i][0];
      $(`dn-${k}`).value = f[i][1];
    });
  }

  apply() {
    const { $, bridge, actions, store, signals, display } = this.app;
    const name = $('dn-method').value;
    const method = { ...this.methods[name] };
    this.fields(name).forEach(([key], i) => { method[key] = +$(`dn-${'ab'[i]}`).value; });
    if ('lattice' in method) method.lattice = $('dn-lattice').checked;
    return actions.run('Cleaning up…', async () => {
      const source = { ...signals.shown };
      const r = await bridge.call('denoise', { method });
      store.set({ denoised: { method: name, index: r.index, source } });
      display.setSplit({ source, left: 'before', right: 'shown' }, false);
      await signals.update(r.signals, r.index);
    }, 'Clean-up');
  }
}
