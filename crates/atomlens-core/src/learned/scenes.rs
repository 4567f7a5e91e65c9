//! Synthetic training scenes for the learned column finder: single atoms and crystalline
//! particles on an amorphous support, drawn with the variety real HAADF images show and the
//! exact positions known.
//!
//! Lengths are in the finder's working pixels, where an atom's image has σ ≈
//! [`super::finder::WORK_SIGMA_PX`]; intensities in units of one atom's peak. Each scene draws:
//! - the atoms' width σ 1.3–3 px (probe, drift and vibration), the same for the whole scene;
//! - a support: a level L of 0.2–30 atom peaks (log-uniform; real supports are often much
//!   brighter than the atoms on them), its amorphous texture (white noise blurred to 0.8–2.5 px,
//!   σ 0.02–0.3 × L^¼ of an atom's peak; a carbon film's grain is an atom's size), a smooth
//!   thickness ripple up to half of L, and in one scene in five vacuum beyond a soft edge;
//! - what sits on it: isolated atoms (0.6–1.4 of a peak, at least 2.5 σ apart; 45 % of
//!   scenes), a particle (an elliptical patch of an oblique lattice, nearest-neighbour distance
//!   2.6–5 σ, 1–14 atoms per column with a lens-shaped thickness profile, peaks growing as
//!   atoms^0.8, and a few atoms around it; 40 %), or the support alone (15 %);
//! - the counts: 4–400 electrons at an atom's peak (log-uniform), Poisson, with a small
//!   Gaussian read-out noise and, in a third of the scenes, row-to-row scan offsets.
use ndarray::Array2;

use super::Rng;
use crate::image::filter::gaussian_blur;
use crate::synth::{TrueColumn, add_gaussians};

/// One scene and its truth.
#[derive(Debug, Clone)]
pub struct Scene {
    /// Counts.
    pub image: Array2<f32>,
    /// Every atom and column `[x, y]` (px).
    pub atoms: Vec<[f64; 2]>,
    /// Their width σ (px).
    pub sigma: f64,
}

fn between(rng: &mut Rng, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * rng.uniform()
}

fn log_between(rng: &mut Rng, lo: f64, hi: f64) -> f64 {
    (lo.ln() + (hi.ln() - lo.ln()) * rng.uniform()).exp()
}

/// White noise blurred by `sigma` and scaled to unit spread.
fn texture(size: usize, sigma: f64, rng: &mut Rng) -> Array2<f32> {
    let white = Array2::from_shape_fn((size, size), |_| rng.normal() as f32);
    let t = gaussian_blur(white.view(), sigma);
    let sd = (t.iter().map(|v| (v * v) as f64).sum::<f64>() / t.len() as f64).sqrt().max(1e-9);
    t.mapv(|v| (v as f64 / sd) as f32)
}

/// Isolated atoms at least `gap` apart, within `inside`.
fn scatter(size: usize, n: usize, gap: f64, rng: &mut Rng, inside: impl Fn(f64, f64) -> bool) -> Vec<[f64; 2]> {
    let mut pts: Vec<[f64; 2]> = Vec::new();
    for _ in 0..n * 4 {
        if pts.len() == n {
            break;
        }
        let p = [between(rng, 0.0, size as f64 - 1.0), between(rng, 0.0, size as f64 - 1.0)];
        if inside(p[0], p[1]) && pts.iter().all(|q| (q[0] - p[0]).hypot(q[1] - p[1]) >= gap) {
            pts.push(p);
        }
    }
    pts
}

