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
pub mod axis;
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
pub enum Algorithm {
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

impl Algorithm {
    /// Every method at its default parameters, in the order a form lists them (the CLI's
    /// `--method NAME` and the page's form start from these).
    pub const ALL: [Algorithm; 3] = [
        Algorithm::Sirt { iterations: 50, nonnegative: true },
        Algorithm::Sart { iterations: 50, nonnegative: true },
        Algorithm::Fbp { filter: fbp::Filter::SheppLogan },
    ];

    /// The method called `name` (`fbp`, `sirt`, `sart`) at its default parameters.
    pub fn by_name(name: &str) -> Option<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The method's name (its serde tag).
    pub fn name(&self) -> &'static str {
        match self {
            Algorithm::Fbp { .. } => "fbp",
            Algorithm::Sirt { .. } => "sirt",
            Algorithm::Sart { .. } => "sart",
        }
    }
}

/// How the projections are aligned before reconstruction (see [`align`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Align {
    /// As given.
    #[default]
    None,
    /// Each projection's centre of mass to the image centre.
    #[serde(alias = "com")]
    CenterOfMass,
    /// The tilt axis's offset along x estimated and moved to the image centre.
    #[serde(alias = "axis")]
    AxisOffset,
    /// Cross-correlation between neighbouring tilts, then the axis offset.
    #[serde(alias = "cc")]
    CrossCorrelation,
    /// Cross-correlation and the axis offset, then three rounds of refinement by re-projection.
    #[serde(alias = "reproj")]
    Reprojection,
}

impl Align {
    /// Every alignment, in the order a form lists them.
    pub const ALL: [Align; 5] =
        [Align::None, Align::CenterOfMass, Align::AxisOffset, Align::CrossCorrelation, Align::Reprojection];
}

/// The tilt axis's direction in the images (see [`axis`] for the angle's sense).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TiltAxis {
    /// At this angle from the image's y axis (degrees; 0 = along y, as the conventions assume).
    Angle(f64),
    /// Estimated from the common line ([`axis::estimate_direction`]).
    Estimate,
}

impl Default for TiltAxis {
    fn default() -> Self {
        Self::Angle(0.0)
    }
}

/// How a tilt series is prepared before reconstruction.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(default)]
pub struct Preparation {
    /// Translation alignment.
    pub align: Align,
    /// The tilt axis's direction in the images.
    pub axis: TiltAxis,
    /// Stretch neighbouring tilts by their cosine ratio before correlating them (a thin,
    /// wide specimen such as particles on a support film; not a compact particle, whose
    /// projections do not shrink with the tilt).
    pub stretch: bool,
}

/// Above this common-line contrast no direction stands out (a centred, round object): the
/// estimate is not used.
const AXIS_CONTRAST_LIMIT: f64 = 0.5;

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
    method: Algorithm,
    slices: Vec<Array2<f32>>,
    /// Shifts applied by the alignment (`(dx, dy)` px per projection, in the images turned to
    /// a vertical axis), when aligned.
    pub shifts: Option<Vec<[f64; 2]>>,
    /// The tilt axis's angle the projections were turned from (degrees, 0 = along y).
    pub axis_deg: f64,
    /// Common-line contrast of an estimated axis ([`axis::Direction::contrast`]).
    pub axis_contrast: Option<f64>,
    /// What the user should know about how the series was prepared.
    pub notes: Vec<String>,
}

