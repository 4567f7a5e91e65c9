//! Synthetic images with exact ground truth: the app's built-in demo, the self-tests and the
//! test suite's reference data. Seeded, so the same parameters give the same pixels everywhere.
use ndarray::Array2;
use rand::{Rng, SeedableRng, rngs::SmallRng};
use rand_distr::{Distribution, Poisson};
use serde::{Deserialize, Serialize};

use crate::{Calibration, CoreError, Image};

mod demos;
mod il_pair;
mod strain;
pub use demos::{Demo, DemoImage};
pub use il_pair::{IlPair, IlPairParams, il_pair};
pub use strain::{StrainField, StrainedLattice, StrainedLatticeParams, strained_lattice};

/// One true column of a synthetic image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrueColumn {
    /// Column position (px).
    pub x: f64,
    /// Row position (px).
    pub y: f64,
    /// Gaussian width (px).
    pub sigma: f64,
    /// Peak height above the background (counts, before noise).
    pub peak: f64,
    /// Atoms in the column.
    pub atoms: u32,
    /// How many of `atoms` are the lighter alloying metal M (Co-like); 0 for pure Pt.
    #[serde(default)]
    pub m_atoms: u32,
}

/// A synthetic image: noisy pixels, the noise-free model and the truth.
#[derive(Debug, Clone)]
pub struct Synthetic {
    /// What an experiment would record (with noise).
    pub image: Image,
    /// The same without noise.
    pub clean: Array2<f32>,
    /// Every column that was drawn.
    pub columns: Vec<TrueColumn>,
}

/// A Pt (fcc, a = 0.3924 nm) nanoparticle seen along \[110\] on an amorphous-carbon support, with
/// HAADF-like intensities proportional to the atoms in each column and Poisson noise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NanoparticleParams {
    /// Image side in pixels (square).
    pub size: usize,
    /// Pixel size in nm.
    pub pixel_size_nm: f64,
    /// Particle diameter in nm.
    pub diameter_nm: f64,
    /// In-plane rotation of the \[001\] direction from +y, in radians.
    pub rotation: f64,
    /// Column width (Gaussian sigma) in nm.
    pub sigma_nm: f64,
    /// Peak counts contributed by one atom.
    pub counts_per_atom: f64,
    /// Mean counts of the support.
    pub support_counts: f64,
    /// Relative amplitude of the support's smooth thickness variation.
    pub support_ripple: f64,
    /// An ordered L1₀ PtM core (Pt and M alternating along \[001\]) under a one-atom Pt shell.
    pub ordered: bool,
    /// Random seed.
    pub seed: u64,
}

impl Default for NanoparticleParams {
    fn default() -> Self {
        Self {
            size: 512,
            pixel_size_nm: 0.02,
            diameter_nm: 5.0,
            rotation: 0.35,
            sigma_nm: 0.05,
            counts_per_atom: 10.0,
            support_counts: 15.0,
            support_ripple: 0.25,
            ordered: false,
            seed: 7,
        }
    }
}

/// Render a Pt nanoparticle (see [`NanoparticleParams`]).
pub fn nanoparticle(p: &NanoparticleParams) -> Result<Synthetic, CoreError> {
    check_particle(p)?;
    let columns = particle_columns(p);
    let mut rng = SmallRng::seed_from_u64(p.seed);
    let support = Support::new(p, &mut rng);
    Ok(render(p, columns, |x, y| support.at(x, y), &mut rng))
}

pub(crate) fn check_particle(p: &NanoparticleParams) -> Result<(), CoreError> {
    if p.size < 16 || p.size > 8192 {
        return Err(CoreError::InvalidParameter { name: "size", reason: format!("{} is outside 16–8192", p.size) });
    }
    for (name, v) in [("pixel_size_nm", p.pixel_size_nm), ("diameter_nm", p.diameter_nm), ("sigma_nm", p.sigma_nm)] {
        if !(v.is_finite() && v > 0.0) {
            return Err(CoreError::InvalidParameter { name, reason: format!("{v} must be positive") });
        }
    }
    Ok(())
}

