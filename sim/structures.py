"""Atomic models for the realistic test set: Pt and PtCo particles on amorphous carbon, single
Pt atoms on carbon. Coordinates in Å, beam along z (downwards through the cell), x and y in the
image plane. Every model is seeded and built with ASE."""
import numpy as np
from ase import Atoms
from ase.cluster import Decahedron, Octahedron

PT_A = 3.924  # fcc Pt lattice parameter (Å)


def particle(shape: str, size: int):
    """A Pt particle: `truncated_octahedron`, `cuboctahedron` or `decahedron` (twinned: five
    tetrahedral domains) of about `size` atoms along an edge."""
    if shape == "cuboctahedron":
        return Octahedron("Pt", length=2 * size + 1, cutoff=size, latticeconstant=PT_A)
    if shape == "truncated_octahedron":
        return Octahedron("Pt", length=3 * size - 2, cutoff=size - 1, latticeconstant=PT_A)
    if shape == "decahedron":
        return Decahedron("Pt", p=size, q=3, r=1, latticeconstant=PT_A)
    raise ValueError(shape)


def orient(atoms: Atoms, zone: str, tilt_deg: float, turn_deg: float, seed: int) -> Atoms:
    """Turn `atoms` so `zone` ([110] or [100], of the fcc frame ASE builds in) lies along the
    beam, then tilt about x by `tilt_deg` (off axis) and turn about the beam by `turn_deg`.
    A decahedron's five-fold axis is ASE's z: its `[110]`-like view has the axis in the plane."""
    a = atoms.copy()
    a.positions -= a.positions.mean(axis=0)
    if zone == "110":
        a.rotate([1, 1, 0], [0, 0, 1], center=(0, 0, 0))
    elif zone == "100":
        pass
    elif zone == "decahedron_side":
        a.rotate([0, 0, 1], [1, 0, 0], center=(0, 0, 0))
    else:
        raise ValueError(zone)
    if tilt_deg:
        a.rotate(tilt_deg, "x", center=(0, 0, 0))
    if turn_deg:
        a.rotate(turn_deg, "z", center=(0, 0, 0))
    return a


def alloy_l10(atoms: Atoms, shell: float, seed: int, random_side: bool = False) -> Atoms:
    """PtCo: deeper than `shell` Å under the surface (the convex hull's facets), L1₀ order with its c axis along x of the fcc
    frame (Co on every other (100) plane across x), so that seen along z each core column is
    all Pt or all Co under its Pt shell: the ordered variant that shows in a [001] image (with c
    along the beam every column would hold both alike). The outer shell (one monolayer at 1.5 Å) stays Pt. With
    `random_side`, the core's y > 0 half is a random alloy of the same composition (each atom
    Co with probability ½): an ordered and a disordered domain in one particle. The lattice is
    Pt's (the tetragonal contraction of real PtCo changes spacings by 3–5 %, not the contrast)."""
    from scipy.spatial import ConvexHull

    a = atoms.copy()
    c = a.positions - a.positions.mean(axis=0)
    hull = ConvexHull(c)
    depth = -(c @ hull.equations[:, :3].T + hull.equations[:, 3]).max(axis=1)
    core = depth > shell
    layer = np.rint(c[:, 0] / (PT_A / 2)).astype(int)
    co = core & (layer % 2 == 1)
    if random_side:
        rng = np.random.default_rng(seed)
        side = core & (c[:, 1] > 0)
        co = np.where(side, rng.random(len(a)) < 0.5, co)
    symbols = np.array(a.get_chemical_symbols())
    symbols[co] = "Co"
    a.set_chemical_symbols(symbols.tolist())
    return a


