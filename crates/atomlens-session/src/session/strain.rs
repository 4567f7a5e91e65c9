//! Strain of the shown image: GPA maps (rendered red–blue at symmetric limits, transparent where
//! no fringe was measured), their values for profiles, TIFF export; strain from the columns.
use atomlens_core::image::Region;
use atomlens_core::image::render::{Colormap, to_rgba};
use atomlens_core::strain::columns::{ColumnStrain, column_strain};
use atomlens_core::strain::gpa::{GpaParams, GpaResult, analyse};
use ndarray::Array2;

use super::{Session, Step, tiff};
use crate::error::{Error, Result};
use crate::reply::Reply;

impl Session {
    /// GPA of the shown image with `p`; keeps the maps: `{summary, width, height, limits,
    /// displacement_limit}` (the default colour limit per map: the 95th percentile of |value|
    /// over the core, where the particle edges, where fringes fade, do not set it).
    pub fn gpa(&mut self, p: GpaParams) -> Result<Reply> {
        let shown = self.shown_mut()?;
        let r = analyse(shown.image.view(), &p)?;
        shown.gpa = Some((r, p.clone()));
        self.record(Step::Gpa { params: p });
        self.gpa_reply()
    }

    /// The strain maps of the shown image, as [`Session::gpa`] returned them.
    pub fn gpa_reply(&self) -> Result<Reply> {
        let shown = self.shown()?;
        let (r, p) = shown.gpa.as_ref().ok_or_else(|| Error::state("run GPA first"))?;
        let cal = &shown.image.calibration;
        let summary = r.summary(p.refine, cal.is_calibrated().then_some(cal.pixel_size));
        let limits = r.maps().map(|(_, m)| symmetric_limit(r, m));
        let displacement = r.displacement.as_ref().map(|[ux, uy]| symmetric_limit(r, ux).max(symmetric_limit(r, uy)));
        let (height, width) = r.exx.dim();
        Ok(Reply::new()
            .json("summary", &summary)
            .json("width", &width)
            .json("height", &height)
            .json("limits", &limits)
            .json("displacement_limit", &displacement))
    }

    /// Map `name` (`exx`, `eyy`, `exy`, `rotation`, and `ux`, `uy` when computed).
    fn gpa_map(&self, name: &str) -> Result<&Array2<f32>> {
        let (r, _) = self.shown()?.gpa.as_ref().ok_or_else(|| Error::state("run GPA first"))?;
        let disp = r.displacement.as_ref().map(|[ux, uy]| [("ux", ux), ("uy", uy)]);
        r.maps()
            .into_iter()
            .chain(disp.into_iter().flatten())
            .find(|(n, _)| *n == name)
            .map(|(_, m)| m)
            .ok_or_else(|| Error::invalid(format!("no map called {name} (displacement needs the box ticked)")))
    }

    /// RGBA of map `name` over `±limit`; transparent where there is no measurement.
    pub fn gpa_rgba(&self, name: &str, limit: f32) -> Result<Vec<u8>> {
        let m = self.gpa_map(name)?;
        let mut rgba = to_rgba(m.view(), -limit, limit, Colormap::Rdbu);
        for (px, v) in rgba.chunks_mut(4).zip(m.iter()) {
            if !v.is_finite() {
                px[3] = 0;
            }
        }
        Ok(rgba)
    }

    /// The values of map `name`, row-major (NaN where not measured).
    pub fn gpa_values(&self, name: &str) -> Result<Vec<f32>> {
        Ok(self.gpa_map(name)?.iter().copied().collect())
    }

    /// Map `name` as a calibrated 32-bit float TIFF.
    pub fn gpa_tiff(&self, name: &str) -> Result<Vec<u8>> {
        tiff(self.gpa_map(name)?, &self.image()?.calibration)
    }

    /// Per-column strain at `xs`, `ys` (the Columns panel's, edits included) against the
    /// lattice from the spectrum, or the mean of the columns in `reference`: one array per
    /// [`ColumnStrain::FIELDS`].
    pub fn column_strain(&self, xs: &[f64], ys: &[f64], reference: Option<Region>) -> Result<Reply> {
        let (r, _) = self.shown()?.columns.as_ref().ok_or_else(|| Error::state("find the columns first"))?;
        let l = r
            .lattice
            .as_ref()
            .ok_or_else(|| Error::state("no lattice vectors: the spectrum shows fewer than two fringe directions"))?;
        let pts: Vec<[f64; 2]> = xs.iter().zip(ys).map(|(&x, &y)| [x, y]).collect();
        let s = column_strain(&pts, l.a, l.b, reference)?;
        Ok(ColumnStrain::FIELDS
            .into_iter()
            .fold(Reply::new(), |out, (k, f)| out.f64s(k, s.columns.iter().map(f).collect())))
    }
}

/// The 95th percentile of |m| over the maps' core (at least 1e-4; 0.01 when nothing was measured).
pub(super) fn symmetric_limit(r: &GpaResult, m: &Array2<f32>) -> f64 {
    let c = r.core();
    let mut v: Vec<f32> =
        (c.y0..c.y1).flat_map(|y| (c.x0..c.x1).map(move |x| m[[y, x]].abs())).filter(|v| v.is_finite()).collect();
    if v.is_empty() {
        return 0.01;
    }
    let k = (v.len() - 1) * 95 / 100;
    (*v.select_nth_unstable_by(k, f32::total_cmp).1 as f64).max(1e-4)
}
