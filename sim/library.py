"""A cross-section library for `atomlens count --library`: frozen-phonon HAADF (the settings of
`simulate.py`, or the probe and detector given) of a perfect fcc crystal n atoms thick along a
zone axis, for n = 1…N; each column's cross-section is the image summed over the periodic cell
divided by the columns in it (the columns' Voronoi cells tile the cell).

    python sim/library.py --element Pt --a 3.924 --zone 110 --max-atoms 20 --pixel 0.25 --out pt110.csv

The values are in the units `atomlens count` measures: the image as a fraction of the incident
beam, summed over pixels of `--pixel` Å. Use it on an image normalised to the beam (divide by the
detector's signal for the unscattered beam, after subtracting its dark level) at that pixel size
(or scale the values by (pixel / image pixel)²). Seeded: the same command writes the same file."""
import argparse
import json

import numpy as np
from ase import Atoms

import simulate


def crystal(element: str, a: float, zone: str, n: int, lateral: float) -> tuple[Atoms, int]:
    """fcc `element` n atoms thick along `zone` ([100] or [110] on the beam, z), repeated
    laterally to at least `lateral` Å; returns the atoms and the number of projected columns."""
    if zone == "100":
        # Cubic cell: columns at (0,0), (½,½) [z = 0] and (½,0), (0,½) [z = ½], one atom per a.
        cell = [a, a, a]
        frac = [(0, 0, 0), (0.5, 0.5, 0), (0.5, 0, 0.5), (0, 0.5, 0.5)]
        columns = 4
    elif zone == "110":
        # x ∥ [1-10] (a/√2), y ∥ [001] (a), z ∥ [110] (a/√2): columns at (0,0) and (½,½), one atom
        # per a/√2.
        cell = [a / np.sqrt(2), a, a / np.sqrt(2)]
        frac = [(0, 0, 0), (0.5, 0.5, 0.5)]
        columns = 2
    else:
        raise ValueError(f"zone {zone}: 100 or 110")
    unit = Atoms(element * len(frac), scaled_positions=frac, cell=cell, pbc=True)
    rx, ry = int(np.ceil(lateral / cell[0])), int(np.ceil(lateral / cell[1]))
    slab = unit.repeat((rx, ry, n))
    slab.center(vacuum=2.0, axis=2)
    return slab, columns * rx * ry


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--element", default="Pt")
    p.add_argument("--a", type=float, default=3.924, help="fcc lattice parameter, Å")
    p.add_argument("--zone", default="110", choices=["100", "110"])
    p.add_argument("--max-atoms", type=int, default=20)
    p.add_argument("--pixel", type=float, default=0.25, help="Å")
    p.add_argument("--energy", type=float, default=simulate.SETTINGS["energy"], help="eV")
    p.add_argument("--semiangle", type=float, default=simulate.SETTINGS["semiangle"], help="probe, mrad")
    p.add_argument("--inner", type=float, default=simulate.SETTINGS["inner"], help="detector, mrad")
    p.add_argument("--outer", type=float, default=simulate.SETTINGS["outer"], help="detector, mrad")
    p.add_argument("--configs", type=int, default=4, help="frozen-phonon configurations")
    p.add_argument("--lateral", type=float, default=12.0, help="crystal width, Å (periodic)")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    for k in ("energy", "semiangle", "inner", "outer"):
        simulate.SETTINGS[k] = getattr(args, k)
    build(args.out, args.element, args.a, args.zone, args.max_atoms, args.pixel, args.configs, args.lateral)


def build(out: str, element: str, a: float, zone: str, max_atoms: int, pixel: float, configs: int,
          lateral: float = 12.0):
    """Simulate n = 1…`max_atoms` and write the library to `out`."""
    simulate.SETTINGS["phonon_sigmas"].setdefault(element, 0.085)
    rows = []
    for n in range(1, max_atoms + 1):
        atoms, columns = crystal(element, a, zone, n, lateral)
        # The scan covers the whole periodic cell; the source blur wraps with it.
        img = simulate.haadf(atoms, pixel, configs, seed=1000 + n)
        sigma = float(img.sum(dtype=np.float64)) / columns
        rows.append((n, sigma))
        print(f"{n} atoms: {sigma:.6g}", flush=True)
    with open(out, "w") as f:
        meta = {"element": element, "a": a, "zone": zone, "pixel": pixel, "configs": configs}
        f.write(f"# {json.dumps({**meta, 'settings': simulate.SETTINGS})}\n")
        f.write("atoms,cross_section\n")
        for n, s in rows:
            f.write(f"{n},{s:.8g}\n")


if __name__ == "__main__":
    main()
