//! Particle, counting, ordering and identical-location bindings: demos with known truth, the
//! analysis of the shown image (reusing columns fitted or edited in the Columns panel), the
//! comparison of two signals, and the exports (same files as the CLI's).
use atomlens_core::particles::chain::{Analysis, AnalysisParams, analyse, analyse_columns};
use atomlens_core::particles::compare::{CompareParams, Comparison, Status, after_in_before_frame, change_map};
use atomlens_core::particles::counting::Counting;
use atomlens_core::synth::{self, IlPairParams, NanoparticleParams};
use atomlens_core::{Calibration, Image, Stack};
use atomlens_io::Metadata;
use atomlens_io::tables;
use serde::{Deserialize, Serialize};
use wasm_bindgen::prelude::*;

use crate::{Session, SignalInfo, err, js, to_js};

/// The last particle analysis of the shown image.
pub(crate) struct Particles {
    analysis: Analysis,
    params: AnalysisParams,
    calibration: Calibration,
}

/// The last comparison.
pub(crate) struct Compared {
    comparison: Comparison,
    calibration: Calibration,
}

/// What the page sets; the rest of [`AnalysisParams`] comes from the Columns panel.
#[derive(Deserialize, Default)]
#[serde(default)]
struct PageParams {
    columns: Option<atomlens_core::columns::ColumnParams>,
    smoothing: Option<f64>,
    threshold: Option<f64>,
    no_split: bool,
    /// Cross-sections per atom count (1, 2, …); empty: statistical counting.
    library: Vec<f64>,
    max_components: Option<usize>,
}

impl PageParams {
    fn analysis(&self) -> AnalysisParams {
        let mut p = AnalysisParams::default();
        if let Some(c) = &self.columns {
            p.columns = c.clone();
        }
        p.particles.smoothing = self.smoothing;
        p.particles.threshold = self.threshold;
        p.particles.no_split = self.no_split;
        p.counting = if self.library.is_empty() {
            Counting::Statistical { max_components: self.max_components.unwrap_or(40) }
        } else {
            Counting::Library(self.library.clone())
        };
        p
    }
}

#[derive(Serialize)]
struct ParticleReply {
    id: u32,
    area_px: f64,
    diameter_px: f64,
    aspect_ratio: f64,
    touches_border: bool,
    /// Outline `[x0, y0, x1, y1, …]` (px).
    outline: Vec<f64>,
    facets: Vec<atomlens_core::particles::segment::Facet>,
    columns: usize,
    surface: usize,
    edge: usize,
    atoms: u64,
    ordered_fraction: f64,
    counting_error: Option<String>,
    mixture: Option<atomlens_core::particles::counting::CountMixture>,
    support_level: f64,
    defects: Vec<atomlens_core::particles::defects::Defect>,
    /// Stacking faults and twin domains.
    regions: Vec<atomlens_core::particles::defects::MisfitRegion>,
    /// The mixture on ln(contrast) that split Pt-rich from M-rich columns.
    ordering_mixture: Option<atomlens_core::math::mixture::Mixture>,
}

/// Per column of every particle, flat arrays.
#[derive(Serialize, Default)]
struct ColumnsReply {
    x: Vec<f64>,
    y: Vec<f64>,
    particle: Vec<u32>,
    /// 0 interior, 1 surface, 2 edge.
    site: Vec<u8>,
    atoms: Vec<u32>,
    cross_section: Vec<f64>,
    /// 0 Pt-rich, 1 M-rich, 2 uniform.
    kind: Vec<u8>,
    contrast: Vec<f64>,
    ordered: Vec<u8>,
    misfit: Vec<u8>,
}

#[derive(Serialize)]
struct AnalysisReply {
    particles: Vec<ParticleReply>,
    columns: ColumnsReply,
    spacing: f64,
    total_columns: usize,
    unit: String,
    pixel_size: f64,
}

