//! The engine's state in plain Rust, tested natively: the open dataset (every signal as an f32
//! stack), the image shown and everything measured on it, and what belongs to the dataset as a
//! whole (a reconstruction, a comparison). The per-image results live in one [`Shown`], made
//! anew whenever another signal or frame is shown, so no result outlives its image.
use atomlens_core::columns::find::Peaks;
use atomlens_core::columns::{ColumnParams, ColumnResult};
use atomlens_core::image::render::{Colormap, to_rgba};
use atomlens_core::image::{spectrum, stats};
use atomlens_core::strain::gpa::{GpaParams, GpaResult};
use atomlens_core::synth::Demo;
use atomlens_core::{Calibration, Image, Stack};
use atomlens_io::{Limits, Metadata, NamedFile};
use ndarray::Array2;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::reply::Reply;

mod columns;
pub mod journal;
mod particles;
mod report;
mod strain;
#[cfg(test)]
mod tests;
mod tomo;
pub use tomo::slice_preview;

pub use journal::{FileRef, Saved, Step};
pub use particles::{Compared, Particles};
pub use tomo::Tomo;

/// What the page lists about a signal.
#[derive(Debug, Serialize, Clone, PartialEq)]
pub struct SignalInfo {
    /// The file's title for it (may be empty).
    pub title: String,
    /// Width (px).
    pub width: usize,
    /// Height (px).
    pub height: usize,
    /// Frames.
    pub frames: usize,
    /// The file's sample type (`float32` for derived signals).
    pub dtype: &'static str,
    /// Pixel size in `unit`.
    pub pixel_size: f64,
    /// `nm` or `px`.
    pub unit: String,
    /// What the file says about the acquisition.
    pub metadata: Metadata,
}

impl SignalInfo {
    /// A derived single-frame float signal of `data` (a clean-up, an average, a map).
    fn derived(title: String, data: &Array2<f32>, cal: &Calibration, metadata: Metadata) -> SignalInfo {
        let (height, width) = data.dim();
        let (pixel_size, unit) = (cal.pixel_size, cal.unit.clone());
        SignalInfo { title, width, height, frames: 1, dtype: "float32", pixel_size, unit, metadata }
    }
}

/// One signal of the dataset.
pub struct Signal {
    /// Its frames.
    pub stack: Stack,
    /// What the page lists.
    pub info: SignalInfo,
}

impl Signal {
    /// A signal read from a file, its title passed through `title`.
    fn read(s: atomlens_io::Signal, title: impl FnOnce(String) -> String) -> Result<Signal> {
        let stack = s.to_stack()?;
        let (pixel_size, unit) = (s.calibration.pixel_size, s.calibration.unit.clone());
        let (width, height, frames, dtype) = (s.width, s.height, s.frames, s.dtype.name());
        let info =
            SignalInfo { title: title(s.title), width, height, frames, dtype, pixel_size, unit, metadata: s.metadata };
        Ok(Signal { stack, info })
    }
}

/// The image shown and everything measured on it.
pub struct Shown {
    /// Which signal and frame.
    pub signal: usize,
    /// Which frame.
    pub frame: usize,
    /// The pixels.
    pub image: Image,
    /// Columns found, waiting to be fitted.
    pub found: Option<(Peaks, ColumnParams)>,
    /// Columns fitted (and edited).
    pub columns: Option<(ColumnResult, ColumnParams)>,
    /// Strain maps.
    pub gpa: Option<(GpaResult, GpaParams)>,
    /// The particle analysis.
    pub particles: Option<Particles>,
    /// A Noise2Void training in progress on this image.
    pub training: Option<Box<atomlens_core::learned::n2v::Trainer>>,
}

/// What the page shows about the image it selected.
#[derive(Serialize)]
struct ImageInfo {
    width: usize,
    height: usize,
    pixel_size: f64,
    unit: String,
    summary: stats::Summary,
}

/// The engine's state (see the module docs).
#[derive(Default)]
pub struct Session {
    /// Every signal of the open dataset, derived ones appended.
    pub signals: Vec<Signal>,
    /// The image shown.
    pub shown: Option<Shown>,
    /// The reconstruction, begun or finished (it belongs to the dataset: scrubbing the series
    /// shows its frames).
    pub tomo: Option<Tomo>,
    /// The last comparison of two of the dataset's signals.
    pub compared: Option<Compared>,
    /// Every operation since the dataset was opened ([`journal`]).
    journal: Vec<Step>,
    /// The largest image it reads ([`Limits::BROWSER`] unless made [`Session::with_limits`]).
    limits: Limits,
}

