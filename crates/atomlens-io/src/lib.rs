//! # atomlens-io
//!
//! Readers and writers over bytes (`Vec<u8>` in, `Vec<u8>` out), so the same code runs in the
//! browser worker and the CLI.
//!
//! | format | reader |
//! | --- | --- |
//! | Gatan DM3/DM4, TIA SER+EMI, Velox/Berkeley EMD, MRC | [`openreadout-em`](formats::em) behind a thin adapter |
//! | TIFF (8–64-bit int, 32/64-bit float, multi-page; DM and ImageJ calibration) | [`tiff`](formats::tiff) |
//! | PNG, JPEG | [`image`](formats::raster) |
//!
//! Every reader returns [`Signal`]s: native samples (little-endian bytes, so checksums compare
//! with RosettaSciIO's), shape, calibration normalised to nm, and the metadata that matters.
//! [`Signal::to_f32`] gives the pixels for analysis.
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod error;
pub mod formats;
pub mod signal;
pub mod tables;

pub use error::IoError;
pub use signal::{DType, Metadata, Signal};

/// A file as it arrives from a drop, a picker or the disk.
#[derive(Debug, Clone)]
pub struct NamedFile {
    /// File name (its extension matters for some formats, e.g. `.emd`, `.emi`).
    pub name: String,
    /// The whole file.
    pub bytes: Vec<u8>,
}

impl NamedFile {
    /// A named file.
    pub fn new(name: impl Into<String>, bytes: Vec<u8>) -> Self {
        Self { name: name.into(), bytes }
    }
}

/// How large an image a caller accepts, checked from the header before any pixel is decoded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// Most pixels (width × height × frames) in one signal.
    pub max_pixels: u64,
}

/// The stricter: [`Limits::BROWSER`].
impl Default for Limits {
    fn default() -> Limits {
        Limits::BROWSER
    }
}

impl Limits {
    /// The browser: 8192 × 8192 pixels (256 MiB as f32), within a wasm32 heap with room for
    /// the analyses.
    pub const BROWSER: Limits = Limits { max_pixels: 8192 * 8192 };
    /// Native: 2³⁰ pixels (4 GiB as f32).
    pub const NATIVE: Limits = Limits { max_pixels: 1 << 30 };

    /// Refuse a signal over the limit.
    pub fn check(&self, width: u64, height: u64, frames: u64) -> Result<(), IoError> {
        let pixels = width.saturating_mul(height).saturating_mul(frames);
        if pixels > self.max_pixels {
            return Err(IoError::TooLarge { width, height, frames, max_pixels: self.max_pixels });
        }
        Ok(())
    }
}

/// The formats this crate tells apart before reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// TIFF, incl. DM-written and ImageJ TIFF.
    Tiff,
    /// PNG.
    Png,
    /// JPEG.
    Jpeg,
    /// Anything `openreadout-em` may read (DM, SER/EMI, EMD, MRC).
    Microscope,
}

/// The raster format the magic bytes say, if any.
fn raster_magic(bytes: &[u8]) -> Option<Format> {
    if bytes.starts_with(b"II*\0")
        || bytes.starts_with(b"MM\0*")
        || bytes.starts_with(b"II+\0")
        || bytes.starts_with(b"MM\0+")
    {
        return Some(Format::Tiff);
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some(Format::Png);
    }
    bytes.starts_with(&[0xFF, 0xD8, 0xFF]).then_some(Format::Jpeg)
}

/// Guess the format from the magic bytes, then the extension.
pub fn sniff(name: &str, bytes: &[u8]) -> Format {
    if let Some(f) = raster_magic(bytes) {
        return f;
    }
    match extension(name).as_str() {
        "tif" | "tiff" => Format::Tiff,
        "png" => Format::Png,
        "jpg" | "jpeg" => Format::Jpeg,
        _ => Format::Microscope,
    }
}

/// Lower-case extension without the dot (`""` when there is none).
pub fn extension(name: &str) -> String {
    name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default()
}

/// Read `primary` (one of `files`; the others are companions such as a `.ser` beside its
/// `.emi`) and return every image signal in it.
pub fn read(primary: &str, files: Vec<NamedFile>, limits: &Limits) -> Result<Vec<Signal>, IoError> {
    let main = files.iter().find(|f| f.name == primary).ok_or_else(|| IoError::MissingCompanion {
        needed: primary.to_string(),
        reason: "it was not among the files given".into(),
    })?;
    if main.bytes.is_empty() {
        return Err(IoError::EmptyFile { name: primary.to_string() });
    }
    match (raster_magic(&main.bytes), sniff(&main.name, &main.bytes)) {
        (Some(Format::Tiff), _) => formats::tiff::read(main, limits),
        (Some(_), _) => formats::raster::read(main, limits),
        // Named as a raster but without its magic: a renamed microscope file is read by its
        // content; when no reader knows it, the named format's reader says what is wrong.
        (None, named @ (Format::Tiff | Format::Png | Format::Jpeg)) => {
            let main = main.clone();
            match read_microscope(primary, files, limits) {
                Err(IoError::UnsupportedFormat { .. }) if named == Format::Tiff => formats::tiff::read(&main, limits),
                Err(IoError::UnsupportedFormat { .. }) => formats::raster::read(&main, limits),
                other => other,
            }
        }
        (None, _) => read_microscope(primary, files, limits),
    }
}

