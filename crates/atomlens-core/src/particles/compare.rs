//! Identical-location comparison: the same particle before and after cycling.
//!
//! 1. Both images through [`crate::particles::chain`] (columns, particles, cross-sections).
//! 2. Coarse transform: the rotation from the two lattices' vectors (smallest angle modulo the
//!    lattice's symmetry), the shift by phase correlation of the images blurred by one column
//!    spacing (the particle and support, not the lattice, so no lattice-vector ambiguity).
//! 3. Fine transform: iterated closest points — mutual nearest columns within 0.4 spacing,
//!    a least-squares affine map, repeated until the pairs stop changing.
//! 4. A column one image's finder missed where the other image has one is fitted there
//!    (with all that image's columns); where it is significant (height ≥ 3 of its standard
//!    errors), stays within the match radius and lies inside one of that image's particles, it
//!    is added to that image and the image is
//!    analysed again: a column is lost only when the after image has no significant column
//!    there, new only when the before image has none.
//! 5. Both images counted with one model ([`count_together`]: one mixture on the pooled
//!    cross-sections, or one library), so an unchanged column keeps its count.
//! 6. Matched columns are *kept* (with displacement, change in atoms and cross-section and
//!    the local strain of the displacement field); unmatched before-columns inside the after
//!    field are *lost*, unmatched after-columns inside the before field are *new*. The
//!    transform carries its standard errors (from the matched columns' residual scatter), the
//!    totals and each column's change their counting standard deviations.
//! 7. Per facet of the before particle: atoms lost and gained by the columns within 1.5
//!    spacings of its trace.
//!
//! Everything is reported in the before image's pixels. Registration that matches fewer
//! than half the columns is refused with its confidence rather than reported.
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::columns::fit::{AtomColumn, FitStatus};
use crate::columns::{ColumnParams, ColumnResult, refit};
use crate::particles::chain::{Analysis, AnalysisParams, analyse, analyse_columns, count_together};
use crate::{CoreError, Image};

/// Parameters of [`compare`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct CompareParams {
    /// The analysis of each image.
    pub analysis: AnalysisParams,
    /// Columns further apart than this fraction of the spacing do not match.
    pub match_radius: f64,
    /// Smallest fraction of columns that must match for the registration to be trusted.
    pub min_confidence: f64,
}

impl Default for CompareParams {
    fn default() -> Self {
        Self { analysis: AnalysisParams::default(), match_radius: 0.4, min_confidence: 0.5 }
    }
}

/// `after = matrix · before + shift` (px).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Affine {
    /// Linear part, rows `[[a, b], [c, d]]`.
    pub matrix: [[f64; 2]; 2],
    /// Translation (px).
    pub shift: [f64; 2],
}

impl Affine {
    /// The identity.
    pub const IDENTITY: Affine = Affine { matrix: [[1.0, 0.0], [0.0, 1.0]], shift: [0.0, 0.0] };

    /// Rotation by `theta` (radians, from +x towards +y) about `centre`, then `shift`.
    pub fn rotation_about(theta: f64, centre: [f64; 2], shift: [f64; 2]) -> Affine {
        let (s, c) = theta.sin_cos();
        let m = [[c, -s], [s, c]];
        let t = [
            centre[0] - (m[0][0] * centre[0] + m[0][1] * centre[1]) + shift[0],
            centre[1] - (m[1][0] * centre[0] + m[1][1] * centre[1]) + shift[1],
        ];
        Affine { matrix: m, shift: t }
    }

    /// Map a point.
    pub fn apply(&self, p: [f64; 2]) -> [f64; 2] {
        let m = self.matrix;
        [m[0][0] * p[0] + m[0][1] * p[1] + self.shift[0], m[1][0] * p[0] + m[1][1] * p[1] + self.shift[1]]
    }

    /// The inverse map (`None` when singular).
    pub fn inverse(&self) -> Option<Affine> {
        let m = self.matrix;
        let det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
        if det.abs() < 1e-12 {
            return None;
        }
        let inv = [[m[1][1] / det, -m[0][1] / det], [-m[1][0] / det, m[0][0] / det]];
        let t = [
            -(inv[0][0] * self.shift[0] + inv[0][1] * self.shift[1]),
            -(inv[1][0] * self.shift[0] + inv[1][1] * self.shift[1]),
        ];
        Some(Affine { matrix: inv, shift: t })
    }

