//! DM3/DM4, TIA SER+EMI, Velox and Berkeley EMD, and MRC through `openreadout-em`.
//!
//! Why this crate: measured in `../shared/guide/readers.md` it reads every such sample file
//! bit-exact against RosettaSciIO, is pure Rust with zero wasm imports, reads from memory and
//! fails cleanly. This adapter adds what it leaves to the caller: a damaged-file guard (a
//! truncated DM still opens, so notes and `check()` are consulted), thumbnails skipped,
//! calibration normalised to nm, and the metadata atomlens shows.
use std::sync::Arc;

use atomlens_core::Calibration;
use openreadout_core::source::{Fs, Input, MemFs, MemSource};
use openreadout_core::{Dataset, Error as OrError, ImageInfo, PlaneIndex, Registry, pixel::PixelType};
use openreadout_em::{DmReader, EmdReader, MrcReader, SerReader};
use serde_json::Value;

use crate::{DType, IoError, Limits, Metadata, NamedFile, Signal};

/// Read `primary` from the in-memory namespace made of `files`.
pub fn read(primary: &str, files: Vec<NamedFile>, limits: &Limits) -> Result<Vec<Signal>, IoError> {
    let mut fs = MemFs::new();
    for f in files {
        let name = f.name.clone();
        fs.insert(&name, Arc::new(MemSource::new(name.clone(), f.bytes)));
    }
    let input = Input::new(primary, Fs::new(Arc::new(fs)));
    let registry = Registry::new()
        .strict(false)
        .with(Box::new(DmReader))
        .with(Box::new(EmdReader))
        .with(Box::new(MrcReader))
        .with(Box::new(SerReader));
    let (_, mut ds) = registry.open_input(&input).map_err(|e| map_error(primary, e))?;
    let info = ds.info().map_err(|e| map_error(primary, e))?;

    let damaged = info.notes.iter().find(|n| {
        let n = n.to_ascii_lowercase();
        n.contains("truncated") || n.contains("could not be read")
    });
    if let Some(note) = damaged {
        return Err(IoError::Truncated { name: primary.into(), detail: tidy(note) });
    }
    if let Ok(report) = ds.check()
        && let Some(f) = report.findings.iter().find(|f| f.code == "truncated")
    {
        return Err(IoError::Truncated { name: primary.into(), detail: tidy(&f.message) });
    }

    let format_name = info.format.name.clone();
    let mut read = Vec::new();
    let mut skipped = Vec::new();
    for im in &info.images {
        let label = im.name.clone().unwrap_or_else(|| format!("image {}", im.index));
        // Colour (DM RGBA, read as 3 interleaved u8 samples) becomes grey below; thumbnails,
        // spectrum images (Velox EDS/EELS: an energy axis, thousands of channels) and other
        // layouts are left out.
        let colour = im.samples_per_pixel == 3 && im.pixel_type == PixelType::Uint8;
        let spectral = im.extra.contains_key("energy_axis");
        if !(im.samples_per_pixel == 1 || colour) || spectral || label.starts_with("Image Of") {
            skipped.push(if spectral { format!("{label} (a spectrum image)") } else { label });
            continue;
        }
        read.push((label, read_image(primary, ds.as_mut(), im, &format_name, limits)));
    }
    if read.is_empty() {
        let detail = if info.images.is_empty() {
            format!("{format_name} file with no image (spectra, tables or a damaged header)")
        } else {
            format!("only colour, thumbnail or spectrum images ({})", skipped.join(", "))
        };
        return Err(IoError::NoImage { name: primary.into(), detail });
    }
    let mut signals = keep_readable(read)?;
    if let Some(first) = signals.first_mut()
        && skipped.iter().any(|s| s.ends_with("(a spectrum image)"))
    {
        first.metadata.notes.push(format!("not read: {} (atomlens analyses images)", skipped.join(", ")));
    }
    Ok(signals)
}

/// The images of a file that could be read; one that could not is named in a note on the first
/// (a Velox file keeps its HAADF when another part is damaged). An error only when none could.
fn keep_readable(read: Vec<(String, Result<Signal, IoError>)>) -> Result<Vec<Signal>, IoError> {
    let mut signals = Vec::new();
    let mut failed = Vec::new();
    let mut first_error = None;
    for (label, r) in read {
        match r {
            Ok(s) => signals.push(s),
            Err(e) => {
                failed.push(format!("{label}: {e}"));
                first_error.get_or_insert(e);
            }
        }
    }
    match (signals.first_mut(), first_error) {
        (None, Some(e)) => Err(e),
        (first, _) => {
            if let Some(first) = first {
                first.metadata.notes.extend(failed.into_iter().map(|f| format!("could not be read, left out: {f}")));
            }
            Ok(signals)
        }
    }
}

