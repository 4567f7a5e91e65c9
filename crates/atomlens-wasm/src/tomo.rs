//! Tomography bindings: a phantom tilt series for demos and teaching, reconstruction in steps of
//! slices (the worker reports progress between them), orthoslices and a rotatable re-projection
//! of the volume, a threshold overlay, and MRC export.
use atomlens_core::image::render::to_rgba;
use atomlens_core::tomo::phantom::{Phantom, phantom, tilt_range, tilt_series};
use atomlens_core::tomo::project::Geometry;
use atomlens_core::tomo::{Algorithm, MAX_BROWSER_VOXELS, Plan, Preparation, TiltSeries, Volume};
use atomlens_core::{Calibration, Stack};
use atomlens_io::Metadata;
use js_sys::{Float64Array, Uint8Array};
use ndarray::{Array2, Axis, s};
use wasm_bindgen::prelude::*;

use crate::{Session, SignalInfo, err, js, to_js};

/// The volume being reconstructed or shown, with the voxel size.
pub(crate) struct Tomo {
    plan: Option<Plan>,
    volume: Option<Volume>,
    calibration: Calibration,
}

#[derive(serde::Serialize)]
struct VolumeReply {
    nx: usize,
    ny: usize,
    nz: usize,
    /// Display limits: 0.5th and 99.5th percentiles of the voxels.
    lo: f32,
    hi: f32,
    voxel_nm: Option<f64>,
}

#[wasm_bindgen]
impl Session {
    /// Append the tilt series of a phantom (`faceted_particle`, `core_shell`, `shepp_logan`,
    /// `cluster`) of `n`³ voxels, `count` tilts from `start` to `end` degrees, about an axis
    /// turned by `axis_deg` from y, with Poisson noise at `dose` counts per unit density (0 =
    /// none): `{signals, index, angles}`.
    #[allow(clippy::too_many_arguments)]
    pub fn tomo_demo(
        &mut self,
        kind: &str,
        n: usize,
        start: f64,
        end: f64,
        count: usize,
        dose: f64,
        axis_deg: f64,
    ) -> Result<JsValue, JsError> {
        let kind: Phantom = serde_wasm_bindgen::from_value(JsValue::from_str(kind)).map_err(err)?;
        if !(16..=256).contains(&n) || !(2..=361).contains(&count) {
            return Err(JsError::new(&format!("phantom size {n} (16–256) or tilt count {count} (2–361) out of range")));
        }
        let angles = tilt_range(start, end, count);
        let vol = phantom(kind, n);
        let mut series = tilt_series(&vol, &angles, None, 1);
        if axis_deg != 0.0 {
            series = atomlens_core::tomo::axis::make_vertical(series.view(), -axis_deg);
        }
        if dose > 0.0 {
            atomlens_core::tomo::phantom::add_poisson(&mut series, dose, 1);
        }
        let cal = Calibration::nm(0.05);
        let info = SignalInfo {
            title: format!("tilt series of a {kind:?} phantom ({start}° to {end}°, {count} tilts)"),
            width: n,
            height: n,
            frames: count,
            dtype: "float32",
            pixel_size: cal.pixel_size,
            unit: cal.unit.clone(),
            metadata: Metadata {
                format: "atomlens synthetic".into(),
                notes: vec![format!(
                    "tilt axis {axis_deg}° from y; angles {start}° + k·{}°",
                    (end - start) / (count - 1) as f64
                )],
                tilt_angles_deg: Some(angles.clone()),
                ..Metadata::default()
            },
        };
        let stack = Stack::from_vec(n, n, count, series.into_raw_vec_and_offset().0, cal).map_err(err)?;
        self.stacks.push(stack);
        self.infos.push(info);
        let index = self.stacks.len() - 1;
        let out = self.signals_reply(index)?;
        js_sys::Reflect::set(&out, &"angles".into(), &Float64Array::from(&angles[..]).into()).map_err(js)?;
        Ok(out.into())
    }

