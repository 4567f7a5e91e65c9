//! Refining column positions: centre of mass, then a 2-D Gaussian on a local constant background
//! by Levenberg–Marquardt, with overlapping neighbours fitted jointly, and Cramér–Rao error bars.
//!
//! Model of one column: `B + A·exp(−Q)`, `Q = u²/2σx² + v²/2σy²`, where `(u, v)` is `(x − x0,
//! y − y0)` rotated by `rotation` (radians from +x towards +y, image axes). After the fit the
//! axes are ordered so `sigma_x ≥ sigma_y` and `rotation ∈ [0, π)`. `amplitude` is the peak
//! height `A`; `volume = 2π·A·σx·σy`.
//!
//! The fit itself moves the quadratic form of `Q` (`Form`) and solves A and B by least squares
//! at every point (variable projection; see `normal_equations`).
//!
//! Joint fitting: every pass refits each column on its window with the current Gaussians of all
//! neighbours subtracted (a block Jacobi iteration on the whole-image model, as StatSTEM fits it
//! at once). Jacobi, not Gauss–Seidel, so results do not depend on the number of threads.
use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

use crate::lattice::neighbours::{Grid, nearest_distances};
use crate::math::par::map;
use crate::{CoreError, image::check_usable};
use bounds::finish;
use lm::fit_one;
pub use window::Window;
use window::{center_of_mass, neighbours_of, window};

pub use crate::image::Noise;

mod bounds;
mod lm;
mod model;
#[cfg(test)]
mod tests;
mod window;

/// The column shape to fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Shape {
    /// One width.
    Circular,
    /// Two widths and a rotation.
    #[default]
    Elliptical,
}

impl Shape {
    /// Every shape, in the order a form lists them.
    pub const ALL: [Shape; 2] = [Shape::Elliptical, Shape::Circular];
}

/// Parameters of [`fit_columns`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FitParams {
    /// Column shape.
    pub shape: Shape,
    /// Window radius as a fraction of each column's nearest-neighbour distance (Atomap: 0.4).
    pub window: f64,
    /// Fit overlapping neighbours jointly (extra passes with neighbours subtracted).
    pub joint: bool,
    /// Joint passes after the first independent one.
    pub passes: usize,
    /// Noise model for the error bars.
    pub noise: Noise,
    /// Levenberg–Marquardt iterations per column and pass.
    pub max_iterations: usize,
    /// Largest window radius (px): isolated atoms are fitted over their own few σ, not over a
    /// fraction of the distance to the next one. `None`: no cap.
    pub max_radius: Option<f64>,
}

impl Default for FitParams {
    fn default() -> Self {
        Self {
            shape: Shape::Elliptical,
            window: 0.4,
            joint: true,
            passes: 2,
            noise: Noise::Auto,
            max_iterations: 12,
            max_radius: None,
        }
    }
}

/// How a column's refinement ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FitStatus {
    /// The Gaussian fit converged.
    Fitted,
    /// The fit failed or ran away; the centre-of-mass position is kept.
    CenterOfMass,
    /// Too few valid pixels in the window (edge, NaN); the seed or centre of mass is kept.
    TooFewPixels,
    /// The fit converged but its height is below twice the noise for that shape: no significant
    /// column there (a seed on background); the centre of mass is kept.
    NotSignificant,
}

