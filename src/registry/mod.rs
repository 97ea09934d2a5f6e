//! Where a config's SAEs live and how they are read: SAELens' release registry (shipped as
//! data, see [`data`]), resolved as SAELens' `SAE.from_pretrained` resolves it, and the few
//! defaults the registry lacks.
//!
//! Config files name SAEs as the original does, by `(model_name, sae_release_short, sae_id)`,
//! or by a plain SAELens release name in `sae_release_short`; `[source]` may point elsewhere.

pub mod check;
pub mod data;
pub mod hooks;

use crate::io::pyfmt::neat_sae_id;
use crate::sae::SaeFormat;
use anyhow::{bail, Result};
pub use data::{registry, Registry, RegistrySae, Release};
pub use hooks::hook_from_sae_id;
use serde_json::{Map, Value};

/// Model names the registry does not use but configs do, with their hub repos.
const EXTRA_MODELS: &[(&str, &str)] = &[("gpt2", "openai-community/gpt2")];

/// The hub repo of a model name: the registry's model table, then [`EXTRA_MODELS`].
pub fn model_repo(model_name: &str) -> Option<String> {
    let known = registry()
        .ok()
        .and_then(|r| r.model(model_name))
        .map(|m| m.repo.clone());
    known.or_else(|| {
        EXTRA_MODELS
            .iter()
            .find(|(name, _)| *name == model_name)
            .map(|(_, repo)| repo.to_string())
    })
}

/// Where one SAE lives, how its files are read, and what SAELens sets on its cfg.
#[derive(Debug, Clone, PartialEq)]
pub struct SaeEntry {
    /// SAELens release name (`gpt2-small-res-jb`, `gemma-scope-2b-pt-res-canonical`, ...).
    pub release: String,
    pub hub_repo: String,
    /// Folder (or file) of this SAE inside the repo.
    pub subfolder: String,
    pub neuronpedia_id: Option<String>,
    /// The hook SAELens' loader names for it, where it can be told without its files.
    pub hook_name: Option<String>,
    pub dataset: Option<String>,
    pub context_size: Option<usize>,
    pub format: SaeFormat,
    pub norm_scaling_factor: Option<f64>,
    /// The release's `config_overrides` (SAELens applies them over the SAE's own cfg).
    pub overrides: Map<String, Value>,
}

/// The SAELens release name, derived as the original does (see docs/formats.md, "Results folder
/// layout"): Gemma uses the short name itself; other models prefix the model name.
pub fn release_name(model_name: &str, release_short: &str) -> String {
    if model_name.starts_with("gemma") {
        release_short.to_string()
    } else {
        format!("{model_name}-{release_short}")
    }
}

/// The registry release a config names: the original's derived name, else `release_short`
/// itself (a plain SAELens release name such as `gemma-scope-2-270m-pt-res`).
pub fn find_release(model_name: &str, release_short: &str) -> Option<&'static Release> {
    let registry = registry().ok()?;
    registry
        .release(&release_name(model_name, release_short))
        .or_else(|| registry.release(release_short))
}

/// What the registry says about an SAE a config names.
#[derive(Debug)]
pub enum Lookup {
    /// The release and the id are in the registry.
    Found(SaeEntry),
    /// The release is a hub repo id (`owner/name`) that the registry does not list: the sae id
    /// is a folder in it, read as SAELens' own format (as `SAE.from_pretrained` does).
    HubRepo(SaeEntry),
    /// The release is in the registry, the id is not.
    UnknownId {
        release: String,
        /// The release's ids closest to the one asked for, closest first.
        closest: Vec<String>,
    },
    /// Neither the registry nor the hub-repo rule knows the release.
    UnknownRelease,
}

/// Looks up `sae_id` of the release `(model_name, release_short)` names.
pub fn lookup(model_name: &str, release_short: &str, sae_id: &str) -> Lookup {
    if let Some(release) = find_release(model_name, release_short) {
        return match release.sae(sae_id) {
            Some(sae) => match entry(release, sae) {
                Ok(entry) => Lookup::Found(entry),
                Err(_) => Lookup::UnknownRelease,
            },
            None => Lookup::UnknownId {
                release: release.release.clone(),
                closest: closest_ids(release, sae_id, 3),
            },
        };
    }
    if release_short.contains('/') {
        return Lookup::HubRepo(SaeEntry {
            release: release_short.to_string(),
            hub_repo: release_short.to_string(),
            subfolder: sae_id.to_string(),
            neuronpedia_id: None,
            hook_name: hook_from_sae_id(sae_id),
            dataset: None,
            context_size: None,
            format: SaeFormat::SaeLens,
            norm_scaling_factor: None,
            overrides: Map::new(),
        });
    }
    Lookup::UnknownRelease
}