    /// Rotation of the linear part (degrees, from +x towards +y).
    pub fn rotation_deg(&self) -> f64 {
        (self.matrix[1][0] - self.matrix[0][1]).atan2(self.matrix[0][0] + self.matrix[1][1]).to_degrees()
    }

    /// Where the image centre goes, minus where it was: the shift a user would quote.
    pub fn shift_at(&self, centre: [f64; 2]) -> [f64; 2] {
        let q = self.apply(centre);
        [q[0] - centre[0], q[1] - centre[1]]
    }
}

/// Least-squares affine map taking `src` onto `dst` (at least three non-collinear pairs).
pub fn fit_affine(src: &[[f64; 2]], dst: &[[f64; 2]]) -> Option<Affine> {
    if src.len() < 3 || src.len() != dst.len() {
        return None;
    }
    // Centred for conditioning.
    let n = src.len() as f64;
    let cs = src.iter().fold([0.0, 0.0], |a, p| [a[0] + p[0] / n, a[1] + p[1] / n]);
    let (mut ata, mut atx, mut aty) = ([[0.0f64; 3]; 3], [0.0f64; 3], [0.0f64; 3]);
    for (p, q) in src.iter().zip(dst) {
        let row = [1.0, p[0] - cs[0], p[1] - cs[1]];
        for r in 0..3 {
            for c in 0..3 {
                ata[r][c] += row[r] * row[c];
            }
            atx[r] += row[r] * q[0];
            aty[r] += row[r] * q[1];
        }
    }
    let sx = crate::math::linalg::solve(ata, atx, 3)?;
    let sy = crate::math::linalg::solve(ata, aty, 3)?;
    let matrix = [[sx[1], sx[2]], [sy[1], sy[2]]];
    let shift =
        [sx[0] - (matrix[0][0] * cs[0] + matrix[0][1] * cs[1]), sy[0] - (matrix[1][0] * cs[0] + matrix[1][1] * cs[1])];
    Some(Affine { matrix, shift })
}

/// What happened to a column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// In both images.
    Kept,
    /// Only before.
    Lost,
    /// Only after.
    New,
}

impl Status {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Kept => "kept",
            Status::Lost => "lost",
            Status::New => "new",
        }
    }
}

/// One column's change; positions in the before image (px).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnChange {
    /// Kept, lost or new.
    pub status: Status,
    /// Position (px, before frame; a new column's after position mapped back).
    pub x: f64,
    /// Position (px).
    pub y: f64,
    /// Index into the before analysis's columns.
    pub before: Option<usize>,
    /// Index into the after analysis's columns.
    pub after: Option<usize>,
    /// After position mapped back minus before position (px); 0 unless kept.
    pub dx: f64,
    /// See `dx`.
    pub dy: f64,
    /// Atoms before (0 when not counted or new).
    pub atoms_before: u32,
    /// Atoms after (0 when not counted or lost).
    pub atoms_after: u32,
    /// Standard deviation of `atoms_after − atoms_before` from the counting posteriors (NaN
    /// for library counts, which carry none; 0 where neither image counted the column).
    pub d_atoms_sd: f64,
    /// Change in cross-section (after − before).
    pub d_cross_section: f64,
    /// Local strain of the displacement field `[exx, eyy, exy]` (kept columns with enough kept
    /// neighbours; NaN otherwise).
    pub strain: [f64; 3],
}

/// Atoms lost and gained along one facet of the before particle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FacetChange {
    /// Index into the before particle's facets.
    pub facet: usize,
    /// Facet direction (degrees).
    pub angle: f64,
    /// Facet length (px).
    pub length: f64,
    /// Trace end points `[x, y]` (px, before frame).
    pub from: [f64; 2],
    /// See `from`.
    pub to: [f64; 2],
    /// Atoms removed (lost columns and columns that thinned).
    pub atoms_lost: u32,
    /// Atoms added (new columns and columns that thickened).
    pub atoms_gained: u32,
    /// Standard deviation of the net change (gained − lost) from its columns' counting
    /// (NaN for library counts).
    pub net_sd: f64,
    /// Columns lost near it.
    pub columns_lost: u32,
    /// Columns new near it.
    pub columns_new: u32,
}

