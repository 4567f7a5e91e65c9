//! Block-matching 3D collaborative filtering (BM3D; Dabov, Foi, Katkovnik & Egiazarian 2007),
//! Poisson-aware as Mevenkamp et al. (ASCI 2015) use it for low-dose STEM: counts go through the
//! Anscombe transform `2√(x + 3/8)` (noise σ ≈ 1) and come back by Mäkitalo & Foi's (2011)
//! closed-form unbiased inverse; other images are divided by their noise σ (Immerkær) instead.
//!
//! Two stages on 8×8 blocks, references on a 4-px grid (plus the last row and column; Dabov
//! use 3 px: 4 costs ≤ 0.2 dB on the shared sets and saves 30 % of the time):
//! 1. Hard thresholding: the blocks within ±`search` px (and near lattice translations) most similar to the reference (mean
//!    squared difference ≤ 4σ², at most 16, a power of two) are stacked, transformed (2D DCT per
//!    block, Haar along the stack), coefficients below 2.7σ zeroed, transformed back, and every
//!    block is added into the estimate with weight `1 / (retained coefficients)` times a Kaiser
//!    window (β = 2).
//! 2. Wiener: blocks matched on the basic estimate (≤ 32, mean squared difference ≤ 0.64σ²), the
//!    same stack of noisy and basic blocks transformed, noisy coefficients shrunk by
//!    `B² / (B² + σ²)`, weight `1 / Σ shrink²`.
//!
//! Block matching costs O(pixels) per offset (squared differences summed down columns and across
//! the 8 px of a block); the DCT of every block of a tile is computed once (rows, then columns).
//! Tiles of references run in parallel, each accumulating into its own buffer, added into the
//! image under a lock.
use std::f32::consts::{FRAC_1_SQRT_2, PI};
use std::sync::Mutex;

use ndarray::{Array2, ArrayView2};

use crate::denoise::patches::{Offsets, Stabilised};
use crate::image::Noise;

/// Block side (px).
const B: usize = 8;
/// Reference grid step (px).
const STEP: usize = 4;
/// References per tile side: a tile is one parallel task.
const TILE: usize = 64;

struct Stage {
    max_group: usize,
    /// Largest mean squared block difference (σ² units) that still counts as a match.
    tau: f32,
}
const HARD: Stage = Stage { max_group: 16, tau: 4.0 };
const WIENER: Stage = Stage { max_group: 32, tau: 0.64 };
const LAMBDA: f32 = 2.7;

/// BM3D of `img` with block matching over ±`search` px (see the module docs). Non-finite pixels
/// are treated as the image mean and come back NaN.
pub fn bm3d(img: ArrayView2<f32>, noise: Noise, search: usize, lattice: bool) -> Array2<f32> {
    let (h, w) = img.dim();
    if h < B || w < B {
        return img.to_owned();
    }
    let Some(plane) = Stabilised::new(img, noise) else {
        return img.to_owned(); // noise-free (or constant): nothing to remove
    };
    let offsets = Offsets::searched(img, search, lattice);
    let noisy = Plane { px: &plane.px, h, w };
    let basic = run_stage(noisy, noisy, &HARD, &offsets);
    let fine = run_stage(noisy, Plane { px: &basic, h, w }, &WIENER, &offsets);
    plane.restore(&fine)
}

/// A row-major image plane.
#[derive(Clone, Copy)]
struct Plane<'a> {
    px: &'a [f32],
    h: usize,
    w: usize,
}

impl Plane<'_> {
    fn row(&self, y: usize) -> &[f32] {
        &self.px[y * self.w..][..self.w]
    }
}

/// Reference positions along one axis: every `STEP` px and the last block that fits.
fn grid(len: usize) -> Vec<usize> {
    let mut g: Vec<usize> = (0..=len - B).step_by(STEP).collect();
    if *g.last().expect("len ≥ B") != len - B {
        g.push(len - B);
    }
    g
}

/// A rectangle of the image: rows `y0..y1`, columns `x0..x1`.
#[derive(Clone, Copy)]
struct Rect {
    y0: usize,
    y1: usize,
    x0: usize,
    x1: usize,
}

