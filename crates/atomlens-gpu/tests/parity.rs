//! Every GPU kernel against its CPU twin in `atomlens-core`, on random data at odd sizes and at
//! slab boundaries, natively on whatever adapter wgpu finds (Mesa's lavapipe on the test
//! machines, which `cargo xtask test` installs). The tolerances are the crate's own constants.
#![allow(clippy::unwrap_used)]

use atomlens_core::denoise::Method;
use atomlens_core::denoise::patches::Offsets;
use atomlens_core::image::Noise;
use atomlens_core::tomo::fbp::Filter;
use atomlens_core::tomo::project::Geometry;
use atomlens_core::tomo::{Algorithm, Plan, Preparation, TiltSeries};
use atomlens_gpu::{Gpu, GpuError, nlm, tomo};
use ndarray::{Array2, Array3};
use pollster::block_on;
use rand::{Rng, SeedableRng, rngs::SmallRng};

fn gpu() -> Gpu {
    block_on(Gpu::new(atomlens_gpu::default_backends())).expect("a GPU adapter (install mesa-vulkan-drivers)")
}

fn random(h: usize, w: usize, seed: u64) -> Array2<f32> {
    let mut rng = SmallRng::seed_from_u64(seed);
    Array2::from_shape_fn((h, w), |(y, x)| {
        3.0 + ((x as f32) * 0.4).sin() * ((y as f32) * 0.3).cos() + rng.random_range(-0.5..0.5)
    })
}

fn worst(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(p, q)| if p.is_nan() && q.is_nan() { 0.0 } else { (p - q).abs() }).fold(0.0, f32::max)
}

/// The image's range (its magnitude when constant): what NLM's tolerance is relative to.
fn range(a: &Array2<f32>) -> f32 {
    let (lo, hi) = a.iter().filter(|v| v.is_finite()).fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
    if hi > lo { hi - lo } else { hi.abs() }
}

#[test]
fn non_local_means_matches_the_cpu_at_odd_sizes_and_far_offsets() {
    let gpu = gpu();
    let mut far = Offsets::window(2).list;
    for [dy, dx] in [[9, -7], [0, 12], [70, 3], [-3, 20]] {
        far.extend([[dy, dx], [-dy, -dx]]);
    }
    // 1 × 1, a row, a column, odd and tall (more rows than one submit band of the CPU's 64).
    for (h, w, patch, offsets) in [
        (1, 1, 1, Offsets::window(1)),
        (1, 23, 2, Offsets::window(2)),
        (31, 1, 1, Offsets::window(3)),
        (37, 61, 2, Offsets::window(2)),
        (150, 41, 3, far_offsets(&far)),
    ] {
        let mut img = random(h, w, (h * w) as u64);
        if h * w > 10 {
            img[[h / 2, w / 3]] = f32::NAN;
        }
        let cpu = atomlens_core::denoise::nlm::nl_means(img.view(), patch, &offsets, 0.5, 0.4);
        let got = block_on(nlm::nl_means(&gpu, img.view(), patch, &offsets, 0.5, 0.4)).unwrap();
        let d = worst(cpu.as_slice().unwrap(), got.as_slice().unwrap());
        assert!(d <= nlm::TOLERANCE * range(&img), "{h}×{w}, patch {patch}: largest difference {d}");
    }
}

fn far_offsets(list: &[[isize; 2]]) -> Offsets {
    // Offsets::from_list is the core's; rebuild the same set through the public window API.
    let mut o = Offsets::window(0);
    o.list = list.to_vec();
    o.list.sort_unstable();
    o.list.dedup();
    o.margin = o.list.iter().map(|v| v[0].unsigned_abs().max(v[1].unsigned_abs())).max().unwrap_or(0);
    o
}

