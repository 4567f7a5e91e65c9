//! The Joseph (1982) projector for one slice and its exact adjoint. Every ray steps along the
//! axis it is closer to (z for |cos θ| ≥ |sin θ|, else x), reading the two nearest pixels of each
//! row or column by linear interpolation, with the path length per step `1/|cos θ|` (or
//! `1/|sin θ|`) as weight. Forward and adjoint visit the same `(ray, pixel, weight)` triples
//! (one function, [`Geometry::trace`]), so they are adjoint by construction.
use ndarray::{Array2, ArrayView2};

/// The projection matrix in compressed rows: ray `r = tilt·nx + bin` holds
/// `entries[start[r]..start[r + 1]]` of `(pixel, weight)`. Built once per geometry (every slice
/// shares it); forward is a sparse matrix–vector product, the adjoint its transpose, so they
/// stay exactly adjoint and run at memory speed.
#[derive(Debug, Clone, Default)]
struct Rows {
    start: Vec<u32>,
    entries: Vec<(u32, f32)>,
}

/// The slice geometry: slice `nz × nx` pixels, `nu = nx` detector bins, the tilts.
#[derive(Debug, Clone)]
pub struct Geometry {
    /// Slice width (px) and detector bins.
    pub nx: usize,
    /// Slice thickness (px).
    pub nz: usize,
    /// `(cos θ, sin θ)` per tilt.
    trig: Vec<(f64, f64)>,
    /// Angular weight of each tilt (radians): half the distance to its neighbours (FBP).
    pub dtheta: Vec<f64>,
    rows: Rows,
}

impl Geometry {
    /// Geometry for tilts `angles_deg` (increasing).
    pub fn new(nx: usize, nz: usize, angles_deg: &[f64]) -> Self {
        let rad: Vec<f64> = angles_deg.iter().map(|a| a.to_radians()).collect();
        let n = rad.len();
        let dtheta = (0..n)
            .map(|i| match (i.checked_sub(1), (i + 1 < n).then_some(i + 1)) {
                (Some(a), Some(b)) => (rad[b] - rad[a]) / 2.0,
                (None, Some(b)) => rad[b] - rad[i],
                (Some(a), None) => rad[i] - rad[a],
                (None, None) => std::f64::consts::PI,
            })
            .collect();
        let mut g =
            Self { nx, nz, trig: rad.iter().map(|t| (t.cos(), t.sin())).collect(), dtheta, rows: Rows::default() };
        g.rows = g.build_rows();
        g
    }

    /// The matrix rows from [`Self::trace`], grouped by ray (a counting sort per tilt).
    fn build_rows(&self) -> Rows {
        let nx = self.nx;
        let mut start = vec![0u32; self.tilts() * nx + 1];
        let mut entries = Vec::new();
        let mut count = vec![0usize; nx];
        for a in 0..self.tilts() {
            count.fill(0);
            self.trace(a, |j, _, _| count[j] += 1);
            let base = entries.len();
            let mut at: Vec<usize> = Vec::with_capacity(nx);
            let mut acc = base;
            for (j, &c) in count.iter().enumerate() {
                start[a * nx + j] = acc as u32;
                at.push(acc);
                acc += c;
            }
            entries.resize(acc, (0u32, 0.0f32));
            self.trace(a, |j, p, w| {
                entries[at[j]] = (p as u32, w);
                at[j] += 1;
            });
        }
        start[self.tilts() * nx] = entries.len() as u32;
        Rows { start, entries }
    }

    fn ray(&self, r: usize) -> &[(u32, f32)] {
        &self.rows.entries[self.rows.start[r] as usize..self.rows.start[r + 1] as usize]
    }

    /// `(cos θ, sin θ)` of every tilt.
    pub fn trig(&self) -> &[(f64, f64)] {
        &self.trig
    }

    /// Number of tilts.
    pub fn tilts(&self) -> usize {
        self.trig.len()
    }

    /// Every `(detector bin, pixel index z·nx + x, weight)` of tilt `a`.
    #[inline]
    pub fn trace(&self, a: usize, mut visit: impl FnMut(usize, usize, f32)) {
        let (nx, nz) = (self.nx, self.nz);
        let (c, s) = self.trig[a];
        let (cx, cz, cu) = ((nx as f64 - 1.0) / 2.0, (nz as f64 - 1.0) / 2.0, (nx as f64 - 1.0) / 2.0);
        // Along one axis (`steps` rows of `len` pixels): position along the row for bin j is
        // `start + j·slope`; `index(step, k)` is the pixel.
        let mut walk = |steps: usize,
                        len: usize,
                        cos: f64,
                        sin: f64,
                        centre: f64,
                        other: f64,
                        index: &dyn Fn(usize, usize) -> usize| {
            let w = (1.0 / cos.abs()) as f32;
            let slope = 1.0 / cos;
            for step in 0..steps {
                let offset = step as f64 - other;
                let start = (-cu - offset * sin) / cos + centre;
                // Bins whose position lies in (−1, len): both neighbours may contribute.
                let (mut j0, mut j1) = ((-1.0 - start) / slope, (len as f64 - start) / slope);
                if j0 > j1 {
                    std::mem::swap(&mut j0, &mut j1);
                }
                let (j0, j1) = ((j0.floor().max(0.0)) as usize, (j1.ceil().max(0.0) as usize).min(nx));
                for j in j0..j1 {
                    let p = start + j as f64 * slope;
                    let i = p.floor();
                    let t = (p - i) as f32;
                    let i = i as isize;
                    if i >= 0 && (i as usize) < len {
                        visit(j, index(step, i as usize), w * (1.0 - t));
                    }
                    if i + 1 >= 0 && ((i + 1) as usize) < len {
                        visit(j, index(step, (i + 1) as usize), w * t);
                    }
                }
            }
        };
        if c.abs() >= s.abs() {
            // Step through z rows; interpolate along x.
            walk(nz, nx, c, s, cx, cz, &|z, x| z * nx + x);
        } else {
            // Step through x columns; interpolate along z.
            walk(nx, nz, s, c, cz, cx, &|x, z| z * nx + x);
        }
    }

