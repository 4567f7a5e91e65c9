//! Noise2Void (Krull, Buchholz & Jug, CVPR 2019): a [`UNet`] trained on the image it will
//! denoise. Each step cuts random patches (turned and flipped at random), hides one pixel in
//! every 8×8 cell behind the value of a random neighbour within ±2 px, and fits the network's
//! output at the hidden pixels to their true values. Pixel-independent noise (Poisson, read-out)
//! cannot be predicted from the neighbours, so the network learns the signal; correlated noise
//! (scan lines, drift) it learns too, and keeps.
//!
//! The image is normalised to zero mean and unit spread before training and restored after.
//! Training is seeded and runs the same on every platform ([`super::Rng`]); the batch's
//! gradients are computed in parallel and summed in order, so the result does not depend on the
//! number of threads.
use ndarray::{Array2, ArrayView2};

use super::unet::{Maps, UNet};
use super::{Adam, Rng};
use crate::CoreError;
use crate::image::check_usable;
use crate::image::filter::reflect;
use crate::math::par;

/// Channels of the network at full resolution.
pub const WIDTH: usize = 16;
/// Patches per step.
const BATCH: usize = 8;
/// Side of the training patches (px; a multiple of 4).
const PATCH: usize = 64;
/// One hidden pixel per `CELL × CELL` block of a patch (≈ 1.6 %, as the paper).
const CELL: usize = 8;
/// Adam's step size at the start; it falls along a cosine to a tenth at the end.
const LR: f32 = 2e-3;
/// The smallest image side trained on.
pub const MIN_SIDE: usize = 16;
/// Training steps by default: about NLM's PSNR on a low-dose lattice (≈ 80 s on two cores).
pub const STEPS: usize = 400;
/// The most training steps asked for at once.
pub const MAX_STEPS: usize = 20_000;

/// A Noise2Void training in progress on one image: step it, then [`Trainer::denoise`].
#[derive(Debug, Clone)]
pub struct Trainer {
    net: UNet,
    adam: Adam,
    rng: Rng,
    /// The image normalised, non-finite pixels at 0 (the mean).
    img: Array2<f32>,
    mean: f64,
    spread: f64,
    patch: usize,
    steps: usize,
    seed: u64,
    done: usize,
    /// The mean loss of each step so far (normalised units²).
    pub losses: Vec<f32>,
}

impl Trainer {
    /// A fresh network for `img`, to be trained for `steps` steps from `seed`.
    pub fn new(img: ArrayView2<f32>, steps: usize, seed: u64) -> Result<Trainer, CoreError> {
        check_usable(img)?;
        check(steps)?;
        let (h, w) = img.dim();
        if h.min(w) < MIN_SIDE {
            return Err(CoreError::TooSmall { width: w, height: h, min: MIN_SIDE, what: "Noise2Void" });
        }
        let finite: Vec<f64> = img.iter().filter(|v| v.is_finite()).map(|&v| v as f64).collect();
        let mean = finite.iter().sum::<f64>() / finite.len() as f64;
        let var = finite.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / finite.len() as f64;
        let spread = if var > 0.0 { var.sqrt() } else { 1.0 };
        let img = img.mapv(|v| if v.is_finite() { ((v as f64 - mean) / spread) as f32 } else { 0.0 });
        let mut rng = Rng::new(seed);
        let net = UNet::new(WIDTH, &mut rng);
        let adam = Adam::new(net.params.len());
        let patch = PATCH.min(h.min(w) / 4 * 4);
        Ok(Trainer { net, adam, rng, img, mean, spread, patch, steps, seed, done: 0, losses: Vec::new() })
    }

    /// Steps taken and asked for.
    pub fn progress(&self) -> (usize, usize) {
        (self.done, self.steps)
    }

    /// The seed it was started from.
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// One step of training (a batch of patches); its mean loss. Past the last step, nothing.
    pub fn step(&mut self) -> Option<f32> {
        if self.done >= self.steps {
            return None;
        }
        // Draw every patch's placement and mask here, in order, so the stream is fixed.
        let jobs: Vec<(Maps, Vec<(usize, f32)>)> = (0..BATCH).map(|_| self.masked_patch()).collect();
        let net = &self.net;
        let n = (BATCH * jobs[0].1.len()) as f32;
        let parts = par::map(BATCH, |b| {
            let (x, hidden) = &jobs[b];
            let mut grad = vec![0.0f32; net.params.len()];
            let mut loss = 0.0f32;
            net.backward(
                x.clone(),
                |y| {
                    let mut g = Maps::zeros(1, y.h, y.w);
                    for &(i, t) in hidden {
                        let d = y.data[i] - t;
                        loss += d * d;
                        g.data[i] = 2.0 * d / n;
                    }
                    g
                },
                &mut grad,
            );
            (loss, grad)
        });
        let loss = super::descend(&mut self.net, &mut self.adam, parts, LR, (self.done, self.steps));
        self.done += 1;
        self.losses.push(loss / n);
        Some(loss / n)
    }

