//! Defects from the neighbour graph of the columns (after Ovchinnikov et al. 2020): the Delaunay
//! triangulation of the positions (the `delaunator` crate) without edges longer than the first
//! neighbour shell (1.3 spacings) is the column graph; its faces are its rings. A perfect
//! lattice has rings of one size (triangles in a close-packed projection, squares in a square
//! one); a missing column opens a ring at least three sides larger, at whose centre no column
//! sits. An extra column sits closer than 0.75 spacing to another, or has two or more neighbours
//! more than the lattice allows. The lattice's bond vectors are learnt from the graph itself (the
//! most common bond vectors, as many as an interior column has bonds; a power-spectrum lattice
//! would miss the half-cell bonds of an ordered alloy's basis). Columns most of whose bonds match
//! none of them are *misfit*: a twin, stacking fault or grain boundary runs through them (the
//! graph does not tell these apart).
use delaunator::{EMPTY, Point, next_halfedge, triangulate};
use serde::{Deserialize, Serialize};

/// What a defect is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefectKind {
    /// An empty lattice site inside the column graph.
    Missing,
    /// A column too close to another, or with too many neighbours.
    Extra,
}

/// One defect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Defect {
    /// Kind.
    pub kind: DefectKind,
    /// Where (px): the ring's centre for a missing column, the column for an extra one.
    pub x: f64,
    /// See `x`.
    pub y: f64,
    /// The columns involved (the ring, or the crowded pair).
    pub columns: Vec<usize>,
}

/// A connected region of misfit columns, typed by its width.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MisfitRegion {
    /// A band at most 1.5 spacings wide (a stacking fault: one faulted layer, or a boundary
    /// line), or a wider domain (a twin or misoriented grain, whose edge is the boundary).
    pub kind: RegionKind,
    /// Its columns (indices into the points).
    pub columns: Vec<usize>,
    /// Extent along and across its main axis (px, ≈ 3.46 standard deviations each).
    pub length: f64,
    /// See `length`.
    pub width: f64,
}

/// What a misfit region looks like.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RegionKind {
    /// A thin band.
    StackingFault,
    /// A wide domain.
    Twin,
}

/// The ring analysis of a set of columns.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Defects {
    /// Missing and extra columns.
    pub defects: Vec<Defect>,
    /// `(ring size, count)` over the inner faces of the graph.
    pub rings: Vec<(usize, usize)>,
    /// The lattice's ring size (the most common).
    pub typical_ring: usize,
    /// Per column: most of its bonds fit none of the lattice's bond vectors.
    pub misfit: Vec<bool>,
    /// Connected misfit regions of three or more columns.
    pub regions: Vec<MisfitRegion>,
}

impl Defects {
    /// No ring analysis of `n` columns (where they are not resolved: a particle off axis).
    pub fn none(n: usize) -> Defects {
        Defects { defects: Vec::new(), rings: Vec::new(), typical_ring: 0, misfit: vec![false; n], regions: Vec::new() }
    }
}

