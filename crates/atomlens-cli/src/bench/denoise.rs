//! `atomlens bench denoise`: atomlens's non-local means and BM3D against scikit-image's
//! `denoise_nl_means` and the `bm3d` package, side by side on the same images in one run: PSNR
//! against the clean image, median time, the ratio; and whether BM3D biases column positions
//! (columns found and fitted on the raw and on the denoised image, RMS against the truth).
//! Images: the shared synthetic sets that have a `_clean.tif` (the constant background in their
//! JSON is not in the clean image, so it is subtracted before comparing), and two Poisson
//! nanoparticles of whole counts rendered here (`core::synth`) at two doses.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use super::median;

use anyhow::{Context, Result};
use atomlens_core::columns::{ColumnParams, find_and_fit};
use atomlens_core::denoise::{self, Method};
use atomlens_core::image::Noise;
use atomlens_core::metrics::{match_points, psnr};
use atomlens_core::synth::{NanoparticleParams, nanoparticle};
use ndarray::Array2;

struct Case {
    id: String,
    path: PathBuf,
    clean: Array2<f32>,
    offset: f64,
    truth: Vec<[f64; 2]>,
}

const NLM: Method = Method::NonLocalMeans { patch: 2, search: 2, h: None, noise: Noise::Auto, lattice: true };
const BM3D: Method = Method::Bm3d { search: 8, noise: Noise::Auto, lattice: true };

pub fn run(shared: &Path, no_peer: bool, repeat: usize) -> Result<()> {
    let cases = cases(shared)?;
    let images: Vec<atomlens_core::Image> =
        cases.iter().map(|c| crate::files::load_image(&c.path)).collect::<Result<_>>()?;
    let mut rows = Vec::new();
    for (c, img) in cases.iter().zip(&images) {
        let (nlm_t, nlm) = timed(repeat, || denoise::apply(img.view(), &NLM))?;
        let (bm3d_t, bm3d) = timed(repeat, || denoise::apply(img.view(), &BM3D))?;
        let (nlm_s, bm3d_s) = (median(&mut nlm_t.clone()), median(&mut bm3d_t.clone()));
        eprintln!("atomlens {}: NLM {:.0} ms, BM3D {:.0} ms", c.id, nlm_s * 1e3, bm3d_s * 1e3);
        let q = |a: &Array2<f32>| psnr(a.view(), c.clean.view(), c.offset);
        let positions = |a: &Array2<f32>| -> Result<f64> {
            let r = find_and_fit(a.view(), &ColumnParams::default())?;
            let found: Vec<[f64; 2]> = r.columns.iter().map(|k| [k.x, k.y]).collect();
            Ok(match_points(&c.truth, &found, 0.5 * r.spacing.unwrap_or(r.separation)).rms())
        };
        rows.push(Row {
            noisy: q(&img.data),
            ours: [(q(&nlm), nlm_s), (q(&bm3d), bm3d_s)],
            times: [nlm_t, bm3d_t],
            positions: [positions(&img.data)?, positions(&nlm)?, positions(&bm3d)?],
            peer: [None, None],
        });
    }
    if !no_peer {
        peers(shared, &cases, repeat.min(3), &mut rows)?;
        // Time atomlens again after the peers and take the median of both sets: the machine's
        // load drifts over the minutes the peers take, and one burst should not decide a ratio.
        for (img, r) in images.iter().zip(&mut rows) {
            for (k, method) in [NLM, BM3D].iter().enumerate() {
                r.times[k].extend(timed(repeat, || denoise::apply(img.view(), method))?.0);
                r.ours[k].1 = median(&mut r.times[k]);
            }
        }
    }
    let cpus = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    println!(
        "atomlens {} vs scikit-image NLM and bm3d, same images, same run; {cpus} cores",
        env!("CARGO_PKG_VERSION")
    );
    println!("PSNR (dB) against the clean image; median times; position RMS (px) of fitted columns\n");
    println!(
        "| image | noisy | NLM al / skimage | BM3D al / bm3d | NLM time al / skimage | BM3D time al / bm3d | positions raw → NLM / BM3D |"
    );
    println!("|---|---|---|---|---|---|---|");
    for (c, r) in cases.iter().zip(&rows) {
        let peer = |k: usize| r.peer[k].map(|(p, _)| format!("{p:.2}")).unwrap_or_else(|| "–".into());
        let time = |k: usize| {
            let (ours, peer) = (r.ours[k].1, r.peer[k].map(|p| p.1));
            match peer {
                Some(p) => format!("{:.0} / {:.0} ms ({:.1}×)", ours * 1e3, p * 1e3, p / ours),
                None => format!("{:.0} ms / –", ours * 1e3),
            }
        };
        println!(
            "| {} | {:.2} | {:.2} / {} | {:.2} / {} | {} | {} | {:.4} → {:.4} / {:.4} |",
            c.id,
            r.noisy,
            r.ours[0].0,
            peer(0),
            r.ours[1].0,
            peer(1),
            time(0),
            time(1),
            r.positions[0],
            r.positions[1],
            r.positions[2]
        );
    }
    Ok(())
}