/// Totals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CompareSummary {
    /// Columns in both.
    pub kept: usize,
    /// Columns only before.
    pub lost: usize,
    /// Columns only after.
    pub new: usize,
    /// Counted atoms before / after (columns in particles; both with one counting model).
    pub atoms_before: u64,
    /// See `atoms_before`.
    pub atoms_after: u64,
    /// Standard deviations of the totals (counting posteriors; NaN for library counts).
    pub atoms_before_sd: f64,
    /// See `atoms_before_sd`.
    pub atoms_after_sd: f64,
    /// Why either image's particles were not counted, if they were not.
    pub counting_error: Option<String>,
    /// Rotation (degrees) and shift at the image centre (px) of after relative to before.
    pub rotation_deg: f64,
    /// See `rotation_deg`.
    pub shift: [f64; 2],
    /// Standard errors of `rotation_deg` and `shift` from the matched columns' scatter about
    /// the fitted map.
    pub rotation_sd_deg: f64,
    /// See `rotation_sd_deg`.
    pub shift_sd: [f64; 2],
    /// Columns one image's finder missed that the other image's position showed to be there
    /// (added before / after).
    pub refound: [usize; 2],
    /// Fraction of the smaller column set matched.
    pub confidence: f64,
    /// RMS residual of the matched columns after the affine map (px).
    pub residual_rms: f64,
}

impl CompareSummary {
    /// The summary in words, as the CLI and the page say it (two lines).
    pub fn describe(&self) -> String {
        let pm = |v: f64| if v.is_finite() { format!(" ± {v:.1}") } else { String::new() };
        let atoms = match &self.counting_error {
            Some(e) if self.atoms_before == 0 && self.atoms_after == 0 => format!("atoms not counted: {e}"),
            _ => {
                let d = self.atoms_after as i64 - self.atoms_before as i64;
                let d_sd = self.atoms_before_sd.hypot(self.atoms_after_sd);
                format!(
                    "atoms {}{} → {}{} ({d:+}{}; one counting model for both images)",
                    self.atoms_before,
                    pm(self.atoms_before_sd),
                    self.atoms_after,
                    pm(self.atoms_after_sd),
                    pm(d_sd)
                )
            }
        };
        let refound = match self.refound {
            [0, 0] => String::new(),
            [a, b] => format!(" ({a} before and {b} after fitted where only the other image's finder saw them)"),
        };
        format!(
            "rotation {:.3} ± {:.3}°, shift ({:.2}, {:.2}) ± {:.2} px, residual {:.3} px, confidence {:.2}\n\
             {} kept, {} lost, {} new columns{refound}; {atoms}",
            self.rotation_deg,
            self.rotation_sd_deg,
            self.shift[0],
            self.shift[1],
            self.shift_sd[0],
            self.residual_rms,
            self.confidence,
            self.kept,
            self.lost,
            self.new,
        )
    }
}

/// The comparison.
#[derive(Debug, Clone)]
pub struct Comparison {
    /// Before → after map.
    pub transform: Affine,
    /// Per column.
    pub columns: Vec<ColumnChange>,
    /// Per facet of the largest before particle.
    pub facets: Vec<FacetChange>,
    /// Totals.
    pub summary: CompareSummary,
    /// The before image's analysis.
    pub before: Analysis,
    /// The after image's analysis.
    pub after: Analysis,
}

/// Compare `before` and `after` (see the module docs).
pub fn compare(before: &Image, after: &Image, p: &CompareParams) -> Result<Comparison, CoreError> {
    let (pa, pb) = (before.calibration.pixel_size, after.calibration.pixel_size);
    if before.calibration.unit != after.calibration.unit || (pa / pb - 1.0).abs() > 0.01 {
        return Err(CoreError::InvalidParameter {
            name: "pixel size",
            reason: format!(
                "before has {pa} {} per pixel, after {pb} {}: resample one to the other's pixel size first",
                before.calibration.unit, after.calibration.unit
            ),
        });
    }
    let (bv, av) = (before.view(), after.view());
    let mut a = analyse(bv, &p.analysis)?;
    let mut b = analyse(av, &p.analysis)?;
    // Where one image's finder missed a column the other image has, look there.
    let spacing = 0.5 * (a.spacing + b.spacing);
    let (t, pairs) = register(bv, av, &a, &b, None, p)?;
    let inv = t.inverse().ok_or_else(singular)?;
    let (pa, pb) = (points(&a), points(&b));
    let (matched_a, matched_b) = matched(&pairs, pa.len(), pb.len());
    let probes = |pts: &[[f64; 2]], matched: &[bool], map: &Affine, dim: (usize, usize)| -> Vec<[f64; 2]> {
        (0..pts.len())
            .filter(|&i| !matched[i])
            .map(|i| map.apply(pts[i]))
            .filter(|&q| inside(q, dim, spacing))
            .collect()
    };
    let (into_a, into_b) = (probes(&pb, &matched_b, &inv, bv.dim()), probes(&pa, &matched_a, &t, av.dim()));
    let radius = p.match_radius * spacing;
    let mut refound = [0, 0];
    if let Some((cols, n)) = refind(bv, &a, &into_a, &p.analysis.columns, radius)? {
        a = analyse_columns(bv, cols, &p.analysis)?;
        refound[0] = n;
    }
    if let Some((cols, n)) = refind(av, &b, &into_b, &p.analysis.columns, radius)? {
        b = analyse_columns(av, cols, &p.analysis)?;
        refound[1] = n;
    }
    count_together(&mut [&mut a, &mut b], &p.analysis.counting);
    // The images' columns may have changed (refound, refitted): closest points again from `t`.
    let mut c = compare_analyses(bv, av, a, b, Some(t), p)?;
    c.summary.refound = refound;
    Ok(c)
}

