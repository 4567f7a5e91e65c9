//! # atomlens-wasm
//!
//! The browser engine. [`session`] is the worker's state and every operation on it, in plain
//! Rust with native tests; [`bind`] is the `#[wasm_bindgen]` surface over it (JS values parsed
//! into the core's parameter structs, [`reply::Reply`]s and bytes out, errors as `{kind,
//! message}`). No science here: that is `atomlens-core`.
#![cfg_attr(test, allow(clippy::unwrap_used))]
use wasm_bindgen::prelude::*;

pub mod bind;
pub mod error;
pub mod reply;
pub mod session;

#[cfg(feature = "threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

/// Install the panic hook once: a panic then reaches the console with its message before the
/// worker dies, and the page restarts the worker.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}
