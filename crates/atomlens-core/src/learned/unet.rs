//! A small two-level U-Net with its forward and backward passes written out, on the CPU in f32.
//!
//! ```text
//! x (1) ─ conv3 c ─ conv3 c ───────────────────────────── cat ─ conv3 c ─ conv1 1 → y
//!                     └ pool ─ conv3 2c ─ conv3 2c ── cat ─ conv3 2c ┘ up
//!                                           └ pool ─ conv3 2c ┘ up
//! ```
//! 3×3 convolutions with zero padding, each followed by a ReLU; 2×2 average pooling; nearest
//! up-sampling; the skip connections concatenate channels. The receptive field is 45 px across,
//! the tiles of [`UNet::apply`] overlap by [`MARGIN`] px on every side, so a tiled image equals
//! the image run whole. Sides must be multiples of 4 (two poolings).
//!
//! Each convolution is one matrix product (im2col, then matrixmultiply's kernels through
//! ndarray). Why by hand rather than a deep-learning crate: the network is eight convolutions, a
//! few hundred lines that build for wasm in seconds; the engine measured, burn 0.22 (ndarray and
//! wgpu back ends), took 30 CPU-minutes to build and ran a 3-layer convolution on lavapipe 30×
//! slower than on the CPU.
use ndarray::linalg::general_mat_mul;
use ndarray::{Array2, ArrayView2, ArrayViewMut2};
use serde::{Deserialize, Serialize};

use super::Rng;
use crate::image::filter::reflect;
use crate::math::par;

/// Pixels each tile of [`UNet::apply`] reads beyond what it writes (≥ the receptive field's
/// reach of 22 px, rounded up to a multiple of 4).
pub const MARGIN: usize = 24;
/// The side of the part of each tile that is written (a multiple of 4).
const TILE: usize = 256;
/// Output pixels per matrix product in the forward pass.
const BAND_PX: usize = 8192;

/// `c` feature maps of `h × w`, channel-major.
#[derive(Debug, Clone, PartialEq)]
pub struct Maps {
    /// Channels.
    pub c: usize,
    /// Rows.
    pub h: usize,
    /// Columns.
    pub w: usize,
    /// `data[(k * h + y) * w + x]`.
    pub data: Vec<f32>,
}

impl Maps {
    /// All zeros.
    pub fn zeros(c: usize, h: usize, w: usize) -> Maps {
        Maps { c, h, w, data: vec![0.0; c * h * w] }
    }
    fn plane(&self, k: usize) -> &[f32] {
        &self.data[k * self.h * self.w..][..self.h * self.w]
    }
    fn plane_mut(&mut self, k: usize) -> &mut [f32] {
        let n = self.h * self.w;
        &mut self.data[k * n..][..n]
    }
    /// The channels of `self` followed by those of `other` (same size).
    fn cat(&self, other: &Maps) -> Maps {
        let mut data = self.data.clone();
        data.extend_from_slice(&other.data);
        Maps { c: self.c + other.c, h: self.h, w: self.w, data }
    }
    /// The first `c` channels and the rest.
    fn split(mut self, c: usize) -> (Maps, Maps) {
        let rest = self.data.split_off(c * self.h * self.w);
        let (h, w, k) = (self.h, self.w, self.c - c);
        (Maps { c, h, w, data: self.data }, Maps { c: k, h, w, data: rest })
    }
}

/// One convolution: `cout × cin × k × k` weights then `cout` biases, from `at` in the parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Conv {
    cin: usize,
    cout: usize,
    k: usize,
    at: usize,
}

impl Conv {
    fn weights(&self) -> usize {
        self.cout * self.cin * self.k * self.k
    }
    fn len(&self) -> usize {
        self.weights() + self.cout
    }
}

/// The network: its width (channels at full resolution) and every parameter in one vector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UNet {
    /// Channels at full resolution (twice as many at half and quarter resolution).
    pub width: usize,
    /// Every weight and bias, in the order of the convolutions.
    pub params: Vec<f32>,
}

/// What the forward pass keeps for the backward one.
struct Cache {
    x: Maps,
    e1a: Maps,
    e1: Maps,
    p1: Maps,
    e2a: Maps,
    e2: Maps,
    p2: Maps,
    mid: Maps,
    cat2: Maps,
    d2: Maps,
    cat1: Maps,
    d1: Maps,
}

