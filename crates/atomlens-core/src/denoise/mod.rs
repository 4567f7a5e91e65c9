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
//! - `non_local_means`: patch-similarity weighted average (see [`crate::denoise::nlm`]).
//! - `bm3d`: block-matching 3D collaborative filtering, Poisson-aware (see [`crate::denoise::bm3d`]).
//! - `rolling_ball`: subtracts the floor under the columns (see [`crate::denoise::rolling_ball`]), so the
//!   support reads zero and each column keeps its own intensity above it.
//! - `noise2void`: a small U-Net trained on the image itself to predict each pixel from its
//!   neighbours (see [`crate::learned::n2v`]); seeded, so the same steps and seed give the same image.
//! - `background`: subtracts the large-scale support/thickness variation `G_σ ∗ x` and adds back
//!   its mean, so column intensities across the image become comparable.
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::CoreError;
use crate::image::filter::gaussian_blur;
use crate::image::stats::finite_mean;
use crate::image::{Noise, check_usable};
use filters::{bragg, median, wiener};

pub mod bm3d;
mod filters;
pub mod nlm;
pub mod patches;
pub mod rolling_ball;

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
    /// Non-local means (see [`crate::denoise::nlm`]), Poisson-aware, noise estimated from the image.
    NonLocalMeans {
        /// Patch half-width (px): patches are (2p+1)².
        patch: usize,
        /// Window searched around each pixel (px); lattice translations are searched as well.
        search: usize,
        /// Filtering strength in units of the noise σ; `None` = [`crate::denoise::nlm::STRENGTH`].
        h: Option<f64>,
        /// Poisson counts (Anscombe transform) or additive Gaussian noise (estimated).
        #[serde(default)]
        noise: Noise,
        /// Also compare patches one or two lattice vectors away (see [`crate::denoise::patches`]): far
        /// better denoising of crystals, at a slight pull of each column towards its neighbours.
        #[serde(default = "yes")]
        lattice: bool,
    },
    /// Block-matching 3D filtering (see [`crate::denoise::bm3d`]), Poisson-aware.
    Bm3d {
        /// Largest block offset searched (px).
        search: usize,
        /// Poisson counts (Anscombe transform) or additive Gaussian noise (estimated).
        noise: Noise,
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
    /// Noise2Void: a network trained on this image alone (see [`crate::learned::n2v`]).
    #[serde(rename = "noise2void")]
    Noise2Void {
        /// Training steps (batches of eight 64² patches).
        steps: usize,
        /// Seed of the network's start and of the patches drawn.
        seed: u64,
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

impl Method {
    /// Every method at its default parameters, in the order a form lists them. The CLI's
    /// `--method NAME` starts from these, the page builds its clean-up form from them.
    pub const ALL: [Method; 10] = [
        Method::Wiener { radius: 2, noise: None },
        Method::Gaussian { sigma: 1.0 },
        Method::Median { radius: 1 },
        Method::Bandpass { small: 1.0, large: 20.0 },
        Method::Bragg { radius: 0.15 },
        Method::NonLocalMeans { patch: 2, search: 2, h: None, noise: Noise::Auto, lattice: true },
        Method::Bm3d { search: 8, noise: Noise::Auto, lattice: true },
        Method::Noise2Void { steps: crate::learned::n2v::STEPS, seed: 0 },
        Method::RollingBall { radius: 20 },
        Method::Background { sigma: 30.0 },
    ];

    /// The method's name (its serde tag: `non_local_means`, `rolling_ball`, …).
    pub fn name(&self) -> &'static str {
        match self {
            Method::Gaussian { .. } => "gaussian",
            Method::Median { .. } => "median",
            Method::Wiener { .. } => "wiener",
            Method::Bandpass { .. } => "bandpass",
            Method::Bragg { .. } => "bragg",
            Method::NonLocalMeans { .. } => "non_local_means",
            Method::Bm3d { .. } => "bm3d",
            Method::Noise2Void { .. } => "noise2void",
            Method::RollingBall { .. } => "rolling_ball",
            Method::Background { .. } => "background",
        }
    }

    /// The method called `name` at its default parameters; `-` reads as `_`, `nlm` is
    /// `non_local_means` and `n2v` is `noise2void`.
    pub fn by_name(name: &str) -> Option<Method> {
        let name = name.replace('-', "_");
        let name = match name.as_str() {
            "nlm" => "non_local_means",
            "n2v" => "noise2void",
            name => name,
        };
        Method::ALL.into_iter().find(|m| m.name() == name)
    }
}

fn invalid(name: &'static str, reason: String) -> CoreError {
    CoreError::InvalidParameter { name, reason }
}

/// Check `method`'s parameters (every path that runs a method, CPU or GPU, checks here).
pub fn check(method: &Method) -> Result<(), CoreError> {
    let positive = |name, v: f64| {
        if v.is_finite() && v > 0.0 { Ok(()) } else { Err(invalid(name, format!("{v} must be positive"))) }
    };
    let within = |name, v: usize, lo: usize, hi: usize| {
        if (lo..=hi).contains(&v) { Ok(()) } else { Err(invalid(name, format!("{v} px is outside {lo}–{hi}"))) }
    };
    match *method {
        Method::Gaussian { sigma } | Method::Background { sigma } => positive("sigma", sigma),
        Method::Median { radius } => within("radius", radius, 1, 15),
        Method::Wiener { radius, noise } => {
            within("radius", radius, 1, 15)?;
            noise.map_or(Ok(()), |n| positive("noise", n))
        }
        Method::Bandpass { small, large } => {
            positive("small", small)?;
            if !(large > small) {
                return Err(invalid("large", format!("{large} px must exceed small ({small} px)")));
            }
            Ok(())
        }
        Method::NonLocalMeans { patch, search, h, .. } => {
            if !(1..=5).contains(&patch) || !(1..=15).contains(&search) {
                return Err(invalid("patch", format!("patch {patch} px (1–5) and search {search} px (1–15)")));
            }
            h.map_or(Ok(()), |v| positive("h", v))
        }
        Method::RollingBall { radius } => within("radius", radius, 2, 200),
        Method::Bm3d { search, .. } => within("search", search, 4, 24),
        Method::Noise2Void { steps, .. } => crate::learned::n2v::check(steps),
        Method::Bragg { radius } => {
            if !(radius > 0.0 && radius <= 0.5) {
                return Err(invalid("radius", format!("{radius} must be in (0, 0.5] (a fraction of |g|)")));
            }
            Ok(())
        }
    }
}

/// Apply `method` to `img`.
pub fn apply(img: ArrayView2<f32>, method: &Method) -> Result<Array2<f32>, CoreError> {
    check_usable(img)?;
    check(method)?;
    let finite = |img: ArrayView2<f32>| img.mapv(|v| if v.is_finite() { v } else { f32::NAN });
    Ok(match *method {
        Method::Gaussian { sigma } => gaussian_blur(img, sigma),
        Method::Median { radius } => median(img, radius),
        Method::Wiener { radius, noise } => wiener(img, radius, noise),
        Method::Bandpass { small, large } => {
            let mean = finite_mean(img);
            let fine = gaussian_blur(img, small);
            let coarse = gaussian_blur(img, (small * small + large * large).sqrt());
            &fine - &coarse + mean as f32
        }
        Method::Background { sigma } => {
            let bg = gaussian_blur(img, sigma);
            let level = finite_mean(bg.view()) as f32;
            finite(img) - &bg + level
        }
        Method::NonLocalMeans { patch, search, h, noise, lattice } => {
            crate::denoise::nlm::denoise(img, patch, search, lattice, h.unwrap_or(crate::denoise::nlm::STRENGTH), noise)
        }
        Method::RollingBall { radius } => {
            &finite(img) - &crate::denoise::rolling_ball::rolling_ball_background(img, radius)
        }
        Method::Bm3d { search, noise, lattice } => crate::denoise::bm3d::bm3d(img, noise, search, lattice),
        Method::Bragg { radius } => bragg(img, radius)?,
        Method::Noise2Void { steps, seed } => crate::learned::n2v::denoise(img, steps, seed)?,
    })
}

#[cfg(test)]
mod tests {
    use super::filters::box_mean;
    use super::*;
    use crate::image::Noise;
    use crate::image::filter::reflect;
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
            let out = apply(noisy.view(), &m).unwrap();
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
        let out = apply(img.view(), &Method::Median { radius: 1 }).unwrap();
        assert!(out.iter().all(|&v| v == 1.0 || v == 5.0));
        assert_eq!(out[[10, 15]], 1.0);
        assert_eq!(out[[10, 16]], 5.0);
    }

    #[test]
    fn background_removal_levels_a_ramp_under_the_columns() {
        let (clean, _) = lattice(0.0, 1);
        let ramped = Array2::from_shape_fn(clean.dim(), |(y, x)| clean[[y, x]] + 0.2 * x as f32);
        let out = apply(ramped.view(), &Method::Background { sigma: 24.0 }).unwrap();
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
        let out = apply(img.view(), &Method::Bandpass { small: 0.5, large: 30.0 }).unwrap();
        let mean = out.mean().unwrap();
        assert!((mean - img.mean().unwrap()).abs() < 0.2, "mean {mean}");
        // The 8 px fringes survive (transfer ≈ 0.85 at σ 0.5 px).
        let amp = (out[[32, 34]] - out[[32, 38]]) / 2.0;
        assert!(amp > 0.7 && amp < 1.05, "amplitude {amp}");
    }

    /// The names are the serde tags, every method is listed once, and every default runs.
    #[test]
    fn every_method_has_one_name_and_usable_defaults() {
        let (_, noisy) = lattice(0.1, 3);
        let mut names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
        for m in Method::ALL {
            assert_eq!(serde_json::to_value(m).unwrap()["method"], m.name());
            assert_eq!(Method::by_name(m.name()), Some(m));
            // Noise2Void's default training is minutes in a debug build; two steps show it runs.
            let m = if let Method::Noise2Void { seed, .. } = m { Method::Noise2Void { steps: 2, seed } } else { m };
            assert!(apply(noisy.view(), &m).is_ok(), "{m:?}");
        }
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 10);
        assert_eq!(Method::by_name("n2v").map(|m| m.name()), Some("noise2void"));
        assert_eq!(Method::by_name("nlm").map(|m| m.name()), Some("non_local_means"));
        assert_eq!(Method::by_name("rolling-ball").map(|m| m.name()), Some("rolling_ball"));
        assert_eq!(Method::by_name("blur"), None);
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
            assert!(matches!(apply(img.view(), &m), Err(CoreError::InvalidParameter { .. })), "{m:?}");
        }
        // No lattice, no Bragg filter.
        let mut s = 99u64;
        let noise = Array2::from_shape_fn((64, 64), |_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 40) as f32
        });
        assert!(matches!(apply(noise.view(), &Method::Bragg { radius: 0.2 }), Err(CoreError::NoLattice { .. })));
    }
}
