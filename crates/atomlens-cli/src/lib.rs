//! The command line's pieces: each command's options (parsed by clap in `main`, read from JSON
//! by name in the Python package) and what it runs. `main` is the `atomlens` binary.
#![cfg_attr(test, allow(clippy::unwrap_used))]
pub mod args;
pub mod bench;
pub mod cmd;
pub mod files;
pub mod gpu;
