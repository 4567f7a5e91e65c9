//! Strain from fitted column positions (after Ellaby et al. 2020): each column's local lattice
//! is the least-squares deformation gradient `F` that maps the ideal neighbour vectors onto the
//! measured ones; strain and rotation follow from [`crate::math::deformation::decompose`] against the
//! reference lattice. Displacements are measured from an ideal lattice fitted to the reference
//! columns, with every column indexed by walking the neighbour graph (so accumulated strain does
//! not shift indices).
use std::collections::VecDeque;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::CoreError;
use crate::image::Region;
use crate::lattice::neighbours::Grid;
use crate::math::deformation::{Mat2, Strain, decompose, inverse, mul};

/// Strain of one column; NaN where it has too few indexed neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ColumnStrain {
    /// Normal strain along x.
    pub exx: f64,
    /// Normal strain along y.
    pub eyy: f64,
    /// Shear (tensor component).
    pub exy: f64,
    /// Lattice rotation, radians from +x towards +y.
    pub rotation: f64,
    /// Displacement from the fitted ideal lattice, x (px).
    pub ux: f64,
    /// Displacement, y (px).
    pub uy: f64,
    /// Neighbours used.
    pub neighbours: usize,
}

/// A per-column quantity: its name (the map's, the page's key) and how to read it.
pub type Field = (&'static str, fn(&ColumnStrain) -> f64);

impl ColumnStrain {
    /// Every per-column quantity, in the order the tables, maps and plots list them.
    pub const FIELDS: [Field; 6] = [
        ("exx", |c| c.exx),
        ("eyy", |c| c.eyy),
        ("exy", |c| c.exy),
        ("rotation", |c| c.rotation),
        ("ux", |c| c.ux),
        ("uy", |c| c.uy),
    ];
}

/// Per-column strain and the reference lattice it is measured against.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ColumnStrainResult {
    /// One entry per column, in the input order.
    pub columns: Vec<ColumnStrain>,
    /// Reference lattice vectors `a`, `b` (px): the given lattice, adjusted to the reference
    /// region's mean when one is given.
    pub reference_lattice: [[f64; 2]; 2],
}

