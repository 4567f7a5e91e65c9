// The Joseph projector and its exact adjoint for a batch of slices: the GPU twin of
// `atomlens_core::tomo::project::Geometry::trace`. A ray of tilt `a` and bin `j` steps along the
// axis it is closer to; at step `s` it sits at `pos = starts[a][s] + j·slope[a]` along the other
// axis and reads the two pixels either side by linear interpolation, weighted by the path length
// per step `w[a]`. `forward` is ray-driven (one invocation per bin, tilt and slice); `adjoint` is
// pixel-driven (one per pixel and slice) and finds the bins that reach its pixel by the same
// arithmetic, so both visit the same (ray, pixel, weight) triples and stay adjoint in f32 without
// atomics. Fused modes do SIRT's and SART's two half-steps in the same passes; SART takes one
// tilt per dispatch (`a0`, `na` = 1) with that tilt's own pixel sums.
struct Params {
    nx: u32,
    nz: u32,
    tilts: u32,
    slices: u32,
    // 0: plain (dst = A·src or Aᵀ·src); 1: SIRT (forward: dst = (b − A·src)·R; adjoint:
    // dst = dst + C·Aᵀ·src, clipped at 0 when `nonneg`).
    fused: u32,
    nonneg: u32,
    steps_max: u32,
    // The tilts of this dispatch: `a0 .. a0 + na`.
    a0: u32,
    na: u32,
    // 1: `scale` holds one [z][x] plane per tilt and the adjoint reads tilt `a0`'s (SART).
    per_tilt: u32,
    _pad: u32,
}

struct Tilt {
    slope: f32,
    w: f32,
    // 1: steps through z rows and interpolates along x; 0: steps through x columns, along z.
    along_rows: u32,
    steps: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> tilts: array<Tilt>;
@group(0) @binding(2) var<storage, read> starts: array<f32>;
@group(0) @binding(3) var<storage, read> src: array<f32>;
// Forward: inverse ray sums R [tilt][bin]; adjoint: inverse pixel sums C [z][x].
@group(0) @binding(4) var<storage, read> scale: array<f32>;
// Forward, fused: the measured sinograms [slice][tilt][bin].
@group(0) @binding(5) var<storage, read> b: array<f32>;
@group(0) @binding(6) var<storage, read_write> dst: array<f32>;

fn pixel(t: Tilt, step: u32, i: u32) -> u32 {
    return select(i * p.nx + step, step * p.nx + i, t.along_rows == 1u);
}

@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) id: vec3<u32>) {
    let j = id.x;
    let a = p.a0 + id.y;
    let s = id.z;
    if (j >= p.nx || id.y >= p.na || a >= p.tilts || s >= p.slices) {
        return;
    }
    let t = tilts[a];
    let len = i32(select(p.nz, p.nx, t.along_rows == 1u));
    let base = s * p.nx * p.nz;
    var acc = 0.0;
    for (var step = 0u; step < t.steps; step++) {
        let pos = starts[a * p.steps_max + step] + f32(j) * t.slope;
        let fi = floor(pos);
        let frac = pos - fi;
        let i = i32(fi);
        if (i >= 0 && i < len) {
            acc += t.w * (1.0 - frac) * src[base + pixel(t, step, u32(i))];
        }
        if (i + 1 >= 0 && i + 1 < len) {
            acc += t.w * frac * src[base + pixel(t, step, u32(i + 1))];
        }
    }
    let k = (s * p.tilts + a) * p.nx + j;
    if (p.fused == 1u) {
        dst[k] = (b[k] - acc) * scale[a * p.nx + j];
    } else {
        dst[k] = acc;
    }
}

@compute @workgroup_size(64)
fn adjoint(@builtin(global_invocation_id) id: vec3<u32>) {
    let x = id.x;
    let z = id.y;
    let s = id.z;
    if (x >= p.nx || z >= p.nz || s >= p.slices) {
        return;
    }
    var acc = 0.0;
    for (var a = p.a0; a < min(p.a0 + p.na, p.tilts); a++) {
        let t = tilts[a];
        let step = select(x, z, t.along_rows == 1u);
        let i = i32(select(z, x, t.along_rows == 1u));
        let st = starts[a * p.steps_max + step];
        // Bins whose position lies in [i − 1, i + 1): |slope| ≥ 1, so at most two, within
        // one of (i − start)/slope; one more either side absorbs rounding.
        let jc = i32(floor((f32(i) - st) / t.slope));
        for (var dj = -1; dj <= 2; dj++) {
            let j = jc + dj;
            if (j < 0 || j >= i32(p.nx)) {
                continue;
            }
            let pos = st + f32(j) * t.slope;
            let fi = floor(pos);
            let frac = pos - fi;
            let ii = i32(fi);
            let r = src[(s * p.tilts + a) * p.nx + u32(j)];
            if (ii == i) {
                acc += t.w * (1.0 - frac) * r;
            } else if (ii + 1 == i) {
                acc += t.w * frac * r;
            }
        }
    }
    let k = (s * p.nz + z) * p.nx + x;
    if (p.fused == 1u) {
        let plane = select(0u, p.a0 * p.nz * p.nx, p.per_tilt == 1u);
        var v = dst[k] + scale[plane + z * p.nx + x] * acc;
        if (p.nonneg == 1u && v < 0.0) {
            v = 0.0;
        }
        dst[k] = v;
    } else {
        dst[k] = acc;
    }
}
