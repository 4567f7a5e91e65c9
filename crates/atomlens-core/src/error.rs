//! The one error type of the core crate: unusable input, never a per-item failure.
use thiserror::Error;

/// Why a core function refused its input.
#[derive(Debug, Error, Clone, PartialEq)]
pub enum CoreError {
    /// The image has no pixels in at least one direction.
    #[error("the image is empty ({width}×{height} pixels)")]
    Empty {
        /// Width in pixels.
        width: usize,
        /// Height in pixels.
        height: usize,
    },
    /// The image is smaller than the operation needs.
    #[error("the image is {width}×{height} pixels; {what} needs at least {min}×{min}")]
    TooSmall {
        /// Width in pixels.
        width: usize,
        /// Height in pixels.
        height: usize,
        /// The smallest usable side.
        min: usize,
        /// What needed it.
        what: &'static str,
    },
    /// Every pixel is NaN or infinite.
    #[error("the image has no finite pixel values (all {count} are NaN or infinite)")]
    NoFiniteValues {
        /// Number of pixels.
        count: usize,
    },
    /// A parameter is outside its valid range.
    #[error("invalid parameter {name}: {reason}")]
    InvalidParameter {
        /// The parameter's name as the user sees it.
        name: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// No periodic lattice could be found in the image.
    #[error("no atomic lattice found: {reason}")]
    NoLattice {
        /// What was seen instead.
        reason: String,
    },
    /// The image does not show what the analysis needs.
    #[error("no {what} found: {reason}")]
    NotFound {
        /// What was looked for.
        what: &'static str,
        /// What was seen instead.
        reason: String,
    },
    /// A learned model's file that this version cannot use.
    #[error("unusable model file: {reason}")]
    BadModel {
        /// What is wrong with it.
        reason: String,
    },
    /// Data of the wrong length for the stated shape.
    #[error("shape mismatch: {expected} values expected, {got} given")]
    ShapeMismatch {
        /// What the shape implies.
        expected: usize,
        /// What was given.
        got: usize,
    },
}

impl CoreError {
    /// A stable name for the kind of failure (snake_case), so a caller can react to it without
    /// parsing the message.
    pub fn kind(&self) -> &'static str {
        match self {
            CoreError::Empty { .. } => "empty",
            CoreError::TooSmall { .. } => "too_small",
            CoreError::NoFiniteValues { .. } => "no_finite_values",
            CoreError::InvalidParameter { .. } => "invalid_parameter",
            CoreError::NoLattice { .. } => "no_lattice",
            CoreError::NotFound { .. } => "not_found",
            CoreError::ShapeMismatch { .. } => "shape_mismatch",
            CoreError::BadModel { .. } => "bad_model",
        }
    }
}
