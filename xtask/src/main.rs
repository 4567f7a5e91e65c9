//! `cargo xtask`: everything a fresh machine needs, from one command.
//!
//! - `cargo xtask serve [--port N] [--no-isolation]`: install what is missing, build both wasm
//!   bundles, serve `web/` on 127.0.0.1 with COOP/COEP headers.
//! - `cargo xtask test`: install what is missing (incl. Debian's chromium), run `cargo test` for
//!   the workspace, build the wasm bundles, run the Playwright suite in headless Chromium.
//! - `cargo xtask python`: only the Python package's build and tests.
//! - `cargo xtask build`: only the wasm bundles (see `wasm-pack.toml`).
//! - `cargo xtask setup [--browser]`: only the installs.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

mod build;
mod python;
mod serve;
mod setup;

fn main() {
    if let Err(e) = run() {
        eprintln!("xtask: error: {e:#}");
        std::process::exit(1);
    }
}

fn run() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |f: &str| args.iter().any(|a| a == f);
    let value = |f: &str| args.iter().position(|a| a == f).and_then(|i| args.get(i + 1)).cloned();
    let root = root();
    std::env::set_current_dir(&root)?;
    match args.first().map(String::as_str) {
        Some("setup") => setup::ensure(&root, flag("--browser")),
        Some("build") => {
            setup::ensure(&root, false)?;
            build::wasm(&root)
        }
        Some("serve") => {
            setup::ensure(&root, false)?;
            if !flag("--no-build") {
                build::wasm(&root)?;
            }
            let port: u16 = value("--port").map(|p| p.parse()).transpose().context("--port")?.unwrap_or(8080);
            serve::serve(&root.join("web"), port, !flag("--no-isolation"))
        }
        Some("test") => test(&root),
        Some("e2e") => e2e(&root),
        Some("python") => python::test(&root),
        _ => {
            eprintln!(
                "usage: cargo xtask serve [--port N] [--no-isolation] [--no-build] | test | e2e | python | build | setup [--browser]"
            );
            bail!("unknown or missing command")
        }
    }
}

/// The workspace root (xtask lives one level below it).
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("xtask is inside the workspace").to_path_buf()
}

fn test(root: &Path) -> Result<()> {
    let t0 = Instant::now();
    setup::ensure(root, true)?;
    step("cargo fmt --check", || run_cmd(Command::new("cargo").args(["fmt", "--all", "--check"])))?;
    step("cargo clippy (native, -D warnings)", || {
        run_cmd(Command::new("cargo").args(["clippy", "--workspace", "--all-targets", "--", "-D", "warnings"]))
    })?;
    step("cargo clippy (wasm32 engine, -D warnings)", || {
        run_cmd(Command::new("cargo").args([
            "clippy",
            "-p",
            "atomlens-wasm",
            "--target",
            "wasm32-unknown-unknown",
            "--",
            "-D",
            "warnings",
        ]))
    })?;
    step("cargo doc (no warnings)", || {
        run_cmd(Command::new("cargo").args(["doc", "--workspace", "--no-deps"]).env("RUSTDOCFLAGS", "-D warnings"))
    })?;
    // Licences (nothing GPL may become a dependency), bans and sources. Advisories need the
    // RustSec database from GitHub, which this machine cannot reach.
    step("cargo deny check licenses bans sources", || {
        run_cmd(Command::new("cargo").args(["deny", "check", "licenses", "bans", "sources"]))
    })?;
    // Debug (overflow checks, debug assertions) for everything but the cross-crate science suite
    // against ../shared, which runs optimised below with core and io as users run them (a
    // release-only miscompile was caught this way; the heaviest core tests are release-only).
    step("cargo test --workspace (debug)", || {
        run_cmd(Command::new("cargo").args(["test", "--workspace", "--exclude", "atomlens-tests"]))
    })?;
    step("cargo test --release (core, io, shared science)", || {
        run_cmd(Command::new("cargo").args([
            "test",
            "--release",
            "-p",
            "atomlens-core",
            "-p",
            "atomlens-io",
            "-p",
            "atomlens-tests",
        ]))
    })?;
    python::test(root)?;
    build::wasm(root)?;
    e2e(root)?;
    eprintln!("xtask: all tests passed in {:.0} s", t0.elapsed().as_secs_f64());
    Ok(())
}

fn e2e(root: &Path) -> Result<()> {
    step("browser end-to-end (Playwright + Chromium)", || {
        run_cmd(Command::new("node").args(["--test", "--test-concurrency=1", "tests/e2e/"]).current_dir(root))
    })
}

/// Run `f`, printing its name and duration.
pub fn step(name: &str, f: impl FnOnce() -> Result<()>) -> Result<()> {
    eprintln!("xtask: ── {name}");
    let t = Instant::now();
    f().with_context(|| format!("step failed: {name}"))?;
    eprintln!("xtask: ── {name}: done in {:.1} s", t.elapsed().as_secs_f64());
    Ok(())
}

/// Run a command, failing on a non-zero exit.
pub fn run_cmd(cmd: &mut Command) -> Result<()> {
    let shown = format!("{cmd:?}");
    let status = cmd.status().with_context(|| format!("cannot start {shown}"))?;
    if !status.success() {
        bail!("{shown} exited with {status}");
    }
    Ok(())
}

/// A command's stdout, or `None` when it cannot run.
pub fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.output().ok()?;
    out.status.success().then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}