    /// Prepare the reconstruction of signal `signal` (a tilt series) at `angles` (degrees) with
    /// `method` (see `core::tomo::Algorithm`), `thickness` px (0 = the width), prepared by `prep`
    /// (`core::tomo::Preparation`: `{align, axis, stretch}`): `{nx, ny, nz, shifts, axis_deg,
    /// axis_contrast, notes, aligned, signals}`.
    pub fn tomo_begin(
        &mut self,
        signal: usize,
        angles: Vec<f64>,
        method: JsValue,
        thickness: usize,
        prep: JsValue,
    ) -> Result<JsValue, JsError> {
        let method: Algorithm = serde_wasm_bindgen::from_value(method).map_err(err)?;
        let prep: Preparation = serde_wasm_bindgen::from_value(prep).map_err(err)?;
        let stack = self.stacks.get(signal).ok_or_else(|| JsError::new(&format!("no signal {signal}")))?;
        let (_, ny, nx) = stack.frames.dim();
        let nz = if thickness == 0 { nx } else { thickness };
        let series = TiltSeries { images: stack.frames.view(), angles_deg: &angles };
        atomlens_core::tomo::check(&series).map_err(err)?;
        let voxels = nx * ny * nz;
        if voxels > MAX_BROWSER_VOXELS {
            return Err(JsError::new(&format!(
                "a {nx}×{ny}×{nz} volume ({:.1} M voxels) is larger than the browser handles (256³ = {:.1} M voxels): bin the series, give a smaller thickness, or use the CLI (atomlens reconstruct)",
                voxels as f64 / 1e6,
                MAX_BROWSER_VOXELS as f64 / 1e6
            )));
        }
        let plan = Plan::new(&series, nz, method, prep).map_err(err)?;
        let calibration = stack.calibration.clone();
        // The aligned series as a signal, to play as a movie with the tilt axis drawn.
        let aligned = if plan.shifts.is_some() || plan.axis_deg != 0.0 {
            let info = SignalInfo {
                title: format!("Aligned tilt series ({})", self.infos[signal].title),
                frames: plan.images().dim().0,
                metadata: Metadata {
                    format: "atomlens alignment".into(),
                    notes: vec!["tilt axis vertical through the image centre".into()],
                    tilt_angles_deg: Some(angles.clone()),
                    ..Metadata::default()
                },
                ..self.infos[signal].clone()
            };
            self.stacks.push(Stack { frames: plan.images().to_owned(), calibration: calibration.clone() });
            self.infos.push(info);
            Some(self.stacks.len() - 1)
        } else {
            None
        };
        let (axis_deg, axis_contrast, notes) = (plan.axis_deg, plan.axis_contrast, plan.notes.clone());
        self.tomo = Some(Tomo { plan: Some(plan), volume: None, calibration });
        #[derive(serde::Serialize)]
        struct Dims<'a> {
            nx: usize,
            ny: usize,
            nz: usize,
            /// `(dx, dy)` px per projection applied by the alignment.
            shifts: Option<Vec<[f64; 2]>>,
            /// The tilt axis's angle from y the projections were turned from (degrees).
            axis_deg: f64,
            /// Common-line contrast, when the axis was estimated.
            axis_contrast: Option<f64>,
            notes: Vec<String>,
            /// The aligned series' signal, when aligned or turned.
            aligned: Option<usize>,
            signals: &'a [SignalInfo],
        }
        let shifts = self.tomo.as_ref().and_then(|t| t.plan.as_ref()).and_then(|p| p.shifts.clone());
        to_js(&Dims { nx, ny, nz, shifts, axis_deg, axis_contrast, notes, aligned, signals: &self.infos })
    }

    /// Reconstruct the next `count` slices; returns the number done. When all are done the
    /// volume is kept for viewing.
    pub fn tomo_step(&mut self, count: usize) -> Result<usize, JsError> {
        let t = self.tomo.as_mut().ok_or_else(|| JsError::new("no reconstruction started"))?;
        let plan = t.plan.as_mut().ok_or_else(|| JsError::new("the reconstruction is finished"))?;
        let done = plan.step(count);
        if done == plan.dims().1 {
            t.volume = t.plan.take().map(|p| p.volume());
        }
        Ok(done)
    }

    /// The most recent slice of the reconstruction in progress (an xz plane, its own limits):
    /// `{width, height, rgba, y}`, or null before the first.
    pub fn tomo_preview(&self, cmap: &str) -> Result<JsValue, JsError> {
        let Some(plan) = self.tomo.as_ref().and_then(|t| t.plan.as_ref()) else { return Ok(JsValue::NULL) };
        let Some(slice) = plan.last_slice() else { return Ok(JsValue::NULL) };
        let (lo, hi) = slice.iter().fold((f32::MAX, f32::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        let rgba = to_rgba(slice.view(), lo, if hi > lo { hi } else { lo + 1.0 }, crate::colormap(cmap)?);
        let (h, w) = slice.dim();
        let out = slice_reply(w, h, rgba, 0.0)?;
        js_sys::Reflect::set(&out, &"y".into(), &(plan.done() - 1).into()).map_err(js)?;
        Ok(out)
    }

    /// The finished volume's size and display limits.
    pub fn tomo_volume(&self) -> Result<JsValue, JsError> {
        let (v, cal) = self.volume()?;
        let (nx, ny, nz) = v.dims();
        // The volume as one tall image: its x rows of every (z, y).
        let rows = v.data.view().into_shape_with_order((nz * ny, nx)).map_err(err)?;
        let p = atomlens_core::image::stats::percentiles(rows, &[0.5, 99.5]).map_err(err)?;
        let (lo, hi) = (p[0], p[1]);
        to_js(&VolumeReply {
            nx,
            ny,
            nz,
            lo,
            hi: if hi > lo { hi } else { lo + 1.0 },
            voxel_nm: cal.is_calibrated().then_some(cal.pixel_size),
        })
    }

    /// RGBA of an orthoslice: `plane` `xy` (at z = `index`), `xz` (at y) or `yz` (at x, drawn
    /// z across, y down), between `lo` and `hi`; voxels ≥ `threshold` (when finite) tinted
    /// orange: `{width, height, rgba, above}` (`above`: the fraction of the volume ≥ threshold).
    pub fn tomo_slice(
        &self,
        plane: &str,
        index: usize,
        lo: f32,
        hi: f32,
        cmap: &str,
        threshold: f32,
    ) -> Result<JsValue, JsError> {
        let (v, _) = self.volume()?;
        let d = &v.data; // [z, y, x]
        let img: Array2<f32> = match plane {
            "xy" => d.index_axis(Axis(0), index.min(d.dim().0 - 1)).to_owned(),
            "xz" => d.slice(s![.., index.min(d.dim().1 - 1), ..]).to_owned(),
            "yz" => d.slice(s![.., .., index.min(d.dim().2 - 1)]).t().to_owned(),
            other => return Err(JsError::new(&format!("unknown plane {other} (xy, xz, yz)"))),
        };
        let mut rgba = to_rgba(img.view(), lo, hi, crate::colormap(cmap)?);
        if threshold.is_finite() {
            for (px, &val) in rgba.as_chunks_mut::<4>().0.iter_mut().zip(img.iter()) {
                if val >= threshold {
                    px[0] = ((px[0] as u16 + 255) / 2) as u8;
                    px[1] = ((px[1] as u16 + 140) / 2) as u8;
                    px[2] /= 2;
                }
            }
        }
        let above = if threshold.is_finite() {
            d.iter().filter(|&&x| x >= threshold).count() as f64 / d.len() as f64
        } else {
            0.0
        };
        let (h, w) = img.dim();
        slice_reply(w, h, rgba, above)
    }

    /// RGBA of the volume re-projected at `angle` degrees about the tilt axis (a rotatable view):
    /// `{width, height, rgba}`, limits from the projection itself.
    pub fn tomo_projection(&self, angle: f64, cmap: &str) -> Result<JsValue, JsError> {
        let (v, _) = self.volume()?;
        let (nx, ny, nz) = v.dims();
        let g = Geometry::new(nx, nz, &[angle]);
        let mut img = Array2::<f32>::zeros((ny, nx));
        for y in 0..ny {
            let sl: Vec<f32> = v.data.slice(s![.., y, ..]).iter().copied().collect();
            g.forward_tilt(0, &sl, img.row_mut(y).as_slice_mut().expect("contiguous"));
        }
        let (lo, hi) = img.iter().fold((f32::MAX, f32::MIN), |(a, b), &x| (a.min(x), b.max(x)));
        let rgba = to_rgba(img.view(), lo, if hi > lo { hi } else { lo + 1.0 }, crate::colormap(cmap)?);
        slice_reply(nx, ny, rgba, 0.0)
    }

    /// The volume as an MRC file (32-bit float, voxel size from the series).
    pub fn tomo_mrc(&self) -> Result<Uint8Array, JsError> {
        let (v, cal) = self.volume()?;
        let (nx, ny, nz) = v.dims();
        let voxels: Vec<f32> = v.data.iter().copied().collect();
        let label = concat!("atomlens ", env!("CARGO_PKG_VERSION"), " reconstruction");
        let bytes = atomlens_io::formats::mrc::write_f32(nx, ny, nz, &voxels, cal, label).map_err(err)?;
        Ok(Uint8Array::from(&bytes[..]))
    }
}

impl Session {
    fn volume(&self) -> Result<(&Volume, &Calibration), JsError> {
        let t = self.tomo.as_ref().ok_or_else(|| JsError::new("no volume: reconstruct a tilt series first"))?;
        let v = t.volume.as_ref().ok_or_else(|| JsError::new("the reconstruction is not finished"))?;
        Ok((v, &t.calibration))
    }
}

fn slice_reply(width: usize, height: usize, rgba: Vec<u8>, above: f64) -> Result<JsValue, JsError> {
    let out = js_sys::Object::new();
    let set = |k: &str, v: JsValue| js_sys::Reflect::set(&out, &k.into(), &v).map(|_| ()).map_err(js);
    set("width", width.into())?;
    set("height", height.into())?;
    set("above", above.into())?;
    set("rgba", Uint8Array::from(&rgba[..]).into())?;
    Ok(out.into())
}
