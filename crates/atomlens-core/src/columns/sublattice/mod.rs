//! Splitting columns into sublattices: by integrated intensity (a 1-D Gaussian mixture on the
//! column volumes, see [`crate::math::mixture`]) or by site in the unit cell ([`position`]).
use serde::{Deserialize, Serialize};

use crate::columns::fit::{AtomColumn, FitStatus};
use crate::lattice::Lattice;
use crate::math::mixture::{Mixture, best_mixture};

pub mod position;

/// How columns are split into sublattices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sublattices {
    /// By integrated intensity (Gaussian mixture, see [`crate::math::mixture`]).
    #[default]
    Intensity,
    /// By site in the unit cell of the spectrum's lattice (see [`crate::columns::sublattice::position`]); by intensity
    /// when there is no lattice.
    Position,
}

impl Sublattices {
    /// Every way, in the order a form lists them.
    pub const ALL: [Sublattices; 2] = [Sublattices::Intensity, Sublattices::Position];
}

/// Label every column's sublattice as `how` asks; by position needs a `lattice` and falls back
/// to intensity without one.
pub fn assign(columns: &mut [AtomColumn], how: Sublattices, lattice: Option<&Lattice>) {
    match (how, lattice) {
        (Sublattices::Position, Some(l)) => {
            position::assign_sites(columns, l);
        }
        _ => {
            assign_sublattices(columns);
        }
    }
}

/// Sublattice of every fitted column from its integrated intensity (`volume`): the best of 1–3
/// Gaussian components by BIC, 0 the dimmest. Unfitted columns keep 0.
pub fn assign_sublattices(columns: &mut [AtomColumn]) -> Option<Mixture> {
    let values: Vec<f64> = columns.iter().filter(|c| c.status == FitStatus::Fitted).map(|c| c.volume).collect();
    let m = best_mixture(&values, 3)?;
    for c in columns.iter_mut().filter(|c| c.status == FitStatus::Fitted) {
        c.sublattice = m.classify(c.volume) as u32;
    }
    Some(m)
}
