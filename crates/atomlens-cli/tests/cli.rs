//! The `atomlens` binary end to end: info and convert on files the test writes, and one clear
//! line with a non-zero exit for every bad input.
#![allow(clippy::unwrap_used)]
use std::path::{Path, PathBuf};
use std::process::Command;

use atomlens_core::Calibration;

fn atomlens(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_atomlens")).args(args).output().unwrap();
    (out.status.success(), String::from_utf8_lossy(&out.stdout).into(), String::from_utf8_lossy(&out.stderr).into())
}

/// The number printed right after `prefix` in `text` (NaN when absent).
fn number_after(text: &str, prefix: &str) -> f64 {
    let word = text.split(prefix).nth(1).and_then(|t| t.split(' ').next());
    word.and_then(|v| v.trim_end_matches(|c: char| !c.is_ascii_digit()).parse().ok()).unwrap_or(f64::NAN)
}

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("atomlens-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn write_tiff(path: &Path, w: usize, h: usize, frames: usize, cal: &Calibration) {
    let px: Vec<f32> = (0..w * h * frames).map(|i| (i % 97) as f32 * 0.5).collect();
    std::fs::write(path, atomlens_io::formats::tiff::write_f32(w, h, &px, cal).unwrap()).unwrap();
}

/// A model trained by `atomlens train columns` is written with its record and used by `columns
/// --model`; a model file of another version or a non-model file is refused with the reason.
#[test]
fn a_trained_model_is_used_and_a_bad_one_refused() {
    let dir = tmp("train");
    let d = dir.to_str().unwrap();
    let (ok, _, err) = atomlens(&["train", "columns", "--steps", "3", "--seed", "2", "--out", d]);
    assert!(ok, "{err}");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("columns.json")).unwrap()).unwrap();
    assert_eq!(record["steps"], 3);
    assert!(record["scores"]["recall"].as_f64().is_some_and(|r| (0.0..=1.0).contains(&r)), "{record}");
    let (ok, _, err) = atomlens(&["synth", "particle", "--out", d]);
    assert!(ok, "{err}");
    let (img, model) = (dir.join("image.tif"), dir.join("columns.net"));
    let (img, model) = (img.to_str().unwrap(), model.to_str().unwrap());
    // Three steps learn next to nothing: whatever it finds (or the reason it finds nothing), no panic.
    let (ok, _, err) = atomlens(&["columns", img, "--finder", "learned", "--model", model]);
    assert!(ok || err.starts_with("error: no column found"), "{err}");
    let mut bytes = std::fs::read(dir.join("columns.net")).unwrap();
    bytes[8] = 9;
    std::fs::write(dir.join("v9.net"), &bytes).unwrap();
    let v9 = dir.join("v9.net");
    let (ok, _, err) = atomlens(&["columns", img, "--finder", "learned", "--model", v9.to_str().unwrap()]);
    assert!(!ok && err.contains("model format version 9"), "{err}");
    let (ok, _, err) = atomlens(&["columns", img, "--finder", "learned", "--model", img]);
    assert!(!ok && err.contains("not an atomlens model file"), "{err}");
    let (ok, _, err) = atomlens(&["columns", img, "--model", model]);
    assert!(!ok && err.contains("add --finder learned"), "{err}");
}