    /// A random patch, turned and flipped, with one pixel per cell replaced by a random
    /// neighbour's value; the hidden pixels' indices and true values.
    fn masked_patch(&mut self) -> (Maps, Vec<(usize, f32)>) {
        let (h, w) = self.img.dim();
        let p = self.patch;
        let (y0, x0) = (self.rng.below(h - p + 1), self.rng.below(w - p + 1));
        let (flip_y, flip_x, swap) = (self.rng.below(2) == 1, self.rng.below(2) == 1, self.rng.below(2) == 1);
        let mut x = Maps::zeros(1, p, p);
        for r in 0..p {
            for c in 0..p {
                let (a, b) = if swap { (c, r) } else { (r, c) };
                let a = if flip_y { p - 1 - a } else { a };
                let b = if flip_x { p - 1 - b } else { b };
                x.data[r * p + c] = self.img[[y0 + a, x0 + b]];
            }
        }
        let clean = x.data.clone();
        let cell = CELL.min(p / 2);
        let mut hidden = Vec::with_capacity((p / cell) * (p / cell));
        for cy in 0..p / cell {
            for cx in 0..p / cell {
                let (r, c) = (cy * cell + self.rng.below(cell), cx * cell + self.rng.below(cell));
                // A neighbour within ±2 px other than the pixel itself, mirrored at the edges.
                let (dr, dc) = loop {
                    let (dr, dc) = (self.rng.below(5) as i64 - 2, self.rng.below(5) as i64 - 2);
                    if (dr, dc) != (0, 0) {
                        break (dr, dc);
                    }
                };
                let nr = reflect(r as i64 + dr, p);
                let nc = reflect(c as i64 + dc, p);
                hidden.push((r * p + c, clean[r * p + c]));
                x.data[r * p + c] = clean[nr * p + nc];
            }
        }
        (x, hidden)
    }

    /// The trained network run over the image, in the image's units; non-finite pixels stay so.
    pub fn denoise(&self, original: ArrayView2<f32>) -> Array2<f32> {
        let out = self.net.apply(self.img.view());
        let mut out = out.mapv(|v| (v as f64 * self.spread + self.mean) as f32);
        out.zip_mut_with(&original, |o, &v| {
            if !v.is_finite() {
                *o = f32::NAN
            }
        });
        out
    }

    /// The steps not yet taken, then [`Self::denoise`].
    pub fn finish(mut self, original: ArrayView2<f32>) -> Array2<f32> {
        while self.step().is_some() {}
        self.denoise(original)
    }
}

/// Check a number of training steps.
pub fn check(steps: usize) -> Result<(), CoreError> {
    if (1..=MAX_STEPS).contains(&steps) {
        Ok(())
    } else {
        Err(CoreError::InvalidParameter { name: "steps", reason: format!("{steps} is outside 1–{MAX_STEPS}") })
    }
}

/// Train on `img` for `steps` steps from `seed` and return it denoised.
pub fn denoise(img: ArrayView2<f32>, steps: usize, seed: u64) -> Result<Array2<f32>, CoreError> {
    Ok(Trainer::new(img, steps, seed)?.finish(img))
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::metrics::psnr;
    use crate::synth::{TrueColumn, add_gaussians, at_dose};

    /// A lattice of columns of three brightnesses at a low dose (Poisson counts, ~12 at a peak).
    pub(super) fn low_dose() -> (Array2<f32>, Array2<f32>) {
        let mut cols = Vec::new();
        for i in 0..12 {
            for j in 0..12 {
                let peak = [0.6, 1.0, 0.8][(i * 5 + j * 3) % 3];
                cols.push(TrueColumn {
                    x: 5.0 + 10.3 * i as f64,
                    y: 5.0 + 10.3 * j as f64,
                    sigma: 2.0,
                    peak,
                    atoms: 1,
                    m_atoms: 0,
                });
            }
        }
        let mut clean = Array2::from_elem((128, 128), 0.1f32);
        add_gaussians(&mut clean, &cols);
        let clean = clean.mapv(|v| v * 12.0);
        (at_dose(clean.view(), 1.0, 11), clean)
    }

    #[test]
    #[cfg_attr(debug_assertions, ignore = "150 training steps; run with --release")]
    fn training_lowers_the_loss_and_the_noise() {
        let (noisy, clean) = low_dose();
        let mut t = Trainer::new(noisy.view(), 150, 1).unwrap();
        while t.step().is_some() {}
        let first: f32 = t.losses[..10].iter().sum::<f32>() / 10.0;
        let last: f32 = t.losses[140..].iter().sum::<f32>() / 10.0;
        assert!(last < 0.8 * first, "loss {first} → {last}");
        let out = t.denoise(noisy.view());
        let (before, after) = (psnr(noisy.view(), clean.view(), 0.0), psnr(out.view(), clean.view(), 0.0));
        assert!(after > before + 6.0, "PSNR {before:.1} → {after:.1} dB");
    }

    #[test]
    fn the_same_seed_trains_the_same_network() {
        let (noisy, _) = low_dose();
        let a = denoise(noisy.view(), 3, 5).unwrap();
        let b = denoise(noisy.view(), 3, 5).unwrap();
        let c = denoise(noisy.view(), 3, 6).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn small_images_and_bad_steps_are_refused_and_nan_stays_nan() {
        let img = Array2::from_elem((12, 40), 1.0f32);
        assert!(matches!(denoise(img.view(), 5, 0), Err(CoreError::TooSmall { min: 16, .. })));
        let (mut noisy, _) = low_dose();
        assert!(matches!(denoise(noisy.view(), 0, 0), Err(CoreError::InvalidParameter { name: "steps", .. })));
        noisy[[3, 4]] = f32::NAN;
        let out = denoise(noisy.view(), 2, 0).unwrap();
        assert!(out[[3, 4]].is_nan());
        assert_eq!(out.iter().filter(|v| !v.is_finite()).count(), 1);
    }
}
