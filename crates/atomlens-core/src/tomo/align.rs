//! Tilt-series alignment: by the centre of mass, or by the tilt axis's offset.
//!
//! Centre of mass (the common choice for an object that stays in the
//! field of view, e.g. a supported nanoparticle imaged in HAADF, where intensity is projected
//! mass): a single-axis tilt about y keeps each projection's y centre of mass fixed and moves
//! its x centre of mass as `x_c cos θ + z_c sin θ`; shifting every projection so both sit at the
//! image centre puts the object's centre of mass on the tilt axis, at the volume's centre.
//! The background (the median of each projection's border) is removed first, so an offset does
//! not pull the centres towards the middle.
use ndarray::{Array2, Array3, ArrayView2, Axis};

/// Shifts `(dx, dy)` (px) that move each projection's centre of mass to the image centre, and
/// the aligned series (bilinear, zero outside).
pub fn align_center_of_mass(series: ndarray::ArrayView3<f32>) -> (Vec<[f64; 2]>, Array3<f32>) {
    let (n, h, w) = series.dim();
    let mut out = Array3::zeros((n, h, w));
    let mut shifts = Vec::with_capacity(n);
    for (k, img) in series.axis_iter(Axis(0)).enumerate() {
        let bg = border_median(img);
        let (mut m, mut mx, mut my) = (0.0f64, 0.0f64, 0.0f64);
        for ((y, x), &v) in img.indexed_iter() {
            let v = (v - bg).max(0.0) as f64;
            m += v;
            mx += v * x as f64;
            my += v * y as f64;
        }
        let d = if m > 0.0 { [mx / m - (w as f64 - 1.0) / 2.0, my / m - (h as f64 - 1.0) / 2.0] } else { [0.0; 2] };
        shifts.push(d);
        out.index_axis_mut(Axis(0), k).assign(&shifted(img, d, bg));
    }
    (shifts, out)
}

fn border_median(img: ArrayView2<f32>) -> f32 {
    let (h, w) = img.dim();
    let mut v: Vec<f32> = (0..w)
        .flat_map(|x| [img[[0, x]], img[[h - 1, x]]])
        .chain((0..h).flat_map(|y| [img[[y, 0]], img[[y, w - 1]]]))
        .collect();
    v.sort_by(f32::total_cmp);
    v[v.len() / 2]
}

/// `img` sampled at `(x + d[0], y + d[1])`, less `bg` (bilinear; zero outside).
fn shifted(img: ArrayView2<f32>, d: [f64; 2], bg: f32) -> Array2<f32> {
    let (h, w) = img.dim();
    Array2::from_shape_fn((h, w), |(y, x)| {
        let (sx, sy) = (x as f64 + d[0], y as f64 + d[1]);
        let (x0, y0) = (sx.floor(), sy.floor());
        let (tx, ty) = ((sx - x0) as f32, (sy - y0) as f32);
        let at = |yy: f64, xx: f64| {
            if yy < 0.0 || xx < 0.0 || yy >= h as f64 || xx >= w as f64 {
                0.0
            } else {
                img[[yy as usize, xx as usize]] - bg
            }
        };
        let top = at(y0, x0) * (1.0 - tx) + at(y0, x0 + 1.0) * tx;
        let bottom = at(y0 + 1.0, x0) * (1.0 - tx) + at(y0 + 1.0, x0 + 1.0) * tx;
        top * (1.0 - ty) + bottom * ty
    })
}

/// `series` shifted along x by `offset` px (output x reads input x + offset; linear, zero
/// outside): moves a tilt axis at `cx + offset` to the image centre.
pub fn shift_x(series: ndarray::ArrayView3<f32>, offset: f64) -> Array3<f32> {
    let (n, h, w) = series.dim();
    let mut out = Array3::zeros((n, h, w));
    for (k, img) in series.axis_iter(Axis(0)).enumerate() {
        out.index_axis_mut(Axis(0), k).assign(&shifted(img, [offset, 0.0], 0.0));
    }
    out
}

/// The tilt axis's offset from the image centre along x (px), for an axis along y: for nine rows
/// spread over the middle 60 % of the images, the offset whose FBP slice has the least negative
/// density (a wrong centre smears every feature into arcs with negative flanks), searched over
/// ±w/8 px and refined to 0.1 px; the rows' offsets averaged, weighted by their signal.
pub fn estimate_axis_offset(series: ndarray::ArrayView3<f32>, angles_deg: &[f64]) -> f64 {
    let (n, h, w) = series.dim();
    let g = super::project::Geometry::new(w, w, angles_deg);
    let rows: Vec<usize> = (0..9).map(|k| ((h as f64 * (0.2 + 0.075 * k as f64)) as usize).min(h - 1)).collect();
    let centre_of = |y: usize| -> (f64, f64) {
        let sino_at = |offset: f64| {
            Array2::from_shape_fn((n, w), |(k, x)| {
                let sx = x as f64 + offset;
                let (x0, t) = (sx.floor(), (sx - sx.floor()) as f32);
                let at = |xx: f64| if xx < 0.0 || xx >= w as f64 { 0.0 } else { series[[k, y, xx as usize]] };
                at(x0) * (1.0 - t) + at(x0 + 1.0) * t
            })
        };
        let negativity = |offset: f64| {
            let slice = super::fbp::fbp_slice(&g, sino_at(offset).view(), super::fbp::Filter::Hann);
            slice.iter().map(|&v| (v.min(0.0) as f64).powi(2)).sum::<f64>()
        };
        let search = |centre: f64, span: f64, step: f64| {
            let k = (span / step).round() as i64;
            let c: Vec<f64> = (-k..=k).map(|i| centre + i as f64 * step).collect();
            let scores: Vec<f64> = c.iter().map(|&o| negativity(o)).collect();
            c[(0..c.len()).min_by(|&i, &j| scores[i].total_cmp(&scores[j])).unwrap_or(k as usize)]
        };
        let coarse = search(0.0, (w / 8) as f64, 1.0);
        let signal = series.slice(ndarray::s![.., y, ..]).iter().map(|&v| v.abs() as f64).sum::<f64>();
        (search(coarse, 1.0, 0.1), signal)
    };
    let found = crate::par::map(rows.len(), |i| centre_of(rows[i]));
    let total: f64 = found.iter().map(|f| f.1).sum();
    if !(total > 0.0) {
        return 0.0;
    }
    found.iter().map(|(d, wt)| d * wt).sum::<f64>() / total
}