#[test]
fn the_whole_filter_matches_the_cpu_on_a_lattice_with_poisson_counts() {
    // The method as the CLI and the page run it: stabilised, lattice translations searched.
    let gpu = gpu();
    let mut rng = SmallRng::seed_from_u64(4);
    let img = Array2::from_shape_fn((96, 83), |(y, x)| {
        let v = 20.0 + 60.0 * (((x as f32) * 0.9).sin() * ((y as f32) * 0.9).sin()).powi(2);
        (v + rng.random_range(-1.0f32..1.0) * v.sqrt()).round().max(0.0)
    });
    let method = Method::NonLocalMeans { patch: 2, search: 2, h: None, noise: Noise::Auto, lattice: true };
    let cpu = atomlens_core::denoise::apply(img.view(), &method).unwrap();
    let got = block_on(nlm::apply(&gpu, img.view(), &method)).unwrap();
    let d = worst(cpu.as_slice().unwrap(), got.as_slice().unwrap());
    assert!(d <= nlm::TOLERANCE * range(&img), "largest difference {d} of {}", range(&img));
}

fn sizes() -> Vec<(usize, usize, Vec<f64>)> {
    vec![
        (17, 29, (0..37).map(|k| -72.0 + 4.0 * k as f64).collect()),
        (40, 24, vec![-90.0, -45.0, -44.0, 0.0, 30.0, 60.0, 89.5, 90.0]),
        (5, 3, vec![-10.0, 0.0, 10.0]),
    ]
}

#[test]
fn projector_and_adjoint_match_the_cpu_and_each_other() {
    let gpu = gpu();
    let mut rng = SmallRng::seed_from_u64(9);
    for (nx, nz, angles) in sizes() {
        let g = Geometry::new(nx, nz, &angles);
        let n = angles.len();
        let slices = 3;
        let x: Vec<f32> = (0..slices * nz * nx).map(|_| rng.random_range(-1.0..1.0)).collect();
        let y: Vec<f32> = (0..slices * n * nx).map(|_| rng.random_range(-1.0..1.0)).collect();
        let proj = tomo::Projector::new(&gpu, &g).unwrap();
        let ax = block_on(proj.forward(&x, slices)).unwrap();
        let aty = block_on(proj.adjoint(&y, slices)).unwrap();
        for s in 0..slices {
            let xs = Array2::from_shape_vec((nz, nx), x[s * nz * nx..(s + 1) * nz * nx].to_vec()).unwrap();
            let ys = Array2::from_shape_vec((n, nx), y[s * n * nx..(s + 1) * n * nx].to_vec()).unwrap();
            let (fc, bc) = (g.forward(xs.view()), g.adjoint(ys.view()));
            let (fs, bs) = (&ax[s * n * nx..(s + 1) * n * nx], &aty[s * nz * nx..(s + 1) * nz * nx]);
            let scale = |v: &[f32]| v.iter().fold(0.0f32, |m, q| m.max(q.abs()));
            let (df, db) = (worst(fc.as_slice().unwrap(), fs), worst(bc.as_slice().unwrap(), bs));
            assert!(df as f64 <= tomo::TOLERANCE * scale(fs) as f64, "{nx}×{nz} forward: {df} of {}", scale(fs));
            assert!(db as f64 <= tomo::TOLERANCE * scale(bs) as f64, "{nx}×{nz} adjoint: {db} of {}", scale(bs));
        }
        // ⟨Ax, y⟩ = ⟨x, Aᵀy⟩ for the GPU pair itself, to f32 accuracy.
        let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(p, q)| *p as f64 * *q as f64).sum::<f64>();
        let (lhs, rhs) = (dot(&ax, &y), dot(&x, &aty));
        let norm = (ax.iter().map(|v| (*v as f64).powi(2)).sum::<f64>() * y.len() as f64).sqrt();
        assert!((lhs - rhs).abs() <= 1e-6 * norm, "{nx}×{nz}: ⟨Ax, y⟩ {lhs} vs ⟨x, Aᵀy⟩ {rhs}");
    }
}

/// A tilt series of random blobs: `[tilt][y][x]`.
fn series(nx: usize, ny: usize, nz: usize, angles: &[f64]) -> Array3<f32> {
    let g = Geometry::new(nx, nz, angles);
    let mut rng = SmallRng::seed_from_u64(nx as u64 * 31 + ny as u64);
    let mut out = Array3::zeros((angles.len(), ny, nx));
    for y in 0..ny {
        let (cx, cz) = (rng.random_range(0.3..0.7) * nx as f64, rng.random_range(0.3..0.7) * nz as f64);
        let slice = Array2::from_shape_fn((nz, nx), |(z, x)| {
            let d2 = (x as f64 - cx).powi(2) + (z as f64 - cz).powi(2);
            ((-d2 / 8.0).exp() + 0.3 * (-d2 / 40.0).exp()) as f32
        });
        out.slice_mut(ndarray::s![.., y, ..]).assign(&g.forward(slice.view()));
    }
    out
}

