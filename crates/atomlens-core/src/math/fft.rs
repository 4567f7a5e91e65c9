//! 2-D FFT over row-major complex arrays: unnormalised forward, `1/N` inverse, zero frequency at
//! index 0. Rows, then columns (transposed so both passes run over contiguous memory), each pass
//! parallel over lines when the `parallel` feature is on.
use ndarray::{Array2, ArrayView2};
use std::sync::Arc;

use rustfft::{Fft, FftDirection, FftPlanner, num_complex::Complex};

#[cfg(feature = "parallel")]
use rayon::prelude::*;

/// Complex sample type used by the FFTs.
pub type C32 = Complex<f32>;

/// Forward or inverse 2-D FFT of `data` in place. The inverse divides by the number of pixels.
pub fn fft2_inplace(data: &mut Array2<C32>, direction: FftDirection) {
    let (h, w) = data.dim();
    let plan = Fft2::new(h, w);
    match direction {
        FftDirection::Forward => plan.forward(data),
        FftDirection::Inverse => plan.inverse(data),
    }
}

/// 2-D FFTs of one shape, planned once and reused (GPA runs several on the same grid).
pub struct Fft2 {
    h: usize,
    w: usize,
    rows: [Arc<dyn Fft<f32>>; 2],
    cols: [Arc<dyn Fft<f32>>; 2],
}

impl Fft2 {
    /// Plans for `h` rows of `w` pixels.
    pub fn new(h: usize, w: usize) -> Self {
        let mut planner = FftPlanner::<f32>::new();
        let dirs = [FftDirection::Forward, FftDirection::Inverse];
        Fft2 { h, w, rows: dirs.map(|d| planner.plan_fft(w, d)), cols: dirs.map(|d| planner.plan_fft(h, d)) }
    }

    /// Unnormalised forward transform in place.
    pub fn forward(&self, data: &mut Array2<C32>) {
        self.run(data, 0);
    }

    /// Inverse transform in place, divided by the number of pixels.
    pub fn inverse(&self, data: &mut Array2<C32>) {
        self.run(data, 1);
        let scale = 1.0 / (self.h * self.w) as f32;
        data.mapv_inplace(|v| v * scale);
    }

    fn run(&self, data: &mut Array2<C32>, dir: usize) {
        assert_eq!(data.dim(), (self.h, self.w), "FFT planned for another shape");
        if self.h == 0 || self.w == 0 {
            return;
        }
        let run_lines = |buf: &mut [C32], len: usize, fft: &Arc<dyn Fft<f32>>| {
            #[cfg(feature = "parallel")]
            buf.par_chunks_mut(len).for_each(|line| fft.process(line));
            #[cfg(not(feature = "parallel"))]
            buf.chunks_mut(len).for_each(|line| fft.process(line));
        };
        if !data.is_standard_layout() {
            *data = data.as_standard_layout().into_owned();
        }
        run_lines(data.as_slice_mut().expect("standard layout"), self.w, &self.rows[dir]);
        let mut t = transpose(data.view());
        run_lines(t.as_slice_mut().expect("contiguous"), self.h, &self.cols[dir]);
        *data = transpose(t.view());
    }
}

/// Blocked transpose: both arrays are walked in cache-sized tiles (a plain strided copy
/// misses the cache on every element of large images).
fn transpose(a: ArrayView2<C32>) -> Array2<C32> {
    const B: usize = 16;
    let (h, w) = a.dim();
    let src = a.as_standard_layout();
    let src = src.as_slice().expect("standard layout");
    let mut out = vec![C32::new(0.0, 0.0); h * w];
    let tile_rows = |(bx, chunk): (usize, &mut [C32])| {
        // `chunk` holds output rows bx*B .. (bx+1)*B, i.e. input columns.
        let x0 = bx * B;
        let rows = chunk.len() / h;
        for y0 in (0..h).step_by(B) {
            for y in y0..(y0 + B).min(h) {
                for dx in 0..rows {
                    chunk[dx * h + y] = src[y * w + x0 + dx];
                }
            }
        }
    };
    #[cfg(feature = "parallel")]
    out.par_chunks_mut(B * h).enumerate().for_each(tile_rows);
    #[cfg(not(feature = "parallel"))]
    out.chunks_mut(B * h).enumerate().for_each(tile_rows);
    Array2::from_shape_vec((w, h), out).expect("w × h values")
}

/// Forward FFT of a real image.
pub fn fft2_real(img: ArrayView2<f32>) -> Array2<C32> {
    let mut c = img.mapv(|v| C32::new(v, 0.0));
    fft2_inplace(&mut c, FftDirection::Forward);
    c
}

/// Signed frequency of FFT index `k` along an axis of length `n`, in cycles per pixel.
pub fn frequency(k: usize, n: usize) -> f64 {
    let k = k as f64;
    let n_f = n as f64;
    if k < n_f / 2.0 { k / n_f } else { (k - n_f) / n_f }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocked_transpose_matches_the_plain_one() {
        for (h, w) in [(1, 1), (3, 70), (65, 33), (64, 64)] {
            let a = pseudo_random(h, w);
            assert_eq!(transpose(a.view()), a.t().as_standard_layout().into_owned(), "{h}×{w}");
        }
    }
    use std::f64::consts::PI;

    fn direct_dft(img: &Array2<C32>) -> Array2<C32> {
        let (h, w) = img.dim();
        Array2::from_shape_fn((h, w), |(ky, kx)| {
            let mut acc = Complex::<f64>::new(0.0, 0.0);
            for y in 0..h {
                for x in 0..w {
                    let ph = -2.0 * PI * (ky as f64 * y as f64 / h as f64 + kx as f64 * x as f64 / w as f64);
                    let v = img[[y, x]];
                    acc += Complex::new(v.re as f64, v.im as f64) * Complex::from_polar(1.0, ph);
                }
            }
            C32::new(acc.re as f32, acc.im as f32)
        })
    }

    fn pseudo_random(h: usize, w: usize) -> Array2<C32> {
        let mut s = 12345u32;
        Array2::from_shape_fn((h, w), |_| {
            s = s.wrapping_mul(1664525).wrapping_add(1013904223);
            let a = (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
            s = s.wrapping_mul(1664525).wrapping_add(1013904223);
            let b = (s >> 8) as f32 / (1u32 << 24) as f32 - 0.5;
            C32::new(a, b)
        })
    }

    #[test]
    fn matches_direct_dft_on_odd_rectangle() {
        let img = pseudo_random(7, 12);
        let mut fast = img.clone();
        fft2_inplace(&mut fast, FftDirection::Forward);
        let slow = direct_dft(&img);
        for (a, b) in fast.iter().zip(slow.iter()) {
            assert!((a - b).norm() < 1e-4, "{a} vs {b}");
        }
    }

    #[test]
    fn inverse_undoes_forward() {
        let img = pseudo_random(16, 10);
        let mut c = img.clone();
        fft2_inplace(&mut c, FftDirection::Forward);
        fft2_inplace(&mut c, FftDirection::Inverse);
        for (a, b) in c.iter().zip(img.iter()) {
            assert!((a - b).norm() < 1e-5);
        }
    }

    #[test]
    fn frequencies_are_signed() {
        assert_eq!(frequency(0, 8), 0.0);
        assert_eq!(frequency(3, 8), 0.375);
        assert_eq!(frequency(4, 8), -0.5);
        assert_eq!(frequency(7, 8), -0.125);
    }
}
