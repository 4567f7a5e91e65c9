//! `atomlens count`: atoms per column of every particle, the counting mixture, and a 3-D model.
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Result, bail};
use atomlens_core::Recipe;
use atomlens_core::particles::chain::analyse;
use atomlens_io::tables;

use super::particles::{Common, report};
use crate::files::{load_image, out_dir, write};

#[derive(clap::Args)]
pub struct CountArgs {
    /// The image (first signal, first frame).
    image: PathBuf,
    #[command(flatten)]
    common: Common,
    // (The help is an attribute: rustdoc would read "[110]" as a link.)
    #[arg(long, default_value_t = atomlens_core::synth::PT_110_SPACING_NM,
          help = "Atom spacing along the beam for the 3-D model, nm (Pt [110]: 0.2775)")]
    beam_step: f64,
    /// Element written into model.xyz.
    #[arg(long, default_value = "Pt")]
    element: String,
    /// Folder for counts.csv, model.xyz and counting.json.
    #[arg(long)]
    out: PathBuf,
}

pub fn count(a: CountArgs) -> Result<()> {
    if !(a.beam_step.is_finite() && a.beam_step > 0.0) {
        bail!("--beam-step must be a positive length in nm");
    }
    let img = load_image(&a.image)?;
    let p = a.common.params()?;
    let t = Instant::now();
    let r = analyse(img.view(), &p)?;
    report(&r, &img.calibration, t.elapsed().as_secs_f64());
    if r.particles.iter().all(|q| q.atoms.is_empty()) {
        let why: Vec<String> = r.particles.iter().filter_map(|q| q.counting_error.clone()).collect();
        bail!("no particle could be counted: {}", why.join("; "));
    }
    out_dir(&a.out)?;
    write(&a.out, "counts.csv", tables::particle_columns_csv(&r))?;
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
    write(
        &a.out,
        "counting.json",
        serde_json::to_string_pretty(&serde_json::json!({ "parameters": p, "particles": mixtures }))?,
    )?;
    let model = match tables::model_xyz(&r, &img.calibration, a.beam_step, &a.element) {
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