fn reconstruct_both(
    gpu: &Gpu,
    images: &Array3<f32>,
    angles: &[f64],
    nz: usize,
    method: Algorithm,
) -> (Array3<f32>, Array3<f32>) {
    let ts = TiltSeries { images: images.view(), angles_deg: angles };
    let mut cpu = Plan::new(&ts, nz, method, Preparation::default()).unwrap();
    while cpu.done() < images.dim().1 {
        cpu.step(8);
    }
    let mut on_gpu = Plan::new(&ts, nz, method, Preparation::default()).unwrap();
    let mut seen = 0;
    block_on(tomo::reconstruct(gpu, &mut on_gpu, &mut |_| seen += 1)).unwrap();
    assert!(seen > 0, "progress is reported");
    assert_eq!(on_gpu.done(), images.dim().1);
    (cpu.volume().data, on_gpu.volume().data)
}

#[test]
fn sirt_sart_and_fbp_match_the_cpu_across_slab_boundaries() {
    let mut gpu = gpu();
    let angles: Vec<f64> = (0..23).map(|k| -66.0 + 6.0 * k as f64).collect();
    let (nx, ny, nz) = (21, 30, 13);
    let images = series(nx, ny, nz, &angles);
    // A binding just large enough for SART's per-tilt pixel sums: slabs of 13 slices (30 = 13 +
    // 13 + 4), the last one partial.
    gpu.max_binding = (4 * angles.len() * nz * nx) as u64;
    for (method, tol) in [
        (Algorithm::Sirt { iterations: 1, nonnegative: false }, tomo::TOLERANCE),
        (Algorithm::Sirt { iterations: 20, nonnegative: true }, 20.0 * tomo::TOLERANCE),
        (Algorithm::Sart { iterations: 3, nonnegative: true }, 3.0 * angles.len() as f64 * tomo::TOLERANCE),
        (Algorithm::Fbp { filter: Filter::SheppLogan }, tomo::TOLERANCE),
    ] {
        let (cpu, got) = reconstruct_both(&gpu, &images, &angles, nz, method);
        let scale = cpu.iter().fold(0.0f32, |m, v| m.max(v.abs())) as f64;
        let d = worst(cpu.as_slice().unwrap(), got.as_slice().unwrap()) as f64;
        assert!(d <= tol * scale, "{method:?}: largest difference {d:.2e} of {scale:.3}");
    }
}

#[test]
fn buffers_too_large_for_the_device_are_refused_not_truncated() {
    let mut gpu = gpu();
    gpu.max_binding = 64;
    let g = Geometry::new(16, 16, &[-30.0, 0.0, 30.0]);
    let r = tomo::Projector::new(&gpu, &g).err();
    assert!(matches!(r, Some(GpuError::TooLarge { .. })), "{r:?}");
    // An image whose padded copy exceeds a binding, and windows beyond it, likewise.
    let img = random(40, 40, 2);
    let r = block_on(nlm::nl_means(&gpu, img.view(), 2, &Offsets::window(2), 0.5, 0.4)).err();
    assert!(matches!(r, Some(GpuError::TooLarge { .. })), "{r:?}");
    let seeds = [[10.0, 10.0], [20.0, 20.0]];
    let r = block_on(atomlens_gpu::columns::fit_columns(&gpu, img.view(), &seeds, &Default::default())).err();
    assert!(matches!(r, Some(GpuError::TooLarge { .. })), "{r:?}");
    assert!(r.unwrap().to_string().contains("more than the GPU allows"));
}

#[test]
fn self_checks_pass_and_a_lost_device_is_an_error() {
    let gpu = gpu();
    block_on(nlm::self_check(&gpu)).unwrap();
    block_on(tomo::self_check(&gpu)).unwrap();
    gpu.destroy();
    let img = random(9, 9, 1);
    let r = block_on(nlm::nl_means(&gpu, img.view(), 1, &Offsets::window(1), 0.5, 0.4));
    assert!(r.is_err(), "a destroyed device gives an error, not a result: {r:?}");
}

