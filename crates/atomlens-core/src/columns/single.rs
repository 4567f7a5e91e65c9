//! Single atoms on a support (single-atom catalysts): no lattice to lean on, so each atom is
//! kept or dropped by its significance against the support around it, at a false-alarm rate
//! the user sets.
//!
//! 1. Matched filter: the difference of Gaussians `G(σ) − G(3σ)` with σ the atom's width
//!    (0.6 Å when the image is calibrated, else 2 px: probe, drift and vibration together): an
//!    atom's peak minus its local background, so thickness gradients and vacuum edges drop out.
//! 2. Significance `z`: the filtered image over its local noise, the median absolute deviation
//!    in 16σ blocks (atoms are sparse, so the median sees the support; HAADF shot noise grows
//!    with the support's brightness and the blocks follow it), never below the whole image's;
//!    for sparse counts the Poisson tail instead where that is less significant.
//! 3. Threshold from the false-alarm rate: for a smooth Gaussian random field the expected
//!    number of local maxima above `u` over an area `A` is `A·λ·u·e^{−u²/2} / (2π)^{3/2}`
//!    (its Euler characteristic; Worsley 1996), with `λ` the variance of the field's gradient,
//!    measured on the `z` map itself so correlated noise is accounted for. `u` is set so this
//!    equals `false_alarms` (default 1 per image).
//! 4. Atoms: local maxima of `z` above `u` that are peaks, not ridges (a vacuum edge filters
//!    to a line of maxima), at least 3σ apart, strongest first.
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::CoreError;
use crate::image::filter::{gaussian_blur, max_filter};
use crate::image::stats::{local_mad, mad};

/// An atom's width (Gaussian σ) on an aberration-corrected HAADF image, Å.
pub const ATOM_SIGMA_A: f64 = 0.6;
/// The width assumed without a calibration, px.
pub const ATOM_SIGMA_PX: f64 = 2.0;

/// Parameters of [`find_single_atoms`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SingleAtomParams {
    /// The atoms' Gaussian width (px); `None` = [`ATOM_SIGMA_A`] on a calibrated image, else
    /// [`ATOM_SIGMA_PX`].
    pub sigma: Option<f64>,
    /// Expected number of false detections on a pure-noise image of the same size.
    pub false_alarms: f64,
}

impl Default for SingleAtomParams {
    fn default() -> Self {
        Self { sigma: None, false_alarms: 1.0 }
    }
}

/// One atom: position of its filtered maximum (px) and its significance.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SingleAtom {
    /// Column position (px).
    pub x: f64,
    /// Row position (px).
    pub y: f64,
    /// Peak over local noise (standard deviations).
    pub z: f64,
}

/// What [`find_single_atoms`] found and the values it used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SingleAtoms {
    /// Strongest first.
    pub atoms: Vec<SingleAtom>,
    /// The width used (px).
    pub sigma: f64,
    /// The significance threshold `u` the false-alarm rate gave.
    pub threshold: f64,
    /// The false-alarm rate asked for.
    pub false_alarms: f64,
}

impl SingleAtoms {
    /// The same detection's atoms moved to `points` (edited by hand), each with the
    /// significance at its nearest pixel.
    pub fn at(&self, img: ArrayView2<f32>, points: &[[f64; 2]]) -> SingleAtoms {
        let z = significance(img, self.sigma);
        let (h, w) = z.dim();
        let atoms = points
            .iter()
            .map(|&[x, y]| {
                let (px, py) =
                    (x.round().clamp(0.0, w as f64 - 1.0) as usize, y.round().clamp(0.0, h as f64 - 1.0) as usize);
                SingleAtom { x, y, z: z[[py, px]] as f64 }
            })
            .collect();
        SingleAtoms { atoms, ..self.clone() }
    }
}

