//! Atom counting from integrated scattering cross-sections (De Backer et al. 2016, the method
//! of StatSTEM). A column's cross-section is the background-subtracted intensity summed over
//! its Voronoi cell; the cells are bounded at one column spacing so edge columns do not
//! collect the whole support. The support level under a particle comes from a quadratic
//! surface fitted to a ring of support around it. Counts follow from a Gaussian mixture whose
//! components are consecutive atom counts on one smooth curve of cross-section against atoms
//! (`mixture`), their number chosen by ICL; or from a library of cross-sections per atom count.
use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use crate::CoreError;

mod mixture;
pub use mixture::CountMixture;

/// Cross-sections of the columns at `points` (px) of one particle (`mask`), and the support
/// level model used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrossSections {
    /// One per point: Σ over its cell of (pixel − support level) (counts·px when the image is
    /// in counts).
    pub values: Vec<f64>,
    /// Pixels in each cell.
    pub cell_pixels: Vec<u32>,
    /// Support level at the particle's centroid.
    pub support_level: f64,
}

/// Cross-sections of `points` in `img`; `near` is the squared distance to the particle
/// (`morphology::distance_squared_to` of its mask; its surroundings give the support level);
/// `spacing` is the nearest-neighbour distance (px).
pub fn cross_sections(
    img: ArrayView2<f32>,
    points: &[[f64; 2]],
    near: ArrayView2<f32>,
    spacing: f64,
) -> Result<CrossSections, CoreError> {
    crate::image::check_usable(img)?;
    if img.dim() != near.dim() {
        return Err(CoreError::ShapeMismatch { expected: img.len(), got: near.len() });
    }
    if !(spacing.is_finite() && spacing > 1.0) {
        return Err(CoreError::InvalidParameter { name: "spacing", reason: format!("{spacing} px must exceed 1") });
    }
    let support = support_surface(img, near, spacing)?;
    let (h, w) = img.dim();
    // Nearest column within one spacing, by painting each column's disk with its distance.
    let mut owner = vec![(u32::MAX, f64::MAX); h * w];
    let r = spacing;
    for (k, p) in points.iter().enumerate() {
        let (x0, x1) = ((p[0] - r).floor().max(0.0) as usize, ((p[0] + r).ceil().max(0.0) as usize).min(w - 1));
        let (y0, y1) = ((p[1] - r).floor().max(0.0) as usize, ((p[1] + r).ceil().max(0.0) as usize).min(h - 1));
        for y in y0..=y1 {
            for x in x0..=x1 {
                let d = (x as f64 - p[0]).powi(2) + (y as f64 - p[1]).powi(2);
                let o = &mut owner[y * w + x];
                if d <= r * r && d < o.1 {
                    *o = (k as u32, d);
                }
            }
        }
    }
    let mut values = vec![0.0; points.len()];
    let mut cell_pixels = vec![0u32; points.len()];
    for (i, &(k, _)) in owner.iter().enumerate() {
        let v = img[[i / w, i % w]];
        if k != u32::MAX && v.is_finite() {
            values[k as usize] += v as f64 - support.at((i % w) as f64, (i / w) as f64);
            cell_pixels[k as usize] += 1;
        }
    }
    let (n, sx, sy) = near
        .indexed_iter()
        .filter(|(_, d)| **d == 0.0)
        .fold((0.0, 0.0, 0.0), |a, ((y, x), _)| (a.0 + 1.0, a.1 + x as f64, a.2 + y as f64));
    let support_level = if n > 0.0 { support.at(sx / n, sy / n) } else { support.at(w as f64 / 2.0, h as f64 / 2.0) };
    Ok(CrossSections { values, cell_pixels, support_level })
}

/// A quadratic surface in (x, y), centred and scaled for conditioning.
struct Surface {
    c: [f64; 6],
    centre: [f64; 2],
    scale: f64,
}

impl Surface {
    fn terms(&self, x: f64, y: f64) -> [f64; 6] {
        let (u, v) = ((x - self.centre[0]) / self.scale, (y - self.centre[1]) / self.scale);
        [1.0, u, v, u * u, u * v, v * v]
    }
    fn at(&self, x: f64, y: f64) -> f64 {
        self.terms(x, y).iter().zip(&self.c).map(|(t, c)| t * c).sum()
    }
}

