//! What the patch-based denoisers ([`crate::denoise::nlm`], [`crate::denoise::bm3d`]) share: the offsets where
//! similar patches are looked for, and the variance-stabilised plane they work on.
//!
//! Offsets: a small window (the patches next door), and ±1 px around the lattice translations
//! (the strongest autocorrelation peaks, when the image shows a lattice). A crystal's most
//! similar patches sit one or two lattice vectors away, usually beyond any window one could
//! afford: on the shared test images this is worth 1–6 dB to NLM at fewer offsets than a ±5 px
//! window (BENCHMARKS.md). The price: other columns take part in each column's average, so where
//! columns are displaced from the ideal lattice (jitter, strain gradients), each is pulled a
//! little towards its neighbours (about 1 % of the relative displacement on the 49-dB perovskite
//! set, more at low dose where patches match within the noise). Callers can turn the search off
//! for work on displacements.
//!
//! Plane: the image in units of its noise, σ = 1. Whole counts go through the Anscombe transform
//! `2√(x + 3/8)` (Poisson noise becomes σ ≈ 1 everywhere, so one filtering strength fits the
//! dark support and the bright columns alike) and come back by Mäkitalo & Foi's (2011)
//! closed-form unbiased inverse; other images are divided by their noise σ (Immerkær).
use ndarray::{Array2, ArrayView2};

use crate::image::Noise;

/// Farthest lattice translation searched (px).
const MAX_REACH: usize = 48;

/// Offsets `[dy, dx]` searched for similar patches; symmetric (with `o`, also `−o`), with 0.
pub struct Offsets {
    /// Every offset, sorted.
    pub list: Vec<[isize; 2]>,
    /// Largest |dy| or |dx|.
    pub margin: usize,
}

impl Offsets {
    /// Every offset within ±`r` px.
    pub fn window(r: usize) -> Offsets {
        let r = r as isize;
        Offsets::from_list((-r..=r).flat_map(|dy| (-r..=r).map(move |dx| [dy, dx])).collect())
    }

    /// The ±`window` px window and, when `lattice`, ±1 px around the lattice translations of
    /// `img`; without translations (turned off, or no lattice shows) a window of at least
    /// ±[`NO_LATTICE_WINDOW`] px instead.
    pub fn searched(img: ArrayView2<f32>, window: usize, lattice: bool) -> Offsets {
        let found = if lattice { translations(img, window) } else { Vec::new() };
        if found.is_empty() {
            return Offsets::window(window.max(NO_LATTICE_WINDOW));
        }
        let mut list = Offsets::window(window).list;
        for [dy, dx] in found {
            for (a, b) in (-1..=1).flat_map(|a| (-1..=1).map(move |b| (a, b))) {
                list.extend([[dy + a, dx + b], [-dy - a, -dx - b]]);
            }
        }
        Offsets::from_list(list)
    }

    pub(crate) fn from_list(mut list: Vec<[isize; 2]>) -> Offsets {
        list.sort_unstable();
        list.dedup();
        let margin = list.iter().map(|o| o[0].unsigned_abs().max(o[1].unsigned_abs())).max().unwrap_or(0);
        Offsets { list, margin }
    }

    /// One of each pair `o`, `−o` (the one pointing down, or right along the row); no 0.
    pub fn half(&self) -> impl Iterator<Item = [isize; 2]> + '_ {
        self.list.iter().copied().filter(|&[dy, dx]| dy > 0 || (dy == 0 && dx > 0))
    }
}

