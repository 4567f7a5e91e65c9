//! What lattice an image (or a region of it) shows, from local spectra: the spacing between
//! columns, the lattice vectors, and how sure that is.
//!
//! A global spectrum or autocorrelation of a field of particles on a support is dominated by
//! the particles' envelopes and the support, not by their lattices (a 2048² field read as a
//! "458 px spacing"). Here the image is cut into tiles of `t²` px (a power of two, ≤ 256), each
//! Hann-windowed with its own mean removed, and their power spectra averaged (Welch): envelopes
//! larger than a tile vanish, and a lattice anywhere in the image adds up.
//!
//! - **Bragg peaks** are local maxima that stand far above the median power of their own annulus
//!   (`|g|` ± ½ bin): a lattice puts sharp, azimuthally narrow spots there; noise, an amorphous
//!   support and envelopes spread their power around the whole ring. The threshold falls with
//!   the number of tiles averaged (the noise of a mean of `M` spectra is `√M` times tighter).
//! - **Kind**: two non-collinear peak pairs make a zone axis (a 2-D lattice: columns resolved);
//!   one pair is fringes only (a particle off axis, or one set of planes); none is no lattice.
//! - **Spacing**: the nearest strong peak of the tiles' mean autocorrelation (the inverse
//!   transform of the mean spectrum), high-passed below half the lowest Bragg frequency so the
//!   particles' envelopes inside a tile do not count, by [`super::spacing`]'s rule (the nearest
//!   maximum at least 0.3 × the strongest: a perovskite's A–B distance, not A–A).
//! - **Plausibility**: a spacing below 2.5 px cannot hold a fitted column, above a quarter of a
//!   tile it cannot be told from an envelope; with a calibration, Bragg spacings below 0.1 nm (a
//!   metal's shortest is ~0.12 nm) or above the Nyquist limit are noise.
//! - **Coverage**: the fraction of tiles in which the main peaks stand out on their own: near 1
//!   for a crystal that fills the image, low for a field of particles on a support.
use ndarray::{Array2, ArrayView2, s};
use serde::{Deserialize, Serialize};

use super::spacing::nearest_strong_peak;
use super::vectors::{Lattice, from_reciprocal};
use crate::CoreError;
use crate::image::check_usable;
use crate::math::fft::{C32, Fft2, frequency};

/// Largest tile side.
pub const MAX_TILE: usize = 256;

/// A Bragg peak of a spectrum.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BraggPeak {
    /// Reciprocal vector (cycles/px, `[x, y]`), one of the `±g` pair.
    pub g: [f64; 2],
    /// Its power over the median of its annulus (how far it stands out).
    pub ratio: f64,
    /// Its power over the strongest peak's (how strong a reflection it is).
    pub power: f64,
}

impl BraggPeak {
    /// `|g|` (cycles/px).
    pub fn length(&self) -> f64 {
        self.g[0].hypot(self.g[1])
    }
}

/// What the spectra show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LatticeKind {
    /// Two or more directions of fringes: a 2-D lattice, columns resolved.
    ZoneAxis,
    /// One direction of fringes only: off axis, or one set of planes; columns not resolved.
    Fringes,
    /// No Bragg peak.
    None,
}

/// The lattice an image or region shows (see the module docs).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LatticeAnalysis {
    /// Zone axis, fringes or none.
    pub kind: LatticeKind,
    /// Nearest-neighbour distance between columns (px), when a lattice shows.
    pub spacing: Option<f64>,
    /// The lattice vectors, on a zone axis.
    pub lattice: Option<Lattice>,
    /// The Bragg peaks found, strongest first (one of each `±g`).
    pub peaks: Vec<BraggPeak>,
    /// How far the strongest peak stands above the detection threshold, 0 (at it) … 1 (100× it).
    pub confidence: f64,
    /// Fraction of the tiles in which the main peaks stand out on their own.
    pub coverage: f64,
    /// Tile side (px) and number of tiles averaged.
    pub tile: usize,
    /// Tiles averaged.
    pub tiles: usize,
    /// Why there is no lattice, or what was doubtful.
    pub notes: Vec<String>,
}