/// Pt lattice constant (nm).
const PT_A: f64 = 0.3924;
/// HAADF contrast of one M (Co, Z = 27) atom relative to one Pt (Z = 78): (Z_M / Z_Pt)^1.7.
pub const M_CONTRAST: f64 = 0.164;

/// A lattice site of the \[110\] projection: lattice coordinates (nm), whether it is on the
/// half-offset sublattice, and its image position (px) for a particle centred in the image.
#[derive(Debug, Clone, Copy)]
pub(crate) struct LatticeSite {
    pub u: f64,
    pub v: f64,
    pub offset: bool,
    pub x: f64,
    pub y: f64,
}

/// Every site within `reach` nm of the image centre.
pub(crate) fn lattice_sites(p: &NanoparticleParams, reach: f64) -> Vec<LatticeSite> {
    let (du, dv) = (PT_A / 2f64.sqrt(), PT_A); // [1-10] and [001] repeats in the [110] projection
    let c = (p.size as f64 - 1.0) / 2.0;
    let (sr, cr) = p.rotation.sin_cos();
    let n = (reach / du).ceil() as i64 + 2;
    let mut out = Vec::new();
    for i in -n..=n {
        for j in -2 * n..=2 * n {
            for (ou, ov) in [(0.0, 0.0), (0.5, 0.5)] {
                let (u, v) = ((i as f64 + ou) * du, (j as f64 + ov) * dv);
                if u.hypot(v) > reach {
                    continue;
                }
                // u → image x, v → image −y (up), then rotate.
                let (xn, yn) = (u * cr - v * sr, -(u * sr + v * cr));
                out.push(LatticeSite {
                    u,
                    v,
                    offset: ov > 0.0,
                    x: c + xn / p.pixel_size_nm,
                    y: c + yn / p.pixel_size_nm,
                });
            }
        }
    }
    out
}

/// Atom spacing along the \[110\] beam direction (nm).
pub const PT_110_SPACING_NM: f64 = PT_A / std::f64::consts::SQRT_2;

/// The columns of the particle of `p`, centred in the image, with their atom counts.
pub(crate) fn particle_columns(p: &NanoparticleParams) -> Vec<TrueColumn> {
    let r = p.diameter_nm / 2.0;
    // Truncated-octahedron outline in [110]: {111} facets (normals ±35.26° from [1-10]) and
    // {001} facets (normal along [001]).
    let n111 = (1.0f64 / 2f64.sqrt()).atan();
    let facets = [(n111, 0.92 * r), (-n111, 0.92 * r), (std::f64::consts::FRAC_PI_2, 0.85 * r)];
    let inside = |u: f64, v: f64, inset: f64| {
        u * u + v * v < (r - inset).powi(2)
            && facets.iter().all(|&(a, d)| (u * a.cos() + v * a.sin()).abs() <= d - inset)
    };
    let sigma = p.sigma_nm / p.pixel_size_nm;
    lattice_sites(p, r)
        .into_iter()
        .filter(|s| inside(s.u, s.v, 0.0))
        .filter_map(|s| {
            let atoms = (2.0 * (r * r - s.u * s.u - s.v * s.v).sqrt() / PT_110_SPACING_NM).round() as u32;
            // L1₀ along [001]: the half-offset (001) planes are M, under a Pt cap at each end
            // and all Pt within one nearest-neighbour distance of the outline.
            let m_atoms = if p.ordered && s.offset && inside(s.u, s.v, 0.24) { atoms.saturating_sub(2) } else { 0 };
            (atoms > 0).then(|| column(p, s.x, s.y, sigma, atoms, m_atoms))
        })
        .collect()
}

