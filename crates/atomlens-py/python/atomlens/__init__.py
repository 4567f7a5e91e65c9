"""atomlens: atomic-resolution STEM analysis of nanoparticle catalysts, from Python.

Each function is one of the ``atomlens`` command line's commands on numpy arrays (or HyperSpy
``Signal2D`` signals, or the dicts :func:`read` returns). Options are the command's own, by name,
with ``-`` written ``_`` (``atomlens columns --atom-sigma 2`` is ``columns(img, atom_sigma=2)``);
what is not given takes the command's default, and an unknown name is refused. Tables come back
as :class:`Table`: ``{column: numpy array}`` keyed like the CLI's CSV, with the CLI's exact text
in ``.csv``. Errors raise :class:`AtomlensError` with the CLI's message. The work runs in Rust on
all cores with the GIL released.

Conventions are the CLI's (README, docs/methods/): x is the column, y the row, pixel centres at
integers, lengths in px unless a column's name says otherwise, rotations in radians.
"""
from __future__ import annotations

import json
import os
from typing import Any, Optional

import numpy as np

from . import _atomlens as _core
from ._atomlens import BATCH_HEADER, COLUMNS_HEADER, AtomlensError, __version__

__all__ = [
    "AtomlensError",
    "Table",
    "read",
    "columns",
    "gpa",
    "denoise",
    "register",
    "reconstruct",
    "particles",
    "count",
    "compare",
    "run",
    "synth",
    "write_tiff",
    "BATCH_HEADER",
    "COLUMNS_HEADER",
    "__version__",
]

# Columns of the columns table that are lengths in px (Table.calibrated converts them).
_LENGTHS = {
    "x", "y", "sigma_x", "sigma_y", "x_err", "y_err", "sigma_x_err", "sigma_y_err", "nn_distance",
    "x_err_empirical", "y_err_empirical", "ux", "uy",
}


class Table(dict):
    """A result table: ``{column: numpy array}`` (whole numbers int64, other numbers float64, text
    as a list of str), keyed and ordered like the CLI's CSV; ``.csv`` is the CLI's text."""

    def __init__(self, columns: dict, csv: str, pixel_size: Optional[float] = None, unit: Optional[str] = None):
        super().__init__(columns)
        self.csv = csv
        self.pixel_size = pixel_size
        self.unit = unit
        self.info: dict = {}

    def __len__(self) -> int:  # rows, not columns
        return len(next(iter(self.values()))) if dict.__len__(self) else 0

    def __repr__(self) -> str:
        return f"Table({len(self)} rows: {', '.join(self.keys())})"

    def to_pandas(self):
        """The table as a ``pandas.DataFrame`` (needs pandas)."""
        import pandas as pd

        return pd.DataFrame({k: v for k, v in self.items()})

    def calibrated(self) -> "Table":
        """A copy with the px lengths (x, y, widths, errors, distances) in the image's unit, named
        ``x_nm`` etc.; the other columns as they are."""
        if self.pixel_size is None:
            raise AtomlensError("the image has no calibration: give pixel_size= and unit=")
        out = {}
        for k, v in self.items():
            if k in _LENGTHS:
                out[f"{k}_{self.unit}"] = np.asarray(v) * self.pixel_size
            else:
                out[k] = v
        return Table(out, self.csv, self.pixel_size, self.unit)


def _table(text: str, pixel_size=None, unit=None) -> Table:
    return Table(_core.table(text), text, pixel_size, unit)


def _array(obj: Any, ndim: int, what: str) -> np.ndarray:
    a = np.asarray(obj)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{what}: expected real numbers, got an array of dtype {a.dtype}")
    if a.ndim != ndim:
        shape = "an image (rows, columns)" if ndim == 2 else "a stack (frames, rows, columns)"
        raise ValueError(f"{what}: expected {shape}, got an array of shape {a.shape}")
    if a.size == 0:
        raise ValueError(f"{what}: the array is empty (shape {a.shape})")
    # No copy when the array is already C-contiguous float32.
    return np.ascontiguousarray(a, dtype=np.float32)