fn reply(a: &Analysis, cal: &Calibration) -> AnalysisReply {
    use atomlens_core::particles::ordering::Kind;
    use atomlens_core::particles::segment::Site;
    let mut cols = ColumnsReply::default();
    let particles = a
        .particles
        .iter()
        .map(|r| {
            for (k, &i) in r.columns.columns.iter().enumerate() {
                cols.x.push(a.columns.columns[i].x);
                cols.y.push(a.columns.columns[i].y);
                cols.particle.push(r.particle.id);
                cols.site.push(match r.columns.sites[k] {
                    Site::Interior => 0,
                    Site::Surface => 1,
                    Site::Edge => 2,
                });
                cols.atoms.push(r.atoms.get(k).copied().unwrap_or(0));
                cols.cross_section.push(r.cross_sections[k]);
                cols.kind.push(match r.ordering.kind[k] {
                    Kind::PtRich => 0,
                    Kind::MRich => 1,
                    Kind::Uniform => 2,
                });
                cols.contrast.push(r.ordering.contrast[k]);
                cols.ordered.push(r.ordering.ordered[k] as u8);
                cols.misfit.push(r.defects.misfit[k] as u8);
            }
            let q = &r.particle;
            let count = |s: Site| r.columns.sites.iter().filter(|&&v| v == s).count();
            ParticleReply {
                id: q.id,
                area_px: q.area,
                diameter_px: q.equivalent_diameter,
                aspect_ratio: q.aspect_ratio,
                touches_border: q.touches_border,
                outline: q.outline.iter().flat_map(|p| [p[0], p[1]]).collect(),
                facets: r.columns.facets.clone(),
                columns: r.columns.columns.len(),
                surface: count(Site::Surface),
                edge: count(Site::Edge),
                atoms: r.atoms.iter().map(|&n| n as u64).sum(),
                ordered_fraction: r.ordering.ordered_fraction,
                counting_error: r.counting_error.clone(),
                mixture: r.mixture.clone(),
                support_level: r.support_level,
                defects: r.defects.defects.clone(),
                regions: r.defects.regions.clone(),
                ordering_mixture: r.ordering.mixture.clone(),
            }
        })
        .collect();
    AnalysisReply {
        particles,
        columns: cols,
        spacing: a.spacing,
        total_columns: a.columns.columns.len(),
        unit: cal.unit.clone(),
        pixel_size: cal.pixel_size,
    }
}

pub(crate) fn synthetic_info(title: &str, s: &synth::Synthetic, note: String) -> SignalInfo {
    let (h, w) = s.image.data.dim();
    SignalInfo {
        title: title.into(),
        width: w,
        height: h,
        frames: 1,
        dtype: "float32",
        pixel_size: s.image.calibration.pixel_size,
        unit: s.image.calibration.unit.clone(),
        metadata: Metadata {
            format: "atomlens synthetic".into(),
            voltage_kv: Some(300.0),
            detector: Some("HAADF (simulated)".into()),
            mode: Some("STEM".into()),
            notes: vec![note],
            ..Metadata::default()
        },
    }
}

pub(crate) fn stack_of(s: synth::Synthetic) -> Result<Stack, JsError> {
    let (h, w) = s.image.data.dim();
    Stack::from_vec(w, h, 1, s.image.data.into_raw_vec_and_offset().0, s.image.calibration).map_err(err)
}

#[wasm_bindgen]
impl Session {
    /// Replace the dataset by a synthetic particle demo: `ordered` (an L1₀ PtCo-like core under a
    /// Pt shell) or `pair` (the same particle before and after cycling, two signals). Returns
    /// the signal list.
    pub fn load_particle_demo(&mut self, kind: &str) -> Result<JsValue, JsError> {
        match kind {
            "ordered" => {
                let p = NanoparticleParams {
                    size: 384,
                    diameter_nm: 4.0,
                    ordered: true,
                    support_ripple: 0.05,
                    ..Default::default()
                };
                let s = synth::nanoparticle(&p).map_err(err)?;
                let m = s.columns.iter().filter(|c| 2 * c.m_atoms > c.atoms).count();
                let info = synthetic_info(
                    "Demo: ordered PtCo particle with a Pt shell (synthetic)",
                    &s,
                    format!("{} columns, {m} Co-rich; Poisson noise; truth in core::synth", s.columns.len()),
                );
                self.replace(vec![stack_of(s)?], vec![info])
            }
            "pair" => {
                let p = IlPairParams::default();
                let pair = synth::il_pair(&p).map_err(err)?;
                let note = format!(
                    "after = before rotated {}° and shifted ({}, {}) px; {} columns dissolved, {} redeposited",
                    p.rotation_deg,
                    p.shift[0],
                    p.shift[1],
                    pair.lost.len(),
                    pair.new.len()
                );
                let ib =
                    synthetic_info("Before cycling (synthetic identical-location pair)", &pair.before, note.clone());
                let ia = synthetic_info("After cycling (synthetic identical-location pair)", &pair.after, note);
                self.replace(vec![stack_of(pair.before)?, stack_of(pair.after)?], vec![ib, ia])
            }
            other => Err(JsError::new(&format!("unknown particle demo {other:?} (ordered or pair)"))),
        }
    }