    /// Projection of tilt `a` of `slice` (`nz × nx`), added into `out` (`nx` bins).
    pub fn forward_tilt(&self, a: usize, slice: &[f32], out: &mut [f32]) {
        for (j, o) in out.iter_mut().enumerate() {
            *o += self.ray(a * self.nx + j).iter().map(|&(p, w)| w * slice[p as usize]).sum::<f32>();
        }
    }

    /// Adjoint of [`Self::forward_tilt`]: `proj` (`nx` bins) spread into `out` (`nz × nx`).
    pub fn adjoint_tilt(&self, a: usize, proj: &[f32], out: &mut [f32]) {
        for (j, &v) in proj.iter().enumerate() {
            if v != 0.0 {
                for &(p, w) in self.ray(a * self.nx + j) {
                    out[p as usize] += w * v;
                }
            }
        }
    }

    /// Sinogram `tilts × nx` of `slice` (`nz × nx`).
    pub fn forward(&self, slice: ArrayView2<f32>) -> Array2<f32> {
        let flat: Vec<f32> = slice.iter().copied().collect();
        let mut out = Array2::zeros((self.tilts(), self.nx));
        for (a, mut row) in out.rows_mut().into_iter().enumerate() {
            self.forward_tilt(a, &flat, row.as_slice_mut().expect("contiguous"));
        }
        out
    }

    /// Back-projection (the adjoint) of a sinogram `tilts × nx` into a slice `nz × nx`.
    pub fn adjoint(&self, sino: ArrayView2<f32>) -> Array2<f32> {
        let mut out = vec![0.0f32; self.nz * self.nx];
        for (a, row) in sino.rows().into_iter().enumerate() {
            let r: Vec<f32> = row.iter().copied().collect();
            self.adjoint_tilt(a, &r, &mut out);
        }
        Array2::from_shape_vec((self.nz, self.nx), out).expect("nz × nx")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng, rngs::SmallRng};

    #[test]
    fn projector_and_back_projector_are_adjoint() {
        let mut rng = SmallRng::seed_from_u64(1);
        for (nx, nz) in [(32, 32), (40, 24), (17, 29)] {
            let angles: Vec<f64> = (0..37).map(|k| -72.0 + 4.0 * k as f64).collect();
            let g = Geometry::new(nx, nz, &angles);
            let x = Array2::from_shape_fn((nz, nx), |_| rng.random_range(-1.0..1.0f32));
            let y = Array2::from_shape_fn((angles.len(), nx), |_| rng.random_range(-1.0..1.0f32));
            let dot = |a: &Array2<f32>, b: &Array2<f32>| {
                a.iter().zip(b.iter()).map(|(p, q)| *p as f64 * *q as f64).sum::<f64>()
            };
            let (lhs, rhs) = (dot(&g.forward(x.view()), &y), dot(&x, &g.adjoint(y.view())));
            assert!((lhs - rhs).abs() <= 1e-5 * lhs.abs().max(rhs.abs()), "{nx}×{nz}: ⟨Ax, y⟩ {lhs} vs ⟨x, Aᵀy⟩ {rhs}");
        }
    }

    #[test]
    fn a_blob_projects_to_its_detector_position_with_its_mass() {
        // A Gaussian blob (σ 1.5 px, mass 1) at (x, z) = (20, 9) of a 32 × 24 slice: at tilt θ its
        // projection is centred at u = x'·cos θ + z'·sin θ and keeps its mass.
        let (nx, nz) = (32, 24);
        let angles = [-60.0, -30.0, 0.0, 25.0, 50.0, 89.0];
        let g = Geometry::new(nx, nz, &angles);
        let norm = 1.0 / (2.0 * std::f64::consts::PI * 1.5 * 1.5);
        let slice = Array2::from_shape_fn((nz, nx), |(z, x)| {
            let d2 = (x as f64 - 20.0).powi(2) + (z as f64 - 9.0).powi(2);
            (norm * (-d2 / 4.5).exp()) as f32
        });
        let sino = g.forward(slice.view());
        for (a, deg) in angles.iter().enumerate() {
            let row = sino.row(a);
            let mass: f32 = row.sum();
            let centre: f32 = row.iter().enumerate().map(|(j, v)| j as f32 * v).sum::<f32>() / mass;
            let t = deg.to_radians();
            let want = (20.0 - 15.5) * t.cos() + (9.0 - 11.5) * t.sin() + 15.5;
            assert!((mass - 1.0).abs() < 0.01, "θ {deg}: mass {mass}");
            assert!((centre as f64 - want).abs() < 0.02, "θ {deg}: centre {centre} vs {want}");
        }
    }
}
