//! Images, stacks and their calibration, and what every capability does to a plain image:
//! filters, statistics, noise, regions, morphology, the power spectrum, display rendering.
use ndarray::{Array2, Array3, ArrayView2, Axis};
use serde::{Deserialize, Serialize};

use crate::CoreError;

pub mod filter;
pub mod morphology;
pub mod noise;
pub mod region;
pub mod render;
pub mod spectrum;
pub mod stats;

pub use noise::Noise;
pub use region::{Region, region_stats, region_values};

/// Pixel size and its unit. Lengths are normalised to nanometres (`unit == "nm"`);
/// an uncalibrated image has `unit == "px"` and `pixel_size == 1`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    /// Size of one pixel in `unit` (square pixels; x is used when x and y differ).
    pub pixel_size: f64,
    /// `nm` or `px`.
    pub unit: String,
}

impl Calibration {
    /// No calibration: 1 px per pixel.
    pub fn uncalibrated() -> Self {
        Self { pixel_size: 1.0, unit: "px".into() }
    }

    /// A pixel size in nanometres.
    pub fn nm(pixel_size: f64) -> Self {
        Self { pixel_size, unit: "nm".into() }
    }

    /// A length in `value` `unit` converted to nm; `None` for units that are not lengths.
    pub fn from_length(value: f64, unit: &str) -> Option<Self> {
        let factor = match unit.trim() {
            "m" => 1e9,
            "mm" => 1e6,
            "µm" | "um" | "μm" | "micron" | "microns" => 1e3,
            "nm" => 1.0,
            "Å" | "A" | "angstrom" | "Angstrom" => 0.1,
            "pm" => 1e-3,
            _ => return None,
        };
        let nm = value * factor;
        (nm.is_finite() && nm > 0.0).then(|| Self::nm(nm))
    }

    /// A pixel size as written by a user: a number and a length unit ("0.25 Å", "25pm",
    /// "0.02 nm", "1e-3 um"); "px" removes the calibration.
    pub fn parse(text: &str) -> Result<Self, crate::CoreError> {
        let t = text.trim();
        if t == "px" {
            return Ok(Self::uncalibrated());
        }
        let split =
            t.find(|c: char| !(c.is_ascii_digit() || matches!(c, '.' | '-' | '+' | 'e' | 'E'))).unwrap_or(t.len());
        // An exponent's `e` followed by no digit belongs to the unit ("1em" is not a length anyway).
        let (number, unit) = t.split_at(split);
        let bad = |reason: String| crate::CoreError::InvalidParameter { name: "pixel size", reason };
        let value: f64 = number
            .trim()
            .parse()
            .map_err(|_| bad(format!("{text:?}: a number and a unit, e.g. 0.25 Å, 25 pm, 0.02 nm")))?;
        if unit.trim().is_empty() {
            return Err(bad(format!("{text:?} has no unit: write e.g. {value} nm, {value} Å or {value} pm")));
        }
        Self::from_length(value, unit).ok_or_else(|| {
            bad(format!("{text:?}: the size must be positive and the unit one of pm, Å (A), nm, µm (um), mm, m"))
        })
    }

    /// True when the pixel size is a physical length.
    pub fn is_calibrated(&self) -> bool {
        self.unit != "px"
    }

    /// The pixel size in nm, when calibrated.
    pub fn pixel_nm(&self) -> Option<f64> {
        self.is_calibrated().then_some(self.pixel_size)
    }
}

impl Default for Calibration {
    fn default() -> Self {
        Self::uncalibrated()
    }
}

/// One 2-D image: `data[[y, x]]` with its calibration.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// Pixels, row-major, `[[row, column]]`.
    pub data: Array2<f32>,
    /// Pixel size.
    pub calibration: Calibration,
}

impl Image {
    /// An image from row-major pixels.
    pub fn from_vec(
        width: usize,
        height: usize,
        pixels: Vec<f32>,
        calibration: Calibration,
    ) -> Result<Self, CoreError> {
        let got = pixels.len();
        let data = Array2::from_shape_vec((height, width), pixels)
            .map_err(|_| CoreError::ShapeMismatch { expected: width * height, got })?;
        Ok(Self { data, calibration })
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.data.ncols()
    }

    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.data.nrows()
    }

    /// A view of the pixels.
    pub fn view(&self) -> ArrayView2<'_, f32> {
        self.data.view()
    }
}

