//! Alloy ordering on the frozen-phonon PtCo particle (`sim/make.py` `ptco_to1289_100`: a
//! truncated octahedron of 1289 atoms seen along [001], one Pt monolayer over a core that is
//! L1₀-ordered on one side (y below the centre; each core column all Pt or all Co) and a random
//! alloy on the other) against the simulation's atoms and Co atoms per column. Bars (issue 18):
//! ≥ 85 % of the ordered core's columns in the right class, the ordered flag right on ≥ 80 % of
//! the ordered and of the disordered core's columns. The atoms are counted as Pt-equivalents
//! with the Pt [001] library where simulated: a lower bound (measured 70 %), said so.
#![allow(clippy::unwrap_used)]
use atomlens_core::metrics::match_points;
use atomlens_core::particles::chain::{AnalysisParams, analyse};
use atomlens_core::particles::counting::{Counting, parse_library};
use atomlens_core::particles::ordering::Kind;
use atomlens_tests::{csv_rows, read_image, sim_dir, skip_sim};

/// One truth column: position (px), atoms, Co atoms.
struct Truth {
    at: [f64; 2],
    atoms: u32,
    co: u32,
}

/// Which part of the particle a true column belongs to.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Region {
    /// The ordered core (a Co column, or a Pt column between Co columns).
    Ordered,
    /// The random-alloy core.
    Disordered,
    /// The Pt shell's edge, or within one spacing of the boundary between the two halves.
    Other,
}

fn regions(t: &[Truth], spacing: f64) -> Vec<Region> {
    // The atoms' centre: the model split its core at the mean position of its atoms.
    let centre_y =
        t.iter().map(|c| c.atoms as f64 * c.at[1]).sum::<f64>() / t.iter().map(|c| c.atoms as f64).sum::<f64>();
    (0..t.len())
        .map(|i| {
            let near = |j: usize| j != i && (t[j].at[0] - t[i].at[0]).hypot(t[j].at[1] - t[i].at[1]) < 1.2 * spacing;
            let core = t[i].co > 0 || (0..t.len()).filter(|&j| near(j)).filter(|&j| t[j].co > 0).count() >= 2;
            let dy = t[i].at[1] - centre_y;
            if !core || dy.abs() < spacing {
                Region::Other
            } else if dy < 0.0 {
                Region::Ordered
            } else {
                Region::Disordered
            }
        })
        .collect()
}

#[test]
fn ordering_and_counts_on_the_frozen_phonon_ptco_particle() {
    let name = "ordering_and_counts_on_the_frozen_phonon_ptco_particle";
    let Some(sim) = sim_dir() else { return skip_sim(name) };
    let path = sim.join("ptco_to1289_100.tif");
    if !path.is_file() {
        return skip_sim(&format!("{name} (ptco_to1289_100 not simulated)"));
    }
    let img = read_image(&path);
    let px_a = img.calibration.pixel_size * 10.0;
    let truth: Vec<Truth> = csv_rows(&sim.join("ptco_to1289_100_truth.csv"))
        .iter()
        .map(|r| Truth {
            at: [r[0].parse().unwrap(), r[1].parse().unwrap()],
            atoms: r[2].parse().unwrap(),
            co: r[3].parse().unwrap(),
        })
        .collect();
    // [001] projection of fcc Pt: columns a/2 = 1.962 Å apart.
    let spacing = 1.962 / px_a;
    let region = regions(&truth, spacing);
    let count = |r: Region| region.iter().filter(|&&g| g == r).count();
    eprintln!(
        "truth: {} columns, {} ordered core, {} disordered core",
        truth.len(),
        count(Region::Ordered),
        count(Region::Disordered)
    );
    let library = sim.join("library_pt_100.csv");
    let library = library.is_file().then(|| parse_library(&std::fs::read_to_string(&library).unwrap()).unwrap());
    for dose in [1e4, 1e5] {
        let scale = dose * px_a * px_a;
        let noisy = atomlens_core::synth::at_dose(img.view(), scale, 1);
        let mut p = AnalysisParams::default();
        if let Some(lib) = &library {
            p.counting = Counting::Library(lib.iter().map(|v| v * scale).collect());
        }
        let a = analyse(noisy.view(), &p).unwrap();
        let r = a.particles.iter().max_by(|p, q| p.particle.area.total_cmp(&q.particle.area)).unwrap();
        let found: Vec<[f64; 2]> =
            r.columns.columns.iter().map(|&i| [a.columns.columns[i].x, a.columns.columns[i].y]).collect();
        let pts: Vec<[f64; 2]> = truth.iter().map(|t| t.at).collect();
        let m = match_points(&pts, &found, 0.5 / px_a);
        let o = &r.ordering;
        let (mut class_right, mut ordered_right, mut disordered_right) = (0, 0, 0);
        for &(t, f, _) in &m.pairs {
            let want = if 2 * truth[t].co >= truth[t].atoms { Kind::MRich } else { Kind::PtRich };
            match region[t] {
                Region::Ordered => {
                    class_right += (o.kind[f] == want) as usize;
                    ordered_right += o.ordered[f] as usize;
                }
                Region::Disordered => disordered_right += (!o.ordered[f]) as usize,
                Region::Other => {}
            }
        }
        let matched = |g: Region| m.pairs.iter().filter(|&&(t, _, _)| region[t] == g).count();
        let (n_ord, n_dis) = (matched(Region::Ordered), matched(Region::Disordered));
        let counted: u32 = m.pairs.iter().map(|&(_, f, _)| r.atoms.get(f).copied().unwrap_or(0)).sum();
        let want: u32 = m.pairs.iter().map(|&(t, _, _)| truth[t].atoms).sum();
        eprintln!(
            "ptco at {dose:e} ({}): {} of {} columns matched; ordered core: class {class_right}/{n_ord}, ordered flag \
             {ordered_right}/{n_ord}; disordered core: not ordered {disordered_right}/{n_dis}; {}; atoms {counted} of {want} \
             (particle {}{}); mixture {:?}",
            if library.is_some() { "library" } else { "statistical" },
            m.pairs.len(),
            truth.len(),
            o.summary().unwrap_or_else(|| "nothing ordered".into()),
            r.atoms.iter().sum::<u32>(),
            r.counting_error.as_ref().map(|e| format!(", refused: {e}")).unwrap_or_default(),
            o.mixture.as_ref().map(|m| (m.means.clone(), m.sigmas.clone()))
        );
        assert!(class_right as f64 >= 0.85 * n_ord as f64, "ordered core's classes: {class_right} of {n_ord}");
        assert!(ordered_right as f64 >= 0.8 * n_ord as f64, "ordered core flagged: {ordered_right} of {n_ord}");
        assert!(
            disordered_right as f64 >= 0.8 * n_dis as f64,
            "disordered core not flagged: {disordered_right} of {n_dis}"
        );
        // Alloy counts are Pt-equivalents: a lower bound, and said so.
        if r.counting_error.is_none() {
            assert!(
                counted as f64 <= 1.05 * want as f64,
                "atoms {counted} of {want}: the lower bound is above the truth"
            );
            assert!(r.counting_warning().is_some_and(|w| w.contains("lower bound")), "{:?}", r.counting_warning());
        }
    }
}
