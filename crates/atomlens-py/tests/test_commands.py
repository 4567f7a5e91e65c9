"""Every function against the CLI on the same file: the same text to the last printed digit, the
same maps to the bit; science against the synthetic images' exact truth where the CLI's own
tests do not already check it."""
import csv
import io
import json
import threading
import time

import numpy as np
import pytest

import atomlens


def _csv_rows(text):
    return list(csv.reader(io.StringIO(text)))


def _same_table(py_text, cli_text):
    """The same table, printed digit for printed digit."""
    assert _csv_rows(py_text) == _csv_rows(cli_text)


def test_read_gives_the_cli_s_signals(pair, cli):
    sig = atomlens.read(pair / "before.tif")
    assert len(sig) == 1
    s = sig[0]
    info = json.loads(cli("info", pair / "before.tif", "--json").stdout)
    assert s["data"].shape == (info["height"], info["width"]) and s["data"].dtype == np.float32
    assert s["pixel_size"] == pytest.approx(info["pixel_size"]) and s["unit"] == info["unit"]
    truth = atomlens.synth("pair", size=256, diameter=3.0)["before"]
    np.testing.assert_array_equal(s["data"], truth["data"])
    assert s["metadata"]["format"]


def test_columns_give_the_cli_s_csv(pair, cli, tmp_path):
    img = atomlens.read(pair / "before.tif")[0]
    for flags, kw in [
        ([], {}),
        (["--shape", "circular", "--passes", "0"], {"shape": "circular", "passes": 0}),
        (["--finder", "learned"], {"finder": "learned"}),
    ]:
        out = tmp_path / "cols.csv"
        cli("columns", pair / "before.tif", *flags, "--out", out)
        t = atomlens.columns(img, **kw)
        assert t.csv == out.read_text()
        _same_table(t.csv, out.read_text())
        # Columns keyed like the CSV, numbers as numbers.
        assert list(t.keys()) == atomlens.COLUMNS_HEADER.split(",")
        assert t["x"].dtype == np.float64 and t["coordination"].dtype == np.int64
        assert len(t) == len(_csv_rows(t.csv)) - 1
    # Against the exact truth: every true column found within 0.1 px.
    truth = atomlens.synth("pair", size=256, diameter=3.0)["before"]["truth"]
    d = np.hypot(t["x"][:, None] - truth["x"][None], t["y"][:, None] - truth["y"][None]).min(axis=0)
    assert np.median(d) < 0.1, np.median(d)
    # Calibrated: the image's nm.
    c = t.calibrated()
    assert t.unit == "nm" and np.allclose(c["x_nm"], t["x"] * t.pixel_size)
    assert t.info["spacing_px"] > 0 and t.info["refine_s"] > 0


def test_gpa_gives_the_cli_s_maps(pair, cli, tmp_path):
    cli("gpa", pair / "before.tif", "--mask-radius", "0.3", "--out", tmp_path)
    g = atomlens.gpa(atomlens.read(pair / "before.tif")[0], mask_radius=0.3)
    for name in ["exx", "eyy", "exy", "rotation"]:
        np.testing.assert_array_equal(g[name], atomlens.read(tmp_path / f"{name}.tif")[0]["data"])
    on_disk = json.loads((tmp_path / "gpa.json").read_text())["gpa"]
    assert g["summary"] == on_disk


def test_denoise_gives_the_cli_s_image(pair, cli, tmp_path):
    img = atomlens.read(pair / "before.tif")[0]
    for flags, method, kw in [
        (["--sigma", "1.5"], "gaussian", {"sigma": 1.5}),
        (["--patch", "2", "--search", "5"], "nlm", {"patch": 2, "search": 5}),
        # Noise2Void is seeded: the same steps and seed train the same network anywhere.
        (["--steps", "3", "--seed", "2"], "n2v", {"steps": 3, "seed": 2}),
    ]:
        out = tmp_path / f"{method}.tif"
        cli("denoise", pair / "before.tif", "--method", method, *flags, "--out", out)
        np.testing.assert_array_equal(atomlens.denoise(img, method, **kw), atomlens.read(out)[0]["data"])
    with pytest.raises(atomlens.AtomlensError, match="not an option of gaussian"):
        atomlens.denoise(img, "gaussian", patch=3)


