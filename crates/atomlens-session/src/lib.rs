//! # atomlens-session
//!
//! The analysis session in plain Rust, tested natively: [`session::Session`] holds the open
//! dataset, the image shown and everything measured on it, and every operation the page can
//! run; [`reply::Reply`] is what an operation returns (named arrays and JSON);
//! [`error::Error`] is `{kind, message}`. The page's worker drives it through `atomlens-wasm`;
//! the CLI's `replay` and `report` drive the same code, so a saved session gives the same numbers.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod error;
pub mod reply;
pub mod session;
