"""Peer side of `atomlens bench tomo`: scikit-image (`iradon`, `iradon_sart`) and astra-toolbox's
CPU 2D algorithms (`FBP`, `SIRT` with its `linear` projector), slice by slice, on the phantom that
atomlens writes (a TIFF stack, z pages of y rows and x columns; the tilt axis is y). Each peer makes
its own sinograms with its own projector (`radon`, astra's forward projection), so every method
reconstructs data consistent with it, and is scored against the same phantom. Prints one JSON
object per method: seconds for all slices (reconstruction only) and the RMS error.

Usage: python tomo_peers.py PHANTOM.tif START END COUNT SIRT_ITERATIONS SART_PASSES [FULL_COUNT]
(FULL_COUNT: also `iradon` on FULL_COUNT tilts evenly over 180°, the full-range comparison.)
"""
import json
import sys
import time
import warnings

warnings.filterwarnings("ignore")

import numpy as np  # noqa: E402
import tifffile  # noqa: E402
from skimage.transform import iradon, iradon_sart, radon  # noqa: E402

path, start, end, count, sirt_iters, sart_passes = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
vol = tifffile.imread(path).astype(np.float64)  # [z, y, x]
nz, ny, nx = vol.shape
theta = np.linspace(start, end, count)
slices = [vol[:, y, :] for y in range(ny)]


def report(name, seconds, recs):
    err = np.sqrt(np.mean([np.mean((r - s) ** 2) for r, s in zip(recs, slices)]))
    print(json.dumps({"method": name, "seconds": seconds, "rms": float(err)}), flush=True)


# scikit-image: its radon, then iradon (Shepp-Logan filter) and iradon_sart passes.
sinos = [radon(s, theta=theta, circle=True) for s in slices]
t = time.perf_counter()
recs = [iradon(s, theta=theta, filter_name="shepp-logan", circle=True, output_size=nx) for s in sinos]
report("skimage iradon", time.perf_counter() - t, recs)
t = time.perf_counter()
recs = []
for s in sinos:
    r = None
    for _ in range(sart_passes):
        r = iradon_sart(s, theta=theta, image=r)
    recs.append(r)
report(f"skimage iradon_sart ({sart_passes} passes)", time.perf_counter() - t, recs)

if len(sys.argv) > 7:
    full = int(sys.argv[7])
    theta_full = -90.0 + 180.0 * np.arange(full) / full
    fsinos = [radon(s, theta=theta_full, circle=True) for s in slices]
    t = time.perf_counter()
    recs = [iradon(s, theta=theta_full, filter_name="shepp-logan", circle=True, output_size=nx) for s in fsinos]
    report("skimage iradon (full range)", time.perf_counter() - t, recs)

try:
    import astra
except ImportError:
    sys.exit(0)
vg = astra.create_vol_geom(nz, nx)
pg = astra.create_proj_geom("parallel", 1.0, nx, np.deg2rad(theta))
proj = astra.create_projector("linear", pg, vg)
asinos = []
for s in slices:
    sid, sino = astra.create_sino(s, proj)
    astra.data2d.delete(sid)
    asinos.append(sino)


def astra_run(alg, iters):
    recs = []
    t = time.perf_counter()
    for sino in asinos:
        sid = astra.data2d.create("-sino", pg, sino)
        rid = astra.data2d.create("-vol", vg, 0)
        cfg = astra.astra_dict(alg)
        cfg["ProjectorId"] = proj
        cfg["ProjectionDataId"] = sid
        cfg["ReconstructionDataId"] = rid
        if alg == "FBP":
            cfg["FilterType"] = "shepp-logan"
        if alg == "SIRT":
            cfg["option"] = {"MinConstraint": 0.0}
        aid = astra.algorithm.create(cfg)
        astra.algorithm.run(aid, iters)
        recs.append(astra.data2d.get(rid))
        astra.algorithm.delete(aid)
        astra.data2d.delete([sid, rid])
    return time.perf_counter() - t, recs


secs, recs = astra_run("FBP", 1)
report("astra FBP (CPU)", secs, recs)
secs, recs = astra_run("SIRT", sirt_iters)
report(f"astra SIRT (CPU, {sirt_iters} iterations)", secs, recs)
