//! Helpers shared by the cross-crate tests.
use std::path::PathBuf;

/// `../shared` beside the project (or `$ATOMLENS_SHARED`), when present. Tests that need it
/// print why they skip and return early when this is `None`.
pub fn shared_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("ATOMLENS_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared"));
    dir.join("data").is_dir().then_some(dir)
}

/// Print the skip reason in a way `cargo test` output shows.
pub fn skip(test: &str) {
    eprintln!("SKIPPED {test}: ../shared is absent (set ATOMLENS_SHARED to point at it)");
}

/// The realistic simulated set (`sim/make.py`): `$ATOMLENS_SIM` or `~/.cache/atomlens/sim`,
/// when it has been made. Tests that need it skip with [`skip_sim`] otherwise.
pub fn sim_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("ATOMLENS_SIM")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/atomlens/sim")))?;
    dir.join("carbon.tif").is_file().then_some(dir)
}

/// One image of the simulated set, where it was simulated (the set may be partly made:
/// `python sim/make.py DIR NAME…`).
pub fn sim_file(name: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("ATOMLENS_SIM")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/atomlens/sim")))?;
    let path = dir.join(name);
    path.is_file().then_some(path)
}

/// Print why a test that needs the simulated set skips.
pub fn skip_sim(test: &str) {
    eprintln!("SKIPPED {test}: the simulated set is absent (run `python sim/make.py`, see sim/README.md)");
}

/// The first frame of the first signal of an image file (panics: for tests).
#[allow(clippy::unwrap_used)]
pub fn read_image(path: &std::path::Path) -> atomlens_core::Image {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("image");
    let signals = atomlens_io::read_one(
        atomlens_io::NamedFile::new(name, std::fs::read(path).unwrap()),
        &atomlens_io::Limits::NATIVE,
    )
    .unwrap();
    signals[0].frame(0).unwrap()
}

/// The rows of a CSV file with a header, each split at commas (panics: for tests).
#[allow(clippy::unwrap_used)]
pub fn csv_rows(path: &std::path::Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.trim().to_string()).collect())
        .collect()
}

/// The first two columns of a CSV file with a header as points `[x, y]` (panics: for tests).
#[allow(clippy::unwrap_used)]
pub fn csv_points(path: &std::path::Path) -> Vec<[f64; 2]> {
    csv_rows(path).iter().map(|r| [r[0].parse().unwrap(), r[1].parse().unwrap()]).collect()
}
