//! The learned column finder: a [`UNet`] that maps an image to each pixel's probability of
//! holding an atom or a column centre, trained on synthetic scenes ([`super::scenes`]). Its
//! maxima seed the same Levenberg–Marquardt refinement as the classical finder's, so positions
//! and error bars come from the fit either way.
//!
//! The network works at one scale, an atom's σ ≈ [`WORK_SIGMA_PX`]: an image is resampled to
//! it from its calibration (σ = 0.6 Å, as the single-atom finder assumes), else from the
//! lattice spacing it shows (σ ≈ 0.3 × the nearest-neighbour distance), else taken as it is.
//! Input is the image's local contrast over its local noise ([`normalise`]); the target is a
//! Gaussian of σ [`TARGET_SIGMA_PX`] at every centre, fitted by binary cross-entropy; the
//! threshold on the probability is the one with the best F1 on held-back scenes.
//!
//! The committed model (`models/columns.net`, [`ColumnNet::builtin`]) was trained by
//! `atomlens train columns`; its scores on held-back scenes are recorded beside it and checked
//! by the tests.
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use super::scenes::{Scene, scene};
use super::unet::{Maps, UNet};
use super::{Adam, Rng};
use crate::CoreError;
use crate::image::filter::{gaussian_blur, max_filter};
use crate::image::stats::{local_mad, mad};
use crate::math::par;
use crate::metrics::match_points;

/// An atom's σ in the network's working pixels.
pub const WORK_SIGMA_PX: f64 = 2.0;
/// σ of the target blobs (working px).
pub const TARGET_SIGMA_PX: f64 = 1.2;
/// The probabilities [`ColumnNet::calibrate`] chooses a threshold among.
pub const THRESHOLDS: [f32; 9] = [0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6, 0.7, 0.8];
/// Channels at full resolution.
pub const WIDTH: usize = 16;
/// Training patches per step, and their side (px).
const BATCH: usize = 8;
const PATCH: usize = 64;
/// Adam's step size at the start (cosine decay to a tenth).
const LR: f32 = 2e-3;
/// The file format's first bytes and version.
const MAGIC: &[u8; 8] = b"atomlens";
const VERSION: u32 = 1;
/// What the file holds (one kind so far).
const KIND_COLUMNS: u32 = 1;
/// Bytes before the parameters.
const HEADER: usize = 28;

/// A trained column finder.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnNet {
    net: UNet,
    /// A centre is kept where its probability is at least this (chosen on held-back scenes).
    pub threshold: f32,
}

/// How well a finder does on scenes it was not trained on.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    /// Found centres within 0.5 σ … of a true one, over all true ones.
    pub recall: f64,
    /// … over all found.
    pub precision: f64,
    /// RMS distance of the matched pairs (working px), before any fit.
    pub rms_px: f64,
}

impl ColumnNet {
    /// The committed model.
    pub fn builtin() -> Result<&'static ColumnNet, CoreError> {
        static NET: std::sync::OnceLock<Result<ColumnNet, CoreError>> = std::sync::OnceLock::new();
        NET.get_or_init(|| ColumnNet::from_bytes(include_bytes!("../../models/columns.net")))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Read a model file (little-endian: magic, version, kind, width, parameter count as u32,
    /// the threshold as f32, then the parameters as f32).
    pub fn from_bytes(b: &[u8]) -> Result<ColumnNet, CoreError> {
        let bad = |reason: String| CoreError::BadModel { reason };
        if b.len() < HEADER || &b[..8] != MAGIC {
            return Err(bad("not an atomlens model file".into()));
        }
        let word = |i: usize| u32::from_le_bytes([b[8 + 4 * i], b[9 + 4 * i], b[10 + 4 * i], b[11 + 4 * i]]);
        let (version, kind, width, n) = (word(0), word(1), word(2) as usize, word(3) as usize);
        if version != VERSION {
            return Err(bad(format!("model format version {version}; this atomlens reads version {VERSION}")));
        }
        if kind != KIND_COLUMNS {
            return Err(bad(format!("a model of kind {kind}, not a column finder")));
        }
        let threshold = f32::from_bits(word(4));
        if !(threshold > 0.0 && threshold < 1.0) {
            return Err(bad(format!("a threshold of {threshold}, not a probability")));
        }
        if b.len() != HEADER + 4 * n {
            return Err(bad(format!("{} bytes for {n} parameters (truncated or padded)", b.len())));
        }
        let params: Vec<f32> = b[HEADER..].as_chunks::<4>().0.iter().map(|c| f32::from_le_bytes(*c)).collect();
        let net = UNet { width, params };
        if !net.is_consistent() || net.params.iter().any(|v| !v.is_finite()) {
            return Err(bad(format!("{n} parameters do not make a network of width {width}, or are not finite")));
        }
        Ok(ColumnNet { net, threshold })
    }

    /// The model file's bytes ([`Self::from_bytes`]).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        let (width, n) = (self.net.width as u32, self.net.params.len() as u32);
        for w in [VERSION, KIND_COLUMNS, width, n, self.threshold.to_bits()] {
            b.extend_from_slice(&w.to_le_bytes());
        }
        self.net.params.iter().for_each(|p| b.extend_from_slice(&p.to_le_bytes()));
        b
    }

