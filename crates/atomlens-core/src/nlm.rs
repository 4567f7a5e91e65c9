//! Non-local means (Buades, Coll & Morel 2005) in the fast form of Darbon et al. (2008), as
//! scikit-image's `denoise_nl_means(fast_mode=True)`: for every offset in the search window the
//! squared difference image is box-filtered over the patch, so each offset costs O(pixels).
//! Weight `exp(−max(d² − 2σ², 0) / h²)` with `d²` the mean squared patch difference; σ is the
//! noise level (estimated by Immerkær's Laplacian method when not given), `h = 0.8 σ` by default
//! (scikit-image's documented choice; a larger h scored higher on the shared test images but
//! blurred the columns away at low signal-to-noise, see BENCHMARKS.md).
use ndarray::{Array2, ArrayView2};

use crate::filter::reflect;

#[cfg(feature = "parallel")]
use rayon::prelude::*;

/// Noise standard deviation of `img` (Immerkær 1996): the mean absolute response to a
/// Laplacian-difference kernel that cancels smooth structure, scaled for Gaussian noise.
pub fn estimate_noise(img: ArrayView2<f32>) -> f64 {
    let (h, w) = img.dim();
    if h < 3 || w < 3 {
        return 0.0;
    }
    let img = img.as_standard_layout();
    let px = img.as_slice().expect("standard layout");
    // Kernel [1 −2 1; −2 4 −2; 1 −2 1] = the row kernel [1 −2 1] applied to rows above − 2·this + below.
    let row_sum = |y: usize| -> (f64, usize) {
        let line = |r: usize| &px[r * w..][..w];
        let (a, b, c) = (line(y - 1), line(y), line(y + 1));
        let (mut sum, mut n) = (0.0f64, 0usize);
        for x in 0..w - 2 {
            let d = |l: &[f32]| l[x] - 2.0 * l[x + 1] + l[x + 2];
            let r = d(a) - 2.0 * d(b) + d(c);
            if r.is_finite() {
                sum += r.abs() as f64;
                n += 1;
            }
        }
        (sum, n)
    };
    let rows = crate::par::map(h - 2, |i| row_sum(i + 1));
    let (sum, n) = rows.iter().fold((0.0, 0), |(s, k), &(a, b)| (s + a, k + b));
    (std::f64::consts::PI / 2.0).sqrt() * sum / (6.0 * n.max(1) as f64)
}

/// Non-local means of `img` with patches of `(2·patch+1)²`, offsets up to `search` px, noise
/// `sigma` and filtering strength `h` (see the module docs).
///
/// The patch distance is symmetric, so each offset `o` and its opposite share one weight map:
/// the weight of `q + o` in the mean at `q` is also the weight of `q` in the mean at `q + o`.
/// Half the offsets are computed. Bands of rows run in parallel, each doing every
/// offset for its own rows (its weight maps reach `search` rows above the band), so the work
/// stays in cache and the threads never meet; every loop runs over plain rows (vectorised), with
/// [`exp_neg`] for the weights.
pub fn nl_means(img: ArrayView2<f32>, patch: usize, search: usize, sigma: f64, h_param: f64) -> Array2<f32> {
    let (h, w) = img.dim();
    // Mirrored once into a padded copy, so the inner loops run over plain slices.
    let m = 2 * search + patch + 1;
    let (ph, pw) = (h + 2 * m, w + 2 * m);
    let columns: Vec<usize> = (0..pw).map(|x| reflect(x as i64 - m as i64, w)).collect();
    let mut padded = vec![0.0f32; ph * pw];
    for (py, row) in padded.chunks_mut(pw).enumerate() {
        let src = img.row(reflect(py as i64 - m as i64, h));
        for (o, &x) in row.iter_mut().zip(&columns) {
            let v = src[x];
            *o = if v.is_finite() { v } else { 0.0 };
        }
    }
    let nlm = Nlm {
        padded: &padded,
        pw,
        m: m as i64,
        w,
        patch,
        search,
        inv_area: 1.0 / ((2 * patch + 1) * (2 * patch + 1)) as f32,
        two_s2: (2.0 * sigma * sigma) as f32,
        inv_h2: (1.0 / (h_param * h_param).max(1e-12)) as f32,
    };
    let mut out = vec![0.0f32; h * w];
    let band = |(b, rows): (usize, &mut [f32])| nlm.band(b * BAND, rows);
    #[cfg(feature = "parallel")]
    out.par_chunks_mut(BAND * w).enumerate().for_each(band);
    #[cfg(not(feature = "parallel"))]
    out.chunks_mut(BAND * w).enumerate().for_each(band);
    Array2::from_shape_fn((h, w), |(y, x)| if img[[y, x]].is_finite() { out[y * w + x] } else { f32::NAN })
}

