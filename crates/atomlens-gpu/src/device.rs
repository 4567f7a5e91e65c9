//! One GPU device and everything built on it: the adapter's report, the pipelines (compiled once
//! here, shared by every call), buffer upload and the one async readback. Errors wgpu raises
//! outside an error scope are kept (not panicked on) and turn the next readback into a
//! [`GpuError`], so a failed dispatch can never be read back as a result.
use std::sync::{Arc, Mutex};

use crate::{AdapterReport, GpuError, shaders};

/// The compute pipelines, one per kernel entry point.
pub(crate) struct Pipelines {
    pub nlm: wgpu::ComputePipeline,
    pub forward: wgpu::ComputePipeline,
    pub adjoint: wgpu::ComputePipeline,
    pub fit: wgpu::ComputePipeline,
}

/// A device with its queue and pipelines. Not `Send` in the threaded browser build (wgpu's
/// handles are not): it lives on the thread that made it, the engine worker's own.
pub struct Gpu {
    pub(crate) device: wgpu::Device,
    pub(crate) queue: wgpu::Queue,
    pub(crate) pipelines: Pipelines,
    /// The adapter, in words.
    pub report: AdapterReport,
    /// The largest storage buffer one binding may hold (bytes).
    pub max_binding: u64,
    /// Column fits per submit (tests lower it to cross batch boundaries).
    pub fits_per_submit: usize,
    /// The first error wgpu reported outside a scope, or the loss of the device.
    fault: Arc<Mutex<Option<String>>>,
}

