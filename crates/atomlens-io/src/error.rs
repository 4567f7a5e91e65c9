//! The one error type of the io crate. Messages are written for the person who dropped the file.
use thiserror::Error;

/// Why a file could not be read.
#[derive(Debug, Error)]
pub enum IoError {
    /// A zero-byte file.
    #[error("{name} is empty (0 bytes)")]
    EmptyFile {
        /// File name.
        name: String,
    },
    /// No reader recognises the bytes.
    #[error(
        "{name}: not a supported image format ({detail}); atomlens reads DM3/DM4, SER+EMI, EMD, MRC, TIFF, PNG and JPEG"
    )]
    UnsupportedFormat {
        /// File name.
        name: String,
        /// What was found instead.
        detail: String,
    },
    /// The file ends before its own headers say it should.
    #[error("{name} is truncated or damaged: {detail}")]
    Truncated {
        /// File name.
        name: String,
        /// What the reader saw.
        detail: String,
    },
    /// The file breaks its own format's rules.
    #[error("{name} is corrupt: {detail}")]
    Corrupt {
        /// File name.
        name: String,
        /// What is wrong.
        detail: String,
    },
    /// A known format using a feature that is not decoded.
    #[error("{name}: {detail}")]
    UnsupportedFeature {
        /// File name.
        name: String,
        /// What is not supported.
        detail: String,
    },
    /// A file this one needs is missing (TIA `.emi` without its `.ser`).
    #[error("{needed} is needed: {reason}")]
    MissingCompanion {
        /// The file that is needed.
        needed: String,
        /// Why.
        reason: String,
    },
    /// The file holds no image (spectra only, or a 0-pixel image).
    #[error("{name} holds no image: {detail}")]
    NoImage {
        /// File name.
        name: String,
        /// What it holds instead.
        detail: String,
    },
    /// Over the caller's size limit.
    #[error(
        "the image is {width}×{height}{} = {} Mpx, over the limit of {} Mpx here; crop or bin it first, or use the atomlens CLI",
        if *frames > 1 { format!("×{frames} frames") } else { String::new() },
        (*width as f64 * *height as f64 * *frames as f64 / 1e6).round(),
        (*max_pixels as f64 / 1e6).round()
    )]
    TooLarge {
        /// Width in pixels.
        width: u64,
        /// Height in pixels.
        height: u64,
        /// Frames.
        frames: u64,
        /// The limit.
        max_pixels: u64,
    },
    /// Writing failed.
    #[error("could not write {what}: {detail}")]
    Write {
        /// What was being written.
        what: String,
        /// Why.
        detail: String,
    },
}

impl IoError {
    /// A stable name for the kind of failure (snake_case), so a caller can react to "too large"
    /// differently from "corrupt" without parsing the message.
    pub fn kind(&self) -> &'static str {
        match self {
            IoError::EmptyFile { .. } => "empty_file",
            IoError::UnsupportedFormat { .. } => "unsupported_format",
            IoError::Truncated { .. } => "truncated",
            IoError::Corrupt { .. } => "corrupt",
            IoError::UnsupportedFeature { .. } => "unsupported_feature",
            IoError::MissingCompanion { .. } => "missing_companion",
            IoError::NoImage { .. } => "no_image",
            IoError::TooLarge { .. } => "too_large",
            IoError::Write { .. } => "write",
        }
    }
}