impl LatticeAnalysis {
    /// In words, as the CLI and the page print it: "zone axis, spacing 8.12 px (0.240 nm)",
    /// "fringes only (off a zone axis)…", "no lattice"; nm where `pixel_nm` calibrates it.
    pub fn summary(&self, pixel_nm: Option<f64>) -> String {
        let nm = |d: f64| pixel_nm.map(|p| format!(" ({:.3} nm)", d * p)).unwrap_or_default();
        let spacing = self.spacing.map(|d| format!(", spacing {d:.2} px{}", nm(d))).unwrap_or_default();
        match self.kind {
            LatticeKind::ZoneAxis => format!("zone axis{spacing}"),
            LatticeKind::Fringes => format!("fringes only (off a zone axis){spacing}"),
            LatticeKind::None => "no lattice".into(),
        }
    }
}

/// Analyse the whole image. `pixel_nm`: the calibration, for the plausibility check.
pub fn analyse(img: ArrayView2<f32>, pixel_nm: Option<f64>) -> Result<LatticeAnalysis, CoreError> {
    check_usable(img)?;
    let (h, w) = img.dim();
    if h < 16 || w < 16 {
        return Err(CoreError::TooSmall { width: w, height: h, min: 16, what: "estimating the lattice" });
    }
    let (lo, hi) = crate::image::stats::finite_range(img);
    if hi - lo <= 1e-6 * hi.abs().max(lo.abs()).max(1e-30) {
        return Err(CoreError::NoLattice { reason: "the image has no contrast (all pixels equal)".into() });
    }
    let t = tile_side(h, w);
    // Side by side when many fit (enough to average, and cheap); but a Hann window is blind at
    // its tile's edges, so where that finds no confident lattice everywhere (particles of a field
    // can sit at the tiles' corners), again with tiles overlapping by half (Welch's usual).
    let few = h / t < 4 || w / t < 4;
    let a = welch(img, t, if few { t / 2 } else { t }, pixel_nm);
    if few || (a.spacing.is_some() && a.coverage >= FILLED) { Ok(a) } else { Ok(welch(img, t, t / 2, pixel_nm)) }
}

/// Coverage above which side-by-side tiles are trusted: the lattice stands out in nearly every
/// tile, so no part of it can have hidden at the tiles' edges.
const FILLED: f64 = 0.9;

/// The mean spectrum of `t²` tiles `step` apart (the last flush with the far edge), analysed.
fn welch(img: ArrayView2<f32>, t: usize, step: usize, pixel_nm: Option<f64>) -> LatticeAnalysis {
    let (h, w) = img.dim();
    let starts = |n: usize| -> Vec<usize> {
        let mut v: Vec<usize> = (0..=n - t).step_by(step).collect();
        if *v.last().unwrap_or(&0) + t < n {
            v.push(n - t);
        }
        v
    };
    let origins: Vec<(usize, usize)> =
        starts(h).iter().flat_map(|&y| starts(w).into_iter().map(move |x| (y, x))).collect();
    let plan = Fft2::new(t, t);
    let hann: Vec<f32> =
        (0..t).map(|i| (0.5 - 0.5 * (std::f64::consts::TAU * i as f64 / t as f64).cos()) as f32).collect();
    let spectra: Vec<Array2<f32>> = crate::math::par::map(origins.len(), |k| {
        let (y0, x0) = origins[k];
        tile_power(img.slice(s![y0..y0 + t, x0..x0 + t]), &hann, &plan)
    });
    let mut mean = Array2::<f32>::zeros((t, t));
    for p in &spectra {
        mean += p;
    }
    mean /= spectra.len() as f32;
    let ring = rings(t);
    let mut a = from_spectrum(&mean, spectra.len(), pixel_nm, 0.0, &plan, &ring);
    a.coverage = coverage(&spectra, &a.peaks, &ring);
    a
}

