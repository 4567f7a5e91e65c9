//! What a GPA run reports besides its maps: g-vectors in both units, mask, resolution,
//! reference, statistics and conventions (`gpa.json`, the page's summary).
use serde::{Deserialize, Serialize};

use super::{GpaResult, MaskShape};
use crate::image::{Region, region_stats};

/// One g-vector as reported: cycles/px, and 1/nm with the lattice-plane spacing when calibrated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GReport {
    /// `[x, y]`, cycles per pixel.
    pub per_px: [f64; 2],
    /// `[x, y]`, 1/nm (calibrated images only).
    pub per_nm: Option<[f64; 2]>,
    /// Plane spacing 1/|g| in px.
    pub d_px: f64,
    /// Plane spacing in nm (calibrated images only).
    pub d_nm: Option<f64>,
    /// Before refinement, cycles/px.
    pub initial_per_px: [f64; 2],
}

/// Statistics of one map.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MapStats {
    /// Mean over the reference region.
    pub reference_mean: f64,
    /// Mean over the core (inside the border band).
    pub core_mean: f64,
    /// Standard deviation over the core.
    pub core_std: f64,
}

/// Everything about a GPA run except the maps: what `gpa.json` and the page show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GpaSummary {
    /// The two g-vectors.
    pub g: [GReport; 2],
    /// Whether they were refined on the reference region.
    pub refined: bool,
    /// Mask shape.
    pub mask: MaskShape,
    /// Mask radius, cycles/px.
    pub mask_radius_per_px: f64,
    /// Real-space resolution of the maps (σ, px).
    pub resolution_px: f64,
    /// The same in nm (calibrated images only).
    pub resolution_nm: Option<f64>,
    /// Unreliable band along each edge (px).
    pub border_px: usize,
    /// Reference region (px, half-open).
    pub reference: Region,
    /// Strain frame, degrees from +x towards +y.
    pub frame_angle_deg: f64,
    /// Fraction of pixels with both fringes present.
    pub valid_fraction: f64,
    /// Per map: `exx`, `eyy`, `exy`, `rotation`.
    pub stats: std::collections::BTreeMap<String, MapStats>,
    /// The conventions, in words.
    pub conventions: String,
}

impl GpaResult {
    /// The summary, with 1/nm values when `pixel_nm` (the pixel size) is given.
    pub fn summary(&self, refined: bool, pixel_nm: Option<f64>) -> GpaSummary {
        let report = |g: [f64; 2], g0: [f64; 2]| {
            let d_px = 1.0 / g[0].hypot(g[1]);
            GReport {
                per_px: g,
                per_nm: pixel_nm.map(|p| [g[0] / p, g[1] / p]),
                d_px,
                d_nm: pixel_nm.map(|p| d_px * p),
                initial_per_px: g0,
            }
        };
        let stats = self
            .maps()
            .iter()
            .map(|(name, map)| {
                let (core_mean, core_std) = region_stats(map.view(), self.core());
                let reference_mean = region_stats(map.view(), self.reference).0;
                (name.to_string(), MapStats { reference_mean, core_mean, core_std })
            })
            .collect();
        GpaSummary {
            g: [report(self.g[0], self.g_initial[0]), report(self.g[1], self.g_initial[1])],
            refined,
            mask: self.mask,
            mask_radius_per_px: self.mask_radius,
            resolution_px: self.resolution_px,
            resolution_nm: pixel_nm.map(|p| self.resolution_px * p),
            border_px: self.border_px,
            reference: self.reference,
            frame_angle_deg: self.frame_angle.to_degrees(),
            valid_fraction: self.valid_fraction,
            stats,
            conventions: "x = column, y = row (down); strain is the Biot strain U − I of the polar decomposition \
                          F = R·U of the local deformation gradient against the reference lattice; exy is the \
                          tensor shear (half the engineering shear); rotation in radians, positive from +x towards +y; \
                          NaN where a fringe is absent"
                .into(),
        }
    }
}
