"""``python -m atomlens.bench``: atomlens beside its peers in one Python process.

1. Column refinement against Atomap 0.4.2 on the same images (Atomap's standard workflow from
   ../shared/reference/scripts with the parameters recorded for each image in
   ../shared/reference/atomap): seconds per column of the 2-D Gaussian refinement, and of the
   whole call (finding included). Needs ``pip install atomap==0.4.2 tifffile`` and ../shared;
   skipped with a message otherwise.
2. ``atomlens.dask.analyse`` of 20 synthetic 512² particle images (the default recipe) on a
   ``LocalCluster`` of one worker, then of two (one thread each, ``RAYON_NUM_THREADS=1``), the
   clusters started before the clock: the speed-up of the second worker.

Options: ``--shared DIR`` (default ../shared beside the repository), ``--images N``, ``--size PX``,
``--repeat N`` (best of N for the column timings), ``--no-atomap``, ``--no-dask``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import atomlens

CASES = [
    ("syn_nanoparticle_poisson", "data/synthetic/syn_nanoparticle_poisson.tif", "synthetic (Poisson)"),
    ("atomap_dummy_simple_cubic", "data/synthetic/atomap_dummy_simple_cubic.tif", "synthetic (Atomap's dummy)"),
]


def _shared_default() -> Path:
    here = Path(__file__).resolve()
    for p in here.parents:
        if (p / "Cargo.toml").exists() and (p.parent / "shared").is_dir():
            return p.parent / "shared"
    return Path("../shared")


def columns_vs_atomap(shared: Path, repeat: int) -> None:
    print("\n## Column refinement: atomlens.columns against Atomap 0.4.2, same process, same image\n")
    try:
        sys.path.insert(0, str(shared / "reference/scripts"))
        import tifffile
        from atomap_workflow import run_workflow, to_signal
    except Exception as e:  # noqa: BLE001 - any import failure means "no peer here"
        print(f"skipped: Atomap's workflow cannot be imported ({type(e).__name__}: {e});"
              " pip install atomap==0.4.2 tifffile, and put ../shared beside the repository")
        return
    summary = json.loads((shared / "reference/atomap/summary.json").read_text())
    print("| image | data | columns (atomlens / Atomap) | refine µs/column (atomlens / Atomap) | ratio |"
          " whole call s (atomlens / Atomap) | ratio |")
    print("|---|---|---|---|---|---|---|")
    for ident, rel, kind in CASES:
        path = shared / rel
        if not path.exists() or ident not in summary:
            print(f"| {ident} | missing in {shared} | | | | | |")
            continue
        img = atomlens.read(path)[0]
        best = None
        for _ in range(repeat):
            t0 = time.perf_counter()
            t = atomlens.columns(img)
            whole = time.perf_counter() - t0
            if best is None or whole < best[0]:
                best = (whole, t)
        whole, t = best
        ours = t.info["refine_s"] / max(len(t), 1)
        params = summary[ident]["params"]
        sig, _ = to_signal(tifffile.imread(path))
        res = run_workflow(sig, params["separation"], params["threshold_rel"], do_feature_sep=False)
        n = res["n_atoms"]
        theirs = res["timings_s"]["refine_2d_gaussian"] / max(n, 1)
        theirs_whole = res["timings_s"]["total_excl_feature_sep"]
        print(f"| {ident} | {kind} | {len(t)} / {n} | {ours * 1e6:.1f} / {theirs * 1e6:.0f} | {theirs / ours:.0f}× |"
              f" {whole:.3f} / {theirs_whole:.2f} | {theirs_whole / whole:.0f}× |")


def dask_scaling(n_images: int, size: int) -> None:
    print(f"\n## atomlens.dask.analyse: {n_images} synthetic {size}² particle images, default recipe\n")
    try:
        from dask.distributed import Client, LocalCluster

        import atomlens.dask
    except ImportError as e:
        print(f"skipped: {e} (pip install 'dask[distributed]')")
        return
    os.environ["RAYON_NUM_THREADS"] = "1"  # one core per worker thread (the workers inherit it)
    with tempfile.TemporaryDirectory() as d:
        files = []
        for k in range(n_images):
            s = atomlens.synth("particle", size=size, diameter=3.0 + 0.05 * k, seed=k)["image"]
            files.append(Path(d) / f"img_{k:02}.tif")
            atomlens.write_tiff(files[-1], s)
        times, tables = {}, {}
        for workers in (1, 2):
            with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                              dashboard_address=None) as cluster, Client(cluster) as client:
                client.run(lambda: __import__("atomlens"))  # import on every worker before timing
                t0 = time.perf_counter()
                tables[workers] = atomlens.dask.analyse(files, client=client)
                times[workers] = time.perf_counter() - t0
        same = "same table" if tables[1].csv == tables[2].csv else "TABLES DIFFER"
        print("| workers | seconds | images/s |")
        print("|---|---|---|")
        for w, s in times.items():
            print(f"| {w} | {s:.2f} | {n_images / s:.2f} |")
        print(f"\n2 workers / 1 worker: {times[1] / times[2]:.2f}× ({same}; {os.cpu_count()} cores)")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(prog="python -m atomlens.bench", description=__doc__.split("\n\n")[0])
    ap.add_argument("--shared", type=Path, default=_shared_default())
    ap.add_argument("--images", type=int, default=20)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--no-atomap", action="store_true")
    ap.add_argument("--no-dask", action="store_true")
    a = ap.parse_args(argv)
    import platform

    print(f"atomlens {atomlens.__version__}, Python {platform.python_version()}, numpy {np.__version__},"
          f" {os.cpu_count()} cores ({platform.machine()})")
    if not a.no_atomap:
        columns_vs_atomap(a.shared, a.repeat)
    if not a.no_dask:
        dask_scaling(a.images, a.size)


if __name__ == "__main__":
    main()
