//! `atomlens bench columns`: atomlens and Atomap side by side on the same images, in one run.
//! Speed is a ratio measured here and now (the machines are noisy); accuracy is against the
//! exact truth of the synthetic sets. Needs `../shared` (images, truth, Atomap's parameters);
//! the peer runs in a venv under `target/peer-venv` that this command creates.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use atomlens_core::columns::ColumnParams;
use atomlens_core::columns::find::{Peaks, find_columns};
use atomlens_core::columns::fit::{FitStatus, fit_columns};
use atomlens_core::metrics::match_points;
use atomlens_io::{Limits, NamedFile};
use serde_json::Value;

#[derive(clap::Args)]
pub struct Args {
    /// What to benchmark.
    #[arg(value_enum)]
    what: What,
    /// The shared folder (images, truth, peer parameters).
    #[arg(long, default_value = "../shared")]
    shared: PathBuf,
    /// Skip the 1024² MoS2 image (Atomap takes about a minute on it).
    #[arg(long)]
    quick: bool,
    /// Do not run the peer (atomlens only).
    #[arg(long)]
    no_peer: bool,
    /// Repetitions of the atomlens refinement, before and again after the peer (median of all).
    #[arg(long, default_value_t = 5)]
    repeat: usize,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum What {
    /// Column finding and fitting against Atomap.
    Columns,
    /// Geometric phase analysis against kemstem.
    Gpa,
    /// Non-local means and BM3D against scikit-image and the bm3d package.
    Denoise,
    /// Tomographic reconstruction against scikit-image and astra-toolbox (CPU).
    Tomo,
    /// The particle chain over 50 synthetic 1024² images (no peer has it: images per second).
    Batch,
}

struct Case {
    id: &'static str,
    image: &'static str,
    truth: Option<&'static str>,
}

const CASES: [Case; 8] = [
    Case {
        id: "syn_cubic_sub_px",
        image: "data/synthetic/syn_cubic_sub_px.tif",
        truth: Some("data/synthetic/syn_cubic_sub_px_groundtruth.csv"),
    },
    Case {
        id: "syn_dense_overlap",
        image: "data/synthetic/syn_dense_overlap.tif",
        truth: Some("data/synthetic/syn_dense_overlap_groundtruth.csv"),
    },
    Case {
        id: "syn_perovskite_two_sublattice",
        image: "data/synthetic/syn_perovskite_two_sublattice.tif",
        truth: Some("data/synthetic/syn_perovskite_two_sublattice_groundtruth.csv"),
    },
    Case {
        id: "syn_nanoparticle_poisson",
        image: "data/synthetic/syn_nanoparticle_poisson.tif",
        truth: Some("data/synthetic/syn_nanoparticle_poisson_groundtruth.csv"),
    },
    Case {
        id: "atomap_dummy_simple_cubic",
        image: "data/synthetic/atomap_dummy_simple_cubic.tif",
        truth: Some("data/synthetic/atomap_dummy_simple_cubic_groundtruth.csv"),
    },
    Case {
        id: "atomap_dummy_distorted_cubic",
        image: "data/synthetic/atomap_dummy_distorted_cubic.tif",
        truth: Some("data/synthetic/atomap_dummy_distorted_cubic_groundtruth.csv"),
    },
    Case { id: "atomap_sto_adf", image: "data/images/atomap_sto_adf.tif", truth: None },
    Case { id: "temul_mos2_se_adf", image: "data/images/temul_mos2_se_adf.tif", truth: None },
];

#[derive(Default)]
struct Side {
    columns: usize,
    refine_s: f64,
    /// Every timed refinement (atomlens), for the median.
    times: Vec<f64>,
    rms: Option<f64>,
    missed: Option<usize>,
    extra: Option<usize>,
    sigma_err: Option<f64>,
}

pub fn run(a: Args) -> Result<()> {
    if !a.shared.join("data").is_dir() {
        bail!(
            "{} not found: the benchmark needs ../shared (images, truth and Atomap's parameters)",
            a.shared.display()
        );
    }
    match a.what {
        What::Gpa => return crate::bench_gpa::run(&a.shared, a.quick, a.no_peer, a.repeat),
        What::Denoise => return crate::bench_denoise::run(&a.shared, a.no_peer, a.repeat),
        What::Tomo => return crate::bench_tomo::run(&a.shared, a.no_peer),
        What::Batch => return crate::bench_batch::run(50, 1024),
        What::Columns => {}
    }
    let cases: Vec<&Case> = CASES.iter().filter(|c| !(a.quick && c.id == "temul_mos2_se_adf")).collect();
    let p = ColumnParams::default();
    let inputs: Vec<(atomlens_core::Image, Peaks)> = cases
        .iter()
        .map(|c| {
            let img = load(&a.shared, c.image)?;
            let peaks = find_columns(img.view(), &p.find)?;
            Ok((img, peaks))
        })
        .collect::<Result<_>>()?;
    let mut ours: Vec<Side> = cases
        .iter()
        .zip(&inputs)
        .map(|(c, (img, peaks))| ours(&a.shared, c, img, peaks, &p, a.repeat))
        .collect::<Result<_>>()?;
    let peer: Vec<Option<Side>> = if a.no_peer {
        cases.iter().map(|_| None).collect()
    } else {
        let peer = atomap(&a.shared, &cases)?;
        // Time atomlens again after the peer and take the median of both sets: the machine's
        // load drifts over the minutes Atomap takes, and one burst should not decide the ratio.
        for ((img, peaks), side) in inputs.iter().zip(&mut ours) {
            side.times.extend(time_refine(&img.view(), &peaks.points, &p, a.repeat)?.0);
            side.refine_s = median(&mut side.times);
        }
        peer
    };

    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("atomlens {} vs Atomap 0.4.2, same images, same run; {cpus} cores", env!("CARGO_PKG_VERSION"));
    println!(
        "refine = Gaussian refinement step (atomlens: all passes, threads on; Atomap: refine_atom_positions_using_2d_gaussian)\n"
    );
    println!(
        "| image | columns (al / Atomap) | RMS vs truth px (al / Atomap) | missed+extra inside (al / Atomap) | σ error rms (al / Atomap) | refine per column (al / Atomap) | speed-up |"
    );
    println!("|---|---|---|---|---|---|---|");
    let f = |v: Option<f64>, d: usize| v.map(|x| format!("{x:.d$}")).unwrap_or_else(|| "–".into());
    for ((c, o), p) in cases.iter().zip(&ours).zip(&peer) {
        let per = |s: &Side| s.refine_s / s.columns.max(1) as f64;
        let (pc, prms, pmiss, psig, pper) = match p {
            Some(p) => (
                p.columns.to_string(),
                f(p.rms, 4),
                p.missed.zip(p.extra).map(|(m, e)| format!("{}", m + e)).unwrap_or("–".into()),
                f(p.sigma_err, 3),
                format!("{:.2} ms", per(p) * 1e3),
            ),
            None => ("–".into(), "–".into(), "–".into(), "–".into(), "–".into()),
        };
        let ratio = p.as_ref().map(|p| format!("{:.0}×", per(p) / per(o))).unwrap_or("–".into());
        let omiss = o.missed.zip(o.extra).map(|(m, e)| format!("{}", m + e)).unwrap_or("–".into());
        println!(
            "| {} | {} / {} | {} / {} | {} / {} | {} / {} | {:.1} µs / {} | {} |",
            c.id,
            o.columns,
            pc,
            f(o.rms, 4),
            prms,
            omiss,
            pmiss,
            f(o.sigma_err, 3),
            psig,
            per(o) * 1e6,
            pper,
            ratio
        );
    }
    Ok(())
}

fn load(shared: &Path, rel: &str) -> Result<atomlens_core::Image> {
    load_image(&shared.join(rel))
}

/// The first frame of the first signal of `path`.
pub fn load_image(path: &Path) -> Result<atomlens_core::Image> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let s = atomlens_io::read_one(NamedFile::new(&name, bytes), &Limits::NATIVE)?;
    Ok(s[0].frame(0)?)
}

