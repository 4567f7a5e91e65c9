//! The session's journal: every operation that changed a result, in order, with its parameters
//! and the files it read (by name, size and SHA-256, never their bytes). Saved with the result
//! tables as a `*.atomlens.json`, it is replayed by the same code, in the page or by `atomlens
//! replay`, and the tables replayed are compared with the saved ones number by number.
//!
//! Not journalled: display settings (they change no number) and tomography (a reconstruction is
//! saved as its volume, MRC).
use std::collections::BTreeMap;

use atomlens_core::columns::ColumnParams;
use atomlens_core::denoise::Method;
use atomlens_core::particles::chain::AnalysisParams;
use atomlens_core::strain::gpa::GpaParams;
use atomlens_core::synth::Demo;
use atomlens_io::{Limits, NamedFile};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::Session;
use crate::error::{Error, Result};
use crate::reply::Reply;

/// What a saved session's `format` says.
pub const FORMAT: &str = "atomlens-session";
/// The version of the saved session this build writes and reads.
pub const VERSION: u32 = 1;

/// A file the session read, as it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileRef {
    /// Its name when it was opened.
    pub name: String,
    /// Its size (bytes).
    pub size: u64,
    /// SHA-256 of its bytes, lowercase hex.
    pub sha256: String,
}

impl FileRef {
    /// The reference to `f`.
    pub fn of(f: &NamedFile) -> FileRef {
        FileRef { name: f.name.clone(), size: f.bytes.len() as u64, sha256: sha256_hex(&f.bytes) }
    }

    /// "name (size)" for messages.
    pub fn describe(&self) -> String {
        format!("{} ({:.1} MB)", self.name, self.size as f64 / 1e6)
    }
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// One operation, with what it needs to run again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Step {
    /// A built-in demo replaced the dataset.
    Demo { demo: Demo },
    /// A file (with its companions) replaced the dataset.
    Open { primary: String, files: Vec<FileRef> },
    /// Another file's signals joined the dataset.
    Add { primary: String, files: Vec<FileRef> },
    /// Several files became one series.
    Series { groups: Vec<(String, Vec<FileRef>)> },
    /// A pixel size typed in.
    Calibrate { signal: usize, size: String },
    /// A frame shown.
    Select { signal: usize, frame: usize },
    /// Frames aligned and averaged.
    Register { signal: usize, nonrigid: bool },
    /// The shown image cleaned up.
    Denoise { method: Method },
    /// Columns found.
    FindColumns { params: ColumnParams },
    /// The columns found, fitted.
    FitColumns,
    /// The columns refitted at these positions (the manual edits: added, deleted, moved).
    Refit { x: Vec<f64>, y: Vec<f64> },
    /// Strain maps.
    Gpa { params: GpaParams },
    /// The particle chain.
    Particles { params: AnalysisParams },
    /// Two signals compared.
    Compare { before: usize, after: usize, params: AnalysisParams },
}

/// A session as saved: its journal and the result tables it produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Saved {
    /// Always [`FORMAT`].
    pub format: String,
    /// [`VERSION`] when written.
    pub version: u32,
    /// The software that wrote it ("atomlens 0.1.0").
    pub software: String,
    /// Every file read, in order (each once).
    pub files: Vec<FileRef>,
    /// The operations.
    pub steps: Vec<Step>,
    /// Result tables by file name (`columns.csv`, `particles.csv`, …), as exported.
    pub results: BTreeMap<String, String>,
}

impl Saved {
    /// Read a saved session, refusing other formats and versions with the reason.
    pub fn from_json(text: &str) -> Result<Saved> {
        let v: serde_json::Value =
            serde_json::from_str(text).map_err(|e| Error::invalid(format!("not an atomlens session: {e}")))?;
        if v.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(Error::invalid("not an atomlens session (no \"format\": \"atomlens-session\")"));
        }
        let version = v.get("version").and_then(|f| f.as_u64()).unwrap_or(0);
        if version != u64::from(VERSION) {
            let by = v.get("software").and_then(|s| s.as_str()).unwrap_or("an unknown version");
            return Err(Error::invalid(format!(
                "this session is version {version} (written by {by}); this atomlens ({}) reads version {VERSION}",
                software()
            )));
        }
        serde_json::from_value(v).map_err(|e| Error::invalid(format!("a damaged session file: {e}")))
    }

    /// As pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// "atomlens 0.1.0".