def _image(obj: Any, pixel_size=None, unit=None, ndim: int = 2, what: str = "image"):
    """(float32 array, pixel size, unit) of a numpy array, a HyperSpy signal or a read() dict."""
    if hasattr(obj, "axes_manager") and hasattr(obj, "data"):  # a HyperSpy signal
        ax = obj.axes_manager.signal_axes[0]
        u = str(getattr(ax, "units", "") or "")
        calibrated = u not in ("", "<undefined>", "px", "pixels") and float(ax.scale) > 0
        if pixel_size is None and calibrated:
            pixel_size, unit = float(ax.scale), (unit or u.replace("um", "µm"))
        obj = obj.data
    elif isinstance(obj, dict) and "data" in obj:  # from read()
        if pixel_size is None:
            pixel_size, unit = obj.get("pixel_size"), unit or obj.get("unit")
        obj = obj["data"]
    return _array(obj, ndim, what), (None if pixel_size is None else float(pixel_size)), unit


def _options(options: dict) -> str:
    """The keyword options as JSON (None means "not given")."""

    def plain(v):
        if isinstance(v, np.generic):
            return v.item()
        if isinstance(v, os.PathLike):
            return os.fspath(v)
        if isinstance(v, (tuple, np.ndarray)):
            return [plain(x) for x in v]
        return v

    return json.dumps({k: plain(v) for k, v in options.items() if v is not None}, default=plain)


def read(path) -> list:
    """Every signal in a file the CLI reads (DM3/DM4, SER+EMI, EMD, MRC, TIFF, PNG, JPEG): a list
    of dicts with ``data`` (float32; (rows, columns), or (frames, rows, columns) for a stack),
    ``pixel_size`` and ``unit`` (None when uncalibrated), ``title``, ``dtype`` (the file's),
    ``tilt_angles`` (degrees, or None) and ``metadata``."""
    signals = _core.read(os.fspath(path))
    for s in signals:
        s["metadata"] = json.loads(s.pop("metadata_json"))
    return signals


def columns(image, *, pixel_size=None, unit=None, **options) -> Table:
    """``atomlens columns``: find and fit every column. Options: separation, dark, threshold,
    noise, shape, sublattices, passes, strain, reference, atoms, false_alarms, atom_sigma, gpu
    (the fits on the GPU wgpu finds, self-checked; ``.info["ran"]`` says where they ran).
    Returns the columns table (``.info``: spacing, lattice, precision, notes, timings)."""
    a, ps, u = _image(image, pixel_size, unit)
    t, text, info = _core.columns(a, ps, u, _options(options))
    out = Table(t, text, ps, u)
    out.info = json.loads(info)
    return out


def gpa(image, *, pixel_size=None, unit=None, **options) -> dict:
    """``atomlens gpa``: strain maps by geometric phase analysis. Options: g1, g2 (cycles/px),
    mask_radius, mask, reference ([x0, y0, x1, y1] px), no_refine, frame_angle, displacement.
    Returns ``{exx, eyy, exy, rotation[, ux, uy]: float32 maps, summary: gpa.json's dict}``."""
    a, ps, u = _image(image, pixel_size, unit)
    maps, summary = _core.gpa(a, ps, u, _options(options))
    maps["summary"] = json.loads(summary)
    return maps


def denoise(image, method: str, **options) -> np.ndarray:
    """``atomlens denoise --method METHOD``: the cleaned image (float32). Options as the CLI's:
    sigma, radius, noise, small, large, patch, search, h, no_lattice, noise_model, gpu (nlm)."""
    a, _, _ = _image(image)
    return _core.denoise(a, _options({**options, "method": method}))


def register(frames, **options) -> dict:
    """``atomlens register``: drift correction of a series (frames, rows, columns). Options:
    nonrigid, tile. Returns ``{average, shifts (frames × [dx, dy] px), field_rms (nonrigid)}``."""
    a, _, _ = _image(frames, ndim=3, what="frames")
    average, shifts, rms = _core.register(a, _options(options))
    return {"average": average, "shifts": shifts, "field_rms": None if rms is None else np.asarray(rms)}


def reconstruct(stack, angles=None, **options) -> np.ndarray:
    """``atomlens reconstruct``: a volume ``[z, y, x]`` (y along the tilt axis) from a tilt series
    (projections, rows, columns) at ``angles`` (degrees; default: the read() dict's own).
    Options: method, iterations, filter, allow_negative, thickness, align, axis, stretch, tilt,
    gpu."""
    if angles is None and isinstance(stack, dict):
        angles = stack.get("tilt_angles")
    a, _, _ = _image(stack, ndim=3, what="tilt series")
    tilt = options.pop("tilt", None)
    if angles is None and tilt is not None:
        start, step = tilt
        angles = [start + k * step for k in range(a.shape[0])]
    if angles is None:
        raise AtomlensError("the tilt series has no angles: give angles= (degrees) or tilt=(start, step)")
    volume, notes = _core.reconstruct(a, [float(x) for x in angles], _options(options))
    for n in notes:
        import warnings

        warnings.warn(n, stacklevel=2)
    return volume


