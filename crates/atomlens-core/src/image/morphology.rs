//! Binary-image tools for segmentation: Otsu's threshold, the exact Euclidean distance
//! transform (Felzenszwalb–Huttenlocher), opening/closing through it, hole filling, connected
//! components, a watershed that splits touching blobs, and boundary tracing. Hand-written
//! because no maintained pure-Rust crate that builds for wasm32 offers the exact EDT and a
//! dynamics-based watershed (imageproc has neither); each is short and tested here.
use ndarray::{Array2, ArrayView2};

/// Otsu's threshold of the finite values (256 bins): the level maximising the between-class
/// variance. `None` when there are no finite values or all are equal.
pub fn otsu(values: impl Iterator<Item = f32> + Clone) -> Option<f32> {
    let (lo, hi) = values.clone().filter(|v| v.is_finite()).fold((f32::MAX, f32::MIN), |a, v| (a.0.min(v), a.1.max(v)));
    if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) {
        return None;
    }
    let mut hist = [0f64; 256];
    let scale = 255.999 / (hi - lo) as f64;
    for v in values.filter(|v| v.is_finite()) {
        hist[((v - lo) as f64 * scale) as usize] += 1.0;
    }
    let total: f64 = hist.iter().sum();
    let sum_all: f64 = hist.iter().enumerate().map(|(i, &c)| i as f64 * c).sum();
    let (mut w0, mut sum0, mut best, mut best_i) = (0.0, 0.0, -1.0, 0);
    for (i, &c) in hist.iter().enumerate() {
        w0 += c;
        sum0 += i as f64 * c;
        let w1 = total - w0;
        if w0 == 0.0 || w1 == 0.0 {
            continue;
        }
        let (m0, m1) = (sum0 / w0, (sum_all - sum0) / w1);
        let between = w0 * w1 * (m0 - m1).powi(2);
        if between > best {
            (best, best_i) = (between, i);
        }
    }
    Some(lo + ((best_i as f64 + 1.0) / scale) as f32)
}

/// Squared Euclidean distance from every pixel to the nearest `true` pixel (exact, separable;
/// `f32::INFINITY` everywhere when there is none).
pub fn distance_squared_to(mask: ArrayView2<bool>) -> Array2<f32> {
    let (h, w) = mask.dim();
    let mut d = mask.mapv(|m| if m { 0.0f32 } else { f32::INFINITY });
    let mut line = Vec::new();
    for y in 0..h {
        line.clear();
        line.extend(d.row(y).iter());
        let out = edt_1d(&line);
        d.row_mut(y).iter_mut().zip(out).for_each(|(o, v)| *o = v);
    }
    for x in 0..w {
        line.clear();
        line.extend(d.column(x).iter());
        let out = edt_1d(&line);
        d.column_mut(x).iter_mut().zip(out).for_each(|(o, v)| *o = v);
    }
    d
}

/// The lower envelope of parabolas `(q - p)² + f(p)` (Felzenszwalb & Huttenlocher 2012).
fn edt_1d(f: &[f32]) -> Vec<f32> {
    let n = f.len();
    let mut out = vec![f32::INFINITY; n];
    let sites: Vec<usize> = (0..n).filter(|&i| f[i].is_finite()).collect();
    if sites.is_empty() {
        return out;
    }
    let (mut v, mut z) = (Vec::with_capacity(sites.len()), Vec::with_capacity(sites.len() + 1));
    let cross = |q: usize, p: usize| {
        ((f[q] as f64 + (q * q) as f64) - (f[p] as f64 + (p * p) as f64)) / (2.0 * q as f64 - 2.0 * p as f64)
    };
    for &q in &sites {
        while let Some(&p) = v.last() {
            let s = cross(q, p);
            if s <= *z.last().unwrap_or(&f64::MIN) {
                v.pop();
                z.pop();
            } else {
                z.push(s);
                break;
            }
        }
        if v.is_empty() {
            z.clear();
        }
        v.push(q);
    }
    let mut k = 0;
    for (q, o) in out.iter_mut().enumerate() {
        while k < z.len() && z[k] < q as f64 {
            k += 1;
        }
        let p = v[k];
        *o = ((q as f64 - p as f64).powi(2) + f[p] as f64) as f32;
    }
    out
}

/// Opening then closing with a disk of radius `r` px: removes specks and fills notches smaller
/// than the disk.
pub fn open_close(mask: ArrayView2<bool>, r: f64) -> Array2<bool> {
    let r2 = (r * r) as f32;
    let erode = |m: &Array2<bool>| distance_squared_to(m.mapv(|v| !v).view()).mapv(|d| d > r2);
    let dilate = |m: &Array2<bool>| distance_squared_to(m.view()).mapv(|d| d <= r2);
    let opened = dilate(&erode(&mask.to_owned()));
    erode(&dilate(&opened))
}

