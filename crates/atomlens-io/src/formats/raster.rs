//! PNG and JPEG through the `image` crate. 8- and 16-bit greyscale keep their values; colour
//! images become grey (mean of R, G, B), with a note. No calibration is stored in these formats.
use std::io::Cursor;

use atomlens_core::Calibration;
use image::{DynamicImage, ImageReader};

use crate::signal::le_bytes;
use crate::{DType, IoError, Limits, Metadata, NamedFile, Signal};

/// Read a PNG or JPEG.
pub fn read(file: &NamedFile, limits: &Limits) -> Result<Vec<Signal>, IoError> {
    let name = file.name.as_str();
    let err = |e: image::ImageError| match e {
        image::ImageError::Unsupported(u) => IoError::UnsupportedFeature { name: name.into(), detail: u.to_string() },
        image::ImageError::IoError(io) if io.kind() == std::io::ErrorKind::UnexpectedEof => {
            IoError::Truncated { name: name.into(), detail: "the file ends inside the image data".into() }
        }
        other => IoError::Corrupt { name: name.into(), detail: other.to_string() },
    };
    let reader = ImageReader::new(Cursor::new(&file.bytes[..]))
        .with_guessed_format()
        .map_err(|e| IoError::Corrupt { name: name.into(), detail: e.to_string() })?;
    let format = reader.format().map(|f| format!("{f:?}").to_uppercase()).unwrap_or_else(|| "image".into());
    let (w, h) = ImageReader::new(Cursor::new(&file.bytes[..]))
        .with_guessed_format()
        .map_err(|e| IoError::Corrupt { name: name.into(), detail: e.to_string() })?
        .into_dimensions()
        .map_err(err)?;
    limits.check(w as u64, h as u64, 1)?;
    // The JPEG decoder fills a cut-off scan with grey and says nothing: a whole file ends its
    // last scan (after its last SOS marker) with EOI.
    if format == "JPEG" && !jpeg_is_complete(&file.bytes) {
        return Err(IoError::Truncated {
            name: name.into(),
            detail: "the JPEG ends inside its image data (no end marker)".into(),
        });
    }
    let img = reader.decode().map_err(err)?;
    let mut notes = Vec::new();
    let (dtype, data) = match img {
        DynamicImage::ImageLuma8(g) => (DType::U8, g.into_raw()),
        DynamicImage::ImageLuma16(g) => (DType::U16, le_bytes(g.as_raw(), u16::to_le_bytes)),
        other => {
            notes.push(format!("{:?} pixels converted to grey (mean of R, G, B)", other.color()));
            let rgb = other.to_rgb32f();
            let grey: Vec<f32> = rgb.pixels().map(|p| (p.0[0] + p.0[1] + p.0[2]) / 3.0 * 255.0).collect();
            (DType::F32, le_bytes(&grey, f32::to_le_bytes))
        }
    };
    if format == "JPEG" {
        notes.push("JPEG is lossy: compression artefacts bias column positions and intensities".into());
    }
    Ok(vec![Signal {
        title: String::new(),
        dtype,
        width: w as usize,
        height: h as usize,
        frames: 1,
        data,
        calibration: Calibration::uncalibrated(),
        metadata: Metadata { format, notes, ..Metadata::default() },
    }])
}

/// Whether an EOI marker (FF D9) follows the last start of scan (FF DA). Inside a scan an FF
/// byte is stuffed (FF 00) or a restart marker, so FF D9 there is the end.
fn jpeg_is_complete(b: &[u8]) -> bool {
    let Some(sos) = b.windows(2).rposition(|w| w == [0xFF, 0xDA]) else { return false };
    b[sos..].windows(2).any(|w| w == [0xFF, 0xD9])
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{GrayImage, ImageFormat, Luma};

    #[test]
    fn grey_png_round_trips() {
        let g = GrayImage::from_fn(5, 3, |x, y| Luma([(x * 10 + y) as u8]));
        let mut bytes = Cursor::new(Vec::new());
        g.write_to(&mut bytes, ImageFormat::Png).unwrap();
        let s = read(&NamedFile::new("a.png", bytes.into_inner()), &Limits::NATIVE).unwrap().remove(0);
        assert_eq!((s.dtype, s.width, s.height), (DType::U8, 5, 3));
        assert_eq!(s.frame(0).unwrap().data[[2, 4]], 42.0);
        assert!(!s.calibration.is_calibrated());
    }

    #[test]
    fn truncated_jpeg_is_refused() {
        let g = GrayImage::from_fn(64, 64, |x, y| Luma([(x * 3 + y) as u8]));
        let mut bytes = Cursor::new(Vec::new());
        g.write_to(&mut bytes, ImageFormat::Jpeg).unwrap();
        let b = bytes.into_inner();
        assert!(read(&NamedFile::new("a.jpg", b.clone()), &Limits::NATIVE).is_ok());
        let e = read(&NamedFile::new("a.jpg", b[..b.len() * 6 / 10].to_vec()), &Limits::NATIVE).unwrap_err();
        assert!(matches!(e, IoError::Truncated { .. }), "{e}");
    }

    #[test]
    fn truncated_png_fails_cleanly() {
        let g = GrayImage::from_fn(64, 64, |x, y| Luma([(x ^ y) as u8]));
        let mut bytes = Cursor::new(Vec::new());
        g.write_to(&mut bytes, ImageFormat::Png).unwrap();
        let b = bytes.into_inner();
        assert!(read(&NamedFile::new("a.png", b[..b.len() / 2].to_vec()), &Limits::NATIVE).is_err());
        assert!(read(&NamedFile::new("a.png", b[..20].to_vec()), &Limits::NATIVE).is_err());
    }
}