def test_register_gives_the_cli_s_average_and_drift(tmp_path, cli):
    base = atomlens.synth("particle", size=192, diameter=2.5, seed=3)["image"]["data"]
    frames = np.stack([np.roll(base, (k, -2 * k), axis=(0, 1)) for k in range(3)])
    files = []
    for k, f in enumerate(frames):
        files.append(tmp_path / f"f{k}.tif")
        atomlens.write_tiff(files[-1], f)
    cli("register", *files, "--out", tmp_path / "avg.tif", "--drift", tmp_path / "drift.csv")
    r = atomlens.register(frames)
    np.testing.assert_array_equal(r["average"], atomlens.read(tmp_path / "avg.tif")[0]["data"])
    drift = np.loadtxt(tmp_path / "drift.csv", delimiter=",", skiprows=1)
    np.testing.assert_allclose(r["shifts"], drift[:, 1:3], atol=5e-5)
    # The truth: frame k moved (−2k, +k) px; shifts are relative to the mean position.
    dx = r["shifts"][:, 0] - r["shifts"][0, 0]
    dy = r["shifts"][:, 1] - r["shifts"][0, 1]
    assert np.allclose(np.abs(dx), [0, 2, 4], atol=0.1) and np.allclose(np.abs(dy), [0, 1, 2], atol=0.1)


def test_reconstruct_gives_the_cli_s_volume(tmp_path, cli):
    # A Gaussian blob at (x, z) = (8, −5) px from the centre projects to x·cosθ + z·sinθ.
    n, w, h = 31, 48, 8
    angles = np.linspace(-60, 60, n)
    x = np.arange(w) - (w - 1) / 2
    proj = np.zeros((n, h, w), np.float32)
    for k, a in enumerate(np.radians(angles)):
        u = 8 * np.cos(a) - 5 * np.sin(a)
        proj[k] = np.exp(-((x - u) ** 2) / (2 * 2.0**2))[None, :]
    atomlens.write_tiff(tmp_path / "tilt.tif", proj)
    (tmp_path / "angles.txt").write_text("\n".join(f"{a:.6f}" for a in angles))
    cli("reconstruct", tmp_path / "tilt.tif", "--angles", tmp_path / "angles.txt", "--method", "sirt",
        "--iterations", "30", "--out", tmp_path / "v.mrc")
    v = atomlens.reconstruct(proj, [float(f"{a:.6f}") for a in angles], method="sirt", iterations=30)
    on_disk = atomlens.read(tmp_path / "v.mrc")[0]["data"]
    np.testing.assert_array_equal(v, on_disk.reshape(v.shape))
    z, y, xx = np.unravel_index(np.argmax(v), v.shape)
    found = (xx - (w - 1) / 2, z - (v.shape[0] - 1) / 2)
    # The blob comes back where it is (the sign of z is the volume's convention: either).
    assert abs(found[0] - 8) <= 1 and abs(abs(found[1]) - 5) <= 1, found