#[test]
fn info_json_has_the_documented_keys() {
    let p = tmp("a.tif");
    write_tiff(&p, 40, 30, 2, &Calibration::nm(0.0125));
    let (ok, out, err) = atomlens(&["info", p.to_str().unwrap(), "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!((v["width"].as_u64(), v["height"].as_u64(), v["frames"].as_u64()), (Some(40), Some(30), Some(2)));
    assert_eq!(v["dtype"], "float32");
    assert_eq!(v["pixel_size"].as_f64(), Some(0.0125));
    assert_eq!(v["unit"], "nm");
    assert_eq!(v["signals"].as_array().unwrap().len(), 1);
    // `--pixel-size` overrides the file's calibration; a size without a unit is refused.
    let (ok, out, err) = atomlens(&["info", p.to_str().unwrap(), "--json", "--pixel-size", "25 pm"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert!((v["pixel_size"].as_f64().unwrap() - 0.025).abs() < 1e-12 && v["unit"] == "nm", "{v}");
    let (ok, _, err) = atomlens(&["info", p.to_str().unwrap(), "--pixel-size", "0.25"]);
    assert!(!ok && err.contains("no unit"), "{err}");
}

#[test]
fn convert_keeps_pixels_and_calibration() {
    let (src, dst) = (tmp("b.tif"), tmp("b_out.tif"));
    write_tiff(&src, 17, 9, 1, &Calibration::nm(0.3));
    let (ok, _, err) = atomlens(&["convert", src.to_str().unwrap(), dst.to_str().unwrap()]);
    assert!(ok, "{err}");
    let read = |p: &Path| {
        atomlens_io::read_one(
            atomlens_io::NamedFile::new("x.tif", std::fs::read(p).unwrap()),
            &atomlens_io::Limits::NATIVE,
        )
        .unwrap()
        .remove(0)
    };
    let (a, b) = (read(&src), read(&dst));
    assert_eq!(a.to_f32(), b.to_f32());
    assert_eq!(b.calibration, Calibration::nm(0.3));
}

#[test]
fn bad_input_is_one_line_and_a_failure() {
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("zero.dm3", vec![], "empty (0 bytes)"),
        (
            "noise.dm3",
            (0..4096u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect(),
            "not a supported image format",
        ),
        ("noise.bin", (0..100u8).collect(), "not a supported image format"),
        (
            "cut.tif",
            {
                let p = tmp("full.tif");
                write_tiff(&p, 64, 64, 1, &Calibration::uncalibrated());
                let b = std::fs::read(&p).unwrap();
                b[..b.len() / 2].to_vec()
            },
            "truncated",
        ),
    ];
    for (name, bytes, want) in cases {
        let p = tmp(name);
        std::fs::write(&p, bytes).unwrap();
        let (ok, _, err) = atomlens(&["info", p.to_str().unwrap()]);
        assert!(!ok, "{name} should fail");
        assert_eq!(err.trim_end().lines().count(), 1, "{name}: {err}");
        assert!(err.starts_with("error: ") && err.contains(want), "{name}: {err}");
    }
    let (ok, _, err) = atomlens(&["info", "/nonexistent/file.dm4"]);
    assert!(!ok && err.contains("cannot read /nonexistent/file.dm4"), "{err}");
    let (ok, _, err) =
        atomlens(&["convert", tmp("a.tif").to_str().unwrap(), "/nonexistent/dir/x.tif", "--signal", "3"]);
    assert!(!ok && err.lines().count() == 1, "{err}");
}

/// A square lattice (spacing 12 px, turned 0.3 rad) under uniform εxx = 1 %, as a TIFF; returns
/// the unstrained lattice's reciprocal vectors.
fn strained_tiff(path: &Path) -> [[f64; 2]; 2] {
    use atomlens_core::math::deformation::Strain;
    use atomlens_core::synth::{StrainField, StrainedLatticeParams, strained_lattice};
    let strain = Strain { exx: 0.01, ..Default::default() };
    let p = StrainedLatticeParams {
        size: 256,
        spacing: 12.0,
        angle: 0.3,
        sigma: 2.5,
        noise: 0.01,
        seed: 2,
        field: StrainField::Uniform { strain },
    };
    let l = strained_lattice(&p).unwrap();
    let px: Vec<f32> = l.image.data.iter().copied().collect();
    std::fs::write(path, atomlens_io::formats::tiff::write_f32(256, 256, &px, &Calibration::nm(0.02)).unwrap())
        .unwrap();
    l.reference_g
}

#[test]
fn gpa_writes_calibrated_maps_and_json() {
    let img = tmp("strained.tif");
    let g = strained_tiff(&img);
    let out = tmp("gpa-out");
    let (g1, g2) = (format!("{},{}", g[0][0], g[0][1]), format!("{},{}", g[1][0], g[1][1]));
    let args = ["gpa", img.to_str().unwrap(), "--g1", &g1, "--g2", &g2, "--no-refine", "--out", out.to_str().unwrap()];
    let (ok, _, err) = atomlens(&args);
    assert!(ok, "{err}");
    for name in ["exx", "eyy", "exy", "rotation"] {
        let bytes = std::fs::read(out.join(format!("{name}.tif"))).unwrap();
        let s =
            atomlens_io::read_one(atomlens_io::NamedFile::new("m.tif", bytes), &atomlens_io::Limits::NATIVE).unwrap();
        assert_eq!(s[0].calibration.pixel_size, 0.02, "{name} keeps the calibration");
        let m = s[0].frame(0).unwrap().data;
        let want = if name == "exx" { 0.01 } else { 0.0 };
        let centre = m.slice(ndarray::s![96..160, 96..160]);
        let mean = centre.iter().map(|&v| v as f64).sum::<f64>() / centre.len() as f64;
        assert!((mean - want).abs() < 2e-4, "{name}: {mean}");
    }
    let j: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("gpa.json")).unwrap()).unwrap();
    let d_nm = j["gpa"]["g"][0]["d_nm"].as_f64().unwrap();
    assert!((d_nm - 12.0 * 0.02).abs() < 1e-9, "d {d_nm} nm");
    assert_eq!(j["gpa"]["refined"], false);
    for k in ["mask", "mask_radius_per_px", "resolution_px", "reference", "stats", "conventions"] {
        assert!(!j["gpa"][k].is_null(), "gpa.json lacks {k}");
    }
}

#[test]
fn gpa_bad_requests_say_why() {
    let img = tmp("strained2.tif");
    let g = strained_tiff(&img);
    let f = img.to_str().unwrap();
    let g1 = format!("{},{}", g[0][0], g[0][1]);
    let twice = format!("{},{}", 2.0 * g[0][0], 2.0 * g[0][1]);
    let noise = tmp("noise.tif");
    write_tiff(&noise, 128, 128, 1, &Calibration::uncalibrated());
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (vec!["gpa", f, "--g1", &g1], "needs two g-vectors"),
        (vec!["gpa", f, "--g1", &g1, "--g2", &twice], "collinear"),
        (vec!["gpa", f, "--reference", "200,0,400,50"], "inside the 256×256 image"),
        (vec!["gpa", f, "--mask-radius", "0"], "mask_radius"),
        (vec!["gpa", f, "--g1", "0.1"], "expected 2 comma-separated numbers"),
        (vec!["gpa", noise.to_str().unwrap()], "no atomic lattice found"),
    ];
    for (args, want) in cases {
        let (ok, _, err) = atomlens(&args);
        assert!(!ok, "{args:?} should fail");
        assert!(err.contains(want), "{args:?}: {err}");
    }
}

#[test]
fn columns_with_strain_adds_the_strain_columns() {
    let img = tmp("strained3.tif");
    strained_tiff(&img);
    let csv = tmp("cols.csv");
    let maps = tmp("col-maps");
    let args = [
        "columns",
        img.to_str().unwrap(),
        "--strain",
        "--strain-maps",
        maps.to_str().unwrap(),
        "--out",
        csv.to_str().unwrap(),
    ];
    let (ok, _, err) = atomlens(&args);
    assert!(ok, "{err}");
    // The interpolated maps: calibrated, the image's size, ~0 where the lattice is.
    let bytes = std::fs::read(maps.join("exx.tif")).unwrap();
    let s = atomlens_io::read_one(atomlens_io::NamedFile::new("m.tif", bytes), &atomlens_io::Limits::NATIVE).unwrap();
    let m = s[0].frame(0).unwrap();
    assert_eq!((m.width(), m.height(), m.calibration.pixel_size), (256, 256, 0.02));
    assert!(m.data[[128, 128]].abs() < 2e-3, "{}", m.data[[128, 128]]);
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert!(header.ends_with(&["exx", "eyy", "exy", "lattice_rotation", "ux", "uy"]), "{header:?}");
    // Uniform strain against the lattice from the spectrum (the strained one): ~0 everywhere.
    let k = header.iter().position(|h| *h == "exx").unwrap();
    let exx: Vec<f64> =
        lines.filter_map(|l| l.split(',').nth(k)?.parse().ok()).filter(|v: &f64| v.is_finite()).collect();
    assert!(exx.len() > 300, "{} columns with strain", exx.len());
    let mean = exx.iter().sum::<f64>() / exx.len() as f64;
    assert!(mean.abs() < 1e-3, "mean exx {mean}");
    let (ok, _, err) = atomlens(&["columns", img.to_str().unwrap(), "--reference", "0,0,10,10"]);
    assert!(!ok && err.contains("--strain"), "{err}");
}

#[test]
fn register_writes_the_average_and_the_drift() {
    use atomlens_core::synth::{NanoparticleParams, TrueColumn, add_gaussians, nanoparticle};
    let p = nanoparticle(&NanoparticleParams { size: 128, diameter_nm: 2.0, ..Default::default() }).unwrap();
    let shifts = [[0.0, 0.0], [1.5, -0.5], [-1.0, 2.0]];
    let mut px = Vec::new();
    for s in shifts {
        let moved: Vec<TrueColumn> =
            p.columns.iter().map(|c| TrueColumn { x: c.x + s[0], y: c.y + s[1], ..c.clone() }).collect();
        let mut img = ndarray::Array2::from_elem((128, 128), 15.0f32);
        add_gaussians(&mut img, &moved);
        px.extend(img.iter().copied());
    }
    let stack = tmp("stack.tif");
    std::fs::write(&stack, atomlens_io::formats::tiff::write_f32(128, 128, &px, &Calibration::nm(0.02)).unwrap())
        .unwrap();
    let (avg, drift) = (tmp("avg.tif"), tmp("drift.csv"));
    let args =
        ["register", stack.to_str().unwrap(), "--out", avg.to_str().unwrap(), "--drift", drift.to_str().unwrap()];
    let (ok, _, err) = atomlens(&args);
    assert!(ok, "{err}");
    let rows: Vec<Vec<f64>> = std::fs::read_to_string(&drift)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(|v| v.parse().unwrap()).collect())
        .collect();
    assert_eq!(rows.len(), 3);
    // Relative drift between frames 1 and 2 is (−2.5, 2.5).
    assert!((rows[2][1] - rows[1][1] + 2.5).abs() < 0.05 && (rows[2][2] - rows[1][2] - 2.5).abs() < 0.05, "{rows:?}");
    let s = atomlens_io::read_one(
        atomlens_io::NamedFile::new("a.tif", std::fs::read(&avg).unwrap()),
        &atomlens_io::Limits::NATIVE,
    )
    .unwrap();
    assert_eq!((s[0].width, s[0].height, s[0].frames, s[0].calibration.pixel_size), (128, 128, 1, 0.02));
    // Non-rigid: the same drift, and a distortion field per frame that stays small (pure shifts).
    let mut nonrigid = args.to_vec();
    nonrigid.push("--nonrigid");
    let (ok, _, err) = atomlens(&nonrigid);
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(&drift).unwrap();
    assert!(text.starts_with("frame,dx,dy,field_rms\n"), "{text}");
    let rows: Vec<Vec<f64>> =
        text.lines().skip(1).map(|l| l.split(',').map(|v| v.parse().unwrap()).collect()).collect();
    assert!((rows[2][1] - rows[1][1] + 2.5).abs() < 0.05, "{rows:?}");
    assert!(rows.iter().all(|r| r[3] < 0.2), "{rows:?}");
    // One frame is not a series; frames of different sizes are refused.
    let one = tmp("one.tif");
    write_tiff(&one, 64, 64, 1, &Calibration::uncalibrated());
    let (ok, _, err) = atomlens(&["register", one.to_str().unwrap(), "--out", avg.to_str().unwrap()]);
    assert!(!ok && err.contains("registration needs a series"), "{err}");
    let other = tmp("other.tif");
    write_tiff(&other, 64, 48, 1, &Calibration::uncalibrated());
    let (ok, _, err) =
        atomlens(&["register", one.to_str().unwrap(), other.to_str().unwrap(), "--out", avg.to_str().unwrap()]);
    assert!(!ok && err.contains("differ in size"), "{err}");
}

