//! Learned models, trained and run on the CPU in pure Rust (the GPU twins live in
//! `atomlens-gpu`, as for every kernel).
//!
//! - [`unet`]: a small U-Net with hand-written forward and backward passes, Adam, tiled inference.
//! - [`finder`]: the learned column finder, trained on [`scenes`] (synthetic atoms and
//!   particles on supports); its maxima seed the classical refinement.
//! - [`n2v`]: Noise2Void, a denoiser trained on the image itself (no clean target): the
//!   network learns to predict each pixel from its neighbours only, which pixel-independent
//!   noise cannot help with, so its prediction is the signal.
pub mod finder;
pub mod n2v;
pub mod scenes;
pub mod unet;

/// SplitMix64: the same stream on every platform (`rand`'s `SmallRng` is a different generator
/// on 32-bit wasm than on 64-bit hosts), so a seed trains the same network in the page and the
/// CLI.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in `0..n` (0 < n < 2³²).
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next() >> 32) * n as u64) >> 32) as usize
    }
    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u = 1.0 - self.uniform();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * self.uniform()).cos()
    }
}

/// Adam (Kingma & Ba 2015) over one parameter vector.
#[derive(Debug, Clone)]
pub struct Adam {
    m: Vec<f32>,
    v: Vec<f32>,
    t: i32,
}

impl Adam {
    /// Moments for `n` parameters.
    pub fn new(n: usize) -> Adam {
        Adam { m: vec![0.0; n], v: vec![0.0; n], t: 0 }
    }
    /// One step of size `lr` down `grad`.
    pub fn step(&mut self, params: &mut [f32], grad: &[f32], lr: f32) {
        const B1: f32 = 0.9;
        const B2: f32 = 0.999;
        self.t += 1;
        let (c1, c2) = (1.0 - B1.powi(self.t), 1.0 - B2.powi(self.t));
        for i in 0..params.len() {
            self.m[i] = B1 * self.m[i] + (1.0 - B1) * grad[i];
            self.v[i] = B2 * self.v[i] + (1.0 - B2) * grad[i] * grad[i];
            params[i] -= lr * (self.m[i] / c1) / ((self.v[i] / c2).sqrt() + 1e-8);
        }
    }
}

/// One descent step from per-patch `(loss, gradient)` pairs: summed in order (so the result does
/// not depend on the number of threads), then Adam at `lr` decayed along a cosine to a tenth of
/// it over `steps`, at step `done`. Returns the summed loss.
pub(crate) fn descend(
    net: &mut unet::UNet,
    adam: &mut Adam,
    parts: Vec<(f32, Vec<f32>)>,
    lr: f32,
    (done, steps): (usize, usize),
) -> f32 {
    let mut grad = vec![0.0f32; net.params.len()];
    let mut loss = 0.0;
    for (l, g) in parts {
        loss += l;
        grad.iter_mut().zip(&g).for_each(|(a, b)| *a += b);
    }
    let t = done as f32 / steps.max(1) as f32;
    adam.step(&mut net.params, &grad, lr * (0.1 + 0.9 * 0.5 * (1.0 + (std::f32::consts::PI * t).cos())));
    loss
}
