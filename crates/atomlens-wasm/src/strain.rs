//! GPA bindings: run on the current image, render the maps (red–blue, symmetric limits, no
//! colour where a fringe is absent), raw values for profiles, TIFF export, the self-test.
use atomlens_core::image::render::{Colormap, to_rgba};
use atomlens_core::strain::columns::column_strain;
use atomlens_core::strain::gpa::{GpaParams, GpaResult, analyse, self_test};
use js_sys::{Float32Array, Float64Array, Uint8Array};
use wasm_bindgen::prelude::*;

use crate::{Session, err, to_js};

#[derive(serde::Serialize)]
struct GpaReply {
    summary: atomlens_core::strain::gpa::GpaSummary,
    width: usize,
    height: usize,
    /// Default colour limit per map: the 95th percentile of |value| over the core (the particle
    /// edges, where fringes fade, would otherwise set it).
    limits: [f64; 4],
    /// Colour limit for the displacement maps (px), when they were computed.
    displacement_limit: Option<f64>,
}

#[wasm_bindgen]
impl Session {
    /// GPA of the current image with `params` (see `gpa_defaults`); keeps the maps.
    pub fn analyse(&mut self, params: JsValue) -> Result<JsValue, JsError> {
        let p: GpaParams = serde_wasm_bindgen::from_value(params).map_err(err)?;
        let img = self.image()?;
        let r = analyse(img.view(), &p).map_err(err)?;
        let cal = &img.calibration;
        let summary = r.summary(p.refine, cal.is_calibrated().then_some(cal.pixel_size));
        let limits = r.maps().map(|(_, m)| symmetric_limit(&r, m));
        let displacement_limit =
            r.displacement.as_ref().map(|[ux, uy]| symmetric_limit(&r, ux).max(symmetric_limit(&r, uy)));
        let (height, width) = r.exx.dim();
        self.gpa = Some(r);
        to_js(&GpaReply { summary, width, height, limits, displacement_limit })
    }

    /// RGBA of map `name` (`exx`, `eyy`, `exy`, `rotation`) over `±limit`; transparent where
    /// there is no measurement.
    pub fn gpa_map(&self, name: &str, limit: f32) -> Result<Uint8Array, JsError> {
        let m = self.gpa_map_values(name)?;
        let mut rgba = to_rgba(m.view(), -limit, limit, Colormap::Rdbu);
        for (px, v) in rgba.chunks_mut(4).zip(m.iter()) {
            if !v.is_finite() {
                px[3] = 0;
            }
        }
        Ok(Uint8Array::from(&rgba[..]))
    }

    /// The values of map `name`, row-major (NaN where not measured).
    pub fn gpa_values(&self, name: &str) -> Result<Float32Array, JsError> {
        let m = self.gpa_map_values(name)?;
        Ok(Float32Array::from(&m.iter().copied().collect::<Vec<_>>()[..]))
    }

    /// Map `name` as a calibrated 32-bit float TIFF.
    pub fn gpa_tiff(&self, name: &str) -> Result<Uint8Array, JsError> {
        let m = self.gpa_map_values(name)?;
        let (h, w) = m.dim();
        let cal = &self.image()?.calibration;
        let bytes =
            atomlens_io::formats::tiff::write_f32(w, h, &m.iter().copied().collect::<Vec<_>>(), cal).map_err(err)?;
        Ok(Uint8Array::from(&bytes[..]))
    }

    /// Per-column strain at positions `xs`, `ys` (the Columns panel's, edits included) against
    /// the lattice from the spectrum, or the mean of the columns in `reference` (a region or
    /// null): `{exx, eyy, exy, rotation, ux, uy}` as Float64Arrays.
    pub fn column_strain(&self, xs: Vec<f64>, ys: Vec<f64>, reference: JsValue) -> Result<JsValue, JsError> {
        let (r, _) = self.columns.as_ref().ok_or_else(|| JsError::new("find columns first"))?;
        let l = r
            .lattice
            .as_ref()
            .ok_or_else(|| JsError::new("no lattice vectors: the spectrum shows fewer than two fringe directions"))?;
        let reference: Option<atomlens_core::image::Region> = serde_wasm_bindgen::from_value(reference).map_err(err)?;
        let pts: Vec<[f64; 2]> = xs.iter().zip(&ys).map(|(&x, &y)| [x, y]).collect();
        let s = column_strain(&pts, l.a, l.b, reference).map_err(err)?;
        let out = js_sys::Object::new();
        for (k, f) in atomlens_core::strain::columns::ColumnStrain::FIELDS {
            let v: Vec<f64> = s.columns.iter().map(f).collect();
            js_sys::Reflect::set(&out, &k.into(), &Float64Array::from(&v[..]).into()).map_err(crate::js)?;
        }
        Ok(out.into())
    }

    fn gpa_map_values(&self, name: &str) -> Result<&ndarray::Array2<f32>, JsError> {
        let r = self.gpa.as_ref().ok_or_else(|| JsError::new("run GPA first"))?;
        let disp = r.displacement.as_ref().map(|[ux, uy]| [("ux", ux), ("uy", uy)]);
        r.maps()
            .into_iter()
            .chain(disp.into_iter().flatten())
            .find(|(n, _)| *n == name)
            .map(|(_, m)| m)
            .ok_or_else(|| JsError::new(&format!("no map called {name} (displacement needs the box ticked)")))
    }
}

fn symmetric_limit(r: &GpaResult, m: &ndarray::Array2<f32>) -> f64 {
    let c = r.core();
    let mut v: Vec<f32> =
        (c.y0..c.y1).flat_map(|y| (c.x0..c.x1).map(move |x| m[[y, x]].abs())).filter(|v| v.is_finite()).collect();
    if v.is_empty() {
        return 0.01;
    }
    let k = (v.len() - 1) * 95 / 100;
    (*v.select_nth_unstable_by(k, f32::total_cmp).1 as f64).max(1e-4)
}

/// Default GPA parameters (the page's starting values).
#[wasm_bindgen]
pub fn gpa_defaults() -> Result<JsValue, JsError> {
    to_js(&GpaParams::default())
}

/// Run the synthetic self-test cases; each check carries truth, measured value and tolerance.
#[wasm_bindgen]
pub fn gpa_self_test() -> Result<JsValue, JsError> {
    let cases = self_test().map_err(err)?;
    to_js(&cases)
}
