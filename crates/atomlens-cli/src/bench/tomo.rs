//! `atomlens bench tomo`: reconstruction speed and error, atomlens against scikit-image (`iradon`,
//! `iradon_sart`, slice by slice) and astra-toolbox's CPU 2D algorithms (`FBP`, `SIRT`), in one
//! run, on a 128³ Shepp–Logan phantom with 71 tilts over ±70° (the missing wedge of a typical
//! holder), and FBP on 71 tilts over the full 180° against `iradon`. Each side reconstructs sinograms made by its own projector; all are scored by the RMS
//! difference from the phantom (whose range is 1).
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::Result;
use atomlens_core::tomo::fbp::Filter;
use atomlens_core::tomo::phantom::{Phantom, phantom, tilt_range, tilt_series};
use atomlens_core::tomo::{Algorithm, TiltSeries, Volume, reconstruct};

const SIZE: usize = 128;
const TILTS: usize = 71;
const SIRT_ITERATIONS: usize = 20;
const SART_PASSES: usize = 3;

pub fn run(shared: &Path, no_peer: bool) -> Result<()> {
    let vol = phantom(Phantom::SheppLogan, SIZE);
    let angles = tilt_range(-70.0, 70.0, TILTS);
    let series = tilt_series(&vol, &angles, None, 0);
    let ts = TiltSeries { images: series.view(), angles_deg: &angles };
    let rms = |v: &Volume| {
        (v.data.iter().zip(vol.data.iter()).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>() / v.data.len() as f64)
            .sqrt()
    };
    let mut rows: Vec<(String, f64, f64)> = Vec::new();
    // FBP's reference case: the full 180° (no missing wedge), against `iradon` on the same tilts.
    {
        let full: Vec<f64> = (0..TILTS).map(|k| -90.0 + 180.0 * k as f64 / TILTS as f64).collect();
        let fs = tilt_series(&vol, &full, None, 0);
        let t = Instant::now();
        let v = reconstruct(
            &TiltSeries { images: fs.view(), angles_deg: &full },
            SIZE,
            &Algorithm::Fbp { filter: Filter::SheppLogan },
            &|_, _| {},
        )?;
        let secs = t.elapsed().as_secs_f64();
        eprintln!("atomlens FBP (full range): {secs:.2} s, RMS {:.4}", rms(&v));
        rows.push(("atomlens FBP (full range)".into(), secs, rms(&v)));
    }
    for (name, method) in [
        ("atomlens FBP (Shepp–Logan)".to_string(), Algorithm::Fbp { filter: Filter::SheppLogan }),
        (
            format!("atomlens SART ({SART_PASSES} passes)"),
            Algorithm::Sart { iterations: SART_PASSES, nonnegative: true },
        ),
        (
            format!("atomlens SIRT ({SIRT_ITERATIONS} iterations)"),
            Algorithm::Sirt { iterations: SIRT_ITERATIONS, nonnegative: true },
        ),
    ] {
        let t = Instant::now();
        let v = reconstruct(&ts, SIZE, &method, &|_, _| {})?;
        let secs = t.elapsed().as_secs_f64();
        eprintln!("{name}: {:.2} s, RMS {:.4}", secs, rms(&v));
        rows.push((name, secs, rms(&v)));
    }
    let mut peers: Vec<(String, f64, f64)> = Vec::new();
    if !no_peer {
        let path = Path::new("target/bench-tomo/phantom.tif");
        std::fs::create_dir_all(path.parent().expect("a folder"))?;
        let px: Vec<f32> = vol.data.iter().copied().collect();
        std::fs::write(
            path,
            atomlens_io::formats::tiff::write_f32(SIZE, SIZE, &px, &atomlens_core::Calibration::uncalibrated())?,
        )?;
        let python = super::peer_python(shared)?;
        super::ensure_module(&python, "astra", "astra-toolbox")
            .unwrap_or_else(|e| eprintln!("astra-toolbox not available ({e}); scikit-image only"));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/tomo_peers.py");
        let mut cmd = Command::new(&python);
        cmd.arg(&script).arg(path).args([
            "-70",
            "70",
            &TILTS.to_string(),
            &SIRT_ITERATIONS.to_string(),
            &SART_PASSES.to_string(),
            &TILTS.to_string(),
        ]);
        for r in super::peer_rows(&mut cmd, "scikit-image and astra-toolbox", 4)? {
            if let (Some(m), Some(s), Some(e)) = (r["method"].as_str(), r["seconds"].as_f64(), r["rms"].as_f64()) {
                peers.push((m.to_string(), s, e));
            }
        }
    }
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!(
        "atomlens {} vs scikit-image and astra-toolbox (CPU), {SIZE}³ Shepp–Logan, {TILTS} tilts ±70°, same run; {cpus} cores\n",
        env!("CARGO_PKG_VERSION")
    );
    println!("| method | time (all {SIZE} slices) | RMS error | atomlens speed-up |");
    println!("|---|---|---|---|");
    let ours = |kind: &str| rows.iter().find(|r| r.0.contains(kind) && !r.0.contains("full")).map(|r| r.1);
    let full = rows.iter().find(|r| r.0.contains("full")).map(|r| r.1);
    for (name, secs, err) in &rows {
        println!("| {name} | {secs:.2} s | {err:.4} | |");
    }
    for (name, secs, err) in &peers {
        let kind = if name.contains("sart") {
            "SART"
        } else if name.contains("SIRT") {
            "SIRT"
        } else {
            "FBP"
        };
        let mine = if name.contains("full") { full } else { ours(kind) };
        let ratio = mine.map(|o| format!("{:.1}× (vs atomlens {kind})", secs / o)).unwrap_or_default();
        println!("| {name} | {secs:.2} s | {err:.4} | {ratio} |");
    }
    Ok(())
}
