//! `atomlens._atomlens`: the CLI's commands on numpy arrays. Thin on purpose: each function
//! reads its options by name into the CLI's own option struct (the same names, defaults and
//! checks as the command line), runs the core with the GIL released (rayon inside), and
//! returns the tables as the CLI writes them (CSV text, parsed here into numpy columns) and
//! images as numpy arrays. The Python layer (`python/atomlens/`) adds HyperSpy signals, pandas
//! and Dask.
use std::path::Path;

use atomlens_cli::cmd;
use atomlens_core::recipe::OnCpu;
use atomlens_core::{Calibration, Image, Recipe};
use numpy::ndarray::{Array2, ArrayView2, ArrayView3};
use numpy::{IntoPyArray, PyArray1, PyArrayMethods, PyReadonlyArray2, PyReadonlyArray3, PyReadonlyArrayDyn};
use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

create_exception!(_atomlens, AtomlensError, PyValueError, "An analysis or a file failed; the message is the CLI's.");

/// The CLI's one-line message as a Python exception.
fn err(e: impl Into<anyhow::Error>) -> PyErr {
    AtomlensError::new_err(format!("{:#}", e.into()))
}

type Res<T> = PyResult<T>;

/// Options given by name (JSON of the keyword arguments) into the command's option struct:
/// unknown names are refused with the list of known ones.
fn options<T: DeserializeOwned>(command: &str, json: &str) -> Res<T> {
    serde_json::from_str(json).map_err(|e| {
        // serde_json's position in the generated JSON means nothing to the caller.
        let e = e.to_string();
        AtomlensError::new_err(format!("{command}: {}", e.split(" at line ").next().unwrap_or(&e)))
    })
}

/// Take the options `T` knows out of `json` (for a command with two option groups); the rest
/// stay for the other group.
fn split<T: DeserializeOwned + serde::Serialize>(command: &str, json: &str) -> Res<(T, String)> {
    let mut all: Map<String, Value> = options(command, json)?;
    let own: T = options(command, &Value::Object(all.clone()).to_string())?;
    if let Ok(Value::Object(keys)) = serde_json::to_value(&own) {
        keys.keys().for_each(|k| drop(all.remove(k)));
    }
    Ok((own, Value::Object(all).to_string()))
}

/// The calibration `pixel_size` `unit` (parsed as `--pixel-size` is); a size without its unit
/// is refused rather than guessed.
fn calibration(pixel_size: Option<f64>, unit: Option<String>) -> Res<Calibration> {
    match (pixel_size, unit) {
        (None, _) => Ok(Calibration::uncalibrated()),
        (Some(s), Some(u)) => Calibration::parse(&format!("{s} {u}")).map_err(err),
        (Some(s), None) => {
            Err(AtomlensError::new_err(format!("pixel_size={s} needs its unit: unit='pm', 'Å', 'nm' or 'µm'")))
        }
    }
}

/// A CSV table as `{column: values}`: whole numbers as int64, other numbers as float64 (an
/// empty field is NaN), anything else as a list of str.
fn table<'py>(py: Python<'py>, csv_text: &str) -> Res<Bound<'py, PyDict>> {
    let mut r = csv::ReaderBuilder::new().from_reader(csv_text.as_bytes());
    let header: Vec<String> = r.headers().map_err(err)?.iter().map(str::to_string).collect();
    let mut cols: Vec<Vec<String>> = vec![Vec::new(); header.len()];
    for rec in r.records() {
        let rec = rec.map_err(err)?;
        for (k, v) in rec.iter().enumerate().take(header.len()) {
            cols[k].push(v.to_string());
        }
    }
    let d = PyDict::new(py);
    for (name, col) in header.iter().zip(cols) {
        let given: Vec<&String> = col.iter().filter(|v| !v.is_empty()).collect();
        let ints = !given.is_empty() && given.len() == col.len() && given.iter().all(|v| v.parse::<i64>().is_ok());
        let floats = !given.is_empty() && given.iter().all(|v| v.parse::<f64>().is_ok());
        if ints {
            let v: Vec<i64> = col.iter().map(|v| v.parse().unwrap_or_default()).collect();
            d.set_item(name, PyArray1::from_vec(py, v))?;
        } else if floats {
            let v: Vec<f64> = col.iter().map(|v| v.parse().unwrap_or(f64::NAN)).collect();
            d.set_item(name, PyArray1::from_vec(py, v))?;
        } else {
            d.set_item(name, PyList::new(py, col)?)?;
        }
    }
    Ok(d)
}

