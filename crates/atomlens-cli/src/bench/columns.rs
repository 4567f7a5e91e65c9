//! `atomlens bench columns`: atomlens and Atomap side by side on the same images, in one run.
//! Speed is a ratio measured here and now (the machines are noisy); accuracy is against the
//! exact truth of the synthetic sets.
use std::path::Path;
use std::process::Command;
use std::time::Instant;

use anyhow::Result;
use atomlens_core::columns::ColumnParams;
use atomlens_core::columns::find::{Peaks, find_columns};
use atomlens_core::columns::fit::{FitStatus, fit_columns};
use atomlens_core::metrics::match_points;

use super::{load, median, peer_python, peer_rows, read_truth};

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
    /// The whole `atomlens columns IMAGE --out CSV` process (load, lattice, find, fit,
    /// sublattices, write), median wall time.
    whole_s: Option<f64>,
}

/// Time both sides on every case and print the table.
pub fn run(shared: &Path, quick: bool, no_peer: bool, repeat: usize) -> Result<()> {
    let cases: Vec<&Case> = CASES.iter().filter(|c| !(quick && c.id == "temul_mos2_se_adf")).collect();
    let p = ColumnParams::default();
    let inputs: Vec<(atomlens_core::Image, Peaks)> = cases
        .iter()
        .map(|c| {
            let img = load(shared, c.image)?;
            let peaks = find_columns(img.view(), &p.find)?;
            Ok((img, peaks))
        })
        .collect::<Result<_>>()?;
    let mut ours: Vec<Side> = cases
        .iter()
        .zip(&inputs)
        .map(|(c, (img, peaks))| ours(shared, c, img, peaks, &p, repeat))
        .collect::<Result<_>>()?;
    let peer: Vec<Option<Side>> = if no_peer {
        cases.iter().map(|_| None).collect()
    } else {
        let peer = atomap(shared, &cases)?;
        // Time atomlens again after the peer and take the median of both sets: the machine's
        // load drifts over the minutes Atomap takes, and one burst should not decide the ratio.
        for ((img, peaks), side) in inputs.iter().zip(&mut ours) {
            side.times.extend(time_refine(&img.view(), &peaks.points, &p, repeat)?.0);
            side.refine_s = median(&mut side.times);
        }
        peer
    };
    for (c, side) in cases.iter().zip(&mut ours) {
        side.whole_s = Some(time_whole(&shared.join(c.image), repeat)?);
    }

    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!("atomlens {} vs Atomap 0.4.2, same images, same run; {cpus} cores", env!("CARGO_PKG_VERSION"));
    println!(
        "refine = Gaussian refinement step (atomlens: all passes, threads on; Atomap: refine_atom_positions_using_2d_gaussian); \
         whole = the whole `atomlens columns IMAGE --out CSV` process against Atomap's refinement step alone\n"
    );
    println!(
        "| image | columns (al / Atomap) | RMS vs truth px (al / Atomap) | missed+extra inside (al / Atomap) | σ error rms (al / Atomap) | refine per column (al / Atomap) | speed-up | whole command (al) | whole vs Atomap refine |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
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
        let whole = o.whole_s.map(|w| format!("{:.0} ms", w * 1e3)).unwrap_or("–".into());
        let whole_ratio =
            p.as_ref().zip(o.whole_s).map(|(p, w)| format!("{:.0}×", p.refine_s / w)).unwrap_or("–".into());
        let omiss = o.missed.zip(o.extra).map(|(m, e)| format!("{}", m + e)).unwrap_or("–".into());
        println!(
            "| {} | {} / {} | {} / {} | {} / {} | {} / {} | {:.1} µs / {} | {} | {} | {} |",
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
            ratio,
            whole,
            whole_ratio
        );
    }
    Ok(())
}

/// Median wall time of `repeat` runs (at least 3) of this binary's `columns` command on `image`,
/// writing a CSV as a user would.
fn time_whole(image: &Path, repeat: usize) -> Result<f64> {
    let exe = std::env::current_exe()?;
    let out = std::env::temp_dir().join(format!("atomlens-bench-{}.csv", std::process::id()));
    let mut times = Vec::new();
    for _ in 0..repeat.max(3) {
        let t = Instant::now();
        let status = Command::new(&exe)
            .arg("columns")
            .arg(image)
            .arg("--out")
            .arg(&out)
            .stderr(std::process::Stdio::null())
            .status()?;
        times.push(t.elapsed().as_secs_f64());
        anyhow::ensure!(status.success(), "atomlens columns {} failed", image.display());
    }
    let _ = std::fs::remove_file(&out);
    Ok(median(&mut times))
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
                whole_s: None,
            })
        })
        .collect())
}