/// The registry's `sae` of `release` as an [`SaeEntry`].
pub fn entry(release: &Release, sae: &RegistrySae) -> Result<SaeEntry> {
    let format = SaeFormat::from_conversion_func(release.conversion_func.as_deref())?;
    let overrides = release.config_overrides.clone().unwrap_or_default();
    let (dataset, context_size) = training_defaults(release, format);
    let dataset = overrides
        .get("dataset_path")
        .and_then(Value::as_str)
        .map(String::from)
        .or(dataset);
    Ok(SaeEntry {
        release: release.release.clone(),
        hub_repo: release.repo_id.clone(),
        subfolder: sae.path().to_string(),
        neuronpedia_id: sae.neuronpedia().map(String::from),
        hook_name: hooks::expected_hook(release, sae),
        dataset,
        context_size,
        format,
        norm_scaling_factor: sae.norm_scaling_factor(),
        overrides,
    })
}

/// The dataset and context size an SAE was trained with where its files may not say: what
/// SAELens' loaders set for the Gemma Scope formats, and the res-jb releases' own.
fn training_defaults(release: &Release, format: SaeFormat) -> (Option<String>, Option<usize>) {
    match format {
        SaeFormat::GemmaScope | SaeFormat::GemmaScope2 | SaeFormat::GemmaScopeTranscoder => {
            (Some("monology/pile-uncopyrighted".into()), Some(1024))
        }
        _ if release.release.starts_with("gpt2-small-res-jb") => {
            (Some("Skylion007/openwebtext".into()), Some(128))
        }
        _ => (None, None),
    }
}

/// The `n` of `names` closest to `target` (edit distance, ties by name).
pub fn closest_names<'a>(
    names: impl Iterator<Item = &'a str>,
    target: &str,
    n: usize,
) -> Vec<String> {
    let mut scored: Vec<(usize, &str)> = names
        .map(|name| (strsim::levenshtein(name, target), name))
        .collect();
    scored.sort();
    scored
        .into_iter()
        .take(n)
        .map(|(_, name)| name.to_string())
        .collect()
}

/// The ids of `release` closest to `sae_id`, at most `n`.
pub fn closest_ids(release: &Release, sae_id: &str, n: usize) -> Vec<String> {
    closest_names(release.saes.iter().map(RegistrySae::id), sae_id, n)
}

/// The registry releases closest to `name`, at most `n`.
pub fn closest_releases(name: &str, n: usize) -> Vec<String> {
    match registry() {
        Ok(registry) => closest_names(
            registry.releases.iter().map(|r| r.release.as_str()),
            name,
            n,
        ),
        Err(_) => Vec::new(),
    }
}

/// The registry entry of `sae_id`, or an error naming the release's closest ids (or the closest
/// releases) when the registry does not have it.
pub fn require(model_name: &str, release_short: &str, sae_id: &str) -> Result<SaeEntry> {
    match lookup(model_name, release_short, sae_id) {
        Lookup::Found(entry) | Lookup::HubRepo(entry) => Ok(entry),
        Lookup::UnknownId { release, closest } => bail!(
            "SAE id '{sae_id}' is not in release '{release}' (SAELens registry, sae-lens {}); closest ids: {}",
            version(),
            closest.join(", ")
        ),
        Lookup::UnknownRelease => bail!(
            "release '{}' of model '{model_name}' is not in the SAELens registry (sae-lens {}) and no [source] sae says where its SAEs are; closest releases: {}",
            release_name(model_name, release_short),
            version(),
            closest_releases(&release_name(model_name, release_short), 3).join(", ")
        ),
    }
}

/// The sae-lens version of the shipped registry.
pub fn version() -> String {
    registry().map_or_else(|_| "unknown".into(), |r| r.sae_lens_version.clone())
}