/// Rows per parallel band.
const BAND: usize = 64;

struct Nlm<'a> {
    padded: &'a [f32],
    pw: usize,
    m: i64,
    w: usize,
    patch: usize,
    search: usize,
    inv_area: f32,
    two_s2: f32,
    inv_h2: f32,
}

impl Nlm<'_> {
    /// Row `y` of the padded image (image coordinates, may be outside) from column `x`.
    fn at(&self, y: i64, x: i64, len: usize) -> &[f32] {
        &self.padded[((y + self.m) as usize) * self.pw + (x + self.m) as usize..][..len]
    }

    /// The weights of a row from its column sums: each box-summed along the row over `SIDE`
    /// (a constant, so the sum unrolls and the loop over the row vectorises with the `exp`).
    fn weigh<const SIDE: usize>(&self, down: &[f32], row: &mut [f32]) {
        self.weigh_over(SIDE, down, row);
    }

    #[inline(always)]
    fn weigh_over(&self, side: usize, down: &[f32], row: &mut [f32]) {
        for (x, o) in row.iter_mut().enumerate() {
            let d: f32 = down[x..x + side].iter().sum();
            let excess = d * self.inv_area - self.two_s2;
            *o = exp_neg(if excess > 0.0 { excess * self.inv_h2 } else { 0.0 });
        }
    }

    /// The denoised rows `y0..` into `out` (whole rows of width `w`).
    fn band(&self, y0: usize, out: &mut [f32]) {
        let (w, s, p) = (self.w, self.search as i64, self.patch as i64);
        let rows = out.len() / w;
        let side = 2 * self.patch + 1;
        // Weight maps cover columns −s..w + s and rows y0 − s..y0 + rows: every `q` with `q` or
        // `q + o` in the band.
        let ww = w + 2 * self.search;
        let wh = rows + self.search;
        let wide = ww + 2 * self.patch;
        let mut weights = vec![0.0f32; wh * ww];
        // The last `side` rows of squared differences, and their sum down the columns.
        let mut ring = vec![0.0f32; side * wide];
        let mut down = vec![0.0f32; wide];
        // The offset 0 has weight 1.
        let mut den = vec![1.0f32; rows * w];
        for (r, o) in out.chunks_mut(w).enumerate() {
            o.copy_from_slice(self.at((y0 + r) as i64, 0, w));
        }
        let top = y0 as i64 - s;
        let half = (0..=s).flat_map(|dy| (-s..=s).map(move |dx| (dy, dx))).filter(|&(dy, dx)| dy > 0 || dx > 0);
        for (dy, dx) in half {
            // One pass down the rows a patch touches: each row's squared differences enter the
            // running column sums (and the row `side` above leaves them), then the sums are
            // box-summed along the row into the weight of the patch centred `patch` rows up.
            // Over a band's few dozen rows the running sums drift by a few ulps.
            down.fill(0.0);
            ring.fill(0.0);
            for r in 0..wh + 2 * self.patch {
                let y = top + r as i64 - p;
                let (a, b) = (self.at(y, -s - p, wide), self.at(y + dy, -s - p + dx, wide));
                let slot = &mut ring[(r % side) * wide..][..wide];
                for (((d, u), v), acc) in slot.iter_mut().zip(a).zip(b).zip(down.iter_mut()) {
                    let new = (u - v) * (u - v);
                    *acc += new - *d;
                    *d = new;
                }
                let Some(wr) = (r + 1).checked_sub(side) else { continue };
                let row = &mut weights[wr * ww..][..ww];
                match side {
                    3 => self.weigh::<3>(&down, row),
                    5 => self.weigh::<5>(&down, row),
                    7 => self.weigh::<7>(&down, row),
                    9 => self.weigh::<9>(&down, row),
                    11 => self.weigh::<11>(&down, row),
                    _ => self.weigh_over(side, &down, row),
                }
            }
            // Pixel `q` takes `q + o` with weight W(q), and `q − o` with weight W(q − o).
            for (r, (nrow, drow)) in out.chunks_mut(w).zip(den.chunks_mut(w)).enumerate() {
                let (y, wr) = ((y0 + r) as i64, r + self.search);
                let fwd = &weights[wr * ww + self.search..][..w];
                let back = &weights[(wr as i64 - dy) as usize * ww + (s - dx) as usize..][..w];
                let (ahead, behind) = (self.at(y + dy, dx, w), self.at(y - dy, -dx, w));
                for x in 0..w {
                    nrow[x] += fwd[x] * ahead[x] + back[x] * behind[x];
                    drow[x] += fwd[x] + back[x];
                }
            }
        }
        for (o, d) in out.iter_mut().zip(&den) {
            *o /= d;
        }
    }
}

