//! Tomography on the GPU: the Joseph projector and its exact adjoint for every slice of a slab at
//! once (`shaders/project.wgsl`), and SIRT, SART and FBP built on them, as
//! `core::tomo::{project, iterative, fbp}` on the CPU. The iterations run entirely on the GPU
//! (one submit per SIRT iteration or SART pass, nothing read back in between but the optional
//! live slice); volumes beyond one buffer run as slabs of slices (independent for a single tilt
//! axis). The geometry's tables are computed once in f64 from the CPU's own geometry; the
//! kernels step in f32, so the two paths differ by rounding (see [`TOLERANCE`]).
use atomlens_core::tomo::fbp::{Filter, filter_sinogram};
use atomlens_core::tomo::iterative::{SART_RELAX, inverse, sart_order};
use atomlens_core::tomo::project::Geometry;
use atomlens_core::tomo::{Algorithm, Plan};
use ndarray::{Array2, ArrayView3};

use crate::{Gpu, GpuError};

/// Relative difference of a GPU reconstruction from the CPU's after each iteration (f32 steps
/// of the ray positions against the CPU's f64).
pub const TOLERANCE: f64 = 1e-4;

/// Where a reconstruction has got to.
pub struct Progress<'a> {
    /// Slices finished.
    pub slices: usize,
    /// Of.
    pub total: usize,
    /// Iterations done in the current slab.
    pub iteration: usize,
    /// The middle slice of the current slab (`nz × nx`), every few iterations.
    pub preview: Option<&'a Array2<f32>>,
}

/// Iterations between live slices.
const PREVIEW_EVERY: usize = 5;

/// The projector of one geometry on one device: the per-tilt tables uploaded once.
pub struct Projector<'g> {
    gpu: &'g Gpu,
    nx: usize,
    nz: usize,
    tilts: usize,
    steps_max: usize,
    table: wgpu::Buffer,
    starts: wgpu::Buffer,
    /// A one-word stand-in for the bindings a mode does not read.
    unused: wgpu::Buffer,
}

/// One dispatch's `Params` (see the shader).
#[derive(Clone, Copy)]
struct Params {
    slices: usize,
    fused: bool,
    nonneg: bool,
    a0: usize,
    na: usize,
    per_tilt: bool,
}

impl<'g> Projector<'g> {
    /// Upload `g`'s tables: per tilt its slope, weight, stepping axis and steps; per tilt and step
    /// the ray's starting position, all from `g.trig()` exactly as `Geometry::trace` derives them.
    pub fn new(gpu: &'g Gpu, g: &Geometry) -> Result<Self, GpuError> {
        let (nx, nz) = (g.nx, g.nz);
        let steps_max = nx.max(nz);
        let (cx, cz, cu) = ((nx as f64 - 1.0) / 2.0, (nz as f64 - 1.0) / 2.0, (nx as f64 - 1.0) / 2.0);
        let mut table = Vec::with_capacity(4 * g.tilts());
        let mut starts = vec![0.0f32; g.tilts() * steps_max];
        for (a, &(c, s)) in g.trig().iter().enumerate() {
            let rows = c.abs() >= s.abs();
            // Along z rows: walk(nz, nx, c, s, cx, cz); along x columns: walk(nx, nz, s, c, cz, cx).
            let (steps, cos, sin, centre, other) = if rows { (nz, c, s, cx, cz) } else { (nx, s, c, cz, cx) };
            table.extend([(1.0 / cos) as f32, (1.0 / cos.abs()) as f32].map(f32::to_bits));
            table.extend([u32::from(rows), steps as u32]);
            for step in 0..steps {
                starts[a * steps_max + step] = ((-cu - (step as f64 - other) * sin) / cos + centre) as f32;
            }
        }
        Ok(Projector {
            gpu,
            nx,
            nz,
            tilts: g.tilts(),
            steps_max,
            table: gpu.upload("tilt table", &table)?,
            starts: gpu.upload("ray starts", &starts)?,
            unused: gpu.scratch("unused", 1)?,
        })
    }

    fn params(&self, p: Params) -> wgpu::Buffer {
        self.gpu.uniform(&[
            self.nx as u32,
            self.nz as u32,
            self.tilts as u32,
            p.slices as u32,
            u32::from(p.fused),
            u32::from(p.nonneg),
            self.steps_max as u32,
            p.a0 as u32,
            p.na as u32,
            u32::from(p.per_tilt),
            0,
            0,
        ])
    }

    /// Record `dst = A·src` (or, fused, `dst = (b − A·src)·scale`) for `p`'s tilts.
    fn forward_into(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        p: Params,
        src: &wgpu::Buffer,
        scale: Option<&wgpu::Buffer>,
        b: Option<&wgpu::Buffer>,
        dst: &wgpu::Buffer,
    ) {
        let (params, u) = (self.params(p), &self.unused);
        let buffers = [&params, &self.table, &self.starts, src, scale.unwrap_or(u), b.unwrap_or(u), dst].map(Some);
        let counts = [self.nx.div_ceil(64) as u32, p.na as u32, p.slices as u32];
        self.gpu.dispatch(encoder, &self.gpu.pipelines.forward, &buffers, counts);
    }

