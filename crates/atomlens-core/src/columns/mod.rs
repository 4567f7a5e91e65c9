//! Atomic columns: found ([`mod@find`]), refined by Gaussian fits with error bars ([`fit`]), sorted
//! into sublattices ([`sublattice`]); [`find_and_fit`] is the pipeline in one call.
use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use crate::CoreError;
use crate::columns::find::{PeakParams, Peaks, find_columns};
use crate::columns::fit::{AtomColumn, FitParams, FitStatus, fit_columns};
use crate::columns::single::{SingleAtomParams, SingleAtoms, find_single_atoms};
use crate::lattice::{Lattice, analyse, lattice_vectors};
use precision::Precision;
pub use sublattice::Sublattices;

pub mod find;
pub mod fit;
pub mod learned;
pub mod precision;
pub mod residual;
pub mod single;
pub mod sublattice;

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
    /// Single atoms, looked for when the image shows no lattice ([`find()`]).
    pub single: SingleAtomParams,
    /// Look for single atoms even where a lattice shows (atoms on a crystalline support).
    pub atoms: bool,
    /// Which finder seeds the fits.
    pub finder: Finder,
}

/// Which finder seeds the fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Finder {
    /// Local maxima of the smoothed image at the lattice's spacing, or single atoms by their
    /// significance ([`mod@find`], [`single`]).
    #[default]
    Classical,
    /// The learned finder's probability maxima ([`learned`]).
    Learned,
}

impl Finder {
    /// Every choice, in the order the page lists them.
    pub const ALL: [Finder; 2] = [Finder::Classical, Finder::Learned];
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
    /// Single atoms (no lattice): their significance, in the columns' order, and the threshold.
    pub single: Option<SingleAtoms>,
    /// What was doubtful (see [`Peaks::notes`]).
    #[serde(default)]
    pub notes: Vec<String>,
    /// The positions' empirical precision ([`precision`]), where enough columns have two
    /// opposite neighbours.
    #[serde(default)]
    pub precision: Option<Precision>,
}

impl ColumnResult {
    /// With the columns' empirical precision measured ([`precision::measure`]) and each
    /// column's empirical errors set from it.
    pub fn with_precision(mut self) -> Self {
        self.precision = precision::measure(&self.columns);
        precision::apply(&mut self.columns, self.precision.as_ref());
        self
    }
}

/// The coarsest pixel (nm) on which [`find()`] looks for single atoms unaided: a Pt atom's image
/// (σ ≈ 0.6 Å) must span at least a pixel each side.
pub const MAX_ATOM_PIXEL_NM: f64 = 0.06;

/// Find the columns of `img`, or its single atoms when it shows no lattice (and no separation
/// was given) on a calibrated image fine enough for atoms ([`MAX_ATOM_PIXEL_NM`]), or when
/// `p.atoms` asks: what `atomlens columns` and the page do. `pixel_nm`: the calibration, for
/// the plausibility of the lattice and the atoms' default width.
pub fn find(img: ArrayView2<f32>, pixel_nm: Option<f64>, p: &ColumnParams) -> Result<Peaks, CoreError> {
    match p.finder {
        Finder::Classical => {}
        Finder::Learned => return learned::find(img, pixel_nm, p),
    }
    if let (Some(sep), false) = (p.find.separation, p.atoms) {
        let mut peaks = find_columns(img, &p.find)?;
        peaks.notes.extend(analyse(img, pixel_nm).ok().and_then(|a| separation_note(sep, a.spacing?)));
        return Ok(peaks);
    }
    let mut notes = Vec::new();
    if !p.atoms {
        let a = analyse(img, pixel_nm)?;
        if let Some(d) = a.spacing {
            let given = PeakParams { separation: Some(0.7 * d), ..p.find.clone() };
            return Ok(Peaks { spacing: Some(d), lattice: a.lattice, ..find_columns(img, &given)? });
        }
        notes = a.notes;
        // Without a lattice, single atoms are looked for only where pixels can resolve them: an
        // uncalibrated or coarse image (a low-magnification field of particles) would give
        // confident "atoms" that are particles or support grains.
        match pixel_nm {
            Some(px) if px <= MAX_ATOM_PIXEL_NM => {}
            Some(px) => {
                notes.push(format!(
                    "pixels of {:.2} Å are too coarse for single atoms (≤ {:.1} Å needed)",
                    px * 10.0,
                    MAX_ATOM_PIXEL_NM * 10.0
                ));
                return Err(CoreError::NoLattice { reason: notes.join("; ") });
            }
            None => {
                notes.push("the image is uncalibrated, so single atoms are not looked for unless asked (--atoms, the page's \"single atoms\")".into());
                return Err(CoreError::NoLattice { reason: notes.join("; ") });
            }
        }
    }
    let s = find_single_atoms(img, pixel_nm, &p.single)?;
    if s.atoms.is_empty() {
        notes.push(format!(
            "no single atom stands {:.1} σ above its support either (≈ {} false detection per image)",
            s.threshold, s.false_alarms
        ));
        return Err(if p.atoms {
            CoreError::NotFound { what: "single atom", reason: notes.join("; ") }
        } else {
            CoreError::NoLattice { reason: notes.join("; ") }
        });
    }
    Ok(Peaks {
        points: s.atoms.iter().map(|a| [a.x, a.y]).collect(),
        separation: 3.0 * s.sigma,
        spacing: None,
        lattice: None,
        single: Some(s),
        notes: Vec::new(),
    })
}

