use ndarray::{Array2, Array3, s};

use super::fbp::Filter;
use super::phantom::{Phantom, phantom, tilt_range, tilt_series};
use super::project::Geometry;
use super::*;

fn rms(a: &Array2<f32>, b: &Array2<f32>) -> f64 {
    (a.iter().zip(b.iter()).map(|(p, q)| ((p - q) as f64).powi(2)).sum::<f64>() / a.len() as f64).sqrt()
}

#[test]
fn sirt_error_decreases_monotonically_with_a_missing_wedge() {
    let vol = phantom(Phantom::SheppLogan, 64);
    let truth = vol.slice_y(32);
    let angles = tilt_range(-70.0, 70.0, 71);
    let g = Geometry::new(64, 64, &angles);
    let sino = g.forward(truth.view());
    let mut errors = Vec::new();
    let mut record = |x: &Array2<f32>| errors.push(rms(x, &truth));
    iterative::sirt_slice(&g, sino.view(), 40, false, Some(&mut record));
    eprintln!("SIRT error: {:.4} → {:.4}", errors[0], errors[errors.len() - 1]);
    assert!(errors.windows(2).all(|w| w[1] <= w[0]), "{errors:?}");
    assert!(errors[39] < 0.7 * errors[0]);
}

#[test]
fn fbp_on_a_full_range_recovers_the_phantom_and_sirt_beats_it_on_a_wedge() {
    let vol = phantom(Phantom::SheppLogan, 96);
    let truth = vol.slice_y(48);
    let full = tilt_range(-90.0, 88.0, 90);
    let g = Geometry::new(96, 96, &full);
    let f = fbp::fbp_slice(&g, g.forward(truth.view()).view(), Filter::RamLak);
    let e_full = rms(&f, &truth);
    // The phantom's range is 1: a few per cent RMS is the discretisation of its sharp edges.
    eprintln!("FBP full range RMS {e_full:.4}");
    assert!(e_full < 0.08, "{e_full}");
    // The mean density is kept to within the truncated kernel's zero-frequency response and the
    // projector's discretisation (measured +6 %).
    let (m_f, m_t) = (f.mean().unwrap(), truth.mean().unwrap());
    assert!((m_f - m_t).abs() < 0.08 * m_t, "mean {m_f} vs {m_t}");
    let wedge = tilt_range(-70.0, 70.0, 71);
    let g = Geometry::new(96, 96, &wedge);
    let sino = g.forward(truth.view());
    let e_fbp = rms(&fbp::fbp_slice(&g, sino.view(), Filter::SheppLogan), &truth);
    let e_sirt = rms(&iterative::sirt_slice(&g, sino.view(), 50, true, None), &truth);
    let e_sart = rms(&iterative::sart_slice(&g, sino.view(), 10, true), &truth);
    eprintln!("±70°: FBP {e_fbp:.4}, SIRT(50) {e_sirt:.4}, SART(10) {e_sart:.4}");
    assert!(e_sirt < e_fbp && e_sart < e_fbp, "FBP {e_fbp}, SIRT {e_sirt}, SART {e_sart}");
}

#[test]
fn reconstruct_a_noisy_faceted_particle_end_to_end() {
    let vol = phantom(Phantom::FacetedParticle, 48);
    let angles = tilt_range(-70.0, 70.0, 36);
    let series = tilt_series(&vol, &angles, Some(200.0), 4);
    let ts = TiltSeries { images: series.view(), angles_deg: &angles };
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let progress = |_: usize, _: usize| {
        calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    };
    let r = reconstruct(&ts, 48, &Algorithm::Sirt { iterations: 30, nonnegative: true }, &progress).unwrap();
    assert_eq!(r.dims(), (48, 48, 48));
    assert!(calls.into_inner() >= 1);
    // Inside vs outside the particle, well separated.
    let (inside, outside) = (r.data[[24, 24, 24]], r.data[[24, 24, 3]]);
    assert!(inside > 0.7 && outside.abs() < 0.2, "inside {inside}, outside {outside}");
    let err = (r.data.iter().zip(vol.data.iter()).map(|(a, b)| ((a - b) as f64).powi(2)).sum::<f64>()
        / r.data.len() as f64)
        .sqrt();
    assert!(err < 0.15, "RMS {err}");
}

