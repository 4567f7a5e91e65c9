//! TIFF through the `tiff` crate: 8–64-bit integer and 32/64-bit float greyscale, multi-page
//! stacks, and calibration from Gatan's private tags (65003/65009: x unit and scale, as
//! DigitalMicrograph writes them) or from an ImageJ description. The writer stores 32-bit float
//! pages with both, so DM, ImageJ, HyperSpy and atomlens read the pixel size back.
use std::io::Cursor;

use atomlens_core::Calibration;
use tiff::decoder::{Decoder, DecodingResult, ifd::Value};
use tiff::encoder::{Rational, TiffEncoder, colortype::Gray32Float};
use tiff::tags::{ResolutionUnit, Tag};
use tiff::{ColorType, TiffError};

use crate::signal::le_bytes;
use crate::{DType, IoError, Limits, Metadata, NamedFile, Signal};

const DM_X_UNIT: u16 = 65003;
const DM_X_SCALE: u16 = 65009;

/// Read every page of the first page's size and type as one stack.
pub fn read(file: &NamedFile, limits: &Limits) -> Result<Vec<Signal>, IoError> {
    let name = file.name.as_str();
    let err = |e: TiffError| map_error(name, e);
    let mut tl = tiff::decoder::Limits::unlimited();
    tl.decoding_buffer_size = usize::try_from(limits.max_pixels.saturating_mul(8)).unwrap_or(usize::MAX);
    tl.ifd_value_size = 64 << 20;
    let mut dec = Decoder::new(Cursor::new(&file.bytes[..])).map_err(err)?.with_limits(tl);

    let (w, h) = dec.dimensions().map_err(err)?;
    if w == 0 || h == 0 {
        return Err(IoError::NoImage { name: name.into(), detail: format!("a {w}×{h} page has no pixels") });
    }
    let color = dec.colortype().map_err(err)?;
    let mut notes = Vec::new();
    if !matches!(color, ColorType::Gray(_)) {
        notes.push(format!("{color:?} pixels converted to grey (mean of R, G, B)"));
    }
    let calibration = calibration(&mut dec, &file.bytes);
    let software = dec.get_tag_ascii_string(Tag::Software).ok();
    let acquired = dec.get_tag_ascii_string(Tag::DateTime).ok().map(|d| tiff_date_to_iso(&d));

    let mut dtype = None;
    let mut data = Vec::new();
    let mut frames = 0usize;
    loop {
        limits.check(w as u64, h as u64, frames as u64 + 1)?;
        let page = dec.read_image().map_err(err)?;
        let (t, bytes) = to_grey_le(page, color, (w * h) as usize).ok_or_else(|| IoError::UnsupportedFeature {
            name: name.into(),
            detail: format!("{color:?} TIFF pages"),
        })?;
        if dtype.is_some_and(|d| d != t) {
            notes.push(format!("pages after {frames} have another sample type and were skipped"));
            break;
        }
        dtype = Some(t);
        data.extend_from_slice(&bytes);
        frames += 1;
        if !dec.more_images() {
            break;
        }
        dec.next_image().map_err(err)?;
        if dec.dimensions().map_err(err)? != (w, h) || dec.colortype().map_err(err)? != color {
            notes.push(format!("pages after {frames} have another size or colour type and were skipped"));
            break;
        }
    }
    let dtype = dtype.ok_or_else(|| IoError::NoImage { name: name.into(), detail: "no readable page".into() })?;
    let format = match (software.as_deref(), is_dm(&calibration.1)) {
        (_, true) => "TIFF (DigitalMicrograph)".to_string(),
        (Some(s), _) if s.starts_with("ImageJ") => "TIFF (ImageJ)".to_string(),
        _ => "TIFF".to_string(),
    };
    Ok(vec![Signal {
        title: String::new(),
        dtype,
        width: w as usize,
        height: h as usize,
        frames,
        data,
        calibration: calibration.0,
        metadata: Metadata { format, acquired, notes, ..Metadata::default() },
    }])
}

fn is_dm(source: &CalSource) -> bool {
    matches!(source, CalSource::Dm)
}

enum CalSource {
    Dm,
    ImageJ,
    None,
}

