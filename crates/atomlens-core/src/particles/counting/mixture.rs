//! The counting mixture: cross-sections as a Gaussian mixture whose components are consecutive
//! atom counts n = n_lo…n_hi with means on one smooth curve, μ(n) = u·m + q·m², m = n − offset
//! (the offset 0–0.3 atom; u: the step per atom; q < 0 where channelling makes thick columns
//! scatter less per atom), and widths that grow with thickness, σ(n)² = s²·(1 + κ·n). Each
//! candidate number of thickness steps is fitted by EM and the one of lowest ICL kept
//! (De Backer et al. 2016 select the number of components the same way, with free means).
//!
//! Why constrained: one free mean per class (2g parameters, a dozen columns per class) cannot
//! resolve classes scattered a fifth of a step or more, and ICL falls back to one class; on one
//! curve the whole particle fixes four shape parameters and only the weights are per class.
//! Past ~0.3 of a step (a frozen-phonon Pt particle: 0.3–0.55) nothing resolves them; the
//! refusals below say so, and a simulated library counts them.
use serde::{Deserialize, Serialize};

use crate::CoreError;

/// A fitted counting mixture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountMixture {
    /// Atoms of each component: consecutive, ascending.
    pub atoms: Vec<u32>,
    /// Component means μ(n), ascending.
    pub means: Vec<f64>,
    /// Component standard deviations σ(n).
    pub sigmas: Vec<f64>,
    /// Component weights (a thickness with no column has weight 0).
    pub weights: Vec<f64>,
    /// One atom's cross-section: μ'(0) = u.
    pub unit: f64,
    /// The curvature q of μ(n) = u·m + q·m², m = n − `offset`.
    pub curvature: f64,
    /// Where the curve meets zero, in atoms (0–½: the first atom of a column, not yet
    /// channelling, scatters less than the next ones).
    pub offset: f64,
    /// `(components, ICL)` of every candidate fitted; the lowest was chosen.
    pub icl: Vec<(usize, f64)>,
}

/// Terms more than this far (in log) below the largest contribute < 1e-17 and are skipped.
const NEGLIGIBLE: f64 = 40.0;

/// ICL difference below which two readings of the steps are too close to choose between (a
/// difference of 10 on the −2 ln L scale is "very strong" evidence, Kass & Raftery 1995).
const AMBIGUOUS: f64 = 10.0;

/// Where the curve may meet zero, in atoms: a simulated Pt [110] library crosses at ~0.3
/// (0.209, 0.481, 0.794 of the beam·px for 1, 2, 3 atoms: the first atom scatters least). At
/// most 0.3: with half an atom and the curvature, a reading shifted by a whole atom bends onto
/// nearly the same curve and realistic draws become ambiguous.
const OFFSETS: [f64; 4] = [0.0, 0.1, 0.2, 0.3];

/// Range of the last step over the first, minus one: 2q·n_top/u. HAADF cross-sections grow
/// about linearly and then saturate (channelling); a curve bent upwards would only trade steps.
const CURVATURE: std::ops::RangeInclusive<f64> = -0.5..=0.1;

/// Growth factors κ the M-step tries for σ(n)² = s²(1 + κn) (generalised EM: the current κ is
/// always among them, so the likelihood never falls).
const GROWTH: [f64; 9] = [0.0, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0];

impl CountMixture {
    /// μ(n) on the fitted curve.
    pub fn mean_of(&self, n: u32) -> f64 {
        let m = n as f64 - self.offset;
        self.unit * m + self.curvature * m * m
    }