/// Ring analysis of `points` (px) with nearest-neighbour distance `spacing` (px).
pub fn find_defects(points: &[[f64; 2]], spacing: f64) -> Defects {
    let n = points.len();
    let empty = Defects {
        defects: Vec::new(),
        rings: Vec::new(),
        typical_ring: 0,
        misfit: vec![false; n],
        regions: Vec::new(),
    };
    if n < 3 || !(spacing.is_finite() && spacing > 0.0) {
        return empty;
    }
    let pts: Vec<Point> = points.iter().map(|p| Point { x: p[0], y: p[1] }).collect();
    let t = triangulate(&pts);
    if t.triangles.is_empty() {
        return empty;
    }
    let len = |e: usize| {
        let (a, b) = (points[t.triangles[e]], points[t.triangles[next_halfedge(e)]]);
        (a[0] - b[0]).hypot(a[1] - b[1])
    };
    let bond = 1.3 * spacing;
    let kept = |e: usize| len(e) <= bond;
    // Faces: triangles joined across removed inner edges (union-find); a face that reaches the
    // hull through a removed edge is outside the graph.
    let nt = t.triangles.len() / 3;
    let mut parent: Vec<usize> = (0..nt).collect();
    fn root(p: &mut [usize], mut i: usize) -> usize {
        while p[i] != i {
            p[i] = p[p[i]];
            i = p[i];
        }
        i
    }
    for e in 0..t.triangles.len() {
        let o = t.halfedges[e];
        if o != EMPTY && e < o && !kept(e) {
            let (a, b) = (root(&mut parent, e / 3), root(&mut parent, o / 3));
            parent[a] = b;
        }
    }
    let mut outside = vec![false; nt];
    let mut sides = vec![0usize; nt];
    let mut ring: Vec<Vec<usize>> = vec![Vec::new(); nt];
    for e in 0..t.triangles.len() {
        let f = root(&mut parent, e / 3);
        if t.halfedges[e] == EMPTY && !kept(e) {
            outside[f] = true;
        }
        if kept(e) {
            sides[f] += 1;
            ring[f].push(t.triangles[e]);
        }
    }
    let faces: Vec<usize> = (0..nt).filter(|&f| root(&mut parent, f) == f && !outside[f] && sides[f] >= 3).collect();
    let mut hist = std::collections::BTreeMap::new();
    for &f in &faces {
        *hist.entry(sides[f]).or_insert(0usize) += 1;
    }
    let typical_ring = hist.iter().max_by_key(|(_, c)| **c).map_or(0, |(s, _)| *s);
    let grid = crate::lattice::neighbours::Grid::new(points, spacing);
    let mut defects = Vec::new();
    for &f in &faces {
        if sides[f] < typical_ring + 3 {
            continue;
        }
        let (sx, sy) = ring[f].iter().fold((0.0, 0.0), |a, &i| (a.0 + points[i][0], a.1 + points[i][1]));
        let c = [sx / ring[f].len() as f64, sy / ring[f].len() as f64];
        // An empty site: nothing within 0.6 spacing of the ring's centre.
        if grid.within(points, c, 0.6 * spacing).is_empty() {
            let mut cols = ring[f].clone();
            cols.sort_unstable();
            cols.dedup();
            defects.push(Defect { kind: DefectKind::Missing, x: c[0], y: c[1], columns: cols });
        }
    }
    // Bonds per column from the kept edges (each inner edge seen from both sides once).
    let mut bonds: Vec<Vec<usize>> = vec![Vec::new(); n];
    for e in 0..t.triangles.len() {
        let o = t.halfedges[e];
        if kept(e) && (o == EMPTY || e < o) {
            let (a, b) = (t.triangles[e], t.triangles[next_halfedge(e)]);
            bonds[a].push(b);
            bonds[b].push(a);
        }
    }
    let mut counts: Vec<usize> = bonds.iter().map(Vec::len).collect();
    counts.sort_unstable();
    let full = counts[counts.len() * 9 / 10];
    for i in 0..n {
        let close: Vec<usize> =
            grid.within(points, points[i], 0.75 * spacing).into_iter().filter(|&j| j != i).collect();
        if !close.is_empty() || bonds[i].len() >= full + 2 {
            let mut cols = close;
            cols.push(i);
            defects.push(Defect { kind: DefectKind::Extra, x: points[i][0], y: points[i][1], columns: cols });
        }
    }
    let reference = common_bonds(points, &bonds, spacing, full);
    let misfit = misfits(points, &bonds, &reference, spacing);
    let regions = regions(points, &bonds, &misfit, spacing);
    Defects { defects, rings: hist.into_iter().collect(), typical_ring, misfit, regions }
}

