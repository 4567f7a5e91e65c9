//! The engine natively: datasets replace each other whole, results belong to the image shown,
//! errors carry their kind, and every panel's operation runs on the demos.
use atomlens_core::Calibration;
use atomlens_core::Recipe;
use atomlens_core::columns::ColumnParams;
use atomlens_core::denoise::Method;
use atomlens_core::particles::chain::AnalysisParams;
use atomlens_core::strain::gpa::GpaParams;
use atomlens_core::synth::Demo;
use atomlens_core::tomo::phantom::Phantom;
use atomlens_core::tomo::{Algorithm, Preparation};
use atomlens_io::{Limits, NamedFile};

use super::tomo::PhantomSeries;
use super::*;

fn demo(d: Demo) -> Session {
    let mut s = Session::new();
    s.load_demo(d).unwrap();
    s.select(0, 0).unwrap();
    s
}

fn kind<T: std::fmt::Debug>(r: Result<T>) -> &'static str {
    r.unwrap_err().kind
}

fn tiff_file(name: &str, data: &Array2<f32>) -> NamedFile {
    NamedFile::new(name, tiff(data, &Calibration::nm(0.02)).unwrap())
}

#[test]
fn results_belong_to_the_image_they_were_measured_on() {
    let mut s = demo(Demo::Particle);
    assert_eq!(kind(s.fit_found()), "state");
    let found = s.find_seeds(ColumnParams::default()).unwrap();
    let table = s.fit_found().unwrap();
    assert_eq!(table.numbers("x").len(), found.numbers("x").len());
    assert!(s.columns_csv().unwrap().starts_with("x,y,"));
    s.gpa(GpaParams::default()).unwrap();
    s.analyse_particles(AnalysisParams::default()).unwrap();
    // A clean-up appends two signals and keeps what was measured until another image is shown.
    let r = s.denoise_current(Method::Gaussian { sigma: 1.0 }).unwrap();
    assert_eq!(r.values["index"], 1);
    assert_eq!(s.signals.len(), 3);
    assert!(s.column_table().is_ok());
    s.select(1, 0).unwrap();
    for r in [s.column_table().map(|_| ()), s.gpa_values("exx").map(|_| ()), s.particle_export("json", "").map(|_| ())]
    {
        assert_eq!(kind(r), "state");
    }
    // A new dataset drops everything, signals included.
    s.load_demo(Demo::Ordered).unwrap();
    assert_eq!(s.signals.len(), 1);
    assert!(s.shown.is_none() && s.tomo.is_none() && s.compared.is_none());
}

#[test]
fn bad_files_leave_the_dataset_as_it_was_and_say_what_kind_of_failure() {
    let mut s = demo(Demo::Particle);
    let junk = NamedFile::new("junk.dm4", b"not a microscope file at all".to_vec());
    assert_eq!(kind(s.load_files("junk.dm4", vec![junk])), "unsupported_format");
    assert_eq!(kind(s.load_files("empty.tif", vec![NamedFile::new("empty.tif", Vec::new())])), "empty_file");
    // A TIFF whose header claims 60000² px: refused from the header.
    let mut big = tiff(&Array2::from_elem((2, 2), 1.0), &Calibration::uncalibrated()).unwrap();
    let ifd = u32::from_le_bytes(big[4..8].try_into().unwrap()) as usize;
    let entries = u16::from_le_bytes(big[ifd..ifd + 2].try_into().unwrap()) as usize;
    for e in 0..entries {
        let at = ifd + 2 + 12 * e;
        if matches!(u16::from_le_bytes([big[at], big[at + 1]]), 256 | 257) {
            big[at + 2..at + 4].copy_from_slice(&3u16.to_le_bytes());
            big[at + 8..at + 12].copy_from_slice(&60000u32.to_le_bytes());
        }
    }
    assert_eq!(kind(s.load_files("big.tif", vec![NamedFile::new("big.tif", big)])), "too_large");
    let nan = tiff_file("nan.tif", &Array2::from_elem((8, 8), f32::NAN));
    assert_eq!(kind(s.load_files("nan.tif", vec![nan])), "no_finite_values");
    assert_eq!(s.signals.len(), 1);
    assert!(s.column_table().is_err() && s.image().is_ok(), "the shown image stays");
    assert_eq!(kind(s.select(5, 0)), "invalid_parameter");
    assert_eq!(kind(s.view(0.0, 100.0, None, "rainbow")), "invalid_parameter");
}