impl UNet {
    /// The eight convolutions of a network of `width` channels.
    fn convs(width: usize) -> [Conv; 8] {
        let c = width;
        let shapes = [
            (1, c, 3),
            (c, c, 3),
            (c, 2 * c, 3),
            (2 * c, 2 * c, 3),
            (2 * c, 2 * c, 3),
            (4 * c, 2 * c, 3),
            (3 * c, c, 3),
            (c, 1, 1),
        ];
        let mut at = 0;
        shapes.map(|(cin, cout, k)| {
            let conv = Conv { cin, cout, k, at };
            at += conv.len();
            conv
        })
    }

    /// A network of `width` channels with He-initialised weights and zero biases.
    pub fn new(width: usize, rng: &mut Rng) -> UNet {
        let convs = Self::convs(width);
        let mut params = vec![0.0; convs.iter().map(Conv::len).sum()];
        for cv in convs {
            let sd = (2.0 / (cv.cin * cv.k * cv.k) as f64).sqrt();
            for p in &mut params[cv.at..][..cv.weights()] {
                *p = (sd * rng.normal()) as f32;
            }
        }
        UNet { width, params }
    }

    /// Whether the parameter vector has the length this width implies.
    pub fn is_consistent(&self) -> bool {
        self.width > 0 && self.params.len() == Self::convs(self.width).iter().map(Conv::len).sum::<usize>()
    }

    fn forward_cached(&self, x: Maps) -> (Maps, Cache) {
        let [c0, c1, c2, c3, c4, c5, c6, c7] = Self::convs(self.width);
        let p = &self.params;
        let e1a = relu(conv(p, c0, &x));
        let e1 = relu(conv(p, c1, &e1a));
        let p1 = pool(&e1);
        let e2a = relu(conv(p, c2, &p1));
        let e2 = relu(conv(p, c3, &e2a));
        let p2 = pool(&e2);
        let mid = relu(conv(p, c4, &p2));
        let cat2 = up(&mid).cat(&e2);
        let d2 = relu(conv(p, c5, &cat2));
        let cat1 = up(&d2).cat(&e1);
        let d1 = relu(conv(p, c6, &cat1));
        let y = conv(p, c7, &d1);
        (y, Cache { x, e1a, e1, p1, e2a, e2, p2, mid, cat2, d2, cat1, d1 })
    }

    /// The output (one channel) for a one-channel input whose sides are multiples of 4.
    pub fn forward(&self, x: Maps) -> Maps {
        self.forward_cached(x).0
    }

    /// The output for `x`, and the gradient of `Σ dy · y` over the parameters added to `grad`
    /// (`dy(y)` gives the loss's gradient with respect to the output).
    pub fn backward(&self, x: Maps, dy: impl FnOnce(&Maps) -> Maps, grad: &mut [f32]) -> Maps {
        let [c0, c1, c2, c3, c4, c5, c6, c7] = Self::convs(self.width);
        let p = &self.params;
        let (y, k) = self.forward_cached(x);
        let g = dy(&y);
        let mut g = conv_back(p, grad, c7, &k.d1, &g, true).expect("asked for");
        relu_back(&k.d1, &mut g);
        let g = conv_back(p, grad, c6, &k.cat1, &g, true).expect("asked for");
        let (gu, mut ge1) = g.split(2 * self.width);
        let mut g = up_back(&gu);
        relu_back(&k.d2, &mut g);
        let g = conv_back(p, grad, c5, &k.cat2, &g, true).expect("asked for");
        let (gu, mut ge2) = g.split(2 * self.width);
        let mut g = up_back(&gu);
        relu_back(&k.mid, &mut g);
        let g = conv_back(p, grad, c4, &k.p2, &g, true).expect("asked for");
        add(&mut ge2, &pool_back(&g));
        relu_back(&k.e2, &mut ge2);
        let mut g = conv_back(p, grad, c3, &k.e2a, &ge2, true).expect("asked for");
        relu_back(&k.e2a, &mut g);
        let g = conv_back(p, grad, c2, &k.p1, &g, true).expect("asked for");
        add(&mut ge1, &pool_back(&g));
        relu_back(&k.e1, &mut ge1);
        let mut g = conv_back(p, grad, c1, &k.e1a, &ge1, true).expect("asked for");
        relu_back(&k.e1a, &mut g);
        conv_back(p, grad, c0, &k.x, &g, false);
        y
    }

