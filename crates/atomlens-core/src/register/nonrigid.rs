//! Non-rigid registration of a series: after the rigid shifts, a smooth displacement field per
//! frame removes scan distortions before averaging (the idea of Yankovich et al. 2014 and
//! Berkels & Liebscher 2019; here by local correlation rather than their variational fit).
//!
//! - The field lives on a grid of nodes, the centres of overlapping tiles (side `tile`, half a
//!   tile apart), and between nodes is bilinear (a first-order B-spline), constant beyond the
//!   outer nodes.
//! - Each round, every frame is resampled by its current shift + field, each tile is correlated
//!   with the same tile of the current average (Hann-windowed, upsampled peak within half a
//!   lattice spacing of zero, so a crystal's translations cannot alias), and the residual shifts
//!   are smoothed onto the nodes by weighted least squares with a membrane penalty
//!   (`Σ w (v − d)² + λ Σ (v_n − v_m)²`, `w` the squared normalised correlation, so empty or
//!   featureless tiles follow their neighbours) and added to the field.
//! - The mean field over the frames is removed at the end, so the average keeps the frames' mean
//!   geometry, as the rigid shifts keep their mean position.
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use super::rigid::{Registered, bilinear, register_series, shift_between, windowed_spectrum};
use crate::CoreError;
use crate::math::fft::Fft2;
use crate::math::par::map;

/// Parameters of [`register_series_nonrigid`].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NonrigidParams {
    /// Tile side (px); `None`: four lattice spacings, 32–128 px.
    pub tile: Option<usize>,
    /// Rounds of tile correlation against the improving average.
    pub rounds: usize,
    /// Membrane penalty relative to the mean tile weight: larger is smoother.
    pub smoothness: f64,
}

impl Default for NonrigidParams {
    fn default() -> Self {
        Self { tile: None, rounds: 3, smoothness: 0.1 }
    }
}

/// A displacement field on the node grid: `(dx, dy)` per node (px).
#[derive(Debug, Clone)]
pub struct Field {
    ys: Vec<f64>,
    xs: Vec<f64>,
    v: Array2<[f64; 2]>,
}

impl Field {
    fn zeros(ys: &[f64], xs: &[f64]) -> Self {
        Self { ys: ys.to_vec(), xs: xs.to_vec(), v: Array2::from_elem((ys.len(), xs.len()), [0.0; 2]) }
    }

    /// The displacement at `(x, y)`, bilinear between nodes.
    pub fn at(&self, x: f64, y: f64) -> [f64; 2] {
        let locate = |nodes: &[f64], t: f64| -> (usize, f64) {
            if nodes.len() == 1 || t <= nodes[0] {
                return (0, 0.0);
            }
            let last = nodes.len() - 1;
            if t >= nodes[last] {
                return (last - 1, 1.0);
            }
            let i = nodes.partition_point(|&n| n <= t) - 1;
            (i, (t - nodes[i]) / (nodes[i + 1] - nodes[i]))
        };
        let ((i, ty), (j, tx)) = (locate(&self.ys, y), locate(&self.xs, x));
        let (i1, j1) = ((i + 1).min(self.ys.len() - 1), (j + 1).min(self.xs.len() - 1));
        let mix = |k: usize| {
            let top = self.v[[i, j]][k] * (1.0 - tx) + self.v[[i, j1]][k] * tx;
            let bottom = self.v[[i1, j]][k] * (1.0 - tx) + self.v[[i1, j1]][k] * tx;
            top * (1.0 - ty) + bottom * ty
        };
        [mix(0), mix(1)]
    }

    /// RMS displacement over the nodes (px).
    pub fn rms(&self) -> f64 {
        (self.v.iter().map(|d| d[0] * d[0] + d[1] * d[1]).sum::<f64>() / self.v.len() as f64).sqrt()
    }
}

/// A non-rigidly registered series: the rigid result with the average recomputed through the
/// fields, and each frame's field.
#[derive(Debug, Clone)]
pub struct NonrigidRegistered {
    /// Rigid shifts and the non-rigid average.
    pub registered: Registered,
    /// One field per frame, on top of its rigid shift.
    pub fields: Vec<Field>,
}

