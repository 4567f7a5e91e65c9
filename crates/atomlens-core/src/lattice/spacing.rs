//! The lattice's nearest-neighbour distance from the image itself: the nearest strong peak of
//! the autocorrelation, with slow variations (support, particle envelopes) removed first.
use ndarray::{Array2, ArrayView2};
use rustfft::FftDirection;

use crate::CoreError;
use crate::math::fft::{C32, fft2_inplace};

/// The circular autocorrelation of `img` (mean removed, non-finite pixels read as the mean) with
/// the slow variations (support thickness, a particle's envelope: below 4 cycles per image)
/// removed from its power spectrum; shift `(dy, dx)` at `[[dy mod h, dx mod w]]`.
pub fn autocorrelation(img: ArrayView2<f32>) -> Array2<f32> {
    let (h, w) = img.dim();
    let mean = crate::image::stats::finite_mean(img) as f32;
    let mut c = img.mapv(|v| C32::new(if v.is_finite() { v - mean } else { 0.0 }, 0.0));
    fft2_inplace(&mut c, FftDirection::Forward);
    for ((ky, kx), v) in c.indexed_iter_mut() {
        let (fy, fx) = (crate::math::fft::frequency(ky, h) * h as f64, crate::math::fft::frequency(kx, w) * w as f64);
        *v = if fy * fy + fx * fx < 16.0 { C32::new(0.0, 0.0) } else { C32::new(v.norm_sqr(), 0.0) };
    }
    fft2_inplace(&mut c, FftDirection::Inverse);
    c.mapv(|v| v.re)
}

/// The nearest-neighbour distance of the lattice (px), from the image's local spectra
/// ([`super::local::analyse`]); `NoLattice` with the reason when none shows.
pub fn estimate_spacing(img: ArrayView2<f32>) -> Result<f64, CoreError> {
    let a = super::local::analyse(img, None)?;
    match (a.kind, a.spacing) {
        (super::LatticeKind::ZoneAxis | super::LatticeKind::Fringes, Some(d)) => Ok(d),
        _ => Err(CoreError::NoLattice {
            reason: if a.notes.is_empty() { "no periodic lattice".into() } else { a.notes.join("; ") },
        }),
    }
}

/// The nearest-neighbour distance in an autocorrelation `c` (shift `(dy, dx)` at
/// `[[dy mod h, dx mod w]]`), looked for within `rmax` px: the nearest local maximum beyond the
/// central peak at least 0.3 × the strongest (a perovskite's weaker, nearer A–B peak wins over
/// A–A), refused below 0.15 of the central peak.
pub fn nearest_strong_peak(c: &Array2<f32>, rmax: i64) -> Result<f64, CoreError> {
    let (h, w) = c.dim();
    let ac = |dy: i64, dx: i64| c[[dy.rem_euclid(h as i64) as usize, dx.rem_euclid(w as i64) as usize]];
    let zero = ac(0, 0);
    if !(zero > 0.0) {
        return Err(CoreError::NoLattice { reason: "the image has no contrast".into() });
    }
    // Radial profile → first minimum r0: the end of the central peak.
    let mut sum = vec![0.0f64; rmax as usize + 2];
    let mut n = vec![0usize; rmax as usize + 2];
    for dy in -rmax..=rmax {
        for dx in -rmax..=rmax {
            let r = ((dy * dy + dx * dx) as f64).sqrt().round() as usize;
            if r <= rmax as usize {
                sum[r] += ac(dy, dx) as f64;
                n[r] += 1;
            }
        }
    }
    let prof: Vec<f64> = sum.iter().zip(&n).map(|(s, &k)| if k > 0 { s / k as f64 } else { 0.0 }).collect();
    let r0 = (2..rmax as usize).find(|&r| prof[r] <= prof[r - 1] && prof[r] <= prof[r + 1]).ok_or_else(|| {
        CoreError::NoLattice { reason: "the autocorrelation has no periodic peak (noise or amorphous image?)".into() }
    })?;
    // Local maxima of the autocorrelation beyond the central peak. The nearest-neighbour
    // distance is the nearest strong one: with two sublattices (a perovskite's A and B columns)
    // the A–B peak is nearer but weaker than the A–A peak, and it is the one wanted.
    let mut maxima: Vec<(f64, f32)> = Vec::new();
    for dy in -rmax..=rmax {
        for dx in -rmax..=rmax {
            let r = ((dy * dy + dx * dx) as f64).sqrt();
            let v = ac(dy, dx);
            if r > r0 as f64 && r <= rmax as f64 && (-1..=1).all(|a| (-1..=1).all(|b| ac(dy + a, dx + b) <= v)) {
                maxima.push((r, v));
            }
        }
    }
    let best = maxima.iter().map(|m| m.1).fold(f32::MIN, f32::max);
    // A real lattice correlates strongly with its shifted self; noise does not.
    if maxima.is_empty() || best < 0.15 * zero {
        return Err(CoreError::NoLattice {
            reason: format!(
                "the best lattice correlation is {:.2} of the central peak (noise, amorphous, or too few columns to tell); give the separation by hand",
                best.max(0.0) / zero
            ),
        });
    }
    let at = maxima.iter().filter(|m| m.1 >= 0.3 * best).map(|m| m.0).fold(f64::MAX, f64::min);
    Ok(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::square_lattice as lattice;

    #[test]
    fn spacing_of_a_square_lattice() {
        let (img, _) = lattice(12, 14.0, 2.5);
        let d = estimate_spacing(img.view()).unwrap();
        assert!((d - 14.0).abs() <= 0.75, "spacing {d}");
    }
}
