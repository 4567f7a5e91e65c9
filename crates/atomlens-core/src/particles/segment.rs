//! Nanoparticles on a support: segmentation (smoothed Otsu threshold, opening/closing, holes
//! filled, touching particles split by a watershed on the distance map), per-particle size and
//! shape, and — given fitted columns — surface columns by 2-D coordination and facet traces
//! along the convex hull of the columns. Lengths are in pixels; callers convert with the
//! calibration.
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::CoreError;
use crate::image::filter::gaussian_blur;
use crate::image::morphology::{fill_holes, label, open_close, otsu, split_touching, trace_boundary};

/// Segmentation parameters; `None` means estimated from the image.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ParticleParams {
    /// Gaussian smoothing before the threshold (px); default 1.5 × the column spacing.
    pub smoothing: Option<f64>,
    /// Threshold on the smoothed image; default Otsu's.
    pub threshold: Option<f64>,
    /// Smallest particle kept (px²); default (3 spacings)².
    pub min_area: Option<f64>,
    /// Keep touching particles together instead of splitting them.
    pub no_split: bool,
}

/// One segmented particle.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Particle {
    /// Label in [`Segmentation::labels`] (1…).
    pub id: u32,
    /// Projected area (px²).
    pub area: f64,
    /// Diameter of the disk of the same area (px).
    pub equivalent_diameter: f64,
    /// Centroid `[x, y]` (px).
    pub centroid: [f64; 2],
    /// Major / minor axis of the ellipse with the same second moments (≥ 1).
    pub aspect_ratio: f64,
    /// Direction of the major axis (radians from +x towards +y, in [0, π)).
    pub orientation: f64,
    /// Whether the particle reaches the image border (its size and outline are then cut).
    pub touches_border: bool,
    /// Outline pixel centres `[x, y]`, clockwise on screen.
    pub outline: Vec<[f64; 2]>,
}

/// Particles of an image and the label image they come from.
#[derive(Debug, Clone, PartialEq)]
pub struct Segmentation {
    /// 0 for the support, `Particle::id` inside a particle.
    pub labels: Array2<u32>,
    /// One entry per particle, largest first.
    pub particles: Vec<Particle>,
    /// Threshold used on the smoothed image.
    pub threshold: f64,
    /// Smoothing used (px).
    pub smoothing: f64,
}

/// Segment the particles of `img` (brighter than the support, as in HAADF). `spacing` is the
/// column spacing (px) when known; it sets the default smoothing and smallest area.
pub fn segment(img: ArrayView2<f32>, spacing: Option<f64>, p: &ParticleParams) -> Result<Segmentation, CoreError> {
    crate::image::check_usable(img)?;
    let (h, w) = img.dim();
    if h < 16 || w < 16 {
        return Err(CoreError::TooSmall { width: w, height: h, min: 16, what: "particle segmentation" });
    }
    let spacing = spacing.filter(|s| s.is_finite() && *s > 0.0).unwrap_or((h.min(w) as f64 / 64.0).max(2.0));
    let smoothing = p.smoothing.unwrap_or(1.5 * spacing);
    if !(smoothing.is_finite() && smoothing >= 0.0) {
        return Err(CoreError::InvalidParameter { name: "smoothing", reason: format!("{smoothing} must be ≥ 0") });
    }
    let smooth = gaussian_blur(img, smoothing);
    let threshold = match p.threshold {
        Some(t) => t,
        None => otsu(smooth.iter().copied()).ok_or_else(|| no_particle("the image is uniform".into()))? as f64,
    };
    let raw = smooth.mapv(|v| v as f64 > threshold);
    let mask = fill_holes(open_close(raw.view(), 0.5 * spacing).view());
    let contrast = local_contrast(img, &smooth, &mask);
    if p.threshold.is_none() && contrast < 4.0 {
        return Err(no_particle(format!(
            "the brighter regions are no more textured than the support (local variance ratio {contrast:.1}; \
             a crystalline particle gives ≥ 4) — set a threshold to segment anyway"
        )));
    }
    let (labels, n) =
        if p.no_split { label(mask.view()) } else { split_touching(mask.view(), (0.2 * spacing as f32).max(2.0)) };
    let min_area = p.min_area.unwrap_or((3.0 * spacing).powi(2));
    let mut particles: Vec<Particle> = (1..=n).filter_map(|id| measure(labels.view(), id)).collect();
    particles.retain(|q| q.area >= min_area);
    if particles.is_empty() {
        return Err(no_particle(format!("no region above the threshold covers {min_area:.0} px² or more")));
    }
    particles.sort_by(|a, b| b.area.total_cmp(&a.area));
    // Renumber 1… largest first; dropped regions become support.
    let mut new_id = vec![0u32; n as usize + 1];
    for (k, q) in particles.iter_mut().enumerate() {
        new_id[q.id as usize] = k as u32 + 1;
        q.id = k as u32 + 1;
    }
    let labels = labels.mapv(|l| new_id[l as usize]);
    Ok(Segmentation { labels, particles, threshold, smoothing })
}

