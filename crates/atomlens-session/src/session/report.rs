//! The report: one self-contained HTML file of what the session measured on the image shown —
//! figures (PNG, embedded), the result tables (shown, and attached as CSV), every step with its
//! parameters, the files' SHA-256, the software, what each uncertainty covers, and what failed.
//! No script and no external reference: its own Content-Security-Policy allows only its inline
//! style and `data:` images, so it opens offline and cannot fetch anything.
use std::fmt::Write;

use atomlens_core::image::render::{Colormap, to_rgba};
use atomlens_core::image::stats;
use base64::Engine;
use ndarray::Array2;

use super::Session;
use super::journal::{Step, software};
use crate::error::{Error, Result};

/// Rows of a table shown in the report (all rows are in the attached CSV).
const SHOWN_ROWS: usize = 50;
/// Largest side of an embedded figure (px); larger images are block-averaged down.
const MAX_SIDE: usize = 1024;

/// What each uncertainty in the tables covers (said once, here).
const UNCERTAINTIES: &[(&str, &str)] = &[
    (
        "x_err, y_err",
        "Cramér–Rao bound of the fitted position from the shot noise alone: a lower bound; it leaves out scan noise, \
         drift, probe tails and model error.",
    ),
    (
        "x_err_empirical, y_err_empirical",
        "the scatter of each column about the midpoint of its opposite neighbours (an ideal lattice's columns lie \
         there), scaled to one column: covers scan noise and every other random error, but not a smooth distortion \
         of the whole image.",
    ),
    (
        "atoms_sd",
        "the spread of a particle's total over each column's count probabilities (the mixture's posterior, or the \
         library's); it does not cover a wrong cross-section model: an alloy's total is a lower bound.",
    ),
    ("ordered_fraction_sd", "the spread of the ordered fraction when each column's class is drawn from its posterior."),
    ("d_atoms_sd", "the spread of a column's change in atoms from both images' count probabilities."),
    (
        "strain",
        "GPA maps have no error bar per pixel: their spatial resolution (the mask) and the reference region are stated; \
         the core standard deviation is the spread over the particle, not a measurement error.",
    ),
];

/// A PNG of `rgba` (`w` × `h`) as a `data:` URI.
fn png_uri(rgba: Vec<u8>, w: usize, h: usize) -> Result<String> {
    let img = image::RgbaImage::from_raw(w as u32, h as u32, rgba).ok_or_else(|| Error::invalid("a figure's size"))?;
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).map_err(|e| Error::invalid(format!("PNG: {e}")))?;
    Ok(format!("data:image/png;base64,{}", base64::engine::general_purpose::STANDARD.encode(out.into_inner())))
}

/// `data` block-averaged by an integer factor so neither side exceeds [`MAX_SIDE`]; the factor.
fn shrink(data: &Array2<f32>) -> (Array2<f32>, usize) {
    let (h, w) = data.dim();
    let f = w.max(h).div_ceil(MAX_SIDE).max(1);
    if f == 1 {
        return (data.clone(), 1);
    }
    let out = Array2::from_shape_fn((h / f, w / f), |(y, x)| {
        let block = data.slice(ndarray::s![y * f..(y + 1) * f, x * f..(x + 1) * f]);
        let v: Vec<f32> = block.iter().copied().filter(|v| v.is_finite()).collect();
        if v.is_empty() { f32::NAN } else { v.iter().sum::<f32>() / v.len() as f32 }
    });
    (out, f)
}

/// HTML-escaped text.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A CSV as an HTML table (its first [`SHOWN_ROWS`] rows) and a link to the whole file.
fn csv_table(name: &str, csv: &str) -> String {
    let mut lines = csv.lines();
    let mut out = String::new();
    let header = lines.next().unwrap_or("");
    let rows: Vec<&str> = lines.collect();
    let uri = format!("data:text/csv;base64,{}", base64::engine::general_purpose::STANDARD.encode(csv));
    let _ = write!(
        out,
        "<p><a download=\"{name}\" href=\"{uri}\">{name}</a>: {} rows{}</p><div class=\"scroll\"><table><tr>",
        rows.len(),
        if rows.len() > SHOWN_ROWS {
            format!(" (the first {SHOWN_ROWS} shown; all in the file)")
        } else {
            String::new()
        }
    );
    for h in header.split(',') {
        let _ = write!(out, "<th>{}</th>", esc(h));
    }
    out += "</tr>";
    for r in rows.iter().take(SHOWN_ROWS) {
        out += "<tr>";
        for c in r.split(',') {
            let _ = write!(out, "<td>{}</td>", esc(c.trim_matches('"')));
        }
        out += "</tr>";
    }
    out + "</table></div>"
}

/// A scale bar's length: 1, 2 or 5 × 10ⁿ of `unit`, about a fifth of `width_units`.
fn nice_length(width_units: f64) -> f64 {
    let target = width_units / 5.0;
    let p = 10f64.powf(target.log10().floor());
    [5.0, 2.0, 1.0].into_iter().map(|m| m * p).find(|&l| l <= target).unwrap_or(p)
}

