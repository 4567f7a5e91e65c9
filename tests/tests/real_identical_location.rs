//! Identical location on the frozen-phonon pair (`sim/make.py`): `pt_to586_110` and
//! `pt_to586_110_cycled`, the same particle with 8 surface columns dissolved, 4 thinned by one
//! or two atoms and 3 new columns of 3 atoms, turned 1.2° about the cell's centre and shifted
//! (1.3, −0.9) Å as a stage would between sessions; at 2×10⁴ e⁻/Å², counted with the simulated
//! library (one model for both images).
#![allow(clippy::unwrap_used)]
use atomlens_core::Image;
use atomlens_core::metrics::match_points;
use atomlens_core::particles::compare::{Affine, CompareParams, Status, compare};
use atomlens_core::particles::counting::{Counting, parse_library};
use atomlens_tests::{csv_rows, read_image, sim_dir, skip_sim};

/// The stage move `sim/make.py` applies (`IL_TURN`, `IL_SHIFT`, about the 40 Å cell's centre).
const TURN_DEG: f64 = 1.2;
const SHIFT_A: [f64; 2] = [1.3, -0.9];
const CELL_A: f64 = 40.0;

/// Precision and recall of `flagged` positions against `truth` (within `radius` px).
fn scores(truth: &[[f64; 2]], flagged: &[[f64; 2]], radius: f64) -> (f64, f64) {
    let m = match_points(truth, flagged, radius);
    (m.pairs.len() as f64 / flagged.len().max(1) as f64, m.pairs.len() as f64 / truth.len().max(1) as f64)
}

#[test]
fn frozen_phonon_pair_at_realistic_dose() {
    let name = "frozen_phonon_pair_at_realistic_dose";
    let Some(sim) = sim_dir() else { return skip_sim(name) };
    let (b_path, a_path) = (sim.join("pt_to586_110.tif"), sim.join("pt_to586_110_cycled.tif"));
    let lib_path = sim.join("library_pt_110.csv");
    if !b_path.is_file() || !a_path.is_file() || !lib_path.is_file() {
        return skip_sim(&format!("{name} (the pair or library_pt_110.csv not simulated)"));
    }
    let (before, after) = (read_image(&b_path), read_image(&a_path));
    let px_a = before.calibration.pixel_size * 10.0;
    // Truth: every column in the before frame with its atoms before and after.
    let rows: Vec<[f64; 4]> = csv_rows(&sim.join("pt_to586_110_cycled_changes.csv"))
        .iter()
        .map(|r| [0, 1, 2, 3].map(|k| r[k].parse().unwrap()))
        .collect();
    let at = |keep: fn(&[f64; 4]) -> bool| rows.iter().filter(|r| keep(r)).map(|r| [r[0], r[1]]).collect::<Vec<_>>();
    let (lost, new) = (at(|r| r[3] == 0.0), at(|r| r[2] == 0.0));
    let total = |k: usize| rows.iter().map(|r| r[k]).sum::<f64>();
    let c = CELL_A / 2.0 / px_a;
    let truth = Affine::rotation_about(TURN_DEG.to_radians(), [c, c], [SHIFT_A[0] / px_a, SHIFT_A[1] / px_a]);
    let (h, w) = before.data.dim();
    let want_shift = truth.shift_at([(w as f64 - 1.0) / 2.0, (h as f64 - 1.0) / 2.0]);
    let lib = parse_library(&std::fs::read_to_string(&lib_path).unwrap()).unwrap();
    let dose = 2e4;
    let scale = dose * px_a * px_a;
    for seed in [1, 2] {
        let noisy = |img: &Image, s: u64| Image {
            data: atomlens_core::synth::at_dose(img.view(), scale, s),
            calibration: img.calibration.clone(),
        };
        let mut p = CompareParams::default();
        p.analysis.counting = Counting::Library(lib.iter().map(|v| v * scale).collect());
        let r = compare(&noisy(&before, seed), &noisy(&after, seed + 10), &p).unwrap();
        let s = &r.summary;
        let flagged = |st: Status| r.columns.iter().filter(|k| k.status == st).map(|k| [k.x, k.y]).collect::<Vec<_>>();
        let (lp, lr) = scores(&lost, &flagged(Status::Lost), 0.5 / px_a);
        let (np, nr) = scores(&new, &flagged(Status::New), 0.5 / px_a);
        let (d_rot, d_shift) = (s.rotation_deg - TURN_DEG, [s.shift[0] - want_shift[0], s.shift[1] - want_shift[1]]);
        eprintln!(
            "seed {seed}: {}\n  lost P {lp:.2} R {lr:.2}; new P {np:.2} R {nr:.2}; rotation off {d_rot:.4}° \
             (sd {:.4}), shift off ({:.3}, {:.3}) px (sd {:.3}); atoms true {} → {}",
            s.describe(),
            s.rotation_sd_deg,
            d_shift[0],
            d_shift[1],
            s.shift_sd[0],
            total(2),
            total(3)
        );
        let m = match_points(&lost, &flagged(Status::Lost), 0.5 / px_a);
        for &t in &m.missed {
            let near = r.columns.iter().min_by(|a, b| {
                let d =
                    |k: &&atomlens_core::particles::compare::ColumnChange| (k.x - lost[t][0]).hypot(k.y - lost[t][1]);
                d(a).total_cmp(&d(b))
            });
            eprintln!("  missed lost column at {:?}: nearest change {near:?}", lost[t]);
        }
        assert!(lp >= 0.9 && lr >= 0.9, "seed {seed}: lost precision {lp:.2}, recall {lr:.2}");
        assert!(np >= 0.9 && nr >= 0.9, "seed {seed}: new precision {np:.2}, recall {nr:.2}");
        assert!(d_rot.abs() <= 0.05, "seed {seed}: rotation off by {d_rot}°");
        assert!(d_shift[0].abs() <= 0.1 && d_shift[1].abs() <= 0.1, "seed {seed}: shift off by {d_shift:?} px");
        // Each kept column's change in atoms (4 columns thinned by 1–2, the rest unchanged).
        let kept: Vec<&atomlens_core::particles::compare::ColumnChange> =
            r.columns.iter().filter(|k| k.status == Status::Kept).collect();
        let truth_pts: Vec<[f64; 2]> = rows.iter().filter(|r| r[2] > 0.0 && r[3] > 0.0).map(|r| [r[0], r[1]]).collect();
        let truth_d: Vec<f64> = rows.iter().filter(|r| r[2] > 0.0 && r[3] > 0.0).map(|r| r[3] - r[2]).collect();
        let m = match_points(&truth_pts, &kept.iter().map(|k| [k.x, k.y]).collect::<Vec<_>>(), 0.5 / px_a);
        let d = |f: usize| kept[f].atoms_after as f64 - kept[f].atoms_before as f64;
        let exact = m.pairs.iter().filter(|p| d(p.1) == truth_d[p.0]).count();
        let within = m.pairs.iter().filter(|p| (d(p.1) - truth_d[p.0]).abs() <= 1.0).count();
        eprintln!("  kept: Δatoms exact {exact}, within one {within} of {}", m.pairs.len());
        assert!(within as f64 >= 0.9 * m.pairs.len() as f64, "seed {seed}: Δatoms within one for {within}");
        // Both images counted, with one model, within 5 % of the truth.
        for (counted, want) in [(s.atoms_before, total(2)), (s.atoms_after, total(3))] {
            assert!((counted as f64 / want - 1.0).abs() <= 0.05, "seed {seed}: {counted} atoms counted, {want} true");
        }
    }
}