fn no_particle(reason: String) -> CoreError {
    CoreError::NotFound { what: "particle", reason }
}

/// Variance of the image's fine detail (image − smoothed) inside `mask` over outside: columns
/// make a particle far more textured than the amorphous support's noise.
fn local_contrast(img: ArrayView2<f32>, smooth: &Array2<f32>, mask: &Array2<bool>) -> f64 {
    let (mut s, mut n) = ([0.0f64; 2], [0usize; 2]);
    for ((&v, &b), &m) in img.iter().zip(smooth.iter()).zip(mask.iter()) {
        if v.is_finite() {
            s[m as usize] += ((v - b) as f64).powi(2);
            n[m as usize] += 1;
        }
    }
    if n[0] == 0 || n[1] == 0 {
        return 0.0;
    }
    (s[1] / n[1] as f64) / (s[0] / n[0] as f64).max(1e-300)
}

fn measure(labels: ArrayView2<u32>, id: u32) -> Option<Particle> {
    let (h, w) = labels.dim();
    let (mut n, mut sx, mut sy, mut sxx, mut syy, mut sxy, mut border) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0, false);
    for ((y, x), &l) in labels.indexed_iter() {
        if l == id {
            let (xf, yf) = (x as f64, y as f64);
            n += 1.0;
            sx += xf;
            sy += yf;
            sxx += xf * xf;
            syy += yf * yf;
            sxy += xf * yf;
            border |= x == 0 || y == 0 || x + 1 == w || y + 1 == h;
        }
    }
    if n == 0.0 {
        return None;
    }
    let (cx, cy) = (sx / n, sy / n);
    // Second moments (+1/12 for the pixel's own extent) → ellipse axes.
    let (vxx, vyy, vxy) = (sxx / n - cx * cx + 1.0 / 12.0, syy / n - cy * cy + 1.0 / 12.0, sxy / n - cx * cy);
    let tr = vxx + vyy;
    let disc = ((vxx - vyy).powi(2) / 4.0 + vxy * vxy).sqrt();
    let (l1, l2) = (tr / 2.0 + disc, (tr / 2.0 - disc).max(1e-12));
    let orientation = (0.5 * (2.0 * vxy).atan2(vxx - vyy)).rem_euclid(std::f64::consts::PI);
    Some(Particle {
        id,
        area: n,
        equivalent_diameter: 2.0 * (n / std::f64::consts::PI).sqrt(),
        centroid: [cx, cy],
        aspect_ratio: (l1 / l2).sqrt(),
        orientation,
        touches_border: border,
        outline: trace_boundary(labels, id),
    })
}

/// Where a column sits in its particle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Site {
    /// Full coordination.
    Interior,
    /// Fewer neighbours than the interior: on a facet.
    Surface,
    /// At most half the interior's neighbours: a corner or edge where facets meet.
    Edge,
}

/// Columns of one particle: which are inside it, their sites, and its facets.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ParticleColumns {
    /// Indices into the caller's column list.
    pub columns: Vec<usize>,
    /// Site of each of `columns`.
    pub sites: Vec<Site>,
    /// Coordination of an interior column (the 90th percentile of the particle's).
    pub interior_coordination: u32,
    /// Facet traces along the hull of the columns.
    pub facets: Vec<Facet>,
}

/// A straight run of surface columns along the particle's hull.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Facet {
    /// End points `[x, y]` (px).
    pub from: [f64; 2],
    /// End point `[x, y]` (px).
    pub to: [f64; 2],
    /// Length (px).
    pub length: f64,
    /// Direction of the trace (degrees from +x towards +y, in [0, 180)).
    pub angle: f64,
    /// Angle to the nearest lattice vector direction (degrees, 0–90) when a lattice is known.
    pub angle_to_lattice: Option<f64>,
    /// Indices (into the caller's list) of the columns on the trace.
    pub columns: Vec<usize>,
}

