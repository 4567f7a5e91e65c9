//! `atomlens reconstruct`: a volume from a single-axis tilt series (tilt axis along the image's
//! y, turned by a given or estimated angle), by filtered back-projection, SIRT or SART
//! (`core::tomo`), written as MRC.
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use atomlens_core::tomo::fbp::Filter;
use atomlens_core::tomo::{Algorithm, Align, Plan, Preparation, TiltAxis, TiltSeries};

use crate::args::serde_name;

/// The options; also read from JSON by name (the Python package's keyword arguments), where
/// the file arguments are not options.
#[derive(clap::Args, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The tilt series: a stack (MRC, TIFF, DM, EMD…), one projection per frame.
    #[serde(skip)]
    stack: PathBuf,
    /// Tilt angles in degrees, one per projection, in a text file (one per line, or separated by
    /// commas or spaces). Default: the stack's own (an MRC's FEI or SerialEM extended header,
    /// or the SerialEM `STACK.mdoc` beside it).
    #[arg(long, conflicts_with = "tilt")]
    #[serde(skip)]
    angles: Option<PathBuf>,
    /// Tilt angles as START,STEP in degrees (projection k at START + k·STEP).
    #[arg(long, value_parser = start_step, allow_hyphen_values = true)]
    tilt: Option<(f64, f64)>,
    /// Reconstruction method: sirt, sart or fbp.
    #[arg(long, default_value = "sirt")]
    #[serde(default = "sirt")]
    method: String,
    /// Iterations (SIRT) or passes over all tilts (SART) (default: the method's own).
    #[arg(long)]
    iterations: Option<usize>,
    /// FBP filter: ram-lak, shepp-logan or hann (default: the method's own).
    #[arg(long, value_parser = serde_name::<Filter>)]
    filter: Option<Filter>,
    /// Allow negative densities (SIRT, SART).
    #[arg(long)]
    #[serde(default)]
    allow_negative: bool,
    /// Volume thickness along the beam in px (default: the image width).
    #[arg(long)]
    thickness: Option<usize>,
    /// Align the projections first: `com` (each centre of mass to the image centre; the default
    /// when given alone), `axis` (the tilt axis's x offset found and moved to the centre) or `cc`
    /// (cross-correlation between neighbouring tilts, then the axis offset) or `reproj` (`cc`, then
    /// three rounds of registering each projection to the re-projected reconstruction).
    #[arg(long, value_parser = serde_name::<Align>, num_args = 0..=1, default_missing_value = "com")]
    align: Option<Align>,
    /// The tilt axis's direction in the images: degrees from the image's y axis (turning from
    /// +x towards +y), or `auto` to estimate it from the common line. Default 0 (along y).
    #[arg(long, value_parser = axis_arg, allow_hyphen_values = true)]
    #[serde(default, deserialize_with = "axis_json")]
    axis: Option<TiltAxis>,
    /// Stretch neighbouring tilts by their cosine ratio before correlating them (`--align cc` or
    /// `reproj`): for a thin, wide specimen such as particles on a support film.
    #[arg(long)]
    #[serde(default)]
    stretch: bool,
    /// Output volume (MRC, 32-bit float, voxel size from the stack's calibration).
    #[arg(long)]
    #[serde(skip)]
    out: PathBuf,
    /// Reconstruct on the GPU (the adapter wgpu finds): checked against the CPU on a small case
    /// first; the CPU runs instead, with a note, when it fails. Volumes larger than one GPU
    /// buffer run in slabs of slices.
    #[arg(long)]
    #[serde(default)]
    gpu: bool,
}

fn sirt() -> String {
    "sirt".into()
}

/// `axis` in JSON: degrees, or "auto".
fn axis_json<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<TiltAxis>, D::Error> {
    let v: Option<serde_json::Value> = serde::Deserialize::deserialize(d)?;
    v.map(|v| axis_arg(&v.as_str().map_or_else(|| v.to_string(), str::to_string)).map_err(serde::de::Error::custom))
        .transpose()
}

fn axis_arg(s: &str) -> Result<TiltAxis, String> {
    if s == "auto" {
        return Ok(TiltAxis::Estimate);
    }
    match s.parse::<f64>() {
        Ok(a) if a.is_finite() && a.abs() <= 90.0 => Ok(TiltAxis::Angle(a)),
        _ => Err(format!("{s}: expected an angle in degrees within ±90, or `auto`")),
    }
}

fn start_step(s: &str) -> Result<(f64, f64), String> {
    let v: Vec<f64> =
        s.split(',').map(|t| t.trim().parse::<f64>()).collect::<Result<_, _>>().map_err(|e| e.to_string())?;
    match v.as_slice() {
        [a, b] => Ok((*a, *b)),
        _ => Err(format!("{s}: expected START,STEP in degrees")),
    }
}

