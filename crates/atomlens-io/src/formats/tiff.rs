//! TIFF through the `tiff` crate: 8–64-bit integer and 32/64-bit float greyscale, colour (to
//! grey), palette images (indices through their colour map to grey: the `tiff` crate refuses
//! them, so the photometric tag is read as grey and the map applied here), multi-page stacks,
//! and calibration from Gatan's private tags (65003/65009: x unit and scale, as
//! DigitalMicrograph writes them), an ImageJ description, FEI/Thermo Fisher's INI text (tags
//! 34680/34682, `[Scan] PixelWidth` in metres) or Zeiss SEM's text (tag 34118, `Image Pixel Size
//! = 2.441 nm`). The writer stores 32-bit float pages with Gatan's and ImageJ's, so DM, ImageJ,
//! HyperSpy and atomlens read the pixel size back.
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
const PHOTOMETRIC: u16 = 262;
const PALETTE: u16 = 3;
const FEI_SFEG: u16 = 34680;
const FEI_HELIOS: u16 = 34682;
const ZEISS_SEM: u16 = 34118;

/// Read every page of the first page's size and type as one stack.
pub fn read(file: &NamedFile, limits: &Limits) -> Result<Vec<Signal>, IoError> {
    let name = file.name.as_str();
    let err = |e: TiffError| map_error(name, e);
    let mut tl = tiff::decoder::Limits::unlimited();
    tl.decoding_buffer_size = usize::try_from(limits.max_pixels.saturating_mul(8)).unwrap_or(usize::MAX);
    tl.ifd_value_size = 64 << 20;
    // A palette image is decoded as grey indices (a copy with its photometric tag set to
    // BlackIsZero), then mapped through its colour map.
    let palette = photometric(&file.bytes) == Some(PALETTE);
    let patched;
    let bytes: &[u8] = if palette {
        patched = set_photometric_grey(&file.bytes);
        &patched
    } else {
        &file.bytes
    };
    let mut dec = Decoder::new(Cursor::new(bytes)).map_err(err)?.with_limits(tl);

    let (w, h) = dec.dimensions().map_err(err)?;
    if w == 0 || h == 0 {
        return Err(IoError::NoImage { name: name.into(), detail: format!("a {w}×{h} page has no pixels") });
    }
    let color = dec.colortype().map_err(err)?;
    let mut notes = Vec::new();
    let map = if palette { Some(colour_map(&mut dec, color, name)?) } else { None };
    if let Some(m) = &map {
        notes.push(m.note.clone());
    } else if !matches!(color, ColorType::Gray(_)) {
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
        let mut page = dec.read_image().map_err(err)?;
        if let Some(m) = &map {
            page = m.apply(page).ok_or_else(|| IoError::Corrupt {
                name: name.into(),
                detail: "palette indices beyond the colour map".into(),
            })?;
        }
        let (t, bytes) =
            to_grey_le(page, if map.is_some() { ColorType::Gray(8) } else { color }, (w * h) as usize).ok_or_else(
                || IoError::UnsupportedFeature { name: name.into(), detail: format!("{color:?} TIFF pages") },
            )?;
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
    let format = match (software.as_deref(), &calibration.1) {
        (_, CalSource::Dm) => "TIFF (DigitalMicrograph)".to_string(),
        (_, CalSource::Fei) => "TIFF (FEI / Thermo Fisher)".to_string(),
        (_, CalSource::Zeiss) => "TIFF (Zeiss SEM)".to_string(),
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

enum CalSource {
    Dm,
    ImageJ,
    Fei,
    Zeiss,
    None,
}

/// A palette's grey level per index.
struct ColourMap {
    grey: Vec<f32>,
    note: String,
}

impl ColourMap {
    /// Indices to grey levels (`None` for an index beyond the map).
    fn apply(&self, page: DecodingResult) -> Option<DecodingResult> {
        let idx: Vec<usize> = match page {
            DecodingResult::U8(v) => v.into_iter().map(usize::from).collect(),
            DecodingResult::U16(v) => v.into_iter().map(usize::from).collect(),
            _ => return None,
        };
        idx.into_iter().map(|i| self.grey.get(i).copied()).collect::<Option<Vec<f32>>>().map(DecodingResult::F32)
    }
}

/// The ColorMap tag as grey levels (mean of R, G, B, scaled to 0–255); 8- and 16-bit indices.
fn colour_map(dec: &mut Decoder<Cursor<&[u8]>>, color: ColorType, name: &str) -> Result<ColourMap, IoError> {
    let unsupported = |detail: String| IoError::UnsupportedFeature { name: name.into(), detail };
    let bits = match color {
        ColorType::Gray(b @ (8 | 16)) => b,
        other => return Err(unsupported(format!("palette TIFF with {other:?} indices (8 or 16 bits are read)"))),
    };
    let map = dec
        .get_tag_u16_vec(Tag::ColorMap)
        .map_err(|_| IoError::Corrupt { name: name.into(), detail: "a palette image without its colour map".into() })?;
    let n = 1usize << bits;
    if map.len() != 3 * n {
        return Err(IoError::Corrupt {
            name: name.into(),
            detail: format!("a colour map of {} values for {bits}-bit indices (3 × {n} expected)", map.len()),
        });
    }
    let (r, g, b) = (&map[..n], &map[n..2 * n], &map[2 * n..]);
    let grey_palette = r == g && g == b;
    let grey = (0..n).map(|i| (f32::from(r[i]) + f32::from(g[i]) + f32::from(b[i])) / 3.0 / 257.0).collect();
    let note = if grey_palette {
        "palette image with a grey colour map: its grey levels (0–255)".to_string()
    } else {
        "palette (indexed colour) image converted to grey: the mean of each colour's R, G, B (0–255)".to_string()
    };
    Ok(ColourMap { grey, note })
}

/// Byte order and the offsets of every IFD's entries (`(entry offset, tag)`), walked by hand:
/// the few fixes the `tiff` crate cannot make itself (Latin-1 text, palette images).
fn ifd_entries(b: &[u8]) -> Option<(bool, Vec<(usize, u16)>)> {
    let le = match b.get(..2)? {
        b"II" => true,
        b"MM" => false,
        _ => return None,
    };
    let u16_at = |o: usize| -> Option<u16> {
        let s: [u8; 2] = b.get(o..o + 2)?.try_into().ok()?;
        Some(if le { u16::from_le_bytes(s) } else { u16::from_be_bytes(s) })
    };
    let u32_at = |o: usize| -> Option<u32> {
        let s: [u8; 4] = b.get(o..o + 4)?.try_into().ok()?;
        Some(if le { u32::from_le_bytes(s) } else { u32::from_be_bytes(s) })
    };
    let mut out = Vec::new();
    let mut ifd = u32_at(4)? as usize;
    let mut seen = std::collections::HashSet::new();
    // A few thousand pages at most; a loop in the chain ends at its first repeat, and pages
    // that overlap cannot list more entries than the file holds (fuzzing found a self-pointing
    // page of 65 535 entries read 10 000 times: 2 GB).
    for _ in 0..10_000 {
        if ifd == 0 || !seen.insert(ifd) || out.len() > b.len() / 12 {
            break;
        }
        let n = u16_at(ifd)? as usize;
        for i in 0..n {
            let e = ifd + 2 + 12 * i;
            out.push((e, u16_at(e)?));
        }
        ifd = u32_at(ifd + 2 + 12 * n).unwrap_or(0) as usize;
    }
    Some((le, out))
}

/// The first page's photometric interpretation (a SHORT value).
fn photometric(b: &[u8]) -> Option<u16> {
    let (le, entries) = ifd_entries(b)?;
    let (e, _) = entries.into_iter().find(|&(_, t)| t == PHOTOMETRIC)?;
    let s: [u8; 2] = b.get(e + 8..e + 10)?.try_into().ok()?;
    Some(if le { u16::from_le_bytes(s) } else { u16::from_be_bytes(s) })
}

/// A copy of `b` with every page's photometric interpretation set to BlackIsZero.
fn set_photometric_grey(b: &[u8]) -> Vec<u8> {
    let mut out = b.to_vec();
    if let Some((le, entries)) = ifd_entries(b) {
        for (e, tag) in entries {
            if tag == PHOTOMETRIC && e + 10 <= out.len() {
                out[e + 8..e + 10].copy_from_slice(&if le { 1u16.to_le_bytes() } else { 1u16.to_be_bytes() });
            }
        }
    }
    out
}

/// FEI/Thermo Fisher INI text: `[Scan]` (or `[EScan]`) `PixelWidth=` in metres.
fn fei_pixel_nm(text: &str) -> Option<f64> {
    let mut section = "";
    for line in text.lines().map(str::trim) {
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s;
        } else if let Some(v) = line.strip_prefix("PixelWidth=")
            && matches!(section, "Scan" | "EScan")
        {
            return v.trim().parse::<f64>().ok().filter(|m| *m > 0.0 && m.is_finite()).map(|m| m * 1e9);
        }
    }
    None
}

/// Zeiss SEM text: `Image Pixel Size = 2.441 nm` (pm, nm, µm or mm).
fn zeiss_pixel(text: &str) -> Option<Calibration> {
    let line = text.lines().find_map(|l| l.trim().strip_prefix("Image Pixel Size"))?;
    let mut words = line.trim_start_matches([' ', '=']).split_whitespace();
    let value: f64 = words.next()?.parse().ok()?;
    Calibration::from_length(value, words.next()?)
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
    if let Some(nm) =
        [FEI_HELIOS, FEI_SFEG].into_iter().find_map(|t| fei_pixel_nm(&latin1_tag_of_first_page(bytes, t)?))
        && let Some(c) = Calibration::from_length(nm, "nm")
    {
        return (c, CalSource::Fei);
    }
    if let Some(c) = latin1_tag_of_first_page(bytes, ZEISS_SEM).and_then(|t| zeiss_pixel(&t)) {
        return (c, CalSource::Zeiss);
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
    let (le, entries) = ifd_entries(b)?;
    let u16_at = |o: usize| -> Option<u16> {
        let s: [u8; 2] = b.get(o..o + 2)?.try_into().ok()?;
        Some(if le { u16::from_le_bytes(s) } else { u16::from_be_bytes(s) })
    };
    let u32_at = |o: usize| -> Option<u32> {
        let s: [u8; 4] = b.get(o..o + 4)?.try_into().ok()?;
        Some(if le { u32::from_le_bytes(s) } else { u32::from_be_bytes(s) })
    };
    // The first page that has it (pages are walked in order).
    let entry = entries.into_iter().find(|&(_, t)| t == tag)?.0;
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

    /// An 8-bit image with extra ASCII tags, optionally made a palette image with `map`.
    fn tagged(px: &[u8], w: u32, tags: &[(u16, &str)], map: Option<&[u16]>) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        {
            let mut enc = TiffEncoder::new(&mut out).unwrap();
            let mut img = enc.new_image::<Gray8>(w, px.len() as u32 / w).unwrap();
            for (t, text) in tags {
                img.encoder().write_tag(Tag::Unknown(*t), *text).unwrap();
            }
            if let Some(m) = map {
                img.encoder().write_tag(Tag::ColorMap, m).unwrap();
            }
            img.write_data(px).unwrap();
        }
        let bytes = out.into_inner();
        if map.is_some() {
            let (le, entries) = ifd_entries(&bytes).unwrap();
            assert!(le);
            let mut b = bytes.clone();
            let (e, _) = entries.into_iter().find(|&(_, t)| t == PHOTOMETRIC).unwrap();
            b[e + 8..e + 10].copy_from_slice(&PALETTE.to_le_bytes());
            return b;
        }
        bytes
    }

    #[test]
    fn palette_images_read_through_their_colour_map() {
        // A colour map: index i → (R, G, B) = (i, 0, 2i mod 256) × 257; grey = mean.
        let map: Vec<u16> = (0..256u32)
            .map(|i| i * 257)
            .chain(std::iter::repeat_n(0, 256))
            .chain((0..256u32).map(|i| (2 * i % 256) * 257))
            .map(|v| v as u16)
            .collect();
        let s = read_bytes(tagged(&[0, 10, 100, 200], 2, &[], Some(&map))).unwrap();
        assert_eq!((s.width, s.height, s.dtype), (2, 2, DType::F32));
        let want = [0.0, (10.0 + 20.0) / 3.0, (100.0 + 200.0) / 3.0, (200.0 + 144.0) / 3.0];
        for (g, w) in s.to_f32().iter().zip(want) {
            assert!((g - w).abs() < 1e-4, "{g} vs {w}");
        }
        assert!(s.metadata.notes[0].contains("palette (indexed colour)"), "{:?}", s.metadata.notes);
        // A grey palette gives its grey levels; a map of the wrong length is refused as corrupt.
        let grey: Vec<u16> = (0..3).flat_map(|_| (0..256u32).map(|i| (255 - i) as u16 * 257)).collect();
        let s = read_bytes(tagged(&[0, 255], 2, &[], Some(&grey))).unwrap();
        assert_eq!(s.to_f32(), vec![255.0, 0.0]);
        assert!(s.metadata.notes[0].contains("grey colour map"));
        let e = read_bytes(tagged(&[0, 1], 2, &[], Some(&grey[..300]))).unwrap_err();
        assert!(matches!(e, IoError::Corrupt { .. }), "{e}");
    }

    #[test]
    fn fei_and_zeiss_calibrations_are_read() {
        let fei = "[User]\r\nDate=12/06/2026\r\n[Scan]\r\nPixelWidth=2.5e-10\r\nPixelHeight=2.5e-10\r\n";
        let s = read_bytes(tagged(&[1, 2, 3, 4], 2, &[(FEI_HELIOS, fei)], None)).unwrap();
        assert!((s.calibration.pixel_size - 0.25).abs() < 1e-12 && s.calibration.unit == "nm", "{:?}", s.calibration);
        assert_eq!(s.metadata.format, "TIFF (FEI / Thermo Fisher)");
        let zeiss = "0\r\nAP_IMAGE_PIXEL_SIZE\r\nImage Pixel Size = 1.116 nm\r\nAP_WD\r\nWD = 5.0 mm\r\n";
        let s = read_bytes(tagged(&[1, 2, 3, 4], 2, &[(ZEISS_SEM, zeiss)], None)).unwrap();
        assert!((s.calibration.pixel_size - 1.116).abs() < 1e-12, "{:?}", s.calibration);
        assert_eq!(s.metadata.format, "TIFF (Zeiss SEM)");
        // Zeiss writes "µm" in Latin-1 (0xB5): written here as "Xm" and patched.
        let mut b =
            tagged(&[1, 2, 3, 4], 2, &[(ZEISS_SEM, "AP_IMAGE_PIXEL_SIZE\r\nImage Pixel Size = 0.5 Xm\r\n")], None);
        let at = b.windows(4).position(|w| w == b" Xm\r").unwrap() + 1;
        b[at] = 0xB5;
        let s = read_bytes(b).unwrap();
        assert!((s.calibration.pixel_size - 500.0).abs() < 1e-9 && s.calibration.unit == "nm", "{:?}", s.calibration);
        // Text without a pixel size: uncalibrated, not a guess.
        let s = read_bytes(tagged(&[1, 2, 3, 4], 2, &[(FEI_HELIOS, "[Scan]\r\nDwell=1e-6\r\n")], None)).unwrap();
        assert!(!s.calibration.is_calibrated());
    }

    #[test]
    fn a_page_that_points_to_itself_is_read_once() {
        // 65 535 entries, and the next-page pointer back to the same page.
        let n = u16::MAX as usize;
        let mut b = b"II*\0".to_vec();
        b.extend(8u32.to_le_bytes());
        b.extend((n as u16).to_le_bytes());
        b.extend(std::iter::repeat_n(0u8, 12 * n));
        b.extend(8u32.to_le_bytes());
        let t = std::time::Instant::now();
        let (_, entries) = ifd_entries(&b).unwrap();
        assert_eq!(entries.len(), n);
        assert!(read(&NamedFile::new("loop.tif", b.clone()), &Limits::NATIVE).is_err());
        assert!(t.elapsed().as_secs_f64() < 5.0, "{:?}", t.elapsed());
    }

    #[test]
    fn oversized_tiff_is_refused_before_decoding() {
        let bytes = write_with::<Gray8>(64, 64, &[&vec![1u8; 64 * 64]]);
        let e = read(&NamedFile::new("t.tif", bytes), &Limits { max_pixels: 1000 }).unwrap_err();
        assert!(matches!(e, IoError::TooLarge { width: 64, height: 64, .. }), "{e}");
    }
}