/// One refined column (pixels, see the module docs for the model).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AtomColumn {
    /// Column position (px).
    pub x: f64,
    /// Row position (px).
    pub y: f64,
    /// Larger width (px).
    pub sigma_x: f64,
    /// Smaller width (px).
    pub sigma_y: f64,
    /// Direction of `sigma_x`, radians from +x towards +y, in `[0, π)`.
    pub rotation: f64,
    /// Peak height above the background.
    pub amplitude: f64,
    /// Integrated intensity `2π·A·σx·σy`.
    pub volume: f64,
    /// Local background.
    pub background: f64,
    /// Cramér–Rao standard error of `x` (px): the shot noise's share alone, a lower bound.
    pub x_err: f64,
    /// Cramér–Rao standard error of `y` (px): the shot noise's share alone, a lower bound.
    pub y_err: f64,
    /// Standard error of `sigma_x` (px).
    pub sigma_x_err: f64,
    /// Standard error of `sigma_y` (px).
    pub sigma_y_err: f64,
    /// Standard error of `amplitude`.
    pub amplitude_err: f64,
    /// RMS of the fit residual in the window.
    pub residual_rms: f64,
    /// How the refinement ended.
    pub status: FitStatus,
    /// Sublattice index (0 until classified).
    pub sublattice: u32,
    /// Distance to the nearest other column (px; set by [`crate::columns::refine`]).
    pub nn_distance: f64,
    /// Columns in the first-neighbour shell (within 1.25 × the median nearest-neighbour
    /// distance): low at surfaces, edges and vacancies.
    pub coordination: u32,
    /// Empirical standard error of `x` (px): `x_err` with the image's scatter beyond the noise
    /// ([`crate::columns::precision`]; set by [`crate::columns::refine`]; NaN where it could
    /// not be measured).
    #[serde(default = "nan")]
    pub x_err_empirical: f64,
    /// Empirical standard error of `y` (px), as `x_err_empirical`.
    #[serde(default = "nan")]
    pub y_err_empirical: f64,
}

fn nan() -> f64 {
    f64::NAN
}

/// Relaxation of the joint passes (1 = plain Jacobi).
const RELAX: f64 = 0.6;

/// Parameters refitted in the joint passes: position, height and background; the widths stay
/// from the first pass. Refitting widths with the neighbours subtracted is unstable under
/// noise (a wider column over-subtracts its neighbours, whose backgrounds then drop and whose
/// widths grow in turn), as the noisy dense-lattice test showed.
const JOINT_FREE: Option<usize> = Some(4);

/// `√(x² + y²)` for pixel distances and quadratic-form coefficients, which cannot overflow
/// (`hypot`'s care for that costs several times more).
fn norm(x: f64, y: f64) -> f64 {
    (x * x + y * y).sqrt()
}

/// Internal parameters: x0, y0, A, B, sx, sy, rot.
#[derive(Debug, Clone, Copy)]
struct P(pub(super) [f64; 7]);

/// Refine `seeds` (`[x, y]` px) on `img`. `Err` only for an unusable image or parameters.
pub fn fit_columns(img: ArrayView2<f32>, seeds: &[[f64; 2]], p: &FitParams) -> Result<Vec<AtomColumn>, CoreError> {
    let mut r = Refinement::new(img, seeds, p)?;
    while !r.is_done() {
        let fits = map(r.jobs().len(), |k| r.fit(&r.jobs()[k]));
        r.advance(fits);
    }
    Ok(r.finish())
}

/// One Levenberg–Marquardt fit a refinement asks for: column `index`'s window around `centre`,
/// started from `start` (internal order x0, y0, A, B, σx, σy, rotation; `None`: from the
/// window's moments), fitting the leading `free` of them (`None`: all of the shape's).
#[derive(Debug, Clone, Copy)]
pub struct Job {
    /// The column (in the refinement's order).
    pub index: usize,
    /// The window's centre (px).
    pub centre: [f64; 2],
    /// Where the fit starts.
    pub start: Option<[f64; 7]>,
    /// Parameters fitted.
    pub free: Option<usize>,
    /// A joint pass: the window has the neighbours' Gaussians subtracted.
    joint: bool,
}