/// `exp(−t)` for `t ≥ 0`, to ~(3 + t)·1e-7 relative (f32 rounding), without a library call or
/// a float-to-int conversion, so loops over it vectorise (the weights' `exp` was most of the
/// time): `2^x = 2^n·2^f` with `n` the nearest integer, read from the low mantissa bits after
/// adding 1.5·2²³, and `2^f`, `|f| ≤ ½`, by its Taylor series to degree 7. Exactly 0 below
/// 2⁻⁶⁴: such a weight cannot matter next to the centre's 1, and products with it would be
/// subnormal (two to three times slower over a whole image of tiny values).
#[inline]
fn exp_neg(t: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5·2²³: x + ROUND holds round(x) in its last bits
    // `if` rather than `f32::max`, whose NaN rule costs three more instructions per lane.
    let x = -t * std::f32::consts::LOG2_E;
    let x = if x > -126.0 { x } else { -126.0 };
    let shifted = x + ROUND;
    let u = (x - (shifted - ROUND)) * std::f32::consts::LN_2;
    let mut e = 1.0 / 5040.0;
    for c in [1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0] {
        e = e * u + c;
    }
    let n = shifted.to_bits().wrapping_sub(ROUND.to_bits()); // round(x), two's complement
    if x < -64.0 { 0.0 } else { e * f32::from_bits(n.wrapping_add(127) << 23) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn noisy(sigma: f32) -> (Array2<f32>, Array2<f32>) {
        let clean = Array2::from_shape_fn((64, 64), |(y, x)| {
            let (fx, fy) = (x as f32 / 6.0, y as f32 / 6.0);
            5.0 + 3.0 * (fx.sin() * fy.cos()).powi(2)
        });
        let mut s = 5u64;
        let img = clean.mapv(|v| {
            let mut u = || {
                s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
            };
            v + sigma * ((-2.0 * u().ln()).sqrt() * (2.0 * std::f64::consts::PI * u()).cos()) as f32
        });
        (clean, img)
    }

    #[test]
    fn noise_estimate_is_close_for_gaussian_noise() {
        let (_, img) = noisy(0.5);
        let s = estimate_noise(img.view());
        assert!((s - 0.5).abs() < 0.06, "estimated {s}");
    }

    #[test]
    fn exp_neg_matches_the_exponential() {
        for i in 0..=4400 {
            let t = i as f32 * 0.01;
            let (fast, exact) = (exp_neg(t) as f64, (-(t as f64)).exp());
            // f32's rounding of the argument alone gives ~6e-8·t relative.
            assert!((fast - exact).abs() <= (3e-7 + 1e-7 * t as f64) * exact, "exp(−{t}): {fast} vs {exact}");
        }
        assert!(exp_neg(50.0) == 0.0 && exp_neg(1e6) == 0.0 && exp_neg(0.0) == 1.0);
    }

    #[test]
    fn a_single_offset_window_is_the_identity() {
        // With search 0 only the pixel itself takes part: the output is the input.
        let (_, img) = noisy(0.3);
        let out = nl_means(img.view(), 2, 0, 0.3, 0.24);
        assert!(out.iter().zip(img.iter()).all(|(a, b)| (a - b).abs() < 1e-5));
    }

    #[test]
    fn fast_form_matches_the_direct_definition() {
        let (_, img) = noisy(0.4);
        let out = nl_means(img.view(), 1, 2, 0.4, 0.32);
        let (h, w) = img.dim();
        let at = |y: i64, x: i64| img[[reflect(y, h), reflect(x, w)]] as f64;
        for (y, x) in [(0i64, 0i64), (10, 33), (63, 63), (31, 1)] {
            let (mut num, mut den) = (0.0, 0.0);
            for dy in -2..=2 {
                for dx in -2..=2 {
                    let mut d2 = 0.0;
                    for py in -1..=1 {
                        for px in -1..=1 {
                            d2 += (at(y + py, x + px) - at(y + dy + py, x + dx + px)).powi(2);
                        }
                    }
                    let wgt = (-((d2 / 9.0) - 2.0 * 0.16f64).max(0.0) / (0.32f64 * 0.32)).exp();
                    num += wgt * at(y + dy, x + dx);
                    den += wgt;
                }
            }
            let want = num / den;
            assert!((out[[y as usize, x as usize]] as f64 - want).abs() < 1e-4, "({y}, {x})");
        }
    }
}
