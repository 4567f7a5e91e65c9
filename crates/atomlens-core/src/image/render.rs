//! Display rendering: an image to RGBA bytes through contrast limits and a colormap. This is the
//! only drawing the core does; plots and overlays belong to the front-end.
use ndarray::ArrayView2;
use serde::{Deserialize, Serialize};

#[cfg(feature = "parallel")]
use rayon::prelude::*;

/// Colormaps offered in the viewer (perceptually uniform ones from `colorous`, plus grey).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Colormap {
    /// Linear grey.
    #[default]
    Gray,
    /// Black–red–yellow–white.
    Inferno,
    /// Blue–green–yellow.
    Viridis,
    /// Black–purple–orange–white.
    Magma,
    /// Diverging blue–white–red, for signed maps.
    Rdbu,
}

impl Colormap {
    /// All colormaps, for menus.
    pub const ALL: [Colormap; 5] =
        [Colormap::Gray, Colormap::Inferno, Colormap::Viridis, Colormap::Magma, Colormap::Rdbu];

    /// A 256-entry RGB lookup table.
    pub fn lut(self) -> [[u8; 3]; 256] {
        let mut lut = [[0u8; 3]; 256];
        for (i, e) in lut.iter_mut().enumerate() {
            let t = i as f64 / 255.0;
            let c = match self {
                Colormap::Gray => colorous::Color { r: i as u8, g: i as u8, b: i as u8 },
                Colormap::Inferno => colorous::INFERNO.eval_continuous(t),
                Colormap::Viridis => colorous::VIRIDIS.eval_continuous(t),
                Colormap::Magma => colorous::MAGMA.eval_continuous(t),
                // Red for negative reads naturally as "compressive"; flip so low = blue.
                Colormap::Rdbu => colorous::RED_BLUE.eval_continuous(1.0 - t),
            };
            *e = [c.r, c.g, c.b];
        }
        lut
    }
}

/// RGBA bytes (row-major, 4 per pixel) of `img` mapped linearly from `[lo, hi]` to the colormap.
/// Non-finite pixels are drawn in a signal colour (magenta) so they are never mistaken for data.
pub fn to_rgba(img: ArrayView2<f32>, lo: f32, hi: f32, cmap: Colormap) -> Vec<u8> {
    let lut = cmap.lut();
    let span = if hi > lo { hi - lo } else { 1.0 };
    let pixel = |v: f32| -> [u8; 4] {
        if !v.is_finite() {
            return [255, 0, 255, 255];
        }
        let i = (((v - lo) / span) * 255.0).round().clamp(0.0, 255.0) as usize;
        let [r, g, b] = lut[i];
        [r, g, b, 255]
    };
    let w = img.ncols();
    let mut out = vec![0u8; img.len() * 4];
    let fill_row = |(y, row): (usize, &mut [u8])| {
        for x in 0..w {
            row[4 * x..4 * x + 4].copy_from_slice(&pixel(img[[y, x]]));
        }
    };
    if w == 0 {
        return out;
    }
    #[cfg(feature = "parallel")]
    out.par_chunks_mut(4 * w).enumerate().for_each(fill_row);
    #[cfg(not(feature = "parallel"))]
    out.chunks_mut(4 * w).enumerate().for_each(fill_row);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::Array2;

    #[test]
    fn gray_maps_limits_to_black_and_white() {
        let a = Array2::from_shape_vec((1, 4), vec![0.0, 5.0, 10.0, f32::NAN]).unwrap();
        let rgba = to_rgba(a.view(), 0.0, 10.0, Colormap::Gray);
        assert_eq!(&rgba[0..4], &[0, 0, 0, 255]);
        assert_eq!(&rgba[4..8], &[128, 128, 128, 255]);
        assert_eq!(&rgba[8..12], &[255, 255, 255, 255]);
        assert_eq!(&rgba[12..16], &[255, 0, 255, 255]);
    }

    #[test]
    fn luts_run_dark_to_bright() {
        for c in [Colormap::Gray, Colormap::Inferno, Colormap::Viridis, Colormap::Magma] {
            let lut = c.lut();
            let lum = |p: [u8; 3]| 0.299 * p[0] as f64 + 0.587 * p[1] as f64 + 0.114 * p[2] as f64;
            assert!(lum(lut[0]) < lum(lut[128]) && lum(lut[128]) < lum(lut[255]), "{c:?}");
        }
    }
}
