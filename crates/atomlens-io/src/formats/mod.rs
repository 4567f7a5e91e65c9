//! The file formats: microscope files through `openreadout-em` ([`em`]: DM3/DM4, SER+EMI, EMD,
//! MRC), TIFF ([`tiff`], also the writer every float export uses), PNG and JPEG ([`raster`]),
//! and the MRC writer ([`mrc`]).
pub mod em;
pub mod mrc;
pub mod raster;
pub mod tiff;
