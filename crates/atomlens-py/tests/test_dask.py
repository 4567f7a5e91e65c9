"""A real `distributed.LocalCluster` (two worker processes on 127.0.0.1) running a recipe over 20
images gives `atomlens batch`'s summary byte for byte, with a corrupt file and a worker that dies
mid-run among them."""
import json
import os

import pytest

import atomlens
import atomlens.dask

distributed = pytest.importorskip("distributed", reason="dask.distributed is not installed")

RECIPE = {"denoise": {"method": "gaussian", "sigma": 0.7}}


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    d = tmp_path_factory.mktemp("images")
    for k in range(20):
        kind = "ordered" if k % 5 == 4 else "particle"
        s = atomlens.synth(kind, size=256, diameter=2.0 + 0.05 * k, seed=k)
        atomlens.write_tiff(d / f"img_{k:02}.tif", s["image"])
    (d / "img_20_corrupt.tif").write_bytes(b"II*\x00" + b"\x00" * 40)
    (d / "recipe.json").write_text(json.dumps(RECIPE))
    return d


def test_dask_gives_batch_s_summary_even_when_a_worker_dies(folder, cli, tmp_path, monkeypatch):
    from dask.distributed import Client, LocalCluster

    cli("batch", folder, "--recipe", folder / "recipe.json", "--out", tmp_path / "batch")
    expected = (tmp_path / "batch" / "summary.csv").read_text()
    files = sorted(folder.glob("*.tif"))
    # The worker that takes img_07 exits abruptly (once): Dask reschedules it on another worker.
    monkeypatch.setenv("ATOMLENS_DASK_CRASH", "img_07")
    monkeypatch.setenv("ATOMLENS_DASK_CRASH_DIR", str(tmp_path))
    monkeypatch.setenv("RAYON_NUM_THREADS", "1")
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        table = atomlens.dask.analyse(files, recipe=folder / "recipe.json", client=client, out=tmp_path / "dask")
    assert (tmp_path / "crashed-img_07.tif").exists(), "the crash was not injected"
    assert table.csv == expected
    assert (tmp_path / "dask" / "summary.csv").read_text() == expected
    assert (tmp_path / "dask" / "img_03" / "columns.csv").read_text() == \
        (tmp_path / "batch" / "img_03" / "columns.csv").read_text()
    # The corrupt file is a row with the reader's message; the other 20 are analysed.
    assert table["file"][-1] == "img_20_corrupt.tif" and "damaged" in table["error"][-1]
    assert all(e == "" for e in table["error"][:-1]), table["error"]
    assert (table["particles"][:-1] >= 1).all(), table["particles"]


def test_a_task_that_keeps_failing_is_a_row_not_a_lost_run(folder, tmp_path, monkeypatch):
    from dask.distributed import Client, LocalCluster

    files = sorted(folder.glob("img_0[0-2].tif"))
    # Every attempt dies: Dask gives up after its allowed failures.
    monkeypatch.setenv("ATOMLENS_DASK_CRASH", "img_01")
    monkeypatch.delenv("ATOMLENS_DASK_CRASH_DIR", raising=False)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None) as cluster, Client(cluster) as client:
        table = atomlens.dask.analyse(files, client=client, retries=0)
    assert list(table["file"]) == ["img_00.tif", "img_01.tif", "img_02.tif"]
    assert table["error"][0] == "" and table["error"][2] == ""
    assert "KilledWorker" in table["error"][1] or "died" in table["error"][1], table["error"][1]
