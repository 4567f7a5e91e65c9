//! The per-fringe machinery of GPA: masking the spectrum around g and demodulating, phase
//! gradients without unwrapping, the reference-weighted mean gradient, and small parallel helpers.
use std::f64::consts::TAU;

use ndarray::Array2;

#[cfg(feature = "parallel")]
use rayon::prelude::*;

use super::{MIN_AMPLITUDE, MaskShape, Region};
use crate::math::fft::{C32, Fft2, frequency};

/// `IFFT(spectrum · mask(k − g)) · e^{−2πi g·r}`: the fringe of `g` with its carrier removed.
pub(super) fn demodulated(
    spectrum: &Array2<C32>,
    plan: &Fft2,
    g: [f64; 2],
    shape: MaskShape,
    radius: f64,
) -> Array2<C32> {
    let (h, w) = spectrum.dim();
    let mut z = Array2::<C32>::zeros((h, w));
    // Only the mask's support is filled: a box of ±reach around g, wrapped.
    let reach = match shape {
        MaskShape::Gaussian => 3.0 * radius, // 6 σ
        MaskShape::Cosine => radius,
    };
    let span = |n: usize| ((reach * n as f64).ceil() as i64 + 1).min(n as i64 / 2);
    let (sx, sy) = (span(w), span(h));
    let (cx, cy) = ((g[0] * w as f64).round() as i64, (g[1] * h as f64).round() as i64);
    let (wi, hi) = (w as i64, h as i64);
    for dy in -sy..=sy {
        let ky = (cy + dy).rem_euclid(hi) as usize;
        let fy = wrap(frequency(ky, h) - g[1]);
        for dx in -sx..=sx {
            let kx = (cx + dx).rem_euclid(wi) as usize;
            let d = wrap(frequency(kx, w) - g[0]).hypot(fy);
            let m = match shape {
                MaskShape::Gaussian => (-2.0 * (d / radius).powi(2)).exp(),
                MaskShape::Cosine if d < radius => (std::f64::consts::FRAC_PI_2 * d / radius).cos().powi(2),
                MaskShape::Cosine => 0.0,
            };
            z[[ky, kx]] = spectrum[[ky, kx]] * m as f32;
        }
    }
    plan.inverse(&mut z);
    remove_ramp(&mut z, g);
    z
}

fn wrap(f: f64) -> f64 {
    f - f.round()
}

/// Multiply by `e^{−2πi g·r}` (separable: one phasor per column and per row).
pub(super) fn remove_ramp(z: &mut Array2<C32>, g: [f64; 2]) {
    let (h, w) = z.dim();
    let phasor = |f: f64, i: usize| {
        let (s, c) = (-TAU * ((f * i as f64).fract())).sin_cos();
        C32::new(c as f32, s as f32)
    };
    let px: Vec<C32> = (0..w).map(|x| phasor(g[0], x)).collect();
    let py: Vec<C32> = (0..h).map(|y| phasor(g[1], y)).collect();
    let slice = z.as_slice_mut().expect("standard layout");
    let apply = |(y, row): (usize, &mut [C32])| {
        for (v, p) in row.iter_mut().zip(&px) {
            *v *= p * py[y];
        }
    };
    #[cfg(feature = "parallel")]
    slice.par_chunks_mut(w).enumerate().for_each(apply);
    #[cfg(not(feature = "parallel"))]
    slice.chunks_mut(w).enumerate().for_each(apply);
}

/// `∇P` at (y, x) in radians per pixel (row-major `z`, `w` × `h`): phase of neighbouring
/// products, central inside, one-sided at the edges.
pub(super) fn phase_gradient(z: &[C32], w: usize, h: usize, y: usize, x: usize) -> [f64; 2] {
    let d = |a: C32, b: C32, span: usize| ((a * b.conj()).arg() / span as f32) as f64;
    let (xl, xr) = (x.saturating_sub(1), (x + 1).min(w - 1));
    let (yl, yr) = (y.saturating_sub(1), (y + 1).min(h - 1));
    [d(z[y * w + xr], z[y * w + xl], xr - xl), d(z[yr * w + x], z[yl * w + x], yr - yl)]
}

pub(super) fn slice<T>(a: &Array2<T>) -> &[T] {
    a.as_slice().expect("standard layout")
}

/// Mean phase gradient over `r`, weighted by amplitude⁴: where a fringe fades (a particle's
/// edge) its phase is bent by the lattice's truncation, and the interior should set the
/// reference lattice.
pub(super) fn mean_gradient(z: &Array2<C32>, amp: &Array2<f32>, r: Region) -> Option<[f64; 2]> {
    let (h, w) = z.dim();
    let (mut sum, mut wsum) = ([0.0, 0.0], 0.0);
    for y in r.y0..r.y1 {
        for x in r.x0..r.x1 {
            let a = amp[[y, x]] as f64;
            if a >= MIN_AMPLITUDE as f64 {
                let d = phase_gradient(slice(z), w, h, y, x);
                let w = a.powi(4);
                sum = [sum[0] + w * d[0], sum[1] + w * d[1]];
                wsum += w;
            }
        }
    }
    (wsum > 0.0).then(|| [sum[0] / wsum, sum[1] / wsum])
}

/// 95th percentile of a subsample (every 7th value: exact enough for a threshold).
pub(super) fn percentile95(a: &Array2<f32>) -> f32 {
    let mut v: Vec<f32> = a.iter().step_by(7).copied().filter(|v| v.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    let k = (v.len() - 1) * 95 / 100;
    *v.select_nth_unstable_by(k, f32::total_cmp).1
}

/// `f` of every element, in parallel when the feature is on.
pub(super) fn map_par<T: Sync, U: Send + Copy + Default>(a: &Array2<T>, f: impl Fn(&T) -> U + Sync) -> Array2<U> {
    let mut out = Array2::from_elem(a.dim(), U::default());
    let (src, dst) = (slice(a), out.as_slice_mut().expect("standard layout"));
    #[cfg(feature = "parallel")]
    dst.par_chunks_mut(4096)
        .zip(src.par_chunks(4096))
        .for_each(|(o, i)| o.iter_mut().zip(i).for_each(|(o, i)| *o = f(i)));
    #[cfg(not(feature = "parallel"))]
    dst.iter_mut().zip(src).for_each(|(o, i)| *o = f(i));
    out
}
