//! `atomlens bench batch`: the whole particle chain (clean-up, columns, particles, counts) over a
//! folder of synthetic 1024² images, as `atomlens batch` runs it. No peer does this chain, so the
//! figure is images per second against the bar of one per second on two cores.
use std::path::Path;

use anyhow::Result;
use atomlens_core::synth::{NanoparticleParams, nanoparticle};

use crate::cmd::batch::run_batch;
use atomlens_core::Recipe;

pub fn run(images: usize, size: usize) -> Result<()> {
    let dir = Path::new("target").join("bench-batch");
    let input = dir.join("images");
    std::fs::create_dir_all(&input)?;
    eprintln!("writing {images} synthetic {size}² particle images (3–7 nm Pt particles, Poisson noise)…");
    for k in 0..images {
        let p = NanoparticleParams {
            size,
            diameter_nm: 3.0 + (k % 5) as f64,
            rotation: 0.1 * k as f64,
            support_ripple: 0.05,
            seed: k as u64 + 1,
            ..Default::default()
        };
        let s = nanoparticle(&p)?;
        let px: Vec<f32> = s.image.data.iter().copied().collect();
        let bytes = atomlens_io::formats::tiff::write_f32(size, size, &px, &s.image.calibration)?;
        std::fs::write(input.join(format!("particle_{k:03}.tif")), bytes)?;
    }
    let recipe =
        Recipe { denoise: Some(atomlens_core::denoise::Method::Gaussian { sigma: 0.5 }), ..Default::default() };
    let (ok, n, secs) = run_batch(&input, &recipe, &dir.join("out"), &atomlens_core::recipe::OnCpu)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("| images | size | threads | analysed | seconds | images/s |");
    println!("|---|---|---|---|---|---|");
    println!("| {n} | {size}² | {threads} | {ok} | {secs:.1} | {:.2} |", n as f64 / secs);
    Ok(())
}
