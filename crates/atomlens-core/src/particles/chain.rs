//! The particle chain as one call: columns (find + fit), particles (segmentation), and per
//! particle its own lattice, surface columns and facets, cross-sections, atom counts (refused
//! off a zone axis) and ordering. The
//! CLI's `particles`/`count`/`batch`, the page's Particle panel and `compare` all use it.
use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use crate::CoreError;
use crate::columns::{ColumnParams, ColumnResult, find_and_fit};
use crate::image::morphology::distance_squared_to;
use crate::lattice::local::LatticeAnalysis;
use crate::particles::counting::{CountMixture, Counting, count_atoms, cross_sections};
use crate::particles::defects::{Defects, find_defects};
use crate::particles::lattice::{counting_refusal, particle_lattice};
use crate::particles::ordering::{Ordering, classify};
use crate::particles::segment::{Particle, ParticleColumns, ParticleParams, Segmentation, particle_columns, segment};

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
    let columns = find_and_fit(img, &p.columns)?;
    analyse_columns(img, columns, p)
}

/// [`analyse`] with the columns already fitted (edited by hand, or from a previous run).
pub fn analyse_columns(img: ArrayView2<f32>, columns: ColumnResult, p: &AnalysisParams) -> Result<Analysis, CoreError> {
    let spacing = columns.spacing.unwrap_or(columns.separation / 0.7);
    let segmentation = segment(img, Some(spacing), &p.particles)?;
    let points: Vec<[f64; 2]> = columns.columns.iter().map(|c| [c.x, c.y]).collect();
    let particles = segmentation
        .particles
        .iter()
        .map(|q| {
            // Squared distance to the particle: its columns and its support ring both come from it.
            let near = distance_squared_to(segmentation.labels.mapv(|l| l == q.id).view());
            let pc = particle_columns(near.view(), &points, spacing, columns.lattice.as_ref());
            let pts: Vec<[f64; 2]> = pc.columns.iter().map(|&i| points[i]).collect();
            let cs = cross_sections(img, &pts, near.view(), spacing)?;
            let lattice = particle_lattice(img, near.view(), spacing, None)?;
            let (atoms, mixture, counting_error) = match counting_refusal(&lattice) {
                Some(why) => (Vec::new(), None, Some(why)),
                None => match count_atoms(&cs.values, &p.counting) {
                    Ok((a, m)) => (a, m, None),
                    Err(e) => (Vec::new(), None, Some(e.to_string())),
                },
            };
            let ordering = classify(&pts, &cs.values, spacing);
            let mut defects = find_defects(&pts, spacing);
            for d in &mut defects.defects {
                d.columns = d.columns.iter().map(|&k| pc.columns[k]).collect();
            }
            for r in &mut defects.regions {
                r.columns = r.columns.iter().map(|&k| pc.columns[k]).collect();
            }
            Ok(ParticleReport {
                particle: q.clone(),
                lattice,
                columns: pc,
                cross_sections: cs.values,
                atoms,
                mixture,
                counting_error,
                ordering,
                support_level: cs.support_level,
                defects,
            })
        })
        .collect::<Result<Vec<_>, CoreError>>()?;
    Ok(Analysis { columns, segmentation, particles, spacing })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::match_points;
    use crate::particles::ordering::Kind;
    use crate::synth::{NanoparticleParams, nanoparticle};

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
    }
}