/// Analyse one region of `img`: `weight` (same shape, 0…1) apodises it, so only the region's
/// pixels (a particle, smoothly cut out) count; the spectrum is zero-padded to a power of two.
/// `longest`: the longest period (px) that can be a lattice's here; a region's own outline and
/// facets put peaks at lower frequencies than a tile's envelope does.
pub fn analyse_region(
    img: ArrayView2<f32>,
    weight: ArrayView2<f32>,
    pixel_nm: Option<f64>,
    longest: Option<f64>,
) -> Result<LatticeAnalysis, CoreError> {
    let (h, w) = img.dim();
    let total: f64 = weight.iter().map(|&v| v as f64).sum();
    if total < 64.0 {
        return Err(CoreError::TooSmall { width: w, height: h, min: 8, what: "a region's lattice" });
    }
    let mean = img.iter().zip(weight.iter()).filter(|(v, _)| v.is_finite()).map(|(&v, &u)| (v * u) as f64).sum::<f64>()
        / total;
    let t = (h.max(w)).next_power_of_two().max(32);
    let mut c = Array2::<C32>::zeros((t, t));
    for ((y, x), &v) in img.indexed_iter() {
        let v = if v.is_finite() { v - mean as f32 } else { 0.0 };
        c[[y, x]] = C32::new(v * weight[[y, x]], 0.0);
    }
    let plan = Fft2::new(t, t);
    plan.forward(&mut c);
    let power = c.mapv(|z| z.norm_sqr());
    let g_min = longest.filter(|&l| l > 0.0).map_or(0.0, |l| 1.0 / l);
    Ok(from_spectrum(&power, 1, pixel_nm, g_min, &plan, &rings(t)))
}

/// The tile side: the largest power of two ≤ 256 that fits in the image (tiles then overlap by
/// half where few fit), so a lattice of up to a quarter of it still shows four periods a tile.
fn tile_side(h: usize, w: usize) -> usize {
    let n = h.min(w);
    let mut t = MAX_TILE;
    while t > 16 && t > n {
        t /= 2;
    }
    t
}

/// The power spectrum (unshifted) of one mean-removed, Hann-windowed tile.
fn tile_power(tile: ArrayView2<f32>, hann: &[f32], plan: &Fft2) -> Array2<f32> {
    let sum: f64 = tile.rows().into_iter().map(|r| crate::image::stats::row_sum(r).0).sum();
    let mean = (sum / tile.len() as f64) as f32;
    let mut c = Array2::<C32>::zeros(tile.dim());
    for ((row, out), &wy) in tile.rows().into_iter().zip(c.rows_mut()).zip(hann) {
        for ((o, &v), &wx) in out.into_iter().zip(row).zip(hann) {
            *o = C32::new(if v.is_finite() { (v - mean) * wy * wx } else { 0.0 }, 0.0);
        }
    }
    plan.forward(&mut c);
    c.mapv(|z| z.norm_sqr())
}

/// Frequency (cycles/px, `[x, y]`) of spectrum index `(y, x)` on a `t`-grid.
fn freq(y: usize, x: usize, t: usize) -> [f64; 2] {
    [frequency(x, t), frequency(y, t)]
}

/// The spectrum pixels (row-major indices) of every annulus one bin wide on a `t`-grid, by
/// radius in bins.
fn rings(t: usize) -> Vec<Vec<u32>> {
    let mut rings: Vec<Vec<u32>> = vec![Vec::new(); t];
    for y in 0..t {
        for x in 0..t {
            let f = freq(y, x, t);
            let r = ((f[0] * f[0] + f[1] * f[1]).sqrt() * t as f64).round() as usize;
            if r < t {
                rings[r].push((y * t + x) as u32);
            }
        }
    }
    rings
}

/// The median of `p` over `ring`.
fn ring_median(p: &[f32], ring: &[u32]) -> f32 {
    let mut v: Vec<f32> = ring.iter().map(|&i| p[i as usize]).collect();
    if v.is_empty() {
        return f32::NAN;
    }
    let k = v.len() / 2;
    *v.select_nth_unstable_by(k, f32::total_cmp).1
}

/// The median power of every annulus one bin wide, by radius in bins.
fn annulus_medians(p: &Array2<f32>, rings: &[Vec<u32>]) -> Vec<f32> {
    let p = p.as_slice().expect("standard layout");
    rings.iter().map(|r| ring_median(p, r)).collect()
}

/// The detection threshold on peak / annulus median for a mean of `m` spectra: the tail of a
/// (scaled) χ² with `2m` degrees of freedom narrows as `1/√m`.
fn threshold(m: usize) -> f64 {
    (20.0 / (m as f64).sqrt()).max(6.0)
}

