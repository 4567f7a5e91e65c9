//! One module per command; `main` parses the arguments and dispatches here.
pub mod batch;
pub mod columns;
pub mod compare;
pub mod convert;
pub mod count;
pub mod denoise;
pub mod gpa;
pub mod info;
pub mod particles;
pub mod reconstruct;
pub mod register;
pub mod replay;
pub mod report;
pub mod synth;
pub mod train;