/// `(columns, csv)` for a CSV text.
fn csv_pair<'py>(py: Python<'py>, text: String) -> Res<(Bound<'py, PyDict>, String)> {
    Ok((table(py, &text)?, text))
}

fn array2<'py>(py: Python<'py>, a: Array2<f32>) -> Bound<'py, numpy::PyArray2<f32>> {
    a.into_pyarray(py)
}

/// Every signal of a file (with its TIA partner), as the CLI reads it.
#[pyfunction]
fn read<'py>(py: Python<'py>, path: &str) -> Res<Bound<'py, PyList>> {
    let p = Path::new(path);
    let signals = py.detach(|| atomlens_cli::files::load(p)).map_err(err)?;
    let out = PyList::empty(py);
    for s in signals {
        let d = PyDict::new(py);
        let px = PyArray1::from_vec(py, s.to_f32());
        let data = if s.frames > 1 {
            px.reshape([s.frames, s.height, s.width])?.into_any()
        } else {
            px.reshape([s.height, s.width])?.into_any()
        };
        d.set_item("data", data)?;
        let cal = s.calibration.is_calibrated();
        d.set_item("pixel_size", cal.then_some(s.calibration.pixel_size))?;
        d.set_item("unit", cal.then_some(s.calibration.unit.clone()))?;
        d.set_item("title", &s.title)?;
        d.set_item("dtype", format!("{:?}", s.dtype).to_lowercase())?;
        d.set_item("tilt_angles", s.metadata.tilt_angles_deg.clone())?;
        d.set_item("metadata_json", serde_json::to_string(&s.metadata).map_err(err)?)?;
        out.append(d)?;
    }
    Ok(out)
}

/// `atomlens columns`: (table, csv, run info as JSON).
#[pyfunction]
#[pyo3(signature = (image, pixel_size, unit, opts))]
fn columns<'py>(
    py: Python<'py>,
    image: PyReadonlyArray2<'py, f32>,
    pixel_size: Option<f64>,
    unit: Option<String>,
    opts: &str,
) -> Res<(Bound<'py, PyDict>, String, String)> {
    let a: cmd::columns::Args = options("columns", opts)?;
    let cal = calibration(pixel_size, unit)?;
    let view = image.as_array();
    let run = py.detach(|| a.analyse(view, &cal)).map_err(err)?;
    let r = &run.result;
    let info = serde_json::json!({
        "parameters": a.params(), "find_s": run.find_s, "refine_s": run.refine_s, "ran": run.ran,
        "separation_px": r.separation, "spacing_px": r.spacing,
        "lattice_px": r.lattice, "single_atoms": r.single, "notes": r.notes, "precision_px": r.precision,
    });
    let csv = run.csv;
    let (t, csv) = csv_pair(py, csv)?;
    Ok((t, csv, info.to_string()))
}

/// `atomlens gpa`: ({exx, eyy, exy, rotation[, ux, uy]}, gpa.json's text).
#[pyfunction]
#[pyo3(signature = (image, pixel_size, unit, opts))]
fn gpa<'py>(
    py: Python<'py>,
    image: PyReadonlyArray2<'py, f32>,
    pixel_size: Option<f64>,
    unit: Option<String>,
    opts: &str,
) -> Res<(Bound<'py, PyDict>, String)> {
    let a: cmd::gpa::Args = options("gpa", opts)?;
    let p = a.params().map_err(err)?;
    let cal = calibration(pixel_size, unit)?;
    let view = image.as_array();
    let r = py.detach(|| atomlens_core::strain::gpa::analyse(view, &p)).map_err(err)?;
    let d = PyDict::new(py);
    for (name, map) in r.maps() {
        d.set_item(name, array2(py, map.clone()))?;
    }
    if let Some([ux, uy]) = &r.displacement {
        d.set_item("ux", array2(py, ux.clone()))?;
        d.set_item("uy", array2(py, uy.clone()))?;
    }
    let s = r.summary(p.refine, cal.is_calibrated().then_some(cal.pixel_size));
    Ok((d, serde_json::to_string(&s).map_err(err)?))
}

/// `atomlens denoise`: the cleaned image.
#[pyfunction]
fn denoise<'py>(
    py: Python<'py>,
    image: PyReadonlyArray2<'py, f32>,
    opts: &str,
) -> Res<Bound<'py, numpy::PyArray2<f32>>> {
    let a: cmd::denoise::Args = options("denoise", opts)?;
    let view = image.as_array();
    let (out, _ran) = py.detach(|| a.apply(view)).map_err(err)?;
    Ok(array2(py, out))
}