/// The 2D DCT of every 8×8 block whose top-left corner lies in `rect` (less the last 7 px).
struct Spectra {
    rect: Rect,
    /// Block positions per row.
    bw: usize,
    c: Vec<[f32; B * B]>,
}

impl Spectra {
    fn at(&self, y: usize, x: usize) -> &[f32; B * B] {
        &self.c[(y - self.rect.y0) * self.bw + (x - self.rect.x0)]
    }
}

/// One stage over the whole image: `guide` is matched (and, for Wiener, shrinks), `noisy` is
/// filtered. Returns the aggregated estimate. Work is split into tiles of references; a tile's
/// blocks reach `search` px beyond it, where its private sums overlap its neighbours'.
fn run_stage(noisy: Plane, guide: Plane, stage: &Stage, offsets: &Offsets) -> Vec<f32> {
    let search = offsets.margin;
    let (h, w) = (noisy.h, noisy.w);
    let (ys, xs) = (grid(h), grid(w));
    let t = Transforms::new();
    let total = Mutex::new((vec![0.0f32; h * w], vec![0.0f32; h * w]));
    let tiles: Vec<(&[usize], &[usize])> = ys.chunks(TILE).flat_map(|r| xs.chunks(TILE).map(move |c| (r, c))).collect();
    crate::math::par::map(tiles.len(), |k| {
        let (rows, cols) = tiles[k];
        let rect = Rect {
            y0: rows[0].saturating_sub(search),
            y1: (rows[rows.len() - 1] + B + search).min(h),
            x0: cols[0].saturating_sub(search),
            x1: (cols[cols.len() - 1] + B + search).min(w),
        };
        let rw = rect.x1 - rect.x0;
        let mut num = vec![0.0f32; (rect.y1 - rect.y0) * rw];
        let mut den = vec![0.0f32; num.len()];
        let groups = match_tile(guide, rows, cols, &offsets.list, stage);
        let sn = t.spectra(noisy, rect);
        let sg = (stage.tau < HARD.tau).then(|| t.spectra(guide, rect));
        let mut work = Work::default();
        for group in &groups {
            let weight = t.filter(&sn, sg.as_ref(), group, &mut work);
            for (g, &(by, bx)) in group.iter().enumerate() {
                let block = &work.noisy[g * B * B..][..B * B];
                for i in 0..B {
                    let o = (by + i - rect.y0) * rw + bx - rect.x0;
                    for j in 0..B {
                        let kw = weight * t.kaiser[i * B + j];
                        num[o + j] += kw * block[i * B + j];
                        den[o + j] += kw;
                    }
                }
            }
        }
        let mut total = total.lock().expect("no panics while held");
        let (tn, td) = &mut *total;
        for y in rect.y0..rect.y1 {
            let local = (y - rect.y0) * rw;
            let sums = tn[y * w + rect.x0..y * w + rect.x1].iter_mut().zip(&num[local..local + rw]);
            sums.for_each(|(a, b)| *a += b);
            let weights = td[y * w + rect.x0..y * w + rect.x1].iter_mut().zip(&den[local..local + rw]);
            weights.for_each(|(a, b)| *a += b);
        }
    });
    let (num, den) = total.into_inner().expect("no panics while held");
    // Every pixel lies in some reference block (the grid ends at the last block), so den > 0.
    num.iter().zip(&den).map(|(n, d)| n / d).collect()
}

