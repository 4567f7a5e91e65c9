use super::*;
use crate::metrics::match_points;
use crate::synth::{IlPair, IlPairParams, il_pair};

#[test]
fn affine_fit_recovers_a_known_map_and_inverts() {
    let t = Affine { matrix: [[1.01, -0.02], [0.015, 0.99]], shift: [3.5, -2.25] };
    let src: Vec<[f64; 2]> = (0..20).map(|i| [(i * 7 % 13) as f64 * 9.0, (i * 5 % 11) as f64 * 8.0]).collect();
    let dst: Vec<[f64; 2]> = src.iter().map(|&p| t.apply(p)).collect();
    let f = fit_affine(&src, &dst).unwrap();
    for r in 0..2 {
        assert!((f.shift[r] - t.shift[r]).abs() < 1e-9);
        for c in 0..2 {
            assert!((f.matrix[r][c] - t.matrix[r][c]).abs() < 1e-12);
        }
    }
    let back = f.inverse().unwrap().apply(f.apply([4.0, 5.0]));
    assert!((back[0] - 4.0).abs() < 1e-9 && (back[1] - 5.0).abs() < 1e-9);
    let r = Affine::rotation_about(0.3f64.to_radians(), [10.0, 10.0], [1.0, 2.0]);
    assert!((r.rotation_deg() - 0.3).abs() < 1e-12);
    assert_eq!(r.shift_at([10.0, 10.0]), [1.0, 2.0]);
    assert!(fit_affine(&src[..2], &dst[..2]).is_none());
}

#[test]
fn rotating_an_image_moves_a_point_like_the_affine_map() {
    let mut img = Array2::<f32>::zeros((64, 64));
    crate::synth::add_gaussians(
        &mut img,
        &[crate::synth::TrueColumn { x: 50.0, y: 31.5, sigma: 2.0, peak: 1.0, atoms: 1, m_atoms: 0 }],
    );
    let c = [31.5, 31.5];
    let rot = crate::math::warp::rotate(img.view(), 10f64.to_radians(), c, 0.0);
    let want = Affine::rotation_about(10f64.to_radians(), c, [0.0, 0.0]).apply([50.0, 31.5]);
    let (mut sx, mut sy, mut s) = (0.0, 0.0, 0.0);
    for ((y, x), &v) in rot.indexed_iter().filter(|(_, v)| **v > 0.01) {
        (sx, sy, s) = (sx + x as f64 * v as f64, sy + y as f64 * v as f64, s + v as f64);
    }
    assert!((sx / s - want[0]).abs() < 0.05 && (sy / s - want[1]).abs() < 0.05, "{} {} vs {want:?}", sx / s, sy / s);
}

fn scores(pair: &IlPair, r: &Comparison) -> ((f64, f64), (f64, f64)) {
    let pts = |s: &crate::synth::Synthetic| s.columns.iter().map(|c| [c.x, c.y]).collect::<Vec<_>>();
    let fitted = |a: &Analysis| a.columns.columns.iter().map(|c| [c.x, c.y]).collect::<Vec<_>>();
    let pr = |truth_set: &[usize], truth: Vec<[f64; 2]>, found: Vec<[f64; 2]>, flagged: Vec<usize>| {
        let m = match_points(&truth, &found, 4.0);
        let true_of: std::collections::HashMap<usize, usize> = m.pairs.iter().map(|&(t, f, _)| (f, t)).collect();
        let tp = flagged.iter().filter(|f| true_of.get(f).is_some_and(|t| truth_set.contains(t))).count();
        (tp as f64 / flagged.len().max(1) as f64, tp as f64 / truth_set.len() as f64)
    };
    let lost: Vec<usize> = r.columns.iter().filter(|c| c.status == Status::Lost).filter_map(|c| c.before).collect();
    let new: Vec<usize> = r.columns.iter().filter(|c| c.status == Status::New).filter_map(|c| c.after).collect();
    (pr(&pair.lost, pts(&pair.before), fitted(&r.before), lost), pr(&pair.new, pts(&pair.after), fitted(&r.after), new))
}