pub(crate) fn column(p: &NanoparticleParams, x: f64, y: f64, sigma: f64, atoms: u32, m_atoms: u32) -> TrueColumn {
    let pt = (atoms - m_atoms) as f64 + M_CONTRAST * m_atoms as f64;
    TrueColumn { x, y, sigma, peak: pt * p.counts_per_atom, atoms, m_atoms }
}

/// Poisson counts of a simulated image given as the fraction of the beam each pixel collects
/// (as multislice codes give it), at `electrons_per_px` (the dose in e⁻/Å² × the pixel's Å²).
pub fn at_dose(fraction: ndarray::ArrayView2<f32>, electrons_per_px: f64, seed: u64) -> Array2<f32> {
    let mut rng = SmallRng::seed_from_u64(seed);
    fraction.mapv(|f| {
        let lam = (f.max(0.0) as f64) * electrons_per_px;
        if lam > 0.0 { Poisson::new(lam).map(|d| d.sample(&mut rng) as f32).unwrap_or(lam as f32) } else { 0.0 }
    })
}

/// Draw `columns` over `support(x, y)` and add Poisson noise.
pub(crate) fn render(
    p: &NanoparticleParams,
    columns: Vec<TrueColumn>,
    support: impl Fn(f64, f64) -> f64,
    rng: &mut SmallRng,
) -> Synthetic {
    let mut clean = Array2::from_shape_fn((p.size, p.size), |(y, x)| support(x as f64, y as f64) as f32);
    add_gaussians(&mut clean, &columns);
    let noisy = clean.mapv(|lam| {
        let lam = lam.max(0.0) as f64;
        if lam == 0.0 { 0.0 } else { Poisson::new(lam).map(|d| d.sample(rng) as f32).unwrap_or(lam as f32) }
    });
    Synthetic { image: Image { data: noisy, calibration: Calibration::nm(p.pixel_size_nm) }, clean, columns }
}

/// Amorphous-support background: a mean level with smooth random thickness variation of
/// relative amplitude `support_ripple`.
pub(crate) struct Support {
    waves: Vec<(f64, f64, f64, f64)>,
    mean: f64,
    ripple: f64,
}

impl Support {
    pub(crate) fn new(p: &NanoparticleParams, rng: &mut SmallRng) -> Self {
        let waves: Vec<(f64, f64, f64, f64)> = (0..24)
            .map(|_| {
                let k = rng.random_range(0.5..6.0) * std::f64::consts::TAU / p.size as f64;
                let a = rng.random_range(0.0..std::f64::consts::TAU);
                (k * a.cos(), k * a.sin(), rng.random_range(0.0..std::f64::consts::TAU), rng.random_range(0.5..1.0))
            })
            .collect();
        let norm: f64 = waves.iter().map(|w| w.3).sum();
        let waves = waves.into_iter().map(|(kx, ky, ph, amp)| (kx, ky, ph, 2.0 * amp / norm)).collect();
        Self { waves, mean: p.support_counts, ripple: p.support_ripple }
    }

    pub(crate) fn at(&self, x: f64, y: f64) -> f64 {
        let s: f64 = self.waves.iter().map(|&(kx, ky, ph, amp)| amp * (kx * x + ky * y + ph).cos()).sum();
        self.mean * (1.0 + self.ripple * s)
    }
}

/// Add round Gaussian columns (peak height `peak`) into `img`, each within ±5 σ.
pub fn add_gaussians(img: &mut Array2<f32>, columns: &[TrueColumn]) {
    let (h, w) = img.dim();
    for col in columns {
        let reach = (5.0 * col.sigma).ceil();
        let x0 = (col.x - reach).floor().max(0.0) as usize;
        let y0 = (col.y - reach).floor().max(0.0) as usize;
        let x1 = ((col.x + reach).ceil() as usize).min(w.saturating_sub(1));
        let y1 = ((col.y + reach).ceil() as usize).min(h.saturating_sub(1));
        let k = 1.0 / (2.0 * col.sigma * col.sigma);
        for y in y0..=y1 {
            for x in x0..=x1 {
                let d2 = (x as f64 - col.x).powi(2) + (y as f64 - col.y).powi(2);
                img[[y, x]] += (col.peak * (-d2 * k).exp()) as f32;
            }
        }
    }
}

