//! Levenberg–Marquardt on one window, by variable projection (Golub–Pereyra, Kaufman's
//! Jacobian): A and B are solved by least squares at every trial point, the damping uses the
//! diagonal with them eliminated (Schur complement). The normal equations are packed dot
//! products over per-pixel arrays.
use super::model::{Form, GaussWalk, Model};
use super::window::Window;
use super::{FitParams, P, Shape, norm};

/// Levenberg–Marquardt on one window. `None` when it fails or runs away from `com`.
///
/// `free`: how many leading parameters (x0, y0, A, B, σx, σy, rot) are fitted; `None` = all of
/// the shape's.
pub(super) fn fit_one(
    win: &Window,
    com: [f64; 2],
    r: f64,
    start: Option<P>,
    p: &FitParams,
    free: Option<usize>,
) -> Option<P> {
    let circ = p.shape == Shape::Circular;
    let k = free.unwrap_or(if circ { 5 } else { 7 });
    if win.data.len() < 2 * k + 2 {
        return None;
    }
    let lo = win.data.iter().cloned().fold(f64::MAX, f64::min);
    let hi = win.data.iter().cloned().fold(f64::MIN, f64::max);
    let mut q = start.unwrap_or_else(|| {
        // Width from the second moment of the intensity above the window minimum (a Gaussian
        // gives Σw·d² / Σw = 2σ²), so the fit starts near its answer.
        let (mut sw, mut s2) = (0.0, 0.0);
        for i in 0..win.data.len() {
            let wgt = (win.data[i] - lo).max(0.0);
            sw += wgt;
            s2 += wgt * ((win.xs[i] - com[0]).powi(2) + (win.ys[i] - com[1]).powi(2));
        }
        let sigma = if sw > 0.0 { (s2 / (2.0 * sw)).sqrt().clamp(0.5, r / 1.5) } else { r / 2.5 };
        P([com[0], com[1], (hi - lo).max(1e-12), lo, sigma, sigma, 0.0])
    });
    if circ {
        q.0[5] = q.0[4];
        q.0[6] = 0.0;
    }
    let mut f = Form::of(&q);
    // Each trial point's normal equations come with its cost, so an accepted step costs one
    // pass over the window, not two.
    let mut scratch = Scratch::default();
    let (mut jtj, mut jtr, mut c0) = normal_equations(win, &mut f, k, circ, &mut scratch);
    let mut lambda = 1e-3;
    for _ in 0..p.max_iterations {
        let mut improved = false;
        for _ in 0..8 {
            // Marquardt's scaling on the projected problem: the shape and position are damped by
            // their curvature with A and B eliminated (the Schur complement's diagonal), A and B
            // not at all (they are solved, not stepped). Damped by the raw diagonal, a width tied
            // to A and B could only crawl until λ fell below 1e-7. A floor guards a parameter
            // without curvature.
            let scale = projected_diagonal(&jtj, k);
            let floor = 1e-6 * scale.iter().cloned().fold(0.0, f64::max);
            let mut a = jtj;
            for d in (0..k).filter(|d| !LINEAR.contains(d)) {
                a[d][d] += lambda * scale[d].max(floor).max(1e-300);
            }
            let Some(step) = crate::math::linalg::solve(a, jtr, k) else {
                lambda *= 10.0;
                continue;
            };
            // Converged when the undamped step would lower the cost by less than
            // `SETTLED` noise variances (the residual's): the optimum is then within
            // √SETTLED standard errors of every parameter, and the step is not taken.
            let predicted: f64 = (0..k).map(|d| step[d] * jtr[d]).sum();
            let noise = c0 / (win.data.len() - k) as f64;
            if lambda <= 1e-3 && predicted < SETTLED * noise {
                return accept(f, com, r);
            }
            let mut t = f;
            for (d, s) in step.iter().enumerate().take(k) {
                t.0[d] += s;
            }
            if circ {
                (t.0[5], t.0[6]) = (0.0, t.0[4]);
            }
            if t.axes().is_none() {
                lambda *= 10.0;
                continue;
            }
            let (jtj1, jtr1, c1) = normal_equations(win, &mut t, k, circ, &mut scratch);
            if c1.is_finite() && c1 < c0 {
                // Converged: the position moves by less than 1e-3 px (a tenth of the best
                // Cramér–Rao bound seen) and the cost by < 1e-6.
                let small = step[0].abs() < 1e-3 && step[1].abs() < 1e-3 && (c0 - c1) <= 1e-6 * c0.max(1e-300);
                (f, jtj, jtr, c0) = (t, jtj1, jtr1, c1);
                lambda = (lambda / 10.0).max(1e-9);
                improved = true;
                if small {
                    return accept(f, com, r);
                }
                break;
            }
            lambda *= 10.0;
        }
        if !improved {
            break;
        }
    }
    accept(f, com, r)
}

