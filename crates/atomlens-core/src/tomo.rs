//! Small-volume reconstruction from a single-axis tilt series.
//!
//! Conventions (stated once, used by every part):
//! - The tilt axis is the image's y axis (rows of every projection are independent slices). A
//!   projection at tilt θ (radians) integrates the volume along the beam after rotating it by θ
//!   about y: detector coordinate `u = x·cos θ + z·sin θ`, all three centred at `(n − 1)/2` px.
//! - Volumes are `nx × ny × nz` with x fastest, then y, then z (the order of MRC files); `nz` is
//!   the thickness along the beam at zero tilt.
//! - A tilt series is a stack `[[tilt, y, x]]` with its angles in degrees.
//!
//! Parts: the Joseph projector and its exact adjoint ([`project`]), filtered back-projection
//! ([`fbp`]), SIRT and SART ([`iterative`]), alignment ([`align`]), phantoms and their tilt
//! series ([`phantom`]). Slices are independent and run in parallel with rayon.
use ndarray::{Array2, Array3, ArrayView3};
use serde::{Deserialize, Serialize};

use crate::CoreError;

pub mod align;
pub mod fbp;
pub mod iterative;
pub mod phantom;
pub mod project;

/// A reconstructed volume, x fastest, then y, then z.
#[derive(Debug, Clone, PartialEq)]
pub struct Volume {
    /// Voxels `[[z, y, x]]`.
    pub data: Array3<f32>,
}

impl Volume {
    /// `(nx, ny, nz)`.
    pub fn dims(&self) -> (usize, usize, usize) {
        let (nz, ny, nx) = self.data.dim();
        (nx, ny, nz)
    }

    /// The `(nz × nx)` slice at row `y` (one reconstruction problem).
    pub fn slice_y(&self, y: usize) -> Array2<f32> {
        self.data.slice(ndarray::s![.., y, ..]).to_owned()
    }

    /// Assemble a volume from its y slices (each `nz × nx`).
    pub fn from_slices(slices: Vec<Array2<f32>>) -> Self {
        let (nz, nx) = slices.first().map_or((0, 0), |s| s.dim());
        let ny = slices.len();
        let mut data = Array3::zeros((nz, ny, nx));
        for (y, s) in slices.iter().enumerate() {
            data.slice_mut(ndarray::s![.., y, ..]).assign(s);
        }
        Self { data }
    }
}

/// A tilt series: projections `[[tilt, y, x]]` and their angles (degrees).
#[derive(Debug, Clone, Copy)]
pub struct TiltSeries<'a> {
    /// Projections.
    pub images: ArrayView3<'a, f32>,
    /// Tilt angle of each projection (degrees).
    pub angles_deg: &'a [f64],
}

/// The reconstruction method and its parameters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "method", rename_all = "snake_case")]
pub enum Method {
    /// Filtered back-projection.
    Fbp {
        /// Apodisation of the ramp filter.
        filter: fbp::Filter,
    },
    /// Simultaneous iterative reconstruction (all tilts per update).
    Sirt {
        /// Iterations.
        iterations: usize,
        /// Clip negative voxels after every update.
        nonnegative: bool,
    },
    /// Simultaneous algebraic reconstruction (one tilt per update).
    Sart {
        /// Passes over all tilts.
        iterations: usize,
        /// Clip negative voxels after every update.
        nonnegative: bool,
    },
}

/// How the projections are aligned before reconstruction (see [`align`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Align {
    /// As given.
    #[default]
    None,
    /// Each projection's centre of mass to the image centre.
    CenterOfMass,
    /// The tilt axis's offset along x estimated and moved to the image centre.
    AxisOffset,
    /// Cross-correlation between neighbouring tilts, then the axis offset.
    CrossCorrelation,
    /// Cross-correlation and the axis offset, then three rounds of refinement by re-projection.
    Reprojection,
}

/// Largest volume the browser build accepts (voxels): 256³.
pub const MAX_BROWSER_VOXELS: usize = 256 * 256 * 256;

/// Check a tilt series: one angle per projection, at least two, strictly increasing, within
/// ±90°, finite pixels.
pub fn check(series: &TiltSeries) -> Result<(), CoreError> {
    let bad = |reason: String| CoreError::InvalidParameter { name: "tilt series", reason };
    let (n, h, w) = series.images.dim();
    if n < 2 {
        return Err(bad(format!("{n} projection: a reconstruction needs a tilt series of at least 2")));
    }
    if series.angles_deg.len() != n {
        return Err(bad(format!("{} angles for {n} projections", series.angles_deg.len())));
    }
    if let Some(k) = series.angles_deg.windows(2).position(|p| !(p[1] > p[0])) {
        let a = series.angles_deg;
        return Err(bad(format!(
            "angles must increase strictly: {}° then {}° (projections {} and {})",
            a[k],
            a[k + 1],
            k,
            k + 1
        )));
    }
    if series.angles_deg.iter().any(|a| !(a.abs() <= 90.0)) {
        return Err(bad("angles must lie within ±90°".into()));
    }
    if h < 4 || w < 4 {
        return Err(CoreError::TooSmall { width: w, height: h, min: 4, what: "reconstruction" });
    }
    if series.images.iter().any(|v| !v.is_finite()) {
        return Err(bad("the projections contain NaN or infinite pixels".into()));
    }
    Ok(())
}

