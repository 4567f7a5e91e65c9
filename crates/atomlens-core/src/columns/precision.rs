//! Empirical position precision: how far each column sits from the midpoint of two opposite
//! neighbours (a second difference along every lattice direction it has).
//!
//! The fit's Cramér–Rao bound covers the shot noise alone. On realistic images (probe tails,
//! channelling, thermal diffuse scattering, overlapping neighbours, few frozen configurations)
//! positions scatter several times more: frozen-phonon Pt \[110\] at 10⁵ e⁻/Å² scatters 2.5 pm
//! about the truth against a 0.4 pm bound. A second difference `d = pᵢ − (pⱼ + pₖ)/2`, with j
//! and k opposite neighbours of i, cancels every displacement that is uniform or varies
//! linearly across two spacings (drift, rotation, strain and its gradient), so what remains is
//! the columns' own scatter: `Var d = (1 + ½)·σ²` for columns each scattered by σ. An RMS
//! that drops values beyond 3.5 MADs makes it robust to the triples that straddle a twin, a
//! step or a vacancy. Errors correlated along a direction (a scan line shifts every column on
//! it alike) cancel in that direction's triples, so each axis takes the direction showing most.
//! Real displacements that vary faster than linearly over one spacing (surface relaxation, a
//! dislocation core) count as scatter, so it errs high, not low.
use serde::{Deserialize, Serialize};

use super::fit::{AtomColumn, FitStatus};
use crate::lattice::neighbours::opposite_triples;

/// The empirical precision of a set of columns, per image axis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Precision {
    /// Empirical standard deviation of one column's x and y (px): noise and everything else.
    pub sigma: [f64; 2],
    /// RMS Cramér–Rao bound of the same columns' x and y (px): the shot noise's share.
    pub noise: [f64; 2],
    /// Triples (a column and two opposite neighbours) measured.
    pub triples: usize,
}

/// Fewer triples than this give no estimate (the MAD of fewer is uncertain by over 20 %).
pub const MIN_TRIPLES: usize = 12;

/// Var d = (1 + ½)·σ² for a column and the mean of two others, all scattered by σ.
const SECOND_DIFFERENCE_VARIANCE: f64 = 1.5;

/// The empirical precision of the fitted `columns`, or `None` with fewer than [`MIN_TRIPLES`]
/// triples (single atoms, a handful of columns, no lattice).
pub fn measure(columns: &[AtomColumn]) -> Option<Precision> {
    let fitted: Vec<&AtomColumn> = columns.iter().filter(|c| c.status == FitStatus::Fitted).collect();
    let pts: Vec<[f64; 2]> = fitted.iter().map(|c| [c.x, c.y]).collect();
    let mut nn: Vec<f64> = fitted.iter().map(|c| c.nn_distance).filter(|d| d.is_finite() && *d > 0.0).collect();
    if nn.len() < MIN_TRIPLES {
        return None;
    }
    let k = nn.len() / 2;
    let spacing = *nn.select_nth_unstable_by(k, f64::total_cmp).1;
    // Second differences grouped by the direction of the triple (mod π).
    let mut directions: Vec<Direction> = Vec::new();
    for (i, j, k) in opposite_triples(&pts, spacing) {
        let p = pts[i];
        let angle = (pts[j][1] - p[1]).atan2(pts[j][0] - p[0]).rem_euclid(std::f64::consts::PI);
        let at = match directions.iter().position(|g| g.holds(angle)) {
            Some(g) => g,
            None => {
                directions.push(Direction { angle, d: [Vec::new(), Vec::new()], columns: Vec::new() });
                directions.len() - 1
            }
        };
        let g = &mut directions[at];
        for axis in 0..2 {
            g.d[axis].push(p[axis] - 0.5 * (pts[j][axis] + pts[k][axis]));
        }
        g.columns.push(i);
    }
    // Errors correlated along a direction (a scan line shifts every column on it alike) cancel
    // in its second differences: each axis takes the direction that shows the most scatter,
    // among those with enough triples to say (a quarter of the best-sampled one's).
    let most = directions.iter().map(|g| g.d[0].len()).max().unwrap_or(0);
    let mut best: Option<Precision> = None;
    for g in directions.iter().filter(|g| g.d[0].len() >= MIN_TRIPLES.max(most / 4)) {
        let sigma = g.d.clone().map(|v| robust_rms(v) / SECOND_DIFFERENCE_VARIANCE.sqrt());
        let n = g.columns.len() as f64;
        let noise =
            [0, 1].map(|a| g.columns.iter().map(|&i| [fitted[i].x_err, fitted[i].y_err][a].powi(2)).sum::<f64>() / n);
        let here = Precision { sigma, noise: noise.map(f64::sqrt), triples: g.d[0].len() };
        best = Some(match best {
            None => here,
            Some(b) => {
                let pick = |a: usize| {
                    if here.sigma[a] > b.sigma[a] { (here.sigma[a], here.noise[a]) } else { (b.sigma[a], b.noise[a]) }
                };
                let (x, y) = (pick(0), pick(1));
                Precision { sigma: [x.0, y.0], noise: [x.1, y.1], triples: b.triples + here.triples }
            }
        });
    }
    best
}

