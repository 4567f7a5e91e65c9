//! `atomlens convert`: any readable image as a 32-bit float TIFF with its calibration.
use std::path::Path;

use anyhow::{Context, Result, bail};

use crate::files::load;

pub fn convert(path: &Path, out: &Path, which: usize) -> Result<()> {
    let signals = load(path)?;
    let n = signals.len();
    let Some(s) = signals.into_iter().nth(which) else {
        bail!("{} has {n} signal(s); --signal {which} does not exist", path.display());
    };
    let bytes = atomlens_io::formats::tiff::write_f32(s.width, s.height, &s.to_f32(), &s.calibration)?;
    std::fs::write(out, bytes).with_context(|| format!("writing {}", out.display()))?;
    let frames = if s.frames > 1 { format!("×{}", s.frames) } else { String::new() };
    eprintln!(
        "wrote {} ({}×{}{frames} float32, {} {})",
        out.display(),
        s.width,
        s.height,
        s.calibration.pixel_size,
        s.calibration.unit
    );
    Ok(())
}
