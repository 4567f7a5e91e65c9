"""Frozen-phonon HAADF-STEM of one model with abTEM (PRISM), as `validation.md` recommends:
200 kV, 20 mrad convergence, a 65–160 mrad annular detector, potential sampling 0.05 Å (the
detector's outer angle is the largest this sampling carries after abTEM's anti-aliasing),
2 Å slices, frozen phonons (σ 0.085 Å for Pt and Co, 0.1 Å for C), then a 0.5 Å FWHM source-size
blur. The result is the clean image as a fraction of the incident beam; tests add Poisson noise at
a dose with `atomlens_core::synth::at_dose`."""
import json
import time

import numpy as np
import tifffile
from scipy.ndimage import gaussian_filter

import abtem

SETTINGS = dict(energy=200e3, semiangle=20.0, inner=65.0, outer=160.0, sampling=0.05, slice=2.0,
                phonon_sigmas={"Pt": 0.085, "Co": 0.085, "C": 0.1}, source_fwhm=0.5, interpolation=2)


def haadf(atoms, pixel: float, configs: int, seed: int) -> np.ndarray:
    """The clean HAADF image of `atoms` (rows y, columns x; pixel (i, j) at x = j·pixel,
    y = i·pixel), `configs` frozen-phonon configurations averaged."""
    abtem.config.set({"device": "cpu", "fft": "fftw"})
    s = SETTINGS
    fp = abtem.FrozenPhonons(atoms, num_configs=configs, sigmas=s["phonon_sigmas"], seed=seed)
    pot = abtem.Potential(fp, sampling=s["sampling"], slice_thickness=s["slice"], projection="infinite",
                          parametrization="lobato")
    sm = abtem.SMatrix(potential=pot, energy=s["energy"], semiangle_cutoff=s["semiangle"],
                       interpolation=s["interpolation"])
    det = abtem.AnnularDetector(inner=s["inner"], outer=s["outer"])
    lx, ly = atoms.cell[0, 0], atoms.cell[1, 1]
    scan = abtem.GridScan(start=(0, 0), end=(lx, ly), sampling=pixel, endpoint=False)
    img = sm.reduce(scan=scan, detectors=det).compute(progress_bar=False)
    arr = np.asarray(img.array, dtype=np.float64)
    if arr.ndim == 3:  # an unreduced ensemble axis
        arr = arr.mean(axis=0)
    arr = arr.T  # abTEM indexes [x, y]
    sigma_px = s["source_fwhm"] / 2.3548 / pixel
    return gaussian_filter(arr, sigma_px, mode="wrap").astype(np.float32)


def write(out: str, name: str, image: np.ndarray, cols, pixel: float, meta: dict):
    """`name.tif` (float32, ImageJ nm calibration), `name_truth.csv` (x_px, y_px, atoms,
    co_atoms) and `name.json` (the parameters)."""
    tifffile.imwrite(f"{out}/{name}.tif", image, imagej=True, resolution=(1 / (pixel / 10), 1 / (pixel / 10)),
                     metadata={"unit": "nm"})
    with open(f"{out}/{name}_truth.csv", "w") as f:
        f.write("x_px,y_px,atoms,co_atoms\n")
        for x, y, n, co in cols:
            f.write(f"{x / pixel:.4f},{y / pixel:.4f},{n},{co}\n")
    with open(f"{out}/{name}.json", "w") as f:
        json.dump({**meta, "pixel_nm": pixel / 10, "settings": SETTINGS, "abtem": abtem.__version__}, f, indent=1)


def run(out: str, name: str, atoms, pixel: float, configs: int, seed: int, meta: dict):
    from structures import columns
    t = time.time()
    image = haadf(atoms, pixel, configs, seed)
    write(out, name, image, columns(atoms), pixel, {**meta, "seconds": round(time.time() - t), "atoms": len(atoms)})
    print(f"{name}: {image.shape} in {time.time() - t:.0f} s", flush=True)