#[test]
fn a_series_of_files_is_one_stack_and_registers() {
    let mut s = Session::new();
    let frame = |dx: f64| {
        let (img, _) = atomlens_core::synth::square_lattice(6, 12.0, 2.0);
        atomlens_core::math::warp::resample(img.view(), img.dim(), 1.0, |[x, y]| [x - dx, y])
    };
    let groups: Vec<(String, Vec<NamedFile>)> = (0..3)
        .map(|k| {
            let name = format!("f{k}.tif");
            (name.clone(), vec![tiff_file(&name, &frame(0.5 * k as f64))])
        })
        .collect();
    s.load_series(groups).unwrap();
    assert_eq!(s.signals[0].info.frames, 3);
    let r = s.register_frames(0, false).unwrap();
    let dx = r.numbers("dx");
    assert!((dx[2] - dx[0] - 1.0).abs() < 0.1, "{dx:?}");
    assert_eq!(s.signals.len(), 2);
    let odd = (String::from("odd.tif"), vec![tiff_file("odd.tif", &Array2::from_elem((9, 9), 1.0))]);
    let one = (String::from("f0.tif"), vec![tiff_file("f0.tif", &frame(0.0))]);
    let e = s.load_series(vec![one, odd]).unwrap_err();
    assert!(e.message.contains("differ in size"), "{e}");
}

#[test]
fn view_spectrum_residual_and_exports_have_their_shapes() {
    let mut s = demo(Demo::Particle);
    let (w, h) = (s.image().unwrap().width(), s.image().unwrap().height());
    let v = s.view(1.0, 99.0, None, "gray").unwrap();
    assert_eq!(v.numbers("rgba").len(), 4 * w * h);
    assert_eq!(v.numbers("hist").iter().sum::<f64>() as usize, w * h);
    let sp = s.spectrum("inferno").unwrap();
    assert_eq!(sp.values["unit"], "1/nm");
    s.find_seeds(ColumnParams::default()).unwrap();
    s.fit_found().unwrap();
    let p = s.column_residual(0, 5).unwrap();
    assert_eq!(p.numbers("residual").len(), 121);
    assert!(s.value_at(w + 3, 0).unwrap().is_nan());
    assert!(s.export_tiff().unwrap().starts_with(b"II"));
}

#[test]
fn particles_batch_rows_and_the_comparison_of_two_signals() {
    let mut s = demo(Demo::Ordered);
    let r = s.analyse_particles(AnalysisParams::default()).unwrap();
    assert_eq!(r.values["particles"].as_array().unwrap().len(), 1);
    assert!(r.numbers("kind").contains(&1.0), "M-rich columns are found");
    assert!(s.particle_export("recipe", "").unwrap().contains("\"analysis\""));
    let row = s.batch_row("ordered.tif", &Recipe::default()).unwrap();
    assert_eq!(row.values["row"]["totals"]["particles"], 1);

    let mut s = demo(Demo::Pair);
    assert_eq!(kind(s.compare_signals(0, 0, AnalysisParams::default())), "invalid_parameter");
    let c = s.compare_signals(0, 1, AnalysisParams::default()).unwrap();
    assert_eq!(s.signals.len(), 4, "registered and change maps appended");
    assert!(c.numbers("status").contains(&1.0) && c.numbers("status").contains(&2.0));
    // The comparison belongs to the dataset: showing its maps keeps it.
    s.select(2, 0).unwrap();
    assert!(s.compare_export("summary_json", "b", "a").unwrap().contains("kept"));
}

