//! Rectangles of pixels (a reference region, a map's core) and statistics inside them.
use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

/// A rectangle of pixels, half-open: `x0 ≤ x < x1`, `y0 ≤ y < y1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    /// First column.
    pub x0: usize,
    /// First row.
    pub y0: usize,
    /// One past the last column.
    pub x1: usize,
    /// One past the last row.
    pub y1: usize,
}

/// Mean and standard deviation of the finite values of `map` inside `r`.
pub fn region_stats(map: ArrayView2<f32>, r: Region) -> (f64, f64) {
    let vals = region_values(map, r);
    let n = vals.len().max(1) as f64;
    let mean = vals.iter().sum::<f64>() / n;
    (mean, (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt())
}

/// The finite values of `map` inside `r`.
pub fn region_values(map: ArrayView2<f32>, r: Region) -> Vec<f64> {
    (r.y0..r.y1).flat_map(|y| (r.x0..r.x1).map(move |x| map[[y, x]] as f64)).filter(|v| v.is_finite()).collect()
}
