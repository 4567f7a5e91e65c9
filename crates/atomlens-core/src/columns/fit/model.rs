//! The column model `B + A·exp(−Q)` in the forms the fit needs: the parameters the user sees
//! (`P`: widths and rotation), the quadratic form the fit moves (`Form`), the per-pixel Gaussian
//! (`Model`, evaluated along rows by `GaussWalk`) and the analytic Jacobian for the error bars.
use super::{P, norm};

#[cfg(test)]
impl P {
    pub(super) fn gauss(&self, x: f64, y: f64) -> f64 {
        Model::new(self).gauss(x, y)
    }
}

/// The parameters the fit moves: x0, y0, A, B and the exponent's quadratic form (the inverse
/// covariance) `Q = (a·dx² + 2b·dx·dy + c·dy²)/2` in slots 4–6; a circular column has `b = 0`,
/// `c = a` and moves slot 4 only. Unlike (σx, σy, rotation) this has no flat direction at a round
/// column, where turning the axes changes nothing and Levenberg–Marquardt zig-zagged between
/// swapped axes (MoS2's near-round columns took ~15 evaluations each).
#[derive(Debug, Clone, Copy)]
pub(super) struct Form(pub(super) [f64; 7]);

impl Form {
    pub(super) fn of(q: &P) -> Self {
        let [x0, y0, a, b, sx, sy, t] = q.0;
        let (s, c) = t.sin_cos();
        let (ix, iy) = (1.0 / (sx * sx), 1.0 / (sy * sy));
        Self([x0, y0, a, b, c * c * ix + s * s * iy, c * s * (ix - iy), s * s * ix + c * c * iy])
    }

    /// Widths and rotation back from the form; `None` unless it is positive definite.
    pub(super) fn axes(&self) -> Option<P> {
        let [x0, y0, a, b, qa, qb, qc] = self.0;
        let (mean, half) = ((qa + qc) / 2.0, norm((qa - qc) / 2.0, qb));
        // Eigenvalues mean ± half are 1/σ² along and across `t`.
        let t = 0.5 * (2.0 * qb).atan2(qa - qc);
        (qa > 0.0 && qc > 0.0 && qa * qc > qb * qb && mean - half > 0.0)
            .then(|| P([x0, y0, a, b, 1.0 / (mean + half).sqrt(), 1.0 / (mean - half).sqrt(), t]))
    }
}

/// A column's Gaussian `A·exp(−Q)` for the per-pixel loops (they dominate the run time).
pub(super) struct Model {
    pub(super) x0: f64,
    pub(super) y0: f64,
    pub(super) a: f64,
    /// The quadratic form of `Q` ([`Form`] slots 4–6).
    pub(super) qa: f64,
    pub(super) qb: f64,
    pub(super) qc: f64,
}

impl Model {
    pub(super) fn new(q: &P) -> Self {
        Self::of(&Form::of(q))
    }

    pub(super) fn of(f: &Form) -> Self {
        let [x0, y0, a, _, qa, qb, qc] = f.0;
        Self { x0, y0, a, qa, qb, qc }
    }

    pub(super) fn q(&self, x: f64, y: f64) -> f64 {
        let (dx, dy) = (x - self.x0, y - self.y0);
        (self.qa * dx * dx + 2.0 * self.qb * dx * dy + self.qc * dy * dy) / 2.0
    }

    #[cfg(test)]
    pub(super) fn gauss(&self, x: f64, y: f64) -> f64 {
        self.a * (-self.q(x, y)).exp()
    }
}

/// A column's axes and their trigonometry, for the error bars in (σx, σy) (once per column).
pub(super) struct Axes {
    pub(super) x0: f64,
    pub(super) y0: f64,
    pub(super) a: f64,
    pub(super) s: f64,
    pub(super) c: f64,
    pub(super) isx2: f64,
    pub(super) isy2: f64,
    /// `1/σx³`, `1/σy³`: the width derivatives multiply by them.
    pub(super) isx3: f64,
    pub(super) isy3: f64,
}

impl Axes {
    pub(super) fn new(q: &P) -> Self {
        let [x0, y0, a, _, sx, sy, t] = q.0;
        let (s, c) = t.sin_cos();
        let (isx2, isy2) = (1.0 / (sx * sx), 1.0 / (sy * sy));
        Self { x0, y0, a, s, c, isx2, isy2, isx3: isx2 / sx, isy3: isy2 / sy }
    }
}

/// `exp(−Q)` of a [`Model`] at pixels visited in row order, by recurrence along each row: Q is
/// quadratic, so from one pixel to the next the ratio `exp(−ΔQ)` changes by the constant factor
/// `exp(−a)` (`a/2` the x² coefficient of Q), three products instead of an `exp` per pixel (the
/// exponential was a quarter of the fitting time). A row (or a gap in it) restarts from two
/// exact exponentials; over a window's rows the relative drift stays below 1e-13.
pub(super) struct GaussWalk<'m> {
    pub(super) m: &'m Model,
    /// `exp(−a)`.
    pub(super) k: f64,
    pub(super) last: [f64; 2],
    pub(super) e: f64,
    pub(super) r: f64,
    pub(super) exact: bool,
}

impl<'m> GaussWalk<'m> {
    /// `reach`: the largest distance from the model's centre to a pixel that will be visited;
    /// where `Q` could leave the exponential's range there (a degenerate, tiny width) every
    /// pixel is evaluated exactly instead.
    pub(super) fn new(m: &'m Model, reach: f64) -> Self {
        let largest = (m.qa + m.qc) / 2.0 + norm((m.qa - m.qc) / 2.0, m.qb);
        let exact = !(largest * reach * reach < 600.0);
        Self { m, k: (-m.qa).exp(), last: [f64::NAN; 2], e: 0.0, r: 0.0, exact }
    }

    #[inline]
    pub(super) fn at(&mut self, x: f64, y: f64) -> f64 {
        if self.exact {
            return (-self.m.q(x, y)).exp();
        }
        if y == self.last[1] && x == self.last[0] + 1.0 {
            self.e *= self.r;
            self.r *= self.k;
        } else {
            let q0 = self.m.q(x, y);
            self.e = (-q0).exp();
            self.r = (q0 - self.m.q(x + 1.0, y)).exp();
        }
        self.last = [x, y];
        self.e
    }
}

/// Model derivatives at one pixel, in parameter order (x0, y0, A, B, sx, sy, rot); circular
/// models return ∂/∂s in slot 4.
/// `g` is `exp(−Q)` at the pixel (from a [`GaussWalk`]).
#[inline]
pub(super) fn jacobian_row(m: &Axes, x: f64, y: f64, g: f64, circ: bool) -> ([f64; 7], f64) {
    let (dx, dy) = (x - m.x0, y - m.y0);
    let (u, v) = (m.c * dx + m.s * dy, -m.s * dx + m.c * dy);
    let ag = m.a * g;
    let mut j = [0.0; 7];
    j[0] = ag * (u * m.c * m.isx2 - v * m.s * m.isy2);
    j[1] = ag * (u * m.s * m.isx2 + v * m.c * m.isy2);
    j[2] = g;
    j[3] = 1.0;
    if circ {
        j[4] = ag * (dx * dx + dy * dy) * m.isx3;
    } else {
        j[4] = ag * u * u * m.isx3;
        j[5] = ag * v * v * m.isy3;
        j[6] = -ag * u * v * (m.isx2 - m.isy2);
    }
    (j, ag)
}