/// The strongest peaks of the autocorrelation of `img`'s central `CROP`² px beyond ±`window` px
/// (one of each ±pair): the translations that map the lattice onto itself, strongest first. Slow
/// variations (support, thickness: under 4 cycles per crop) are removed first; peaks under 5 % of
/// the zero-shift value are noise. Two small FFTs, so it costs little next to the filter, whatever
/// the image size; a translation the rest of the image does not share only costs time, as the
/// patch weights reject what does not match.
fn translations(img: ArrayView2<f32>, window: usize) -> Vec<[isize; 2]> {
    let (h, w) = img.dim();
    let (ch, cw) = (h.min(CROP), w.min(CROP));
    let reach = MAX_REACH.min(ch / 2 - 1).min(cw / 2 - 1) as isize;
    if ch < 16 || cw < 16 || reach <= window as isize + 1 {
        return Vec::new();
    }
    let (y0, x0) = ((h - ch) / 2, (w - cw) / 2);
    let c = crate::lattice::spacing::autocorrelation(img.slice(ndarray::s![y0..y0 + ch, x0..x0 + cw]));
    let ac = |dy: isize, dx: isize| c[[dy.rem_euclid(ch as isize) as usize, dx.rem_euclid(cw as isize) as usize]];
    let floor = 0.05 * ac(0, 0);
    let mut peaks: Vec<(f32, [isize; 2])> = Vec::new();
    for dy in 0..=reach {
        for dx in -reach..=reach {
            let v = ac(dy, dx);
            let beyond = dy.abs().max(dx.abs()) > window as isize;
            let half = dy > 0 || dx > 0;
            // The maximum of its 5×5 neighbourhood (of equal values, the first in scan order).
            let top = || {
                (-2..=2).all(|a| {
                    (-2..=2).all(|b| {
                        let n = ac(dy + a, dx + b);
                        if (a, b) < (0, 0) { n < v } else { (a, b) == (0, 0) || n <= v }
                    })
                })
            };
            if beyond && half && v > floor && top() {
                peaks.push((v, [dy, dx]));
            }
        }
    }
    peaks.sort_by(|a, b| b.0.total_cmp(&a.0));
    peaks.into_iter().take(TRANSLATIONS).map(|p| p.1).collect()
}

/// The window searched (px) when the image shows no lattice: without translations to search, a
/// small window leaves too few similar patches to average.
pub const NO_LATTICE_WINDOW: usize = 5;

/// Side of the central crop whose autocorrelation gives the translations (px).
const CROP: usize = 128;
/// Translations searched (each with its opposite): a square lattice's ±a, ±b, ±(a+b), ±(a−b),
/// ±2a, ±2b.
const TRANSLATIONS: usize = 6;

/// An image in units of its noise (see the module docs), row-major, every pixel finite.
pub struct Stabilised {
    /// The stabilised pixels, row-major.
    pub px: Vec<f32>,
    /// Rows.
    pub h: usize,
    /// Columns.
    pub w: usize,
    poisson: bool,
    sigma: f32,
    /// Which pixels were finite, when not all were.
    finite: Option<Vec<bool>>,
}

impl Stabilised {
    /// `img` stabilised under `noise` (non-finite pixels read as the image mean); `None` when it
    /// shows no noise (constant or noise-free), so there is nothing to remove.
    pub fn new(img: ArrayView2<f32>, noise: Noise) -> Option<Stabilised> {
        let (h, w) = img.dim();
        let poisson = noise.is_poisson(img);
        let sigma = if poisson { 1.0 } else { crate::image::noise::estimate_noise(img) as f32 };
        if !(sigma > 0.0) {
            return None;
        }
        let img = img.as_standard_layout();
        let src = img.as_slice().expect("standard layout");
        let finite =
            if src.iter().all(|v| v.is_finite()) { None } else { Some(src.iter().map(|v| v.is_finite()).collect()) };
        let fill = if finite.is_some() { crate::image::stats::finite_mean(img.view()) as f32 } else { 0.0 };
        let mut px = vec![0.0f32; h * w];
        crate::math::par::rows(&mut px, w, |y, row| {
            for (o, &v) in row.iter_mut().zip(&src[y * w..][..w]) {
                let v = if v.is_finite() { v } else { fill };
                *o = if poisson { 2.0 * (v.max(0.0) + 0.375).sqrt() } else { v / sigma };
            }
        });
        Some(Stabilised { px, h, w, poisson, sigma, finite })
    }

