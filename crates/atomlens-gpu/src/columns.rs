//! Column fitting on the GPU: `core::columns::fit::Refinement` makes every decision (centres of
//! mass, windows, neighbours, re-centring, outliers, relaxed joint passes, error bars in f64);
//! each stage's Levenberg–Marquardt fits run here in one dispatch per batch (`shaders/fit.wgsl`,
//! one invocation per column, every iteration inside it, one readback per batch).
use atomlens_core::columns::fit::{AtomColumn, FitParams, Job, Prepared, Refinement, Shape, Window};
use ndarray::{Array2, ArrayView2};
use rayon::prelude::*;

use crate::{Gpu, GpuError};

/// Positions agree with the CPU's within this (px): f32 sums stop the iterations at points a
/// fraction of a standard error apart.
pub const POSITION_TOLERANCE: f64 = 0.005;
/// Widths agree within this fraction where the window pins them down ...
pub const WIDTH_TOLERANCE: f64 = 1e-3;

/// ... and within a tenth of their own standard error where it does not: in a small window the
/// cost is nearly flat along (height up, background down, width up), and both paths stop once
/// a step would gain less than 1e-3 noise variances (within 0.03 standard errors of the
/// optimum, `core::columns::fit::lm`), f32 and f64 at different points of that valley.
pub fn width_tolerance(sigma: f64, sigma_err: f64) -> f64 {
    (WIDTH_TOLERANCE * sigma).max(0.1 * sigma_err)
}

/// As `core::columns::fit::fit_columns`, with the fits on the GPU. The caller checks the input
/// first (an input the CPU would refuse fails here as a GPU error).
pub async fn fit_columns(
    gpu: &Gpu,
    img: ArrayView2<'_, f32>,
    seeds: &[[f64; 2]],
    p: &FitParams,
) -> Result<Vec<AtomColumn>, GpuError> {
    let mut r = Refinement::new(img, seeds, p).map_err(|e| GpuError::Failed(e.to_string()))?;
    while !r.is_done() {
        let prepared: Vec<Prepared> = r.jobs().par_iter().map(|j| r.prepare(j)).collect();
        let fits = fit_batch(gpu, r.jobs(), &prepared, r.params()).await?;
        r.advance(fits);
    }
    Ok(r.finish())
}

