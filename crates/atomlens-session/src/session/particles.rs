//! Particles of the shown image (segmentation, surface columns, facets, counts, ordering), a
//! batch row, the 3-D model, the exports (the CLI's files), and the identical-location
//! comparison of two of the dataset's signals.
use atomlens_core::particles::chain::{Analysis, AnalysisParams, analyse, analyse_columns};
use atomlens_core::particles::compare::{CompareParams, Comparison, Status, after_in_before_frame, change_map};
use atomlens_core::particles::ordering::Kind;
use atomlens_core::particles::segment::Site;
use atomlens_core::{Calibration, Recipe, synth};
use atomlens_io::Metadata;
use atomlens_io::tables::{self, BatchRow};
use serde::Serialize;

use super::{Session, SignalInfo, Step};
use crate::error::{Error, Result};
use crate::reply::Reply;

/// The last particle analysis of the shown image.
pub struct Particles {
    /// Its results.
    pub analysis: Analysis,
    /// Its parameters (the columns' as fitted).
    pub params: AnalysisParams,
}

/// The last comparison.
pub struct Compared {
    /// Its results.
    pub comparison: Comparison,
    /// The before image's calibration.
    pub calibration: Calibration,
    /// The two signals compared (before, after).
    pub pair: (usize, usize),
    /// The signals it appended: the after image registered onto the before, the change map.
    pub appended: (usize, usize),
}

#[derive(Serialize)]
struct ParticleReply {
    id: u32,
    area_px: f64,
    diameter_px: f64,
    aspect_ratio: f64,
    touches_border: bool,
    /// The particle's own lattice (zone axis, fringes, none; spacing, peaks, notes).
    lattice: atomlens_core::lattice::local::LatticeAnalysis,
    /// The same in words.
    lattice_summary: String,
    /// Outline `[x0, y0, x1, y1, …]` (px).
    outline: Vec<f64>,
    facets: Vec<atomlens_core::particles::segment::Facet>,
    columns: usize,
    surface: usize,
    edge: usize,
    atoms: u64,
    /// Standard deviation of `atoms` (0 for library counts).
    atoms_sd: f64,
    ordered_fraction: f64,
    ordered_fraction_sd: f64,
    /// Sizes (columns) of the ordered domains, largest first.
    ordered_domains: Vec<usize>,
    /// The ordering in one sentence (Rust's `Ordering::summary`), absent where none is ordered.
    ordering_summary: Option<String>,
    counting_error: Option<String>,
    /// How the counts were made where not all by their own cross-sections.
    counting_note: Option<String>,
    /// Why the counts may be wrong (they break the particle's convexity).
    counting_warning: Option<String>,
    mixture: Option<atomlens_core::particles::counting::CountMixture>,
    support_level: f64,
    defects: Vec<atomlens_core::particles::defects::Defect>,
    /// Stacking faults and twin domains.
    regions: Vec<atomlens_core::particles::defects::MisfitRegion>,
    /// The mixture on ln(contrast) that split Pt-rich from M-rich columns.
    ordering_mixture: Option<atomlens_core::math::mixture::Mixture>,
}

