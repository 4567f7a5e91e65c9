//! Columns found by the learned finder ([`crate::learned::finder`]): its probability maxima
//! as seeds, the lattice (or single-atom significance) read as the classical finder reads it,
//! and the classical finder's result beside it in the notes, so the two can be compared on
//! the image at hand.
use ndarray::ArrayView2;

use super::find::Peaks;
use super::single::{ATOM_SIGMA_A, ATOM_SIGMA_PX, SingleAtomParams, find_single_atoms};
use super::{ColumnParams, Finder, MAX_ATOM_PIXEL_NM};
use crate::CoreError;
use crate::image::check_usable;
use crate::lattice::analyse;
use crate::learned::finder::{ColumnNet, WORK_SIGMA_PX, rescale};
use crate::metrics::match_points;

/// The largest image the network is run on, after resampling to its scale (pixels).
const MAX_WORK_PX: f64 = 64e6;
/// An atom's σ over the nearest-neighbour distance, for an uncalibrated lattice (Pt on
/// [110] or [100]: 0.6 Å over 1.96 Å).
const SIGMA_PER_SPACING: f64 = 0.3;

/// Find columns (or single atoms) with the committed model; see [`super::find()`] for what the
/// arguments and the result mean.
pub fn find(img: ArrayView2<f32>, pixel_nm: Option<f64>, p: &ColumnParams) -> Result<Peaks, CoreError> {
    find_with(img, pixel_nm, p, ColumnNet::builtin()?)
}

/// [`find`] with a given model (one trained by `atomlens train columns`).
pub fn find_with(
    img: ArrayView2<f32>,
    pixel_nm: Option<f64>,
    p: &ColumnParams,
    net: &ColumnNet,
) -> Result<Peaks, CoreError> {
    if p.find.dark {
        return Err(CoreError::InvalidParameter {
            name: "finder",
            reason: "the learned finder was trained on HAADF images (bright columns); dark columns (ABF, BF) \
                     need the classical finder"
                .into(),
        });
    }
    check_usable(img)?;
    let a = analyse(img, pixel_nm)?;
    let coarse = pixel_nm.filter(|&px| px > MAX_ATOM_PIXEL_NM);
    let sigma = match (p.single.sigma, pixel_nm, a.spacing) {
        (Some(s), _, _) => s,
        (None, Some(px), _) => ATOM_SIGMA_A / (10.0 * px),
        (None, None, Some(d)) => SIGMA_PER_SPACING * d,
        (None, None, None) if p.atoms => ATOM_SIGMA_PX,
        (None, None, None) => {
            return Err(CoreError::NoLattice {
                reason: "the image is uncalibrated and shows no lattice, so the learned finder has no scale \
                         (set the pixel size, or ask for single atoms)"
                    .into(),
            });
        }
    };
    if let (None, Some(px), false) = (a.spacing, coarse, p.atoms) {
        return Err(CoreError::NoLattice {
            reason: format!(
                "no lattice, and pixels of {:.2} Å are too coarse for single atoms (≤ {:.1} Å needed)",
                px * 10.0,
                MAX_ATOM_PIXEL_NM * 10.0
            ),
        });
    }
    // Within ±25 % of the working scale the network is run on the image as it is.
    let factor = WORK_SIGMA_PX / sigma;
    let factor = if (0.8..=1.25).contains(&factor) { 1.0 } else { factor };
    let (h, w) = img.dim();
    if h as f64 * w as f64 * factor * factor > MAX_WORK_PX {
        return Err(CoreError::InvalidParameter {
            name: "finder",
            reason: format!(
                "at the learned finder's scale (atom σ {WORK_SIGMA_PX} px, here {sigma:.2} px) this image would be \
                 {:.0} Mpx; crop it or use the classical finder",
                h as f64 * w as f64 * factor * factor / 1e6
            ),
        });
    }
    let centres = if factor == 1.0 { net.centres(img) } else { net.centres(rescale(img, factor).view()) };
    let points: Vec<[f64; 2]> = centres
        .iter()
        .map(|(c, _)| [(c[0] + 0.5) / factor - 0.5, (c[1] + 0.5) / factor - 0.5])
        .filter(|&[x, y]| x >= 1.0 && y >= 1.0 && x <= w as f64 - 2.0 && y <= h as f64 - 2.0)
        .collect();
    if points.is_empty() {
        return Err(CoreError::NotFound {
            what: "column",
            reason: format!("the learned finder sees no atom or column (none with probability ≥ {})", net.threshold),
        });
    }
    let mut notes = vec![format!(
        "learned finder: {} centres (atom σ {sigma:.2} px{})",
        points.len(),
        if factor == 1.0 { String::new() } else { format!(", resampled ×{factor:.2} to the network's scale") }
    )];
    // The classical finder on the same image, for comparison.
    let classical = ColumnParams { finder: Finder::Classical, ..p.clone() };
    match super::find(img, pixel_nm, &classical) {
        Ok(c) => {
            let r = (1.5 * sigma).max(1.0);
            let m = match_points(&c.points, &points, r);
            notes.push(format!(
                "classical finder: {} found; {} of them within {r:.1} px of a learned one, {} learned ones have no classical twin",
                c.points.len(),
                m.pairs.len(),
                m.extra.len()
            ));
        }
        Err(e) => notes.push(format!("classical finder: {e}")),
    }
    if let Some(d) = a.spacing {
        return Ok(Peaks { points, separation: 0.7 * d, spacing: Some(d), lattice: a.lattice, single: None, notes });
    }
    let single = find_single_atoms(img, pixel_nm, &SingleAtomParams { sigma: Some(sigma), ..p.single.clone() })?;
    Ok(Peaks {
        single: Some(single.at(img, &points)),
        points,
        separation: 3.0 * sigma,
        spacing: None,
        lattice: None,
        notes,
    })
}