    /// The network run over a whole image (already normalised), in overlapping tiles in
    /// parallel; any size.
    pub fn apply(&self, img: ndarray::ArrayView2<f32>) -> ndarray::Array2<f32> {
        let (h, w) = img.dim();
        let (ty, tx) = (h.div_ceil(TILE), w.div_ceil(TILE));
        let side = TILE + 2 * MARGIN;
        let tiles = par::map(ty * tx, |t| {
            let (y0, x0) = ((t / tx) * TILE, (t % tx) * TILE);
            let mut x = Maps::zeros(1, side, side);
            for (i, v) in x.data.iter_mut().enumerate() {
                let (yy, xx) = ((i / side) as i64 - MARGIN as i64, (i % side) as i64 - MARGIN as i64);
                *v = img[[reflect(y0 as i64 + yy, h), reflect(x0 as i64 + xx, w)]];
            }
            self.forward(x)
        });
        let mut out = Array2::zeros((h, w));
        for (t, y) in tiles.iter().enumerate() {
            let (y0, x0) = ((t / tx) * TILE, (t % tx) * TILE);
            for r in 0..TILE.min(h - y0) {
                for c in 0..TILE.min(w - x0) {
                    out[[y0 + r, x0 + c]] = y.data[(MARGIN + r) * side + MARGIN + c];
                }
            }
        }
        out
    }
}

fn relu(mut m: Maps) -> Maps {
    m.data.iter_mut().for_each(|v| *v = v.max(0.0));
    m
}

/// The gradient through a ReLU whose output was `out`.
fn relu_back(out: &Maps, g: &mut Maps) {
    g.data.iter_mut().zip(&out.data).for_each(|(g, &o)| {
        if o <= 0.0 {
            *g = 0.0
        }
    });
}

fn add(a: &mut Maps, b: &Maps) {
    a.data.iter_mut().zip(&b.data).for_each(|(a, b)| *a += b);
}

/// The `cin·k² × h·w` matrix whose column `(y, x)` holds every input value the convolution's
/// output at `(y, x)` reads: input `(ci, y + ky − 1, x + kx − 1)` in row `ci·9 + ky·3 + kx`
/// (zero outside the image), so the convolution is one matrix product (im2col).
fn im2col(x: &Maps, k: usize) -> Array2<f32> {
    im2col_rows(x, k, 0, x.h)
}

/// [`im2col`] for the output rows `r0..r1` only.
fn im2col_rows(x: &Maps, k: usize, r0: usize, r1: usize) -> Array2<f32> {
    let (h, w) = (x.h, x.w);
    if k == 1 {
        let rows = x.data.chunks(h * w).flat_map(|p| &p[r0 * w..r1 * w]).copied().collect();
        return Array2::from_shape_vec((x.c, (r1 - r0) * w), rows).expect("c·rows·w values");
    }
    let mut cols = Array2::zeros((x.c * 9, (r1 - r0) * w));
    for (row, mut out) in cols.outer_iter_mut().enumerate() {
        let (ci, ky, kx) = (row / 9, (row % 9) / 3, row % 3);
        let (inp, out) = (x.plane(ci), out.as_slice_mut().expect("rows are contiguous"));
        for r in r0..r1 {
            let Some(sr) = (r + ky).checked_sub(1).filter(|&s| s < h) else { continue };
            let (o, i) = (&mut out[(r - r0) * w..][..w], &inp[sr * w..][..w]);
            // o[x] = i[x + kx − 1] where that is inside the row.
            match kx {
                0 => o[1..].copy_from_slice(&i[..w - 1]),
                1 => o.copy_from_slice(i),
                _ => o[..w - 1].copy_from_slice(&i[1..]),
            }
        }
    }
    cols
}

/// The adjoint of [`im2col`]: every entry added back to the input value it was copied from.
fn col2im(cols: &Array2<f32>, c: usize, h: usize, w: usize, k: usize) -> Maps {
    let mut x = Maps::zeros(c, h, w);
    if k == 1 {
        x.data.copy_from_slice(cols.as_slice().expect("standard layout"));
        return x;
    }
    for (row, col) in cols.outer_iter().enumerate() {
        let (ci, ky, kx) = (row / 9, (row % 9) / 3, row % 3);
        let (col, inp) = (col.as_slice().expect("rows are contiguous"), x.plane_mut(ci));
        for r in 0..h {
            let Some(sr) = (r + ky).checked_sub(1).filter(|&s| s < h) else { continue };
            let (o, i) = (&col[r * w..][..w], &mut inp[sr * w..][..w]);
            let (i, o) = match kx {
                0 => (&mut i[..w - 1], &o[1..]),
                1 => (i, o),
                _ => (&mut i[1..], &o[..w - 1]),
            };
            i.iter_mut().zip(o).for_each(|(a, b)| *a += b);
        }
    }
    x
}

