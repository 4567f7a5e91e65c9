//! `atomlens`: the command line. Every failure prints one line (`error: …`) and exits non-zero.
#![cfg_attr(test, allow(clippy::unwrap_used))]
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

use atomlens_cli::cmd::*;
use atomlens_cli::{bench, files};

// mimalloc keeps freed pages for the next allocation: glibc returns each large buffer (an
// image, a filtered copy) to the kernel and faults it in again, ~15 % of a `columns` run.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "atomlens",
    version,
    about = "Atomic-resolution STEM analysis: read, inspect and convert microscope images"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// Set every input image's pixel size (overrides the file's): a number and a unit, e.g.
    /// "0.25 Å", "25 pm", "0.02 nm"; "px" to drop the calibration.
    #[arg(long, global = true, value_name = "SIZE")]
    pixel_size: Option<String>,
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
    Count(count::CountArgs),
    /// Identical-location comparison of a before and an after image: kept, lost and new columns.
    Compare(compare::CompareArgs),
    /// Run the particle chain over every image in a folder with one recipe; summary table.
    Batch(batch::BatchArgs),
    /// Join the folders of `batch --shard I/N` runs into the one a single run writes.
    Merge(batch::MergeArgs),
    /// Run a session saved in the page again on the same files and check every number.
    Replay(replay::ReplayArgs),
    /// One self-contained HTML report of an image's analysis (figures, tables, parameters, hashes).
    Report(report::ReportArgs),
    /// Write synthetic test images with known truth (the demo particle, an ordered particle, an
    /// identical-location pair).
    Synth(synth::SynthArgs),
    /// Train a learned model on synthetic scenes (the committed ones were made so).
    Train(train::TrainArgs),
    /// Benchmarks against the peers, side by side in one run (needs ../shared; `gpu` does not).
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
    if let Some(size) = &cli.pixel_size {
        files::set_calibration(atomlens_core::Calibration::parse(size)?);
    }
    match cli.command {
        Command::Info { file, json } => info::info(&file, json),
        Command::Convert { file, out, signal } => convert::convert(&file, &out, signal),
        Command::Columns(args) => columns::run(args),
        Command::Gpa(args) => gpa::run(args),
        Command::Register(args) => register::run(args),
        Command::Denoise(args) => denoise::run(args),
        Command::Reconstruct(args) => reconstruct::run(args),
        Command::Particles(args) => particles::particles(args),
        Command::Count(args) => count::count(args),
        Command::Compare(args) => compare::compare(args),
        Command::Batch(args) => batch::batch(args),
        Command::Merge(args) => batch::merge(args),
        Command::Replay(args) => replay::replay(args),
        Command::Report(args) => report::report(args),
        Command::Synth(args) => synth::synth(args),
        Command::Train(args) => train::train(args),
        Command::Bench(args) => bench::run(args),
    }
}
