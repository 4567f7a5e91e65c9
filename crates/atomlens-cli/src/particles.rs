//! `atomlens particles`, `count`, `compare` and `batch`: the nanoparticle chain
//! (`core::particle_analysis`, `core::compare`) with the tables of `io::particle_tables`.
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use atomlens_core::particles::chain::{Analysis, AnalysisParams, analyse};
use atomlens_core::particles::counting::Counting;
use atomlens_core::{Calibration, Image};
use atomlens_io::particle_tables as tables;
use serde::{Deserialize, Serialize};

/// Options shared by the particle commands.
#[derive(clap::Args, Clone)]
pub struct Common {
    /// Minimum distance between columns in px (default: from the image).
    #[arg(long)]
    separation: Option<f64>,
    /// Smoothing before the particle threshold in px (default: 1.5 column spacings).
    #[arg(long)]
    smoothing: Option<f64>,
    /// Threshold on the smoothed image (default: Otsu's).
    #[arg(long)]
    threshold: Option<f64>,
    /// Keep touching particles as one.
    #[arg(long)]
    no_split: bool,
    /// Cross-section library for counting: one value per line (or `atoms,cross_section` rows) for
    /// 1, 2, 3… atoms, in the image's units × px (default: statistical counting by GMM + ICL).
    #[arg(long)]
    library: Option<PathBuf>,
    /// Largest number of mixture components tried in statistical counting.
    #[arg(long, default_value_t = 40)]
    max_components: usize,
}

impl Common {
    fn params(&self) -> Result<AnalysisParams> {
        let mut p = AnalysisParams::default();
        p.columns.find.separation = self.separation;
        p.particles.smoothing = self.smoothing;
        p.particles.threshold = self.threshold;
        p.particles.no_split = self.no_split;
        p.counting = match &self.library {
            Some(path) => Counting::Library(read_library(path)?),
            None => Counting::Statistical { max_components: self.max_components },
        };
        Ok(p)
    }
}

#[derive(clap::Args)]
pub struct ParticlesArgs {
    /// The image (first signal, first frame).
    image: PathBuf,
    #[command(flatten)]
    common: Common,
    /// Folder for particles.csv, columns.csv, facets.csv, defects.csv, particles.json and labels.tif.
    #[arg(long)]
    out: PathBuf,
}

#[derive(clap::Args)]
pub struct CountArgs {
    /// The image (first signal, first frame).
    image: PathBuf,
    #[command(flatten)]
    common: Common,
    /// Atom spacing along the beam for the 3-D model, nm (Pt [110]: 0.2775).
    #[arg(long, default_value_t = atomlens_core::synth::PT_110_SPACING_NM)]
    beam_step: f64,
    /// Element written into model.xyz.
    #[arg(long, default_value = "Pt")]
    element: String,
    /// Folder for counts.csv, model.xyz and counting.json.
    #[arg(long)]
    out: PathBuf,
}

#[derive(clap::Args)]
pub struct CompareArgs {
    /// The image before cycling.
    before: PathBuf,
    /// The image of the same area after cycling.
    after: PathBuf,
    #[command(flatten)]
    common: Common,
    /// Folder for columns.csv (kept/lost/new), facets.csv, summary.json and change.tif.
    #[arg(long)]
    out: PathBuf,
}

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
}

/// Everything a batch run does to each image.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Recipe {
    /// Clean-up before the analysis.
    pub denoise: Option<atomlens_core::denoise::Method>,
    /// The analysis.
    pub analysis: AnalysisParams,
}

fn read_library(path: &Path) -> Result<Vec<f64>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut values = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.chars().next().is_some_and(|c| c.is_alphabetic()) {
            continue;
        }
        let last = line.split([',', ' ', '\t']).rfind(|t| !t.is_empty()).unwrap_or("");
        let v: f64 = last.parse().with_context(|| format!("{}:{}: {last:?} is not a number", path.display(), n + 1))?;
        values.push(v);
    }
    if values.is_empty() {
        bail!("{} holds no cross-sections", path.display());
    }
    Ok(values)
}

fn load_image(path: &Path) -> Result<Image> {
    let signals = crate::load(path)?;
    Ok(signals[0].frame(0)?)
}

fn write(dir: &Path, name: &str, text: impl AsRef<[u8]>) -> Result<()> {
    let p = dir.join(name);
    std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))
}

fn out_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

