"""Peer side of `atomlens bench denoise`: scikit-image's non-local means (fast mode, the settings of
its own documentation: 5x5 patches, distance 6, h = 0.8 sigma) and the `bm3d` package (Makinen,
Azzari & Foi), both with sigma from `skimage.restoration.estimate_sigma`. Images of whole counts
(Poisson) go through the same Anscombe transform and closed-form unbiased inverse as atomlens's
BM3D, so both sides denoise the same thing. Writes each result as float32 TIFF into OUT and prints
one JSON object per image with the median time of `repeat` runs after one untimed warm-up.

Usage: python denoise_peers.py OUT REPEAT id=image.tif ...
"""
import json
import os
import sys
import time
import warnings

warnings.filterwarnings("ignore")

import bm3d  # noqa: E402
import numpy as np  # noqa: E402
import tifffile  # noqa: E402
from skimage.restoration import denoise_nl_means, estimate_sigma  # noqa: E402

out, repeat = sys.argv[1], int(sys.argv[2])
os.makedirs(out, exist_ok=True)


def inverse_anscombe(d):
    s = np.sqrt(1.5)
    d = np.maximum(d, 2 * np.sqrt(0.375))
    v = 0.25 * d**2 + 0.25 * s / d - 1.375 / d**2 + 0.625 * s / d**3 - 0.125
    return np.maximum(v, 0)


def nlm(img):
    s = estimate_sigma(img)
    return denoise_nl_means(img, patch_size=5, patch_distance=6, h=0.8 * s, sigma=s, fast_mode=True)


def bm3d_peer(img):
    counts = bool(np.all(img >= 0) and np.all(img == np.round(img)))
    if counts:
        return inverse_anscombe(bm3d.bm3d(2 * np.sqrt(img + 0.375), sigma_psd=1.0))
    return bm3d.bm3d(img, sigma_psd=estimate_sigma(img))


def timed(f, img):
    result = f(img)  # untimed warm-up, as atomlens's side does
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        result = f(img)
        times.append(time.perf_counter() - t)
    return float(np.median(times)), result


for arg in sys.argv[3:]:
    ident, path = arg.split("=", 1)
    img = tifffile.imread(path).astype(np.float64)
    row = {"id": ident}
    for name, f in (("nlm", nlm), ("bm3d", bm3d_peer)):
        t, result = timed(f, img)
        dest = os.path.join(out, f"{ident}_{name}.tif")
        tifffile.imwrite(dest, np.asarray(result, dtype=np.float32))
        row[name] = {"seconds": t, "path": dest}
    print(json.dumps(row), flush=True)
