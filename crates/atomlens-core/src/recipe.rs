//! The whole parameter set of an analysis, in one place: clean-up, columns, particles, counting
//! and strain. `atomlens batch` reads it, the page's batch sends it, every command writes the one
//! it ran beside its results (`recipe.json`), so a result can be replayed. Missing keys take
//! their defaults; unknown keys are refused (a typo must not silently run the defaults).
use ndarray::{Array2, ArrayView2};
use serde::{Deserialize, Serialize};

use crate::columns::fit::AtomColumn;
use crate::denoise::{self, Method};
use crate::particles::chain::{Analysis, AnalysisParams};
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
        self.run_with(img, &OnCpu)
    }

    /// [`Self::run`] with the clean-up and the column fits offered to `off` first.
    pub fn run_with(&self, img: &Image, off: &dyn Offload) -> Result<Outcome, CoreError> {
        let mut image = img.clone();
        if let Some(m) = &self.denoise {
            crate::image::check_usable(img.view())?;
            denoise::check(m)?;
            image.data = match off.denoise(img.view(), m) {
                Some(out) => out,
                None => denoise::apply(img.view(), m)?,
            };
        }
        let analysis = crate::particles::chain::analyse_with(image.view(), &self.analysis, off)?;
        let strain = self.strain.as_ref().map(|p| gpa::analyse(image.view(), p)).transpose()?;
        Ok(Outcome { image, analysis, strain })
    }
}

/// Work a caller may do elsewhere on the chain's behalf (natively, the GPU: `atomlens-gpu`
/// through the CLI's `--gpu`). Each returns the same result the CPU would, within the
/// accelerator's stated tolerance, or `None` to have it done here (no kernel, or it failed).
/// Inputs are checked before they are offered.
pub trait Offload: Sync {
    /// `fit::fit_columns` of `req.seeds` with `req.fit` on `img` (already negated when asked).
    fn fit(&self, _img: ArrayView2<f32>, _req: &crate::columns::FitRequest) -> Option<Vec<AtomColumn>> {
        None
    }
    /// `denoise::apply(img, method)`.
    fn denoise(&self, _img: ArrayView2<f32>, _method: &Method) -> Option<Array2<f32>> {
        None
    }
}

/// Everything on the CPU.
pub struct OnCpu;

impl Offload for OnCpu {}

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
        let by_hand = crate::particles::chain::analyse(cleaned.view(), &AnalysisParams::default()).unwrap();
        assert_eq!(out.analysis.totals(), by_hand.totals());
        assert!(out.strain.is_none());
    }
}
