//! The `#[wasm_bindgen]` surface, as thin as it can be: JS values in (parsed into the core's own
//! parameter structs by serde), a [`Reply`] or bytes out, errors thrown as a JS `Error` with the
//! engine's `kind`. Everything else is in `atomlens_session::session`.
use atomlens_core::columns::ColumnParams;
use atomlens_core::denoise::Method;
use atomlens_core::particles::chain::AnalysisParams;
use atomlens_core::strain::gpa::GpaParams;
use atomlens_core::synth::Demo;
use atomlens_core::tomo::{Algorithm, Preparation};
use atomlens_io::NamedFile;
use js_sys::{Float32Array, Float64Array, Uint8Array, Uint32Array};
use serde::Serialize;
use serde::de::DeserializeOwned;
use wasm_bindgen::prelude::*;

use atomlens_session::error::Error;
use atomlens_session::reply::{Array, Reply};
use atomlens_session::session;

/// An engine error as a JS `Error` carrying `kind`.
fn js_error(e: Error) -> JsValue {
    let err = js_sys::Error::new(&e.message);
    let _ = js_sys::Reflect::set(&err, &"kind".into(), &e.kind.into());
    err.into()
}

/// An engine result with its error as a JS `Error`.
fn ok<T>(r: atomlens_session::error::Result<T>) -> JsResult<T> {
    r.map_err(js_error)
}

type JsResult<T = JsValue> = Result<T, JsValue>;

/// JSON-compatible JS value of `v` (maps as objects).
pub fn to_js<T: Serialize + ?Sized>(v: &T) -> JsResult {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(|e| js_error(Error::invalid(e.to_string())))
}

/// A JS value parsed into `T` (missing fields take their defaults where `T` says so).
fn from_js<T: DeserializeOwned>(v: JsValue) -> JsResult<T> {
    serde_wasm_bindgen::from_value(v).map_err(|e| js_error(Error::invalid(e.to_string())))
}

/// A [`Reply`] as one JS object: the values, then the arrays as typed arrays.
pub fn into_js(r: Reply) -> JsResult {
    let out = to_js(&r.values)?;
    for (k, a) in r.arrays {
        let v: JsValue = match a {
            Array::F64(v) => Float64Array::from(&v[..]).into(),
            Array::F32(v) => Float32Array::from(&v[..]).into(),
            Array::U8(v) => Uint8Array::from(&v[..]).into(),
            Array::U32(v) => Uint32Array::from(&v[..]).into(),
        };
        js_sys::Reflect::set(&out, &k.into(), &v)?;
    }
    Ok(out)
}

fn reply(r: atomlens_session::error::Result<Reply>) -> JsResult {
    into_js(ok(r)?)
}

fn bytes(r: atomlens_session::error::Result<Vec<u8>>) -> JsResult<Uint8Array> {
    Ok(Uint8Array::from(&ok(r)?[..]))
}

fn files(names: Vec<String>, bytes: Vec<Uint8Array>) -> Vec<NamedFile> {
    names.into_iter().zip(bytes).map(|(n, b)| NamedFile::new(n, b.to_vec())).collect()
}

/// The worker's engine (see [`session::Session`]).
#[wasm_bindgen]
pub struct Session(session::Session);