/// Find single atoms (see the module docs). `pixel_nm`: the calibration, for the default width.
pub fn find_single_atoms(
    img: ArrayView2<f32>,
    pixel_nm: Option<f64>,
    p: &SingleAtomParams,
) -> Result<SingleAtoms, CoreError> {
    crate::image::check_usable(img)?;
    let (h, w) = img.dim();
    let sigma = p.sigma.unwrap_or(pixel_nm.map_or(ATOM_SIGMA_PX, |px| ATOM_SIGMA_A / (10.0 * px)));
    if !(sigma.is_finite() && sigma >= 0.5) {
        return Err(CoreError::InvalidParameter {
            name: "sigma",
            reason: format!(
                "an atom width of {sigma:.2} px is below half a pixel: the image is too coarse for single atoms"
            ),
        });
    }
    if !(p.false_alarms.is_finite() && p.false_alarms > 0.0) {
        return Err(CoreError::InvalidParameter {
            name: "false_alarms",
            reason: format!("{} must be a positive number of false detections per image", p.false_alarms),
        });
    }
    let min = (12.0 * sigma).ceil() as usize;
    if h < min || w < min {
        return Err(CoreError::TooSmall { width: w, height: h, min, what: "finding single atoms" });
    }
    let z = significance(img, sigma);
    let threshold = threshold_for(z.view(), p.false_alarms);
    let r = (1.5 * sigma).round().max(1.0) as usize;
    let peak = max_filter(z.view(), r);
    let border = (2.0 * sigma).ceil() as usize;
    let mut atoms: Vec<SingleAtom> = z
        .indexed_iter()
        .filter(|&((y, x), &v)| {
            v as f64 >= threshold && v == peak[[y, x]] && x >= border && y >= border && x + border < w && y + border < h
        })
        .filter(|&((y, x), _)| !is_ridge(z.view(), y, x, sigma))
        .map(|((y, x), &v)| SingleAtom { x: x as f64, y: y as f64, z: v as f64 })
        .collect();
    atoms.sort_by(|a, b| b.z.total_cmp(&a.z));
    // Plateaus give several equal maxima: keep the first of any closer than 3σ.
    let mut kept: Vec<SingleAtom> = Vec::with_capacity(atoms.len());
    for a in atoms {
        if kept.iter().all(|k| (k.x - a.x).hypot(k.y - a.y) >= 3.0 * sigma) {
            kept.push(a);
        }
    }
    Ok(SingleAtoms { atoms: kept, sigma, threshold, false_alarms: p.false_alarms })
}

/// True where `z` stays high on both sides of the peak along some direction (both points
/// 2.5σ away at least half the peak): the bright side of a vacuum edge or a support's rim
/// filters to a ridge of maxima; an atom's filtered response has fallen to a tenth there.
fn is_ridge(z: ArrayView2<f32>, y: usize, x: usize, sigma: f64) -> bool {
    let (h, w) = z.dim();
    let r = 2.5 * sigma;
    let at = |dx: f64, dy: f64| {
        let (px, py) = ((x as f64 + dx).round(), (y as f64 + dy).round());
        if px < 0.0 || py < 0.0 || px >= w as f64 || py >= h as f64 {
            f32::NEG_INFINITY
        } else {
            z[[py as usize, px as usize]]
        }
    };
    let half = 0.5 * z[[y, x]];
    (0..8).any(|k| {
        let (s, c) = (k as f64 * std::f64::consts::PI / 8.0).sin_cos();
        at(r * c, r * s) >= half && at(-r * c, -r * s) >= half
    })
}

/// The matched-filtered image over its local noise (see the module docs).
pub fn significance(img: ArrayView2<f32>, sigma: f64) -> Array2<f32> {
    let narrow = gaussian_blur(img, sigma);
    let wide = gaussian_blur(img, 3.0 * sigma);
    let dog = &narrow - &wide;
    let floor = mad(dog.iter().copied()).max(f32::MIN_POSITIVE);
    let local = local_mad(dog.view(), (16.0 * sigma).ceil() as usize);
    // Counts (`Noise::Auto`: whole numbers whose variance is about their mean): at a few per
    // pixel or fewer (a thin support at 10⁴ e⁻/Å²) the filtered noise is far from Gaussian and
    // three stray counts would pass for an atom. There the peak is a
    // count over the filter's effective area (4πσ²) against the local mean's Poisson
    // expectation, and its significance the variance-stabilised (Anscombe) difference; the
    // smaller of the two z is kept, so at high counts nothing changes.
    let counts = crate::image::Noise::Auto.is_poisson(img);
    let area = (4.0 * std::f64::consts::PI * sigma * sigma) as f32;
    let mut z = dog;
    ndarray::Zip::from(&mut z).and(&local).and(&narrow).and(&wide).for_each(|v, &n, &c, &lam| {
        let gauss = *v / n.max(floor);
        *v = if counts {
            let (c, mu) = (c.max(0.0) * area, lam.max(0.0) * area);
            gauss.min(2.0 * ((c + 0.375).sqrt() - (mu + 0.375).sqrt()))
        } else {
            gauss
        };
    });
    z
}

