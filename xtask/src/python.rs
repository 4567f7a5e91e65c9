//! The Python package (`crates/atomlens-py`): a venv of its own under `target/py-venv`, the
//! wheel built into it by maturin, and its pytest suite run against the release CLI.
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Result, bail};

use crate::{output, run_cmd, step};

const REQUIREMENTS: &str = "crates/atomlens-py/requirements-test.txt";

/// The venv's Python, created and filled from the requirements when they changed.
fn venv(root: &Path) -> Result<PathBuf> {
    let venv = root.join("target/py-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        step("python3 -m venv target/py-venv", || {
            if run_cmd(Command::new("python3").args(["-m", "venv"]).arg(&venv)).is_ok() {
                return Ok(());
            }
            // Debian's python3 has no venv module without python3-venv.
            if output(Command::new("id").arg("-u")).is_none_or(|u| u.trim() != "0") {
                bail!("python3 cannot make a venv: run `sudo apt-get install -y python3-venv` once");
            }
            run_cmd(Command::new("apt-get").args(["install", "-y", "-q", "python3-venv"]))?;
            run_cmd(Command::new("python3").args(["-m", "venv"]).arg(&venv))
        })?;
    }
    let wanted = std::fs::read_to_string(root.join(REQUIREMENTS))?;
    let stamp = venv.join("atomlens-requirements.txt");
    if std::fs::read_to_string(&stamp).ok().as_deref() != Some(wanted.as_str()) {
        step("pip install the Python package's build and test requirements (once)", || {
            run_cmd(Command::new(&python).args(["-m", "pip", "install", "-q", "-r"]).arg(root.join(REQUIREMENTS)))
        })?;
        std::fs::write(&stamp, wanted)?;
    }
    Ok(python)
}

/// Build the wheel into the venv and run its tests against the release CLI.
pub fn test(root: &Path) -> Result<()> {
    let python = venv(root)?;
    let bin = python.parent().map(Path::to_path_buf).unwrap_or_default();
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap_or_default());
    step("maturin develop --release (the atomlens Python package)", || {
        run_cmd(
            Command::new(bin.join("maturin"))
                .args(["develop", "--release", "-q", "-m", "crates/atomlens-py/Cargo.toml"])
                .env("VIRTUAL_ENV", root.join("target/py-venv"))
                .env("PATH", &path),
        )
    })?;
    step("cargo build --release -p atomlens-cli (what pytest compares with)", || {
        run_cmd(Command::new("cargo").args(["build", "--release", "-p", "atomlens-cli"]))
    })?;
    step("pytest crates/atomlens-py (every function against the CLI; a Dask LocalCluster)", || {
        run_cmd(
            Command::new(&python)
                .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "crates/atomlens-py/tests"])
                .env("ATOMLENS_CLI", root.join("target/release/atomlens")),
        )
    })
}
