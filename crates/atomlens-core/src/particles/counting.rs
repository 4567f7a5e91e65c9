//! Atom counting from integrated scattering cross-sections (De Backer et al. 2016, the method
//! of StatSTEM). A column's cross-section is the background-subtracted intensity summed over
//! its Voronoi cell; the cells are bounded at one column spacing so edge columns do not
//! collect the whole support. The support level under a particle comes from a quadratic
//! surface fitted to a ring of support around it. Counts follow from a Gaussian mixture with
//! one shared width, its number of components chosen by ICL, each component's mean a whole
//! number of single-atom cross-sections; or from a library of cross-sections per atom count.
use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use crate::CoreError;

/// Cross-sections of the columns at `points` (px) of one particle (`mask`), and the support
/// level model used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossSections {
    /// One per point: Σ over its cell of (pixel − support level) (counts·px when the image is
    /// in counts).
    pub values: Vec<f64>,
    /// Pixels in each cell.
    pub cell_pixels: Vec<u32>,
    /// Support level at the particle's centroid.
    pub support_level: f64,
}

/// Cross-sections of `points` in `img`; `near` is the squared distance to the particle
/// (`morphology::distance_squared_to` of its mask; its surroundings give the support level);
/// `spacing` is the nearest-neighbour distance (px).
pub fn cross_sections(
    img: ArrayView2<f32>,
    points: &[[f64; 2]],
    near: ArrayView2<f32>,
    spacing: f64,
) -> Result<CrossSections, CoreError> {
    crate::image::check_usable(img)?;
    if img.dim() != near.dim() {
        return Err(CoreError::ShapeMismatch { expected: img.len(), got: near.len() });
    }
    if !(spacing.is_finite() && spacing > 1.0) {
        return Err(CoreError::InvalidParameter { name: "spacing", reason: format!("{spacing} px must exceed 1") });
    }
    let support = support_surface(img, near, spacing)?;
    let (h, w) = img.dim();
    // Nearest column within one spacing, by painting each column's disk with its distance.
    let mut owner = vec![(u32::MAX, f64::MAX); h * w];
    let r = spacing;
    for (k, p) in points.iter().enumerate() {
        let (x0, x1) = ((p[0] - r).floor().max(0.0) as usize, ((p[0] + r).ceil().max(0.0) as usize).min(w - 1));
        let (y0, y1) = ((p[1] - r).floor().max(0.0) as usize, ((p[1] + r).ceil().max(0.0) as usize).min(h - 1));
        for y in y0..=y1 {
            for x in x0..=x1 {
                let d = (x as f64 - p[0]).powi(2) + (y as f64 - p[1]).powi(2);
                let o = &mut owner[y * w + x];
                if d <= r * r && d < o.1 {
                    *o = (k as u32, d);
                }
            }
        }
    }
    let mut values = vec![0.0; points.len()];
    let mut cell_pixels = vec![0u32; points.len()];
    for (i, &(k, _)) in owner.iter().enumerate() {
        let v = img[[i / w, i % w]];
        if k != u32::MAX && v.is_finite() {
            values[k as usize] += v as f64 - support.at((i % w) as f64, (i / w) as f64);
            cell_pixels[k as usize] += 1;
        }
    }
    let (n, sx, sy) = near
        .indexed_iter()
        .filter(|(_, d)| **d == 0.0)
        .fold((0.0, 0.0, 0.0), |a, ((y, x), _)| (a.0 + 1.0, a.1 + x as f64, a.2 + y as f64));
    let support_level = if n > 0.0 { support.at(sx / n, sy / n) } else { support.at(w as f64 / 2.0, h as f64 / 2.0) };
    Ok(CrossSections { values, cell_pixels, support_level })
}

/// A quadratic surface in (x, y), centred and scaled for conditioning.
struct Surface {
    c: [f64; 6],
    centre: [f64; 2],
    scale: f64,
}