    /// Record `dst = Aᵀ·src` (or, fused, `dst += scale·Aᵀ·src`, clipped at 0 when asked).
    fn adjoint_into(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        p: Params,
        src: &wgpu::Buffer,
        scale: Option<&wgpu::Buffer>,
        dst: &wgpu::Buffer,
    ) {
        let params = self.params(p);
        let scale = scale.unwrap_or(&self.unused);
        let buffers = [Some(&params), Some(&self.table), Some(&self.starts), Some(src), Some(scale), None, Some(dst)];
        let counts = [self.nx.div_ceil(64) as u32, self.nz as u32, p.slices as u32];
        self.gpu.dispatch(encoder, &self.gpu.pipelines.adjoint, &buffers, counts);
    }

    fn plain(&self, slices: usize) -> Params {
        Params { slices, fused: false, nonneg: false, a0: 0, na: self.tilts, per_tilt: false }
    }

    /// Sinograms `[slice][tilt][bin]` of `slices` slices `[slice][z][x]`.
    pub async fn forward(&self, volume: &[f32], slices: usize) -> Result<Vec<f32>, GpuError> {
        let src = self.gpu.upload("slices", volume)?;
        let dst = self.gpu.scratch("sinograms", slices * self.tilts * self.nx)?;
        let mut encoder = self.gpu.encoder();
        self.forward_into(&mut encoder, self.plain(slices), &src, None, None, &dst);
        self.gpu.submit(encoder).await?;
        self.gpu.read(&dst, slices * self.tilts * self.nx).await
    }

    /// Back-projections `[slice][z][x]` (the adjoint) of sinograms `[slice][tilt][bin]`.
    pub async fn adjoint(&self, sinograms: &[f32], slices: usize) -> Result<Vec<f32>, GpuError> {
        let src = self.gpu.upload("sinograms", sinograms)?;
        let dst = self.gpu.scratch("slices", slices * self.nz * self.nx)?;
        let mut encoder = self.gpu.encoder();
        self.adjoint_into(&mut encoder, self.plain(slices), &src, None, &dst);
        self.gpu.submit(encoder).await?;
        self.gpu.read(&dst, slices * self.nz * self.nx).await
    }

    /// Slices per slab: as many as fit one binding, volume and sinograms alike.
    fn slab(&self, ny: usize) -> Result<usize, GpuError> {
        let per_slice = 4 * (self.nz * self.nx).max(self.tilts * self.nx) as u64;
        let fit = (self.gpu.max_binding / per_slice.max(1)) as usize;
        if fit == 0 {
            return Err(GpuError::TooLarge {
                what: "one slice and its sinogram".into(),
                bytes: per_slice,
                limit: self.gpu.max_binding,
            });
        }
        Ok(fit.min(ny).min(65_535))
    }
}

/// The sinograms `[slice][tilt][bin]` of rows `y0..y1` of projections `[tilt][y][x]`.
fn sinograms(images: ArrayView3<f32>, y0: usize, y1: usize) -> Vec<f32> {
    let (n, _, nx) = images.dim();
    let mut out = Vec::with_capacity((y1 - y0) * n * nx);
    for y in y0..y1 {
        for a in 0..n {
            out.extend(images.slice(ndarray::s![a, y, ..]).iter());
        }
    }
    out
}

