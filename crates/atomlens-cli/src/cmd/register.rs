//! `atomlens register`: drift correction of a series (the frames of one file, or the first frames
//! of several files), rigid or with a smooth scan-distortion field per frame (`--nonrigid`), and
//! its aligned average, with the drift per frame.
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use atomlens_core::Image;
use atomlens_core::register::nonrigid::{NonrigidParams, register_series_nonrigid};
use atomlens_core::register::{Registered, register_series};

/// The options; also read from JSON by name (the Python package's keyword arguments), where
/// the file arguments are not options.
#[derive(clap::Args, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Args {
    /// One multi-frame file, or several single images of the same size.
    #[arg(required = true)]
    #[serde(skip)]
    files: Vec<PathBuf>,
    /// Where to write the aligned average (32-bit float TIFF, calibration of the first frame).
    #[arg(long)]
    #[serde(skip)]
    out: PathBuf,
    /// Also write the drift per frame as CSV (`frame,dx,dy` in px; with `--nonrigid` also
    /// `field_rms`, the RMS of the frame's distortion field).
    #[arg(long)]
    #[serde(skip)]
    drift: Option<PathBuf>,
    /// Also remove scan distortions: a smooth displacement field per frame, from tiles
    /// correlated with the average.
    #[arg(long)]
    #[serde(default)]
    nonrigid: bool,
    /// Non-rigid tile side in px (default: four lattice spacings, 32–128).
    #[arg(long, requires = "nonrigid")]
    tile: Option<usize>,
}

impl Args {
    /// Register `frames`: the drift, the aligned average and, with `nonrigid`, each frame's
    /// distortion-field RMS.
    pub fn register(&self, frames: &[ndarray::ArrayView2<f32>]) -> Result<(Registered, Option<Vec<f64>>)> {
        Ok(if self.nonrigid {
            let n = register_series_nonrigid(frames, &NonrigidParams { tile: self.tile, ..Default::default() })?;
            (n.registered, Some(n.fields.iter().map(|f| f.rms()).collect()))
        } else {
            (register_series(frames)?, None)
        })
    }
}

pub fn run(a: Args) -> Result<()> {
    let frames: Vec<Image> = if let [one] = a.files.as_slice() {
        let s = crate::files::load(one)?;
        (0..s[0].frames).map(|t| s[0].frame(t)).collect::<Result<_, _>>()?
    } else {
        a.files.iter().map(|f| Ok(crate::files::load(f)?[0].frame(0)?)).collect::<Result<_>>()?
    };
    if frames.len() < 2 {
        bail!("{} has one frame: registration needs a series (a stack, or several files)", a.files[0].display());
    }
    let t = Instant::now();
    let views: Vec<_> = frames.iter().map(|f| f.view()).collect();
    let (r, field_rms) = a.register(&views)?;
    let (h, w) = r.average.dim();
    let max = r.shifts.iter().map(|s| s[0].hypot(s[1])).fold(0.0, f64::max);
    eprintln!(
        "{} frames of {w}×{h} registered in {:.2} s; largest drift {max:.2} px from the mean position{}",
        frames.len(),
        t.elapsed().as_secs_f64(),
        field_rms.as_ref().map_or(String::new(), |f| format!(
            "; distortion fields up to {:.2} px RMS",
            f.iter().copied().fold(0.0, f64::max)
        ))
    );
    let px: Vec<f32> = r.average.iter().copied().collect();
    let bytes = atomlens_io::formats::tiff::write_f32(w, h, &px, &frames[0].calibration)?;
    std::fs::write(&a.out, bytes).with_context(|| format!("writing {}", a.out.display()))?;
    if let Some(path) = &a.drift {
        let mut f = std::fs::File::create(path).with_context(|| format!("writing {}", path.display()))?;
        writeln!(f, "frame,dx,dy{}", if field_rms.is_some() { ",field_rms" } else { "" })?;
        for (k, s) in r.shifts.iter().enumerate() {
            let extra = field_rms.as_ref().map_or(String::new(), |f| format!(",{:.4}", f[k]));
            writeln!(f, "{k},{:.4},{:.4}{extra}", s[0], s[1])?;
        }
    }
    Ok(())
}
