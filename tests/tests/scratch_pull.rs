#![allow(clippy::unwrap_used)]
use atomlens_core::columns::{ColumnParams, find_and_fit};
use atomlens_core::denoise::{Method, denoise};
use atomlens_core::fit::Noise;
use atomlens_io::{Limits, NamedFile};
use ndarray::Array2;
fn image(path: &std::path::Path) -> Array2<f32> {
    let s = atomlens_io::read_one(NamedFile::new("a.tif", std::fs::read(path).unwrap()), &Limits::NATIVE).unwrap();
    s[0].frame(0).unwrap().data
}
#[test]
fn scratch() {
    let dir = std::path::Path::new("../../shared/data/synthetic");
    let id = "syn_perovskite_two_sublattice";
    let noisy = image(&dir.join(format!("{id}.tif")));
    let truth: Vec<[f64; 2]> = std::fs::read_to_string(dir.join(format!("{id}_groundtruth.csv")))
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| {
            let v: Vec<f64> = l.split(',').take(2).map(|t| t.parse().unwrap()).collect();
            [v[0], v[1]]
        })
        .collect();
    let fit = |a: &Array2<f32>| find_and_fit(a.view(), &ColumnParams::default()).unwrap().columns;
    let raw = fit(&noisy);
    let out = denoise(noisy.view(), &Method::Bm3d { search: 8, noise: Noise::Auto }).unwrap();
    let den = fit(&out);
    // nearest truth for each raw column
    let near = |p: [f64; 2]| {
        truth
            .iter()
            .cloned()
            .min_by(|a, b| {
                ((a[0] - p[0]).powi(2) + (a[1] - p[1]).powi(2))
                    .total_cmp(&((b[0] - p[0]).powi(2) + (b[1] - p[1]).powi(2)))
            })
            .unwrap()
    };
    let (mut se_raw, mut se_den, mut dot, mut nrm, mut n) = ([0.0; 2], [0.0; 2], 0.0, 0.0, 0);
    for r in raw.iter() {
        let d = den
            .iter()
            .min_by(|a, b| {
                ((a.x - r.x).powi(2) + (a.y - r.y).powi(2)).total_cmp(&((b.x - r.x).powi(2) + (b.y - r.y).powi(2)))
            })
            .unwrap();
        let t = near([r.x, r.y]);
        let (er, ed) = ([r.x - t[0], r.y - t[1]], [d.x - t[0], d.y - t[1]]);
        if er[0].abs() > 0.2 || ed[0].abs() > 0.2 || (d.x - r.x).abs() > 0.2 {
            continue;
        }
        let s = (r.sublattice as usize).min(1);
        se_raw[s] += er[0] * er[0] + er[1] * er[1];
        se_den[s] += ed[0] * ed[0] + ed[1] * ed[1];
        // is the change (den - raw) along minus the raw error (towards truth) or random?
        dot += (d.x - r.x) * (-er[0]) + (d.y - r.y) * (-er[1]);
        nrm += (d.x - r.x).powi(2) + (d.y - r.y).powi(2);
        n += 1;
    }
    eprintln!(
        "n {n}; per sublattice raw {:?} den {:?}; change rms {:.4}; change·(−err)/|change|² {:.3}",
        se_raw,
        se_den,
        (nrm / n as f64).sqrt(),
        dot / nrm
    );
}
