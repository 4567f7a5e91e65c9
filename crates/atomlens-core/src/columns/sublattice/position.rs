//! Sublattices by position: which site of the unit cell each column sits on. Columns are visited
//! breadth-first over their neighbours (within 1.2 |b|); each step adds the neighbour's offset
//! in cell coordinates (`A⁻¹ d`) and snaps the result to the nearest site already seen (a new one
//! when none is within 0.2 of a cell), so strain does not accumulate along the walk. Sites are
//! then numbered by their mean integrated intensity, dimmest first, as the intensity sublattices
//! are; columns on no regular site (under 2 % of the columns each) share the label after them.
use std::collections::VecDeque;

use crate::columns::fit::AtomColumn;
use crate::lattice::Lattice;
use crate::lattice::neighbours::Grid;

/// Largest distance (in cell units, per axis) between a column's cell coordinate and a site.
const SNAP: f64 = 0.2;

/// Set `sublattice` of every column to its unit-cell site; returns the number of regular sites.
pub fn assign_sites(columns: &mut [AtomColumn], lattice: &Lattice) -> usize {
    let n = columns.len();
    let (a, b) = (lattice.a, lattice.b);
    let det = a[0] * b[1] - a[1] * b[0];
    if n == 0 || det.abs() < 1e-9 {
        return 0;
    }
    // Cell coordinates of a displacement: A⁻¹ d with A = [a b].
    let cell = |d: [f64; 2]| [(b[1] * d[0] - b[0] * d[1]) / det, (-a[1] * d[0] + a[0] * d[1]) / det];
    let pts: Vec<[f64; 2]> = columns.iter().map(|c| [c.x, c.y]).collect();
    let reach = 1.2 * b[0].hypot(b[1]).max(a[0].hypot(a[1]));
    let grid = Grid::new(&pts, reach);
    let wrap = |v: f64| v - v.round();
    let mut sites: Vec<[f64; 2]> = vec![[0.0, 0.0]];
    let mut coord: Vec<Option<[f64; 2]>> = vec![None; n];
    let mut label = vec![0usize; n];
    for start in 0..n {
        if coord[start].is_some() {
            continue;
        }
        coord[start] = Some([0.0, 0.0]);
        let mut queue = VecDeque::from([start]);
        while let Some(i) = queue.pop_front() {
            let ci = coord[i].expect("visited");
            for j in grid.within(&pts, pts[i], reach) {
                if coord[j].is_some() {
                    continue;
                }
                let f = cell([pts[j][0] - pts[i][0], pts[j][1] - pts[i][1]]);
                let raw = [ci[0] + f[0], ci[1] + f[1]];
                let frac = [wrap(raw[0]), wrap(raw[1])];
                let k = match sites
                    .iter()
                    .position(|s| wrap(frac[0] - s[0]).abs() < SNAP && wrap(frac[1] - s[1]).abs() < SNAP)
                {
                    Some(k) => k,
                    None => {
                        sites.push(frac);
                        sites.len() - 1
                    }
                };
                // Snap: the whole-cell part from the walk, the site part exact.
                let s = sites[k];
                coord[j] = Some([(raw[0] - s[0]).round() + s[0], (raw[1] - s[1]).round() + s[1]]);
                label[j] = k;
                queue.push_back(j);
            }
        }
    }
    // Regular sites hold at least 2 % of the columns; the rest (defects, contamination, spurious
    // finds) share one extra label after them. Regular sites are numbered by mean volume,
    // dimmest first.
    let count = |k: usize| label.iter().filter(|&&l| l == k).count();
    let regular: Vec<usize> = (0..sites.len()).filter(|&k| count(k) >= 3.max(n / 50)).collect();
    let mean = |k: usize| {
        let v: Vec<f64> =
            (0..n).filter(|&i| label[i] == k).map(|i| columns[i].volume).filter(|v| v.is_finite()).collect();
        if v.is_empty() { f64::NEG_INFINITY } else { v.iter().sum::<f64>() / v.len() as f64 }
    };
    let mut order = regular.clone();
    order.sort_by(|&x, &y| mean(x).total_cmp(&mean(y)));
    let mut rank = vec![order.len() as u32; sites.len()];
    for (pos, &k) in order.iter().enumerate() {
        rank[k] = pos as u32;
    }
    for (c, &k) in columns.iter_mut().zip(&label) {
        c.sublattice = rank[k];
    }
    order.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::columns::fit::FitStatus;

    fn column(x: f64, y: f64, volume: f64) -> AtomColumn {
        AtomColumn {
            x,
            y,
            sigma_x: 2.0,
            sigma_y: 2.0,
            rotation: 0.0,
            amplitude: 1.0,
            volume,
            background: 0.0,
            x_err: 0.0,
            y_err: 0.0,
            sigma_x_err: 0.0,
            sigma_y_err: 0.0,
            amplitude_err: 0.0,
            residual_rms: 0.0,
            status: FitStatus::Fitted,
            sublattice: 0,
            nn_distance: f64::NAN,
            coordination: 0,
            x_err_empirical: f64::NAN,
            y_err_empirical: f64::NAN,
        }
    }

    #[test]
    fn perovskite_sites_survive_strain_across_the_image() {
        // A sites (bright) at the corners, B (dim) at the centre of a 20 px cell turned 0.2 rad,
        // the whole lattice stretched by 3 % along x: 40 cells across, so a plain A⁻¹r would
        // drift by more than a cell.
        let (s, c) = 0.2f64.sin_cos();
        let (a, b) = ([20.0 * c, 20.0 * s], [-20.0 * s, 20.0 * c]);
        let mut cols = Vec::new();
        for i in 0..40 {
            for j in 0..12 {
                for (off, vol, site) in [(0.0, 10.0, 1u32), (0.5, 4.0, 0u32)] {
                    let (u, v) = (i as f64 + off, j as f64 + off);
                    let p = [u * a[0] + v * b[0], u * a[1] + v * b[1]];
                    let mut col = column(1.03 * p[0], p[1], vol);
                    col.sublattice = 9 + site; // the truth, offset to catch untouched columns
                    cols.push(col);
                }
            }
        }
        let truth: Vec<u32> = cols.iter().map(|c| c.sublattice - 9).collect();
        let lattice = Lattice { a, b, g1: [0.0; 2], g2: [0.0; 2] };
        assert_eq!(assign_sites(&mut cols, &lattice), 2);
        let wrong = cols.iter().zip(&truth).filter(|(c, t)| c.sublattice != **t).count();
        assert_eq!(wrong, 0);
    }

    #[test]
    fn a_primitive_lattice_has_one_site() {
        let mut cols: Vec<AtomColumn> =
            (0..10).flat_map(|i| (0..10).map(move |j| column(15.0 * i as f64, 15.0 * j as f64, 5.0))).collect();
        let lattice = Lattice { a: [15.0, 0.0], b: [0.0, 15.0], g1: [0.0; 2], g2: [0.0; 2] };
        // One column off the lattice (an adatom between sites) gets the extra label.
        cols.push(column(52.0, 67.0, 5.0));
        assert_eq!(assign_sites(&mut cols, &lattice), 1);
        assert!(cols[..100].iter().all(|c| c.sublattice == 0));
        assert_eq!(cols[100].sublattice, 1);
    }
}
