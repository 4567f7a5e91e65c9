//! `atomlens denoise`: the clean-up filters of `core::denoise`, with the removed part on request.
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use atomlens_core::denoise::{self, Method};
use atomlens_core::image::Noise;

use crate::args::serde_name;

/// The options; also read from JSON by name (the Python package's keyword arguments), where
/// the file arguments are not options.
#[derive(clap::Args, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The image (first signal, first frame).
    #[serde(skip)]
    image: PathBuf,
    /// The filter: wiener, gaussian, median, bandpass, bragg, nlm (non-local-means), bm3d,
    /// n2v (noise2void: a network trained on this image), rolling-ball or background. Each
    /// option below applies to the methods named with it; what is not given takes the method's
    /// default (`core::denoise::Method::ALL`).
    #[arg(long)]
    method: String,
    /// gaussian, background: width σ in px.
    #[arg(long)]
    sigma: Option<f64>,
    /// median, wiener, rolling-ball: window half-width (disk radius) in px; bragg: the window
    /// radius as a fraction of |g|.
    #[arg(long)]
    radius: Option<f64>,
    /// wiener: noise variance (default: the mean local variance).
    #[arg(long)]
    noise: Option<f64>,
    /// bandpass: finest kept scale in px.
    #[arg(long)]
    small: Option<f64>,
    /// bandpass: largest kept scale in px.
    #[arg(long)]
    large: Option<f64>,
    /// nlm: patch half-width in px.
    #[arg(long)]
    patch: Option<usize>,
    /// nlm, bm3d: search window in px (both also search the lattice translations).
    #[arg(long)]
    search: Option<usize>,
    /// nlm: strength h in units of the noise σ.
    #[arg(long)]
    h: Option<f64>,
    /// nlm, bm3d: search only the window, not the lattice translations (for work on
    /// displacements: patches of other columns pull each column slightly towards them).
    #[arg(long)]
    #[serde(default)]
    no_lattice: bool,
    /// nlm, bm3d: noise model, auto (Poisson when every pixel is a whole count), poisson or
    /// gaussian.
    #[arg(long, value_parser = serde_name::<Noise>)]
    noise_model: Option<Noise>,
    /// n2v: training steps (batches of eight 64² patches).
    #[arg(long)]
    steps: Option<usize>,
    /// n2v: seed of the network and of the patches (the same seed, the same image).
    #[arg(long)]
    seed: Option<u64>,
    /// Output (32-bit float TIFF with the input's calibration).
    #[arg(long)]
    #[serde(skip)]
    out: PathBuf,
    /// Also write what the filter removed (input − output).
    #[arg(long)]
    #[serde(skip)]
    residual: Option<PathBuf>,
    /// Run on the GPU (nlm; the adapter wgpu finds): the kernel is checked against the CPU on a
    /// small case first, and the CPU runs instead, with a note, when it fails.
    #[arg(long)]
    #[serde(default)]
    gpu: bool,
}

