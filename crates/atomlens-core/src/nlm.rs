//! Non-local means (Buades, Coll & Morel 2005) in the fast form of Darbon et al. (2008), as
//! scikit-image's `denoise_nl_means(fast_mode=True)`: for every offset in the search window the
//! squared difference image is box-filtered over the patch, so each offset costs O(pixels).
//! Weight `exp(−max(d² − 2σ², 0) / h²)` with `d²` the mean squared patch difference; σ is the
//! noise level (estimated by Immerkær's Laplacian method when not given), `h = 0.8 σ` by default.
use ndarray::{Array2, ArrayView2};

use crate::filter::reflect;

#[cfg(feature = "parallel")]
use rayon::prelude::*;

/// Noise standard deviation of `img` (Immerkær 1996): the mean absolute response to a
/// Laplacian-difference kernel that cancels smooth structure, scaled for Gaussian noise.
pub fn estimate_noise(img: ArrayView2<f32>) -> f64 {
    let (h, w) = img.dim();
    if h < 3 || w < 3 {
        return 0.0;
    }
    let k = [[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]];
    let mut sum = 0.0;
    let mut n = 0usize;
    for y in 1..h - 1 {
        for x in 1..w - 1 {
            let mut r = 0.0f64;
            for (dy, row) in k.iter().enumerate() {
                for (dx, kv) in row.iter().enumerate() {
                    r += kv * img[[y + dy - 1, x + dx - 1]] as f64;
                }
            }
            if r.is_finite() {
                sum += r.abs();
                n += 1;
            }
        }
    }
    (std::f64::consts::PI / 2.0).sqrt() * sum / (6.0 * n.max(1) as f64)
}

/// Non-local means of `img` with patches of `(2·patch+1)²`, offsets up to `search` px, noise
/// `sigma` and filtering strength `h` (see the module docs).
pub fn nl_means(img: ArrayView2<f32>, patch: usize, search: usize, sigma: f64, h_param: f64) -> Array2<f32> {
    let (h, w) = img.dim();
    // Mirrored once into a padded copy, so the inner loops run over plain slices.
    let m = search + patch + 1;
    let (ph, pw) = (h + 2 * m, w + 2 * m);
    let padded: Vec<f32> = (0..ph * pw)
        .map(|i| {
            let v = img[[reflect((i / pw) as i64 - m as i64, h), reflect((i % pw) as i64 - m as i64, w)]];
            if v.is_finite() { v } else { 0.0 }
        })
        .collect();
    let row = |y: i64| &padded[((y + m as i64) as usize) * pw..][..pw];
    let side = 2 * patch + 1;
    let inv_area = 1.0 / (side * side) as f32;
    let (two_s2, inv_h2) = ((2.0 * sigma * sigma) as f32, (1.0 / (h_param * h_param).max(1e-12)) as f32);
    let mut num = vec![0.0f32; h * w];
    let mut den = vec![0.0f32; h * w];
    // Row sums of squared differences over the patch width, for the h + 2p rows a patch touches.
    let mut sums = vec![0.0f32; (h + 2 * patch) * w];
    let (s, p) = (search as i64, patch as i64);
    for dy in -s..=s {
        for dx in -s..=s {
            let fill = |(yy, out): (usize, &mut [f32])| {
                let y = yy as i64 - p;
                let (a, b) = (row(y), row(y + dy));
                let d = |x: i64| {
                    let (i, j) = ((x + m as i64) as usize, (x + dx + m as i64) as usize);
                    (a[i] - b[j]) * (a[i] - b[j])
                };
                let mut acc: f32 = (-p..=p).map(d).sum();
                for (x, o) in out.iter_mut().enumerate() {
                    *o = acc;
                    acc += d(x as i64 + p + 1) - d(x as i64 - p);
                }
            };
            #[cfg(feature = "parallel")]
            sums.par_chunks_mut(w).enumerate().for_each(fill);
            #[cfg(not(feature = "parallel"))]
            sums.chunks_mut(w).enumerate().for_each(fill);
            let accumulate = |(y, (nrow, drow)): (usize, (&mut [f32], &mut [f32]))| {
                let shifted = &row(y as i64 + dy)[(m as i64 + dx) as usize..];
                for x in 0..w {
                    let mut d2 = 0.0f32;
                    for k in 0..side {
                        d2 += sums[(y + k) * w + x];
                    }
                    let wgt = (-(d2 * inv_area - two_s2).max(0.0) * inv_h2).exp();
                    nrow[x] += wgt * shifted[x];
                    drow[x] += wgt;
                }
            };
            #[cfg(feature = "parallel")]
            num.par_chunks_mut(w).zip(den.par_chunks_mut(w)).enumerate().for_each(accumulate);
            #[cfg(not(feature = "parallel"))]
            num.chunks_mut(w).zip(den.chunks_mut(w)).enumerate().for_each(accumulate);
        }
    }
    Array2::from_shape_fn(
        (h, w),
        |(y, x)| if img[[y, x]].is_finite() { num[y * w + x] / den[y * w + x] } else { f32::NAN },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noisy(sigma: f32) -> (Array2<f32>, Array2<f32>) {
        let clean = Array2::from_shape_fn((64, 64), |(y, x)| {
            let (fx, fy) = (x as f32 / 6.0, y as f32 / 6.0);
            5.0 + 3.0 * (fx.sin() * fy.cos()).powi(2)
        });
        let mut s = 5u64;
        let img = clean.mapv(|v| {
            let mut u = || {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
            };
            v + sigma * ((-2.0 * u().ln()).sqrt() * (2.0 * std::f64::consts::PI * u()).cos()) as f32
        });
        (clean, img)
    }

    #[test]
    fn noise_estimate_is_close_for_gaussian_noise() {
        let (_, img) = noisy(0.5);
        let s = estimate_noise(img.view());
        assert!((s - 0.5).abs() < 0.06, "estimated {s}");
    }

    #[test]
    fn a_single_offset_window_is_the_identity() {
        // With search 0 only the pixel itself takes part: the output is the input.
        let (_, img) = noisy(0.3);
        let out = nl_means(img.view(), 2, 0, 0.3, 0.24);
        assert!(out.iter().zip(img.iter()).all(|(a, b)| (a - b).abs() < 1e-5));
    }

    #[test]
    fn fast_form_matches_the_direct_definition() {
        let (_, img) = noisy(0.4);
        let out = nl_means(img.view(), 1, 2, 0.4, 0.32);
        let (h, w) = img.dim();
        let at = |y: i64, x: i64| img[[reflect(y, h), reflect(x, w)]] as f64;
        for (y, x) in [(0i64, 0i64), (10, 33), (63, 63), (31, 1)] {
            let (mut num, mut den) = (0.0, 0.0);
            for dy in -2..=2 {
                for dx in -2..=2 {
                    let mut d2 = 0.0;
                    for py in -1..=1 {
                        for px in -1..=1 {
                            d2 += (at(y + py, x + px) - at(y + dy + py, x + dx + px)).powi(2);
                        }
                    }
                    let wgt = (-((d2 / 9.0) - 2.0 * 0.16f64).max(0.0) / (0.32f64 * 0.32)).exp();
                    num += wgt * at(y + dy, x + dx);
                    den += wgt;
                }
            }
            let want = num / den;
            assert!((out[[y as usize, x as usize]] as f64 - want).abs() < 1e-4, "({y}, {x})");
        }
    }
}