/// Install `package` into the peer venv when `module` cannot be imported (peers beyond the shared
/// requirements, e.g. `bm3d`).
pub fn ensure_module(python: &Path, module: &str, package: &str) -> Result<()> {
    if Command::new(python).args(["-c", &format!("import {module}")]).output()?.status.success() {
        return Ok(());
    }
    eprintln!("installing {package} into the peer venv (pip, once)…");
    if !Command::new(python).args(["-m", "pip", "install", "-q", package]).status()?.success() {
        bail!("could not install the {package} peer (pip install {package})");
    }
    Ok(())
}

/// `repeat` timed refinements (seconds) and the last one's columns.
fn time_refine(
    img: &ndarray::ArrayView2<f32>,
    seeds: &[[f64; 2]],
    p: &ColumnParams,
    repeat: usize,
) -> Result<(Vec<f64>, Vec<atomlens_core::columns::fit::AtomColumn>)> {
    let mut times = Vec::new();
    let mut cols = Vec::new();
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        cols = fit_columns(*img, seeds, &p.fit)?;
        times.push(t.elapsed().as_secs_f64());
    }
    Ok((times, cols))
}

/// The median (sorts `v`).
pub(crate) fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ours(
    shared: &Path,
    c: &Case,
    img: &atomlens_core::Image,
    peaks: &Peaks,
    p: &ColumnParams,
    repeat: usize,
) -> Result<Side> {
    let (mut times, cols) = time_refine(&img.view(), &peaks.points, p, repeat)?;
    let mut side = Side { columns: cols.len(), refine_s: median(&mut times), times, ..Default::default() };
    if let Some(t) = c.truth {
        let truth = read_truth(&shared.join(t))?;
        let found: Vec<[f64; 2]> = cols.iter().map(|c| [c.x, c.y]).collect();
        let tp: Vec<[f64; 2]> = truth.iter().map(|t| [t[0], t[1]]).collect();
        let m = match_points(&tp, &found, 0.5 * peaks.nn_distance());
        // Missed or spurious columns count only more than one separation from the border.
        let (h, w) = img.data.dim();
        let inside = |q: [f64; 2]| {
            let s = peaks.separation;
            q[0] > s && q[1] > s && q[0] < w as f64 - 1.0 - s && q[1] < h as f64 - 1.0 - s
        };
        side.missed = Some(m.missed.iter().filter(|&&i| inside(tp[i])).count());
        side.extra = Some(m.extra.iter().filter(|&&j| inside(found[j])).count());
        side.rms = Some(m.rms());
        let errs: Vec<f64> = m
            .pairs
            .iter()
            .filter(|p| cols[p.1].status == FitStatus::Fitted)
            .flat_map(|p| [cols[p.1].sigma_x / truth[p.0][2] - 1.0, cols[p.1].sigma_y / truth[p.0][3] - 1.0])
            .collect();
        side.sigma_err = Some((errs.iter().map(|e| e * e).sum::<f64>() / errs.len().max(1) as f64).sqrt());
    }
    eprintln!("atomlens {}: {} columns, refine {:.1} ms", c.id, side.columns, side.refine_s * 1e3);
    Ok(side)
}