#[test]
fn center_of_mass_alignment_undoes_known_shifts() {
    let vol = phantom(Phantom::CoreShell, 48);
    let angles = tilt_range(-60.0, 60.0, 13);
    let series = tilt_series(&vol, &angles, None, 0);
    // Shift every projection by a known integer amount (content moves by +d).
    let d: Vec<[i32; 2]> = (0..13i32).map(|k| [k % 5 - 2, k % 3 - 1]).collect();
    let mut moved = Array3::zeros(series.dim());
    for k in 0..13 {
        for y in 0..48 {
            for x in 0..48 {
                let (sy, sx) = (y as i32 - d[k][1], x as i32 - d[k][0]);
                if (0..48).contains(&sy) && (0..48).contains(&sx) {
                    moved[[k, y, x]] = series[[k, sy as usize, sx as usize]];
                }
            }
        }
    }
    let (shifts, aligned) = align::align_center_of_mass(moved.view());
    for (k, s) in shifts.iter().enumerate() {
        assert!(
            (s[0] - d[k][0] as f64).abs() < 0.05 && (s[1] - d[k][1] as f64).abs() < 0.05,
            "{k}: {s:?} vs {:?}",
            d[k]
        );
    }
    let diff = (&aligned.slice(s![.., 4..44, 4..44]) - &series.slice(s![.., 4..44, 4..44])).mapv(f32::abs);
    assert!(diff.iter().copied().fold(0.0, f32::max) < 0.05 * series.iter().copied().fold(0.0, f32::max));
}

#[test]
fn bad_tilt_series_are_refused_with_the_reason() {
    let img = Array3::from_elem((3, 8, 8), 1.0f32);
    let run = |angles: &[f64], images: &Array3<f32>| {
        let ts = TiltSeries { images: images.view(), angles_deg: angles };
        reconstruct(&ts, 8, &Algorithm::Fbp { filter: Filter::Hann }, &|_, _| {}).unwrap_err().to_string()
    };
    assert!(run(&[0.0, 10.0], &img).contains("2 angles for 3 projections"));
    assert!(run(&[0.0, 10.0, 5.0], &img).contains("increase strictly: 10° then 5°"));
    assert!(run(&[0.0, 10.0, 10.0], &img).contains("increase strictly"));
    assert!(run(&[0.0], &Array3::from_elem((1, 8, 8), 1.0f32)).contains("at least 2"));
    assert!(run(&[-95.0, 0.0, 10.0], &img).contains("±90°"));
    let mut nan = img.clone();
    nan[[1, 2, 2]] = f32::NAN;
    assert!(run(&[0.0, 5.0, 10.0], &nan).contains("NaN"));
}

#[test]
fn an_offset_tilt_axis_is_found_and_undone() {
    // The Shepp–Logan tilt series with every projection moved 2.6 px along x, as when the tilt
    // axis is not at the image centre.
    let base = phantom(Phantom::SheppLogan, 64);
    let angles = tilt_range(-70.0, 70.0, 36);
    let series = tilt_series(&base, &angles, Some(2000.0), 3);
    let moved = align::shift_x(series.view(), -2.6);
    let found = align::estimate_axis_offset(moved.view(), &angles);
    eprintln!("axis offset found {found:.2} px (truth 2.6)");
    assert!((found - 2.6).abs() <= 0.3, "{found}");
    // Undoing it brings back most of the reconstruction quality of the centred series (two
    // linear resamplings blur it a little: 0.110 → 0.134 measured, against 0.204 offset).
    let g = Geometry::new(64, 64, &angles);
    let rms_of = |s: &Array3<f32>| {
        let slice = fbp::fbp_slice(&g, s.slice(ndarray::s![.., 32, ..]).view(), Filter::SheppLogan);
        rms(&slice, &base.slice_y(32))
    };
    let (centred, off, undone) = (rms_of(&series), rms_of(&moved), rms_of(&align::shift_x(moved.view(), found)));
    eprintln!("slice RMS: centred {centred:.4}, offset {off:.4}, undone {undone:.4}");
    assert!(undone < 1.3 * centred && undone < 0.7 * off, "centred {centred}, offset {off}, undone {undone}");
}

