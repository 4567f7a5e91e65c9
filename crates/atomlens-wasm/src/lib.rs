//! # atomlens-wasm
//!
//! `#[wasm_bindgen]` adapters for the browser worker (`web/src/worker.js`); no science here.
//! One [`Session`] owns the loaded images so a large image crosses into wasm once; pixels go
//! back as typed arrays, small metadata as serde objects. Errors become `JsError` with the
//! message the page shows in its banner.
use atomlens_core::columns::fit::AtomColumn;
use atomlens_core::columns::{ColumnParams, ColumnResult, refine};
use atomlens_core::image::render::{Colormap, to_rgba};
use atomlens_core::image::{spectrum, stats};
use atomlens_core::{Image, Stack, synth};
use atomlens_io::{Limits, Metadata, NamedFile};
use js_sys::{Float32Array, Float64Array, Uint8Array, Uint32Array};
use serde::Serialize;
use wasm_bindgen::prelude::*;

mod particles;
mod strain;
mod tomo;

#[cfg(feature = "threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

/// Install the panic hook once: a panic then reaches the console with its message before the
/// worker dies, and the page restarts the worker.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}

#[derive(Serialize)]
struct EngineInfo {
    threaded: bool,
    threads: usize,
    version: &'static str,
}

/// Which build this is and how many rayon threads it runs on.
#[wasm_bindgen]
pub fn engine_info() -> Result<JsValue, JsError> {
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

/// Ask wgpu for a WebGPU adapter in this worker. Resolves to `{name, backend, device_type,
/// driver, label}` or rejects with wgpu's reason.
#[wasm_bindgen]
pub async fn gpu_probe() -> Result<JsValue, JsError> {
    let report = atomlens_gpu::probe(atomlens_gpu::default_backends()).await.map_err(|e| JsError::new(&e))?;
    let label = report.label();
    let mut v = serde_json::to_value(&report).map_err(|e| JsError::new(&e.to_string()))?;
    v["label"] = label.into();
    to_js(&v)
}

/// Group dropped file names into datasets (a TIA `.emi` with its `.ser`): `[[primary, [names]]]`.
#[wasm_bindgen]
pub fn group_files(names: Vec<String>) -> Result<JsValue, JsError> {
    to_js(&atomlens_io::group_files(&names))
}

#[derive(Serialize, Clone)]
struct SignalInfo {
    title: String,
    width: usize,
    height: usize,
    frames: usize,
    dtype: &'static str,
    pixel_size: f64,
    unit: String,
    metadata: Metadata,
}

#[derive(Serialize)]
struct ImageInfo {
    width: usize,
    height: usize,
    pixel_size: f64,
    unit: String,
    summary: stats::Summary,
}

/// The worker's state: every signal of the open dataset (as f32 stacks), the image shown, and
/// the columns found on it.
#[wasm_bindgen]
pub struct Session {
    stacks: Vec<Stack>,
    infos: Vec<SignalInfo>,
    current: Option<Image>,
    columns: Option<(ColumnResult, ColumnParams)>,
    gpa: Option<atomlens_core::strain::gpa::GpaResult>,
    found: Option<(atomlens_core::columns::find::Peaks, ColumnParams)>,
    tomo: Option<tomo::Tomo>,
    particles: Option<particles::Particles>,
    compared: Option<particles::Compared>,
}

#[wasm_bindgen]
impl Session {
    /// An empty session.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Session {
        Session {
            stacks: Vec::new(),
            infos: Vec::new(),
            current: None,
            columns: None,
            gpa: None,
            found: None,
            tomo: None,
            particles: None,
            compared: None,
        }
    }

    /// Replace the dataset by the built-in synthetic Pt nanoparticle; returns the signal list.
    pub fn load_demo(&mut self) -> Result<JsValue, JsError> {
        let s = synth::nanoparticle(&synth::NanoparticleParams::default()).map_err(err)?;
        let note = format!("{} columns, Poisson noise; ground truth in core::synth", s.columns.len());
        let info = particles::synthetic_info("Demo: Pt nanoparticle [110] (synthetic)", &s, note);
        self.replace(vec![particles::stack_of(s)?], vec![info])
    }

    /// Read several dropped images as the frames of one series (the first frame of each file's
    /// first signal, in order): `primaries[k]` with the next `counts[k]` of `names` ↔ `bytes` (its
    /// companions). Refuses images of different sizes, naming them. Returns the signal list.
    pub fn load_series(
        &mut self,
        primaries: Vec<String>,
        counts: Vec<usize>,
        names: Vec<String>,
        bytes: Vec<Uint8Array>,
    ) -> Result<JsValue, JsError> {
        if primaries.len() < 2 || primaries.len() != counts.len() || counts.iter().sum::<usize>() != names.len() {
            return Err(JsError::new("a series needs at least two images"));
        }
        let mut files = names.into_iter().zip(bytes).map(|(n, b)| NamedFile::new(n, b.to_vec()));
        let mut pixels = Vec::new();
        let mut first: Option<(usize, usize, atomlens_core::Calibration, String)> = None;
        for (primary, &n) in primaries.iter().zip(&counts) {
            let group: Vec<NamedFile> = files.by_ref().take(n).collect();
            let signals = atomlens_io::read(primary, group, &Limits::BROWSER).map_err(err)?;
            let img = signals[0].frame(0).map_err(err)?;
            let (w, h) = (img.width(), img.height());
            match &first {
                None => first = Some((w, h, img.calibration.clone(), primary.clone())),
                Some((w0, h0, _, name)) if (*w0, *h0) != (w, h) => {
                    return Err(JsError::new(&format!(
                        "the series' images differ in size: {name} is {w0}×{h0} px, {primary} is {w}×{h} px"
                    )));
                }
                Some(_) => {}
            }
            pixels.extend(img.data.iter().copied());
        }
        let (w, h, cal, _) = first.expect("two or more images");
        let n = primaries.len();
        let info = SignalInfo {
            title: format!("series of {n} images: {} … {}", primaries[0], primaries[n - 1]),
            width: w,
            height: h,
            frames: n,
            dtype: "float32",
            pixel_size: cal.pixel_size,
            unit: cal.unit.clone(),
            metadata: Metadata { notes: primaries.clone(), ..Metadata::default() },
        };
        let stack = Stack::from_vec(w, h, n, pixels, cal).map_err(err)?;
        self.replace(vec![stack], vec![info])
    }

    /// Read `primary` from the dropped files (`names[i]` ↔ `bytes[i]`); returns the signal list.
    pub fn load_files(
        &mut self,
        primary: String,
        names: Vec<String>,
        bytes: Vec<Uint8Array>,
    ) -> Result<JsValue, JsError> {
        let files: Vec<NamedFile> = names.into_iter().zip(bytes).map(|(n, b)| NamedFile::new(n, b.to_vec())).collect();
        let signals = atomlens_io::read(&primary, files, &Limits::BROWSER).map_err(err)?;
        let mut stacks = Vec::with_capacity(signals.len());
        let mut infos = Vec::with_capacity(signals.len());
        for s in signals {
            stacks.push(s.to_stack().map_err(err)?);
            infos.push(SignalInfo {
                title: s.title,
                width: s.width,
                height: s.height,
                frames: s.frames,
                dtype: s.dtype.name(),
                pixel_size: s.calibration.pixel_size,
                unit: s.calibration.unit,
                metadata: s.metadata,
            });
        }
        // Refuse an unusable first image before replacing anything, so a bad file never leaves
        // the session out of step with what the page shows.
        if let Some(first) = stacks.first() {
            atomlens_core::image::check_usable(first.frames.index_axis(ndarray::Axis(0), 0)).map_err(err)?;
        }
        self.replace(stacks, infos)
    }

    /// Drift-correct the frames of signal `signal` (and, when `nonrigid`, their scan distortions)
    /// and append their aligned average as a new signal: `{signals, index, dx, dy, field}` (the
    /// new signal list, its index, the drift per frame, the RMS distortion field per frame).
    pub fn register_frames(&mut self, signal: usize, nonrigid: bool) -> Result<JsValue, JsError> {
        use atomlens_core::register::nonrigid::{NonrigidParams, register_series_nonrigid};
        let stack = self.stacks.get(signal).ok_or_else(|| JsError::new(&format!("no signal {signal}")))?;
        let frames: Vec<_> = (0..stack.len()).filter_map(|t| stack.frame(t)).collect();
        let views: Vec<_> = frames.iter().map(|f| f.view()).collect();
        let (r, field) = if nonrigid {
            let n = register_series_nonrigid(&views, &NonrigidParams::default()).map_err(err)?;
            (n.registered, n.fields.iter().map(|f| f.rms()).collect())
        } else {
            (atomlens_core::register::register_series(&views).map_err(err)?, vec![0.0; frames.len()])
        };
        let mut info = self.infos[signal].clone();
        info.title = match info.title.as_str() {
            "" => format!("aligned average of {} frames", frames.len()),
            t => format!("aligned average of {} frames: {t}", frames.len()),
        };
        info.frames = 1;
        info.dtype = "float32";
        info.metadata.notes.push(format!(
            "{} drift correction of {} frames; largest drift {:.2} px",
            if nonrigid { "non-rigid" } else { "rigid" },
            frames.len(),
            r.shifts.iter().map(|s| s[0].hypot(s[1])).fold(0.0, f64::max)
        ));
        let cal = stack.calibration.clone();
        let index = self.append(r.average, cal, info)?;
        let out = self.signals_reply(index)?;
        let set = |k: &str, v: JsValue| js_sys::Reflect::set(&out, &k.into(), &v).map(|_| ());
        let axis = |k: usize| Float64Array::from(&r.shifts.iter().map(|s| s[k]).collect::<Vec<_>>()[..]);
        set("dx", axis(0).into()).map_err(js)?;
        set("dy", axis(1).into()).map_err(js)?;
        set("field", Float64Array::from(&field[..]).into()).map_err(js)?;
        Ok(out.into())
    }

    /// Clean up the shown image with `method` (see `core::denoise::Method`) and append the result
    /// and what it removed as two new signals: `{signals, index}` (index of the result).
    pub fn denoise_current(&mut self, method: JsValue) -> Result<JsValue, JsError> {
        let m: atomlens_core::denoise::Method = serde_wasm_bindgen::from_value(method).map_err(err)?;
        let img = self.image()?;
        let out = atomlens_core::denoise::apply(img.view(), &m).map_err(err)?;
        let removed = &img.data - &out;
        let (h, w) = out.dim();
        let cal = img.calibration.clone();
        let name =
            serde_json::to_value(m).ok().and_then(|v| v["method"].as_str().map(str::to_string)).unwrap_or_default();
        let base = SignalInfo {
            title: String::new(),
            width: w,
            height: h,
            frames: 1,
            dtype: "float32",
            pixel_size: cal.pixel_size,
            unit: cal.unit.clone(),
            metadata: Metadata { notes: vec![format!("{m:?}")], ..Metadata::default() },
        };
        let index = self.append(out, cal.clone(), SignalInfo { title: format!("{name} filtered"), ..base.clone() })?;
        self.append(removed, cal, SignalInfo { title: format!("removed by {name}"), ..base })?;
        Ok(self.signals_reply(index)?.into())
    }

    /// Add a derived single-frame signal (an aligned average, a clean-up); returns its index.
    fn append(
        &mut self,
        data: ndarray::Array2<f32>,
        cal: atomlens_core::Calibration,
        info: SignalInfo,
    ) -> Result<usize, JsError> {
        let (h, w) = data.dim();
        self.stacks.push(Stack::from_vec(w, h, 1, data.into_raw_vec_and_offset().0, cal).map_err(err)?);
        self.infos.push(info);
        Ok(self.stacks.len() - 1)
    }

    /// `{signals, index}`: the signal list after an `append`, and the signal to show.
    fn signals_reply(&self, index: usize) -> Result<js_sys::Object, JsError> {
        let out = js_sys::Object::new();
        js_sys::Reflect::set(&out, &"signals".into(), &to_js(&self.infos)?).map_err(js)?;
        js_sys::Reflect::set(&out, &"index".into(), &index.into()).map_err(js)?;
        Ok(out)
    }

    fn replace(&mut self, stacks: Vec<Stack>, infos: Vec<SignalInfo>) -> Result<JsValue, JsError> {
        self.stacks = stacks;
        self.infos = infos;
        self.current = None;
        to_js(&self.infos)
    }

    /// Show frame `frame` of signal `signal`; returns its size, calibration and statistics.
    /// Fails for images that cannot be shown (empty, all NaN).
    pub fn select(&mut self, signal: usize, frame: usize) -> Result<JsValue, JsError> {
        let stack = self.stacks.get(signal).ok_or_else(|| JsError::new(&format!("no signal {signal}")))?;
        let img = stack.frame(frame).ok_or_else(|| JsError::new(&format!("no frame {frame}")))?;
        let summary = stats::summary(img.view()).map_err(err)?;
        let info = ImageInfo {
            width: img.width(),
            height: img.height(),
            pixel_size: img.calibration.pixel_size,
            unit: img.calibration.unit.clone(),
            summary,
        };
        self.current = Some(img);
        self.columns = None;
        self.gpa = None;
        self.found = None;
        to_js(&info)
    }

    fn image(&self) -> Result<&Image, JsError> {
        self.current.as_ref().ok_or_else(|| JsError::new("no image selected"))
    }

    /// Display limits at two percentiles (0–100) of the finite pixels.
    pub fn percentiles(&self, lo: f64, hi: f64) -> Result<Vec<f32>, JsError> {
        stats::percentiles(self.image()?.view(), &[lo, hi]).map_err(err)
    }

    /// RGBA bytes of the image between `lo` and `hi` in colormap `cmap` (`gray`, `inferno`, …).
    pub fn render(&self, lo: f32, hi: f32, cmap: &str) -> Result<Uint8Array, JsError> {
        let cmap = colormap(cmap)?;
        Ok(Uint8Array::from(&to_rgba(self.image()?.view(), lo, hi, cmap)[..]))
    }

    /// RGBA of frame `frame` of signal `signal` between `lo` and `hi`, without changing the shown
    /// image (the before/after comparison).
    pub fn render_signal(
        &self,
        signal: usize,
        frame: usize,
        lo: f32,
        hi: f32,
        cmap: &str,
    ) -> Result<Uint8Array, JsError> {
        let img = self
            .stacks
            .get(signal)
            .and_then(|s| s.frame(frame))
            .ok_or_else(|| JsError::new(&format!("no signal {signal} frame {frame}")))?;
        Ok(Uint8Array::from(&to_rgba(img.view(), lo, hi, colormap(cmap)?)[..]))
    }

    /// Histogram of the image in `bins` bins over `[lo, hi]`.
    pub fn histogram(&self, lo: f32, hi: f32, bins: usize) -> Result<Uint32Array, JsError> {
        Ok(Uint32Array::from(&stats::histogram(self.image()?.view(), lo, hi, bins).map_err(err)?[..]))
    }

    /// The pixel value at (x, y), or NaN outside the image.
    pub fn value_at(&self, x: usize, y: usize) -> Result<f32, JsError> {
        Ok(self.image()?.data.get([y, x]).copied().unwrap_or(f32::NAN))
    }

    /// The power spectrum rendered with `cmap` between its 50th and 99.98th percentiles:
    /// `{rgba, width, height, step_x, step_y, unit}` (zero frequency at `(width/2, height/2)`).
    pub fn spectrum(&self, cmap: &str) -> Result<JsValue, JsError> {
        let img = self.image()?;
        let ps = spectrum::power_spectrum(img.view(), &img.calibration).map_err(err)?;
        let lim = stats::percentiles(ps.data.view(), &[50.0, 99.98]).map_err(err)?;
        let rgba = to_rgba(ps.data.view(), lim[0], lim[1], colormap(cmap)?);
        let out = js_sys::Object::new();
        let set = |k: &str, v: JsValue| js_sys::Reflect::set(&out, &k.into(), &v).map(|_| ());
        set("rgba", Uint8Array::from(&rgba[..]).into()).map_err(js)?;
        set("width", ps.data.ncols().into()).map_err(js)?;
        set("height", ps.data.nrows().into()).map_err(js)?;
        set("step_x", ps.axes.step_x.into()).map_err(js)?;
        set("step_y", ps.axes.step_y.into()).map_err(js)?;
        set("unit", ps.axes.unit.into()).map_err(js)?;
        Ok(out.into())
    }

    /// The current image as a 32-bit float TIFF with its calibration.
    pub fn export_tiff(&self) -> Result<Uint8Array, JsError> {
        let img = self.image()?;
        let px = img.data.as_standard_layout();
        let bytes = atomlens_io::formats::tiff::write_f32(
            img.width(),
            img.height(),
            px.as_slice().unwrap_or(&[]),
            &img.calibration,
        )
        .map_err(err)?;
        Ok(Uint8Array::from(&bytes[..]))
    }
}

