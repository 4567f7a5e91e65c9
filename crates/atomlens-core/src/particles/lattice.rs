//! Each particle's own lattice. In a field of particles at different orientations one spectrum
//! of the whole image cannot say which particle sits on a zone axis, and off one a particle's
//! "columns" are blurred projections of tilted rows of atoms: counting atoms from them, or
//! reading their positions as a lattice, gives confident wrong numbers.
//!
//! A particle is cut out smoothly (its segmented area, then a cosine taper [`TAPER`] spacings
//! wide), its slow envelope removed by subtracting a Gaussian blur one spacing wide (which
//! passes the Bragg frequencies, ≥ 1/spacing, at > 99.9 %), and its spectrum read by
//! [`crate::lattice::local::analyse_region`]: two directions of Bragg peaks make a zone axis,
//! one direction fringes, none no lattice.
use ndarray::{Array2, ArrayView2, s};

use crate::CoreError;
use crate::image::filter::gaussian_blur;
use crate::lattice::local::{LatticeAnalysis, LatticeKind, analyse_region};

/// The longest period a particle's lattice may have, in spacings of the image's: particles of
/// another material or zone axis differ by less than this; a particle's outline and facets
/// put peaks at longer periods.
pub const LONGEST: f64 = 2.0;

/// Width of the taper around the segmented area, in column spacings: wide enough that its edge
/// adds no ringing at the Bragg frequencies, narrow enough that a neighbour stays out.
pub const TAPER: f64 = 1.5;

/// The lattice of the particle whose squared distance map is `near` (0 inside it, as from
/// [`crate::image::morphology::distance_squared_to`]); `spacing`: the image's column spacing (px).
pub fn particle_lattice(
    img: ArrayView2<f32>,
    near: ArrayView2<f32>,
    spacing: f64,
    pixel_nm: Option<f64>,
) -> Result<LatticeAnalysis, CoreError> {
    let reach = (TAPER * spacing).max(2.0);
    let (h, w) = img.dim();
    let (mut y0, mut y1, mut x0, mut x1) = (h, 0, w, 0);
    for ((y, x), &d) in near.indexed_iter() {
        if (d as f64) < reach * reach {
            (y0, y1, x0, x1) = (y0.min(y), y1.max(y + 1), x0.min(x), x1.max(x + 1));
        }
    }
    if y0 >= y1 || x0 >= x1 {
        return Err(CoreError::TooSmall { width: 0, height: 0, min: 8, what: "a particle's lattice" });
    }
    let crop = img.slice(s![y0..y1, x0..x1]);
    let smooth = gaussian_blur(crop, spacing);
    let detail = Array2::from_shape_fn(crop.dim(), |(y, x)| {
        let v = crop[[y, x]];
        if v.is_finite() { v - smooth[[y, x]] } else { 0.0 }
    });
    let weight = near.slice(s![y0..y1, x0..x1]).mapv(|d| {
        let r = (d.max(0.0) as f64).sqrt() / reach;
        if r >= 1.0 { 0.0 } else { (0.5 + 0.5 * (std::f64::consts::PI * r).cos()) as f32 }
    });
    analyse_region(detail.view(), weight.view(), pixel_nm, Some(LONGEST * spacing))
}

/// Why a particle with this lattice cannot be counted, if it cannot.
pub fn counting_refusal(l: &LatticeAnalysis) -> Option<String> {
    match l.kind {
        LatticeKind::ZoneAxis => None,
        LatticeKind::Fringes => Some(
            "the particle is off a zone axis (one direction of lattice fringes): its columns are not resolved, so \
             counts from them would be wrong"
                .into(),
        ),
        LatticeKind::None => Some(
            "the particle shows no lattice (off axis, amorphous, or too noisy): its columns are not resolved".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::morphology::distance_squared_to;
    use crate::synth::{NanoparticleParams, nanoparticle};

    fn disk_near(n: usize, cx: f64, cy: f64, r: f64) -> Array2<f32> {
        let m = Array2::from_shape_fn((n, n), |(y, x)| (x as f64 - cx).hypot(y as f64 - cy) <= r);
        distance_squared_to(m.view())
    }

    /// An on-axis particle is a zone axis at its true spacing; the same particle with its
    /// columns smeared along one direction (rows of atoms tilted out of the beam) is not.
    #[test]
    fn on_axis_particle_is_a_zone_axis_and_a_smeared_one_is_not() {
        let s = nanoparticle(&NanoparticleParams { size: 256, diameter_nm: 4.0, ..Default::default() }).unwrap();
        let c = s.columns.iter().fold([0.0, 0.0], |a, q| [a[0] + q.x, a[1] + q.y]);
        let (cx, cy) = (c[0] / s.columns.len() as f64, c[1] / s.columns.len() as f64);
        let r = s.columns.iter().map(|q| (q.x - cx).hypot(q.y - cy)).fold(0.0, f64::max);
        let near = disk_near(256, cx, cy, r);
        // The nearest-neighbour distance of the true columns.
        let nn = |i: usize| {
            let (a, b) = (&s.columns[i], &s.columns);
            b.iter().filter(|q| q.x != a.x || q.y != a.y).map(|q| (q.x - a.x).hypot(q.y - a.y)).fold(f64::MAX, f64::min)
        };
        let spacing = (0..s.columns.len()).map(nn).fold(f64::MAX, f64::min);
        let l = particle_lattice(s.image.view(), near.view(), spacing, None).unwrap();
        assert_eq!(l.kind, LatticeKind::ZoneAxis, "{l:?}");
        let d = l.spacing.unwrap();
        assert!((d - spacing).abs() < 0.1 * spacing, "{d} vs {spacing}");
        assert!(counting_refusal(&l).is_none());
        // The noise-free image smeared along x by a Gaussian two spacings wide, then Poisson
        // counts as before: only the fringes normal to y survive, under the same noise.
        let k = crate::image::filter::gaussian_kernel(2.0 * spacing);
        let (img, r) = (s.clean.view(), k.len() / 2);
        let smeared = Array2::from_shape_fn(img.dim(), |(y, x)| {
            k.iter().enumerate().map(|(j, &kv)| kv * img[[y, (x + j).saturating_sub(r).min(255)]]).sum::<f32>()
        });
        let smeared = crate::synth::at_dose(smeared.view(), 1.0, 7);
        let l = particle_lattice(smeared.view(), near.view(), spacing, None).unwrap();
        assert_ne!(l.kind, LatticeKind::ZoneAxis, "{l:?}");
        assert!(counting_refusal(&l).is_some());
    }
}