/// Sites and facets of the columns (`points`, px) of a particle, given `near`, the squared
/// distance to it (`morphology::distance_squared_to` of its mask). `spacing` is the
/// nearest-neighbour distance (px); `lattice` directions label the facets.
pub fn particle_columns(
    near: ArrayView2<f32>,
    points: &[[f64; 2]],
    spacing: f64,
    lattice: Option<&crate::lattice::Lattice>,
) -> ParticleColumns {
    let (h, w) = near.dim();
    // Columns just outside the thresholded outline still belong to it: grow it by one spacing.
    let reach = (spacing * spacing) as f32;
    let columns: Vec<usize> = (0..points.len())
        .filter(|&i| {
            let (x, y) = (points[i][0].round(), points[i][1].round());
            x >= 0.0 && y >= 0.0 && (x as usize) < w && (y as usize) < h && near[[y as usize, x as usize]] <= reach
        })
        .collect();
    let pts: Vec<[f64; 2]> = columns.iter().map(|&i| points[i]).collect();
    let (_, coordination) = crate::lattice::neighbours::coordination(&pts, spacing);
    let mut sorted = coordination.clone();
    sorted.sort_unstable();
    let interior = sorted.get(sorted.len() * 9 / 10).copied().unwrap_or(0);
    let hull = convex_hull(&pts);
    let facets = facets_along(&hull, &pts, spacing, lattice)
        .into_iter()
        .map(|f| Facet { columns: f.columns.iter().map(|&k| columns[k]).collect(), ..f })
        .collect::<Vec<_>>();
    let corners: std::collections::HashSet<usize> =
        facets.iter().flat_map(|f| [f.columns.first().copied(), f.columns.last().copied()]).flatten().collect();
    let sites = columns
        .iter()
        .zip(&coordination)
        .map(|(i, &c)| {
            if 2 * c <= interior || corners.contains(i) {
                Site::Edge
            } else if c < interior {
                Site::Surface
            } else {
                Site::Interior
            }
        })
        .collect();
    ParticleColumns { columns, sites, interior_coordination: interior, facets }
}

/// Indices of the convex hull of `pts`, counter-clockwise in (x, y) (Andrew's monotone chain).
fn convex_hull(pts: &[[f64; 2]]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..pts.len()).collect();
    idx.sort_by(|&a, &b| pts[a][0].total_cmp(&pts[b][0]).then(pts[a][1].total_cmp(&pts[b][1])));
    if idx.len() < 3 {
        return idx;
    }
    let cross = |o: usize, a: usize, b: usize| {
        (pts[a][0] - pts[o][0]) * (pts[b][1] - pts[o][1]) - (pts[a][1] - pts[o][1]) * (pts[b][0] - pts[o][0])
    };
    let mut hull: Vec<usize> = Vec::new();
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &usize>> =
            if pass == 0 { Box::new(idx.iter()) } else { Box::new(idx.iter().rev()) };
        for &i in iter {
            while hull.len() >= start + 2 && cross(hull[hull.len() - 2], hull[hull.len() - 1], i) <= 0.0 {
                hull.pop();
            }
            hull.push(i);
        }
        hull.pop();
    }
    hull
}

/// Merge consecutive hull edges that run within 12° of each other into facet traces and keep
/// those with at least three columns on them.
fn facets_along(
    hull: &[usize],
    pts: &[[f64; 2]],
    spacing: f64,
    lattice: Option<&crate::lattice::Lattice>,
) -> Vec<Facet> {
    if hull.len() < 3 {
        return Vec::new();
    }
    let dir = |a: usize, b: usize| (pts[b][1] - pts[a][1]).atan2(pts[b][0] - pts[a][0]);
    let n = hull.len();
    // Start at a corner so no run wraps around.
    let turn = |k: usize| {
        let (a, b, c) = (hull[(k + n - 1) % n], hull[k], hull[(k + 1) % n]);
        angle_diff(dir(a, b), dir(b, c))
    };
    let start = (0..n).max_by(|&a, &b| turn(a).total_cmp(&turn(b))).unwrap_or(0);
    let mut runs: Vec<(usize, usize)> = Vec::new(); // hull positions (from, to)
    let mut k = 0;
    while k < n {
        let from = (start + k) % n;
        let d0 = dir(hull[from], hull[(from + 1) % n]);
        let mut len = 1;
        while k + len < n
            && angle_diff(d0, dir(hull[(start + k + len) % n], hull[(start + k + len + 1) % n])) < 12f64.to_radians()
        {
            len += 1;
        }
        runs.push((from, (start + k + len) % n));
        k += len;
    }
    runs.into_iter()
        .filter_map(|(a, b)| {
            let (p, q) = (pts[hull[a]], pts[hull[b]]);
            let (dx, dy) = (q[0] - p[0], q[1] - p[1]);
            let length = dx.hypot(dy);
            if length < 1e-9 {
                return None;
            }
            let mut on: Vec<(f64, usize)> = (0..pts.len())
                .filter_map(|i| {
                    let (rx, ry) = (pts[i][0] - p[0], pts[i][1] - p[1]);
                    let t = (rx * dx + ry * dy) / length;
                    let off = (rx * dy - ry * dx).abs() / length;
                    (off <= 0.35 * spacing && t >= -0.35 * spacing && t <= length + 0.35 * spacing).then_some((t, i))
                })
                .collect();
            if on.len() < 3 {
                return None;
            }
            on.sort_by(|a, b| a.0.total_cmp(&b.0));
            let angle = dy.atan2(dx).to_degrees().rem_euclid(180.0);
            let angle_to_lattice = lattice.map(|l| {
                [l.a, l.b]
                    .iter()
                    .map(|v| {
                        let d = (angle - v[1].atan2(v[0]).to_degrees()).rem_euclid(180.0);
                        d.min(180.0 - d)
                    })
                    .fold(f64::MAX, f64::min)
            });
            Some(Facet {
                from: p,
                to: q,
                length,
                angle,
                angle_to_lattice,
                columns: on.into_iter().map(|(_, i)| i).collect(),
            })
        })
        .collect()
}