/// A stack of equally sized frames (a series, or a tilt series): `frames[[t, y, x]]`.
#[derive(Debug, Clone, PartialEq)]
pub struct Stack {
    /// Pixels, `[[frame, row, column]]`.
    pub frames: Array3<f32>,
    /// Pixel size (the same for every frame).
    pub calibration: Calibration,
}

impl Stack {
    /// A stack from frame-major, row-major pixels.
    pub fn from_vec(
        width: usize,
        height: usize,
        frames: usize,
        pixels: Vec<f32>,
        calibration: Calibration,
    ) -> Result<Self, CoreError> {
        let got = pixels.len();
        let frames = Array3::from_shape_vec((frames, height, width), pixels)
            .map_err(|_| CoreError::ShapeMismatch { expected: width * height * frames, got })?;
        Ok(Self { frames, calibration })
    }

    /// Number of frames.
    pub fn len(&self) -> usize {
        self.frames.len_of(Axis(0))
    }

    /// True when there is no frame.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Frame `t` as an image (a copy).
    pub fn frame(&self, t: usize) -> Option<Image> {
        (t < self.len()).then(|| Image {
            data: self.frames.index_axis(Axis(0), t).to_owned(),
            calibration: self.calibration.clone(),
        })
    }
}

/// Refuse images that no analysis can use: empty, or with no finite pixel.
pub fn check_usable(img: ArrayView2<f32>) -> Result<(), CoreError> {
    let (height, width) = img.dim();
    if width == 0 || height == 0 {
        return Err(CoreError::Empty { width, height });
    }
    if !img.iter().any(|v| v.is_finite()) {
        return Err(CoreError::NoFiniteValues { count: width * height });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_normalise_to_nm() {
        assert_eq!(Calibration::from_length(0.25, "Å"), Some(Calibration::nm(0.025)));
        assert_eq!(Calibration::from_length(12.5, "pm"), Some(Calibration::nm(0.0125)));
        assert_eq!(Calibration::from_length(2.0, "µm"), Some(Calibration::nm(2000.0)));
        assert_eq!(Calibration::from_length(1.0, "1/nm"), None);
        assert_eq!(Calibration::from_length(0.0, "nm"), None);
    }

    #[test]
    fn a_written_pixel_size_parses_or_says_why_not() {
        let nm = |t: &str| Calibration::parse(t).unwrap().pixel_size;
        assert!((nm("0.25 Å") - 0.025).abs() < 1e-12 && (nm("25pm") - 0.025).abs() < 1e-12);
        assert!((nm("2e-2 nm") - 0.02).abs() < 1e-12 && (nm(" 0.001 um ") - 1.0).abs() < 1e-12);
        assert_eq!(Calibration::parse("px").unwrap(), Calibration::uncalibrated());
        for (bad, says) in [("0.25", "no unit"), ("nm", "a number"), ("-1 nm", "positive"), ("0.2 furlong", "unit")] {
            let e = Calibration::parse(bad).unwrap_err().to_string();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn indexing_is_row_column() {
        let img = Image::from_vec(3, 2, vec![0., 1., 2., 3., 4., 5.], Calibration::uncalibrated()).unwrap();
        assert_eq!(img.width(), 3);
        assert_eq!(img.height(), 2);
        // x = 2, y = 1
        assert_eq!(img.data[[1, 2]], 5.0);
    }

    #[test]
    fn unusable_images_are_refused() {
        let empty = Array2::<f32>::zeros((0, 4));
        assert!(matches!(check_usable(empty.view()), Err(CoreError::Empty { .. })));
        let nan = Array2::<f32>::from_elem((2, 2), f32::NAN);
        assert!(matches!(check_usable(nan.view()), Err(CoreError::NoFiniteValues { count: 4 })));
        let ok = Array2::<f32>::from_elem((1, 1), 1.0);
        assert!(check_usable(ok.view()).is_ok());
    }
}