fn report(a: &Analysis, cal: &Calibration, secs: f64) {
    let u = &cal.unit;
    eprintln!(
        "{} columns, {} particle(s) in {secs:.2} s; column spacing {:.2} px",
        a.columns.columns.len(),
        a.particles.len(),
        a.spacing
    );
    for r in &a.particles {
        let q = &r.particle;
        let atoms: u64 = r.atoms.iter().map(|&n| n as u64).sum();
        eprintln!(
            "  particle {}: {:.3} {u} across (equivalent), aspect {:.2}, {} columns, {} facets{}{}{}",
            q.id,
            q.equivalent_diameter * cal.pixel_size,
            q.aspect_ratio,
            r.columns.columns.len(),
            r.columns.facets.len(),
            if atoms > 0 { format!(", {atoms} atoms") } else { String::new() },
            if r.ordering.ordered_fraction > 0.0 {
                format!(", ordered fraction {:.2}", r.ordering.ordered_fraction)
            } else {
                String::new()
            },
            if q.touches_border { " (touches the border: size and surface are cut)" } else { "" }
        );
        if let Some(e) = &r.counting_error {
            eprintln!("    not counted: {e}");
        }
        let d = &r.defects;
        let kind = |k| d.defects.iter().filter(|x| x.kind == k).count();
        let misfit = d.misfit.iter().filter(|&&m| m).count();
        if !d.defects.is_empty() || misfit > 0 {
            let region = |k| d.regions.iter().filter(|g| g.kind == k).count();
            eprintln!(
                "    defects: {} missing, {} extra columns; {misfit} columns off the lattice: {} stacking fault(s), {} twin domain(s)",
                kind(atomlens_core::particles::defects::DefectKind::Missing),
                kind(atomlens_core::particles::defects::DefectKind::Extra),
                region(atomlens_core::particles::defects::RegionKind::StackingFault),
                region(atomlens_core::particles::defects::RegionKind::Twin)
            );
        }
    }
}

fn write_particles(dir: &Path, a: &Analysis, p: &AnalysisParams, img: &Image, source: &str) -> Result<()> {
    let cal = &img.calibration;
    write(dir, "particles.csv", tables::particles_csv(a, cal))?;
    write(dir, "columns.csv", tables::particle_columns_csv(a))?;
    write(dir, "facets.csv", tables::facets_csv(a, cal))?;
    write(dir, "defects.csv", tables::defects_csv(a))?;
    write(dir, "particles.json", tables::analysis_json(a, p, cal, source))?;
    let (h, w) = a.segmentation.labels.dim();
    let labels: Vec<f32> = a.segmentation.labels.iter().map(|&l| l as f32).collect();
    write(dir, "labels.tif", atomlens_io::tiff_io::write_f32(w, h, &labels, cal)?)
}

pub fn particles(a: ParticlesArgs) -> Result<()> {
    let img = load_image(&a.image)?;
    let p = a.common.params()?;
    let t = Instant::now();
    let r = analyse(img.view(), &p)?;
    report(&r, &img.calibration, t.elapsed().as_secs_f64());
    out_dir(&a.out)?;
    write_particles(&a.out, &r, &p, &img, &a.image.display().to_string())?;
    eprintln!(
        "wrote particles.csv, columns.csv, facets.csv, defects.csv, particles.json, labels.tif to {}",
        a.out.display()
    );
    Ok(())
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
        .map(|q| serde_json::json!({"particle": q.particle.id, "mixture": q.mixture, "error": q.counting_error}))
        .collect();
    write(
        &a.out,
        "counting.json",
        serde_json::to_string_pretty(&serde_json::json!({ "parameters": p, "particles": mixtures }))?,
    )?;
    match tables::model_xyz(&r, &img.calibration, a.beam_step, &a.element) {
        Some(m) => write(&a.out, "model.xyz", m)?,
        None => eprintln!("no model.xyz: the image is not calibrated in nm"),
    }
    eprintln!("wrote counts.csv, counting.json, model.xyz to {}", a.out.display());
    Ok(())
}

