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
