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

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("atomlens-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn write_tiff(path: &Path, w: usize, h: usize, frames: usize, cal: &Calibration) {
    let px: Vec<f32> = (0..w * h * frames).map(|i| (i % 97) as f32 * 0.5).collect();
    std::fs::write(path, atomlens_io::tiff_io::write_f32(w, h, &px, cal).unwrap()).unwrap();
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