/// Connected misfit columns (through bonds), measured by their second moments.
fn regions(points: &[[f64; 2]], bonds: &[Vec<usize>], misfit: &[bool], spacing: f64) -> Vec<MisfitRegion> {
    let mut out = Vec::new();
    for cols in crate::lattice::neighbours::components(misfit, bonds) {
        if cols.len() < 3 {
            continue;
        }
        let n = cols.len() as f64;
        let (mx, my) = cols.iter().fold((0.0, 0.0), |a, &i| (a.0 + points[i][0] / n, a.1 + points[i][1] / n));
        let (mut sxx, mut syy, mut sxy) = (0.0, 0.0, 0.0);
        for &i in &cols {
            let (dx, dy) = (points[i][0] - mx, points[i][1] - my);
            (sxx, syy, sxy) = (sxx + dx * dx / n, syy + dy * dy / n, sxy + dx * dy / n);
        }
        let disc = ((sxx - syy).powi(2) / 4.0 + sxy * sxy).sqrt();
        let (l1, l2) = ((sxx + syy) / 2.0 + disc, ((sxx + syy) / 2.0 - disc).max(0.0));
        let (length, width) = (12f64.sqrt() * l1.sqrt(), 12f64.sqrt() * l2.sqrt());
        let kind = if width <= 1.5 * spacing { RegionKind::StackingFault } else { RegionKind::Twin };
        out.push(MisfitRegion { kind, columns: cols, length, width });
    }
    out
}

/// The `k` most common bond vectors: densest cells of a fine grid over all bond vectors (each
/// counted with its 5×5 neighbourhood), each taken as the mean of the vectors within 0.2 spacing,
/// which are then set aside.
fn common_bonds(points: &[[f64; 2]], bonds: &[Vec<usize>], spacing: f64, k: usize) -> Vec<[f64; 2]> {
    let mut vecs: Vec<[f64; 2]> = Vec::new();
    for (i, b) in bonds.iter().enumerate() {
        vecs.extend(b.iter().map(|&j| [points[j][0] - points[i][0], points[j][1] - points[i][1]]));
    }
    let cell = 0.05 * spacing;
    let key = |v: [f64; 2]| ((v[0] / cell).round() as i64, (v[1] / cell).round() as i64);
    let mut grid: std::collections::HashMap<(i64, i64), usize> = std::collections::HashMap::new();
    for &v in &vecs {
        *grid.entry(key(v)).or_insert(0) += 1;
    }
    let mut alive = vec![true; vecs.len()];
    let mut out = Vec::new();
    for _ in 0..k {
        let density = |c: (i64, i64), g: &std::collections::HashMap<(i64, i64), usize>| {
            (-2..=2)
                .flat_map(|dx| (-2..=2).map(move |dy| (dx, dy)))
                .map(|(dx, dy)| g.get(&(c.0 + dx, c.1 + dy)).copied().unwrap_or(0))
                .sum::<usize>()
        };
        let Some(best) = grid.keys().copied().max_by_key(|&c| (density(c, &grid), c)) else { break };
        if density(best, &grid) == 0 {
            break;
        }
        let centre = [best.0 as f64 * cell, best.1 as f64 * cell];
        let (mut sx, mut sy, mut m) = (0.0, 0.0, 0.0);
        for (v, a) in vecs.iter().zip(alive.iter_mut()) {
            if *a && (v[0] - centre[0]).hypot(v[1] - centre[1]) <= 0.2 * spacing {
                (sx, sy, m) = (sx + v[0], sy + v[1], m + 1.0);
                *a = false;
                if let Some(c) = grid.get_mut(&key(*v)) {
                    *c -= 1;
                }
            }
        }
        if m > 0.0 {
            out.push([sx / m, sy / m]);
        }
    }
    out
}

