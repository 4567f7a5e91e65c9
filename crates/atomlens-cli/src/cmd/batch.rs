//! `atomlens batch`: one recipe (`core::Recipe`) over every image of a folder, images in
//! parallel, a summary table and the tables of each image in its own folder; `--shard I/N` does
//! every N-th image (a Slurm array task), and `atomlens merge` joins the shards into the folder
//! one run would have written.
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use atomlens_core::particles::chain::Analysis;
use atomlens_core::recipe::Offload;
use atomlens_core::{Calibration, Recipe};
use atomlens_io::tables::{BATCH_HEADER, BatchRow, TIMINGS_HEADER, batch_csv, timings_csv};
use serde::{Deserialize, Serialize};

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
    /// Only every N-th image, starting at the I-th (I from 0 to N−1), in the folder's sorted
    /// order: one task of a Slurm array (`--array=0-9` and `--shard $SLURM_ARRAY_TASK_ID/10`);
    /// `atomlens merge` joins the shards' folders.
    #[arg(long, value_parser = shard_arg)]
    shard: Option<Shard>,
    /// Column fits and non-local means on the GPU (the adapter wgpu finds; self-checked, the CPU
    /// with a note when it fails).
    #[arg(long)]
    gpu: bool,
}

/// One task's part of a batch: images `index`, `index + of`, `index + 2·of`… of the sorted folder.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Shard {
    pub index: usize,
    pub of: usize,
}

fn shard_arg(s: &str) -> Result<Shard, String> {
    let (i, n) = s.split_once('/').ok_or_else(|| format!("{s}: expected I/N, e.g. 0/10"))?;
    let (index, of) = (i.trim().parse::<usize>(), n.trim().parse::<usize>());
    match (index, of) {
        (Ok(index), Ok(of)) if of > 0 && index < of => Ok(Shard { index, of }),
        _ => Err(format!("{s}: expected I/N with N ≥ 1 and I from 0 to N−1")),
    }
}

/// What a shard did, written as `shard.json` for `merge`: the whole folder's images (the order of
/// a single run's summary) and the shard's place.
#[derive(Debug, Serialize, Deserialize)]
struct ShardRecord {
    shard: Shard,
    all_files: Vec<String>,
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
    run_batch_shard(&a.dir, &recipe, &a.out, &*off, a.shard).map(|_| ())
}

/// The image files of `dir`, sorted (the order of every summary).
pub fn image_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && is_image(p))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("{} holds no image files (dm3, dm4, ser, emd, mrc, tif, png, jpg)", dir.display());
    }
    Ok(files)
}