pub fn compare(a: CompareArgs) -> Result<()> {
    let before = load_image(&a.before)?;
    let after = load_image(&a.after)?;
    let p = atomlens_core::particles::compare::CompareParams { analysis: a.common.params()?, ..Default::default() };
    let t = Instant::now();
    let c = atomlens_core::particles::compare::compare(&before, &after, &p)?;
    let s = &c.summary;
    eprintln!(
        "registered in {:.2} s: rotation {:.3}°, shift ({:.2}, {:.2}) px, residual {:.3} px, confidence {:.2}",
        t.elapsed().as_secs_f64(),
        s.rotation_deg,
        s.shift[0],
        s.shift[1],
        s.residual_rms,
        s.confidence
    );
    eprintln!(
        "{} kept, {} lost, {} new columns; atoms {} → {} ({:+})",
        s.kept,
        s.lost,
        s.new,
        s.atoms_before,
        s.atoms_after,
        s.atoms_after as i64 - s.atoms_before as i64
    );
    out_dir(&a.out)?;
    let cal = &before.calibration;
    write(&a.out, "columns.csv", tables::compare_columns_csv(&c))?;
    write(&a.out, "facets.csv", tables::compare_facets_csv(&c, cal))?;
    write(
        &a.out,
        "summary.json",
        tables::compare_summary_json(&c, cal, &a.before.display().to_string(), &a.after.display().to_string()),
    )?;
    let (h, w) = before.data.dim();
    let map = atomlens_core::particles::compare::change_map(&c.columns, w, h, c.before.spacing);
    write(&a.out, "change.tif", atomlens_io::tiff_io::write_f32(w, h, map.as_slice().unwrap_or(&[]), cal)?)?;
    eprintln!("wrote columns.csv, facets.csv, summary.json, change.tif to {}", a.out.display());
    Ok(())
}

pub fn batch(a: BatchArgs) -> Result<()> {
    let recipe: Recipe = match &a.recipe {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            serde_json::from_str(&text).with_context(|| format!("{} is not a valid recipe", path.display()))?
        }
        None => Recipe::default(),
    };
    run_batch(&a.dir, &recipe, &a.out).map(|_| ())
}

/// Analyse every image of `dir` with `recipe` into `out`; returns (images analysed, images, seconds).
pub fn run_batch(dir: &Path, recipe: &Recipe, out: &Path) -> Result<(usize, usize, f64)> {
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
    write(out, "recipe.json", serde_json::to_string_pretty(recipe)?)?;
    let mut summary =
        String::from("file,particles,columns,mean_diameter,diameter_unit,atoms,ordered_fraction,seconds,error\n");
    let t_all = Instant::now();
    let n = files.len();
    let done = std::sync::atomic::AtomicUsize::new(0);
    // Images in parallel (each analysis is parallel inside too; two images keep both cores busy
    // through the serial parts). Rows keep the folder's order.
    use rayon::prelude::*;
    let rows: Vec<(bool, String)> = files
        .par_iter()
        .map(|f| {
            let t = Instant::now();
            let name = f.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let result = run_one(f, recipe, &out.join(stem(f)));
            let secs = t.elapsed().as_secs_f64();
            let k = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            match result {
                Ok((r, cal)) => {
                    let t = r.totals();
                    let mean = t.diameters.iter().sum::<f64>() / t.diameters.len().max(1) as f64 * cal.pixel_size;
                    let (cols, atoms, ordered) = (t.columns, t.atoms, t.ordered_fraction);
                    eprintln!(
                        "[{k}/{n}] {name}: {} particle(s), {cols} columns, {atoms} atoms ({secs:.2} s)",
                        r.particles.len()
                    );
                    let row = format!(
                        "{name},{},{cols},{mean:.4},{},{atoms},{ordered:.4},{secs:.3},\n",
                        r.particles.len(),
                        cal.unit
                    );
                    (true, row)
                }
                Err(e) => {
                    let msg = format!("{e:#}").replace('"', "'");
                    eprintln!("[{k}/{n}] {name}: {msg}");
                    (false, format!("{name},,,,,,,{secs:.3},\"{msg}\"\n"))
                }
            }
        })
        .collect();
    let ok = rows.iter().filter(|r| r.0).count();
    rows.iter().for_each(|r| summary.push_str(&r.1));
    write(out, "summary.csv", summary)?;
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

fn run_one(path: &Path, recipe: &Recipe, dir: &Path) -> Result<(Analysis, Calibration)> {
    let mut img = load_image(path)?;
    if let Some(m) = &recipe.denoise {
        img.data = atomlens_core::denoise::apply(img.view(), m)?;
    }
    let r = analyse(img.view(), &recipe.analysis)?;
    out_dir(dir)?;
    write_particles(dir, &r, &recipe.analysis, &img, &path.display().to_string())?;
    Ok((r, img.calibration))
}

fn stem(p: &Path) -> String {
    p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "image".into())
}

fn is_image(p: &Path) -> bool {
    let ext = p.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()).unwrap_or_default();
    matches!(ext.as_str(), "dm3" | "dm4" | "ser" | "emd" | "mrc" | "tif" | "tiff" | "png" | "jpg" | "jpeg")
}

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
    /// A Pt particle in [110] with Poisson noise.
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
    write(dir, &format!("{name}.tif"), atomlens_io::tiff_io::write_f32(w, h, &px, &s.image.calibration)?)?;
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
