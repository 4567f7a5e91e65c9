# %% [markdown]
# # From Atomap to atomlens, on the same image
#
# Atomap's usual two steps, `get_atom_positions` then `refine_atom_positions_using_2d_gaussian`,
# replaced by one `atomlens.columns` call, and the numbers compared on the same HyperSpy signal:
# positions against each other and, on a synthetic image, against the exact truth.
#
#     pip install ./crates/atomlens-py atomap==0.4.2 tifffile
#     python docs/examples/atomap_to_atomlens.py [IMAGE.tif [TRUTH.csv]]
#
# Default image: ../shared/data/synthetic/syn_nanoparticle_poisson.tif with its ground truth.
# Notebook users: each `# %%` is a cell (Jupyter, VS Code).

# %%
import sys
import time
from pathlib import Path

import atomap.api as am
import hyperspy.api as hs
import numpy as np
import tifffile

import atomlens

shared = Path(__file__).resolve().parents[3] / "shared"
image = Path(sys.argv[1]) if len(sys.argv) > 1 else shared / "data/synthetic/syn_nanoparticle_poisson.tif"
truth_csv = Path(sys.argv[2]) if len(sys.argv) > 2 else shared / "data/synthetic/syn_nanoparticle_poisson_groundtruth.csv"
signal = hs.signals.Signal2D(tifffile.imread(image).astype(np.float64))

# %% Atomap: find, centre of mass, then 2-D Gaussians
t0 = time.perf_counter()
peaks = am.get_atom_positions(signal, separation=6, threshold_rel=0.15)
sub = am.Sublattice(peaks, image=signal.data)
sub.find_nearest_neighbors()
sub.refine_atom_positions_using_center_of_mass(show_progressbar=False)
sub.refine_atom_positions_using_2d_gaussian(show_progressbar=False)
atomap_s = time.perf_counter() - t0
atomap_xy = np.column_stack([sub.x_position, sub.y_position])

# %% atomlens: the same in one call, with error bars (x_err, y_err) per column
t0 = time.perf_counter()
cols = atomlens.columns(signal)
atomlens_s = time.perf_counter() - t0
ours_xy = np.column_stack([cols["x"], cols["y"]])
print(f"Atomap: {len(atomap_xy)} columns in {atomap_s:.2f} s; atomlens: {len(ours_xy)} in {atomlens_s:.3f} s "
      f"({atomap_s / atomlens_s:.0f}× faster)")


# %% The same columns? Pair each column with the nearest of the other set.
def pair(a, b, radius=3.0):
    d = np.hypot(a[:, None, 0] - b[None, :, 0], a[:, None, 1] - b[None, :, 1])
    j = d.argmin(axis=1)
    ok = d[np.arange(len(a)), j] < radius
    return np.flatnonzero(ok), j[ok]


i, j = pair(ours_xy, atomap_xy)
diff = ours_xy[i] - atomap_xy[j]
print(f"{len(i)} columns in both; atomlens − Atomap: median |Δ| {np.median(np.hypot(*diff.T)):.4f} px, "
      f"mean Δx {diff[:, 0].mean():+.4f}, Δy {diff[:, 1].mean():+.4f} px")
print(f"atomlens' own error bars there: median x_err {np.median(cols['x_err'][i]):.4f} px")

# %% Against the exact truth (synthetic images only)
if truth_csv.exists():
    truth = np.loadtxt(truth_csv, delimiter=",", skiprows=1)[:, :2]
    for name, xy in [("Atomap", atomap_xy), ("atomlens", ours_xy)]:
        k, m = pair(truth, xy)
        rms = np.sqrt(np.mean(np.sum((truth[k] - xy[m]) ** 2, axis=1)))
        print(f"{name}: {len(k)} of {len(truth)} true columns found, RMS position error {rms:.4f} px")

# %% A DataFrame for the rest of your notebook
try:
    print(cols.to_pandas()[["x", "y", "x_err", "y_err", "sigma_x", "sigma_y", "amplitude", "status"]].head())
except ImportError:
    print("(pip install pandas for .to_pandas())")
