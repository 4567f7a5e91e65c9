//! Geometric phase analysis (Hÿtch, Snoeck & Kilaas 1998).
//!
//! For each of two reciprocal vectors `g`, the spectrum is masked around `g` and transformed
//! back; `P_g(r) = arg H_g(r) − 2π g·r` is the geometric phase. Its gradient gives the local
//! reciprocal vector `g + ∇P_g/2π` at every pixel; with both, the local deformation gradient
//! against the reference lattice is `F = G_local⁻¹ G` (rows of `G` are the two g-vectors), split
//! into strain and rotation by [`crate::math::deformation::decompose`]. No linearisation: a 2 %
//! strain reads 0.0200, not the 0.0196 of `−G⁻¹∇P/2π`.
//!
//! - Phase gradients are taken from products of neighbouring complex samples
//!   (`arg(Z(x+1) Z*(x−1))/2`), so no phase unwrapping is needed for strain.
//! - `refine`: each `g` is moved by the mean phase gradient over the reference region, so the
//!   strain is relative to that region's lattice (Hÿtch's standard procedure). Without it the
//!   strain is relative to the given g-vectors (a known, e.g. bulk, lattice).
//! - Where a fringe's amplitude is below a fifth of its 95th percentile (no lattice there:
//!   vacuum, amorphous support) the maps are NaN rather than noise shown as strain.
//! - Near the borders the periodic FFT mixes opposite edges: results within `border_px` of an
//!   edge are unreliable (the maps keep them; statistics and the default reference skip them).
use std::f64::consts::TAU;

use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

#[cfg(feature = "parallel")]
use rayon::prelude::*;

use crate::CoreError;
use crate::image::{Region, check_usable, region_values};
use crate::lattice::bragg_peaks;
use crate::lattice::estimate_spacing;
use crate::math::deformation::{Mat2, decompose, inverse, mul};
use crate::math::fft::{C32, Fft2};
use fringe::{demodulated, map_par, mean_gradient, percentile95, phase_gradient, remove_ramp, slice};

/// Shape of the Fourier mask around each g.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum MaskShape {
    /// Gaussian with standard deviation `radius / 2`.
    #[default]
    Gaussian,
    /// `cos²(π d / 2 radius)`, zero beyond `radius`.
    Cosine,
}

impl MaskShape {
    /// Every shape, in the order a form lists them.
    pub const ALL: [MaskShape; 2] = [MaskShape::Gaussian, MaskShape::Cosine];
}

/// GPA settings. `Default` is the automatic analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct GpaParams {
    /// The two reciprocal vectors (cycles/px, `[x, y]`); `None` picks them from the spectrum.
    pub g: Option<[[f64; 2]; 2]>,
    /// Refine the g-vectors on the reference region (strain relative to it).
    pub refine: bool,
    /// Mask shape.
    pub mask: MaskShape,
    /// Mask radius as a fraction of the shorter |g|.
    pub mask_radius: f64,
    /// Reference region; `None` = the whole image inside the border band.
    pub reference: Option<Region>,
    /// Direction of the strain frame's x axis (radians from +x towards +y).
    pub frame_angle: f64,
    /// Also compute the displacement field (unwraps both phases: two DCT Poisson solves).
    pub displacement: bool,
}

impl Default for GpaParams {
    fn default() -> Self {
        GpaParams {
            g: None,
            refine: true,
            mask: MaskShape::Gaussian,
            mask_radius: 0.25,
            reference: None,
            frame_angle: 0.0,
            displacement: false,
        }
    }
}