pub fn software() -> String {
    format!("atomlens {}", env!("CARGO_PKG_VERSION"))
}

/// Every non-integer number in `v` rounded to `digits` significant digits and to no finer than
/// 1e-8 (a mean strain near zero is known to 1e-8 at best, not to 7 of its own digits).
fn round_floats(v: &mut serde_json::Value, digits: i32) {
    match v {
        serde_json::Value::Number(n) if n.is_f64() => {
            let x = n.as_f64().unwrap_or(f64::NAN);
            if x != 0.0 && x.is_finite() {
                let scale = 10f64.powi((digits - 1 - x.abs().log10().floor() as i32).min(8));
                if let Some(r) = serde_json::Number::from_f64((x * scale).round() / scale) {
                    *n = r;
                }
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| round_floats(x, digits)),
        serde_json::Value::Object(o) => o.values_mut().for_each(|x| round_floats(x, digits)),
        _ => {}
    }
}

/// A cell's number: the text after a JSON key (`"d_px": 11.3`) or the whole cell.
fn number(cell: &str) -> Option<f64> {
    cell.rsplit(':').next()?.trim().parse().ok()
}

/// One unit of the last digit `cell` prints (`0.05403` → 1e-5, `1.410115e2` → 1e-4, `12` → 1).
fn last_digit(cell: &str) -> f64 {
    let t = cell.rsplit(':').next().unwrap_or("").trim();
    let (mantissa, exp) = t.split_once(['e', 'E']).unwrap_or((t, "0"));
    let decimals = mantissa.split_once('.').map_or(0, |(_, d)| d.len()) as i32;
    10f64.powi(exp.parse::<i32>().unwrap_or(0) - decimals)
}

/// How the replayed tables compare with the saved ones.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Check {
    /// Numbers compared.
    pub compared: usize,
    /// Numbers whose last printed digit is off by one: the same value rounded the other way
    /// (the page's wasm and a native build may differ in a float's last bits).
    pub rounding: usize,
    /// One line per difference (table, row, column, saved → replayed); at most 20.
    pub differences: Vec<String>,
    /// Tables saved but not produced, or produced but not saved.
    pub missing: Vec<String>,
}

impl Check {
    /// Whether every number came out as saved.
    pub fn same(&self) -> bool {
        self.differences.is_empty() && self.missing.is_empty()
    }

    /// One sentence.
    pub fn describe(&self) -> String {
        if self.same() {
            let flips = match self.rounding {
                0 => String::new(),
                k => format!(" ({k} rounded the other way in the last digit)"),
            };
            return format!(
                "all {} numbers of the saved results came out the same to the printed digit{flips}",
                self.compared
            );
        }
        let mut s = format!("{} differences among {} numbers", self.differences.len(), self.compared);
        if !self.missing.is_empty() {
            s += &format!("; tables not reproduced: {}", self.missing.join(", "));
        }
        s
    }
}

/// Compare `replayed` tables with `saved` ones cell by cell (as printed).
pub fn check(saved: &BTreeMap<String, String>, replayed: &BTreeMap<String, String>) -> Check {
    let mut out = Check { compared: 0, rounding: 0, differences: Vec::new(), missing: Vec::new() };
    for name in saved.keys().chain(replayed.keys()) {
        if !(saved.contains_key(name) && replayed.contains_key(name)) && !out.missing.contains(name) {
            out.missing.push(name.clone());
        }
    }
    for (name, a) in saved {
        let Some(b) = replayed.get(name) else { continue };
        let (ra, rb): (Vec<_>, Vec<_>) = (a.lines().collect(), b.lines().collect());
        if ra.len() != rb.len() {
            out.differences.push(format!("{name}: {} lines saved, {} replayed", ra.len(), rb.len()));
        }
        let header: Vec<&str> = ra.first().map(|h| h.split(',').collect()).unwrap_or_default();
        for (row, (la, lb)) in ra.iter().zip(&rb).enumerate() {
            for (col, (ca, cb)) in la.split(',').zip(lb.split(',')).enumerate() {
                let (na, nb) = (number(ca), number(cb));
                out.compared += usize::from(na.is_some());
                if ca == cb {
                    continue;
                }
                if let (Some(a), Some(b)) = (na, nb)
                    && (a - b).abs() <= 1.000_001 * last_digit(ca)
                {
                    out.rounding += 1;
                    continue;
                }
                if out.differences.len() < 20 {
                    let what = header.get(col).filter(|_| name.ends_with(".csv")).copied().unwrap_or("");
                    out.differences.push(format!("{name} line {} {what}: saved {ca}, replayed {cb}", row + 1));
                }
            }
        }
    }
    out
}