/// When a separation given by hand contradicts the column spacing `d` the image shows: at or
/// above `d` neighbouring columns cannot both be kept; under a third of it one column can be
/// found twice. `None` when it is plausible.
pub fn separation_note(separation: f64, d: f64) -> Option<String> {
    let hint = format!("about 0.7 × {d:.1} = {:.1} px keeps every column once", 0.7 * d);
    if separation >= 0.95 * d {
        Some(format!(
            "the separation {separation:.1} px is not below the {d:.1} px column spacing the image shows: \
             neighbouring columns cannot both be kept, so columns are missing ({hint})"
        ))
    } else if separation < d / 3.0 {
        Some(format!(
            "the separation {separation:.1} px is under a third of the {d:.1} px column spacing the image \
             shows: one column may be found twice ({hint})"
        ))
    } else {
        None
    }
}

/// Find and refine every column of `img`.
pub fn find_and_fit(img: ArrayView2<f32>, p: &ColumnParams) -> Result<ColumnResult, CoreError> {
    fit_found(img, &find_columns(img, &p.find)?, p)
}

/// Refine columns already found (the second half of [`find_and_fit`], so a caller can show the
/// positions before the fits arrive).
pub fn fit_found(img: ArrayView2<f32>, peaks: &Peaks, p: &ColumnParams) -> Result<ColumnResult, CoreError> {
    fit_found_with(img, peaks, p, None)
}

/// The fit [`fit_found`] runs: `fit::fit_columns` of `seeds` with `fit` on the image, negated
/// when `negate` (dark columns). A caller that fits elsewhere (the GPU) runs this and hands the
/// columns to [`fit_found_with`].
#[derive(Debug, Clone)]
pub struct FitRequest {
    /// Fit the negated image (dark columns, ABF).
    pub negate: bool,
    /// Where.
    pub seeds: Vec<[f64; 2]>,
    /// With what.
    pub fit: FitParams,
}

impl FitRequest {
    /// The image the fit sees: `img`, negated when asked.
    pub fn image<'a>(&self, img: ArrayView2<'a, f32>) -> ndarray::CowArray<'a, f32, ndarray::Ix2> {
        if self.negate { img.mapv(|v| -v).into() } else { img.into() }
    }
}

/// What [`fit_found`] would fit for `peaks`.
pub fn fit_request(peaks: &Peaks, p: &ColumnParams) -> FitRequest {
    // Isolated atoms: windows of their own 4σ.
    let fit = match &peaks.single {
        Some(s) => FitParams { max_radius: Some(4.0 * s.sigma), ..p.fit.clone() },
        None => p.fit.clone(),
    };
    FitRequest { negate: p.find.dark, seeds: peaks.points.clone(), fit }
}

