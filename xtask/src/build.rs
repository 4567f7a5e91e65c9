//! The wasm bundles described in `wasm-pack.toml`: `cargo build` per artifact, then the
//! `wasm-bindgen` CLI into `web/pkg/<name>/`, and `web/pkg/files.json` listing every file for
//! the service worker to precache.
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::{run_cmd, step};

#[derive(Deserialize)]
struct Matrix {
    #[serde(rename = "crate")]
    krate: String,
    out_dir: String,
    artifact: Vec<Artifact>,
}

#[derive(Deserialize)]
struct Artifact {
    name: String,
    toolchain: String,
    features: Vec<String>,
    target_dir: String,
    build_std: Vec<String>,
    rustflags: Vec<String>,
    wasm_opt: bool,
}

/// Build every artifact.
pub fn wasm(root: &Path) -> Result<()> {
    let text = std::fs::read_to_string(root.join("wasm-pack.toml")).context("reading wasm-pack.toml")?;
    let m: Matrix = toml::from_str(&text).context("parsing wasm-pack.toml")?;
    let lib = m.krate.replace('-', "_");
    for a in &m.artifact {
        step(&format!("wasm build: {} ({})", a.name, a.toolchain), || {
            let mut cmd = Command::new("cargo");
            cmd.arg(format!("+{}", a.toolchain)).args([
                "build",
                "--release",
                "--target",
                "wasm32-unknown-unknown",
                "-p",
                &m.krate,
                "--target-dir",
                &a.target_dir,
            ]);
            if !a.features.is_empty() {
                cmd.args(["--features", &a.features.join(",")]);
            }
            if !a.build_std.is_empty() {
                cmd.arg(format!("-Zbuild-std={}", a.build_std.join(",")));
            }
            // RUSTFLAGS apply to the wasm target only (a --target build), never to build scripts.
            cmd.env("RUSTFLAGS", a.rustflags.join(" "));
            cmd.env_remove("CARGO_ENCODED_RUSTFLAGS");
            run_cmd(&mut cmd)?;
            let wasm = root.join(&a.target_dir).join("wasm32-unknown-unknown/release").join(format!("{lib}.wasm"));
            let out = root.join(&m.out_dir).join(&a.name);
            run_cmd(Command::new("wasm-bindgen").args(["--target", "web", "--out-dir"]).arg(&out).arg(&wasm))?;
            if a.wasm_opt {
                let bg = out.join(format!("{lib}_bg.wasm"));
                run_cmd(
                    Command::new("npx").args(["--yes", "binaryen@132", "wasm-opt", "-O"]).arg(&bg).arg("-o").arg(&bg),
                )?;
            }
            Ok(())
        })?;
    }
    copy_methods(root, &root.join(&m.out_dir))?;
    vendor(root, &root.join(&m.out_dir))?;
    write_file_list(&root.join(&m.out_dir))
}

/// The page's npm dependency (ECharts, from `web/node_modules`, installed by `setup`) into
/// `pkg/vendor/` with its licence: served from the app's own origin, never a CDN.
fn vendor(root: &Path, pkg: &Path) -> Result<()> {
    let out = pkg.join("vendor");
    std::fs::create_dir_all(&out)?;
    let echarts = root.join("web/node_modules/echarts");
    for (from, to) in [("dist/echarts.esm.min.mjs", "echarts.esm.min.mjs"), ("LICENSE", "echarts.LICENSE.txt")] {
        std::fs::copy(echarts.join(from), out.join(to))
            .with_context(|| format!("copying {from} from {} (run `cargo xtask setup`)", echarts.display()))?;
    }
    Ok(())
}

/// The method pages (`docs/methods/*.md`) into `pkg/docs/`, where each panel's help links to
/// them (served, and precached for offline use, with the engines).
fn copy_methods(root: &Path, pkg: &Path) -> Result<()> {
    let out = pkg.join("docs");
    std::fs::create_dir_all(&out)?;
    for e in std::fs::read_dir(root.join("docs/methods"))? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "md") {
            std::fs::copy(&p, out.join(p.file_name().context("a file name")?))?;
        }
    }
    Ok(())
}

/// `files.json`: every file under `pkg/` and `src/`, relative to `web/`, for the service worker
/// to precache (so the page starts offline whatever modules it is split into).
fn write_file_list(pkg: &Path) -> Result<()> {
    fn walk(dir: &Path, base: &Path, out: &mut Vec<String>) -> Result<()> {
        for e in std::fs::read_dir(dir)? {
            let p = e?.path();
            if p.is_dir() {
                walk(&p, base, out)?;
            } else if p.file_name().is_some_and(|n| n != "files.json" && !n.to_string_lossy().ends_with(".d.ts")) {
                out.push(p.strip_prefix(base)?.to_string_lossy().replace('\\', "/"));
            }
        }
        Ok(())
    }
    let web = pkg.parent().context("pkg has a parent")?;
    let mut files = Vec::new();
    walk(pkg, web, &mut files)?;
    walk(&web.join("src"), web, &mut files)?;
    files.sort();
    let json = format!("[\n{}\n]\n", files.iter().map(|f| format!("  \"{f}\"")).collect::<Vec<_>>().join(",\n"));
    std::fs::write(pkg.join("files.json"), json)?;
    Ok(())
}
