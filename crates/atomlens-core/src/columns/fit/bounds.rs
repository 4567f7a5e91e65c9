//! The reported column: axes ordered, and Cramér–Rao error bars from the Fisher information of
//! (x0, y0, A, B, σx, σy) under the image's noise model; a height below twice its noise is
//! `NotSignificant`.
use super::model::{Axes, GaussWalk, Model, jacobian_row};
use super::window::Window;
use super::{AtomColumn, FitStatus, P, Shape};

/// Invert the leading `k×k` block (columns of the identity through `solve`).
pub(super) fn invert(a: [[f64; 7]; 7], k: usize) -> Option<[[f64; 7]; 7]> {
    let mut inv = [[0.0; 7]; 7];
    for c in 0..k {
        let mut e = [0.0; 7];
        e[c] = 1.0;
        let x = crate::math::linalg::solve(a, e, k)?;
        for r in 0..k {
            inv[r][c] = x[r];
        }
    }
    Some(inv)
}

/// Build the reported column: order the axes, and compute the Cramér–Rao errors from the
/// Fisher information of (x0, y0, A, B, σx, σy) with the rotation held (it carries no
/// information about the position of a near-round column and is undefined for a round one).
pub(super) fn finish(
    win: &Window,
    seed: [f64; 2],
    com: [f64; 2],
    q: Option<P>,
    poisson: bool,
    shape: Shape,
) -> AtomColumn {
    let nan = f64::NAN;
    let Some(q) = q else {
        let status = if win.data.len() < 16 { FitStatus::TooFewPixels } else { FitStatus::CenterOfMass };
        let c = if status == FitStatus::TooFewPixels { seed } else { com };
        return AtomColumn {
            x: c[0],
            y: c[1],
            sigma_x: nan,
            sigma_y: nan,
            rotation: nan,
            amplitude: nan,
            volume: nan,
            background: nan,
            x_err: nan,
            y_err: nan,
            sigma_x_err: nan,
            sigma_y_err: nan,
            amplitude_err: nan,
            residual_rms: nan,
            status,
            sublattice: 0,
            nn_distance: nan,
            coordination: 0,
            x_err_empirical: nan,
            y_err_empirical: nan,
        };
    };
    let circ = shape == Shape::Circular;
    let k = if circ { 5 } else { 6 };
    let mut fisher = [[0.0; 7]; 7];
    let mut rss = 0.0;
    let (model, axes) = (Model::new(&q), Axes::new(&q));
    let mut walk = GaussWalk::new(&model, win.reach(&model));
    for t in 0..win.data.len() {
        let (x, y) = (win.xs[t], win.ys[t]);
        let (j, ag) = jacobian_row(&axes, x, y, walk.at(x, y), circ);
        let model = q.0[3] + ag;
        rss += (win.data[t] - model).powi(2);
        // Poisson: the variance of a pixel is its whole expected count, neighbours included.
        let weight = if poisson { 1.0 / (model + win.sub[t]).max(1e-9) } else { 1.0 };
        for a in 0..k {
            for b in 0..k {
                fisher[a][b] += weight * j[a] * j[b];
            }
        }
    }
    let dof = win.data.len().saturating_sub(if circ { 5 } else { 7 }).max(1) as f64;
    let variance = if poisson { 1.0 } else { rss / dof };
    let cov = invert(fisher, k);
    let err = |d: usize| cov.map(|c| (c[d][d] * variance).max(0.0).sqrt()).unwrap_or(nan);
    // Significance of the column itself: its height against the noise for that shape (the
    // conditional error, B and widths known); the marginal error above also carries the
    // width–background trade-off of tight windows and would call real columns insignificant.
    let detect_err = (variance / fisher[2][2]).sqrt();
    if !(q.0[2] > 2.0 * detect_err) {
        let mut c = finish(win, seed, com, None, poisson, shape);
        c.status = FitStatus::NotSignificant;
        return c;
    }
    let [x0, y0, a, b, mut sx, mut sy, mut rot] = q.0;
    let (mut sx_err, mut sy_err) = (err(4), if circ { err(4) } else { err(5) });
    if circ {
        sy = sx;
        rot = 0.0;
    } else if sy > sx {
        std::mem::swap(&mut sx, &mut sy);
        std::mem::swap(&mut sx_err, &mut sy_err);
        rot += std::f64::consts::FRAC_PI_2;
    }
    rot = rot.rem_euclid(std::f64::consts::PI);
    AtomColumn {
        x: x0,
        y: y0,
        sigma_x: sx,
        sigma_y: sy,
        rotation: rot,
        amplitude: a,
        volume: 2.0 * std::f64::consts::PI * a * sx * sy,
        background: b,
        x_err: err(0),
        y_err: err(1),
        sigma_x_err: sx_err,
        sigma_y_err: sy_err,
        amplitude_err: err(2),
        residual_rms: (rss / win.data.len().max(1) as f64).sqrt(),
        status: FitStatus::Fitted,
        sublattice: 0,
        nn_distance: f64::NAN,
        coordination: 0,
        x_err_empirical: f64::NAN,
        y_err_empirical: f64::NAN,
    }
}
