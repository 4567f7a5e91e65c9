"""Peer side of `atomlens bench gpa`: kemstem 0.0.6's GPA, exactly the pipeline of
../shared/reference/scripts/run_gpa_kemstem.py (its peak picking and g refinement are imported from
there): FFT, automatic pair of g-vectors, COM + phase-gradient refinement, Fourier filter, phase,
strain tensor. Prints one JSON object per image with the median time of `repeat` runs and, when a
reference region is given, the mean exx over a band (for the strain-step accuracy check).

Usage: python kemstem_gpa.py SCRIPTS_DIR REPEAT id=image.tif:sigma:min_r:gmin:gmax[:x0,y0,x1,y1[:bx0,by0,bx1,by1]] ...
"""
import json
import sys
import time
import warnings

warnings.filterwarnings("ignore")
scripts, repeat = sys.argv[1], int(sys.argv[2])
sys.path.insert(0, scripts)

import numpy as np  # noqa: E402
import tifffile  # noqa: E402
from kemstem.fourier import calculate_strain_tensor, fourier_filter, gpa, prepare_fourier_pattern, refine_peaks_com  # noqa: E402
from kemstem.fourier.fourierfilter import coarsening_length  # noqa: E402
from run_gpa_kemstem import auto_peaks, refine_g  # noqa: E402


def full_gpa(image, sigma, min_r, g_range, region):
    pattern = prepare_fourier_pattern(image)
    p1, p2, mag = auto_peaks(image, min_r=min_r, g_range=g_range)
    pr = refine_peaks_com(mag, np.array([p1, p2]), crop_window=3, iters=10)
    h, w = image.shape
    if region is None:
        b0 = int(max(8, coarsening_length(min(h, w), sigma)))
        region = (slice(b0, h - b0), slice(b0, w - b0))
    p1r, _ = refine_g(pattern, pr[0].copy(), sigma, region)
    p2r, _ = refine_g(pattern, pr[1].copy(), sigma, region)
    ph1 = gpa(fourier_filter(pattern, p1r, sigma)[0], p1r)
    ph2 = gpa(fourier_filter(pattern, p2r, sigma)[0], p2r)
    return calculate_strain_tensor(ph1, ph2, p1r, p2r), region


for arg in sys.argv[3:]:
    ident, rest = arg.split("=", 1)
    parts = rest.split(":")
    image = tifffile.imread(parts[0]).astype(np.float64)
    sigma, min_r, gmin, gmax = float(parts[1]), int(parts[2]), float(parts[3]), float(parts[4])
    region = None
    if len(parts) > 5 and parts[5]:
        x0, y0, x1, y1 = map(int, parts[5].split(","))
        region = (slice(y0, y1), slice(x0, x1))
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        (exx, eyy, exy, oxy), used = full_gpa(image, sigma, min_r, (gmin, gmax), region)
        times.append(time.perf_counter() - t0)
    out = {"id": ident, "seconds": float(np.median(times))}
    if len(parts) > 6:
        bx0, by0, bx1, by1 = map(int, parts[6].split(","))
        rel = exx - exx[used].mean()
        out["band_exx"] = float(rel[by0:by1, bx0:bx1].mean())
    print(json.dumps(out), flush=True)
