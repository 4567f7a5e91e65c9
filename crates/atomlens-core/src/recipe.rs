//! The whole parameter set of an analysis, in one place: clean-up, columns, particles, counting
//! and strain. `atomlens batch` reads it, the page's batch sends it, every command writes the one
//! it ran beside its results (`recipe.json`), so a result can be replayed. Missing keys take
//! their defaults; unknown keys are refused (a typo must not silently run the defaults).
use serde::{Deserialize, Serialize};

use crate::denoise::{self, Method};
use crate::particles::chain::{Analysis, AnalysisParams, analyse};
use crate::strain::gpa::{self, GpaParams, GpaResult};
use crate::{CoreError, Image};

/// Everything an analysis of one image does, and with which parameters.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Recipe {
    /// Clean-up before the analysis (`None`: the raw image).
    pub denoise: Option<Method>,
    /// Columns, particles and counting.
    pub analysis: AnalysisParams,
    /// Geometric phase analysis of the (cleaned) image (`None`: no strain maps).
    pub strain: Option<GpaParams>,
}

/// What [`Recipe::run`] produced.
pub struct Outcome {
    /// The image analysed (after the clean-up).
    pub image: Image,
    /// The particle chain's results.
    pub analysis: Analysis,
    /// Strain maps, when the recipe asks for them.
    pub strain: Option<GpaResult>,
}

impl Recipe {
    /// Read a recipe from JSON, with a message that names the offending key.
    pub fn from_json(text: &str) -> Result<Recipe, CoreError> {
        serde_json::from_str(text).map_err(|e| CoreError::InvalidParameter { name: "recipe", reason: e.to_string() })
    }

    /// The recipe as pretty JSON (every key, defaults included, so it documents itself).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Run the recipe on `img`: clean-up, the particle chain, then strain.
    pub fn run(&self, img: &Image) -> Result<Outcome, CoreError> {
        let mut image = img.clone();
        if let Some(m) = &self.denoise {
            image.data = denoise::apply(img.view(), m)?;
        }
        let analysis = analyse(image.view(), &self.analysis)?;
        let strain = self.strain.as_ref().map(|p| gpa::analyse(image.view(), p)).transpose()?;
        Ok(Outcome { image, analysis, strain })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{NanoparticleParams, nanoparticle};

    #[test]
    fn a_recipe_round_trips_and_refuses_unknown_keys() {
        let r = Recipe { denoise: Some(Method::Gaussian { sigma: 1.5 }), ..Default::default() };
        assert_eq!(Recipe::from_json(&r.to_json()).unwrap(), r);
        assert_eq!(Recipe::from_json("{}").unwrap(), Recipe::default());
        let e = Recipe::from_json(r#"{"denoize": {"method": "gaussian", "sigma": 1}}"#).unwrap_err().to_string();
        assert!(e.contains("denoize"), "{e}");
        let e = Recipe::from_json(r#"{"denoise": {"method": "blur"}}"#).unwrap_err().to_string();
        assert!(e.contains("blur"), "{e}");
    }

    /// The demo particle through a recipe with a clean-up: the same particle count as the chain
    /// on the cleaned image by hand.
    #[test]
    fn run_is_the_clean_up_then_the_chain() {
        let s = nanoparticle(&NanoparticleParams::default()).unwrap();
        let r = Recipe { denoise: Some(Method::Gaussian { sigma: 0.7 }), ..Default::default() };
        let out = r.run(&s.image).unwrap();
        let cleaned = denoise::apply(s.image.view(), &Method::Gaussian { sigma: 0.7 }).unwrap();
        let by_hand = analyse(cleaned.view(), &AnalysisParams::default()).unwrap();
        assert_eq!(out.analysis.totals(), by_hand.totals());
        assert!(out.strain.is_none());
    }
}