/// Least-squares quadratic through the support pixels between 1.5 and 4 spacings outside the
/// particle (near enough to follow the support's slope under it, far enough to miss the
/// columns' tails).
fn support_surface(img: ArrayView2<f32>, d2: ArrayView2<f32>, spacing: f64) -> Result<Surface, CoreError> {
    let (h, w) = img.dim();
    let (lo, hi) = ((1.5 * spacing).powi(2) as f32, (4.0 * spacing).powi(2) as f32);
    let ring: Vec<(usize, usize)> =
        d2.indexed_iter().filter(|&(p, &d)| d > lo && d <= hi && img[p].is_finite()).map(|(p, _)| p).collect();
    if ring.len() < 64 {
        return Err(CoreError::NotFound {
            what: "support",
            reason: "no support around the particle to measure its level (the particle fills the image)".into(),
        });
    }
    let mut s = Surface { c: [0.0; 6], centre: [w as f64 / 2.0, h as f64 / 2.0], scale: (w.max(h) as f64) / 2.0 };
    let (mut ata, mut atb) = ([[0.0f64; 6]; 6], [0.0f64; 6]);
    for &(y, x) in &ring {
        let t = s.terms(x as f64, y as f64);
        let v = img[[y, x]] as f64;
        for i in 0..6 {
            atb[i] += t[i] * v;
            for j in 0..6 {
                ata[i][j] += t[i] * t[j];
            }
        }
    }
    // A ring only fixes a quadratic when it surrounds the particle; ridge-regularise the
    // curvature so a one-sided ring degrades to a plane instead of extrapolating wildly.
    for (i, row) in ata.iter_mut().enumerate().skip(3) {
        row[i] += 1e-3 * ring.len() as f64;
    }
    s.c = crate::math::linalg::solve(ata, atb, 6).ok_or_else(|| CoreError::NotFound {
        what: "support",
        reason: "the support level around the particle could not be fitted".into(),
    })?;
    Ok(s)
}

/// How cross-sections become atom counts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Counting {
    /// Gaussian mixture with ICL, at most this many components.
    Statistical {
        /// Largest number of components tried.
        max_components: usize,
    },
    /// `library[n - 1]` is the cross-section of an `n`-atom column, in the image's units.
    Library(Vec<f64>),
}

/// The largest number of mixture components statistical counting tries by default: columns of
/// up to 40 atoms (a ~10 nm particle along \[110\]).
pub const MAX_COMPONENTS: usize = 40;

impl Default for Counting {
    fn default() -> Self {
        Counting::Statistical { max_components: MAX_COMPONENTS }
    }
}

/// A cross-section library from text: one value per line for 1, 2, 3… atoms, or rows whose last
/// field is the value (`atoms,cross_section`); blank lines, `#` comments and a header are skipped.
pub fn parse_library(text: &str) -> Result<Vec<f64>, CoreError> {
    let mut values = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.chars().next().is_some_and(|c| c.is_alphabetic()) {
            continue;
        }
        let last = line.split([',', ' ', '\t', ';']).rfind(|t| !t.is_empty()).unwrap_or("");
        let v = last.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| CoreError::InvalidParameter {
            name: "library",
            reason: format!("line {}: {last:?} is not a number", n + 1),
        })?;
        values.push(v);
    }
    if values.is_empty() {
        return Err(CoreError::InvalidParameter { name: "library", reason: "it holds no cross-sections".into() });
    }
    Ok(values)
}

/// Atoms per column from `values` (cross-sections); the mixture when statistical.
pub fn count_atoms(values: &[f64], how: &Counting) -> Result<(Vec<u32>, Option<CountMixture>), CoreError> {
    if values.iter().any(|v| !v.is_finite()) {
        return Err(CoreError::InvalidParameter {
            name: "cross-sections",
            reason: "a value is NaN or infinite".into(),
        });
    }
    match how {
        Counting::Library(lib) => {
            if lib.is_empty() || lib.iter().any(|v| !v.is_finite()) || lib.windows(2).any(|p| p[1] <= p[0]) {
                return Err(CoreError::InvalidParameter {
                    name: "library",
                    reason: "cross-sections per atom count must be finite and increasing".into(),
                });
            }
            let nearest =
                |v: f64| (0..lib.len()).min_by(|&a, &b| (lib[a] - v).abs().total_cmp(&(lib[b] - v).abs())).unwrap_or(0);
            Ok((values.iter().map(|&v| if v <= 0.5 * lib[0] { 0 } else { nearest(v) as u32 + 1 }).collect(), None))
        }
        Counting::Statistical { max_components } => {
            let m = mixture::select(values, *max_components)?;
            let counts = values.iter().map(|&v| m.atoms[m.classify(v)]).collect();
            Ok((counts, Some(m)))
        }
    }
}