/// Gatan tags first (exact doubles), then an ImageJ description with XResolution.
fn calibration(dec: &mut Decoder<Cursor<&[u8]>>, bytes: &[u8]) -> (Calibration, CalSource) {
    let number = |v: Value| -> Option<f64> {
        match v {
            Value::Double(x) => Some(x),
            Value::Float(x) => Some(x as f64),
            Value::Rational(n, d) if d != 0 => Some(n as f64 / d as f64),
            Value::Unsigned(x) => Some(x as f64),
            Value::List(l) => l.into_iter().next().and_then(|v| match v {
                Value::Double(x) => Some(x),
                Value::Float(x) => Some(x as f64),
                _ => None,
            }),
            _ => None,
        }
    };
    let scale = dec.find_tag(Tag::Unknown(DM_X_SCALE)).ok().flatten().and_then(number);
    if let Some(scale) = scale {
        let unit = dec
            .find_tag(Tag::Unknown(DM_X_UNIT))
            .ok()
            .flatten()
            .and_then(ascii_lossy)
            .or_else(|| latin1_tag_of_first_page(bytes, DM_X_UNIT));
        return match unit.as_deref().and_then(|u| Calibration::from_length(scale, u)) {
            Some(c) => (c, CalSource::Dm),
            None => (Calibration::uncalibrated(), CalSource::Dm),
        };
    }
    let desc = dec.get_tag_ascii_string(Tag::ImageDescription).unwrap_or_default();
    if desc.starts_with("ImageJ=") {
        let unit = desc.lines().find_map(|l| l.strip_prefix("unit=")).map(|u| u.replace("\\u00C5", "Å"));
        let xres = dec.find_tag(Tag::XResolution).ok().flatten().and_then(number);
        if let (Some(unit), Some(xres)) = (unit, xres)
            && xres > 0.0
            && let Some(c) = Calibration::from_length(1.0 / xres, &unit)
        {
            return (c, CalSource::ImageJ);
        }
    }
    (Calibration::uncalibrated(), CalSource::None)
}

/// DM writes units as ASCII or as Latin-1 bytes ("µm" with 0xB5).
fn ascii_lossy(v: Value) -> Option<String> {
    match v {
        Value::Ascii(s) => Some(s.trim_end_matches('\0').to_string()),
        Value::List(items) => {
            let bytes: Vec<u8> =
                items.into_iter().filter_map(|v| if let Value::Byte(b) = v { Some(b) } else { None }).collect();
            Some(bytes.iter().take_while(|&&b| b != 0).map(|&b| b as char).collect())
        }
        Value::Byte(b) => Some((b as char).to_string()),
        _ => None,
    }
}

/// The `tiff` crate refuses non-ASCII text tags; DigitalMicrograph writes "µm" in Latin-1
/// (0xB5 0x6D). Look the tag up in the first IFD by hand and decode it as Latin-1.
fn latin1_tag_of_first_page(b: &[u8], tag: u16) -> Option<String> {
    let le = b.get(..2)? == b"II";
    let u16_at = |o: usize| -> Option<u16> {
        let s: [u8; 2] = b.get(o..o + 2)?.try_into().ok()?;
        Some(if le { u16::from_le_bytes(s) } else { u16::from_be_bytes(s) })
    };
    let u32_at = |o: usize| -> Option<u32> {
        let s: [u8; 4] = b.get(o..o + 4)?.try_into().ok()?;
        Some(if le { u32::from_le_bytes(s) } else { u32::from_be_bytes(s) })
    };
    let ifd = u32_at(4)? as usize;
    let n = u16_at(ifd)? as usize;
    let entry = (0..n).map(|i| ifd + 2 + 12 * i).find(|&e| u16_at(e) == Some(tag))?;
    if u16_at(entry + 2)? != 2 {
        return None;
    }
    let count = u32_at(entry + 4)? as usize;
    let start = if count <= 4 { entry + 8 } else { u32_at(entry + 8)? as usize };
    let text = b.get(start..start.checked_add(count)?)?;
    Some(text.iter().take_while(|&&c| c != 0).map(|&c| c as char).collect())
}

fn tiff_date_to_iso(d: &str) -> String {
    // "YYYY:MM:DD HH:MM:SS" → "YYYY-MM-DDTHH:MM:SS"
    let d = d.trim_end_matches('\0');
    match d.split_once(' ') {
        Some((date, time)) if date.len() == 10 => format!("{}T{time}", date.replace(':', "-")),
        _ => d.to_string(),
    }
}

