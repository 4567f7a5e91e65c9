//! The plain filters of the clean-up: median, adaptive Wiener (and the box mean it uses), and the
//! Bragg (periodic) filter. Parameters are checked by [`super::denoise`].
use ndarray::{Array2, ArrayView2};

use crate::CoreError;
use crate::image::filter::reflect;
use crate::image::stats::finite_mean;
use crate::lattice::{estimate_spacing, lattice_vectors};
use crate::math::fft::{C32, Fft2, frequency};
use crate::math::par::map;

pub(super) fn from_rows(h: usize, w: usize, rows: Vec<Vec<f32>>) -> Array2<f32> {
    Array2::from_shape_vec((h, w), rows.into_iter().flatten().collect()).expect("h rows of w")
}

pub(super) fn median(img: ArrayView2<f32>, r: usize) -> Array2<f32> {
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
pub(super) fn box_mean(img: &Array2<f64>, r: usize) -> Array2<f64> {
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

pub(super) fn wiener(img: ArrayView2<f32>, r: usize, noise: Option<f64>) -> Array2<f32> {
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

pub(super) fn bragg(img: ArrayView2<f32>, radius: f64) -> Result<Array2<f32>, CoreError> {
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