/// For every reference of the tile (`rows` × `cols`), the top-left corners of its matched
/// blocks, best first, as many as the largest power of two available.
fn match_tile(
    guide: Plane,
    rows: &[usize],
    cols: &[usize],
    offsets: &[[isize; 2]],
    stage: &Stage,
) -> Vec<Vec<(usize, usize)>> {
    let (h, w) = (guide.h, guide.w);
    let k = stage.max_group;
    let limit = stage.tau * (B * B) as f32;
    // Every reference is in its own group (first), so every pixel is covered by some estimate.
    let mut best: Vec<Vec<(f32, usize, usize)>> =
        rows.iter().flat_map(|&y| cols.iter().map(move |&x| vec![(0.0, y, x)])).collect();
    let mut worst = vec![if k == 1 { 0.0 } else { f32::INFINITY }; best.len()];
    let (top, bottom) = (rows[0], rows[rows.len() - 1] + B);
    let (left, right) = (cols[0], cols[cols.len() - 1] + B);
    let cw = right - left;
    let mut ring = vec![0.0f32; B * cw];
    let mut colsum = vec![0.0f32; cw];
    for &[dy, dx] in offsets.iter().filter(|o| **o != [0, 0]) {
        {
            // Columns whose partner x + dx lies in the image.
            let (x0, x1) = ((left as isize).max(-dx) as usize, (right as isize).min(w as isize - dx) as usize);
            if x0 >= x1 {
                continue;
            }
            colsum.fill(0.0);
            ring.fill(0.0);
            let mut next = 0; // the next reference row to score
            for y in top..bottom {
                // The row B above leaves the column sums as this row enters (the ring holds B rows).
                let e = &mut ring[(y - top) % B * cw..][..cw];
                let yy = y as isize + dy;
                let (a0, a1) = if (0..h as isize).contains(&yy) { (x0 - left, x1 - left) } else { (0, 0) };
                for x in (0..a0).chain(a1..cw) {
                    colsum[x] -= e[x];
                    e[x] = 0.0;
                }
                if a1 > a0 {
                    let a = &guide.row(y)[x0..x1];
                    let b = &guide.row(yy as usize)[(x0 as isize + dx) as usize..(x1 as isize + dx) as usize];
                    let (c, ev) = (&mut colsum[a0..a1], &mut e[a0..a1]);
                    for (((c, ev), av), bv) in c.iter_mut().zip(ev).zip(a).zip(b) {
                        let v = (av - bv) * (av - bv);
                        *c += v - *ev;
                        *ev = v;
                    }
                }
                if y + 1 < top + B || next >= rows.len() || rows[next] != y + 1 - B {
                    continue;
                }
                let ry = rows[next];
                next += 1;
                let my = ry as isize + dy;
                if my < 0 || my > (h - B) as isize {
                    continue;
                }
                for (c, &rx) in cols.iter().enumerate() {
                    let mx = rx as isize + dx;
                    if mx < 0 || mx > (w - B) as isize {
                        continue;
                    }
                    let d: f32 = colsum[rx - left..rx - left + B].iter().sum();
                    let i = (next - 1) * cols.len() + c;
                    if d > limit || d >= worst[i] {
                        continue;
                    }
                    let cand = (d, my as usize, mx as usize);
                    let list = &mut best[i];
                    if list.len() < k {
                        list.push(cand);
                        if list.len() == k {
                            worst[i] = list.iter().map(|m| m.0).fold(f32::MIN, f32::max);
                        }
                    } else {
                        // The worst of the others: the reference itself (first) stays.
                        let at =
                            1 + list[1..].iter().enumerate().max_by(|a, b| a.1.0.total_cmp(&b.1.0)).expect("k ≥ 2").0;
                        list[at] = cand;
                        worst[i] = list.iter().map(|m| m.0).fold(f32::MIN, f32::max);
                    }
                }
            }
        }
    }
    best.into_iter()
        .map(|mut list| {
            list[1..].sort_by(|a, b| a.0.total_cmp(&b.0));
            list.truncate(1 << list.len().ilog2());
            list.into_iter().map(|(_, y, x)| (y, x)).collect()
        })
        .collect()
}

/// Scratch space of one group: 2D-DCT coefficients per block, stacked.
#[derive(Default)]
struct Work {
    noisy: Vec<f32>,
    guide: Vec<f32>,
    tmp: Vec<f32>,
}

/// The orthonormal 8-point DCT-II matrix and the 2D Kaiser window.
struct Transforms {
    dct: [[f32; B]; B],
    kaiser: [f32; B * B],
}

