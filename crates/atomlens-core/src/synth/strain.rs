//! Lattices under known strain fields: the GPA tests' ground truth and the page's self-test.
//! A square lattice of round Gaussian columns is laid out unstrained, then each column is moved
//! by the field's displacement `u(r₀)`; [`StrainField::strain_at`] gives the exact strain.
use ndarray::Array2;
use rand::{SeedableRng, rngs::SmallRng};
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use super::{TrueColumn, add_gaussians};
use crate::math::deformation::{Mat2, Strain, decompose};
use crate::{Calibration, CoreError, Image};

/// A displacement field with a closed-form strain.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StrainField {
    /// The same strain and rotation everywhere, about the image centre.
    Uniform {
        /// The strain (and rotation) applied.
        strain: Strain,
    },
    /// Tensile `exx` switched on across `x = x0` by a `tanh` step of half-width `width` (px),
    /// as in the shared `syn_strain_step_exx2pct` set.
    StepX {
        /// Strain on the right.
        exx: f64,
        /// Step position (px).
        x0: f64,
        /// Step width (px).
        width: f64,
    },
    /// A round particle of `radius` px whose shell beyond `core` px is compressed radially by
    /// `compression` (a Pt-skin on an alloy core); no columns outside the particle.
    CoreShell {
        /// Particle radius (px).
        radius: f64,
        /// Core radius (px).
        core: f64,
        /// Radial compression of the shell (positive = shorter spacing).
        compression: f64,
    },
}

impl StrainField {
    /// Displacement (px) of the column whose unstrained position is `r` (image centre `c`).
    fn displacement(&self, r: [f64; 2], c: [f64; 2]) -> [f64; 2] {
        match *self {
            StrainField::Uniform { strain } => {
                let f = strain.gradient();
                let d = [r[0] - c[0], r[1] - c[1]];
                [f[0][0] * d[0] + f[0][1] * d[1] - d[0], f[1][0] * d[0] + f[1][1] * d[1] - d[1]]
            }
            StrainField::StepX { exx, x0, width } => {
                let t = (r[0] - x0) / width;
                // ∫ exx·(1 + tanh t)/2 dx, with log cosh written to stay finite for large |t|.
                let log_cosh = t.abs() + (-2.0 * t.abs()).exp().ln_1p() - std::f64::consts::LN_2;
                [0.5 * exx * ((r[0] - x0) + width * log_cosh), 0.0]
            }
            StrainField::CoreShell { core, compression, .. } => {
                let d = [r[0] - c[0], r[1] - c[1]];
                let rho = d[0].hypot(d[1]);
                if rho <= core {
                    return [0.0, 0.0];
                }
                let ur = -compression * (rho - core);
                [ur * d[0] / rho, ur * d[1] / rho]
            }
        }
    }

    /// The exact strain at unstrained position `r` (image centre `c`).
    pub fn strain_at(&self, r: [f64; 2], c: [f64; 2]) -> Strain {
        match *self {
            StrainField::Uniform { strain } => strain,
            StrainField::StepX { exx, x0, width } => {
                Strain { exx: 0.5 * exx * (1.0 + ((r[0] - x0) / width).tanh()), ..Default::default() }
            }
            StrainField::CoreShell { core, compression, .. } => {
                let d = [r[0] - c[0], r[1] - c[1]];
                let rho = d[0].hypot(d[1]);
                if rho <= core {
                    return Strain::default();
                }
                // ε_rr = −s, ε_θθ = u_r/ρ; F = I + ∇u in Cartesian axes.
                let (err, ett) = (-compression, -compression * (1.0 - core / rho));
                let (cs, sn) = (d[0] / rho, d[1] / rho);
                let f: Mat2 = [
                    [1.0 + err * cs * cs + ett * sn * sn, (err - ett) * cs * sn],
                    [(err - ett) * cs * sn, 1.0 + err * sn * sn + ett * cs * cs],
                ];
                decompose(f)
            }
        }
    }
}

/// What to render.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StrainedLatticeParams {
    /// Image side (px, square).
    pub size: usize,
    /// Unstrained lattice spacing (px).
    pub spacing: f64,
    /// Orientation of the unstrained lattice's first axis (radians from +x towards +y).
    pub angle: f64,
    /// Column width (px).
    pub sigma: f64,
    /// Gaussian noise, standard deviation as a fraction of the column peak.
    pub noise: f64,
    /// Random seed.
    pub seed: u64,
    /// The field applied.
    pub field: StrainField,
}

/// A strained lattice and its exact truth.
#[derive(Debug, Clone)]
pub struct StrainedLattice {
    /// The image (peak 1 on a background of 0.1, plus noise).
    pub image: Image,
    /// Every column drawn, at its strained position.
    pub columns: Vec<TrueColumn>,
    /// Reciprocal vectors of the unstrained lattice (cycles/px): strain is relative to them.
    pub reference_g: [[f64; 2]; 2],
}