fn singular() -> CoreError {
    CoreError::NotFound { what: "transform", reason: "the fitted map is singular".into() }
}

fn points(a: &Analysis) -> Vec<[f64; 2]> {
    a.columns.columns.iter().map(|c| [c.x, c.y]).collect()
}

/// Which columns of each image the pairs match.
fn matched(pairs: &[(usize, usize)], na: usize, nb: usize) -> (Vec<bool>, Vec<bool>) {
    let (mut ma, mut mb) = (vec![false; na], vec![false; nb]);
    for &(i, j) in pairs {
        (ma[i], mb[j]) = (true, true);
    }
    (ma, mb)
}

/// Whether `q` lies half a spacing or more inside an image of `(h, w)` pixels.
fn inside(q: [f64; 2], (h, w): (usize, usize), spacing: f64) -> bool {
    let m = 0.5 * spacing;
    q[0] >= m && q[1] >= m && q[0] <= w as f64 - 1.0 - m && q[1] <= h as f64 - 1.0 - m
}

/// A column refitted at a probe counts as there when its height is this many standard errors
/// (the fit's own `not_significant` cut is 2, for columns the finder saw; a probe is a guess).
const SIGNIFICANT: f64 = 3.0;

/// The analysis's columns with those `probes` added where `img` shows a significant column that
/// stays within `radius` of the probe (fitted with all the image's columns) inside one of its
/// particles (outside, it is the support, or a neighbour's tail where a column dissolved), and
/// how many; `None` when none.
fn refind(
    img: ArrayView2<f32>,
    analysis: &Analysis,
    probes: &[[f64; 2]],
    p: &ColumnParams,
    radius: f64,
) -> Result<Option<(ColumnResult, usize)>, CoreError> {
    let labels = &analysis.segmentation.labels;
    let in_particle = |q: &[f64; 2]| {
        let (x, y) = (q[0].round(), q[1].round());
        x >= 0.0 && y >= 0.0 && labels.get([y as usize, x as usize]).is_some_and(|&l| l > 0)
    };
    let probes: Vec<[f64; 2]> = probes.iter().copied().filter(in_particle).collect();
    if probes.is_empty() {
        return Ok(None);
    }
    let columns = &analysis.columns;
    let existing: Vec<[f64; 2]> = columns.columns.iter().map(|c| [c.x, c.y]).collect();
    let trial = refit(img, &[existing.as_slice(), &probes].concat(), p, columns)?;
    let present = |c: &AtomColumn, q: [f64; 2]| {
        c.status == FitStatus::Fitted
            && dist2([c.x, c.y], q) <= radius * radius
            && c.amplitude >= SIGNIFICANT * c.amplitude_err
    };
    let found: Vec<[f64; 2]> = trial.columns[existing.len()..]
        .iter()
        .zip(probes)
        .filter(|(c, q)| present(c, *q))
        .map(|(c, _)| [c.x, c.y])
        .collect();
    if found.is_empty() {
        return Ok(None);
    }
    Ok(Some((refit(img, &[existing.as_slice(), &found].concat(), p, columns)?, found.len())))
}

