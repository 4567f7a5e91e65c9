//! Smoothing filters used by the analyses (the clean-up filters of the UI build on these).
use ndarray::{Array2, ArrayView2};

#[cfg(feature = "parallel")]
use rayon::prelude::*;

/// A normalised 1-D Gaussian kernel of width `sigma` (px), truncated at ±4σ.
pub fn gaussian_kernel(sigma: f64) -> Vec<f32> {
    let r = (4.0 * sigma).ceil().max(1.0) as i64;
    let k: Vec<f64> = (-r..=r).map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp()).collect();
    let s: f64 = k.iter().sum();
    k.iter().map(|v| (v / s) as f32).collect()
}

/// Index into `0..n` with mirror reflection at the ends (`d c b | a b c d | c b a`).
pub(crate) fn reflect(i: i64, n: usize) -> usize {
    let n = n as i64;
    if n == 1 {
        return 0;
    }
    let period = 2 * (n - 1);
    let m = i.rem_euclid(period);
    (if m < n { m } else { period - m }) as usize
}

/// Gaussian blur of width `sigma` px (separable, mirrored borders). Non-finite pixels are
/// treated as the image mean. `sigma <= 0` returns a copy.
pub fn gaussian_blur(img: ArrayView2<f32>, sigma: f64) -> Array2<f32> {
    let (h, w) = img.dim();
    let src = crate::image::stats::filled_with_mean(img);
    if sigma <= 0.0 || h == 0 || w == 0 {
        return src;
    }
    let k = gaussian_kernel(sigma);
    let r = (k.len() / 2) as i64;
    let conv_line = |line: &[f32], out: &mut [f32]| {
        let n = line.len();
        for (i, o) in out.iter_mut().enumerate() {
            let mut acc = 0.0f32;
            for (j, &kv) in k.iter().enumerate() {
                acc += kv * line[reflect(i as i64 + j as i64 - r, n)];
            }
            *o = acc;
        }
    };
    let pass = |a: &Array2<f32>| -> Array2<f32> {
        let (rows, cols) = a.dim();
        let mut out = Array2::<f32>::zeros((rows, cols));
        let src = a.as_slice().expect("standard layout");
        let dst = out.as_slice_mut().expect("standard layout");
        #[cfg(feature = "parallel")]
        dst.par_chunks_mut(cols).zip(src.par_chunks(cols)).for_each(|(o, l)| conv_line(l, o));
        #[cfg(not(feature = "parallel"))]
        dst.chunks_mut(cols).zip(src.chunks(cols)).for_each(|(o, l)| conv_line(l, o));
        out
    };
    let rows_done = pass(&src);
    let t = rows_done.t().as_standard_layout().into_owned();
    pass(&t).t().as_standard_layout().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn direct_blur(img: &Array2<f32>, sigma: f64) -> Array2<f32> {
        let k = gaussian_kernel(sigma);
        let r = (k.len() / 2) as i64;
        let (h, w) = img.dim();
        Array2::from_shape_fn((h, w), |(y, x)| {
            let mut acc = 0.0f64;
            for (a, &ky) in k.iter().enumerate() {
                for (b, &kx) in k.iter().enumerate() {
                    let yy = reflect(y as i64 + a as i64 - r, h);
                    let xx = reflect(x as i64 + b as i64 - r, w);
                    acc += (ky * kx) as f64 * img[[yy, xx]] as f64;
                }
            }
            acc as f32
        })
    }

    #[test]
    fn separable_equals_direct_2d_convolution() {
        let img = Array2::from_shape_fn((13, 21), |(y, x)| ((x * 7 + y * 13) % 11) as f32);
        let fast = gaussian_blur(img.view(), 1.7);
        let slow = direct_blur(&img, 1.7);
        for (a, b) in fast.iter().zip(slow.iter()) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
    }

    #[test]
    fn blur_keeps_constants_and_borders_reflect() {
        let c = Array2::from_elem((9, 9), 3.5f32);
        assert!(gaussian_blur(c.view(), 2.0).iter().all(|&v| (v - 3.5).abs() < 1e-5));
        assert_eq!(reflect(-1, 5), 1);
        assert_eq!(reflect(5, 5), 3);
        assert_eq!(reflect(9, 5), 1);
    }
}