impl Plan {
    /// Check `series` and prepare a volume of thickness `nz`: turn the projections so the tilt
    /// axis is vertical (estimating its direction when asked, on the series aligned by
    /// cross-correlation, since shifts along the axis would blur the common line), then align.
    pub fn new(series: &TiltSeries, nz: usize, method: Algorithm, prep: Preparation) -> Result<Self, CoreError> {
        let Preparation { align, axis, stretch } = prep;
        check(series)?;
        let (_, ny, nx) = series.images.dim();
        if nz == 0 || nz > 4 * nx.max(ny) {
            return Err(CoreError::InvalidParameter {
                name: "thickness",
                reason: format!("{nz} px is outside 1–{}", 4 * nx.max(ny)),
            });
        }
        let iterations = match method {
            Algorithm::Fbp { .. } => 1,
            Algorithm::Sirt { iterations, .. } | Algorithm::Sart { iterations, .. } => iterations,
        };
        if !(1..=10_000).contains(&iterations) {
            return Err(CoreError::InvalidParameter {
                name: "iterations",
                reason: format!("{iterations} is outside 1–10000"),
            });
        }
        let angles = series.angles_deg;
        let mut notes = Vec::new();
        let (axis_deg, axis_contrast) = match axis {
            TiltAxis::Angle(a) if a.is_finite() && a.abs() <= 90.0 => (a, None),
            TiltAxis::Angle(a) => {
                return Err(CoreError::InvalidParameter {
                    name: "tilt axis", reason: format!("{a}° is outside ±90°")
                });
            }
            TiltAxis::Estimate => {
                let found = match align {
                    Align::None => axis::estimate_direction(series.images)?,
                    _ => axis::estimate_direction(
                        align::align_cross_correlation(series.images, angles, false)?.1.view(),
                    )?,
                };
                if found.contrast > AXIS_CONTRAST_LIMIT {
                    notes.push(format!(
                        "no tilt-axis direction stands out (common-line contrast {:.2}; a round object \
                         centred on the axis looks alike about every axis): the axis is kept along y",
                        found.contrast
                    ));
                    (0.0, Some(found.contrast))
                } else {
                    (found.angle_deg, Some(found.contrast))
                }
            }
        };
        let turned =
            if axis_deg == 0.0 { series.images.to_owned() } else { axis::make_vertical(series.images, axis_deg) };
        let view = turned.view();
        let (shifts, images) = match align {
            Align::None => (None, turned),
            Align::CenterOfMass => {
                let (s, a) = align::align_center_of_mass(view);
                (Some(s), a)
            }
            Align::AxisOffset => {
                let d = align::estimate_axis_offset(view, angles);
                (Some(vec![[d, 0.0]; angles.len()]), align::shift_x(view, d))
            }
            Align::CrossCorrelation => {
                let (s, a) = align::align_cross_correlation(view, angles, stretch)?;
                (Some(s), a)
            }
            Align::Reprojection => {
                let (s0, a) = align::align_cross_correlation(view, angles, stretch)?;
                let (s1, b) = align::refine_by_reprojection(a.view(), angles, 3)?;
                (Some(s0.iter().zip(&s1).map(|(p, q)| [p[0] + q[0], p[1] + q[1]]).collect()), b)
            }
        };
        let geometry = project::Geometry::new(nx, nz, angles);
        Ok(Self { images, geometry, method, slices: Vec::with_capacity(ny), shifts, axis_deg, axis_contrast, notes })
    }

    /// The projections as reconstructed (aligned when asked), `[[tilt, y, x]]`.
    pub fn images(&self) -> ndarray::ArrayView3<'_, f32> {
        self.images.view()
    }

    /// `(nx, ny, nz)` of the volume.
    pub fn dims(&self) -> (usize, usize, usize) {
        (self.geometry.nx, self.images.dim().1, self.geometry.nz)
    }

    /// The method.
    pub fn method(&self) -> Algorithm {
        self.method
    }

    /// The slice geometry (every slice shares it).
    pub fn geometry(&self) -> &project::Geometry {
        &self.geometry
    }

    /// Take slices reconstructed elsewhere (the GPU) as the next ones, in order.
    pub fn push(&mut self, slices: impl IntoIterator<Item = Array2<f32>>) {
        let ny = self.images.dim().1;
        self.slices.extend(slices);
        self.slices.truncate(ny);
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
        let new = crate::math::par::map(y1 - y0, |k| {
            let sino = images.slice(ndarray::s![.., y0 + k, ..]);
            match method {
                Algorithm::Fbp { filter } => fbp::fbp_slice(g, sino, filter),
                Algorithm::Sirt { iterations, nonnegative } => {
                    iterative::sirt_slice(g, sino, iterations, nonnegative, None)
                }
                Algorithm::Sart { iterations, nonnegative } => iterative::sart_slice(g, sino, iterations, nonnegative),
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
    method: &Algorithm,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<Volume, CoreError> {
    let mut plan = Plan::new(series, nz, *method, Preparation::default())?;
    let ny = plan.dims().1;
    while plan.done() < ny {
        progress(plan.step(16), ny);
    }
    Ok(plan.volume())
}

#[cfg(test)]
mod tests;
