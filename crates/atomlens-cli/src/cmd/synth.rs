//! `atomlens synth`: synthetic images with their truth (the demo particle, an ordered particle,
//! an identical-location pair).
use std::path::{Path, PathBuf};

use anyhow::Result;
use atomlens_core::synth::{IlPairParams, NanoparticleParams, Synthetic, il_pair, nanoparticle};

use crate::files::{out_dir, write};

/// The options; also read from JSON by name (the Python package), where the folder is not one.
#[derive(clap::Args, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SynthArgs {
    /// What to draw.
    #[arg(value_enum)]
    kind: SynthKind,
    /// Image side (px).
    #[arg(long, default_value_t = SIZE)]
    #[serde(default = "size")]
    size: usize,
    /// Particle diameter (nm).
    #[arg(long, default_value_t = DIAMETER)]
    #[serde(default = "diameter")]
    diameter: f64,
    /// Random seed.
    #[arg(long, default_value_t = SEED)]
    #[serde(default = "seed")]
    seed: u64,
    /// Output folder (image.tif and truth.csv; a pair writes before.tif and after.tif).
    #[arg(long)]
    #[serde(skip)]
    out: PathBuf,
}

const SIZE: usize = 384;
const DIAMETER: f64 = 4.0;
const SEED: u64 = 7;

fn size() -> usize {
    SIZE
}

fn diameter() -> f64 {
    DIAMETER
}

fn seed() -> u64 {
    SEED
}

#[derive(Clone, Copy, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
enum SynthKind {
    #[value(help = "A Pt particle in [110] with Poisson noise")]
    Particle,
    /// An L1₀ PtCo-like particle with a Pt shell.
    Ordered,
    /// An identical-location before/after pair.
    Pair,
}

/// The columns' truth as CSV (`x,y` px, atoms per column, of them of the minority species).
pub fn truth_csv(cols: &[atomlens_core::synth::TrueColumn]) -> String {
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

/// Synthetic images by name (`image`, or `before` and `after`) with their truth.
pub type Named = Vec<(&'static str, Synthetic)>;

impl SynthArgs {
    /// The images with their truth, and a note on how they differ.
    pub fn make(&self) -> Result<(Named, Option<String>)> {
        let particle = NanoparticleParams {
            size: self.size,
            diameter_nm: self.diameter,
            seed: self.seed,
            support_ripple: 0.05,
            ordered: matches!(self.kind, SynthKind::Ordered),
            ..Default::default()
        };
        Ok(match self.kind {
            SynthKind::Particle | SynthKind::Ordered => (vec![("image", nanoparticle(&particle)?)], None),
            SynthKind::Pair => {
                let p = IlPairParams { particle, ..Default::default() };
                let pair = il_pair(&p)?;
                let note = format!(
                    "after = before rotated {}° about the centre and shifted ({}, {}) px; {} columns lost, {} new",
                    p.rotation_deg,
                    p.shift[0],
                    p.shift[1],
                    pair.lost.len(),
                    pair.new.len()
                );
                (vec![("before", pair.before), ("after", pair.after)], Some(note))
            }
        })
    }
}

pub fn synth(a: SynthArgs) -> Result<()> {
    let (images, note) = a.make()?;
    out_dir(&a.out)?;
    for (name, s) in &images {
        write_synthetic(&a.out, name, s)?;
    }
    if let Some(n) = note {
        eprintln!("{n}");
    }
    eprintln!("wrote {}", a.out.display());
    Ok(())
}
