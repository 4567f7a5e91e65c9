//! Denoisers on a frozen-phonon multislice Pt particle on carbon (`sim/`, truncated octahedron
//! [110]) at low dose: PSNR against the expected counts (the simulation × dose, no noise) and
//! column positions fitted on each result against the simulation's truth. Noise2Void is trained
//! on the noisy image alone, as a user would.
#![allow(clippy::unwrap_used)]
use atomlens_core::columns::{ColumnParams, find, fit_found};
use atomlens_core::denoise::{self, Method};
use atomlens_core::metrics::{match_points, psnr};
use atomlens_tests::{csv_points, read_image, sim_file, skip_sim};
use ndarray::Array2;

/// Measured (dose seed 1; Noise2Void 400 steps, seed 0), PSNR dB / position RMS pm — at 10³
/// e⁻/Å²: raw 24.94 / 8.0, NLM 32.52 / 4.8, BM3D 35.67 / 5.9, Noise2Void 33.91 / 6.7; at 10⁴:
/// raw 34.82 / 3.9, NLM 39.00 / 4.0, BM3D 42.42 / 3.8, Noise2Void 42.06 / 3.8.
#[test]
fn noise2void_on_a_realistic_particle() {
    let (Some(path), Some(truth)) = (sim_file("pt_to586_110.tif"), sim_file("pt_to586_110_truth.csv")) else {
        return skip_sim("noise2void_on_a_realistic_particle");
    };
    let img = read_image(&path);
    let px_a = img.calibration.pixel_size * 10.0;
    let truth = csv_points(&truth);
    for dose in [1e3, 1e4] {
        let per_px = dose * px_a * px_a;
        let clean = img.data.mapv(|v| (v.max(0.0) as f64 * per_px) as f32);
        let noisy = atomlens_core::synth::at_dose(img.view(), per_px, 1);
        let rms = |a: &Array2<f32>| -> f64 {
            let p = ColumnParams::default();
            let r = fit_found(a.view(), &find(a.view(), img.calibration.pixel_nm(), &p).unwrap(), &p).unwrap();
            let pts: Vec<[f64; 2]> = r.columns.iter().map(|c| [c.x, c.y]).collect();
            match_points(&truth, &pts, 0.5 / px_a).rms() * px_a * 100.0
        };
        let mut rows = vec![("raw", psnr(noisy.view(), clean.view(), 0.0), rms(&noisy))];
        for m in [Method::ALL[5], Method::ALL[6], Method::Noise2Void { steps: 400, seed: 0 }] {
            let out = denoise::apply(noisy.view(), &m).unwrap();
            rows.push((m.name(), psnr(out.view(), clean.view(), 0.0), rms(&out)));
        }
        for (name, p, r) in &rows {
            eprintln!("pt_to586_110 at {dose:e} e/Å²: {name:16} PSNR {p:5.2} dB, positions RMS {r:5.1} pm");
        }
        let (raw, nlm, n2v) = (rows[0], rows[1], rows[3]);
        assert!(n2v.1 >= nlm.1, "{dose:e}: Noise2Void PSNR {:.2} below NLM's {:.2}", n2v.1, nlm.1);
        assert!(n2v.1 > raw.1 + 3.0, "{dose:e}: Noise2Void PSNR {:.2} vs raw {:.2}", n2v.1, raw.1);
        assert!(n2v.2 <= 1.1 * raw.2, "{dose:e}: positions {:.1} pm after Noise2Void vs {:.1} raw", n2v.2, raw.2);
    }
}
