//! # atomlens-gpu
//!
//! The GPU side of atomlens, through wgpu: the browser's WebGPU in the worker, Vulkan/GL (Mesa
//! lavapipe/llvmpipe on machines without a GPU) natively. For now it finds an adapter and says
//! which; compute kernels, each tested against its CPU reference in `atomlens-core`, come later.
//! Without an adapter every analysis runs on the CPU path and the UI says so.
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

use serde::{Deserialize, Serialize};

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
        let name = match (self.name.is_empty(), self.backend.as_str()) {
            (false, _) => self.name.as_str(),
            (true, "BrowserWebGpu") => "WebGPU adapter",
            (true, _) => "unnamed adapter",
        };
        let soft = if self.device_type == "Cpu" { ", software" } else { "" };
        format!("{name} ({}{soft})", self.backend)
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

/// Ask wgpu for an adapter. `Err` carries wgpu's reason (no WebGPU in this browser, no
/// Vulkan/GL driver, …) for the UI to show; it is not a failure of the analysis.
pub async fn probe(backends: wgpu::Backends) -> Result<AdapterReport, String> {
    let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
    desc.backends = backends;
    let instance = wgpu::Instance::new(desc);
    let adapter = instance
        .request_adapter(&wgpu::RequestAdapterOptions::default())
        .await
        .map_err(|e| format!("no GPU adapter: {e}"))?;
    let info = adapter.get_info();
    Ok(AdapterReport {
        name: info.name.clone(),
        backend: format!("{:?}", info.backend),
        device_type: format!("{:?}", info.device_type),
        driver: [info.driver.as_str(), info.driver_info.as_str()]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(" "),
    })
}

#[cfg(all(test, not(target_arch = "wasm32")))]
mod tests {
    use super::*;

    /// The test machines have Mesa's software Vulkan/GL (installed by `cargo xtask test`), so an
    /// adapter must be found; on a machine with neither this fails with wgpu's reason.
    #[test]
    fn native_adapter_is_found() {
        let report = pollster::block_on(probe(default_backends())).expect("an adapter (install mesa-vulkan-drivers)");
        eprintln!("adapter: {}", report.label());
        assert!(!report.backend.is_empty());
    }
}