#[test]
fn tomography_runs_in_steps_and_refuses_what_the_browser_cannot_hold() {
    let mut s = Session::new();
    let p = PhantomSeries {
        kind: Phantom::FacetedParticle,
        n: 24,
        start: -60.0,
        end: 60.0,
        count: 31,
        dose: 0.0,
        axis: 0.0,
    };
    let r = s.tomo_demo(&p).unwrap();
    assert_eq!(r.numbers("angles").len(), 31);
    let angles = r.numbers("angles");
    assert_eq!(kind(s.tomo_volume()), "state");
    let sirt = Algorithm::by_name("sirt").unwrap();
    s.tomo_begin(0, &angles, sirt, 0, Preparation::default()).unwrap();
    let mut done = 0;
    while done < 24 {
        done = s.tomo_step(5).unwrap();
    }
    let v = s.tomo_volume().unwrap();
    assert_eq!((v.values["nx"].clone(), v.values["nz"].clone()), (24.into(), 24.into()));
    let sl = s.tomo_slice("xz", 12, 0.0, 1.0, "gray", 0.5).unwrap();
    assert_eq!(sl.numbers("rgba").len(), 4 * 24 * 24);
    let above = sl.values["above"].as_f64().unwrap();
    assert!(above > 0.05 && above < 0.6, "{above}");
    assert!(s.tomo_mrc().unwrap().len() > 24 * 24 * 24 * 4);
    assert_eq!(kind(s.tomo_slice("ab", 0, 0.0, 1.0, "gray", f32::NAN)), "invalid_parameter");
    let big = PhantomSeries { n: 256, count: 3, ..p };
    s.tomo_demo(&big).unwrap();
    let e = s.tomo_begin(1, &[-10.0, 0.0, 10.0], sirt, 400, Preparation::default()).unwrap_err();
    assert_eq!(e.kind, "too_large");
}

#[test]
fn an_image_without_a_lattice_gives_single_atoms_with_their_significance() {
    // Twelve Gaussian atoms (σ 2 px, 60 counts) on a Poisson support of 40 counts, 0.02 nm/px.
    let atoms: Vec<(f64, f64)> =
        (0..12).map(|k| (25.0 + (k % 4) as f64 * 45.0, 30.0 + (k / 4) as f64 * 60.0)).collect();
    let clean = Array2::from_shape_fn((192, 192), |(y, x)| {
        let a: f64 = atoms
            .iter()
            .map(|&(ax, ay)| 60.0 * (-((x as f64 - ax).powi(2) + (y as f64 - ay).powi(2)) / 8.0).exp())
            .sum();
        (40.0 + a) as f32
    });
    let img = atomlens_core::synth::at_dose(clean.view(), 1.0, 3);
    let mut s = Session::new();
    s.load_files("atoms.tif", vec![tiff_file("atoms.tif", &img)]).unwrap();
    s.select(0, 0).unwrap();
    s.find_seeds(ColumnParams::default()).unwrap();
    let t = s.fit_found().unwrap();
    let (x, z) = (t.numbers("x"), t.numbers("significance"));
    assert_eq!(x.len(), atoms.len(), "{x:?}");
    assert_eq!(z.len(), x.len());
    assert!(t.values["single"]["threshold"].as_f64().unwrap() > 2.0);
    assert!(s.columns_csv().unwrap().lines().next().unwrap().ends_with(",significance"));
    // Deleting one by hand and refitting keeps the mode and re-reads the significance.
    let (xs, ys) = (x[1..].to_vec(), t.numbers("y")[1..].to_vec());
    let t = s.refit(xs, ys).unwrap();
    assert_eq!(t.numbers("significance").len(), atoms.len() - 1);
}

#[test]
fn an_image_from_another_file_joins_the_dataset_for_a_comparison() {
    let pair = demo(Demo::Pair);
    let (before, after) = (pair.frame(0, 0).unwrap(), pair.frame(1, 0).unwrap());
    let mut s = Session::new();
    s.load_files("before.tif", vec![tiff_file("before.tif", &before.data)]).unwrap();
    let r = s.add_files("after.tif", vec![tiff_file("after.tif", &after.data)]).unwrap();
    assert_eq!(r.values["index"], 1);
    assert!(s.signals[1].info.title.starts_with("after.tif"), "{}", s.signals[1].info.title);
    let c = s.compare_signals(0, 1, AnalysisParams::default()).unwrap();
    assert!(c.numbers("status").contains(&1.0) && c.numbers("status").contains(&2.0));
    // A file that cannot be read adds nothing; one at another pixel size is refused by compare.
    let junk = NamedFile::new("junk.dm4", b"not a microscope file".to_vec());
    assert_eq!(kind(s.add_files("junk.dm4", vec![junk])), "unsupported_format");
    let n = s.signals.len();
    let other = NamedFile::new("other.tif", tiff(&after.data, &Calibration::nm(0.05)).unwrap());
    s.add_files("other.tif", vec![other]).unwrap();
    let e = s.compare_signals(0, n, AnalysisParams::default()).unwrap_err();
    assert!(e.message.contains("different pixel sizes"), "{}", e.message);
}

