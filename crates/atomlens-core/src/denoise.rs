//! Clean-up filters. Each returns an image of the same size; `input − output` is what it removed
//! (the page shows that residual, so nothing real disappears unseen).
//!
//! - `gaussian`: blur of width σ.
//! - `median`: (2r+1)² median, mirrored borders (impulse noise, hot pixels).
//! - `wiener`: adaptive local Wiener filter (as `scipy.signal.wiener`): local mean μ and variance
//!   s² over a (2r+1)² window, noise ν = mean local variance unless given;
//!   `μ + max(s² − ν, 0) / max(s², ν) · (x − μ)`.
//! - `bandpass`: keeps structure between `small` and `large` px: `G_small ∗ x − G_√(small²+large²) ∗ x`
//!   plus the image mean (a difference of Gaussians, mirrored borders, no FFT wrap-around).
//! - `bragg`: periodic (Bragg-mask) filter: the spectrum kept only in Gaussian windows at every
//!   reciprocal-lattice point `n₁g₁ + n₂g₂` (the lattice from the spectrum) and around zero. It
//!   shows the average lattice: defects and vacancies fade, so read it with its residual.
//! - `non_local_means`: patch-similarity weighted average (see [`crate::nlm`]).
//! - `bm3d`: block-matching 3D collaborative filtering, Poisson-aware (see [`crate::bm3d`]).
//! - `rolling_ball`: subtracts the floor under the columns (see [`crate::rolling_ball`]), so the
//!   support reads zero and each column keeps its own intensity above it.
//! - `background`: subtracts the large-scale support/thickness variation `G_σ ∗ x` and adds back
//!   its mean, so column intensities across the image become comparable.
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::CoreError;
use crate::fft::{C32, Fft2, frequency};
use crate::filter::{gaussian_blur, reflect};
use crate::image::check_usable;
use crate::lattice::lattice_vectors;
use crate::par::map;
use crate::peaks::estimate_spacing;
use crate::stats::finite_mean;

/// Serde's default for the `lattice` switches: on.
fn yes() -> bool {
    true
}

/// A clean-up method and its parameters (px).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Method {
    /// Gaussian blur.
    Gaussian {
        /// Width (px).
        sigma: f64,
    },
    /// Square median.
    Median {
        /// Half-width (px): the window is (2r+1)².
        radius: usize,
    },
    /// Adaptive Wiener filter.
    Wiener {
        /// Half-width (px) of the statistics window.
        radius: usize,
        /// Noise variance; `None` estimates it as the mean local variance.
        noise: Option<f64>,
    },
    /// Difference-of-Gaussians band-pass.
    Bandpass {
        /// Finest kept scale (px): noise below it is smoothed away.
        small: f64,
        /// Largest kept scale (px): variations beyond it are removed.
        large: f64,
    },
    /// Periodic (Bragg-mask) filter.
    Bragg {
        /// Window radius around each reciprocal-lattice point, as a fraction of the shorter |g|.
        radius: f64,
    },
    /// Non-local means (see [`crate::nlm`]), Poisson-aware, noise estimated from the image.
    NonLocalMeans {
        /// Patch half-width (px): patches are (2p+1)².
        patch: usize,
        /// Window searched around each pixel (px); lattice translations are searched as well.
        search: usize,
        /// Filtering strength in units of the noise σ; `None` = [`crate::nlm::STRENGTH`].
        h: Option<f64>,
        /// Poisson counts (Anscombe transform) or additive Gaussian noise (estimated).
        #[serde(default)]
        noise: crate::fit::Noise,
        /// Also compare patches one or two lattice vectors away (see [`crate::similar`]): far
        /// better denoising of crystals, at a slight pull of each column towards its neighbours.
        #[serde(default = "yes")]
        lattice: bool,
    },
    /// Block-matching 3D filtering (see [`crate::bm3d`]), Poisson-aware.
    Bm3d {
        /// Largest block offset searched (px).
        search: usize,
        /// Poisson counts (Anscombe transform) or additive Gaussian noise (estimated).
        noise: crate::fit::Noise,
        /// Also match blocks one or two lattice vectors away (as for `NonLocalMeans`).
        #[serde(default = "yes")]
        lattice: bool,
    },
    /// Rolling-ball (flat disk) background removal.
    RollingBall {
        /// Disk radius (px): larger than the gaps between columns, smaller than the support's
        /// variations.
        radius: usize,
    },
    /// Background (support, thickness) removal.
    Background {
        /// Width (px) of what counts as background; several lattice spacings.
        sigma: f64,
    },
}

