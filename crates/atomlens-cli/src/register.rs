//! `atomlens register`: rigid drift correction of a series (the frames of one file, or the
//! first frames of several files) and its aligned average, with the drift per frame.
use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use atomlens_core::Image;
use atomlens_core::register::register_series;

#[derive(clap::Args)]
pub struct Args {
    /// One multi-frame file, or several single images of the same size.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Where to write the aligned average (32-bit float TIFF, calibration of the first frame).
    #[arg(long)]
    out: PathBuf,
    /// Also write the drift per frame as CSV (`frame,dx,dy` in px).
    #[arg(long)]
    drift: Option<PathBuf>,
}

pub fn run(a: Args) -> Result<()> {
    let frames: Vec<Image> = if let [one] = a.files.as_slice() {
        let s = crate::load(one)?;
        (0..s[0].frames).map(|t| s[0].frame(t)).collect::<Result<_, _>>()?
    } else {
        a.files.iter().map(|f| Ok(crate::load(f)?[0].frame(0)?)).collect::<Result<_>>()?
    };
    if frames.len() < 2 {
        bail!("{} has one frame: registration needs a series (a stack, or several files)", a.files[0].display());
    }
    let t = Instant::now();
    let views: Vec<_> = frames.iter().map(|f| f.view()).collect();
    let r = register_series(&views)?;
    let (h, w) = r.average.dim();
    let max = r.shifts.iter().map(|s| s[0].hypot(s[1])).fold(0.0, f64::max);
    eprintln!(
        "{} frames of {w}×{h} registered in {:.2} s; largest drift {max:.2} px from the mean position",
        frames.len(),
        t.elapsed().as_secs_f64()
    );
    let px: Vec<f32> = r.average.iter().copied().collect();
    let bytes = atomlens_io::tiff_io::write_f32(w, h, &px, &frames[0].calibration)?;
    std::fs::write(&a.out, bytes).with_context(|| format!("writing {}", a.out.display()))?;
    if let Some(path) = &a.drift {
        let mut f = std::fs::File::create(path).with_context(|| format!("writing {}", path.display()))?;
        writeln!(f, "frame,dx,dy")?;
        for (k, s) in r.shifts.iter().enumerate() {
            writeln!(f, "{k},{:.4},{:.4}", s[0], s[1])?;
        }
    }
    Ok(())
}