/// `atomlens register`: (average, shifts (frames × 2: dx, dy), distortion RMS per frame or None).
#[pyfunction]
#[allow(clippy::type_complexity)]
fn register<'py>(
    py: Python<'py>,
    frames: PyReadonlyArray3<'py, f32>,
    opts: &str,
) -> Res<(Bound<'py, numpy::PyArray2<f32>>, Bound<'py, numpy::PyArray2<f64>>, Option<Vec<f64>>)> {
    let a: cmd::register::Args = options("register", opts)?;
    let stack: ArrayView3<f32> = frames.as_array();
    let views: Vec<ArrayView2<f32>> = stack.outer_iter().collect();
    let (r, rms) = py.detach(|| a.register(&views)).map_err(err)?;
    let shifts = Array2::from_shape_fn((r.shifts.len(), 2), |(i, k)| r.shifts[i][k]);
    Ok((array2(py, r.average), shifts.into_pyarray(py), rms))
}

/// `atomlens reconstruct`: the volume `[z, y, x]` (y along the tilt axis).
#[pyfunction]
fn reconstruct<'py>(
    py: Python<'py>,
    stack: PyReadonlyArray3<'py, f32>,
    angles: Vec<f64>,
    opts: &str,
) -> Res<(Bound<'py, numpy::PyArray3<f32>>, Vec<String>)> {
    let a: cmd::reconstruct::Args = options("reconstruct", opts)?;
    let frames = stack.as_array();
    let (v, notes) = py
        .detach(|| -> anyhow::Result<_> {
            let mut plan = a.plan(frames, &angles)?;
            a.reconstruct(&mut plan, |_| {})?;
            let notes = plan.notes.clone();
            Ok((plan.volume().data, notes))
        })
        .map_err(err)?;
    Ok((v.into_pyarray(py), notes))
}

/// The particle chain's tables by file name, and its label image.
fn particle_dict<'py>(
    py: Python<'py>,
    a: &atomlens_core::particles::chain::Analysis,
    recipe: &Recipe,
    cal: &Calibration,
) -> Res<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    for (name, text) in cmd::particles::particle_tables(a, recipe, cal, "numpy array") {
        d.set_item(name, text)?;
    }
    let labels = a.segmentation.labels.mapv(|l| l as i64);
    d.set_item("labels", labels.into_pyarray(py))?;
    Ok(d)
}

/// `atomlens particles`: {file name: text} as the CLI writes them, and `labels`. (The chain
/// reads the caller's array in place, as `columns` does; `compare` and `run` need owned images.)
#[pyfunction]
#[pyo3(signature = (image, pixel_size, unit, opts))]
fn particles<'py>(
    py: Python<'py>,
    image: PyReadonlyArray2<'py, f32>,
    pixel_size: Option<f64>,
    unit: Option<String>,
    opts: &str,
) -> Res<Bound<'py, PyDict>> {
    let cal = calibration(pixel_size, unit)?;
    let (a, p) = chain(py, image.as_array(), "particles", opts)?;
    particle_dict(py, &a, &Recipe { analysis: p, ..Default::default() }, &cal)
}

/// The `gpu` option of the particle commands (`--gpu`: the column fits on the GPU).
#[derive(serde::Deserialize, serde::Serialize)]
struct OnGpu {
    #[serde(default)]
    gpu: bool,
}

/// The particle chain of a particle command: its options (and `gpu`) from `opts`, run as the
/// CLI runs it, with the parameters it ran.
fn chain(
    py: Python<'_>,
    img: ArrayView2<f32>,
    command: &str,
    opts: &str,
) -> Res<(atomlens_core::particles::chain::Analysis, atomlens_core::particles::chain::AnalysisParams)> {
    let (on, rest): (OnGpu, String) = split(command, opts)?;
    let common: cmd::particles::Common = options(command, &rest)?;
    let p = common.params().map_err(err)?;
    let a = py.detach(|| cmd::particles::chain(img, &p, on.gpu)).map_err(err)?;
    Ok((a, p))
}

/// An owned, checked image (for the core functions that take one).
fn image_of(a: ArrayView2<f32>, pixel_size: Option<f64>, unit: Option<String>) -> Res<Image> {
    atomlens_core::image::check_usable(a).map_err(err)?;
    Ok(Image { data: a.to_owned(), calibration: calibration(pixel_size, unit)? })
}

