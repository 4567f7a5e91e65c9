use super::*;
use crate::columns::{ColumnParams, find_and_fit};
use crate::metrics::match_points;
use crate::particles::segment::{ParticleParams, segment};
use crate::synth::{NanoparticleParams, Synthetic, nanoparticle};

/// The test dose: 10 counts at the peak of a one-atom column of σ = 0.05 nm, i.e. a
/// single-atom cross-section of 393 counts — about 3×10⁴ e⁻/Å² for a Pt atom scattering 0.2 %
/// of the beam into the HAADF detector, a typical dose for counting (De Backer et al. 2016).
fn particle(seed: u64, ripple: f64) -> Synthetic {
    nanoparticle(&NanoparticleParams {
        size: 384,
        diameter_nm: 4.0,
        support_ripple: ripple,
        seed,
        ..Default::default()
    })
    .unwrap()
}

/// Fitted columns, their cross-sections and the true atoms of each fitted column (by matching).
fn measured(s: &Synthetic) -> (Vec<f64>, Vec<u32>) {
    let r = find_and_fit(s.image.view(), &ColumnParams::default()).unwrap();
    let found: Vec<[f64; 2]> = r.columns.iter().map(|c| [c.x, c.y]).collect();
    let spacing = r.spacing.unwrap();
    let seg = segment(s.image.view(), Some(spacing), &ParticleParams::default()).unwrap();
    let mask = seg.labels.mapv(|l| l == 1);
    let near = crate::image::morphology::distance_squared_to(mask.view());
    let cs = cross_sections(s.image.view(), &found, near.view(), spacing).unwrap();
    let truth: Vec<[f64; 2]> = s.columns.iter().map(|c| [c.x, c.y]).collect();
    let m = match_points(&truth, &found, 4.0);
    let mut atoms = vec![0u32; found.len()];
    for &(t, f, _) in &m.pairs {
        atoms[f] = s.columns[t].atoms;
    }
    (cs.values, atoms)
}

#[test]
fn cross_sections_are_linear_in_the_atoms() {
    let s = particle(3, 0.05);
    let (values, atoms) = measured(&s);
    // 10 counts peak × 2π σ² (σ = 2.5 px) = 392.7 per atom, recovered within 3 %.
    let (num, den) = values
        .iter()
        .zip(&atoms)
        .filter(|(_, a)| **a > 0)
        .fold((0.0, 0.0), |s, (v, &a)| (s.0 + v * a as f64, s.1 + (a * a) as f64));
    let unit = num / den;
    assert!((unit / 392.7 - 1.0).abs() < 0.03, "unit {unit}");
}

#[test]
#[cfg_attr(debug_assertions, ignore = "fits ~300 columns and a 40-component mixture; run with --release")]
fn statistical_counting_is_exact_for_95_percent_of_columns() {
    for seed in [3, 11] {
        let s = particle(seed, 0.05);
        let (values, truth) = measured(&s);
        let (counts, m) = count_atoms(&values, &Counting::default()).unwrap();
        let m = m.unwrap();
        let scored: Vec<(u32, u32)> =
            counts.iter().zip(&truth).filter(|(_, t)| **t > 0).map(|(&c, &t)| (c, t)).collect();
        let exact = scored.iter().filter(|(c, t)| c == t).count();
        let frac = exact as f64 / scored.len() as f64;
        eprintln!("seed {seed}: {exact}/{} exact, {} components, unit {:.1}", scored.len(), m.means.len(), m.unit);
        assert!(
            frac >= 0.95,
            "seed {seed}: {frac:.3} exact; {:?}",
            scored.iter().filter(|(c, t)| c != t).collect::<Vec<_>>()
        );
    }
}

#[test]
fn library_counting_takes_the_nearest_entry() {
    let lib: Vec<f64> = (1..=20).map(|n| 400.0 * n as f64).collect();
    let (c, m) = count_atoms(&[390.0, 1230.0, 8100.0, 50.0], &Counting::Library(lib)).unwrap();
    assert_eq!(c, vec![1, 3, 20, 0]);
    assert!(m.is_none());
    assert!(count_atoms(&[1.0], &Counting::Library(vec![2.0, 1.0])).is_err());
    assert!(count_atoms(&[f64::NAN], &Counting::default()).is_err());
}