/// Register `frames` rigidly, then non-rigidly (see the module docs), and average them.
pub fn register_series_nonrigid(
    frames: &[ArrayView2<f32>],
    p: &NonrigidParams,
) -> Result<NonrigidRegistered, CoreError> {
    let rigid = register_series(frames)?;
    let (h, w) = frames[0].dim();
    let filled = |a: &Array2<f32>| crate::image::stats::filled_with_mean(a.view());
    let spacing = crate::lattice::estimate_spacing(filled(&rigid.average).view()).ok();
    let tile = p.tile.unwrap_or_else(|| spacing.map_or(64.0, |s| (4.0 * s).clamp(32.0, 128.0)) as usize);
    if tile < 16 || 2 * tile > h.min(w) {
        return Err(CoreError::InvalidParameter {
            name: "tile",
            reason: format!("tiles of {tile} px need an image of at least {0}×{0} px", 2 * tile.max(16)),
        });
    }
    if !(p.smoothness.is_finite() && p.smoothness >= 0.0) || p.rounds == 0 {
        return Err(CoreError::InvalidParameter {
            name: "smoothness",
            reason: format!("smoothness {} must be ≥ 0 and rounds {} ≥ 1", p.smoothness, p.rounds),
        });
    }
    let nodes = |len: usize| {
        let n = 2 * (len - tile) / tile + 1; // half a tile apart, at least two
        let n = n.max(2);
        (0..n).map(|i| tile as f64 / 2.0 + i as f64 * (len - tile) as f64 / (n - 1) as f64).collect::<Vec<f64>>()
    };
    let (ys, xs) = (nodes(h), nodes(w));
    let reach = spacing.map_or(tile as f64 / 4.0, |s| (0.5 * s).min(tile as f64 / 4.0));
    let plan = Fft2::new(tile, tile);
    let mut fields: Vec<Field> = frames.iter().map(|_| Field::zeros(&ys, &xs)).collect();
    for _ in 0..p.rounds {
        let avg = filled(&average(frames, &rigid.shifts, &fields));
        let corner = |c: f64| (c - tile as f64 / 2.0).round() as usize;
        let reference: Vec<_> = ys
            .iter()
            .flat_map(|&cy| xs.iter().map(move |&cx| (corner(cy), corner(cx))))
            .map(|(y0, x0)| windowed_spectrum(avg.slice(ndarray::s![y0..y0 + tile, x0..x0 + tile]), &plan))
            .collect();
        let residual: Vec<Array2<([f64; 2], f64)>> = map(frames.len(), |k| {
            Array2::from_shape_fn((ys.len(), xs.len()), |(i, j)| {
                let (y0, x0) = (corner(ys[i]), corner(xs[j]));
                let patch = Array2::from_shape_fn((tile, tile), |(y, x)| {
                    let (px, py) = ((x0 + x) as f64, (y0 + y) as f64);
                    sample(frames[k], rigid.shifts[k], &fields[k], px, py).map_or(f32::NAN, |v| v as f32)
                });
                if patch.iter().all(|v| !v.is_finite()) {
                    return ([0.0; 2], 0.0);
                }
                let (d, score) = shift_between(
                    &reference[i * xs.len() + j],
                    &windowed_spectrum(patch.view(), &plan),
                    &plan,
                    Some(([0.0; 2], reach)),
                );
                (d, score * score)
            })
        });
        for (f, r) in fields.iter_mut().zip(&residual) {
            let smooth = membrane(r, p.smoothness);
            f.v.zip_mut_with(&smooth, |a, b| *a = [a[0] + b[0], a[1] + b[1]]);
        }
    }
    // Keep the frames' mean geometry.
    let n = fields.len() as f64;
    let mut mean = Array2::from_elem((ys.len(), xs.len()), [0.0f64; 2]);
    for f in &fields {
        mean.zip_mut_with(&f.v, |m, v| *m = [m[0] + v[0] / n, m[1] + v[1] / n]);
    }
    for f in &mut fields {
        f.v.zip_mut_with(&mean, |v, m| *v = [v[0] - m[0], v[1] - m[1]]);
    }
    let average = average(frames, &rigid.shifts, &fields);
    Ok(NonrigidRegistered { registered: Registered { shifts: rigid.shifts, average }, fields })
}

