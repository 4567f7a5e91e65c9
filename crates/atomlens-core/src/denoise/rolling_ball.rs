//! Rolling-ball background (Sternberg 1983) in its flat limit: the grey opening of the image by a
//! disk of the given radius (the floor the columns stand on, reached wherever the disk fits
//! between them), smoothed by a Gaussian of a quarter radius so the disk's facets do not print.
//! STEM intensities have arbitrary units, so a curved ball's height in intensity would have no
//! meaning; the flat disk depends on the radius alone.
//!
//! Erosion and dilation by a disk: the disk is a stack of rows of half-width `⌊√(r² − dy²)⌋`;
//! each distinct width is a 1D running min (max) along rows by a monotonic queue, O(pixels), and
//! each output pixel takes the min (max) over the disk's `2r + 1` rows.
use crate::image::filter::running;

use ndarray::{Array2, ArrayView2};

use crate::image::filter::gaussian_blur;
use crate::math::par::map;

/// The background under `img` for a disk of `radius` px (non-finite pixels are ignored).
pub fn rolling_ball_background(img: ArrayView2<f32>, radius: usize) -> Array2<f32> {
    let eroded = disk_filter(img, radius, f32::min, f32::INFINITY);
    let opened = disk_filter(eroded.view(), radius, f32::max, f32::NEG_INFINITY);
    gaussian_blur(opened.view(), (radius as f64 / 4.0).max(1.0))
}

/// `op`-reduction (min or max) of `img` over a disk of `radius` around every pixel; `none` is the
/// reduction's identity (what non-finite pixels count as).
fn disk_filter(img: ArrayView2<f32>, radius: usize, op: fn(f32, f32) -> f32, none: f32) -> Array2<f32> {
    let (h, w) = img.dim();
    let r = radius as isize;
    let widths: Vec<usize> = (0..=radius).map(|dy| ((radius * radius - dy * dy) as f64).sqrt() as usize).collect();
    let mut distinct = widths.clone();
    distinct.sort_unstable();
    distinct.dedup();
    // rows[k][y] = running reduction of row y over ±distinct[k].
    let rows: Vec<Array2<f32>> = distinct
        .iter()
        .map(|&half| {
            let lines =
                map(h, |y| running(img.row(y).iter().map(|&v| if v.is_finite() { v } else { none }), w, half, op));
            Array2::from_shape_vec((h, w), lines.concat()).expect("h rows of w")
        })
        .collect();
    let which: Vec<usize> = widths.iter().map(|wd| distinct.binary_search(wd).expect("listed")).collect();
    let out = map(h, |y| {
        let mut line = vec![none; w];
        for dy in -r..=r {
            let yy = y as isize + dy;
            if yy < 0 || yy >= h as isize {
                continue;
            }
            let src = rows[which[dy.unsigned_abs()]].row(yy as usize);
            line.iter_mut().zip(src.iter()).for_each(|(a, &b)| *a = op(*a, b));
        }
        line
    });
    let out = Array2::from_shape_vec((h, w), out.concat()).expect("h rows of w");
    // A pixel whose disk held no finite value stays without one.
    out.mapv(|v| if v == none { f32::NAN } else { v })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The obvious disk reduction, pixel by pixel.
    fn slow(img: &Array2<f32>, radius: usize, op: fn(f32, f32) -> f32, none: f32) -> Array2<f32> {
        let (h, w) = img.dim();
        let r = radius as isize;
        Array2::from_shape_fn((h, w), |(y, x)| {
            let mut acc = none;
            for dy in -r..=r {
                for dx in -r..=r {
                    let (yy, xx) = (y as isize + dy, x as isize + dx);
                    let inside = (dy * dy + dx * dx) as usize <= radius * radius;
                    if inside && yy >= 0 && xx >= 0 && yy < h as isize && xx < w as isize {
                        acc = op(acc, img[[yy as usize, xx as usize]]);
                    }
                }
            }
            acc
        })
    }

    #[test]
    fn disk_filters_match_the_direct_reduction() {
        let img = Array2::from_shape_fn((23, 31), |(y, x)| ((x * 37 + y * 91) % 29) as f32 - 0.5 * y as f32);
        for radius in [1, 3, 6] {
            assert_eq!(
                disk_filter(img.view(), radius, f32::min, f32::INFINITY),
                slow(&img, radius, f32::min, f32::INFINITY)
            );
            assert_eq!(
                disk_filter(img.view(), radius, f32::max, f32::NEG_INFINITY),
                slow(&img, radius, f32::max, f32::NEG_INFINITY)
            );
        }
    }

    #[test]
    fn the_floor_under_columns_on_a_sloped_support_is_found() {
        use crate::synth::{TrueColumn, add_gaussians};
        // Columns 12 px apart on a support that ramps from 10 to 40 across the image.
        let mut img = Array2::from_shape_fn((128, 128), |(_, x)| 10.0 + 30.0 * x as f32 / 127.0);
        let cols: Vec<TrueColumn> = (1..10)
            .flat_map(|i| {
                (1..10).map(move |j| TrueColumn {
                    x: 12.0 * i as f64 + 4.0,
                    y: 12.0 * j as f64 + 4.0,
                    sigma: 1.5,
                    peak: 50.0,
                    atoms: 1,
                    m_atoms: 0,
                })
            })
            .collect();
        add_gaussians(&mut img, &cols);
        let bg = rolling_ball_background(img.view(), 10);
        // Between columns the background is the ramp; under every column too (within 1.5 counts).
        for y in 20..108 {
            for x in 20..108 {
                let ramp = 10.0 + 30.0 * x as f32 / 127.0;
                assert!((bg[[y, x]] - ramp).abs() < 1.5, "({x}, {y}): {} vs {ramp}", bg[[y, x]]);
            }
        }
    }
}
