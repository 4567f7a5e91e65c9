//! `atomlens bench gpa`: atomlens and kemstem 0.0.6 side by side on the same images in one run:
//! full GPA time (spectrum, g choice and refinement, both phases, strain) and, on the strain
//! steps, the measured εxx plateau against the true 0.02. The 2048² image is a synthetic strain
//! step written by atomlens (`core::synth`) for both sides to read.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result};
use atomlens_core::image::{Region, region_stats};
use atomlens_core::strain::gpa::{GpaParams, analyse};
use atomlens_core::synth::{StrainField, StrainedLatticeParams, strained_lattice};
use atomlens_io::{Limits, NamedFile};

struct Case {
    id: &'static str,
    path: PathBuf,
    /// kemstem's settings from `run_gpa_kemstem.py`: mask σ (FFT px), min radius, |g| range.
    sigma: f64,
    min_r: u32,
    g_range: (f64, f64),
    reference: Option<Region>,
    /// Where to read the right-hand εxx plateau (strain steps only).
    band: Option<Region>,
}

fn region_arg(r: Region) -> String {
    format!("{},{},{},{}", r.x0, r.y0, r.x1, r.y1)
}

pub fn run(shared: &Path, quick: bool, no_peer: bool, repeat: usize) -> Result<()> {
    let big = PathBuf::from("target/bench-gpa-step-2048.tif");
    if !quick {
        write_big_step(&big)?;
    }
    let data = |rel: &str| shared.join("data").join(rel);
    let mut cases = vec![
        Case {
            id: "syn_strain_step_exx2pct (512²)",
            path: data("synthetic/syn_strain_step_exx2pct.tif"),
            sigma: 4.0,
            min_r: 8,
            g_range: (0.03, 0.12),
            reference: Some(Region { x0: 40, y0: 64, x1: 200, y1: 448 }),
            band: Some(Region { x0: 320, y0: 64, x1: 429, y1: 448 }),
        },
        Case {
            id: "atomap_sto_adf (380×400)",
            path: data("images/atomap_sto_adf.tif"),
            sigma: 3.0,
            min_r: 5,
            g_range: (0.015, 0.1),
            reference: None,
            band: None,
        },
        Case {
            id: "temul_pto_sro_haadf (1312×224)",
            path: data("images/temul_pto_sro_haadf.tif"),
            sigma: 3.0,
            min_r: 6,
            g_range: (0.03, 0.06),
            reference: Some(Region { x0: 60, y0: 172, x1: 1250, y1: 212 }),
            band: None,
        },
    ];
    if !quick {
        cases.push(Case {
            id: "synthetic strain step (2048²)",
            path: big.clone(),
            sigma: 16.0,
            min_r: 32,
            g_range: (0.03, 0.12),
            reference: Some(Region { x0: 160, y0: 256, x1: 800, y1: 1792 }),
            band: Some(Region { x0: 1280, y0: 256, x1: 1880, y1: 1792 }),
        });
    }
    let ours: Vec<Timed> = cases.iter().map(|c| ours(c, repeat)).collect::<Result<_>>()?;
    let peer: Vec<Option<Timed>> =
        if no_peer { cases.iter().map(|_| None).collect() } else { kemstem(shared, &cases, repeat)? };

    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("atomlens {} vs kemstem 0.0.6, same images, same run; {cpus} cores", env!("CARGO_PKG_VERSION"));
    println!("full GPA: spectrum, g choice + refinement, both phases, strain tensor; median of {repeat}\n");
    println!("| image | εxx right of the step, true 0.020 (al / kemstem) | time (al / kemstem) | speed-up |");
    println!("|---|---|---|---|");
    let f = |v: Option<f64>| v.map(|x| format!("{x:.4}")).unwrap_or_else(|| "–".into());
    for ((c, o), p) in cases.iter().zip(&ours).zip(&peer) {
        let (pt, pe, ratio) = match p {
            Some((t, e)) => (format!("{:.0} ms", t * 1e3), f(*e), format!("{:.1}×", t / o.0)),
            None => ("–".into(), "–".into(), "–".into()),
        };
        println!("| {} | {} / {} | {:.0} ms / {} | {} |", c.id, f(o.1), pe, o.0 * 1e3, pt, ratio);
    }
    Ok(())
}

/// The 2048² strain step: spacing 16 px, +2 % εxx right of x = 1024.
fn write_big_step(path: &Path) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    let p = StrainedLatticeParams {
        size: 2048,
        spacing: 16.0,
        angle: 0.0,
        sigma: 3.0,
        noise: 0.02,
        seed: 5,
        field: StrainField::StepX { exx: 0.02, x0: 1024.0, width: 8.0 },
    };
    let l = strained_lattice(&p)?;
    let px: Vec<f32> = l.image.data.iter().copied().collect();
    let bytes = atomlens_io::formats::tiff::write_f32(2048, 2048, &px, &l.image.calibration)?;
    std::fs::create_dir_all(path.parent().unwrap_or(Path::new(".")))?;
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

fn ours(c: &Case, repeat: usize) -> Result<Timed> {
    let bytes = std::fs::read(&c.path).with_context(|| format!("reading {}", c.path.display()))?;
    let img = atomlens_io::read_one(NamedFile::new("a.tif", bytes), &Limits::NATIVE)?[0].frame(0)?;
    let p = GpaParams { reference: c.reference, ..Default::default() };
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        last = Some(analyse(img.view(), &p)?);
        times.push(t.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let r = last.context("no run")?;
    let band = c.band.map(|b| region_stats(r.exx.view(), b).0);
    eprintln!("atomlens {}: {:.1} ms", c.id, times[times.len() / 2] * 1e3);
    Ok((times[times.len() / 2], band))
}

/// Seconds and the εxx plateau (strain steps only).
type Timed = (f64, Option<f64>);

fn kemstem(shared: &Path, cases: &[Case], repeat: usize) -> Result<Vec<Option<Timed>>> {
    let python = super::peer_python(shared)?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/kemstem_gpa.py");
    let mut cmd = Command::new(&python);
    cmd.arg(&script).arg(shared.join("reference/scripts")).arg(repeat.max(1).to_string());
    for (i, c) in cases.iter().enumerate() {
        let mut arg = format!(
            "{i}={}:{}:{}:{}:{}:{}",
            c.path.display(),
            c.sigma,
            c.min_r,
            c.g_range.0,
            c.g_range.1,
            c.reference.map(region_arg).unwrap_or_default()
        );
        if let Some(b) = c.band {
            arg.push_str(&format!(":{}", region_arg(b)));
        }
        cmd.arg(arg);
    }
    let rows = super::peer_rows(&mut cmd, "kemstem", cases.len())?;
    Ok((0..cases.len())
        .map(|i| {
            rows.iter()
                .find(|r| r["id"].as_str().and_then(|s| s.parse::<usize>().ok()) == Some(i))
                .map(|r| (r["seconds"].as_f64().unwrap_or(f64::NAN), r["band_exx"].as_f64()))
        })
        .collect())
}