impl Args {
    /// Reconstruct every slice of `plan` (on the GPU with `--gpu`, the CPU with a note when it
    /// fails); `progress(slices done, slices, iteration)`. Returns where it ran.
    pub fn reconstruct(
        &self,
        plan: &mut Plan,
        mut progress: impl FnMut((usize, usize, usize)),
    ) -> Result<&'static str> {
        let ny = plan.dims().1;
        let mut ran = "CPU";
        if self.gpu {
            let gpu = crate::gpu::open()?;
            let mut report = |p: atomlens_gpu::tomo::Progress| progress((p.slices, ny, p.iteration));
            let on_gpu = pollster::block_on(async {
                atomlens_gpu::tomo::self_check(&gpu).await?;
                atomlens_gpu::tomo::reconstruct(&gpu, plan, &mut report).await
            });
            match on_gpu {
                Ok(()) => ran = "GPU",
                Err(e) => eprintln!("\nnote: the reconstruction ran on the CPU: {e}"),
            }
        }
        while plan.done() < ny {
            let done = plan.step(16);
            progress((done, ny, 0));
        }
        Ok(ran)
    }

    /// The reconstruction method with these options set.
    pub fn method(&self) -> Result<Algorithm> {
        let names = Algorithm::ALL.map(|m| m.name()).join(", ");
        Ok(match Algorithm::by_name(&self.method) {
            Some(Algorithm::Fbp { filter }) => Algorithm::Fbp { filter: self.filter.unwrap_or(filter) },
            Some(Algorithm::Sirt { iterations, .. }) => {
                Algorithm::Sirt { iterations: self.iterations.unwrap_or(iterations), nonnegative: !self.allow_negative }
            }
            Some(Algorithm::Sart { iterations, .. }) => {
                Algorithm::Sart { iterations: self.iterations.unwrap_or(iterations), nonnegative: !self.allow_negative }
            }
            None => bail!("--method {}: not one of {names}", self.method),
        })
    }

    /// The plan for `frames` (projection, row, column) at `angles` (degrees): alignment and
    /// tilt axis done, no slice reconstructed yet.
    pub fn plan<'a>(&self, frames: ndarray::ArrayView3<'a, f32>, angles: &'a [f64]) -> Result<Plan> {
        let prep = Preparation {
            align: self.align.unwrap_or_default(),
            axis: self.axis.unwrap_or_default(),
            stretch: self.stretch,
        };
        let nz = self.thickness.unwrap_or(frames.dim().2);
        Ok(Plan::new(&TiltSeries { images: frames, angles_deg: angles }, nz, self.method()?, prep)?)
    }
}

pub fn run(a: Args) -> Result<()> {
    let signals = crate::files::load(&a.stack)?;
    let s = &signals[0];
    let stack = s.to_stack()?;
    let n = s.frames;
    let angles: Vec<f64> = match (&a.angles, a.tilt) {
        (Some(path), _) => std::fs::read_to_string(path)
            .with_context(|| format!("reading {}", path.display()))?
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|t| !t.is_empty())
            .map(|t| t.parse::<f64>().with_context(|| format!("{}: {t:?} is not an angle", path.display())))
            .collect::<Result<_>>()?,
        (None, Some((start, step))) => (0..n).map(|k| start + k as f64 * step).collect(),
        (None, None) => match &s.metadata.tilt_angles_deg {
            Some(a) => {
                eprintln!("tilt angles from the file: {:.2}° to {:.2}°", a[0], a[a.len() - 1]);
                a.clone()
            }
            None => bail!(
                "{} records no tilt angles: give them with --angles FILE or --tilt START,STEP (degrees)",
                a.stack.display()
            ),
        },
    };
    let t = Instant::now();
    let mut plan = a.plan(stack.frames.view(), &angles)?;
    match plan.axis_contrast {
        Some(c) if plan.notes.is_empty() => {
            eprintln!(
                "tilt axis {:+.2}° from the image's y axis (common-line contrast {c:.3}); turned to y",
                plan.axis_deg
            )
        }
        _ if plan.axis_deg != 0.0 => eprintln!("tilt axis {:+.2}° from y as given; turned to y", plan.axis_deg),
        _ => {}
    }
    plan.notes.iter().for_each(|n| eprintln!("note: {n}"));
    let align = a.align.unwrap_or_default();
    match (&plan.shifts, align) {
        (Some(shifts), Align::AxisOffset) => {
            eprintln!("tilt axis {:+.2} px from the image centre along x; moved to the centre", shifts[0][0]);
        }
        (Some(shifts), _) => {
            let worst = shifts.iter().map(|d| d[0].hypot(d[1])).fold(0.0, f64::max);
            eprintln!("aligned {n} projections ({align:?}); largest shift {worst:.2} px");
        }
        (None, _) => {}
    }
    let ran = a.reconstruct(&mut plan, |(done, ny, it)| match it {
        0 => eprint!("\rslices {done}/{ny}"),
        _ => eprint!("\rslices {done}/{ny}, iteration {it}   "),
    })?;
    let v = plan.volume();
    eprintln!(
        "\r{}×{}×{} volume from {n} projections on the {ran} in {:.2} s",
        s.width,
        s.height,
        plan.dims().2,
        t.elapsed().as_secs_f64()
    );
    let (nx, ny, nz) = v.dims();
    let voxels: Vec<f32> = v.data.iter().copied().collect();
    let label = format!("atomlens {} {:?}", env!("CARGO_PKG_VERSION"), plan.method());
    let bytes = atomlens_io::formats::mrc::write_f32(nx, ny, nz, &voxels, &s.calibration, &label)?;
    std::fs::write(&a.out, bytes).with_context(|| format!("writing {}", a.out.display()))?;
    Ok(())
}