/// Strain maps and what they were measured with.
#[derive(Debug, Clone)]
pub struct GpaResult {
    /// The g-vectors used (refined when asked), cycles/px.
    pub g: [[f64; 2]; 2],
    /// The g-vectors before refinement.
    pub g_initial: [[f64; 2]; 2],
    /// Mask shape.
    pub mask: MaskShape,
    /// Mask radius, cycles/px.
    pub mask_radius: f64,
    /// Spatial resolution of the maps: the real-space width (σ, px) the mask averages over.
    pub resolution_px: f64,
    /// Width of the unreliable band along each edge (px).
    pub border_px: usize,
    /// The reference region.
    pub reference: Region,
    /// Strain frame (radians).
    pub frame_angle: f64,
    /// Normal strain along the frame's x axis.
    pub exx: Array2<f32>,
    /// Normal strain along the frame's y axis.
    pub eyy: Array2<f32>,
    /// Shear strain (tensor component).
    pub exy: Array2<f32>,
    /// Lattice rotation (radians, positive from +x towards +y).
    pub rotation: Array2<f32>,
    /// Geometric phase of each g (radians, wrapped to ±π).
    pub phase: [Array2<f32>; 2],
    /// Fringe amplitude of each g, relative to its 95th percentile.
    pub amplitude: [Array2<f32>; 2],
    /// Fraction of pixels where both fringes are strong enough to measure.
    pub valid_fraction: f64,
    /// Displacement `[ux, uy]` (px) from the reference lattice, zero on average over the
    /// reference region; only when asked for.
    pub displacement: Option<[Array2<f32>; 2]>,
}