/// Reconstruct every slice of `plan` on the GPU with its method, pushing the slices into it as
/// slabs finish; `progress` sees each iteration.
pub async fn reconstruct(gpu: &Gpu, plan: &mut Plan, progress: &mut dyn FnMut(Progress<'_>)) -> Result<(), GpuError> {
    // The tables, not the geometry: its CPU matrix is the size of several volumes.
    let method = plan.method();
    let (_, ny, nx) = plan.images().dim();
    let (nz, dtheta) = (plan.geometry().nz, plan.geometry().dtheta.clone());
    let proj = Projector::new(gpu, plan.geometry())?;
    let slab = proj.slab(ny)?;
    let mut y0 = plan.done();
    while y0 < ny {
        let y1 = (y0 + slab).min(ny);
        let slices = y1 - y0;
        let b = sinograms(plan.images(), y0, y1);
        let volume = match method {
            Algorithm::Fbp { filter } => fbp(&proj, &dtheta, &b, slices, filter).await?,
            Algorithm::Sirt { iterations, nonnegative } | Algorithm::Sart { iterations, nonnegative } => {
                let sart = matches!(method, Algorithm::Sart { .. });
                let mut each = |iteration: usize, preview: Option<&Array2<f32>>| {
                    progress(Progress { slices: y0, total: ny, iteration, preview })
                };
                iterate(&proj, &b, slices, iterations, nonnegative, sart, &mut each).await?
            }
        };
        if volume.iter().any(|v| !v.is_finite()) {
            return Err(GpuError::Failed("the reconstruction has non-finite voxels".into()));
        }
        plan.push(volume.chunks(nz * nx).map(|s| Array2::from_shape_vec((nz, nx), s.to_vec()).expect("nz × nx")));
        y0 = y1;
        progress(Progress { slices: y0, total: ny, iteration: 0, preview: None });
    }
    Ok(())
}

/// FBP of `slices` sinograms: filtered and weighted on the CPU (one FFT per row), back-projected
/// on the GPU.
async fn fbp(
    proj: &Projector<'_>,
    dtheta: &[f64],
    b: &[f32],
    slices: usize,
    filter: Filter,
) -> Result<Vec<f32>, GpuError> {
    let (n, nx) = (proj.tilts, proj.nx);
    let mut q = Vec::with_capacity(b.len());
    for s in 0..slices {
        let sino = ndarray::ArrayView2::from_shape((n, nx), &b[s * n * nx..(s + 1) * n * nx]).expect("tilts × bins");
        let mut f = filter_sinogram(sino, filter);
        for (mut row, &d) in f.rows_mut().into_iter().zip(dtheta) {
            row.mapv_inplace(|v| v * d as f32);
        }
        q.extend(f.iter());
    }
    proj.adjoint(&q, slices).await
}

/// SIRT (every tilt per update) or SART (one tilt per update, relaxed, golden-ratio order) of
/// `slices` sinograms `b`, from zero, entirely on the GPU.
async fn iterate(
    proj: &Projector<'_>,
    b: &[f32],
    slices: usize,
    iterations: usize,
    nonnegative: bool,
    sart: bool,
    each: &mut dyn FnMut(usize, Option<&Array2<f32>>),
) -> Result<Vec<f32>, GpuError> {
    let gpu = proj.gpu;
    let (n, nx, nz) = (proj.tilts, proj.nx, proj.nz);
    // Ray sums A·1 and pixel sums Aᵀ·1 (per tilt for SART) on one slice, inverted on the CPU.
    let rays = proj.forward(&vec![1.0; nz * nx], 1).await?;
    let r: Vec<f32> = rays.iter().map(|&v| inverse(v)).collect();
    let c: Vec<f32> = if sart {
        let mut c = Vec::with_capacity(n * nz * nx);
        for a in 0..n {
            let mut one = vec![0.0f32; n * nx];
            one[a * nx..(a + 1) * nx].fill(1.0);
            c.extend(proj.adjoint(&one, 1).await?.iter().map(|&v| SART_RELAX * inverse(v)));
        }
        c
    } else {
        proj.adjoint(&vec![1.0; n * nx], 1).await?.iter().map(|&v| inverse(v)).collect()
    };
    let (r, c) = (gpu.upload("inverse ray sums", &r)?, gpu.upload("inverse pixel sums", &c)?);
    let b = gpu.upload("sinograms", b)?;
    let x = gpu.scratch("slices", slices * nz * nx)?;
    let res = gpu.scratch("residuals", slices * n * nx)?;
    let fused = Params { slices, fused: true, nonneg: nonnegative, a0: 0, na: n, per_tilt: false };
    let middle = slices / 2;
    for it in 1..=iterations {
        let mut encoder = gpu.encoder();
        if sart {
            for a in sart_order(n) {
                let p = Params { a0: a, na: 1, per_tilt: true, ..fused };
                proj.forward_into(&mut encoder, p, &x, Some(&r), Some(&b), &res);
                proj.adjoint_into(&mut encoder, p, &res, Some(&c), &x);
            }
        } else {
            proj.forward_into(&mut encoder, fused, &x, Some(&r), Some(&b), &res);
            proj.adjoint_into(&mut encoder, fused, &res, Some(&c), &x);
        }
        gpu.submit(encoder).await?;
        if it % PREVIEW_EVERY == 0 && it < iterations {
            let px = gpu.read_at(&x, middle * nz * nx, nz * nx).await?;
            each(it, Some(&Array2::from_shape_vec((nz, nx), px).expect("nz × nx")));
        } else {
            each(it, None);
        }
    }
    gpu.read(&x, slices * nz * nx).await
}

/// The start-up self-check: projector, adjoint and five SIRT iterations of a small odd-sized
/// case against the CPU.
pub async fn self_check(gpu: &Gpu) -> Result<(), GpuError> {
    let angles: Vec<f64> = (0..13).map(|k| -66.0 + 11.0 * k as f64).collect();
    let g = Geometry::new(19, 11, &angles);
    let slice = Array2::from_shape_fn((11, 19), |(z, x)| ((x * 5 + z * 3) % 7) as f32 * 0.5);
    let sino = g.forward(slice.view());
    let cpu = atomlens_core::tomo::iterative::sirt_slice(&g, sino.view(), 5, true, None);
    let proj = Projector::new(gpu, &g)?;
    let flat: Vec<f32> = sino.iter().copied().collect();
    let got = iterate(&proj, &flat, 1, 5, true, false, &mut |_, _| {}).await?;
    let scale = cpu.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
    let worst = cpu.iter().zip(&got).map(|(a, b)| (a - b).abs() as f64).fold(0.0, f64::max);
    if !(worst <= 10.0 * TOLERANCE * scale) {
        return Err(GpuError::SelfCheck {
            kernel: "SIRT",
            detail: format!("largest difference {worst:.2e} of {scale:.2}"),
        });
    }
    Ok(())
}