fn file_name(p: &Path) -> String {
    p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Analyse every image of `dir` with `recipe` into `out` (work offered to `off` first); returns
/// (images analysed, images, seconds).
pub fn run_batch(dir: &Path, recipe: &Recipe, out: &Path, off: &dyn Offload) -> Result<(usize, usize, f64)> {
    run_batch_shard(dir, recipe, out, off, None)
}

/// [`run_batch`] of one shard's images (all of them without one).
pub fn run_batch_shard(
    dir: &Path,
    recipe: &Recipe,
    out: &Path,
    off: &dyn Offload,
    shard: Option<Shard>,
) -> Result<(usize, usize, f64)> {
    let all = image_files(dir)?;
    let files: Vec<PathBuf> = match shard {
        Some(s) => all.iter().skip(s.index).step_by(s.of).cloned().collect(),
        None => all.clone(),
    };
    out_dir(out)?;
    write(out, "recipe.json", recipe.to_json())?;
    if let Some(shard) = shard {
        let record = ShardRecord { shard, all_files: all.iter().map(|p| file_name(p)).collect() };
        write(out, "shard.json", serde_json::to_string_pretty(&record)?)?;
        eprintln!("shard {}/{}: {} of {} images", shard.index, shard.of, files.len(), all.len());
    }
    let t_all = Instant::now();
    let n = files.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    // Images in parallel (each analysis is parallel inside too; two images keep both cores busy
    // through the serial parts). Rows keep the folder's order.
    use rayon::prelude::*;
    let rows: Vec<BatchRow> = files
        .par_iter()
        .map(|f| {
            let row = analyse_file(f, recipe, Some(&out.join(stem(f))), off);
            let k = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            match (&row.totals, &row.error) {
                (Some(t), _) => eprintln!(
                    "[{k}/{n}] {}: {} particle(s), {} columns, {} atoms ({:.2} s)",
                    row.file, t.particles, t.columns, t.atoms, row.seconds
                ),
                (None, e) => eprintln!("[{k}/{n}] {}: {}", row.file, e.as_deref().unwrap_or_default()),
            }
            row
        })
        .collect();
    let ok = rows.iter().filter(|r| r.totals.is_some()).count();
    write(out, "summary.csv", batch_csv(&rows))?;
    write(out, "timings.csv", timings_csv(&rows))?;
    let secs = t_all.elapsed().as_secs_f64();
    eprintln!(
        "{ok} of {n} images analysed in {secs:.1} s ({:.2} images/s); summary.csv in {}",
        n as f64 / secs,
        out.display()
    );
    // A shard whose images all fail is still a finished task (the merge decides), so that an
    // array's `afterok` dependency lets the merge run.
    match shard {
        None if ok == 0 => bail!("no image could be analysed (see summary.csv)"),
        Some(_) if ok == 0 && n > 0 => eprintln!("warning: no image of this shard could be analysed"),
        _ => {}
    }
    Ok((ok, n, secs))
}

#[derive(clap::Args)]
pub struct MergeArgs {
    /// The shards' output folders (each written by `batch --shard I/N`), in any order.
    #[arg(required = true)]
    shards: Vec<PathBuf>,
    /// Folder for the merged summary.csv, timings.csv, recipe.json and each image's tables.
    #[arg(long)]
    out: PathBuf,
}

/// Join the shards of one batch into the folder a single run writes: the same summary (byte
/// for byte), timings, recipe and per-image folders. Refuses shards of different recipes or
/// folders, a shard given twice, and a missing shard (naming it).
pub fn merge(a: MergeArgs) -> Result<()> {
    let read = |d: &Path, f: &str| {
        std::fs::read_to_string(d.join(f)).with_context(|| format!("reading {}", d.join(f).display()))
    };
    let mut records = Vec::new();
    for d in &a.shards {
        let text =
            read(d, "shard.json").with_context(|| format!("{} is not a shard of `batch --shard`", d.display()))?;
        let r: ShardRecord = serde_json::from_str(&text).with_context(|| format!("{}/shard.json", d.display()))?;
        records.push(r);
    }
    let (first, recipe) = (&records[0], read(&a.shards[0], "recipe.json")?);
    let of = first.shard.of;
    let mut seen = vec![None; of];
    for (d, r) in a.shards.iter().zip(&records) {
        if r.shard.of != of || r.all_files != first.all_files {
            bail!(
                "{} is a shard of another batch ({} shards of {} images; {} has {} of {})",
                d.display(),
                r.shard.of,
                r.all_files.len(),
                a.shards[0].display(),
                of,
                first.all_files.len()
            );
        }
        if read(d, "recipe.json")? != recipe {
            bail!("{} ran another recipe than {}", d.display(), a.shards[0].display());
        }
        if let Some(other) = seen[r.shard.index].replace(d) {
            bail!("shard {}/{of} is given twice: {} and {}", r.shard.index, other.display(), d.display());
        }
    }
    let missing: Vec<String> = (0..of).filter(|&i| seen[i].is_none()).map(|i| format!("{i}/{of}")).collect();
    if !missing.is_empty() {
        bail!("missing shard(s) {} (each of 0/{of} … {}/{of} is needed)", missing.join(", "), of - 1);
    }
    // Each image's rows, found by file name in the shard that ran it.
    let mut summary = std::collections::HashMap::new();
    let mut timings = std::collections::HashMap::new();
    for d in &a.shards {
        for (table, into) in [("summary.csv", &mut summary), ("timings.csv", &mut timings)] {
            for line in read(d, table)?.lines().skip(1) {
                let file = line.split(',').next().unwrap_or_default().to_string();
                into.insert(file, (line.to_string(), d.clone()));
            }
        }
    }
    out_dir(&a.out)?;
    let (mut s, mut t) = (format!("{BATCH_HEADER}\n"), format!("{TIMINGS_HEADER}\n"));
    for f in &first.all_files {
        let Some((line, dir)) = summary.get(f) else {
            bail!("no shard has a row for {f}: was its shard's summary.csv cut short?");
        };
        s.push_str(line);
        s.push('\n');
        if let Some((line, _)) = timings.get(f) {
            t.push_str(line);
            t.push('\n');
        }
        let tables = dir.join(stem(Path::new(f)));
        if tables.is_dir() {
            copy_dir(&tables, &a.out.join(stem(Path::new(f))))?;
        }
    }
    // A row that failed ends in its quoted message; an analysed one in an empty error field.
    let ok = s.lines().skip(1).filter(|l| l.ends_with(',')).count();
    write(&a.out, "summary.csv", s)?;
    write(&a.out, "timings.csv", t)?;
    write(&a.out, "recipe.json", recipe)?;
    eprintln!(
        "merged {of} shards: {ok} of {} images analysed; summary.csv in {}",
        first.all_files.len(),
        a.out.display()
    );
    if ok == 0 {
        bail!("no image could be analysed (see summary.csv)");
    }
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    out_dir(to)?;
    for e in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
        let e = e?;
        let target = to.join(e.file_name());
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &target)?;
        } else {
            std::fs::copy(e.path(), &target).with_context(|| format!("copying to {}", target.display()))?;
        }
    }
    Ok(())
}

/// One image of a batch: its summary row (a failure is a row with its message), its tables
/// written into `dir` when given.
pub fn analyse_file(path: &Path, recipe: &Recipe, dir: Option<&Path>, off: &dyn Offload) -> BatchRow {
    let t = Instant::now();
    let result = run_one(path, recipe, dir, off);
    let (file, seconds) = (file_name(path), t.elapsed().as_secs_f64());
    match result {
        Ok((r, calibration)) => BatchRow { file, totals: Some(r.totals()), calibration, seconds, error: None },
        Err(e) => failed(file, format!("{e:#}"), seconds),
    }
}

/// The row of an image that could not be analysed.
pub fn failed(file: String, error: String, seconds: f64) -> BatchRow {
    BatchRow { file, totals: None, calibration: Calibration::uncalibrated(), seconds, error: Some(error) }
}

fn run_one(path: &Path, recipe: &Recipe, dir: Option<&Path>, off: &dyn Offload) -> Result<(Analysis, Calibration)> {
    let out = recipe.run_with(&load_image(path)?, off)?;
    let Some(dir) = dir else { return Ok((out.analysis, out.image.calibration)) };
    out_dir(dir)?;
    write_particles(dir, &out.analysis, recipe, &out.image, &path.display().to_string())?;
    if let (Some(g), Some(strain)) = (&out.strain, &recipe.strain) {
        super::gpa::write_maps(&dir.join("strain"), g, strain, &out.image.calibration, &path.display().to_string())?;
    }
    Ok((out.analysis, out.image.calibration))
}
