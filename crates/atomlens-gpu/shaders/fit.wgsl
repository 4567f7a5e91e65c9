// Levenberg–Marquardt of one column's 2-D Gaussian on its window, by variable projection: the
// GPU twin of `atomlens_core::columns::fit::lm::fit_one`, step for step (the same start, damping,
// convergence tests and sanity checks), in f32. One invocation per column and every iteration
// inside it; one readback per batch. Coordinates are relative to the window's centre and the
// values to the window's mean (the CPU adds both back), so f32 keeps its digits.
//
// Parameters in the fit's order: x0, y0, A, B and the quadratic form (qa, qb, qc) of
// Q = (qa·dx² + 2qb·dx·dy + qc·dy²)/2; a circular column has qb = 0, qc = qa.

struct Params {
    jobs: u32,
    max_iterations: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// Per job: first pixel, pixel count, parameters fitted (k), flags (1: circular, 2: has a start).
@group(0) @binding(1) var<storage, read> jobs: array<vec4<u32>>;
// Per job: com x, com y, radius, then the start (x0, y0, A, B, σx, σy, rotation), one spare.
@group(0) @binding(2) var<storage, read> starts: array<f32>;
// Per pixel: x, y, value.
@group(0) @binding(3) var<storage, read> px: array<f32>;
// Per job: x0, y0, A, B, σx, σy, rotation, and 1 when accepted (0: failed).
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

const SETTLED: f32 = 1e-3;

struct Normal {
    jtj: array<array<f32, 7>, 7>,
    jtr: array<f32, 7>,
    cost: f32,
}

struct Axes {
    ok: bool,
    q: array<f32, 7>,
}

fn form_of(q: array<f32, 7>) -> array<f32, 7> {
    let s = sin(q[6]);
    let c = cos(q[6]);
    let ix = 1.0 / (q[4] * q[4]);
    let iy = 1.0 / (q[5] * q[5]);
    return array<f32, 7>(q[0], q[1], q[2], q[3], c * c * ix + s * s * iy, c * s * (ix - iy), s * s * ix + c * c * iy);
}

fn axes(f: array<f32, 7>) -> Axes {
    let qa = f[4];
    let qb = f[5];
    let qc = f[6];
    let mean = (qa + qc) / 2.0;
    let half = sqrt(((qa - qc) / 2.0) * ((qa - qc) / 2.0) + qb * qb);
    // atan2(0, 0) is undefined in WGSL (the CPU's is 0): a round column's axes are x and y.
    let t = select(0.5 * atan2(2.0 * qb, qa - qc), 0.0, qb == 0.0 && qa == qc);
    var a: Axes;
    a.ok = qa > 0.0 && qc > 0.0 && qa * qc > qb * qb && mean - half > 0.0;
    if (a.ok) {
        a.q = array<f32, 7>(f[0], f[1], f[2], f[3], 1.0 / sqrt(mean + half), 1.0 / sqrt(mean - half), t);
    }
    return a;
}

fn linear(d: u32) -> bool {
    return d == 2u || d == 3u;
}

// JᵀJ, Jᵀr and Σr² at `f` with its A and B replaced by their least-squares values.
fn normal_equations(f: ptr<function, array<f32, 7>>, first: u32, n: u32, k: u32, circ: bool) -> Normal {
    var sg = 0.0;
    var sgg = 0.0;
    var sd = 0.0;
    var sgd = 0.0;
    let qa = (*f)[4];
    let qb = (*f)[5];
    let qc = (*f)[6];
    for (var i = 0u; i < n; i++) {
        let b = 3u * (first + i);
        let dx = px[b] - (*f)[0];
        let dy = px[b + 1u] - (*f)[1];
        let g = exp(-(qa * dx * dx + 2.0 * qb * dx * dy + qc * dy * dy) / 2.0);
        let v = px[b + 2u];
        sg += g;
        sgg += g * g;
        sd += v;
        sgd += g * v;
    }
    let nf = f32(n);
    let height = (sgd * nf - sg * sd) / (sgg * nf - sg * sg);
    if (height > 0.0 && height < 3.0e38) {
        (*f)[2] = height;
        (*f)[3] = (sd - height * sg) / nf;
    }
    let a = (*f)[2];
    let bg = (*f)[3];
    var out: Normal;
    for (var i = 0u; i < n; i++) {
        let b = 3u * (first + i);
        let dx = px[b] - (*f)[0];
        let dy = px[b + 1u] - (*f)[1];
        let g = exp(-(qa * dx * dx + 2.0 * qb * dx * dy + qc * dy * dy) / 2.0);
        let ag = a * g;
        var j = array<f32, 7>(ag * (qa * dx + qb * dy), ag * (qb * dx + qc * dy), g, 1.0, 0.0, 0.0, 0.0);
        if (k > 4u && circ) {
            j[4] = -0.5 * ag * (dx * dx + dy * dy);
        } else if (k > 4u) {
            j[4] = -0.5 * ag * dx * dx;
            j[5] = -ag * dx * dy;
            j[6] = -0.5 * ag * dy * dy;
        }
        let r = px[b + 2u] - bg - ag;
        for (var u = 0u; u < k; u++) {
            out.jtr[u] += j[u] * r;
            for (var w = 0u; w <= u; w++) {
                out.jtj[u][w] += j[u] * j[w];
            }
        }
        out.cost += r * r;
    }
    for (var u = 0u; u < k; u++) {
        for (var w = 0u; w < u; w++) {
            out.jtj[w][u] = out.jtj[u][w];
        }
    }
    return out;
}

// The diagonal of JᵀJ with A and B eliminated (0 in their slots).
fn projected_diagonal(jtj: array<array<f32, 7>, 7>, k: u32) -> array<f32, 7> {
    let a = jtj[2][2];
    let b = jtj[2][3];
    let c = jtj[3][3];
    let det = a * c - b * b;
    var out = array<f32, 7>(0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
    for (var d = 0u; d < k; d++) {
        if (linear(d)) {
            continue;
        }
        let u = jtj[d][2];
        let v = jtj[d][3];
        var explained = 0.0;
        if (det > 0.0) {
            explained = (c * u * u - 2.0 * b * u * v + a * v * v) / det;
        }
        out[d] = max(jtj[d][d] - explained, 0.0);
    }
    return out;
}

struct Solved {
    ok: bool,
    x: array<f32, 7>,
}

// Gaussian elimination with partial pivoting on the leading k×k block (as core's linalg::solve).
fn solve(a0: array<array<f32, 7>, 7>, b0: array<f32, 7>, k: u32) -> Solved {
    var a = a0;
    var b = b0;
    var out: Solved;
    for (var col = 0u; col < k; col++) {
        var piv = col;
        for (var i = col + 1u; i < k; i++) {
            if (abs(a[i][col]) > abs(a[piv][col])) {
                piv = i;
            }
        }
        if (!(abs(a[piv][col]) >= 1e-30)) {
            return out;
        }
        let row = a[col];
        a[col] = a[piv];
        a[piv] = row;
        let t = b[col];
        b[col] = b[piv];
        b[piv] = t;
        for (var r = col + 1u; r < k; r++) {
            let f = a[r][col] / a[col][col];
            for (var c = col; c < k; c++) {
                a[r][c] -= f * a[col][c];
            }
            b[r] -= f * b[col];
        }
    }
    for (var ri = 0u; ri < k; ri++) {
        let r = k - 1u - ri;
        var s = 0.0;
        for (var c = r + 1u; c < k; c++) {
            s += a[r][c] * out.x[c];
        }
        out.x[r] = (b[r] - s) / a[r][r];
        if (!(abs(out.x[r]) < 3.0e38)) {
            return out;
        }
    }
    out.ok = true;
    return out;
}

fn finite(v: f32) -> bool {
    return abs(v) < 3.0e38;
}

// The fit's answer when it passes the CPU's checks: positive height, widths within 0.2–2r, the
// centre within r/2 of the centre of mass, everything finite.
fn accept(f: array<f32, 7>, com: vec2<f32>, r: f32, job: u32) {
    let a = axes(f);
    var ok = a.ok;
    if (ok) {
        let q = a.q;
        for (var d = 0u; d < 7u; d++) {
            ok = ok && finite(q[d]);
        }
        ok = ok && q[2] > 0.0 && q[4] >= 0.2 && q[4] < 2.0 * r && q[5] >= 0.2 && q[5] < 2.0 * r;
        ok = ok && length(vec2<f32>(q[0], q[1]) - com) < 0.5 * r;
        for (var d = 0u; d < 7u; d++) {
            out[8u * job + d] = q[d];
        }
    }
    out[8u * job + 7u] = select(0.0, 1.0, ok);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let job = id.x + 65535u * 64u * id.y;
    if (job >= p.jobs) {
        return;
    }
    let info = jobs[job];
    let first = info.x;
    let n = info.y;
    let k = info.z;
    let circ = (info.w & 1u) != 0u;
    let has_start = (info.w & 2u) != 0u;
    let sb = 12u * job;
    let com = vec2<f32>(starts[sb], starts[sb + 1u]);
    let r = starts[sb + 2u];
    out[8u * job + 7u] = 0.0;
    if (n < 2u * k + 2u) {
        return;
    }
    var lo = 3.0e38;
    var hi = -3.0e38;
    for (var i = 0u; i < n; i++) {
        let v = px[3u * (first + i) + 2u];
        lo = min(lo, v);
        hi = max(hi, v);
    }
    var q: array<f32, 7>;
    if (has_start) {
        for (var d = 0u; d < 7u; d++) {
            q[d] = starts[sb + 3u + d];
        }
    } else {
        // Width from the second moment above the window minimum (a Gaussian gives 2σ²).
        var sw = 0.0;
        var s2 = 0.0;
        for (var i = 0u; i < n; i++) {
            let b = 3u * (first + i);
            let w = max(px[b + 2u] - lo, 0.0);
            let d = vec2<f32>(px[b], px[b + 1u]) - com;
            sw += w;
            s2 += w * dot(d, d);
        }
        var sigma = r / 2.5;
        if (sw > 0.0) {
            sigma = clamp(sqrt(s2 / (2.0 * sw)), 0.5, r / 1.5);
        }
        q = array<f32, 7>(com.x, com.y, max(hi - lo, 1e-12), lo, sigma, sigma, 0.0);
    }
    if (circ) {
        q[5] = q[4];
        q[6] = 0.0;
    }
    var f = form_of(q);
    var ne = normal_equations(&f, first, n, k, circ);
    var lambda = 1e-3;
    for (var it = 0u; it < p.max_iterations; it++) {
        var improved = false;
        for (var attempt = 0u; attempt < 8u; attempt++) {
            let scale = projected_diagonal(ne.jtj, k);
            var top = 0.0;
            for (var d = 0u; d < 7u; d++) {
                top = max(top, scale[d]);
            }
            let floor = 1e-6 * top;
            var a = ne.jtj;
            for (var d = 0u; d < k; d++) {
                if (!linear(d)) {
                    a[d][d] += lambda * max(max(scale[d], floor), 1e-30);
                }
            }
            let step = solve(a, ne.jtr, k);
            if (!step.ok) {
                lambda *= 10.0;
                continue;
            }
            var predicted = 0.0;
            for (var d = 0u; d < k; d++) {
                predicted += step.x[d] * ne.jtr[d];
            }
            let noise = ne.cost / f32(n - k);
            if (lambda <= 1e-3 && predicted < SETTLED * noise) {
                accept(f, com, r, job);
                return;
            }
            var t = f;
            for (var d = 0u; d < k; d++) {
                t[d] += step.x[d];
            }
            if (circ) {
                t[5] = 0.0;
                t[6] = t[4];
            }
            if (!axes(t).ok) {
                lambda *= 10.0;
                continue;
            }
            let ne1 = normal_equations(&t, first, n, k, circ);
            if (finite(ne1.cost) && ne1.cost < ne.cost) {
                let small = abs(step.x[0]) < 1e-3 && abs(step.x[1]) < 1e-3 && (ne.cost - ne1.cost) <= 1e-6 * max(ne.cost, 1e-30);
                f = t;
                ne = ne1;
                lambda = max(lambda / 10.0, 1e-9);
                improved = true;
                if (small) {
                    accept(f, com, r, job);
                    return;
                }
                break;
            }
            lambda *= 10.0;
        }
        if (!improved) {
            break;
        }
    }
    accept(f, com, r, job);
}