/// `y[co] = b[co] + Σ_ci W[co, ci] ⋆ x[ci]` (zero padding): `W · im2col(x)`, one matrix
/// product (matrixmultiply's SIMD kernels, through ndarray).
fn conv(p: &[f32], cv: Conv, x: &Maps) -> Maps {
    let (h, w) = (x.h, x.w);
    let (wt, b) = p[cv.at..][..cv.len()].split_at(cv.weights());
    let wt = ArrayView2::from_shape((cv.cout, cv.cin * cv.k * cv.k), wt).expect("weights");
    let mut y = Array2::from_shape_fn((cv.cout, h * w), |(co, _)| b[co]);
    // In bands of rows, so the im2col matrix stays a few MB on large tiles.
    let band = (BAND_PX / w).max(1);
    for r0 in (0..h).step_by(band) {
        let r1 = (r0 + band).min(h);
        let mut out = y.slice_mut(ndarray::s![.., r0 * w..r1 * w]);
        general_mat_mul(1.0, &wt, &im2col_rows(x, cv.k, r0, r1), 1.0, &mut out);
    }
    Maps { c: cv.cout, h, w, data: y.into_raw_vec_and_offset().0 }
}

/// The backward pass of [`conv`]: `∂W = ∂y · colsᵀ` and `∂b` added to `grad`;
/// `∂x = col2im(Wᵀ · ∂y)` returned when asked for.
fn conv_back(p: &[f32], grad: &mut [f32], cv: Conv, x: &Maps, gy: &Maps, want_dx: bool) -> Option<Maps> {
    let (h, w, kk) = (x.h, x.w, cv.k * cv.k);
    let wt = ArrayView2::from_shape((cv.cout, cv.cin * kk), &p[cv.at..][..cv.weights()]).expect("weights");
    let (gw, gb) = grad[cv.at..][..cv.len()].split_at_mut(cv.weights());
    let gy2 = ArrayView2::from_shape((cv.cout, h * w), &gy.data).expect("gradient");
    for (co, g) in gb.iter_mut().enumerate() {
        *g += gy.plane(co).iter().sum::<f32>();
    }
    let cols = im2col(x, cv.k);
    let mut gw = ArrayViewMut2::from_shape((cv.cout, cv.cin * kk), gw).expect("weights");
    general_mat_mul(1.0, &gy2, &cols.t(), 1.0, &mut gw);
    want_dx.then(|| {
        let mut gcols = cols;
        general_mat_mul(1.0, &wt.t(), &gy2, 0.0, &mut gcols);
        col2im(&gcols, cv.cin, h, w, cv.k)
    })
}

/// 2×2 average pooling.
fn pool(x: &Maps) -> Maps {
    let (h, w) = (x.h / 2, x.w / 2);
    let mut y = Maps::zeros(x.c, h, w);
    for k in 0..x.c {
        let (src, dst) = (x.plane(k), y.plane_mut(k));
        for r in 0..h {
            for c in 0..w {
                let i = 2 * r * x.w + 2 * c;
                dst[r * w + c] = 0.25 * (src[i] + src[i + 1] + src[i + x.w] + src[i + x.w + 1]);
            }
        }
    }
    y
}

fn pool_back(g: &Maps) -> Maps {
    let (h, w) = (2 * g.h, 2 * g.w);
    let mut x = Maps::zeros(g.c, h, w);
    for k in 0..g.c {
        let (src, dst) = (g.plane(k), x.plane_mut(k));
        for (i, v) in dst.iter_mut().enumerate() {
            *v = 0.25 * src[(i / w / 2) * g.w + (i % w) / 2];
        }
    }
    x
}

/// Nearest-neighbour 2× up-sampling.
fn up(x: &Maps) -> Maps {
    let (h, w) = (2 * x.h, 2 * x.w);
    let mut y = Maps::zeros(x.c, h, w);
    for k in 0..x.c {
        let (src, dst) = (x.plane(k), y.plane_mut(k));
        for (i, v) in dst.iter_mut().enumerate() {
            *v = src[(i / w / 2) * x.w + (i % w) / 2];
        }
    }
    y
}

