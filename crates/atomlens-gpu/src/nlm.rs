//! Non-local means on the GPU: the same weights and sums as `core::denoise::nlm::nl_means`, one
//! invocation per pixel doing every offset and its whole patch distance (the direct form; the
//! CPU's running sums would serialise what the GPU does in parallel). The variance
//! stabilisation, the offsets searched and the restore stay on the CPU, shared with the CPU path.
use atomlens_core::denoise::Method;
use atomlens_core::denoise::nlm::STRENGTH;
use atomlens_core::denoise::patches::{Offsets, Stabilised};
use atomlens_core::image::Noise;
use atomlens_core::image::filter::reflect;
use ndarray::{Array2, ArrayView2};

use crate::{Gpu, GpuError};

/// Work per submit (pixels × offsets × patch area): about 10⁹ kernel steps, well under a
/// browser's GPU watchdog on any real adapter.
const WORK_PER_SUBMIT: usize = 1 << 30;

/// Tolerance against the CPU twin, in the plane's noise units (σ = 1): the CPU's `exp` is a
/// polynomial to 3e-6 and its running sums drift by a few ulps; both are far below this.
pub const TOLERANCE: f32 = 1e-4;

/// `method` (which must be non-local means) applied to `img` on the GPU: as
/// `core::denoise::apply` on the CPU. Check the method with `core::denoise::check` first.
pub async fn apply(gpu: &Gpu, img: ArrayView2<'_, f32>, method: &Method) -> Result<Array2<f32>, GpuError> {
    let &Method::NonLocalMeans { patch, search, h, noise, lattice } = method else {
        return Err(GpuError::Failed(format!("{} has no GPU kernel (non-local means has)", method.name())));
    };
    denoise(gpu, img, patch, search, lattice, h.unwrap_or(STRENGTH), noise).await
}

/// As `core::denoise::nlm::denoise`, with the filter on the GPU.
pub async fn denoise(
    gpu: &Gpu,
    img: ArrayView2<'_, f32>,
    patch: usize,
    search: usize,
    lattice: bool,
    h: f64,
    noise: Noise,
) -> Result<Array2<f32>, GpuError> {
    let Some(plane) = Stabilised::new(img, noise) else { return Ok(img.to_owned()) };
    let offsets = Offsets::searched(img, search, lattice);
    let out = nl_means(gpu, plane.view(), patch, &offsets, 1.0, h).await?;
    Ok(plane.restore(out.as_slice().expect("standard layout")))
}

/// As `core::denoise::nlm::nl_means`: patches of `(2·patch+1)²` compared at `offsets`, noise
/// `sigma`, strength `h_param`; non-finite pixels read as 0 and come back NaN.
pub async fn nl_means(
    gpu: &Gpu,
    img: ArrayView2<'_, f32>,
    patch: usize,
    offsets: &Offsets,
    sigma: f64,
    h_param: f64,
) -> Result<Array2<f32>, GpuError> {
    let (h, w) = img.dim();
    if h == 0 || w == 0 {
        return Ok(img.to_owned());
    }
    let m = offsets.margin + patch + 1;
    let (ph, pw) = (h + 2 * m, w + 2 * m);
    let mut padded = Vec::with_capacity(ph * pw);
    for py in 0..ph {
        let row = img.row(reflect(py as i64 - m as i64, h));
        padded.extend((0..pw).map(|px| {
            let v = row[reflect(px as i64 - m as i64, w)];
            if v.is_finite() { v } else { 0.0 }
        }));
    }
    let list: Vec<[i32; 2]> = offsets.list.iter().map(|&[dy, dx]| [dy as i32, dx as i32]).collect();
    let padded = gpu.upload("padded image", &padded)?;
    let offs = gpu.upload("offsets", &list)?;
    let out = gpu.scratch("filtered image", h * w)?;
    let area = (2 * patch + 1) * (2 * patch + 1);
    let rows = (WORK_PER_SUBMIT / (w * list.len() * area).max(1)).clamp(1, h);
    let params = |y0: usize| -> [u32; 12] {
        [
            w as u32,
            h as u32,
            pw as u32,
            m as u32,
            patch as u32,
            list.len() as u32,
            y0 as u32,
            rows as u32,
            (1.0 / area as f32).to_bits(),
            ((2.0 * sigma * sigma) as f32).to_bits(),
            ((1.0 / (h_param * h_param).max(1e-12)) as f32).to_bits(),
            0,
        ]
    };
    let uniform = gpu.uniform(&params(0));
    for y0 in (0..h).step_by(rows) {
        gpu.queue.write_buffer(&uniform, 0, bytemuck::cast_slice(&params(y0)));
        let mut encoder = gpu.encoder();
        let buffers = [Some(&uniform), Some(&padded), Some(&offs), Some(&out)];
        gpu.dispatch(&mut encoder, &gpu.pipelines.nlm, &buffers, [w.div_ceil(16) as u32, rows.div_ceil(16) as u32, 1]);
        gpu.submit(encoder).await?;
    }
    let px = gpu.read(&out, h * w).await?;
    let mut out = Array2::from_shape_vec((h, w), px).expect("h × w pixels");
    if img.iter().any(|v| !v.is_finite()) {
        out.zip_mut_with(&img, |o, v| *o = if v.is_finite() { *o } else { f32::NAN });
    }
    if out.iter().zip(img.iter()).any(|(o, v)| v.is_finite() && !o.is_finite()) {
        return Err(GpuError::Failed("non-local means gave non-finite pixels".into()));
    }
    Ok(out)
}

/// The start-up self-check: a small noisy image at odd size through both paths.
pub async fn self_check(gpu: &Gpu) -> Result<(), GpuError> {
    let img = Array2::from_shape_fn((37, 29), |(y, x)| {
        let v = ((x * 7 + y * 13) % 11) as f32 * 0.3 + ((x as f32) * 0.7).sin() * 2.0;
        v + ((x * 31 + y * 17) % 7) as f32 * 0.25
    });
    let offsets = Offsets::window(2);
    let cpu = atomlens_core::denoise::nlm::nl_means(img.view(), 2, &offsets, 0.5, 0.4);
    let got = nl_means(gpu, img.view(), 2, &offsets, 0.5, 0.4).await?;
    let worst = cpu.iter().zip(got.iter()).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    if !(worst <= TOLERANCE * 10.0) {
        return Err(GpuError::SelfCheck { kernel: "non-local means", detail: format!("largest difference {worst}") });
    }
    Ok(())
}
