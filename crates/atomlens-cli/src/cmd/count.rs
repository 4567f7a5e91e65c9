//! `atomlens count`: atoms per column of every particle, the counting mixture, and a 3-D model.
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use atomlens_core::particles::chain::{Analysis, AnalysisParams, analyse};
use atomlens_core::synth::PT_110_SPACING_NM;
use atomlens_core::{Calibration, Recipe};
use atomlens_io::tables;

use super::particles::{Common, report};
use crate::files::{load_image, out_dir, write};

#[derive(clap::Args)]
pub struct CountArgs {
    /// The image (first signal, first frame).
    image: PathBuf,
    #[command(flatten)]
    common: Common,
    #[command(flatten)]
    model: Model,
    /// Folder for counts.csv, model.xyz and counting.json.
    #[arg(long)]
    out: PathBuf,
}

/// The 3-D model's options; also read from JSON by name (the Python package).
#[derive(clap::Args, serde::Deserialize, serde::Serialize)]
pub struct Model {
    // (The help is an attribute: rustdoc would read "[110]" as a link.)
    #[arg(long, default_value_t = PT_110_SPACING_NM,
          help = "Atom spacing along the beam for the 3-D model, nm (Pt [110]: 0.2775)")]
    #[serde(default = "beam_step")]
    pub beam_step: f64,
    /// Element written into model.xyz.
    #[arg(long, default_value = ELEMENT)]
    #[serde(default = "element")]
    pub element: String,
}

const ELEMENT: &str = "Pt";

fn beam_step() -> f64 {
    PT_110_SPACING_NM
}

fn element() -> String {
    ELEMENT.into()
}

impl Model {
    /// Refuse a beam step that is not a positive length (before the analysis runs).
    pub fn check(&self) -> Result<()> {
        if !(self.beam_step.is_finite() && self.beam_step > 0.0) {
            bail!("--beam-step must be a positive length in nm");
        }
        Ok(())
    }

    /// The model as XYZ text (`None`: the image is not calibrated in nm).
    pub fn xyz(&self, r: &Analysis, cal: &Calibration) -> Result<Option<String>> {
        self.check()?;
        Ok(tables::model_xyz(r, cal, self.beam_step, &self.element))
    }
}

/// What `count` writes besides the model: the counts table and `counting.json`.
pub fn counting_json(r: &Analysis, p: &AnalysisParams) -> Result<String> {
    let mixtures: Vec<_> = r
        .particles
        .iter()
        .map(|q| {
            let (atoms, atoms_sd) = q.atom_total().map_or((None, None), |(n, sd)| (Some(n), Some(sd)));
            serde_json::json!({
                "particle": q.particle.id, "atoms": atoms, "atoms_sd": atoms_sd, "mixture": q.mixture,
                "error": q.counting_error, "note": q.counting_note(), "warning": q.counting_warning(),
                "ordered_fraction": q.ordering.ordered_fraction, "ordered_fraction_sd": q.ordering.ordered_fraction_sd,
                "ordered_domains": q.ordering.domains,
            })
        })
        .collect();
    Ok(serde_json::to_string_pretty(&serde_json::json!({ "parameters": p, "particles": mixtures }))?)
}

/// Refuse a run in which no particle could be counted, with each particle's reason.
pub fn check_counted(r: &Analysis) -> Result<()> {
    if r.particles.iter().all(|q| q.atoms.is_empty()) {
        let why: Vec<String> = r.particles.iter().filter_map(|q| q.counting_error.clone()).collect();
        bail!("no particle could be counted: {}", why.join("; "));
    }
    Ok(())
}

pub fn count(a: CountArgs) -> Result<()> {
    a.model.check()?;
    let img = load_image(&a.image)?;
    let p = a.common.params()?;
    let t = Instant::now();
    let r = analyse(img.view(), &p)?;
    report(&r, &img.calibration, t.elapsed().as_secs_f64());
    check_counted(&r)?;
    out_dir(&a.out)?;
    write(&a.out, "counts.csv", tables::particle_columns_csv(&r))?;
    write(&a.out, "counting.json", counting_json(&r, &p)?)?;
    let model = match a.model.xyz(&r, &img.calibration)? {
        Some(m) => {
            write(&a.out, "model.xyz", m)?;
            " model.xyz,"
        }
        None => {
            eprintln!("no model.xyz: the image is not calibrated in nm");
            ""
        }
    };
    write(&a.out, "recipe.json", Recipe { analysis: p, ..Default::default() }.to_json())?;
    eprintln!("wrote counts.csv, counting.json,{model} recipe.json to {}", a.out.display());
    Ok(())
}
