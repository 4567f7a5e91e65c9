//! Strain and rotation from a 2-D deformation gradient, shared by GPA and column-based strain.
//!
//! `F` maps the reference lattice onto the local one (`a_local = F a_ref`). It is split by the
//! polar decomposition `F = R(ω) U`: `ω` is the local lattice rotation and `ε = U − I` the
//! (Biot) strain. For small deformations this is the familiar `ε = sym(F − I)`,
//! `ω = antisym(F − I)`; unlike those it stays exact when a rotation and a strain combine.
//! Angles are radians, positive from +x towards +y (the crate's convention).
use serde::{Deserialize, Serialize};

/// A 2×2 matrix, row-major: `m[row][col]`.
pub type Mat2 = [[f64; 2]; 2];

/// Strain (dimensionless) and lattice rotation (radians) at one point.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Strain {
    /// Normal strain along x.
    pub exx: f64,
    /// Normal strain along y.
    pub eyy: f64,
    /// Shear strain (tensor component, half the engineering shear).
    pub exy: f64,
    /// Lattice rotation, radians.
    pub rotation: f64,
}

impl Strain {
    /// The deformation gradient `R(rotation) (I + ε)`: the inverse of [`decompose`].
    pub fn gradient(&self) -> Mat2 {
        let (s, c) = self.rotation.sin_cos();
        let u = [[1.0 + self.exx, self.exy], [self.exy, 1.0 + self.eyy]];
        mul([[c, -s], [s, c]], u)
    }

    /// The same strain in a frame whose x axis points along `angle` (radians from +x towards +y).
    /// Rotation is unchanged.
    pub fn in_frame(&self, angle: f64) -> Strain {
        let (s, c) = angle.sin_cos();
        // ε' = Qᵀ ε Q, Q's columns the new axes.
        let q = [[c, -s], [s, c]];
        let e = [[self.exx, self.exy], [self.exy, self.eyy]];
        let r = mul(transpose(q), mul(e, q));
        Strain { exx: r[0][0], eyy: r[1][1], exy: 0.5 * (r[0][1] + r[1][0]), rotation: self.rotation }
    }
}

/// Strain and rotation of the deformation gradient `f` (polar decomposition).
pub fn decompose(f: Mat2) -> Strain {
    let (sn, cs) = (f[1][0] - f[0][1], f[0][0] + f[1][1]);
    let rotation = sn.atan2(cs);
    let n = (sn * sn + cs * cs).sqrt();
    let (s, c) = if n > 0.0 { (sn / n, cs / n) } else { (0.0, 1.0) };
    let u = mul([[c, s], [-s, c]], f);
    Strain { exx: u[0][0] - 1.0, eyy: u[1][1] - 1.0, exy: 0.5 * (u[0][1] + u[1][0]), rotation }
}

/// `a · b`.
pub fn mul(a: Mat2, b: Mat2) -> Mat2 {
    let e = |i: usize, j: usize| a[i][0] * b[0][j] + a[i][1] * b[1][j];
    [[e(0, 0), e(0, 1)], [e(1, 0), e(1, 1)]]
}

/// The inverse, or `None` when `m` is (nearly) singular.
pub fn inverse(m: Mat2) -> Option<Mat2> {
    let det = m[0][0] * m[1][1] - m[0][1] * m[1][0];
    let scale = m.iter().flatten().map(|v| v.abs()).fold(0.0, f64::max);
    if !(det.abs() > 1e-12 * scale * scale) {
        return None;
    }
    Some([[m[1][1] / det, -m[0][1] / det], [-m[1][0] / det, m[0][0] / det]])
}

fn transpose(m: Mat2) -> Mat2 {
    [[m[0][0], m[1][0]], [m[0][1], m[1][1]]]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decomposition_inverts_gradient_exactly() {
        for (exx, eyy, exy, rot) in [(0.02, -0.01, 0.005, 0.3), (0.0, 0.0, 0.0, -1.2), (-0.05, 0.03, -0.02, 0.0)] {
            let s = Strain { exx, eyy, exy, rotation: rot };
            let back = decompose(s.gradient());
            for (a, b) in [(back.exx, exx), (back.eyy, eyy), (back.exy, exy), (back.rotation, rot)] {
                assert!((a - b).abs() < 1e-12, "{back:?} vs {s:?}");
            }
        }
    }

    #[test]
    fn small_deformation_is_sym_and_antisym_part() {
        let d = [[1e-4, 3e-4], [-1e-4, -2e-4]];
        let s = decompose([[1.0 + d[0][0], d[0][1]], [d[1][0], 1.0 + d[1][1]]]);
        assert!((s.exx - 1e-4).abs() < 1e-7 && (s.eyy + 2e-4).abs() < 1e-7);
        assert!((s.exy - 1e-4).abs() < 1e-7 && (s.rotation + 2e-4).abs() < 1e-7, "{s:?}");
    }

    #[test]
    fn uniaxial_strain_seen_at_45_degrees() {
        // ε = diag(e, 0) in a frame turned 45°: e/2 on both axes, shear −e/2.
        let s = Strain { exx: 0.01, ..Default::default() }.in_frame(std::f64::consts::FRAC_PI_4);
        assert!((s.exx - 0.005).abs() < 1e-12 && (s.eyy - 0.005).abs() < 1e-12 && (s.exy + 0.005).abs() < 1e-12);
    }

    #[test]
    fn singular_matrix_has_no_inverse() {
        assert!(inverse([[1.0, 2.0], [2.0, 4.0]]).is_none());
        let m = [[2.0, 1.0], [0.5, 3.0]];
        let p = mul(m, inverse(m).unwrap());
        assert!((p[0][0] - 1.0).abs() < 1e-12 && p[0][1].abs() < 1e-12 && (p[1][1] - 1.0).abs() < 1e-12);
    }
}