/// Where replay finds the bytes of a file the session read.
pub trait FileSource {
    /// The bytes of `f`, or `None` when it is not there.
    fn bytes(&mut self, f: &FileRef) -> Option<Vec<u8>>;
}

impl<F: FnMut(&FileRef) -> Option<Vec<u8>>> FileSource for F {
    fn bytes(&mut self, f: &FileRef) -> Option<Vec<u8>> {
        self(f)
    }
}

impl Session {
    /// Add `step` to the journal.
    pub(super) fn record(&mut self, step: Step) {
        self.journal.push(step);
    }

    /// The journal so far.
    pub fn journal(&self) -> &[Step] {
        &self.journal
    }

    /// The session as saved: the journal, the files it read and every result table.
    pub fn save(&self) -> Saved {
        let mut files: Vec<FileRef> = Vec::new();
        for step in &self.journal {
            let refs: Vec<&FileRef> = match step {
                Step::Open { files, .. } | Step::Add { files, .. } => files.iter().collect(),
                Step::Series { groups } => groups.iter().flat_map(|g| &g.1).collect(),
                _ => Vec::new(),
            };
            for r in refs {
                if !files.contains(r) {
                    files.push(r.clone());
                }
            }
        }
        Saved {
            format: FORMAT.into(),
            version: VERSION,
            software: software(),
            files,
            steps: self.journal.clone(),
            results: self.results(),
        }
    }

    /// Every result table of the session, by the file name the CLI gives it.
    pub fn results(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let mut put = |name: &str, r: Result<String>| {
            if let Ok(t) = r {
                out.insert(name.to_string(), t);
            }
        };
        if self.shown.as_ref().is_some_and(|s| s.columns.is_some()) {
            put("columns.csv", self.columns_csv());
        }
        if self.shown.as_ref().is_some_and(|s| s.particles.is_some()) {
            put("particles.csv", self.particle_export("particles_csv", ""));
            put("particle_columns.csv", self.particle_export("columns_csv", ""));
            put("facets.csv", self.particle_export("facets_csv", ""));
        }
        if let Some((r, p)) = self.shown.as_ref().and_then(|s| s.gpa.as_ref()) {
            let cal = &self.shown.as_ref().map(|s| s.image.calibration.clone()).unwrap_or_default();
            let summary = r.summary(p.refine, cal.is_calibrated().then_some(cal.pixel_size));
            // The maps are f32: 7 significant digits is all they hold, and what two builds agree on.
            let mut v = serde_json::to_value(&summary).unwrap_or_default();
            round_floats(&mut v, 7);
            put("strain.json", serde_json::to_string_pretty(&v).map_err(Error::from));
        }
        if self.compared.is_some() {
            put("compare_columns.csv", self.compare_export("columns_csv", "", ""));
            put("compare_facets.csv", self.compare_export("facets_csv", "", ""));
        }
        out
    }