/// Columns.
#[wasm_bindgen]
impl Session {
    /// Find the columns of the shown image with `params` (a `ColumnParams` object; missing
    /// fields take their defaults): the positions found, `{x, y}` as Float64Arrays, kept
    /// for `fit_found` (so the page can draw them while the fits run).
    pub fn find_seeds(&mut self, params: JsValue) -> Result<JsValue, JsError> {
        let p: ColumnParams = serde_wasm_bindgen::from_value(params).map_err(err)?;
        let peaks = atomlens_core::columns::find::find_columns(self.image()?.view(), &p.find).map_err(err)?;
        let out = js_sys::Object::new();
        let coord = |k: usize| Float64Array::from(&peaks.points.iter().map(|q| q[k]).collect::<Vec<_>>()[..]);
        js_sys::Reflect::set(&out, &"x".into(), &coord(0).into()).map_err(js)?;
        js_sys::Reflect::set(&out, &"y".into(), &coord(1).into()).map_err(js)?;
        self.found = Some((peaks, p));
        Ok(out.into())
    }

    /// Fit the columns `find_seeds` found (the columns pipeline of `core::columns::find_and_fit`
    /// in two calls, so the page draws positions while the fits run); returns the column table.
    pub fn fit_found(&mut self) -> Result<JsValue, JsError> {
        let (peaks, p) = self.found.take().ok_or_else(|| JsError::new("find the columns first"))?;
        let r = atomlens_core::columns::fit_found(self.image()?.view(), &peaks, &p).map_err(err)?;
        self.columns = Some((r, p));
        self.column_table()
    }