impl Surface {
    fn terms(&self, x: f64, y: f64) -> [f64; 6] {
        let (u, v) = ((x - self.centre[0]) / self.scale, (y - self.centre[1]) / self.scale);
        [1.0, u, v, u * u, u * v, v * v]
    }
    fn at(&self, x: f64, y: f64) -> f64 {
        self.terms(x, y).iter().zip(&self.c).map(|(t, c)| t * c).sum()
    }
}

/// Least-squares quadratic through the support pixels between 1.5 and 4 spacings outside the
/// particle (near enough to follow the support's slope under it, far enough to miss the
/// columns' tails).
fn support_surface(img: ArrayView2<f32>, d2: ArrayView2<f32>, spacing: f64) -> Result<Surface, CoreError> {
    let (h, w) = img.dim();
    let (lo, hi) = ((1.5 * spacing).powi(2) as f32, (4.0 * spacing).powi(2) as f32);
    let ring: Vec<(usize, usize)> =
        d2.indexed_iter().filter(|&(p, &d)| d > lo && d <= hi && img[p].is_finite()).map(|(p, _)| p).collect();
    if ring.len() < 64 {
        return Err(CoreError::NotFound {
            what: "support",
            reason: "no support around the particle to measure its level (the particle fills the image)".into(),
        });
    }
    let mut s = Surface { c: [0.0; 6], centre: [w as f64 / 2.0, h as f64 / 2.0], scale: (w.max(h) as f64) / 2.0 };
    let (mut ata, mut atb) = ([[0.0f64; 6]; 6], [0.0f64; 6]);
    for &(y, x) in &ring {
        let t = s.terms(x as f64, y as f64);
        let v = img[[y, x]] as f64;
        for i in 0..6 {
            atb[i] += t[i] * v;
            for j in 0..6 {
                ata[i][j] += t[i] * t[j];
            }
        }
    }
    // A ring only fixes a quadratic when it surrounds the particle; ridge-regularise the
    // curvature so a one-sided ring degrades to a plane instead of extrapolating wildly.
    for (i, row) in ata.iter_mut().enumerate().skip(3) {
        row[i] += 1e-3 * ring.len() as f64;
    }
    s.c = crate::math::linalg::solve(ata, atb, 6).ok_or_else(|| CoreError::NotFound {
        what: "support",
        reason: "the support level around the particle could not be fitted".into(),
    })?;
    Ok(s)
}

/// A Gaussian mixture of cross-sections with one shared width.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CountMixture {
    /// Component means, ascending.
    pub means: Vec<f64>,
    /// Component weights.
    pub weights: Vec<f64>,
    /// The shared standard deviation.
    pub sigma: f64,
    /// Atoms of each component.
    pub atoms: Vec<u32>,
    /// Cross-section of one atom (the slope of means against atoms).
    pub unit: f64,
    /// `(components, ICL)` for every mixture tried; the lowest was chosen.
    pub icl: Vec<(usize, f64)>,
}

/// How cross-sections become atom counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Counting {
    /// Gaussian mixture with ICL, at most this many components.
    Statistical {
        /// Largest number of components tried.
        max_components: usize,
    },
    /// `library[n - 1]` is the cross-section of an `n`-atom column, in the image's units.
    Library(Vec<f64>),
}

/// The largest number of mixture components statistical counting tries by default: columns of
/// up to 40 atoms (a ~10 nm particle along \[110\]).
pub const MAX_COMPONENTS: usize = 40;

impl Default for Counting {
    fn default() -> Self {
        Counting::Statistical { max_components: MAX_COMPONENTS }
    }
}

/// A cross-section library from text: one value per line for 1, 2, 3… atoms, or rows whose last
/// field is the value (`atoms,cross_section`); blank lines, `#` comments and a header are skipped.
pub fn parse_library(text: &str) -> Result<Vec<f64>, CoreError> {
    let mut values = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.chars().next().is_some_and(|c| c.is_alphabetic()) {
            continue;
        }
        let last = line.split([',', ' ', '\t', ';']).rfind(|t| !t.is_empty()).unwrap_or("");
        let v = last.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| CoreError::InvalidParameter {
            name: "library",
            reason: format!("line {}: {last:?} is not a number", n + 1),
        })?;
        values.push(v);
    }
    if values.is_empty() {
        return Err(CoreError::InvalidParameter { name: "library", reason: "it holds no cross-sections".into() });
    }
    Ok(values)
}