    /// Particles of the shown image: segmentation, surface columns, facets, cross-sections,
    /// counts and ordering. Columns fitted (or edited) in the Columns panel on this image are
    /// reused; otherwise they are found and fitted with `params.columns`.
    pub fn analyse_particles(&mut self, params: JsValue) -> Result<JsValue, JsError> {
        let pp: PageParams = serde_wasm_bindgen::from_value(params).map_err(err)?;
        let mut p = pp.analysis();
        let img = self.image()?;
        let a = match &self.columns {
            Some((r, cp)) if r.columns.len() >= 3 => {
                p.columns = cp.clone();
                analyse_columns(img.view(), r.clone(), &p)
            }
            _ => analyse(img.view(), &p),
        }
        .map_err(err)?;
        let cal = img.calibration.clone();
        let out = to_js(&reply(&a, &cal))?;
        self.particles = Some(Particles { analysis: a, params: p, calibration: cal });
        Ok(out)
    }

    /// The particle chain on the shown image, summarised for a batch row: `{particles, columns,
    /// mean_diameter, diameters, unit, atoms, ordered_fraction}` (diameters in the image's unit).
    pub fn batch_summary(&mut self, params: JsValue) -> Result<JsValue, JsError> {
        self.analyse_particles(params)?;
        let r = self.particles.as_ref().ok_or_else(|| JsError::new("no analysis"))?;
        let (t, cal) = (r.analysis.totals(), &r.calibration);
        let diameters: Vec<f64> = t.diameters.iter().map(|d| d * cal.pixel_size).collect();
        to_js(&serde_json::json!({
            "particles": t.particles,
            "columns": t.columns,
            "mean_diameter": diameters.iter().sum::<f64>() / diameters.len().max(1) as f64,
            "diameters": diameters,
            "unit": cal.unit,
            "atoms": t.atoms,
            "ordered_fraction": t.ordered_fraction,
        }))
    }

    /// The counted columns stacked about the mid-plane: `[x, y, z, …]` in Å (nm images) or px,
    /// for the 3-D view.
    pub fn particle_model(&self, beam_step_nm: f64) -> Result<Vec<f32>, JsError> {
        let r = self.particles.as_ref().ok_or_else(|| JsError::new("analyse the particles first"))?;
        let (scale, step) = if r.calibration.unit == "nm" {
            (r.calibration.pixel_size * 10.0, beam_step_nm * 10.0)
        } else {
            (1.0, beam_step_nm / r.calibration.pixel_size)
        };
        let (pts, atoms) = r.analysis.counted_columns();
        let model = atomlens_core::particles::counting::stack_atoms(&pts, &atoms, scale, step);
        Ok(model.iter().flat_map(|p| [p[0] as f32, p[1] as f32, p[2] as f32]).collect())
    }

    /// An export of the particle analysis: `particles_csv`, `columns_csv`, `facets_csv`,
    /// `defects_csv`, `json` or `xyz`.
    pub fn particle_export(&self, what: &str, source: &str) -> Result<String, JsError> {
        let r = self.particles.as_ref().ok_or_else(|| JsError::new("analyse the particles first"))?;
        let (a, cal) = (&r.analysis, &r.calibration);
        Ok(match what {
            "particles_csv" => tables::particles_csv(a, cal),
            "columns_csv" => tables::particle_columns_csv(a),
            "facets_csv" => tables::facets_csv(a, cal),
            "defects_csv" => tables::defects_csv(a),
            "json" => tables::analysis_json(a, &r.params, cal, source),
            "xyz" => tables::model_xyz(a, cal, synth::PT_110_SPACING_NM, "Pt")
                .ok_or_else(|| JsError::new("no counted columns, or the image is not calibrated in nm"))?,
            other => return Err(JsError::new(&format!("unknown export {other:?}"))),
        })
    }

