// Non-local means, direct form: the GPU twin of `atomlens_core::denoise::nlm::nl_means` (which
// computes the same sums in Darbon's fast form). One invocation per pixel; every offset and the
// whole patch distance inside it. The image comes mirrored into a padded copy (margin `m`), so
// reads need no bounds checks. Rows `y0 .. y0 + rows` per dispatch keep each submit short.
struct Params {
    w: u32,
    h: u32,
    pw: u32,
    m: u32,
    half: u32,
    n_offsets: u32,
    y0: u32,
    rows: u32,
    inv_area: f32,
    two_s2: f32,
    inv_h2: f32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> padded: array<f32>;
// (dy, dx) of every offset searched, 0 included.
@group(0) @binding(2) var<storage, read> offsets: array<vec2<i32>>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

fn at(y: i32, x: i32) -> f32 {
    return padded[u32(y + i32(p.m)) * p.pw + u32(x + i32(p.m))];
}

@compute @workgroup_size(16, 16)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
    let row = id.y;
    if (id.x >= p.w || row >= p.rows || p.y0 + row >= p.h) {
        return;
    }
    let x = i32(id.x);
    let y = i32(p.y0 + row);
    let r = i32(p.half);
    var num = 0.0;
    var den = 0.0;
    for (var k = 0u; k < p.n_offsets; k++) {
        let o = offsets[k];
        var d2 = 0.0;
        for (var py = -r; py <= r; py++) {
            for (var px = -r; px <= r; px++) {
                let d = at(y + py, x + px) - at(y + o.x + py, x + o.y + px);
                d2 += d * d;
            }
        }
        let wgt = exp(-max(d2 * p.inv_area - p.two_s2, 0.0) * p.inv_h2);
        num += wgt * at(y + o.x, x + o.y);
        den += wgt;
    }
    // The offset 0 is always searched and weighs 1, so `den ≥ 1`.
    out[u32(y) * p.w + id.x] = num / den;
}