fn angle_diff(a: f64, b: f64) -> f64 {
    let d = (b - a).rem_euclid(std::f64::consts::TAU);
    d.min(std::f64::consts::TAU - d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{NanoparticleParams, nanoparticle};

    fn demo() -> crate::synth::Synthetic {
        nanoparticle(&NanoparticleParams { size: 384, diameter_nm: 4.0, ..Default::default() }).unwrap()
    }

    #[test]
    fn the_demo_particle_is_one_particle_of_the_right_size() {
        let s = demo();
        let seg = segment(s.image.view(), Some(12.0), &ParticleParams::default()).unwrap();
        assert_eq!(seg.particles.len(), 1, "{:?}", seg.particles.iter().map(|p| p.area).collect::<Vec<_>>());
        let q = &seg.particles[0];
        // Every true column lies inside (or within a spacing of) the mask; the area is that of
        // the columns' hull within 15 % (the dim one-atom edge columns fall below Otsu's level).
        let pts: Vec<[f64; 2]> = s.columns.iter().map(|c| [c.x, c.y]).collect();
        let pc = particle_columns(
            crate::image::morphology::distance_squared_to(seg.labels.mapv(|l| l == 1).view()).view(),
            &pts,
            12.0,
            None,
        );
        assert_eq!(pc.columns.len(), pts.len());
        let hull_area = polygon_area(&convex_hull(&pts).iter().map(|&i| pts[i]).collect::<Vec<_>>());
        assert!(q.area > 0.85 * hull_area && q.area < 1.5 * hull_area, "area {} vs hull {hull_area}", q.area);
        assert!(!q.touches_border && q.aspect_ratio < 1.3);
        assert!((q.centroid[0] - 191.5).abs() < 6.0 && (q.centroid[1] - 191.5).abs() < 6.0, "{:?}", q.centroid);
        assert!(q.outline.len() > 100);
    }

    fn polygon_area(p: &[[f64; 2]]) -> f64 {
        (0..p.len())
            .map(|i| {
                let (a, b) = (p[i], p[(i + 1) % p.len()]);
                a[0] * b[1] - b[0] * a[1]
            })
            .sum::<f64>()
            .abs()
            / 2.0
    }

    #[test]
    fn surface_columns_and_facets_of_the_truncated_octahedron() {
        let s = demo();
        let pts: Vec<[f64; 2]> = s.columns.iter().map(|c| [c.x, c.y]).collect();
        let inside = Array2::<f32>::zeros((384, 384)); // the whole image is the particle
        let pc = particle_columns(inside.view(), &pts, 12.0, None);
        assert_eq!(pc.interior_coordination, 6, "[110] fcc: 4 nearest + 2 along [1-10]");
        // The outline's columns are the thin ones; interior columns are thick.
        for (&i, &site) in pc.columns.iter().zip(&pc.sites) {
            if site == Site::Interior {
                assert!(s.columns[i].atoms >= 4, "interior column with {} atoms", s.columns[i].atoms);
            }
        }
        // {111} and {001} facets: six long traces (four {111}, two {001}) at ±54.7°/90° to
        // [1-10] … in the image rotated by 0.35 rad; at least the six.
        let long: Vec<&Facet> = pc.facets.iter().filter(|f| f.columns.len() >= 4).collect();
        assert!(long.len() >= 6, "{:?}", pc.facets.iter().map(|f| (f.angle, f.columns.len())).collect::<Vec<_>>());
    }

    #[test]
    fn support_alone_is_no_particle() {
        let s = nanoparticle(&NanoparticleParams { size: 256, diameter_nm: 0.01, ..Default::default() }).unwrap();
        let e = segment(s.image.view(), Some(12.0), &ParticleParams::default()).unwrap_err();
        assert!(e.to_string().contains("no particle"), "{e}");
    }

    #[test]
    fn a_particle_cut_by_the_border_says_so() {
        let s = demo();
        let cut = s.image.data.slice(ndarray::s![.., 150..]);
        let seg = segment(cut, Some(12.0), &ParticleParams::default()).unwrap();
        assert!(seg.particles[0].touches_border);
    }
}
