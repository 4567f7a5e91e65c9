//! Comparing found positions with a reference: one-to-one matching and error statistics. Used by
//! the tests against ground truth and by `atomlens bench`.
use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

/// Peak signal-to-noise ratio (dB) of `img − offset` against `clean`, with the peak taken as the
/// clean image's range (as scikit-image's `peak_signal_noise_ratio(data_range=max − min)`).
/// Pixels where either is not finite are left out.
pub fn psnr(img: ArrayView2<f32>, clean: ArrayView2<f32>, offset: f64) -> f64 {
    let (mut lo, mut hi, mut se, mut n) = (f64::MAX, f64::MIN, 0.0, 0usize);
    for (&a, &c) in img.iter().zip(clean.iter()) {
        if a.is_finite() && c.is_finite() {
            let c = c as f64;
            (lo, hi) = (lo.min(c), hi.max(c));
            se += (a as f64 - offset - c).powi(2);
            n += 1;
        }
    }
    10.0 * ((hi - lo).powi(2) / (se / n.max(1) as f64)).log10()
}

/// How a set of found points compares with reference points.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PointMatch {
    /// `(reference index, found index, distance)` for every matched pair.
    pub pairs: Vec<(usize, usize, f64)>,
    /// Reference points with no found point within the radius.
    pub missed: Vec<usize>,
    /// Found points matched to no reference point.
    pub extra: Vec<usize>,
}

impl PointMatch {
    /// RMS distance of the matched pairs (NaN when none).
    pub fn rms(&self) -> f64 {
        if self.pairs.is_empty() {
            return f64::NAN;
        }
        (self.pairs.iter().map(|p| p.2 * p.2).sum::<f64>() / self.pairs.len() as f64).sqrt()
    }
}

/// Greedy one-to-one matching by increasing distance, up to `radius` (as Atomap's reference
/// scripts match). Quadratic in the worst case only within the radius (grid search).
pub fn match_points(reference: &[[f64; 2]], found: &[[f64; 2]], radius: f64) -> PointMatch {
    let grid = crate::lattice::neighbours::Grid::new(found, radius.max(1e-9));
    let mut cand: Vec<(f64, usize, usize)> = Vec::new();
    for (i, &r) in reference.iter().enumerate() {
        for j in grid.within(found, r, radius) {
            cand.push(((found[j][0] - r[0]).hypot(found[j][1] - r[1]), i, j));
        }
    }
    cand.sort_by(|a, b| a.0.total_cmp(&b.0));
    let (mut used_r, mut used_f) = (vec![false; reference.len()], vec![false; found.len()]);
    let mut pairs = Vec::new();
    for (d, i, j) in cand {
        if !used_r[i] && !used_f[j] {
            used_r[i] = true;
            used_f[j] = true;
            pairs.push((i, j, d));
        }
    }
    let missed = (0..reference.len()).filter(|&i| !used_r[i]).collect();
    let extra = (0..found.len()).filter(|&j| !used_f[j]).collect();
    PointMatch { pairs, missed, extra }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psnr_of_a_known_error() {
        let clean = ndarray::Array2::from_shape_fn((10, 10), |(y, x)| (x + 10 * y) as f32 / 99.0);
        // An error of ±0.1 everywhere on a range of 1: 20 dB; the offset is removed first.
        let noisy = ndarray::Array2::from_shape_fn((10, 10), |(y, x)| {
            clean[[y, x]] + 5.0 + if (x + y) % 2 == 0 { 0.1 } else { -0.1 }
        });
        assert!((psnr(noisy.view(), clean.view(), 5.0) - 20.0).abs() < 1e-4);
    }

    #[test]
    fn matching_is_one_to_one_and_greedy() {
        let r = [[0.0, 0.0], [10.0, 0.0], [20.0, 0.0]];
        let f = [[0.5, 0.0], [9.0, 0.0], [10.2, 0.0], [40.0, 0.0]];
        let m = match_points(&r, &f, 2.0);
        assert_eq!(m.pairs.len(), 2);
        assert!(m.pairs.contains(&(1, 2, 0.1999999999999993)) || m.pairs.iter().any(|p| p.0 == 1 && p.1 == 2));
        assert_eq!(m.missed, vec![2]);
        assert_eq!(m.extra, vec![1, 3]);
        assert!((m.rms() - ((0.25 + 0.04) / 2.0f64).sqrt()).abs() < 1e-12);
    }
}