impl Default for Method {
    fn default() -> Self {
        Method::Wiener { radius: 2, noise: None }
    }
}

fn invalid(name: &'static str, reason: String) -> CoreError {
    CoreError::InvalidParameter { name, reason }
}

/// Apply `method` to `img`.
pub fn denoise(img: ArrayView2<f32>, method: &Method) -> Result<Array2<f32>, CoreError> {
    check_usable(img)?;
    let positive = |name, v: f64| {
        if v.is_finite() && v > 0.0 { Ok(()) } else { Err(invalid(name, format!("{v} must be positive"))) }
    };
    match *method {
        Method::Gaussian { sigma } => {
            positive("sigma", sigma)?;
            Ok(gaussian_blur(img, sigma))
        }
        Method::Median { radius } => {
            if !(1..=15).contains(&radius) {
                return Err(invalid("radius", format!("{radius} is outside 1–15 px")));
            }
            Ok(median(img, radius))
        }
        Method::Wiener { radius, noise } => {
            if !(1..=15).contains(&radius) {
                return Err(invalid("radius", format!("{radius} is outside 1–15 px")));
            }
            if let Some(n) = noise {
                positive("noise", n)?;
            }
            Ok(wiener(img, radius, noise))
        }
        Method::Bandpass { small, large } => {
            positive("small", small)?;
            if !(large > small) {
                return Err(invalid("large", format!("{large} px must exceed small ({small} px)")));
            }
            let mean = finite_mean(img);
            let fine = gaussian_blur(img, small);
            let coarse = gaussian_blur(img, (small * small + large * large).sqrt());
            Ok(&fine - &coarse + mean as f32)
        }
        Method::Background { sigma } => {
            positive("sigma", sigma)?;
            let bg = gaussian_blur(img, sigma);
            let level = finite_mean(bg.view()) as f32;
            Ok(img.mapv(|v| if v.is_finite() { v } else { f32::NAN }) - &bg + level)
        }
        Method::NonLocalMeans { patch, search, h, noise, lattice } => {
            if !(1..=5).contains(&patch) || !(1..=15).contains(&search) {
                return Err(invalid("patch", format!("patch {patch} px (1–5) and search {search} px (1–15)")));
            }
            if let Some(v) = h {
                positive("h", v)?;
            }
            Ok(crate::nlm::denoise(img, patch, search, lattice, h.unwrap_or(crate::nlm::STRENGTH), noise))
        }
        Method::RollingBall { radius } => {
            if !(2..=200).contains(&radius) {
                return Err(invalid("radius", format!("{radius} px is outside 2–200")));
            }
            let bg = crate::rolling_ball::rolling_ball_background(img, radius);
            Ok(&img.mapv(|v| if v.is_finite() { v } else { f32::NAN }) - &bg)
        }
        Method::Bm3d { search, noise, lattice } => {
            if !(4..=24).contains(&search) {
                return Err(invalid("search", format!("{search} px is outside 4–24")));
            }
            Ok(crate::bm3d::bm3d(img, noise, search, lattice))
        }
        Method::Bragg { radius } => {
            if !(radius > 0.0 && radius <= 0.5) {
                return Err(invalid("radius", format!("{radius} must be in (0, 0.5] (a fraction of |g|)")));
            }
            bragg(img, radius)
        }
    }
}