/// Strain of every column at `points`, given the lattice basis `a`, `b` (px, e.g. from
/// [`crate::lattice::lattice_vectors`]) and optionally a reference region.
pub fn column_strain(
    points: &[[f64; 2]],
    a: [f64; 2],
    b: [f64; 2],
    reference: Option<Region>,
) -> Result<ColumnStrainResult, CoreError> {
    let basis: Mat2 = [[a[0], b[0]], [a[1], b[1]]]; // columns a, b
    let inv = inverse(basis)
        .ok_or_else(|| CoreError::InvalidParameter { name: "lattice", reason: "a and b are collinear".into() })?;
    if points.len() < 3 {
        return Err(CoreError::NoLattice { reason: format!("{} columns are too few for strain", points.len()) });
    }
    let la = a[0].hypot(a[1]).max(b[0].hypot(b[1]));
    let grid = Grid::new(points, la);
    let apply = |m: Mat2, v: [f64; 2]| [m[0][0] * v[0] + m[0][1] * v[1], m[1][0] * v[0] + m[1][1] * v[1]];

    // Each column's neighbours with their ideal vectors (integer combinations of a, b).
    let neighbours: Vec<Vec<(usize, [i64; 2])>> = (0..points.len())
        .map(|i| {
            grid.within(points, points[i], 1.6 * la)
                .into_iter()
                .filter(|&j| j != i)
                .filter_map(|j| {
                    let d = [points[j][0] - points[i][0], points[j][1] - points[i][1]];
                    let f = apply(inv, d);
                    let mn = [f[0].round() as i64, f[1].round() as i64];
                    let ideal = apply(basis, [mn[0] as f64, mn[1] as f64]);
                    let off = (d[0] - ideal[0]).hypot(d[1] - ideal[1]);
                    // Well indexed: within a quarter of a lattice vector of its ideal site.
                    (mn != [0, 0] && off < 0.25 * la).then_some((j, mn))
                })
                .collect()
        })
        .collect();

    // Local deformation gradient by least squares: d ≈ F d₀.
    let gradient = |i: usize| -> Option<Mat2> {
        let (mut dd0, mut d0d0) = ([[0.0; 2]; 2], [[0.0; 2]; 2]);
        for &(j, mn) in &neighbours[i] {
            let d = [points[j][0] - points[i][0], points[j][1] - points[i][1]];
            let d0 = apply(basis, [mn[0] as f64, mn[1] as f64]);
            for r in 0..2 {
                for c in 0..2 {
                    dd0[r][c] += d[r] * d0[c];
                    d0d0[r][c] += d0[r] * d0[c];
                }
            }
        }
        (neighbours[i].len() >= 2).then(|| inverse(d0d0).map(|m| mul(dd0, m))).flatten()
    };
    let grads: Vec<Option<Mat2>> = (0..points.len()).map(gradient).collect();

    // Reference: the mean gradient over the region's columns (identity without a region).
    let inside =
        |p: [f64; 2], r: Region| p[0] >= r.x0 as f64 && p[0] < r.x1 as f64 && p[1] >= r.y0 as f64 && p[1] < r.y1 as f64;
    let f_ref = match reference {
        None => [[1.0, 0.0], [0.0, 1.0]],
        Some(r) => {
            let sel: Vec<Mat2> = grads
                .iter()
                .zip(points)
                .filter(|(g, p)| g.is_some() && inside(**p, r))
                .filter_map(|(g, _)| *g)
                .collect();
            if sel.is_empty() {
                return Err(CoreError::NoLattice {
                    reason: "no strained-lattice column inside the reference region".into(),
                });
            }
            let mut m = [[0.0; 2]; 2];
            for g in &sel {
                for r in 0..2 {
                    for c in 0..2 {
                        m[r][c] += g[r][c] / sel.len() as f64;
                    }
                }
            }
            m
        }
    };
    let ref_inv =
        inverse(f_ref).ok_or_else(|| CoreError::NoLattice { reason: "degenerate reference lattice".into() })?;
    let ref_basis = mul(f_ref, basis);

    // Index every column by walking the neighbour graph from the one nearest the reference's
    // centre, then fit the ideal lattice (origin + basis) to the reference columns.
    let centre = reference.map_or_else(
        || {
            let n = points.len() as f64;
            [points.iter().map(|p| p[0]).sum::<f64>() / n, points.iter().map(|p| p[1]).sum::<f64>() / n]
        },
        |r| [(r.x0 + r.x1) as f64 / 2.0, (r.y0 + r.y1) as f64 / 2.0],
    );
    let start = (0..points.len())
        .min_by(|&i, &j| {
            let d = |k: usize| (points[k][0] - centre[0]).powi(2) + (points[k][1] - centre[1]).powi(2);
            d(i).total_cmp(&d(j))
        })
        .unwrap_or(0);
    let mut index: Vec<Option<[i64; 2]>> = vec![None; points.len()];
    index[start] = Some([0, 0]);
    let mut queue = VecDeque::from([start]);
    while let Some(i) = queue.pop_front() {
        let Some(ii) = index[i] else { continue };
        for &(j, mn) in &neighbours[i] {
            if index[j].is_none() {
                index[j] = Some([ii[0] + mn[0], ii[1] + mn[1]]);
                queue.push_back(j);
            }
        }
    }
    let fit_region = reference.unwrap_or(Region { x0: 0, y0: 0, x1: usize::MAX, y1: usize::MAX });
    let ideal = fit_lattice(points, &index, |p| inside(p, fit_region));

    let columns = (0..points.len())
        .map(|i| {
            let s = grads[i].map(|g| decompose(mul(g, ref_inv))).unwrap_or(Strain {
                exx: f64::NAN,
                eyy: f64::NAN,
                exy: f64::NAN,
                rotation: f64::NAN,
            });
            let (ux, uy) = match (index[i], ideal) {
                (Some(mn), Some((o, m))) => {
                    let r = apply(m, [mn[0] as f64, mn[1] as f64]);
                    (points[i][0] - o[0] - r[0], points[i][1] - o[1] - r[1])
                }
                _ => (f64::NAN, f64::NAN),
            };
            ColumnStrain {
                exx: s.exx,
                eyy: s.eyy,
                exy: s.exy,
                rotation: s.rotation,
                ux,
                uy,
                neighbours: neighbours[i].len(),
            }
        })
        .collect();
    Ok(ColumnStrainResult {
        columns,
        reference_lattice: [[ref_basis[0][0], ref_basis[1][0]], [ref_basis[0][1], ref_basis[1][1]]],
    })
}

/// Least-squares `r ≈ o + M (m, n)` over the indexed columns `keep` accepts: origin and basis.
fn fit_lattice(
    points: &[[f64; 2]],
    index: &[Option<[i64; 2]>],
    keep: impl Fn([f64; 2]) -> bool,
) -> Option<([f64; 2], Mat2)> {
    // Normal equations for the design row (1, m, n), shared by the x and y fits.
    let (mut ata, mut atx, mut aty) = ([[0.0f64; 3]; 3], [0.0f64; 3], [0.0f64; 3]);
    let mut n = 0;
    for (p, mn) in points.iter().zip(index) {
        let Some(mn) = mn else { continue };
        if !keep(*p) {
            continue;
        }
        let row = [1.0, mn[0] as f64, mn[1] as f64];
        for r in 0..3 {
            for c in 0..3 {
                ata[r][c] += row[r] * row[c];
            }
            atx[r] += row[r] * p[0];
            aty[r] += row[r] * p[1];
        }
        n += 1;
    }
    if n < 3 {
        return None;
    }
    let sx = solve3(ata, atx)?;
    let sy = solve3(ata, aty)?;
    Some(([sx[0], sy[0]], [[sx[1], sx[2]], [sy[1], sy[2]]]))
}

