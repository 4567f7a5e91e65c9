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
//!   display ([`image::spectrum`]).
//! - Rotation angles: radians, positive from +x towards +y; with y running down the rows that is
//!   clockwise on screen (kemstem's `oxy` has the opposite sign).
//! - Per-item failures are data; `Err` ([`CoreError`]) is for unusable input.
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod columns;
pub mod denoise;
pub mod error;
pub mod image;
pub mod lattice;
pub mod learned;
pub mod math;
pub mod metrics;
pub mod particles;
pub mod recipe;
pub mod register;
pub mod strain;
pub mod synth;
pub mod tomo;

pub use error::CoreError;
pub use image::{Calibration, Image, Stack};
pub use recipe::Recipe;
