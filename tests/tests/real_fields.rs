//! Columns in fields of 8–18 frozen-phonon particles on amorphous carbon (`sim/fields.py`,
//! 1024² and 2048²) at 10⁴ e⁻/Å²: every on-axis Pt particle's columns found (≥ 95 %), nothing
//! on the support. One spacing serves the whole field today (the particles are all Pt, 7.8–9.9
//! px apart); per-particle lattices are not built yet.
#![allow(clippy::unwrap_used)]
use atomlens_core::columns::{ColumnParams, find, fit_found};
use atomlens_core::metrics::match_points;
use atomlens_tests::{csv_rows, read_image, sim_dir, skip_sim};

/// Measured (seed 1): truncated octahedra [110] 88/88, cuboctahedra [100] 165/169 (single
/// adatoms missed) in every field, 0 spurious on the support; the ordered PtCo particle [100]
/// 196–206 of 249 (its Co columns are ~1/6 of a Pt column's intensity: not yet found by
/// significance), reported, not asserted.
#[test]
fn on_axis_pt_particles_in_simulated_fields() {
    let Some(sim) = sim_dir() else { return skip_sim("on_axis_pt_particles_in_simulated_fields") };
    for field in ["field_1", "field_2", "field_3"] {
        if !sim.join(format!("{field}.tif")).is_file() {
            return skip_sim("on_axis_pt_particles_in_simulated_fields (no composed fields)");
        }
        let img = read_image(&sim.join(format!("{field}.tif")));
        let px_a = img.calibration.pixel_size * 10.0;
        let rows = |f: &str| csv_rows(&sim.join(format!("{field}_{f}.csv")));
        let truth: Vec<Vec<f64>> =
            rows("truth").iter().map(|r| r.iter().map(|v| v.parse().unwrap()).collect()).collect();
        let particles = rows("particles");
        let noisy = atomlens_core::synth::at_dose(img.view(), 1e4 * px_a * px_a, 1);
        let p = ColumnParams::default();
        let r = fit_found(noisy.view(), &find(noisy.view(), img.calibration.pixel_nm(), &p).unwrap(), &p).unwrap();
        let pts: Vec<[f64; 2]> = r.columns.iter().map(|c| [c.x, c.y]).collect();
        let tp: Vec<[f64; 2]> = truth.iter().map(|t| [t[0], t[1]]).collect();
        let m = match_points(&tp, &pts, 0.5 / px_a);
        let matched: std::collections::HashSet<usize> = m.pairs.iter().map(|p| p.0).collect();
        for q in &particles {
            let (id, name, on_axis): (f64, &str, bool) = (q[0].parse().unwrap(), &q[1], q[5] == "1");
            let cols: Vec<usize> = (0..truth.len()).filter(|&i| truth[i][4] == id).collect();
            let got = cols.iter().filter(|i| matched.contains(*i)).count();
            eprintln!("{field} particle {id} {name}: {got} of {} columns", cols.len());
            if on_axis && name.starts_with("pt_") {
                assert!(got as f64 >= 0.95 * cols.len() as f64, "{field} {name}: {got} of {}", cols.len());
            }
        }
        let outside = |j: usize| {
            particles.iter().all(|q| {
                let (cx, cy, rad): (f64, f64, f64) =
                    (q[2].parse().unwrap(), q[3].parse().unwrap(), q[4].parse().unwrap());
                (pts[j][0] - cx).hypot(pts[j][1] - cy) > rad + 3.0
            })
        };
        let on_support = m.extra.iter().filter(|&&j| outside(j)).count();
        eprintln!("{field}: {} columns, {on_support} on the support", pts.len());
        assert!(on_support as f64 <= 0.02 * pts.len() as f64, "{field}: {on_support} columns on the support");
    }
}

/// Every particle of the simulated fields found by the particle chain (`atomlens particles`),
/// none on the support, at 10⁴ e⁻/Å². Measured: 8/8, 10/10, 18/18, no extra; the 2048² field in
/// ~4 s for the whole command.
#[test]
fn every_particle_of_the_simulated_fields_is_found() {
    let Some(sim) = sim_dir() else { return skip_sim("every_particle_of_the_simulated_fields_is_found") };
    for field in ["field_1", "field_2", "field_3"] {
        if !sim.join(format!("{field}.tif")).is_file() {
            return skip_sim("every_particle_of_the_simulated_fields_is_found (no composed fields)");
        }
        let img = read_image(&sim.join(format!("{field}.tif")));
        let px_a = img.calibration.pixel_size * 10.0;
        // Particles: id, name, cx, cy, radius_px, on_axis, cut.
        let truth: Vec<[f64; 3]> = csv_rows(&sim.join(format!("{field}_particles.csv")))
            .iter()
            .map(|v| [v[2].parse().unwrap(), v[3].parse().unwrap(), v[4].parse().unwrap()])
            .collect();
        let noisy = atomlens_core::synth::at_dose(img.view(), 1e4 * px_a * px_a, 1);
        let a = atomlens_core::particles::chain::analyse(noisy.view(), &Default::default()).unwrap();
        let centres: Vec<[f64; 2]> = a.particles.iter().map(|q| q.particle.centroid).collect();
        let near = |c: &[f64; 2], t: &[f64; 3]| (c[0] - t[0]).hypot(c[1] - t[1]) < t[2];
        let found = truth.iter().filter(|t| centres.iter().any(|c| near(c, t))).count();
        let extra = centres.iter().filter(|c| !truth.iter().any(|t| near(c, t))).count();
        eprintln!("{field}: {found} of {} particles, {extra} extra", truth.len());
        assert!(
            found as f64 >= 0.95 * truth.len() as f64 && extra == 0,
            "{field}: {found} of {}, {extra} extra",
            truth.len()
        );
    }
}
