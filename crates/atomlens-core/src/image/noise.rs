//! The noise of an image: which model it follows (Poisson counts or additive Gaussian), and its
//! standard deviation estimated from the image itself. Shared by the column fit's error bars and
//! the denoisers' variance-stabilised planes.
use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

/// The noise model of an image (the Cramér–Rao bound, the denoisers' stabilised plane).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Noise {
    /// Poisson counts (the pixel values are counts).
    Poisson,
    /// Additive Gaussian noise, its variance estimated from each column's residual.
    Gaussian,
    /// Poisson when the pixels look like counts (whole, non-negative, noise variance about the
    /// mean: a detector's scaled units are whole numbers too), Gaussian otherwise.
    #[default]
    Auto,
}

impl Noise {
    /// Every model, in the order a form lists them.
    pub const ALL: [Noise; 3] = [Noise::Auto, Noise::Poisson, Noise::Gaussian];
}

impl Noise {
    /// Whether `img` is to be treated as Poisson counts under this model.
    pub fn is_poisson(self, img: ArrayView2<f32>) -> bool {
        match self {
            Noise::Poisson => true,
            Noise::Gaussian => false,
            Noise::Auto => all_whole(img) && variance_over_mean(img).is_some_and(|r| (1.0 / 3.0..3.0).contains(&r)),
        }
    }
}

/// Whether every pixel is a finite, non-negative whole number (row by row, in parallel).
fn all_whole(img: ArrayView2<f32>) -> bool {
    // At or above 2²⁴ every f32 is whole; below, the round trip through u32 is exact only for
    // whole values (cheaper than `fract`, a library call on baseline x86-64).
    let whole = |v: f32| v.is_finite() && v >= 0.0 && (v >= 16_777_216.0 || (v as u32) as f32 == v);
    crate::math::par::map(img.nrows(), |y| img.row(y).iter().all(|&v| whole(v))).into_iter().all(|b| b)
}

/// The noise variance over the mean: ≈ 1 for counts of electrons. The variance is the mean
/// square of Immerkær's Laplacian-difference response (which cancels smooth structure to second
/// order) over its kernel's Σk² = 36: unbiased for any uncorrelated noise, sparse counts
/// included. `None` without an interior or a positive mean.
pub fn variance_over_mean(img: ArrayView2<f32>) -> Option<f64> {
    let (sq, n) = laplacian_sum(img, |r| r * r)?;
    let mean = crate::image::stats::finite_mean(img);
    (mean > 0.0 && n > 0).then(|| sq / n as f64 / 36.0 / mean)
}

/// `Σ f(r)` over the finite responses `r` of Immerkær's kernel [1 −2 1; −2 4 −2; 1 −2 1] at
/// every interior pixel, and their number; rows in parallel. `None` without an interior.
fn laplacian_sum(img: ArrayView2<f32>, f: impl Fn(f64) -> f64 + Sync + Send) -> Option<(f64, usize)> {
    let (h, w) = img.dim();
    if h < 3 || w < 3 {
        return None;
    }
    let img = img.as_standard_layout();
    let px = img.as_slice().expect("standard layout");
    // The kernel is the row kernel [1 −2 1] applied to the rows above − 2·this + below.
    let row_sum = |y: usize| -> (f64, usize) {
        let line = |r: usize| &px[r * w..][..w];
        let (a, b, c) = (line(y - 1), line(y), line(y + 1));
        let (mut sum, mut n) = (0.0f64, 0usize);
        for x in 0..w - 2 {
            let d = |l: &[f32]| l[x] - 2.0 * l[x + 1] + l[x + 2];
            let r = d(a) - 2.0 * d(b) + d(c);
            if r.is_finite() {
                sum += f(r as f64);
                n += 1;
            }
        }
        (sum, n)
    };
    let rows = crate::math::par::map(h - 2, |i| row_sum(i + 1));
    Some(rows.iter().fold((0.0, 0), |(s, k), &(a, b)| (s + a, k + b)))
}

/// Noise standard deviation of `img` (Immerkær 1996): the mean absolute response to a
/// Laplacian-difference kernel that cancels smooth structure, scaled for Gaussian noise.
pub fn estimate_noise(img: ArrayView2<f32>) -> f64 {
    match laplacian_sum(img, f64::abs) {
        Some((sum, n)) => (std::f64::consts::PI / 2.0).sqrt() * sum / (6.0 * n.max(1) as f64),
        None => 0.0,
    }
}