impl Session {
    /// An empty session.
    pub fn new() -> Session {
        Session::default()
    }

    /// An empty session that reads images up to `limits` (the CLI: [`Limits::NATIVE`]).
    pub fn with_limits(limits: Limits) -> Session {
        Session { limits, ..Session::default() }
    }

    /// Replace the dataset by a built-in demo; returns the signal list.
    pub fn load_demo(&mut self, demo: Demo) -> Result<Reply> {
        let mut signals = Vec::new();
        for d in demo.images()? {
            let img = d.synthetic.image;
            let metadata = Metadata {
                format: "atomlens synthetic".into(),
                voltage_kv: Some(300.0),
                detector: Some("HAADF (simulated)".into()),
                mode: Some("STEM".into()),
                notes: vec![d.note],
                ..Metadata::default()
            };
            let info = SignalInfo::derived(d.title, &img.data, &img.calibration, metadata);
            signals.push(Signal { stack: stack_of(img.data, img.calibration)?, info });
        }
        let out = self.replace(signals)?;
        self.record(Step::Demo { demo });
        Ok(out)
    }

    /// Read `primary` from the dropped files (`names[i]` ↔ `bytes[i]`); returns the signal list.
    /// A file whose first image cannot be shown is refused before anything is replaced.
    pub fn load_files(&mut self, primary: &str, files: Vec<NamedFile>) -> Result<Reply> {
        let refs = files.iter().map(FileRef::of).collect();
        let signals = atomlens_io::read(primary, files, &self.limits)?
            .into_iter()
            .map(|s| Signal::read(s, |t| t))
            .collect::<Result<Vec<_>>>()?;
        if let Some(first) = signals.first() {
            atomlens_core::image::check_usable(first.stack.frames.index_axis(ndarray::Axis(0), 0))?;
        }
        let out = self.replace(signals)?;
        self.record(Step::Open { primary: primary.into(), files: refs });
        Ok(out)
    }

    /// Add another file's signals to the dataset (to compare an image with one from another
    /// file), each titled with the file's name: `{signals, index}` (index of the first added).
    /// The dataset and its results stay.
    pub fn add_files(&mut self, primary: &str, files: Vec<NamedFile>) -> Result<Reply> {
        let refs = files.iter().map(FileRef::of).collect();
        let read = atomlens_io::read(primary, files, &self.limits)?;
        let first = self.signals.len();
        for s in read {
            let titled = |t: String| if t.is_empty() { primary.to_string() } else { format!("{primary}: {t}") };
            self.signals.push(Signal::read(s, titled)?);
        }
        if first == self.signals.len() {
            return Err(Error::invalid(format!("{primary} holds no image")));
        }
        self.record(Step::Add { primary: primary.into(), files: refs });
        Ok(self.appended(first))
    }