/// Peaks, lattice and spacing from a mean power spectrum of `m` tiles on `plan`'s grid.
/// `g_min`: the lowest frequency (cycles/px) that may be a Bragg peak, beyond the tile's own limit.
fn from_spectrum(
    p: &Array2<f32>,
    m: usize,
    pixel_nm: Option<f64>,
    g_min: f64,
    plan: &Fft2,
    ring: &[Vec<u32>],
) -> LatticeAnalysis {
    let t = p.nrows();
    let rings = annulus_medians(p, ring);
    let thr = threshold(m);
    let mut notes = Vec::new();
    // Plausible frequencies: beyond 4 cycles per tile (envelopes) and below 0.45 cycles/px (the
    // Nyquist limit, with the window's spread); with a calibration, d ≥ 0.1 nm.
    let g_max = match pixel_nm {
        Some(px) if px > 0.0 => 0.45f64.min(px / 0.1),
        _ => 0.45,
    };
    let g_min = g_min.max(4.0 / t as f64);
    let mut peaks: Vec<(f64, usize, usize)> = Vec::new();
    for y in 0..t {
        for x in 0..t {
            let g = freq(y, x, t);
            let len = (g[0] * g[0] + g[1] * g[1]).sqrt();
            // One of each ±g pair (the spectrum of a real image is symmetric).
            if len < g_min || len > g_max || g[1] < 0.0 || (g[1] == 0.0 && g[0] < 0.0) {
                continue;
            }
            let v = p[[y, x]];
            let r = rings[(len * t as f64).round() as usize];
            if !(r > 0.0) || ((v / r) as f64) < thr {
                continue;
            }
            let is_max = (-1i64..=1).all(|dy| {
                (-1i64..=1).all(|dx| {
                    (dy == 0 && dx == 0)
                        || p[[
                            (y as i64 + dy).rem_euclid(t as i64) as usize,
                            (x as i64 + dx).rem_euclid(t as i64) as usize,
                        ]] < v
                })
            });
            if is_max {
                peaks.push(((v / r) as f64, y, x));
            }
        }
    }
    // Strongest reflections first (the ratio only says a peak is real: rings differ in noise).
    peaks.sort_by(|a, b| p[[b.1, b.2]].total_cmp(&p[[a.1, a.2]]));
    let top = peaks.first().map_or(1.0, |q| p[[q.1, q.2]] as f64);
    let at =
        |y: i64, x: i64| (p[[y.rem_euclid(t as i64) as usize, x.rem_euclid(t as i64) as usize]] as f64).max(1e-30).ln();
    let peaks: Vec<BraggPeak> = peaks
        .iter()
        .take(12)
        .map(|&(ratio, y, x)| {
            // Sub-bin position by a parabola through the log power.
            let (yi, xi) = (y as i64, x as i64);
            let par = |l: f64, c: f64, r: f64| {
                let den = l - 2.0 * c + r;
                if den.abs() > 1e-12 { (0.5 * (l - r) / den).clamp(-0.5, 0.5) } else { 0.0 }
            };
            let oy = par(at(yi - 1, xi), at(yi, xi), at(yi + 1, xi));
            let ox = par(at(yi, xi - 1), at(yi, xi), at(yi, xi + 1));
            let g = freq(y, x, t);
            BraggPeak { g: [g[0] + ox / t as f64, g[1] + oy / t as f64], ratio, power: p[[y, x]] as f64 / top }
        })
        .collect();
    let confidence = peaks.iter().map(|q| ((q.ratio / thr).log10() / 2.0).clamp(0.0, 1.0)).fold(0.0, f64::max);
    // Two shortest non-collinear peaks among the strong ones (within 1.5 decades of the best).
    let strong: Vec<BraggPeak> = peaks.iter().copied().filter(|q| q.power > 10f64.powf(-1.5)).collect();
    let lattice = zone_axis(&strong);
    let kind = match (&lattice, peaks.is_empty()) {
        (Some(_), _) => LatticeKind::ZoneAxis,
        (None, false) => LatticeKind::Fringes,
        (None, true) => LatticeKind::None,
    };
    let spacing = match kind {
        LatticeKind::None => {
            notes.push(format!(
                "no Bragg peak stands {thr:.0}× above its ring of the spectrum (noise, an amorphous support, or \
                 particles off axis)"
            ));
            if t < MAX_TILE {
                notes.push(format!(
                    "or the image is too small for its lattice: its {t} px tiles show four periods only of a lattice \
                     finer than {} px",
                    t / 4
                ));
            }
            None
        }
        _ => {
            let g_low = strong.iter().map(BraggPeak::length).fold(f64::MAX, f64::min);
            let s = spacing_from(p, plan, 0.5 * g_low);
            match s {
                Some(d) if d >= 2.5 && d <= t as f64 / 4.0 => Some(d),
                Some(d) => {
                    notes.push(format!("the spacing {d:.1} px is implausible (below 2.5 px or above {} px)", t / 4));
                    None
                }
                None => {
                    notes.push("the autocorrelation shows no periodic peak".into());
                    None
                }
            }
        }
    };
    if kind == LatticeKind::Fringes {
        notes.push("one direction of lattice fringes only: off a zone axis, columns are not resolved".into());
    }
    LatticeAnalysis { kind, spacing, lattice, peaks, confidence, coverage: 0.0, tile: t, tiles: m, notes }
}

