//! Install what is missing, idempotently: each step first checks whether it is needed.
use std::path::Path;
use std::process::Command;

use anyhow::{Result, bail};

use crate::{output, run_cmd, step};

const WASM_BINDGEN: &str = "0.2.130";
const CARGO_DENY: &str = "0.20.2";

/// Rust targets, wasm-bindgen-cli; with `browser` (the test pipeline), also cargo-deny,
/// Debian's Chromium, Mesa's software Vulkan and the e2e suite's npm packages.
pub fn ensure(root: &Path, browser: bool) -> Result<()> {
    for toolchain in ["stable", "nightly"] {
        let installed =
            output(Command::new("rustup").args(["target", "list", "--installed", "--toolchain", toolchain]))
                .unwrap_or_default();
        if !installed.lines().any(|l| l.trim() == "wasm32-unknown-unknown") {
            step(&format!("rustup: wasm32 target for {toolchain}"), || {
                run_cmd(Command::new("rustup").args(["toolchain", "install", toolchain, "--profile", "minimal"]))?;
                run_cmd(Command::new("rustup").args([
                    "target",
                    "add",
                    "wasm32-unknown-unknown",
                    "--toolchain",
                    toolchain,
                ]))
            })?;
        }
    }
    let components =
        output(Command::new("rustup").args(["component", "list", "--installed", "--toolchain", "nightly"]))
            .unwrap_or_default();
    if !components.lines().any(|l| l.starts_with("rust-src")) {
        step("rustup: rust-src for nightly (build-std)", || {
            run_cmd(Command::new("rustup").args(["component", "add", "rust-src", "--toolchain", "nightly"]))
        })?;
    }
    if output(Command::new("cargo").args(["fmt", "--version"])).is_none()
        || output(Command::new("cargo").args(["clippy", "--version"])).is_none()
    {
        step("rustup: rustfmt and clippy", || {
            run_cmd(Command::new("rustup").args(["component", "add", "rustfmt", "clippy"]))
        })?;
    }
    let have = output(Command::new("wasm-bindgen").arg("--version")).unwrap_or_default();
    if have.trim() != format!("wasm-bindgen {WASM_BINDGEN}") {
        // Without --locked: the registry here lacks a version its lock file pins (toolchain.md).
        step(&format!("cargo install wasm-bindgen-cli {WASM_BINDGEN} (about 4 min, once)"), || {
            run_cmd(Command::new("cargo").args(["install", "wasm-bindgen-cli", "--version", WASM_BINDGEN]))
        })?;
    }
    // The page's plotting library (vendored into web/pkg/vendor by the build).
    if !root.join("web/node_modules/echarts").is_dir() {
        step("npm ci (web: echarts)", || {
            run_cmd(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(root.join("web")))
        })?;
    }
    if browser {
        let have = output(Command::new("cargo").args(["deny", "--version"])).unwrap_or_default();
        if have.trim() != format!("cargo-deny {CARGO_DENY}") {
            step(&format!("cargo install cargo-deny {CARGO_DENY} (about 2 min, once)"), || {
                run_cmd(Command::new("cargo").args(["install", "cargo-deny", "--locked", "--version", CARGO_DENY]))
            })?;
        }
        ensure_debian_packages()?;
        if !root.join("tests/e2e/node_modules/playwright-core").is_dir() {
            step("npm ci (tests/e2e: playwright-core)", || {
                run_cmd(Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(root.join("tests/e2e")))
            })?;
        }
    }
    Ok(())
}

fn ensure_debian_packages() -> Result<()> {
    const PKGS: [&str; 4] = ["chromium", "chromium-driver", "mesa-vulkan-drivers", "libvulkan1"];
    let missing: Vec<&str> = PKGS
        .iter()
        .copied()
        .filter(|p| {
            output(Command::new("dpkg-query").args(["-W", "-f=${Status}", p]))
                .is_none_or(|s| !s.contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if output(Command::new("id").arg("-u")).is_none_or(|u| u.trim() != "0") {
        bail!("missing Debian packages {missing:?}: run `sudo apt-get install -y {}` once", missing.join(" "));
    }
    step(&format!("apt-get install {}", missing.join(" ")), || {
        run_cmd(Command::new("apt-get").args(["update", "-q"]))?;
        run_cmd(
            Command::new("apt-get")
                .args(["install", "-y", "-q", "--no-install-recommends"])
                .args(&missing)
                .env("DEBIAN_FRONTEND", "noninteractive"),
        )
    })
}
