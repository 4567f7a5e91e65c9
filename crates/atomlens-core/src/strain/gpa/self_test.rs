//! The one-click self-test: GPA on synthetic lattices with known strain (uniform on a lattice
//! turned off the image axes, a pure rotation, the 2 % step, a core–shell particle), each
//! measured against its exact truth. The page runs it; the unit tests assert it passes.
use serde::{Deserialize, Serialize};

use super::{GpaParams, analyse};
use crate::CoreError;
use crate::image::{Region, region_stats};
use crate::math::deformation::Strain;
use crate::synth::{StrainField, StrainedLatticeParams, strained_lattice};

/// One measured quantity against its truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    /// What was measured, in words.
    pub quantity: String,
    /// The exact value.
    pub truth: f64,
    /// What GPA measured (a mean over the stated region).
    pub measured: f64,
    /// Largest |measured − truth| accepted.
    pub tolerance: f64,
}

impl Check {
    /// Within tolerance.
    pub fn passed(&self) -> bool {
        (self.measured - self.truth).abs() <= self.tolerance
    }
}

/// One synthetic case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// Name.
    pub name: String,
    /// Its checks.
    pub checks: Vec<Check>,
}

const TOL: f64 = 2e-4;

fn lattice(size: usize, angle: f64, field: StrainField) -> Result<crate::synth::StrainedLattice, CoreError> {
    strained_lattice(&StrainedLatticeParams { size, spacing: 12.0, angle, sigma: 2.5, noise: 0.02, seed: 11, field })
}

fn component_checks(r: &super::GpaResult, truth: Strain, region: Region, tol: f64) -> Vec<Check> {
    let want = [truth.exx, truth.eyy, truth.exy, truth.rotation];
    r.maps()
        .iter()
        .zip(want)
        .map(|((name, map), t)| Check {
            quantity: format!("{name} (mean over the core)"),
            truth: t,
            measured: region_stats(map.view(), region).0,
            tolerance: tol,
        })
        .collect()
}

/// Run every case.
pub fn self_test() -> Result<Vec<Case>, CoreError> {
    let mut out = Vec::new();
    for (name, truth) in [
        (
            "uniform strain, lattice turned 17°",
            Strain { exx: 0.01, eyy: -0.005, exy: 0.003, rotation: 0.5f64.to_radians() },
        ),
        ("pure rotation of 1°", Strain { rotation: 1f64.to_radians(), ..Default::default() }),
    ] {
        let l = lattice(256, 17f64.to_radians(), StrainField::Uniform { strain: truth })?;
        let r =
            analyse(l.image.data.view(), &GpaParams { g: Some(l.reference_g), refine: false, ..Default::default() })?;
        out.push(Case { name: name.into(), checks: component_checks(&r, truth, r.core(), TOL) });
    }

    let l = lattice(384, 0.2, StrainField::StepX { exx: 0.02, x0: 192.0, width: 4.0 })?;
    let reference = Region { x0: 64, y0: 64, x1: 140, y1: 320 };
    let r = analyse(l.image.data.view(), &GpaParams { reference: Some(reference), ..Default::default() })?;
    let band = |x0, x1| region_stats(r.exx.view(), Region { x0, y0: 64, x1, y1: 320 }).0;
    out.push(Case {
        name: "2 % strain step (automatic g, reference on the left)".into(),
        checks: vec![
            Check { quantity: "exx left of the step".into(), truth: 0.0, measured: band(64, 140), tolerance: TOL },
            Check { quantity: "exx right of the step".into(), truth: 0.02, measured: band(250, 320), tolerance: TOL },
            Check {
                quantity: "eyy (mean over the core)".into(),
                truth: 0.0,
                measured: region_stats(r.eyy.view(), r.core()).0,
                tolerance: TOL,
            },
        ],
    });

    let (core, compression) = (60.0, 0.02);
    let l = lattice(384, 0.1, StrainField::CoreShell { radius: 150.0, core, compression })?;
    let centre = Region { x0: 171, y0: 171, x1: 212, y1: 212 };
    let r = analyse(l.image.data.view(), &GpaParams { reference: Some(centre), ..Default::default() })?;
    let shell = Region { x0: 291, y0: 186, x1: 306, y1: 197 };
    out.push(Case {
        name: "core–shell particle, shell compressed 2 %".into(),
        checks: vec![
            Check {
                quantity: "exx in the core".into(),
                truth: 0.0,
                measured: region_stats(r.exx.view(), centre).0,
                tolerance: TOL,
            },
            // The shell is 90 px wide against a 15 px resolution; its strain varies, so the
            // tolerance is looser than for the uniform cases.
            Check {
                quantity: "exx (radial) in the shell at +x".into(),
                truth: -compression,
                measured: region_stats(r.exx.view(), shell).0,
                tolerance: 2e-3,
            },
            Check {
                quantity: "eyy (tangential) in the shell at +x".into(),
                truth: -compression * (1.0 - core / 107.0),
                measured: region_stats(r.eyy.view(), shell).0,
                tolerance: 2e-3,
            },
        ],
    });
    Ok(out)
}
