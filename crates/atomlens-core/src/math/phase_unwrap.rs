//! Least-squares phase unwrapping (Ghiglia & Romero 1994): the phase whose gradient best matches
//! the wrapped differences of neighbouring samples, from a Poisson equation with Neumann borders
//! solved by the DCT. Exact for phases whose neighbour differences stay below π; where they do
//! not (noise, singularities) the error is spread smoothly instead of propagating as 2π jumps.
use std::f64::consts::PI;

use ndarray::Array2;
use rustdct::DctPlanner;

#[cfg(feature = "parallel")]
use rayon::prelude::*;

use crate::math::fft::C32;

/// Unwrapped phase of `z` (radians), equal to `arg z` modulo 2π at the centre pixel.
pub fn unwrap(z: &Array2<C32>) -> Array2<f32> {
    let (h, w) = z.dim();
    if h == 0 || w == 0 {
        return Array2::zeros((h, w));
    }
    let wrapped = |a: C32, b: C32| (a * b.conj()).arg() as f64;
    let dx = |y: usize, x: usize| if x + 1 < w { wrapped(z[[y, x + 1]], z[[y, x]]) } else { 0.0 };
    let dy = |y: usize, x: usize| if y + 1 < h { wrapped(z[[y + 1, x]], z[[y, x]]) } else { 0.0 };
    // Divergence of the wrapped gradient (Neumann: no flux through the border).
    let mut rho: Vec<f64> = (0..h * w)
        .map(|i| {
            let (y, x) = (i / w, i % w);
            let left = if x > 0 { dx(y, x - 1) } else { 0.0 };
            let up = if y > 0 { dy(y - 1, x) } else { 0.0 };
            dx(y, x) - left + dy(y, x) - up
        })
        .collect();
    let mut planner = DctPlanner::<f64>::new();
    let (fwd_w, fwd_h) = (planner.plan_dct2(w), planner.plan_dct2(h));
    let (inv_w, inv_h) = (planner.plan_dct3(w), planner.plan_dct3(h));
    lines(&mut rho, w, |l| fwd_w.process_dct2(l));
    let mut t = transpose(&rho, h, w);
    lines(&mut t, h, |l| fwd_h.process_dct2(l));
    // t is [x][y]: divide by the Laplacian's eigenvalues.
    for kx in 0..w {
        for ky in 0..h {
            let den = 2.0 * (PI * kx as f64 / w as f64).cos() + 2.0 * (PI * ky as f64 / h as f64).cos() - 4.0;
            t[kx * h + ky] = if kx == 0 && ky == 0 { 0.0 } else { t[kx * h + ky] / den };
        }
    }
    lines(&mut t, h, |l| inv_h.process_dct3(l));
    let mut phi = transpose(&t, w, h);
    lines(&mut phi, w, |l| inv_w.process_dct3(l));
    // DCT-III after DCT-II multiplies by n/2 along each axis.
    let scale = 4.0 / (w * h) as f64;
    let (cy, cx) = (h / 2, w / 2);
    let c = phi[cy * w + cx] * scale;
    let shift = wrap(z[[cy, cx]].arg() as f64 - c);
    Array2::from_shape_fn((h, w), |(y, x)| (phi[y * w + x] * scale + shift) as f32)
}

fn wrap(a: f64) -> f64 {
    a - 2.0 * PI * (a / (2.0 * PI)).round()
}

fn lines(buf: &mut [f64], len: usize, f: impl Fn(&mut [f64]) + Sync + Send) {
    #[cfg(feature = "parallel")]
    buf.par_chunks_mut(len).for_each(f);
    #[cfg(not(feature = "parallel"))]
    buf.chunks_mut(len).for_each(f);
}

/// `h` rows of `w` → `w` rows of `h`.
fn transpose(a: &[f64], h: usize, w: usize) -> Vec<f64> {
    let mut out = vec![0.0; a.len()];
    for y in 0..h {
        for x in 0..w {
            out[x * h + y] = a[y * w + x];
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrapped_smooth_phase_comes_back() {
        let (h, w) = (90, 130);
        // Tens of radians across the image: wrapped many times.
        let truth = Array2::from_shape_fn((h, w), |(y, x)| {
            let (x, y) = (x as f64, y as f64);
            0.25 * x + 0.002 * (x - 40.0).powi(2) - 0.15 * y + 0.001 * x * y
        });
        let z = truth.mapv(|p| C32::new(p.cos() as f32, p.sin() as f32));
        let u = unwrap(&z);
        let off = truth[[45, 65]] - u[[45, 65]] as f64;
        assert!(((off / (2.0 * PI)).round() * 2.0 * PI - off).abs() < 1e-3, "offset {off} is not a multiple of 2π");
        let worst = truth.iter().zip(u.iter()).map(|(t, v)| (t - *v as f64 - off).abs()).fold(0.0, f64::max);
        assert!(worst < 1e-3, "worst error {worst} rad");
    }
}
