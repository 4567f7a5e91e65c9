//! Smoothing filters used by the analyses (the clean-up filters of the UI build on these).
use std::collections::VecDeque;

use ndarray::{Array2, ArrayView2};

/// A normalised 1-D Gaussian kernel of width `sigma` (px), truncated at ±4σ.
pub fn gaussian_kernel(sigma: f64) -> Vec<f32> {
    let r = (4.0 * sigma).ceil().max(1.0) as i64;
    let k: Vec<f64> = (-r..=r).map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp()).collect();
    let s: f64 = k.iter().sum();
    k.iter().map(|v| (v / s) as f32).collect()
}

/// Index into `0..n` with mirror reflection at the ends (`d c b | a b c d | c b a`).
pub fn reflect(i: i64, n: usize) -> usize {
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
///
/// Rows are convolved from a mirrored copy of each row; columns by adding whole rows, each
/// weighted by its tap, into the output row: both loops run over contiguous memory without an
/// index reflection per tap (SIMD), and no transpose is needed.
pub fn gaussian_blur(img: ArrayView2<f32>, sigma: f64) -> Array2<f32> {
    let (h, w) = img.dim();
    let src = crate::image::stats::filled_with_mean(img);
    if sigma <= 0.0 || h == 0 || w == 0 {
        return src;
    }
    let k = gaussian_kernel(sigma);
    let r = (k.len() / 2) as i64;
    let src = src.as_slice().expect("standard layout");
    let rows: Vec<Vec<f32>> = crate::math::par::map(h, |y| {
        let line = &src[y * w..][..w];
        let padded: Vec<f32> = (-r..w as i64 + r).map(|i| line[reflect(i, w)]).collect();
        let mut out = vec![0.0f32; w];
        for (j, &kv) in k.iter().enumerate() {
            for (o, &v) in out.iter_mut().zip(&padded[j..j + w]) {
                *o += kv * v;
            }
        }
        out
    });
    let mut out = Array2::<f32>::zeros((h, w));
    crate::math::par::rows(out.as_slice_mut().expect("standard layout"), w, |y, out| {
        for (j, &kv) in k.iter().enumerate() {
            let row = &rows[reflect(y as i64 + j as i64 - r, h)];
            for (o, &v) in out.iter_mut().zip(row) {
                *o += kv * v;
            }
        }
    });
    out
}

/// Running `op` over a window of ±`half` along one line (clipped at the ends), by a monotonic
/// queue of indices whose values are kept in `op`-order.
pub(crate) fn running(values: impl Iterator<Item = f32>, n: usize, half: usize, op: fn(f32, f32) -> f32) -> Vec<f32> {
    let v: Vec<f32> = values.collect();
    let better = |a: f32, b: f32| op(a, b) == a; // a at least as extreme as b
    let mut q: VecDeque<usize> = VecDeque::new();
    let mut out = Vec::with_capacity(n);
    let mut next = 0; // next index to enter the window
    for x in 0..n {
        while next < n && next <= x + half {
            while q.back().is_some_and(|&b| better(v[next], v[b])) {
                q.pop_back();
            }
            q.push_back(next);
            next += 1;
        }
        while q.front().is_some_and(|&f| f + half < x) {
            q.pop_front();
        }
        out.push(v[*q.front().expect("the window holds x")]);
    }
    out
}

/// The largest value within the square of ±`half` px around each pixel (clipped at the borders).
/// Along each direction a window of `L = 2·half + 1` is the maximum of two overlapping windows of
/// `2^k ≤ L`, built by doubling (`log₂ L` passes of element-wise maxima over whole rows): no
/// queue, no gather of columns, and the inner loops vectorise.
pub fn max_filter(img: ArrayView2<f32>, half: usize) -> Array2<f32> {
    let (h, w) = img.dim();
    let len = 2 * half + 1;
    let span = 1usize << len.ilog2(); // 2^k ≤ L
    // Maxima of every `span` consecutive items of `a` (padded with −∞ by `half` each side),
    // combined into the windows of `len`: out[i] = max over a[i − half ..= i + half].
    fn windows<T: Clone>(a: Vec<T>, half: usize, len: usize, span: usize, max: impl Fn(&mut T, &T)) -> Vec<T> {
        let mut t = a;
        let mut s = 1;
        while s < span {
            for i in 0..t.len() - s {
                let (lo, hi) = t.split_at_mut(i + s);
                max(&mut lo[i], &hi[0]);
            }
            s *= 2;
        }
        let n = t.len() - 2 * half;
        (0..n)
            .map(|i| {
                let mut m = t[i].clone();
                max(&mut m, &t[i + len - span]);
                m
            })
            .collect()
    }
    let rows: Vec<Vec<f32>> = crate::math::par::map(h, |y| {
        let mut p = vec![f32::NEG_INFINITY; w + 2 * half];
        p[half..half + w].iter_mut().zip(img.row(y)).for_each(|(d, &v)| *d = v);
        windows(p, half, len, span, |a: &mut f32, b: &f32| *a = a.max(*b))
    });
    // Down the columns: the same doubling on whole rows, in bands of columns (one task each).
    let bands = w.div_ceil(BAND);
    let cols: Vec<Vec<Vec<f32>>> = crate::math::par::map(bands, |b| {
        let (x0, x1) = (b * BAND, ((b + 1) * BAND).min(w));
        let mut padded = vec![vec![f32::NEG_INFINITY; x1 - x0]; half];
        padded.extend(rows.iter().map(|r| r[x0..x1].to_vec()));
        padded.extend(vec![vec![f32::NEG_INFINITY; x1 - x0]; half]);
        windows(padded, half, len, span, |a: &mut Vec<f32>, b: &Vec<f32>| {
            a.iter_mut().zip(b).for_each(|(x, &y)| *x = x.max(y))
        })
    });
    let mut out = Array2::<f32>::zeros((h, w));
    crate::math::par::rows(out.as_slice_mut().expect("standard layout"), w, |y, row| {
        for (b, band) in cols.iter().enumerate() {
            row[b * BAND..][..band[y].len()].copy_from_slice(&band[y]);
        }
    });
    out
}

/// Columns per task of [`max_filter`]'s vertical pass: rows of 128 floats stay whole SIMD runs.
const BAND: usize = 128;

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
    fn max_filter_matches_the_direct_maximum() {
        let img = Array2::from_shape_fn((17, 23), |(y, x)| ((x * 7 + y * 13) % 11) as f32);
        let fast = max_filter(img.view(), 3);
        for ((y, x), &v) in fast.indexed_iter() {
            let mut m = f32::MIN;
            for yy in y.saturating_sub(3)..(y + 4).min(17) {
                for xx in x.saturating_sub(3)..(x + 4).min(23) {
                    m = m.max(img[[yy, xx]]);
                }
            }
            assert_eq!(v, m, "{y} {x}");
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
