//! Files on disk: reading an image together with the companions its format needs (TIA: `x.emi`
//! and `x_N.ser` live side by side and are only complete together), and writing results.
use std::path::Path;

use anyhow::{Context, Result};
use atomlens_core::{Calibration, Image};
use atomlens_io::{Limits, NamedFile, Signal};

/// The calibration `--pixel-size` sets for every image read (set once, before any is read).
static CALIBRATION: std::sync::OnceLock<Calibration> = std::sync::OnceLock::new();

/// The `--pixel-size` given, as text the session's calibration step takes.
pub fn calibration_text() -> Option<String> {
    CALIBRATION.get().map(|c| if c.is_calibrated() { format!("{} {}", c.pixel_size, c.unit) } else { "px".into() })
}

/// Give every image read from now on this calibration instead of its file's.
pub fn set_calibration(c: Calibration) {
    let _ = CALIBRATION.set(c);
}

/// Every signal of the file at `path` (with its TIA companions), with `--pixel-size` applied.
pub fn load(path: &Path) -> Result<Vec<Signal>> {
    let (primary, named) = with_companions(path)?;
    let mut signals = atomlens_io::read(&primary, named, &Limits::NATIVE)?;
    if let Some(c) = CALIBRATION.get() {
        for s in &mut signals {
            s.calibration = c.clone();
        }
    }
    Ok(signals)
}

/// The first frame of the first signal of `path`.
pub fn load_image(path: &Path) -> Result<Image> {
    Ok(load(path)?[0].frame(0)?)
}

/// Write `bytes` to `dir/name`.
pub fn write(dir: &Path, name: &str, bytes: impl AsRef<[u8]>) -> Result<()> {
    let p = dir.join(name);
    std::fs::write(&p, bytes).with_context(|| format!("writing {}", p.display()))
}

/// Create the output folder `dir` (and its parents).
pub fn out_dir(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))
}

/// The file name of `p` without its extension (a folder name for its results).
pub fn stem(p: &Path) -> String {
    p.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "image".into())
}

/// Whether `p` names a file type the readers know.
pub fn is_image(p: &Path) -> bool {
    let ext = p.extension().and_then(|e| e.to_str()).map(|e| e.to_ascii_lowercase()).unwrap_or_default();
    matches!(ext.as_str(), "dm3" | "dm4" | "ser" | "emi" | "emd" | "mrc" | "tif" | "tiff" | "png" | "jpg" | "jpeg")
}

/// The primary file name and every file to hand to the reader.
pub fn with_companions(path: &Path) -> Result<(String, Vec<NamedFile>)> {
    let main = read_named(path)?;
    let primary = main.name.clone();
    let mut files = vec![main];
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let sibling_names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| rd.filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).collect())
        .unwrap_or_default();
    let mut all = sibling_names.clone();
    all.push(primary.clone());
    for (p, group) in atomlens_io::group_files(&all) {
        if group.contains(&primary) && group.len() > 1 {
            for name in group.iter().filter(|n| **n != primary) {
                files.push(read_named(&dir.join(name))?);
            }
            // Read through the group's primary (the .ser of a single series).
            return Ok((p, files));
        }
    }
    Ok((primary, files))
}

/// One file from disk, named as the readers want it.
fn read_named(path: &Path) -> Result<NamedFile> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    Ok(NamedFile::new(name, bytes))
}