/// Cramer's rule for a 3×3 system.
fn solve3(m: [[f64; 3]; 3], v: [f64; 3]) -> Option<[f64; 3]> {
    let det = |m: [[f64; 3]; 3]| {
        m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
            + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0])
    };
    let d = det(m);
    if !(d.abs() > 1e-9) {
        return None;
    }
    let mut out = [0.0; 3];
    for (k, o) in out.iter_mut().enumerate() {
        let mut mk = m;
        for r in 0..3 {
            mk[r][k] = v[r];
        }
        *o = det(mk) / d;
    }
    Some(out)
}

/// Per-column values spread onto a `w` × `h` map: a Gaussian-weighted mean of the columns
/// within `2 σ` of each pixel (`σ` = half the lattice spacing), NaN where none is.
pub fn interpolate(points: &[[f64; 2]], values: &[f64], w: usize, h: usize, spacing: f64) -> Array2<f32> {
    let sigma = 0.5 * spacing;
    let grid = Grid::new(points, 2.0 * sigma);
    Array2::from_shape_fn((h, w), |(y, x)| {
        let q = [x as f64, y as f64];
        let (mut s, mut ws) = (0.0, 0.0);
        for j in grid.within(points, q, 2.0 * sigma) {
            if values[j].is_finite() {
                let d2 = (points[j][0] - q[0]).powi(2) + (points[j][1] - q[1]).powi(2);
                let wt = (-d2 / (2.0 * sigma * sigma)).exp();
                s += wt * values[j];
                ws += wt;
            }
        }
        if ws > 0.0 { (s / ws) as f32 } else { f32::NAN }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A square lattice (spacing 10, turned 0.3 rad) deformed by `f` about (100, 100).
    fn lattice(f: Mat2) -> (Vec<[f64; 2]>, [f64; 2], [f64; 2]) {
        let (s, c) = 0.3f64.sin_cos();
        let (a, b) = ([10.0 * c, 10.0 * s], [-10.0 * s, 10.0 * c]);
        let mut pts = Vec::new();
        for i in -12..=12 {
            for j in -12..=12 {
                let r = [i as f64 * a[0] + j as f64 * b[0], i as f64 * a[1] + j as f64 * b[1]];
                let p = [100.0 + f[0][0] * r[0] + f[0][1] * r[1], 100.0 + f[1][0] * r[0] + f[1][1] * r[1]];
                if (0.0..200.0).contains(&p[0]) && (0.0..200.0).contains(&p[1]) {
                    pts.push(p);
                }
            }
        }
        (pts, a, b)
    }

    #[test]
    fn uniform_deformation_is_recovered_exactly() {
        let truth = Strain { exx: 0.02, eyy: -0.01, exy: 0.005, rotation: 0.03 };
        let (pts, a, b) = lattice(truth.gradient());
        let r = column_strain(&pts, a, b, None).unwrap();
        for c in &r.columns {
            for (m, t) in [(c.exx, truth.exx), (c.eyy, truth.eyy), (c.exy, truth.exy), (c.rotation, truth.rotation)] {
                assert!((m - t).abs() < 1e-9, "{c:?}");
            }
        }
    }

    #[test]
    fn reference_region_and_displacement() {
        // Unstrained left half, +3 % εxx right of x = 100 (displacement grows linearly there).
        let (mut pts, a, b) = lattice([[1.0, 0.0], [0.0, 1.0]]);
        for p in &mut pts {
            if p[0] > 100.0 {
                p[0] += 0.03 * (p[0] - 100.0);
            }
        }
        pts.retain(|p| p[0] < 200.0);
        let reference = Region { x0: 10, y0: 10, x1: 80, y1: 190 };
        let r = column_strain(&pts, a, b, Some(reference)).unwrap();
        for (p, c) in pts.iter().zip(&r.columns) {
            // Columns whose neighbours all lie on one side of the step.
            if p[0] < 80.0 && p[0] > 10.0 && p[1] > 15.0 && p[1] < 185.0 {
                assert!(c.exx.abs() < 1e-9 && c.ux.abs() < 1e-6, "left {p:?} {c:?}");
            }
            if p[0] > 120.0 && p[0] < 185.0 && p[1] > 15.0 && p[1] < 185.0 {
                assert!((c.exx - 0.03).abs() < 1e-9, "right {p:?} {c:?}");
                let want = 0.03 * (p[0] - 100.0) / 1.03;
                assert!((c.ux - want).abs() < 1e-6, "ux {} vs {want} at {p:?}", c.ux);
            }
        }
    }

    #[test]
    fn interpolation_is_exact_for_constant_values_and_empty_far_away() {
        let pts = vec![[10.0, 10.0], [20.0, 10.0], [10.0, 20.0], [20.0, 20.0]];
        let m = interpolate(&pts, &[0.5; 4], 64, 64, 10.0);
        assert_eq!(m[[15, 15]], 0.5);
        assert!(m[[60, 60]].is_nan());
    }

    #[test]
    fn too_few_columns_or_a_flat_basis_are_refused() {
        assert!(column_strain(&[[0.0, 0.0], [1.0, 0.0]], [1.0, 0.0], [0.0, 1.0], None).is_err());
        assert!(column_strain(&[[0.0, 0.0]; 5], [1.0, 0.0], [2.0, 0.0], None).is_err());
    }
}
