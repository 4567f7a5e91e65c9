//! `atomlens bench gpu`: each GPU kernel against its CPU twin (rayon on every core) on the same
//! synthetic data in one run, with the adapter named and the largest difference between the two.
//! Times are whole calls (upload, every submit, readback; the CPU's own preparation on both
//! sides). Differences: positions in px (columns), of the image's range (NLM), of the volume's
//! largest value (tomography). A software adapter (lavapipe, SwiftShader) proves correctness only: its times are
//! printed for the record, never as a speed-up.
use std::time::Instant;

use anyhow::Result;
use atomlens_core::denoise::Method;
use atomlens_core::image::Noise;
use atomlens_core::synth::{TrueColumn, at_dose, square_lattice};
use atomlens_core::tomo::phantom::{Phantom, phantom, tilt_range, tilt_series};
use atomlens_core::tomo::{Algorithm, Plan, Preparation, TiltSeries};
use ndarray::Array2;

/// `big`: the sizes (30 276 columns; a 2048² image; 256³ from 141 tilts); otherwise
/// sizes a software adapter finishes in seconds.
pub fn run(big: bool) -> Result<()> {
    let gpu = crate::gpu::open()?;
    let soft = gpu.report.device_type == "Cpu";
    let threads = rayon::current_num_threads();
    let mut rows: Vec<[String; 6]> = Vec::new();

    // Column fitting: a lattice of columns 8 px apart (4096 in 512²; 174² = 30 276 in 1392²),
    // seeds a fraction of a pixel off.
    let (img, truth) = lattice(if big { 1392 } else { 512 });
    let seeds: Vec<[f64; 2]> = truth.iter().map(|c| [c.x + 0.3, c.y - 0.2]).collect();
    let p = atomlens_core::columns::fit::FitParams::default();
    let t = Instant::now();
    let cpu = atomlens_core::columns::fit::fit_columns(img.view(), &seeds, &p)?;
    let cpu_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let got = pollster::block_on(atomlens_gpu::columns::fit_columns(&gpu, img.view(), &seeds, &p))?;
    let gpu_s = t.elapsed().as_secs_f64();
    let diff = cpu
        .iter()
        .zip(&got)
        .filter(|(a, b)| a.x.is_finite() && b.x.is_finite())
        .map(|(a, b)| (a.x - b.x).abs().max((a.y - b.y).abs()))
        .fold(0.0, f64::max);
    rows.push(row(
        "column fitting (elliptical, 2 joint passes)",
        &format!("{} columns", seeds.len()),
        cpu_s,
        gpu_s,
        diff,
    ));

    let side = if big { 2048 } else { 512 };
    let (img, _) = lattice(side);
    let method = Method::NonLocalMeans { patch: 2, search: 2, h: None, noise: Noise::Auto, lattice: true };
    let t = Instant::now();
    let cpu = atomlens_core::denoise::apply(img.view(), &method)?;
    let cpu_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let got = pollster::block_on(atomlens_gpu::nlm::apply(&gpu, img.view(), &method))?;
    let gpu_s = t.elapsed().as_secs_f64();
    let range = img.iter().fold(f32::MIN, |m, v| m.max(*v)) - img.iter().fold(f32::MAX, |m, v| m.min(*v));
    let diff = cpu.iter().zip(got.iter()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max) / range;
    rows.push(row("non-local means (5×5 patches, lattice offsets)", &format!("{side}²"), cpu_s, gpu_s, diff as f64));

    let (n, tilts, iterations) = if big { (256, 141, 20) } else { (96, 61, 20) };
    let vol = phantom(Phantom::SheppLogan, n);
    let angles = tilt_range(-70.0, 70.0, tilts);
    let series = tilt_series(&vol, &angles, None, 0);
    for method in [Algorithm::Sirt { iterations, nonnegative: true }, Algorithm::Fbp { filter: Default::default() }] {
        let ts = TiltSeries { images: series.view(), angles_deg: &angles };
        let t = Instant::now();
        let mut cpu = Plan::new(&ts, n, method, Preparation::default())?;
        while cpu.done() < n {
            cpu.step(16);
        }
        let cpu_s = t.elapsed().as_secs_f64();
        let t = Instant::now();
        let mut on_gpu = Plan::new(&ts, n, method, Preparation::default())?;
        pollster::block_on(atomlens_gpu::tomo::reconstruct(&gpu, &mut on_gpu, &mut |_| {}))?;
        let gpu_s = t.elapsed().as_secs_f64();
        let (a, b) = (cpu.volume().data, on_gpu.volume().data);
        let scale = a.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let diff =
            a.iter().zip(b.iter()).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max) / scale.max(f32::MIN_POSITIVE);
        let name = match method {
            Algorithm::Sirt { .. } => format!("SIRT ({iterations} iterations)"),
            _ => "FBP (Shepp–Logan)".into(),
        };
        rows.push(row(&name, &format!("{n}³, {tilts} tilts"), cpu_s, gpu_s, diff as f64));
    }

    println!(
        "adapter: {}{}",
        gpu.report.label(),
        if gpu.report.driver.is_empty() { String::new() } else { format!(", {}", gpu.report.driver) }
    );
    println!("CPU: {threads} rayon threads");
    println!();
    println!("| kernel | size | CPU threads (s) | GPU (s) | CPU / GPU | largest difference |");
    println!("|---|---|---|---|---|---|");
    for r in &rows {
        println!("| {} |", r.join(" | "));
    }
    if soft {
        println!();
        println!("The adapter is a software rasteriser: these GPU times prove the path runs, not its speed.");
    }
    Ok(())
}

fn row(name: &str, size: &str, cpu_s: f64, gpu_s: f64, diff: f64) -> [String; 6] {
    [
        name.into(),
        size.into(),
        format!("{cpu_s:.3}"),
        format!("{gpu_s:.3}"),
        format!("{:.2}×", cpu_s / gpu_s),
        format!("{diff:.1e}"),
    ]
}

/// A square lattice of columns 8 px apart (σ 1.6 px) in Poisson counts: 4 on the background,
/// 44 at a column's peak.
fn lattice(side: usize) -> (Array2<f32>, Vec<TrueColumn>) {
    let (clean, truth) = square_lattice(side / 8, 8.0, 1.6);
    (at_dose(clean.view(), 4.0, 7), truth)
}
