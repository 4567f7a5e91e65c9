//! The crystal lattice an image shows: what local spectra show ([`local`]: zone axis, fringes or
//! none, spacing, vectors, coverage), the nearest-neighbour spacing from the autocorrelation
//! ([`spacing`]), its vectors from the power spectrum's Bragg peaks ([`vectors`]), and
//! neighbour queries over point sets ([`neighbours`]).
pub mod local;
pub mod neighbours;
pub mod spacing;
pub mod vectors;

pub use local::{LatticeAnalysis, LatticeKind, analyse};
pub use spacing::estimate_spacing;
pub use vectors::{Lattice, bragg_peaks, lattice_vectors, refine_from_points};