impl Transforms {
    fn new() -> Self {
        let mut dct = [[0.0f32; B]; B];
        for (k, row) in dct.iter_mut().enumerate() {
            let a = if k == 0 { (1.0 / B as f32).sqrt() } else { (2.0 / B as f32).sqrt() };
            for (n, v) in row.iter_mut().enumerate() {
                *v = a * (PI * (2 * n + 1) as f32 * k as f32 / (2 * B) as f32).cos();
            }
        }
        let beta = 2.0f64;
        let side: Vec<f64> = (0..B)
            .map(|n| {
                let t = 2.0 * n as f64 / (B - 1) as f64 - 1.0;
                bessel_i0(beta * (1.0 - t * t).sqrt()) / bessel_i0(beta)
            })
            .collect();
        let kaiser = std::array::from_fn(|i| (side[i / B] * side[i % B]) as f32);
        Self { dct, kaiser }
    }

    /// `C · X · Cᵀ` of every block in `rect`: rows transformed once, then columns.
    fn spectra(&self, p: Plane, rect: Rect) -> Spectra {
        let (nh, nw) = (rect.y1 - rect.y0, rect.x1 - rect.x0);
        let (bh, bw) = (nh + 1 - B, nw + 1 - B);
        let mut rows = vec![[0.0f32; B]; nh * bw];
        for y in 0..nh {
            let src = &p.row(rect.y0 + y)[rect.x0..rect.x1];
            for x in 0..bw {
                let out = &mut rows[y * bw + x];
                for (j, &v) in src[x..x + B].iter().enumerate() {
                    for (o, c) in out.iter_mut().zip(&self.dct) {
                        *o += v * c[j];
                    }
                }
            }
        }
        let mut c = vec![[0.0f32; B * B]; bh * bw];
        for y in 0..bh {
            for x in 0..bw {
                let out = &mut c[y * bw + x];
                for (k, ck) in self.dct.iter().enumerate() {
                    for (i, &cki) in ck.iter().enumerate() {
                        let r = &rows[(y + i) * bw + x];
                        for (o, v) in out[k * B..k * B + B].iter_mut().zip(r) {
                            *o += cki * v;
                        }
                    }
                }
            }
        }
        Spectra { rect, bw, c }
    }

    /// In place `X = Cᵀ · Y · C`.
    fn inverse(&self, block: &mut [f32]) {
        let mut tmp = [0.0f32; B * B];
        for (k, ck) in self.dct.iter().enumerate() {
            for (i, &cki) in ck.iter().enumerate() {
                for (t, y) in tmp[i * B..i * B + B].iter_mut().zip(&block[k * B..k * B + B]) {
                    *t += cki * y;
                }
            }
        }
        block.fill(0.0);
        for i in 0..B {
            for (l, cl) in self.dct.iter().enumerate() {
                let t = tmp[i * B + l];
                for (x, c) in block[i * B..i * B + B].iter_mut().zip(cl) {
                    *x += t * c;
                }
            }
        }
    }

    /// Collaborative filtering of one group (see the module docs): leaves the filtered blocks in
    /// `work.noisy` and returns the group's aggregation weight. `guide` is given in the Wiener
    /// stage.
    fn filter(&self, noisy: &Spectra, guide: Option<&Spectra>, group: &[(usize, usize)], work: &mut Work) -> f32 {
        let n = group.len();
        let stack = |s: &Spectra, out: &mut Vec<f32>| {
            out.clear();
            group.iter().for_each(|&(y, x)| out.extend_from_slice(s.at(y, x)));
        };
        stack(noisy, &mut work.noisy);
        haar(&mut work.noisy, &mut work.tmp, n, false);
        let weight = if let Some(guide) = guide {
            stack(guide, &mut work.guide);
            haar(&mut work.guide, &mut work.tmp, n, false);
            let mut energy = 0.0f32;
            for (c, g) in work.noisy.iter_mut().zip(&work.guide) {
                let s = g * g / (g * g + 1.0);
                *c *= s;
                energy += s * s;
            }
            1.0 / energy.max(1e-6)
        } else {
            let mut kept = 0usize;
            for c in work.noisy.iter_mut() {
                if c.abs() < LAMBDA {
                    *c = 0.0;
                } else {
                    kept += 1;
                }
            }
            1.0 / kept.max(1) as f32
        };
        haar(&mut work.noisy, &mut work.tmp, n, true);
        for block in work.noisy.as_chunks_mut::<{ B * B }>().0 {
            self.inverse(block);
        }
        weight
    }
}