/// What a job's fit is given: its window's pixels and where it must stay.
pub enum Prepared {
    /// Fit this window.
    Fit {
        /// The window.
        window: Window,
        /// Its centre of mass: the fit fails if it moves more than half the radius from it.
        com: [f64; 2],
        /// Its radius (px).
        radius: f64,
    },
    /// Keep the column's current parameters (a joint pass whose neighbours barely reach it).
    Keep(Option<[f64; 7]>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Stage {
    First,
    Recentre,
    Joint(usize),
    Done,
}

/// A refinement in stages, so its Levenberg–Marquardt fits can run anywhere (rayon here, the
/// GPU in `atomlens-gpu`) while every decision between them is made once, here: centres of
/// mass, windows and neighbours, the re-centred second fit, the width outliers reset, the
/// relaxed joint passes, and the error bars at the end (see the module docs). Drive it with
/// [`Self::jobs`], [`Self::prepare`] (or [`Self::fit`]), [`Self::advance`] until
/// [`Self::is_done`], then [`Self::finish`].
pub struct Refinement<'a> {
    img: ArrayView2<'a, f32>,
    /// The seeds in scan order, and where each came from.
    seeds: Vec<[f64; 2]>,
    order: Vec<usize>,
    p: FitParams,
    poisson: bool,
    radius: Vec<f64>,
    com: Vec<[f64; 2]>,
    params: Vec<Option<P>>,
    reset: Vec<bool>,
    neighbours: Vec<Vec<usize>>,
    /// The neighbours' Gaussians the current pass subtracts.
    fitted: Vec<Option<window::Neighbour>>,
    stage: Stage,
    jobs: Vec<Job>,
}

impl<'a> Refinement<'a> {
    /// Check the input and take the first fits' windows.
    pub fn new(img: ArrayView2<'a, f32>, seeds: &[[f64; 2]], p: &FitParams) -> Result<Self, CoreError> {
        check_usable(img)?;
        if !(p.window > 0.05 && p.window <= 1.0) {
            return Err(CoreError::InvalidParameter {
                name: "window",
                reason: format!("{} is outside 0.05–1", p.window),
            });
        }
        // Columns are fitted in scan order (bands of about one spacing, left to right), so each
        // thread's next window lies on image rows already in cache; in the finder's order (by
        // height) loading the window's pixels was ~40 % of building it on a 1024² image. The
        // results go back in the seeds' order.
        let (h, w) = img.dim();
        let n = seeds.len();
        let band = ((h * w) as f64 / n.max(1) as f64).sqrt().max(1.0);
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| {
            let key = |i: usize| ((seeds[i][1] / band).floor(), seeds[i][0]);
            let ((ya, xa), (yb, xb)) = (key(a), key(b));
            ya.total_cmp(&yb).then(xa.total_cmp(&xb))
        });
        let seeds: Vec<[f64; 2]> = order.iter().map(|&i| seeds[i]).collect();
        let typical = ((h * w) as f64 / n.max(1) as f64).sqrt();
        let nn = nearest_distances(&seeds, typical);
        let radius: Vec<f64> = nn
            .iter()
            .map(|&d| if d.is_finite() { (p.window * d).max(1.5) } else { 0.25 * typical.max(6.0) })
            .map(|r| p.max_radius.map_or(r, |m| r.min(m.max(1.5))))
            .collect();
        // Centre of mass (Atomap's first refinement) over 0.6 of the window, where neighbours'
        // tails pull it less (fewer windows need re-centring after the first fit: refinement
        // 5–20 % faster, mean widths closer on the dense set), then a first independent fit.
        let com: Vec<[f64; 2]> = map(n, |i| center_of_mass(img, seeds[i], 0.6 * radius[i]));
        let jobs = (0..n).map(|i| Job { index: i, centre: com[i], start: None, free: None, joint: false }).collect();
        Ok(Refinement {
            img,
            seeds,
            order,
            p: p.clone(),
            poisson: p.noise.is_poisson(img),
            radius,
            com,
            params: vec![None; n],
            reset: vec![false; n],
            neighbours: vec![Vec::new(); n],
            fitted: Vec::new(),
            stage: if n == 0 { Stage::Done } else { Stage::First },
            jobs,
        })
    }

    /// The fits the current stage needs.
    pub fn jobs(&self) -> &[Job] {
        &self.jobs
    }

    /// All stages done: [`Self::finish`].
    pub fn is_done(&self) -> bool {
        self.stage == Stage::Done
    }