/// Atoms per column from `values` (cross-sections); the mixture when statistical.
pub fn count_atoms(values: &[f64], how: &Counting) -> Result<(Vec<u32>, Option<CountMixture>), CoreError> {
    if values.iter().any(|v| !v.is_finite()) {
        return Err(CoreError::InvalidParameter {
            name: "cross-sections",
            reason: "a value is NaN or infinite".into(),
        });
    }
    match how {
        Counting::Library(lib) => {
            if lib.is_empty() || lib.iter().any(|v| !v.is_finite()) || lib.windows(2).any(|p| p[1] <= p[0]) {
                return Err(CoreError::InvalidParameter {
                    name: "library",
                    reason: "cross-sections per atom count must be finite and increasing".into(),
                });
            }
            let nearest =
                |v: f64| (0..lib.len()).min_by(|&a, &b| (lib[a] - v).abs().total_cmp(&(lib[b] - v).abs())).unwrap_or(0);
            Ok((values.iter().map(|&v| if v <= 0.5 * lib[0] { 0 } else { nearest(v) as u32 + 1 }).collect(), None))
        }
        Counting::Statistical { max_components } => {
            let m = select_mixture(values, *max_components)?;
            let counts = values.iter().map(|&v| m.atoms[m.classify(v)]).collect();
            Ok((counts, Some(m)))
        }
    }
}

impl CountMixture {
    /// The most probable component of `v`.
    pub fn classify(&self, v: f64) -> usize {
        (0..self.means.len())
            .max_by(|&a, &b| {
                let la = self.weights[a].ln() - 0.5 * ((v - self.means[a]) / self.sigma).powi(2);
                let lb = self.weights[b].ln() - 0.5 * ((v - self.means[b]) / self.sigma).powi(2);
                la.total_cmp(&lb)
            })
            .unwrap_or(0)
    }
}

