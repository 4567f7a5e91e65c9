//! Column finding and fitting on the synthetic sets with exact truth in `../shared` (made with
//! Atomap's own generator), against Atomap's recorded errors on the same images.
#![allow(clippy::unwrap_used)]
use atomlens_core::columns::fit::FitStatus;
use atomlens_core::columns::{ColumnParams, find_and_fit};
use atomlens_core::metrics::match_points;
use atomlens_io::{Limits, NamedFile};
use atomlens_tests::{shared_dir, skip};

#[test]
fn synthetic_sets_meet_the_column_bars() {
    let Some(shared) = shared_dir() else { return skip("synthetic_sets_meet_the_column_bars") };
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(shared.join("reference/atomap/summary.json")).unwrap()).unwrap();
    // (set, largest mean-width error allowed): the bar, 5 %. Measured: within 0.6 % on every
    // set (the geometric mean √(σx σy); each axis alone differs more on the dense set only
    // because the reported axes are ordered and noise elongates round columns).
    let sets = [
        ("syn_cubic_sub_px", 0.05),
        ("syn_dense_overlap", 0.05),
        ("syn_perovskite_two_sublattice", 0.05),
        ("syn_nanoparticle_poisson", 0.05),
        ("atomap_dummy_simple_cubic", 0.05),
        ("atomap_dummy_distorted_cubic", 0.05),
    ];
    for (id, sigma_tol) in sets {
        let img_path = shared.join(format!("data/synthetic/{id}.tif"));
        let s =
            atomlens_io::read_one(NamedFile::new("a.tif", std::fs::read(&img_path).unwrap()), &Limits::NATIVE).unwrap();
        let img = s[0].frame(0).unwrap();
        let r = find_and_fit(img.view(), &ColumnParams::default()).unwrap();
        let text = std::fs::read_to_string(shared.join(format!("data/synthetic/{id}_groundtruth.csv"))).unwrap();
        let truth: Vec<Vec<f64>> =
            text.lines().skip(1).map(|l| l.split(',').map(|v| v.parse().unwrap()).collect()).collect();
        let tp: Vec<[f64; 2]> = truth.iter().map(|t| [t[0], t[1]]).collect();
        let found: Vec<[f64; 2]> = r.columns.iter().map(|c| [c.x, c.y]).collect();
        let spacing = r.spacing.unwrap();
        let m = match_points(&tp, &found, 0.5 * spacing);

        // No missed or spurious column more than one separation from the border.
        let (h, w) = img.data.dim();
        let sep = r.separation;
        let inside =
            |q: [f64; 2]| q[0] > sep && q[1] > sep && q[0] < w as f64 - 1.0 - sep && q[1] < h as f64 - 1.0 - sep;
        let missed = m.missed.iter().filter(|&&i| inside(tp[i])).count();
        let extra = m.extra.iter().filter(|&&j| inside(found[j])).count();
        assert_eq!((missed, extra), (0, 0), "{id}: missed {missed}, spurious {extra}");

        // Position RMS no worse than Atomap's on the same image, or at the Cramér–Rao bound
        // (which no unbiased estimator beats; Atomap's figure can sit below it by chance).
        let atomap = summary[id]["error_vs_ground_truth"]["gauss_xy"]["rms_px"].as_f64().unwrap();
        let crlb: Vec<f64> =
            m.pairs.iter().map(|p| &r.columns[p.1]).map(|c| c.x_err * c.x_err + c.y_err * c.y_err).collect();
        let crlb = (crlb.iter().filter(|v| v.is_finite()).sum::<f64>() / crlb.len() as f64).sqrt();
        let rms = m.rms();
        eprintln!("{id}: {} columns, RMS {rms:.4} px (Atomap {atomap:.4}, CRLB {crlb:.4})", r.columns.len());
        assert!(rms <= atomap || rms <= 1.1 * crlb, "{id}: RMS {rms:.4} px vs Atomap {atomap:.4}, CRLB {crlb:.4}");

        // Mean fitted width against the true width.
        let fitted: Vec<(f64, f64)> = m
            .pairs
            .iter()
            .filter(|p| r.columns[p.1].status == FitStatus::Fitted)
            .map(|p| ((r.columns[p.1].sigma_x * r.columns[p.1].sigma_y).sqrt(), (truth[p.0][2] * truth[p.0][3]).sqrt()))
            .collect();
        let ratio = fitted.iter().map(|(f, t)| f / t).sum::<f64>() / fitted.len() as f64;
        eprintln!("{id}: mean width {:+.2} %", (ratio - 1.0) * 100.0);
        assert!((ratio - 1.0).abs() <= sigma_tol, "{id}: mean width {:.1} % off", (ratio - 1.0) * 100.0);

        // Two sublattices by intensity: every matched column in the one its true amplitude says
        // (the dim B columns are sublattice 0).
        if id == "syn_perovskite_two_sublattice" {
            let wrong = m.pairs.iter().filter(|p| (truth[p.0][4] > 0.7) != (r.columns[p.1].sublattice == 1)).count();
            assert_eq!(wrong, 0, "{id}: {wrong} columns in the wrong sublattice");
            // And by unit-cell site, from positions alone (numbered by intensity afterwards).
            let p = ColumnParams { sublattices: atomlens_core::columns::Sublattices::Position, ..Default::default() };
            let by_site = find_and_fit(img.view(), &p).unwrap();
            let wrong =
                m.pairs.iter().filter(|q| (truth[q.0][4] > 0.7) != (by_site.columns[q.1].sublattice == 1)).count();
            assert_eq!(wrong, 0, "{id}: {wrong} columns on the wrong site");
        }

        // Lattice vectors from the spectrum against the generator's lattice constant.
        let known = match id {
            "syn_cubic_sub_px" => Some((20.0, 90.0)),
            "syn_dense_overlap" => Some((9.0, 90.0)),
            "syn_nanoparticle_poisson" => Some((18.0, 120.0)),
            "syn_perovskite_two_sublattice" => Some((30.0, 90.0)),
            _ => None,
        };
        if let Some((a, angle)) = known {
            let (la, lb, ang) = r.lattice.as_ref().unwrap().lengths_and_angle();
            assert!((la / a - 1.0).abs() < 0.01 && (lb / a - 1.0).abs() < 0.01, "{id}: |a| {la}, |b| {lb} vs {a}");
            assert!((ang - angle).abs() < 0.5 || (ang - (180.0 - angle)).abs() < 0.5, "{id}: angle {ang}");
        }
    }
}
