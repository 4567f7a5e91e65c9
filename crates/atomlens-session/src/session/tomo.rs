//! Tomography: a phantom tilt series (demos, teaching), reconstruction in steps of slices (the
//! worker reports progress and a live slice between them), orthoslices and a rotatable
//! re-projection of the volume, a threshold overlay, and MRC export.
use atomlens_core::image::render::to_rgba;
use atomlens_core::tomo::phantom::{Phantom, phantom, tilt_range, tilt_series};
use atomlens_core::tomo::project::Geometry;
use atomlens_core::tomo::{Algorithm, MAX_BROWSER_VOXELS, Plan, Preparation, TiltSeries, Volume};
use atomlens_core::{Calibration, Stack};
use atomlens_io::Metadata;
use ndarray::{Array2, Axis, s};

use super::{Session, Signal, SignalInfo, colormap};
use crate::error::{Error, Result};
use crate::reply::Reply;

/// The volume being reconstructed or shown, with the voxel size.
pub struct Tomo {
    plan: Option<Plan>,
    volume: Option<Volume>,
    calibration: Calibration,
}

/// A phantom's tilt series to make.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct PhantomSeries {
    /// Which phantom.
    pub kind: Phantom,
    /// Its side (voxels).
    pub n: usize,
    /// First tilt (degrees).
    pub start: f64,
    /// Last tilt (degrees).
    pub end: f64,
    /// Tilts.
    pub count: usize,
    /// Poisson noise at this many counts per unit density (0: none).
    pub dose: f64,
    /// The tilt axis turned this far from y (degrees).
    #[serde(default)]
    pub axis: f64,
}

impl Session {
    /// Append the tilt series of a phantom: `{signals, index, angles}`.
    pub fn tomo_demo(&mut self, p: &PhantomSeries) -> Result<Reply> {
        let (n, count) = (p.n, p.count);
        if !(16..=256).contains(&n) || !(2..=361).contains(&count) {
            return Err(Error::invalid(format!(
                "phantom size {n} (16–256) or tilt count {count} (2–361) out of range"
            )));
        }
        let angles = tilt_range(p.start, p.end, count);
        let mut series = tilt_series(&phantom(p.kind, n), &angles, None, 1);
        if p.axis != 0.0 {
            series = atomlens_core::tomo::axis::make_vertical(series.view(), -p.axis);
        }
        if p.dose > 0.0 {
            atomlens_core::tomo::phantom::add_poisson(&mut series, p.dose, 1);
        }
        let cal = Calibration::nm(0.05);
        let info = SignalInfo {
            title: format!("tilt series of a {:?} phantom ({}° to {}°, {count} tilts)", p.kind, p.start, p.end),
            width: n,
            height: n,
            frames: count,
            dtype: "float32",
            pixel_size: cal.pixel_size,
            unit: cal.unit.clone(),
            metadata: Metadata {
                format: "atomlens synthetic".into(),
                notes: vec![format!(
                    "tilt axis {}° from y; angles {}° + k·{}°",
                    p.axis,
                    p.start,
                    (p.end - p.start) / (count - 1) as f64
                )],
                tilt_angles_deg: Some(angles.clone()),
                ..Metadata::default()
            },
        };
        let stack = Stack::from_vec(n, n, count, series.into_raw_vec_and_offset().0, cal)?;
        self.signals.push(Signal { stack, info });
        Ok(self.appended(self.signals.len() - 1).f64s("angles", angles))
    }

