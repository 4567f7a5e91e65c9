//! Non-local means (Buades, Coll & Morel 2005) in the fast form of Darbon et al. (2008), as
//! scikit-image's `denoise_nl_means(fast_mode=True)`: for every offset searched the squared
//! difference image is box-filtered over the patch, so each offset costs O(pixels).
//!
//! The image is first brought to unit noise ([`Stabilised`]: whole counts by the Anscombe
//! transform, anything else divided by its Immerkær σ), so the weight is
//! `exp(−max(d² − 2, 0) / h²)` with `d²` the mean squared patch difference and `h` a strength in
//! units of σ ([`STRENGTH`] by default, scikit-image's documented choice). The offsets are a small
//! window plus ±1 px around the lattice translations ([`Offsets::searched`]): in a crystal the
//! most similar patches are a lattice vector away, and searching there is both better and
//! cheaper than a wide window.
use ndarray::{Array2, ArrayView2};

use crate::denoise::patches::{Offsets, Stabilised};
use crate::image::Noise;
use crate::image::filter::reflect;

#[cfg(feature = "parallel")]
use rayon::prelude::*;

/// Default filtering strength `h`, in units of the noise σ.
pub const STRENGTH: f64 = 0.8;

/// Non-local means of `img` under the noise model `noise`: patches of `(2·patch+1)²`, the
/// ±`search` px window and (when `lattice`) the lattice translations searched, strength `h`
/// (σ units). An image that shows no noise comes back unchanged.
pub fn denoise(img: ArrayView2<f32>, patch: usize, search: usize, lattice: bool, h: f64, noise: Noise) -> Array2<f32> {
    let Some(plane) = Stabilised::new(img, noise) else { return img.to_owned() };
    let offsets = Offsets::searched(img, search, lattice);
    let out = nl_means(plane.view(), patch, &offsets, 1.0, h);
    plane.restore(out.as_slice().expect("standard layout"))
}

/// Non-local means of `img` with patches of `(2·patch+1)²` compared at `offsets`, noise `sigma`
/// and filtering strength `h` (see the module docs).
///
/// The patch distance is symmetric, so each offset `o` and its opposite share one weight: the
/// weight of `q + o` in the mean at `q` is also the weight of `q` in the mean at `q + o`. Half
/// the offsets are computed. Bands of rows run in parallel, each doing every offset for its own
/// rows (its weights reach `dy` rows above the band), so the work stays in cache and the
/// threads never meet. Every loop runs over plain rows (vectorised), with `exp_neg` for the
/// weights.
pub fn nl_means(img: ArrayView2<f32>, patch: usize, offsets: &Offsets, sigma: f64, h_param: f64) -> Array2<f32> {
    let (h, w) = img.dim();
    // Mirrored once into a padded copy, so the inner loops run over plain slices.
    let m = offsets.margin + patch + 1;
    let (ph, pw) = (h + 2 * m, w + 2 * m);
    let columns: Vec<usize> = (0..pw).map(|x| reflect(x as i64 - m as i64, w)).collect();
    let mut padded = vec![0.0f32; ph * pw];
    crate::math::par::rows(&mut padded, pw, |py, row| {
        let src = img.row(reflect(py as i64 - m as i64, h));
        for (o, &x) in row.iter_mut().zip(&columns) {
            let v = src[x];
            *o = if v.is_finite() { v } else { 0.0 };
        }
    });
    let nlm = Nlm {
        padded: &padded,
        pw,
        m: m as i64,
        w,
        patch,
        half: offsets.half().collect(),
        margin: offsets.margin,
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
    let mut out = Array2::from_shape_vec((h, w), out).expect("h × w pixels");
    if img.iter().any(|v| !v.is_finite()) {
        out.zip_mut_with(&img, |o, v| *o = if v.is_finite() { *o } else { f32::NAN });
    }
    out
}

/// Rows per parallel band.
const BAND: usize = 64;

struct Nlm<'a> {
    padded: &'a [f32],
    pw: usize,
    m: i64,
    w: usize,
    patch: usize,
    /// One of each pair of opposite offsets, `[dy, dx]` with `dy > 0` or `dy = 0 < dx`.
    half: Vec<[isize; 2]>,
    margin: usize,
    inv_area: f32,
    two_s2: f32,
    inv_h2: f32,
}

impl Nlm<'_> {
    /// Row `y` of the padded image (image coordinates, may be outside) from column `x`.
    fn at(&self, y: i64, x: i64, len: usize) -> &[f32] {
        &self.padded[((y + self.m) as usize) * self.pw + (x + self.m) as usize..][..len]
    }

    /// The denoised rows `y0..` into `out` (whole rows of width `w`), in AVX2 where the CPU has
    /// it: twice the lanes of the x86-64 baseline, 1.7× faster here.
    fn band(&self, y0: usize, out: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("avx2") {
            #[allow(unsafe_code)]
            // SAFETY: the CPU supports AVX2, checked just above.
            return unsafe { self.band_avx2(y0, out) };
        }
        self.band_baseline(y0, out);
    }
}