#[test]
fn cross_correlation_alignment_undoes_jitter() {
    // A core–shell tilt series with every projection jittered by up to ±3 px in x and y; scored
    // by how far the reconstruction lands from that of the unjittered series.
    let base = phantom(Phantom::CoreShell, 64);
    let angles = tilt_range(-60.0, 60.0, 31);
    let series = tilt_series(&base, &angles, None, 0);
    // The zero-tilt projection is the reference (where along the axis the object sits is arbitrary
    // to any alignment): it keeps its place.
    let jitter: Vec<[f64; 2]> = (0..31)
        .map(|k| if k == 15 { [0.0; 2] } else { [((k * 3) % 7) as f64 - 3.0, ((k * 5 + 2) % 7) as f64 - 3.0] })
        .collect();
    let mut moved = Array3::zeros(series.dim());
    for (k, j) in jitter.iter().enumerate() {
        let m = align::shift_x(series.slice(ndarray::s![k..k + 1, .., ..]), -j[0]);
        for y in 0..64 {
            let sy = y as f64 - j[1];
            if (0.0..64.0).contains(&sy) {
                for x in 0..64 {
                    moved[[k, y, x]] = m[[0, sy as usize, x]];
                }
            }
        }
    }
    let g = Geometry::new(64, 64, &angles);
    let recon =
        |s: &Array3<f32>, y: usize| fbp::fbp_slice(&g, s.slice(ndarray::s![.., y, ..]).view(), Filter::SheppLogan);
    let (found, aligned) = align::align_cross_correlation(moved.view(), &angles, false).unwrap();
    // Every projection's shift recovered (to the axis offset found, common to all).
    let common = found[15][0];
    for (f, j) in found.iter().zip(&jitter) {
        assert!((f[0] - common - j[0]).abs() < 0.05 && (f[1] - j[1]).abs() < 0.05, "{f:?} vs {j:?}");
    }
    // A smooth sphere's slices change little with the centre: found -0.31 px here.
    assert!(common.abs() < 0.4, "axis offset {common}");
    let (mut off, mut fixed) = (0.0, 0.0);
    for y in [24, 32, 40] {
        let reference = recon(&series, y);
        off += rms(&recon(&moved, y), &reference);
        fixed += rms(&recon(&aligned, y), &reference);
    }
    eprintln!("slice RMS from the unjittered reconstruction: jittered {off:.4}, aligned {fixed:.4}");
    assert!(fixed < 0.35 * off, "jittered {off}, aligned {fixed}");
}

/// RMS error of the shifts `found` for projections moved by `jitter`, modulo a move of the whole
/// object by (dx, dy, dz), which shifts projection k by (dx cos θk + dz sin θk, dy) and which no
/// alignment can see (the reconstruction only moves).
fn shift_error(found: &[[f64; 2]], jitter: &[[f64; 2]], angles: &[f64]) -> f64 {
    let n = angles.len();
    let (c, sn): (Vec<f64>, Vec<f64>) = angles.iter().map(|a| (a.to_radians().cos(), a.to_radians().sin())).unzip();
    let ex: Vec<f64> = found.iter().zip(jitter).map(|(f, j)| f[0] - j[0]).collect();
    let ey: Vec<f64> = found.iter().zip(jitter).map(|(f, j)| f[1] - j[1]).collect();
    let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
    let (scc, sss, scs) = (dot(&c, &c), dot(&sn, &sn), dot(&c, &sn));
    let (bx, bz) = (dot(&ex, &c), dot(&ex, &sn));
    let det = scc * sss - scs * scs;
    let (dx, dz) = ((bx * sss - bz * scs) / det, (bz * scc - bx * scs) / det);
    let dy = ey.iter().sum::<f64>() / n as f64;
    ((0..n).map(|k| (ex[k] - dx * c[k] - dz * sn[k]).powi(2) + (ey[k] - dy).powi(2)).sum::<f64>() / n as f64).sqrt()
}

/// `series` with projection k moved by `jitter[k]` (content moves by +jitter; zero outside).
fn jittered(series: &Array3<f32>, jitter: &[[f64; 2]]) -> Array3<f32> {
    let (_, h, w) = series.dim();
    let mut moved = Array3::zeros(series.dim());
    for (k, j) in jitter.iter().enumerate() {
        moved.index_axis_mut(ndarray::Axis(0), k).assign(&crate::math::warp::resample(
            series.index_axis(ndarray::Axis(0), k),
            (h, w),
            0.0,
            |[x, y]| [x - j[0], y - j[1]],
        ));
    }
    moved
}

