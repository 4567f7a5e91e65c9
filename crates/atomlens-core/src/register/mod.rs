//! Registration of image series: rigid drift correction ([`rigid`]) and, after it, scan
//! distortions per frame ([`nonrigid`]); both average the aligned frames.
pub mod nonrigid;
pub mod rigid;

pub use rigid::{Registered, register_series, shift_of};