    /// Prepare the reconstruction of signal `signal` (a tilt series) at `angles` (degrees) with
    /// `method`, `thickness` px (0: the width), prepared by `prep`: `{nx, ny, nz, shifts,
    /// axis_deg, axis_contrast, notes, aligned, signals}` (`aligned`: the aligned series'
    /// signal, appended when the series was aligned or turned).
    pub fn tomo_begin(
        &mut self,
        signal: usize,
        angles: &[f64],
        method: Algorithm,
        thickness: usize,
        prep: Preparation,
    ) -> Result<Reply> {
        let s = self.signals.get(signal).ok_or_else(|| Error::invalid(format!("no signal {signal}")))?;
        let (_, ny, nx) = s.stack.frames.dim();
        let nz = if thickness == 0 { nx } else { thickness };
        let series = TiltSeries { images: s.stack.frames.view(), angles_deg: angles };
        atomlens_core::tomo::check(&series)?;
        let voxels = nx * ny * nz;
        if voxels > MAX_BROWSER_VOXELS {
            return Err(Error {
                kind: "too_large",
                message: format!(
                    "a {nx}×{ny}×{nz} volume ({:.1} M voxels) is larger than the browser handles (256³ = {:.1} M voxels): bin the series, give a smaller thickness, or use the CLI (atomlens reconstruct)",
                    voxels as f64 / 1e6,
                    MAX_BROWSER_VOXELS as f64 / 1e6
                ),
            });
        }
        let plan = Plan::new(&series, nz, method, prep)?;
        let calibration = s.stack.calibration.clone();
        let aligned = if plan.shifts.is_some() || plan.axis_deg != 0.0 {
            let info = SignalInfo {
                title: format!("Aligned tilt series ({})", s.info.title),
                frames: plan.images().dim().0,
                metadata: Metadata {
                    format: "atomlens alignment".into(),
                    notes: vec!["tilt axis vertical through the image centre".into()],
                    tilt_angles_deg: Some(angles.to_vec()),
                    ..Metadata::default()
                },
                ..s.info.clone()
            };
            let stack = Stack { frames: plan.images().to_owned(), calibration: calibration.clone() };
            self.signals.push(Signal { stack, info });
            Some(self.signals.len() - 1)
        } else {
            None
        };
        let out = self
            .signal_list()
            .json("nx", &nx)
            .json("ny", &ny)
            .json("nz", &nz)
            .json("shifts", &plan.shifts)
            .json("axis_deg", &plan.axis_deg)
            .json("axis_contrast", &plan.axis_contrast)
            .json("notes", &plan.notes)
            .json("aligned", &aligned);
        self.tomo = Some(Tomo { plan: Some(plan), volume: None, calibration });
        Ok(out)
    }

    /// Reconstruct the next `count` slices; returns the number done. When all are done the
    /// volume is kept for viewing.
    pub fn tomo_step(&mut self, count: usize) -> Result<usize> {
        let mut plan = self.tomo_take()?;
        plan.step(count);
        self.tomo_put(plan)
    }

    /// Take the reconstruction in progress out, to be worked on elsewhere (the GPU) and put
    /// back with [`Self::tomo_put`].
    pub fn tomo_take(&mut self) -> Result<Plan> {
        let t = self.tomo.as_mut().ok_or_else(|| Error::state("no reconstruction started"))?;
        t.plan.take().ok_or_else(|| Error::state("the reconstruction is finished"))
    }

    /// Put a reconstruction back; returns the slices done. When all are done the volume is kept
    /// for viewing.
    pub fn tomo_put(&mut self, plan: Plan) -> Result<usize> {
        let t = self.tomo.as_mut().ok_or_else(|| Error::state("no reconstruction started"))?;
        let done = plan.done();
        if done == plan.dims().1 {
            t.volume = Some(plan.volume());
        } else {
            t.plan = Some(plan);
        }
        Ok(done)
    }

    /// The most recent slice of the reconstruction in progress (an xz plane, its own limits):
    /// `{width, height, rgba, y}`, or `None` before the first.
    pub fn tomo_preview(&self, cmap: &str) -> Result<Option<Reply>> {
        let Some(plan) = self.tomo.as_ref().and_then(|t| t.plan.as_ref()) else { return Ok(None) };
        let Some(slice) = plan.last_slice() else { return Ok(None) };
        Ok(Some(slice_preview(slice, plan.done() - 1, cmap)?))
    }

    fn volume(&self) -> Result<(&Volume, &Calibration)> {
        let t = self.tomo.as_ref().ok_or_else(|| Error::state("no volume: reconstruct a tilt series first"))?;
        let v = t.volume.as_ref().ok_or_else(|| Error::state("the reconstruction is not finished"))?;
        Ok((v, &t.calibration))
    }

    /// The finished volume's size and display limits (its 0.5th and 99.5th percentiles):
    /// `{nx, ny, nz, lo, hi, voxel_nm}`.
    pub fn tomo_volume(&self) -> Result<Reply> {
        let (v, cal) = self.volume()?;
        let (nx, ny, nz) = v.dims();
        // The volume as one tall image: its x rows of every (z, y).
        let rows = v.data.view().into_shape_with_order((nz * ny, nx)).map_err(|e| Error::invalid(e.to_string()))?;
        let p = atomlens_core::image::stats::percentiles(rows, &[0.5, 99.5])?;
        let (lo, hi) = (p[0], if p[1] > p[0] { p[1] } else { p[0] + 1.0 });
        Ok(Reply::new()
            .json("nx", &nx)
            .json("ny", &ny)
            .json("nz", &nz)
            .json("lo", &lo)
            .json("hi", &hi)
            .json("voxel_nm", &cal.is_calibrated().then_some(cal.pixel_size)))
    }