fn to_grey_le(page: DecodingResult, color: ColorType, n: usize) -> Option<(DType, Vec<u8>)> {
    let channels = match color {
        ColorType::Gray(_) => 1,
        ColorType::RGB(_) => 3,
        ColorType::RGBA(_) => 4,
        ColorType::GrayA(_) => 2,
        _ => return None,
    };
    if channels == 1 {
        return Some(match page {
            DecodingResult::U8(v) => (DType::U8, v),
            DecodingResult::I8(v) => (DType::I8, v.iter().map(|&x| x as u8).collect()),
            DecodingResult::U16(v) => (DType::U16, le_bytes(&v, u16::to_le_bytes)),
            DecodingResult::I16(v) => (DType::I16, le_bytes(&v, i16::to_le_bytes)),
            DecodingResult::U32(v) => (DType::U32, le_bytes(&v, u32::to_le_bytes)),
            DecodingResult::I32(v) => (DType::I32, le_bytes(&v, i32::to_le_bytes)),
            DecodingResult::U64(v) => (DType::U64, le_bytes(&v, u64::to_le_bytes)),
            DecodingResult::I64(v) => (DType::I64, le_bytes(&v, i64::to_le_bytes)),
            DecodingResult::F32(v) => (DType::F32, le_bytes(&v, f32::to_le_bytes)),
            DecodingResult::F64(v) => (DType::F64, le_bytes(&v, f64::to_le_bytes)),
        });
    }
    // Colour pages: the mean of the colour channels as f32 (alpha ignored).
    let colour = channels.min(3);
    let grey = |vals: Vec<f64>| -> Vec<f32> {
        vals.chunks_exact(channels).take(n).map(|p| (p[..colour].iter().sum::<f64>() / colour as f64) as f32).collect()
    };
    let vals: Vec<f64> = match page {
        DecodingResult::U8(v) => v.into_iter().map(f64::from).collect(),
        DecodingResult::U16(v) => v.into_iter().map(f64::from).collect(),
        DecodingResult::F32(v) => v.into_iter().map(f64::from).collect(),
        _ => return None,
    };
    Some((DType::F32, le_bytes(&grey(vals), f32::to_le_bytes)))
}

fn map_error(name: &str, e: TiffError) -> IoError {
    let name = name.to_string();
    match e {
        TiffError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            IoError::Truncated { name, detail: "the file ends inside the image data".into() }
        }
        TiffError::UnsupportedError(u) => {
            IoError::UnsupportedFeature { name, detail: format!("TIFF feature not supported: {u}") }
        }
        TiffError::LimitsExceeded => {
            IoError::UnsupportedFeature { name, detail: "a TIFF tag or strip is larger than allowed".into() }
        }
        other => IoError::Corrupt { name, detail: format!("not a valid TIFF ({other})") },
    }
}

