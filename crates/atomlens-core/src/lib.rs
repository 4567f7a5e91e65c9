//! # atomlens-core
//!
//! The science of atomlens, as plain functions over `ndarray` views. No I/O, no wasm-bindgen,
//! no GPU: the readers live in `atomlens-io`, the bindings in `atomlens-wasm`.
//!
//! ## Conventions (stated once, tested in `tests`)
//!
//! - Coordinates: `x` = column, `y` = row, 0-based, pixel centres at integers, `array[[y, x]]`
//!   (Atomap and numpy use the same).
//! - Pixels are `f32`; fitted parameters, sums and statistics are `f64`.
//! - Calibration travels with the image ([`Calibration`]): lengths are normalised to nanometres;
//!   an uncalibrated image has unit `px` and pixel size 1.
//! - FFT: unnormalised forward, `1/N` inverse, zero frequency at index 0; `fftshift` only for
//!   display ([`spectrum`]).
//! - Rotation angles: radians, counter-clockwise from +x.
//! - Per-item failures are data; `Err` ([`CoreError`]) is for unusable input.
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod bm3d;
pub mod column_strain;
pub mod columns;
pub mod compare;
pub mod counting;
pub mod defects;
pub mod deformation;
pub mod denoise;
pub mod error;
pub mod fft;
pub mod filter;
pub mod fit;
pub mod gpa;
pub mod image;
pub mod lattice;
mod linalg;
pub mod metrics;
pub mod morphology;
pub mod neighbours;
pub mod nlm;
pub mod ordering;
mod par;
pub mod particle_analysis;
pub mod particles;
pub mod peaks;
pub mod register;
pub mod render;
pub mod rolling_ball;
pub mod similar;
pub mod sites;
pub mod spectrum;
pub mod stats;
pub mod sublattice;
pub mod synth;
pub mod tomo;
pub mod unwrap;
pub mod warp;

pub use error::CoreError;
pub use image::{Calibration, Image, Stack};