/// Atoms per column where some columns (`from_neighbours`: the M-rich columns of an alloy,
/// whose cross-section mixes two species, so no one unit counts them) are not counted by their
/// own cross-section but take the Gaussian-weighted mean count of the counted columns within
/// [`NEIGHBOUR_REACH`] spacings (a particle's thickness varies smoothly from column to
/// column). The rest are counted by `how`; the mixture when statistical. An M-rich column with
/// no counted column in reach gets 0.
pub fn count_with_neighbours(
    points: &[[f64; 2]],
    values: &[f64],
    from_neighbours: &[bool],
    spacing: f64,
    how: &Counting,
) -> Result<(Vec<u32>, Option<CountMixture>), CoreError> {
    let by_own = |k: usize| !from_neighbours.get(k).copied().unwrap_or(false);
    let own: Vec<f64> = (0..values.len()).filter(|&k| by_own(k)).map(|k| values[k]).collect();
    let (counts, m) = count_atoms(&own, how)?;
    let mut atoms = vec![0; values.len()];
    for (k, n) in (0..values.len()).filter(|&k| by_own(k)).zip(counts) {
        atoms[k] = n;
    }
    fill_from_neighbours(points, &mut atoms, from_neighbours, spacing);
    Ok((atoms, m))
}

/// How far (× the spacing) a column's neighbours lend it their thickness, Gaussian-weighted
/// with σ = one spacing (as the ordering's local trend).
pub const NEIGHBOUR_REACH: f64 = 2.5;

/// Give each `from` column the Gaussian-weighted mean count of the other columns around it.
pub fn fill_from_neighbours(points: &[[f64; 2]], atoms: &mut [u32], from: &[bool], spacing: f64) {
    let grid = crate::lattice::neighbours::Grid::new(points, spacing);
    for k in (0..atoms.len()).filter(|&k| from.get(k).copied().unwrap_or(false)) {
        let (mut sum, mut weight) = (0.0, 0.0);
        for j in grid.within(points, points[k], NEIGHBOUR_REACH * spacing) {
            if j == k || from.get(j).copied().unwrap_or(false) {
                continue;
            }
            let d2 = (points[j][0] - points[k][0]).powi(2) + (points[j][1] - points[k][1]).powi(2);
            let w = (-d2 / (2.0 * spacing * spacing)).exp();
            (sum, weight) = (sum + w * atoms[j] as f64, weight + w);
        }
        atoms[k] = if weight > 0.0 { (sum / weight).round() as u32 } else { 0 };
    }
}

/// How far counts fit a convex particle, whose thickness is a concave function across the
/// projection: a column holds at least about the mean of two opposite neighbours.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Convexity {
    /// Column triples (a column and two opposite neighbours, all counted) checked.
    pub triples: usize,
    /// Triples where the column falls short of its neighbours' mean by more than
    /// [`CONVEXITY_SLACK`] atoms.
    pub broken: usize,
}

/// Atoms a column may fall short of its two opposite neighbours' mean in a convex particle:
/// facets cut columns at lattice steps, so about one.
pub const CONVEXITY_SLACK: f64 = 1.5;

/// Share of broken triples above which the counts are flagged.
pub const CONVEXITY_BROKEN: f64 = 0.05;

impl Convexity {
    /// A warning when more than [`CONVEXITY_BROKEN`] of the triples break convexity.
    pub fn warning(&self) -> Option<String> {
        (self.triples > 0 && self.broken as f64 > CONVEXITY_BROKEN * self.triples as f64).then(|| {
            format!(
                "the counts break the particle's convexity at {} of {} column triples (a column over {CONVEXITY_SLACK} \
                 atoms below the mean of two opposite neighbours, which a convex particle's thickness cannot do): \
                 check them (a void, a step or mis-counted columns)",
                self.broken, self.triples
            )
        })
    }
}

/// [`Convexity`] of the counts `atoms` of the columns at `points` (px; `spacing` their
/// nearest-neighbour distance).
pub fn convexity(points: &[[f64; 2]], atoms: &[u32], spacing: f64) -> Convexity {
    let triples = crate::lattice::neighbours::opposite_triples(points, spacing);
    let broken = triples
        .iter()
        .filter(|&&(i, j, k)| (atoms[j] + atoms[k]) as f64 / 2.0 - atoms[i] as f64 > CONVEXITY_SLACK)
        .count();
    Convexity { triples: triples.len(), broken }
}

/// A 3-D starting model: each column's atoms stacked along the beam (z) symmetrically about
/// the mid-plane at `step` spacing. Returns `(x, y, z)` in the units of `points` × `scale`.
pub fn stack_atoms(points: &[[f64; 2]], atoms: &[u32], scale: f64, step: f64) -> Vec<[f64; 3]> {
    points
        .iter()
        .zip(atoms)
        .flat_map(|(p, &n)| {
            (0..n).map(move |j| [p[0] * scale, p[1] * scale, (j as f64 - (n as f64 - 1.0) / 2.0) * step])
        })
        .collect()
}

/// The model as an XYZ file (positions in ångström).
pub fn xyz(atoms: &[[f64; 3]], element: &str, comment: &str) -> String {
    let mut s = format!("{}\n{}\n", atoms.len(), comment.replace('\n', " "));
    for a in atoms {
        s.push_str(&format!("{element} {:.4} {:.4} {:.4}\n", a[0], a[1], a[2]));
    }
    s
}

#[cfg(test)]
mod tests;