/// A noisy lattice of overlapping elliptical (or round) columns at odd size, some cut by the border, a
/// NaN pixel, and seeds a pixel off (with one on empty background).
fn columns_case(seed: u64, round: bool) -> (Array2<f32>, Vec<[f64; 2]>) {
    let mut rng = SmallRng::seed_from_u64(seed);
    let (h, w) = (71, 97);
    let mut img = Array2::from_shape_fn((h, w), |_| 20.0f32);
    let mut seeds = Vec::new();
    for i in 0..13 {
        for j in 0..10 {
            let (cx, cy) = (1.0 + 7.3 * i as f64 + 0.3 * j as f64, 2.0 + 7.1 * j as f64);
            let (sx, sy, t, a) = (1.5, if round { 1.5 } else { 1.2 }, 0.4, 60.0 + 20.0 * ((i * j) % 3) as f64);
            let (s, c) = (f64::sin(t), f64::cos(t));
            for ((y, x), v) in img.indexed_iter_mut() {
                let (dx, dy) = (x as f64 - cx, y as f64 - cy);
                let (u, q) = (c * dx + s * dy, -s * dx + c * dy);
                *v += (a * (-(u * u / (2.0 * sx * sx) + q * q / (2.0 * sy * sy))).exp()) as f32;
            }
            seeds.push([cx + rng.random_range(-1.0..1.0), cy + rng.random_range(-1.0..1.0)]);
        }
    }
    img.mapv_inplace(|v| (v + rng.random_range(-1.0f32..1.0) * v.sqrt()).max(0.0));
    img[[30, 40]] = f32::NAN;
    seeds.push([95.0, 69.0]);
    (img, seeds)
}

#[test]
fn column_fits_match_the_cpu_for_every_shape_and_pass_across_batch_boundaries() {
    use atomlens_core::columns::fit::{FitParams, FitStatus, Shape, fit_columns};
    use atomlens_gpu::columns;
    let mut gpu = gpu();
    gpu.fits_per_submit = 7;
    // Each shape on columns of its own shape (a circular model on elliptical columns is
    // ill-conditioned: there the two stop a tenth of a standard error apart).
    for (shape, joint) in
        [(Shape::Elliptical, true), (Shape::Circular, false), (Shape::Circular, true), (Shape::Elliptical, false)]
    {
        let (img, seeds) = columns_case(3, shape == Shape::Circular);
        let p = FitParams { shape, joint, ..FitParams::default() };
        let cpu = fit_columns(img.view(), &seeds, &p).unwrap();
        let got = block_on(columns::fit_columns(&gpu, img.view(), &seeds, &p)).unwrap();
        assert_eq!(cpu.len(), got.len());
        let fitted = cpu.iter().filter(|c| c.status == FitStatus::Fitted).count();
        assert!(fitted > 100, "{shape:?}: {fitted} fitted");
        let (mut dpos, mut dwidth, mut loose) = (0.0f64, 0.0f64, 0);
        for (a, b) in cpu.iter().zip(&got) {
            assert_eq!(a.status, b.status, "{shape:?} joint {joint}: column at ({:.1}, {:.1})", a.x, a.y);
            if a.status != FitStatus::Fitted {
                continue;
            }
            dpos = dpos.max((a.x - b.x).abs()).max((a.y - b.y).abs());
            for (s, t, e) in [(a.sigma_x, b.sigma_x, a.sigma_x_err), (a.sigma_y, b.sigma_y, a.sigma_y_err)] {
                let d = (s - t).abs();
                assert!(d <= columns::width_tolerance(s, e), "{shape:?} joint {joint}: width {s} vs {t} (± {e})");
                dwidth = dwidth.max(d / s);
                loose += usize::from(d > columns::WIDTH_TOLERANCE * s);
            }
        }
        eprintln!(
            "{shape:?}, joint {joint}: largest position difference {dpos:.1e} px, width {dwidth:.1e} \
             ({loose} widths beyond 0.1 %, each within a tenth of its standard error)"
        );
        assert!(dpos <= columns::POSITION_TOLERANCE, "{shape:?} joint {joint}: position {dpos}");
    }
    block_on(columns::self_check(&gpu)).unwrap();
}
