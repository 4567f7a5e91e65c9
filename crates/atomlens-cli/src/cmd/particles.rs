//! `atomlens particles`: the nanoparticle chain (`core::particles::chain`) with the tables of
//! `io::tables::particles`; the options and the report that `count`, `compare` and `batch` share.
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use atomlens_core::particles::chain::{Analysis, AnalysisParams, analyse};
use atomlens_core::particles::counting::{Counting, MAX_COMPONENTS, parse_library};
use atomlens_core::{Calibration, Image, Recipe};
use atomlens_io::tables;

use crate::files::{load_image, out_dir, write};

/// Options shared by the particle commands; also read from JSON by name (the Python package).
#[derive(clap::Args, Clone, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
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
    #[serde(default)]
    no_split: bool,
    /// Cross-section library for counting: one value per line (or `atoms,cross_section` rows) for
    /// 1, 2, 3… atoms, in the image's units × px (default: statistical counting by GMM + ICL).
    #[arg(long)]
    library: Option<PathBuf>,
    /// Largest number of mixture components tried in statistical counting.
    #[arg(long, default_value_t = MAX_COMPONENTS)]
    #[serde(default = "max_components")]
    max_components: usize,
}

fn max_components() -> usize {
    MAX_COMPONENTS
}

impl Common {
    pub fn params(&self) -> Result<AnalysisParams> {
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
    /// Fit the columns on the GPU (the adapter wgpu finds; self-checked, the CPU with a note when
    /// it fails).
    #[arg(long)]
    gpu: bool,
}

fn read_library(path: &Path) -> Result<Vec<f64>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    parse_library(&text).with_context(|| format!("{}", path.display()))
}

pub fn report(a: &Analysis, cal: &Calibration, secs: f64) {
    let u = &cal.unit;
    eprintln!(
        "{} columns, {} particle(s) in {secs:.2} s; column spacing {:.2} px",
        a.columns.columns.len(),
        a.particles.len(),
        a.spacing
    );
    for n in &a.columns.notes {
        eprintln!("note: {n}");
    }
    for r in &a.particles {
        let q = &r.particle;
        let atoms: u64 = r.atoms.iter().map(|&n| n as u64).sum();
        eprintln!(
            "  particle {}: {:.3} {u} across (equivalent), aspect {:.2}, {}, {} columns, {} facets{}{}{}",
            q.id,
            q.equivalent_diameter * cal.pixel_size,
            q.aspect_ratio,
            r.lattice.summary(cal.pixel_nm()),
            r.columns.columns.len(),
            r.columns.facets.len(),
            match r.atom_total() {
                Some((_, sd)) if sd > 0.0 => format!(", {atoms} ± {sd:.0} atoms"),
                Some(_) => format!(", {atoms} atoms"),
                None => String::new(),
            },
            r.ordering.summary().map(|o| format!(", {o}")).unwrap_or_default(),
            if q.touches_border { " (touches the border: size and surface are cut)" } else { "" }
        );
        if let Some(e) = &r.counting_error {
            eprintln!("    not counted: {e}");
        }
        if let Some(n) = r.counting_note() {
            eprintln!("    counted: {n}");
        }
        if let Some(w) = r.counting_warning() {
            eprintln!("    warning: {w}");
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

/// The particle tables and the recipe that made them, by file name.
pub fn particle_tables(a: &Analysis, recipe: &Recipe, cal: &Calibration, source: &str) -> [(&'static str, String); 6] {
    [
        ("recipe.json", recipe.to_json()),
        ("particles.csv", tables::particles_csv(a, cal)),
        ("columns.csv", tables::particle_columns_csv(a)),
        ("facets.csv", tables::facets_csv(a, cal)),
        ("defects.csv", tables::defects_csv(a)),
        ("particles.json", tables::analysis_json(a, &recipe.analysis, cal, source)),
    ]
}

/// The particle tables, the label image and the recipe that made them, into `dir`.
pub fn write_particles(dir: &Path, a: &Analysis, recipe: &Recipe, img: &Image, source: &str) -> Result<()> {
    let cal = &img.calibration;
    for (name, text) in particle_tables(a, recipe, cal, source) {
        write(dir, name, text)?;
    }
    let (h, w) = a.segmentation.labels.dim();
    let labels: Vec<f32> = a.segmentation.labels.iter().map(|&l| l as f32).collect();
    write(dir, "labels.tif", atomlens_io::formats::tiff::write_f32(w, h, &labels, cal)?)
}

/// The particle chain, its column fits on the GPU with `gpu` (`--gpu`).
pub fn chain(img: ndarray::ArrayView2<f32>, p: &AnalysisParams, gpu: bool) -> Result<Analysis> {
    Ok(if gpu {
        atomlens_core::particles::chain::analyse_with(img, p, &crate::gpu::GpuOffload::open()?)?
    } else {
        analyse(img, p)?
    })
}

pub fn particles(a: ParticlesArgs) -> Result<()> {
    let img = load_image(&a.image)?;
    let p = a.common.params()?;
    let t = Instant::now();
    let r = chain(img.view(), &p, a.gpu)?;
    report(&r, &img.calibration, t.elapsed().as_secs_f64());
    out_dir(&a.out)?;
    let recipe = Recipe { analysis: p, ..Default::default() };
    write_particles(&a.out, &r, &recipe, &img, &a.image.display().to_string())?;
    eprintln!(
        "wrote particles.csv, columns.csv, facets.csv, defects.csv, particles.json, labels.tif, recipe.json to {}",
        a.out.display()
    );
    Ok(())
}