#[test]
fn denoise_writes_the_output_and_the_residual() {
    let img = tmp("lattice-dn.tif");
    strained_tiff(&img);
    let (out, res) = (tmp("dn.tif"), tmp("res.tif"));
    let args = [
        "denoise",
        img.to_str().unwrap(),
        "--method",
        "wiener",
        "--out",
        out.to_str().unwrap(),
        "--residual",
        res.to_str().unwrap(),
    ];
    let (ok, _, err) = atomlens(&args);
    assert!(ok, "{err}");
    let read = |p: &Path| {
        let s = atomlens_io::read_one(
            atomlens_io::NamedFile::new("a.tif", std::fs::read(p).unwrap()),
            &atomlens_io::Limits::NATIVE,
        )
        .unwrap();
        s[0].frame(0).unwrap()
    };
    let (input, o, r) = (read(&img), read(&out), read(&res));
    assert_eq!(o.calibration.pixel_size, 0.02);
    // input = output + residual, pixel by pixel.
    let worst = input
        .data
        .iter()
        .zip(o.data.iter())
        .zip(r.data.iter())
        .map(|((i, o), r)| (i - o - r).abs())
        .fold(0.0f32, f32::max);
    assert!(worst < 1e-5, "{worst}");
    // BM3D and the rolling ball run with their defaults.
    for m in ["bm3d", "rolling-ball", "nlm"] {
        let (ok, _, err) = atomlens(&["denoise", img.to_str().unwrap(), "--method", m, "--out", out.to_str().unwrap()]);
        assert!(ok, "{m}: {err}");
    }
    for (m, extra, want) in [
        ("bm3d", vec!["--search", "40"], "outside 4–24"),
        ("rolling-ball", vec!["--radius", "1"], "outside 2–200"),
        ("median", vec!["--radius", "1.5"], "whole number"),
        ("bandpass", vec!["--small", "5", "--large", "2"], "must exceed small"),
        ("gaussian", vec!["--sigma=-1"], "must be positive"),
    ] {
        let mut args = vec!["denoise", img.to_str().unwrap(), "--method", m, "--out", out.to_str().unwrap()];
        args.extend(extra);
        let (ok, _, err) = atomlens(&args);
        assert!(!ok && err.contains(want), "{m}: {err}");
    }
}

