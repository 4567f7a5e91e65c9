"""The realistic test set: `python sim/make.py [OUT]` simulates what is missing into OUT
(default `$ATOMLENS_SIM` or `~/.cache/atomlens/sim`), then composes the fields (`fields.py`).
Seeded: the same command gives the same images. Each particle takes ~10–30 min on two cores;
the whole set a few hours, once. See `sim/README.md`."""
import os
import sys

sys.path.insert(0, os.path.dirname(__file__))
import structures as st  # noqa: E402
from simulate import run  # noqa: E402

PIXEL = 0.25  # Å
CELL = 40.0  # Å
CONFIGS = 4

# name: (model builder, metadata)
SET = {
    "pt_to586_110": lambda: st.on_support(st.orient(st.particle("truncated_octahedron", 4), "110", 0, 17, 1), CELL, 5, 11),
    "pt_cubo923_100": lambda: st.on_support(st.orient(st.particle("cuboctahedron", 6), "100", 0, 40, 2), CELL, 5, 12),
    "pt_deca484_side": lambda: st.on_support(st.orient(st.particle("decahedron", 5), "decahedron_side", 0, 70, 3), CELL, 5, 13),
    "pt_to586_110_tilt4": lambda: st.on_support(st.orient(st.particle("truncated_octahedron", 4), "110", 4, 110, 4), CELL, 5, 14),
    "ptco_to1289_100": lambda: st.on_support(
        st.orient(st.alloy_l10(st.particle("truncated_octahedron", 5), 2.8, 5), "100", 0, 0, 5), CELL, 5, 15),
    "pt_single30": lambda: st.single_atoms(CELL, 30, 5, 16),
    "carbon": lambda: st.single_atoms(CELL, 0, 5, 17),
}

def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("ATOMLENS_SIM", os.path.expanduser("~/.cache/atomlens/sim"))
    os.makedirs(out, exist_ok=True)
    only = sys.argv[2:]
    for seed, (name, build) in enumerate(SET.items()):
        if (only and name not in only) or os.path.exists(f"{out}/{name}.tif"):
            continue
        run(out, name, build(), PIXEL, CONFIGS, 100 + seed, {"name": name, "cell_A": CELL, "configs": CONFIGS})
    # The simulated library for counting Pt [110] (tests compare it with statistical counting).
    if not only or "library_pt_110" in only:
        if not os.path.exists(f"{out}/library_pt_110.csv"):
            import library
            library.build(f"{out}/library_pt_110.csv", "Pt", st.PT_A, "110", 20, PIXEL, CONFIGS)
    if only:
        return
    import fields
    fields.compose(out)


if __name__ == "__main__":
    main()