impl Gpu {
    /// The first adapter of `backends`, a device with the adapter's own limits (larger buffers
    /// than WebGPU's defaults where it has them) and the pipelines compiled.
    pub async fn new(backends: wgpu::Backends) -> Result<Gpu, GpuError> {
        let mut desc = wgpu::InstanceDescriptor::new_without_display_handle();
        desc.backends = backends;
        let instance = wgpu::Instance::new(desc);
        let adapter = instance
            .request_adapter(&wgpu::RequestAdapterOptions::default())
            .await
            .map_err(|e| GpuError::NoAdapter(e.to_string()))?;
        let report = crate::report(&adapter.get_info());
        let limits = adapter.limits();
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("atomlens"),
                required_limits: limits.clone(),
                ..Default::default()
            })
            .await
            .map_err(|e| GpuError::Device(e.to_string()))?;
        let fault = Arc::new(Mutex::new(None::<String>));
        let keep = fault.clone();
        device.on_uncaptured_error(Arc::new(move |e: wgpu::Error| {
            let mut f = keep.lock().unwrap_or_else(|p| p.into_inner());
            f.get_or_insert_with(|| e.to_string());
        }));
        let keep = fault.clone();
        device.set_device_lost_callback(move |reason, message| {
            let mut f = keep.lock().unwrap_or_else(|p| p.into_inner());
            f.get_or_insert_with(|| format!("the GPU device was lost ({reason:?}: {message})"));
        });
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let pipeline = |source: &str, entry: &str| {
            let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(entry),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            });
            device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(entry),
                layout: None,
                module: &module,
                entry_point: Some(entry),
                compilation_options: Default::default(),
                cache: None,
            })
        };
        let pipelines = Pipelines {
            nlm: pipeline(shaders::NLM, "main"),
            forward: pipeline(shaders::PROJECT, "forward"),
            adjoint: pipeline(shaders::PROJECT, "adjoint"),
            fit: pipeline(shaders::FIT, "main"),
        };
        if let Some(e) = scope.pop().await {
            return Err(GpuError::Device(format!("the kernels did not compile: {e}")));
        }
        let max_binding = limits.max_storage_buffer_binding_size.min(limits.max_buffer_size);
        Ok(Gpu { device, queue, pipelines, report, max_binding, fits_per_submit: 8192, fault })
    }

    /// Lose the device on purpose (tests of the fallback): every later call fails.
    pub fn destroy(&self) {
        self.fault
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get_or_insert_with(|| "the GPU device was destroyed".into());
        self.device.destroy();
    }

    /// The fault recorded so far, as an error.
    pub(crate) fn check(&self) -> Result<(), GpuError> {
        match self.fault.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            Some(m) => Err(GpuError::Failed(m)),
            None => Ok(()),
        }
    }

    /// A storage buffer holding `data` (read by the kernels, copied from).
    /// (Written through the queue rather than mapped at creation: wgpu panics when a lost
    /// device cannot map, and a lost device must be an error.)
    pub(crate) fn upload<T: bytemuck::Pod>(&self, label: &str, data: &[T]) -> Result<wgpu::Buffer, GpuError> {
        // A zero-sized binding is invalid: an empty array uploads as one zero word.
        let bytes: &[u8] = if data.is_empty() { &[0; 4] } else { bytemuck::cast_slice(data) };
        let buffer = self.scratch(label, bytes.len().div_ceil(4))?;
        self.queue.write_buffer(&buffer, 0, bytes);
        Ok(buffer)
    }

    /// A zeroed storage buffer of `n` f32s the kernels write.
    pub(crate) fn scratch(&self, label: &str, n: usize) -> Result<wgpu::Buffer, GpuError> {
        self.check()?;
        let size = (4 * n.max(1)) as u64;
        self.fits(label, size)?;
        Ok(self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(label),
            size,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        }))
    }

    /// A uniform buffer of 32-bit words (the kernels' `Params`).
    pub(crate) fn uniform(&self, words: &[u32]) -> wgpu::Buffer {
        let buffer = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("params"),
            size: (4 * words.len()) as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.queue.write_buffer(&buffer, 0, bytemuck::cast_slice(words));
        buffer
    }

    fn fits(&self, label: &str, bytes: u64) -> Result<(), GpuError> {
        if bytes > self.max_binding {
            return Err(GpuError::TooLarge { what: label.to_string(), bytes, limit: self.max_binding });
        }
        Ok(())
    }

    /// Record one dispatch of `pipeline` into `encoder` with `buffers` bound at 0, 1, … (`None`:
    /// a binding the entry point does not use).
    pub(crate) fn dispatch(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        pipeline: &wgpu::ComputePipeline,
        buffers: &[Option<&wgpu::Buffer>],
        counts: [u32; 3],
    ) {
        let entries: Vec<wgpu::BindGroupEntry> = buffers
            .iter()
            .enumerate()
            .filter_map(|(i, b)| b.map(|b| wgpu::BindGroupEntry { binding: i as u32, resource: b.as_entire_binding() }))
            .collect();
        let group = self.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &pipeline.get_bind_group_layout(0),
            entries: &entries,
        });
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
        pass.set_pipeline(pipeline);
        pass.set_bind_group(0, &group, &[]);
        pass.dispatch_workgroups(counts[0], counts[1], counts[2]);
    }

    /// A new command encoder.
    pub(crate) fn encoder(&self) -> wgpu::CommandEncoder {
        self.device.create_command_encoder(&wgpu::CommandEncoderDescriptor::default())
    }

    /// Submit `encoder` and wait (asynchronously) until the GPU has done it: submits stay short
    /// and the browser's event loop runs between them.
    pub(crate) async fn submit(&self, encoder: wgpu::CommandEncoder) -> Result<(), GpuError> {
        self.queue.submit([encoder.finish()]);
        let (tx, rx) = futures_channel::oneshot::channel();
        self.queue.on_submitted_work_done(move || {
            let _ = tx.send(());
        });
        self.wait(rx).await?;
        self.check()
    }

    /// `n` f32s from the start of `buffer` (submits what is pending first).
    pub(crate) async fn read(&self, buffer: &wgpu::Buffer, n: usize) -> Result<Vec<f32>, GpuError> {
        self.read_at(buffer, 0, n).await
    }

    /// `n` f32s of `buffer` from f32 index `start`.
    pub(crate) async fn read_at(&self, buffer: &wgpu::Buffer, start: usize, n: usize) -> Result<Vec<f32>, GpuError> {
        let size = (4 * n.max(1)) as u64;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.encoder();
        encoder.copy_buffer_to_buffer(buffer, (4 * start) as u64, &staging, 0, size);
        self.queue.submit([encoder.finish()]);
        let (tx, rx) = futures_channel::oneshot::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.wait(rx).await?.map_err(|e| GpuError::Failed(format!("reading the result back: {e}")))?;
        self.check()?;
        let view = staging.get_mapped_range(..).map_err(|e| GpuError::Failed(e.to_string()))?;
        let out = bytemuck::cast_slice::<u8, f32>(&view)[..n].to_vec();
        drop(view);
        staging.unmap();
        Ok(out)
    }

    /// Wait for a callback's value: natively by polling the device, in the browser by yielding
    /// to the event loop that delivers it.
    async fn wait<T>(&self, rx: futures_channel::oneshot::Receiver<T>) -> Result<T, GpuError> {
        #[cfg(not(target_arch = "wasm32"))]
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map_err(|e| GpuError::Failed(format!("waiting for the GPU: {e}")))?;
        rx.await
            .map_err(|_| self.check().err().unwrap_or_else(|| GpuError::Failed("the GPU dropped a callback".into())))
    }
}
