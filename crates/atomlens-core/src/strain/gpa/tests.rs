use super::*;
use crate::image::region_stats;
use crate::math::deformation::Strain;
use crate::synth::{StrainField, StrainedLatticeParams, strained_lattice};

fn lattice(field: StrainField, angle: f64, noise: f64) -> crate::synth::StrainedLattice {
    sized(256, field, angle, noise)
}

fn sized(size: usize, field: StrainField, angle: f64, noise: f64) -> crate::synth::StrainedLattice {
    let p = StrainedLatticeParams { size, spacing: 12.0, angle, sigma: 2.5, noise, seed: 3, field };
    strained_lattice(&p).unwrap()
}

/// Largest |measured − true| of each component over the core.
fn max_errors(r: &GpaResult, truth: Strain) -> [f64; 4] {
    let c = r.core();
    let want = [truth.exx, truth.eyy, truth.exy, truth.rotation];
    let mut err = [0.0f64; 4];
    for (k, (_, map)) in r.maps().iter().enumerate() {
        for y in c.y0..c.y1 {
            for x in c.x0..c.x1 {
                let e = (map[[y, x]] as f64 - want[k]).abs();
                err[k] = if e.is_nan() { f64::INFINITY } else { err[k].max(e) };
            }
        }
    }
    err
}

#[test]
fn uniform_strain_is_exact_away_from_the_borders() {
    let cases = [
        Strain { exx: 0.01, eyy: 0.0, exy: 0.0, rotation: 0.0 },
        Strain { exx: -0.02, eyy: 0.015, exy: 0.0, rotation: 0.0 },
        Strain { exx: 0.005, eyy: -0.01, exy: 0.008, rotation: 0.0 },
        Strain { exx: 0.0, eyy: 0.0, exy: 0.0, rotation: 2f64.to_radians() },
        Strain { exx: 0.012, eyy: -0.006, exy: -0.004, rotation: -1.5f64.to_radians() },
    ];
    // A lattice along the axes and one turned 17°.
    for angle in [0.0, 17f64.to_radians()] {
        for truth in cases {
            let l = lattice(StrainField::Uniform { strain: truth }, angle, 0.0);
            let p = GpaParams { g: Some(l.reference_g), refine: false, ..Default::default() };
            let r = analyse(l.image.data.view(), &p).unwrap();
            let err = max_errors(&r, truth);
            assert!(err.iter().all(|&e| e <= 2e-4), "lattice at {angle:.2} rad, {truth:?}: max errors {err:?}");
        }
    }
}

#[test]
fn noisy_uniform_strain_has_an_unbiased_mean() {
    let truth = Strain { exx: 0.01, eyy: -0.005, exy: 0.003, rotation: 0.01 };
    // 512² so the core holds enough independent resolution cells (a 256² core leaves ~3e-4 of
    // sampling scatter in the mean).
    let l = sized(512, StrainField::Uniform { strain: truth }, 0.4, 0.1);
    let r = analyse(l.image.data.view(), &GpaParams { g: Some(l.reference_g), refine: false, ..Default::default() })
        .unwrap();
    let want = [truth.exx, truth.eyy, truth.exy, truth.rotation];
    for ((name, map), w) in r.maps().into_iter().zip(want) {
        let (mean, _) = region_stats(map.view(), r.core());
        assert!((mean - w).abs() < 2e-4, "{name}: {mean} vs {w}");
    }
}

