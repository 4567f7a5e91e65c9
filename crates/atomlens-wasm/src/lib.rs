//! # atomlens-wasm
//!
//! The browser engine: [`bind`] is the `#[wasm_bindgen]` surface over `atomlens-session`'s
//! `Session` (JS values parsed into the core's parameter structs, `Reply`s and bytes out, errors
//! as JS `Error`s carrying `kind`). No science and no state of its own here.
#![cfg_attr(test, allow(clippy::unwrap_used))]
use wasm_bindgen::prelude::*;

pub mod bind;

#[cfg(feature = "threads")]
pub use wasm_bindgen_rayon::init_thread_pool;

/// Install the panic hook once: a panic then reaches the console with its message before the
/// worker dies, and the page restarts the worker.
#[wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}