/// A figure: an `<img>` with its caption.
fn figure(uri: &str, alt: &str, caption: &str) -> String {
    format!("<figure><img src=\"{uri}\" alt=\"{}\"><figcaption>{caption}</figcaption></figure>", esc(alt))
}

impl Session {
    /// The report of the image shown and everything measured on it, as one HTML file.
    /// `generated` is the date to print (the caller's clock); `failures` are the steps that
    /// failed, by name, with their messages (a report of a failed analysis says what failed).
    pub fn report(&self, title: &str, generated: &str, failures: &[(String, String)]) -> Result<String> {
        let shown = self.shown()?;
        let img = &shown.image;
        let cal = &img.calibration;
        let mut body = String::new();
        let _ = write!(
            body,
            "<h1>{}</h1><p class=\"meta\">{} · {} · signal {} frame {} · {}×{} px · pixel {}</p>",
            esc(title),
            esc(&software()),
            esc(generated),
            shown.signal,
            shown.frame,
            img.width(),
            img.height(),
            if cal.is_calibrated() { format!("{} {}", cal.pixel_size, cal.unit) } else { "uncalibrated (px)".into() }
        );
        if !failures.is_empty() {
            body += "<section class=\"failed\"><h2>What failed</h2><ul>";
            for (what, why) in failures {
                let _ = write!(body, "<li><b>{}</b>: {}</li>", esc(what), esc(why));
            }
            body += "</ul></section>";
        }

        // The image, with the columns marked and a scale bar.
        let (small, f) = shrink(&img.data);
        let (h, w) = small.dim();
        let p = stats::percentiles(small.view(), &[0.1, 99.9])?;
        let mut rgba = to_rgba(small.view(), p[0], p[1].max(p[0] + f32::EPSILON), Colormap::Gray);
        let mut caption = format!(
            "The image shown (display 0.1–99.9 percentile{})",
            if f > 1 { format!(", {f}× binned") } else { String::new() }
        );
        if let Some((r, _)) = &shown.columns {
            for c in &r.columns {
                let colour = if c.status == atomlens_core::columns::fit::FitStatus::Fitted {
                    [90, 209, 122]
                } else {
                    [255, 179, 71]
                };
                let (cx, cy) = ((c.x / f as f64).round() as isize, (c.y / f as f64).round() as isize);
                for (dx, dy) in [(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)] {
                    let (x, y) = (cx + dx, cy + dy);
                    if x >= 0 && y >= 0 && (x as usize) < w && (y as usize) < h {
                        let i = 4 * (y as usize * w + x as usize);
                        rgba[i..i + 3].copy_from_slice(&colour);
                    }
                }
            }
            let _ = write!(caption, "; {} columns marked (green fitted, orange not)", r.columns.len());
        }
        if cal.is_calibrated() {
            let len = nice_length(img.width() as f64 * cal.pixel_size);
            let px = (len / cal.pixel_size / f as f64).round() as usize;
            let (x0, y0) = (w.saturating_sub(px + w / 20), h.saturating_sub(h / 20 + 4));
            for y in y0..(y0 + 4).min(h) {
                for x in x0..(x0 + px).min(w) {
                    let i = 4 * (y * w + x);
                    rgba[i..i + 3].copy_from_slice(&[255, 255, 255]);
                }
            }
            let _ = write!(caption, "; scale bar (white, bottom right) {len} {}", cal.unit);
        }
        body += "<h2>Image</h2>";
        body += &figure(&png_uri(rgba, w, h)?, "the image", &format!("{caption}."));

        if shown.columns.is_some() {
            let t = self.column_table()?;
            let s = t.values.get("precision_summary").and_then(|v| v.as_str()).unwrap_or("");
            let _ = write!(body, "<h2>Columns</h2><p>{} columns; {}.</p>", t.numbers("x").len(), esc(s));
            body += &csv_table("columns.csv", &self.columns_csv()?);
        }
        if shown.particles.is_some() {
            let r = self.particles_reply()?;
            body += "<h2>Particles</h2><ul>";
            for p in r.values.get("particles").and_then(|v| v.as_array()).into_iter().flatten() {
                let field = |k: &str| p.get(k).and_then(|v| v.as_str()).filter(|s| !s.is_empty());
                let _ = write!(body, "<li>#{}: {}", p["id"], esc(field("lattice_summary").unwrap_or("")));
                for (k, label) in [
                    ("ordering_summary", ""),
                    ("counting_note", "counted: "),
                    ("counting_warning", "⚠ "),
                    ("counting_error", "not counted: "),
                ] {
                    if let Some(v) = field(k) {
                        let _ = write!(body, "; {label}{}", esc(v));
                    }
                }
                body += "</li>";
            }
            body += "</ul>";
            body += &csv_table("particles.csv", &self.particle_export("particles_csv", "")?);
            body += &csv_table("facets.csv", &self.particle_export("facets_csv", "")?);
        }
        if let Some((r, p)) = &shown.gpa {
            let s = r.summary(p.refine, cal.is_calibrated().then_some(cal.pixel_size));
            let _ = write!(
                body,
                "<h2>Strain (GPA)</h2><p>Resolution {:.1} px (mask {} of radius {:.4} /px); reference x {}–{}, y {}–{}; \
                 {:.0} % of pixels measured; edge band {} px unreliable.</p><div class=\"maps\">",
                s.resolution_px,
                esc(&format!("{:?}", p.mask).to_lowercase()),
                s.mask_radius_per_px,
                s.reference.x0,
                s.reference.x1,
                s.reference.y0,
                s.reference.y1,
                100.0 * s.valid_fraction,
                s.border_px
            );
            for (name, m) in r.maps() {
                let lim = super::strain::symmetric_limit(r, m) as f32;
                let (sm, _) = shrink(m);
                let (mh, mw) = sm.dim();
                let mut rgba = to_rgba(sm.view(), -lim, lim, Colormap::Rdbu);
                for (px, v) in rgba.chunks_mut(4).zip(sm.iter()) {
                    if !v.is_finite() {
                        px.copy_from_slice(&[200, 200, 200, 255]);
                    }
                }
                let st = &s.stats[name];
                let cap = format!(
                    "{name}: blue −{lim:.4} … white 0 … red +{lim:.4}, grey where no fringe was measured; core mean {:.5} ± {:.5} (sd)",
                    st.core_mean, st.core_std
                );
                body += &figure(&png_uri(rgba, mw, mh)?, name, &esc(&cap));
            }
            let bar = Array2::from_shape_fn((12, 256), |(_, x)| x as f32 / 255.0 * 2.0 - 1.0);
            body += &figure(
                &png_uri(to_rgba(bar.view(), -1.0, 1.0, Colormap::Rdbu), 256, 12)?,
                "colour bar",
                "colour bar: −limit … 0 … +limit of each map",
            );
            body += "</div>";
        }
        if let Some(c) = &self.compared {
            let _ = write!(
                body,
                "<h2>Identical location</h2><p>{}</p>",
                esc(&c.comparison.summary.describe()).replace('\n', "<br>")
            );
            body += &csv_table("compare_columns.csv", &self.compare_export("columns_csv", "", "")?);
        }

        body += "<h2>What the uncertainties cover</h2><dl>";
        for (k, v) in UNCERTAINTIES {
            let _ = write!(body, "<dt>{k}</dt><dd>{}</dd>", esc(v));
        }
        body += "</dl><h2>Files</h2><table><tr><th>file</th><th>bytes</th><th>SHA-256</th></tr>";
        let saved = self.save();
        for f in &saved.files {
            let _ =
                write!(body, "<tr><td>{}</td><td>{}</td><td><code>{}</code></td></tr>", esc(&f.name), f.size, f.sha256);
        }
        body += "</table><h2>Steps and parameters</h2><ol>";
        for step in &saved.steps {
            let json = serde_json::to_string_pretty(step).unwrap_or_default();
            let name = match step {
                Step::Demo { .. } => "built-in demo",
                _ => "",
            };
            let _ = write!(body, "<li>{name}<pre>{}</pre></li>", esc(&json));
        }
        body += "</ol><p class=\"meta\">The same steps as a session file (<code>atomlens replay</code> reproduces every number): ";
        let session_uri = format!(
            "data:application/json;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(saved.to_json())
        );
        let _ =
            write!(body, "<a download=\"session.atomlens.json\" href=\"{session_uri}\">session.atomlens.json</a>.</p>");

        Ok(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\">\
             <meta name=\"viewport\" content=\"width=device-width\"><title>{}</title><style>{STYLE}</style></head><body>{body}</body></html>\n",
            esc(title)
        ))
    }
}

const STYLE: &str = "body{font:14px/1.45 system-ui,sans-serif;max-width:1100px;margin:24px auto;padding:0 16px;color:#1d2024}\
h1{font-size:22px}h2{font-size:17px;margin-top:28px;border-bottom:1px solid #ccd}.meta{color:#667}\
figure{display:inline-block;margin:8px 12px 8px 0;vertical-align:top}figure img{max-width:100%;image-rendering:pixelated;border:1px solid #ccd}\
.maps figure img{width:240px}figcaption{font-size:12px;color:#445;max-width:520px}\
table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #dde;padding:2px 6px;text-align:right}th{background:#f2f3f7}\
.scroll{max-height:420px;overflow:auto}pre{font-size:11px;background:#f6f7f9;padding:6px;overflow:auto}\
.failed{border:1px solid #d44;background:#fff4f4;padding:4px 12px}dt{font-weight:600}";