#[test]
fn reconstruct_writes_an_mrc_volume_and_bad_angles_say_why() {
    use atomlens_core::tomo::phantom::{Phantom, phantom, tilt_range, tilt_series};
    let vol = phantom(Phantom::FacetedParticle, 32);
    let angles = tilt_range(-60.0, 60.0, 31);
    let series = tilt_series(&vol, &angles, None, 0);
    let stack = tmp("tilt.tif");
    let px: Vec<f32> = series.iter().copied().collect();
    std::fs::write(&stack, atomlens_io::formats::tiff::write_f32(32, 32, &px, &Calibration::nm(0.1)).unwrap()).unwrap();
    let out = tmp("volume.mrc");
    let base = ["reconstruct", stack.to_str().unwrap(), "--out", out.to_str().unwrap()];
    let mut args = base.to_vec();
    args.extend(["--tilt", "-60,4", "--iterations", "30", "--align"]);
    let (ok, _, err) = atomlens(&args);
    assert!(ok, "{err}");
    let s = atomlens_io::read_one(
        atomlens_io::NamedFile::new("v.mrc", std::fs::read(&out).unwrap()),
        &atomlens_io::Limits::NATIVE,
    )
    .unwrap();
    assert_eq!((s[0].width, s[0].height, s[0].frames), (32, 32, 32));
    assert!((s[0].calibration.pixel_size - 0.1).abs() < 1e-6);
    let v = s[0].to_f32();
    let at = |x: usize, y: usize, z: usize| v[(z * 32 + y) * 32 + x];
    assert!(at(16, 16, 16) > 0.7 && at(2, 16, 16).abs() < 0.2, "centre {} edge {}", at(16, 16, 16), at(2, 16, 16));
    // FBP from an angle file.
    let list = tmp("angles.txt");
    std::fs::write(&list, angles.iter().map(|a| format!("{a}\n")).collect::<String>()).unwrap();
    let mut args = base.to_vec();
    args.extend(["--angles", list.to_str().unwrap(), "--method", "fbp", "--align", "axis"]);
    let (ok, _, err) = atomlens(&args);
    assert!(ok, "{err}");
    // The phantom sits on the axis: the offset found is a fraction of a pixel.
    let offset = number_after(&err, "tilt axis ");
    assert!(offset.abs() < 0.3, "{err}");
    // Re-projection refinement on the same series: nothing to correct, so it moves nothing much.
    let mut args = base.to_vec();
    args.extend(["--angles", list.to_str().unwrap(), "--method", "fbp", "--align", "reproj"]);
    let (ok, _, err) = atomlens(&args);
    assert!(ok, "{err}");
    let worst = number_after(&err, "largest shift ");
    assert!(worst < 0.5, "{err}");
    // Wrong counts, disorder and no angles at all are refused with the reason.
    std::fs::write(&list, "0\n10\n5\n").unwrap();
    let mut args = base.to_vec();
    args.extend(["--angles", list.to_str().unwrap()]);
    let (ok, _, err) = atomlens(&args);
    assert!(!ok && err.contains("3 angles for 31 projections"), "{err}");
    let mut args = base.to_vec();
    args.extend(["--tilt", "60,-4"]);
    let (ok, _, err) = atomlens(&args);
    assert!(!ok && err.contains("increase strictly"), "{err}");
    let (ok, _, err) = atomlens(&base);
    assert!(!ok && err.contains("--tilt START,STEP"), "{err}");
}