def amorphous_carbon(lx: float, ly: float, thickness: float, seed: int, density: float = 2.0) -> Atoms:
    """A random hard-sphere carbon film (`density` g/cm³, atoms ≥ 1.3 Å apart) of `lx × ly ×
    thickness` Å, its top face at z = 0."""
    rng = np.random.default_rng(seed)
    n = int(density / 12.011 * 6.022e23 * 1e-24 * lx * ly * thickness)
    pts = np.empty((0, 3))
    cell = 3.0
    grid: dict = {}
    tries = 0
    while len(pts) < n and tries < 50 * n:
        tries += 1
        p = rng.random(3) * [lx, ly, thickness] - [0, 0, thickness]
        key = tuple((p // cell).astype(int))
        near = [q for dx in (-1, 0, 1) for dy in (-1, 0, 1) for dz in (-1, 0, 1)
                for q in grid.get((key[0] + dx, key[1] + dy, key[2] + dz), [])]
        if near and np.min(np.linalg.norm(np.array(near) - p, axis=1)) < 1.3:
            continue
        grid.setdefault(key, []).append(p)
        pts = np.vstack([pts, p])
    return Atoms("C" * len(pts), positions=pts)


def on_support(particle: Atoms, cell: float, support_thickness: float, seed: int, centre=None) -> Atoms:
    """`particle` centred in a `cell × cell` Å cell (its mean, or the point `centre` of its
    frame), resting on a carbon film."""
    p = particle.copy()
    p.positions[:, :2] += cell / 2 - (p.positions[:, :2].mean(axis=0) if centre is None else np.asarray(centre))
    p.positions[:, 2] -= p.positions[:, 2].min()  # bottom on z = 0
    p.positions[:, 2] += 1.5  # resting on the film
    film = amorphous_carbon(cell, cell, support_thickness, seed)
    both = p + film
    both.positions[:, 2] -= both.positions[:, 2].min() - 2.0
    both.set_cell([cell, cell, both.positions[:, 2].max() + 2.0])
    both.pbc = True
    return both


def cycled(particle: Atoms, lost: int, thinned: int, new: int, seed: int) -> Atoms:
    """`particle` (oriented, beam along z) after "cycling": `lost` surface columns on one side
    dissolved whole, `thinned` other surface columns losing their one or two topmost atoms, and
    `new` columns of 2–4 atoms redeposited at lattice sites just outside the other side (the
    site mirrored through a surface column from its inner neighbour, atoms at that neighbour's
    heights, so they sit on the lattice)."""
    rng = np.random.default_rng(seed)
    a = Atoms(particle.get_chemical_symbols(), positions=particle.positions)
    xy = a.positions[:, :2]
    keys = [tuple(np.round(q / 0.4).astype(int)) for q in xy]
    groups: dict = {}
    for i, k in enumerate(keys):
        groups.setdefault(k, []).append(i)
    cols = [np.array(v) for v in groups.values()]
    centres = np.array([xy[c].mean(axis=0) for c in cols])
    d = np.hypot(*(centres[:, None, :] - centres[None, :, :]).transpose(2, 0, 1))
    np.fill_diagonal(d, np.inf)
    nn = np.median(d.min(axis=1))
    neighbours = (d < 1.25 * nn).sum(axis=1)
    full = neighbours.max()
    surface = np.where(neighbours < full)[0]
    mid = centres.mean(axis=0)
    # Lost: the surface columns furthest along +x (a dissolving corner).
    order = surface[np.argsort(-(centres[surface, 0] - mid[0]))]
    lost = list(order[:lost])
    rest = [c for c in surface if c not in lost and centres[c, 0] < mid[0] + nn]
    thin = list(rng.choice(rest, size=thinned, replace=False))
    drop = [i for c in lost for i in cols[c]]
    for c in thin:
        top = cols[c][np.argsort(-a.positions[cols[c], 2])]
        drop += list(top[: rng.integers(1, 3)])
    # New: mirror sites outside the −x side.
    added = []
    for c in surface[np.argsort(centres[surface, 0] - mid[0])]:
        if len(added) >= new or c in thin:
            continue
        inner = [j for j in np.where(d[c] < 1.25 * nn)[0] if neighbours[j] == full]
        if not inner:
            continue
        j = inner[0]
        site = 2 * centres[c] - centres[j]
        if np.min(np.hypot(*(centres - site).T)) < 0.8 * nn or any(np.hypot(*(site - q)) < 1.6 * nn for q in added):
            continue
        z = np.sort(a.positions[cols[j], 2])
        n = int(rng.integers(2, 5))
        lo = int(rng.integers(0, max(1, len(z) - n)))
        added.append(site)
        a += Atoms("Pt" * min(n, len(z)), positions=[[site[0], site[1], zz] for zz in z[lo:lo + n]])
    keep = np.setdiff1d(np.arange(len(particle)), drop)
    return a[np.concatenate([keep, np.arange(len(particle), len(a))])]


def moved(atoms: Atoms, turn_deg: float, shift) -> Atoms:
    """`atoms` turned by `turn_deg` about the beam through the cell's centre, then shifted by
    `shift` (Å) and wrapped into the cell: the stage drift and rotation between two sessions."""
    a = atoms.copy()
    c = np.array([a.cell[0, 0] / 2, a.cell[1, 1] / 2, 0.0])
    a.rotate(turn_deg, "z", center=c)
    a.positions[:, :2] += np.asarray(shift)
    a.wrap()
    return a


def single_atoms(cell: float, count: int, support_thickness: float, seed: int) -> Atoms:
    """`count` Pt atoms at random places on a carbon film, at least 4 Å apart."""
    rng = np.random.default_rng(seed)
    film = amorphous_carbon(cell, cell, support_thickness, seed)
    pts = []
    while len(pts) < count:
        q = rng.random(2) * (cell - 8) + 4
        if all(np.hypot(*(q - r)) >= 4.0 for r in pts):
            pts.append(q)
    pt = Atoms("Pt" * count, positions=[[x, y, 1.5] for x, y in pts])
    both = pt + film
    both.positions[:, 2] -= both.positions[:, 2].min() - 2.0
    both.set_cell([cell, cell, both.positions[:, 2].max() + 2.0])
    both.pbc = True
    return both


def columns(atoms: Atoms, tolerance: float = 0.4):
    """The heavy-atom columns of `atoms` seen along z: clusters of atoms whose (x, y) lie within
    `tolerance` Å, as (x, y, atoms, co_atoms), positions the mean of the column's atoms. Off
    axis a "column" is whatever overlaps within the tolerance: counts then mean little."""
    heavy = [i for i, s in enumerate(atoms.get_chemical_symbols()) if s in ("Pt", "Co")]
    xy = atoms.positions[heavy, :2]
    sym = np.array(atoms.get_chemical_symbols())[heavy]
    order = np.lexsort((xy[:, 1], xy[:, 0]))
    used = np.zeros(len(heavy), bool)
    out = []
    for i in order:
        if used[i]:
            continue
        d = np.hypot(*(xy - xy[i]).T)
        members = np.where((d < tolerance) & ~used)[0]
        used[members] = True
        out.append((xy[members, 0].mean(), xy[members, 1].mean(), len(members), int((sym[members] == "Co").sum())))
    return out