/// Iterated closest points from `start`, or from the coarse transform (lattice rotation, phase
/// correlation of the blurred images) when there is none: the map and the mutual-nearest pairs
/// `(before, after)` it ends on.
fn register(
    before: ArrayView2<f32>,
    after: ArrayView2<f32>,
    a: &Analysis,
    b: &Analysis,
    start: Option<Affine>,
    p: &CompareParams,
) -> Result<(Affine, Vec<(usize, usize)>), CoreError> {
    let spacing = 0.5 * (a.spacing + b.spacing);
    let (pa, pb) = (points(a), points(b));
    if pa.len() < 3 || pb.len() < 3 {
        return Err(CoreError::NotFound { what: "columns", reason: "too few columns to register the pair".into() });
    }
    let mut t = match start {
        Some(t) => t,
        None => coarse(before, after, a, b, spacing)?,
    };
    let radius = p.match_radius * spacing;
    let mut pairs = Vec::new();
    for _ in 0..20 {
        let mapped: Vec<[f64; 2]> = pa.iter().map(|&q| t.apply(q)).collect();
        let next = mutual_nearest(&mapped, &pb, radius, spacing);
        let src: Vec<[f64; 2]> = next.iter().map(|&(i, _)| pa[i]).collect();
        let dst: Vec<[f64; 2]> = next.iter().map(|&(_, j)| pb[j]).collect();
        let stable = next == pairs;
        pairs = next;
        if stable || pairs.len() < 3 {
            break;
        }
        if let Some(f) = fit_affine(&src, &dst) {
            t = f;
        }
    }
    Ok((t, pairs))
}