/// The band and its weights, compiled once per instruction set (`band` picks one at run time).
macro_rules! kernels {
    ($band:ident, $weigh:ident $(, $feature:literal)?) => {
        impl Nlm<'_> {
            $(#[target_feature(enable = $feature)])?
            fn $band(&self, y0: usize, out: &mut [f32]) {
                let (w, p) = (self.w, self.patch as i64);
                let rows = out.len() / w;
                let side = 2 * self.patch + 1;
                let widest = w + self.margin + 2 * self.patch;
                // The last `side` rows of squared differences, and their sum down the columns.
                let mut ring = vec![0.0f32; side * widest];
                let mut down = vec![0.0f32; widest];
                let mut weights = vec![0.0f32; (rows + self.margin) * (w + self.margin)];
                // The offset 0 has weight 1.
                let mut den = vec![1.0f32; rows * w];
                for (r, o) in out.chunks_mut(w).enumerate() {
                    o.copy_from_slice(self.at((y0 + r) as i64, 0, w));
                }
                for &[dy, dx] in &self.half {
                    let (dy, dx) = (dy as i64, dx as i64);
                    // The weights W(q) of every `q` with `q` or `q + o` in the band: rows `top..` (`dy`
                    // above the band), columns `c0..c0 + cw`.
                    let (top, c0, cw) = (y0 as i64 - dy, (-dx).min(0), w + dx.unsigned_abs() as usize);
                    let wide = cw + 2 * self.patch;
                    down[..wide].fill(0.0);
                    ring[..side * wide].fill(0.0);
                    for r in 0..rows + dy as usize + 2 * self.patch {
                        // One pass down the rows a patch touches: each row's squared differences enter
                        // the running column sums (and the row `side` above leaves them), then the sums
                        // are box-summed along the row into the weights of the patches centred `patch`
                        // rows up. Over a band's few dozen rows the running sums drift by a few ulps.
                        let y = top + r as i64 - p;
                        let (a, b) = (self.at(y, c0 - p, wide), self.at(y + dy, c0 - p + dx, wide));
                        let slot = &mut ring[(r % side) * wide..][..wide];
                        for (((d, u), v), acc) in slot.iter_mut().zip(a).zip(b).zip(down[..wide].iter_mut()) {
                            let new = (u - v) * (u - v);
                            *acc += new - *d;
                            *d = new;
                        }
                        let Some(wr) = (r + 1).checked_sub(side) else { continue };
                        let row = &mut weights[wr * cw..][..cw];
                        match side {
                            3 => self.$weigh::<3>(side, &down, row),
                            5 => self.$weigh::<5>(side, &down, row),
                            7 => self.$weigh::<7>(side, &down, row),
                            9 => self.$weigh::<9>(side, &down, row),
                            11 => self.$weigh::<11>(side, &down, row),
                            _ => self.$weigh::<0>(side, &down, row),
                        }
                    }
                    // Pixel `q` takes `q + o` with weight W(q), and `q − o` with weight W(q − o).
                    for (k, (num, den)) in out.chunks_mut(w).zip(den.chunks_mut(w)).enumerate() {
                        let y = (y0 + k) as i64;
                        let fwd = &weights[(k + dy as usize) * cw + (-c0) as usize..][..w];
                        let back = &weights[k * cw + (-dx - c0) as usize..][..w];
                        let (ahead, behind) = (self.at(y + dy, dx, w), self.at(y - dy, -dx, w));
                        for x in 0..w {
                            num[x] += fwd[x] * ahead[x] + back[x] * behind[x];
                            den[x] += fwd[x] + back[x];
                        }
                    }
                }
                for (o, d) in out.iter_mut().zip(&den) {
                    *o /= d;
                }
            }

            /// The weights of a row from its column sums: each box-summed along the row over
            /// `SIDE` (`side` when 0; a constant, so the sum unrolls and the loop over the row
            /// vectorises with the `exp`). Not inlined: as a function its slices are known not
            /// to overlap, which the vectoriser needs.
            $(#[target_feature(enable = $feature)])?
            #[inline(never)]
            fn $weigh<const SIDE: usize>(&self, side: usize, down: &[f32], row: &mut [f32]) {
                let side = if SIDE > 0 { SIDE } else { side };
                // Sliced to the exact length, so the window bound below is provable.
                let down = &down[..row.len() + side - 1];
                for (x, o) in row.iter_mut().enumerate() {
                    let d: f32 = down[x..x + side].iter().sum();
                    let excess = d * self.inv_area - self.two_s2;
                    *o = exp_neg(if excess > 0.0 { excess * self.inv_h2 } else { 0.0 });
                }
            }
        }
    };
}

kernels!(band_baseline, weigh_baseline);
#[cfg(target_arch = "x86_64")]
kernels!(band_avx2, weigh_avx2, "avx2");

/// `exp(−t)` for `t ≥ 0`, to ~3e-6 relative (plus f32's rounding of `t`), without a library
/// call or a float-to-int conversion, so loops over it vectorise (the weights' `exp` is most of
/// the time): `2^x = 2^n·2^f` with `n` the nearest integer, read from the low mantissa bits after
/// adding 1.5·2²³, and `2^f = e^u`, `|u| ≤ ln 2 / 2`, by its Taylor series to degree 5 (error
/// `u⁶/720` ≤ 2.4e-6), summed in Estrin's order, whose short dependency chain is what limits the
/// loop. Exactly 0 below 2⁻⁶⁴: such a weight cannot matter next to the centre's 1, and products
/// with it would be subnormal (two to three times slower over a whole image of tiny values).
#[inline]
fn exp_neg(t: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0; // 1.5·2²³: x + ROUND holds round(x) in its last bits
    // `if` rather than `f32::max`, whose NaN rule costs three more instructions per lane.
    let x = -t * std::f32::consts::LOG2_E;
    let x = if x > -126.0 { x } else { -126.0 };
    let shifted = x + ROUND;
    let u = (x - (shifted - ROUND)) * std::f32::consts::LN_2;
    let u2 = u * u;
    let e = (1.0 + u) + u2 * ((0.5 + u * (1.0 / 6.0)) + u2 * (1.0 / 24.0 + u * (1.0 / 120.0)));
    let n = shifted.to_bits().wrapping_sub(ROUND.to_bits()); // round(x), two's complement
    if x < -64.0 { 0.0 } else { e * f32::from_bits(n.wrapping_add(127) << 23) }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::image::noise::estimate_noise;

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
            assert!((fast - exact).abs() <= (3e-6 + 1e-7 * t as f64) * exact, "exp(−{t}): {fast} vs {exact}");
        }
        assert!(exp_neg(50.0) == 0.0 && exp_neg(1e6) == 0.0 && exp_neg(0.0) == 1.0);
    }

    #[test]
    fn a_single_offset_window_is_the_identity() {
        // With search 0 only the pixel itself takes part: the output is the input.
        let (_, img) = noisy(0.3);
        let out = nl_means(img.view(), 2, &Offsets::window(0), 0.3, 0.24);
        assert!(out.iter().zip(img.iter()).all(|(a, b)| (a - b).abs() < 1e-5));
    }

    #[test]
    fn fast_form_matches_the_direct_definition() {
        // A window, and far offsets as lattice translations give: longer than a band (64 rows),
        // to either side, so rows and columns outside the band and the image take part.
        let (_, img) = noisy(0.4);
        let tall = Array2::from_shape_fn((150, 40), |(y, x)| img[[y % 64, (x + y / 64) % 64]]);
        let mut list = Offsets::window(2).list;
        for [dy, dx] in [[9, -7], [0, 12], [70, 3], [-3, 20]] {
            list.extend([[dy, dx], [-dy, -dx]]);
        }
        let offsets = Offsets::from_list(list);
        for (img, patch) in [(img.view(), 1usize), (tall.view(), 2)] {
            let out = nl_means(img, patch, &offsets, 0.4, 0.32);
            let (h, w) = img.dim();
            let at = |y: i64, x: i64| img[[reflect(y, h), reflect(x, w)]] as f64;
            let p = patch as i64;
            for (y, x) in [(0i64, 0i64), (10, 33), (63, 39), (31, 1), (64, 20), (149, 5), (100, 38)] {
                if y >= h as i64 || x >= w as i64 {
                    continue;
                }
                let (mut num, mut den) = (0.0, 0.0);
                for &[dy, dx] in &offsets.list {
                    let (dy, dx) = (dy as i64, dx as i64);
                    let mut d2 = 0.0;
                    for py in -p..=p {
                        for px in -p..=p {
                            d2 += (at(y + py, x + px) - at(y + dy + py, x + dx + px)).powi(2);
                        }
                    }
                    let area = ((2 * p + 1) * (2 * p + 1)) as f64;
                    let wgt = (-((d2 / area) - 2.0 * 0.16f64).max(0.0) / (0.32f64 * 0.32)).exp();
                    num += wgt * at(y + dy, x + dx);
                    den += wgt;
                }
                let want = num / den;
                let got = out[[y as usize, x as usize]] as f64;
                assert!((got - want).abs() < 1e-4, "patch {patch}, ({y}, {x}): {got} vs {want}");
            }
        }
    }
}