fn read_image(
    file: &str,
    ds: &mut dyn Dataset,
    im: &ImageInfo,
    format: &str,
    limits: &Limits,
) -> Result<Signal, IoError> {
    let (w, h) = (im.size_x as u64, im.size_y as u64);
    let frames = im.size_z as u64 * im.size_c as u64 * im.size_t as u64;
    if w == 0 || h == 0 || frames == 0 {
        return Err(IoError::NoImage {
            name: file.into(), detail: format!("a {w}×{h}×{frames} image has no pixels")
        });
    }
    limits.check(w, h, frames)?;
    let dtype = dtype_of(im.pixel_type).ok_or_else(|| IoError::UnsupportedFeature {
        name: file.into(),
        detail: format!("pixel type {:?}", im.pixel_type),
    })?;
    let spp = im.samples_per_pixel as usize;
    let plane_bytes = (w * h) as usize * dtype.size() * spp;
    let mut data = Vec::with_capacity(plane_bytes * frames as usize);
    for t in 0..im.size_t {
        for z in 0..im.size_z {
            for c in 0..im.size_c {
                let plane = ds.read_plane(im.index, PlaneIndex { c, z, t }).map_err(|e| map_error(file, e))?;
                if plane.data.len() != plane_bytes {
                    return Err(IoError::Truncated {
                        name: file.into(),
                        detail: format!("plane of {} bytes where {plane_bytes} were expected", plane.data.len()),
                    });
                }
                data.extend_from_slice(&plane.data);
            }
        }
    }
    // Berkeley EMD: the crate follows storage order (X = last dim); RosettaSciIO and the
    // format's own convention put X on dim1, so transpose to agree with them.
    let (mut w, mut h) = (w, h);
    if im.extra.contains_key("dims") {
        data = transpose_planes(&data, w as usize, h as usize, dtype.size());
        (w, h) = (h, w);
    }
    // Colour to grey as TIFF's colour images are: the mean of R, G and B, as f32.
    let dtype = if spp == 3 {
        data = data
            .as_chunks::<3>()
            .0
            .iter()
            .flat_map(|[r, g, b]| ((*r as f32 + *g as f32 + *b as f32) / 3.0).to_le_bytes())
            .collect();
        DType::F32
    } else {
        dtype
    };
    let calibration =
        im.physical_size.x.and_then(|um| Calibration::from_length(um, "µm")).unwrap_or_else(Calibration::uncalibrated);
    let mut metadata = metadata_of(im, format);
    metadata.tilt_angles_deg = tilt_angles(ds, im.index, frames as usize);
    if spp == 3 {
        metadata.notes.push("colour image: converted to grey (mean of R, G, B)".into());
    }
    if matches!(dtype, DType::C64 | DType::C128) {
        metadata.notes.push("complex data: shown and analysed as magnitude".into());
    }
    Ok(Signal {
        title: im.name.clone().unwrap_or_default(),
        dtype,
        width: w as usize,
        height: h as usize,
        frames: frames as usize,
        data,
        calibration,
        metadata,
    })
}

/// The tilt angle of each of `frames` frames from the reader's per-frame records (SerialEM's
/// `tilt_angle_deg`, FEI's `alpha_tilt`, both in degrees), when every frame has one.
fn tilt_angles(ds: &dyn Dataset, image: u32, frames: usize) -> Option<Vec<f64>> {
    let (_, records) = ds.frames(image, Some(frames)).ok()?;
    let angles: Vec<f64> = records
        .iter()
        .filter_map(|r| r.get("tilt_angle_deg").or_else(|| r.get("alpha_tilt")).and_then(Value::as_f64))
        .filter(|a| a.is_finite() && a.abs() <= 90.0)
        .collect();
    (frames > 1 && angles.len() == frames).then_some(angles)
}

fn transpose_planes(data: &[u8], w: usize, h: usize, size: usize) -> Vec<u8> {
    let plane = w * h * size;
    let mut out = vec![0u8; data.len()];
    for (src, dst) in data.chunks_exact(plane).zip(out.chunks_exact_mut(plane)) {
        for y in 0..h {
            for x in 0..w {
                let (s, d) = ((y * w + x) * size, (x * h + y) * size);
                dst[d..d + size].copy_from_slice(&src[s..s + size]);
            }
        }
    }
    out
}

fn dtype_of(p: PixelType) -> Option<DType> {
    Some(match p {
        PixelType::Int8 => DType::I8,
        PixelType::Int16 => DType::I16,
        PixelType::Int32 => DType::I32,
        PixelType::Int64 => DType::I64,
        PixelType::Uint8 => DType::U8,
        PixelType::Uint16 => DType::U16,
        PixelType::Uint32 => DType::U32,
        PixelType::Uint64 => DType::U64,
        PixelType::Float => DType::F32,
        PixelType::Double => DType::F64,
        PixelType::ComplexFloat => DType::C64,
        PixelType::ComplexDouble => DType::C128,
        _ => return None,
    })
}

