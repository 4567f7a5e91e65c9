//! Filtered back-projection: each projection row convolved with the discrete Ram-Lak kernel of
//! Kak & Slaney (`h[0] = 1/4`, `h[n odd] = −1/(πn)²`, zero-padded to a power of two ≥ 2·nx, no
//! wrap-around), apodised in frequency (Shepp–Logan `sinc`, Hann `(1 + cos 2πf)/2`, as
//! scikit-image's `iradon`), then back-projected by the adjoint of the projector with each tilt
//! weighted by its angular share (`π/N` for N tilts over 180°).
use std::sync::Arc;

use ndarray::{Array2, ArrayView2};
use rustfft::{Fft, FftPlanner, num_complex::Complex};
use serde::{Deserialize, Serialize};

use super::project::Geometry;

/// Apodisation of the ramp filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Filter {
    /// The bare ramp (sharpest, noisiest).
    RamLak,
    /// Ramp × sinc.
    #[default]
    SheppLogan,
    /// Ramp × Hann window (smoothest).
    Hann,
}

/// The filter's frequency response on `size` (a power of two) FFT bins.
fn response(size: usize, filter: Filter) -> Vec<f64> {
    let mut h = vec![Complex::new(0.0f64, 0.0); size];
    h[0].re = 0.25;
    for n in (1..size / 2).step_by(2) {
        let v = -1.0 / (std::f64::consts::PI * n as f64).powi(2);
        h[n].re = v;
        h[size - n].re = v;
    }
    FftPlanner::new().plan_fft_forward(size).process(&mut h);
    (0..size)
        .map(|k| {
            let f = if k <= size / 2 { k as f64 } else { k as f64 - size as f64 } / size as f64;
            let window = match filter {
                Filter::RamLak => 1.0,
                Filter::SheppLogan if f != 0.0 => (std::f64::consts::PI * f).sin() / (std::f64::consts::PI * f),
                Filter::SheppLogan => 1.0,
                Filter::Hann => 0.5 + 0.5 * (2.0 * std::f64::consts::PI * f).cos(),
            };
            h[k].re * window
        })
        .collect()
}

/// The filtered sinogram (each row convolved with the apodised ramp).
pub fn filter_sinogram(sino: ArrayView2<f32>, filter: Filter) -> Array2<f32> {
    filter_shifted(sino, filter, 0.0)
}

/// The filtered sinogram with every row also moved by `shift` px (output x reads input
/// x + shift) by a phase ramp: exact, without the smoothing of interpolation (which would favour
/// half-pixel shifts in any sharpness search).
pub fn filter_shifted(sino: ArrayView2<f32>, filter: Filter, shift: f64) -> Array2<f32> {
    let (n, nx) = sino.dim();
    let size = (2 * nx).next_power_of_two().max(64);
    let resp: Vec<Complex<f64>> = response(size, filter)
        .into_iter()
        .enumerate()
        .map(|(k, r)| {
            let f = if k <= size / 2 { k as f64 } else { k as f64 - size as f64 } / size as f64;
            Complex::from_polar(r, 2.0 * std::f64::consts::PI * f * shift)
        })
        .collect();
    let mut planner = FftPlanner::new();
    let (fwd, inv): (Arc<dyn Fft<f64>>, Arc<dyn Fft<f64>>) =
        (planner.plan_fft_forward(size), planner.plan_fft_inverse(size));
    let mut out = Array2::zeros((n, nx));
    let mut buf = vec![Complex::new(0.0, 0.0); size];
    for (a, row) in sino.rows().into_iter().enumerate() {
        buf.iter_mut().for_each(|c| *c = Complex::new(0.0, 0.0));
        for (b, &v) in buf.iter_mut().zip(row.iter()) {
            b.re = v as f64;
        }
        fwd.process(&mut buf);
        buf.iter_mut().zip(&resp).for_each(|(c, r)| *c *= r);
        inv.process(&mut buf);
        for (o, b) in out.row_mut(a).iter_mut().zip(&buf) {
            *o = (b.re / size as f64) as f32;
        }
    }
    out
}

/// FBP of one slice from its sinogram (`tilts × nx`).
pub fn fbp_slice(g: &Geometry, sino: ArrayView2<f32>, filter: Filter) -> Array2<f32> {
    fbp_slice_shifted(g, sino, filter, 0.0)
}

/// FBP of one slice with the sinogram's rows moved by `shift` px first (see [`filter_shifted`]).
pub fn fbp_slice_shifted(g: &Geometry, sino: ArrayView2<f32>, filter: Filter, shift: f64) -> Array2<f32> {
    let mut q = filter_shifted(sino, filter, shift);
    for (mut row, &d) in q.rows_mut().into_iter().zip(&g.dtheta) {
        row.mapv_inplace(|v| v * d as f32);
    }
    g.adjoint(q.view())
}
