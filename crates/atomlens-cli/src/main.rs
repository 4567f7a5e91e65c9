//! `atomlens`: the command line. Every failure prints one line (`error: …`) and exits non-zero.
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use atomlens_io::{Limits, NamedFile, Signal};
use clap::{Parser, Subcommand};

mod bench;
mod bench_batch;
mod bench_denoise;
mod bench_gpa;
mod bench_tomo;
mod columns;
mod denoise;
mod files;
mod gpa;
mod particles;
mod reconstruct;
mod register;

#[derive(Parser)]
#[command(
    name = "atomlens",
    version,
    about = "Atomic-resolution STEM analysis: read, inspect and convert microscope images"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print shape, dtype, calibration and metadata of every image in FILE.
    Info {
        /// DM3/DM4, SER/EMI, EMD, MRC, TIFF, PNG or JPEG.
        file: PathBuf,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write FILE as a 32-bit float TIFF (one page per frame) with its calibration.
    Convert {
        /// Input image.
        file: PathBuf,
        /// Output `.tif`.
        out: PathBuf,
        /// Which signal of a multi-signal file (see `info`).
        #[arg(long, default_value_t = 0)]
        signal: usize,
    },
    /// Find atomic columns, fit 2-D Gaussians and write x, y, widths and error bars per column.
    Columns(columns::Args),
    /// Strain maps (εxx, εyy, εxy, rotation) by geometric phase analysis.
    Gpa(gpa::Args),
    /// Clean up an image: gaussian, median, wiener, bandpass, bragg, nlm, bm3d, rolling-ball or background.
    Denoise(denoise::Args),
    /// Drift-correct a series (one stack, or several files) and write the aligned average.
    Register(register::Args),
    /// Reconstruct a volume from a single-axis tilt series (FBP, SIRT or SART) as MRC.
    Reconstruct(reconstruct::Args),
    /// Segment nanoparticles: size, shape, surface columns, facets, cross-sections and ordering.
    Particles(particles::ParticlesArgs),
    /// Count the atoms in every column (statistical GMM + ICL, or a library) and write a 3-D model.
    Count(particles::CountArgs),
    /// Identical-location comparison of a before and an after image: kept, lost and new columns.
    Compare(particles::CompareArgs),
    /// Run the particle chain over every image in a folder with one recipe; summary table.
    Batch(particles::BatchArgs),
    /// Write synthetic test images with known truth (the demo particle, an ordered particle, an
    /// identical-location pair).
    Synth(particles::SynthArgs),
    /// Benchmarks against the peers, side by side in one run (needs ../shared).
    Bench(bench::Args),
}

fn main() -> ExitCode {
    match run(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Info { file, json } => info(&file, json),
        Command::Convert { file, out, signal } => convert(&file, &out, signal),
        Command::Columns(args) => columns::run(args),
        Command::Gpa(args) => gpa::run(args),
        Command::Register(args) => register::run(args),
        Command::Denoise(args) => denoise::run(args),
        Command::Reconstruct(args) => reconstruct::run(args),
        Command::Particles(args) => particles::particles(args),
        Command::Count(args) => particles::count(args),
        Command::Compare(args) => particles::compare(args),
        Command::Batch(args) => particles::batch(args),
        Command::Synth(args) => particles::synth(args),
        Command::Bench(args) => bench::run(args),
    }
}

/// Every signal of the file at `path` (with its TIA companions).
pub fn load(path: &Path) -> Result<Vec<Signal>> {
    let (primary, named) = files::with_companions(path)?;
    Ok(atomlens_io::read(&primary, named, &Limits::NATIVE)?)
}

fn info(path: &Path, json: bool) -> Result<()> {
    let signals = load(path)?;
    if json {
        let all: Vec<_> = signals.iter().map(signal_json).collect();
        let mut top = all[0].clone();
        top["file"] = path.display().to_string().into();
        top["signals"] = all.into();
        println!("{}", serde_json::to_string_pretty(&top)?);
        return Ok(());
    }
    println!("{}", path.display());
    for (i, s) in signals.iter().enumerate() {
        let title = if s.title.is_empty() { String::new() } else { format!(" \"{}\"", s.title) };
        println!("[{i}]{title} {}", s.metadata.format);
        let frames = if s.frames > 1 { format!(" × {} frames", s.frames) } else { String::new() };
        println!("  shape       {} × {} px{frames}, {}", s.width, s.height, s.dtype.name());
        if s.calibration.is_calibrated() {
            println!(
                "  pixel size  {} nm  (field of view {:.3} × {:.3} nm)",
                s.calibration.pixel_size,
                s.width as f64 * s.calibration.pixel_size,
                s.height as f64 * s.calibration.pixel_size
            );
        } else {
            println!("  pixel size  uncalibrated");
        }
        let m = &s.metadata;
        let rows: [(&str, Option<String>); 7] = [
            ("voltage", m.voltage_kv.map(|v| format!("{v} kV"))),
            ("microscope", m.microscope.clone()),
            ("detector", m.detector.clone()),
            ("mode", m.mode.clone()),
            ("magnification", m.magnification.map(|v| format!("{v}×"))),
            ("dwell time", m.dwell_time_us.map(|v| format!("{v} µs"))),
            ("acquired", m.acquired.clone()),
        ];
        for (k, v) in rows {
            if let Some(v) = v {
                println!("  {k:<11} {v}");
            }
        }
        for n in &m.notes {
            println!("  note        {n}");
        }
    }
    Ok(())
}

fn signal_json(s: &Signal) -> serde_json::Value {
    serde_json::json!({
        "title": s.title,
        "width": s.width,
        "height": s.height,
        "frames": s.frames,
        "dtype": s.dtype.name(),
        "pixel_size": s.calibration.pixel_size,
        "unit": s.calibration.unit,
        "metadata": s.metadata,
    })
}

fn convert(path: &Path, out: &Path, which: usize) -> Result<()> {
    let signals = load(path)?;
    let n = signals.len();
    let Some(s) = signals.into_iter().nth(which) else {
        bail!("{} has {n} signal(s); --signal {which} does not exist", path.display());
    };
    let bytes = atomlens_io::tiff_io::write_f32(s.width, s.height, &s.to_f32(), &s.calibration)?;
    std::fs::write(out, bytes).with_context(|| format!("writing {}", out.display()))?;
    let frames = if s.frames > 1 { format!("×{}", s.frames) } else { String::new() };
    eprintln!(
        "wrote {} ({}×{}{frames} float32, {} {})",
        out.display(),
        s.width,
        s.height,
        s.calibration.pixel_size,
        s.calibration.unit
    );
    Ok(())
}

/// Used by `files` to read one named file from disk.
fn read_named(path: &Path) -> Result<NamedFile> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(NamedFile::new(name, bytes))
}
