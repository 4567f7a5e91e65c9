//! `atomlens bench …`: atomlens and a peer side by side on the same data, in one run. Speed is a
//! ratio measured here and now (the machines are noisy); accuracy is against exact truth where
//! there is one. Needs `../shared` (images, truth, the peers' parameters); the peers run in a
//! venv under `target/peer-venv` that these commands create.
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde_json::Value;

mod batch;
mod columns;
mod denoise;
mod gpa;
mod gpu;
mod tomo;

#[derive(clap::Args)]
pub struct Args {
    /// What to benchmark.
    #[arg(value_enum)]
    what: What,
    /// The shared folder (images, truth, peer parameters).
    #[arg(long, default_value = "../shared")]
    shared: PathBuf,
    /// Skip the 1024² MoS2 image (Atomap takes about a minute on it).
    #[arg(long)]
    quick: bool,
    /// Do not run the peer (atomlens only).
    #[arg(long)]
    no_peer: bool,
    /// Repetitions of the atomlens refinement, before and again after the peer (median of all).
    #[arg(long, default_value_t = 5)]
    repeat: usize,
    /// `gpu`: the full sizes (30 276 columns, a 2048² image, 256³ from 141 tilts), for a real GPU.
    #[arg(long)]
    big: bool,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum What {
    /// Column finding and fitting against Atomap.
    Columns,
    /// Geometric phase analysis against kemstem.
    Gpa,
    /// Non-local means and BM3D against scikit-image and the bm3d package.
    Denoise,
    /// Tomographic reconstruction against scikit-image and astra-toolbox (CPU).
    Tomo,
    /// The particle chain over 50 synthetic 1024² images (no peer has it: images per second).
    Batch,
    /// Each GPU kernel against its CPU twin (threads) in one run, with the adapter named.
    Gpu,
}

pub fn run(a: Args) -> Result<()> {
    if !matches!(a.what, What::Gpu) && !a.shared.join("data").is_dir() {
        bail!(
            "{} not found: the benchmark needs ../shared (images, truth and Atomap's parameters)",
            a.shared.display()
        );
    }
    match a.what {
        What::Gpa => gpa::run(&a.shared, a.quick, a.no_peer, a.repeat),
        What::Denoise => denoise::run(&a.shared, a.no_peer, a.repeat),
        What::Tomo => tomo::run(&a.shared, a.no_peer),
        What::Batch => batch::run(50, 1024),
        What::Columns => columns::run(&a.shared, a.quick, a.no_peer, a.repeat),
        What::Gpu => gpu::run(a.big),
    }
}

fn load(shared: &Path, rel: &str) -> Result<atomlens_core::Image> {
    crate::files::load_image(&shared.join(rel))
}

/// Install `package` into the peer venv when `module` cannot be imported (peers beyond the shared
/// requirements, e.g. `bm3d`).
pub fn ensure_module(python: &Path, module: &str, package: &str) -> Result<()> {
    if Command::new(python).args(["-c", &format!("import {module}")]).output()?.status.success() {
        return Ok(());
    }
    eprintln!("installing {package} into the peer venv (pip, once)…");
    if !Command::new(python).args(["-m", "pip", "install", "-q", package]).status()?.success() {
        bail!("could not install the {package} peer (pip install {package})");
    }
    Ok(())
}

/// Rows of `x_px,y_px,sigma_x,sigma_y,…` (header skipped).
pub fn read_truth(path: &Path) -> Result<Vec<[f64; 4]>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Vec<f64> = l.split(',').take(4).map(|x| x.trim().parse::<f64>()).collect::<Result<_, _>>()?;
            Ok([v[0], v[1], v[2], v[3]])
        })
        .collect()
}

/// The peers' Python (`target/peer-venv`, created from ../shared's requirements once).
pub fn peer_python(shared: &Path) -> Result<PathBuf> {
    let venv = Path::new("target/peer-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        eprintln!("creating {} with the peers (Atomap, kemstem, scikit-image; pip, once)…", venv.display());
        let ok = Command::new("python3").args(["-m", "venv"]).arg(venv).status()?.success()
            && Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "-r"])
                .arg(shared.join("reference/scripts/requirements.txt"))
                .status()?
                .success();
        if !ok {
            bail!("could not install the peers (pip install -r ../shared/reference/scripts/requirements.txt)");
        }
    }
    Ok(python)
}

/// Run a peer script and collect the JSON object it prints per image (one per line).
pub fn peer_rows(cmd: &mut Command, peer: &str, images: usize) -> Result<Vec<Value>> {
    eprintln!("running {peer} on {images} images…");
    let out = cmd.output().with_context(|| format!("running the {peer} peer"))?;
    if !out.status.success() {
        bail!("the {peer} peer failed: {}", String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or(""));
    }
    Ok(String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
}

/// The median (sorts `v`).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}