#[wasm_bindgen]
impl Session {
    /// An empty session.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Session {
        Session(session::Session::new())
    }

    /// Open a built-in demo (`particle`, `ordered`, `pair`): `{signals}`.
    pub fn load_demo(&mut self, demo: JsValue) -> JsResult {
        reply(self.0.load_demo(from_js::<Demo>(demo)?))
    }

    /// Read `primary` from the dropped files (`names[i]` ↔ `bytes[i]`): `{signals}`.
    pub fn load_files(&mut self, primary: String, names: Vec<String>, bytes: Vec<Uint8Array>) -> JsResult {
        reply(self.0.load_files(&primary, files(names, bytes)))
    }

    /// Add another file's signals to the dataset: `{signals, index}` (the first added).
    pub fn add_files(&mut self, primary: String, names: Vec<String>, bytes: Vec<Uint8Array>) -> JsResult {
        reply(self.0.add_files(&primary, files(names, bytes)))
    }

    /// Several images as one series: `primaries[k]` with the next `counts[k]` of the files.
    pub fn load_series(
        &mut self,
        primaries: Vec<String>,
        counts: Vec<usize>,
        names: Vec<String>,
        bytes: Vec<Uint8Array>,
    ) -> JsResult {
        if primaries.len() != counts.len() || counts.iter().sum::<usize>() != names.len() {
            return Err(js_error(Error::invalid("the series' files do not match its images")));
        }
        let mut all = files(names, bytes).into_iter();
        let groups = primaries.into_iter().zip(counts).map(|(p, n)| (p, all.by_ref().take(n).collect())).collect();
        reply(self.0.load_series(groups))
    }

    /// Set signal `signal`'s pixel size from text ("0.25 Å", "px"): `{signals, index}`.
    pub fn set_calibration(&mut self, signal: usize, size: &str) -> JsResult {
        reply(self.0.set_calibration(signal, size))
    }

    /// The session as `*.atomlens.json` text (journal, file hashes, result tables).
    pub fn save_session(&self) -> String {
        self.0.save_json()
    }

    /// Replace the session by a saved one replayed on the given files: `{signals, shown, image,
    /// has, same, check}`.
    pub fn restore_session(&mut self, json: &str, names: Vec<String>, bytes: Vec<Uint8Array>) -> JsResult {
        reply(self.0.restore(json, files(names, bytes)))
    }

    /// The shown image's report as one self-contained HTML file; `failures`: `[[what, why]]`.
    pub fn report(&self, title: &str, generated: &str, failures: JsValue) -> JsResult<String> {
        ok(self.0.report(title, generated, &from_js::<Vec<(String, String)>>(failures)?))
    }

    /// The strain maps' reply, as `gpa` returned it.
    pub fn gpa_result(&self) -> JsResult {
        reply(self.0.gpa_reply())
    }

    /// The particle analysis' reply, as `analyse_particles` returned it.
    pub fn particles_result(&self) -> JsResult {
        reply(self.0.particles_reply())
    }

    /// The comparison's reply, as `compare_signals` returned it.
    pub fn compare_result(&self) -> JsResult {
        reply(self.0.compare_reply())
    }

    /// The column table of the shown image.
    pub fn column_table(&self) -> JsResult {
        reply(self.0.column_table())
    }

    /// Show frame `frame` of signal `signal`: `{width, height, pixel_size, unit, summary}`.
    pub fn select(&mut self, signal: usize, frame: usize) -> JsResult {
        reply(self.0.select(signal, frame))
    }

    /// The shown image rendered: `{rgba, lo, hi, min, max, hist}`; `lo`, `hi` NaN for the
    /// percentiles `plo`, `phi`.
    pub fn view(&self, plo: f64, phi: f64, lo: f32, hi: f32, cmap: &str) -> JsResult {
        let limits = (lo.is_finite() && hi.is_finite()).then_some((lo, hi));
        reply(self.0.view(plo, phi, limits, cmap))
    }

    /// RGBA of a frame of another signal (the before/after split).
    pub fn render_signal(&self, signal: usize, frame: usize, lo: f32, hi: f32, cmap: &str) -> JsResult<Uint8Array> {
        bytes(self.0.render_signal(signal, frame, lo, hi, cmap))
    }

    /// The pixel value at (x, y), NaN outside.
    pub fn value_at(&self, x: usize, y: usize) -> JsResult<f32> {
        ok(self.0.value_at(x, y))
    }

    /// The power spectrum: `{rgba, width, height, step_x, step_y, unit}`.
    pub fn spectrum(&self, cmap: &str) -> JsResult {
        reply(self.0.spectrum(cmap))
    }

    /// The shown image as a calibrated float TIFF.
    pub fn export_tiff(&self) -> JsResult<Uint8Array> {
        bytes(self.0.export_tiff())
    }

    /// Align the frames of a signal and append their average: `{signals, index, dx, dy, field}`.
    pub fn register_frames(&mut self, signal: usize, nonrigid: bool) -> JsResult {
        reply(self.0.register_frames(signal, nonrigid))
    }

    /// Clean up the shown image (`method`: a `core::denoise::Method`): `{signals, index}`.
    pub fn denoise(&mut self, method: JsValue) -> JsResult {
        reply(self.0.denoise_current(from_js::<Method>(method)?))
    }

    /// Begin training Noise2Void on the shown image: `{steps}`.
    pub fn n2v_begin(&mut self, method: JsValue) -> JsResult {
        reply(self.0.n2v_begin(from_js::<Method>(method)?))
    }

    /// Up to `count` more training steps: `{done, steps, loss}`.
    pub fn n2v_step(&mut self, count: usize) -> JsResult {
        reply(self.0.n2v_step(count))
    }

    /// The shown image denoised by the trained network: `{signals, index}`.
    pub fn n2v_finish(&mut self) -> JsResult {
        reply(self.0.n2v_finish())
    }

    /// Find columns (`params`: `ColumnParams`): `{x, y}`.
    pub fn find_seeds(&mut self, params: JsValue) -> JsResult {
        reply(self.0.find_seeds(from_js::<ColumnParams>(params)?))
    }

    /// Fit the columns found: the column table.
    pub fn fit_found(&mut self) -> JsResult {
        reply(self.0.fit_found())
    }

    /// Refit at edited positions: the column table.
    pub fn refit(&mut self, xs: Vec<f64>, ys: Vec<f64>) -> JsResult {
        reply(self.0.refit(xs, ys))
    }

    /// The columns as CSV.
    pub fn columns_csv(&self) -> JsResult<String> {
        ok(self.0.columns_csv())
    }

    /// The columns as JSON.
    pub fn columns_json(&self, source: &str) -> JsResult<String> {
        ok(self.0.columns_json(source))
    }

    /// Column `i`'s data, model and residual.
    pub fn column_residual(&self, i: usize, half: usize) -> JsResult {
        reply(self.0.column_residual(i, half))
    }

    /// GPA of the shown image (`params`: `GpaParams`).
    pub fn gpa(&mut self, params: JsValue) -> JsResult {
        reply(self.0.gpa(from_js::<GpaParams>(params)?))
    }

    /// RGBA of a GPA map over ±`limit`.
    pub fn gpa_map(&self, name: &str, limit: f32) -> JsResult<Uint8Array> {
        bytes(self.0.gpa_rgba(name, limit))
    }

    /// A GPA map's values.
    pub fn gpa_values(&self, name: &str) -> JsResult<Float32Array> {
        Ok(Float32Array::from(&ok(self.0.gpa_values(name))?[..]))
    }

    /// A GPA map as a calibrated float TIFF.
    pub fn gpa_tiff(&self, name: &str) -> JsResult<Uint8Array> {
        bytes(self.0.gpa_tiff(name))
    }

    /// Per-column strain at `xs`, `ys` against the spectrum's lattice or a `reference` region.
    pub fn column_strain(&self, xs: Vec<f64>, ys: Vec<f64>, reference: JsValue) -> JsResult {
        reply(self.0.column_strain(&xs, &ys, from_js(reference)?))
    }

    /// The particle chain on the shown image (`params`: `AnalysisParams`).
    pub fn analyse_particles(&mut self, params: JsValue) -> JsResult {
        reply(self.0.analyse_particles(from_js::<AnalysisParams>(params)?))
    }

    /// A recipe (`core::Recipe`) on the shown image as a batch row `{row, mean_diameter, diameters}`.
    pub fn batch_row(&mut self, file: &str, recipe: JsValue) -> JsResult {
        reply(self.0.batch_row(file, &from_js(recipe)?))
    }

    /// The counted columns as atoms `[x, y, z, …]`.
    pub fn particle_model(&self, beam_step_nm: f64) -> JsResult<Float32Array> {
        Ok(Float32Array::from(&ok(self.0.particle_model(beam_step_nm))?[..]))
    }

    /// An export of the particle analysis.
    pub fn particle_export(&self, what: &str, source: &str) -> JsResult<String> {
        ok(self.0.particle_export(what, source))
    }

    /// Compare two signals (`params`: `AnalysisParams`).
    pub fn compare_signals(&mut self, before: usize, after: usize, params: JsValue) -> JsResult {
        reply(self.0.compare_signals(before, after, from_js::<AnalysisParams>(params)?))
    }

    /// An export of the comparison.
    pub fn compare_export(&self, what: &str, before: &str, after: &str) -> JsResult<String> {
        ok(self.0.compare_export(what, before, after))
    }

    /// A phantom tilt series (`params`: `{kind, n, start, end, count, dose, axis}`).
    pub fn tomo_demo(&mut self, params: JsValue) -> JsResult {
        reply(self.0.tomo_demo(&from_js(params)?))
    }

    /// Begin a reconstruction (`method`: `Algorithm`, `prep`: `Preparation`).
    pub fn tomo_begin(
        &mut self,
        signal: usize,
        angles: Vec<f64>,
        method: JsValue,
        thickness: usize,
        prep: JsValue,
    ) -> JsResult {
        let (m, p) = (from_js::<Algorithm>(method)?, from_js::<Preparation>(prep)?);
        reply(self.0.tomo_begin(signal, &angles, m, thickness, p))
    }

    /// Reconstruct `count` more slices; the number done.
    pub fn tomo_step(&mut self, count: usize) -> JsResult<usize> {
        ok(self.0.tomo_step(count))
    }

    /// The latest slice, or null.
    pub fn tomo_preview(&self, cmap: &str) -> JsResult {
        match ok(self.0.tomo_preview(cmap))? {
            Some(r) => into_js(r),
            None => Ok(JsValue::NULL),
        }
    }

    /// The finished volume's size and display limits.
    pub fn tomo_volume(&self) -> JsResult {
        reply(self.0.tomo_volume())
    }

    /// An orthoslice.
    pub fn tomo_slice(&self, plane: &str, index: usize, lo: f32, hi: f32, cmap: &str, threshold: f32) -> JsResult {
        reply(self.0.tomo_slice(plane, index, lo, hi, cmap, threshold))
    }

    /// The volume re-projected at `angle` degrees.
    pub fn tomo_projection(&self, angle: f64, cmap: &str) -> JsResult {
        reply(self.0.tomo_projection(angle, cmap))
    }

    /// The volume as MRC.
    pub fn tomo_mrc(&self) -> JsResult<Uint8Array> {
        bytes(self.0.tomo_mrc())
    }
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

