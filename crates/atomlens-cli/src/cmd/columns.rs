//! `atomlens columns`: find and fit every column of an image; CSV (Atomap's conventions) or JSON.
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use atomlens_core::Calibration;
use atomlens_core::columns::find::Peaks;
use atomlens_core::columns::fit::{Noise, Shape};
use atomlens_core::columns::{ColumnParams, ColumnResult, Finder, Sublattices, find, fit_found_with, fit_request};
use atomlens_core::learned::finder::ColumnNet;
use atomlens_core::strain::columns::ColumnStrainResult;

use crate::args::serde_name;
use crate::files::{out_dir, write};

/// The options; also read from JSON by name (the Python package's keyword arguments), where
/// the file arguments are not options.
#[derive(clap::Args, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The image (first signal, first frame).
    #[serde(skip)]
    image: PathBuf,
    /// Minimum distance between columns in px (default: 0.7 × the spacing estimated from the image).
    #[arg(long)]
    separation: Option<f64>,
    /// Columns are dark (ABF): search the inverted image.
    #[arg(long)]
    #[serde(default)]
    dark: bool,
    /// Relative threshold 0–1 on the smoothed image.
    #[arg(long)]
    threshold: Option<f64>,
    /// Noise model of the error bars: poisson or gaussian (default: auto, Poisson when the pixels
    /// are counts: whole numbers whose noise variance is about their mean, else Gaussian).
    #[arg(long, value_parser = serde_name::<Noise>)]
    noise: Option<Noise>,
    /// Column shape: elliptical or circular (default: elliptical).
    #[arg(long, value_parser = serde_name::<Shape>)]
    shape: Option<Shape>,
    /// Split columns into sublattices by `intensity` (integrated, the default) or `position`
    /// (site in the unit cell).
    #[arg(long, value_parser = serde_name::<Sublattices>)]
    sublattices: Option<Sublattices>,
    /// Joint passes (overlapping neighbours subtracted) after the first independent fit.
    #[arg(long)]
    passes: Option<usize>,
    /// Add per-column strain (exx, eyy, exy, lattice rotation) and displacement from the ideal
    /// lattice, against the lattice from the spectrum or the --reference region's mean.
    #[arg(long)]
    #[serde(default)]
    strain: bool,
    /// Reference region `x0,y0,x1,y1` (px) for --strain.
    #[arg(long, value_parser = crate::args::region, allow_hyphen_values = true, requires = "strain")]
    #[serde(default, deserialize_with = "crate::args::region_list")]
    reference: Option<atomlens_core::image::Region>,
    /// With --strain: also write the per-column strain interpolated onto the image grid as
    /// calibrated TIFFs (exx, eyy, exy, rotation, ux, uy) into this folder.
    #[arg(long, requires = "strain")]
    #[serde(skip)]
    strain_maps: Option<PathBuf>,
    /// Look for single atoms on a support, even where a lattice shows (they are looked for
    /// anyway when the image shows none).
    #[arg(long, conflicts_with = "separation")]
    #[serde(default)]
    atoms: bool,
    /// Single atoms: expected false detections per image on a pure support (default 1).
    #[arg(long)]
    false_alarms: Option<f64>,
    /// Single atoms: their Gaussian width in px (default 0.6 Å on a calibrated image, else 2 px).
    #[arg(long)]
    atom_sigma: Option<f64>,
    /// Which finder seeds the fits: classical (local maxima; single atoms by significance) or
    /// learned (a network trained on synthetic scenes: its probability maxima, then the same fits).
    #[arg(long, value_parser = serde_name::<Finder>)]
    finder: Option<Finder>,
    /// With --finder learned: a model written by `atomlens train columns` instead of the
    /// committed one.
    #[arg(long)]
    #[serde(skip)]
    model: Option<PathBuf>,
    /// Fit on the GPU (the adapter wgpu finds): checked against the CPU on a small case first;
    /// the CPU fits instead, with a note, when it fails.
    #[arg(long)]
    #[serde(default)]
    gpu: bool,
    /// Output: `.csv` or `.json` (default: CSV on stdout).
    #[arg(long)]
    #[serde(skip)]
    out: Option<PathBuf>,
}