    /// Run a saved session's steps again on the same files (from `source`, each checked by size
    /// and SHA-256) in a new session reading up to `limits`. Refuses before running anything
    /// when a file is missing or changed, naming every such file.
    pub fn replay(saved: &Saved, source: &mut impl FileSource, limits: Limits) -> Result<Session> {
        let mut bytes: Vec<(FileRef, Vec<u8>)> = Vec::new();
        let (mut missing, mut changed) = (Vec::new(), Vec::new());
        for f in &saved.files {
            match source.bytes(f) {
                None => missing.push(f.describe()),
                Some(b) if b.len() as u64 != f.size || sha256_hex(&b) != f.sha256 => changed.push(f.name.clone()),
                Some(b) => bytes.push((f.clone(), b)),
            }
        }
        if !missing.is_empty() || !changed.is_empty() {
            let mut m = String::from("this session needs its files as they were:");
            if !missing.is_empty() {
                m += &format!(" missing {}", missing.join(", "));
            }
            if !changed.is_empty() {
                m += &format!(
                    "{} changed since (another SHA-256): {}",
                    if missing.is_empty() { "" } else { ";" },
                    changed.join(", ")
                );
            }
            return Err(Error { kind: "missing_files", message: m });
        }
        let named = |refs: &[FileRef]| -> Vec<NamedFile> {
            refs.iter()
                .filter_map(|r| {
                    bytes.iter().find(|(f, _)| f == r).map(|(_, b)| NamedFile::new(r.name.clone(), b.clone()))
                })
                .collect()
        };
        let mut s = Session::with_limits(limits);
        for (k, step) in saved.steps.iter().enumerate() {
            let done = match step.clone() {
                Step::Demo { demo } => s.load_demo(demo).map(drop),
                Step::Open { primary, files } => s.load_files(&primary, named(&files)).map(drop),
                Step::Add { primary, files } => s.add_files(&primary, named(&files)).map(drop),
                Step::Series { groups } => {
                    s.load_series(groups.iter().map(|(p, f)| (p.clone(), named(f))).collect()).map(drop)
                }
                Step::Calibrate { signal, size } => s.set_calibration(signal, &size).map(drop),
                Step::Select { signal, frame } => s.select(signal, frame).map(drop),
                Step::Register { signal, nonrigid } => s.register_frames(signal, nonrigid).map(drop),
                Step::Denoise { method } => s.denoise_current(method).map(drop),
                Step::FindColumns { params } => s.find_seeds(params).map(drop),
                Step::FitColumns => s.fit_found().map(drop),
                Step::Refit { x, y } => s.refit(x, y).map(drop),
                Step::Gpa { params } => s.gpa(params).map(drop),
                Step::Particles { params } => s.analyse_particles(params).map(drop),
                Step::Compare { before, after, params } => s.compare_signals(before, after, params).map(drop),
            };
            done.map_err(|e| Error {
                kind: e.kind,
                message: format!("step {} of the session failed: {}", k + 1, e.message),
            })?;
        }
        Ok(s)
    }

    /// The session as `*.atomlens.json` text.
    pub fn save_json(&self) -> String {
        self.save().to_json()
    }

    /// What a saved session needs before it can be restored: `{files: [{name, size, sha256}],
    /// software, steps}`; refuses other formats and versions.
    pub fn needs(json: &str) -> Result<Reply> {
        let saved = Saved::from_json(json)?;
        Ok(Reply::new().json("files", &saved.files).json("software", &saved.software).json("steps", &saved.steps.len()))
    }

    /// Replace this session by a saved one replayed on `files` (each found by name, else by
    /// size and SHA-256): `{signals, shown: {signal, frame} | null, image, has: {columns, gpa,
    /// particles, compared}, same, check}`; `check` says whether every saved number came out
    /// the same. On failure this session stays as it was.
    pub fn restore(&mut self, json: &str, files: Vec<NamedFile>) -> Result<Reply> {
        let saved = Saved::from_json(json)?;
        let mut source = |f: &FileRef| {
            let by_name = files.iter().find(|n| n.name == f.name);
            let by_hash = || files.iter().find(|n| n.bytes.len() as u64 == f.size && sha256_hex(&n.bytes) == f.sha256);
            by_name.or_else(by_hash).map(|n| n.bytes.clone())
        };
        let replayed = Session::replay(&saved, &mut source, self.limits)?;
        let check = check(&saved.results, &replayed.results());
        *self = replayed;
        let shown = self.shown.as_ref();
        let has = serde_json::json!({
            "columns": shown.is_some_and(|s| s.columns.is_some()),
            "gpa": shown.is_some_and(|s| s.gpa.is_some()),
            "particles": shown.is_some_and(|s| s.particles.is_some()),
            "compared": self.compared.is_some(),
        });
        let at = shown.map(|s| serde_json::json!({ "signal": s.signal, "frame": s.frame }));
        let image = self.image_info().ok().map(|r| serde_json::Value::Object(r.values));
        Ok(self
            .signal_list()
            .json("shown", &at)
            .json("image", &image)
            .json("has", &has)
            .json("same", &check.same())
            .json("check", &check.describe()))
    }
}