/// `mask` with every background region that does not reach the border filled.
pub fn fill_holes(mask: ArrayView2<bool>) -> Array2<bool> {
    let (h, w) = mask.dim();
    let mut outside = Array2::from_elem((h, w), false);
    let mut stack: Vec<(usize, usize)> = (0..h)
        .flat_map(|y| [(y, 0), (y, w.saturating_sub(1))])
        .chain((0..w).flat_map(|x| [(0, x), (h - 1, x)]))
        .collect();
    while let Some((y, x)) = stack.pop() {
        if mask[[y, x]] || outside[[y, x]] {
            continue;
        }
        outside[[y, x]] = true;
        for (ny, nx) in neighbours4(y, x, h, w) {
            stack.push((ny, nx));
        }
    }
    outside.mapv(|o| !o)
}

fn neighbours4(y: usize, x: usize, h: usize, w: usize) -> impl Iterator<Item = (usize, usize)> {
    [(-1i64, 0i64), (1, 0), (0, -1), (0, 1)].into_iter().filter_map(move |(dy, dx)| {
        let (ny, nx) = (y as i64 + dy, x as i64 + dx);
        (ny >= 0 && nx >= 0 && ny < h as i64 && nx < w as i64).then_some((ny as usize, nx as usize))
    })
}

fn neighbours8(y: usize, x: usize, h: usize, w: usize) -> impl Iterator<Item = (usize, usize)> {
    (-1i64..=1).flat_map(|dy| (-1i64..=1).map(move |dx| (dy, dx))).filter_map(move |(dy, dx)| {
        let (ny, nx) = (y as i64 + dy, x as i64 + dx);
        ((dy, dx) != (0, 0) && ny >= 0 && nx >= 0 && ny < h as i64 && nx < w as i64)
            .then_some((ny as usize, nx as usize))
    })
}

/// Label the 8-connected components of `mask` 1, 2, … in raster order; returns the labels
/// and the count.
pub fn label(mask: ArrayView2<bool>) -> (Array2<u32>, u32) {
    let (h, w) = mask.dim();
    let mut labels = Array2::<u32>::zeros((h, w));
    let mut n = 0;
    let mut stack = Vec::new();
    for y0 in 0..h {
        for x0 in 0..w {
            if !mask[[y0, x0]] || labels[[y0, x0]] != 0 {
                continue;
            }
            n += 1;
            labels[[y0, x0]] = n;
            stack.push((y0, x0));
            while let Some((y, x)) = stack.pop() {
                for (ny, nx) in neighbours8(y, x, h, w) {
                    if mask[[ny, nx]] && labels[[ny, nx]] == 0 {
                        labels[[ny, nx]] = n;
                        stack.push((ny, nx));
                    }
                }
            }
        }
    }
    (labels, n)
}

/// Split touching blobs of `mask` along the necks of its distance map: a watershed flooding
/// from the distance maxima in which a basin only stays separate when its peak rises at least
/// `dynamic` px above the saddle where it meets another (the h-maxima criterion), so the
/// ridges of one elongated blob do not split it. Returns labels 1… and the count.
pub fn split_touching(mask: ArrayView2<bool>, dynamic: f32) -> (Array2<u32>, u32) {
    let (h, w) = mask.dim();
    let dist = distance_squared_to(mask.mapv(|m| !m).view()).mapv(f32::sqrt);
    let mut order: Vec<usize> = (0..h * w).filter(|&i| mask[[i / w, i % w]]).collect();
    order.sort_by(|&a, &b| dist[[b / w, b % w]].total_cmp(&dist[[a / w, a % w]]));
    // Basins as a union-find with each root's peak height.
    let mut basin = vec![u32::MAX; h * w];
    let (mut parent, mut peak): (Vec<u32>, Vec<f32>) = (Vec::new(), Vec::new());
    fn root(parent: &mut [u32], mut i: u32) -> u32 {
        while parent[i as usize] != i {
            parent[i as usize] = parent[parent[i as usize] as usize];
            i = parent[i as usize];
        }
        i
    }
    for &i in &order {
        let (y, x) = (i / w, i % w);
        let level = dist[[y, x]];
        let mut roots: Vec<u32> = neighbours8(y, x, h, w)
            .filter_map(|(ny, nx)| {
                let b = basin[ny * w + nx];
                (b != u32::MAX).then_some(b)
            })
            .map(|b| root(&mut parent, b))
            .collect();
        roots.sort_unstable();
        roots.dedup();
        if roots.is_empty() {
            parent.push(parent.len() as u32);
            peak.push(level);
            basin[i] = (parent.len() - 1) as u32;
            continue;
        }
        roots.sort_by(|&a, &b| peak[b as usize].total_cmp(&peak[a as usize]));
        let top = roots[0];
        for &r in &roots[1..] {
            if peak[r as usize] - level < dynamic {
                parent[r as usize] = top;
            }
        }
        basin[i] = top;
    }
    let mut labels = Array2::<u32>::zeros((h, w));
    let mut ids = vec![0u32; parent.len()];
    let mut n = 0;
    for &i in &order {
        let r = root(&mut parent, basin[i]) as usize;
        if ids[r] == 0 {
            n += 1;
            ids[r] = n;
        }
        labels[[i / w, i % w]] = ids[r];
    }
    (labels, n)
}

