//! `atomlens replay`: run a session saved in the page (`*.atomlens.json`) again on the same
//! files, write its result tables and check every number against the saved ones.
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use atomlens_io::Limits;
use atomlens_session::session::journal::{self, FileRef, sha256_hex};
use atomlens_session::session::{Saved, Session};

use crate::files::{out_dir, write};

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// The saved session (`*.atomlens.json`, from the page's "Save session").
    session: PathBuf,
    /// Where its files are (default: beside the session file). A file is found by its name,
    /// or else by its size and SHA-256 (renamed files are found too).
    #[arg(long)]
    files: Option<PathBuf>,
    /// Folder for the replayed tables (the names the session saved them under) and check.json.
    #[arg(long)]
    out: PathBuf,
}

/// The bytes of `f` from `dir`: by name, else any file there of its size and hash.
fn find(dir: &Path, f: &FileRef) -> Option<Vec<u8>> {
    let same = |b: &[u8]| b.len() as u64 == f.size && sha256_hex(b) == f.sha256;
    if let Ok(b) = std::fs::read(dir.join(&f.name)) {
        return Some(b);
    }
    std::fs::read_dir(dir).ok()?.flatten().find_map(|e| {
        let meta = e.metadata().ok()?;
        (meta.is_file() && meta.len() == f.size).then(|| std::fs::read(e.path()).ok()).flatten().filter(|b| same(b))
    })
}

pub fn replay(a: ReplayArgs) -> Result<()> {
    let text = std::fs::read_to_string(&a.session).with_context(|| format!("reading {}", a.session.display()))?;
    let saved = Saved::from_json(&text)?;
    let dir = a.files.clone().unwrap_or_else(|| a.session.parent().map(Path::to_path_buf).unwrap_or_default());
    let dir = if dir.as_os_str().is_empty() { PathBuf::from(".") } else { dir };
    let t = Instant::now();
    let session = Session::replay(&saved, &mut |f: &FileRef| find(&dir, f), Limits::NATIVE)
        .with_context(|| format!("replaying {} (files looked for in {})", a.session.display(), dir.display()))?;
    let results = session.results();
    out_dir(&a.out)?;
    for (name, table) in &results {
        write(&a.out, name, table)?;
    }
    let check = journal::check(&saved.results, &results);
    write(&a.out, "check.json", serde_json::to_string_pretty(&check)?)?;
    eprintln!(
        "replayed {} steps of {} on {} files in {:.2} s: {}",
        saved.steps.len(),
        saved.software,
        saved.files.len(),
        t.elapsed().as_secs_f64(),
        check.describe()
    );
    if !check.same() {
        bail!("the replay differs from the saved session: {}", check.differences.join("; "));
    }
    Ok(())
}
