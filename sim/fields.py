"""Fields of many particles on a support, composed from the simulated cells: HAADF is nearly
incoherent, so particles tens of ångström apart do not interfere and a field is the sum of its
parts. The support is the simulated carbon cell, each tile of it turned and flipped at random
(tiled as is, its period would be a false lattice); each particle is its own simulated cell
(with the carbon under it) blended in over a feathered disk. Particles are turned by multiples
of 90° and mirrored, placed at random, some touching each other, one cut by the border.

Writes `field_<k>.tif` (clean) with `field_<k>_truth.csv` (x_px, y_px, atoms, co_atoms,
particle) and `field_<k>_particles.csv` (particle, name, cx, cy, radius_px, on_axis, cut)."""
import csv
import os

import numpy as np
import tifffile

PARTICLES = ["pt_to586_110", "pt_cubo923_100", "pt_deca484_side", "pt_to586_110_tilt4", "ptco_to1289_100"]
ON_AXIS = {"pt_to586_110": True, "pt_cubo923_100": True, "pt_deca484_side": False, "pt_to586_110_tilt4": False,
           "ptco_to1289_100": True}
FIELDS = [(1, 1024, 8), (2, 1024, 10), (3, 2048, 18)]  # (seed, side, particles)


def load(out, name):
    img = tifffile.imread(f"{out}/{name}.tif").astype(np.float64)
    truth = np.loadtxt(f"{out}/{name}_truth.csv", delimiter=",", skiprows=1, ndmin=2)
    return img, truth


def turn(img, pts, k, flip):
    """`img` turned by k·90° (numpy's rot90: counter-clockwise as displayed) and mirrored left–
    right, and the points (x, y) moved with it."""
    n = img.shape[0]
    x, y = pts[:, 0].copy(), pts[:, 1].copy()
    for _ in range(k % 4):
        img = np.rot90(img)
        x, y = y, (n - 1) - x
    if flip:
        img = img[:, ::-1]
        x = (n - 1) - x
    out = pts.copy()
    out[:, 0], out[:, 1] = x, y
    return np.ascontiguousarray(img), out


def compose(out):
    if not all(os.path.exists(f"{out}/{n}.tif") for n in PARTICLES + ["carbon"]):
        print("fields: the particle and carbon cells are not all simulated yet")
        return
    carbon, _ = load(out, "carbon")
    cells = {n: load(out, n) for n in PARTICLES}
    t = carbon.shape[0]
    for seed, side, count in FIELDS:
        name = f"field_{seed}"
        if os.path.exists(f"{out}/{name}.tif"):
            continue
        rng = np.random.default_rng(seed)
        field = np.zeros((side, side))
        for y0 in range(0, side, t):
            for x0 in range(0, side, t):
                tile, _ = turn(np.roll(carbon, rng.integers(t, size=2), axis=(0, 1)), np.zeros((0, 2)),
                               rng.integers(4), rng.integers(2))
                h, w = min(t, side - y0), min(t, side - x0)
                field[y0:y0 + h, x0:x0 + w] = tile[:h, :w]
        placed, rows, parts = [], [], []
        yy, xx = np.mgrid[0:t, 0:t]
        for k in range(count):
            pname = PARTICLES[k % len(PARTICLES)]
            img, truth = cells[pname]
            img, pts = turn(img, truth[:, :2], rng.integers(4), rng.integers(2))
            c = pts.mean(axis=0)
            radius = np.max(np.hypot(*(pts - c).T)) + 6
            for _ in range(1000):
                if k == count - 1:  # the last one cut by the border
                    pos = np.array([side - t / 2 + radius * 0.4, rng.uniform(t, side - t)])
                else:
                    pos = rng.uniform(t / 2, side - t / 2, size=2)
                touching = k == 1 and placed
                if touching:  # the second one touching the first
                    a = rng.uniform(0, 2 * np.pi)
                    pos = placed[0][0] + (placed[0][1] + radius - 10) * np.array([np.cos(a), np.sin(a)])
                    pos = np.clip(pos, t / 2, side - t / 2)
                ok = all(np.hypot(*(pos - p)) > r + radius + 8 for p, r in placed) or touching
                if ok:
                    break
            placed.append((pos, radius))
            # Blend the cell in over a disk feathered by 8 px (a cosine ramp).
            d = np.hypot(xx - c[0], yy - c[1])
            m = np.clip((radius + 4 - d) / 8, 0, 1)
            m = 0.5 - 0.5 * np.cos(np.pi * m)
            x0, y0 = int(round(pos[0] - t / 2)), int(round(pos[1] - t / 2))
            ys, xs = slice(max(0, y0), min(side, y0 + t)), slice(max(0, x0), min(side, x0 + t))
            cy, cx = slice(ys.start - y0, ys.stop - y0), slice(xs.start - x0, xs.stop - x0)
            field[ys, xs] = field[ys, xs] * (1 - m[cy, cx]) + img[cy, cx] * m[cy, cx]
            cut = x0 < 0 or y0 < 0 or x0 + t > side or y0 + t > side
            for (x, y), row in zip(pts, truth):
                fx, fy = x + x0, y + y0
                if 0 <= fx < side and 0 <= fy < side:
                    rows.append((fx, fy, int(row[2]), int(row[3]), k + 1))
            parts.append((k + 1, pname, c[0] + x0, c[1] + y0, radius - 6, ON_AXIS[pname], cut))
        tifffile.imwrite(f"{out}/{name}.tif", field.astype(np.float32), imagej=True,
                         resolution=(40.0, 40.0), metadata={"unit": "nm"})
        with open(f"{out}/{name}_truth.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["x_px", "y_px", "atoms", "co_atoms", "particle"])
            w.writerows([(f"{a:.4f}", f"{b:.4f}", n, co, p) for a, b, n, co, p in rows])
        with open(f"{out}/{name}_particles.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["particle", "name", "cx", "cy", "radius_px", "on_axis", "cut"])
            w.writerows([(p, n, f"{x:.2f}", f"{y:.2f}", f"{r:.2f}", int(a), int(c)) for p, n, x, y, r, a, c in parts])
        print(f"{name}: {side}² with {count} particles")