/// `atomlens count`: {counts.csv, counting.json, model.xyz (None: not calibrated in nm), recipe.json}.
#[pyfunction]
#[pyo3(signature = (image, pixel_size, unit, opts))]
fn count<'py>(
    py: Python<'py>,
    image: PyReadonlyArray2<'py, f32>,
    pixel_size: Option<f64>,
    unit: Option<String>,
    opts: &str,
) -> Res<Bound<'py, PyDict>> {
    let (model, rest): (cmd::count::Model, String) = split("count", opts)?;
    model.check().map_err(err)?;
    let cal = calibration(pixel_size, unit)?;
    let (a, p) = chain(py, image.as_array(), "count", &rest)?;
    cmd::count::check_counted(&a).map_err(err)?;
    let d = PyDict::new(py);
    d.set_item("counts.csv", atomlens_io::tables::particle_columns_csv(&a))?;
    d.set_item("counting.json", cmd::count::counting_json(&a, &p).map_err(err)?)?;
    d.set_item("model.xyz", model.xyz(&a, &cal).map_err(err)?)?;
    d.set_item("recipe.json", Recipe { analysis: p, ..Default::default() }.to_json())?;
    Ok(d)
}

/// `atomlens compare`: {columns.csv, facets.csv, summary.json, recipe.json} and `change` (the map).
#[pyfunction]
#[pyo3(signature = (before, after, pixel_size, unit, opts))]
fn compare<'py>(
    py: Python<'py>,
    before: PyReadonlyArray2<'py, f32>,
    after: PyReadonlyArray2<'py, f32>,
    pixel_size: Option<f64>,
    unit: Option<String>,
    opts: &str,
) -> Res<Bound<'py, PyDict>> {
    let common: cmd::particles::Common = options("compare", opts)?;
    let p = atomlens_core::particles::compare::CompareParams {
        analysis: common.params().map_err(err)?,
        ..Default::default()
    };
    let b = image_of(before.as_array(), pixel_size, unit.clone())?;
    let a = image_of(after.as_array(), pixel_size, unit)?;
    let c = py.detach(|| atomlens_core::particles::compare::compare(&b, &a, &p)).map_err(err)?;
    let d = PyDict::new(py);
    for (name, text) in cmd::compare::compare_tables(&c, &b.calibration, "before", "after") {
        d.set_item(name, text)?;
    }
    d.set_item("recipe.json", Recipe { analysis: p.analysis, ..Default::default() }.to_json())?;
    let (h, w) = b.data.dim();
    let map = atomlens_core::particles::compare::change_map(&c.columns, w, h, c.before.spacing);
    d.set_item("change", map.into_pyarray(py))?;
    Ok(d)
}

/// A recipe (`core::Recipe`) on one image: the particle tables, `summary.csv` (one row, as
/// `batch` writes it), strain maps when the recipe asks.
#[pyfunction]
#[pyo3(signature = (recipe, image, pixel_size, unit, file))]
fn run<'py>(
    py: Python<'py>,
    recipe: &str,
    image: PyReadonlyArray2<'py, f32>,
    pixel_size: Option<f64>,
    unit: Option<String>,
    file: &str,
) -> Res<Bound<'py, PyDict>> {
    let recipe = Recipe::from_json(recipe).map_err(err)?;
    let img = image_of(image.as_array(), pixel_size, unit)?;
    let out = py.detach(|| recipe.run(&img)).map_err(err)?;
    let d = particle_dict(py, &out.analysis, &recipe, &out.image.calibration)?;
    let row = atomlens_io::tables::BatchRow {
        file: file.into(),
        totals: Some(out.analysis.totals()),
        calibration: out.image.calibration.clone(),
        seconds: 0.0,
        error: None,
    };
    d.set_item("summary.csv", atomlens_io::tables::batch_csv(&[row]))?;
    if let Some(g) = &out.strain {
        for (name, map) in g.maps() {
            d.set_item(name, array2(py, map.clone()))?;
        }
    }
    Ok(d)
}

/// One image of a batch, as `atomlens batch` does it: (summary row, seconds); a failure is a row
/// with its message. With `out`, the image's tables are written into `out/STEM/`.
#[pyfunction]
#[pyo3(signature = (path, recipe, out=None))]
fn analyse_file(py: Python<'_>, path: &str, recipe: &str, out: Option<&str>) -> Res<(String, f64)> {
    let recipe = Recipe::from_json(recipe).map_err(err)?;
    let p = Path::new(path);
    let dir = out.map(|o| Path::new(o).join(atomlens_cli::files::stem(p)));
    let row = py.detach(|| cmd::batch::analyse_file(p, &recipe, dir.as_deref(), &OnCpu));
    Ok((row.csv(), row.seconds))
}