#[test]
fn mixture_of_known_thickness_classes_is_recovered() {
    // Columns of 3–12 atoms (unit 100, spread 12): ICL picks the ten classes.
    use rand::{SeedableRng, rngs::SmallRng};
    use rand_distr::{Distribution, Normal};
    let mut rng = SmallRng::seed_from_u64(1);
    let noise = Normal::new(0.0, 12.0).unwrap();
    let truth: Vec<u32> = (0..400).map(|i| 3 + (i % 10) as u32).collect();
    let v: Vec<f64> = truth.iter().map(|&n| 100.0 * n as f64 + noise.sample(&mut rng)).collect();
    let (c, m) = count_atoms(&v, &Counting::default()).unwrap();
    let m = m.unwrap();
    assert_eq!(m.means.len(), 10, "{:?}", m.icl);
    assert!((m.unit - 100.0).abs() < 1.0);
    assert!(c.iter().zip(&truth).filter(|(a, b)| a == b).count() >= 395);
}

#[test]
fn one_thickness_class_cannot_be_counted_statistically() {
    use rand::{SeedableRng, rngs::SmallRng};
    use rand_distr::{Distribution, Normal};
    let mut rng = SmallRng::seed_from_u64(2);
    let d = Normal::new(500.0, 10.0).unwrap();
    let v: Vec<f64> = (0..80).map(|_| d.sample(&mut rng)).collect();
    let e = count_atoms(&v, &Counting::default()).unwrap_err();
    assert!(e.to_string().contains("one class"), "{e}");
    assert!(count_atoms(&[1.0, 2.0], &Counting::default()).is_err());
}

#[test]
fn model_stacks_atoms_about_the_mid_plane() {
    let m = stack_atoms(&[[1.0, 2.0], [3.0, 4.0]], &[3, 2], 10.0, 2.0);
    assert_eq!(
        m,
        vec![[10.0, 20.0, -2.0], [10.0, 20.0, 0.0], [10.0, 20.0, 2.0], [30.0, 40.0, -1.0], [30.0, 40.0, 1.0]]
    );
    let x = xyz(&m, "Pt", "test");
    assert!(x.starts_with("5\ntest\nPt 10.0000 20.0000 -2.0000\n"));
}

#[test]
fn libraries_parse_from_plain_and_csv_text() {
    assert_eq!(
        parse_library("# Pt [110]\natoms,cross_section\n1, 2.5\n2,5.1\n\n3 7.4\n").unwrap(),
        vec![2.5, 5.1, 7.4]
    );
    assert_eq!(parse_library("1.0\n2.0").unwrap(), vec![1.0, 2.0]);
    assert!(parse_library("1.0\n2,x2").unwrap_err().to_string().contains("line 2"));
    assert!(parse_library("# nothing\n").is_err());
}

/// Cross-sections as frozen-phonon HAADF gives them (the pt_to586_110 at 10⁵ e⁻/Å²):
/// sub-linear in the atoms, each class scattered 0.3 of a step. A free mixture finds one class.
fn realistic_draw(seed: u64, columns: usize, scatter: f64) -> (Vec<f64>, Vec<u32>) {
    draw_on(seed, columns, scatter, 0.0)
}

/// The same with the curve meeting zero at `offset` atoms.
fn draw_on(seed: u64, columns: usize, scatter: f64, offset: f64) -> (Vec<f64>, Vec<u32>) {
    use rand::{Rng, SeedableRng, rngs::SmallRng};
    use rand_distr::{Distribution, Normal};
    let mut rng = SmallRng::seed_from_u64(seed);
    let mu = |n: f64| 100.0 * (n - offset) - (n - offset).powi(2);
    let truth: Vec<u32> = (0..columns).map(|_| rng.random_range(3..=11)).collect();
    let v = truth
        .iter()
        .map(|&n| {
            let step = mu(n as f64 + 0.5) - mu(n as f64 - 0.5);
            mu(n as f64) + Normal::new(0.0, scatter * step).unwrap().sample(&mut rng)
        })
        .collect();
    (v, truth)
}