/// The defaults and names every form of the page is built from, in one object: `columns`,
/// `gpa`, `analysis` (the particle chain), `recipe`, `beam_step_nm` (the 3-D model's atom spacing
/// along the beam), `denoise` (every method at its defaults),
/// `tomo` (every algorithm at its defaults), and the names of every choice: `finders`, `shapes`, `noise`,
/// `sublattices`, `masks`, `align`, `phantoms`, `colormaps`, and `luts` (each colormap's 256 RGB
/// entries, so the page's colour keys and column colours are the maps' own).
#[wasm_bindgen]
pub fn defaults() -> JsResult {
    use atomlens_core::columns::fit::Shape;
    use atomlens_core::columns::{Finder, Sublattices};
    use atomlens_core::image::Noise;
    use atomlens_core::image::render::Colormap;
    use atomlens_core::strain::gpa::MaskShape;
    use atomlens_core::tomo::Align;
    use atomlens_core::tomo::phantom::Phantom;
    to_js(&serde_json::json!({
        "columns": ColumnParams::default(),
        "gpa": GpaParams::default(),
        "analysis": AnalysisParams::default(),
        "recipe": atomlens_core::Recipe::default(),
        "beam_step_nm": atomlens_core::synth::PT_110_SPACING_NM,
        "denoise": Method::ALL,
        "tomo": Algorithm::ALL,
        "finders": Finder::ALL,
        "shapes": Shape::ALL,
        "noise": Noise::ALL,
        "sublattices": Sublattices::ALL,
        "masks": MaskShape::ALL,
        "align": Align::ALL,
        "phantoms": Phantom::ALL,
        "colormaps": Colormap::ALL,
        "luts": Colormap::ALL
            .iter()
            .filter_map(|c| Some((serde_json::to_value(c).ok()?.as_str()?.to_owned(), serde_json::json!(c.lut().to_vec()))))
            .collect::<serde_json::Map<_, _>>(),
    }))
}