/// `{particles, spacing, total_columns, unit, pixel_size}` and, per column of every particle,
/// `x, y, particle, site (0 interior, 1 surface, 2 edge), atoms, count_probability, from_neighbours (1: counted from
/// its neighbours' thickness), cross_section, kind (0 Pt-rich,
/// 1 M-rich, 2 uniform), contrast, ordered, misfit`.
fn reply(a: &Analysis, cal: &Calibration) -> Reply {
    let (mut x, mut y, mut particle, mut site, mut atoms) = (vec![], vec![], vec![], vec![], vec![]);
    let (mut probability, mut from_neighbours) = (vec![], vec![]);
    let (mut cross, mut kind, mut contrast, mut ordered, mut misfit) = (vec![], vec![], vec![], vec![], vec![]);
    let mut particles = Vec::new();
    for r in &a.particles {
        for (k, &i) in r.columns.columns.iter().enumerate() {
            x.push(a.columns.columns[i].x);
            y.push(a.columns.columns[i].y);
            particle.push(r.particle.id);
            site.push(match r.columns.sites[k] {
                Site::Interior => 0,
                Site::Surface => 1,
                Site::Edge => 2,
            });
            atoms.push(r.atoms.get(k).copied().unwrap_or(0));
            probability.push(r.count_probability.get(k).copied().unwrap_or(f64::NAN));
            from_neighbours.push(r.from_neighbours(k) as u8);
            cross.push(r.cross_sections[k]);
            kind.push(match r.ordering.kind[k] {
                Kind::PtRich => 0,
                Kind::MRich => 1,
                Kind::Uniform => 2,
            });
            contrast.push(r.ordering.contrast[k]);
            ordered.push(r.ordering.ordered[k] as u8);
            misfit.push(r.defects.misfit[k] as u8);
        }
        let q = &r.particle;
        let count = |s: Site| r.columns.sites.iter().filter(|&&v| v == s).count();
        particles.push(ParticleReply {
            id: q.id,
            area_px: q.area,
            diameter_px: q.equivalent_diameter,
            aspect_ratio: q.aspect_ratio,
            touches_border: q.touches_border,
            lattice: r.lattice.clone(),
            lattice_summary: r.lattice.summary(cal.pixel_nm()),
            outline: q.outline.iter().flat_map(|p| [p[0], p[1]]).collect(),
            facets: r.columns.facets.clone(),
            columns: r.columns.columns.len(),
            surface: count(Site::Surface),
            edge: count(Site::Edge),
            atoms: r.atoms.iter().map(|&n| n as u64).sum(),
            atoms_sd: r.atom_total().map_or(0.0, |t| t.1),
            ordered_fraction: r.ordering.ordered_fraction,
            ordered_fraction_sd: r.ordering.ordered_fraction_sd,
            ordered_domains: r.ordering.domains.clone(),
            ordering_summary: r.ordering.summary(),
            counting_error: r.counting_error.clone(),
            counting_note: r.counting_note(),
            counting_warning: r.counting_warning(),
            mixture: r.mixture.clone(),
            support_level: r.support_level,
            defects: r.defects.defects.clone(),
            regions: r.defects.regions.clone(),
            ordering_mixture: r.ordering.mixture.clone(),
        });
    }
    Reply::new()
        .json("particles", &particles)
        .json("spacing", &a.spacing)
        .json("notes", &a.columns.notes)
        .json("total_columns", &a.columns.columns.len())
        .json("unit", &cal.unit)
        .json("pixel_size", &cal.pixel_size)
        .f64s("x", x)
        .f64s("y", y)
        .u32s("particle", particle)
        .u8s("site", site)
        .u32s("atoms", atoms)
        .f64s("count_probability", probability)
        .u8s("from_neighbours", from_neighbours)
        .f64s("cross_section", cross)
        .u8s("kind", kind)
        .f64s("contrast", contrast)
        .u8s("ordered", ordered)
        .u8s("misfit", misfit)
}

impl Session {
    /// Particles of the shown image. Columns fitted (or edited) in the Columns panel on this
    /// image are reused (with their parameters); otherwise they are found and fitted with
    /// `p.columns`.
    pub fn analyse_particles(&mut self, mut p: AnalysisParams) -> Result<Reply> {
        let shown = self.shown_mut()?;
        let img = shown.image.view();
        let a = match &shown.columns {
            Some((r, cp)) if r.columns.len() >= 3 => {
                p.columns = cp.clone();
                analyse_columns(img, r.clone(), &p)
            }
            _ => analyse(img, &p),
        }?;
        shown.particles = Some(Particles { analysis: a, params: p.clone() });
        self.record(Step::Particles { params: p });
        self.particles_reply()
    }

    /// The particle analysis of the shown image, as [`Session::analyse_particles`] returned it.
    pub fn particles_reply(&self) -> Result<Reply> {
        let (r, cal) = self.particles()?;
        Ok(reply(&r.analysis, cal))
    }

    fn particles(&self) -> Result<(&Particles, &Calibration)> {
        let shown = self.shown()?;
        let p = shown.particles.as_ref().ok_or_else(|| Error::state("analyse the particles first"))?;
        Ok((p, &shown.image.calibration))
    }

    /// The recipe on the shown image, as one row of a batch (`file` named by the caller) with
    /// the particles' diameters in the image's unit for the size distribution.
    pub fn batch_row(&mut self, file: &str, recipe: &Recipe) -> Result<Reply> {
        let out = recipe.run(self.image()?)?;
        let totals = out.analysis.totals();
        let cal = out.image.calibration;
        let diameters: Vec<f64> = totals.diameters.iter().map(|d| d * cal.pixel_size).collect();
        let row = BatchRow { file: file.into(), totals: Some(totals), calibration: cal, seconds: 0.0, error: None };
        Ok(Reply::new().json("row", &row).json("mean_diameter", &row.mean_diameter()).json("diameters", &diameters))
    }

    /// The counted columns stacked about the mid-plane: `[x, y, z, …]` in Å (nm images) or px,
    /// for the 3-D view.
    pub fn particle_model(&self, beam_step_nm: f64) -> Result<Vec<f32>> {
        let (r, cal) = self.particles()?;
        let (scale, step) = if cal.unit == "nm" {
            (cal.pixel_size * 10.0, beam_step_nm * 10.0)
        } else {
            (1.0, beam_step_nm / cal.pixel_size)
        };
        let (pts, atoms) = r.analysis.counted_columns();
        let model = atomlens_core::particles::counting::stack_atoms(&pts, &atoms, scale, step);
        Ok(model.iter().flat_map(|p| [p[0] as f32, p[1] as f32, p[2] as f32]).collect())
    }