/// A lattice from the two shortest non-collinear peaks (> 15° apart), when there are two.
fn zone_axis(strong: &[BraggPeak]) -> Option<Lattice> {
    let mut by_len = strong.to_vec();
    by_len.sort_by(|a, b| a.length().total_cmp(&b.length()));
    let g1 = by_len.first()?.g;
    let g2 = by_len
        .iter()
        .skip(1)
        .map(|q| q.g)
        .find(|g| (g1[0] * g[1] - g1[1] * g[0]).abs() / (g1[0].hypot(g1[1]) * g[0].hypot(g[1])) > 0.25)?;
    Some(from_reciprocal(g1, g2))
}

/// The nearest-neighbour spacing from the inverse transform of `p` with frequencies below `cut`
/// (cycles/px) removed.
fn spacing_from(p: &Array2<f32>, plan: &Fft2, cut: f64) -> Option<f64> {
    let t = p.nrows();
    let mut c = Array2::from_shape_fn((t, t), |(y, x)| {
        let g = freq(y, x, t);
        C32::new(if g[0].hypot(g[1]) < cut { 0.0 } else { p[[y, x]] }, 0.0)
    });
    plan.inverse(&mut c);
    nearest_strong_peak(&c.mapv(|v| v.re), (t / 3) as i64).ok()
}