impl Args {
    /// The core's parameters with these options set (what is not given keeps the core's default).
    pub fn params(&self) -> ColumnParams {
        let mut p = ColumnParams::default();
        p.find.separation = self.separation;
        p.find.dark = self.dark;
        if let Some(t) = self.threshold {
            p.find.threshold = t;
        }
        p.fit.noise = self.noise.unwrap_or(p.fit.noise);
        p.fit.shape = self.shape.unwrap_or(p.fit.shape);
        p.sublattices = self.sublattices.unwrap_or(p.sublattices);
        p.atoms = self.atoms;
        p.finder = self.finder.unwrap_or(p.finder);
        p.single.false_alarms = self.false_alarms.unwrap_or(p.single.false_alarms);
        p.single.sigma = self.atom_sigma.or(p.single.sigma);
        if let Some(n) = self.passes {
            p.fit.passes = n;
            p.fit.joint = n > 0;
        }
        p
    }

    /// Per-column strain of `r` when asked (`--strain`).
    pub fn column_strain(&self, r: &ColumnResult) -> Result<Option<ColumnStrainResult>> {
        if !self.strain {
            return Ok(None);
        }
        let l = r.lattice.as_ref().context("--strain needs lattice vectors, and the image shows no lattice")?;
        let pts: Vec<[f64; 2]> = r.columns.iter().map(|c| [c.x, c.y]).collect();
        Ok(Some(atomlens_core::strain::columns::column_strain(&pts, l.a, l.b, self.reference)?))
    }

    /// Find and fit every column of `img` (the fits on the GPU with `--gpu`), with the strain
    /// when asked and the CSV the command writes.
    pub fn analyse(&self, img: ndarray::ArrayView2<f32>, cal: &Calibration) -> Result<Run> {
        let p = self.params();
        let t = Instant::now();
        let peaks = match &self.model {
            Some(path) => {
                if p.finder != Finder::Learned {
                    bail!("--model is the learned finder's: add --finder learned");
                }
                let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
                let net = ColumnNet::from_bytes(&bytes).with_context(|| format!("{}", path.display()))?;
                atomlens_core::columns::learned::find_with(img, cal.pixel_nm(), &p, &net)?
            }
            None => find(img, cal.pixel_nm(), &p)?,
        };
        let find_s = t.elapsed().as_secs_f64();
        let (fitted, ran) = if self.gpu { fit_on_gpu(img, &peaks, &p)? } else { (None, "CPU") };
        let result = fit_found_with(img, &peaks, &p, fitted)?;
        let refine_s = t.elapsed().as_secs_f64() - find_s;
        let strain = self.column_strain(&result)?;
        let csv = csv(&result, strain.as_ref());
        Ok(Run { result, strain, csv, find_s, refine_s, ran })
    }
}

/// One run of the command.
pub struct Run {
    pub result: ColumnResult,
    /// Per-column strain (`--strain`).
    pub strain: Option<ColumnStrainResult>,
    /// The CSV the command writes.
    pub csv: String,
    pub find_s: f64,
    pub refine_s: f64,
    /// Where the fits ran: "CPU" or "GPU".
    pub ran: &'static str,
}

/// The CSV of a run: the columns, single atoms' significance, strain when measured.
pub fn csv(r: &ColumnResult, strain: Option<&ColumnStrainResult>) -> String {
    let csv = atomlens_io::tables::result_csv(r);
    match strain {
        Some(s) => atomlens_io::tables::with_strain(&csv, s),
        None => csv,
    }
}

