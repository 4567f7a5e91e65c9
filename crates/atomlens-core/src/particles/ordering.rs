//! Chemical ordering of an alloy particle from column cross-sections. Thickness changes across
//! a particle far more than composition does, so each column is compared with what its
//! surroundings predict: `contrast` = its cross-section over a plane fitted (Gaussian weights,
//! σ = one spacing) to the other columns within 2.5 spacings, taken at the column: the local
//! thickness trend, so a surface column of a convex particle is not "dim". In an ordered (intermetallic) region bright Pt-rich and dim
//! M-rich columns alternate and the contrasts split into two populations; in a disordered or
//! pure region they stay near 1. A Gaussian mixture on ln(contrast) (1–3 components, BIC with
//! a separation check, see [`crate::math::mixture`]) finds the dim population: its columns are
//! M-rich, the rest (the bright partners and any pure-Pt shell near contrast 1) Pt-rich. One
//! population means no ordering is visible. A column is *ordered* when at least half of its
//! first-shell neighbours are of the opposite class.
use rand::{Rng, SeedableRng, rngs::SmallRng};
use serde::{Deserialize, Serialize};

use crate::lattice::neighbours::Grid;
use crate::math::mixture::{Mixture, best_mixture};

/// Column class by composition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Brighter than its surroundings: Pt-rich.
    PtRich,
    /// Dimmer than its surroundings: rich in the lighter metal M.
    MRich,
    /// No population stands out from its surroundings anywhere (a disordered or pure particle).
    Uniform,
}

/// The ordering analysis of one particle's columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ordering {
    /// Cross-section over what the neighbours' thickness trend predicts, per column.
    pub contrast: Vec<f64>,
    /// Class per column.
    pub kind: Vec<Kind>,
    /// Whether each column sits in an alternating (ordered) neighbourhood.
    pub ordered: Vec<bool>,
    /// Fraction of columns that are ordered.
    pub ordered_fraction: f64,
    /// Its standard deviation from the columns' class probabilities.
    pub ordered_fraction_sd: f64,
    /// Ordered domains: sizes (columns) of the connected groups of ordered columns, largest
    /// first.
    pub domains: Vec<usize>,
    /// The mixture on ln(contrast), when one could be fitted.
    pub mixture: Option<Mixture>,
}

impl Ordering {
    /// No classification of `n` columns (all uniform, none ordered): where the columns are not
    /// resolved (a particle off a zone axis), their contrast says nothing about their chemistry.
    pub fn unclassified(n: usize) -> Ordering {
        Ordering {
            contrast: vec![f64::NAN; n],
            kind: vec![Kind::Uniform; n],
            ordered: vec![false; n],
            ordered_fraction: 0.0,
            ordered_fraction_sd: 0.0,
            domains: Vec::new(),
            mixture: None,
        }
    }
}

impl Ordering {
    /// The ordering in one sentence (CLI and page), `None` where no column is ordered:
    /// "ordered fraction 0.42 ± 0.03 (2 domains, largest 118 columns)".
    pub fn summary(&self) -> Option<String> {
        (self.ordered_fraction > 0.0).then(|| {
            let largest = self.domains.first().copied().unwrap_or(0);
            let domains = match self.domains.len() {
                1 => "one domain".to_string(),
                n => format!("{n} domains, largest {largest} columns"),
            };
            format!("ordered fraction {:.2} ± {:.2} ({domains})", self.ordered_fraction, self.ordered_fraction_sd)
        })
    }
}

/// Ordering of the columns at `points` (px) with cross-sections `values`; `spacing` is the
/// nearest-neighbour distance (px).
pub fn classify(points: &[[f64; 2]], values: &[f64], spacing: f64) -> Ordering {
    let grid = Grid::new(points, spacing);
    let sigma = spacing;
    let contrast: Vec<f64> = (0..points.len())
        .map(|i| {
            let near: Vec<usize> =
                grid.within(points, points[i], 2.5 * spacing).into_iter().filter(|&j| j != i).collect();
            let expected = local_trend(points, values, i, &near, sigma);
            if expected > 0.0 && values[i] > 0.0 { values[i] / expected } else { f64::NAN }
        })
        .collect();
    let logs: Vec<f64> = contrast.iter().filter(|c| c.is_finite()).map(|c| c.ln()).collect();
    let mixture = best_mixture(&logs, 3);
    let Some(classes) = mixture.as_ref().and_then(component_kinds) else {
        let n = points.len();
        return Ordering { contrast, mixture, ..Ordering::unclassified(n) };
    };
    let m = mixture.as_ref().expect("classes come from a mixture");
    let kind: Vec<Kind> =
        contrast.iter().map(|&c| if c.is_finite() { classes[m.classify(c.ln())] } else { Kind::PtRich }).collect();
    let shell = 1.25 * spacing;
    let near: Vec<Vec<usize>> = (0..points.len())
        .map(|i| grid.within(points, points[i], shell).into_iter().filter(|&j| j != i).collect())
        .collect();
    let (ordered, domains) = ordered_domains(&kind, &near);
    let fraction =
        |o: &[bool]| if o.is_empty() { 0.0 } else { o.iter().filter(|&&v| v).count() as f64 / o.len() as f64 };
    let ordered_fraction = fraction(&ordered);
    // The fraction's uncertainty from the classes': each column's class drawn from its
    // posterior, the flags recomputed.
    let posteriors: Vec<Option<Vec<f64>>> =
        contrast.iter().map(|&c| c.is_finite().then(|| m.posterior(c.ln()))).collect();
    let mut rng = SmallRng::seed_from_u64(7);
    let draws: Vec<f64> = (0..DRAWS)
        .map(|_| {
            let k: Vec<Kind> = posteriors
                .iter()
                .zip(&kind)
                .map(|(p, &k0)| {
                    let Some(p) = p else { return k0 };
                    let mut u: f64 = rng.random();
                    let c = p.iter().position(|&q| {
                        u -= q;
                        u <= 0.0
                    });
                    classes[c.unwrap_or(p.len() - 1)]
                })
                .collect();
            fraction(&ordered_domains(&k, &near).0)
        })
        .collect();
    let mean = draws.iter().sum::<f64>() / DRAWS as f64;
    let ordered_fraction_sd = (draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / (DRAWS - 1) as f64).sqrt();
    Ordering { contrast, kind, ordered, ordered_fraction, ordered_fraction_sd, domains, mixture }
}