/// A session on two files: opened, calibrated, columns found, edited (one deleted, one added)
/// and refitted, strain, particles, the other file added and compared.
fn worked_session(a: &NamedFile, b: &NamedFile) -> Session {
    let mut s = Session::new();
    s.load_files(&a.name, vec![a.clone()]).unwrap();
    s.set_calibration(0, "0.2 Å").unwrap();
    s.select(0, 0).unwrap();
    s.find_seeds(ColumnParams::default()).unwrap();
    let t = s.fit_found().unwrap();
    let (mut x, mut y) = (t.numbers("x"), t.numbers("y"));
    x.remove(3);
    y.remove(3);
    x.push(5.5);
    y.push(6.5);
    s.refit(x, y).unwrap();
    s.gpa(GpaParams::default()).unwrap();
    s.analyse_particles(AnalysisParams::default()).unwrap();
    s.add_files(&b.name, vec![b.clone()]).unwrap();
    s.set_calibration(1, "0.2 Å").unwrap();
    s.compare_signals(0, 1, AnalysisParams::default()).unwrap();
    s
}

fn pair_files() -> (NamedFile, NamedFile) {
    let mut d = Session::new();
    d.load_demo(Demo::Pair).unwrap();
    let f = |k: usize, name: &str| tiff_file(name, &d.frame(k, 0).unwrap().data);
    (f(0, "before.tif"), f(1, "after.tif"))
}

#[test]
fn a_saved_session_replays_to_the_same_numbers_and_names_missing_or_changed_files() {
    let (a, b) = pair_files();
    let s = worked_session(&a, &b);
    let saved = s.save();
    assert_eq!(saved.files.len(), 2);
    assert!(saved.steps.iter().any(|st| matches!(st, Step::Refit { .. })), "the manual edit is journalled");
    for t in ["columns.csv", "particles.csv", "strain.json", "compare_columns.csv"] {
        assert!(saved.results.contains_key(t), "{t} saved");
    }
    let text = saved.to_json();
    let back = Saved::from_json(&text).unwrap();
    assert_eq!(back, saved);
    let files = [a.clone(), b.clone()];
    let mut source = |f: &FileRef| files.iter().find(|n| n.name == f.name).map(|n| n.bytes.clone());
    let replayed = Session::replay(&back, &mut source, Limits::BROWSER).unwrap();
    let check = journal::check(&saved.results, &replayed.results());
    assert!(check.same(), "{check:?}");
    assert!(check.compared > 500, "{}", check.compared);
    assert_eq!(replayed.save().steps, saved.steps, "a replayed session saves the same journal");
    // The check can fail: one edited number is found and named.
    let mut other = saved.results.clone();
    let csv = other.get_mut("columns.csv").unwrap();
    let second = csv.lines().nth(1).unwrap().to_string();
    let changed = second.replacen(second.split(',').next().unwrap(), "1.2345", 1);
    *csv = csv.replacen(&second, &changed, 1);
    let c = journal::check(&other, &replayed.results());
    assert!(!c.same() && c.differences[0].contains("columns.csv line 2 x"), "{c:?}");

    // Restored in place (the page): by name, or renamed by its hash; every panel's result is back.
    let mut page = demo(Demo::Particle);
    let renamed = NamedFile::new("renamed.tif", b.bytes.clone());
    let r = page.restore(&text, vec![a.clone(), renamed]).unwrap();
    assert_eq!(r.values["has"], serde_json::json!({"columns": true, "gpa": true, "particles": true, "compared": true}));
    assert_eq!(r.values["same"], true, "{}", r.values["check"]);
    assert_eq!(page.compare_reply().unwrap().values["before"], 0);
    assert!(page.gpa_reply().is_ok() && page.particles_reply().is_ok() && page.column_table().is_ok());
    let needs = Session::needs(&text).unwrap();
    assert_eq!(needs.values["files"].as_array().unwrap().len(), 2);
    let e = page.restore(&text, vec![a.clone()]).unwrap_err();
    assert!(e.message.contains("missing after.tif"), "{}", e.message);
    assert!(page.compare_reply().is_ok(), "a failed restore leaves the session as it was");
    // Missing and changed files are named before anything runs.
    let mut only_a = |f: &FileRef| (f.name == a.name).then(|| a.bytes.clone());
    let e = Session::replay(&back, &mut only_a, Limits::BROWSER).err().unwrap();
    assert_eq!(e.kind, "missing_files");
    assert!(e.message.contains("missing after.tif"), "{}", e.message);
    let mut tampered = |f: &FileRef| {
        let mut bytes = files.iter().find(|n| n.name == f.name)?.bytes.clone();
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        Some(bytes)
    };
    let e = Session::replay(&back, &mut tampered, Limits::BROWSER).err().unwrap();
    assert!(e.message.contains("changed since") && e.message.contains("before.tif"), "{}", e.message);
}

