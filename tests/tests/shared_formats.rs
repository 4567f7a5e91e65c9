#![allow(clippy::unwrap_used)]
//! Every microscope file in `../shared/data/formats/` against what RosettaSciIO 0.15 reads from
//! it (`expected.json`): shape, dtype, pixel size and the sha256 of the native data.
use atomlens_core::Calibration;
use atomlens_io::{Limits, NamedFile};
use atomlens_tests::{shared_dir, skip};
use serde_json::Value;
use sha2::{Digest, Sha256};

#[test]
fn every_shared_format_file_matches_rosettasciio() {
    let Some(shared) = shared_dir() else { return skip("every_shared_format_file_matches_rosettasciio") };
    let dir = shared.join("data/formats");
    let expected: Value = serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
    let all_names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    let mut checked = 0;
    let mut failures = Vec::new();
    for (file, want) in expected["files"].as_object().unwrap() {
        // Hand the reader the file and its TIA companions, as the CLI and the page do.
        let group = atomlens_io::group_files(&all_names)
            .into_iter()
            .find(|(_, g)| g.contains(file))
            .map(|(_, g)| g)
            .unwrap_or_else(|| vec![file.clone()]);
        let files: Vec<NamedFile> =
            group.iter().map(|n| NamedFile::new(n.clone(), std::fs::read(dir.join(n)).unwrap())).collect();
        let signals = match atomlens_io::read(file, files, &Limits::NATIVE) {
            Ok(s) => s,
            Err(e) => {
                failures.push(format!("{file}: {e}"));
                continue;
            }
        };
        let want_signals = want["signals"].as_array().unwrap();
        if signals.len() != want_signals.len() {
            failures.push(format!("{file}: {} signals, RosettaSciIO has {}", signals.len(), want_signals.len()));
            continue;
        }
        for (i, (got, want)) in signals.iter().zip(want_signals).enumerate() {
            let tag = format!("{file}[{i}]");
            let shape: Vec<usize> =
                want["shape"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
            let got_shape =
                if got.frames > 1 { vec![got.frames, got.height, got.width] } else { vec![got.height, got.width] };
            if got_shape != shape {
                failures.push(format!("{tag}: shape {got_shape:?} vs {shape:?}"));
            }
            if got.dtype.name() != want["dtype"] {
                failures.push(format!("{tag}: dtype {} vs {}", got.dtype.name(), want["dtype"]));
            }
            let x_axis = want["axes_hyperspy_order"].as_array().unwrap().last().unwrap();
            let want_cal =
                Calibration::from_length(x_axis["scale"].as_f64().unwrap(), x_axis["units"].as_str().unwrap_or(""));
            // Prismatic MRC has no calibration (cell = 0); HyperSpy shows its default of 1 nm.
            let want_cal = if file.starts_with("prism_") { None } else { want_cal };
            match want_cal {
                Some(w) => {
                    let rel = (got.calibration.pixel_size / w.pixel_size - 1.0).abs();
                    if got.calibration.unit != "nm" || rel > 1e-9 {
                        failures.push(format!("{tag}: pixel size {:?} vs {:?}", got.calibration, w));
                    }
                }
                None if got.calibration.is_calibrated() => {
                    failures.push(format!("{tag}: calibrated {:?}, expected none", got.calibration))
                }
                None => {}
            }
            let sha = format!("{:x}", Sha256::digest(&got.data));
            if sha != want["sha256"] {
                failures.push(format!("{tag}: sha256 {sha} vs {}", want["sha256"]));
            }
            checked += 1;
        }
    }
    eprintln!("checked {checked} signals");
    assert!(failures.is_empty(), "mismatches:\n{}", failures.join("\n"));
    assert!(checked >= 20, "only {checked} signals checked");
}
