"""Shared fixtures: the `atomlens` CLI the results are checked against, and synthetic images
with exact truth written as files both sides read."""
import os
import subprocess
from pathlib import Path

import pytest

import atomlens

ROOT = Path(__file__).resolve().parents[3]


def _cli() -> Path:
    given = os.environ.get("ATOMLENS_CLI")
    for p in [given, ROOT / "target/release/atomlens", ROOT / "target/debug/atomlens"]:
        if p and Path(p).is_file():
            return Path(p)
    pytest.skip("no atomlens CLI built: cargo build --release -p atomlens-cli (or set ATOMLENS_CLI)")


@pytest.fixture(scope="session")
def cli():
    exe = _cli()

    def run(*args, ok=True):
        r = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True)
        if ok:
            assert r.returncode == 0, r.stderr
        return r

    return run


@pytest.fixture(scope="session")
def pair(tmp_path_factory):
    """An identical-location pair (before.tif, after.tif) of a 3 nm Pt particle, 256 px."""
    d = tmp_path_factory.mktemp("pair")
    s = atomlens.synth("pair", size=256, diameter=3.0)
    for name in ["before", "after"]:
        atomlens.write_tiff(d / f"{name}.tif", s[name])
    return d