/// The microscope readers; an HDF5 file under a name they do not take as one (an EMD renamed,
/// or saved as `.h5`) is offered to them as `.emd`.
fn read_microscope(primary: &str, mut files: Vec<NamedFile>, limits: &Limits) -> Result<Vec<Signal>, IoError> {
    let hdf5 = files.iter().any(|f| f.name == primary && f.bytes.starts_with(b"\x89HDF\r\n\x1a\n"));
    if hdf5 && extension(primary) != "emd" {
        let renamed = format!("{primary}.emd");
        for f in files.iter_mut().filter(|f| f.name == primary) {
            f.name = renamed.clone();
        }
        return formats::em::read(&renamed, files, limits);
    }
    formats::em::read(primary, files, limits)
}

/// Read one file on its own (no companions).
pub fn read_one(file: NamedFile, limits: &Limits) -> Result<Vec<Signal>, IoError> {
    let name = file.name.clone();
    read(&name, vec![file], limits)
}

/// Group dropped files into datasets: a TIA `.emi` takes its `<stem>_N.ser` series with it
/// (and a lone `.ser` takes its `.emi`); every other file stands alone. Returns, per dataset,
/// the primary file name and the names of all its files.
pub fn group_files(names: &[String]) -> Vec<(String, Vec<String>)> {
    let stem_of_ser = |n: &str| -> Option<String> {
        let base = n.strip_suffix(".ser").or_else(|| n.strip_suffix(".SER"))?;
        let (stem, idx) = base.rsplit_once('_')?;
        idx.chars().all(|c| c.is_ascii_digit()).then(|| stem.to_string())
    };
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut used = vec![false; names.len()];
    for (i, n) in names.iter().enumerate() {
        if extension(n) != "emi" {
            continue;
        }
        let stem = &n[..n.len() - 4];
        let mut group = vec![n.clone()];
        for (j, m) in names.iter().enumerate() {
            if stem_of_ser(m).as_deref() == Some(stem) {
                group.push(m.clone());
                used[j] = true;
            }
        }
        used[i] = true;
        // A single series reads best through its .ser (the .emi adds the metadata).
        let primary = if group.len() == 2 { group[1].clone() } else { n.clone() };
        out.push((primary, group));
    }
    for (i, n) in names.iter().enumerate() {
        if !used[i] {
            out.push((n.clone(), vec![n.clone()]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tia_pairs_are_grouped() {
        let names: Vec<String> = ["a.emi", "a_1.ser", "b.dm4", "c_1.ser"].iter().map(|s| s.to_string()).collect();
        let g = group_files(&names);
        assert_eq!(g[0], ("a_1.ser".to_string(), vec!["a.emi".to_string(), "a_1.ser".to_string()]));
        assert_eq!(g[1].0, "b.dm4");
        assert_eq!(g[2].0, "c_1.ser");
    }

    #[test]
    fn sniffing_prefers_magic_over_extension() {
        assert_eq!(sniff("x.dm3", b"II*\0rest"), Format::Tiff);
        assert_eq!(sniff("x.tif", b"garbage"), Format::Tiff);
        assert_eq!(sniff("x.png", b"\x89PNG\r\n\x1a\n"), Format::Png);
        assert_eq!(sniff("x.dm3", b"\0\0\0\x03"), Format::Microscope);
    }

    /// A DM3 whose only tag is an array of structs declared with no fields (the fuzzer's find
    /// on a real file): refused, not a panic (`third_party/openreadout-em`, patched).
    #[test]
    fn a_dm_array_of_empty_structs_is_not_a_panic() {
        let mut tag = vec![21u8, 0, 5];
        tag.extend_from_slice(b"Empty%%%%");
        for v in [5u32, 20, 15, 0, 0, 3] {
            tag.extend_from_slice(&v.to_be_bytes());
        }
        let mut body = vec![1u8, 0];
        body.extend_from_slice(&1u32.to_be_bytes());
        body.extend_from_slice(&tag);
        body.extend_from_slice(&[0; 8]);
        let mut file = Vec::new();
        for v in [3u32, body.len() as u32 + 4, 1] {
            file.extend_from_slice(&v.to_be_bytes());
        }
        file.extend_from_slice(&body);
        let r = std::panic::catch_unwind(|| read_one(NamedFile::new("empty_struct.dm3", file), &Limits::NATIVE));
        assert!(r.expect("no panic").is_err());
    }

    /// A tag of a DM3 tag directory (big-endian info, little-endian data as the header says).
    fn dm3_tag(name: &str, info: &[u32], data: &[u8]) -> Vec<u8> {
        let mut t = vec![21u8];
        t.extend_from_slice(&(name.len() as u16).to_be_bytes());
        t.extend_from_slice(name.as_bytes());
        t.extend_from_slice(b"%%%%");
        t.extend_from_slice(&(info.len() as u32).to_be_bytes());
        for v in info {
            t.extend_from_slice(&v.to_be_bytes());
        }
        t.extend_from_slice(data);
        t
    }

    /// A DM3 tag group named `name` holding `tags`.
    fn dm3_group(name: &str, tags: &[Vec<u8>]) -> Vec<u8> {
        let mut g = vec![20u8];
        g.extend_from_slice(&(name.len() as u16).to_be_bytes());
        g.extend_from_slice(name.as_bytes());
        g.extend_from_slice(&[0, 0]);
        g.extend_from_slice(&(tags.len() as u32).to_be_bytes());
        for t in tags {
            g.extend_from_slice(t);
        }
        g
    }

    /// A DM3 RGBA image (DataType 23): read as grey, the mean of R, G and B, with a note.
    #[test]
    fn a_dm_colour_image_is_read_as_grey() {
        let (w, h) = (3u32, 2u32);
        let rgba: Vec<u8> = (0..w * h).flat_map(|i| [i as u8 * 30, 90, 3 * i as u8, 255]).collect();
        let u32le = |v: u32| v.to_le_bytes().to_vec();
        let image_data = dm3_group(
            "ImageData",
            &[
                dm3_tag("Data", &[20, 10, rgba.len() as u32], &rgba),
                dm3_tag("DataType", &[5], &u32le(23)),
                dm3_group("Dimensions", &[dm3_tag("", &[5], &u32le(w)), dm3_tag("", &[5], &u32le(h))]),
                dm3_tag("PixelDepth", &[5], &u32le(4)),
            ],
        );
        let list = dm3_group("ImageList", &[dm3_group("", &[image_data])]);
        let mut body = vec![1u8, 0];
        body.extend_from_slice(&1u32.to_be_bytes());
        body.extend_from_slice(&list);
        body.extend_from_slice(&[0; 8]);
        let mut file = Vec::new();
        for v in [3u32, body.len() as u32 - 8, 1] {
            file.extend_from_slice(&v.to_be_bytes());
        }
        file.extend_from_slice(&body);
        let s = read_one(NamedFile::new("colour.dm3", file), &Limits::NATIVE).expect("a colour DM3 is read");
        assert_eq!((s[0].width, s[0].height, s[0].frames), (3, 2, 1));
        let img = s[0].frame(0).expect("frame 0").data;
        for i in 0..6 {
            let want = (i as f32 * 30.0 + 90.0 + 3.0 * i as f32) / 3.0;
            assert!((img[[i / 3, i % 3]] - want).abs() < 1e-4, "pixel {i}: {} vs {want}", img[[i / 3, i % 3]]);
        }
        assert!(s[0].metadata.notes.iter().any(|n| n.contains("mean of R, G, B")));
    }

    /// Microscope files under a raster's or no extension are read by their content; garbage
    /// named `.tif` is still a corrupt TIFF.
    #[test]
    fn renamed_files_are_read_by_their_content() {
        let mut dm = Vec::new();
        for v in [3u32, 14, 1] {
            dm.extend_from_slice(&v.to_be_bytes());
        }
        dm.extend_from_slice(&[1, 0, 0, 0, 0, 0]);
        dm.extend_from_slice(&[0; 8]);
        // A DM3 with an empty tag directory: no image, but the DM reader (not TIFF's) says so.
        let e = read_one(NamedFile::new("x.tif", dm), &Limits::NATIVE).unwrap_err().to_string();
        assert!(!e.contains("TIFF"), "{e}");
        let e = read_one(NamedFile::new("x.tif", b"garbage bytes".to_vec()), &Limits::NATIVE).unwrap_err().to_string();
        assert!(e.contains("TIFF"), "{e}");
    }

    #[test]
    fn empty_and_oversized_inputs_are_refused() {
        let e = read_one(NamedFile::new("x.dm3", vec![]), &Limits::NATIVE).unwrap_err();
        assert!(matches!(e, IoError::EmptyFile { .. }), "{e}");
        assert!(Limits::BROWSER.check(16384, 16384, 1).is_err());
        assert!(Limits::BROWSER.check(8192, 8192, 1).is_ok());
    }
}
