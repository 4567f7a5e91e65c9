//! Finding atomic columns: local maxima of a smoothed image, at least one minimum separation
//! apart, above a relative threshold, away from the border. The separation is estimated from
//! the image (the nearest-neighbour peak of its autocorrelation) unless the user gives one.
use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use crate::image::filter::{gaussian_blur, max_filter};
use crate::lattice::{Lattice, analyse};
use crate::math::par::map;
use crate::{CoreError, image::check_usable};

/// Parameters of [`find_columns`]. Lengths in pixels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PeakParams {
    /// Minimum distance between two columns; `None` = 0.7 × the nearest-neighbour distance
    /// estimated by [`estimate_spacing`](crate::lattice::spacing::estimate_spacing).
    pub separation: Option<f64>,
    /// Keep maxima above `low + threshold × (high − low)` of the smoothed image (0–1).
    pub threshold: f64,
    /// Columns are dark on a bright background (ABF): search the inverted image.
    pub dark: bool,
    /// Ignore maxima closer than this to the image edge; `None` = separation / 2.
    pub border: Option<f64>,
    /// Gaussian smoothing before the search; `None` = separation / 6 (at least 0.5 px).
    pub smoothing: Option<f64>,
}

impl Default for PeakParams {
    fn default() -> Self {
        Self { separation: None, threshold: 0.1, dark: false, border: None, smoothing: None }
    }
}

/// What [`find_columns`] found and the values it used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Peaks {
    /// Column positions `[x, y]` (px, integer pixel of the maximum).
    pub points: Vec<[f64; 2]>,
    /// The minimum separation used.
    pub separation: f64,
    /// The nearest-neighbour distance estimated from the image, when it was estimated.
    pub spacing: Option<f64>,
    /// The lattice the image's spectra show, when the spacing was estimated on a zone axis.
    pub lattice: Option<Lattice>,
    /// When the image showed no lattice: the single atoms found instead (`points` are theirs,
    /// in the same order), with their significance.
    pub single: Option<crate::columns::single::SingleAtoms>,
    /// What was doubtful (a separation that contradicts the image): said by the CLI and page.
    pub notes: Vec<String>,
}

impl Peaks {
    /// The nearest-neighbour distance: estimated, or implied by a separation given by hand
    /// (the default separation is 0.7 × it).
    pub fn nn_distance(&self) -> f64 {
        self.spacing.unwrap_or(self.separation / 0.7)
    }
}