fn metadata_of(im: &ImageInfo, format: &str) -> Metadata {
    let extra = &im.extra;
    let num = |k: &str| extra.get(k).and_then(Value::as_f64).filter(|v| v.is_finite() && *v > 0.0);
    let inst = im.instrument.as_ref();
    let microscope = inst
        .and_then(|i| i.model.clone().or_else(|| i.manufacturer.clone()))
        .map(|m| m.strip_prefix("Microscope ").map(str::to_string).unwrap_or(m));
    Metadata {
        format: format.to_string(),
        voltage_kv: num("voltage_kv").or_else(|| num("high_tension_kv")),
        microscope,
        detector: inst.and_then(|i| i.detector.clone()),
        mode: extra.get("mode").and_then(Value::as_str).map(str::to_string),
        magnification: num("magnification")
            .or_else(|| extra.get("microscope").and_then(|m| m.get("indicated_magnification")).and_then(Value::as_f64)),
        dwell_time_us: find_dwell_us(extra),
        acquired: im.acquired_at.clone(),
        notes: Vec::new(),
        tilt_angles_deg: None,
    }
}

/// The pixel dwell time wherever a reader put it (keys differ per format). Keys that name
/// their unit are honoured; a bare value below 0.01 is taken as seconds, otherwise µs.
fn find_dwell_us(extra: &std::collections::BTreeMap<String, Value>) -> Option<f64> {
    fn walk(key: &str, v: &Value) -> Option<f64> {
        match v {
            Value::Object(m) => m.iter().find_map(|(k, v)| walk(k, v)),
            Value::Number(n) if key.to_ascii_lowercase().contains("dwell") => {
                let x = n.as_f64()?;
                let k = key.to_ascii_lowercase();
                let us = if k.ends_with("_us") || k.contains("(us)") || k.contains("µs") {
                    x
                } else if k.ends_with("_ns") {
                    x / 1e3
                } else if k.ends_with("_s") || x < 0.01 {
                    x * 1e6
                } else {
                    x
                };
                (us.is_finite() && us > 0.0).then_some(us)
            }
            _ => None,
        }
    }
    extra.iter().find_map(|(k, v)| walk(k, v))
}

fn map_error(name: &str, e: OrError) -> IoError {
    let name = name.to_string();
    match e {
        OrError::UnknownFormat { .. } => {
            IoError::UnsupportedFormat { name, detail: "no reader recognises its header".into() }
        }
        OrError::Corrupt { detail, .. } if detail.contains("truncated") => {
            IoError::Truncated { name, detail: tidy(&detail) }
        }
        OrError::Corrupt { detail, .. } if detail.contains("only the file extension matched") => {
            IoError::UnsupportedFormat { name, detail: tidy(&detail) }
        }
        OrError::Corrupt { detail, .. } => IoError::Corrupt { name, detail: tidy(&detail) },
        OrError::Unsupported { feature, hint, .. } => {
            if feature.contains(".ser") || hint.as_deref().is_some_and(|h| h.contains(".ser")) {
                IoError::MissingCompanion {
                    needed: "the matching .ser file".into(),
                    reason: format!("{name} only describes a TIA series; drop it together with its _1.ser ({feature})"),
                }
            } else {
                IoError::UnsupportedFeature { name, detail: feature }
            }
        }
        other => IoError::Corrupt { name, detail: other.to_string() },
    }
}

/// The crate's messages address its own CLI ("run `check`"); drop that for ours.
fn tidy(msg: &str) -> String {
    msg.replace("; run `check`", "").replace(" (run `check`)", "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn signal(title: &str) -> Signal {
        Signal {
            title: title.into(),
            dtype: DType::U8,
            width: 1,
            height: 1,
            frames: 1,
            data: vec![0],
            calibration: Calibration::uncalibrated(),
            metadata: Metadata::default(),
        }
    }

    /// A damaged part of a file (a Velox event stream) does not take its HAADF with it; a file
    /// of which nothing reads gives its first error.
    #[test]
    fn a_damaged_image_is_left_out_with_a_note() {
        let bad = || IoError::Truncated { name: "f.emd".into(), detail: "event stream 3".into() };
        let kept = keep_readable(vec![("HAADF".into(), Ok(signal("HAADF"))), ("EDS".into(), Err(bad()))]).unwrap();
        assert_eq!(kept.len(), 1);
        assert!(
            kept[0].metadata.notes.iter().any(|n| n.starts_with("could not be read, left out: EDS:")),
            "{:?}",
            kept[0].metadata.notes
        );
        let e = keep_readable(vec![("EDS".into(), Err(bad()))]).unwrap_err();
        assert!(e.to_string().contains("event stream 3"), "{e}");
    }
}
