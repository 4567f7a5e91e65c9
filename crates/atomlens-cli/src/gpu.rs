//! `--gpu`: the adapter wgpu finds natively, its kernels self-checked against the CPU before
//! the first use. No adapter is an error (the user asked for the GPU); a kernel that fails
//! its self-check or its run falls back to the CPU with a note saying why.
use anyhow::{Result, bail};
use atomlens_gpu::{Gpu, GpuError};

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