pub fn run(a: Args) -> Result<()> {
    let signals = crate::files::load(&a.image)?;
    let img = signals[0].frame(0)?;
    let p = a.params();
    let run = a.analyse(img.view(), &img.calibration)?;
    let (r, ran, t_find, refine_s) = (&run.result, run.ran, run.find_s, run.refine_s);
    let secs = t_find + refine_s;
    if let Some(l) = &r.lattice {
        let (a, b, angle) = l.lengths_and_angle();
        eprintln!("lattice from the spectrum: |a| {a:.3} px, |b| {b:.3} px, angle {angle:.2}°");
    }
    if let Some(s) = &r.single {
        let why = if a.atoms { "as asked" } else { "the image shows no lattice" };
        eprintln!(
            "single atoms ({why}): {} with significance z ≥ {:.2} (≈ {} false detection(s) expected per image; atom σ {:.2} px)",
            s.atoms.len(),
            s.threshold,
            s.false_alarms,
            s.sigma
        );
    }
    let groups = r.columns.iter().map(|c| c.sublattice).max().map_or(1, |m| m + 1);
    if groups > 1 {
        let how =
            if p.sublattices == Sublattices::Position && r.lattice.is_some() { "unit-cell site" } else { "intensity" };
        eprintln!("{groups} sublattices by {how}");
    }
    let fitted = r.columns.iter().filter(|c| c.status == atomlens_core::columns::fit::FitStatus::Fitted).count();
    eprintln!(
        "{} columns ({} fitted) in {:.3} s (find {:.3} s, refine on the {ran} {:.3} s = {:.1} µs per column); separation {:.2} px{}",
        r.columns.len(),
        fitted,
        secs,
        t_find,
        refine_s,
        refine_s * 1e6 / r.columns.len().max(1) as f64,
        r.separation,
        r.spacing.map(|s| format!(", spacing {s:.2} px")).unwrap_or_default()
    );
    eprintln!("{}", atomlens_core::columns::precision::summary(r.precision.as_ref(), img.calibration.pixel_nm()));
    for n in &r.notes {
        eprintln!("note: {n}");
    }
    if let Some(s) = &run.strain {
        let measured = s.columns.iter().filter(|c| c.exx.is_finite()).count();
        eprintln!("strain for {measured} of {} columns (the rest have too few indexed neighbours)", s.columns.len());
        if let Some(dir) = &a.strain_maps {
            let pts: Vec<[f64; 2]> = r.columns.iter().map(|c| [c.x, c.y]).collect();
            write_strain_maps(dir, &pts, s, &img, r.spacing.unwrap_or(r.separation / 0.7))?;
        }
    }
    let text = match a.out.as_ref().and_then(|o| o.extension()).and_then(|e| e.to_str()) {
        Some("json") => atomlens_io::tables::columns_json(
            r,
            &p,
            &img.calibration,
            &a.image.display().to_string(),
            run.strain.as_ref(),
        ),
        Some("csv") | None => run.csv.clone(),
        Some(other) => bail!("--out must end in .csv or .json, not .{other}"),
    };
    match &a.out {
        Some(o) => std::fs::write(o, text).with_context(|| format!("writing {}", o.display()))?,
        None => std::io::stdout().write_all(text.as_bytes())?,
    }
    Ok(())
}

/// Per-column strain spread onto the image grid (`column_strain::interpolate`), one TIFF each.
fn write_strain_maps(
    dir: &std::path::Path,
    pts: &[[f64; 2]],
    s: &atomlens_core::strain::columns::ColumnStrainResult,
    img: &atomlens_core::Image,
    spacing: f64,
) -> Result<()> {
    use atomlens_core::strain::columns::{ColumnStrain, interpolate};
    out_dir(dir)?;
    let (w, h) = (img.width(), img.height());
    for (name, f) in ColumnStrain::FIELDS {
        let values: Vec<f64> = s.columns.iter().map(f).collect();
        let map = interpolate(pts, &values, w, h, spacing);
        let px: Vec<f32> = map.iter().copied().collect();
        write(dir, &format!("{name}.tif"), atomlens_io::formats::tiff::write_f32(w, h, &px, &img.calibration)?)?;
    }
    eprintln!("wrote interpolated exx eyy exy rotation ux uy maps to {}", dir.display());
    Ok(())
}

/// The fits of `peaks` on the GPU (`None` and a note when the GPU fails: the CPU fits them).
fn fit_on_gpu(
    img: ndarray::ArrayView2<f32>,
    peaks: &Peaks,
    p: &ColumnParams,
) -> Result<(Option<Vec<atomlens_core::columns::fit::AtomColumn>>, &'static str)> {
    let gpu = crate::gpu::open()?;
    let req = fit_request(peaks, p);
    let seen = req.image(img);
    let view = seen.view();
    crate::gpu::or_cpu(
        "column fitting",
        || pollster::block_on(atomlens_gpu::columns::self_check(&gpu)),
        || pollster::block_on(atomlens_gpu::columns::fit_columns(&gpu, view, &req.seeds, &req.fit)).map(Some),
        || Ok(None),
    )
}