/// Fit 1… `max_g` components and keep the lowest ICL. Every g is tried: with a dozen or so
/// columns per thickness the ICL curve is bumpy (EM's local optima) and its global minimum
/// often lies well past a local one.
fn select_mixture(values: &[f64], max_g: usize) -> Result<CountMixture, CoreError> {
    let n = values.len();
    if n < 8 {
        return Err(CoreError::InvalidParameter {
            name: "columns",
            reason: format!("{n} columns are too few to count statistically (at least 8; or use a library)"),
        });
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    // Each g is independent: fit them in parallel, largest first so the longest jobs start
    // early. A g whose EM empties a component is skipped.
    let gs = max_g.min(n / 2).max(1);
    let fits: Vec<(f64, Fit)> = crate::math::par::map(gs, |k| fit_shared(&sorted, gs - k).map(|f| (f.icl(&sorted), f)))
        .into_iter()
        .flatten()
        .collect();
    let mut icl: Vec<(usize, f64)> = fits.iter().map(|(score, f)| (f.means.len(), *score)).collect();
    icl.sort_by_key(|e| e.0);
    let (_, fit) = fits.into_iter().min_by(|a, b| a.0.total_cmp(&b.0)).ok_or_else(|| CoreError::InvalidParameter {
        name: "cross-sections",
        reason: "no mixture could be fitted (are they all equal?)".into(),
    })?;
    if fit.means.len() < 2 {
        return Err(CoreError::NotFound {
            what: "thickness steps",
            reason: "the cross-sections form one class: statistical counting needs thickness steps that \
                     stand out from the noise (columns of several thicknesses, at a higher dose for thick \
                     particles), or a library of cross-sections per atom count"
                .into(),
        });
    }
    let (atoms, unit) = atoms_of(&fit.means);
    Ok(CountMixture { means: fit.means, weights: fit.weights, sigma: fit.sigma, atoms, unit, icl })
}

/// Whole atom numbers for ascending component means: the unit is first the median step
/// between neighbouring means, then the least-squares slope through the origin of means
/// against their rounded counts.
fn atoms_of(means: &[f64]) -> (Vec<u32>, f64) {
    let mut steps: Vec<f64> = means.windows(2).map(|p| p[1] - p[0]).collect();
    steps.sort_by(f64::total_cmp);
    let mut unit = steps[steps.len() / 2].max(1e-300);
    let mut atoms: Vec<u32> = Vec::new();
    for _ in 0..3 {
        atoms = means.iter().map(|m| (m / unit).round().max(1.0) as u32).collect();
        let (num, den) =
            atoms.iter().zip(means).fold((0.0, 0.0), |a, (&k, &m)| (a.0 + k as f64 * m, a.1 + (k * k) as f64));
        unit = num / den;
    }
    (atoms, unit)
}

struct Fit {
    means: Vec<f64>,
    weights: Vec<f64>,
    sigma: f64,
    ll: f64,
}

/// Terms more than this far (in log) below the largest contribute < 1e-17 and are skipped.
const NEGLIGIBLE: f64 = 40.0;

impl Fit {
    /// `ln(wⱼ) − ½((v − mⱼ)/σ)²` for every component into `out`; returns the largest.
    fn terms(&self, ln_w: &[f64], v: f64, out: &mut [f64]) -> f64 {
        let k = 0.5 / (self.sigma * self.sigma);
        let mut mx = f64::MIN;
        for ((o, &m), &lw) in out.iter_mut().zip(&self.means).zip(ln_w) {
            *o = lw - k * (v - m) * (v - m);
            mx = mx.max(*o);
        }
        mx
    }

    /// ICL = BIC + 2 × the entropy of the hard assignment (Biernacki et al. 2000).
    fn icl(&self, values: &[f64]) -> f64 {
        let g = self.means.len();
        let params = (2 * g) as f64; // g means, g − 1 weights, one width
        let ln_w: Vec<f64> = self.weights.iter().map(|w| w.ln()).collect();
        let mut t = vec![0.0; g];
        let entropy: f64 = values
            .iter()
            .map(|&v| {
                let mx = self.terms(&ln_w, v, &mut t);
                // −ln τ of the winning component (whose term is mx).
                t.iter().filter(|&&x| x > mx - NEGLIGIBLE).map(|x| (x - mx).exp()).sum::<f64>().ln()
            })
            .sum();
        -2.0 * self.ll + params * (values.len() as f64).ln() + 2.0 * entropy
    }
}

/// EM for `g` components with one shared width, from two starts (quantiles; even spacing over
/// the range) keeping the higher likelihood.
fn fit_shared(sorted: &[f64], g: usize) -> Option<Fit> {
    let n = sorted.len();
    let (lo, hi) = (sorted[0], sorted[n - 1]);
    if hi <= lo {
        return None;
    }
    let quantiles: Vec<f64> = (0..g).map(|j| sorted[((2 * j + 1) * n) / (2 * g)]).collect();
    let even: Vec<f64> = (0..g).map(|j| lo + (hi - lo) * (j as f64 + 0.5) / g as f64).collect();
    [quantiles, even].into_iter().filter_map(|m| em_shared(sorted, m)).max_by(|a, b| a.ll.total_cmp(&b.ll))
}

/// EM accumulating the sufficient statistics (Σr, Σrv, Σrv²) in the E-step, so memory is
/// O(g) and each iteration one pass. Values and means are both sorted, so each value only
/// visits the components within reach of it (a sliding window) — the rest are negligible.
fn em_shared(v: &[f64], means: Vec<f64>) -> Option<Fit> {
    let (n, g) = (v.len(), means.len());
    let range = v[n - 1] - v[0];
    let mut fit = Fit { weights: vec![1.0 / g as f64; g], sigma: range / (4.0 * g as f64), means, ll: f64::MIN };
    let floor = 1e-4 * range;
    let norm = 0.5 * (2.0 * std::f64::consts::PI).ln();
    let mut t = vec![0.0; g];
    let (mut s0, mut s1, mut s2) = (vec![0.0; g], vec![0.0; g], vec![0.0; g]);
    let mut ll_prev = f64::MIN;
    for _ in 0..500 {
        sort_components(&mut fit);
        let ln_w: Vec<f64> = fit.weights.iter().map(|w| w.ln()).collect();
        let spread = ln_w.iter().cloned().fold(f64::MIN, f64::max) - ln_w.iter().cloned().fold(f64::MAX, f64::min);
        let k = 0.5 / (fit.sigma * fit.sigma);
        let reach = ((NEGLIGIBLE + spread) / k).sqrt();
        s0.fill(0.0);
        s1.fill(0.0);
        s2.fill(0.0);
        let (mut lo, mut hi, mut ll) = (0, 0, 0.0);
        for &x in v {
            while lo < g && fit.means[lo] < x - reach {
                lo += 1;
            }
            while hi < g && fit.means[hi] <= x + reach {
                hi += 1;
            }
            let (a, b) = if lo < hi { (lo, hi) } else { nearest_component(&fit.means, x) };
            let mut mx = f64::MIN;
            for j in a..b {
                t[j] = ln_w[j] - k * (x - fit.means[j]).powi(2);
                mx = mx.max(t[j]);
            }
            let mut sum = 0.0;
            for tj in &mut t[a..b] {
                *tj = if *tj > mx - NEGLIGIBLE { (*tj - mx).exp() } else { 0.0 };
                sum += *tj;
            }
            ll += mx + sum.ln() - fit.sigma.ln() - norm;
            for j in a..b {
                let r = t[j] / sum;
                s0[j] += r;
                s1[j] += r * x;
                s2[j] += r * x * x;
            }
        }
        fit.ll = ll;
        if s0.iter().any(|&nj| nj < 1e-6) {
            return None; // an empty component: this g is too many
        }
        let mut var = 0.0;
        for j in 0..g {
            fit.means[j] = s1[j] / s0[j];
            var += (s2[j] - s1[j] * s1[j] / s0[j]).max(0.0);
            fit.weights[j] = s0[j] / n as f64;
        }
        fit.sigma = (var / n as f64).sqrt().max(floor);
        // ICLs that decide g differ by units; a thousandth of a log-likelihood unit is converged.
        if (ll - ll_prev).abs() < 1e-3 {
            break;
        }
        ll_prev = ll;
    }
    sort_components(&mut fit);
    Some(fit)
}

/// The one component nearest `x` as a range (when none is within reach).
fn nearest_component(means: &[f64], x: f64) -> (usize, usize) {
    let j = (0..means.len()).min_by(|&a, &b| (means[a] - x).abs().total_cmp(&(means[b] - x).abs())).unwrap_or(0);
    (j, j + 1)
}

fn sort_components(fit: &mut Fit) {
    let mut order: Vec<usize> = (0..fit.means.len()).collect();
    order.sort_by(|&a, &b| fit.means[a].total_cmp(&fit.means[b]));
    fit.means = order.iter().map(|&j| fit.means[j]).collect();
    fit.weights = order.iter().map(|&j| fit.weights[j]).collect();
}

/// A 3-D starting model: each column's atoms stacked along the beam (z) symmetrically about
/// the mid-plane at `step` spacing. Returns `(x, y, z)` in the units of `points` × `scale`.
pub fn stack_atoms(points: &[[f64; 2]], atoms: &[u32], scale: f64, step: f64) -> Vec<[f64; 3]> {
    points
        .iter()
        .zip(atoms)
        .flat_map(|(p, &n)| {
            (0..n).map(move |j| [p[0] * scale, p[1] * scale, (j as f64 - (n as f64 - 1.0) / 2.0) * step])
        })
        .collect()
}

/// The model as an XYZ file (positions in ångström).
pub fn xyz(atoms: &[[f64; 3]], element: &str, comment: &str) -> String {
    let mut s = format!("{}\n{}\n", atoms.len(), comment.replace('\n', " "));
    for a in atoms {
        s.push_str(&format!("{element} {:.4} {:.4} {:.4}\n", a[0], a[1], a[2]));
    }
    s
}

#[cfg(test)]
mod tests;