def test_particles_count_and_compare_give_the_cli_s_tables(pair, cli, tmp_path):
    before, after = atomlens.read(pair / "before.tif")[0], atomlens.read(pair / "after.tif")[0]
    cli("particles", pair / "before.tif", "--out", tmp_path / "p")
    p = atomlens.particles(before)
    for name in ["particles", "columns", "facets", "defects"]:
        assert p[name].csv == (tmp_path / "p" / f"{name}.csv").read_text(), name
    assert p["analysis"]["particles"] and p["labels"].shape == before["data"].shape
    assert p["recipe"] == json.loads((tmp_path / "p" / "recipe.json").read_text())

    cli("count", pair / "before.tif", "--beam-step", "0.25", "--out", tmp_path / "k")
    k = atomlens.count(before, beam_step=0.25)
    assert k["counts"].csv == (tmp_path / "k" / "counts.csv").read_text()
    assert k["model_xyz"] == (tmp_path / "k" / "model.xyz").read_text()
    assert k["counting"] == json.loads((tmp_path / "k" / "counting.json").read_text())
    # The truth: the counted total within 5 % of the particle's atoms.
    truth = atomlens.synth("pair", size=256, diameter=3.0)["before"]["truth"]
    assert abs(k["counts"]["atoms"].sum() / truth["atoms"].sum() - 1) < 0.05

    cli("compare", pair / "before.tif", pair / "after.tif", "--out", tmp_path / "c")
    c = atomlens.compare(before, after)
    assert c["columns"].csv == (tmp_path / "c" / "columns.csv").read_text()
    assert c["facets"].csv == (tmp_path / "c" / "facets.csv").read_text()
    assert c["summary"]["summary"] == json.loads((tmp_path / "c" / "summary.json").read_text())["summary"]
    np.testing.assert_array_equal(c["change"], atomlens.read(tmp_path / "c" / "change.tif")[0]["data"])
    assert set(c["columns"]["status"]) >= {"kept", "lost", "new"}


def test_run_gives_batch_s_row(pair, cli, tmp_path):
    recipe = {"denoise": {"method": "gaussian", "sigma": 0.7}}
    (tmp_path / "recipe.json").write_text(json.dumps(recipe))
    cli("batch", pair, "--recipe", tmp_path / "recipe.json", "--out", tmp_path / "b")
    summary = (tmp_path / "b" / "summary.csv").read_text().splitlines()
    r = atomlens.run(recipe, atomlens.read(pair / "after.tif")[0], file="after.tif")
    assert r["summary"].csv.splitlines() == [summary[0], summary[1]]  # header, after.tif (sorted first)
    assert r["columns"].csv == (tmp_path / "b" / "after" / "columns.csv").read_text()
    with pytest.raises(atomlens.AtomlensError, match="denoize"):
        atomlens.run({"denoize": {}}, atomlens.read(pair / "after.tif")[0])


def test_bad_input_raises_clear_exceptions(tmp_path, cli):
    with pytest.raises(ValueError, match="expected an image"):
        atomlens.columns(np.zeros((4, 4, 4)))
    with pytest.raises(TypeError, match="dtype"):
        atomlens.columns(np.array([["a", "b"]]))
    with pytest.raises(TypeError, match="dtype"):
        atomlens.columns(np.ones((8, 8), complex))
    with pytest.raises(ValueError, match="empty"):
        atomlens.columns(np.zeros((0, 5)))
    with pytest.raises(atomlens.AtomlensError, match="no finite pixel values"):
        atomlens.columns(np.full((32, 32), np.nan))
    with pytest.raises(atomlens.AtomlensError, match="unknown field `sepration`.*`separation`"):
        atomlens.columns(np.ones((32, 32)), sepration=3)
    with pytest.raises(atomlens.AtomlensError, match="invalid type"):
        atomlens.columns(np.ones((32, 32)), separation="wide")
    with pytest.raises(atomlens.AtomlensError, match="needs its unit"):
        atomlens.columns(np.ones((32, 32)), pixel_size=0.2)
    with pytest.raises(atomlens.AtomlensError, match="furlong"):
        atomlens.columns(np.ones((32, 32)), pixel_size=0.2, unit="furlong")
    # An unreadable file: the CLI's message.
    bad = tmp_path / "broken.dm3"
    bad.write_bytes(b"\x00\x00\x00\x03" + b"\xff" * 60)
    msg = cli("info", bad, ok=False).stderr.strip().removeprefix("error: ")
    with pytest.raises(atomlens.AtomlensError) as e:
        atomlens.read(bad)
    assert str(e.value) == msg
    with pytest.raises(atomlens.AtomlensError, match="missing.tif"):
        atomlens.read(tmp_path / "missing.tif")
    # A lattice-free image is refused or answered honestly, never a crash.
    noise = np.random.default_rng(1).normal(100, 1, (64, 64))
    try:
        t = atomlens.columns(noise)
        assert t.info["notes"] or len(t) < 10
    except atomlens.AtomlensError as e:
        assert str(e)