    /// Each pixel's probability of being an atom's or column's centre, for an image already at
    /// the working scale.
    pub fn probability(&self, work: ArrayView2<f32>) -> Array2<f32> {
        self.net.apply(normalise(work).view()).mapv(sigmoid)
    }

    /// Centres `[x, y]` (working px) in an image at the working scale: local maxima of the
    /// probability at least the model's threshold, refined to the centroid of their 3×3
    /// neighbourhood, and each one's probability.
    pub fn centres(&self, work: ArrayView2<f32>) -> Vec<([f64; 2], f32)> {
        let p = self.probability(work);
        maxima(p.view(), self.threshold)
    }

    /// Recall, precision and RMS on `n` held-back scenes of `size` px drawn from `seed`.
    pub fn score(&self, n: usize, size: usize, seed: u64) -> Scores {
        self.score_at(n, size, seed, &[self.threshold])[0]
    }

    /// [`Self::score`] at each of `thresholds` (the network run once per scene).
    fn score_at(&self, n: usize, size: usize, seed: u64, thresholds: &[f32]) -> Vec<Scores> {
        let mut rng = Rng::new(seed);
        let scenes: Vec<Scene> = (0..n).map(|_| scene(size, &mut rng)).collect();
        let per = par::map(n, |k| {
            let s = &scenes[k];
            let p = self.probability(s.image.view());
            thresholds
                .iter()
                .map(|&t| {
                    let found: Vec<[f64; 2]> = maxima(p.view(), t).into_iter().map(|c| c.0).collect();
                    let m = match_points(&s.atoms, &found, 0.75 * s.sigma);
                    (s.atoms.len(), found.len(), m.pairs.iter().map(|p| p.2 * p.2).collect::<Vec<f64>>())
                })
                .collect::<Vec<_>>()
        });
        (0..thresholds.len()).map(|i| tally(per.iter().map(|p| &p[i]))).collect()
    }

    /// Set the threshold to the one of [`THRESHOLDS`] with the best F1 score (the harmonic
    /// mean of recall and precision) on `n` scenes of `size` px from `seed` (not the scoring
    /// seed).
    pub fn calibrate(&mut self, n: usize, size: usize, seed: u64) {
        let scores = self.score_at(n, size, seed, &THRESHOLDS);
        let f1 = |s: &Scores| 2.0 * s.recall * s.precision / (s.recall + s.precision).max(1e-12);
        let best = (0..THRESHOLDS.len()).max_by(|&a, &b| f1(&scores[a]).total_cmp(&f1(&scores[b]))).unwrap_or(0);
        self.threshold = THRESHOLDS[best];
    }
}

/// Pooled scores from per-scene (true, found, squared distances of the matched).
fn tally<'a>(per: impl Iterator<Item = &'a (usize, usize, Vec<f64>)>) -> Scores {
    let (mut truth, mut found, mut d2) = (0, 0, Vec::new());
    for (t, f, d) in per {
        (truth, found) = (truth + t, found + f);
        d2.extend_from_slice(d);
    }
    Scores {
        recall: d2.len() as f64 / truth.max(1) as f64,
        precision: d2.len() as f64 / found.max(1) as f64,
        rms_px: (d2.iter().sum::<f64>() / d2.len().max(1) as f64).sqrt(),
    }
}

fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

/// The network's input: the image less its local background (a Gaussian of 4 atom widths),
/// over its local noise (the MAD in blocks of 16 atom widths, never under a tenth of the
/// whole image's), through asinh so a thick particle and a single atom both stay in range.
/// Local, so a thickness gradient, a vacuum edge or a detector's units do not matter: what
/// the network sees is each spot's contrast against the noise around it. Non-finite pixels
/// read as the median.
pub fn normalise(img: ArrayView2<f32>) -> Array2<f32> {
    let mut finite: Vec<f32> = img.iter().copied().filter(|v| v.is_finite()).collect();
    let med = if finite.is_empty() {
        0.0
    } else {
        let m = finite.len() / 2;
        *finite.select_nth_unstable_by(m, f32::total_cmp).1
    };
    let filled = img.mapv(|v| if v.is_finite() { v } else { med });
    let background = gaussian_blur(filled.view(), 4.0 * WORK_SIGMA_PX);
    let high = &filled - &background;
    let whole = mad(high.iter().copied());
    let floor = if whole > 0.0 { 0.1 * whole } else { 1e-12 };
    let noise = local_mad(high.view(), (16.0 * WORK_SIGMA_PX) as usize);
    ndarray::Zip::from(&high).and(&noise).map_collect(|&v, &n| (v / (2.0 * n.max(floor))).asinh())
}

