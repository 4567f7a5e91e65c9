"""Many images on a Dask cluster: one task per image, one table back.

    from dask.distributed import Client, LocalCluster
    import atomlens.dask
    table = atomlens.dask.analyse(files, recipe="recipe.json", client=Client(LocalCluster(n_workers=2)))

The same call runs on any Dask deployment: a laptop's ``LocalCluster``, a Slurm cluster through
``dask_jobqueue.SLURMCluster`` (``cluster.scale(jobs=10)``, ``Client(cluster)``), Kubernetes or a
cloud service. Each image is analysed by :func:`atomlens._atomlens.analyse_file`, the function
``atomlens batch`` runs per image, so the table is ``atomlens batch``'s ``summary.csv`` (its
``.csv``) for the same files in the same order. An image that fails is a row with its message;
a task whose worker dies is retried by Dask on another worker (``retries``), and if it keeps
failing it becomes such a row too: the other images are never lost. Each worker runs the
analysis on as many threads as ``RAYON_NUM_THREADS`` allows (default: all cores of its machine):
set it to the worker's share of cores when several workers share a machine.
"""
from __future__ import annotations

import os
from typing import Iterable, Optional

from . import BATCH_HEADER, Table, _core, _recipe_text

__all__ = ["analyse"]

def _task(path: str, recipe: str, out: Optional[str]):
    name = os.path.basename(path)
    # Fault injection for the test suite: a worker taking a file whose name contains
    # ATOMLENS_DASK_CRASH exits abruptly, as a dying machine would: every time, or once when
    # ATOMLENS_DASK_CRASH_DIR names a folder for the marker that says it has.
    crash = os.environ.get("ATOMLENS_DASK_CRASH")
    if crash and crash in name:
        folder = os.environ.get("ATOMLENS_DASK_CRASH_DIR")
        marker = os.path.join(folder, f"crashed-{name}") if folder else None
        if marker is None or not os.path.exists(marker):
            if marker is not None:
                open(marker, "w").close()
            os._exit(1)
    return _core.analyse_file(path, recipe, out)


def analyse(files: Iterable, recipe=None, client=None, out=None, retries: int = 2) -> Table:
    """Analyse every file with ``recipe`` (None: the default; a dict, JSON text or a JSON file,
    as ``atomlens batch --recipe``) on the Dask ``client`` (None: the current client, or a new
    ``LocalCluster`` on this machine, closed afterwards). With ``out``, each image's tables go to
    ``out/STEM/`` as ``atomlens batch`` writes them (a folder every worker can reach), with
    ``summary.csv`` and ``recipe.json`` beside them. Returns
    the summary table, rows in the order of ``files``; ``.seconds`` holds each image's time."""
    from dask.distributed import Client, LocalCluster

    paths = [os.fspath(f) for f in files]
    text = _recipe_text(recipe)
    own = None
    if client is None:
        try:
            from dask.distributed import get_client

            client = get_client()
        except ValueError:
            own = LocalCluster(processes=True)
            client = Client(own)
    try:
        out_dir = None if out is None else os.path.abspath(os.fspath(out))
        if out_dir is not None:
            os.makedirs(out_dir, exist_ok=True)
        futures = client.map(_task, paths, recipe=text, out=out_dir, retries=retries, pure=False)
        rows, seconds = [], []
        for path, fut in zip(paths, futures):
            try:
                row, secs = fut.result()
            except Exception as e:  # the task itself failed (a worker died each time)
                row, secs = _core.failed_row(os.path.basename(path), f"{type(e).__name__}: {e}"), float("nan")
            rows.append(row)
            seconds.append(secs)
    finally:
        if own is not None:
            client.close()
            own.close()
    csv = "".join(f"{line}\n" for line in [BATCH_HEADER, *rows])
    if out_dir is not None:  # the folder `atomlens batch` writes
        for name, content in [("summary.csv", csv), ("recipe.json", text)]:
            with open(os.path.join(out_dir, name), "w", encoding="utf-8") as f:
                f.write(content)
    table = Table(_core.table(csv), csv)
    table.seconds = seconds
    return table