/// [`fit_found`] with the columns of its [`FitRequest`] already fitted (`None`: fit them here).
pub fn fit_found_with(
    img: ArrayView2<f32>,
    peaks: &Peaks,
    p: &ColumnParams,
    fitted: Option<Vec<AtomColumn>>,
) -> Result<ColumnResult, CoreError> {
    if let Some(n) = fitted.as_ref().map(Vec::len).filter(|&n| n != peaks.points.len()) {
        return Err(CoreError::InvalidParameter {
            name: "fitted columns",
            reason: format!("{n} for {} seeds", peaks.points.len()),
        });
    }
    let fit = fit_request(peaks, p).fit;
    if let Some(s) = &peaks.single {
        // Isolated atoms: windows of their own 4σ, no lattice, one sublattice.
        let single = ColumnParams { fit, ..p.clone() };
        let (mut columns, _) = refine_fitted(img, &peaks.points, &single, None, fitted)?;
        // Isolated atoms are one kind of site; brighter ones are told apart by their volume.
        columns.iter_mut().for_each(|c| c.sublattice = 0);
        return Ok(ColumnResult {
            columns,
            separation: peaks.separation,
            spacing: None,
            lattice: None,
            single: Some(s.clone()),
            notes: peaks.notes.clone(),
            // Isolated atoms have no neighbours to measure a scatter against.
            precision: None,
        });
    }
    // The finder's lattice when it estimated the spacing; else the spectrum's at the given one.
    let rough = peaks.lattice.clone().or_else(|| lattice_vectors(img, peaks.nn_distance()).ok());
    let (columns, lattice) = refine_fitted(img, &peaks.points, p, rough.as_ref(), fitted)?;
    Ok(ColumnResult {
        columns,
        separation: peaks.separation,
        spacing: peaks.spacing,
        lattice,
        single: None,
        notes: peaks.notes.clone(),
        precision: None,
    }
    .with_precision())
}

/// Fit again at `seeds` after the user added, moved or deleted columns: the previous run's
/// lattice is refined on them; single atoms get their significance read at the new positions.
pub fn refit(
    img: ArrayView2<f32>,
    seeds: &[[f64; 2]],
    p: &ColumnParams,
    previous: &ColumnResult,
) -> Result<ColumnResult, CoreError> {
    if let Some(s) = &previous.single {
        let single = s.at(img, seeds);
        let peaks = Peaks {
            points: seeds.to_vec(),
            separation: previous.separation,
            spacing: None,
            lattice: None,
            single: Some(single),
            notes: previous.notes.clone(),
        };
        return fit_found(img, &peaks, p);
    }
    let (columns, lattice) = refine(img, seeds, p, previous.lattice.as_ref())?;
    Ok(ColumnResult { columns, lattice, ..previous.clone() }.with_precision())
}

/// Refine columns at `seeds` (found, or edited by hand), refine the `lattice` (from a spectrum)
/// on their positions ([`crate::lattice::refine_from_points`]) and sort them into sublattices
/// (by position needs the lattice); returns the columns and the refined lattice. Dark
/// columns (ABF, `p.find.dark`) are fitted on the negated image, so `amplitude` is the depth
/// of each dip and `background` the level it dips from.
pub fn refine(
    img: ArrayView2<f32>,
    seeds: &[[f64; 2]],
    p: &ColumnParams,
    lattice: Option<&Lattice>,
) -> Result<(Vec<AtomColumn>, Option<Lattice>), CoreError> {
    refine_fitted(img, seeds, p, lattice, None)
}