#[test]
#[cfg_attr(debug_assertions, ignore = "three rounds of 64 FBP slices and re-projections; run with --release")]
fn reprojection_refinement_undoes_jitter() {
    // A Shepp–Logan tilt series (many features, unlike the smooth core–shell) with every
    // projection jittered by up to ±2 px in x and y, the zero tilt kept in place.
    let base = phantom(Phantom::SheppLogan, 64);
    let angles = tilt_range(-60.0, 60.0, 31);
    let series = tilt_series(&base, &angles, Some(5000.0), 4);
    let jitter: Vec<[f64; 2]> = (0..31)
        .map(|k| if k == 15 { [0.0; 2] } else { [((k * 3) % 5) as f64 - 2.0, ((k * 7 + 1) % 5) as f64 - 2.0] })
        .collect();
    let moved = jittered(&series, &jitter);
    let (found, aligned) = align::refine_by_reprojection(moved.view(), &angles, 5).unwrap();
    let err = shift_error(&found, &jitter, &angles);
    eprintln!(
        "re-projection: shift error {err:.3} px RMS (jitter {:.2} px RMS)",
        (jitter.iter().map(|j| j[0] * j[0] + j[1] * j[1]).sum::<f64>() / 31.0).sqrt()
    );
    assert!(err < 0.3, "{err}");
    let g = Geometry::new(64, 64, &angles);
    let recon = |s: &Array3<f32>| fbp::fbp_slice(&g, s.slice(ndarray::s![.., 32, ..]).view(), Filter::SheppLogan);
    let reference = recon(&series);
    let (off, fixed) = (rms(&recon(&moved), &reference), rms(&recon(&aligned), &reference));
    eprintln!("slice 32 RMS from the unjittered reconstruction: jittered {off:.4}, refined {fixed:.4}");
    assert!(fixed < 0.25 * off, "jittered {off}, refined {fixed}");
}

/// A tilt series about an axis turned by `axis_deg` in the images (the projections about y,
/// each rotated by `axis_deg`), with Poisson noise at `dose` when given.
fn turned_series(kind: Phantom, n: usize, angles: &[f64], axis_deg: f64, dose: Option<f64>) -> Array3<f32> {
    let series = tilt_series(&phantom(kind, n), angles, None, 0);
    let mut turned = axis::make_vertical(series.view(), -axis_deg);
    if let Some(d) = dose {
        phantom::add_poisson(&mut turned, d, 11);
    }
    turned
}

#[test]
#[cfg_attr(debug_assertions, ignore = "a few hundred exact Fourier lines of 61 projections; run with --release")]
fn tilt_axis_direction_from_the_common_line() {
    // Scatter over seeds (measured): ±0.15° at dose 2 (≈ 40 counts at a particle's centre),
    // ±0.25° at dose 0.5, no bias; noise-free within 0.002°.
    let angles = tilt_range(-60.0, 60.0, 61);
    for (truth, dose, tolerance) in [
        (0.0, None, 0.01),
        (7.3, None, 0.01),
        (7.3, Some(2.0), 0.3),
        (-11.6, Some(2.0), 0.3),
        (84.0, Some(2.0), 0.3),
        (-2.4, Some(0.5), 0.5),
    ] {
        let series = turned_series(Phantom::Cluster, 96, &angles, truth, dose);
        let found = axis::estimate_direction(series.view()).unwrap();
        eprintln!("axis {truth}°, dose {dose:?}: found {:.3}° (contrast {:.3})", found.angle_deg, found.contrast);
        assert!((found.angle_deg - truth).abs() < tolerance, "{truth}° → {found:?}");
        assert!(found.contrast < 0.05, "{found:?}");
    }
    // Turning back by the angle found gives the series about y.
    let series = turned_series(Phantom::Cluster, 96, &angles, 7.3, None);
    let found = axis::estimate_direction(series.view()).unwrap();
    let back = axis::make_vertical(series.view(), found.angle_deg);
    let truth = tilt_series(&phantom(Phantom::Cluster, 96), &angles, None, 0);
    let inner = s![.., 16..80, 16..80];
    let err = (&back.slice(inner) - &truth.slice(inner)).mapv(|v| v * v).mean().unwrap().sqrt();
    let scale = truth.slice(inner).mapv(|v| v * v).mean().unwrap().sqrt();
    assert!(err < 0.1 * scale, "turned back: RMS {err} of {scale}");
    // A centred sphere looks the same about every axis: nothing stands out, and it says so.
    let sphere = turned_series(Phantom::CoreShell, 64, &angles, 10.0, Some(2.0));
    let found = axis::estimate_direction(sphere.view()).unwrap();
    eprintln!("sphere: {found:?}");
    assert!(found.contrast > 0.5, "{found:?}");
}

