//! `atomlens gpa`: strain maps by geometric phase analysis, written as calibrated 32-bit TIFFs
//! plus `gpa.json` (g-vectors, mask, reference region, statistics).
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Result, bail};
use atomlens_core::image::Region;
use atomlens_core::strain::gpa::{GpaParams, GpaResult, MaskShape, analyse};
use atomlens_core::{Calibration, Recipe};

use crate::args::{pair, region, serde_name};
use crate::files::{out_dir, write};

/// The options; also read from JSON by name (the Python package's keyword arguments), where
/// the file arguments are not options.
#[derive(clap::Args, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// The image (first signal, first frame).
    #[serde(skip)]
    image: PathBuf,
    /// First g-vector `gx,gy` in cycles/px (default: picked from the spectrum). Needs --g2.
    #[arg(long, value_parser = pair, allow_hyphen_values = true)]
    g1: Option<[f64; 2]>,
    /// Second g-vector `gx,gy` in cycles/px.
    #[arg(long, value_parser = pair, allow_hyphen_values = true)]
    g2: Option<[f64; 2]>,
    /// Mask radius as a fraction of the shorter |g| (Gaussian σ is half of it).
    #[arg(long, default_value_t = GpaParams::default().mask_radius)]
    #[serde(default = "mask_radius")]
    mask_radius: f64,
    /// Mask shape: gaussian or cosine (default: gaussian).
    #[arg(long, value_parser = serde_name::<MaskShape>)]
    mask: Option<MaskShape>,
    /// Reference region `x0,y0,x1,y1` in px (default: the image inside the border band).
    #[arg(long, value_parser = region, allow_hyphen_values = true)]
    #[serde(default, deserialize_with = "crate::args::region_list")]
    reference: Option<Region>,
    /// Keep the given g-vectors as the reference lattice instead of refining them on the region.
    #[arg(long)]
    #[serde(default)]
    no_refine: bool,
    /// Strain frame: direction of its x axis in degrees from +x towards +y (image rows down).
    #[arg(long, default_value_t = 0.0, allow_hyphen_values = true)]
    #[serde(default)]
    frame_angle: f64,
    /// Also write the displacement field ux.tif, uy.tif (px, from the unwrapped phases).
    #[arg(long)]
    #[serde(default)]
    displacement: bool,
    /// Output folder for exx.tif, eyy.tif, exy.tif, rotation.tif and gpa.json.
    #[arg(long)]
    #[serde(skip)]
    out: Option<PathBuf>,
}

fn mask_radius() -> f64 {
    GpaParams::default().mask_radius
}

impl Args {
    /// The core's parameters with these options set.
    pub fn params(&self) -> Result<GpaParams> {
        let g = match (self.g1, self.g2) {
            (Some(g1), Some(g2)) => Some([g1, g2]),
            (None, None) => None,
            _ => bail!("GPA needs two g-vectors: give both --g1 and --g2, or neither to pick them from the spectrum"),
        };
        if self.no_refine && g.is_none() {
            bail!("--no-refine keeps the given g-vectors as the reference lattice: give --g1 and --g2 with it");
        }
        Ok(GpaParams {
            g,
            refine: !self.no_refine,
            mask: self.mask.unwrap_or_default(),
            mask_radius: self.mask_radius,
            reference: self.reference,
            frame_angle: self.frame_angle.to_radians(),
            displacement: self.displacement,
        })
    }
}

pub fn run(a: Args) -> Result<()> {
    let p = a.params()?;
    let signals = crate::files::load(&a.image)?;
    let img = signals[0].frame(0)?;
    let t = Instant::now();
    let r = analyse(img.view(), &p)?;
    let secs = t.elapsed().as_secs_f64();
    let cal = &img.calibration;
    let s = r.summary(p.refine, cal.is_calibrated().then_some(cal.pixel_size));
    for (k, g) in s.g.iter().enumerate() {
        let nm = g.d_nm.map(|d| format!(" = {d:.4} nm")).unwrap_or_default();
        eprintln!("g{}: ({:+.5}, {:+.5}) /px, d {:.3} px{nm}", k + 1, g.per_px[0], g.per_px[1], g.d_px);
    }
    let rf = s.reference;
    eprintln!(
        "mask {:?} radius {:.5} /px, resolution {:.1} px; border {} px; reference x {}–{}, y {}–{}; {:.0} % of pixels measured; {:.3} s",
        s.mask,
        s.mask_radius_per_px,
        s.resolution_px,
        s.border_px,
        rf.x0,
        rf.x1,
        rf.y0,
        rf.y1,
        100.0 * s.valid_fraction,
        secs
    );
    for (name, st) in &s.stats {
        eprintln!(
            "{name:>8}: core mean {:+.5} ± {:.5}, reference mean {:+.5}",
            st.core_mean, st.core_std, st.reference_mean
        );
    }
    let Some(dir) = a.out else { return Ok(()) };
    write_maps(&dir, &r, &p, cal, &a.image.display().to_string())?;
    let extra = if a.displacement { " ux.tif uy.tif" } else { "" };
    eprintln!("wrote exx.tif eyy.tif exy.tif rotation.tif{extra} gpa.json recipe.json to {}", dir.display());
    Ok(())
}

/// The maps of `r` as calibrated 32-bit TIFFs (`exx`, `eyy`, `exy`, `rotation`, and `ux`, `uy`
/// when computed), `gpa.json` (g-vectors, mask, reference, statistics) and the recipe that made
/// them, into `dir`.
pub fn write_maps(dir: &Path, r: &GpaResult, p: &GpaParams, cal: &Calibration, source: &str) -> Result<()> {
    out_dir(dir)?;
    let (h, w) = r.exx.dim();
    let disp = r.displacement.as_ref().map(|[ux, uy]| [("ux", ux), ("uy", uy)]);
    for (name, map) in r.maps().into_iter().chain(disp.into_iter().flatten()) {
        let px: Vec<f32> = map.iter().copied().collect();
        write(dir, &format!("{name}.tif"), atomlens_io::formats::tiff::write_f32(w, h, &px, cal)?)?;
    }
    let s = r.summary(p.refine, cal.is_calibrated().then_some(cal.pixel_size));
    let json = serde_json::json!({ "source": source, "gpa": s });
    write(dir, "gpa.json", serde_json::to_string_pretty(&json)?)?;
    let recipe = Recipe { strain: Some(p.clone()), ..Default::default() };
    write(dir, "recipe.json", recipe.to_json())
}
