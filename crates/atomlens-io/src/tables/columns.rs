//! Result tables: column fits as CSV (Atomap's conventions) and JSON with the run's context.
use atomlens_core::Calibration;
use atomlens_core::columns::fit::AtomColumn;
use atomlens_core::columns::single::SingleAtoms;
use atomlens_core::columns::{ColumnParams, ColumnResult};
use atomlens_core::strain::columns::{ColumnStrain, ColumnStrainResult};

/// The CSV header (pixels; x column, y row, centres at integers; rotation in radians). `x_err`,
/// `y_err`: the Cramér–Rao bound (shot noise only, a lower bound); `x_err_empirical`,
/// `y_err_empirical`: with the image's scatter beyond it (`atomlens_core::columns::precision`).
pub const COLUMNS_HEADER: &str = "x,y,sigma_x,sigma_y,rotation,amplitude,volume,background,x_err,y_err,sigma_x_err,sigma_y_err,amplitude_err,residual_rms,status,sublattice,nn_distance,coordination,x_err_empirical,y_err_empirical";

/// Columns as CSV, one row per column.
pub fn columns_csv(cols: &[AtomColumn]) -> String {
    let mut s = String::with_capacity(160 * (cols.len() + 1));
    s.push_str(COLUMNS_HEADER);
    s.push('\n');
    for c in cols {
        let status =
            serde_json::to_value(c.status).ok().and_then(|v| v.as_str().map(str::to_string)).unwrap_or_default();
        s.push_str(&format!(
            "{:.5},{:.5},{:.5},{:.5},{:.5},{:.6e},{:.6e},{:.6e},{:.5},{:.5},{:.5},{:.5},{:.4e},{:.4e},{},{},{:.4},{},{:.5},{:.5}\n",
            c.x,
            c.y,
            c.sigma_x,
            c.sigma_y,
            c.rotation,
            c.amplitude,
            c.volume,
            c.background,
            c.x_err,
            c.y_err,
            c.sigma_x_err,
            c.sigma_y_err,
            c.amplitude_err,
            c.residual_rms,
            status,
            c.sublattice,
            c.nn_distance,
            c.coordination,
            c.x_err_empirical,
            c.y_err_empirical
        ));
    }
    s
}

/// Extra CSV columns for per-column strain, in [`ColumnStrain::FIELDS`]' order (lattice rotation
/// in radians, named apart from the Gaussian's `rotation`; displacement in px).
pub const STRAIN_HEADER: &str = "exx,eyy,exy,lattice_rotation,ux,uy";

/// `csv` (from [`columns_csv`]) with the strain columns appended to every row.
pub fn with_strain(csv: &str, strain: &ColumnStrainResult) -> String {
    let mut out = String::with_capacity(csv.len() + 60 * strain.columns.len());
    for (k, line) in csv.lines().enumerate() {
        out.push_str(line);
        match k {
            0 => out.push_str(&format!(",{STRAIN_HEADER}")),
            _ => {
                let c = strain.columns.get(k - 1);
                for (name, f) in ColumnStrain::FIELDS {
                    // Strains and angles to 1e-6, displacements (px) to 1e-4.
                    let digits = if name.starts_with('u') { 4 } else { 6 };
                    out.push_str(&format!(",{:.*}", digits, c.map_or(f64::NAN, f)));
                }
            }
        }
        out.push('\n');
    }
    out
}

/// A run's columns as CSV: [`columns_csv`], with the significance column for single atoms.
pub fn result_csv(r: &ColumnResult) -> String {
    let csv = columns_csv(&r.columns);
    match &r.single {
        Some(s) => with_significance(&csv, s),
        None => csv,
    }
}

/// The single atoms' significance (`z`, standard deviations above the local support; see
/// `atomlens_core::columns::single`) appended as a last CSV column, in the columns' order.
pub fn with_significance(csv: &str, single: &SingleAtoms) -> String {
    let mut out = String::with_capacity(csv.len() + 8 * single.atoms.len());
    for (k, line) in csv.lines().enumerate() {
        out.push_str(line);
        match k {
            0 => out.push_str(",significance"),
            _ => out.push_str(&format!(",{:.3}", single.atoms.get(k - 1).map_or(f64::NAN, |a| a.z))),
        }
        out.push('\n');
    }
    out
}

/// Columns as JSON with the calibration, the parameters and the software version, so the run
/// can be repeated exactly.
pub fn columns_json(
    r: &ColumnResult,
    p: &ColumnParams,
    cal: &Calibration,
    source: &str,
    strain: Option<&ColumnStrainResult>,
) -> String {
    serde_json::to_string_pretty(&serde_json::json!({
        "source": source,
        "software": concat!("atomlens ", env!("CARGO_PKG_VERSION")),
        "units": "px (x column, y row, pixel centres at integers); rotation in radians from +x towards +y",
        "calibration": cal,
        "parameters": p,
        "separation_px": r.separation,
        "spacing_px": r.spacing,
        "lattice_px": r.lattice,
        "single_atoms": r.single,
        "notes": r.notes,
        "errors": "x_err, y_err: Cramér–Rao bound (shot noise only, a lower bound); x_err_empirical, y_err_empirical: with the scatter about opposite neighbours beyond it (precision_px)",
        "precision_px": r.precision,
        "columns": r.columns,
        "strain": strain,
    }))
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use atomlens_core::columns::fit::FitStatus;

    #[test]
    fn csv_has_the_header_and_one_row_per_column() {
        let c = AtomColumn {
            x: 1.5,
            y: 2.25,
            sigma_x: 3.0,
            sigma_y: 2.0,
            rotation: 0.1,
            amplitude: 10.0,
            volume: 377.0,
            background: 1.0,
            x_err: 0.01,
            y_err: 0.02,
            sigma_x_err: 0.1,
            sigma_y_err: 0.1,
            amplitude_err: 0.5,
            residual_rms: 0.3,
            status: FitStatus::CenterOfMass,
            sublattice: 1,
            nn_distance: 12.5,
            coordination: 4,
            x_err_empirical: 0.03,
            y_err_empirical: f64::NAN,
        };
        let csv = columns_csv(&[c.clone(), c]);
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], COLUMNS_HEADER);
        assert!(lines[1].starts_with("1.50000,2.25000,3.00000,2.00000,"));
        assert!(lines[1].ends_with(",center_of_mass,1,12.5000,4,0.03000,NaN"));
        assert_eq!(lines[1].split(',').count(), COLUMNS_HEADER.split(',').count());
    }
}
