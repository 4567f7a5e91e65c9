//! Phantoms with exact truth and their tilt series: a faceted particle (a cube cut by an
//! octahedron: {100} and {111} facets, as a Pt truncated octahedron), a core–shell sphere (a dense
//! core in a lighter shell, as a Pt-rich shell on an alloy core, or the reverse), and the modified
//! Shepp–Logan head (Toft 1996; the in-plane tilt of the two side ellipsoids, the only ones not
//! axis-aligned, about z only).
use ndarray::{Array3, Axis};
use rand::{SeedableRng, rngs::SmallRng};
use rand_distr::{Distribution, Poisson};
use serde::{Deserialize, Serialize};

use super::Volume;
use super::project::Geometry;

/// Which phantom.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phantom {
    /// Truncated octahedron of density 1.
    FacetedParticle,
    /// Core of density 2 in a shell of density 1.
    CoreShell,
    /// Modified Shepp–Logan (densities 0–1).
    SheppLogan,
    /// Seven particles of different sizes scattered off-centre (density 1), as supported
    /// catalyst particles: no symmetry, and inside the field at every tilt and any in-plane turn.
    Cluster,
}

impl Phantom {
    /// Every phantom, in the order a form lists them.
    pub const ALL: [Phantom; 4] = [Phantom::FacetedParticle, Phantom::CoreShell, Phantom::SheppLogan, Phantom::Cluster];
}

/// `(x, y, z, radius)` of the cluster's particles (grid units, −1…1).
const CLUSTER: [(f64, f64, f64, f64); 7] = [
    (-0.35, -0.40, 0.05, 0.16),
    (0.30, -0.30, -0.10, 0.12),
    (0.05, 0.00, 0.15, 0.20),
    (-0.40, 0.25, -0.15, 0.10),
    (0.40, 0.35, 0.10, 0.14),
    (0.10, 0.50, -0.05, 0.08),
    (-0.10, -0.10, -0.40, 0.09),
];

/// The phantom on an `n³` grid (coordinates −1…1 across the grid, voxel centres).
pub fn phantom(kind: Phantom, n: usize) -> Volume {
    let coord = |i: usize| 2.0 * (i as f64 + 0.5) / n as f64 - 1.0;
    let data = Array3::from_shape_fn((n, n, n), |(z, y, x)| {
        let (x, y, z) = (coord(x), coord(y), coord(z));
        (match kind {
            Phantom::FacetedParticle => {
                let r = 0.55;
                let inside = x.abs().max(y.abs()).max(z.abs()) <= r && x.abs() + y.abs() + z.abs() <= 1.45 * r;
                if inside { 1.0 } else { 0.0 }
            }
            Phantom::CoreShell => {
                let d = (x * x + y * y + z * z).sqrt();
                if d <= 0.35 {
                    2.0
                } else if d <= 0.6 {
                    1.0
                } else {
                    0.0
                }
            }
            Phantom::SheppLogan => shepp_logan(x, y, z),
            Phantom::Cluster => {
                let inside =
                    CLUSTER.iter().any(|p| (x - p.0).powi(2) + (y - p.1).powi(2) + (z - p.2).powi(2) <= p.3 * p.3);
                if inside { 1.0 } else { 0.0 }
            }
        }) as f32
    });
    Volume { data }
}

/// `(A, a, b, c, x0, y0, z0, φ°)`: density, semi-axes, centre, rotation about z.
type Ellipsoid = (f64, f64, f64, f64, f64, f64, f64, f64);
const ELLIPSOIDS: [Ellipsoid; 10] = [
    (1.0, 0.69, 0.92, 0.81, 0.0, 0.0, 0.0, 0.0),
    (-0.8, 0.6624, 0.874, 0.78, 0.0, -0.0184, 0.0, 0.0),
    (-0.2, 0.11, 0.31, 0.22, 0.22, 0.0, 0.0, -18.0),
    (-0.2, 0.16, 0.41, 0.28, -0.22, 0.0, 0.0, 18.0),
    (0.1, 0.21, 0.25, 0.41, 0.0, 0.35, -0.15, 0.0),
    (0.1, 0.046, 0.046, 0.05, 0.0, 0.1, 0.25, 0.0),
    (0.1, 0.046, 0.046, 0.05, 0.0, -0.1, 0.25, 0.0),
    (0.1, 0.046, 0.023, 0.05, -0.08, -0.605, 0.0, 0.0),
    (0.1, 0.023, 0.023, 0.02, 0.0, -0.606, 0.0, 0.0),
    (0.1, 0.023, 0.046, 0.02, 0.06, -0.605, 0.0, 0.0),
];

fn shepp_logan(x: f64, y: f64, z: f64) -> f64 {
    ELLIPSOIDS
        .iter()
        .filter(|e| {
            let (s, c) = e.7.to_radians().sin_cos();
            let (dx, dy, dz) = (x - e.4, y - e.5, z - e.6);
            let (u, v) = (dx * c + dy * s, -dx * s + dy * c);
            (u / e.1).powi(2) + (v / e.2).powi(2) + (dz / e.3).powi(2) <= 1.0
        })
        .map(|e| e.0)
        .sum()
}

/// The tilt series of `volume` at `angles_deg` (`[[tilt, y, x]]`), by the reconstruction's own
/// projector; with `dose` (counts per unit of projected density) Poisson noise is added.
pub fn tilt_series(volume: &Volume, angles_deg: &[f64], dose: Option<f64>, seed: u64) -> Array3<f32> {
    let (nx, ny, nz) = volume.dims();
    let g = Geometry::new(nx, nz, angles_deg);
    let sinos = crate::math::par::map(ny, |y| g.forward(volume.slice_y(y).view()));
    let mut out = Array3::zeros((angles_deg.len(), ny, nx));
    for (y, s) in sinos.iter().enumerate() {
        out.index_axis_mut(Axis(1), y).assign(s);
    }
    if let Some(d) = dose {
        add_poisson(&mut out, d, seed);
    }
    out
}

/// Replace every value `v` by Poisson counts of mean `v × dose`, divided by `dose`.
pub fn add_poisson(series: &mut Array3<f32>, dose: f64, seed: u64) {
    let mut rng = SmallRng::seed_from_u64(seed);
    series.mapv_inplace(|v| {
        let lam = (v.max(0.0) as f64) * dose;
        if lam > 0.0 { Poisson::new(lam).map(|p| p.sample(&mut rng) / dose).unwrap_or(v as f64) as f32 } else { 0.0 }
    });
}

/// `count` tilts evenly from `start` to `end` degrees.
pub fn tilt_range(start: f64, end: f64, count: usize) -> Vec<f64> {
    (0..count).map(|k| start + (end - start) * k as f64 / (count.max(2) - 1) as f64).collect()
}