/// The summary row of an image whose task failed outside the analysis (a worker that died).
#[pyfunction]
fn failed_row(file: &str, message: &str) -> String {
    cmd::batch::failed(file.into(), message.into(), 0.0).csv()
}

/// `atomlens synth`: {name: (image, pixel size, unit, truth CSV)} and a note.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn synth<'py>(
    py: Python<'py>,
    opts: &str,
) -> Res<(Vec<(String, Bound<'py, numpy::PyArray2<f32>>, f64, String, String)>, Option<String>)> {
    let a: cmd::synth::SynthArgs = options("synth", opts)?;
    let (images, note) = py.detach(|| a.make()).map_err(err)?;
    let out = images
        .into_iter()
        .map(|(name, s)| {
            let truth = cmd::synth::truth_csv(&s.columns);
            let cal = s.image.calibration;
            (name.to_string(), array2(py, s.image.data), cal.pixel_size, cal.unit, truth)
        })
        .collect();
    Ok((out, note))
}

/// Write an image (rows, columns) or a stack (frames, rows, columns) as a 32-bit float TIFF with
/// its calibration, one page per frame (as `atomlens convert`).
#[pyfunction]
#[pyo3(signature = (path, image, pixel_size, unit))]
fn write_tiff(
    path: &str,
    image: PyReadonlyArrayDyn<'_, f32>,
    pixel_size: Option<f64>,
    unit: Option<String>,
) -> Res<()> {
    let a = image.as_array();
    let (h, w) = match a.shape() {
        [h, w] | [_, h, w] => (*h, *w),
        s => return Err(err(anyhow::anyhow!("an image or a stack, not an array of shape {s:?}"))),
    };
    let px: Vec<f32> = a.iter().copied().collect();
    let bytes = atomlens_io::formats::tiff::write_f32(w, h, &px, &calibration(pixel_size, unit)?).map_err(err)?;
    std::fs::write(path, bytes).map_err(|e| err(anyhow::anyhow!("writing {path}: {e}")))
}

/// A recipe as JSON with every key (missing keys take their defaults; unknown keys are refused).
#[pyfunction]
fn recipe_json(text: &str) -> Res<String> {
    Ok(Recipe::from_json(text).map_err(err)?.to_json())
}

/// Parse a CSV table as the other functions do (`{column: values}`).
#[pyfunction]
#[pyo3(name = "table")]
fn table_py<'py>(py: Python<'py>, csv_text: &str) -> Res<Bound<'py, PyDict>> {
    table(py, csv_text)
}

#[pymodule]
fn _atomlens(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("AtomlensError", m.py().get_type::<AtomlensError>())?;
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add("BATCH_HEADER", atomlens_io::tables::BATCH_HEADER)?;
    m.add("COLUMNS_HEADER", atomlens_io::tables::COLUMNS_HEADER)?;
    // What `gpu=True` promises against the CPU (the GPU crate's stated tolerances).
    m.add("GPU_POSITION_TOLERANCE_PX", atomlens_gpu::columns::POSITION_TOLERANCE)?;
    m.add("GPU_NLM_TOLERANCE", atomlens_gpu::nlm::TOLERANCE)?;
    m.add("GPU_TOMO_TOLERANCE", atomlens_gpu::tomo::TOLERANCE)?;
    m.add_function(wrap_pyfunction!(read, m)?)?;
    m.add_function(wrap_pyfunction!(columns, m)?)?;
    m.add_function(wrap_pyfunction!(gpa, m)?)?;
    m.add_function(wrap_pyfunction!(denoise, m)?)?;
    m.add_function(wrap_pyfunction!(register, m)?)?;
    m.add_function(wrap_pyfunction!(reconstruct, m)?)?;
    m.add_function(wrap_pyfunction!(particles, m)?)?;
    m.add_function(wrap_pyfunction!(count, m)?)?;
    m.add_function(wrap_pyfunction!(compare, m)?)?;
    m.add_function(wrap_pyfunction!(run, m)?)?;
    m.add_function(wrap_pyfunction!(analyse_file, m)?)?;
    m.add_function(wrap_pyfunction!(failed_row, m)?)?;
    m.add_function(wrap_pyfunction!(recipe_json, m)?)?;
    m.add_function(wrap_pyfunction!(synth, m)?)?;
    m.add_function(wrap_pyfunction!(write_tiff, m)?)?;
    m.add_function(wrap_pyfunction!(table_py, m)?)?;
    Ok(())
}