#[test]
fn automatic_g_vectors_refined_on_a_reference_measure_a_strain_step() {
    let field = StrainField::StepX { exx: 0.02, x0: 192.0, width: 4.0 };
    let l = sized(384, field, 0.2, 0.0);
    // Reference: the unstrained left, more than 3 resolution lengths from the step and the edges.
    let p = GpaParams { reference: Some(Region { x0: 64, y0: 64, x1: 140, y1: 320 }), ..Default::default() };
    let r = analyse(l.image.data.view(), &p).unwrap();
    assert!(r.resolution_px < 16.0 && r.border_px <= 64, "{} {}", r.resolution_px, r.border_px);
    // Found the unstrained lattice (spacing 12 px).
    let gl = |g: [f64; 2]| g[0].hypot(g[1]);
    assert!((gl(r.g[0]) * 12.0 - 1.0).abs() < 1e-4 && (gl(r.g[1]) * 12.0 - 1.0).abs() < 1e-4, "{:?}", r.g);
    let plateau = |x0, x1| region_stats(r.exx.view(), Region { x0, y0: 64, x1, y1: 320 }).0;
    let (left, right) = (plateau(64, 140), plateau(250, 320));
    assert!(left.abs() < 2e-4 && (right - 0.02).abs() < 2e-4, "left {left}, right {right}");
    for (name, map) in [("eyy", &r.eyy), ("exy", &r.exy), ("rotation", &r.rotation)] {
        let (m, _) = region_stats(map.view(), r.core());
        assert!(m.abs() < 2e-4, "{name} {m}");
    }
}

#[test]
fn strain_frame_rotates_the_tensor() {
    let truth = Strain { exx: 0.01, ..Default::default() };
    let l = lattice(StrainField::Uniform { strain: truth }, 0.0, 0.0);
    let base = GpaParams { g: Some(l.reference_g), refine: false, ..Default::default() };
    let turned = analyse(l.image.data.view(), &GpaParams { frame_angle: 30f64.to_radians(), ..base }).unwrap();
    let want = truth.in_frame(30f64.to_radians());
    let err = max_errors(&turned, want);
    assert!(err.iter().all(|&e| e <= 2e-4), "{err:?} for {want:?}");
}

#[test]
fn no_lattice_means_no_strain_map() {
    let field = StrainField::CoreShell { radius: 150.0, core: 60.0, compression: 0.02 };
    let l = sized(384, field, 0.1, 0.02);
    let core = Region { x0: 171, y0: 171, x1: 212, y1: 212 };
    let r = analyse(l.image.data.view(), &GpaParams { reference: Some(core), ..Default::default() }).unwrap();
    // Outside the particle the maps are NaN, not noise; inside they are measured.
    assert!(r.exx[[5, 5]].is_nan() && r.exx[[380, 380]].is_nan());
    assert!(r.exx[[191, 191]].is_finite());
    assert!((0.35..0.55).contains(&r.valid_fraction), "{}", r.valid_fraction);
    // Along +x from the centre the radial strain is εxx = −0.02, the tangential εyy = −s(1 − core/ρ).
    let (shell, _) = region_stats(r.exx.view(), Region { x0: 291, y0: 186, x1: 306, y1: 197 });
    assert!((shell + 0.02).abs() < 2e-3, "shell εxx {shell}");
    let (tangential, _) = region_stats(r.eyy.view(), Region { x0: 291, y0: 186, x1: 306, y1: 197 });
    let want = -0.02 * (1.0 - 60.0 / 107.0);
    assert!((tangential - want).abs() < 2e-3, "shell εyy {tangential} vs {want}");
    let (centre, _) = region_stats(r.exx.view(), core);
    assert!(centre.abs() < 2e-4, "core εxx {centre}");
}