/// Columns with at least three bonds, most of which match none of the `reference` bond vectors
/// (within 0.2 spacing).
fn misfits(points: &[[f64; 2]], bonds: &[Vec<usize>], reference: &[[f64; 2]], spacing: f64) -> Vec<bool> {
    (0..points.len())
        .map(|i| {
            let b = &bonds[i];
            if b.len() < 3 {
                return false;
            }
            let off = b
                .iter()
                .filter(|&&j| {
                    let d = [points[j][0] - points[i][0], points[j][1] - points[i][1]];
                    reference.iter().all(|v| (d[0] - v[0]).hypot(d[1] - v[1]) > 0.2 * spacing)
                })
                .count();
            2 * off > b.len()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A centred rectangular lattice like Pt \[110\] (0.2775 × 0.3924 nm at 0.02 nm/px).
    fn lattice_points(n: i32) -> (Vec<[f64; 2]>, f64) {
        let (du, dv) = (13.875, 19.62);
        let mut p = Vec::new();
        for i in -n..=n {
            for j in -n..=n {
                p.push([200.0 + i as f64 * du, 200.0 + j as f64 * dv]);
                p.push([200.0 + (i as f64 + 0.5) * du, 200.0 + (j as f64 + 0.5) * dv]);
            }
        }
        (p, (du * du / 4.0 + dv * dv / 4.0).sqrt())
    }

    #[test]
    fn a_perfect_lattice_has_one_ring_size_and_no_defects() {
        let (p, s) = lattice_points(6);
        let d = find_defects(&p, s);
        assert_eq!(d.typical_ring, 3, "{:?}", d.rings);
        assert!(d.defects.is_empty(), "{:?}", d.defects);
        assert!(d.misfit.iter().all(|m| !m));
    }

    #[test]
    fn a_vacancy_and_an_interstitial_are_found_where_they_are() {
        let (mut p, s) = lattice_points(6);
        let gone = p.iter().position(|q| q[0] == 200.0 && q[1] == 200.0).unwrap();
        let site = p.remove(gone);
        p.push([200.0 + 3.0 * 13.875, 200.0 + 0.5 * 19.62 - 4.0]); // squeezed between columns
        let d = find_defects(&p, s);
        let missing: Vec<&Defect> = d.defects.iter().filter(|x| x.kind == DefectKind::Missing).collect();
        assert_eq!(missing.len(), 1, "{:?}", d.defects);
        assert!((missing[0].x - site[0]).hypot(missing[0].y - site[1]) < 1.0);
        assert!(d.defects.iter().any(|x| x.kind == DefectKind::Extra && x.columns.contains(&(p.len() - 1))));
    }

    #[test]
    fn a_rotated_domain_is_misfit() {
        let (p, s) = lattice_points(7);
        // The right third turned by 25° about its edge: its bonds fit none of the majority's.
        let (sn, cs) = 25f64.to_radians().sin_cos();
        let q: Vec<[f64; 2]> = p
            .iter()
            .map(|&[x, y]| {
                if x > 230.0 {
                    [230.0 + cs * (x - 230.0) - sn * (y - 200.0), 200.0 + sn * (x - 230.0) + cs * (y - 200.0)]
                } else {
                    [x, y]
                }
            })
            .collect();
        let d = find_defects(&q, s);
        let right = (0..q.len()).filter(|&i| p[i][0] > 260.0).collect::<Vec<_>>();
        let left = (0..q.len()).filter(|&i| p[i][0] < 200.0).collect::<Vec<_>>();
        let frac = |ids: &[usize]| ids.iter().filter(|&&i| d.misfit[i]).count() as f64 / ids.len() as f64;
        assert!(frac(&right) > 0.8 && frac(&left) < 0.05, "right {} left {}", frac(&right), frac(&left));
        // One wide region: a twin (or misoriented grain), not a fault.
        assert!(
            d.regions.iter().any(|r| r.kind == RegionKind::Twin && r.columns.len() > 50),
            "{:?}",
            d.regions.iter().map(|r| (r.kind, r.columns.len(), r.width)).collect::<Vec<_>>()
        );
        assert!(!d.regions.iter().any(|r| r.kind == RegionKind::StackingFault && r.columns.len() > 5));
    }

    #[test]
    fn a_slipped_layer_is_a_stacking_fault() {
        // One (001) layer of the centred lattice slipped by a quarter period along it: a thin band
        // of bonds that fit nothing, across the whole crystal.
        let (mut p, s) = lattice_points(7);
        for q in p.iter_mut().filter(|q| (q[1] - 200.0).abs() < 1.0) {
            q[0] += 13.875 / 4.0;
        }
        let d = find_defects(&p, s);
        let faults: Vec<&MisfitRegion> = d.regions.iter().filter(|r| r.kind == RegionKind::StackingFault).collect();
        assert_eq!(
            faults.len(),
            1,
            "{:?}",
            d.regions.iter().map(|r| (r.kind, r.columns.len(), r.width)).collect::<Vec<_>>()
        );
        assert!(faults[0].length > 10.0 * s && faults[0].width < s, "{:?}", (faults[0].length, faults[0].width));
        assert!(!d.regions.iter().any(|r| r.kind == RegionKind::Twin));
    }
}
