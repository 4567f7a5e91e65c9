//! The column pipeline as one call: find (see [`crate::peaks`]) then refine (see [`crate::fit`]).
use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use crate::CoreError;
use crate::fit::{AtomColumn, FitParams, fit_columns};
use crate::peaks::{PeakParams, find_columns};

/// Parameters of [`find_and_fit`]: the finder's and the fitter's.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ColumnParams {
    /// Finding.
    pub find: PeakParams,
    /// Refining.
    pub fit: FitParams,
}

/// Refined columns and the values the run used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnResult {
    /// One entry per column found.
    pub columns: Vec<AtomColumn>,
    /// Minimum separation used (px).
    pub separation: f64,
    /// Nearest-neighbour distance estimated from the image (px), when estimated.
    pub spacing: Option<f64>,
}

/// Find and refine every column of `img`.
pub fn find_and_fit(img: ArrayView2<f32>, p: &ColumnParams) -> Result<ColumnResult, CoreError> {
    let peaks = find_columns(img, &p.find)?;
    let columns =
        if p.find.dark { fit_dark(img, &peaks.points, &p.fit)? } else { fit_columns(img, &peaks.points, &p.fit)? };
    Ok(ColumnResult { columns, separation: peaks.separation, spacing: peaks.spacing })
}

/// Dark columns (ABF): fit the negated image, so `amplitude` is the depth of each dip and
/// `background` the level it dips from.
pub fn fit_dark(img: ArrayView2<f32>, seeds: &[[f64; 2]], p: &FitParams) -> Result<Vec<AtomColumn>, CoreError> {
    let neg = img.mapv(|v| -v);
    let mut cols = fit_columns(neg.view(), seeds, p)?;
    for c in &mut cols {
        c.background = -c.background;
    }
    Ok(cols)
}