/// [`refine`] with the fits already made (on the negated image for dark columns), or made here.
fn refine_fitted(
    img: ArrayView2<f32>,
    seeds: &[[f64; 2]],
    p: &ColumnParams,
    lattice: Option<&Lattice>,
    fitted: Option<Vec<AtomColumn>>,
) -> Result<(Vec<AtomColumn>, Option<Lattice>), CoreError> {
    let mut columns = match fitted {
        Some(c) => c,
        None if p.find.dark => fit_columns(img.mapv(|v| -v).view(), seeds, &p.fit)?,
        None => fit_columns(img, seeds, &p.fit)?,
    };
    if p.find.dark {
        for c in &mut columns {
            c.background = -c.background;
        }
    }
    let pts: Vec<[f64; 2]> = columns.iter().map(|c| [c.x, c.y]).collect();
    let fitted: Vec<[f64; 2]> = columns.iter().filter(|c| c.status == FitStatus::Fitted).map(|c| [c.x, c.y]).collect();
    let lattice = lattice.map(|l| crate::lattice::refine_from_points(&fitted, l).unwrap_or_else(|| l.clone()));
    sublattice::assign(&mut columns, p.sublattices, lattice.as_ref());
    let (h, w) = img.dim();
    let hint = ((h * w) as f64 / pts.len().max(1) as f64).sqrt();
    let (nn, coordination) = crate::lattice::neighbours::coordination(&pts, hint);
    for ((c, d), k) in columns.iter_mut().zip(nn).zip(coordination) {
        (c.nn_distance, c.coordination) = (d, k);
    }
    Ok((columns, lattice))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::match_points;

    #[test]
    fn single_atoms_are_looked_for_unaided_only_on_a_fine_calibrated_image() {
        let atoms: Vec<(f64, f64)> =
            (0..9).map(|k| (30.0 + (k % 3) as f64 * 50.0, 30.0 + (k / 3) as f64 * 50.0)).collect();
        let clean = ndarray::Array2::from_shape_fn((160, 160), |(y, x)| {
            let a: f64 = atoms
                .iter()
                .map(|&(ax, ay)| 50.0 * (-((x as f64 - ax).powi(2) + (y as f64 - ay).powi(2)) / 8.0).exp())
                .sum();
            (30.0 + a) as f32
        });
        let img = crate::synth::at_dose(clean.view(), 1.0, 5);
        let p = ColumnParams::default();
        let found = find(img.view(), Some(0.02), &p).unwrap();
        assert_eq!(found.single.as_ref().map(|s| s.atoms.len()), Some(atoms.len()));
        for (px, says) in [(None, "uncalibrated"), (Some(0.2), "too coarse")] {
            let e = find(img.view(), px, &p).unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
        }
        let asked = find(img.view(), None, &ColumnParams { atoms: true, ..p }).unwrap();
        assert_eq!(asked.points.len(), atoms.len());
    }
    /// A separation given by hand that contradicts the lattice is said (too large: columns
    /// dropped; too small: found twice); a sensible one is not.
    #[test]
    fn a_separation_that_contradicts_the_lattice_is_said() {
        let (img, truth) = crate::synth::square_lattice(12, 16.0, 2.5);
        let at = |s: f64| {
            find(
                img.view(),
                None,
                &ColumnParams { find: PeakParams { separation: Some(s), ..Default::default() }, ..Default::default() },
            )
            .unwrap()
        };
        let (big, fine, small) = (at(20.0), at(11.0), at(4.0));
        assert!(big.points.len() < truth.len() / 2 && big.notes[0].contains("columns are missing"), "{:?}", big.notes);
        assert!(fine.notes.is_empty(), "{:?}", fine.notes);
        assert!(small.notes[0].contains("found twice"), "{:?}", small.notes);
    }
    use crate::synth::{NanoparticleParams, nanoparticle};

    /// The learned finder on the built-in demo: every column of five or more atoms found,
    /// positions refined as well as from the classical seeds, and the note comparing the two.
    #[test]
    fn the_learned_finder_seeds_the_same_fits() {
        let s = nanoparticle(&NanoparticleParams::default()).unwrap();
        let p = ColumnParams { finder: Finder::Learned, ..Default::default() };
        let peaks = find(s.image.view(), s.image.calibration.pixel_nm(), &p).unwrap();
        assert!(peaks.notes.iter().any(|n| n.starts_with("classical finder: ")), "{:?}", peaks.notes);
        let r = fit_found(s.image.view(), &peaks, &p).unwrap();
        let truth: Vec<[f64; 2]> = s.columns.iter().map(|c| [c.x, c.y]).collect();
        let found: Vec<[f64; 2]> = r.columns.iter().map(|c| [c.x, c.y]).collect();
        let m = match_points(&truth, &found, 4.0);
        let thick_missed = m.missed.iter().filter(|&&i| s.columns[i].atoms >= 5).count();
        assert_eq!(thick_missed, 0, "missed {thick_missed} columns of ≥ 5 atoms");
        assert!(m.extra.len() <= truth.len() / 10, "{} spurious columns of {}", m.extra.len(), truth.len());
        let thick: Vec<f64> = m.pairs.iter().filter(|p| s.columns[p.0].atoms >= 5).map(|p| p.2).collect();
        let rms = (thick.iter().map(|d| d * d).sum::<f64>() / thick.len() as f64).sqrt();
        assert!(rms < 0.1, "rms {rms} px");
        let dark = ColumnParams { find: PeakParams { dark: true, ..Default::default() }, ..p };
        assert!(find(s.image.view(), None, &dark).unwrap_err().to_string().contains("trained on HAADF"));
    }

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
