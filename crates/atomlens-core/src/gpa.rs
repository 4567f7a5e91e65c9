//! Geometric phase analysis (Hÿtch, Snoeck & Kilaas 1998).
//!
//! For each of two reciprocal vectors `g`, the spectrum is masked around `g` and transformed
//! back; `P_g(r) = arg H_g(r) − 2π g·r` is the geometric phase. Its gradient gives the local
//! reciprocal vector `g + ∇P_g/2π` at every pixel; with both, the local deformation gradient
//! against the reference lattice is `F = G_local⁻¹ G` (rows of `G` are the two g-vectors), split
//! into strain and rotation by [`crate::deformation::decompose`]. No linearisation: a 2 %
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

use crate::deformation::{Mat2, decompose, inverse, mul};
use crate::fft::{C32, Fft2, frequency};
use crate::image::check_usable;
use crate::lattice::lattice_vectors;
use crate::peaks::estimate_spacing;
use crate::CoreError;

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

/// A rectangle of pixels, half-open: `x0 ≤ x < x1`, `y0 ≤ y < y1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Region {
    /// First column.
    pub x0: usize,
    /// First row.
    pub y0: usize,
    /// One past the last column.
    pub x1: usize,
    /// One past the last row.
    pub y1: usize,
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
}

impl Default for GpaParams {
    fn default() -> Self {
        GpaParams { g: None, refine: true, mask: MaskShape::Gaussian, mask_radius: 0.25, reference: None, frame_angle: 0.0 }
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

/// Mean and standard deviation of the finite values of `map` inside `r`.
pub fn region_stats(map: ArrayView2<f32>, r: Region) -> (f64, f64) {
    let vals: Vec<f64> = (r.y0..r.y1)
        .flat_map(|y| (r.x0..r.x1).map(move |x| (y, x)))
        .map(|(y, x)| map[[y, x]] as f64)
        .filter(|v| v.is_finite())
        .collect();
    let n = vals.len().max(1) as f64;
    let mean = vals.iter().sum::<f64>() / n;
    (mean, (vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt())
}

/// Amplitude (relative to the 95th percentile) below which a fringe counts as absent.
const MIN_AMPLITUDE: f32 = 0.2;

/// Run GPA on `img` (see the module docs).
pub fn gpa(img: ArrayView2<f32>, p: &GpaParams) -> Result<GpaResult, CoreError> {
    check_usable(img)?;
    let (h, w) = img.dim();
    if h < 32 || w < 32 {
        return Err(CoreError::TooSmall { width: w, height: h, min: 32, what: "GPA" });
    }
    if !(p.mask_radius > 0.0 && p.mask_radius <= 1.0) {
        return Err(invalid("mask_radius", format!("{} must be in (0, 1] (a fraction of |g|)", p.mask_radius)));
    }
    if !p.frame_angle.is_finite() {
        return Err(invalid("frame_angle", "must be a finite angle".into()));
    }
    let g_initial = match p.g {
        Some(g) => check_g(g, w, h)?,
        None => {
            let l = lattice_vectors(img, estimate_spacing(img)?)?;
            check_g([l.g1, l.g2], w, h)?
        }
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

    let plan = Fft2::new(h, w);
    let finite: Vec<f64> = img.iter().filter(|v| v.is_finite()).map(|&v| v as f64).collect();
    let mean = (finite.iter().sum::<f64>() / finite.len() as f64) as f32;
    let mut spectrum = img.mapv(|v| C32::new(if v.is_finite() { v - mean } else { 0.0 }, 0.0));
    plan.forward(&mut spectrum);

    let mut g = g_initial;
    let mut fringes = Vec::with_capacity(2);
    for (k, gk) in g.iter_mut().enumerate() {
        let mut z = demodulated(&spectrum, &plan, *gk, p.mask, mask_radius);
        let mut amp = z.mapv(|c| c.norm());
        let level = percentile95(&amp);
        if !(level > 0.0) {
            return Err(CoreError::NoLattice { reason: format!("no fringes at g{} (the masked spectrum is empty)", k + 1) });
        }
        amp.mapv_inplace(|a| a / level);
        if p.refine {
            for _ in 0..4 {
                let dg = mean_gradient(&z, &amp, reference)
                    .ok_or_else(|| CoreError::NoLattice {
                        reason: format!("the reference region shows no g{} fringes; choose a crystalline area", k + 1),
                    })?
                    .map(|v| v / TAU);
                *gk = [gk[0] + dg[0], gk[1] + dg[1]];
                // A shift of a small fraction of an FFT pixel only re-references the phase;
                // a larger one re-centres the mask.
                if (dg[0] * w as f64).abs().max((dg[1] * h as f64).abs()) < 0.02 {
                    remove_ramp(&mut z, dg);
                    break;
                }
                z = demodulated(&spectrum, &plan, *gk, p.mask, mask_radius);
            }
        }
        fringes.push((z, amp));
    }
    let (f2, f1) = (fringes.pop().expect("two fringes"), fringes.pop().expect("two fringes"));

    let gm: Mat2 = g;
    let mut maps: [Array2<f32>; 4] = std::array::from_fn(|_| Array2::from_elem((h, w), f32::NAN));
    let mut valid = 0usize;
    {
        let rows: Vec<(usize, [Vec<f32>; 4], usize)> = rows_map(h, |y| {
            let mut out: [Vec<f32>; 4] = std::array::from_fn(|_| vec![f32::NAN; w]);
            let mut n = 0;
            for x in 0..w {
                if f1.1[[y, x]] < MIN_AMPLITUDE || f2.1[[y, x]] < MIN_AMPLITUDE {
                    continue;
                }
                let (d1, d2) = (phase_gradient(&f1.0, y, x), phase_gradient(&f2.0, y, x));
                let local: Mat2 = [
                    [gm[0][0] + d1[0] / TAU, gm[0][1] + d1[1] / TAU],
                    [gm[1][0] + d2[0] / TAU, gm[1][1] + d2[1] / TAU],
                ];
                let Some(inv) = inverse(local) else { continue };
                let s = decompose(mul(inv, gm)).in_frame(p.frame_angle);
                for (o, v) in out.iter_mut().zip([s.exx, s.eyy, s.exy, s.rotation]) {
                    o[x] = v as f32;
                }
                n += 1;
            }
            (y, out, n)
        });
        for (y, out, n) in rows {
            valid += n;
            for (map, row) in maps.iter_mut().zip(out) {
                map.row_mut(y).assign(&ndarray::ArrayView1::from(&row));
            }
        }
    }
    let [exx, eyy, exy, rotation] = maps;
    let phase = [f1.0.mapv(|c| c.arg()), f2.0.mapv(|c| c.arg())];
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
    })
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
                format!("g{} = ({:.4}, {:.4}) /px must lie between {lowest:.4} /px and Nyquist (0.5 /px)", k + 1, v[0], v[1]),
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
    if 2 * b + 8 <= w.min(h) { Region { x0: b, y0: b, x1: w - b, y1: h - b } } else { Region { x0: 0, y0: 0, x1: w, y1: h } }
}

/// `IFFT(spectrum · mask(k − g)) · e^{−2πi g·r}`: the fringe of `g` with its carrier removed.
fn demodulated(spectrum: &Array2<C32>, plan: &Fft2, g: [f64; 2], shape: MaskShape, radius: f64) -> Array2<C32> {
    let (h, w) = spectrum.dim();
    let mut z = Array2::<C32>::zeros((h, w));
    // Only the mask's support is filled: a box of ±reach around g, wrapped.
    let reach = match shape {
        MaskShape::Gaussian => 3.0 * radius, // 6 σ
        MaskShape::Cosine => radius,
    };
    let span = |n: usize| ((reach * n as f64).ceil() as i64 + 1).min(n as i64 / 2);
    let (sx, sy) = (span(w), span(h));
    let (cx, cy) = ((g[0] * w as f64).round() as i64, (g[1] * h as f64).round() as i64);
    let (wi, hi) = (w as i64, h as i64);
    for dy in -sy..=sy {
        let ky = (cy + dy).rem_euclid(hi) as usize;
        let fy = wrap(frequency(ky, h) - g[1]);
        for dx in -sx..=sx {
            let kx = (cx + dx).rem_euclid(wi) as usize;
            let d = wrap(frequency(kx, w) - g[0]).hypot(fy);
            let m = match shape {
                MaskShape::Gaussian => (-2.0 * (d / radius).powi(2)).exp(),
                MaskShape::Cosine if d < radius => (std::f64::consts::FRAC_PI_2 * d / radius).cos().powi(2),
                MaskShape::Cosine => 0.0,
            };
            z[[ky, kx]] = spectrum[[ky, kx]] * m as f32;
        }
    }
    plan.inverse(&mut z);
    remove_ramp(&mut z, g);
    z
}

fn wrap(f: f64) -> f64 {
    f - f.round()
}

/// Multiply by `e^{−2πi g·r}` (separable: one phasor per column and per row).
fn remove_ramp(z: &mut Array2<C32>, g: [f64; 2]) {
    let (h, w) = z.dim();
    let phasor = |f: f64, i: usize| {
        let (s, c) = (-TAU * ((f * i as f64).fract())).sin_cos();
        C32::new(c as f32, s as f32)
    };
    let px: Vec<C32> = (0..w).map(|x| phasor(g[0], x)).collect();
    let py: Vec<C32> = (0..h).map(|y| phasor(g[1], y)).collect();
    let slice = z.as_slice_mut().expect("standard layout");
    let apply = |(y, row): (usize, &mut [C32])| {
        for (v, p) in row.iter_mut().zip(&px) {
            *v *= p * py[y];
        }
    };
    #[cfg(feature = "parallel")]
    slice.par_chunks_mut(w).enumerate().for_each(apply);
    #[cfg(not(feature = "parallel"))]
    slice.chunks_mut(w).enumerate().for_each(apply);
}

/// `∇P` at (y, x) in radians per pixel: phase of neighbouring products, central inside, one-sided
/// at the edges.
fn phase_gradient(z: &Array2<C32>, y: usize, x: usize) -> [f64; 2] {
    let (h, w) = z.dim();
    let d = |a: C32, b: C32, span: usize| ((a * b.conj()).arg() / span as f32) as f64;
    let (xl, xr) = (x.saturating_sub(1), (x + 1).min(w - 1));
    let (yl, yr) = (y.saturating_sub(1), (y + 1).min(h - 1));
    [d(z[[y, xr]], z[[y, xl]], xr - xl), d(z[[yr, x]], z[[yl, x]], yr - yl)]
}

/// Mean phase gradient over the strong-fringe pixels of `r`.
fn mean_gradient(z: &Array2<C32>, amp: &Array2<f32>, r: Region) -> Option<[f64; 2]> {
    let (mut sum, mut n) = ([0.0, 0.0], 0usize);
    for y in r.y0..r.y1 {
        for x in r.x0..r.x1 {
            if amp[[y, x]] >= MIN_AMPLITUDE {
                let d = phase_gradient(z, y, x);
                sum = [sum[0] + d[0], sum[1] + d[1]];
                n += 1;
            }
        }
    }
    (n > 0).then(|| [sum[0] / n as f64, sum[1] / n as f64])
}

/// 95th percentile of a subsample (every 7th value: exact enough for a threshold).
fn percentile95(a: &Array2<f32>) -> f32 {
    let mut v: Vec<f32> = a.iter().step_by(7).copied().filter(|v| v.is_finite()).collect();
    if v.is_empty() {
        return 0.0;
    }
    let k = (v.len() - 1) * 95 / 100;
    *v.select_nth_unstable_by(k, f32::total_cmp).1
}

/// `f(y)` for every row, in parallel when the feature is on.
fn rows_map<T: Send>(h: usize, f: impl Fn(usize) -> T + Sync + Send) -> Vec<T> {
    #[cfg(feature = "parallel")]
    return (0..h).into_par_iter().map(f).collect();
    #[cfg(not(feature = "parallel"))]
    return (0..h).map(f).collect();
}

#[cfg(test)]
mod tests;
