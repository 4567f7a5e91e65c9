//! The power spectrum shown beside the image, in calibrated reciprocal units.
//!
//! The mean is removed and a Hann window applied before the FFT so the image borders do not
//! draw a bright cross through the spectrum. The result is `log10(1 + |F|²)`, fft-shifted for
//! display: index `i` along an axis of length `n` is the frequency `(i − n/2) / n` cycles per
//! pixel (integer division), i.e. zero frequency sits at `(n/2, n/2)`.
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::math::fft::fft2_real;
use crate::{Calibration, CoreError, image::check_usable};

/// A display-ready power spectrum.
#[derive(Debug, Clone, PartialEq)]
pub struct PowerSpectrum {
    /// `log10(1 + |F|²)`, zero frequency at `[[h/2, w/2]]`.
    pub data: Array2<f32>,
    /// Reciprocal calibration of one spectrum pixel.
    pub axes: ReciprocalAxes,
}

/// The reciprocal-space size of one spectrum pixel along x and y.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReciprocalAxes {
    /// Frequency step along x (columns), in `unit`.
    pub step_x: f64,
    /// Frequency step along y (rows), in `unit`.
    pub step_y: f64,
    /// `1/nm` for calibrated images, `1/px` otherwise.
    pub unit: String,
}

/// The power spectrum of `img`. Non-finite pixels are replaced by the mean first.
pub fn power_spectrum(img: ArrayView2<f32>, cal: &Calibration) -> Result<PowerSpectrum, CoreError> {
    check_usable(img)?;
    let (h, w) = img.dim();
    if h < 2 || w < 2 {
        return Err(CoreError::TooSmall { width: w, height: h, min: 2, what: "a power spectrum" });
    }
    let mean = crate::image::stats::finite_mean(img) as f32;
    let hann = |n: usize| -> Vec<f32> {
        (0..n).map(|i| (0.5 - 0.5 * (2.0 * std::f64::consts::PI * i as f64 / n as f64).cos()) as f32).collect()
    };
    let (wy, wx) = (hann(h), hann(w));
    let windowed = Array2::from_shape_fn((h, w), |(y, x)| {
        let v = img[[y, x]];
        let v = if v.is_finite() { v - mean } else { 0.0 };
        v * wy[y] * wx[x]
    });
    let f = fft2_real(windowed.view());
    let data = Array2::from_shape_fn((h, w), |(y, x)| {
        let sy = (y + h - h / 2) % h;
        let sx = (x + w - w / 2) % w;
        (1.0 + f[[sy, sx]].norm_sqr() as f64).log10() as f32
    });
    let unit = if cal.is_calibrated() { "1/nm" } else { "1/px" };
    let axes = ReciprocalAxes {
        step_x: 1.0 / (w as f64 * cal.pixel_size),
        step_y: 1.0 / (h as f64 * cal.pixel_size),
        unit: unit.into(),
    };
    Ok(PowerSpectrum { data, axes })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lattice_fringe_appears_at_its_calibrated_frequency() {
        // Fringes of period 8 px along x at 0.05 nm/px → 1/(0.4 nm) = 2.5 nm⁻¹.
        let (h, w) = (64, 128);
        let img = Array2::from_shape_fn((h, w), |(_, x)| (2.0 * std::f32::consts::PI * x as f32 / 8.0).cos());
        let ps = power_spectrum(img.view(), &Calibration::nm(0.05)).unwrap();
        let (mut best, mut at) = (f32::MIN, (0, 0));
        for ((y, x), &v) in ps.data.indexed_iter() {
            if v > best {
                best = v;
                at = (y, x);
            }
        }
        let fx = (at.1 as f64 - (w / 2) as f64) * ps.axes.step_x;
        let fy = (at.0 as f64 - (h / 2) as f64) * ps.axes.step_y;
        assert!((fx.abs() - 2.5).abs() < 1e-9, "fx = {fx}");
        assert_eq!(fy, 0.0);
        assert_eq!(ps.axes.unit, "1/nm");
    }

    #[test]
    fn tiny_image_is_refused() {
        let img = Array2::<f32>::zeros((1, 1));
        assert!(matches!(power_spectrum(img.view(), &Calibration::uncalibrated()), Err(CoreError::TooSmall { .. })));
    }
}