#[test]
fn bad_requests_are_refused_with_reasons() {
    let l = lattice(StrainField::Uniform { strain: Strain::default() }, 0.0, 0.0);
    let img = l.image.data.view();
    let g = l.reference_g;
    let err = |p: GpaParams| analyse(img, &p).unwrap_err();
    // Collinear g-vectors.
    let e = err(GpaParams { g: Some([g[0], [2.0 * g[0][0], 2.0 * g[0][1]]]), ..Default::default() });
    assert!(e.to_string().contains("collinear"), "{e}");
    // A g beyond Nyquist, one at the origin.
    assert!(matches!(
        err(GpaParams { g: Some([[0.7, 0.0], g[1]]), ..Default::default() }),
        CoreError::InvalidParameter { .. }
    ));
    assert!(matches!(
        err(GpaParams { g: Some([[0.0, 0.0], g[1]]), ..Default::default() }),
        CoreError::InvalidParameter { .. }
    ));
    // A reference region outside the image.
    let e = err(GpaParams { reference: Some(Region { x0: 200, y0: 0, x1: 300, y1: 50 }), ..Default::default() });
    assert!(e.to_string().contains("inside the 256×256 image"), "{e}");
    assert!(matches!(err(GpaParams { mask_radius: 0.0, ..Default::default() }), CoreError::InvalidParameter { .. }));
    // Noise has no lattice; nor do fringes in one direction.
    let mut rng = 12345u64;
    let noise = Array2::from_shape_fn((128, 128), |_| {
        rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (rng >> 40) as f32
    });
    assert!(matches!(analyse(noise.view(), &GpaParams::default()), Err(CoreError::NoLattice { .. })));
    let fringes = Array2::from_shape_fn((128, 128), |(_, x)| (x as f32 * 0.7).sin());
    assert!(analyse(fringes.view(), &GpaParams::default()).is_err());
    // A reference region where there is no lattice.
    let cs = lattice(StrainField::CoreShell { radius: 60.0, core: 40.0, compression: 0.02 }, 0.0, 0.0);
    let p = GpaParams {
        g: Some(cs.reference_g),
        reference: Some(Region { x0: 0, y0: 0, x1: 30, y1: 30 }),
        ..Default::default()
    };
    let e = analyse(cs.image.data.view(), &p).unwrap_err();
    assert!(e.to_string().contains("reference region shows no g1 fringes"), "{e}");
}

#[test]
fn self_test_passes() {
    let cases = self_test().unwrap();
    assert_eq!(cases.len(), 4);
    for c in &cases {
        for k in &c.checks {
            assert!(k.passed(), "{}: {} measured {} vs {}", c.name, k.quantity, k.measured, k.truth);
        }
    }
}
#[test]
fn unstrained_particle_interior_reads_zero() {
    // The demo Pt particle is unstrained. Near its edge the fringes fade and the truncated
    // lattice bends the phase; the amplitude-weighted refinement keeps that rim from shifting
    // the reference lattice, so the interior reads ~0.
    let s = crate::synth::nanoparticle(&crate::synth::NanoparticleParams::default()).unwrap();
    let r = analyse(s.image.data.view(), &GpaParams::default()).unwrap();
    let d = 0.02 / r.g[0][0].hypot(r.g[0][1]);
    assert!((d / (0.3924 / 3f64.sqrt()) - 1.0).abs() < 2e-3, "d111 {d} nm");
    let centre = Region { x0: 216, y0: 216, x1: 296, y1: 296 };
    for (name, map) in r.maps() {
        let (m, _) = region_stats(map.view(), centre);
        assert!(m.abs() < 2e-3, "{name} {m}");
    }
}

#[test]
fn displacement_integrates_the_strain() {
    // Uniform εxx = 1 % against the unstrained lattice: u_x grows by 0.01 px per px along x,
    // u_y is flat; both zero on average over the reference.
    let truth = Strain { exx: 0.01, ..Default::default() };
    let l = lattice(StrainField::Uniform { strain: truth }, 0.3, 0.0);
    let p = GpaParams { g: Some(l.reference_g), refine: false, displacement: true, ..Default::default() };
    let r = analyse(l.image.data.view(), &p).unwrap();
    let [ux, uy] = r.displacement.as_ref().unwrap();
    let c = r.core();
    let (y, x0, x1) = ((c.y0 + c.y1) / 2, c.x0, c.x1 - 1);
    let slope = (ux[[y, x1]] - ux[[y, x0]]) as f64 / (x1 - x0) as f64;
    assert!((slope - 0.01).abs() < 2e-4, "du_x/dx {slope}");
    let dy = (uy[[y, x1]] - uy[[y, x0]]) as f64;
    assert!(dy.abs() < 0.02, "u_y varies by {dy} px");
    let (mean, _) = region_stats(ux.view(), r.reference);
    assert!(mean.abs() < 1e-6, "{mean}");
    assert!(analyse(l.image.data.view(), &GpaParams { displacement: false, ..p }).unwrap().displacement.is_none());
}
