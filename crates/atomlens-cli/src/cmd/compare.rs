//! `atomlens compare`: identical-location comparison of a before and an after image.
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use atomlens_core::particles::compare::Comparison;
use atomlens_core::{Calibration, Recipe};
use atomlens_io::tables;

use super::particles::Common;
use crate::files::{load_image, out_dir, write};

#[derive(clap::Args)]
pub struct CompareArgs {
    /// The image before cycling.
    before: PathBuf,
    /// The image of the same area after cycling.
    after: PathBuf,
    #[command(flatten)]
    common: Common,
    /// Folder for columns.csv (kept/lost/new), facets.csv, summary.json and change.tif.
    #[arg(long)]
    out: PathBuf,
}

/// The comparison's tables by file name (`cal`: the before image's).
pub fn compare_tables(c: &Comparison, cal: &Calibration, before: &str, after: &str) -> [(&'static str, String); 3] {
    [
        ("columns.csv", tables::compare_columns_csv(c)),
        ("facets.csv", tables::compare_facets_csv(c, cal)),
        ("summary.json", tables::compare_summary_json(c, cal, before, after)),
    ]
}

pub fn compare(a: CompareArgs) -> Result<()> {
    let before = load_image(&a.before)?;
    let after = load_image(&a.after)?;
    let p = atomlens_core::particles::compare::CompareParams { analysis: a.common.params()?, ..Default::default() };
    let t = Instant::now();
    let c = atomlens_core::particles::compare::compare(&before, &after, &p)?;
    eprintln!("registered and compared in {:.2} s: {}", t.elapsed().as_secs_f64(), c.summary.describe());
    out_dir(&a.out)?;
    let cal = &before.calibration;
    for (name, text) in compare_tables(&c, cal, &a.before.display().to_string(), &a.after.display().to_string()) {
        write(&a.out, name, text)?;
    }
    let (h, w) = before.data.dim();
    let map = atomlens_core::particles::compare::change_map(&c.columns, w, h, c.before.spacing);
    write(&a.out, "change.tif", atomlens_io::formats::tiff::write_f32(w, h, map.as_slice().unwrap_or(&[]), cal)?)?;
    write(&a.out, "recipe.json", Recipe { analysis: p.analysis, ..Default::default() }.to_json())?;
    eprintln!("wrote columns.csv, facets.csv, summary.json, change.tif, recipe.json to {}", a.out.display());
    Ok(())
}
