//! `atomlens report`: run a recipe on an image through the session the page uses and write one
//! self-contained HTML report (figures, tables, parameters, file hashes, what each uncertainty
//! covers, what failed).
use std::path::PathBuf;

use anyhow::{Context, Result};
use atomlens_core::Recipe;
use atomlens_io::Limits;
use atomlens_session::session::Session;

use crate::files::{calibration_text, with_companions, write};

#[derive(clap::Args)]
pub struct ReportArgs {
    /// The image.
    image: PathBuf,
    /// The analysis (`core::Recipe` JSON; default: the default recipe: columns, particles and
    /// counting; add `"strain": {}` for GPA maps).
    #[arg(long)]
    recipe: Option<PathBuf>,
    /// Which signal of a multi-signal file (see `info`).
    #[arg(long, default_value_t = 0)]
    signal: usize,
    /// The report (`.html`).
    #[arg(long)]
    out: PathBuf,
}

/// Now as "YYYY-MM-DD HH:MM UTC".
fn now_utc() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02} UTC", rem / 3600, rem % 3600 / 60)
}

pub fn report(a: ReportArgs) -> Result<()> {
    let recipe = match &a.recipe {
        Some(p) => Recipe::from_json(&std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?)?,
        None => Recipe::default(),
    };
    let (primary, files) = with_companions(&a.image)?;
    let mut s = Session::with_limits(Limits::NATIVE);
    s.load_files(&primary, files)?;
    if let Some(size) = calibration_text() {
        for k in 0..s.signals.len() {
            s.set_calibration(k, &size)?;
        }
    }
    s.select(a.signal, 0)?;
    let mut failed: Vec<(String, String)> = Vec::new();
    let mut step = |what: &str, r: atomlens_session::error::Result<()>| {
        if let Err(e) = r {
            eprintln!("{what} failed: {e}");
            failed.push((what.to_string(), e.message));
        }
    };
    if let Some(m) = &recipe.denoise {
        let r = s.denoise_current(*m).and_then(|r| {
            let index = r.values["index"].as_u64().unwrap_or(0) as usize;
            s.select(index, 0).map(drop)
        });
        step("clean-up", r);
    }
    let r = s.find_seeds(recipe.analysis.columns.clone()).and_then(|_| s.fit_found()).map(drop);
    step("columns", r);
    let r = s.analyse_particles(recipe.analysis.clone()).map(drop);
    step("particles", r);
    if let Some(p) = &recipe.strain {
        let r = s.gpa(p.clone()).map(drop);
        step("strain (GPA)", r);
    }
    let html = s.report(&primary, &now_utc(), &failed)?;
    write(
        a.out.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(std::path::Path::new(".")),
        &a.out.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "report.html".into()),
        html,
    )?;
    eprintln!(
        "report of {primary} written to {}{}",
        a.out.display(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(" ({} step(s) failed: said in the report)", failed.len())
        }
    );
    Ok(())
}