    /// The stabilised pixels as an image.
    pub fn view(&self) -> ArrayView2<'_, f32> {
        ArrayView2::from_shape((self.h, self.w), &self.px).expect("h × w pixels")
    }

    /// A filtered plane `z` (same size) back in image units; NaN where the image was not finite.
    pub fn restore(&self, z: &[f32]) -> Array2<f32> {
        let w = self.w;
        let mut px = vec![0.0f32; self.h * w];
        crate::math::par::rows(&mut px, w, |y, row| {
            for (x, (o, &v)) in row.iter_mut().zip(&z[y * w..][..w]).enumerate() {
                *o = match &self.finite {
                    Some(f) if !f[y * w + x] => f32::NAN,
                    _ if self.poisson => inverse_anscombe(v),
                    _ => v * self.sigma,
                };
            }
        });
        Array2::from_shape_vec((self.h, w), px).expect("h × w pixels")
    }
}

/// Mäkitalo & Foi's closed-form approximation of the exact unbiased inverse Anscombe transform.
pub(crate) fn inverse_anscombe(d: f32) -> f32 {
    const S: f32 = 1.224_744_9; // √1.5
    if !(d >= 1.224_744_9) {
        return 0.0; // 2√(3/8) = √1.5: the transform of 0 counts, and below
    }
    let r = 1.0 / d;
    (0.25 * d * d - 0.125 + r * (0.25 * S + r * (-1.375 + r * (0.625 * S)))).max(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_symmetric_and_halves_cover_them() {
        let o = Offsets::window(2);
        assert_eq!((o.list.len(), o.margin), (25, 2));
        assert_eq!(o.half().count(), 12);
        for &[dy, dx] in &o.list {
            assert!(o.list.contains(&[-dy, -dx]));
        }
    }

    #[test]
    fn lattice_translations_are_searched() {
        // A square lattice of period 10 px: ±1 px around (0, ±10), (±10, 0), (±10, ±10), (0, ±20), …
        let img = Array2::from_shape_fn((96, 96), |(y, x)| {
            let (dy, dx) = ((y % 10) as f32 - 5.0, (x % 10) as f32 - 5.0);
            (-(dx * dx + dy * dy) / 4.0).exp()
        });
        let o = Offsets::searched(img.view(), 2, true);
        assert_eq!(Offsets::searched(img.view(), 2, false).list, Offsets::window(NO_LATTICE_WINDOW).list);
        for t in [[0, 10], [10, 0], [10, 10], [-10, 10], [0, 20], [19, 1], [-11, -9]] {
            assert!(o.list.contains(&t), "{t:?} not searched");
        }
        assert!(!o.list.contains(&[5, 5]) && o.margin == 21, "margin {}", o.margin);
        for &[dy, dx] in &o.list {
            assert!(o.list.contains(&[-dy, -dx]));
        }
        // White noise shows no lattice: the wider window instead.
        let mut seed = 7u64;
        let noise = Array2::from_shape_fn((96, 96), |_| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 40) as f32
        });
        let o = Offsets::searched(noise.view(), 2, true);
        assert_eq!((o.list.len(), o.margin), (121, NO_LATTICE_WINDOW));
    }

    #[test]
    fn inverse_anscombe_is_unbiased_for_moderate_counts() {
        use rand::{SeedableRng, rngs::SmallRng};
        use rand_distr::{Distribution, Poisson};
        let mut rng = SmallRng::seed_from_u64(3);
        for lam in [2.0, 5.0, 20.0] {
            let d = Poisson::new(lam).unwrap();
            let n = 200_000;
            let mean_a: f64 = (0..n).map(|_| 2.0 * (d.sample(&mut rng) + 0.375f64).sqrt()).sum::<f64>() / n as f64;
            let back = inverse_anscombe(mean_a as f32) as f64;
            assert!((back - lam).abs() < 0.03 * lam, "λ {lam}: inverse of E[A] = {back}");
        }
    }

    #[test]
    fn stabilising_and_restoring_is_the_identity() {
        let img = Array2::from_shape_fn((16, 16), |(y, x)| ((x * 7 + y * 3) % 11) as f32);
        let s = Stabilised::new(img.view(), Noise::Gaussian).unwrap();
        let back = s.restore(&s.px);
        assert!(back.iter().zip(&img).all(|(a, b)| (a - b).abs() < 1e-4));
        assert!(Stabilised::new(Array2::from_elem((8, 8), 3.0f32).view(), Noise::Gaussian).is_none());
    }
}
