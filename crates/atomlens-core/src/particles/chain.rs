//! The particle chain as one call: columns (find + fit), particles (segmentation), and per
//! particle its own lattice, surface columns and facets, cross-sections, atom counts (refused
//! off a zone axis) and ordering. The
//! CLI's `particles`/`count`/`batch`, the page's Particle panel and `compare` all use it.
use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use crate::CoreError;
use crate::columns::find::{PeakParams, find_columns};
use crate::columns::{ColumnParams, ColumnResult, find, refine};
use crate::image::morphology::distance_squared_to;
use crate::lattice::local::LatticeAnalysis;
use crate::particles::counting::{
    Convexity, CountMixture, Counting, convexity, count_atoms, count_with_neighbours, cross_sections,
    fill_from_neighbours,
};
use crate::particles::defects::{Defects, find_defects};
use crate::particles::lattice::{counting_refusal, particle_lattice};
use crate::particles::ordering::{Kind, Ordering, classify};
use crate::particles::segment::{
    Facet, Particle, ParticleColumns, ParticleParams, Segmentation, particle_columns, segment,
};

/// Parameters of [`analyse`].
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct AnalysisParams {
    /// Column finding and fitting.
    pub columns: ColumnParams,
    /// Segmentation.
    pub particles: ParticleParams,
    /// Atom counting.
    pub counting: Counting,
}

/// One particle's results; per-column vectors follow `columns.columns`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParticleReport {
    /// Size and shape.
    pub particle: Particle,
    /// Its own lattice: zone axis, fringes (off axis) or none, from its spectrum alone.
    pub lattice: LatticeAnalysis,
    /// Its columns, their sites and its facets.
    pub columns: ParticleColumns,
    /// Integrated cross-section per column.
    pub cross_sections: Vec<f64>,
    /// Atoms per column (empty when counting failed: see `counting_error`).
    pub atoms: Vec<u32>,
    /// Probability of each column's count under the mixture (statistical counting; empty
    /// otherwise; NaN for columns counted from their neighbours).
    pub count_probability: Vec<f64>,
    /// Columns whose count is their neighbours' thickness, not their own cross-section: the
    /// M-rich columns of an alloy (their intensity mixes two species). Empty when none.
    #[serde(default)]
    pub from_neighbours: Vec<bool>,
    /// How far the counts fit a convex particle (when counted).
    #[serde(default)]
    pub convexity: Option<Convexity>,
    /// The counting mixture (statistical counting).
    pub mixture: Option<CountMixture>,
    /// Why the columns could not be counted, if they could not.
    pub counting_error: Option<String>,
    /// Chemical ordering.
    pub ordering: Ordering,
    /// Support level under the particle.
    pub support_level: f64,
    /// Ring analysis of its columns (defect columns and `misfit` index like `columns.columns`).
    pub defects: Defects,
}

/// Standard deviation of a count taken from the neighbours: thickness is continuous to about
/// half an atom between neighbouring columns of a convex particle.
const NEIGHBOUR_SD: f64 = 0.5;

impl ParticleReport {
    /// Whether column `k` was counted from its neighbours' thickness.
    pub fn from_neighbours(&self, k: usize) -> bool {
        self.from_neighbours.get(k).copied().unwrap_or(false)
    }

    /// Atoms of the particle and their standard deviation (0 for library counts, which carry no
    /// posterior), when counted.
    pub fn atom_total(&self) -> Option<(f64, f64)> {
        if self.atoms.is_empty() {
            return None;
        }
        // `f64::max` drops a library count's NaN variance (0 here).
        let (sum, var) = (0..self.atoms.len())
            .map(|k| self.count_moments(k))
            .fold((0.0, 0.0), |(s, v), (m, var)| (s + m, v + var.max(0.0)));
        Some((sum, var.sqrt()))
    }

    /// How the counts were made, where not every column was counted by its own cross-section.
    pub fn counting_note(&self) -> Option<String> {
        let n = self.from_neighbours.iter().filter(|&&b| b).count();
        (n > 0 && !self.atoms.is_empty()).then(|| {
            format!(
                "{n} M-rich columns counted from their neighbours' thickness (their intensity mixes two species, so \
                 no one atom's cross-section counts them); the rest by their own cross-sections"
            )
        })
    }

