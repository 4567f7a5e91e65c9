//! The built-in demos, with exact truth: what the page opens on, and its particle demos. Each is
//! one or more titled images with a note saying what was drawn.
use serde::{Deserialize, Serialize};

use super::{IlPairParams, NanoparticleParams, Synthetic, il_pair, nanoparticle};
use crate::CoreError;

/// Which demo.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Demo {
    /// A Pt particle along \[110\] with Poisson noise (the page's start).
    Particle,
    /// An L1₀ PtCo-like core under a Pt shell.
    Ordered,
    /// The same particle before and after cycling (an identical-location pair).
    Pair,
}

/// One image of a demo.
pub struct DemoImage {
    /// Its title.
    pub title: String,
    /// What was drawn (shown with the metadata).
    pub note: String,
    /// The image and its truth.
    pub synthetic: Synthetic,
}

impl Demo {
    /// Draw the demo's images.
    pub fn images(self) -> Result<Vec<DemoImage>, CoreError> {
        let image =
            |title: &str, synthetic: Synthetic, note: String| DemoImage { title: title.into(), note, synthetic };
        Ok(match self {
            Demo::Particle => {
                let s = nanoparticle(&NanoparticleParams::default())?;
                let note = format!("{} columns, Poisson noise; ground truth in core::synth", s.columns.len());
                vec![image("Demo: Pt nanoparticle [110] (synthetic)", s, note)]
            }
            Demo::Ordered => {
                let p = NanoparticleParams {
                    size: 384,
                    diameter_nm: 4.0,
                    ordered: true,
                    support_ripple: 0.05,
                    ..Default::default()
                };
                let s = nanoparticle(&p)?;
                let m = s.columns.iter().filter(|c| 2 * c.m_atoms > c.atoms).count();
                let note = format!("{} columns, {m} Co-rich; Poisson noise; truth in core::synth", s.columns.len());
                vec![image("Demo: ordered PtCo particle with a Pt shell (synthetic)", s, note)]
            }
            Demo::Pair => {
                let p = IlPairParams::default();
                let pair = il_pair(&p)?;
                let note = format!(
                    "after = before rotated {}° and shifted ({}, {}) px; {} columns dissolved, {} redeposited",
                    p.rotation_deg,
                    p.shift[0],
                    p.shift[1],
                    pair.lost.len(),
                    pair.new.len()
                );
                vec![
                    image("Before cycling (synthetic identical-location pair)", pair.before, note.clone()),
                    image("After cycling (synthetic identical-location pair)", pair.after, note),
                ]
            }
        })
    }
}