/// The fraction of `spectra` in which one of the three strongest `peaks` stands ≥ 10× above its
/// own annulus' median.
fn coverage(spectra: &[Array2<f32>], peaks: &[BraggPeak], rings: &[Vec<u32>]) -> f64 {
    if spectra.is_empty() || peaks.is_empty() {
        return 0.0;
    }
    let t = spectra[0].nrows() as i64;
    let seen = crate::math::par::map(spectra.len(), |k| {
        let p = spectra[k].as_slice().expect("standard layout");
        peaks.iter().take(3).any(|q| {
            let (x, y) = ((q.g[0] * t as f64).round() as i64, (q.g[1] * t as f64).round() as i64);
            let v = (-1..=1)
                .flat_map(|dy| (-1..=1).map(move |dx| (dy, dx)))
                .map(|(dy, dx)| p[((y + dy).rem_euclid(t) * t + (x + dx).rem_euclid(t)) as usize])
                .fold(0.0f32, f32::max);
            let med = rings.get((q.length() * t as f64).round() as usize).map_or(f32::NAN, |r| ring_median(p, r));
            med > 0.0 && v / med >= 10.0
        })
    });
    seen.iter().filter(|&&b| b).count() as f64 / spectra.len() as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{TrueColumn, add_gaussians, square_lattice};

    #[test]
    fn a_lattice_filling_the_image_is_a_zone_axis_everywhere() {
        let (img, _) = square_lattice(40, 14.0, 2.5);
        let a = analyse(img.view(), None).unwrap();
        assert_eq!(a.kind, LatticeKind::ZoneAxis);
        assert!((a.spacing.unwrap() - 14.0).abs() <= 0.75, "{a:?}");
        let (la, lb, angle) = a.lattice.unwrap().lengths_and_angle();
        assert!((la - 14.0).abs() < 0.3 && (lb - 14.0).abs() < 0.3 && (angle - 90.0).abs() < 1.5, "{la} {lb} {angle}");
        assert!(a.coverage > 0.9, "coverage {}", a.coverage);
    }

    /// Two small particles on a flat, noisy support in a large field: the spacing is the
    /// particles' lattice, not their envelopes' separation, and most tiles show no lattice.
    /// Particles that sit where side-by-side tiles meet (their Hann windows are blind there):
    /// the demo particle, centred in its 512² image, tiled 2 × 2, gives the same spacing as one
    /// (found by the half-overlapping tiles the first pass falls back to).
    #[test]
    fn particles_at_the_tiles_corners_are_not_missed() {
        let p = crate::synth::NanoparticleParams {
            size: 512,
            diameter_nm: 4.0,
            support_ripple: 0.05,
            seed: 7,
            ..Default::default()
        };
        let s = crate::synth::nanoparticle(&p).unwrap();
        let px = s.image.calibration.pixel_nm();
        let one = analyse(s.image.view(), px).unwrap().spacing.unwrap();
        let field = Array2::from_shape_fn((1024, 1024), |(y, x)| s.image.data[[y % 512, x % 512]]);
        let a = analyse(field.view(), px).unwrap();
        assert_eq!(a.kind, LatticeKind::ZoneAxis, "{a:?}");
        assert!((a.spacing.unwrap() - one).abs() < 0.05 * one, "{:?} vs {one}", a.spacing);
    }

    #[test]
    fn particles_in_a_large_field_give_their_lattice_not_their_envelopes() {
        let mut img = Array2::from_elem((1024, 1024), 10.0f32);
        let mut cols = Vec::new();
        for (cx, cy) in [(300.0, 280.0), (700.0, 690.0)] {
            for i in -6i32..=6 {
                for j in -6i32..=6 {
                    let (x, y) = (cx + 9.0 * i as f64, cy + 9.0 * j as f64);
                    if (x - cx).hypot(y - cy) < 55.0 {
                        cols.push(TrueColumn { x, y, sigma: 1.6, peak: 40.0, atoms: 1, m_atoms: 0 });
                    }
                }
            }
        }
        add_gaussians(&mut img, &cols);
        let mut s = 3u32;
        img.mapv_inplace(|v| {
            s = s.wrapping_mul(1664525).wrapping_add(1013904223);
            v + ((s >> 8) as f32 / 16777216.0 - 0.5) * 4.0
        });
        let a = analyse(img.view(), None).unwrap();
        assert_eq!(a.kind, LatticeKind::ZoneAxis, "{a:?}");
        assert!((a.spacing.unwrap() - 9.0).abs() <= 0.75, "{a:?}");
        assert!(a.coverage < 0.3, "coverage {}", a.coverage);
    }

    #[test]
    fn noise_is_no_lattice_and_says_why() {
        let mut s = 1u32;
        let img = Array2::from_shape_fn((256, 256), |_| {
            s = s.wrapping_mul(1664525).wrapping_add(1013904223);
            (s >> 8) as f32 / 16777216.0
        });
        let a = analyse(img.view(), None).unwrap();
        assert_eq!(a.kind, LatticeKind::None, "{a:?}");
        assert!(a.spacing.is_none() && !a.notes.is_empty());
    }

    #[test]
    fn fringes_in_one_direction_are_not_a_zone_axis() {
        let img = Array2::from_shape_fn((256, 256), |(_, x)| (x as f32 * std::f32::consts::TAU / 7.0).cos());
        let a = analyse(img.view(), None).unwrap();
        assert_eq!(a.kind, LatticeKind::Fringes, "{a:?}");
    }

    /// With a calibration, a "lattice" finer than 0.1 nm is not believed.
    #[test]
    fn calibrated_spacings_below_an_angstrom_are_refused() {
        let (img, _) = square_lattice(27, 9.0, 1.5);
        assert_eq!(analyse(img.view(), Some(0.01)).unwrap().kind, LatticeKind::None);
        assert_eq!(analyse(img.view(), Some(0.03)).unwrap().kind, LatticeKind::ZoneAxis);
    }
}