/// The cost decrease, in noise variances, below which a fit has converged: 1e-3 puts it within
/// 0.03 standard errors of its optimum (a cost `dᵀC⁻¹d` above it for a distance `d`). Gpufit's
/// default (1e-4 of χ²) is ~25 times looser on these windows; 1e-2 saved another 15 % of the
/// fit's time but let 4 of MoS2's 2076 ill-conditioned columns settle elsewhere (up to 1.7 σ).
const SETTLED: f64 = 1e-3;

/// The parameters the model is linear in (A, B): [`normal_equations`] solves them.
pub(super) const LINEAR: [usize; 2] = [2, 3];

/// The diagonal of `JᵀJ` with A and B eliminated (`J_dd − J_dL J_LL⁻¹ J_Ld`): each nonlinear
/// parameter's curvature when A and B follow it; 0 in the A and B slots.
pub(super) fn projected_diagonal(jtj: &[[f64; 7]; 7], k: usize) -> [f64; 7] {
    let [p, q] = LINEAR;
    let (a, b, c) = (jtj[p][p], jtj[p][q], jtj[q][q]);
    let det = a * c - b * b;
    std::array::from_fn(|d| {
        if d >= k || LINEAR.contains(&d) {
            return 0.0;
        }
        let (u, v) = (jtj[d][p], jtj[d][q]);
        let explained = if det > 0.0 { (c * u * u - 2.0 * b * u * v + a * v * v) / det } else { 0.0 };
        (jtj[d][d] - explained).max(0.0)
    })
}

pub(super) fn accept(f: Form, com: [f64; 2], r: f64) -> Option<P> {
    let q = f.axes()?;
    let v = &q.0;
    let sane_widths = (0.2..2.0 * r).contains(&v[4]) && (0.2..2.0 * r).contains(&v[5]);
    let near = norm(v[0] - com[0], v[1] - com[1]) < 0.5 * r;
    let ok = v.iter().all(|x| x.is_finite()) && v[2] > 0.0 && sane_widths && near;
    if ok { Some(q) } else { None }
}

/// Per-pixel working arrays of the normal equations, kept as structure of arrays so the
/// sums over pixels run as packed (SIMD) dot products: `exp(−Q)`, the Jacobian's columns in
/// [`Form`] order (slots 2 and 3, `exp(−Q)` and ones, stay empty) and the residuals. One per
/// fit, reused by every step.
#[derive(Default)]
pub(super) struct Scratch {
    pub(super) g: Vec<f64>,
    pub(super) j: [Vec<f64>; 7],
    pub(super) r: Vec<f64>,
}

