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

/// The median of an image's border pixels (its background, for an object inside the field).
pub(super) fn border_median(img: ArrayView2<f32>) -> f32 {
    let (h, w) = img.dim();
    let mut v: Vec<f32> = (0..w)
        .flat_map(|x| [img[[0, x]], img[[h - 1, x]]])
        .chain((0..h).flat_map(|y| [img[[y, 0]], img[[y, w - 1]]]))
        .collect();
    v.sort_by(f32::total_cmp);
    v[v.len() / 2]
}

/// `img` sampled at `(x + d[0], y + d\[1\])`, less `bg` (bilinear; zero outside).
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

/// Coarse translation by cross-correlation between neighbouring tilts (`register::shift_of`,
/// from the tilt nearest zero outward, accumulated; exact along the axis, and across it for an
/// object near the axis), then the tilt axis's x offset ([`estimate_axis_offset`]) moved to the
/// centre. With `stretch`, the more tilted of each pair is first stretched across the axis
/// (about where the other shows the anchor tilt's centre) by the ratio of the cosines, as
/// IMOD's `tiltxcorr` does: a thin
/// specimen's features move towards the axis as `cos θ`, which otherwise blurs the correlation
/// of a wide field at high tilt. Returns each projection's total shift and the aligned series.
pub fn align_cross_correlation(
    series: ndarray::ArrayView3<f32>,
    angles_deg: &[f64],
    stretch: bool,
) -> Result<(Vec<[f64; 2]>, Array3<f32>), crate::CoreError> {
    let (n, h, w) = series.dim();
    let frame = |k: usize| series.index_axis(Axis(0), k);
    let k0 = (0..n).min_by(|&i, &j| angles_deg[i].abs().total_cmp(&angles_deg[j].abs())).unwrap_or(0);
    // The correlation's Hann window pulls a shift of an object that fills much of the frame
    // towards zero; re-measuring the residual after applying the shift removes that bias.
    // Frame b stretched by `s` about `pivot` (where frame a shows the anchor frame's centre, on
    // the axis as far as anything is known yet), then moved by d; a shift r measured in
    // stretched coordinates is r/s in b's own.
    let cx = (w as f64 - 1.0) / 2.0;
    let pair = |a: usize, b: usize, pivot: f64| -> Result<[f64; 2], crate::CoreError> {
        let (ca, cb) = (angles_deg[a].to_radians().cos(), angles_deg[b].to_radians().cos());
        let s = if stretch && cb > 0.05 { ca / cb } else { 1.0 };
        let moved = |d: [f64; 2]| {
            crate::math::warp::resample(frame(b), (h, w), 0.0, |[x, y]| [pivot + (x - pivot) / s + d[0], y + d[1]])
        };
        let mut d = [0.0, 0.0];
        for _ in 0..4 {
            let r = crate::register::shift_of(frame(a), moved(d).view())?;
            d = [d[0] + r[0] / s, d[1] + r[1]];
        }
        Ok(d)
    };
    let mut shifts = vec![[0.0f64; 2]; n];
    for k in k0 + 1..n {
        let d = pair(k - 1, k, cx + shifts[k - 1][0])?;
        shifts[k] = [shifts[k - 1][0] + d[0], shifts[k - 1][1] + d[1]];
    }
    for k in (0..k0).rev() {
        let d = pair(k + 1, k, cx + shifts[k + 1][0])?;
        shifts[k] = [shifts[k + 1][0] + d[0], shifts[k + 1][1] + d[1]];
    }
    let mut aligned = Array3::zeros((n, h, w));
    for k in 0..n {
        aligned.index_axis_mut(Axis(0), k).assign(&shifted(frame(k), shifts[k], 0.0));
    }
    let offset = estimate_axis_offset(aligned.view(), angles_deg);
    shifts.iter_mut().for_each(|s| s[0] += offset);
    Ok((shifts, shift_x(aligned.view(), offset)))
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
    let (_, h, w) = series.dim();
    let g = super::project::Geometry::new(w, w, angles_deg);
    let rows: Vec<usize> = (0..9).map(|k| ((h as f64 * (0.2 + 0.075 * k as f64)) as usize).min(h - 1)).collect();
    let centre_of = |y: usize| -> (f64, f64) {
        let sino = series.slice(ndarray::s![.., y, ..]);
        // The shift by a phase ramp inside the filter: interpolation would smooth half-pixel
        // shifts and bias the search towards them.
        let negativity = |offset: f64| {
            let slice = super::fbp::fbp_slice_shifted(&g, sino, super::fbp::Filter::Hann, offset);
            slice.iter().map(|&v| (v.min(0.0) as f64).powi(2)).sum::<f64>()
        };
        let search = |centre: f64, span: f64, step: f64| {
            let k = (span / step).round() as i64;
            let c: Vec<f64> = (-k..=k).map(|i| centre + i as f64 * step).collect();
            let scores: Vec<f64> = c.iter().map(|&o| negativity(o)).collect();
            c[(0..c.len()).min_by(|&i, &j| scores[i].total_cmp(&scores[j])).unwrap_or(k as usize)]
        };
        let coarse = search(0.0, (w / 8) as f64, 1.0);
        let signal = sino.iter().map(|&v| v.abs() as f64).sum::<f64>();
        (search(coarse, 1.0, 0.1), signal)
    };
    let found = crate::math::par::map(rows.len(), |i| centre_of(rows[i]));
    let total: f64 = found.iter().map(|f| f.1).sum();
    if !(total > 0.0) {
        return 0.0;
    }
    found.iter().map(|(d, wt)| d * wt).sum::<f64>() / total
}

