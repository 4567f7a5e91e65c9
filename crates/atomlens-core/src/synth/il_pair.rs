//! Identical-location pairs: one particle imaged before and after cycling. The after image
//! loses the outer layers of one {111} facet (dissolution), gains a small island on the
//! opposite {001} facet (redeposition), and is rotated and shifted as a re-inserted sample
//! holder would be. The support under it moves with it; the noise is new.
use rand::{SeedableRng, rngs::SmallRng};
use serde::{Deserialize, Serialize};

use super::{NanoparticleParams, Support, Synthetic, column, lattice_sites, particle_columns, render};
use crate::CoreError;

/// Parameters of [`il_pair`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IlPairParams {
    /// The particle (both images).
    pub particle: NanoparticleParams,
    /// Shift of the after image `[dx, dy]` (px).
    pub shift: [f64; 2],
    /// Rotation of the after image about the image centre (degrees, from +x towards +y).
    pub rotation_deg: f64,
    /// Depth removed from one {111} facet (nm).
    pub dissolved_nm: f64,
    /// Atoms in each redeposited column.
    pub redeposited_atoms: u32,
}

impl Default for IlPairParams {
    fn default() -> Self {
        Self {
            particle: NanoparticleParams { size: 384, diameter_nm: 4.0, support_ripple: 0.05, ..Default::default() },
            shift: [6.3, -4.1],
            rotation_deg: 0.8,
            dissolved_nm: 0.45,
            redeposited_atoms: 3,
        }
    }
}

/// A before/after pair with the truth.
#[derive(Debug, Clone)]
pub struct IlPair {
    /// Before cycling.
    pub before: Synthetic,
    /// After cycling (transformed).
    pub after: Synthetic,
    /// Indices into `before.columns` of the columns that dissolved.
    pub lost: Vec<usize>,
    /// Indices into `after.columns` of the redeposited columns.
    pub new: Vec<usize>,
}

/// Render an identical-location pair (see the module docs).
pub fn il_pair(p: &IlPairParams) -> Result<IlPair, CoreError> {
    let q = &p.particle;
    super::check_particle(q)?;
    let before_cols = particle_columns(q);
    let r = q.diameter_nm / 2.0;
    let n111 = (1.0f64 / 2f64.sqrt()).atan();
    let sigma = q.sigma_nm / q.pixel_size_nm;
    // Positions back in the lattice frame (nm) to decide which side of the particle a column is on.
    let c = (q.size as f64 - 1.0) / 2.0;
    let (sr, cr) = q.rotation.sin_cos();
    let uv = |x: f64, y: f64| {
        let (xn, yn) = ((x - c) * q.pixel_size_nm, (y - c) * q.pixel_size_nm);
        (xn * cr - yn * sr, -(xn * sr + yn * cr))
    };
    let dissolved = |x: f64, y: f64| {
        let (u, v) = uv(x, y);
        u * n111.cos() + v * n111.sin() > 0.92 * r - p.dissolved_nm
    };
    let lost: Vec<usize> = (0..before_cols.len()).filter(|&i| dissolved(before_cols[i].x, before_cols[i].y)).collect();
    let mut after_cols: Vec<_> = before_cols.iter().filter(|t| !dissolved(t.x, t.y)).cloned().collect();
    let first_new = after_cols.len();
    // The island: the next (001) layer below the bottom {001} facet, over a third of its width.
    let occupied: Vec<[f64; 2]> = before_cols.iter().map(|t| [t.x, t.y]).collect();
    let spacing_px = 0.2 / q.pixel_size_nm;
    for s in lattice_sites(q, r + 0.5) {
        let taken = occupied.iter().any(|o| (o[0] - s.x).hypot(o[1] - s.y) < spacing_px);
        if !taken && s.v < -0.85 * r && s.v > -0.85 * r - 0.25 && s.u.abs() < 0.25 * r {
            after_cols.push(column(q, s.x, s.y, sigma, p.redeposited_atoms, 0));
        }
    }
    let new: Vec<usize> = (first_new..after_cols.len()).collect();
    let (st, ct) = p.rotation_deg.to_radians().sin_cos();
    for t in &mut after_cols {
        let (dx, dy) = (t.x - c, t.y - c);
        (t.x, t.y) = (c + ct * dx - st * dy + p.shift[0], c + st * dx + ct * dy + p.shift[1]);
    }
    let mut rng = SmallRng::seed_from_u64(q.seed);
    let support = Support::new(q, &mut rng);
    let before = render(q, before_cols, |x, y| support.at(x, y), &mut rng);
    let after = render(
        q,
        after_cols,
        |x, y| {
            // The support point that moved here.
            let (dx, dy) = (x - c - p.shift[0], y - c - p.shift[1]);
            support.at(c + ct * dx + st * dy, c - st * dx + ct * dy)
        },
        &mut rng,
    );
    Ok(IlPair { before, after, lost, new })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pair_has_lost_and_new_columns_and_moves_as_told() {
        let p = IlPairParams::default();
        let pair = il_pair(&p).unwrap();
        assert!(pair.lost.len() >= 10 && pair.new.len() >= 4, "{} lost, {} new", pair.lost.len(), pair.new.len());
        assert_eq!(pair.after.columns.len(), pair.before.columns.len() - pair.lost.len() + pair.new.len());
        // A kept column moved by the rotation and shift.
        let kept = (0..pair.before.columns.len()).find(|i| !pair.lost.contains(i)).unwrap();
        let b = &pair.before.columns[kept];
        let a = &pair.after.columns[0];
        let c = 191.5;
        let (s, co) = 0.8f64.to_radians().sin_cos();
        let want = [c + co * (b.x - c) - s * (b.y - c) + 6.3, c + s * (b.x - c) + co * (b.y - c) - 4.1];
        assert!((a.x - want[0]).abs() < 1e-9 && (a.y - want[1]).abs() < 1e-9);
        assert_ne!(pair.before.image.data, pair.after.image.data);
    }
}