/// The batch summary CSV of the page's rows (`io::tables::BatchRow`s), as `atomlens batch`
/// writes it.
#[wasm_bindgen]
pub fn batch_csv(rows: JsValue) -> JsResult<String> {
    Ok(atomlens_io::tables::batch_csv(&from_js::<Vec<atomlens_io::tables::BatchRow>>(rows)?))
}

/// A cross-section library from a text file's contents (`core::particles::counting::parse_library`).
#[wasm_bindgen]
pub fn parse_library(text: &str) -> JsResult<Float64Array> {
    let v = atomlens_core::particles::counting::parse_library(text).map_err(|e| js_error(Error::from(e)))?;
    Ok(Float64Array::from(&v[..]))
}

/// Run GPA's synthetic self-test cases; each check carries truth, measured value and tolerance.
#[wasm_bindgen]
pub fn gpa_self_test() -> JsResult {
    to_js(&atomlens_core::strain::gpa::self_test().map_err(|e| js_error(Error::from(e)))?)
}

/// What a saved session needs: `{files: [{name, size, sha256}], software, steps}`; refuses
/// other formats and versions with the reason.
#[wasm_bindgen]
pub fn session_needs(json: &str) -> JsResult {
    reply(session::Session::needs(json))
}

/// Group dropped file names into datasets (a TIA `.emi` with its `.ser`): `[[primary, [names]]]`.
#[wasm_bindgen]
pub fn group_files(names: Vec<String>) -> JsResult {
    to_js(&atomlens_io::group_files(&names))
}

