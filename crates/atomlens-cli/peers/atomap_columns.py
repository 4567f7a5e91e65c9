"""Peer side of `atomlens bench columns`: Atomap 0.4.2's standard workflow (the one in
../shared/reference/scripts/atomap_workflow.py, imported from there) on each image given, with the
parameters recorded for that image in ../shared/reference/atomap. Prints one JSON object per
image: columns, refine_2d_gaussian time, and errors against the truth CSV when one is given.

Usage: python atomap_columns.py SCRIPTS_DIR REFERENCE_DIR id=image.tif[:truth.csv] ...
"""
import json
import os
import sys
import warnings

warnings.filterwarnings("ignore")
scripts, reference = sys.argv[1], sys.argv[2]
sys.path.insert(0, scripts)

import numpy as np  # noqa: E402
import tifffile  # noqa: E402
from atomap_workflow import match_positions, run_workflow, to_signal  # noqa: E402

summary = json.load(open(os.path.join(reference, "summary.json")))
for arg in sys.argv[3:]:
    ident, rest = arg.split("=", 1)
    image, _, truth = rest.partition(":")
    if ident in summary:
        params = summary[ident]["params"]
        invert, pca = False, False
    else:
        r = json.load(open(os.path.join(reference, ident, "result.json")))
        params = r["params"]
        invert, pca = params.get("invert", False), params.get("pca", False)
    sig, _ = to_signal(tifffile.imread(image), invert=invert)
    res = run_workflow(sig, params["separation"], params["threshold_rel"], do_feature_sep=False, pca=pca)
    out = {"id": ident, "columns": res["n_atoms"], "refine_s": res["timings_s"]["refine_2d_gaussian"],
           "total_s": res["timings_s"]["total_excl_feature_sep"], "separation": params["separation"]}
    if truth:
        t = np.loadtxt(truth, delimiter=",", skiprows=1)
        m = match_positions(t[:, :2], res["gauss_xy"], params.get("match_radius", 5.0))
        ri, ti = m.pop("_pairs", (np.array([], int), np.array([], int)))
        sig_err = np.concatenate([res["sigma_x"][ti] / t[ri, 2] - 1, res["sigma_y"][ti] / t[ri, 3] - 1])
        out.update(rms_px=m.get("rms_px"), missed=m["n_missed"], extra=m["n_extra"],
                   sigma_err=float(np.sqrt(np.mean(sig_err ** 2))), sigma_bias=float(np.mean(sig_err)))
    print(json.dumps(out), flush=True)
