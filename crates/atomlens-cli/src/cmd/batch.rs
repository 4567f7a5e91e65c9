//! `atomlens batch`: one recipe (`core::Recipe`) over every image of a folder, images in
//! parallel, a summary table and the tables of each image in its own folder.
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use atomlens_core::particles::chain::Analysis;
use atomlens_core::recipe::Offload;
use atomlens_core::{Calibration, Recipe};
use atomlens_io::tables::{BatchRow, batch_csv};

use super::particles::write_particles;
use crate::files::{is_image, load_image, out_dir, stem, write};

#[derive(clap::Args)]
pub struct BatchArgs {
    /// Folder of images (every readable image file in it).
    dir: PathBuf,
    /// Recipe JSON: `{"denoise": {"method": "gaussian", "sigma": 1.0} | null, "analysis": {…}}`;
    /// missing keys take their defaults.
    #[arg(long)]
    recipe: Option<PathBuf>,
    /// Folder for summary.csv and one sub-folder of tables per image.
    #[arg(long)]
    out: PathBuf,
    /// Column fits and non-local means on the GPU (the adapter wgpu finds; self-checked, the CPU
    /// with a note when it fails).
    #[arg(long)]
    gpu: bool,
}

pub fn batch(a: BatchArgs) -> Result<()> {
    let recipe = match &a.recipe {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            Recipe::from_json(&text).with_context(|| format!("{} is not a valid recipe", path.display()))?
        }
        None => Recipe::default(),
    };
    let off: Box<dyn Offload> =
        if a.gpu { Box::new(crate::gpu::GpuOffload::open()?) } else { Box::new(atomlens_core::recipe::OnCpu) };
    run_batch(&a.dir, &recipe, &a.out, &*off).map(|_| ())
}

/// Analyse every image of `dir` with `recipe` into `out` (work offered to `off` first); returns
/// (images analysed, images, seconds).
pub fn run_batch(dir: &Path, recipe: &Recipe, out: &Path, off: &dyn Offload) -> Result<(usize, usize, f64)> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_image(p))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("{} holds no image files (dm3, dm4, ser, emd, mrc, tif, png, jpg)", dir.display());
    }
    out_dir(out)?;
    write(out, "recipe.json", recipe.to_json())?;
    let t_all = Instant::now();
    let n = files.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    // Images in parallel (each analysis is parallel inside too; two images keep both cores busy
    // through the serial parts). Rows keep the folder's order.
    use rayon::prelude::*;
    let rows: Vec<BatchRow> = files
        .par_iter()
        .map(|f| {
            let t = Instant::now();
            let file = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let result = run_one(f, recipe, &out.join(stem(f)), off);
            let seconds = t.elapsed().as_secs_f64();
            let k = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            match result {
                Ok((r, calibration)) => {
                    let t = r.totals();
                    eprintln!(
                        "[{k}/{n}] {file}: {} particle(s), {} columns, {} atoms ({seconds:.2} s)",
                        t.particles, t.columns, t.atoms
                    );
                    BatchRow { file, totals: Some(t), calibration, seconds, error: None }
                }
                Err(e) => {
                    eprintln!("[{k}/{n}] {file}: {e:#}");
                    let calibration = Calibration::uncalibrated();
                    BatchRow { file, totals: None, calibration, seconds, error: Some(format!("{e:#}")) }
                }
            }
        })
        .collect();
    let ok = rows.iter().filter(|r| r.totals.is_some()).count();
    write(out, "summary.csv", batch_csv(&rows))?;
    let secs = t_all.elapsed().as_secs_f64();
    eprintln!(
        "{ok} of {n} images analysed in {secs:.1} s ({:.2} images/s); summary.csv in {}",
        n as f64 / secs,
        out.display()
    );
    if ok == 0 {
        bail!("no image could be analysed (see summary.csv)");
    }
    Ok((ok, n, secs))
}

fn run_one(path: &Path, recipe: &Recipe, dir: &Path, off: &dyn Offload) -> Result<(Analysis, Calibration)> {
    let out = recipe.run_with(&load_image(path)?, off)?;
    out_dir(dir)?;
    write_particles(dir, &out.analysis, recipe, &out.image, &path.display().to_string())?;
    if let (Some(g), Some(strain)) = (&out.strain, &recipe.strain) {
        super::gpa::write_maps(&dir.join("strain"), g, strain, &out.image.calibration, &path.display().to_string())?;
    }
    Ok((out.analysis, out.image.calibration))
}