    /// `ln(wⱼ N(v; μⱼ, σⱼ))` up to a constant, per component.
    fn log_terms(&self, v: f64) -> impl Iterator<Item = f64> + '_ {
        (0..self.means.len()).map(move |j| {
            let z = (v - self.means[j]) / self.sigmas[j];
            self.weights[j].ln() - self.sigmas[j].ln() - 0.5 * z * z
        })
    }

    /// Probability of each component given cross-section `v`.
    pub fn posterior(&self, v: f64) -> Vec<f64> {
        let (t, mx, s) = self.normalised(v);
        t.into_iter().map(|x| if x > mx - NEGLIGIBLE { (x - mx).exp() / s } else { 0.0 }).collect()
    }

    /// The log-terms of `v`, the largest of them and Σ exp(term − largest) over the terms that
    /// are not negligible.
    fn normalised(&self, v: f64) -> (Vec<f64>, f64, f64) {
        let t: Vec<f64> = self.log_terms(v).collect();
        let mx = t.iter().cloned().fold(f64::MIN, f64::max);
        let s = t.iter().filter(|&&y| y > mx - NEGLIGIBLE).map(|y| (y - mx).exp()).sum();
        (t, mx, s)
    }

    /// The most probable component of `v`.
    pub fn classify(&self, v: f64) -> usize {
        let p = self.posterior(v);
        (0..p.len()).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap_or(0)
    }

    /// Probability of the most probable count of a column of cross-section `v`.
    pub fn probability(&self, v: f64) -> f64 {
        self.posterior(v).into_iter().fold(0.0, f64::max)
    }

    /// Expected atoms of a column of cross-section `v` and their variance under its posterior.
    pub fn moments(&self, v: f64) -> (f64, f64) {
        let p = self.posterior(v);
        let m: f64 = p.iter().zip(&self.atoms).map(|(p, &n)| p * n as f64).sum();
        (m, p.iter().zip(&self.atoms).map(|(p, &n)| p * (n as f64 - m).powi(2)).sum())
    }

    /// Expected total atoms of columns with cross-sections `values` and its standard deviation
    /// (each column's count uncertain by its posterior, columns independent; the mixture's own
    /// parameters taken as known).
    pub fn total(&self, values: &[f64]) -> (f64, f64) {
        let (sum, var) = values.iter().map(|&v| self.moments(v)).fold((0.0, 0.0), |a, b| (a.0 + b.0, a.1 + b.1));
        (sum, var.sqrt())
    }
}

