//! Columns of the shown image: found (positions first, so the page draws them while the fits
//! run), fitted, refitted after edits, exported, and one column's data against its model.
use atomlens_core::columns::fit::AtomColumn;
use atomlens_core::columns::{ColumnParams, find, fit_found, precision, refit, residual};

use super::{Session, Step};
use crate::error::{Error, Result};
use crate::reply::Reply;

impl Session {
    /// Find the columns of the shown image with `p` (or its single atoms where it shows no
    /// lattice): `{x, y}`, kept for [`Session::fit_found`].
    pub fn find_seeds(&mut self, p: ColumnParams) -> Result<Reply> {
        let shown = self.shown_mut()?;
        let peaks = find(shown.image.view(), shown.image.calibration.pixel_nm(), &p)?;
        let reply = Reply::new()
            .f64s("x", peaks.points.iter().map(|q| q[0]).collect())
            .f64s("y", peaks.points.iter().map(|q| q[1]).collect());
        shown.found = Some((peaks, p.clone()));
        self.record(Step::FindColumns { params: p });
        Ok(reply)
    }

    /// Fit the columns [`Session::find_seeds`] found; returns the column table.
    pub fn fit_found(&mut self) -> Result<Reply> {
        let shown = self.shown_mut()?;
        let (peaks, p) = shown.found.take().ok_or_else(|| Error::state("find the columns first"))?;
        let r = fit_found(shown.image.view(), &peaks, &p)?;
        shown.columns = Some((r, p));
        self.record(Step::FitColumns);
        self.column_table()
    }

    /// What [`Session::fit_found`] would fit, for a caller that fits elsewhere (the GPU): the
    /// image as the fit sees it (negated for dark columns) and the request.
    pub fn fit_job(&self) -> Result<(ndarray::Array2<f32>, atomlens_core::columns::FitRequest)> {
        let shown = self.shown()?;
        let (peaks, p) = shown.found.as_ref().ok_or_else(|| Error::state("find the columns first"))?;
        let req = atomlens_core::columns::fit_request(peaks, p);
        Ok((req.image(shown.image.view()).into_owned(), req))
    }

    /// [`Session::fit_found`] with the fits of [`Session::fit_job`] made elsewhere.
    pub fn fit_found_with(&mut self, fitted: Vec<AtomColumn>) -> Result<Reply> {
        let shown = self.shown_mut()?;
        let (peaks, p) = shown.found.take().ok_or_else(|| Error::state("find the columns first"))?;
        let r = atomlens_core::columns::fit_found_with(shown.image.view(), &peaks, &p, Some(fitted))?;
        shown.columns = Some((r, p));
        self.record(Step::FitColumns);
        self.column_table()
    }

    /// Refit at the positions `xs`, `ys` (after the user added, moved or deleted columns).
    pub fn refit(&mut self, xs: Vec<f64>, ys: Vec<f64>) -> Result<Reply> {
        let shown = self.shown_mut()?;
        let (result, p) = shown.columns.as_mut().ok_or_else(|| Error::state("find the columns first"))?;
        let seeds: Vec<[f64; 2]> = xs.iter().zip(&ys).map(|(x, y)| [*x, *y]).collect();
        *result = refit(shown.image.view(), &seeds, p, result)?;
        self.record(Step::Refit { x: xs, y: ys });
        self.column_table()
    }

    fn columns(&self) -> Result<&(atomlens_core::columns::ColumnResult, ColumnParams)> {
        self.shown()?.columns.as_ref().ok_or_else(|| Error::state("no columns yet: find them first"))
    }

    /// The columns as arrays named like the CSV's columns (`x`, `y`, `sigma_x`, …, `status`: 0
    /// fitted, 1 centre of mass, 2 too few pixels, 3 not significant), with `separation`,
    /// `spacing` and `lattice` (`{a, b, angle, vectors}`); for single atoms `significance` (z
    /// per atom) and `single` (`{threshold, false_alarms, sigma}`), else `single: null`; `notes`:
    /// what was doubtful (a separation that contradicts the image); `x_err`, `y_err` the
    /// Cramér–Rao bounds, `x_err_empirical`, `y_err_empirical` with the real scatter,
    /// `precision` (`{sigma, noise, triples}` or null) and `precision_summary` (a sentence).
    pub fn column_table(&self) -> Result<Reply> {
        let (r, _) = self.columns()?;
        let c = &r.columns;
        let col = |f: fn(&AtomColumn) -> f64| c.iter().map(f).collect::<Vec<f64>>();
        let lattice = r.lattice.as_ref().map(|l| {
            let (a, b, angle) = l.lengths_and_angle();
            serde_json::json!({ "a": a, "b": b, "angle": angle, "vectors": l })
        });
        Ok(Reply::new()
            .f64s("x", col(|a| a.x))
            .f64s("y", col(|a| a.y))
            .f64s("sigma_x", col(|a| a.sigma_x))
            .f64s("sigma_y", col(|a| a.sigma_y))
            .f64s("rotation", col(|a| a.rotation))
            .f64s("amplitude", col(|a| a.amplitude))
            .f64s("volume", col(|a| a.volume))
            .f64s("background", col(|a| a.background))
            .f64s("x_err", col(|a| a.x_err))
            .f64s("y_err", col(|a| a.y_err))
            .f64s("x_err_empirical", col(|a| a.x_err_empirical))
            .f64s("y_err_empirical", col(|a| a.y_err_empirical))
            .f64s("residual_rms", col(|a| a.residual_rms))
            .u8s("status", c.iter().map(|a| a.status as u8).collect())
            .u32s("sublattice", c.iter().map(|a| a.sublattice).collect())
            .f64s("nn_distance", col(|a| a.nn_distance))
            .u32s("coordination", c.iter().map(|a| a.coordination).collect())
            .json("separation", &r.separation)
            .json("spacing", &r.spacing)
            .json("lattice", &lattice)
            .json("notes", &r.notes)
            .json("precision", &r.precision)
            .json("precision_summary", &precision::summary(r.precision.as_ref(), self.image()?.calibration.pixel_nm()))
            .f64s("significance", r.single.as_ref().map_or_else(Vec::new, |s| s.atoms.iter().map(|a| a.z).collect()))
            .json(
                "single",
                &r.single.as_ref().map(
                    |s| serde_json::json!({ "threshold": s.threshold, "false_alarms": s.false_alarms, "sigma": s.sigma }),
                ),
            ))
    }

    /// The columns as CSV (Atomap's conventions).
    pub fn columns_csv(&self) -> Result<String> {
        Ok(atomlens_io::tables::result_csv(&self.columns()?.0))
    }

    /// The columns as JSON with calibration and parameters.
    pub fn columns_json(&self, source: &str) -> Result<String> {
        let (r, p) = self.columns()?;
        Ok(atomlens_io::tables::columns_json(r, p, &self.image()?.calibration, source, None))
    }

    /// Data, fitted model and residual around column `i` (a square of side `2·half + 1`):
    /// `{size, data, model, residual}`.
    pub fn column_residual(&self, i: usize, half: usize) -> Result<Reply> {
        let (r, p) = self.columns()?;
        let c = r.columns.get(i).ok_or_else(|| Error::invalid(format!("no column {i}")))?;
        let patch = residual::patch(self.image()?.view(), c, half, p.find.dark);
        Ok(Reply::new()
            .json("size", &patch.size)
            .f32s("data", patch.data)
            .f32s("model", patch.model)
            .f32s("residual", patch.residual))
    }
}
