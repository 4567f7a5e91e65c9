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

# The identical-location pair: `pt_to586_110` and the same particle after "cycling" (8 columns
# lost, 4 thinned, 3 new), turned and shifted as a stage would between sessions.
IL_TURN = 1.2  # degrees, about the cell's centre
IL_SHIFT = (1.3, -0.9)  # Å


def to586():
    return st.orient(st.particle("truncated_octahedron", 4), "110", 0, 17, 1)


def to586_cycled_in_place():
    p = to586()
    return st.on_support(st.cycled(p, 8, 4, 3, 18), CELL, 5, 11, centre=p.positions[:, :2].mean(axis=0))


# name: model builder
SET = {
    "pt_to586_110": lambda: st.on_support(to586(), CELL, 5, 11),
    "pt_cubo923_100": lambda: st.on_support(st.orient(st.particle("cuboctahedron", 6), "100", 0, 40, 2), CELL, 5, 12),
    "pt_deca484_side": lambda: st.on_support(st.orient(st.particle("decahedron", 5), "decahedron_side", 0, 70, 3), CELL, 5, 13),
    "pt_to586_110_tilt4": lambda: st.on_support(st.orient(st.particle("truncated_octahedron", 4), "110", 4, 110, 4), CELL, 5, 14),
    "ptco_to1289_100": lambda: st.on_support(
        st.orient(st.alloy_l10(st.particle("truncated_octahedron", 5), 1.5, 5, random_side=True), "100", 0, 0, 5), CELL, 5, 15),
    "pt_single30": lambda: st.single_atoms(CELL, 30, 5, 16),
    "carbon": lambda: st.single_atoms(CELL, 0, 5, 17),
    "pt_to586_110_cycled": lambda: st.moved(to586_cycled_in_place(), IL_TURN, IL_SHIFT),
}


def il_changes(out: str):
    """`pt_to586_110_cycled_changes.csv`: every column of either image in the before frame
    (x_px, y_px) with its atoms before and after (0: absent), the truth of the comparison."""
    before = st.columns(SET["pt_to586_110"]())
    after = st.columns(to586_cycled_in_place())
    rows = []
    used = set()
    for x, y, n, _ in before:
        j = next((k for k, c in enumerate(after) if k not in used and (c[0] - x) ** 2 + (c[1] - y) ** 2 < 0.16), None)
        if j is not None:
            used.add(j)
        rows.append((x, y, n, after[j][2] if j is not None else 0))
    rows += [(c[0], c[1], 0, c[2]) for k, c in enumerate(after) if k not in used]
    with open(f"{out}/pt_to586_110_cycled_changes.csv", "w") as f:
        f.write("x_px,y_px,atoms_before,atoms_after\n")
        for x, y, a, b in rows:
            f.write(f"{x / PIXEL:.4f},{y / PIXEL:.4f},{a},{b}\n")

def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("ATOMLENS_SIM", os.path.expanduser("~/.cache/atomlens/sim"))
    os.makedirs(out, exist_ok=True)
    only = sys.argv[2:]
    for seed, (name, build) in enumerate(SET.items()):
        if (only and name not in only) or os.path.exists(f"{out}/{name}.tif"):
            continue
        meta = {"name": name, "cell_A": CELL, "configs": CONFIGS}
        if name == "pt_to586_110_cycled":
            meta.update(turn_deg=IL_TURN, shift_A=IL_SHIFT, about_A=[CELL / 2, CELL / 2])
        run(out, name, build(), PIXEL, CONFIGS, 100 + seed, meta)
        if name == "pt_to586_110_cycled":
            il_changes(out)
    # The simulated libraries for counting Pt along [110] and [001] (tests compare them with
    # statistical counting; the PtCo particle is counted in Pt-equivalents with the second).
    for zone, most in (("110", 20), ("100", 16)):
        lib = f"library_pt_{zone}"
        if (not only or lib in only) and not os.path.exists(f"{out}/{lib}.csv"):
            import library
            library.build(f"{out}/{lib}.csv", "Pt", st.PT_A, zone, most, PIXEL, CONFIGS)
    if only:
        return
    import fields
    fields.compose(out)


if __name__ == "__main__":
    main()