/// A thin layer of small particles filling the field (a supported catalyst seen face-on).
fn particle_layer(n: usize) -> Volume {
    let mut rng = <rand::rngs::SmallRng as rand::SeedableRng>::seed_from_u64(3);
    let particles: Vec<[f64; 3]> = (0..30)
        .map(|_| {
            use rand::Rng;
            [rng.random_range(-0.85..0.85), rng.random_range(-0.85..0.85), rng.random_range(-0.06..0.06)]
        })
        .collect();
    let coord = |i: usize| 2.0 * (i as f64 + 0.5) / n as f64 - 1.0;
    Volume {
        data: Array3::from_shape_fn((n, n, n), |(z, y, x)| {
            let p = [coord(x), coord(y), coord(z)];
            let inside = particles.iter().any(|q| (0..3).map(|i| (p[i] - q[i]).powi(2)).sum::<f64>() < 0.06 * 0.06);
            if inside { 1.0 } else { 0.0 }
        }),
    }
}

#[test]
#[cfg_attr(debug_assertions, ignore = "36 correlations twice on 96² projections; run with --release")]
fn cosine_stretching_sharpens_alignment_of_a_wide_thin_specimen() {
    let angles = tilt_range(-70.0, 70.0, 29);
    let series = tilt_series(&particle_layer(96), &angles, Some(20.0), 5);
    let k0 = 14;
    let jitter: Vec<[f64; 2]> = (0..29)
        .map(|k| if k == k0 { [0.0; 2] } else { [((k * 3) % 5) as f64 - 2.0, ((k * 7 + 1) % 5) as f64 - 2.0] })
        .collect();
    let moved = jittered(&series, &jitter);
    let plain = shift_error(&align::align_cross_correlation(moved.view(), &angles, false).unwrap().0, &jitter, &angles);
    let stretched =
        shift_error(&align::align_cross_correlation(moved.view(), &angles, true).unwrap().0, &jitter, &angles);
    eprintln!("cross-correlation shift error: plain {plain:.3} px, cosine-stretched {stretched:.3} px RMS");
    assert!(stretched < 0.5 * plain && stretched < 0.3, "plain {plain}, stretched {stretched}");
}

#[test]
#[cfg_attr(debug_assertions, ignore = "axis searches, alignment and 96 FBP slices; run with --release")]
fn a_turned_series_reconstructs_with_an_estimated_axis() {
    let angles = tilt_range(-60.0, 60.0, 41);
    let method = Algorithm::Fbp { filter: fbp::Filter::Hann };
    let truth = tilt_series(&phantom(Phantom::Cluster, 96), &angles, None, 0);
    let turned = axis::make_vertical(truth.view(), -6.0);
    // Jittered too: the direction is estimated on the series aligned by cross-correlation.
    let jitter: Vec<[f64; 2]> = (0..41)
        .map(|k| if k == 20 { [0.0; 2] } else { [((k * 3) % 5) as f64 - 2.0, ((k * 7 + 1) % 5) as f64 - 2.0] })
        .collect();
    let raw = jittered(&turned, &jitter);
    let prep = Preparation { align: Align::CrossCorrelation, axis: TiltAxis::Estimate, stretch: false };
    let plan = Plan::new(&TiltSeries { images: raw.view(), angles_deg: &angles }, 96, method, prep).unwrap();
    eprintln!("jittered: axis found {:.3}° (contrast {:?})", plan.axis_deg, plan.axis_contrast);
    assert!((plan.axis_deg - 6.0).abs() < 0.3 && plan.notes.is_empty(), "{} {:?}", plan.axis_deg, plan.notes);
    // Reconstructions of the turned series with the axis as given, estimated and known, against
    // that of the series about y (middle slices; alignment left out, so only the axis differs).
    let volume = |images: &Array3<f32>, axis: TiltAxis| {
        let prep = Preparation { align: Align::None, axis, stretch: false };
        let mut plan = Plan::new(&TiltSeries { images: images.view(), angles_deg: &angles }, 96, method, prep).unwrap();
        plan.step(96);
        plan.volume()
    };
    let reference = volume(&truth, TiltAxis::default());
    let diff = |v: &Volume| {
        let (p, q) = (v.data.slice(s![.., 30..66, ..]), reference.data.slice(s![.., 30..66, ..]));
        (p.iter().zip(q.iter()).map(|(x, y)| ((x - y) as f64).powi(2)).sum::<f64>() / p.len() as f64).sqrt()
    };
    let given = diff(&volume(&turned, TiltAxis::default()));
    let estimated = diff(&volume(&turned, TiltAxis::Estimate));
    let known = diff(&volume(&turned, TiltAxis::Angle(6.0)));
    eprintln!(
        "volume RMS from the series about y: axis as given {given:.4}, estimated {estimated:.4}, known {known:.4}"
    );
    assert!(estimated < 0.3 * given && estimated < 1.5 * known, "given {given}, estimated {estimated}, known {known}");
}
