//! Tilt-series alignment by the centre of mass (the common choice for an object that stays in the
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