/// 32-bit float TIFF, one page per frame, with the calibration in Gatan and ImageJ form.
/// `frames` is frame-major, row-major, `width × height` each.
pub fn write_f32(width: usize, height: usize, frames: &[f32], cal: &Calibration) -> Result<Vec<u8>, IoError> {
    let werr = |e: TiffError| IoError::Write { what: "TIFF".into(), detail: e.to_string() };
    let plane = width * height;
    if plane == 0 || !frames.len().is_multiple_of(plane) {
        return Err(IoError::Write {
            what: "TIFF".into(),
            detail: format!("{} values do not make {width}×{height} frames", frames.len()),
        });
    }
    let n = frames.len() / plane;
    let mut out = Cursor::new(Vec::new());
    {
        let mut enc = TiffEncoder::new(&mut out).map_err(werr)?;
        let unit = if cal.is_calibrated() { "nm" } else { "pixel" };
        let desc = format!("ImageJ=1.11a\nimages={n}\nslices={n}\nunit={unit}\nloop=false\n");
        for f in frames.chunks_exact(plane) {
            let mut img = enc.new_image::<Gray32Float>(width as u32, height as u32).map_err(werr)?;
            img.encoder().write_tag(Tag::ImageDescription, desc.as_str()).map_err(werr)?;
            img.encoder().write_tag(Tag::Software, concat!("atomlens ", env!("CARGO_PKG_VERSION"))).map_err(werr)?;
            if cal.is_calibrated() {
                let per_unit = 1.0 / cal.pixel_size;
                let d = 1_000_000u32;
                let r = Rational { n: (per_unit * d as f64).round().min(u32::MAX as f64) as u32, d };
                img.x_resolution(r.clone());
                img.y_resolution(r);
                img.resolution_unit(ResolutionUnit::None);
                for (unit_tag, scale_tag) in [(DM_X_UNIT, DM_X_SCALE), (DM_X_UNIT + 1, DM_X_SCALE + 1)] {
                    img.encoder().write_tag(Tag::Unknown(unit_tag), "nm").map_err(werr)?;
                    img.encoder().write_tag(Tag::Unknown(scale_tag), cal.pixel_size).map_err(werr)?;
                }
            }
            img.write_data(f).map_err(werr)?;
        }
    }
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tiff::encoder::colortype::{Gray8, Gray16, Gray64Float, GrayI32};

    fn write_with<C: tiff::encoder::colortype::ColorType>(w: u32, h: u32, pages: &[&[C::Inner]]) -> Vec<u8>
    where
        [C::Inner]: tiff::encoder::TiffValue,
    {
        let mut out = Cursor::new(Vec::new());
        let mut enc = TiffEncoder::new(&mut out).unwrap();
        for p in pages {
            enc.write_image::<C>(w, h, p).unwrap();
        }
        out.into_inner()
    }

    fn read_bytes(bytes: Vec<u8>) -> Result<Signal, IoError> {
        read(&NamedFile::new("t.tif", bytes), &Limits::NATIVE).map(|mut v| v.remove(0))
    }

    #[test]
    fn integer_and_float_depths_read_exactly() {
        let s = read_bytes(write_with::<Gray8>(3, 2, &[&[0, 1, 2, 3, 4, 255]])).unwrap();
        assert_eq!((s.dtype, s.width, s.height, s.frames), (DType::U8, 3, 2, 1));
        assert_eq!(s.to_f32(), vec![0., 1., 2., 3., 4., 255.]);

        let s = read_bytes(write_with::<Gray16>(2, 1, &[&[7, 65535]])).unwrap();
        assert_eq!((s.dtype, s.to_f32()), (DType::U16, vec![7.0, 65535.0]));

        let s = read_bytes(write_with::<GrayI32>(2, 1, &[&[-5, 100_000]])).unwrap();
        assert_eq!((s.dtype, s.to_f32()), (DType::I32, vec![-5.0, 100_000.0]));

        let s = read_bytes(write_with::<Gray64Float>(1, 2, &[&[0.25, -1e3]])).unwrap();
        assert_eq!((s.dtype, s.to_f32()), (DType::F64, vec![0.25, -1000.0]));
    }

    #[test]
    fn multipage_is_a_stack() {
        let s = read_bytes(write_with::<Gray16>(2, 2, &[&[1, 2, 3, 4], &[5, 6, 7, 8], &[9, 10, 11, 12]])).unwrap();
        assert_eq!(s.frames, 3);
        assert_eq!(s.frame(2).unwrap().data[[1, 1]], 12.0);
    }

    #[test]
    fn written_float_tiff_keeps_calibration_and_pixels() {
        let px = vec![0.5f32, -2.0, f32::NAN, 1e-7, 3.0, 4.0];
        let bytes = write_f32(3, 1, &px, &Calibration::nm(0.0126953125)).unwrap();
        let s = read_bytes(bytes).unwrap();
        assert_eq!((s.dtype, s.width, s.height, s.frames), (DType::F32, 3, 1, 2));
        assert_eq!(s.calibration, Calibration::nm(0.0126953125));
        assert_eq!(s.metadata.format, "TIFF (DigitalMicrograph)");
        let back = s.to_f32();
        assert_eq!(back[0], 0.5);
        assert!(back[2].is_nan());
        assert_eq!(back[5], 4.0);
    }

    #[test]
    fn truncated_and_garbage_tiffs_fail_cleanly() {
        let good = write_with::<Gray16>(64, 64, &[&vec![9u16; 64 * 64]]);
        for cut in [4, 8, 100, good.len() / 2, good.len() - 1] {
            let e = read_bytes(good[..cut].to_vec()).unwrap_err();
            assert!(matches!(e, IoError::Truncated { .. } | IoError::Corrupt { .. }), "cut {cut}: {e}");
        }
        let mut junk = b"II*\0".to_vec();
        junk.extend((0..1000u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8));
        assert!(read_bytes(junk).is_err());
    }

    #[test]
    fn oversized_tiff_is_refused_before_decoding() {
        let bytes = write_with::<Gray8>(64, 64, &[&vec![1u8; 64 * 64]]);
        let e = read(&NamedFile::new("t.tif", bytes), &Limits { max_pixels: 1000 }).unwrap_err();
        assert!(matches!(e, IoError::TooLarge { width: 64, height: 64, .. }), "{e}");
    }
}
