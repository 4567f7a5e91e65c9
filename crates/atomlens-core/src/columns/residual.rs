//! A fitted column against its data: the pixels around it, the model `B ± A·exp(−Q)` of its
//! fitted parameters, and their difference, so a user can see what the fit missed.
use ndarray::ArrayView2;
use serde::Serialize;

use crate::columns::fit::AtomColumn;

/// Data, model and residual on a square of `size × size` pixels centred on a column's nearest
/// pixel, row-major; NaN outside the image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Patch {
    /// Side of the square (`2·half + 1`).
    pub size: usize,
    /// The image.
    pub data: Vec<f32>,
    /// The column's fitted model (its neighbours are not included).
    pub model: Vec<f32>,
    /// `data − model`.
    pub residual: Vec<f32>,
}

/// The patch of side `2·half + 1` around `c` on `img`; `dark` columns (ABF) dip below the
/// background.
pub fn patch(img: ArrayView2<f32>, c: &AtomColumn, half: usize, dark: bool) -> Patch {
    let (h, w) = img.dim();
    let n = 2 * half + 1;
    let (cx, cy) = (c.x.round() as i64, c.y.round() as i64);
    let sign = if dark { -1.0 } else { 1.0 };
    let (mut data, mut model) = (vec![f32::NAN; n * n], vec![f32::NAN; n * n]);
    let (s, co) = c.rotation.sin_cos();
    for j in 0..n {
        for k in 0..n {
            let (x, y) = (cx + k as i64 - half as i64, cy + j as i64 - half as i64);
            if x < 0 || y < 0 || x >= w as i64 || y >= h as i64 {
                continue;
            }
            data[j * n + k] = img[[y as usize, x as usize]];
            let (dx, dy) = (x as f64 - c.x, y as f64 - c.y);
            let (u, v) = (co * dx + s * dy, -s * dx + co * dy);
            let g = c.amplitude * (-(u * u / (2.0 * c.sigma_x.powi(2)) + v * v / (2.0 * c.sigma_y.powi(2)))).exp();
            model[j * n + k] = (c.background + sign * g) as f32;
        }
    }
    let residual = data.iter().zip(&model).map(|(d, m)| d - m).collect();
    Patch { size: n, data, model, residual }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::columns::fit::{FitParams, fit_columns};
    use crate::synth::{TrueColumn, add_gaussians};

    /// A noise-free column fitted and drawn back: the residual is zero to rounding, and the
    /// patch is clipped (NaN) where it leaves the image.
    #[test]
    fn a_fitted_column_leaves_no_residual() {
        let mut img = ndarray::Array2::from_elem((24, 24), 2.0f32);
        add_gaussians(&mut img, &[TrueColumn { x: 11.3, y: 3.6, sigma: 1.8, peak: 40.0, atoms: 1, m_atoms: 0 }]);
        let c = &fit_columns(img.view(), &[[11.0, 4.0]], &FitParams::default()).unwrap()[0];
        let p = patch(img.view(), c, 6, false);
        assert_eq!(p.size, 13);
        let finite: Vec<f32> = p.residual.iter().copied().filter(|v| v.is_finite()).collect();
        assert_eq!(finite.len(), 13 * 11, "rows above the image are NaN");
        assert!(finite.iter().all(|r| r.abs() < 1e-2), "{:?}", finite.iter().cloned().fold(0.0f32, f32::max));
    }
}