    /// Compare signal `before` with signal `after` (first frames): registration, kept / lost /
    /// new columns, per-facet changes. Appends "after, registered onto before" and the change
    /// map as signals. Returns `{summary, facets, columns: {x, y, status (0 kept, 1 lost, 2 new),
    /// d_atoms}, signals, registered, change}`.
    pub fn compare_signals(&mut self, before: usize, after: usize, params: JsValue) -> Result<JsValue, JsError> {
        let pp: PageParams = serde_wasm_bindgen::from_value(params).map_err(err)?;
        let image = |k: usize| -> Result<Image, JsError> {
            self.stacks.get(k).and_then(|s| s.frame(0)).ok_or_else(|| JsError::new(&format!("no signal {k}")))
        };
        let (ib, ia) = (image(before)?, image(after)?);
        if before == after {
            return Err(JsError::new("pick two different signals: the same image was chosen as before and after"));
        }
        let p = CompareParams { analysis: pp.analysis(), ..Default::default() };
        let c = atomlens_core::particles::compare::compare(&ib, &ia, &p).map_err(err)?;
        let (h, w) = ib.data.dim();
        let registered = after_in_before_frame(ia.view(), &c.transform, h, w);
        let change = change_map(&c.columns, w, h, c.before.spacing);
        let title = |s: &str| format!("{s} ({} → {})", self.infos[before].title, self.infos[after].title);
        let info = |t: String, note: &str| SignalInfo {
            title: t,
            metadata: Metadata {
                format: "atomlens comparison".into(),
                notes: vec![note.into()],
                ..Metadata::default()
            },
            ..self.infos[before].clone()
        };
        let ri =
            info(title("After, registered onto before"), "the after image resampled into the before image's frame");
        let ci = info(title("Change in atoms"), "atoms after − before per px², Gaussian of one column spacing");
        let reg = self.append(registered, ib.calibration.clone(), ri)?;
        let chg = self.append(change, ib.calibration.clone(), ci)?;
        #[derive(Serialize, Default)]
        struct Cols {
            x: Vec<f64>,
            y: Vec<f64>,
            status: Vec<u8>,
            d_atoms: Vec<i64>,
        }
        let mut cols = Cols::default();
        for k in &c.columns {
            cols.x.push(k.x);
            cols.y.push(k.y);
            cols.status.push(match k.status {
                Status::Kept => 0,
                Status::Lost => 1,
                Status::New => 2,
            });
            cols.d_atoms.push(k.atoms_after as i64 - k.atoms_before as i64);
        }
        let out = self.signals_reply(reg)?;
        let set = |k: &str, v: JsValue| js_sys::Reflect::set(&out, &k.into(), &v).map(|_| ());
        set("summary", to_js(&c.summary)?).map_err(js)?;
        set("facets", to_js(&c.facets)?).map_err(js)?;
        set("columns", to_js(&cols)?).map_err(js)?;
        set("registered", reg.into()).map_err(js)?;
        set("change", chg.into()).map_err(js)?;
        self.compared = Some(Compared { comparison: c, calibration: ib.calibration });
        Ok(out.into())
    }

    /// An export of the comparison: `columns_csv`, `facets_csv` or `summary_json`.
    pub fn compare_export(&self, what: &str, before: &str, after: &str) -> Result<String, JsError> {
        let r = self.compared.as_ref().ok_or_else(|| JsError::new("compare two images first"))?;
        Ok(match what {
            "columns_csv" => tables::compare_columns_csv(&r.comparison),
            "facets_csv" => tables::compare_facets_csv(&r.comparison, &r.calibration),
            "summary_json" => tables::compare_summary_json(&r.comparison, &r.calibration, before, after),
            other => return Err(JsError::new(&format!("unknown export {other:?}"))),
        })
    }
}