/// Fit every candidate number of thickness steps (the largest count 1…`max_g`) and keep the
/// mixture of lowest ICL.
pub fn select(values: &[f64], max_g: usize) -> Result<CountMixture, CoreError> {
    let n = values.len();
    if n < 8 {
        return Err(CoreError::InvalidParameter {
            name: "columns",
            reason: format!("{n} columns are too few to count statistically (at least 8; or use a library)"),
        });
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let top = v[(n * 99) / 100];
    if !(top > 0.0) || v[n - 1] <= v[0] {
        return Err(CoreError::InvalidParameter {
            name: "cross-sections",
            reason: "no mixture could be fitted (the cross-sections are all equal or not above the support)".into(),
        });
    }
    // Candidate k puts the top percentile at k atoms; each is independent, so in parallel.
    let gs = max_g.max(1);
    let fits: Vec<(f64, CountMixture)> = crate::math::par::map(gs, |k| {
        let m = em(&v, top / (gs - k) as f64, gs - k)?;
        Some((icl(&v, &m), m))
    })
    .into_iter()
    .flatten()
    .collect();
    let mut table: Vec<(usize, f64)> = fits.iter().map(|(s, m)| (occupied(m, n), *s)).collect();
    table.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
    table.dedup_by_key(|e| e.0);
    let by_icl = |a: &&(f64, CountMixture), b: &&(f64, CountMixture)| a.0.total_cmp(&b.0);
    let Some((_, any)) = fits.iter().min_by(by_icl) else {
        return Err(CoreError::InvalidParameter {
            name: "cross-sections",
            reason: "no mixture could be fitted".into(),
        });
    };
    if occupied(any, n) < 2 {
        return Err(CoreError::NotFound {
            what: "thickness steps",
            reason: "the cross-sections form one class: statistical counting needs thickness steps that \
                     stand out from the noise (columns of several thicknesses, at a higher dose for thick \
                     particles), or a library of cross-sections per atom count"
                .into(),
        });
    }
    // A 3-D particle: its thickest column holds at least a third as many atoms as its projection
    // is columns wide. Merged classes (two broad ones for a particle of many thicknesses) fail this.
    let thinnest_top = ((4.0 * n as f64 / std::f64::consts::PI).sqrt() / 3.0).ceil() as u32;
    let plausible: Vec<&(f64, CountMixture)> =
        fits.iter().filter(|(_, m)| m.atoms.last().is_some_and(|&t| t >= thinnest_top)).collect();
    let Some(&(score, ref best)) = plausible.iter().copied().min_by(by_icl) else {
        return Err(CoreError::NotFound {
            what: "thickness steps",
            reason: format!(
                "the cross-sections fall into classes of at most {} atoms, too few for a particle {n} columns \
                 across its projection (at least {thinnest_top}): the thickness steps are not resolved — use a \
                 library of cross-sections per atom count, or a higher dose",
                any.atoms.last().copied().unwrap_or(0)
            ),
        });
    };
    // Another reading nearly as likely that counts a fifth of the columns differently: the steps
    // are ambiguous (ΔICL < 10 is not strong evidence).
    let counts = |m: &CountMixture| v.iter().map(|&x| m.atoms[m.classify(x)]).collect::<Vec<u32>>();
    let mine = counts(best);
    let differs = |m: &CountMixture| counts(m).iter().zip(&mine).filter(|(a, b)| a != b).count() * 5 >= n;
    if let Some((rival, r)) = plausible
        .iter()
        .copied()
        .filter(|(_, m)| differs(m))
        .min_by(by_icl)
        .filter(|(rival, _)| *rival - score < AMBIGUOUS)
    {
        return Err(CoreError::NotFound {
            what: "thickness steps",
            reason: format!(
                "the thickness steps are ambiguous: one atom = {:.4} ({} classes) and = {:.4} ({} classes), \
                 which count a fifth of the columns or more differently, fit almost equally (ICL {score:.1} and {rival:.1}) — use a library of cross-sections per atom \
                 count, or a higher dose",
                best.unit,
                occupied(best, n),
                r.unit,
                occupied(r, n)
            ),
        });
    }
    let mut best = best.clone();
    best.icl = table;
    Ok(best)
}

/// Components holding at least half of one of `n` columns.
fn occupied(m: &CountMixture, n: usize) -> usize {
    m.weights.iter().filter(|&&w| w * n as f64 >= 0.5).count()
}

/// Thicknesses from the thinnest to the thickest occupied one: each has a weight, an empty one
/// too (a convex particle has every thickness between its edge and its centre, so a reading with
/// every other class empty — half the unit — pays for its gaps).
fn span(m: &CountMixture, n: usize) -> usize {
    let held = |w: &f64| *w * n as f64 >= 0.5;
    match (m.weights.iter().position(held), m.weights.iter().rposition(held)) {
        (Some(a), Some(b)) => b - a + 1,
        _ => 0,
    }
}

/// ICL = −2 ln L + (free parameters) ln N + 2 × the entropy of the hard assignment
/// (Biernacki et al. 2000). Free: one weight per thickness in the span but one, the width s,
/// and where two or more are occupied u, q and κ (one class: its mean).
fn icl(v: &[f64], m: &CountMixture) -> f64 {
    let (ll, entropy) = likelihood(v, m);
    let g = span(m, v.len());
    let params = (if g >= 2 { g + 3 } else { 2 }) as f64;
    -2.0 * ll + params * (v.len() as f64).ln() + 2.0 * entropy
}

/// Log-likelihood and the entropy of the assignment (Σ −ln τ of the winning component).
fn likelihood(v: &[f64], m: &CountMixture) -> (f64, f64) {
    let norm = 0.5 * (2.0 * std::f64::consts::PI).ln();
    let (mut ll, mut entropy) = (0.0, 0.0);
    for &x in v {
        let (_, mx, s) = m.normalised(x);
        ll += mx + s.ln() - norm;
        entropy += s.ln();
    }
    (ll, entropy)
}

/// EM from u = `unit` with components 1…`n_top` + 1 (those below the smallest value's count
/// dropped), linear means and equal widths to start. `None` when the fit degenerates.
fn em(v: &[f64], unit: f64, n_top: usize) -> Option<CountMixture> {
    let n = v.len();
    let lo = ((v[0] / unit).floor() as i64 - 1).max(1) as u32;
    let hi = (n_top as u32 + 1).max(lo + 1);
    let atoms: Vec<u32> = (lo..=hi).collect();
    let g = atoms.len();
    let mut m = CountMixture {
        means: atoms.iter().map(|&a| unit * a as f64).collect(),
        sigmas: vec![0.3 * unit; g],
        weights: vec![1.0 / g as f64; g],
        atoms,
        unit,
        curvature: 0.0,
        offset: 0.0,
        icl: Vec::new(),
    };
    let (mut s2, mut kappa) = ((0.3 * unit).powi(2), 0.0);
    let floor = 1e-6 * (v[n - 1] - v[0]).powi(2);
    let mut ll_prev = f64::MIN;
    let (mut s0, mut s1, mut sq) = (vec![0.0; g], vec![0.0; g], vec![0.0; g]);
    let mut t = vec![0.0; g];
    for _ in 0..300 {
        // E-step: sufficient statistics per component.
        s0.fill(0.0);
        s1.fill(0.0);
        sq.fill(0.0);
        // Values and means both ascend, so each value visits only the components within reach
        // of it (a sliding window); the rest are negligible.
        let c: Vec<f64> = (0..g).map(|j| m.weights[j].ln() - m.sigmas[j].ln()).collect();
        let finite = c.iter().filter(|x| x.is_finite());
        let spread = finite.clone().cloned().fold(f64::MIN, f64::max) - finite.cloned().fold(f64::MAX, f64::min);
        let reach = m.sigmas.iter().cloned().fold(0.0, f64::max) * (2.0 * (NEGLIGIBLE + spread)).sqrt();
        let (mut lo, mut hi, mut ll) = (0, 0, 0.0);
        for &x in v {
            while lo < g && m.means[lo] < x - reach {
                lo += 1;
            }
            while hi < g && m.means[hi] <= x + reach {
                hi += 1;
            }
            let (mut a, mut b) = if lo < hi { (lo, hi) } else { nearest(&m.means, x) };
            let mut mx = terms(&c, &m, x, a..b, &mut t);
            if !mx.is_finite() {
                // Only empty components in reach: take them all.
                (a, b) = (0, g);
                mx = terms(&c, &m, x, a..b, &mut t);
            }
            let mut sum = 0.0;
            for tj in &mut t[a..b] {
                *tj = if *tj > mx - NEGLIGIBLE { (*tj - mx).exp() } else { 0.0 };
                sum += *tj;
            }
            ll += mx + sum.ln();
            for j in a..b {
                let r = t[j] / sum;
                s0[j] += r;
                s1[j] += r * x;
                sq[j] += r * x * x;
            }
        }
        if !ll.is_finite() {
            return None;
        }
        // M-step. Weights:
        for j in 0..g {
            m.weights[j] = s0[j] / n as f64;
        }
        // Means on the curve: for each offset, (u, q) by weighted least squares; the cheapest.
        let w: Vec<f64> = m.sigmas.iter().map(|s| 1.0 / (s * s)).collect();
        let (_, u, q, offset) = OFFSETS
            .iter()
            .chain(std::iter::once(&m.offset))
            .filter_map(|&o| curve(&m.atoms, &s0, &s1, &w, o))
            .min_by(|a, b| a.0.total_cmp(&b.0))?;
        (m.unit, m.curvature, m.offset) = (u, q, offset);
        for j in 0..g {
            m.means[j] = m.mean_of(m.atoms[j]);
        }
        // Widths: for each growth factor κ, s² in closed form; keep the most likely.
        let resid: Vec<f64> =
            (0..g).map(|j| (sq[j] - 2.0 * m.means[j] * s1[j] + m.means[j].powi(2) * s0[j]).max(0.0)).collect();
        let mut best = (f64::MIN, s2, kappa);
        for &kk in GROWTH.iter().chain(std::iter::once(&kappa)) {
            let ss = ((0..g).map(|j| resid[j] / (1.0 + kk * m.atoms[j] as f64)).sum::<f64>() / n as f64).max(floor);
            let l: f64 = (0..g)
                .map(|j| {
                    let var = ss * (1.0 + kk * m.atoms[j] as f64);
                    -0.5 * (s0[j] * var.ln() + resid[j] / var)
                })
                .sum();
            if l > best.0 {
                best = (l, ss, kk);
            }
        }
        (s2, kappa) = (best.1, best.2);
        for j in 0..g {
            m.sigmas[j] = (s2 * (1.0 + kappa * m.atoms[j] as f64)).sqrt();
        }
        if (ll - ll_prev).abs() < 1e-4 {
            break;
        }
        ll_prev = ll;
    }
    // Trim thicknesses no column is near (empty tails of the range).
    let keep = |w: f64| w * n as f64 >= 1e-3;
    let first = m.weights.iter().position(|&w| keep(w))?;
    let last = m.weights.iter().rposition(|&w| keep(w))?;
    for vec in [&mut m.means, &mut m.sigmas, &mut m.weights] {
        *vec = vec[first..=last].to_vec();
    }
    m.atoms = m.atoms[first..=last].to_vec();
    let sw: f64 = m.weights.iter().sum();
    m.weights.iter_mut().for_each(|w| *w /= sw);
    Some(m)
}

/// `cⱼ − ½((x − μⱼ)/σⱼ)²` for the components in `range` into `out`; returns the largest.
fn terms(c: &[f64], m: &CountMixture, x: f64, range: std::ops::Range<usize>, out: &mut [f64]) -> f64 {
    let mut mx = f64::NEG_INFINITY;
    for j in range {
        let z = (x - m.means[j]) / m.sigmas[j];
        out[j] = c[j] - 0.5 * z * z;
        mx = mx.max(out[j]);
    }
    mx
}

/// The curve through the components' statistics (`s0`: Σ responsibilities, `s1`: Σ r·v) at
/// `offset`, weighted by `w` = 1/σ²: `(cost, u, q, offset)` with μ = u·m + q·m², m = n − offset.
/// Channelling bends it mildly: the last step 0.5–1.1 × the first (else two free means bend it
/// through any two clusters); outside that, the nearest bound, with u in closed form.
fn curve(atoms: &[u32], s0: &[f64], s1: &[f64], w: &[f64], offset: f64) -> Option<(f64, f64, f64, f64)> {
    let x: Vec<f64> = atoms.iter().map(|&n| n as f64 - offset).collect();
    let (mut a11, mut a12, mut a22, mut b1, mut b2) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for j in 0..x.len() {
        let (k, ws) = (x[j], w[j] * s0[j]);
        a11 += ws * k * k;
        a12 += ws * k.powi(3);
        a22 += ws * k.powi(4);
        b1 += w[j] * s1[j] * k;
        b2 += w[j] * s1[j] * k * k;
    }
    let det = a11 * a22 - a12 * a12;
    let (mut u, mut q) = if det.abs() > 1e-12 * a11 * a22 {
        ((b1 * a22 - b2 * a12) / det, (a11 * b2 - a12 * b1) / det)
    } else {
        (b1 / a11, 0.0)
    };
    let top = *x.last()?;
    if u > 0.0 && !CURVATURE.contains(&(2.0 * q * top / u)) {
        let c = (2.0 * q * top / u).clamp(*CURVATURE.start(), *CURVATURE.end()) / (2.0 * top);
        let (num, den) = (0..x.len()).fold((0.0, 0.0), |acc, j| {
            (acc.0 + w[j] * s1[j] * (x[j] + c * x[j] * x[j]), acc.1 + w[j] * s0[j] * (x[j] + c * x[j] * x[j]).powi(2))
        });
        (u, q) = (num / den, num / den * c);
    }
    if !(u > 0.0) {
        return None;
    }
    // Σ w (s0 μ² − 2 s1 μ): the weighted squared residual up to a constant.
    let cost = (0..x.len())
        .map(|j| {
            let mu = u * x[j] + q * x[j] * x[j];
            w[j] * (s0[j] * mu * mu - 2.0 * s1[j] * mu)
        })
        .sum();
    Some((cost, u, q, offset))
}

/// The one component nearest `x` as a range (when none is within reach).
fn nearest(means: &[f64], x: f64) -> (usize, usize) {
    let j = (0..means.len()).min_by(|&a, &b| (means[a] - x).abs().total_cmp(&(means[b] - x).abs())).unwrap_or(0);
    (j, j + 1)
}
