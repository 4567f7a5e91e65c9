//! The column pipeline as one call: find (see [`crate::peaks`]) then refine (see [`crate::fit`]).
use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use crate::CoreError;
use crate::fit::{AtomColumn, FitParams, FitStatus, fit_columns};
use crate::lattice::{Lattice, lattice_vectors};
use crate::peaks::{PeakParams, Peaks, find_columns};
use crate::sublattice::{Mixture, best_mixture};

/// Parameters of [`find_and_fit`]: the finder's and the fitter's.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ColumnParams {
    /// Finding.
    pub find: PeakParams,
    /// Refining.
    pub fit: FitParams,
    /// How columns are split into sublattices.
    pub sublattices: Sublattices,
}

/// Sublattice classification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sublattices {
    /// By integrated intensity (Gaussian mixture, see [`crate::sublattice`]).
    #[default]
    Intensity,
    /// By site in the unit cell of the spectrum's lattice (see [`crate::sites`]); by intensity
    /// when there is no lattice.
    Position,
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
    /// Lattice vectors from the power spectrum, when it shows two fringe directions.
    pub lattice: Option<Lattice>,
}

/// Find and refine every column of `img`.
pub fn find_and_fit(img: ArrayView2<f32>, p: &ColumnParams) -> Result<ColumnResult, CoreError> {
    fit_found(img, &find_columns(img, &p.find)?, p)
}

/// Refine columns already found (the second half of [`find_and_fit`], so a caller can show the
/// positions before the fits arrive).
pub fn fit_found(img: ArrayView2<f32>, peaks: &Peaks, p: &ColumnParams) -> Result<ColumnResult, CoreError> {
    let lattice = lattice_vectors(img, peaks.nn_distance()).ok();
    let columns = refine(img, &peaks.points, p, lattice.as_ref())?;
    Ok(ColumnResult { columns, separation: peaks.separation, spacing: peaks.spacing, lattice })
}

/// Refine columns at `seeds` (found, or edited by hand) and sort them into sublattices (by
/// position needs the `lattice`). Dark
/// columns (ABF, `p.find.dark`) are fitted on the negated image, so `amplitude` is the depth
/// of each dip and `background` the level it dips from.
pub fn refine(
    img: ArrayView2<f32>,
    seeds: &[[f64; 2]],
    p: &ColumnParams,
    lattice: Option<&Lattice>,
) -> Result<Vec<AtomColumn>, CoreError> {
    let mut columns = if p.find.dark {
        let mut cols = fit_columns(img.mapv(|v| -v).view(), seeds, &p.fit)?;
        for c in &mut cols {
            c.background = -c.background;
        }
        cols
    } else {
        fit_columns(img, seeds, &p.fit)?
    };
    match (p.sublattices, lattice) {
        (Sublattices::Position, Some(l)) => {
            crate::sites::assign_sites(&mut columns, l);
        }
        _ => {
            assign_sublattices(&mut columns);
        }
    }
    let pts: Vec<[f64; 2]> = columns.iter().map(|c| [c.x, c.y]).collect();
    let (h, w) = img.dim();
    let hint = ((h * w) as f64 / pts.len().max(1) as f64).sqrt();
    let (nn, coordination) = crate::neighbours::coordination(&pts, hint);
    for ((c, d), k) in columns.iter_mut().zip(nn).zip(coordination) {
        (c.nn_distance, c.coordination) = (d, k);
    }
    Ok(columns)
}

/// Sublattice of every fitted column from its integrated intensity (`volume`): the best of 1–3
/// Gaussian components by BIC, 0 the dimmest. Unfitted columns keep 0.
pub fn assign_sublattices(columns: &mut [AtomColumn]) -> Option<Mixture> {
    let values: Vec<f64> = columns.iter().filter(|c| c.status == FitStatus::Fitted).map(|c| c.volume).collect();
    let m = best_mixture(&values, 3)?;
    for c in columns.iter_mut().filter(|c| c.status == FitStatus::Fitted) {
        c.sublattice = m.classify(c.volume) as u32;
    }
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::match_points;
    use crate::synth::{NanoparticleParams, nanoparticle};

    /// The built-in demo (Poisson counts, support background): every column of three or more
    /// atoms is found and refined to well below a pixel, with Poisson error bars that match
    /// the observed scatter.
    #[test]
    fn demo_particle_columns_are_recovered() {
        let s = nanoparticle(&NanoparticleParams::default()).unwrap();
        let r = find_and_fit(s.image.view(), &ColumnParams::default()).unwrap();
        let truth: Vec<[f64; 2]> = s.columns.iter().map(|c| [c.x, c.y]).collect();
        let found: Vec<[f64; 2]> = r.columns.iter().map(|c| [c.x, c.y]).collect();
        let m = match_points(&truth, &found, 4.0);
        let thick_missed = m.missed.iter().filter(|&&i| s.columns[i].atoms >= 3).count();
        assert_eq!(thick_missed, 0, "missed {} columns of ≥ 3 atoms", thick_missed);
        assert!(m.extra.is_empty(), "{} spurious columns", m.extra.len());
        let thick: Vec<&(usize, usize, f64)> = m.pairs.iter().filter(|p| s.columns[p.0].atoms >= 5).collect();
        let rms = (thick.iter().map(|p| p.2 * p.2).sum::<f64>() / thick.len() as f64).sqrt();
        let err = (thick.iter().map(|p| r.columns[p.1].x_err.powi(2) + r.columns[p.1].y_err.powi(2)).sum::<f64>()
            / thick.len() as f64)
            .sqrt();
        assert!(rms < 0.1, "rms {rms} px");
        assert!((rms / err - 1.0).abs() < 0.3, "observed {rms} vs reported {err}");
    }
}
