//! # atomlens-gpu
//!
//! The GPU side of atomlens, through wgpu: the browser's WebGPU in the engine worker, Vulkan/GL
//! natively (Mesa lavapipe/llvmpipe on machines without a GPU). Each kernel is the twin of a CPU
//! function in `atomlens-core`, which stays the reference; the tests hold them to stated
//! tolerances on random data at odd sizes.
//!
//! | kernel | WGSL | CPU twin |
//! |---|---|---|
//! | column fitting ([`columns`]) | `shaders/fit.wgsl` | `core::columns::fit` (Levenberg–Marquardt) |
//! | non-local means ([`nlm`]) | `shaders/nlm.wgsl` | `core::denoise::nlm::nl_means` |
//! | projector, adjoint, SIRT, FBP ([`tomo`]) | `shaders/project.wgsl` | `core::tomo::project`, `iterative`, `fbp` |
//!
//! Everything is async (a readback resolves on the browser's event loop; natively the device is
//! polled), and a [`Gpu`] lives on the thread that made it. Without an adapter, or when a kernel
//! fails, callers run the CPU path and say why ([`GpuError`]).
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

use serde::{Deserialize, Serialize};

pub mod columns;
mod device;
pub mod nlm;
mod shaders;
pub mod tomo;

pub use device::Gpu;

/// Why the GPU path did not run; the caller falls back to the CPU and shows this.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GpuError {
    /// No adapter (no WebGPU in this browser, no Vulkan/GL driver).
    #[error("no GPU adapter: {0}")]
    NoAdapter(String),
    /// The adapter would not give a device, or the kernels did not compile on it.
    #[error("the GPU device could not be made: {0}")]
    Device(String),
    /// A buffer larger than the device allows in one binding.
    #[error("{what} needs {bytes} bytes, more than the GPU allows in one buffer ({limit} bytes)")]
    TooLarge {
        /// What the buffer holds.
        what: String,
        /// Bytes asked for.
        bytes: u64,
        /// The device's limit.
        limit: u64,
    },
    /// A dispatch failed or the device was lost.
    #[error("the GPU failed: {0}")]
    Failed(String),
    /// The kernel's start-up self-check against the CPU failed on this adapter.
    #[error("the GPU {kernel} kernel disagrees with the CPU on its self-check ({detail})")]
    SelfCheck {
        /// The kernel.
        kernel: &'static str,
        /// By how much.
        detail: String,
    },
}

/// The adapter's info in words.
pub(crate) fn report(info: &wgpu::AdapterInfo) -> AdapterReport {
    AdapterReport {
        name: info.name.clone(),
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
        driver: [info.driver.as_str(), info.driver_info.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// The adapter wgpu found, in words the UI shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AdapterReport {
    /// Adapter name (`llvmpipe (LLVM 15…)`, or the browser's description; may be empty in
    /// browsers, which hide it).
    pub name: String,
    /// Backend (`BrowserWebGpu`, `Vulkan`, `Gl`, …).
    pub backend: String,
    /// `Cpu` for software rasterisers, `DiscreteGpu`, `IntegratedGpu`, …
    pub device_type: String,
    /// Driver and its version where reported.
    pub driver: String,
}

impl AdapterReport {
    /// One line for the status bar.
    pub fn label(&self) -> String {
        // Browsers hide the adapter's name from pages; say whose it is instead.
        let soft = self.device_type == "Cpu";
        match (self.name.is_empty(), self.backend.as_str()) {
            (true, "BrowserWebGpu") => format!("WebGPU{}", if soft { " (software)" } else { "" }),
            (empty, backend) => {
                let name = if empty { "unnamed adapter" } else { self.name.as_str() };
                format!("{name} ({backend}{})", if soft { ", software" } else { "" })
            }
        }
    }
}

/// The backends to try on this target.
pub fn default_backends() -> wgpu::Backends {
    if cfg!(target_arch = "wasm32") {
        wgpu::Backends::BROWSER_WEBGPU
    } else {
        wgpu::Backends::VULKAN | wgpu::Backends::GL
    }
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    /// The test machines have Mesa's software Vulkan/GL (installed by `cargo xtask test`), so an
    /// adapter must be found; on a machine with neither this fails with wgpu's reason.
    #[test]
    fn native_adapter_is_found() {
        let gpu = pollster::block_on(Gpu::new(default_backends())).expect("an adapter (install mesa-vulkan-drivers)");
        let report = &gpu.report;
        eprintln!("adapter: {}", report.label());
        assert!(!report.backend.is_empty());
    }
}