/// A square lattice of `n × n` round columns (peak 10 on a background of 1), spacing `a` px,
/// offset from the pixel grid by (+0.3, −0.2) px: the finder's and the spacing estimate's
/// reference case.
pub fn square_lattice(n: usize, a: f64, sigma: f64) -> (Array2<f32>, Vec<TrueColumn>) {
    let size = (n as f64 * a) as usize;
    let cols: Vec<TrueColumn> = (0..n * n)
        .map(|i| TrueColumn {
            x: a / 2.0 + (i % n) as f64 * a + 0.3,
            y: a / 2.0 + (i / n) as f64 * a - 0.2,
            sigma,
            peak: 10.0,
            atoms: 1,
            m_atoms: 0,
        })
        .collect();
    let mut img = Array2::from_elem((size, size), 1.0f32);
    add_gaussians(&mut img, &cols);
    (img, cols)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_particle_is_a_pt_lattice_with_counts() {
        let s = nanoparticle(&NanoparticleParams::default()).unwrap();
        assert_eq!(s.image.data.dim(), (512, 512));
        assert_eq!(s.image.calibration, Calibration::nm(0.02));
        // A 5 nm particle in [110] has a few hundred columns.
        assert!((200..600).contains(&s.columns.len()), "{} columns", s.columns.len());
        // Nearest-neighbour distance of the [110] projection: sqrt((a/2√2)² + (a/2)²) = 0.2403 nm.
        let (a, b) = (&s.columns[0], &s.columns);
        let nn = b
            .iter()
            .filter(|c| !std::ptr::eq(*c, a))
            .map(|c| ((c.x - a.x).powi(2) + (c.y - a.y).powi(2)).sqrt())
            .fold(f64::MAX, f64::min);
        assert!((nn * 0.02 - 0.2403).abs() < 1e-3, "nn = {} nm", nn * 0.02);
        // Thickest column in the middle: 5 nm / 0.2775 nm ≈ 18 atoms.
        let max_atoms = s.columns.iter().map(|c| c.atoms).max().unwrap();
        assert!((16..=19).contains(&max_atoms), "{max_atoms}");
    }

    #[test]
    fn noise_is_poisson_around_the_clean_model() {
        let s = nanoparticle(&NanoparticleParams { size: 128, diameter_nm: 1.0, ..Default::default() }).unwrap();
        // Poisson: mean of (noisy − clean) ≈ 0, variance ≈ mean of clean.
        let n = s.clean.len() as f64;
        let diff: Vec<f64> = s.image.data.iter().zip(s.clean.iter()).map(|(&a, &b)| (a - b) as f64).collect();
        let mean = diff.iter().sum::<f64>() / n;
        let var = diff.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / n;
        let lam = s.clean.iter().map(|&v| v as f64).sum::<f64>() / n;
        assert!(mean.abs() < 0.1, "bias {mean}");
        assert!((var / lam - 1.0).abs() < 0.05, "var {var} vs λ {lam}");
    }

    #[test]
    fn same_seed_same_pixels() {
        let p = NanoparticleParams { size: 64, ..Default::default() };
        assert_eq!(nanoparticle(&p).unwrap().image, nanoparticle(&p).unwrap().image);
    }

    #[test]
    fn bad_parameters_are_refused() {
        assert!(nanoparticle(&NanoparticleParams { size: 4, ..Default::default() }).is_err());
        assert!(nanoparticle(&NanoparticleParams { pixel_size_nm: f64::NAN, ..Default::default() }).is_err());
    }
}