/// Rows of `x_px,y_px,sigma_x,sigma_y,…` (header skipped).
pub fn read_truth(path: &Path) -> Result<Vec<[f64; 4]>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Vec<f64> = l.split(',').take(4).map(|x| x.trim().parse::<f64>()).collect::<Result<_, _>>()?;
            Ok([v[0], v[1], v[2], v[3]])
        })
        .collect()
}

/// The peers' Python (`target/peer-venv`, created from ../shared's requirements once).
pub fn peer_python(shared: &Path) -> Result<PathBuf> {
    let venv = Path::new("target/peer-venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        eprintln!("creating {} with the peers (Atomap, kemstem, scikit-image; pip, once)…", venv.display());
        let ok = Command::new("python3").args(["-m", "venv"]).arg(venv).status()?.success()
            && Command::new(venv.join("bin/pip"))
                .args(["install", "-q", "-r"])
                .arg(shared.join("reference/scripts/requirements.txt"))
                .status()?
                .success();
        if !ok {
            bail!("could not install the peers (pip install -r ../shared/reference/scripts/requirements.txt)");
        }
    }
    Ok(python)
}

/// Run a peer script and collect the JSON object it prints per image (one per line).
pub fn peer_rows(cmd: &mut Command, peer: &str, images: usize) -> Result<Vec<Value>> {
    eprintln!("running {peer} on {images} images…");
    let out = cmd.output().with_context(|| format!("running the {peer} peer"))?;
    if !out.status.success() {
        bail!("the {peer} peer failed: {}", String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or(""));
    }
    Ok(String::from_utf8_lossy(&out.stdout).lines().filter_map(|l| serde_json::from_str(l).ok()).collect())
}

fn atomap(shared: &Path, cases: &[&Case]) -> Result<Vec<Option<Side>>> {
    let python = peer_python(shared)?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/atomap_columns.py");
    let mut cmd = Command::new(&python);
    cmd.arg(&script).arg(shared.join("reference/scripts")).arg(shared.join("reference/atomap"));
    for c in cases {
        let mut arg = format!("{}={}", c.id, shared.join(c.image).display());
        if let Some(t) = c.truth {
            arg.push_str(&format!(":{}", shared.join(t).display()));
        }
        cmd.arg(arg);
    }
    let rows = peer_rows(&mut cmd, "Atomap", cases.len())?;
    Ok(cases
        .iter()
        .map(|c| {
            rows.iter().find(|r| r["id"] == c.id).map(|r| Side {
                columns: r["columns"].as_u64().unwrap_or(0) as usize,
                refine_s: r["refine_s"].as_f64().unwrap_or(f64::NAN),
                rms: r["rms_px"].as_f64(),
                missed: r["missed"].as_u64().map(|v| v as usize),
                extra: r["extra"].as_u64().map(|v| v as usize),
                sigma_err: r["sigma_err"].as_f64(),
                times: Vec::new(),
            })
        })
        .collect())
}
