//! Loading a file from disk together with the companions its format needs (TIA: `x.emi` and
//! `x_N.ser` live side by side and are only complete together).
use std::path::Path;

use anyhow::Result;
use atomlens_io::NamedFile;

use crate::read_named;

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