    /// A warning when the counts cannot be a convex particle's ([`Convexity::warning`]), and
    /// for an alloy, whose total is a lower bound: a column with M atoms, or with M-rich
    /// neighbours (less of their scattering reaches its cell), reads fewer Pt-equivalents than
    /// it holds atoms (a frozen-phonon PtCo particle: 70 % of its atoms, BENCHMARKS.md).
    pub fn counting_warning(&self) -> Option<String> {
        let alloy = (!self.atoms.is_empty() && self.from_neighbours.iter().any(|&b| b)).then(|| {
            "an alloy: the total is a lower bound (mixed columns and those beside M-rich ones count as Pt-equivalents, \
             which are fewer than their atoms)"
                .to_string()
        });
        let parts: Vec<String> = [self.convexity.and_then(|c| c.warning()), alloy].into_iter().flatten().collect();
        (!parts.is_empty()).then(|| parts.join("; "))
    }

    /// Column `k`'s count variance: its posterior's, 0.5² (thickness continuity) when counted
    /// from its neighbours, NaN for library counts, 0 when not counted.
    pub fn count_variance(&self, k: usize) -> f64 {
        if self.atoms.is_empty() { 0.0 } else { self.count_moments(k).1 }
    }

    /// Column `k`'s expected count and its variance (see [`ParticleReport::count_variance`]);
    /// only when counted.
    fn count_moments(&self, k: usize) -> (f64, f64) {
        match (&self.mixture, self.from_neighbours(k)) {
            (_, true) => (self.atoms[k] as f64, NEIGHBOUR_SD * NEIGHBOUR_SD),
            (Some(m), false) => m.moments(self.cross_sections[k]),
            (None, false) => (self.atoms[k] as f64, f64::NAN),
        }
    }

    /// Take `counted` (atoms per column and the mixture, or why not) with what follows from it:
    /// each count's probability and the counts' convexity over the columns at `points`.
    fn set_counts(
        &mut self,
        counted: Result<(Vec<u32>, Option<CountMixture>), String>,
        points: &[[f64; 2]],
        spacing: f64,
    ) {
        match counted {
            Ok((atoms, mixture)) => {
                self.convexity = (!atoms.is_empty()).then(|| convexity(points, &atoms, spacing));
                (self.atoms, self.mixture, self.counting_error) = (atoms, mixture, None);
                self.count_probability = self.mixture.as_ref().map(|m| self.probabilities(m)).unwrap_or_default();
            }
            Err(e) => {
                (self.atoms, self.count_probability, self.mixture, self.convexity) =
                    (Vec::new(), Vec::new(), None, None);
                self.counting_error = Some(e);
            }
        }
    }

    /// Probability of each column's count under `m` (NaN for those counted from neighbours).
    fn probabilities(&self, m: &CountMixture) -> Vec<f64> {
        let p = |k: usize| if self.from_neighbours(k) { f64::NAN } else { m.probability(self.cross_sections[k]) };
        (0..self.cross_sections.len()).map(p).collect()
    }
}

/// Everything [`analyse`] found.
#[derive(Debug, Clone)]
pub struct Analysis {
    /// All columns of the image.
    pub columns: ColumnResult,
    /// The particles' label image and measures.
    pub segmentation: Segmentation,
    /// One report per particle, largest first.
    pub particles: Vec<ParticleReport>,
    /// Nearest-neighbour spacing used (px).
    pub spacing: f64,
}

/// Totals of an analysis (a row of a batch summary).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Totals {
    /// Particles found.
    pub particles: usize,
    /// Columns inside particles.
    pub columns: usize,
    /// Equivalent diameter of each particle (px).
    pub diameters: Vec<f64>,
    /// Atoms counted.
    pub atoms: u64,
    /// Ordered fraction over all particle columns.
    pub ordered_fraction: f64,
}

impl Analysis {
    /// `f(report, k)` for the k-th column of each particle, placed at that column's index among
    /// all columns; `T::default()` for columns in no particle.
    pub fn per_column<T: Copy + Default>(&self, f: impl Fn(&ParticleReport, usize) -> T) -> Vec<T> {
        let mut out = vec![T::default(); self.columns.columns.len()];
        for r in &self.particles {
            for (k, &i) in r.columns.columns.iter().enumerate() {
                out[i] = f(r, k);
            }
        }
        out
    }