impl GpaResult {
    /// The four strain maps with their file names.
    pub fn maps(&self) -> [(&'static str, &Array2<f32>); 4] {
        [("exx", &self.exx), ("eyy", &self.eyy), ("exy", &self.exy), ("rotation", &self.rotation)]
    }

    /// The region at least `border_px` from every edge (the whole image if that leaves nothing).
    pub fn core(&self) -> Region {
        let (h, w) = self.exx.dim();
        inset(w, h, self.border_px)
    }
}

/// Amplitude (relative to the 95th percentile) below which a fringe counts as absent.
const MIN_AMPLITUDE: f32 = 0.2;

/// Run GPA on `img` (see the module docs).
pub fn analyse(img: ArrayView2<f32>, p: &GpaParams) -> Result<GpaResult, CoreError> {
    check_usable(img)?;
    let (h, w) = img.dim();
    if h < 32 || w < 32 {
        return Err(CoreError::TooSmall { width: w, height: h, min: 32, what: "GPA" });
    }
    // Beyond half of |g| the mask would reach the zero-frequency peak or the neighbouring spots.
    if !(p.mask_radius > 0.0 && p.mask_radius <= 0.5) {
        return Err(invalid("mask_radius", format!("{} must be in (0, 0.5] (a fraction of |g|)", p.mask_radius)));
    }
    if !p.frame_angle.is_finite() {
        return Err(invalid("frame_angle", "must be a finite angle".into()));
    }
    let g_initial = match p.g {
        Some(g) => check_g(g, w, h)?,
        // When refining, a central 512² crop places the peaks well enough (the refinement
        // moves g by the phase gradient) at a fraction of the cost on large images.
        None if p.refine => check_g(strongest_pair(central_crop(img, 512))?, w, h)?,
        None => check_g(strongest_pair(img)?, w, h)?,
    };
    let g_len = |g: [f64; 2]| g[0].hypot(g[1]);
    let mask_radius = p.mask_radius * g_len(g_initial[0]).min(g_len(g_initial[1]));
    let resolution_px = 1.0 / (TAU * mask_radius / 2.0);
    // Edge errors fall off as the mask's real-space Gaussian: below 1e-3 of the edge's phase jump
    // beyond 4 σ.
    let border_px = (4.0 * resolution_px).ceil() as usize;
    let reference = match p.reference {
        Some(r) => check_region(r, w, h)?,
        None => inset(w, h, border_px),
    };
    // The g-vectors are refined on the part of the region outside the border band, when there
    // is one: edge artefacts would otherwise bias the reference lattice.
    let core = inset(w, h, border_px);
    let clipped = Region {
        x0: reference.x0.max(core.x0),
        y0: reference.y0.max(core.y0),
        x1: reference.x1.min(core.x1),
        y1: reference.y1.min(core.y1),
    };
    let refine_on = if clipped.x0 + 4 <= clipped.x1 && clipped.y0 + 4 <= clipped.y1 { clipped } else { reference };

    let plan = Fft2::new(h, w);
    let mean = crate::image::stats::finite_mean(img) as f32;
    let mut spectrum = img.mapv(|v| C32::new(if v.is_finite() { v - mean } else { 0.0 }, 0.0));
    plan.forward(&mut spectrum);

    let mut g = g_initial;
    let mut fringes = Vec::with_capacity(2);
    for (k, gk) in g.iter_mut().enumerate() {
        let start = *gk;
        let fringe = |g: [f64; 2]| -> Result<(Array2<C32>, Array2<f32>), CoreError> {
            let z = demodulated(&spectrum, &plan, g, p.mask, mask_radius);
            let mut amp = map_par(&z, |c| c.norm());
            let level = percentile95(&amp);
            if !(level > 0.0) {
                return Err(CoreError::NoLattice {
                    reason: format!("no fringes at g{} (the masked spectrum is empty)", k + 1),
                });
            }
            amp.mapv_inplace(|a| a / level);
            Ok((z, amp))
        };
        let (mut z, mut amp) = fringe(*gk)?;
        if p.refine {
            for _ in 0..4 {
                let dg = mean_gradient(&z, &amp, refine_on)
                    .ok_or_else(|| CoreError::NoLattice {
                        reason: format!("the reference region shows no g{} fringes; choose a crystalline area", k + 1),
                    })?
                    .map(|v| v / TAU);
                *gk = [gk[0] + dg[0], gk[1] + dg[1]];
                if (gk[0] - start[0]).hypot(gk[1] - start[1]) > mask_radius {
                    return Err(CoreError::NoLattice {
                        reason: format!(
                            "refining g{} moved it out of its mask: no single Bragg spot there (pick g again, or use a smaller mask)",
                            k + 1
                        ),
                    });
                }
                // A shift of a small fraction of an FFT pixel only re-references the phase;
                // a larger one re-centres the mask.
                if (dg[0] * w as f64).abs().max((dg[1] * h as f64).abs()) < 0.02 {
                    remove_ramp(&mut z, dg);
                    break;
                }
                (z, amp) = fringe(*gk)?;
            }
        }
        fringes.push((z, amp));
    }
    let (f2, f1) = (fringes.pop().expect("two fringes"), fringes.pop().expect("two fringes"));

    let gm: Mat2 = g;
    let limit2 = g.map(|v| (0.5 * TAU * g_len(v)).powi(2));
    let (z1, z2) = (slice(&f1.0), slice(&f2.0));
    let (a1, a2) = (slice(&f1.1), slice(&f2.1));
    // One row of all four maps; returns how many pixels were measured.
    let kernel = |y: usize, out: [&mut [f32]; 4]| -> usize {
        let mut n = 0;
        for x in 0..w {
            let i = y * w + x;
            if a1[i] < MIN_AMPLITUDE || a2[i] < MIN_AMPLITUDE {
                continue;
            }
            let (d1, d2) = (phase_gradient(z1, w, h, y, x), phase_gradient(z2, w, h, y, x));
            // A local g more than half of |g| away from the reference is a phase
            // singularity (a dislocation core, a fringe dying out), not strain.
            let norm2 = |d: [f64; 2]| d[0] * d[0] + d[1] * d[1];
            if norm2(d1) > limit2[0] || norm2(d2) > limit2[1] {
                continue;
            }
            let local: Mat2 =
                [[gm[0][0] + d1[0] / TAU, gm[0][1] + d1[1] / TAU], [gm[1][0] + d2[0] / TAU, gm[1][1] + d2[1] / TAU]];
            let Some(inv) = inverse(local) else { continue };
            let s = decompose(mul(inv, gm));
            let s = if p.frame_angle == 0.0 { s } else { s.in_frame(p.frame_angle) };
            out[0][x] = s.exx as f32;
            out[1][x] = s.eyy as f32;
            out[2][x] = s.exy as f32;
            out[3][x] = s.rotation as f32;
            n += 1;
        }
        n
    };
    let n = h * w;
    let mut planes = vec![f32::NAN; 4 * n];
    let (m0, rest) = planes.split_at_mut(n);
    let (m1, rest) = rest.split_at_mut(n);
    let (m2, m3) = rest.split_at_mut(n);
    #[cfg(feature = "parallel")]
    let valid: usize = m0
        .par_chunks_mut(w)
        .zip(m1.par_chunks_mut(w))
        .zip(m2.par_chunks_mut(w))
        .zip(m3.par_chunks_mut(w))
        .enumerate()
        .map(|(y, (((a, b), c), d))| kernel(y, [a, b, c, d]))
        .sum();
    #[cfg(not(feature = "parallel"))]
    let valid: usize = m0
        .chunks_mut(w)
        .zip(m1.chunks_mut(w))
        .zip(m2.chunks_mut(w))
        .zip(m3.chunks_mut(w))
        .enumerate()
        .map(|(y, (((a, b), c), d))| kernel(y, [a, b, c, d]))
        .sum();
    let map = |k: usize| Array2::from_shape_vec((h, w), planes[k * n..(k + 1) * n].to_vec()).expect("h × w");
    let [exx, eyy, exy, rotation] = [map(0), map(1), map(2), map(3)];
    let phase = [map_par(&f1.0, |c| c.arg()), map_par(&f2.0, |c| c.arg())];
    let displacement = if p.displacement {
        Some(displacement_field(&f1.0, &f2.0, g, &exx, reference).ok_or_else(|| CoreError::NoLattice {
            reason: "no measured pixel in the reference region to anchor the displacement".into(),
        })?)
    } else {
        None
    };
    Ok(GpaResult {
        g,
        g_initial,
        mask: p.mask,
        mask_radius,
        resolution_px,
        border_px,
        reference,
        frame_angle: p.frame_angle,
        exx,
        eyy,
        exy,
        rotation,
        phase,
        amplitude: [f1.1, f2.1],
        valid_fraction: valid as f64 / (w * h) as f64,
        displacement,
    })
}

/// `u = −G⁻¹ [P₁, P₂] / 2π` from the unwrapped phases, NaN where the strain is, shifted to zero
/// mean over the reference region.
fn displacement_field(
    z1: &Array2<C32>,
    z2: &Array2<C32>,
    g: [[f64; 2]; 2],
    valid: &Array2<f32>,
    reference: Region,
) -> Option<[Array2<f32>; 2]> {
    let (p1, p2) = (crate::math::phase_unwrap::unwrap(z1), crate::math::phase_unwrap::unwrap(z2));
    let inv = inverse(g)?;
    let mut u = [Array2::from_elem(valid.dim(), f32::NAN), Array2::from_elem(valid.dim(), f32::NAN)];
    for ((y, x), v) in valid.indexed_iter() {
        if v.is_finite() {
            let (a, b) = (p1[[y, x]] as f64, p2[[y, x]] as f64);
            u[0][[y, x]] = (-(inv[0][0] * a + inv[0][1] * b) / TAU) as f32;
            u[1][[y, x]] = (-(inv[1][0] * a + inv[1][1] * b) / TAU) as f32;
        }
    }
    for m in &mut u {
        let vals = region_values(m.view(), reference);
        if vals.is_empty() {
            return None;
        }
        let mean = (vals.iter().sum::<f64>() / vals.len() as f64) as f32;
        m.mapv_inplace(|v| v - mean);
    }
    Some(u)
}

fn invalid(name: &'static str, reason: String) -> CoreError {
    CoreError::InvalidParameter { name, reason }
}

/// Two usable g-vectors: inside the spectrum, away from its centre, not collinear.
fn check_g(g: [[f64; 2]; 2], w: usize, h: usize) -> Result<[[f64; 2]; 2], CoreError> {
    let lowest = 2.0 / w.min(h) as f64;
    for (k, v) in g.iter().enumerate() {
        let len = v[0].hypot(v[1]);
        if !(v[0].abs() <= 0.5 && v[1].abs() <= 0.5 && len >= lowest) {
            return Err(invalid(
                "g",
                format!(
                    "g{} = ({:.4}, {:.4}) /px must lie between {lowest:.4} /px and Nyquist (0.5 /px)",
                    k + 1,
                    v[0],
                    v[1]
                ),
            ));
        }
    }
    let sin = (g[0][0] * g[1][1] - g[0][1] * g[1][0]) / (g[0][0].hypot(g[0][1]) * g[1][0].hypot(g[1][1]));
    if sin.abs() < 10f64.to_radians().sin() {
        return Err(invalid(
            "g",
            format!(
                "g1 and g2 are {:.1}° apart: nearly collinear, so they cannot give two strain directions",
                sin.abs().asin().to_degrees()
            ),
        ));
    }
    Ok(g)
}

/// The strongest Bragg peak and the strongest one at least 30° from it with a length within a
/// factor of two and a power within 1.5 decades (the best signal for both phases).
fn strongest_pair(img: ArrayView2<f32>) -> Result<[[f64; 2]; 2], CoreError> {
    let peaks = bragg_peaks(img, estimate_spacing(img)?)?;
    let (v1, g1) =
        *peaks.first().ok_or_else(|| CoreError::NoLattice { reason: "the spectrum has no Bragg peak".into() })?;
    let len = |g: [f64; 2]| g[0].hypot(g[1]);
    let g2 = peaks
        .iter()
        .skip(1)
        .take_while(|p| p.0 > v1 - 1.5)
        .map(|p| p.1)
        .find(|g| {
            let sin = (g1[0] * g[1] - g1[1] * g[0]).abs() / (len(g1) * len(*g));
            sin > 0.5 && (0.5..2.0).contains(&(len(*g) / len(g1)))
        })
        .ok_or_else(|| CoreError::NoLattice {
            reason: "only one direction of lattice fringes in the spectrum".into(),
        })?;
    Ok([g1, g2])
}

fn central_crop(img: ArrayView2<f32>, side: usize) -> ArrayView2<f32> {
    let (h, w) = img.dim();
    let (ch, cw) = (h.min(side), w.min(side));
    let (y0, x0) = ((h - ch) / 2, (w - cw) / 2);
    img.slice_move(ndarray::s![y0..y0 + ch, x0..x0 + cw])
}

fn check_region(r: Region, w: usize, h: usize) -> Result<Region, CoreError> {
    if r.x0 + 4 > r.x1 || r.y0 + 4 > r.y1 || r.x1 > w || r.y1 > h {
        return Err(invalid(
            "reference",
            format!(
                "x {}–{}, y {}–{} is not a region of at least 4×4 pixels inside the {w}×{h} image",
                r.x0, r.x1, r.y0, r.y1
            ),
        ));
    }
    Ok(r)
}

fn inset(w: usize, h: usize, b: usize) -> Region {
    if 2 * b + 8 <= w.min(h) {
        Region { x0: b, y0: b, x1: w - b, y1: h - b }
    } else {
        Region { x0: 0, y0: 0, x1: w, y1: h }
    }
}

mod fringe;
mod report;
mod self_test;
pub use report::{GReport, GpaSummary, MapStats};
pub use self_test::{Case as SelfTestCase, Check as SelfTestCheck, self_test};

#[cfg(test)]
mod tests;