/// The method `a.method` at its defaults with the options given set: each option is a field of
/// the method (by its serde name); one the method does not have is refused, naming its fields.
pub fn method(a: &Args) -> Result<Method> {
    let Some(m) = Method::by_name(&a.method) else {
        let names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
        bail!("--method {}: not one of {} (or nlm)", a.method, names.join(", "));
    };
    let mut v = serde_json::to_value(m)?;
    let fields = v.as_object_mut().context("a method is an object")?;
    let is_model = matches!(m, Method::NonLocalMeans { .. } | Method::Bm3d { .. });
    let given: [(&str, &str, Option<serde_json::Value>); 12] = [
        ("--sigma", "sigma", a.sigma.map(Into::into)),
        ("--radius", "radius", a.radius.map(Into::into)),
        ("--noise", "noise", a.noise.filter(|_| !is_model).map(Into::into)),
        ("--small", "small", a.small.map(Into::into)),
        ("--large", "large", a.large.map(Into::into)),
        ("--patch", "patch", a.patch.map(Into::into)),
        ("--search", "search", a.search.map(Into::into)),
        ("--h", "h", a.h.map(Into::into)),
        ("--steps", "steps", a.steps.map(Into::into)),
        ("--seed", "seed", a.seed.map(Into::into)),
        ("--no-lattice", "lattice", a.no_lattice.then_some(false.into())),
        ("--noise-model", "noise", a.noise_model.filter(|_| is_model).map(serde_json::to_value).transpose()?),
    ];
    for (flag, key, value) in given {
        let Some(value) = value else { continue };
        if !fields.contains_key(key) {
            let own: Vec<&String> = fields.keys().filter(|k| *k != "method").collect();
            bail!("{flag} is not an option of {} (its options: {own:?})", m.name());
        }
        // Pixel counts take whole numbers only.
        let value = match value.as_f64() {
            Some(f) if fields[key].is_u64() && f >= 0.0 && f.fract() == 0.0 => (f as u64).into(),
            Some(f) if fields[key].is_u64() => bail!("{flag} {f}: {}'s {key} is a whole number of pixels", m.name()),
            _ => value,
        };
        fields.insert(key.into(), value);
    }
    if !is_model && a.noise_model.is_some() || is_model && a.noise.is_some() {
        bail!("--noise is the Wiener filter's noise variance; --noise-model the noise of nlm and bm3d");
    }
    serde_json::from_value(v).map_err(|e| anyhow::anyhow!("{}: {e}", m.name()))
}

impl Args {
    /// The cleaned image of `img` and where it ran ("CPU" or "GPU").
    pub fn apply(&self, img: ndarray::ArrayView2<f32>) -> Result<(ndarray::Array2<f32>, &'static str)> {
        let method = method(self)?;
        Ok(match (self.gpu, method) {
            (true, Method::NonLocalMeans { .. }) => {
                let gpu = crate::gpu::open()?;
                atomlens_core::image::check_usable(img)?;
                denoise::check(&method)?;
                crate::gpu::or_cpu(
                    method.name(),
                    || pollster::block_on(atomlens_gpu::nlm::self_check(&gpu)),
                    || pollster::block_on(atomlens_gpu::nlm::apply(&gpu, img, &method)),
                    || Ok(denoise::apply(img, &method)?),
                )?
            }
            (true, _) => bail!("--gpu: {} has no GPU kernel (nlm has); run it without --gpu", method.name()),
            (false, Method::Noise2Void { steps, seed }) => {
                // Training is minutes: say how far it is on a terminal.
                use std::io::IsTerminal;
                let tty = std::io::stderr().is_terminal();
                let mut t = atomlens_core::learned::n2v::Trainer::new(img, steps, seed)?;
                while tty && let Some(loss) = t.step() {
                    let (done, of) = t.progress();
                    if done % 10 == 0 || done == of {
                        eprint!("\rnoise2void: training step {done} / {of}, loss {loss:.4}   ");
                    }
                }
                if tty {
                    eprintln!();
                }
                (t.finish(img), "CPU")
            }
            (false, _) => (denoise::apply(img, &method)?, "CPU"),
        })
    }
}

pub fn run(a: Args) -> Result<()> {
    let method = method(&a)?;
    let img = crate::files::load(&a.image)?[0].frame(0)?;
    let t = Instant::now();
    let (out, ran) = a.apply(img.view())?;
    eprintln!("{method:?} on the {ran} in {:.3} s", t.elapsed().as_secs_f64());
    let (w, h) = (img.width(), img.height());
    let write = |path: &PathBuf, px: Vec<f32>| -> Result<()> {
        let bytes = atomlens_io::formats::tiff::write_f32(w, h, &px, &img.calibration)?;
        std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
    };
    write(&a.out, out.iter().copied().collect())?;
    if let Some(path) = &a.residual {
        write(path, img.data.iter().zip(out.iter()).map(|(i, o)| i - o).collect())?;
    }
    Ok(())
}