/// Find column positions (see [`PeakParams`]).
pub fn find_columns(img: ArrayView2<f32>, p: &PeakParams) -> Result<Peaks, CoreError> {
    check_usable(img)?;
    let (h, w) = img.dim();
    if !(0.0..1.0).contains(&p.threshold) {
        return Err(CoreError::InvalidParameter {
            name: "threshold",
            reason: format!("{} is outside 0–1", p.threshold),
        });
    }
    let (separation, spacing, lattice) = match p.separation {
        Some(s) if s.is_finite() && s >= 1.0 && s < h.max(w) as f64 => (s, None, None),
        Some(s) => {
            return Err(CoreError::InvalidParameter {
                name: "separation",
                reason: format!("{s} px must be at least 1 and smaller than the image ({w}×{h})"),
            });
        }
        None => {
            let a = analyse(img, None)?;
            let d = a.spacing.ok_or_else(|| CoreError::NoLattice { reason: a.notes.join("; ") })?;
            (0.7 * d, Some(d), a.lattice)
        }
    };
    let sigma = p.smoothing.unwrap_or((separation / 6.0).max(0.5));
    let mut s = gaussian_blur(img, sigma);
    if p.dark {
        s.mapv_inplace(|v| -v);
    }
    let px = s.as_slice().expect("standard layout");
    let (lo, hi) = crate::image::stats::finite_range(s.view());
    let cut = lo + p.threshold as f32 * (hi - lo);
    let border = p.border.unwrap_or(separation / 2.0).max(0.0);
    let r = ((separation / 2.0).floor() as i64).max(1);
    // Local maxima over the square of ±r (the image's own maximum filter: a pixel is one when
    // it equals the largest value around it), above the cut and away from the border.
    let dilated = max_filter(s.view(), r as usize);
    let dilated = dilated.as_slice().expect("standard layout");
    let inside = |i: usize, n: usize| i as f64 >= border && (n - 1 - i) as f64 >= border;
    let row_maxima = |y: usize| -> Vec<(f32, usize, usize)> {
        if !inside(y, h) {
            return Vec::new();
        }
        let (row, top) = (&px[y * w..][..w], &dilated[y * w..][..w]);
        (0..w).filter(|&x| row[x] > cut && row[x] == top[x] && inside(x, w)).map(|x| (row[x], x, y)).collect()
    };
    let mut candidates: Vec<(f32, usize, usize)> = map(h, row_maxima).concat();
    // Strongest first; drop any within `separation` of one already kept (grid buckets).
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
    let cell = separation.max(1.0);
    let (gw, gh) = ((w as f64 / cell).ceil() as usize + 1, (h as f64 / cell).ceil() as usize + 1);
    let mut grid: Vec<Vec<usize>> = vec![Vec::new(); gw * gh];
    let mut points: Vec<[f64; 2]> = Vec::new();
    for &(_, x, y) in &candidates {
        let (gx, gy) = ((x as f64 / cell) as usize, (y as f64 / cell) as usize);
        let near = (gy.saturating_sub(1)..=(gy + 1).min(gh - 1)).any(|cy| {
            (gx.saturating_sub(1)..=(gx + 1).min(gw - 1)).any(|cx| {
                grid[cy * gw + cx].iter().any(|&k| {
                    let q = points[k];
                    (q[0] - x as f64).powi(2) + (q[1] - y as f64).powi(2) < separation * separation
                })
            })
        });
        if !near {
            grid[gy * gw + gx].push(points.len());
            points.push([x as f64, y as f64]);
        }
    }
    Ok(Peaks { points, separation, spacing, lattice, single: None, notes: Vec::new() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lattice::estimate_spacing;
    use crate::synth::square_lattice as lattice;
    use ndarray::Array2;

    #[test]
    fn finds_every_column_of_a_lattice_once() {
        let (img, truth) = lattice(10, 16.0, 2.5);
        let found = find_columns(img.view(), &PeakParams { border: Some(2.0), ..Default::default() }).unwrap();
        assert_eq!(found.points.len(), truth.len());
        for t in &truth {
            let d = found.points.iter().map(|p| (p[0] - t.x).hypot(p[1] - t.y)).fold(f64::MAX, f64::min);
            assert!(d <= 0.75, "column at ({}, {}) off by {d}", t.x, t.y);
        }
    }

    #[test]
    fn dark_mode_finds_dark_columns() {
        let (mut img, truth) = lattice(6, 16.0, 2.5);
        img.mapv_inplace(|v| 20.0 - v);
        let p = PeakParams { dark: true, separation: Some(10.0), border: Some(2.0), ..Default::default() };
        assert_eq!(find_columns(img.view(), &p).unwrap().points.len(), truth.len());
    }

    #[test]
    fn blank_noise_and_absurd_separation_are_refused() {
        let blank = Array2::from_elem((64, 64), 5.0f32);
        assert!(matches!(find_columns(blank.view(), &PeakParams::default()), Err(CoreError::NoLattice { .. })));
        let mut s = 1u32;
        let noise = Array2::from_shape_fn((128, 128), |_| {
            s = s.wrapping_mul(1664525).wrapping_add(1013904223);
            (s >> 8) as f32 / 16777216.0
        });
        assert!(matches!(estimate_spacing(noise.view()), Err(CoreError::NoLattice { .. })));
        let (img, _) = lattice(4, 16.0, 2.5);
        let p = PeakParams { separation: Some(500.0), ..Default::default() };
        assert!(matches!(find_columns(img.view(), &p), Err(CoreError::InvalidParameter { name: "separation", .. })));
    }
}