#[derive(Serialize)]
struct EngineInfo {
    threaded: bool,
    threads: usize,
    version: &'static str,
}

/// Which build this is and how many rayon threads it runs on.
#[wasm_bindgen]
pub fn engine_info() -> JsResult {
    to_js(&EngineInfo {
        threaded: cfg!(feature = "threads"),
        threads: rayon::current_num_threads(),
        version: env!("CARGO_PKG_VERSION"),
    })
}

/// Bytes of wasm linear memory in use by this module (the heap only grows).
#[wasm_bindgen]
pub fn memory_bytes() -> f64 {
    wasm_bindgen::memory()
        .dyn_into::<js_sys::WebAssembly::Memory>()
        .ok()
        .and_then(|m| js_sys::Reflect::get(&m.buffer(), &"byteLength".into()).ok())
        .and_then(|v| v.as_f64())
        .unwrap_or(f64::NAN)
}

// The GPU of this worker: made once by `gpu_init`, on the worker's own thread (wgpu's handles
// cannot cross threads in the threaded build), and used only from it.
thread_local! {
    static GPU: std::cell::RefCell<Option<std::rc::Rc<atomlens_gpu::Gpu>>> = const { std::cell::RefCell::new(None) };
}

fn gpu() -> JsResult<std::rc::Rc<atomlens_gpu::Gpu>> {
    GPU.with(|g| g.borrow().clone())
        .ok_or_else(|| js_error(Error { kind: "no_gpu", message: "no GPU in this worker (see the header)".into() }))
}

fn gpu_error(e: atomlens_gpu::GpuError) -> JsValue {
    js_error(Error { kind: "gpu", message: e.to_string() })
}

/// Make this worker's GPU: the WebGPU adapter, a device, the kernels compiled and each checked
/// against the CPU on a small case. `{name, backend, device_type, driver, label, kernels}`
/// (`kernels`: per kernel `"ok"` or why it is not used), or a rejection with the reason.
#[wasm_bindgen]
pub async fn gpu_init() -> JsResult {
    let made = atomlens_gpu::Gpu::new(atomlens_gpu::default_backends()).await;
    let gpu = made.map_err(|e| js_error(Error { kind: "no_gpu", message: e.to_string() }))?;
    let verdict = |r: Result<(), atomlens_gpu::GpuError>| r.map_or_else(|e| e.to_string(), |()| "ok".to_string());
    let nlm = verdict(atomlens_gpu::nlm::self_check(&gpu).await);
    let tomo = verdict(atomlens_gpu::tomo::self_check(&gpu).await);
    let fit = verdict(atomlens_gpu::columns::self_check(&gpu).await);
    let label = gpu.report.label();
    let mut v = serde_json::to_value(&gpu.report).map_err(|e| js_error(Error::from(e)))?;
    v["label"] = label.into();
    v["kernels"] = serde_json::json!({ "nlm": nlm, "tomo": tomo, "fit": fit });
    GPU.with(|g| *g.borrow_mut() = Some(std::rc::Rc::new(gpu)));
    to_js(&v)
}

/// Lose this worker's GPU on purpose (the e2e suite's device-loss test): later GPU calls fail
/// and the page falls back to the CPU.
#[wasm_bindgen]
pub fn gpu_destroy() -> JsResult<()> {
    gpu()?.destroy();
    Ok(())
}

/// The shown image, owned, for a GPU call.
#[wasm_bindgen]
pub struct GpuImage(ndarray::Array2<f32>);

/// The column fits `find_seeds` asked for, for [`gpu_fit`].
#[wasm_bindgen]
pub struct FitJob(ndarray::Array2<f32>, atomlens_core::columns::FitRequest);

/// Columns fitted on the GPU, for `Session::fitted`.
#[wasm_bindgen]
pub struct Fitted(Vec<atomlens_core::columns::fit::AtomColumn>);

/// A reconstruction taken out of the session for the GPU, and what became of it.
#[wasm_bindgen]
pub struct TomoJob {
    plan: atomlens_core::tomo::Plan,
    error: Option<String>,
}