#[test]
fn reconstruct_takes_angles_from_the_mrc_and_finds_a_turned_axis() {
    use atomlens_core::tomo::axis::make_vertical;
    use atomlens_core::tomo::phantom::{Phantom, phantom, tilt_range, tilt_series};
    let angles = tilt_range(-60.0, 60.0, 41);
    let turned = make_vertical(tilt_series(&phantom(Phantom::Cluster, 64), &angles, None, 0).view(), -6.0);
    let px: Vec<f32> = turned.iter().copied().collect();
    let stack = tmp("turned.mrc");
    let bytes =
        atomlens_io::formats::mrc::write_tilt_series(64, 64, &px, &angles, &Calibration::nm(0.2), "test").unwrap();
    std::fs::write(&stack, bytes).unwrap();
    let out = tmp("turned-volume.mrc");
    let args =
        ["reconstruct", stack.to_str().unwrap(), "--method", "fbp", "--axis", "auto", "--out", out.to_str().unwrap()];
    let (ok, _, err) = atomlens(&args);
    assert!(ok, "{err}");
    assert!(err.contains("tilt angles from the file: -60.00° to 60.00°"), "{err}");
    let axis = number_after(&err, "tilt axis ");
    assert!((axis - 6.0).abs() < 0.3, "{err}");
    let (ok, _, err) =
        atomlens(&["reconstruct", stack.to_str().unwrap(), "--axis", "95", "--out", out.to_str().unwrap()]);
    assert!(!ok && err.contains("within ±90"), "{err}");
}