/// Draws of the columns' classes behind `ordered_fraction_sd`.
const DRAWS: usize = 200;

/// What each mixture component on ln(contrast) means: those clearly below 1 (ln < −0.15) are
/// M-rich (more than one where M-rich columns differ in their Pt cap: a column that ends a
/// layer under the surface has none), the rest Pt-rich. `None` when no population is dim or
/// all are: nothing is classified.
fn component_kinds(m: &Mixture) -> Option<Vec<Kind>> {
    let dim = |k: usize| m.means[k] < -0.15;
    (m.means.len() > 1 && dim(0) && !dim(m.means.len() - 1))
        .then(|| (0..m.means.len()).map(|k| if dim(k) { Kind::MRich } else { Kind::PtRich }).collect())
}

/// A column is ordered when at least half of its first-shell neighbours (`near`) are of the
/// opposite class.
fn ordered_flags(kind: &[Kind], near: &[Vec<usize>]) -> Vec<bool> {
    (0..kind.len())
        .map(|i| {
            let opposite = match kind[i] {
                Kind::PtRich => Kind::MRich,
                Kind::MRich => Kind::PtRich,
                Kind::Uniform => return false,
            };
            !near[i].is_empty() && 2 * near[i].iter().filter(|&&j| kind[j] == opposite).count() >= near[i].len()
        })
        .collect()
}

/// The smallest ordered domain (columns, four by four): a random alloy's columns alternate by
/// chance in small patches (a dim column among bright ones; up to 14 columns on the
/// frozen-phonon PtCo particle), an ordered phase over unit cells.
const MIN_DOMAIN: usize = 16;

/// The ordered flags (only in domains of at least [`MIN_DOMAIN`] columns) and the domains'
/// sizes, largest first.
fn ordered_domains(kind: &[Kind], near: &[Vec<usize>]) -> (Vec<bool>, Vec<usize>) {
    let mut ordered = ordered_flags(kind, near);
    let groups = crate::lattice::neighbours::components(&ordered, near);
    let mut sizes = Vec::new();
    for members in groups {
        if members.len() >= MIN_DOMAIN {
            sizes.push(members.len());
        } else {
            for i in members {
                ordered[i] = false;
            }
        }
    }
    sizes.sort_unstable_by(|a, b| b.cmp(a));
    (ordered, sizes)
}