/// Expands `{sae_id}` / `{neat_sae_id}` in a configured SAE path.
pub fn expand_sae_path(template: &str, sae_id: &str) -> Option<String> {
    (template.contains("{sae_id}") || template.contains("{neat_sae_id}")).then(|| {
        template
            .replace("{sae_id}", sae_id)
            .replace("{neat_sae_id}", &neat_sae_id(sae_id))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(model: &str, release: &str, id: &str) -> SaeEntry {
        match lookup(model, release, id) {
            Lookup::Found(e) => e,
            other => panic!("{model} {release} {id}: {other:?}"),
        }
    }

    #[test]
    fn paper_releases_resolve_as_saelens_does() {
        let e = found("gpt2-small", "res-jb", "blocks.8.hook_resid_pre");
        assert_eq!(e.release, "gpt2-small-res-jb");
        assert_eq!(e.hub_repo, "jbloom/GPT2-Small-SAEs-Reformatted");
        assert_eq!(e.subfolder, "blocks.8.hook_resid_pre");
        assert_eq!(e.neuronpedia_id.as_deref(), Some("gpt2-small/8-res-jb"));
        assert_eq!(e.dataset.as_deref(), Some("Skylion007/openwebtext"));
        assert_eq!(e.context_size, Some(128));
        assert_eq!(e.format, SaeFormat::SaeLens);
        let e = found("gpt2-small", "res-jb", "blocks.11.hook_resid_post");
        assert_eq!(e.neuronpedia_id.as_deref(), Some("gpt2-small/12-res-jb"));
        let e = found(
            "gemma-2-2b",
            "gemma-scope-2b-pt-res-canonical",
            "layer_12/width_65k/canonical",
        );
        assert_eq!(e.subfolder, "layer_12/width_65k/average_l0_72");
        assert_eq!(
            e.neuronpedia_id.as_deref(),
            Some("gemma-2-2b/12-gemmascope-res-65k")
        );
        assert_eq!(e.format, SaeFormat::GemmaScope);
        assert_eq!(e.hook_name.as_deref(), Some("blocks.12.hook_resid_post"));
        assert_eq!(e.context_size, Some(1024));
        let e = found(
            "gpt2-small",
            "res-jb-feature-splitting",
            "blocks.8.hook_resid_pre_768",
        );
        assert_eq!(
            e.neuronpedia_id.as_deref(),
            Some("gpt2-small/8-res_fs768-jb")
        );
        assert_eq!(e.hook_name.as_deref(), Some("blocks.8.hook_resid_pre"));
        let e = found(
            "gemma-2-2b",
            "gemma-scope-2b-pt-res",
            "layer_12/width_16k/average_l0_82",
        );
        assert_eq!(e.neuronpedia_id, None);
    }

    #[test]
    fn plain_saelens_names_and_hub_repos_resolve() {
        let e = found(
            "google/gemma-3-270m",
            "gemma-scope-2-270m-pt-res",
            "layer_12_width_16k_l0_big",
        );
        assert_eq!(e.hub_repo, "google/gemma-scope-2-270m-pt");
        assert_eq!(e.format, SaeFormat::GemmaScope2);
        assert_eq!(e.hook_name.as_deref(), Some("blocks.12.hook_resid_post"));
        match lookup("gpt2-small", "someone/my-saes", "blocks.3.hook_resid_pre") {
            Lookup::HubRepo(e) => {
                assert_eq!(e.hub_repo, "someone/my-saes");
                assert_eq!(e.subfolder, "blocks.3.hook_resid_pre");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            lookup("tiny", "synthetic", "blocks.1.hook_resid_pre"),
            Lookup::UnknownRelease
        ));
    }

    #[test]
    fn an_unknown_id_names_the_closest_ones() {
        let err = require("gpt2-small", "res-jb", "blocks.8.hook_resid_pr")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("not in release 'gpt2-small-res-jb'")
                && err.contains("closest ids: blocks.8.hook_resid_pre"),
            "{err}"
        );
        let err = require("gpt2-small", "res-jbb", "blocks.8.hook_resid_pre")
            .unwrap_err()
            .to_string();
        assert!(err.contains("closest releases: gpt2-small-res-jb"), "{err}");
        assert_eq!(
            expand_sae_path("saes/{neat_sae_id}", "blocks.1.x").as_deref(),
            Some("saes/blocks_1_x")
        );
    }
}
