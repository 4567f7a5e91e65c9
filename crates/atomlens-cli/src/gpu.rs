//! `--gpu`: the adapter wgpu finds natively, its kernels self-checked against the CPU before
//! the first use. No adapter is an error (the user asked for the GPU); a kernel that fails
//! its self-check or its run falls back to the CPU with a note saying why.
use anyhow::{Result, bail};
use atomlens_core::columns::FitRequest;
use atomlens_core::columns::fit::AtomColumn;
use atomlens_core::denoise::Method;
use atomlens_core::recipe::Offload;
use atomlens_gpu::{Gpu, GpuError};
use ndarray::{Array2, ArrayView2};

/// The native GPU, or an error naming why there is none.
pub fn open() -> Result<Gpu> {
    match pollster::block_on(Gpu::new(atomlens_gpu::default_backends())) {
        Ok(gpu) => {
            eprintln!("GPU: {}", gpu.report.label());
            Ok(gpu)
        }
        Err(e) => bail!("--gpu: {e} (run without --gpu for the CPU path)"),
    }
}

/// Run `gpu_path` after `check` passes; on any GPU failure say why and run `cpu_path`.
/// Returns the result and which ran ("GPU" or "CPU").
pub fn or_cpu<T>(
    what: &str,
    check: impl FnOnce() -> Result<(), GpuError>,
    gpu_path: impl FnOnce() -> Result<T, GpuError>,
    cpu_path: impl FnOnce() -> Result<T>,
) -> Result<(T, &'static str)> {
    match check().and_then(|()| gpu_path()) {
        Ok(v) => Ok((v, "GPU")),
        Err(e) => {
            eprintln!("note: {what} ran on the CPU: {e}");
            Ok((cpu_path()?, "CPU"))
        }
    }
}

/// The particle chain's and the recipes' work on the GPU (`--gpu` on `particles` and `batch`):
/// the column fits and non-local means, each kernel self-checked once; a failure is a note and
/// the CPU does that part.
pub struct GpuOffload {
    gpu: Gpu,
    fit: bool,
    nlm: bool,
}

impl GpuOffload {
    /// The native GPU with its kernels checked.
    pub fn open() -> Result<GpuOffload> {
        let gpu = open()?;
        let check = |what: &str, r: Result<(), GpuError>| match r {
            Ok(()) => true,
            Err(e) => {
                eprintln!("note: {what} runs on the CPU: {e}");
                false
            }
        };
        let fit = check("column fitting", pollster::block_on(atomlens_gpu::columns::self_check(&gpu)));
        let nlm = check("non-local means", pollster::block_on(atomlens_gpu::nlm::self_check(&gpu)));
        Ok(GpuOffload { gpu, fit, nlm })
    }
}

fn kept<T>(what: &str, r: Result<T, GpuError>) -> Option<T> {
    r.map_err(|e| eprintln!("note: {what} ran on the CPU: {e}")).ok()
}

impl Offload for GpuOffload {
    fn fit(&self, img: ArrayView2<f32>, req: &FitRequest) -> Option<Vec<AtomColumn>> {
        let run = || pollster::block_on(atomlens_gpu::columns::fit_columns(&self.gpu, img, &req.seeds, &req.fit));
        if self.fit { kept("column fitting", run()) } else { None }
    }

    fn denoise(&self, img: ArrayView2<f32>, method: &Method) -> Option<Array2<f32>> {
        let nlm = matches!(method, Method::NonLocalMeans { .. });
        let run = || pollster::block_on(atomlens_gpu::nlm::apply(&self.gpu, img, method));
        if self.nlm && nlm { kept("non-local means", run()) } else { None }
    }
}
