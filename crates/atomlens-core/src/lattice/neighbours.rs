//! Neighbour queries over column positions with a uniform grid (positions are roughly evenly
//! spread, so a grid beats a tree and stays simple).

/// A grid index over points `[x, y]`.
pub struct Grid {
    cell: f64,
    gw: usize,
    gh: usize,
    x0: f64,
    y0: f64,
    cells: Vec<Vec<usize>>,
}

impl Grid {
    /// Index `points` with cells of side `cell`.
    pub fn new(points: &[[f64; 2]], cell: f64) -> Self {
        let cell = if cell.is_finite() && cell > 0.0 { cell } else { 1.0 };
        let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
        for p in points {
            x0 = x0.min(p[0]);
            y0 = y0.min(p[1]);
            x1 = x1.max(p[0]);
            y1 = y1.max(p[1]);
        }
        if points.is_empty() {
            (x0, y0, x1, y1) = (0.0, 0.0, 0.0, 0.0);
        }
        let gw = ((x1 - x0) / cell) as usize + 1;
        let gh = ((y1 - y0) / cell) as usize + 1;
        let mut cells = vec![Vec::new(); gw * gh];
        for (i, p) in points.iter().enumerate() {
            let (cx, cy) = (((p[0] - x0) / cell) as usize, ((p[1] - y0) / cell) as usize);
            cells[cy.min(gh - 1) * gw + cx.min(gw - 1)].push(i);
        }
        Self { cell, gw, gh, x0, y0, cells }
    }

    /// Indices of the points within `r` of `q` (including a point at `q` itself).
    pub fn within(&self, points: &[[f64; 2]], q: [f64; 2], r: f64) -> Vec<usize> {
        let reach = (r / self.cell).ceil() as i64;
        let (cx, cy) = (((q[0] - self.x0) / self.cell).floor() as i64, ((q[1] - self.y0) / self.cell).floor() as i64);
        let mut out = Vec::new();
        for gy in (cy - reach).max(0)..=(cy + reach).min(self.gh as i64 - 1) {
            for gx in (cx - reach).max(0)..=(cx + reach).min(self.gw as i64 - 1) {
                for &i in &self.cells[gy as usize * self.gw + gx as usize] {
                    let p = points[i];
                    if (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) <= r * r {
                        out.push(i);
                    }
                }
            }
        }
        out
    }
}

/// The connected groups of the items where `keep` is true, through `links` (each item's
/// neighbours): the members of each group, in the order found.
pub fn components(keep: &[bool], links: &[Vec<usize>]) -> Vec<Vec<usize>> {
    let mut seen = vec![false; keep.len()];
    let mut out = Vec::new();
    for start in 0..keep.len() {
        if !keep[start] || seen[start] {
            continue;
        }
        seen[start] = true;
        let (mut stack, mut members) = (vec![start], Vec::new());
        while let Some(i) = stack.pop() {
            members.push(i);
            for &j in &links[i] {
                if keep[j] && !seen[j] {
                    seen[j] = true;
                    stack.push(j);
                }
            }
        }
        out.push(members);
    }
    out
}

/// Every column with two neighbours opposite each other: `(i, j, k)` with `j` within 1.25 ×
/// `spacing` of `i` and `k` the point nearest `2·pᵢ − pⱼ`, within a quarter spacing of it; each
/// unordered pair `(j, k)` once (`j < k`). Second differences over these triples cancel
/// whatever varies linearly across the lattice (precision, convexity of a thickness map).
pub fn opposite_triples(points: &[[f64; 2]], spacing: f64) -> Vec<(usize, usize, usize)> {
    let grid = Grid::new(points, 1.25 * spacing);
    let d2 = |a: [f64; 2], b: [f64; 2]| (a[0] - b[0]).powi(2) + (a[1] - b[1]).powi(2);
    let mut out = Vec::new();
    for (i, &p) in points.iter().enumerate() {
        for j in grid.within(points, p, 1.25 * spacing).into_iter().filter(|&j| j != i) {
            let mirror = [2.0 * p[0] - points[j][0], 2.0 * p[1] - points[j][1]];
            let opposite = grid
                .within(points, mirror, 0.25 * spacing)
                .into_iter()
                .filter(|&k| k != i && k != j)
                .min_by(|&a, &b| d2(points[a], mirror).total_cmp(&d2(points[b], mirror)));
            if let Some(k) = opposite.filter(|&k| j < k) {
                out.push((i, j, k));
            }
        }
    }
    out
}

/// Nearest-neighbour distance of every point and how many points lie within its first shell
/// (`1.25 ×` the median nearest-neighbour distance).
pub fn coordination(points: &[[f64; 2]], hint: f64) -> (Vec<f64>, Vec<u32>) {
    let nn = nearest_distances(points, hint);
    let mut finite: Vec<f64> = nn.iter().copied().filter(|d| d.is_finite()).collect();
    if finite.is_empty() {
        return (nn, vec![0; points.len()]);
    }
    let k = finite.len() / 2;
    let shell = 1.25 * *finite.select_nth_unstable_by(k, f64::total_cmp).1;
    let grid = Grid::new(points, shell);
    let counts = points.iter().map(|&p| grid.within(points, p, shell).len().saturating_sub(1) as u32).collect();
    (nn, counts)
}

/// Distance from each point to its nearest other point (`f64::INFINITY` for a lone point).
/// `hint` is a typical spacing used to size the search.
pub fn nearest_distances(points: &[[f64; 2]], hint: f64) -> Vec<f64> {
    let grid = Grid::new(points, hint);
    points
        .iter()
        .enumerate()
        .map(|(i, &p)| {
            let mut r = hint;
            loop {
                let best = grid
                    .within(points, p, r)
                    .into_iter()
                    .filter(|&j| j != i)
                    .map(|j| (points[j][0] - p[0]).hypot(points[j][1] - p[1]))
                    .fold(f64::INFINITY, f64::min);
                if best.is_finite() || r > 1e6 || points.len() < 2 {
                    return best;
                }
                r *= 2.0;
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn square_lattice_coordination_is_four_inside_and_less_at_the_edge() {
        let pts: Vec<[f64; 2]> = (0..5).flat_map(|i| (0..5).map(move |j| [10.0 * i as f64, 10.0 * j as f64])).collect();
        let (nn, c) = coordination(&pts, 10.0);
        assert!(nn.iter().all(|&d| (d - 10.0).abs() < 1e-12));
        assert_eq!(c[12], 4); // the centre
        assert_eq!(c[0], 2); // a corner
        assert_eq!(c[2], 3); // an edge
    }

    #[test]
    fn grid_matches_brute_force() {
        let pts: Vec<[f64; 2]> =
            (0..200).map(|i| [((i * 37) % 101) as f64 * 1.3, ((i * 53) % 89) as f64 * 0.9]).collect();
        let g = Grid::new(&pts, 7.0);
        for &q in pts.iter().take(20) {
            let mut a = g.within(&pts, q, 11.0);
            let mut b: Vec<usize> =
                (0..pts.len()).filter(|&j| (pts[j][0] - q[0]).hypot(pts[j][1] - q[1]) <= 11.0).collect();
            a.sort();
            b.sort();
            assert_eq!(a, b);
        }
        let nn = nearest_distances(&pts, 3.0);
        for (i, &p) in pts.iter().enumerate() {
            let brute = (0..pts.len())
                .filter(|&j| j != i)
                .map(|j| (pts[j][0] - p[0]).hypot(pts[j][1] - p[1]))
                .fold(f64::INFINITY, f64::min);
            assert!((nn[i] - brute).abs() < 1e-12);
        }
    }
}