#[wasm_bindgen]
impl TomoJob {
    /// Why the GPU stopped, when it did (the CPU does the rest).
    #[wasm_bindgen(getter)]
    pub fn error(&self) -> Option<String> {
        self.error.clone()
    }
}

#[wasm_bindgen]
impl Session {
    /// The shown image for [`gpu_denoise`].
    pub fn gpu_image(&self) -> JsResult<GpuImage> {
        Ok(GpuImage(ok(self.0.image())?.data.clone()))
    }

    /// Append an image cleaned up on the GPU by `method` (`data`: its pixels, row-major).
    pub fn denoised(&mut self, method: JsValue, data: Vec<f32>) -> JsResult {
        let m = from_js::<Method>(method)?;
        let (h, w) = ok(self.0.image())?.data.dim();
        let out = ndarray::Array2::from_shape_vec((h, w), data).map_err(|e| js_error(Error::invalid(e.to_string())))?;
        reply(self.0.denoised(m, out))
    }

    /// The fits `find_seeds` asked for, for [`gpu_fit`].
    pub fn gpu_fit_job(&self) -> JsResult<FitJob> {
        let (img, req) = ok(self.0.fit_job())?;
        Ok(FitJob(img, req))
    }

    /// Finish `fit_found` with columns fitted on the GPU: the column table.
    pub fn fitted(&mut self, fitted: Fitted) -> JsResult {
        reply(self.0.fit_found_with(fitted.0))
    }

    /// Take the reconstruction begun by `tomo_begin` out for [`gpu_reconstruct`].
    pub fn tomo_take(&mut self) -> JsResult<TomoJob> {
        Ok(TomoJob { plan: ok(self.0.tomo_take())?, error: None })
    }

    /// Put a reconstruction back; the slices done (the CPU's `tomo_step` does any left).
    pub fn tomo_put(&mut self, job: TomoJob) -> JsResult<usize> {
        ok(self.0.tomo_put(job.plan))
    }
}

/// `method` (non-local means) on this worker's GPU: the filtered pixels, row-major. Rejects
/// with kind `gpu` (the page then runs the CPU path and says why).
#[wasm_bindgen]
pub async fn gpu_denoise(image: GpuImage, method: JsValue) -> JsResult<Float32Array> {
    let m = from_js::<Method>(method)?;
    ok(atomlens_core::image::check_usable(image.0.view()).map_err(Error::from))?;
    ok(atomlens_core::denoise::check(&m).map_err(Error::from))?;
    let out = atomlens_gpu::nlm::apply(&*gpu()?, image.0.view(), &m).await.map_err(gpu_error)?;
    Ok(Float32Array::from(out.as_slice().unwrap_or(&[])))
}

/// The column fits of `job` on this worker's GPU. Rejects with kind `gpu` (the page then fits on
/// the CPU and says why).
#[wasm_bindgen]
pub async fn gpu_fit(job: FitJob) -> JsResult<Fitted> {
    let FitJob(img, req) = job;
    let cols =
        atomlens_gpu::columns::fit_columns(&*gpu()?, img.view(), &req.seeds, &req.fit).await.map_err(gpu_error)?;
    Ok(Fitted(cols))
}

/// The slices of `job` on this worker's GPU; `progress(text, preview)` sees each iteration
/// (`preview`: the slab's middle slice, every few iterations, or null). The job comes back
/// with its `error` set if the GPU stopped; the slices it finished are kept.
#[wasm_bindgen]
pub async fn gpu_reconstruct(mut job: TomoJob, cmap: String, progress: js_sys::Function) -> TomoJob {
    let gpu = match gpu() {
        Ok(g) => g,
        Err(_) => return TomoJob { error: Some("no GPU in this worker".into()), ..job },
    };
    let ny = job.plan.dims().1;
    let mut each = |p: atomlens_gpu::tomo::Progress| {
        let text = format!("reconstructing on the GPU: slice {} / {ny}, iteration {}", p.slices, p.iteration);
        let preview = p
            .preview
            .and_then(|s| atomlens_session::session::slice_preview(s, p.slices, &cmap).ok())
            .and_then(|r| into_js(r).ok())
            .unwrap_or(JsValue::NULL);
        let _ = progress.call2(&JsValue::NULL, &text.into(), &preview);
    };
    if let Err(e) = atomlens_gpu::tomo::reconstruct(&gpu, &mut job.plan, &mut each).await {
        job.error = Some(e.to_string());
    }
    job
}