    /// Positions (px) and atoms of every counted column.
    pub fn counted_columns(&self) -> (Vec<[f64; 2]>, Vec<u32>) {
        let (mut pts, mut atoms) = (Vec::new(), Vec::new());
        for r in self.particles.iter().filter(|r| !r.atoms.is_empty()) {
            for (k, &i) in r.columns.columns.iter().enumerate() {
                pts.push([self.columns.columns[i].x, self.columns.columns[i].y]);
                atoms.push(r.atoms[k]);
            }
        }
        (pts, atoms)
    }

    /// The totals.
    pub fn totals(&self) -> Totals {
        let columns: usize = self.particles.iter().map(|r| r.columns.columns.len()).sum();
        let ordered: f64 =
            self.particles.iter().map(|r| r.ordering.ordered_fraction * r.columns.columns.len() as f64).sum();
        Totals {
            particles: self.particles.len(),
            columns,
            diameters: self.particles.iter().map(|r| r.particle.equivalent_diameter).collect(),
            atoms: self.particles.iter().flat_map(|r| r.atoms.iter()).map(|&n| n as u64).sum(),
            ordered_fraction: ordered / columns.max(1) as f64,
        }
    }
}

/// Find and fit the columns of `img`, segment its particles and analyse each.
pub fn analyse(img: ArrayView2<f32>, p: &AnalysisParams) -> Result<Analysis, CoreError> {
    analyse_with(img, p, &crate::recipe::OnCpu)
}

/// [`analyse`] with the column fits offered to `off` first (the GPU, natively).
pub fn analyse_with(
    img: ArrayView2<f32>,
    p: &AnalysisParams,
    off: &dyn crate::recipe::Offload,
) -> Result<Analysis, CoreError> {
    // As `atomlens columns` finds them (a separation that contradicts the image is noted).
    let peaks = find(img, None, &p.columns)?;
    let req = crate::columns::fit_request(&peaks, &p.columns);
    let fitted = off.fit(req.image(img).view(), &req);
    let columns = crate::columns::fit_found_with(img, &peaks, &p.columns, fitted)?;
    analyse_columns(img, columns, p)
}

/// Count the particles of several images of one microscope and detector with one model, so a
/// column that did not change keeps its count (an identical-location pair): statistical
/// counting fits one mixture to every countable particle's cross-sections pooled; a library is
/// one model already. Particles refused for their lattice stay refused.
pub fn count_together(analyses: &mut [&mut Analysis], how: &Counting) {
    let countable = |r: &ParticleReport| counting_refusal(&r.lattice).is_none();
    let pooled: Vec<f64> = analyses
        .iter()
        .flat_map(|a| a.particles.iter().filter(|r| countable(r)))
        .flat_map(|r| (0..r.cross_sections.len()).filter(|&k| !r.from_neighbours(k)).map(|k| r.cross_sections[k]))
        .collect();
    let result = count_atoms(&pooled, how);
    let mut next = 0;
    for a in analyses.iter_mut() {
        let spacing = a.spacing;
        let points: Vec<[f64; 2]> = a.columns.columns.iter().map(|c| [c.x, c.y]).collect();
        for r in a.particles.iter_mut().filter(|r| countable(r)) {
            let pts: Vec<[f64; 2]> = r.columns.columns.iter().map(|&i| points[i]).collect();
            let counted = match &result {
                Ok((counts, m)) => {
                    let mut atoms: Vec<u32> = (0..r.cross_sections.len())
                        .map(|k| {
                            if r.from_neighbours(k) {
                                return 0;
                            }
                            next += 1;
                            counts[next - 1]
                        })
                        .collect();
                    fill_from_neighbours(&pts, &mut atoms, &r.from_neighbours, spacing);
                    Ok((atoms, m.clone()))
                }
                Err(e) => Err(e.to_string()),
            };
            r.set_counts(counted, &pts, spacing);
        }
    }
}