/// `frame` at `(x, y)` of the reference: moved by its shift and field.
fn sample(frame: ArrayView2<f32>, shift: [f64; 2], field: &Field, x: f64, y: f64) -> Option<f64> {
    let u = field.at(x, y);
    bilinear(&frame, x + shift[0] + u[0], y + shift[1] + u[1])
}

/// Mean of the frames resampled through their shifts and fields, NaN where none covers a pixel.
fn average(frames: &[ArrayView2<f32>], shifts: &[[f64; 2]], fields: &[Field]) -> Array2<f32> {
    let (h, w) = frames[0].dim();
    let rows = map(h, |y| {
        (0..w)
            .map(|x| {
                let (mut sum, mut n) = (0.0f64, 0usize);
                for ((f, s), u) in frames.iter().zip(shifts).zip(fields) {
                    if let Some(v) = sample(*f, *s, u, x as f64, y as f64) {
                        sum += v;
                        n += 1;
                    }
                }
                if n > 0 { (sum / n as f64) as f32 } else { f32::NAN }
            })
            .collect::<Vec<f32>>()
    });
    Array2::from_shape_vec((h, w), rows.concat()).expect("h rows of w")
}

/// Weighted least squares on the node grid with a membrane penalty (Gauss–Seidel).
fn membrane(data: &Array2<([f64; 2], f64)>, smoothness: f64) -> Array2<[f64; 2]> {
    let (ny, nx) = data.dim();
    let total: f64 = data.iter().map(|d| d.1).sum();
    let mut v = Array2::from_elem((ny, nx), [0.0f64; 2]);
    if !(total > 0.0) {
        return v;
    }
    let lambda = smoothness * total / data.len() as f64;
    for _ in 0..200 {
        for i in 0..ny {
            for j in 0..nx {
                let (d, wt) = data[[i, j]];
                let mut num = [wt * d[0], wt * d[1]];
                let mut den = wt;
                let nbrs = [(i.wrapping_sub(1), j), (i + 1, j), (i, j.wrapping_sub(1)), (i, j + 1)];
                for (a, b) in nbrs {
                    if a < ny && b < nx {
                        num = [num[0] + lambda * v[[a, b]][0], num[1] + lambda * v[[a, b]][1]];
                        den += lambda;
                    }
                }
                if den > 0.0 {
                    v[[i, j]] = [num[0] / den, num[1] / den];
                }
            }
        }
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::columns::{ColumnParams, find_and_fit};
    use crate::synth::{TrueColumn, add_gaussians};
    use rand::{SeedableRng, rngs::SmallRng};
    use rand_distr::{Distribution, Poisson};
    use std::f64::consts::PI;

    /// Scan distortion of frame `k`: standing waves (x shifted along y, y along x) with
    /// amplitudes that differ per frame, skewed (a few frames distorted much, most a little, as
    /// when the scan glitches) and summing to zero over the series, so the truth is the
    /// undistorted lattice. (Travelling waves would make each frame a translated copy of the
    /// last, which a correlation rightly reads as a lattice translation.)
    fn distortion(k: usize, x: f64, y: f64) -> [f64; 2] {
        const AX: [f64; 8] = [2.4, -0.6, -0.7, 1.9, -0.8, -0.5, -1.0, -0.7];
        const AY: [f64; 8] = [-1.2, 1.8, -0.4, -0.5, 1.5, -0.6, -0.3, -0.3];
        [AX[k] * (2.0 * PI * y / 150.0).sin(), AY[k] * (2.0 * PI * x / 170.0 + 0.4).cos()]
    }

    #[test]
    #[cfg_attr(debug_assertions, ignore = "minutes unoptimised: runs in the release step of `cargo xtask test`")]
    fn nonrigid_halves_the_position_error_of_a_distorted_series() {
        let (size, a, n) = (320usize, 16.0, 8);
        let ideal: Vec<[f64; 2]> = (1..20).flat_map(|i| (1..20).map(move |j| [i as f64 * a, j as f64 * a])).collect();
        let drift = |k: usize| [0.6 * k as f64 - 2.0, -0.4 * k as f64 + 1.0];
        let frames: Vec<Array2<f32>> = (0..n)
            .map(|k| {
                let cols: Vec<TrueColumn> = ideal
                    .iter()
                    .map(|p| {
                        let d = distortion(k, p[0], p[1]);
                        let s = drift(k);
                        TrueColumn {
                            x: p[0] + d[0] + s[0],
                            y: p[1] + d[1] + s[1],
                            sigma: 2.2,
                            peak: 150.0,
                            atoms: 1,
                            m_atoms: 0,
                        }
                    })
                    .collect();
                let mut img = Array2::from_elem((size, size), 8.0f32);
                add_gaussians(&mut img, &cols);
                let mut rng = SmallRng::seed_from_u64(k as u64);
                img.mapv(|l| Poisson::new(l as f64).map(|d| d.sample(&mut rng) as f32).unwrap_or(l))
            })
            .collect();
        let views: Vec<ArrayView2<f32>> = frames.iter().map(|f| f.view()).collect();
        let mean_drift =
            [(0..n).map(|k| drift(k)[0]).sum::<f64>() / n as f64, (0..n).map(|k| drift(k)[1]).sum::<f64>() / n as f64];
        let truth: Vec<[f64; 2]> = ideal
            .iter()
            .map(|p| [p[0] + mean_drift[0], p[1] + mean_drift[1]])
            .filter(|p| p.iter().all(|&c| c > 40.0 && c < size as f64 - 40.0))
            .collect();
        let error = |avg: &Array2<f32>| {
            let filled = crate::image::stats::filled_with_mean(avg.view());
            let r = find_and_fit(filled.view(), &ColumnParams::default()).unwrap();
            let found: Vec<[f64; 2]> = r.columns.iter().map(|c| [c.x, c.y]).collect();
            let m = crate::metrics::match_points(&truth, &found, a / 2.0);
            assert!(
                m.missed.is_empty(),
                "{} of {} columns missed; found {}: {:?}",
                m.missed.len(),
                truth.len(),
                found.len(),
                &found[..5.min(found.len())]
            );
            m.rms()
        };
        let rigid = register_series(&views).unwrap();
        let nonrigid = register_series_nonrigid(&views, &NonrigidParams::default()).unwrap();
        let (e_rigid, e_nonrigid) = (error(&rigid.average), error(&nonrigid.registered.average));
        eprintln!("column RMS error: rigid {e_rigid:.4} px, non-rigid {e_nonrigid:.4} px");
        assert!(e_nonrigid * 2.0 <= e_rigid, "rigid {e_rigid}, non-rigid {e_nonrigid}");
        // Shift + field follow the true drift + distortion (relative to the mean drift).
        for (k, f) in nonrigid.fields.iter().enumerate() {
            for (x, y) in [(160.0, 100.0), (80.0, 240.0)] {
                let (u, s) = (f.at(x, y), nonrigid.registered.shifts[k]);
                let d = distortion(k, x, y);
                let want = [d[0] + drift(k)[0] - mean_drift[0], d[1] + drift(k)[1] - mean_drift[1]];
                let got = [u[0] + s[0], u[1] + s[1]];
                assert!(
                    (got[0] - want[0]).hypot(got[1] - want[1]) < 0.4,
                    "frame {k} at ({x}, {y}): {got:?}, truth {want:?}"
                );
            }
        }
    }

    #[test]
    fn small_images_are_refused_for_nonrigid() {
        let a = Array2::from_shape_fn((40, 40), |(y, x)| ((x * 7 + y * 3) % 11) as f32);
        let b = a.clone();
        let e =
            register_series_nonrigid(&[a.view(), b.view()], &NonrigidParams { tile: Some(32), ..Default::default() });
        assert!(e.unwrap_err().to_string().contains("at least 64×64"));
    }
}
