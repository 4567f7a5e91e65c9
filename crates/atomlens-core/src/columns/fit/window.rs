//! A column's window: the finite pixels within a radius of its centre, minus the Gaussians of
//! its fitted neighbours (the joint passes), and the centre of mass the fit starts from.
use ndarray::ArrayView2;

use super::model::{GaussWalk, Model};
use super::{P, norm};
use crate::math::par::map;

/// The pixels of one column's window: positions, data minus the neighbours' Gaussians, and
/// what was subtracted (the Poisson mean needs it back); `centre` and `radius` bound them.
pub struct Window {
    /// Pixel columns (px).
    pub xs: Vec<f64>,
    /// Pixel rows (px).
    pub ys: Vec<f64>,
    /// Values minus the neighbours' Gaussians.
    pub data: Vec<f64>,
    /// What was subtracted.
    pub sub: Vec<f64>,
    /// Centre (px).
    pub centre: [f64; 2],
    /// Radius (px).
    pub radius: f64,
}

impl Window {
    /// The farthest a window pixel can be from `m`'s centre.
    pub(super) fn reach(&self, m: &Model) -> f64 {
        norm(m.x0 - self.centre[0], m.y0 - self.centre[1]) + self.radius + 1.0
    }
}

/// Intensity-weighted centroid above the window minimum, iterated until it settles.
pub(super) fn center_of_mass(img: ArrayView2<f32>, seed: [f64; 2], r: f64) -> [f64; 2] {
    let mut c = seed;
    for _ in 0..5 {
        // The window's pixels visited twice in place (minimum, then weighted sums): this runs up
        // to five times per column, so it builds no `Window`.
        let (mut n, mut lo) = (0usize, f64::MAX);
        for_window(img, c, r, |_, _, v| {
            n += 1;
            lo = lo.min(v);
        });
        if n < 3 {
            return c;
        }
        let (mut sw, mut sx, mut sy) = (0.0, 0.0, 0.0);
        for_window(img, c, r, |x, y, v| {
            let wgt = v - lo;
            sw += wgt;
            sx += wgt * x;
            sy += wgt * y;
        });
        if !(sw > 0.0) {
            return c;
        }
        let n = [sx / sw, sy / sw];
        // Never let the centroid walk further than the window from the seed.
        if norm(n[0] - seed[0], n[1] - seed[1]) > r {
            return c;
        }
        let moved = norm(n[0] - c[0], n[1] - c[1]);
        c = n;
        if moved < 1e-3 {
            break;
        }
    }
    c
}

/// `f(x, y, value)` for the finite pixels within `r` of `c`, row by row.
pub(super) fn for_window(img: ArrayView2<f32>, c: [f64; 2], r: f64, mut f: impl FnMut(f64, f64, f64)) {
    let (h, w) = img.dim();
    if c[0] + r < 0.0 || c[1] + r < 0.0 {
        return;
    }
    let (x0, x1) =
        ((c[0] - r).ceil().max(0.0) as usize, ((c[0] + r).floor().max(0.0) as usize).min(w.saturating_sub(1)));
    let (y0, y1) =
        ((c[1] - r).ceil().max(0.0) as usize, ((c[1] + r).floor().max(0.0) as usize).min(h.saturating_sub(1)));
    for y in y0..=y1 {
        let yf = y as f64;
        for x in x0..=x1 {
            let (xf, v) = (x as f64, img[[y, x]]);
            if v.is_finite() && (xf - c[0]).powi(2) + (yf - c[1]).powi(2) <= r * r {
                f(xf, yf, v as f64);
            }
        }
    }
}

/// A fitted neighbour as a window subtracts it: its Gaussian, and the squared distance beyond
/// which it is skipped (5 of its largest σ: below 4e-6 of its peak there).
pub(super) struct Neighbour {
    pub(super) m: Model,
    pub(super) reach2: f64,
    /// `1/σ²` along its widest axis.
    pub(super) lmin: f64,
}

impl Neighbour {
    pub(super) fn new(q: &P) -> Self {
        let smax = q.0[4].max(q.0[5]);
        Self { m: Model::new(q), reach2: (5.0 * smax).powi(2), lmin: 1.0 / (smax * smax) }
    }

    /// An upper bound on its height anywhere within `r` of `c` (it falls off at least as fast
    /// as a round Gaussian of its largest σ).
    pub(super) fn reaches(&self, c: [f64; 2], r: f64) -> f64 {
        let gap = (norm(self.m.x0 - c[0], self.m.y0 - c[1]) - r).max(0.0);
        self.m.a * (-self.lmin * gap * gap / 2.0).exp()
    }
}

pub(super) fn neighbours_of(params: &[Option<P>]) -> Vec<Option<Neighbour>> {
    map(params.len(), |i| params[i].as_ref().map(Neighbour::new))
}

/// The finite pixels within `r` of `c`, minus the Gaussians of `others` (in `all`).
pub(super) fn window(img: ArrayView2<f32>, c: [f64; 2], r: f64, others: &[usize], all: &[Option<Neighbour>]) -> Window {
    let cap = ((2.0 * r + 2.0).powi(2) as usize).min(img.len());
    let mut win = Window {
        xs: Vec::with_capacity(cap),
        ys: Vec::with_capacity(cap),
        data: Vec::with_capacity(cap),
        sub: Vec::with_capacity(cap),
        centre: c,
        radius: r,
    };
    let near: Vec<&Neighbour> = others
        .iter()
        .filter_map(|&j| all[j].as_ref())
        .filter(|n| (n.m.x0 - c[0]).powi(2) + (n.m.y0 - c[1]).powi(2) <= (r + n.reach2.sqrt()).powi(2))
        .collect();
    let mut walks: Vec<GaussWalk> = near.iter().map(|n| GaussWalk::new(&n.m, win.reach(&n.m))).collect();
    for_window(img, c, r, |xf, yf, v| {
        let sub: f64 = near
            .iter()
            .zip(walks.iter_mut())
            .filter(|(n, _)| (xf - n.m.x0).powi(2) + (yf - n.m.y0).powi(2) <= n.reach2)
            .map(|(n, walk)| n.m.a * walk.at(xf, yf))
            .sum();
        win.xs.push(xf);
        win.ys.push(yf);
        win.data.push(v - sub);
        win.sub.push(sub);
    });
    win
}