/// The level `u` above which a smooth Gaussian field like `z` has `false_alarms` local maxima
/// on average (Euler-characteristic density; module docs).
pub fn threshold_for(z: ArrayView2<f32>, false_alarms: f64) -> f64 {
    let (h, w) = z.dim();
    let gx = mad(z.windows((1, 3)).into_iter().map(|v| (v[[0, 2]] - v[[0, 0]]) / 2.0));
    let gy = mad(z.windows((3, 1)).into_iter().map(|v| (v[[2, 0]] - v[[0, 0]]) / 2.0));
    // Gradient variance per unit field variance (where z's spread is below 1, as on sparse
    // counts under the Poisson floor, the raw gradients would understate it).
    let spread = mad(z.iter().copied()).max(1e-3);
    let lambda = ((gx * gx + gy * gy) as f64 / 2.0 / (spread * spread) as f64).max(1e-6);
    let expected = |u: f64| (h * w) as f64 * lambda * u * (-u * u / 2.0).exp() / (2.0 * std::f64::consts::PI).powf(1.5);
    // Decreasing for u > 1: bisection.
    let (mut lo, mut hi) = (1.0f64, 40.0f64);
    if expected(lo) <= false_alarms {
        return lo;
    }
    for _ in 0..60 {
        let mid = 0.5 * (lo + hi);
        if expected(mid) > false_alarms { lo = mid } else { hi = mid }
    }
    hi
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_distr::{Distribution, Poisson};

    /// Poisson counts of a support with a gradient and a vacuum corner, with `atoms` Gaussian
    /// atoms of σ 1.5 px and `peak` counts added.
    fn support(atoms: &[(f64, f64)], peak: f64, seed: u64) -> Array2<f32> {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
        Array2::from_shape_fn((256, 256), |(y, x)| {
            let (xf, yf) = (x as f64, y as f64);
            let base = if xf + yf < 80.0 { 5.0 } else { 40.0 + 0.15 * xf + 10.0 * (yf / 40.0).sin() };
            let a: f64 =
                atoms.iter().map(|&(ax, ay)| peak * (-((xf - ax).powi(2) + (yf - ay).powi(2)) / 4.5).exp()).sum();
            Poisson::new(base + a).map_or(0.0, |d| d.sample(&mut rng)) as f32
        })
    }

    #[test]
    fn a_pure_support_gives_about_the_false_alarms_asked_for() {
        // Over 20 images the mean count of detections matches the rate within Poisson error.
        let found = |s| find_single_atoms(support(&[], 0.0, s).view(), None, &Default::default()).unwrap().atoms.len();
        let n: usize = (0..20).map(found).sum();
        assert!(n <= 45, "{n} false detections on 20 pure-support images at 1 per image");
    }

    #[test]
    fn atoms_several_sigma_above_the_support_are_found_where_they_are() {
        let truth: Vec<(f64, f64)> =
            (0..30).map(|k| (30.0 + (k % 6) as f64 * 38.0, 30.0 + (k / 6) as f64 * 45.0)).collect();
        let img = support(&truth, 60.0, 7);
        let r = find_single_atoms(img.view(), None, &Default::default()).unwrap();
        let found = truth.iter().filter(|t| r.atoms.iter().any(|a| (a.x - t.0).hypot(a.y - t.1) <= 1.5)).count();
        assert!(found >= 29, "{found} of 30 found");
        assert!(r.atoms.len() <= truth.len() + 2, "{} detections for 30 atoms", r.atoms.len());
    }

    #[test]
    fn bad_parameters_are_refused() {
        let img = support(&[], 0.0, 1);
        assert!(
            find_single_atoms(img.view(), None, &SingleAtomParams { false_alarms: 0.0, ..Default::default() }).is_err()
        );
        assert!(find_single_atoms(img.view(), Some(0.2), &Default::default()).is_err());
        assert!(find_single_atoms(img.slice(ndarray::s![..10, ..10]), None, &Default::default()).is_err());
    }
}