fn from_rows(h: usize, w: usize, rows: Vec<Vec<f32>>) -> Array2<f32> {
    Array2::from_shape_vec((h, w), rows.into_iter().flatten().collect()).expect("h rows of w")
}

fn median(img: ArrayView2<f32>, r: usize) -> Array2<f32> {
    let (h, w) = img.dim();
    let ri = r as i64;
    let out = map(h, |y| {
        let mut buf = Vec::with_capacity((2 * r + 1).pow(2));
        (0..w)
            .map(|x| {
                buf.clear();
                for dy in -ri..=ri {
                    for dx in -ri..=ri {
                        let v = img[[reflect(y as i64 + dy, h), reflect(x as i64 + dx, w)]];
                        if v.is_finite() {
                            buf.push(v);
                        }
                    }
                }
                if buf.is_empty() {
                    return f32::NAN;
                }
                let k = buf.len() / 2;
                *buf.select_nth_unstable_by(k, f32::total_cmp).1
            })
            .collect()
    });
    from_rows(h, w, out)
}

/// Mean over the (2r+1)² window of every pixel (mirrored borders), by separable running sums.
fn box_mean(img: &Array2<f64>, r: usize) -> Array2<f64> {
    let (h, w) = img.dim();
    let n = (2 * r + 1) as f64;
    let line = |get: &dyn Fn(i64) -> f64, len: usize| -> Vec<f64> {
        let ri = r as i64;
        let mut s: f64 = (-ri..=ri).map(get).sum();
        let mut out = Vec::with_capacity(len);
        for i in 0..len as i64 {
            out.push(s / n);
            s += get(i + ri + 1) - get(i - ri);
        }
        out
    };
    let horizontal = Array2::from_shape_vec(
        (h, w),
        map(h, |y| line(&|x| img[[y, reflect(x, w)]], w)).into_iter().flatten().collect(),
    )
    .expect("h × w");
    let cols = map(w, |x| line(&|y| horizontal[[reflect(y, h), x]], h));
    Array2::from_shape_fn((h, w), |(y, x)| cols[x][y])
}

fn wiener(img: ArrayView2<f32>, r: usize, noise: Option<f64>) -> Array2<f32> {
    let mean = finite_mean(img);
    let x = img.mapv(|v| if v.is_finite() { v as f64 } else { mean });
    let mu = box_mean(&x, r);
    let sq = box_mean(&x.mapv(|v| v * v), r);
    let var = Array2::from_shape_fn(x.dim(), |i| (sq[i] - mu[i] * mu[i]).max(0.0));
    let nu = noise.unwrap_or_else(|| var.mean().unwrap_or(0.0));
    Array2::from_shape_fn(x.dim(), |i| {
        let gain = if var[i] > 0.0 { (var[i] - nu).max(0.0) / var[i].max(nu) } else { 0.0 };
        (mu[i] + gain * (x[i] - mu[i])) as f32
    })
}