/// The outer boundary of the region `labels == id` traced clockwise (Moore neighbours) from
/// its first pixel in raster order, as pixel centres `[x, y]`.
pub fn trace_boundary(labels: ArrayView2<u32>, id: u32) -> Vec<[f64; 2]> {
    let (h, w) = labels.dim();
    let inside =
        |y: i64, x: i64| y >= 0 && x >= 0 && y < h as i64 && x < w as i64 && labels[[y as usize, x as usize]] == id;
    let Some(start) = (0..h * w).find(|&i| labels[[i / w, i % w]] == id) else { return Vec::new() };
    let start = ((start / w) as i64, (start % w) as i64);
    // Moore neighbourhood, clockwise in image coordinates (y down) starting west.
    const DIRS: [(i64, i64); 8] = [(0, -1), (-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1)];
    let mut out = vec![[start.1 as f64, start.0 as f64]];
    let (mut cur, mut from) = (start, 0usize); // entered from the west (raster order)
    for _ in 0..4 * h * w {
        let next = (0..8).map(|k| (from + k) % 8).find(|&d| inside(cur.0 + DIRS[d].0, cur.1 + DIRS[d].1));
        let Some(d) = next else { break };
        cur = (cur.0 + DIRS[d].0, cur.1 + DIRS[d].1);
        if cur == start {
            break;
        }
        out.push([cur.1 as f64, cur.0 as f64]);
        from = (d + 5) % 8; // radial sweep: resume clockwise just after the pixel we came from
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disk(h: usize, w: usize, c: (f64, f64), r: f64) -> Array2<bool> {
        Array2::from_shape_fn((h, w), |(y, x)| (x as f64 - c.0).hypot(y as f64 - c.1) <= r)
    }

    #[test]
    fn distance_transform_matches_brute_force() {
        let m = Array2::from_shape_fn((23, 31), |(y, x)| (x * 7 + y * 13) % 37 == 0);
        let d = distance_squared_to(m.view());
        let pts: Vec<(usize, usize)> = m.indexed_iter().filter(|(_, v)| **v).map(|(p, _)| p).collect();
        for ((y, x), &v) in d.indexed_iter() {
            let brute = pts
                .iter()
                .map(|&(py, px)| (py as f64 - y as f64).powi(2) + (px as f64 - x as f64).powi(2))
                .fold(f64::MAX, f64::min);
            assert_eq!(v as f64, brute, "at ({x}, {y})");
        }
        assert!(distance_squared_to(Array2::from_elem((3, 3), false).view()).iter().all(|v| v.is_infinite()));
    }

    #[test]
    fn otsu_splits_two_levels() {
        let v: Vec<f32> = (0..1000)
            .map(|i| if i % 3 == 0 { 10.0 + (i % 7) as f32 * 0.1 } else { 2.0 + (i % 5) as f32 * 0.1 })
            .collect();
        let t = otsu(v.iter().copied()).unwrap();
        assert!(t > 2.4 && t <= 10.0, "{t}"); // every low value below, every high value above
        assert!(otsu([1.0f32, 1.0].into_iter()).is_none());
    }

    #[test]
    fn touching_disks_split_and_a_single_ellipse_does_not() {
        let two = disk(60, 100, (30.0, 30.0), 18.0) | disk(60, 100, (62.0, 30.0), 18.0);
        let (lab, n) = split_touching(two.view(), 3.0);
        assert_eq!(n, 2);
        assert_ne!(lab[[30, 25]], lab[[30, 67]]);
        let ellipse = Array2::from_shape_fn((60, 100), |(y, x)| {
            ((x as f64 - 50.0) / 40.0).powi(2) + ((y as f64 - 30.0) / 15.0).powi(2) <= 1.0
        });
        assert_eq!(split_touching(ellipse.view(), 3.0).1, 1);
    }

    #[test]
    fn holes_fill_and_specks_open_away() {
        let mut m = disk(40, 40, (20.0, 20.0), 12.0);
        m[[20, 20]] = false;
        m[[2, 2]] = true;
        let f = fill_holes(m.view());
        assert!(f[[20, 20]]);
        let oc = open_close(f.view(), 2.0);
        assert!(!oc[[2, 2]] && oc[[20, 20]] && oc[[20, 31]]);
        let (_, n) = label(m.view());
        assert_eq!(n, 2);
    }

    #[test]
    fn boundary_of_a_square_walks_its_perimeter() {
        let mut lab = Array2::<u32>::zeros((10, 10));
        lab.slice_mut(ndarray::s![2..6, 3..8]).fill(4);
        let b = trace_boundary(lab.view(), 4);
        assert_eq!(b.len(), 2 * (4 + 5) - 4);
        assert_eq!(b[0], [3.0, 2.0]);
        assert!(b.iter().all(|p| p[0] == 3.0 || p[0] == 7.0 || p[1] == 2.0 || p[1] == 5.0));
    }
}