/// Render a strained square lattice (see [`StrainedLatticeParams`]).
pub fn strained_lattice(p: &StrainedLatticeParams) -> Result<StrainedLattice, CoreError> {
    if !(16..=8192).contains(&p.size) {
        return Err(CoreError::InvalidParameter { name: "size", reason: format!("{} is outside 16–8192", p.size) });
    }
    if !(p.spacing > 2.0 && p.sigma > 0.0 && p.noise >= 0.0) {
        return Err(CoreError::InvalidParameter {
            name: "spacing",
            reason: format!("spacing {} px, sigma {} px, noise {}", p.spacing, p.sigma, p.noise),
        });
    }
    let (s, c) = p.angle.sin_cos();
    let (a1, a2) = ([p.spacing * c, p.spacing * s], [-p.spacing * s, p.spacing * c]);
    let centre = [(p.size as f64 - 1.0) / 2.0; 2];
    let n = (p.size as f64 / p.spacing).ceil() as i64 + 2;
    let reach = 5.0 * p.sigma;
    let mut columns = Vec::new();
    for i in -n..=n {
        for j in -n..=n {
            let r0 = [centre[0] + i as f64 * a1[0] + j as f64 * a2[0], centre[1] + i as f64 * a1[1] + j as f64 * a2[1]];
            if let StrainField::CoreShell { radius, .. } = p.field
                && (r0[0] - centre[0]).hypot(r0[1] - centre[1]) > radius
            {
                continue;
            }
            let u = p.field.displacement(r0, centre);
            let (x, y) = (r0[0] + u[0], r0[1] + u[1]);
            let lim = p.size as f64 - 1.0 + reach;
            if x > -reach && y > -reach && x < lim && y < lim {
                columns.push(TrueColumn { x, y, sigma: p.sigma, peak: 1.0, atoms: 1, m_atoms: 0 });
            }
        }
    }
    let mut data = Array2::from_elem((p.size, p.size), 0.1f32);
    add_gaussians(&mut data, &columns);
    if p.noise > 0.0 {
        let mut rng = SmallRng::seed_from_u64(p.seed);
        let normal = Normal::new(0.0, p.noise)
            .map_err(|e| CoreError::InvalidParameter { name: "noise", reason: e.to_string() })?;
        data.mapv_inplace(|v| v + normal.sample(&mut rng) as f32);
    }
    let g = |a: [f64; 2]| [a[0] / (p.spacing * p.spacing), a[1] / (p.spacing * p.spacing)];
    Ok(StrainedLattice {
        image: Image { data, calibration: Calibration::uncalibrated() },
        columns,
        reference_g: [g(a1), g(a2)],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_displacement_integrates_its_strain() {
        let f = StrainField::StepX { exx: 0.02, x0: 256.0, width: 8.0 };
        let c = [255.5; 2];
        for x in [100.0, 250.0, 256.0, 262.0, 400.0] {
            let h = 1e-3;
            let du = (f.displacement([x + h, 0.0], c)[0] - f.displacement([x - h, 0.0], c)[0]) / (2.0 * h);
            assert!((du - f.strain_at([x, 0.0], c).exx).abs() < 1e-8, "x {x}: {du}");
        }
    }

    #[test]
    fn core_shell_strain_is_the_displacement_gradient() {
        let f = StrainField::CoreShell { radius: 200.0, core: 100.0, compression: 0.03 };
        let c = [256.0; 2];
        let r = [256.0 + 120.0, 256.0 + 70.0];
        let h = 1e-4;
        let d = |dx: f64, dy: f64, k: usize| {
            (f.displacement([r[0] + dx, r[1] + dy], c)[k] - f.displacement([r[0] - dx, r[1] - dy], c)[k]) / (2.0 * h)
        };
        let grad = [[1.0 + d(h, 0.0, 0), d(0.0, h, 0)], [d(h, 0.0, 1), 1.0 + d(0.0, h, 1)]];
        let (a, b) = (decompose(grad), f.strain_at(r, c));
        assert!((a.exx - b.exx).abs() < 1e-7 && (a.eyy - b.eyy).abs() < 1e-7 && (a.exy - b.exy).abs() < 1e-7);
        assert!(a.rotation.abs() < 1e-7, "{a:?}");
    }

    #[test]
    fn uniform_field_moves_columns_by_the_gradient() {
        let strain = Strain { exx: 0.01, eyy: -0.02, exy: 0.005, rotation: 0.1 };
        let p = StrainedLatticeParams {
            size: 64,
            spacing: 8.0,
            angle: 0.3,
            sigma: 1.5,
            noise: 0.0,
            seed: 1,
            field: StrainField::Uniform { strain },
        };
        let l = strained_lattice(&p).unwrap();
        // Two neighbouring columns are F·a₁ apart.
        let f = strain.gradient();
        let a1 = [8.0 * 0.3f64.cos(), 8.0 * 0.3f64.sin()];
        let want = [f[0][0] * a1[0] + f[0][1] * a1[1], f[1][0] * a1[0] + f[1][1] * a1[1]];
        let found = l.columns.iter().any(|p| {
            l.columns.iter().any(|q| ((q.x - p.x - want[0]).abs() < 1e-9) && ((q.y - p.y - want[1]).abs() < 1e-9))
        });
        assert!(found);
        let dot = a1[0] * l.reference_g[0][0] + a1[1] * l.reference_g[0][1];
        assert!((dot - 1.0).abs() < 1e-12);
    }
}
