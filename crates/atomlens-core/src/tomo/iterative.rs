//! SIRT and SART on one slice, with the projector of [`super::project`].
//!
//! - SIRT (Gilbert 1972; the form of ASTRA's `SIRT`): `x ← x + C Aᵀ R (b − A x)` with `R` the
//!   inverse ray sums `1/(A 1)` and `C` the inverse pixel sums `1/(Aᵀ 1)`: every update uses every
//!   tilt. It minimises `‖b − A x‖²_R`, monotonically.
//! - SART (Andersen & Kak 1984): the same update one tilt at a time (`C_θ = 1/(A_θᵀ 1)`), relaxed
//!   by 0.5, tilts in golden-ratio order so consecutive ones are far apart.
//! - Non-negativity, when asked, clips after every update (density cannot be negative).
use ndarray::{Array2, ArrayView2};

use super::project::Geometry;

/// Sees the slice after every iteration (tests, live previews).
pub type Observer<'a> = dyn FnMut(&Array2<f32>) + 'a;

/// The inverse of a ray or pixel sum, 0 where nothing passes (rays that miss the slice).
pub fn inverse(v: f32) -> f32 {
    if v > 1e-6 { 1.0 / v } else { 0.0 }
}

/// SIRT of one slice from its sinogram; `each` sees the slice after every iteration.
pub fn sirt_slice(
    g: &Geometry,
    sino: ArrayView2<f32>,
    iterations: usize,
    nonnegative: bool,
    mut each: Option<&mut Observer<'_>>,
) -> Array2<f32> {
    let (n, nx, nz) = (g.tilts(), g.nx, g.nz);
    let b: Vec<f32> = sino.iter().copied().collect();
    let (ones_pixels, ones_bins) = (vec![1.0f32; nz * nx], vec![1.0f32; nx]);
    let mut ray = vec![0.0f32; n * nx];
    let mut pix = vec![0.0f32; nz * nx];
    for a in 0..n {
        g.forward_tilt(a, &ones_pixels, &mut ray[a * nx..(a + 1) * nx]);
        g.adjoint_tilt(a, &ones_bins, &mut pix);
    }
    let r: Vec<f32> = ray.iter().map(|&v| inverse(v)).collect();
    let c: Vec<f32> = pix.iter().map(|&v| inverse(v)).collect();
    let mut x = vec![0.0f32; nz * nx];
    let mut residual = vec![0.0f32; n * nx];
    let mut update = vec![0.0f32; nz * nx];
    for _ in 0..iterations {
        residual.fill(0.0);
        for a in 0..n {
            g.forward_tilt(a, &x, &mut residual[a * nx..(a + 1) * nx]);
        }
        for ((res, bv), rv) in residual.iter_mut().zip(&b).zip(&r) {
            *res = (bv - *res) * rv;
        }
        update.fill(0.0);
        for a in 0..n {
            g.adjoint_tilt(a, &residual[a * nx..(a + 1) * nx], &mut update);
        }
        for ((xv, u), cv) in x.iter_mut().zip(&update).zip(&c) {
            *xv += u * cv;
            if nonnegative && *xv < 0.0 {
                *xv = 0.0;
            }
        }
        if let Some(f) = each.as_mut() {
            f(&Array2::from_shape_vec((nz, nx), x.clone()).expect("nz × nx"));
        }
    }
    Array2::from_shape_vec((nz, nx), x).expect("nz × nx")
}

/// SART's relaxation.
pub const SART_RELAX: f32 = 0.5;

/// The order SART visits `n` tilts in: golden-ratio steps, so consecutive ones are far apart.
pub fn sart_order(n: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| ((i as f64 * 0.618_034) % 1.0).total_cmp(&((j as f64 * 0.618_034) % 1.0)));
    order
}

/// SART of one slice from its sinogram (`iterations` passes over all tilts).
pub fn sart_slice(g: &Geometry, sino: ArrayView2<f32>, iterations: usize, nonnegative: bool) -> Array2<f32> {
    const RELAX: f32 = SART_RELAX;
    let (n, nx, nz) = (g.tilts(), g.nx, g.nz);
    let order = sart_order(n);
    // Per tilt: inverse ray sums and relaxed inverse pixel sums (the same for every pass).
    let ones_pixels = vec![1.0f32; nz * nx];
    let ones_bins = vec![1.0f32; nx];
    let (mut ray, mut pix) = (vec![0.0f32; n * nx], vec![0.0f32; n * nz * nx]);
    for a in 0..n {
        g.forward_tilt(a, &ones_pixels, &mut ray[a * nx..(a + 1) * nx]);
        g.adjoint_tilt(a, &ones_bins, &mut pix[a * nz * nx..(a + 1) * nz * nx]);
    }
    ray.iter_mut().for_each(|v| *v = inverse(*v));
    pix.iter_mut().for_each(|v| *v = RELAX * inverse(*v));
    let mut x = vec![0.0f32; nz * nx];
    let mut proj = vec![0.0f32; nx];
    let mut update = vec![0.0f32; nz * nx];
    for _ in 0..iterations {
        for &a in &order {
            proj.fill(0.0);
            g.forward_tilt(a, &x, &mut proj);
            for ((p, &bv), &rv) in proj.iter_mut().zip(sino.row(a).iter()).zip(&ray[a * nx..(a + 1) * nx]) {
                *p = (bv - *p) * rv;
            }
            update.fill(0.0);
            g.adjoint_tilt(a, &proj, &mut update);
            for ((xv, u), &cv) in x.iter_mut().zip(&update).zip(&pix[a * nz * nx..(a + 1) * nz * nx]) {
                *xv += u * cv;
                if nonnegative && *xv < 0.0 {
                    *xv = 0.0;
                }
            }
        }
    }
    Array2::from_shape_vec((nz, nx), x).expect("nz × nx")
}