# The CLI's file names whose stem is not the key (particles.csv is `particles`).
_KEYS = {"particles.json": "analysis", "model.xyz": "model_xyz"}


def _particle_result(d: dict, ps, u) -> dict:
    """The CLI's files by name → tables (CSV), dicts (JSON), text and maps by key."""
    out = {}
    for name, value in d.items():
        stem, _, ext = name.partition(".")
        key = _KEYS.get(name, stem)
        if ext == "csv":
            out[key] = _table(value, ps, u)
        elif ext == "json":
            out[key] = json.loads(value)
        else:
            out[key] = value
    return out


def particles(image, *, pixel_size=None, unit=None, **options) -> dict:
    """``atomlens particles``: the nanoparticle chain. Options: separation, smoothing, threshold,
    no_split, library (a file), max_components, gpu (the column fits). Returns ``{particles, columns, facets, defects:
    Table, analysis (particles.json), recipe, labels}``."""
    a, ps, u = _image(image, pixel_size, unit)
    return _particle_result(_core.particles(a, ps, u, _options(options)), ps, u)


def count(image, *, pixel_size=None, unit=None, **options) -> dict:
    """``atomlens count``: atoms per column. Options: those of :func:`particles` (gpu too), beam_step (nm),
    element. Returns ``{counts: Table, counting: dict, model_xyz: str or None, recipe}``."""
    a, ps, u = _image(image, pixel_size, unit)
    return _particle_result(_core.count(a, ps, u, _options(options)), ps, u)


def compare(before, after, *, pixel_size=None, unit=None, **options) -> dict:
    """``atomlens compare``: identical location (kept / lost / new columns). Options: those of
    :func:`particles`. Returns ``{columns, facets: Table, summary: dict, change: map, recipe}``."""
    b, ps, u = _image(before, pixel_size, unit, what="before")
    a, _, _ = _image(after, ps, u, what="after")
    if a.shape != b.shape:
        raise ValueError(f"before {b.shape} and after {a.shape} differ in size")
    return _particle_result(_core.compare(b, a, ps, u, _options(options)), ps, u)


def _recipe_text(recipe) -> str:
    """A recipe given as None (the default), a dict, JSON text or a JSON file, as full JSON."""
    if recipe is None:
        text = "{}"
    elif isinstance(recipe, dict):
        text = json.dumps(recipe)
    elif isinstance(recipe, os.PathLike) or (isinstance(recipe, str) and not recipe.lstrip().startswith("{")):
        with open(recipe, encoding="utf-8") as f:
            text = f.read()
    else:
        text = recipe
    return _core.recipe_json(text)


def run(recipe, image, *, pixel_size=None, unit=None, file: str = "image") -> dict:
    """A recipe (as ``atomlens batch --recipe`` takes it: None, a dict, JSON or a file) on one
    image: ``{summary: Table (batch's row), particles, columns, facets, defects, analysis,
    recipe, labels[, exx, eyy, exy, rotation]}``."""
    a, ps, u = _image(image, pixel_size, unit)
    return _particle_result(_core.run(_recipe_text(recipe), a, ps, u, file), ps, u)


def synth(kind: str = "particle", **options) -> dict:
    """``atomlens synth KIND``: synthetic images with exact truth. kind: particle (a Pt particle in
    [110] with Poisson noise), ordered (an L1₀ PtCo-like particle with a Pt shell) or pair (an
    identical-location before/after pair). Options: size (px), diameter (nm), seed. Returns
    ``{name: {data, pixel_size, unit, truth: Table}}`` (name: image, or before and after)."""
    images, note = _core.synth(_options({**options, "kind": kind}))
    out = {}
    for name, data, ps, unit, truth in images:
        out[name] = {"data": data, "pixel_size": ps, "unit": unit, "truth": _table(truth, ps, unit)}
    if note:
        out["note"] = note
    return out


def write_tiff(path, image, *, pixel_size=None, unit=None) -> None:
    """Write an image (rows, columns) or a stack (frames, rows, columns) as a 32-bit float TIFF with
    its calibration, one page per frame, as ``atomlens convert`` does."""
    data = image["data"] if isinstance(image, dict) else image.data if hasattr(image, "axes_manager") else image
    a, ps, u = _image(image, pixel_size, unit, ndim=3 if np.ndim(data) == 3 else 2)
    _core.write_tiff(os.fspath(path), a, ps, u)
