//! `atomlens info`: shape, dtype, calibration and metadata of every signal of a file.
use std::path::Path;

use anyhow::Result;
use atomlens_io::Signal;

use crate::files::load;

pub fn info(path: &Path, json: bool) -> Result<()> {
    let signals = load(path)?;
    if json {
        let all: Vec<_> = signals.iter().map(signal_json).collect();
        let mut top = all[0].clone();
        top["file"] = path.display().to_string().into();
        top["signals"] = all.into();
        println!("{}", serde_json::to_string_pretty(&top)?);
        return Ok(());
    }
    println!("{}", path.display());
    for (i, s) in signals.iter().enumerate() {
        let title = if s.title.is_empty() { String::new() } else { format!(" \"{}\"", s.title) };
        println!("[{i}]{title} {}", s.metadata.format);
        let frames = if s.frames > 1 { format!(" × {} frames", s.frames) } else { String::new() };
        println!("  shape       {} × {} px{frames}, {}", s.width, s.height, s.dtype.name());
        if s.calibration.is_calibrated() {
            println!(
                "  pixel size  {} nm  (field of view {:.3} × {:.3} nm)",
                s.calibration.pixel_size,
                s.width as f64 * s.calibration.pixel_size,
                s.height as f64 * s.calibration.pixel_size
            );
        } else {
            println!("  pixel size  uncalibrated");
        }
        let m = &s.metadata;
        let rows: [(&str, Option<String>); 7] = [
            ("voltage", m.voltage_kv.map(|v| format!("{v} kV"))),
            ("microscope", m.microscope.clone()),
            ("detector", m.detector.clone()),
            ("mode", m.mode.clone()),
            ("magnification", m.magnification.map(|v| format!("{v}×"))),
            ("dwell time", m.dwell_time_us.map(|v| format!("{v} µs"))),
            ("acquired", m.acquired.clone()),
        ];
        for (k, v) in rows {
            if let Some(v) = v {
                println!("  {k:<11} {v}");
            }
        }
        for n in &m.notes {
            println!("  note        {n}");
        }
    }
    Ok(())
}

fn signal_json(s: &Signal) -> serde_json::Value {
    serde_json::json!({
        "title": s.title,
        "width": s.width,
        "height": s.height,
        "frames": s.frames,
        "dtype": s.dtype.name(),
        "pixel_size": s.calibration.pixel_size,
        "unit": s.calibration.unit,
        "metadata": s.metadata,
    })
}
