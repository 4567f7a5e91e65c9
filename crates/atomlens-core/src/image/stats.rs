//! Pixel statistics for display and reports: summary, percentiles, histogram. NaN and infinite
//! pixels are counted and left out of everything else.
use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use crate::{CoreError, image::check_usable};

/// Summary of the finite pixels of an image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Smallest finite value.
    pub min: f64,
    /// Largest finite value.
    pub max: f64,
    /// Mean of the finite values.
    pub mean: f64,
    /// Standard deviation of the finite values.
    pub std: f64,
    /// Number of NaN or infinite pixels.
    pub non_finite: usize,
}

/// Summary statistics; `Err` when the image is empty or has no finite value.
pub fn summary(img: ArrayView2<f32>) -> Result<Summary, CoreError> {
    check_usable(img)?;
    let (mut min, mut max, mut sum, mut sum2, mut n, mut bad) = (f64::MAX, f64::MIN, 0.0, 0.0, 0usize, 0usize);
    for &v in img.iter() {
        if !v.is_finite() {
            bad += 1;
            continue;
        }
        let v = v as f64;
        min = min.min(v);
        max = max.max(v);
        sum += v;
        sum2 += v * v;
        n += 1;
    }
    let mean = sum / n as f64;
    let var = (sum2 / n as f64 - mean * mean).max(0.0);
    Ok(Summary { min, max, mean, std: var.sqrt(), non_finite: bad })
}

/// Mean of the finite pixels (0 when there are none).
pub fn finite_mean(img: ArrayView2<f32>) -> f64 {
    let (sum, n) = crate::math::par::map(img.nrows(), |y| row_sum(img.row(y)))
        .into_iter()
        .fold((0.0, 0), |(s, k), (a, b)| (s + a, k + b));
    if n == 0 { 0.0 } else { sum / n as f64 }
}

/// The sum of the finite values of `row` and their number. Branch-free in lanes of eight, so
/// it vectorises (an `is_finite` filter does not); the row's own sum is f32 lanes, well inside
/// f32's precision for the thousands of values of an image row, and the rows add in f64.
pub(crate) fn row_sum(row: ndarray::ArrayView1<f32>) -> (f64, usize) {
    let Some(row) = row.as_slice() else {
        return row.iter().filter(|v| v.is_finite()).fold((0.0, 0), |(s, n), &v| (s + v as f64, n + 1));
    };
    const L: usize = 8;
    let (chunks, rest) = row.as_chunks::<L>();
    let (mut s, mut n) = ([0.0f32; L], [0u32; L]);
    for c in chunks {
        for l in 0..L {
            let ok = c[l].is_finite();
            s[l] += if ok { c[l] } else { 0.0 };
            n[l] += ok as u32;
        }
    }
    let tail = rest.iter().filter(|v| v.is_finite());
    let sum = s.iter().map(|&v| v as f64).sum::<f64>() + tail.clone().map(|&v| v as f64).sum::<f64>();
    (sum, n.iter().map(|&k| k as usize).sum::<usize>() + tail.count())
}

/// The smallest and largest finite values of `img` (`(f32::MAX, f32::MIN)` when none is).
pub fn finite_range(img: ArrayView2<f32>) -> (f32, f32) {
    // Plain comparisons (not `f32::min`, whose NaN rule keeps it scalar) in lanes of eight.
    let row = |y: usize| {
        let r = img.row(y);
        let Some(r) = r.as_slice() else {
            return r.iter().filter(|v| v.is_finite()).fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
        };
        const L: usize = 8;
        let (chunks, rest) = r.as_chunks::<L>();
        let (mut lo, mut hi) = ([f32::MAX; L], [f32::MIN; L]);
        for c in chunks {
            for l in 0..L {
                let v = c[l];
                let ok = v.is_finite();
                lo[l] = if ok & (v < lo[l]) { v } else { lo[l] };
                hi[l] = if ok & (v > hi[l]) { v } else { hi[l] };
            }
        }
        rest.iter()
            .chain(lo.iter())
            .chain(hi.iter())
            .filter(|v| v.is_finite())
            .fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)))
    };
    crate::math::par::map(img.nrows(), row)
        .into_iter()
        .fold((f32::MAX, f32::MIN), |(a, b), (l, u)| (a.min(l), b.max(u)))
}

/// `img` with every non-finite pixel replaced by the mean of the finite ones.
pub fn filled_with_mean(img: ArrayView2<f32>) -> ndarray::Array2<f32> {
    let mean = finite_mean(img) as f32;
    img.mapv(|v| if v.is_finite() { v } else { mean })
}

/// Values at the given percentiles (0–100) of the finite pixels, by linear interpolation
/// between order statistics (numpy's default). Images above 4 Mpx are sampled on a regular
/// grid of about 4 M pixels: display limits do not need more.
pub fn percentiles(img: ArrayView2<f32>, pcts: &[f64]) -> Result<Vec<f32>, CoreError> {
    check_usable(img)?;
    for &p in pcts {
        if !(0.0..=100.0).contains(&p) {
            return Err(CoreError::InvalidParameter { name: "percentile", reason: format!("{p} is outside 0–100") });
        }
    }
    const MAX_SAMPLES: usize = 1 << 22;
    let step = ((img.len() as f64 / MAX_SAMPLES as f64).sqrt().ceil() as usize).max(1);
    let mut v: Vec<f32> = img.slice(ndarray::s![..;step, ..;step]).iter().copied().filter(|v| v.is_finite()).collect();
    let n = v.len();
    v.sort_unstable_by(f32::total_cmp);
    Ok(pcts
        .iter()
        .map(|&p| {
            let pos = p / 100.0 * (n - 1) as f64;
            let lo = pos.floor() as usize;
            let hi = pos.ceil() as usize;
            let f = (pos - lo as f64) as f32;
            v[lo] + (v[hi] - v[lo]) * f
        })
        .collect())
}