    pub fn refit(&mut self, xs: Vec<f64>, ys: Vec<f64>) -> Result<JsValue, JsError> {
        let img = self.current.as_ref().ok_or_else(|| JsError::new("no image selected"))?;
        let (result, p) = self.columns.as_mut().ok_or_else(|| JsError::new("find columns first"))?;
        let seeds: Vec<[f64; 2]> = xs.into_iter().zip(ys).map(|(x, y)| [x, y]).collect();
        result.columns = refine(img.view(), &seeds, p, result.lattice.as_ref()).map_err(err)?;
        self.column_table()
    }

    /// The current columns as typed arrays: `{x, y, sigma_x, sigma_y, rotation, amplitude,
    /// volume, background, x_err, y_err, residual_rms (Float64Array), status (Uint8Array: 0
    /// fitted, 1 centre of mass, 2 too few pixels, 3 not significant), separation, spacing}`.
    pub fn column_table(&self) -> Result<JsValue, JsError> {
        let (r, _) = self.columns.as_ref().ok_or_else(|| JsError::new("no columns yet"))?;
        let c = &r.columns;
        let out = js_sys::Object::new();
        let set = |k: &str, v: JsValue| js_sys::Reflect::set(&out, &k.into(), &v).map(|_| ());
        let col = |f: fn(&AtomColumn) -> f64| Float64Array::from(&c.iter().map(f).collect::<Vec<_>>()[..]);
        set("x", col(|a| a.x).into()).map_err(js)?;
        set("y", col(|a| a.y).into()).map_err(js)?;
        set("sigma_x", col(|a| a.sigma_x).into()).map_err(js)?;
        set("sigma_y", col(|a| a.sigma_y).into()).map_err(js)?;
        set("rotation", col(|a| a.rotation).into()).map_err(js)?;
        set("amplitude", col(|a| a.amplitude).into()).map_err(js)?;
        set("volume", col(|a| a.volume).into()).map_err(js)?;
        set("background", col(|a| a.background).into()).map_err(js)?;
        set("x_err", col(|a| a.x_err).into()).map_err(js)?;
        set("y_err", col(|a| a.y_err).into()).map_err(js)?;
        set("residual_rms", col(|a| a.residual_rms).into()).map_err(js)?;
        let status: Vec<u8> = c.iter().map(|a| a.status as u8).collect();
        set("status", Uint8Array::from(&status[..]).into()).map_err(js)?;
        let sub: Vec<u32> = c.iter().map(|a| a.sublattice).collect();
        set("sublattice", Uint32Array::from(&sub[..]).into()).map_err(js)?;
        set("nn_distance", col(|a| a.nn_distance).into()).map_err(js)?;
        let coordination: Vec<u32> = c.iter().map(|a| a.coordination).collect();
        set("coordination", Uint32Array::from(&coordination[..]).into()).map_err(js)?;
        set("separation", r.separation.into()).map_err(js)?;
        set("spacing", r.spacing.map(JsValue::from).unwrap_or(JsValue::NULL)).map_err(js)?;
        let lattice = r.lattice.as_ref().map(|l| {
            let (a, b, angle) = l.lengths_and_angle();
            serde_json::json!({ "a": a, "b": b, "angle": angle, "vectors": l })
        });
        set("lattice", to_js(&lattice)?).map_err(js)?;
        Ok(out.into())
    }