/// A reconstruction in progress: the series (aligned when asked), the geometry, and the slices
/// done so far. [`Plan::step`] does the next slices (in parallel), so a caller can report
/// progress and stay responsive between steps.
#[derive(Debug)]
pub struct Plan {
    images: Array3<f32>,
    geometry: project::Geometry,
    method: Method,
    slices: Vec<Array2<f32>>,
    /// Shifts applied by the alignment (`(dx, dy)` px per projection), when aligned.
    pub shifts: Option<Vec<[f64; 2]>>,
}

impl Plan {
    /// Check `series` and prepare a volume of thickness `nz`, aligning the projections first.
    pub fn new(series: &TiltSeries, nz: usize, method: Method, align: Align) -> Result<Self, CoreError> {
        check(series)?;
        let (_, ny, nx) = series.images.dim();
        if nz == 0 || nz > 4 * nx.max(ny) {
            return Err(CoreError::InvalidParameter {
                name: "thickness",
                reason: format!("{nz} px is outside 1–{}", 4 * nx.max(ny)),
            });
        }
        let iterations = match method {
            Method::Fbp { .. } => 1,
            Method::Sirt { iterations, .. } | Method::Sart { iterations, .. } => iterations,
        };
        if !(1..=10_000).contains(&iterations) {
            return Err(CoreError::InvalidParameter {
                name: "iterations",
                reason: format!("{iterations} is outside 1–10000"),
            });
        }
        let (shifts, images) = match align {
            Align::None => (None, series.images.to_owned()),
            Align::CenterOfMass => {
                let (s, a) = align::align_center_of_mass(series.images);
                (Some(s), a)
            }
            Align::AxisOffset => {
                let d = align::estimate_axis_offset(series.images, series.angles_deg);
                (Some(vec![[d, 0.0]; series.angles_deg.len()]), align::shift_x(series.images, d))
            }
            Align::CrossCorrelation => {
                let (s, a) = align::align_cross_correlation(series.images, series.angles_deg)?;
                (Some(s), a)
            }
            Align::Reprojection => {
                let (s0, a) = align::align_cross_correlation(series.images, series.angles_deg)?;
                let (s1, b) = align::refine_by_reprojection(a.view(), series.angles_deg, 3)?;
                (Some(s0.iter().zip(&s1).map(|(p, q)| [p[0] + q[0], p[1] + q[1]]).collect()), b)
            }
        };
        let geometry = project::Geometry::new(nx, nz, series.angles_deg);
        Ok(Self { images, geometry, method, slices: Vec::with_capacity(ny), shifts })
    }

    /// The projections as reconstructed (aligned when asked), `[[tilt, y, x]]`.
    pub fn images(&self) -> ndarray::ArrayView3<'_, f32> {
        self.images.view()
    }

    /// `(nx, ny, nz)` of the volume.
    pub fn dims(&self) -> (usize, usize, usize) {
        (self.geometry.nx, self.images.dim().1, self.geometry.nz)
    }

    /// Slices done.
    pub fn done(&self) -> usize {
        self.slices.len()
    }

    /// The most recent slice done (`nz × nx`, at row `done() − 1`), for a live preview.
    pub fn last_slice(&self) -> Option<&Array2<f32>> {
        self.slices.last()
    }

    /// Reconstruct the next `count` slices (rows along the tilt axis); returns the slices done.
    pub fn step(&mut self, count: usize) -> usize {
        let (y0, ny) = (self.slices.len(), self.images.dim().1);
        let y1 = (y0 + count.max(1)).min(ny);
        let (g, images, method) = (&self.geometry, &self.images, self.method);
        let new = crate::par::map(y1 - y0, |k| {
            let sino = images.slice(ndarray::s![.., y0 + k, ..]);
            match method {
                Method::Fbp { filter } => fbp::fbp_slice(g, sino, filter),
                Method::Sirt { iterations, nonnegative } => {
                    iterative::sirt_slice(g, sino, iterations, nonnegative, None)
                }
                Method::Sart { iterations, nonnegative } => iterative::sart_slice(g, sino, iterations, nonnegative),
            }
        });
        self.slices.extend(new);
        self.slices.len()
    }

    /// The finished volume (slices not yet done are zero).
    pub fn volume(&self) -> Volume {
        let (nx, ny, nz) = self.dims();
        let mut slices = self.slices.clone();
        slices.resize(ny, Array2::zeros((nz, nx)));
        Volume::from_slices(slices)
    }
}

/// Reconstruct a volume of thickness `nz` from `series` (see the module conventions).
/// `progress(done, total)` is called after every batch of slices.
pub fn reconstruct(
    series: &TiltSeries,
    nz: usize,
    method: &Method,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Volume, CoreError> {
    let mut plan = Plan::new(series, nz, *method, Align::None)?;
    let ny = plan.dims().1;
    while plan.done() < ny {
        progress(plan.step(16), ny);
    }
    Ok(plan.volume())
}

#[cfg(test)]
mod tests;