def test_the_analysis_runs_without_the_gil():
    img = atomlens.synth("particle", size=768, diameter=8.0)["image"]
    ticks = []
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks.append(time.perf_counter())
            time.sleep(0.001)

    t = threading.Thread(target=count)
    t.start()
    # Calls back to back for at least 0.3 s (one call is ~40 ms on a fast machine): a call that
    # held the GIL would leave the ticker only the moments between calls.
    t0 = time.perf_counter()
    calls = 0
    while time.perf_counter() - t0 < 0.3:
        atomlens.columns(img)
        calls += 1
    t1 = time.perf_counter()
    stop.set()
    t.join()
    during = [x for x in ticks if t0 < x < t1]
    assert len(during) > 0.3 * (t1 - t0) / 0.001 * 0.5, (t1 - t0, calls, len(during))


def test_to_pandas():
    pd = pytest.importorskip("pandas", reason="pandas is not installed")
    t = atomlens.columns(atomlens.synth("particle", size=192, diameter=2.5)["image"])
    df = t.to_pandas()
    assert list(df.columns) == list(t.keys()) and len(df) == len(t)
    assert isinstance(df, pd.DataFrame)


def test_hyperspy_signals_are_read_with_their_calibration():
    hs = pytest.importorskip("hyperspy.api", reason="HyperSpy is not installed")
    img = atomlens.synth("particle", size=192, diameter=2.5)["image"]
    s = hs.signals.Signal2D(img["data"])
    for ax in s.axes_manager.signal_axes:
        ax.scale, ax.units = img["pixel_size"] * 10, "Å"
    t = atomlens.columns(s)
    assert t.unit == "Å" and t.pixel_size == pytest.approx(img["pixel_size"] * 10)
    assert t.csv == atomlens.columns(img).csv
    assert np.allclose(t.calibrated()["x_Å"], t["x"] * t.pixel_size)


def test_gpu_gives_the_cpu_s_numbers_within_the_stated_tolerances():
    img = atomlens.synth("particle", size=256, diameter=3.0)["image"]
    try:
        g = atomlens.columns(img, gpu=True)
    except atomlens.AtomlensError as e:
        pytest.skip(f"no GPU adapter here: {e}")
    c = atomlens.columns(img)
    assert g.info["ran"] == "GPU" and c.info["ran"] == "CPU"
    assert len(g) == len(c)
    assert np.max(np.hypot(g["x"] - c["x"], g["y"] - c["y"])) <= atomlens._core.GPU_POSITION_TOLERANCE_PX
    cpu, gpu = atomlens.denoise(img, "nlm"), atomlens.denoise(img, "nlm", gpu=True)
    assert np.max(np.abs(cpu - gpu)) <= atomlens._core.GPU_NLM_TOLERANCE * np.ptp(cpu)
    with pytest.raises(atomlens.AtomlensError, match="no GPU kernel"):
        atomlens.denoise(img, "gaussian", gpu=True)
    stack = np.stack([np.roll(img["data"][96:160, 64:192], k, axis=1) for k in range(-4, 5)])
    angles = np.linspace(-40, 40, 9)
    vc = atomlens.reconstruct(stack, angles, method="sirt", iterations=10)
    vg = atomlens.reconstruct(stack, angles, method="sirt", iterations=10, gpu=True)
    assert np.max(np.abs(vc - vg)) <= atomlens._core.GPU_TOMO_TOLERANCE * np.max(np.abs(vc))
    assert atomlens.particles(img, gpu=True)["particles"].csv == atomlens.particles(img)["particles"].csv
    assert atomlens.count(img, gpu=True)["counts"].csv == atomlens.count(img)["counts"].csv