/// Refine every projection's shift by re-projection, `rounds` times: reconstruct the current
/// series (FBP, non-negative), project the volume back at each tilt, and register each
/// projection to its re-projection (`register::shift_of`). Each projection is then judged
/// against all the others at once, not only its neighbours. Shifts are relative to the tilt
/// nearest zero, which keeps its place. Returns the total shifts applied and the aligned series.
pub fn refine_by_reprojection(
    series: ndarray::ArrayView3<f32>,
    angles_deg: &[f64],
    rounds: usize,
) -> Result<(Vec<[f64; 2]>, Array3<f32>), crate::CoreError> {
    let (n, h, w) = series.dim();
    let g = super::project::Geometry::new(w, w, angles_deg);
    let k0 = (0..n).min_by(|&i, &j| angles_deg[i].abs().total_cmp(&angles_deg[j].abs())).unwrap_or(0);
    let mut shifts = vec![[0.0f64; 2]; n];
    let mut current = series.to_owned();
    for _ in 0..rounds {
        // Sinogram of each row's reconstruction: `sinos[y][[tilt, x]]`.
        let sinos = crate::math::par::map(h, |y| {
            let slice = super::fbp::fbp_slice(&g, current.slice(ndarray::s![.., y, ..]), super::fbp::Filter::Hann);
            g.forward(slice.mapv(|v| v.max(0.0)).view())
        });
        let measured: Vec<Result<[f64; 2], crate::CoreError>> = crate::math::par::map(n, |k| {
            let reprojection = Array2::from_shape_fn((h, w), |(y, x)| sinos[y][[k, x]]);
            crate::register::shift_of(reprojection.view(), current.index_axis(Axis(0), k))
        });
        for (s, d) in shifts.iter_mut().zip(measured) {
            let d = d?;
            *s = [s[0] + d[0], s[1] + d[1]];
        }
        let anchor = shifts[k0];
        shifts.iter_mut().for_each(|s| *s = [s[0] - anchor[0], s[1] - anchor[1]]);
        for (k, s) in shifts.iter().enumerate() {
            current.index_axis_mut(Axis(0), k).assign(&shifted(series.index_axis(Axis(0), k), *s, 0.0));
        }
    }
    Ok((shifts, current))
}