/// The fits of `jobs`: kept ones as they are, the rest on the GPU.
async fn fit_batch(
    gpu: &Gpu,
    jobs: &[Job],
    prepared: &[Prepared],
    p: &FitParams,
) -> Result<Vec<Option<[f64; 7]>>, GpuError> {
    let mut out: Vec<Option<[f64; 7]>> =
        prepared.iter().map(|q| if let Prepared::Keep(k) = q { *k } else { None }).collect();
    let todo: Vec<(usize, &Window, &[f64; 2], f64)> = prepared
        .iter()
        .enumerate()
        .filter_map(|(k, q)| match q {
            Prepared::Fit { window, com, radius } => Some((k, window, com, *radius)),
            Prepared::Keep(_) => None,
        })
        .collect();
    // A few thousand columns per submit: well within a browser's GPU watchdog.
    for chunk in todo.chunks(gpu.fits_per_submit.max(1)) {
        // Per job: pixels relative to the window's centre and mean (added back below).
        let mut info: Vec<[u32; 4]> = Vec::with_capacity(chunk.len());
        let mut starts: Vec<f32> = Vec::with_capacity(12 * chunk.len());
        let mut px: Vec<f32> = Vec::new();
        let mut shift: Vec<[f64; 3]> = Vec::with_capacity(chunk.len());
        for &(k, w, com, radius) in chunk {
            let [cx, cy] = w.centre;
            let mean = if w.data.is_empty() { 0.0 } else { w.data.iter().sum::<f64>() / w.data.len() as f64 };
            let circ = p.shape == Shape::Circular;
            let free = jobs[k].free.unwrap_or(if circ { 5 } else { 7 });
            let flags = u32::from(circ) | if jobs[k].start.is_some() { 2 } else { 0 };
            info.push([(px.len() / 3) as u32, w.data.len() as u32, free as u32, flags]);
            for i in 0..w.data.len() {
                px.extend([(w.xs[i] - cx) as f32, (w.ys[i] - cy) as f32, (w.data[i] - mean) as f32]);
            }
            let s = jobs[k].start.unwrap_or([0.0; 7]);
            starts.extend([(com[0] - cx) as f32, (com[1] - cy) as f32, radius as f32]);
            starts.extend([s[0] - cx, s[1] - cy, s[2], s[3] - mean, s[4], s[5], s[6]].map(|v| v as f32));
            starts.extend([0.0, 0.0]);
            shift.push([cx, cy, mean]);
        }
        let n = chunk.len();
        let params = gpu.uniform(&[n as u32, p.max_iterations as u32, 0, 0]);
        let (info, starts, px) =
            (gpu.upload("fit jobs", &info)?, gpu.upload("fit starts", &starts)?, gpu.upload("windows", &px)?);
        let fitted = gpu.scratch("fits", 8 * n)?;
        let mut encoder = gpu.encoder();
        let groups = n.div_ceil(64);
        let (gx, gy) = (groups.min(65_535), groups.div_ceil(65_535));
        let buffers = [Some(&params), Some(&info), Some(&starts), Some(&px), Some(&fitted)];
        gpu.dispatch(&mut encoder, &gpu.pipelines.fit, &buffers, [gx as u32, gy as u32, 1]);
        gpu.submit(encoder).await?;
        let back = gpu.read(&fitted, 8 * n).await?;
        for (slot, (&(k, ..), [cx, cy, mean])) in chunk.iter().zip(shift).enumerate() {
            let v = &back[8 * slot..8 * slot + 8];
            out[k] = (v[7] == 1.0).then(|| {
                let q: [f64; 7] = std::array::from_fn(|d| v[d] as f64);
                [q[0] + cx, q[1] + cy, q[2], q[3] + mean, q[4], q[5], q[6]]
            });
        }
    }
    Ok(out)
}

/// The start-up self-check: a small noisy lattice (odd size, columns at the border) fitted both
/// ways; positions within [`POSITION_TOLERANCE`].
pub async fn self_check(gpu: &Gpu) -> Result<(), GpuError> {
    let (img, seeds) = check_lattice();
    let p = FitParams::default();
    let cpu = atomlens_core::columns::fit::fit_columns(img.view(), &seeds, &p)
        .map_err(|e| GpuError::Failed(e.to_string()))?;
    let got = fit_columns(gpu, img.view(), &seeds, &p).await?;
    let worst = cpu
        .iter()
        .zip(&got)
        .map(|(a, b)| {
            if a.status != b.status {
                f64::INFINITY
            } else if a.x.is_nan() {
                0.0
            } else {
                (a.x - b.x).abs().max((a.y - b.y).abs())
            }
        })
        .fold(0.0, f64::max);
    if !(worst <= POSITION_TOLERANCE) {
        return Err(GpuError::SelfCheck {
            kernel: "column fitting",
            detail: format!("largest position difference {worst:.2e} px"),
        });
    }
    Ok(())
}

/// 5 × 4 columns 7 px apart with a little deterministic noise, seeds a pixel off.
fn check_lattice() -> (Array2<f32>, Vec<[f64; 2]>) {
    let mut seeds = Vec::new();
    let mut img = Array2::from_shape_fn((31, 37), |(y, x)| 10.0 + ((x * 7 + y * 13) % 5) as f32 * 0.4);
    for i in 0..5 {
        for j in 0..4 {
            let (cx, cy) = (4.3 + 7.0 * i as f64, 4.6 + 7.0 * j as f64);
            for ((y, x), v) in img.indexed_iter_mut() {
                let d2 = (x as f64 - cx).powi(2) + (y as f64 - cy).powi(2);
                *v += (40.0 * (-d2 / (2.0 * 1.4 * 1.4)).exp()) as f32;
            }
            seeds.push([cx.round() + 0.5, cy.round() - 0.5]);
        }
    }
    (img, seeds)
}
