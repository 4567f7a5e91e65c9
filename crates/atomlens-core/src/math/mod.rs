//! Numerical building blocks every capability may use: FFT, small linear solves, deformation
//! gradients, phase unwrapping, resampling, 1-D Gaussian mixtures, and the parallel map.
pub mod deformation;
pub mod fft;
pub(crate) mod linalg;
pub mod mixture;
pub(crate) mod par;
pub mod phase_unwrap;
pub mod warp;