    /// Several files as the frames of one series (the first frame of each file's first signal,
    /// in order): `groups[k]` = (primary, its files). Refuses images of different sizes.
    pub fn load_series(&mut self, groups: Vec<(String, Vec<NamedFile>)>) -> Result<Reply> {
        if groups.len() < 2 {
            return Err(Error::invalid("a series needs at least two images"));
        }
        let refs = groups.iter().map(|(p, f)| (p.clone(), f.iter().map(FileRef::of).collect())).collect();
        let mut pixels = Vec::new();
        let mut first: Option<(usize, usize, Calibration, String)> = None;
        let primaries: Vec<String> = groups.iter().map(|g| g.0.clone()).collect();
        for (primary, files) in groups {
            let img = atomlens_io::read(&primary, files, &self.limits)?[0].frame(0)?;
            let (w, h) = (img.width(), img.height());
            match &first {
                None => first = Some((w, h, img.calibration.clone(), primary.clone())),
                Some((w0, h0, _, name)) if (*w0, *h0) != (w, h) => {
                    return Err(Error::invalid(format!(
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
            metadata: Metadata { notes: primaries, ..Metadata::default() },
        };
        let stack = Stack::from_vec(w, h, n, pixels, cal)?;
        let out = self.replace(vec![Signal { stack, info }])?;
        self.record(Step::Series { groups: refs });
        Ok(out)
    }

    /// A new dataset: every earlier result goes with the old one.
    fn replace(&mut self, signals: Vec<Signal>) -> Result<Reply> {
        *self = Session { signals, limits: self.limits, ..Session::default() };
        Ok(self.signal_list())
    }

    /// `{signals}`: what the page lists.
    pub fn signal_list(&self) -> Reply {
        let infos: Vec<&SignalInfo> = self.signals.iter().map(|s| &s.info).collect();
        Reply::new().json("signals", &infos)
    }

    /// `{signals, index}`: the list after appending signal `index`, the one to show.
    fn appended(&self, index: usize) -> Reply {
        self.signal_list().json("index", &index)
    }

    /// Add a derived single-frame signal (an aligned average, a clean-up, a map); its index.
    fn append(&mut self, data: Array2<f32>, cal: Calibration, info: SignalInfo) -> Result<usize> {
        self.signals.push(Signal { stack: stack_of(data, cal)?, info });
        Ok(self.signals.len() - 1)
    }

    /// Give signal `signal` the pixel size `size` as a user writes it ("0.25 Å", "25 pm",
    /// "px"; [`Calibration::parse`]): `{signals, index}`. Select it again to measure with it.
    pub fn set_calibration(&mut self, signal: usize, size: &str) -> Result<Reply> {
        let cal = Calibration::parse(size)?;
        let s = self.signals.get_mut(signal).ok_or_else(|| Error::invalid(format!("no signal {signal}")))?;
        s.info.pixel_size = cal.pixel_size;
        s.info.unit = cal.unit.clone();
        s.stack.calibration = cal;
        self.record(Step::Calibrate { signal, size: size.into() });
        Ok(self.appended(signal))
    }

    /// Frame `frame` of signal `signal`.
    fn frame(&self, signal: usize, frame: usize) -> Result<Image> {
        let s = self.signals.get(signal).ok_or_else(|| Error::invalid(format!("no signal {signal}")))?;
        s.stack.frame(frame).ok_or_else(|| Error::invalid(format!("no frame {frame} in signal {signal}")))
    }

    /// Show frame `frame` of signal `signal`: its size, calibration and statistics. Whatever was
    /// measured on the image shown before is dropped. Fails for images that cannot be shown.
    pub fn select(&mut self, signal: usize, frame: usize) -> Result<Reply> {
        let image = self.frame(signal, frame)?;
        stats::summary(image.view())?;
        self.shown = Some(Shown {
            signal,
            frame,
            image,
            found: None,
            columns: None,
            gpa: None,
            particles: None,
            training: None,
        });
        // Scrubbing through frames: only the last one shown matters.
        if let Some(Step::Select { .. }) = self.journal.last() {
            self.journal.pop();
        }
        self.record(Step::Select { signal, frame });
        self.image_info()
    }

    /// What [`Session::select`] says about the image shown: `{width, height, pixel_size, unit,
    /// summary}`.
    pub fn image_info(&self) -> Result<Reply> {
        let image = self.image()?;
        let info = ImageInfo {
            width: image.width(),
            height: image.height(),
            pixel_size: image.calibration.pixel_size,
            unit: image.calibration.unit.clone(),
            summary: stats::summary(image.view())?,
        };
        Ok(Reply::of(&info))
    }

    /// The image shown and its results.
    pub fn shown(&self) -> Result<&Shown> {
        self.shown.as_ref().ok_or_else(|| Error::state("no image is shown: open a file or a demo first"))
    }

    fn shown_mut(&mut self) -> Result<&mut Shown> {
        self.shown.as_mut().ok_or_else(|| Error::state("no image is shown: open a file or a demo first"))
    }

    /// The pixels shown.
    pub fn image(&self) -> Result<&Image> {
        Ok(&self.shown()?.image)
    }

    /// The shown image between its `plo` and `phi` percentiles (or `lo`, `hi` when given) in
    /// `cmap`: `{rgba, lo, hi, min, max, hist}` (a 128-bin histogram over min…max).
    pub fn view(&self, plo: f64, phi: f64, limits: Option<(f32, f32)>, cmap: &str) -> Result<Reply> {
        let img = self.image()?.view();
        let (lo, mut hi) = match limits {
            Some(l) => l,
            None => {
                let p = stats::percentiles(img, &[plo, phi])?;
                (p[0], p[1])
            }
        };
        if !(hi > lo) {
            hi = lo + 1.0;
        }
        let all = stats::percentiles(img, &[0.0, 100.0])?;
        let hist = stats::histogram(img, all[0], all[1], 128)?;
        Ok(Reply::new()
            .u8s("rgba", to_rgba(img, lo, hi, colormap(cmap)?))
            .u32s("hist", hist)
            .json("lo", &lo)
            .json("hi", &hi)
            .json("min", &all[0])
            .json("max", &all[1]))
    }

    /// RGBA of frame `frame` of signal `signal` between `lo` and `hi`, without changing the shown
    /// image (the before/after split).
    pub fn render_signal(&self, signal: usize, frame: usize, lo: f32, hi: f32, cmap: &str) -> Result<Vec<u8>> {
        Ok(to_rgba(self.frame(signal, frame)?.view(), lo, hi, colormap(cmap)?))
    }

    /// The pixel value at (x, y), or NaN outside the image.
    pub fn value_at(&self, x: usize, y: usize) -> Result<f32> {
        Ok(self.image()?.data.get([y, x]).copied().unwrap_or(f32::NAN))
    }

    /// The power spectrum rendered with `cmap` between its 50th and 99.98th percentiles:
    /// `{rgba, width, height, step_x, step_y, unit}` (zero frequency at `(width/2, height/2)`).
    pub fn spectrum(&self, cmap: &str) -> Result<Reply> {
        let img = self.image()?;
        let ps = spectrum::power_spectrum(img.view(), &img.calibration)?;
        let lim = stats::percentiles(ps.data.view(), &[50.0, 99.98])?;
        Ok(Reply::new()
            .u8s("rgba", to_rgba(ps.data.view(), lim[0], lim[1], colormap(cmap)?))
            .json("width", &ps.data.ncols())
            .json("height", &ps.data.nrows())
            .json("step_x", &ps.axes.step_x)
            .json("step_y", &ps.axes.step_y)
            .json("unit", &ps.axes.unit))
    }

    /// The shown image as a 32-bit float TIFF with its calibration.
    pub fn export_tiff(&self) -> Result<Vec<u8>> {
        let img = self.image()?;
        tiff(&img.data, &img.calibration)
    }

    /// Drift-correct the frames of signal `signal` (and, when `nonrigid`, their scan
    /// distortions), append their aligned average: `{signals, index, dx, dy, field}` (the drift
    /// per frame, the RMS distortion field per frame).
    pub fn register_frames(&mut self, signal: usize, nonrigid: bool) -> Result<Reply> {
        use atomlens_core::register::nonrigid::{NonrigidParams, register_series_nonrigid};
        let s = self.signals.get(signal).ok_or_else(|| Error::invalid(format!("no signal {signal}")))?;
        let frames: Vec<_> = (0..s.stack.len()).filter_map(|t| s.stack.frame(t)).collect();
        let views: Vec<_> = frames.iter().map(|f| f.view()).collect();
        let (r, field) = if nonrigid {
            let n = register_series_nonrigid(&views, &NonrigidParams::default())?;
            (n.registered, n.fields.iter().map(|f| f.rms()).collect())
        } else {
            (atomlens_core::register::register_series(&views)?, vec![0.0; frames.len()])
        };
        let mut info = s.info.clone();
        info.title = match info.title.as_str() {
            "" => format!("aligned average of {} frames", frames.len()),
            t => format!("aligned average of {} frames: {t}", frames.len()),
        };
        (info.frames, info.dtype) = (1, "float32");
        info.metadata.notes.push(format!(
            "{} drift correction of {} frames; largest drift {:.2} px",
            if nonrigid { "non-rigid" } else { "rigid" },
            frames.len(),
            r.shifts.iter().map(|s| s[0].hypot(s[1])).fold(0.0, f64::max)
        ));
        let cal = s.stack.calibration.clone();
        let index = self.append(r.average, cal, info)?;
        self.record(Step::Register { signal, nonrigid });
        Ok(self
            .appended(index)
            .f64s("dx", r.shifts.iter().map(|s| s[0]).collect())
            .f64s("dy", r.shifts.iter().map(|s| s[1]).collect())
            .f64s("field", field))
    }

    /// Clean up the shown image with `method` and append the result and what it removed as
    /// two new signals: `{signals, index}` (index of the result).
    pub fn denoise_current(&mut self, method: atomlens_core::denoise::Method) -> Result<Reply> {
        let out = atomlens_core::denoise::apply(self.image()?.view(), &method)?;
        self.denoised(method, out)
    }

    /// Begin training Noise2Void (`method`) on the shown image, stepped by [`Self::n2v_step`]
    /// and ended by [`Self::n2v_finish`], so the worker can report progress between steps:
    /// `{steps}`.
    pub fn n2v_begin(&mut self, method: atomlens_core::denoise::Method) -> Result<Reply> {
        let atomlens_core::denoise::Method::Noise2Void { steps, seed } = method else {
            return Err(Error::invalid(format!("{} is not trained: run it with denoise", method.name())));
        };
        let trainer = atomlens_core::learned::n2v::Trainer::new(self.image()?.view(), steps, seed)?;
        self.shown_mut()?.training = Some(Box::new(trainer));
        Ok(Reply::of(&serde_json::json!({ "steps": steps })))
    }

    /// Up to `count` more training steps: `{done, steps, loss}` (the mean loss of these steps).
    pub fn n2v_step(&mut self, count: usize) -> Result<Reply> {
        let trainer = self.shown_mut()?.training.as_mut().ok_or_else(|| Error::state("no training has begun"))?;
        let losses: Vec<f32> = (0..count).map_while(|_| trainer.step()).collect();
        let (done, steps) = trainer.progress();
        let loss = losses.iter().sum::<f32>() / losses.len().max(1) as f32;
        Ok(Reply::of(&serde_json::json!({ "done": done, "steps": steps, "loss": loss })))
    }

    /// The shown image denoised by the trained network, appended as [`Self::denoise_current`]
    /// appends (the rest of the steps are taken first).
    pub fn n2v_finish(&mut self) -> Result<Reply> {
        let shown = self.shown_mut()?;
        let trainer = shown.training.take().ok_or_else(|| Error::state("no training has begun"))?;
        let method = atomlens_core::denoise::Method::Noise2Void { steps: trainer.progress().1, seed: trainer.seed() };
        let out = trainer.finish(shown.image.view());
        self.denoised(method, out)
    }

    /// Append `out`, the shown image cleaned up by `method` elsewhere (the GPU), as
    /// [`Self::denoise_current`] does.
    pub fn denoised(&mut self, method: atomlens_core::denoise::Method, out: Array2<f32>) -> Result<Reply> {
        let img = self.image()?;
        if out.dim() != img.data.dim() {
            return Err(Error::invalid(format!(
                "a filtered image of {:?} for an image of {:?}",
                out.dim(),
                img.data.dim()
            )));
        }
        let removed = &img.data - &out;
        let cal = img.calibration.clone();
        let name = method.name();
        let meta = || Metadata { notes: vec![format!("{method:?}")], ..Metadata::default() };
        let result = SignalInfo::derived(format!("{name} filtered"), &out, &cal, meta());
        let rest = SignalInfo::derived(format!("removed by {name}"), &removed, &cal, meta());
        let index = self.append(out, cal.clone(), result)?;
        self.append(removed, cal, rest)?;
        self.record(Step::Denoise { method });
        Ok(self.appended(index))
    }
}

/// A single-frame stack of `data`.
fn stack_of(data: Array2<f32>, cal: Calibration) -> Result<Stack> {
    let (h, w) = data.dim();
    Ok(Stack::from_vec(w, h, 1, data.into_raw_vec_and_offset().0, cal)?)
}

/// `data` as a calibrated 32-bit float TIFF.
fn tiff(data: &Array2<f32>, cal: &Calibration) -> Result<Vec<u8>> {
    let (h, w) = data.dim();
    let px = data.as_standard_layout();
    Ok(atomlens_io::formats::tiff::write_f32(w, h, px.as_slice().unwrap_or(&[]), cal)?)
}

/// The colormap called `name` (its serde name).
pub fn colormap(name: &str) -> Result<Colormap> {
    serde_json::from_value(serde_json::Value::String(name.into()))
        .map_err(|_| Error::invalid(format!("unknown colormap {name}")))
}
