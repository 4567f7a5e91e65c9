//! Atom counting on frozen-phonon particles (`sim/`): the `particles` chain's statistical counts
//! against the simulation's atoms per column. What a count must never be is confidently wrong:
//! either it holds (counts within one atom, the total within its stated uncertainty) or it is
//! refused with the reason.
#![allow(clippy::unwrap_used)]
use atomlens_core::metrics::match_points;
use atomlens_core::particles::chain::{AnalysisParams, analyse};
use atomlens_tests::{csv_rows, read_image, sim_dir, skip_sim};

#[test]
fn counts_on_frozen_phonon_particles_hold_or_are_refused() {
    let Some(sim) = sim_dir() else { return skip_sim("counts_on_frozen_phonon_particles_hold_or_are_refused") };
    for name in ["pt_to586_110", "pt_cubo923_100"] {
        if !sim.join(format!("{name}.tif")).is_file() {
            eprintln!("SKIPPED {name}: not simulated (sim/make.py OUT {name})");
            continue;
        }
        let img = read_image(&sim.join(format!("{name}.tif")));
        let px_a = img.calibration.pixel_size * 10.0;
        let rows = csv_rows(&sim.join(format!("{name}_truth.csv")));
        let truth: Vec<([f64; 2], u32)> =
            rows.iter().map(|r| ([r[0].parse().unwrap(), r[1].parse().unwrap()], r[2].parse().unwrap())).collect();
        let pts: Vec<[f64; 2]> = truth.iter().map(|t| t.0).collect();
        for dose in [1e4, 1e5] {
            let noisy = atomlens_core::synth::at_dose(img.view(), dose * px_a * px_a, 1);
            let a = analyse(noisy.view(), &AnalysisParams::default()).unwrap();
            let r = a.particles.iter().max_by(|p, q| p.particle.area.total_cmp(&q.particle.area)).unwrap();
            let found: Vec<[f64; 2]> =
                r.columns.columns.iter().map(|&i| [a.columns.columns[i].x, a.columns.columns[i].y]).collect();
            let m = match_points(&pts, &found, 0.5 / px_a);
            if let Some(e) = &r.counting_error {
                eprintln!("{name} at {dose:e}: refused: {e}");
                assert!(e.contains("library") || e.contains("zone axis"), "{e}");
                continue;
            }
            let (total, sd) = r.atom_total().unwrap();
            let (mut exact, mut within_one) = (0, 0);
            let mut true_total = 0;
            for &(t, f, _) in &m.pairs {
                let (n, want) = (r.atoms[f], truth[t].1);
                exact += (n == want) as usize;
                within_one += (n.abs_diff(want) <= 1) as usize;
                true_total += want;
            }
            let counted: f64 = m.pairs.iter().map(|&(_, f, _)| r.atoms[f] as f64).sum();
            eprintln!(
                "{name} at {dose:e}: {exact} exact, {within_one} within one atom of {} matched columns; matched total {counted} \
                 vs {true_total}; particle total {total:.0} ± {sd:.0}; unit {:.4}, classes {:?}",
                m.pairs.len(),
                r.mixture.as_ref().map_or(0.0, |m| m.unit),
                r.mixture.as_ref().map(|m| m.atoms.clone()).unwrap_or_default()
            );
            assert!(
                within_one as f64 >= 0.9 * m.pairs.len() as f64,
                "{name} at {dose:e}: counts off by more than one atom"
            );
            assert!(
                (counted - true_total as f64).abs() <= 3.0 * sd + 0.05 * true_total as f64,
                "{name} at {dose:e}: total {counted} vs {true_total}"
            );
        }
    }
}

/// The same particle counted with the simulated library (`sim/library.py`, written by
/// `sim/make.py` as `library_pt_110.csv`), its values scaled to the dose's counts per pixel.
/// Measured (n ≤ 12, 2 configurations): 65 / 69 of 88 exact at 10⁴ / 10⁵, all within one atom.
#[test]
fn library_counts_on_the_frozen_phonon_particle() {
    let Some(sim) = sim_dir() else { return skip_sim("library_counts_on_the_frozen_phonon_particle") };
    let lib_path = sim.join("library_pt_110.csv");
    if !lib_path.is_file() {
        return skip_sim("library_counts_on_the_frozen_phonon_particle (no library_pt_110.csv)");
    }
    let lib = atomlens_core::particles::counting::parse_library(&std::fs::read_to_string(&lib_path).unwrap()).unwrap();
    let img = read_image(&sim.join("pt_to586_110.tif"));
    let px_a = img.calibration.pixel_size * 10.0;
    let rows = csv_rows(&sim.join("pt_to586_110_truth.csv"));
    let truth: Vec<([f64; 2], u32)> =
        rows.iter().map(|r| ([r[0].parse().unwrap(), r[1].parse().unwrap()], r[2].parse().unwrap())).collect();
    let pts: Vec<[f64; 2]> = truth.iter().map(|t| t.0).collect();
    for dose in [1e4, 1e5] {
        let scale = dose * px_a * px_a;
        let noisy = atomlens_core::synth::at_dose(img.view(), scale, 1);
        let p = AnalysisParams {
            counting: atomlens_core::particles::counting::Counting::Library(lib.iter().map(|v| v * scale).collect()),
            ..Default::default()
        };
        let a = analyse(noisy.view(), &p).unwrap();
        let r = a.particles.iter().max_by(|p, q| p.particle.area.total_cmp(&q.particle.area)).unwrap();
        let found: Vec<[f64; 2]> =
            r.columns.columns.iter().map(|&i| [a.columns.columns[i].x, a.columns.columns[i].y]).collect();
        let m = match_points(&pts, &found, 0.5 / px_a);
        let exact = m.pairs.iter().filter(|&&(t, f, _)| r.atoms[f] == truth[t].1).count();
        let within_one = m.pairs.iter().filter(|&&(t, f, _)| r.atoms[f].abs_diff(truth[t].1) <= 1).count();
        let counted: u32 = m.pairs.iter().map(|&(_, f, _)| r.atoms[f]).sum();
        let want: u32 = m.pairs.iter().map(|&(t, _, _)| truth[t].1).sum();
        eprintln!(
            "library at {dose:e}: {exact} exact, {within_one} within one of {} matched; total {counted} vs {want}",
            m.pairs.len()
        );
        assert!(within_one as f64 >= 0.9 * m.pairs.len() as f64, "library at {dose:e}: {within_one} within one");
        assert!(counted.abs_diff(want) as f64 <= 0.05 * want as f64, "library at {dose:e}: total {counted} vs {want}");
    }
}