/// PSNR and seconds per method (NLM, BM3D), ours and the peer's; position RMS raw, after NLM and
/// after BM3D.
struct Row {
    noisy: f64,
    ours: [(f64, f64); 2],
    /// Every timed run of ours (seconds), per method.
    times: [Vec<f64>; 2],
    peer: [Option<(f64, f64)>; 2],
    positions: [f64; 3],
}

/// `repeat` timed runs (seconds) after one untimed warm-up (first-touch page faults, thread
/// start-up; the peer script warms up the same way), and the last result.
fn timed(
    repeat: usize,
    f: impl Fn() -> Result<Array2<f32>, atomlens_core::CoreError>,
) -> Result<(Vec<f64>, Array2<f32>)> {
    let mut times = Vec::new();
    let mut last = Some(f()?);
    for _ in 0..repeat.max(1) {
        let t = Instant::now();
        last = Some(f()?);
        times.push(t.elapsed().as_secs_f64());
    }
    Ok((times, last.context("no run")?))
}

fn cases(shared: &Path) -> Result<Vec<Case>> {
    let mut cases = Vec::new();
    let dir = shared.join("data/synthetic");
    for id in ["syn_cubic_sub_px", "syn_dense_overlap", "syn_nanoparticle_poisson", "syn_perovskite_two_sublattice"] {
        let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join(format!("{id}.json")))?)?;
        let truth = super::read_truth(&dir.join(format!("{id}_groundtruth.csv")))?;
        cases.push(Case {
            id: id.into(),
            path: dir.join(format!("{id}.tif")),
            clean: crate::files::load_image(&dir.join(format!("{id}_clean.tif")))?.data,
            offset: meta["background"].as_f64().unwrap_or(0.0),
            truth: truth.iter().map(|t| [t[0], t[1]]).collect(),
        });
    }
    let out = Path::new("target/bench-denoise");
    std::fs::create_dir_all(out)?;
    for (id, per_atom, support) in [("poisson_particle_10", 10.0, 15.0), ("poisson_particle_3", 3.0, 5.0)] {
        let s = nanoparticle(&NanoparticleParams {
            counts_per_atom: per_atom,
            support_counts: support,
            ..Default::default()
        })?;
        let path = out.join(format!("{id}.tif"));
        let (h, w) = s.image.data.dim();
        let px: Vec<f32> = s.image.data.iter().copied().collect();
        std::fs::write(&path, atomlens_io::formats::tiff::write_f32(w, h, &px, &s.image.calibration)?)?;
        // The clean image beside it, so a peer's output can be scored outside this run too.
        let clean: Vec<f32> = s.clean.iter().copied().collect();
        let clean_path = out.join(format!("{id}_clean.tif"));
        std::fs::write(clean_path, atomlens_io::formats::tiff::write_f32(w, h, &clean, &s.image.calibration)?)?;
        let truth = s.columns.iter().map(|c| [c.x, c.y]).collect();
        cases.push(Case { id: format!("{id} (whole counts)"), path, clean: s.clean, offset: 0.0, truth });
    }
    Ok(cases)
}

fn peers(shared: &Path, cases: &[Case], repeat: usize, rows: &mut [Row]) -> Result<()> {
    let python = super::peer_python(shared)?;
    super::ensure_module(&python, "bm3d", "bm3d")?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("peers/denoise_peers.py");
    let out = Path::new("target/bench-denoise/peers");
    let mut cmd = Command::new(&python);
    cmd.arg(&script).arg(out).arg(repeat.max(1).to_string());
    for (i, c) in cases.iter().enumerate() {
        cmd.arg(format!("{i}={}", c.path.display()));
    }
    let results = super::peer_rows(&mut cmd, "scikit-image NLM and bm3d", cases.len())?;
    for (i, (c, row)) in cases.iter().zip(rows.iter_mut()).enumerate() {
        let Some(r) = results.iter().find(|r| r["id"].as_str() == Some(&i.to_string())) else { continue };
        for (k, name) in ["nlm", "bm3d"].iter().enumerate() {
            let (Some(path), Some(t)) = (r[name]["path"].as_str(), r[name]["seconds"].as_f64()) else { continue };
            let img = crate::files::load_image(Path::new(path))?;
            row.peer[k] = Some((psnr(img.data.view(), c.clean.view(), c.offset), t));
        }
    }
    Ok(())
}