fn up_back(g: &Maps) -> Maps {
    let (h, w) = (g.h / 2, g.w / 2);
    let mut x = Maps::zeros(g.c, h, w);
    for k in 0..g.c {
        let (src, dst) = (g.plane(k), x.plane_mut(k));
        for r in 0..h {
            for c in 0..w {
                let i = 2 * r * g.w + 2 * c;
                dst[r * w + c] = src[i] + src[i + 1] + src[i + g.w] + src[i + g.w + 1];
            }
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random(c: usize, h: usize, w: usize, rng: &mut Rng) -> Maps {
        let mut m = Maps::zeros(c, h, w);
        m.data.iter_mut().for_each(|v| *v = rng.normal() as f32);
        m
    }

    /// The row-shifted convolution equals the textbook four-fold sum.
    #[test]
    fn convolution_matches_the_direct_sum() {
        let mut rng = Rng::new(1);
        let cv = Conv { cin: 3, cout: 2, k: 3, at: 5 };
        let p: Vec<f32> = (0..cv.at + cv.len()).map(|_| rng.normal() as f32).collect();
        let x = random(3, 7, 9, &mut rng);
        let y = conv(&p, cv, &x);
        for co in 0..2 {
            for r in 0..7 {
                for c in 0..9 {
                    let mut s = p[cv.at + cv.weights() + co] as f64;
                    for ci in 0..3 {
                        for ky in 0..3 {
                            for kx in 0..3 {
                                let (sr, sc) = (r as i64 + ky - 1, c as i64 + kx - 1);
                                if (0..7).contains(&sr) && (0..9).contains(&sc) {
                                    let wgt = p[cv.at + ((co * 3 + ci) * 9) + (ky * 3 + kx) as usize] as f64;
                                    s += wgt * x.data[(ci * 7 + sr as usize) * 9 + sc as usize] as f64;
                                }
                            }
                        }
                    }
                    let got = y.data[(co * 7 + r) * 9 + c] as f64;
                    assert!((got - s).abs() < 1e-5, "({co}, {r}, {c}): {got} vs {s}");
                }
            }
        }
    }

    /// Every hand-written backward step against central differences of the whole network's
    /// loss ½ Σ (y − t)², layer by layer.
    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = Rng::new(7);
        let net = UNet::new(2, &mut rng);
        let x = random(1, 8, 12, &mut rng);
        let t = random(1, 8, 12, &mut rng);
        let loss = |net: &UNet| -> f64 {
            let y = net.forward(x.clone());
            y.data.iter().zip(&t.data).map(|(a, b)| 0.5 * ((a - b) as f64).powi(2)).sum()
        };
        let mut grad = vec![0.0; net.params.len()];
        net.backward(
            x.clone(),
            |y| Maps { data: y.data.iter().zip(&t.data).map(|(a, b)| a - b).collect(), ..y.clone() },
            &mut grad,
        );
        // Per layer, the derivative along a random direction over all its weights and biases
        // (many parameters at once: far above the f32 round-off of the difference quotient).
        for cv in UNet::convs(2) {
            let d: Vec<f32> = (0..cv.len()).map(|_| rng.normal() as f32).collect();
            let along = |s: f32| {
                let mut n = net.clone();
                n.params[cv.at..][..cv.len()].iter_mut().zip(&d).for_each(|(p, d)| *p += s * d);
                loss(&n)
            };
            let h = 1e-3;
            let fd = (along(h) - along(-h)) / (2.0 * h as f64);
            let g: f64 = grad[cv.at..][..cv.len()].iter().zip(&d).map(|(g, d)| (g * d) as f64).sum();
            assert!((g - fd).abs() <= 1e-2 * fd.abs(), "{cv:?}: {g} vs {fd}");
        }
    }

    /// Tiles overlap enough that the tiled image equals the network run on the whole image.
    #[test]
    fn tiles_equal_the_whole_image() {
        let mut rng = Rng::new(3);
        let net = UNet::new(4, &mut rng);
        let (h, w) = (300, 140);
        let img = ndarray::Array2::from_shape_fn((h, w), |(r, c)| ((r * 7 + c * 3) % 11) as f32 / 5.0 - 1.0);
        let tiled = net.apply(img.view());
        // The whole image, mirrored out to a multiple of 4 plus the margin, in one pass.
        let (hh, ww) = (h + 2 * MARGIN + 4 - h % 4, w + 2 * MARGIN + 4 - w % 4);
        let mut x = Maps::zeros(1, hh, ww);
        for r in 0..hh {
            for c in 0..ww {
                x.data[r * ww + c] = img[[reflect(r as i64 - MARGIN as i64, h), reflect(c as i64 - MARGIN as i64, w)]];
            }
        }
        let whole = net.forward(x);
        let mut worst = 0.0f32;
        for r in 0..h {
            for c in 0..w {
                worst = worst.max((tiled[[r, c]] - whole.data[(r + MARGIN) * ww + c + MARGIN]).abs());
            }
        }
        assert!(worst < 1e-4, "largest difference {worst}");
    }
}