    /// The fit parameters (shape, iterations) every job uses.
    pub fn params(&self) -> &FitParams {
        &self.p
    }

    /// The window of `job`, or the parameters it keeps.
    pub fn prepare(&self, job: &Job) -> Prepared {
        let i = job.index;
        let (centre, r) = (job.centre, self.radius[i]);
        if !job.joint {
            return Prepared::Fit { window: window(self.img, centre, r, &[], &[]), com: self.com[i], radius: r };
        }
        // Columns whose window the neighbours barely reach (< 0.5 % of this column's height)
        // keep their independent fit: nothing to fit jointly there. A bound first, which
        // spares most such windows being built.
        let prev = self.params[i];
        let negligible = |overlap: f64| !self.reset[i] && prev.is_some_and(|q| overlap < 0.005 * q.0[2]);
        let bound: f64 =
            self.neighbours[i].iter().filter_map(|&j| self.fitted[j].as_ref()).map(|n| n.reaches(centre, r)).sum();
        if negligible(bound) {
            return Prepared::Keep(prev.map(|q| q.0));
        }
        let win = window(self.img, centre, r, &self.neighbours[i], &self.fitted);
        if negligible(win.sub.iter().cloned().fold(0.0, f64::max)) {
            return Prepared::Keep(prev.map(|q| q.0));
        }
        Prepared::Fit { window: win, com: self.com[i], radius: r }
    }

    /// `job` fitted here, on the CPU.
    pub fn fit(&self, job: &Job) -> Option<[f64; 7]> {
        match self.prepare(job) {
            Prepared::Keep(q) => q,
            Prepared::Fit { window, com, radius } => {
                fit_one(&window, com, radius, job.start.map(P), &self.p, job.free).map(|q| q.0)
            }
        }
    }

    /// Take the fits of [`Self::jobs`] (in their order) and move to the next stage.
    pub fn advance(&mut self, fits: Vec<Option<[f64; 7]>>) {
        assert_eq!(fits.len(), self.jobs.len(), "one fit per job");
        let jobs = std::mem::take(&mut self.jobs);
        let fits = jobs.iter().zip(fits).map(|(j, f)| (j.index, f.map(P)));
        match self.stage {
            Stage::First => {
                for (i, f) in fits {
                    self.params[i] = f;
                }
                // Re-centre the window on the fitted column and fit again when it moved: an
                // off-centre window weighs the background unevenly and pulls the position.
                self.jobs = (0..self.params.len())
                    .filter_map(|i| {
                        let q = self.params[i]?;
                        (norm(q.0[0] - self.com[i][0], q.0[1] - self.com[i][1]) >= 0.25).then_some(Job {
                            index: i,
                            centre: [q.0[0], q.0[1]],
                            start: Some(q.0),
                            free: None,
                            joint: false,
                        })
                    })
                    .collect();
                self.stage = Stage::Recentre;
                if self.jobs.is_empty() {
                    self.joint_pass(0);
                }
            }
            Stage::Recentre => {
                for (i, f) in fits {
                    self.params[i] = f.or(self.params[i]);
                }
                self.joint_pass(0);
            }
            Stage::Joint(pass) => {
                // Under-relaxed Jacobi: strongly overlapping neighbours would otherwise swap
                // intensity back and forth between passes.
                for (i, f) in fits {
                    self.params[i] = match (f, self.params[i]) {
                        (Some(new), Some(old)) => {
                            Some(P(std::array::from_fn(|d| old.0[d] + RELAX * (new.0[d] - old.0[d]))))
                        }
                        (new, old) => new.or(old),
                    };
                }
                self.joint_pass(pass + 1);
            }
            Stage::Done => {}
        }
    }