/// [`analyse`] with the columns already fitted (edited by hand, or from a previous run).
pub fn analyse_columns(img: ArrayView2<f32>, columns: ColumnResult, p: &AnalysisParams) -> Result<Analysis, CoreError> {
    let spacing = columns.spacing.unwrap_or(columns.separation / 0.7);
    let segmentation = segment(img, Some(spacing), &p.particles)?;
    // Each particle's surroundings and own lattice, once (particles in parallel: each one's
    // work is its own crop's).
    let n = segmentation.particles.len();
    let sites = crate::math::par::map(n, |k| {
        let a = Around::new(img, &segmentation.labels, &segmentation.particles[k], spacing);
        let lattice = particle_lattice(a.img, a.near.view(), spacing, None)?;
        Ok((a, lattice))
    })
    .into_iter()
    .collect::<Result<Vec<_>, CoreError>>()?;
    // Where a particle's spacing is not the image's, its columns are found again at its own (a
    // particle of another material or zone axis in the field).
    let mut columns = columns;
    for (a, lattice) in &sites {
        if let Some(d) = own_spacing(lattice, spacing) {
            columns = refind_in(img, columns, a, d, &p.columns)?;
        }
    }
    let points: Vec<[f64; 2]> = columns.columns.iter().map(|c| [c.x, c.y]).collect();
    let particles = crate::math::par::map(n, |k| {
        let q = &segmentation.particles[k];
        let (a, lattice) = &sites[k];
        let lattice = lattice.clone();
        let spacing = own_spacing(&lattice, spacing).unwrap_or(spacing);
        // In the crop's pixels; indices stay those of all columns.
        let local: Vec<[f64; 2]> = points.iter().map(|&[x, y]| [x - a.x0 as f64, y - a.y0 as f64]).collect();
        let pc = particle_columns(a.near.view(), &local, spacing, columns.lattice.as_ref());
        // Off a zone axis the columns are blurred rows of atoms: no counts, ordering, facets or
        // ring analysis from them (a confident wrong number); the reason goes with the report.
        let refusal = counting_refusal(&lattice);
        let resolved = refusal.is_none();
        let facets = if resolved { pc.facets } else { Vec::new() };
        let pc = ParticleColumns {
            facets: facets.into_iter().map(|f| Facet { from: a.shift(f.from), to: a.shift(f.to), ..f }).collect(),
            ..pc
        };
        let pts: Vec<[f64; 2]> = pc.columns.iter().map(|&i| points[i]).collect();
        let pts_local: Vec<[f64; 2]> = pc.columns.iter().map(|&i| local[i]).collect();
        let cs = cross_sections(a.img, &pts_local, a.near.view(), spacing)?;
        let ordering = if resolved { classify(&pts, &cs.values, spacing) } else { Ordering::unclassified(pts.len()) };
        // An alloy's M-rich columns mix two species: counted from their neighbours' thickness.
        let from_neighbours: Vec<bool> = if ordering.kind.contains(&Kind::MRich) {
            ordering.kind.iter().map(|&k| k == Kind::MRich).collect()
        } else {
            Vec::new()
        };
        let counted = match refusal {
            Some(why) => Err(why),
            None => count_with_neighbours(&pts, &cs.values, &from_neighbours, spacing, &p.counting)
                .map_err(|e| e.to_string()),
        };
        let mut defects = if resolved { find_defects(&pts, spacing) } else { Defects::none(pts.len()) };
        for d in &mut defects.defects {
            d.columns = d.columns.iter().map(|&k| pc.columns[k]).collect();
        }
        for r in &mut defects.regions {
            r.columns = r.columns.iter().map(|&k| pc.columns[k]).collect();
        }
        let mut report = ParticleReport {
            particle: q.clone(),
            lattice,
            columns: pc,
            cross_sections: cs.values,
            atoms: Vec::new(),
            count_probability: Vec::new(),
            from_neighbours,
            convexity: None,
            mixture: None,
            counting_error: None,
            ordering,
            support_level: cs.support_level,
            defects,
        };
        report.set_counts(counted, &pts, spacing);
        Ok(report)
    })
    .into_iter()
    .collect::<Result<Vec<_>, CoreError>>()?;
    Ok(Analysis { columns, segmentation, particles, spacing })
}

/// A particle's surroundings: the image cut to its bounding box grown by [`MARGIN`] spacings
/// (everything read about a particle lies within 4 of its own spacings, and its own spacing is
/// at most twice the image's), and the squared distance to it there (exact: the whole particle
/// is inside). Per-particle work then scales with the particle, not the field.
struct Around<'a> {
    img: ArrayView2<'a, f32>,
    near: ndarray::Array2<f32>,
    x0: usize,
    y0: usize,
}

/// Margin of [`Around`], in the image's spacings.
const MARGIN: f64 = 8.0;