/// The second differences of the triples along one lattice direction.
struct Direction {
    angle: f64,
    d: [Vec<f64>; 2],
    columns: Vec<usize>,
}

impl Direction {
    /// Whether `angle` (mod π) is this direction's, within [`SAME_DIRECTION`].
    fn holds(&self, angle: f64) -> bool {
        let diff = (angle - self.angle).rem_euclid(std::f64::consts::PI);
        diff.min(std::f64::consts::PI - diff) < SAME_DIRECTION
    }
}

/// Triples within this angle (radians, 10°) are along one lattice direction.
const SAME_DIRECTION: f64 = 0.175;

/// One line for a report: the empirical error per axis beside the Cramér–Rao bound, in px and
/// (calibrated) pm, or why there is none.
pub fn summary(p: Option<&Precision>, pixel_nm: Option<f64>) -> String {
    let pm = |v: f64| pixel_nm.map(|nm| format!(" ({:.1} pm)", v * nm * 1000.0)).unwrap_or_default();
    let both = |v: [f64; 2]| format!("x ± {:.3} px{}, y ± {:.3} px{}", v[0], pm(v[0]), v[1], pm(v[1]));
    match p {
        Some(p) => format!(
            "position error {} empirical (scatter about opposite neighbours, {} triples); Cramér–Rao {} \
             (shot noise only, a lower bound)",
            both(p.sigma),
            p.triples,
            both(p.noise)
        ),
        None => format!(
            "position errors are Cramér–Rao bounds only (shot noise, a lower bound): fewer than {MIN_TRIPLES} \
             columns have two opposite neighbours to measure the real scatter against"
        ),
    }
}

/// Each fitted column's empirical error: its own Cramér–Rao bound with, in quadrature, what the
/// image's scatter shows beyond the bound on average (`x_err_empirical`, `y_err_empirical`).
pub fn apply(columns: &mut [AtomColumn], p: Option<&Precision>) {
    let excess = p.map_or([f64::NAN; 2], |p| [0, 1].map(|a| (p.sigma[a].powi(2) - p.noise[a].powi(2)).max(0.0)));
    for c in columns {
        let fitted = c.status == FitStatus::Fitted;
        let at = |err: f64, extra: f64| if fitted { (err * err + extra).sqrt() } else { f64::NAN };
        (c.x_err_empirical, c.y_err_empirical) = (at(c.x_err, excess[0]), at(c.y_err, excess[1]));
    }
}

/// The RMS about the median of the values within [`REJECT`] MADs of it: as efficient as the
/// RMS on Gaussian scatter (the MAD alone needs 2.7× the samples), robust to the few triples
/// that straddle a twin or a vacancy.
fn robust_rms(mut v: Vec<f64>) -> f64 {
    let k = v.len() / 2;
    let centre = *v.select_nth_unstable_by(k, f64::total_cmp).1;
    let mut dev: Vec<f64> = v.iter().map(|x| (x - centre).abs()).collect();
    let mad = 1.4826 * *dev.select_nth_unstable_by(k, f64::total_cmp).1;
    let kept: Vec<f64> = dev.into_iter().filter(|&d| d <= REJECT * mad).collect();
    (kept.iter().map(|d| d * d).sum::<f64>() / kept.len().max(1) as f64).sqrt()
}