/// Histogram of the finite pixels in `bins` equal bins over `[lo, hi]`; values outside are
/// clamped into the end bins so every finite pixel is counted once.
pub fn histogram(img: ArrayView2<f32>, lo: f32, hi: f32, bins: usize) -> Result<Vec<u32>, CoreError> {
    if bins == 0 {
        return Err(CoreError::InvalidParameter { name: "bins", reason: "must be at least 1".into() });
    }
    if !(lo.is_finite() && hi.is_finite()) {
        return Err(CoreError::InvalidParameter { name: "range", reason: format!("[{lo}, {hi}] is not finite") });
    }
    let mut counts = vec![0u32; bins];
    let width = if hi > lo { (hi - lo) as f64 } else { 1.0 };
    for &v in img.iter().filter(|v| v.is_finite()) {
        let b = (((v - lo) as f64 / width) * bins as f64).floor();
        let b = b.clamp(0.0, (bins - 1) as f64) as usize;
        counts[b] += 1;
    }
    Ok(counts)
}

/// The median absolute deviation (scaled to a standard deviation) of `a` in `tile × tile`
/// blocks, each pixel taking the median of its block's and the eight neighbouring blocks'
/// values, so a bright feature filling one block does not raise its own noise.
pub fn local_mad(a: ArrayView2<f32>, tile: usize) -> ndarray::Array2<f32> {
    let (h, w) = a.dim();
    let tile = tile.max(1);
    let (th, tw) = (h.div_ceil(tile), w.div_ceil(tile));
    let blocks: Vec<f32> = crate::math::par::map(th * tw, |k| {
        let (ty, tx) = (k / tw, k % tw);
        mad(a
            .slice(ndarray::s![ty * tile..((ty + 1) * tile).min(h), tx * tile..((tx + 1) * tile).min(w)])
            .iter()
            .copied())
    });
    let smooth: Vec<f32> = (0..th * tw)
        .map(|k| {
            let (ty, tx) = ((k / tw) as i64, (k % tw) as i64);
            let mut v: Vec<f32> = (-1..=1i64)
                .flat_map(|a| (-1..=1i64).map(move |b| (ty + a, tx + b)))
                .filter(|&(y, x)| y >= 0 && x >= 0 && y < th as i64 && x < tw as i64)
                .map(|(y, x)| blocks[y as usize * tw + x as usize])
                .collect();
            let m = v.len() / 2;
            *v.select_nth_unstable_by(m, f32::total_cmp).1
        })
        .collect();
    ndarray::Array2::from_shape_fn((h, w), |(y, x)| smooth[(y / tile) * tw + x / tile])
}

/// Median absolute deviation of the finite values, scaled to a standard deviation.
pub fn mad(values: impl Iterator<Item = f32>) -> f32 {
    let mut v: Vec<f32> = values.filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    let m = v.len() / 2;
    let med = *v.select_nth_unstable_by(m, f32::total_cmp).1;
    v.iter_mut().for_each(|x| *x = (*x - med).abs());
    1.4826 * *v.select_nth_unstable_by(m, f32::total_cmp).1
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn summary_skips_nan() {
        let a = Array2::from_shape_vec((2, 3), vec![1.0, 2.0, f32::NAN, 3.0, f32::INFINITY, 6.0]).unwrap();
        let s = summary(a.view()).unwrap();
        assert_eq!((s.min, s.max, s.mean, s.non_finite), (1.0, 6.0, 3.0, 2));
        assert!((s.std - (3.5f64).sqrt()).abs() < 1e-12);
    }

    #[test]
    fn percentiles_match_numpy_linear() {
        // numpy.percentile([0..9], [0, 25, 50, 99]) = [0, 2.25, 4.5, 8.91]
        let a = Array2::from_shape_fn((2, 5), |(y, x)| (y * 5 + x) as f32);
        let p = percentiles(a.view(), &[0.0, 25.0, 50.0, 99.0]).unwrap();
        let want = [0.0, 2.25, 4.5, 8.91];
        for (g, w) in p.iter().zip(want) {
            assert!((g - w).abs() < 1e-5, "{g} vs {w}");
        }
        assert!(percentiles(a.view(), &[101.0]).is_err());
    }

    #[test]
    fn histogram_counts_every_finite_pixel_once() {
        let a = Array2::from_shape_fn((10, 10), |(y, x)| (y * 10 + x) as f32);
        let h = histogram(a.view(), 10.0, 89.0, 8).unwrap();
        assert_eq!(h.iter().sum::<u32>(), 100);
        assert_eq!(h[0], 20); // 0..19 (below lo clamped into bin 0)
        assert_eq!(h[7], 20); // 80..99, the top clamped into the last bin
    }
}