#[test]
fn session_files_of_another_kind_or_version_are_refused_with_the_reason() {
    assert!(Saved::from_json("{not json").unwrap_err().message.contains("not an atomlens session"));
    assert!(Saved::from_json(r#"{"format": "other"}"#).unwrap_err().message.contains("not an atomlens session"));
    let e =
        Saved::from_json(r#"{"format": "atomlens-session", "version": 99, "software": "atomlens 9.0"}"#).unwrap_err();
    assert!(e.message.contains("version 99") && e.message.contains("atomlens 9.0"), "{}", e.message);
    let e = Saved::from_json(r#"{"format": "atomlens-session", "version": 1}"#).unwrap_err();
    assert!(e.message.contains("damaged"), "{}", e.message);
}

#[test]
fn the_check_tolerates_a_last_digit_rounded_the_other_way_and_nothing_more() {
    let t = |v: &str| [("a.csv".to_string(), format!("x,y\n{v},1.5e2"))].into_iter().collect();
    let same = journal::check(&t("0.12345"), &t("0.12346"));
    assert!(same.same() && same.rounding == 1 && same.compared == 2, "{same:?}");
    assert!(same.describe().contains("1 rounded the other way"));
    assert!(!journal::check(&t("0.12345"), &t("0.12347")).same());
    assert!(!journal::check(&t("0.12345"), &t("nan")).same());
    let json = |v: &str| [("s.json".to_string(), format!("{{\n  \"d_px\": {v},\n}}"))].into_iter().collect();
    assert_eq!(journal::check(&json("11.341269"), &json("11.341270")).rounding, 1);
}

/// Noise2Void trained in steps (as the worker does, reporting between them) gives the image the
/// one-call clean-up gives, and a new image drops a training in progress.
#[test]
fn noise2void_in_steps_equals_one_call() {
    let mut s = demo(Demo::Particle);
    let method = Method::Noise2Void { steps: 4, seed: 3 };
    assert_eq!(kind(s.n2v_step(1)), "state");
    assert_eq!(s.n2v_begin(method).unwrap().values["steps"], 4);
    let r = s.n2v_step(3).unwrap();
    assert_eq!((r.values["done"].as_u64(), r.values["steps"].as_u64()), (Some(3), Some(4)));
    assert!(r.values["loss"].as_f64().is_some_and(|l| l > 0.0));
    let index = s.n2v_finish().unwrap().values["index"].as_u64().unwrap() as usize;
    let stepped = s.signals[index].stack.frame(0).unwrap().data;
    s.select(0, 0).unwrap();
    let index = s.denoise_current(method).unwrap().values["index"].as_u64().unwrap() as usize;
    assert_eq!(stepped, s.signals[index].stack.frame(0).unwrap().data);
    assert_eq!(kind(s.n2v_begin(Method::Gaussian { sigma: 1.0 })), "invalid_parameter");
    s.n2v_begin(method).unwrap();
    s.select(0, 0).unwrap();
    assert_eq!(kind(s.n2v_finish()), "state");
}