/// Orthonormal Haar transform (or its inverse) along the stack of `n` (a power of two) blocks,
/// whole blocks at a time.
fn haar(stack: &mut [f32], tmp: &mut Vec<f32>, n: usize, inverse: bool) {
    const S: usize = B * B;
    if n < 2 {
        return;
    }
    tmp.resize(n * S, 0.0);
    let mut lens: Vec<usize> = std::iter::successors(Some(n), |&l| (l > 2).then_some(l / 2)).collect();
    if inverse {
        lens.reverse();
    }
    for len in lens {
        let half = len / 2;
        for i in 0..half {
            let (p, q) = if inverse { (i, half + i) } else { (2 * i, 2 * i + 1) };
            let (r, t) = if inverse { (2 * i, 2 * i + 1) } else { (i, half + i) };
            for c in 0..S {
                let (a, b) = (stack[p * S + c], stack[q * S + c]);
                tmp[r * S + c] = (a + b) * FRAC_1_SQRT_2;
                tmp[t * S + c] = (a - b) * FRAC_1_SQRT_2;
            }
        }
        stack[..len * S].copy_from_slice(&tmp[..len * S]);
    }
}

/// Modified Bessel function I₀ by its power series (arguments here are ≤ 2).
fn bessel_i0(x: f64) -> f64 {
    let (mut sum, mut term) = (1.0, 1.0);
    for k in 1..30 {
        term *= (x / (2.0 * k as f64)).powi(2);
        sum += term;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haar_is_orthonormal_and_inverts() {
        let n = 8;
        let orig: Vec<f32> = (0..n * B * B).map(|i| ((i * 37) % 17) as f32 - 8.0).collect();
        let mut s = orig.clone();
        let mut tmp = Vec::new();
        haar(&mut s, &mut tmp, n, false);
        let energy = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>();
        assert!((energy(&s) - energy(&orig)).abs() < 1e-3 * energy(&orig));
        haar(&mut s, &mut tmp, n, true);
        assert!(s.iter().zip(&orig).all(|(a, b)| (a - b).abs() < 1e-4));
    }

    #[test]
    fn dct_inverts_and_keeps_energy() {
        let t = Transforms::new();
        let px: Vec<f32> = (0..12 * 12).map(|i| ((i * 13) % 7) as f32).collect();
        let p = Plane { px: &px, h: 12, w: 12 };
        let s = t.spectra(p, Rect { y0: 1, y1: 12, x0: 0, x1: 12 });
        let mut c = *s.at(2, 3);
        let block: Vec<f32> = (0..B * B).map(|i| px[(2 + i / B) * 12 + 3 + i % B]).collect();
        let e = |v: &[f32]| v.iter().map(|x| x * x).sum::<f32>();
        assert!((e(&c) - e(&block)).abs() < 1e-3 * e(&block));
        t.inverse(&mut c);
        assert!(c.iter().zip(&block).all(|(a, b)| (a - b).abs() < 1e-4));
    }

    /// The best matches by brute force: every offset, the full 8×8 sum.
    fn brute_force(p: Plane, ry: usize, rx: usize, offsets: &[[isize; 2]], stage: &Stage) -> Vec<f32> {
        let mut d: Vec<f32> = offsets
            .iter()
            .filter_map(|&[dy, dx]| {
                let (y, x) = (ry as isize + dy, rx as isize + dx);
                if y < 0 || x < 0 || y > (p.h - B) as isize || x > (p.w - B) as isize {
                    return None;
                }
                let ssd: f32 = (0..B * B)
                    .map(|i| p.row(ry + i / B)[rx + i % B] - p.row(y as usize + i / B)[x as usize + i % B])
                    .map(|v| v * v)
                    .sum();
                (ssd <= stage.tau * (B * B) as f32).then_some(ssd)
            })
            .collect();
        d.sort_by(f32::total_cmp);
        d.truncate(stage.max_group);
        d.truncate(1 << d.len().ilog2());
        d
    }

    #[test]
    fn block_matching_agrees_with_brute_force() {
        use rand::{Rng, SeedableRng, rngs::SmallRng};
        let mut rng = SmallRng::seed_from_u64(9);
        let (h, w) = (40, 52);
        let px: Vec<f32> = (0..h * w)
            .map(|i| ((i % w) as f32 * 0.7).sin() * 2.0 + ((i / w) as f32 * 0.9).cos() + rng.random_range(-0.8..0.8))
            .collect();
        let p = Plane { px: &px, h, w };
        let offsets: Vec<[isize; 2]> =
            (-5..=5).flat_map(|dy| (-5..=5).map(move |dx| [dy, dx])).chain([[9, 9], [-12, 3]]).collect();
        let (rows, cols) = (grid(h), grid(w));
        for stage in [&HARD, &WIENER] {
            let groups = match_tile(p, &rows[2..5], &cols[1..6], &offsets, stage);
            for (i, g) in groups.iter().enumerate() {
                let (ry, rx) = (rows[2 + i / 5], cols[1 + i % 5]);
                let want = brute_force(p, ry, rx, &offsets, stage);
                let got: Vec<f32> = g
                    .iter()
                    .map(|&(y, x)| {
                        (0..B * B)
                            .map(|k| p.row(ry + k / B)[rx + k % B] - p.row(y + k / B)[x + k % B])
                            .map(|v| v * v)
                            .sum()
                    })
                    .collect();
                assert_eq!(got.len(), want.len(), "reference ({ry}, {rx})");
                for (a, b) in got.iter().zip(&want) {
                    assert!((a - b).abs() < 1e-3 * b.max(1.0), "reference ({ry}, {rx}): {got:?} vs {want:?}");
                }
            }
        }
    }

    #[test]
    fn poisson_lattice_beats_non_local_means() {
        use crate::synth::{NanoparticleParams, nanoparticle};
        let s = nanoparticle(&NanoparticleParams {
            size: 256,
            counts_per_atom: 3.0,
            support_counts: 5.0,
            ..Default::default()
        })
        .unwrap();
        let img = s.image.data.view();
        let q = |a: ArrayView2<f32>| crate::metrics::psnr(a, s.clean.view(), 0.0);
        let out = bm3d(img, Noise::Auto, 8, true);
        let nlm = crate::denoise::nlm::denoise(img, 2, 2, true, crate::denoise::nlm::STRENGTH, Noise::Auto);
        let (noisy, ours, theirs) = (q(img), q(out.view()), q(nlm.view()));
        eprintln!("PSNR noisy {noisy:.2}, BM3D {ours:.2}, NLM {theirs:.2} dB");
        // NLM searches the same lattice translations on the same Anscombe plane (35.3 dB here).
        assert!(ours > noisy + 8.0 && ours > theirs + 1.0, "noisy {noisy}, BM3D {ours}, NLM {theirs}");
        // The Anscombe path keeps the mean: no dose lost or gained.
        let (m_in, m_out) = (img.sum() as f64, out.sum() as f64);
        assert!((m_out / m_in - 1.0).abs() < 0.01, "mean {m_in} → {m_out}");
    }

    #[test]
    fn flat_images_and_nan_pixels_come_back_safely() {
        let flat = Array2::from_elem((32, 32), 3.0f32);
        assert_eq!(bm3d(flat.view(), Noise::Gaussian, 8, true), flat);
        let mut img = Array2::from_shape_fn((40, 40), |(y, x)| ((x * 7 + y * 13) % 5) as f32);
        img[[5, 5]] = f32::NAN;
        let out = bm3d(img.view(), Noise::Gaussian, 8, true);
        assert!(out[[5, 5]].is_nan());
        assert_eq!(out.iter().filter(|v| !v.is_finite()).count(), 1, "{out:?}");
    }
}