/// Local maxima (5×5) of `p` at least `threshold`, at their 3×3 centroid.
fn maxima(p: ArrayView2<f32>, threshold: f32) -> Vec<([f64; 2], f32)> {
    let (h, w) = p.dim();
    let top = max_filter(p, 2);
    let mut out = Vec::new();
    for y in 0..h {
        for x in 0..w {
            let v = p[[y, x]];
            if v < threshold || v < top[[y, x]] {
                continue;
            }
            let (mut sx, mut sy, mut s) = (0.0, 0.0, 0.0);
            for yy in y.saturating_sub(1)..(y + 2).min(h) {
                for xx in x.saturating_sub(1)..(x + 2).min(w) {
                    let q = p[[yy, xx]] as f64;
                    (sx, sy, s) = (sx + q * xx as f64, sy + q * yy as f64, s + q);
                }
            }
            // Plateaus (equal neighbours) would give one centre per pixel: keep the first.
            if out.iter().any(|(c, _): &([f64; 2], f32)| (c[0] - sx / s).hypot(c[1] - sy / s) < 2.0) {
                continue;
            }
            out.push(([sx / s, sy / s], v));
        }
    }
    out
}

/// The target of a scene: a Gaussian of σ [`TARGET_SIGMA_PX`] at each centre (the largest
/// where two overlap).
fn target(s: &Scene) -> Vec<f32> {
    let n = s.image.nrows();
    let mut t = vec![0.0f32; n * n];
    let reach = (3.0 * TARGET_SIGMA_PX).ceil() as i64;
    for &[x, y] in &s.atoms {
        let (cx, cy) = (x.round() as i64, y.round() as i64);
        for yy in (cy - reach).max(0)..=(cy + reach).min(n as i64 - 1) {
            for xx in (cx - reach).max(0)..=(cx + reach).min(n as i64 - 1) {
                let d2 = (xx as f64 - x).powi(2) + (yy as f64 - y).powi(2);
                let v = (-d2 / (2.0 * TARGET_SIGMA_PX * TARGET_SIGMA_PX)).exp() as f32;
                let i = yy as usize * n + xx as usize;
                t[i] = t[i].max(v);
            }
        }
    }
    t
}

/// Training a column finder from scratch on synthetic scenes.
#[derive(Debug, Clone)]
pub struct Trainer {
    net: UNet,
    adam: Adam,
    rng: Rng,
    steps: usize,
    done: usize,
    /// The mean loss of each step (binary cross-entropy per pixel).
    pub losses: Vec<f32>,
}

impl Trainer {
    /// A fresh network to train for `steps` steps from `seed`.
    pub fn new(steps: usize, seed: u64) -> Result<Trainer, CoreError> {
        super::n2v::check(steps)?;
        let mut rng = Rng::new(seed);
        let net = UNet::new(WIDTH, &mut rng);
        let adam = Adam::new(net.params.len());
        Ok(Trainer { net, adam, rng, steps, done: 0, losses: Vec::new() })
    }

    /// Steps taken and asked for.
    pub fn progress(&self) -> (usize, usize) {
        (self.done, self.steps)
    }