    /// The columns as CSV (Atomap's conventions).
    pub fn columns_csv(&self) -> Result<String, JsError> {
        let (r, _) = self.columns.as_ref().ok_or_else(|| JsError::new("no columns yet"))?;
        Ok(atomlens_io::tables::columns_csv(&r.columns))
    }

    /// The columns as JSON with calibration and parameters.
    pub fn columns_json(&self, source: &str) -> Result<String, JsError> {
        let (r, p) = self.columns.as_ref().ok_or_else(|| JsError::new("no columns yet"))?;
        Ok(atomlens_io::tables::columns_json(r, p, &self.image()?.calibration, source, None))
    }

    /// Data, fitted model and residual around column `i` (a square of side `2·half + 1`):
    /// `{size, data, model, residual}` as Float32Arrays.
    pub fn column_residual(&self, i: usize, half: usize) -> Result<JsValue, JsError> {
        let (r, p) = self.columns.as_ref().ok_or_else(|| JsError::new("no columns yet"))?;
        let c = r.columns.get(i).ok_or_else(|| JsError::new(&format!("no column {i}")))?;
        let img = self.image()?;
        let (h, w) = img.data.dim();
        let n = 2 * half + 1;
        let (cx, cy) = (c.x.round() as i64, c.y.round() as i64);
        let sign = if p.find.dark { -1.0 } else { 1.0 };
        let (mut data, mut model) = (vec![f32::NAN; n * n], vec![f32::NAN; n * n]);
        let (s, co) = c.rotation.sin_cos();
        for j in 0..n {
            for k in 0..n {
                let (x, y) = (cx + k as i64 - half as i64, cy + j as i64 - half as i64);
                if x < 0 || y < 0 || x >= w as i64 || y >= h as i64 {
                    continue;
                }
                data[j * n + k] = img.data[[y as usize, x as usize]];
                let (dx, dy) = (x as f64 - c.x, y as f64 - c.y);
                let (u, v) = (co * dx + s * dy, -s * dx + co * dy);
                let g = c.amplitude * (-(u * u / (2.0 * c.sigma_x.powi(2)) + v * v / (2.0 * c.sigma_y.powi(2)))).exp();
                model[j * n + k] = (c.background + sign * g) as f32;
            }
        }
        let residual: Vec<f32> = data.iter().zip(&model).map(|(d, m)| d - m).collect();
        let out = js_sys::Object::new();
        let set = |k: &str, v: JsValue| js_sys::Reflect::set(&out, &k.into(), &v).map(|_| ());
        set("size", n.into()).map_err(js)?;
        set("data", Float32Array::from(&data[..]).into()).map_err(js)?;
        set("model", Float32Array::from(&model[..]).into()).map_err(js)?;
        set("residual", Float32Array::from(&residual[..]).into()).map_err(js)?;
        Ok(out.into())
    }
}

/// Default column parameters (the page builds its form from these).
#[wasm_bindgen]
pub fn column_defaults() -> Result<JsValue, JsError> {
    to_js(&ColumnParams::default())
}

impl Default for Session {
    fn default() -> Self {
        Self::new()
    }
}

/// The colormap names the page may offer.
#[wasm_bindgen]
pub fn colormaps() -> Vec<String> {
    Colormap::ALL
        .iter()
        .map(|c| serde_json::to_value(c).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default())
        .collect()
}

fn colormap(name: &str) -> Result<Colormap, JsError> {
    serde_json::from_value(serde_json::Value::String(name.into()))
        .map_err(|_| JsError::new(&format!("unknown colormap {name}")))
}

fn to_js<T: Serialize + ?Sized>(v: &T) -> Result<JsValue, JsError> {
    v.serialize(&serde_wasm_bindgen::Serializer::json_compatible()).map_err(|e| JsError::new(&e.to_string()))
}

fn err(e: impl std::fmt::Display) -> JsError {
    JsError::new(&e.to_string())
}

fn js(e: JsValue) -> JsError {
    JsError::new(&format!("{e:?}"))
}
