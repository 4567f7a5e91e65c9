//! The batch summary: one row per image (`atomlens batch`'s `summary.csv`, the page's Batch
//! export). Failures are rows too, with their message. The summary holds results only, so two
//! runs of the same recipe on the same files (one run, shards merged, a Dask cluster) give the
//! same bytes; wall times go to `timings.csv`.
use atomlens_core::Calibration;
use atomlens_core::particles::chain::Totals;
use serde::{Deserialize, Serialize};

/// The summary's header.
pub const BATCH_HEADER: &str = "file,particles,columns,mean_diameter,diameter_unit,atoms,ordered_fraction,error";

/// The timings' header.
pub const TIMINGS_HEADER: &str = "file,seconds";

/// One image of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchRow {
    /// The image's file name.
    pub file: String,
    /// The analysis' totals (`None`: it failed).
    pub totals: Option<Totals>,
    /// The image's calibration (diameters are converted with it).
    pub calibration: Calibration,
    /// Wall time of this image (s).
    pub seconds: f64,
    /// Why the image could not be analysed.
    pub error: Option<String>,
}

impl BatchRow {
    /// Mean equivalent diameter of the image's particles, in the calibration's unit.
    pub fn mean_diameter(&self) -> Option<f64> {
        let t = self.totals.as_ref()?;
        Some(t.diameters.iter().sum::<f64>() / t.diameters.len().max(1) as f64 * self.calibration.pixel_size)
    }

    /// The row as CSV (no newline).
    pub fn csv(&self) -> String {
        let file = &self.file;
        match (&self.totals, &self.error) {
            (Some(t), _) => format!(
                "{file},{},{},{:.4},{},{},{:.4},",
                t.particles,
                t.columns,
                self.mean_diameter().unwrap_or(f64::NAN),
                self.calibration.unit,
                t.atoms,
                t.ordered_fraction
            ),
            (None, e) => format!("{file},,,,,,,\"{}\"", e.as_deref().unwrap_or("").replace('"', "'")),
        }
    }
}

/// The whole summary: header and one line per row.
pub fn batch_csv(rows: &[BatchRow]) -> String {
    let mut s = format!("{BATCH_HEADER}\n");
    for r in rows {
        s.push_str(&r.csv());
        s.push('\n');
    }
    s
}

/// Each image's wall time (s), in the rows' order.
pub fn timings_csv(rows: &[BatchRow]) -> String {
    let mut s = format!("{TIMINGS_HEADER}\n");
    for r in rows {
        s.push_str(&format!("{},{:.3}\n", r.file, r.seconds));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_have_the_header_s_columns_and_failures_say_why() {
        let ok = BatchRow {
            file: "a.tif".into(),
            totals: Some(Totals {
                particles: 2,
                columns: 50,
                diameters: vec![10.0, 30.0],
                atoms: 400,
                ordered_fraction: 0.25,
            }),
            calibration: Calibration { pixel_size: 0.1, unit: "nm".into() },
            seconds: 1.5,
            error: None,
        };
        let bad = BatchRow { file: "b.tif".into(), totals: None, error: Some("no \"lattice\"".into()), ..ok.clone() };
        let csv = batch_csv(&[ok.clone(), bad.clone()]);
        assert_eq!(timings_csv(&[ok, bad]), "file,seconds\na.tif,1.500\nb.tif,1.500\n");
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], BATCH_HEADER);
        assert_eq!(lines[1], "a.tif,2,50,2.0000,nm,400,0.2500,");
        assert_eq!(lines[2], "b.tif,,,,,,,\"no 'lattice'\"");
        for l in &lines[1..] {
            assert_eq!(l.split(',').count(), BATCH_HEADER.split(',').count(), "{l}");
        }
    }
}