/// The nanoparticle chain from the command line: a synthetic identical-location pair written by
/// `synth`, then `particles`, `count` (statistical and with a library), `compare` and `batch`.
#[test]
fn particles_count_compare_and_batch_write_their_tables() {
    let d = tmp("pair");
    let (ok, _, err) = atomlens(&["synth", "pair", "--size", "256", "--diameter", "3", "--out", d.to_str().unwrap()]);
    assert!(ok, "{err}");
    let (before, after) = (d.join("before.tif"), d.join("after.tif"));

    let p = tmp("particles");
    let (ok, _, err) = atomlens(&["particles", before.to_str().unwrap(), "--out", p.to_str().unwrap()]);
    assert!(ok, "{err}");
    assert!(err.contains("1 particle(s)"), "{err}");
    let particles = std::fs::read_to_string(p.join("particles.csv")).unwrap();
    assert_eq!(particles.lines().count(), 2, "{particles}");
    for f in ["columns.csv", "facets.csv", "particles.json", "labels.tif"] {
        assert!(p.join(f).exists(), "{f}");
    }

    let k = tmp("count");
    let (ok, _, err) = atomlens(&["count", before.to_str().unwrap(), "--out", k.to_str().unwrap()]);
    assert!(ok, "{err}");
    let xyz = std::fs::read_to_string(k.join("model.xyz")).unwrap();
    let atoms: usize = xyz.lines().next().unwrap().parse().unwrap();
    assert_eq!(xyz.lines().count(), atoms + 2);
    // counting.json carries each particle's total with its sd, as the model holds it.
    let cj: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(k.join("counting.json")).unwrap()).unwrap();
    let p0 = &cj["particles"][0];
    assert_eq!(p0["atoms"].as_f64().map(|n| n.round() as usize), Some(atoms), "{p0}");
    assert!(p0["atoms_sd"].as_f64().is_some_and(|sd| sd >= 0.0), "{p0}");
    // A library of 393 counts per atom (10 counts peak × 2πσ², σ = 2.5 px) gives the same total
    // within a few per cent.
    let lib = tmp("lib.txt");
    std::fs::write(&lib, (1..=40).map(|n| format!("{n},{}\n", 392.7 * n as f64)).collect::<String>()).unwrap();
    let k2 = tmp("count-lib");
    let count_with_library = || {
        atomlens(&[
            "count",
            before.to_str().unwrap(),
            "--library",
            lib.to_str().unwrap(),
            "--out",
            k2.to_str().unwrap(),
        ])
    };
    let (ok, _, err) = count_with_library();
    assert!(ok, "{err}");
    let atoms_lib: usize =
        std::fs::read_to_string(k2.join("model.xyz")).unwrap().lines().next().unwrap().parse().unwrap();
    assert!((atoms_lib as f64 / atoms as f64 - 1.0).abs() < 0.05, "{atoms_lib} vs {atoms}");
    std::fs::write(&lib, "1,abc\n").unwrap();
    let (ok, _, err) = count_with_library();
    assert!(!ok && err.starts_with("error: ") && err.contains("not a number"), "{err}");

    let c = tmp("compare");
    let (ok, _, err) =
        atomlens(&["compare", before.to_str().unwrap(), after.to_str().unwrap(), "--out", c.to_str().unwrap()]);
    assert!(ok, "{err}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(c.join("summary.json")).unwrap()).unwrap();
    let rot = summary["summary"]["rotation_deg"].as_f64().unwrap();
    assert!((rot - 0.8).abs() < 0.05, "rotation {rot}");
    let cols = std::fs::read_to_string(c.join("columns.csv")).unwrap();
    assert!(cols.lines().any(|l| l.starts_with("lost,")) && cols.lines().any(|l| l.starts_with("new,")));
    assert!(c.join("change.tif").exists() && c.join("facets.csv").exists());
    // An image of something else is refused with the confidence.
    let flat = tmp("flat.tif");
    write_tiff(&flat, 256, 256, 1, &Calibration::nm(0.02));
    let (ok, _, err) =
        atomlens(&["compare", before.to_str().unwrap(), flat.to_str().unwrap(), "--out", c.to_str().unwrap()]);
    assert!(!ok && err.starts_with("error: ") && err.lines().count() == 1, "{err}");

    let b = tmp("batch");
    let (ok, _, err) = atomlens(&["batch", d.to_str().unwrap(), "--out", b.to_str().unwrap()]);
    assert!(ok, "{err}");
    let s = std::fs::read_to_string(b.join("summary.csv")).unwrap();
    assert_eq!(s.lines().count(), 3, "{s}"); // header, before.tif, after.tif (the truth CSVs are not images)
    assert!(b.join("before").join("particles.csv").exists());
    assert_eq!(std::fs::read_to_string(b.join("timings.csv")).unwrap().lines().count(), 3);
    // Two shards merged: the single run's summary byte for byte, and its per-image tables.
    let shards: Vec<PathBuf> = (0..2).map(|i| tmp(&format!("shard{i}"))).collect();
    for (i, out) in shards.iter().enumerate() {
        let shard = format!("{i}/2");
        let (ok, _, err) = atomlens(&["batch", d.to_str().unwrap(), "--shard", &shard, "--out", out.to_str().unwrap()]);
        assert!(ok && err.contains(&format!("shard {i}/2: 1 of 2 images")), "{err}");
    }
    let m = tmp("merged");
    let merge = |dirs: &[&PathBuf]| {
        let mut args = vec!["merge"];
        args.extend(dirs.iter().map(|d| d.to_str().unwrap()));
        args.extend(["--out", m.to_str().unwrap()]);
        atomlens(&args)
    };
    let (ok, _, err) = merge(&[&shards[1], &shards[0]]);
    assert!(ok && err.contains("2 of 2 images analysed"), "{err}");
    assert_eq!(std::fs::read_to_string(m.join("summary.csv")).unwrap(), s);
    for f in ["before/particles.csv", "after/columns.csv", "recipe.json"] {
        assert_eq!(std::fs::read(m.join(f)).unwrap(), std::fs::read(b.join(f)).unwrap(), "{f}");
    }
    let (ok, _, err) = merge(&[&shards[0]]);
    assert!(!ok && err.contains("missing shard(s) 1/2"), "{err}");
    let (ok, _, err) = merge(&[&shards[0], &shards[0]]);
    assert!(!ok && err.contains("given twice"), "{err}");
    let (ok, _, err) = atomlens(&["batch", d.to_str().unwrap(), "--shard", "2/2", "--out", m.to_str().unwrap()]);
    assert!(!ok && err.contains("I from 0 to N−1"), "{err}");
    let recipe = tmp("recipe.json");
    std::fs::write(&recipe, r#"{"denoise": {"method": "gaussian", "sigma": 0.7}, "bogus": 1}"#).unwrap();
    let (ok, _, err) =
        atomlens(&["batch", d.to_str().unwrap(), "--recipe", recipe.to_str().unwrap(), "--out", b.to_str().unwrap()]);
    assert!(!ok && err.contains("not a valid recipe"), "{err}");
    let empty = tmp("empty-dir");
    std::fs::create_dir_all(&empty).unwrap();
    let (ok, _, err) = atomlens(&["batch", empty.to_str().unwrap(), "--out", b.to_str().unwrap()]);
    assert!(!ok && err.contains("holds no image files"), "{err}");
}

/// `replay` runs a saved session on its files (found by name, or renamed by their hash),
/// writes its tables, and fails when a number differs from the saved one or a file is missing.
#[test]
fn replay_reproduces_a_saved_session_and_says_when_it_cannot() {
    use atomlens_io::NamedFile;
    use atomlens_session::session::Session;
    let d = tmp("replay");
    let (ok, _, err) = atomlens(&["synth", "pair", "--size", "256", "--diameter", "3", "--out", d.to_str().unwrap()]);
    assert!(ok, "{err}");
    let read = |n: &str| NamedFile::new(n, std::fs::read(d.join(n)).unwrap());
    let mut s = Session::new();
    s.load_files("before.tif", vec![read("before.tif")]).unwrap();
    s.select(0, 0).unwrap();
    s.find_seeds(Default::default()).unwrap();
    let t = s.fit_found().unwrap();
    let (mut x, mut y) = (t.numbers("x"), t.numbers("y"));
    x.pop();
    y.pop();
    s.refit(x, y).unwrap();
    s.analyse_particles(Default::default()).unwrap();
    s.add_files("after.tif", vec![read("after.tif")]).unwrap();
    s.compare_signals(0, 1, Default::default()).unwrap();
    let saved = s.save();
    let session = d.join("pair.atomlens.json");
    std::fs::write(&session, saved.to_json()).unwrap();
    // The after image renamed: found by its size and SHA-256.
    std::fs::rename(d.join("after.tif"), d.join("after_renamed.tif")).unwrap();
    let out = tmp("replayed");
    let (ok, _, err) = atomlens(&["replay", session.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(ok && err.contains("came out the same to the printed digit"), "{err}");
    for f in ["columns.csv", "particles.csv", "compare_columns.csv", "check.json"] {
        assert!(out.join(f).exists(), "{f}");
    }
    assert_eq!(std::fs::read_to_string(out.join("columns.csv")).unwrap(), saved.results["columns.csv"]);
    // A saved number that the replay does not give: a failure naming it.
    let mut edited = saved.clone();
    let csv = edited.results.get_mut("particles.csv").unwrap();
    let row = csv.lines().nth(1).unwrap().to_string();
    *csv = csv.replacen(&row, &row.replacen(",false,", ",true,", 1), 1);
    std::fs::write(&session, edited.to_json()).unwrap();
    let (ok, _, err) = atomlens(&["replay", session.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(!ok && err.contains("differs") && err.contains("particles.csv line 2"), "{err}");
    // A file that is not there: named.
    std::fs::remove_file(d.join("after_renamed.tif")).unwrap();
    let (ok, _, err) = atomlens(&["replay", session.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(!ok && err.contains("missing after.tif"), "{err}");
}

/// `report` writes one self-contained HTML file (figures as data: URIs, no external reference)
/// and says in it what failed.
#[test]
fn report_is_one_self_contained_file_and_says_what_failed() {
    let d = tmp("report");
    let (ok, _, err) = atomlens(&["synth", "pair", "--size", "256", "--diameter", "3", "--out", d.to_str().unwrap()]);
    assert!(ok, "{err}");
    let recipe = d.join("recipe.json");
    std::fs::write(&recipe, r#"{"strain": {}}"#).unwrap();
    let out = d.join("report.html");
    let img = d.join("before.tif");
    let (ok, _, err) = atomlens(&[
        "report",
        img.to_str().unwrap(),
        "--recipe",
        recipe.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let html = std::fs::read_to_string(&out).unwrap();
    for want in
        ["<h2>Columns</h2>", "<h2>Particles</h2>", "<h2>Strain (GPA)</h2>", "What the uncertainties cover", "SHA-256"]
    {
        assert!(html.contains(want), "{want}");
    }
    assert_eq!(html.matches("<img src=\"data:image/png;base64,").count(), 6, "the image, four maps, the colour bar");
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("<script"), "self-contained");
    assert!(!html.contains("What failed"));
    // A blank image: columns and particles fail, and the report says so.
    let blank = d.join("blank.tif");
    std::fs::write(
        &blank,
        atomlens_io::formats::tiff::write_f32(64, 64, &[1.0; 64 * 64], &Calibration::nm(0.02)).unwrap(),
    )
    .unwrap();
    let (ok, _, err) = atomlens(&["report", blank.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(ok && err.contains("failed"), "{err}");
    let html = std::fs::read_to_string(&out).unwrap();
    assert!(html.contains("What failed") && html.contains("<b>columns</b>"), "the failure is in the report");
}

/// `atomlens ARGS`, with `--gpu` when `gpu`.
fn atomlens_gpu_or_not(gpu: bool, args: &[&str]) -> (bool, String, String) {
    atomlens(&[args, if gpu { &["--gpu"][..] } else { &[] }].concat())
}

fn read_f32(path: &Path, name: &str) -> Vec<f32> {
    let s = atomlens_io::read_one(
        atomlens_io::NamedFile::new(name, std::fs::read(path).unwrap()),
        &atomlens_io::Limits::NATIVE,
    )
    .unwrap();
    s[0].to_f32()
}

/// `--gpu` on the native adapter (lavapipe on the test machines) gives the CPU's numbers within
/// the kernels' tolerances and says which ran; a method without a GPU kernel is refused.
#[test]
fn gpu_runs_give_the_cpu_numbers_and_say_so() {
    use atomlens_core::tomo::phantom::{Phantom, phantom, tilt_range, tilt_series};
    let src = tmp("gpu_in.tif");
    let px: Vec<f32> =
        (0..45 * 38).map(|i| (20.0 + 15.0 * ((i % 45) as f32 * 0.8).sin() + (i * 7919 % 13) as f32).round()).collect();
    std::fs::write(&src, atomlens_io::formats::tiff::write_f32(45, 38, &px, &Calibration::nm(0.02)).unwrap()).unwrap();
    let (cpu_out, gpu_out) = (tmp("nlm_cpu.tif"), tmp("nlm_gpu.tif"));
    let run = |out: &Path, gpu: bool| {
        atomlens_gpu_or_not(gpu, &["denoise", src.to_str().unwrap(), "--method", "nlm", "--out", out.to_str().unwrap()])
    };
    let (ok, _, err) = run(&cpu_out, false);
    assert!(ok && err.contains("on the CPU"), "{err}");
    let (ok, _, err) = run(&gpu_out, true);
    assert!(ok && err.contains("on the GPU") && err.contains("GPU: "), "{err}");
    let (a, b) = (read_f32(&cpu_out, "a.tif"), read_f32(&gpu_out, "b.tif"));
    let worst = a.iter().zip(&b).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
    let range = px.iter().fold(0.0f32, |m, v| m.max(*v)) - px.iter().fold(f32::MAX, |m, v| m.min(*v));
    assert!(worst <= atomlens_gpu::nlm::TOLERANCE * range, "largest difference {worst} of {range}");
    let (ok, _, err) = atomlens(&["denoise", src.to_str().unwrap(), "--method", "median", "--gpu", "--out", "x.tif"]);
    assert!(!ok && err.contains("median has no GPU kernel"), "{err}");

    let vol = phantom(Phantom::FacetedParticle, 24);
    let angles = tilt_range(-60.0, 60.0, 25);
    let series = tilt_series(&vol, &angles, None, 0);
    let stack = tmp("gpu_tilt.tif");
    let px: Vec<f32> = series.iter().copied().collect();
    std::fs::write(&stack, atomlens_io::formats::tiff::write_f32(24, 24, &px, &Calibration::nm(0.1)).unwrap()).unwrap();
    let mut volumes = Vec::new();
    for (gpu, name) in [(false, "v_cpu.mrc"), (true, "v_gpu.mrc")] {
        let out = tmp(name);
        let args = ["reconstruct", stack.to_str().unwrap(), "--tilt", "-60,5", "--iterations", "10"];
        let (ok, _, err) = atomlens_gpu_or_not(gpu, &[&args[..], &["--out", out.to_str().unwrap()]].concat());
        assert!(ok && err.contains(if gpu { "on the GPU" } else { "on the CPU" }), "{err}");
        volumes.push(read_f32(&out, name));
    }
    let scale = volumes[0].iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
    let worst = volumes[0].iter().zip(&volumes[1]).map(|(p, q)| (p - q).abs() as f64).fold(0.0, f64::max);
    assert!(worst <= 10.0 * atomlens_gpu::tomo::TOLERANCE * scale, "SIRT: largest difference {worst} of {scale}");

    // Columns of the synthetic particle: the same columns, positions within the kernel's tolerance.
    let dir = tmp("gpu_particle");
    let (ok, _, err) = atomlens(&["synth", "particle", "--size", "256", "--out", dir.to_str().unwrap()]);
    assert!(ok, "{err}");
    let img = dir.join("image.tif");
    let mut tables = Vec::new();
    for gpu in [false, true] {
        let out = tmp(if gpu { "cols_gpu.csv" } else { "cols_cpu.csv" });
        let (ok, _, err) =
            atomlens_gpu_or_not(gpu, &["columns", img.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert!(ok && err.contains(if gpu { "refine on the GPU" } else { "refine on the CPU" }), "{err}");
        tables.push(std::fs::read_to_string(&out).unwrap());
    }
    let rows = |t: &str| -> Vec<(f64, f64, String)> {
        t.lines()
            .skip(1)
            .map(|l| {
                let f: Vec<&str> = l.split(',').collect();
                (f[0].parse().unwrap(), f[1].parse().unwrap(), l.to_string())
            })
            .collect()
    };
    let (a, b) = (rows(&tables[0]), rows(&tables[1]));
    assert!(a.len() > 50 && a.len() == b.len(), "{} vs {} columns", a.len(), b.len());
    let worst = a.iter().zip(&b).map(|(p, q)| (p.0 - q.0).abs().max((p.1 - q.1).abs())).fold(0.0, f64::max);
    // The CSV rounds positions to 1e-5 px.
    assert!(worst <= atomlens_gpu::columns::POSITION_TOLERANCE + 1e-5, "largest position difference {worst} px");

    // The particle chain and a batch with their fits on the GPU: the same particles and counts.
    let folder = tmp("gpu_batch");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::copy(&img, folder.join("a.tif")).unwrap();
    let (pc, pg) = (tmp("gpu_pc"), tmp("gpu_pg"));
    for (out, gpu) in [(&pc, false), (&pg, true)] {
        let (ok, _, err) =
            atomlens_gpu_or_not(gpu, &["particles", img.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert!(ok, "{err}");
    }
    let read = |d: &Path, f: &str| std::fs::read_to_string(d.join(f)).unwrap();
    assert_eq!(read(&pc, "particles.csv"), read(&pg, "particles.csv"));
    let (bc, bg) = (tmp("gpu_bc"), tmp("gpu_bg"));
    for (out, gpu) in [(&bc, false), (&bg, true)] {
        let (ok, _, err) =
            atomlens_gpu_or_not(gpu, &["batch", folder.to_str().unwrap(), "--out", out.to_str().unwrap()]);
        assert!(ok, "{err}");
    }
    assert_eq!(read(&bc, "summary.csv"), read(&bg, "summary.csv"));
}