    /// Start joint pass `pass` (the first resets the outliers and finds the neighbours), or end.
    fn joint_pass(&mut self, pass: usize) {
        let n = self.params.len();
        if pass == 0 && self.p.joint {
            // A few first-pass fits degenerate under noise into a wide Gaussian on a negative
            // background; subtracted from their neighbours they would spoil them. Replace every
            // width outlier (and every failed fit) by a column of the median width first.
            if self.p.passes > 0 {
                self.reset = reset_outliers(self.img, &mut self.params, &self.com, &self.radius);
            }
            let (h, w) = self.img.dim();
            let typical = ((h * w) as f64 / n as f64).sqrt();
            let reach = self.radius.iter().cloned().fold(0.0, f64::max) * 2.0 + 6.0 * max_sigma(&self.params);
            let grid = Grid::new(&self.com, typical.max(1.0));
            let (com, radius) = (&self.com, &self.radius);
            self.neighbours =
                map(n, |i| grid.within(com, com[i], reach + radius[i]).into_iter().filter(|&j| j != i).collect());
        }
        if !self.p.joint || pass >= self.p.passes {
            self.stage = Stage::Done;
            return;
        }
        self.fitted = neighbours_of(&self.params);
        self.jobs = (0..n)
            .map(|i| Job {
                index: i,
                centre: self.params[i].map(|q| [q.0[0], q.0[1]]).unwrap_or(self.com[i]),
                start: self.params[i].map(|q| q.0),
                free: JOINT_FREE,
                joint: true,
            })
            .collect();
        self.stage = Stage::Joint(pass);
    }

    /// The refined columns, in the seeds' order, with their error bars.
    pub fn finish(self) -> Vec<AtomColumn> {
        let fitted = neighbours_of(&self.params);
        let out = map(self.seeds.len(), |i| {
            let centre = self.params[i].map(|q| [q.0[0], q.0[1]]).unwrap_or(self.com[i]);
            let win = window(self.img, centre, self.radius[i], &self.neighbours[i], &fitted);
            finish(&win, self.seeds[i], self.com[i], self.params[i], self.poisson, self.p.shape)
        });
        let mut ordered: Vec<(usize, AtomColumn)> = self.order.into_iter().zip(out).collect();
        ordered.sort_by_key(|(i, _)| *i);
        ordered.into_iter().map(|(_, c)| c).collect()
    }
}

fn median(mut v: Vec<f64>) -> Option<f64> {
    v.retain(|x| x.is_finite());
    v.sort_by(f64::total_cmp);
    (!v.is_empty()).then(|| v[v.len() / 2])
}

/// Returns which columns were reset (they must be refitted, whatever their neighbours).
fn reset_outliers(img: ArrayView2<f32>, params: &mut [Option<P>], com: &[[f64; 2]], radius: &[f64]) -> Vec<bool> {
    let mut reset = vec![false; params.len()];
    let ok: Vec<&P> = params.iter().flatten().collect();
    let (Some(sx), Some(sy), Some(b)) = (
        median(ok.iter().map(|q| q.0[4]).collect()),
        median(ok.iter().map(|q| q.0[5]).collect()),
        median(ok.iter().map(|q| q.0[3]).collect()),
    ) else {
        return reset;
    };
    let (h, w) = img.dim();
    for (i, slot) in params.iter_mut().enumerate() {
        let sane =
            slot.is_some_and(|q| (0.6 * sx..1.6 * sx).contains(&q.0[4]) && (0.6 * sy..1.6 * sy).contains(&q.0[5]));
        if sane {
            continue;
        }
        let (x, y) = (com[i][0].round(), com[i][1].round());
        if x < 0.0 || y < 0.0 || x >= w as f64 || y >= h as f64 || radius[i] <= 0.0 {
            *slot = None;
            continue;
        }
        let peak = img[[y as usize, x as usize]] as f64 - b;
        *slot = (peak.is_finite() && peak > 0.0).then_some(P([com[i][0], com[i][1], peak, b, sx, sy, 0.0]));
        reset[i] = true;
    }
    reset
}

fn max_sigma(params: &[Option<P>]) -> f64 {
    params.iter().flatten().map(|q| q.0[4].max(q.0[5])).fold(1.0, f64::max)
}