fn bragg(img: ArrayView2<f32>, radius: f64) -> Result<Array2<f32>, CoreError> {
    let (h, w) = img.dim();
    let l = lattice_vectors(img, estimate_spacing(img)?)?;
    let (g1, g2) = (l.g1, l.g2);
    let len = |g: [f64; 2]| g[0].hypot(g[1]);
    let sigma = radius * len(g1).min(len(g2)) / 2.0;
    let mean = finite_mean(img);
    let mut z = img.mapv(|v| C32::new(if v.is_finite() { v - mean as f32 } else { 0.0 }, 0.0));
    let plan = Fft2::new(h, w);
    plan.forward(&mut z);
    // Reciprocal-lattice points within Nyquist (both signs, and the origin).
    let n1 = (0.75 / len(g1)).ceil() as i64;
    let n2 = (0.75 / len(g2)).ceil() as i64;
    let mut points = Vec::new();
    for i in -n1..=n1 {
        for j in -n2..=n2 {
            let g = [i as f64 * g1[0] + j as f64 * g2[0], i as f64 * g1[1] + j as f64 * g2[1]];
            if g[0].abs() <= 0.5 + 3.0 * sigma && g[1].abs() <= 0.5 + 3.0 * sigma {
                points.push(g);
            }
        }
    }
    let fy: Vec<f64> = (0..h).map(|k| frequency(k, h)).collect();
    let fx: Vec<f64> = (0..w).map(|k| frequency(k, w)).collect();
    let wrap = |f: f64| f - f.round();
    let reach2 = (3.0 * sigma).powi(2);
    for ((ky, kx), v) in z.indexed_iter_mut() {
        // The strongest (largest) window at this frequency.
        let m = points
            .iter()
            .map(|g| wrap(fx[kx] - g[0]).powi(2) + wrap(fy[ky] - g[1]).powi(2))
            .filter(|&d2| d2 < reach2)
            .map(|d2| (-d2 / (2.0 * sigma * sigma)).exp())
            .fold(0.0, f64::max);
        *v *= m as f32;
    }
    plan.inverse(&mut z);
    Ok(z.mapv(|c| c.re + mean as f32))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fit::Noise;
    use crate::synth::{TrueColumn, add_gaussians};

    fn lattice(noise: f32, seed: u64) -> (Array2<f32>, Array2<f32>) {
        let mut cols = Vec::new();
        for i in 0..16 {
            for j in 0..16 {
                cols.push(TrueColumn {
                    x: 4.0 + 8.0 * i as f64,
                    y: 4.0 + 8.0 * j as f64,
                    sigma: 1.6,
                    peak: 10.0,
                    atoms: 1,
                    m_atoms: 0,
                });
            }
        }
        let mut clean = Array2::from_elem((128, 128), 2.0f32);
        add_gaussians(&mut clean, &cols);
        let mut s = seed;
        let noisy = clean.mapv(|v| {
            // Box–Muller from an LCG: reproducible Gaussian noise.
            let mut u = || {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
            };
            let g = (-2.0 * u().ln()).sqrt() * (2.0 * std::f64::consts::PI * u()).cos();
            v + noise * g as f32
        });
        (clean, noisy)
    }

    fn psnr(a: &Array2<f32>, clean: &Array2<f32>) -> f64 {
        let mse = a.iter().zip(clean).map(|(x, y)| ((x - y) as f64).powi(2)).sum::<f64>() / a.len() as f64;
        let peak = clean.iter().cloned().fold(f32::MIN, f32::max) as f64;
        10.0 * (peak * peak / mse).log10()
    }

    #[test]
    fn every_method_improves_a_noisy_lattice() {
        let (clean, noisy) = lattice(2.0, 3);
        let base = psnr(&noisy, &clean);
        for (m, gain) in [
            (Method::Gaussian { sigma: 1.0 }, 3.0),
            (Method::Median { radius: 1 }, 2.0),
            (Method::Wiener { radius: 2, noise: None }, 3.0),
            (Method::Bandpass { small: 1.0, large: 20.0 }, 3.0),
            (Method::Bragg { radius: 0.2 }, 8.0),
            (Method::NonLocalMeans { patch: 2, search: 2, h: None, noise: Noise::Auto, lattice: true }, 5.0),
        ] {
            let out = denoise(noisy.view(), &m).unwrap();
            let p = psnr(&out, &clean);
            assert!(p > base + gain, "{m:?}: PSNR {p:.1} dB vs noisy {base:.1} dB");
        }
    }

    #[test]
    fn the_lattice_search_is_on_unless_turned_off() {
        let m: Method = serde_json::from_str(r#"{"method":"bm3d","search":8,"noise":"auto"}"#).unwrap();
        assert_eq!(m, Method::Bm3d { search: 8, noise: Noise::Auto, lattice: true });
        let m: Method =
            serde_json::from_str(r#"{"method":"non_local_means","patch":2,"search":2,"h":null,"lattice":false}"#)
                .unwrap();
        assert_eq!(m, Method::NonLocalMeans { patch: 2, search: 2, h: None, noise: Noise::Auto, lattice: false });
    }

    #[test]
    fn box_mean_matches_the_direct_window_sum() {
        let img = Array2::from_shape_fn((13, 17), |(y, x)| ((x * 31 + y * 17) % 23) as f64);
        let fast = box_mean(&img, 2);
        for (y, x) in [(0, 0), (6, 8), (12, 16), (3, 15)] {
            let mut s = 0.0;
            for dy in -2i64..=2 {
                for dx in -2i64..=2 {
                    s += img[[reflect(y as i64 + dy, 13), reflect(x as i64 + dx, 17)]];
                }
            }
            assert!((fast[[y, x]] - s / 25.0).abs() < 1e-9, "({y}, {x})");
        }
    }

    #[test]
    fn median_removes_impulses_and_keeps_edges() {
        let mut img = Array2::from_shape_fn((32, 32), |(_, x)| if x < 16 { 1.0f32 } else { 5.0 });
        for (y, x) in [(5, 5), (20, 25), (10, 17)] {
            img[[y, x]] = 100.0;
        }
        let out = denoise(img.view(), &Method::Median { radius: 1 }).unwrap();
        assert!(out.iter().all(|&v| v == 1.0 || v == 5.0));
        assert_eq!(out[[10, 15]], 1.0);
        assert_eq!(out[[10, 16]], 5.0);
    }

    #[test]
    fn background_removal_levels_a_ramp_under_the_columns() {
        let (clean, _) = lattice(0.0, 1);
        let ramped = Array2::from_shape_fn(clean.dim(), |(y, x)| clean[[y, x]] + 0.2 * x as f32);
        let out = denoise(ramped.view(), &Method::Background { sigma: 24.0 }).unwrap();
        // Column peaks minus their local minimum, left vs right: equal once the ramp is gone.
        let height = |x: usize| out[[68, x]] - out[[64, x]];
        let (left, right) = (height(36), height(92));
        assert!((left - right).abs() < 0.05 * left, "left {left}, right {right}");
    }

    #[test]
    fn bandpass_keeps_the_band_and_the_mean() {
        let img = Array2::from_shape_fn((64, 64), |(_, x)| {
            5.0 + (2.0 * std::f32::consts::PI * x as f32 / 8.0).sin() + 0.05 * x as f32
        });
        let out = denoise(img.view(), &Method::Bandpass { small: 0.5, large: 30.0 }).unwrap();
        let mean = out.mean().unwrap();
        assert!((mean - img.mean().unwrap()).abs() < 0.2, "mean {mean}");
        // The 8 px fringes survive (transfer ≈ 0.85 at σ 0.5 px).
        let amp = (out[[32, 34]] - out[[32, 38]]) / 2.0;
        assert!(amp > 0.7 && amp < 1.05, "amplitude {amp}");
    }

    #[test]
    fn bad_parameters_are_refused() {
        let img = Array2::from_elem((16, 16), 1.0f32);
        for m in [
            Method::Gaussian { sigma: 0.0 },
            Method::Median { radius: 0 },
            Method::Wiener { radius: 20, noise: None },
            Method::Bandpass { small: 3.0, large: 2.0 },
            Method::Bragg { radius: 0.9 },
        ] {
            assert!(matches!(denoise(img.view(), &m), Err(CoreError::InvalidParameter { .. })), "{m:?}");
        }
        // No lattice, no Bragg filter.
        let mut s = 99u64;
        let noise = Array2::from_shape_fn((64, 64), |_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 40) as f32
        });
        assert!(matches!(denoise(noise.view(), &Method::Bragg { radius: 0.2 }), Err(CoreError::NoLattice { .. })));
    }
}