#[test]
#[cfg_attr(debug_assertions, ignore = "fits 40 candidate mixtures per draw; run with --release")]
fn counts_on_one_curve_resolve_classes_scattered_a_fifth_of_a_step() {
    for (seed, n, scatter) in [(1, 120, 0.1), (2, 120, 0.15), (3, 120, 0.2), (4, 300, 0.2), (6, 88, 0.2)] {
        let (v, truth) = realistic_draw(seed, n, scatter);
        let (c, m) = count_atoms(&v, &Counting::default()).unwrap();
        let m = m.unwrap();
        let exact = c.iter().zip(&truth).filter(|(a, b)| a == b).count();
        let (total, sd) = m.total(&v);
        let want: u32 = truth.iter().sum();
        eprintln!("{n} columns, scatter {scatter}: {exact} exact, total {total:.1} ± {sd:.1} of {want}");
        assert!(exact as f64 >= 0.95 * n as f64, "{exact} of {n}; {:?}", m.atoms);
        assert!((total - want as f64).abs() <= 3.0 * sd + 1.0, "{total} ± {sd} vs {want}");
        assert!((m.unit / 100.0 - 1.0).abs() < 0.05 && (m.curvature + 1.0).abs() < 0.5, "{} {}", m.unit, m.curvature);
    }
}

#[test]
#[cfg_attr(debug_assertions, ignore = "fits 40 candidate mixtures per draw; run with --release")]
fn a_curve_meeting_zero_past_the_origin_is_followed() {
    // As a simulated Pt [110] library: the first atom scatters less than the next ones.
    let (v, truth) = draw_on(10, 150, 0.15, 0.3);
    let (c, m) = count_atoms(&v, &Counting::default()).unwrap();
    let exact = c.iter().zip(&truth).filter(|(a, b)| a == b).count();
    assert!(exact >= 145, "{exact} of 150; offset {}", m.unwrap().offset);
}

#[test]
#[cfg_attr(debug_assertions, ignore = "fits 40 candidate mixtures per draw; run with --release")]
fn classes_scattered_a_third_of_a_step_are_refused_or_counted_right() {
    // Past ~0.3 of a step the classes merge; a count may be refused but not confidently wrong.
    for (seed, n, scatter) in [(5, 300, 0.3), (8, 120, 0.3), (9, 120, 0.4)] {
        let (v, truth) = realistic_draw(seed, n, scatter);
        match count_atoms(&v, &Counting::default()) {
            Err(e) => {
                eprintln!("{n} columns, scatter {scatter}: {e}");
                assert!(e.to_string().contains("library of cross-sections"), "{e}")
            }
            Ok((c, _)) => {
                let exact = c.iter().zip(&truth).filter(|(a, b)| a == b).count();
                assert!(exact as f64 >= 0.7 * n as f64, "{exact} of {n} at scatter {scatter}");
            }
        }
    }
}

/// A convex particle's true counts never dip below two opposite neighbours' mean by more than
/// the slack; counts scrambled by one or two atoms do, and are flagged.
#[test]
fn counts_that_break_convexity_are_flagged() {
    let s = crate::synth::nanoparticle(&crate::synth::NanoparticleParams::default()).unwrap();
    let pts: Vec<[f64; 2]> = s.columns.iter().map(|c| [c.x, c.y]).collect();
    let atoms: Vec<u32> = s.columns.iter().map(|c| c.atoms).collect();
    let spacing = crate::lattice::neighbours::nearest_distances(&pts, 10.0).into_iter().fold(f64::INFINITY, f64::min);
    let truth = super::convexity(&pts, &atoms, spacing);
    assert!(truth.triples > 500 && truth.broken == 0 && truth.warning().is_none(), "{truth:?}");
    let scrambled: Vec<u32> = atoms
        .iter()
        .enumerate()
        .map(|(k, &n)| if k % 3 == 0 { n.saturating_sub(2) } else { n + (k % 2) as u32 })
        .collect();
    let bad = super::convexity(&pts, &scrambled, spacing);
    assert!(bad.warning().is_some_and(|w| w.contains("convexity")), "{bad:?}");
}