    /// An export of the particle analysis: `particles_csv`, `columns_csv`, `facets_csv`,
    /// `defects_csv`, `json`, `xyz` or `recipe` (the CLI's files).
    pub fn particle_export(&self, what: &str, source: &str) -> Result<String> {
        let (r, cal) = self.particles()?;
        let a = &r.analysis;
        Ok(match what {
            "particles_csv" => tables::particles_csv(a, cal),
            "columns_csv" => tables::particle_columns_csv(a),
            "facets_csv" => tables::facets_csv(a, cal),
            "defects_csv" => tables::defects_csv(a),
            "json" => tables::analysis_json(a, &r.params, cal, source),
            "recipe" => Recipe { analysis: r.params.clone(), ..Default::default() }.to_json(),
            "xyz" => tables::model_xyz(a, cal, synth::PT_110_SPACING_NM, "Pt")
                .ok_or_else(|| Error::state("no counted columns, or the image is not calibrated in nm"))?,
            other => return Err(Error::invalid(format!("unknown export {other:?}"))),
        })
    }

    /// Compare signal `before` with signal `after` (first frames): registration, kept / lost /
    /// new columns, per-facet changes. Appends "after, registered onto before" and the change
    /// map as signals: `{signals, index, summary, facets, registered, change}` and per column
    /// `x, y, status (0 kept, 1 lost, 2 new), d_atoms, d_atoms_sd`; `summary_text` in words.
    pub fn compare_signals(&mut self, before: usize, after: usize, analysis: AnalysisParams) -> Result<Reply> {
        if before == after {
            return Err(Error::invalid("pick two different signals: the same image was chosen as before and after"));
        }
        let (ib, ia) = (self.frame(before, 0)?, self.frame(after, 0)?);
        let (cb, ca) = (&ib.calibration, &ia.calibration);
        if cb.unit != ca.unit || (cb.pixel_size - ca.pixel_size).abs() > 0.01 * cb.pixel_size {
            return Err(Error::invalid(format!(
                "the two images have different pixel sizes ({} {} and {} {}): set one calibration for both, \
                 or resample one, before comparing",
                cb.pixel_size, cb.unit, ca.pixel_size, ca.unit
            )));
        }
        let p = CompareParams { analysis: analysis.clone(), ..Default::default() };
        let c = atomlens_core::particles::compare::compare(&ib, &ia, &p)?;
        let (h, w) = ib.data.dim();
        let registered = after_in_before_frame(ia.view(), &c.transform, h, w);
        let change = change_map(&c.columns, w, h, c.before.spacing);
        let (tb, ta) = (&self.signals[before].info.title, &self.signals[after].info.title);
        let info = |t: &str, data, note: &str| {
            let meta =
                Metadata { format: "atomlens comparison".into(), notes: vec![note.into()], ..Metadata::default() };
            SignalInfo::derived(format!("{t} ({tb} → {ta})"), data, &ib.calibration, meta)
        };
        let ri = info(
            "After, registered onto before",
            &registered,
            "the after image resampled into the before image's frame",
        );
        let ci = info("Change in atoms", &change, "atoms after − before per px², Gaussian of one column spacing");
        let reg = self.append(registered, ib.calibration.clone(), ri)?;
        let chg = self.append(change, ib.calibration.clone(), ci)?;
        self.compared =
            Some(Compared { comparison: c, calibration: ib.calibration, pair: (before, after), appended: (reg, chg) });
        self.record(Step::Compare { before, after, params: analysis });
        self.compare_reply()
    }

    /// The last comparison, as [`Session::compare_signals`] returned it.
    pub fn compare_reply(&self) -> Result<Reply> {
        let r = self.compared.as_ref().ok_or_else(|| Error::state("compare two images first"))?;
        let (c, (reg, chg)) = (&r.comparison, r.appended);
        let status = |s: Status| match s {
            Status::Kept => 0,
            Status::Lost => 1,
            Status::New => 2,
        };
        let out = self
            .appended(reg)
            .json("summary", &c.summary)
            .json("summary_text", &c.summary.describe())
            .json("facets", &c.facets)
            .json("registered", &reg)
            .json("change", &chg)
            .f64s("x", c.columns.iter().map(|k| k.x).collect())
            .f64s("y", c.columns.iter().map(|k| k.y).collect())
            .u8s("status", c.columns.iter().map(|k| status(k.status)).collect())
            .f64s("d_atoms", c.columns.iter().map(|k| k.atoms_after as f64 - k.atoms_before as f64).collect())
            .f64s("d_atoms_sd", c.columns.iter().map(|k| k.d_atoms_sd).collect())
            .json("before", &r.pair.0)
            .json("after", &r.pair.1);
        Ok(out)
    }

    /// An export of the comparison: `columns_csv`, `facets_csv` or `summary_json`.
    pub fn compare_export(&self, what: &str, before: &str, after: &str) -> Result<String> {
        let r = self.compared.as_ref().ok_or_else(|| Error::state("compare two images first"))?;
        Ok(match what {
            "columns_csv" => tables::compare_columns_csv(&r.comparison),
            "facets_csv" => tables::compare_facets_csv(&r.comparison, &r.calibration),
            "summary_json" => tables::compare_summary_json(&r.comparison, &r.calibration, before, after),
            other => return Err(Error::invalid(format!("unknown export {other:?}"))),
        })
    }
}