/// The rotation from the two lattices, the shift by phase correlation of the images blurred by
/// one column `spacing` (the particle and support, not the lattice).
fn coarse(
    before: ArrayView2<f32>,
    after: ArrayView2<f32>,
    a: &Analysis,
    b: &Analysis,
    spacing: f64,
) -> Result<Affine, CoreError> {
    let (h, w) = before.dim();
    let centre = [(w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0];
    let theta = match (&a.columns.lattice, &b.columns.lattice) {
        (Some(la), Some(lb)) => lattice_rotation(la, lb),
        _ => 0.0,
    };
    let rotated = crate::math::warp::rotate(before, theta, centre, crate::image::stats::finite_mean(before) as f32);
    let blur = |img: ArrayView2<f32>| crate::image::filter::gaussian_blur(img, spacing);
    let shift = crate::register::shift_of(blur(rotated.view()).view(), blur(after).view())?;
    Ok(Affine::rotation_about(theta, centre, shift))
}

/// Standard errors of the rotation (degrees) and of the shift at `centre` (px, the same for x
/// and y) of the map `t` fitted to `src → dst`: the residual variance per coordinate (2n − 6
/// degrees of freedom) through the normal equations' inverse; θ = atan2(c − b, a + d)
/// linearised (the two rows' errors independent).
pub fn affine_errors(src: &[[f64; 2]], dst: &[[f64; 2]], t: &Affine, centre: [f64; 2]) -> (f64, [f64; 2]) {
    let n = src.len();
    if n < 4 || dst.len() != n {
        return (f64::NAN, [f64::NAN; 2]);
    }
    let cs = src.iter().fold([0.0, 0.0], |a, p| [a[0] + p[0] / n as f64, a[1] + p[1] / n as f64]);
    let mut ata = [[0.0f64; 3]; 3];
    for p in src {
        let row = [1.0, p[0] - cs[0], p[1] - cs[1]];
        for r in 0..3 {
            for c in 0..3 {
                ata[r][c] += row[r] * row[c];
            }
        }
    }
    let var = src.iter().zip(dst).map(|(&p, &q)| dist2(t.apply(p), q)).sum::<f64>() / (2 * n - 6) as f64;
    let column = |k: usize| {
        let mut e = [0.0; 3];
        e[k] = 1.0;
        crate::math::linalg::solve(ata, e, 3)
    };
    let (Some(c0), Some(c1), Some(c2)) = (column(0), column(1), column(2)) else { return (f64::NAN, [f64::NAN; 2]) };
    let m = t.matrix;
    let (sum, diff) = (m[0][0] + m[1][1], m[1][0] - m[0][1]);
    let theta = (var * (c1[1] + c2[2]) / (sum * sum + diff * diff)).sqrt();
    let r = [1.0, centre[0] - cs[0], centre[1] - cs[1]];
    let inv = [c0, c1, c2];
    let quad: f64 = (0..3).flat_map(|i| (0..3).map(move |j| (i, j))).map(|(i, j)| r[i] * inv[j][i] * r[j]).sum();
    let shift = (var * quad).sqrt();
    (theta.to_degrees(), [shift, shift])
}

/// [`compare`] from analyses already made (and counted), registered from `start` (a transform
/// already found) or from scratch.
pub fn compare_analyses(
    before: ArrayView2<f32>,
    after: ArrayView2<f32>,
    a: Analysis,
    b: Analysis,
    start: Option<Affine>,
    p: &CompareParams,
) -> Result<Comparison, CoreError> {
    let spacing = 0.5 * (a.spacing + b.spacing);
    let (t, pairs) = register(before, after, &a, &b, start, p)?;
    let (pa, pb) = (points(&a), points(&b));
    let (h, w) = before.dim();
    let centre = [(w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0];
    let inv = t.inverse().ok_or_else(singular)?;
    let residual_rms =
        (pairs.iter().map(|&(i, j)| dist2(t.apply(pa[i]), pb[j])).sum::<f64>() / pairs.len() as f64).sqrt();
    let (src, dst): (Vec<[f64; 2]>, Vec<[f64; 2]>) = pairs.iter().map(|&(i, j)| (pa[i], pb[j])).unzip();
    let (rotation_sd_deg, shift_sd) = affine_errors(&src, &dst, &t, centre);
    let atoms_of = |a: &Analysis| a.per_column(|r, k| r.atoms.get(k).copied().unwrap_or(0));
    let cs_of = |a: &Analysis| a.per_column(|r, k| r.cross_sections[k]);
    let (atoms_a, atoms_b, cs_a, cs_b) = (atoms_of(&a), atoms_of(&b), cs_of(&a), cs_of(&b));
    // Each column's count variance (NaN for library counts).
    let var_of = |a: &Analysis| a.per_column(|r, k| r.count_variance(k));
    let (var_a, var_b) = (var_of(&a), var_of(&b));
    // A column in the before image (i), the after image (j) or both; positions in the before frame.
    let change = |status: Status, i: Option<usize>, j: Option<usize>| {
        let back = j.map(|j| inv.apply(pb[j]));
        let at = i.map(|i| pa[i]).or(back).unwrap_or_default();
        let (dx, dy) = match (i, back) {
            (Some(i), Some(q)) => (q[0] - pa[i][0], q[1] - pa[i][1]),
            _ => (0.0, 0.0),
        };
        ColumnChange {
            status,
            x: at[0],
            y: at[1],
            before: i,
            after: j,
            dx,
            dy,
            atoms_before: i.map_or(0, |i| atoms_a[i]),
            atoms_after: j.map_or(0, |j| atoms_b[j]),
            d_atoms_sd: (i.map_or(0.0, |i| var_a[i]) + j.map_or(0.0, |j| var_b[j])).sqrt(),
            d_cross_section: j.map_or(0.0, |j| cs_b[j]) - i.map_or(0.0, |i| cs_a[i]),
            strain: [f64::NAN; 3],
        }
    };
    let (matched_a, matched_b) = matched(&pairs, pa.len(), pb.len());
    let mut columns: Vec<ColumnChange> = pairs.iter().map(|&(i, j)| change(Status::Kept, Some(i), Some(j))).collect();
    for i in (0..pa.len()).filter(|&i| !matched_a[i] && inside(t.apply(pa[i]), after.dim(), spacing)) {
        columns.push(change(Status::Lost, Some(i), None));
    }
    for j in (0..pb.len()).filter(|&j| !matched_b[j] && inside(inv.apply(pb[j]), before.dim(), spacing)) {
        columns.push(change(Status::New, None, Some(j)));
    }
    let confidence = agreement(&columns, &cs_a);
    if confidence < p.min_confidence {
        return Err(CoreError::NotFound {
            what: "common area",
            reason: format!(
                "registration failed: only {:.0} % of the columns match in place and intensity (confidence \
                 {confidence:.2}; {:.2} needed) — are these images of the same area?",
                100.0 * confidence,
                p.min_confidence
            ),
        });
    }
    local_strain(&mut columns, spacing);
    let facets = facet_changes(&a, &columns, spacing);
    let count = |s: Status| columns.iter().filter(|c| c.status == s).count();
    let summary = CompareSummary {
        kept: count(Status::Kept),
        lost: count(Status::Lost),
        new: count(Status::New),
        atoms_before: atoms_a.iter().map(|&v| v as u64).sum(),
        atoms_after: atoms_b.iter().map(|&v| v as u64).sum(),
        atoms_before_sd: var_a.iter().sum::<f64>().sqrt(),
        atoms_after_sd: var_b.iter().sum::<f64>().sqrt(),
        counting_error: a.particles.iter().chain(&b.particles).find_map(|r| r.counting_error.clone()),
        rotation_deg: t.rotation_deg(),
        shift: t.shift_at(centre),
        rotation_sd_deg,
        shift_sd,
        refound: [0, 0],
        confidence,
        residual_rms,
    };
    Ok(Comparison { transform: t, columns, facets, summary, before: a, after: b })
}

/// The registration's confidence: kept columns whose cross-section changed by less than a
/// quarter (of itself, or of the median column for thin ones) over the mean number of columns
/// in the common field. Two different particles of one crystal can always be laid onto each
/// other's lattice; their thickness profiles do not agree.
fn agreement(columns: &[ColumnChange], cs_a: &[f64]) -> f64 {
    let mut sorted: Vec<f64> = cs_a.iter().copied().filter(|v| *v > 0.0).collect();
    sorted.sort_by(f64::total_cmp);
    let typical = sorted.get(sorted.len() / 2).copied().unwrap_or(0.0);
    let count = |s: Status| columns.iter().filter(|c| c.status == s).count() as f64;
    let agree = columns
        .iter()
        .filter(|c| c.status == Status::Kept)
        .filter(|c| c.d_cross_section.abs() <= 0.25 * cs_a[c.before.unwrap_or(0)].abs().max(typical))
        .count() as f64;
    let n = count(Status::Kept) + 0.5 * (count(Status::Lost) + count(Status::New));
    if n > 0.0 { agree / n } else { 0.0 }
}

fn dist2(a: [f64; 2], b: [f64; 2]) -> f64 {
    (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2)
}

/// Pairs `(i, j)` where `b[j]` is the nearest of `b` to `a[i]` and vice versa, within `radius`.
fn mutual_nearest(a: &[[f64; 2]], b: &[[f64; 2]], radius: f64, cell: f64) -> Vec<(usize, usize)> {
    let (ga, gb) = (crate::lattice::neighbours::Grid::new(a, cell), crate::lattice::neighbours::Grid::new(b, cell));
    let nearest = |g: &crate::lattice::neighbours::Grid, pts: &[[f64; 2]], q: [f64; 2]| {
        g.within(pts, q, radius).into_iter().min_by(|&x, &y| dist2(pts[x], q).total_cmp(&dist2(pts[y], q)))
    };
    (0..a.len())
        .filter_map(|i| {
            let j = nearest(&gb, b, a[i])?;
            (nearest(&ga, a, b[j]) == Some(i)).then_some((i, j))
        })
        .collect()
}

/// Rotation taking lattice `a` to lattice `b`: the smallest angle between `b`'s first vector
/// and any of ±`a.a`, ±`a.b` of similar length (the lattice's own symmetry makes larger
/// rotations indistinguishable).
fn lattice_rotation(a: &crate::lattice::Lattice, b: &crate::lattice::Lattice) -> f64 {
    let ang = |v: [f64; 2]| v[1].atan2(v[0]);
    let len = |v: [f64; 2]| v[0].hypot(v[1]);
    let target = b.a;
    [a.a, a.b, [-a.a[0], -a.a[1]], [-a.b[0], -a.b[1]]]
        .into_iter()
        .filter(|v| (len(*v) / len(target) - 1.0).abs() < 0.05)
        .map(|v| (ang(target) - ang(v) + std::f64::consts::PI).rem_euclid(std::f64::consts::TAU) - std::f64::consts::PI)
        .min_by(|x, y| x.abs().total_cmp(&y.abs()))
        .unwrap_or(0.0)
}

/// The after image in the before image's frame (`h × w`): before pixel p shows after at `t(p)`.
pub fn after_in_before_frame(after: ArrayView2<f32>, t: &Affine, h: usize, w: usize) -> Array2<f32> {
    crate::math::warp::resample(after, (h, w), crate::image::stats::finite_mean(after) as f32, |q| t.apply(q))
}

/// Strain of the displacement field at each kept column: the linear part of the affine map
/// fitted to the kept columns within 2.5 spacings (needs five), minus the identity.
fn local_strain(columns: &mut [ColumnChange], spacing: f64) {
    let kept: Vec<usize> = (0..columns.len()).filter(|&k| columns[k].status == Status::Kept).collect();
    let pts: Vec<[f64; 2]> = kept.iter().map(|&k| [columns[k].x, columns[k].y]).collect();
    let grid = crate::lattice::neighbours::Grid::new(&pts, spacing);
    let strains: Vec<[f64; 3]> = (0..pts.len())
        .map(|i| {
            let near = grid.within(&pts, pts[i], 2.5 * spacing);
            if near.len() < 5 {
                return [f64::NAN; 3];
            }
            let src: Vec<[f64; 2]> = near.iter().map(|&j| pts[j]).collect();
            let dst: Vec<[f64; 2]> =
                near.iter().map(|&j| [pts[j][0] + columns[kept[j]].dx, pts[j][1] + columns[kept[j]].dy]).collect();
            match fit_affine(&src, &dst) {
                Some(f) => [f.matrix[0][0] - 1.0, f.matrix[1][1] - 1.0, 0.5 * (f.matrix[0][1] + f.matrix[1][0])],
                None => [f64::NAN; 3],
            }
        })
        .collect();
    for (&k, s) in kept.iter().zip(strains) {
        columns[k].strain = s;
    }
}

/// Atoms lost and gained near each facet of the largest before particle.
fn facet_changes(a: &Analysis, columns: &[ColumnChange], spacing: f64) -> Vec<FacetChange> {
    let Some(r) = a.particles.first() else { return Vec::new() };
    let mut out: Vec<FacetChange> = r
        .columns
        .facets
        .iter()
        .enumerate()
        .map(|(k, f)| FacetChange {
            facet: k,
            angle: f.angle,
            length: f.length,
            from: f.from,
            to: f.to,
            atoms_lost: 0,
            atoms_gained: 0,
            net_sd: 0.0,
            columns_lost: 0,
            columns_new: 0,
        })
        .collect();
    for c in columns {
        let Some(k) = nearest_facet(r, [c.x, c.y], 1.5 * spacing) else { continue };
        let f = &mut out[k];
        // Variances add; the square root is taken below.
        f.net_sd += c.d_atoms_sd * c.d_atoms_sd;
        match c.status {
            Status::Lost => {
                f.atoms_lost += c.atoms_before;
                f.columns_lost += 1;
            }
            Status::New => {
                f.atoms_gained += c.atoms_after;
                f.columns_new += 1;
            }
            Status::Kept => {
                f.atoms_lost += c.atoms_before.saturating_sub(c.atoms_after);
                f.atoms_gained += c.atoms_after.saturating_sub(c.atoms_before);
            }
        }
    }
    for f in &mut out {
        f.net_sd = f.net_sd.sqrt();
    }
    out
}

fn nearest_facet(r: &crate::particles::chain::ParticleReport, q: [f64; 2], reach: f64) -> Option<usize> {
    r.columns
        .facets
        .iter()
        .enumerate()
        .map(|(k, f)| (k, segment_distance(q, f.from, f.to)))
        .filter(|&(_, d)| d <= reach)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(k, _)| k)
}

fn segment_distance(q: [f64; 2], a: [f64; 2], b: [f64; 2]) -> f64 {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let l2 = dx * dx + dy * dy;
    let t = if l2 > 0.0 { (((q[0] - a[0]) * dx + (q[1] - a[1]) * dy) / l2).clamp(0.0, 1.0) } else { 0.0 };
    (q[0] - a[0] - t * dx).hypot(q[1] - a[1] - t * dy)
}

/// Change in atoms (after − before; lost columns count their atoms as removed) spread over
/// the before frame with a Gaussian of one spacing: a density map of dissolution (< 0) and
/// redeposition (> 0), in atoms per px².
pub fn change_map(columns: &[ColumnChange], w: usize, h: usize, spacing: f64) -> Array2<f32> {
    let mut map = Array2::<f32>::zeros((h, w));
    let s = spacing;
    let norm = 1.0 / (2.0 * std::f64::consts::PI * s * s);
    for c in columns {
        let d = c.atoms_after as f64 - c.atoms_before as f64;
        if d == 0.0 {
            continue;
        }
        let reach = 3.0 * s;
        let (x0, x1) = ((c.x - reach).floor().max(0.0) as usize, ((c.x + reach).ceil().max(0.0) as usize).min(w - 1));
        let (y0, y1) = ((c.y - reach).floor().max(0.0) as usize, ((c.y + reach).ceil().max(0.0) as usize).min(h - 1));
        for y in y0..=y1 {
            for x in x0..=x1 {
                let r2 = (x as f64 - c.x).powi(2) + (y as f64 - c.y).powi(2);
                map[[y, x]] += (d * norm * (-r2 / (2.0 * s * s)).exp()) as f32;
            }
        }
    }
    map
}

#[cfg(test)]
mod tests;
