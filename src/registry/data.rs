//! SAELens' release registry as shipped in `assets/saelens-registry.json` (written by
//! `scripts/gen-registry.py` from the `sae-lens` package): parsed once, on first use.

use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// The registry file, compiled in.
const REGISTRY_JSON: &str = include_str!("../../assets/saelens-registry.json");

/// The whole registry.
#[derive(Debug, Deserialize)]
pub struct Registry {
    /// The `sae-lens` version it was generated from.
    pub sae_lens_version: String,
    /// Each registry model name: its Hugging Face repo and `config.json` model_type.
    pub models: BTreeMap<String, ModelInfo>,
    pub releases: Vec<Release>,
}

/// Where a registry model lives, and its architecture.
#[derive(Debug, Deserialize)]
pub struct ModelInfo {
    pub repo: String,
    pub model_type: String,
}

/// One release: a set of SAEs in one hub repo, read by one conversion.
#[derive(Debug, Deserialize)]
pub struct Release {
    pub release: String,
    /// The model name as SAELens spells it (a TransformerLens name or a hub repo).
    pub model: String,
    pub repo_id: String,
    /// SAELens' loader for the release's files (None: SAELens' own format).
    pub conversion_func: Option<String>,
    /// Keys SAELens sets on each SAE's cfg, over what its files say.
    pub config_overrides: Option<Map<String, Value>>,
    pub saes: Vec<RegistrySae>,
}

/// One SAE of a release: `[id, path in the repo, Neuronpedia id, norm_scaling_factor]`.
#[derive(Debug, Deserialize)]
pub struct RegistrySae(pub String, pub String, pub Option<String>, pub Option<f64>);

impl RegistrySae {
    pub fn id(&self) -> &str {
        &self.0
    }

    /// The SAE's folder (or file) in the release's repo.
    pub fn path(&self) -> &str {
        &self.1
    }

    pub fn neuronpedia(&self) -> Option<&str> {
        self.2.as_deref()
    }

    pub fn norm_scaling_factor(&self) -> Option<f64> {
        self.3
    }
}

impl Release {
    /// The SAE `id` of this release.
    pub fn sae(&self, id: &str) -> Option<&RegistrySae> {
        self.saes.iter().find(|s| s.id() == id)
    }
}

impl Registry {
    /// The release called `name`.
    pub fn release(&self, name: &str) -> Option<&Release> {
        self.releases.iter().find(|r| r.release == name)
    }

    /// The repo and architecture of a registry model name.
    pub fn model(&self, name: &str) -> Option<&ModelInfo> {
        self.models.get(name)
    }
}

/// The shipped registry.
pub fn registry() -> anyhow::Result<&'static Registry> {
    static REGISTRY: OnceLock<Result<Registry, String>> = OnceLock::new();
    REGISTRY
        .get_or_init(|| serde_json::from_str(REGISTRY_JSON).map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| anyhow::anyhow!("the built-in SAELens registry cannot be read: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_registry_parses_and_names_every_model() {
        let r = registry().unwrap();
        assert!(!r.sae_lens_version.is_empty());
        assert!(r.releases.len() > 100, "{} releases", r.releases.len());
        for release in &r.releases {
            assert!(
                r.model(&release.model).is_some(),
                "release {} names model {} that the registry's model table lacks",
                release.release,
                release.model
            );
        }
    }
}