// Kept out of line on purpose: inlined into `fit_one`, rustc 1.95 (LLVM, opt-level 3) produced
// a wrong background step in release builds only (B ended at exactly 0; `release_regression` catches it,
// debug builds and opt-level 2 were right). The release-mode core tests in CI guard this.
#[inline(never)]
/// `JᵀJ`, `Jᵀr` and the cost `Σr²` at `f` with its A and B replaced by their least-squares
/// values, for its leading `k` parameters (4, 5 or 7: joint passes, circular, elliptical).
pub(super) fn normal_equations(
    win: &Window,
    f: &mut Form,
    k: usize,
    circ: bool,
    s: &mut Scratch,
) -> ([[f64; 7]; 7], [f64; 7], f64) {
    let n = win.data.len();
    // exp(−Q) first, on its own: the row recurrence is sequential, everything after it is not.
    s.g.clear();
    let shape = Model::of(f);
    let mut walk = GaussWalk::new(&shape, win.reach(&shape));
    s.g.extend(win.xs.iter().zip(&win.ys).map(|(&x, &y)| walk.at(x, y)));
    // Variable projection (Golub–Pereyra, with Kaufman's Jacobian): the model is linear in A and
    // B, so every point takes them by least squares for its position and shape; the step then is
    // Gauss–Newton's on the rest. Stepped along with the shape instead, A and B crawled down the
    // A–B–σ valley of windows that end before a column's tail does (MoS2: ~15 evaluations a fit).
    let (sg, sgg, sd, sgd) = (sum(&s.g), dot(&s.g, &s.g), sum(&win.data), dot(&s.g, &win.data));
    let nf = n as f64;
    let height = (sgd * nf - sg * sd) / (sgg * nf - sg * sg);
    if height.is_finite() && height > 0.0 {
        (f.0[2], f.0[3]) = (height, (sd - height * sg) / nf);
    }
    let m = Model::of(f);
    for d in [0, 1, 4, 5, 6] {
        s.j[d].resize(n, 0.0);
    }
    s.r.resize(n, 0.0);
    // Columns 2 (∂/∂A = exp(−Q)) and 3 (∂/∂B = 1) are `g` and ones: not stored. Separate loops
    // per shape keep each branch-free (vectorised).
    let [j0, j1, _, _, j4, j5, j6] = &mut s.j;
    let (xs, ys, data, g, r) = (&win.xs[..n], &win.ys[..n], &win.data[..n], &s.g[..n], &mut s.r[..n]);
    let (j0, j1, j4, j5, j6) = (&mut j0[..n], &mut j1[..n], &mut j4[..n], &mut j5[..n], &mut j6[..n]);
    let b = f.0[3];
    for i in 0..n {
        let (dx, dy) = (xs[i] - m.x0, ys[i] - m.y0);
        let ag = m.a * g[i];
        j0[i] = ag * (m.qa * dx + m.qb * dy);
        j1[i] = ag * (m.qb * dx + m.qc * dy);
        r[i] = data[i] - b - ag;
    }
    if k > 4 && circ {
        for i in 0..n {
            let (dx, dy) = (xs[i] - m.x0, ys[i] - m.y0);
            j4[i] = -0.5 * m.a * g[i] * (dx * dx + dy * dy);
        }
    } else if k > 4 {
        for i in 0..n {
            let (dx, dy, ag) = (xs[i] - m.x0, ys[i] - m.y0, m.a * g[i]);
            j4[i] = -0.5 * ag * dx * dx;
            j5[i] = -ag * dx * dy;
            j6[i] = -0.5 * ag * dy * dy;
        }
    }
    let col = |a: usize| if a == 2 { &s.g } else { &s.j[a] };
    let product = |a: usize, b: usize| match (a == 3, b == 3) {
        (true, true) => nf,
        (true, false) => sum(col(b)),
        (false, true) => sum(col(a)),
        (false, false) => dot(col(a), col(b)),
    };
    let mut jtj = [[0.0; 7]; 7];
    let mut jtr = [0.0; 7];
    for a in 0..k {
        jtr[a] = if a == 3 { sum(&s.r) } else { dot(col(a), &s.r) };
        for b in 0..=a {
            jtj[a][b] = product(a, b);
            jtj[b][a] = jtj[a][b];
        }
    }
    (jtj, jtr, dot(&s.r, &s.r))
}

/// `Σ aᵢ` in eight interleaved partial sums (see [`dot`]).
pub(super) fn sum(a: &[f64]) -> f64 {
    const L: usize = 8;
    let (chunks, rest) = a.as_chunks::<L>();
    let mut acc = [0.0; L];
    for x in chunks {
        for l in 0..L {
            acc[l] += x[l];
        }
    }
    acc.iter().sum::<f64>() + rest.iter().sum::<f64>()
}

/// `Σ aᵢbᵢ` in eight interleaved partial sums: independent lanes the compiler packs into SIMD
/// registers (a single running sum is one long dependency chain and stays scalar).
#[inline]
pub(super) fn dot(a: &[f64], b: &[f64]) -> f64 {
    const L: usize = 8;
    let ((ca, ra), (cb, rb)) = (a.as_chunks::<L>(), b.as_chunks::<L>());
    let tail: f64 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    let mut acc = [0.0; L];
    for (x, y) in ca.iter().zip(cb) {
        for l in 0..L {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f64>() + tail
}