/// What column `i`'s thickness predicts from the columns `near` it: a plane through their
/// cross-sections (Gaussian weights of width `sigma`), evaluated at `i`. A plane, not their
/// mean: a convex particle's surface column sits below the mean of its (thicker, inner)
/// neighbours, which would read as M-rich; the plane follows the thickness gradient, while an
/// alloy's alternation (one column to the next) stays in the contrast. The weighted mean where
/// the neighbours cannot hold a plane (fewer than three, or in a line).
fn local_trend(points: &[[f64; 2]], values: &[f64], i: usize, near: &[usize], sigma: f64) -> f64 {
    let (mut ata, mut atb) = ([[0.0f64; 3]; 3], [0.0f64; 3]);
    let (mut s, mut w) = (0.0, 0.0);
    for &j in near {
        let (dx, dy) = (points[j][0] - points[i][0], points[j][1] - points[i][1]);
        let wt = (-(dx * dx + dy * dy) / (2.0 * sigma * sigma)).exp();
        let row = [1.0, dx / sigma, dy / sigma];
        for r in 0..3 {
            for c in 0..3 {
                ata[r][c] += wt * row[r] * row[c];
            }
            atb[r] += wt * row[r] * values[j];
        }
        (s, w) = (s + wt * values[j], w + wt);
    }
    let mean = if w > 0.0 { s / w } else { f64::NAN };
    if near.len() < 3 {
        return mean;
    }
    // A plane only where the neighbours span two directions (the normal matrix is well
    // conditioned relative to its size).
    let det = ata[0][0] * (ata[1][1] * ata[2][2] - ata[1][2] * ata[2][1])
        - ata[0][1] * (ata[1][0] * ata[2][2] - ata[1][2] * ata[2][0])
        + ata[0][2] * (ata[1][0] * ata[2][1] - ata[1][1] * ata[2][0]);
    if det < 1e-3 * ata[0][0].powi(3) {
        return mean;
    }
    crate::math::linalg::solve(ata, atb, 3).map_or(mean, |x| x[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{NanoparticleParams, nanoparticle};

    /// True cross-sections of the ordered particle (so this tests the classification; the
    /// end-to-end chain from pixels is tested in `analysis`).
    fn truth(ordered: bool) -> (Vec<[f64; 2]>, Vec<f64>, Vec<Kind>) {
        let s =
            nanoparticle(&NanoparticleParams { size: 384, diameter_nm: 4.0, ordered, ..Default::default() }).unwrap();
        let pts = s.columns.iter().map(|c| [c.x, c.y]).collect();
        let vol = s.columns.iter().map(|c| c.peak * 2.0 * std::f64::consts::PI * c.sigma * c.sigma).collect();
        let kind = s.columns.iter().map(|c| if 2 * c.m_atoms > c.atoms { Kind::MRich } else { Kind::PtRich }).collect();
        (pts, vol, kind)
    }

    #[test]
    fn an_ordered_core_separates_pt_and_m_columns() {
        let (pts, vol, truth) = truth(true);
        let o = classify(&pts, &vol, 12.0);
        let right = o.kind.iter().zip(&truth).filter(|(a, b)| a == b).count();
        let wrong: Vec<_> = (0..pts.len())
            .filter(|&i| o.kind[i] != truth[i])
            .map(|i| (truth[i], o.kind[i], (o.contrast[i] * 100.0).round()))
            .collect();
        assert!(right as f64 >= 0.95 * pts.len() as f64, "{right} of {}: {:?} {wrong:?}", pts.len(), o.mixture);
        assert!(o.ordered_fraction > 0.5, "{}", o.ordered_fraction);
        assert!(
            o.ordered_fraction_sd < 0.05 && o.domains[0] as f64 > 0.8 * o.ordered_fraction * pts.len() as f64,
            "{o:?}"
        );
    }

    /// The ordered particle with its core's y > centre half a random alloy (each core atom M
    /// with probability ½): the ordered half stays ordered, the random half is not.
    #[test]
    fn an_ordered_and_a_random_domain_are_told_apart() {
        use rand::{SeedableRng, rngs::SmallRng};
        use rand_distr::{Binomial, Distribution};
        let s = nanoparticle(&NanoparticleParams { size: 384, diameter_nm: 4.0, ordered: true, ..Default::default() })
            .unwrap();
        let n = s.columns.len() as f64;
        let (cx, cy) = (s.columns.iter().map(|c| c.x).sum::<f64>() / n, s.columns.iter().map(|c| c.y).sum::<f64>() / n);
        let r = s.columns.iter().map(|c| (c.x - cx).hypot(c.y - cy)).fold(0.0, f64::max);
        let mut rng = SmallRng::seed_from_u64(3);
        let core = |c: &crate::synth::TrueColumn| (c.x - cx).hypot(c.y - cy) < 0.7 * r && c.atoms > 2;
        let (mut pts, mut vol, mut random) = (vec![], vec![], vec![]);
        for c in &s.columns {
            let m = if core(c) && c.y > cy {
                Binomial::new((c.atoms - 2) as u64, 0.5).unwrap().sample(&mut rng) as u32
            } else {
                c.m_atoms
            };
            pts.push([c.x, c.y]);
            vol.push((c.atoms - m) as f64 + crate::synth::M_CONTRAST * m as f64);
            // Truth one spacing clear of the boundary between the halves.
            random.push((core(c) && (c.y - cy).abs() > 12.0).then_some(c.y > cy));
        }
        let o = classify(&pts, &vol, 12.0);
        let share = |want: bool, flag: bool| {
            let of: Vec<usize> = (0..pts.len()).filter(|&i| random[i] == Some(want)).collect();
            of.iter().filter(|&&i| o.ordered[i] == flag).count() as f64 / of.len() as f64
        };
        let (ordered_ok, random_ok) = (share(false, true), share(true, false));
        assert!(
            ordered_ok >= 0.8 && random_ok >= 0.8,
            "ordered half {ordered_ok:.2}, random half {random_ok:.2}; {:?}",
            o.mixture
        );
    }

    #[test]
    fn a_pure_particle_is_not_ordered() {
        let (pts, vol, _) = truth(false);
        let o = classify(&pts, &vol, 12.0);
        assert!(o.ordered_fraction < 0.05, "{} {:?}", o.ordered_fraction, o.mixture);
    }
}
