//! BM3D and NLM on the shared synthetic sets that have a clean image: PSNR against the figures of
//! the peers (`bm3d` 4.0.3 and scikit-image 0.25 NLM, as `atomlens bench denoise` measures them
//! side by side; the peers need Python, so their PSNRs are the recorded ones), and column
//! positions fitted on the denoised images against the exact truth.
#![allow(clippy::unwrap_used)]
use std::path::Path;

use atomlens_core::columns::{ColumnParams, find_and_fit};
use atomlens_core::denoise::{self, Method};
use atomlens_core::image::Noise;
use atomlens_core::metrics::{match_points, psnr};
use atomlens_io::{Limits, NamedFile};
use atomlens_tests::{shared_dir, skip};
use ndarray::Array2;

fn image(path: &Path) -> Array2<f32> {
    let s = atomlens_io::read_one(NamedFile::new("a.tif", std::fs::read(path).unwrap()), &Limits::NATIVE).unwrap();
    s[0].frame(0).unwrap().data
}

/// `(set, bm3d package PSNR, scikit-image NLM PSNR)` from `atomlens bench denoise` (BENCHMARKS.md).
const PEERS: [(&str, f64, f64); 4] = [
    ("syn_cubic_sub_px", 31.79, 28.18),
    ("syn_dense_overlap", 31.57, 25.06),
    ("syn_nanoparticle_poisson", 47.98, 46.90),
    ("syn_perovskite_two_sublattice", 53.42, 50.20),
];

#[test]
fn denoisers_reach_the_peers_and_bm3d_keeps_positions() {
    let Some(shared) = shared_dir() else { return skip("denoisers_reach_the_peers_and_bm3d_keeps_positions") };
    let dir = shared.join("data/synthetic");
    for (id, bm3d_peer, nlm_peer) in PEERS {
        let noisy = image(&dir.join(format!("{id}.tif")));
        let clean = image(&dir.join(format!("{id}_clean.tif")));
        let meta: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join(format!("{id}.json"))).unwrap()).unwrap();
        let offset = meta["background"].as_f64().unwrap_or(0.0);
        let out = denoise::apply(noisy.view(), &Method::Bm3d { search: 8, noise: Noise::Auto, lattice: true }).unwrap();
        let q = psnr(out.view(), clean.view(), offset);
        // Our NLM with its defaults against scikit-image's with its documented ones.
        let nlm = denoise::apply(
            noisy.view(),
            &Method::NonLocalMeans { patch: 2, search: 2, h: None, noise: Noise::Auto, lattice: true },
        )
        .unwrap();
        let q_nlm = psnr(nlm.view(), clean.view(), offset);
        let truth: Vec<[f64; 2]> = std::fs::read_to_string(dir.join(format!("{id}_groundtruth.csv")))
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| {
                let v: Vec<f64> = l.split(',').take(2).map(|t| t.parse().unwrap()).collect();
                [v[0], v[1]]
            })
            .collect();
        let rms = |a: &Array2<f32>| {
            let r = find_and_fit(a.view(), &ColumnParams::default()).unwrap();
            let found: Vec<[f64; 2]> = r.columns.iter().map(|c| [c.x, c.y]).collect();
            match_points(&truth, &found, 0.5 * r.spacing.unwrap_or(r.separation)).rms()
        };
        let (raw, cleaned, cleaned_nlm) = (rms(&noisy), rms(&out), rms(&nlm));
        eprintln!(
            "{id}: BM3D {q:.2} dB (bm3d {bm3d_peer}), NLM {q_nlm:.2} dB (scikit-image {nlm_peer}); positions {raw:.4} → {cleaned:.4} (BM3D), {cleaned_nlm:.4} px (NLM)"
        );
        assert!(q >= bm3d_peer - 1.0 && q >= nlm_peer, "{id}: BM3D {q} dB");
        assert!(q_nlm >= nlm_peer, "{id}: NLM {q_nlm} dB");
        // Not biased: at least as close to the truth, to within 5 % (the perovskite, near its
        // Cramér–Rao bound, moves from 0.0086 to 0.0089 px after either).
        for (name, rms) in [("BM3D", cleaned), ("NLM", cleaned_nlm)] {
            assert!(rms <= 1.05 * raw, "{id}: positions {raw} → {rms} px after {name}");
        }
        // Without the lattice search no other column takes part in a column's average: nothing
        // pulls it towards its neighbours (the perovskite stays at its raw 0.0086 px), but at low
        // dose the window alone helps the fit less (cubic 0.1285 → 0.1299 px).
        let local = Method::NonLocalMeans { patch: 2, search: 5, h: None, noise: Noise::Auto, lattice: false };
        let local = rms(&denoise::apply(noisy.view(), &local).unwrap());
        eprintln!("{id}: positions {raw:.5} → {local:.5} px (NLM without the lattice search)");
        assert!(local <= 1.05 * raw, "{id}: positions {raw} → {local} px after NLM without the lattice search");
    }
}

/// The lattice search averages each column with others one or two lattice vectors away; where
/// the lattice is strained those are displaced. On the shared 2 % strain step, made very noisy
/// (Gaussian noise of 0.3 × the image's range), GPA after NLM must keep both plateaus (no strain
/// averaged away) while its scatter falls.
#[test]
fn strain_survives_the_lattice_search() {
    use atomlens_core::image::{Region, region_stats};
    use atomlens_core::strain::gpa::{GpaParams, analyse};
    let Some(shared) = shared_dir() else { return skip("strain_survives_the_lattice_search") };
    let img = image(&shared.join("data/synthetic/syn_strain_step_exx2pct.tif"));
    let (lo, hi) = img.iter().fold((f32::MAX, f32::MIN), |(a, b), &v| (a.min(v), b.max(v)));
    let mut s = 11u64;
    let noisy = img.mapv(|v| {
        let mut u = || {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        v + 0.3 * (hi - lo) * ((-2.0 * u().ln()).sqrt() * (2.0 * std::f64::consts::PI * u()).cos()) as f32
    });
    let plateaus = |a: &Array2<f32>| {
        let params = GpaParams { reference: Some(Region { x0: 40, y0: 64, x1: 200, y1: 448 }), ..Default::default() };
        let r = analyse(a.view(), &params).unwrap();
        let at = |x0, x1| region_stats(r.exx.view(), Region { x0, y0: 64, x1, y1: 448 });
        (at(100, 200), at(320, 430))
    };
    let nlm = Method::NonLocalMeans { patch: 2, search: 2, h: None, noise: Noise::Auto, lattice: true };
    let (raw, cleaned) = (plateaus(&noisy), plateaus(&denoise::apply(noisy.view(), &nlm).unwrap()));
    eprintln!("εxx raw: left {:+.5} ± {:.5}, right {:.5} ± {:.5}", raw.0.0, raw.0.1, raw.1.0, raw.1.1);
    eprintln!("εxx NLM: left {:+.5} ± {:.5}, right {:.5} ± {:.5}", cleaned.0.0, cleaned.0.1, cleaned.1.0, cleaned.1.1);
    assert!(
        cleaned.0.0.abs() < 1e-3 && (cleaned.1.0 - 0.02).abs() <= (raw.1.0 - 0.02).abs() + 5e-4,
        "{cleaned:?} vs {raw:?}"
    );
    assert!(cleaned.0.1 < 0.6 * raw.0.1 && cleaned.1.1 < 0.6 * raw.1.1, "scatter {cleaned:?} vs {raw:?}");
}
