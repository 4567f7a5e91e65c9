//! Bilinear resampling of an image through a coordinate map (registration, rotation).
use ndarray::{Array2, ArrayView2};

/// An `h × w` image whose pixel q is `img` at `source(q)` (bilinear; outside and non-finite
/// pixels read as `fill`).
pub fn resample(
    img: ArrayView2<f32>,
    (h, w): (usize, usize),
    fill: f32,
    source: impl Fn([f64; 2]) -> [f64; 2],
) -> Array2<f32> {
    let (ih, iw) = img.dim();
    let v = |yy: usize, xx: usize| {
        let v = img[[yy, xx]];
        if v.is_finite() { v } else { fill }
    };
    Array2::from_shape_fn((h, w), |(y, x)| {
        let [sx, sy] = source([x as f64, y as f64]);
        let (x0, y0) = (sx.floor(), sy.floor());
        if !(x0 >= 0.0 && y0 >= 0.0 && x0 + 1.0 < iw as f64 && y0 + 1.0 < ih as f64) {
            return fill;
        }
        let (fx, fy) = ((sx - x0) as f32, (sy - y0) as f32);
        let (x0, y0) = (x0 as usize, y0 as usize);
        (1.0 - fy) * ((1.0 - fx) * v(y0, x0) + fx * v(y0, x0 + 1))
            + fy * ((1.0 - fx) * v(y0 + 1, x0) + fx * v(y0 + 1, x0 + 1))
    })
}

/// `img` rotated by `theta` (radians, from +x towards +y) about `centre`, `fill` outside.
pub fn rotate(img: ArrayView2<f32>, theta: f64, centre: [f64; 2], fill: f32) -> Array2<f32> {
    if theta == 0.0 {
        return img.to_owned();
    }
    // Output pixel q shows the source point rotated back by −theta.
    let (s, c) = theta.sin_cos();
    resample(img, img.dim(), fill, |[x, y]| {
        let (dx, dy) = (x - centre[0], y - centre[1]);
        [centre[0] + c * dx + s * dy, centre[1] - s * dx + c * dy]
    })
}