    /// RGBA of an orthoslice: `plane` `xy` (at z = `index`), `xz` (at y) or `yz` (at x, drawn
    /// z across, y down), between `lo` and `hi`; voxels ≥ `threshold` (when finite) tinted
    /// orange: `{width, height, rgba, above}` (`above`: the fraction of the volume ≥ threshold).
    pub fn tomo_slice(&self, plane: &str, index: usize, lo: f32, hi: f32, cmap: &str, threshold: f32) -> Result<Reply> {
        let (v, _) = self.volume()?;
        let d = &v.data; // [z, y, x]
        let img: Array2<f32> = match plane {
            "xy" => d.index_axis(Axis(0), index.min(d.dim().0 - 1)).to_owned(),
            "xz" => d.slice(s![.., index.min(d.dim().1 - 1), ..]).to_owned(),
            "yz" => d.slice(s![.., .., index.min(d.dim().2 - 1)]).t().to_owned(),
            other => return Err(Error::invalid(format!("unknown plane {other} (xy, xz, yz)"))),
        };
        let mut rgba = to_rgba(img.view(), lo, hi, colormap(cmap)?);
        let mut above = 0.0;
        if threshold.is_finite() {
            for (px, &val) in rgba.as_chunks_mut::<4>().0.iter_mut().zip(img.iter()) {
                if val >= threshold {
                    px[0] = ((px[0] as u16 + 255) / 2) as u8;
                    px[1] = ((px[1] as u16 + 140) / 2) as u8;
                    px[2] /= 2;
                }
            }
            above = d.iter().filter(|&&x| x >= threshold).count() as f64 / d.len() as f64;
        }
        let (h, w) = img.dim();
        Ok(slice_reply(w, h, rgba, above))
    }

    /// RGBA of the volume re-projected at `angle` degrees about the tilt axis (a rotatable view):
    /// `{width, height, rgba}`, limits from the projection itself.
    pub fn tomo_projection(&self, angle: f64, cmap: &str) -> Result<Reply> {
        let (v, _) = self.volume()?;
        let (nx, ny, nz) = v.dims();
        let g = Geometry::new(nx, nz, &[angle]);
        let mut img = Array2::<f32>::zeros((ny, nx));
        for y in 0..ny {
            let sl: Vec<f32> = v.data.slice(s![.., y, ..]).iter().copied().collect();
            g.forward_tilt(0, &sl, img.row_mut(y).as_slice_mut().expect("contiguous"));
        }
        let (lo, hi) = img.iter().fold((f32::MAX, f32::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        let rgba = to_rgba(img.view(), lo, if hi > lo { hi } else { lo + 1.0 }, colormap(cmap)?);
        Ok(slice_reply(nx, ny, rgba, 0.0))
    }

    /// The volume as an MRC file (32-bit float, voxel size from the series).
    pub fn tomo_mrc(&self) -> Result<Vec<u8>> {
        let (v, cal) = self.volume()?;
        let (nx, ny, nz) = v.dims();
        let voxels: Vec<f32> = v.data.iter().copied().collect();
        let label = concat!("atomlens ", env!("CARGO_PKG_VERSION"), " reconstruction");
        Ok(atomlens_io::formats::mrc::write_f32(nx, ny, nz, &voxels, cal, label)?)
    }
}

fn slice_reply(width: usize, height: usize, rgba: Vec<u8>, above: f64) -> Reply {
    Reply::new().json("width", &width).json("height", &height).json("above", &above).u8s("rgba", rgba)
}

/// A slice of a reconstruction in progress drawn with its own limits: `{width, height, rgba, y}`.
pub fn slice_preview(slice: &Array2<f32>, y: usize, cmap: &str) -> Result<Reply> {
    let (lo, hi) = slice.iter().fold((f32::MAX, f32::MIN), |(a, b), &x| (a.min(x), b.max(x)));
    let rgba = to_rgba(slice.view(), lo, if hi > lo { hi } else { lo + 1.0 }, colormap(cmap)?);
    let (h, w) = slice.dim();
    Ok(slice_reply(w, h, rgba, 0.0).json("y", &y))
}