/// The bars: the transform within 0.1 px and 0.05°, lost and new columns with
/// precision and recall ≥ 95 %.
#[test]
#[cfg_attr(debug_assertions, ignore = "fits two images of ~200 columns; run with --release")]
fn identical_location_pair_is_registered_and_its_changes_found() {
    let p = IlPairParams::default();
    let pair = il_pair(&p).unwrap();
    let r = compare(&pair.before.image, &pair.after.image, &CompareParams::default()).unwrap();
    let s = &r.summary;
    eprintln!("{s:?}");
    assert!((s.shift[0] - p.shift[0]).abs() < 0.1 && (s.shift[1] - p.shift[1]).abs() < 0.1, "shift {:?}", s.shift);
    assert!((s.rotation_deg - p.rotation_deg).abs() < 0.05, "rotation {}", s.rotation_deg);
    // The stated errors cover the actual ones (3 standard errors), and are not vacuous.
    assert!((s.rotation_deg - p.rotation_deg).abs() <= 3.0 * s.rotation_sd_deg && s.rotation_sd_deg < 0.05);
    for k in 0..2 {
        assert!((s.shift[k] - p.shift[k]).abs() <= 3.0 * s.shift_sd[k] && s.shift_sd[k] < 0.1, "{s:?}");
    }
    let ((lp, lr), (np, nr)) = scores(&pair, &r);
    eprintln!("lost precision {lp:.3} recall {lr:.3}; new precision {np:.3} recall {nr:.3}");
    assert!(lp >= 0.95 && lr >= 0.95, "lost: precision {lp:.3}, recall {lr:.3}");
    assert!(np >= 0.95 && nr >= 0.95, "new: precision {np:.3}, recall {nr:.3}");
    // Atoms went where the synthetic put them: a net loss on one facet, a gain on another.
    assert!(r.facets.iter().any(|f| f.atoms_lost > 20 && f.atoms_gained == 0), "{:?}", r.facets);
    assert!(r.facets.iter().any(|f| f.atoms_gained >= 9), "{:?}", r.facets);
    // Each facet's net change carries its counting uncertainty, well under the losses seen.
    assert!(r.facets.iter().all(|f| f.net_sd.is_finite() && f.net_sd < 5.0), "{:?}", r.facets);
    // A rigid move strains nothing.
    let strains: Vec<f64> = r.columns.iter().filter(|c| c.strain[0].is_finite()).map(|c| c.strain[0].abs()).collect();
    let mean = strains.iter().sum::<f64>() / strains.len() as f64;
    assert!(mean < 0.01, "mean |exx| {mean}");
    let map = change_map(&r.columns, 384, 384, 12.0);
    assert!(map.iter().any(|&v| v < 0.0) && map.iter().any(|&v| v > 0.0));
}

#[test]
#[cfg_attr(debug_assertions, ignore = "fits two images; run with --release")]
fn different_areas_are_refused_with_the_confidence() {
    let a = il_pair(&IlPairParams::default()).unwrap();
    let mut q = IlPairParams::default();
    // Another particle of the same crystal: smaller, off-centre, differently turned.
    q.particle.rotation = 1.2;
    q.particle.diameter_nm = 3.0;
    q.particle.seed = 99;
    q.shift = [40.0, 25.0];
    let b = il_pair(&q).unwrap();
    let e = compare(&a.before.image, &b.after.image, &CompareParams::default()).unwrap_err().to_string();
    assert!(e.contains("registration failed") && e.contains("confidence"), "{e}");
}

#[test]
fn different_pixel_sizes_are_refused() {
    let p = IlPairParams::default();
    let pair = il_pair(&p).unwrap();
    let mut after = pair.after.image.clone();
    after.calibration.pixel_size *= 1.5;
    let e = compare(&pair.before.image, &after, &CompareParams::default()).unwrap_err().to_string();
    assert!(e.contains("pixel size") && e.contains("resample"), "{e}");
}