/// A random scene of `size × size` px.
pub fn scene(size: usize, rng: &mut Rng) -> Scene {
    let s = size as f64;
    let sigma = between(rng, 1.3, 3.0);
    let level = log_between(rng, 0.2, 30.0);
    let grain = texture(size, between(rng, 0.8, 2.5), rng);
    let grain_amp = (between(rng, 0.02, 0.3) * level.powf(0.25)) as f32;
    let ripple = texture(size, s / 4.0, rng);
    let ripple_amp = (between(rng, 0.0, 0.5) * level) as f32;
    // Vacuum beyond a soft straight edge in one scene in five.
    let edge = (rng.uniform() < 0.2).then(|| {
        let a = between(rng, 0.0, std::f64::consts::TAU);
        (a.cos(), a.sin(), between(rng, -0.3, 0.3) * s, between(rng, 1.0, 4.0))
    });
    let film = |x: f64, y: f64| match edge {
        Some((c, sn, off, width)) => {
            let d = (x - s / 2.0) * c + (y - s / 2.0) * sn - off;
            1.0 / (1.0 + (-d / width).exp())
        }
        None => 1.0,
    };
    let mut clean = Array2::from_shape_fn((size, size), |(y, x)| {
        let f = film(x as f64, y as f64) as f32;
        f * (level as f32 + grain_amp * grain[[y, x]] + ripple_amp * ripple[[y, x]]).max(0.0)
    });
    let kind = rng.uniform();
    let mut columns: Vec<TrueColumn> = Vec::new();
    let atom = |x: f64, y: f64, peak: f64| TrueColumn { x, y, sigma, peak, atoms: 1, m_atoms: 0 };
    if kind < 0.45 {
        let n = rng.below((s * s / 120.0) as usize + 1);
        for [x, y] in scatter(size, n, 2.5 * sigma, rng, |_, _| true) {
            let peak = between(rng, 0.6, 1.4);
            columns.push(atom(x, y, peak));
        }
    } else if kind < 0.85 {
        let (cx, cy) = (between(rng, 0.1, 0.9) * s, between(rng, 0.1, 0.9) * s);
        let (ra, rb, tilt) = (between(rng, 8.0, 0.6 * s), between(rng, 8.0, 0.6 * s), between(rng, 0.0, 3.2));
        let (ct, st) = (tilt.cos(), tilt.sin());
        let r2 = |x: f64, y: f64| {
            let (u, v) = ((x - cx) * ct + (y - cy) * st, -(x - cx) * st + (y - cy) * ct);
            (u / ra).powi(2) + (v / rb).powi(2)
        };
        let d = between(rng, 2.6, 5.0) * sigma;
        let a = between(rng, 0.0, std::f64::consts::TAU);
        let b = a + between(rng, 1.05, 1.57);
        let d2 = d * between(rng, 1.0, 1.45);
        let (a1, a2) = ([d * a.cos(), d * a.sin()], [d2 * b.cos(), d2 * b.sin()]);
        let thick = between(rng, 2.0, 14.0);
        let reach = (s / d) as i64 + 2;
        let col_sigma = sigma * between(rng, 1.0, 1.2);
        for i in -2 * reach..=2 * reach {
            for j in -2 * reach..=2 * reach {
                let (x, y) = (cx + i as f64 * a1[0] + j as f64 * a2[0], cy + i as f64 * a1[1] + j as f64 * a2[1]);
                let r = r2(x, y);
                if r >= 1.0 || !(0.0..s).contains(&x) || !(0.0..s).contains(&y) {
                    continue;
                }
                let atoms = (thick * (1.0 - r).sqrt() + between(rng, -0.5, 0.5)).round().max(1.0);
                let peak = atoms.powf(0.8) * between(rng, 0.9, 1.1);
                columns.push(TrueColumn { x, y, sigma: col_sigma, peak, atoms: atoms as u32, m_atoms: 0 });
            }
        }
        let n = rng.below(6);
        let far = |x: f64, y: f64| r2(x, y) > 1.3;
        for [x, y] in scatter(size, n, 2.5 * sigma, rng, far) {
            let peak = between(rng, 0.6, 1.4);
            columns.push(atom(x, y, peak));
        }
    }
    // Atoms sit on the film (none in vacuum).
    columns.retain(|c| film(c.x, c.y) > 0.5);
    add_gaussians(&mut clean, &columns);
    let counts = log_between(rng, 4.0, 400.0);
    let read = between(rng, 0.0, 0.05) * counts;
    let rows = if rng.uniform() < 0.33 { between(rng, 0.0, 0.03) * counts } else { 0.0 };
    let offsets: Vec<f64> = (0..size).map(|_| rows * rng.normal()).collect();
    let image = Array2::from_shape_fn((size, size), |(y, x)| {
        let lam = clean[[y, x]] as f64 * counts;
        (poisson(lam, rng) + read * rng.normal() + offsets[y]) as f32
    });
    Scene { image, atoms: columns.iter().map(|c| [c.x, c.y]).collect(), sigma }
}

/// A Poisson draw of mean `lam` (Knuth's product for small means, a normal beyond 30).
fn poisson(lam: f64, rng: &mut Rng) -> f64 {
    if lam <= 0.0 {
        return 0.0;
    }
    if lam > 30.0 {
        return (lam + lam.sqrt() * rng.normal()).round().max(0.0);
    }
    let (limit, mut k, mut p) = ((-lam).exp(), 0.0, rng.uniform());
    while p > limit {
        k += 1.0;
        p *= rng.uniform();
    }
    k
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Scenes are reproducible from the seed, hold atoms of the stated kinds, and their counts
    /// are Poisson-like (no negative image, mean near the support's).
    #[test]
    fn scenes_are_seeded_and_varied() {
        let a: Vec<Scene> = (0..40).scan(Rng::new(3), |r, _| Some(scene(64, r))).collect();
        let b = scene(64, &mut Rng::new(3));
        assert_eq!(a[0].image, b.image);
        assert_eq!(a[0].atoms, b.atoms);
        let empty = a.iter().filter(|s| s.atoms.is_empty()).count();
        let crowded = a.iter().filter(|s| s.atoms.len() > 20).count();
        assert!(empty >= 2 && crowded >= 4, "{empty} empty, {crowded} crowded of 40");
        assert!(a.iter().all(|s| s.image.iter().all(|v| v.is_finite())));
        assert!(a.iter().all(|s| s.atoms.iter().all(|p| (0.0..64.0).contains(&p[0]) && (0.0..64.0).contains(&p[1]))));
    }

    #[test]
    fn poisson_draws_have_the_asked_mean_and_variance() {
        let mut rng = Rng::new(9);
        for lam in [0.5, 4.0, 50.0] {
            let v: Vec<f64> = (0..20_000).map(|_| poisson(lam, &mut rng)).collect();
            let m = v.iter().sum::<f64>() / v.len() as f64;
            let var = v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64;
            assert!((m / lam - 1.0).abs() < 0.05 && (var / lam - 1.0).abs() < 0.1, "λ {lam}: {m}, {var}");
        }
    }
}
