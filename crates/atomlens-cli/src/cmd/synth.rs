//! `atomlens synth`: synthetic images with their truth (the demo particle, an ordered particle,
//! an identical-location pair).
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::files::{out_dir, write};

#[derive(clap::Args)]
pub struct SynthArgs {
    /// What to draw.
    #[arg(value_enum)]
    kind: SynthKind,
    /// Image side (px).
    #[arg(long, default_value_t = 384)]
    size: usize,
    /// Particle diameter (nm).
    #[arg(long, default_value_t = 4.0)]
    diameter: f64,
    /// Random seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Output folder (image.tif and truth.csv; a pair writes before.tif and after.tif).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum SynthKind {
    #[value(help = "A Pt particle in [110] with Poisson noise")]
    Particle,
    /// An L1₀ PtCo-like particle with a Pt shell.
    Ordered,
    /// An identical-location before/after pair.
    Pair,
}

fn truth_csv(cols: &[atomlens_core::synth::TrueColumn]) -> String {
    let mut s = String::from("x,y,atoms,m_atoms\n");
    for c in cols {
        s.push_str(&format!("{:.4},{:.4},{},{}\n", c.x, c.y, c.atoms, c.m_atoms));
    }
    s
}

fn write_synthetic(dir: &Path, name: &str, s: &atomlens_core::synth::Synthetic) -> Result<()> {
    let (h, w) = s.image.data.dim();
    let px: Vec<f32> = s.image.data.iter().copied().collect();
    write(dir, &format!("{name}.tif"), atomlens_io::formats::tiff::write_f32(w, h, &px, &s.image.calibration)?)?;
    write(dir, &format!("{name}_truth.csv"), truth_csv(&s.columns))
}

pub fn synth(a: SynthArgs) -> Result<()> {
    use atomlens_core::synth::{IlPairParams, NanoparticleParams, il_pair, nanoparticle};
    let particle = NanoparticleParams {
        size: a.size,
        diameter_nm: a.diameter,
        seed: a.seed,
        support_ripple: 0.05,
        ordered: matches!(a.kind, SynthKind::Ordered),
        ..Default::default()
    };
    out_dir(&a.out)?;
    match a.kind {
        SynthKind::Particle | SynthKind::Ordered => write_synthetic(&a.out, "image", &nanoparticle(&particle)?)?,
        SynthKind::Pair => {
            let p = IlPairParams { particle, ..Default::default() };
            let pair = il_pair(&p)?;
            write_synthetic(&a.out, "before", &pair.before)?;
            write_synthetic(&a.out, "after", &pair.after)?;
            eprintln!(
                "after = before rotated {}° about the centre and shifted ({}, {}) px; {} columns lost, {} new",
                p.rotation_deg,
                p.shift[0],
                p.shift[1],
                pair.lost.len(),
                pair.new.len()
            );
        }
    }
    eprintln!("wrote {}", a.out.display());
    Ok(())
}