/// Second differences beyond this many MADs are a defect's, not scatter (a Gaussian has
/// 0.05 % of its values there).
const REJECT: f64 = 3.5;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::columns::find::PeakParams;
    use crate::columns::fit::{FitParams, Noise};
    use crate::columns::{ColumnParams, find_and_fit};
    use rand::{SeedableRng, rngs::SmallRng};
    use rand_distr::{Distribution, Normal};

    /// A perfect `cells × cells` square lattice of Gaussian columns 10 px apart, displaced by a
    /// smooth strain field (`gradient`: quadratic in x, so its second difference is constant and
    /// tiny) and scanned with every row shifted in x by `jitter` px (scan noise, the commonest
    /// error of a real STEM image beyond the shot noise), with Poisson noise at `dose` counts
    /// per unit of peak height.
    fn scanned(
        cells: usize,
        jitter: f64,
        gradient: f64,
        dose: f64,
        seed: u64,
    ) -> (ndarray::Array2<f32>, Vec<[f64; 2]>) {
        let mut rng = SmallRng::seed_from_u64(seed);
        let normal = Normal::new(0.0, 1.0).unwrap();
        let n = 10 * cells + 20;
        let half = n as f64 / 2.0;
        let truth: Vec<[f64; 2]> = (0..cells * cells)
            .map(|k| {
                let (x, y) = (15.0 + (k % cells) as f64 * 10.0, 15.0 + (k / cells) as f64 * 10.0);
                [x + gradient * (x - half).powi(2) / half, y]
            })
            .collect();
        let shift: Vec<f64> = (0..n).map(|_| jitter * normal.sample(&mut rng)).collect();
        let clean = ndarray::Array2::from_shape_fn((n, n), |(y, x)| {
            let x = x as f64 + shift[y];
            truth.iter().map(|p| (-((x - p[0]).powi(2) + (y as f64 - p[1]).powi(2)) / 6.48).exp()).sum::<f64>() as f32
        });
        (crate::synth::at_dose(clean.view(), dose, seed), truth)
    }

    /// RMS of the fitted positions about the truth, per axis (px).
    fn observed(found: &[AtomColumn], truth: &[[f64; 2]]) -> [f64; 2] {
        let pts: Vec<[f64; 2]> = found.iter().map(|c| [c.x, c.y]).collect();
        let m = crate::metrics::match_points(truth, &pts, 3.0);
        [0, 1].map(|a| {
            let d2 = m.pairs.iter().map(|p| (pts[p.1][a] - truth[p.0][a]).powi(2)).sum::<f64>();
            (d2 / m.pairs.len() as f64).sqrt()
        })
    }

    #[test]
    fn scan_noise_beyond_the_shot_noise_is_measured_and_strain_gradients_are_not() {
        for (jitter, gradient, dose) in [(0.4, 0.0, 1e4), (0.4, 0.03, 1e4), (0.0, 0.03, 300.0), (0.25, 0.0, 300.0)] {
            let (img, truth) = scanned(14, jitter, gradient, dose, 7);
            // Counts: the bound is the shot noise's (`Auto` reads the jitter's misfit as noise).
            let p =
                ColumnParams { fit: FitParams { noise: Noise::Poisson, ..Default::default() }, ..Default::default() };
            let r = find_and_fit(img.view(), &p).unwrap();
            let p = r.precision.clone().unwrap();
            let seen = observed(&r.columns, &truth);
            let emp = [0, 1].map(|a| {
                let e = r.columns.iter().map(|c| [c.x_err_empirical, c.y_err_empirical][a].powi(2)).sum::<f64>();
                (e / r.columns.len() as f64).sqrt()
            });
            eprintln!(
                "jitter {jitter} gradient {gradient} dose {dose}: {p:?}, observed {seen:.3?}, per column {emp:.3?}"
            );
            for a in 0..2 {
                assert!(
                    (p.sigma[a] / seen[a] - 1.0).abs() < 0.25,
                    "axis {a}: measured {:.3} vs observed {:.3} px",
                    p.sigma[a],
                    seen[a]
                );
                assert!(
                    (emp[a] / seen[a] - 1.0).abs() < 0.25,
                    "axis {a}: per column {:.3} vs observed {:.3} px",
                    emp[a],
                    seen[a]
                );
            }
            assert!(r.columns.iter().all(|c| c.x_err_empirical >= c.x_err && c.y_err_empirical >= c.y_err));
        }
    }

    #[test]
    fn too_few_columns_give_no_estimate() {
        let (img, _) = scanned(3, 0.2, 0.0, 1e4, 3);
        let p = ColumnParams { find: PeakParams { separation: Some(7.0), ..Default::default() }, ..Default::default() };
        let r = find_and_fit(img.view(), &p).unwrap();
        assert_eq!(r.columns.len(), 9);
        assert!(r.precision.is_none());
        assert!(r.columns.iter().all(|c| c.x_err_empirical.is_nan()));
    }
}