    /// One step on a fresh batch of scenes; its mean loss. Past the last step, nothing.
    pub fn step(&mut self) -> Option<f32> {
        if self.done >= self.steps {
            return None;
        }
        let scenes: Vec<Scene> = (0..BATCH).map(|_| scene(PATCH, &mut self.rng)).collect();
        let net = &self.net;
        let n = (BATCH * PATCH * PATCH) as f32;
        let parts = par::map(BATCH, |b| {
            let s = &scenes[b];
            let x = Maps { c: 1, h: PATCH, w: PATCH, data: normalise(s.image.view()).into_raw_vec_and_offset().0 };
            let t = target(s);
            let mut grad = vec![0.0f32; net.params.len()];
            let mut loss = 0.0f32;
            net.backward(
                x,
                |y| {
                    let mut g = Maps::zeros(1, y.h, y.w);
                    for (i, (&z, &t)) in y.data.iter().zip(&t).enumerate() {
                        // BCE with logits: max(z,0) − z·t + ln(1 + e^−|z|); gradient σ(z) − t.
                        loss += z.max(0.0) - z * t + (-z.abs()).exp().ln_1p();
                        g.data[i] = (sigmoid(z) - t) / n;
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

    /// The network as trained so far (threshold 0.5 until [`ColumnNet::calibrate`]d).
    pub fn model(&self) -> ColumnNet {
        ColumnNet { net: self.net.clone(), threshold: 0.5 }
    }
}

/// An image resampled by `factor` (working px per image px; bilinear, low-passed first when
/// shrinking so it does not alias).
pub fn rescale(img: ArrayView2<f32>, factor: f64) -> Array2<f32> {
    let (h, w) = img.dim();
    let src: ndarray::CowArray<f32, ndarray::Ix2> =
        if factor < 0.8 { gaussian_blur(img, 0.4 / factor).into() } else { img.into() };
    let (nh, nw) = (((h as f64 * factor).round() as usize).max(1), ((w as f64 * factor).round() as usize).max(1));
    let fill = crate::image::stats::finite_mean(img) as f32;
    crate::math::warp::resample(src.view(), (nh, nw), fill, |[x, y]| {
        [
            ((x + 0.5) / factor - 0.5).clamp(0.0, w as f64 - 1.001),
            ((y + 0.5) / factor - 0.5).clamp(0.0, h as f64 - 1.001),
        ]
    })
}

/// Held-back scenes the recorded scores are measured on (`atomlens train columns` records them).
pub const SCORE_SCENES: usize = 48;
/// Their side (px).
pub const SCORE_SIZE: usize = 128;
/// Their seed (never a training seed: training draws from its own stream).
pub const SCORE_SEED: u64 = 0xA70_5CE2E;
/// The seed of the scenes the threshold is chosen on ([`ColumnNet::calibrate`]).
pub const CALIBRATE_SEED: u64 = SCORE_SEED + 1;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_model_file_round_trips_and_bad_ones_are_refused() {
        let m = Trainer::new(1, 4).unwrap().model();
        let b = m.to_bytes();
        assert_eq!(ColumnNet::from_bytes(&b).unwrap(), m);
        let says = |b: &[u8]| ColumnNet::from_bytes(b).unwrap_err().to_string();
        assert!(says(&b[..1000]).contains("truncated"), "{}", says(&b[..1000]));
        assert!(says(b"GIF89a..................").contains("not an atomlens model"));
        let mut v2 = b.clone();
        v2[8] = 2;
        assert!(says(&v2).contains("version 2"), "{}", says(&v2));
        let mut nan = b.clone();
        nan[40..44].copy_from_slice(&f32::NAN.to_le_bytes());
        assert!(says(&nan).contains("not finite"));
    }

    #[test]
    fn a_few_steps_lower_the_loss() {
        let mut t = Trainer::new(30, 2).unwrap();
        while t.step().is_some() {}
        let first: f32 = t.losses[..5].iter().sum::<f32>() / 5.0;
        let last: f32 = t.losses[25..].iter().sum::<f32>() / 5.0;
        assert!(last < 0.7 * first, "loss {first} → {last}");
    }

    #[test]
    fn the_committed_model_loads_and_keeps_its_recorded_scores() {
        let m = ColumnNet::builtin().unwrap();
        let recorded: serde_json::Value =
            serde_json::from_str(include_str!("../../models/columns.json")).expect("columns.json");
        let s = m.score(SCORE_SCENES, SCORE_SIZE, SCORE_SEED);
        for (name, v) in [("recall", s.recall), ("precision", s.precision), ("rms_px", s.rms_px)] {
            let r = recorded["scores"][name].as_f64().expect(name);
            assert!((v - r).abs() < 0.01, "{name}: {v:.4} now, {r:.4} recorded");
        }
    }

    /// A spot's centroid after resampling is where the pixel-centre convention puts it,
    /// shrinking and enlarging.
    #[test]
    fn rescaling_keeps_positions() {
        let (x0, y0) = (30.3, 27.8);
        let mut img = Array2::from_elem((64, 64), 1.0f32);
        let spot = crate::synth::TrueColumn { x: x0, y: y0, sigma: 3.0, peak: 10.0, atoms: 1, m_atoms: 0 };
        crate::synth::add_gaussians(&mut img, &[spot]);
        for f in [0.5, 1.6] {
            let r = rescale(img.view(), f);
            let (mut sx, mut sy, mut s) = (0.0, 0.0, 0.0);
            for ((y, x), &v) in r.indexed_iter() {
                let v = (v - 1.0) as f64;
                (sx, sy, s) = (sx + v * x as f64, sy + v * y as f64, s + v);
            }
            let want = [(x0 + 0.5) * f - 0.5, (y0 + 0.5) * f - 0.5];
            let d = (sx / s - want[0]).hypot(sy / s - want[1]);
            assert!(d < 0.02 * f, "factor {f}: ({:.3}, {:.3}) for {want:?}", sx / s, sy / s);
        }
    }
}
