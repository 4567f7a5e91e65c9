//! `atomlens denoise`: the clean-up filters of `core::denoise`, with the removed part on request.
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use atomlens_core::denoise::{self, Method};
use atomlens_core::image::Noise;
use clap::ValueEnum;

#[derive(clap::Args)]
pub struct Args {
    /// The image (first signal, first frame).
    image: PathBuf,
    /// The filter.
    #[arg(long, value_enum)]
    method: MethodArg,
    /// Width σ in px (gaussian: 1; background: 30).
    #[arg(long)]
    sigma: Option<f64>,
    /// Window half-width in px (median: 1, wiener: 2, rolling-ball disk: 20), or for bragg the
    /// window radius as a fraction of |g| (0.15).
    #[arg(long)]
    radius: Option<f64>,
    /// Wiener noise variance (default: estimated as the mean local variance).
    #[arg(long)]
    noise: Option<f64>,
    /// Band-pass: finest kept scale in px (1).
    #[arg(long)]
    small: Option<f64>,
    /// Band-pass: largest kept scale in px (20).
    #[arg(long)]
    large: Option<f64>,
    /// Non-local means: patch half-width (2) and search window (2; BM3D: 8) in px (both also
    /// search the lattice translations), and strength h in units of the noise σ (0.8).
    #[arg(long)]
    patch: Option<usize>,
    #[arg(long)]
    search: Option<usize>,
    #[arg(long)]
    h: Option<f64>,
    /// NLM and BM3D: search only the window, not the lattice translations (for work on
    /// displacements: patches of other columns pull each column slightly towards them).
    #[arg(long)]
    no_lattice: bool,
    /// NLM and BM3D: noise model (auto: Poisson when every pixel is a whole count).
    #[arg(long, value_enum, default_value = "auto")]
    noise_model: NoiseArg,
    /// Output (32-bit float TIFF with the input's calibration).
    #[arg(long)]
    out: PathBuf,
    /// Also write what the filter removed (input − output).
    #[arg(long)]
    residual: Option<PathBuf>,
}

#[derive(Clone, Copy, ValueEnum)]
enum MethodArg {
    Gaussian,
    Median,
    Wiener,
    Bandpass,
    Bragg,
    Nlm,
    Bm3d,
    RollingBall,
    Background,
}

#[derive(Clone, Copy, ValueEnum)]
enum NoiseArg {
    Auto,
    Poisson,
    Gaussian,
}

fn window(r: Option<f64>, default: usize) -> Result<usize> {
    match r {
        None => Ok(default),
        Some(v) if v >= 1.0 && v.fract() == 0.0 => Ok(v as usize),
        Some(v) => bail!("--radius {v}: the window half-width is a whole number of pixels"),
    }
}

fn noise(n: NoiseArg) -> Noise {
    match n {
        NoiseArg::Auto => Noise::Auto,
        NoiseArg::Poisson => Noise::Poisson,
        NoiseArg::Gaussian => Noise::Gaussian,
    }
}

pub fn run(a: Args) -> Result<()> {
    let method = match a.method {
        MethodArg::Gaussian => Method::Gaussian { sigma: a.sigma.unwrap_or(1.0) },
        MethodArg::Median => Method::Median { radius: window(a.radius, 1)? },
        MethodArg::Wiener => Method::Wiener { radius: window(a.radius, 2)?, noise: a.noise },
        MethodArg::Bandpass => Method::Bandpass { small: a.small.unwrap_or(1.0), large: a.large.unwrap_or(20.0) },
        MethodArg::Bragg => Method::Bragg { radius: a.radius.unwrap_or(0.15) },
        MethodArg::Nlm => Method::NonLocalMeans {
            patch: a.patch.unwrap_or(2),
            search: a.search.unwrap_or(2),
            h: a.h,
            noise: noise(a.noise_model),
            lattice: !a.no_lattice,
        },
        MethodArg::Bm3d => {
            Method::Bm3d { search: a.search.unwrap_or(8), noise: noise(a.noise_model), lattice: !a.no_lattice }
        }
        MethodArg::RollingBall => Method::RollingBall { radius: window(a.radius, 20)? },
        MethodArg::Background => Method::Background { sigma: a.sigma.unwrap_or(30.0) },
    };
    let img = crate::load(&a.image)?[0].frame(0)?;
    let t = Instant::now();
    let out = denoise::apply(img.view(), &method)?;
    eprintln!("{method:?} in {:.3} s", t.elapsed().as_secs_f64());
    let (w, h) = (img.width(), img.height());
    let write = |path: &PathBuf, px: Vec<f32>| -> Result<()> {
        let bytes = atomlens_io::tiff_io::write_f32(w, h, &px, &img.calibration)?;
        std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
    };
    write(&a.out, out.iter().copied().collect())?;
    if let Some(path) = &a.residual {
        write(path, img.data.iter().zip(out.iter()).map(|(i, o)| i - o).collect())?;
    }
    Ok(())
}