impl<'a> Around<'a> {
    fn new(img: ArrayView2<'a, f32>, labels: &ndarray::Array2<u32>, q: &Particle, spacing: f64) -> Self {
        let (h, w) = img.dim();
        let m = MARGIN * spacing + 2.0;
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for &[x, y] in &q.outline {
            (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
        }
        if q.outline.is_empty() {
            (x0, x1, y0, y1) = (0.0, w as f64, 0.0, h as f64);
        }
        let cut = |v: f64, n: usize| v.clamp(0.0, n as f64) as usize;
        let (x0, x1, y0, y1) = (cut(x0 - m, w), cut(x1 + m + 1.0, w), cut(y0 - m, h), cut(y1 + m + 1.0, h));
        let near = distance_squared_to(labels.slice(ndarray::s![y0..y1, x0..x1]).mapv(|l| l == q.id).view());
        Around { img: img.slice_move(ndarray::s![y0..y1, x0..x1]), near, x0, y0 }
    }

    /// A point of the crop in the image's pixels.
    fn shift(&self, [x, y]: [f64; 2]) -> [f64; 2] {
        [x + self.x0 as f64, y + self.y0 as f64]
    }
}

/// How far a particle's own spacing may differ from the image's before its columns are found
/// again: the finder's separation (0.7 of the spacing) keeps every column of a lattice up to
/// 1/0.7 ≈ 1.4× denser, and a coarser one gets no false doubles down to ~1/3 of it; 20 % keeps
/// well inside both.
pub const OWN_SPACING: f64 = 0.2;

/// The particle's own column spacing where it is on a zone axis and differs from the image's
/// `spacing` by more than [`OWN_SPACING`].
fn own_spacing(l: &LatticeAnalysis, spacing: f64) -> Option<f64> {
    let d = l.spacing.filter(|_| l.kind == crate::lattice::local::LatticeKind::ZoneAxis)?;
    ((d / spacing - 1.0).abs() > OWN_SPACING).then_some(d)
}

/// `columns` with those within one spacing `d` of the particle (`a`) found and fitted again at `d`.
fn refind_in(
    img: ArrayView2<f32>,
    mut columns: ColumnResult,
    a: &Around,
    d: f64,
    p: &ColumnParams,
) -> Result<ColumnResult, CoreError> {
    let reach = (d * d) as f32;
    let inside = |x: f64, y: f64| {
        let (xi, yi) = ((x - a.x0 as f64).round(), (y - a.y0 as f64).round());
        xi >= 0.0 && yi >= 0.0 && a.near.get([yi as usize, xi as usize]).is_some_and(|&v| v <= reach)
    };
    let find = PeakParams { separation: Some(0.7 * d), border: Some(0.0), ..p.find.clone() };
    let seeds: Vec<[f64; 2]> =
        find_columns(a.img, &find)?.points.iter().map(|&q| a.shift(q)).filter(|q| inside(q[0], q[1])).collect();
    let (fitted, _) = refine(img, &seeds, p, None)?;
    columns.columns.retain(|c| !inside(c.x, c.y));
    columns.columns.extend(fitted);
    Ok(columns.with_precision())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::match_points;
    use crate::particles::ordering::Kind;
    use crate::synth::{NanoparticleParams, nanoparticle};

    /// A particle whose rows of atoms blur into fringes (off axis) beside one on a zone axis:
    /// the first gets no counts, ordering, facets or defects, and says why; the second is
    /// analysed as before.
    #[test]
    fn an_off_axis_particle_is_reported_not_counted() {
        let per = |v: f64| {
            let f = v.rem_euclid(12.0);
            f.min(12.0 - f)
        };
        let thick = |x: f64, y: f64, cx: f64, r: f64| {
            let d = (x - cx).hypot(y - 128.0);
            if d < r { (1.0 - (d / r).powi(2)).sqrt() } else { 0.0 }
        };
        let clean = ndarray::Array2::from_shape_fn((256, 420), |(y, x)| {
            let (x, y) = (x as f64, y as f64);
            let dots = (-(per(x - 128.0).powi(2) + per(y - 128.0).powi(2)) / 12.5).exp();
            let rows = (-per(y - 128.0).powi(2) / 12.5).exp();
            (10.0 + 160.0 * thick(x, y, 128.0, 70.0) * dots + 160.0 * thick(x, y, 300.0, 60.0) * rows) as f32
        });
        let img = crate::synth::at_dose(clean.view(), 1.0, 4);
        let a = analyse(img.view(), &AnalysisParams::default()).unwrap();
        assert_eq!(a.particles.len(), 2);
        let by = |on: bool| a.particles.iter().find(|r| (r.particle.centroid[0] > 214.0) != on).unwrap();
        let (on, off) = (by(true), by(false));
        assert_eq!(on.lattice.kind, crate::lattice::local::LatticeKind::ZoneAxis);
        // Its thickness is continuous (no whole atoms): counting may refuse, but not for its axis.
        assert!(on.counting_error.as_deref().is_none_or(|e| !e.contains("zone axis")), "{:?}", on.counting_error);
        assert_ne!(off.lattice.kind, crate::lattice::local::LatticeKind::ZoneAxis);
        assert!(off.atoms.is_empty() && off.counting_error.as_deref().is_some_and(|e| e.contains("zone axis")));
        assert!(off.columns.facets.is_empty() && off.defects.defects.is_empty());
        assert_eq!(off.ordering.ordered_fraction, 0.0);
    }

    /// A field of two particles whose lattices differ twofold (as two materials, or two zone
    /// axes, would): each is on a zone axis at its own spacing, and the columns of the denser
    /// one, merged at the image's spacing, are found again at its own.
    #[test]
    #[cfg_attr(debug_assertions, ignore = "fits ~300 columns; run with --release")]
    fn each_particle_is_found_at_its_own_spacing() {
        let part = |px: f64, seed: u64| {
            nanoparticle(&NanoparticleParams {
                size: 256,
                pixel_size_nm: px,
                diameter_nm: 3.2 / (0.02 / px).sqrt(),
                seed,
                ..Default::default()
            })
            .unwrap()
        };
        let (coarse, fine) = (part(0.02, 1), part(0.04, 2));
        // Side by side: the coarse particle left, the fine one right.
        let img = ndarray::Array2::from_shape_fn((256, 512), |(y, x)| {
            if x < 256 { coarse.image.data[[y, x]] } else { fine.image.data[[y, x - 256]] }
        });
        // Columns first found at the coarse particle's spacing (12 px; as given by hand, or as
        // the image's spectrum would give where such particles dominate).
        let mut p = AnalysisParams::default();
        p.columns.find.separation = Some(0.7 * 0.24 / 0.02);
        let at_coarse = crate::columns::find_and_fit(img.view(), &p.columns).unwrap();
        let a = analyse_columns(img.view(), at_coarse, &p).unwrap();
        assert_eq!(a.particles.len(), 2);
        let found: Vec<[f64; 2]> = a.columns.columns.iter().map(|c| [c.x, c.y]).collect();
        for (s, dx, name) in [(&coarse, 0.0, "coarse"), (&fine, 256.0, "fine")] {
            let truth: Vec<[f64; 2]> = s.columns.iter().filter(|c| c.atoms >= 2).map(|c| [c.x + dx, c.y]).collect();
            let m = match_points(&truth, &found, 0.25 * 0.24 / s.image.calibration.pixel_size);
            eprintln!("{name}: {} of {} columns", m.pairs.len(), truth.len());
            assert!(m.pairs.len() as f64 >= 0.95 * truth.len() as f64, "{name}: {} of {}", m.pairs.len(), truth.len());
            let r = a.particles.iter().find(|r| (r.particle.centroid[0] >= 256.0) == (dx > 0.0)).unwrap();
            assert_eq!(r.lattice.kind, crate::lattice::local::LatticeKind::ZoneAxis, "{name}");
        }
    }

    /// From pixels: a pure particle (3 nm, small enough that a third of its columns are at the
    /// surface) shows no ordering: its surface columns are thinner than their neighbours'
    /// mean, but not than their thickness trend (it read 30 of 121 columns "M-rich" against
    /// the mean).
    #[test]
    #[cfg_attr(debug_assertions, ignore = "fits ~120 columns; run with --release")]
    fn a_pure_particle_from_pixels_is_not_ordered() {
        let pair = crate::synth::il_pair(&crate::synth::IlPairParams {
            particle: NanoparticleParams { size: 256, diameter_nm: 3.0, ..Default::default() },
            ..Default::default()
        })
        .unwrap();
        let a = analyse(pair.before.image.view(), &AnalysisParams::default()).unwrap();
        let r = &a.particles[0];
        let m_rich = r.ordering.kind.iter().filter(|&&k| k == Kind::MRich).count();
        assert!(m_rich == 0 && r.ordering.ordered_fraction < 0.05, "{m_rich} M-rich, {}", r.ordering.ordered_fraction);
        assert!(r.from_neighbours.is_empty());
    }

    /// From pixels: the ordered particle's fitted columns classified Pt-rich / M-rich against
    /// the truth, ≥ 95 % right.
    #[test]
    #[cfg_attr(debug_assertions, ignore = "fits ~200 columns; run with --release")]
    fn ordered_particle_classified_from_pixels() {
        let s = nanoparticle(&NanoparticleParams { size: 384, diameter_nm: 4.0, ordered: true, ..Default::default() })
            .unwrap();
        let a = analyse(s.image.view(), &AnalysisParams::default()).unwrap();
        assert_eq!(a.particles.len(), 1);
        let r = &a.particles[0];
        let found: Vec<[f64; 2]> =
            r.columns.columns.iter().map(|&i| [a.columns.columns[i].x, a.columns.columns[i].y]).collect();
        let truth: Vec<[f64; 2]> = s.columns.iter().map(|c| [c.x, c.y]).collect();
        let m = match_points(&truth, &found, 4.0);
        let right = m
            .pairs
            .iter()
            .filter(|&&(t, f, _)| {
                let c = &s.columns[t];
                let want = if 2 * c.m_atoms > c.atoms { Kind::MRich } else { Kind::PtRich };
                r.ordering.kind[f] == want
            })
            .count();
        assert!(right as f64 >= 0.95 * s.columns.len() as f64, "{right} of {} true columns", s.columns.len());
        assert!(r.ordering.ordered_fraction > 0.4, "{}", r.ordering.ordered_fraction);
        // A perfect crystal: no missing or extra columns, nothing off the lattice.
        assert!(r.defects.defects.is_empty(), "{:?}", r.defects.defects);
        assert_eq!(r.defects.misfit.iter().filter(|&&m| m).count(), 0);
        // Statistically, the Pt-rich columns alone scatter too much to show steps (their cells
        // take uneven shares of the dim neighbours' tails): refused, not Pt-equivalents read as atoms.
        let e = r.counting_error.as_deref().unwrap_or_default();
        assert!(r.atoms.is_empty() && e.contains("one class"), "{e}");
        // With a library (one Pt atom's cross-section, as a simulation would give it) the Pt-rich
        // columns are counted by their cross-sections, the M-rich ones (a Co core under a Pt shell)
        // by their neighbours' thickness: atoms, not Pt-equivalents.
        let mut per_atom: Vec<f64> = m
            .pairs
            .iter()
            .filter(|p| !r.from_neighbours(p.1))
            .map(|p| r.cross_sections[p.1] / s.columns[p.0].atoms as f64)
            .collect();
        per_atom.sort_by(f64::total_cmp);
        let unit = per_atom[per_atom.len() / 2];
        let library = AnalysisParams {
            counting: Counting::Library((1..=40).map(|n| n as f64 * unit).collect()),
            ..Default::default()
        };
        let a = analyse(s.image.view(), &library).unwrap();
        let r = &a.particles[0];
        let (total, sd) = r.atom_total().unwrap();
        let want: u32 = s.columns.iter().map(|c| c.atoms).sum();
        let (mut exact, mut within_one, mut m_within_one, mut from) = (0, 0, 0, 0);
        for &(t, f, _) in &m.pairs {
            let d = r.atoms[f].abs_diff(s.columns[t].atoms);
            (exact, within_one) = (exact + (d == 0) as usize, within_one + (d <= 1) as usize);
            if r.from_neighbours(f) {
                (from, m_within_one) = (from + 1, m_within_one + (d <= 1) as usize);
            }
        }
        eprintln!(
            "ordered particle, library: {total:.0} ± {sd:.1} atoms (true {want}); {exact} exact, {within_one} within one \
             of {}; M-rich from neighbours {m_within_one} of {from} within one",
            m.pairs.len()
        );
        assert!(from > 50, "{from} columns counted from their neighbours");
        assert!((total / want as f64 - 1.0).abs() < 0.05, "{total} atoms counted, {want} true");
        assert!(within_one as f64 >= 0.9 * m.pairs.len() as f64 && m_within_one as f64 >= 0.9 * from as f64);
    }
}
