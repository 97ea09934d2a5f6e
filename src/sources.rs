//! Resolving a config's inputs — SAE, model, tokenizer, dataset — shared by every stage.
//!
//! `[source]` entries win; otherwise the built-in table of the paper's releases
//! ([`crate::registry`]) supplies hub locations.

use crate::config::Config;
use crate::hub::{Hub, Location};
use crate::model::{self, HookPoint, ModelFiles};
use crate::provenance::Reread;
use crate::registry;
use crate::sae::{Sae, SaeDefaults, SaeFiles};
use anyhow::{bail, ensure, Context, Result};
use candle_core::{Device, Tensor};
use serde::Serialize;
use tokenizers::Tokenizer;

/// What decided whether the residual stream is centred.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum CentringRule {
    /// The model's normalisation: LayerNorm models are centred, RMSNorm models are not.
    #[serde(rename = "model layer norm")]
    ModelLayerNorm,
    /// The SAE's cfg.json (`model_from_pretrained_kwargs.center_writing_weights = false`).
    #[serde(rename = "SAE cfg")]
    SaeCfg,
    /// `[source] center_writing_weights` in the config.
    #[serde(rename = "[source] override")]
    SourceOverride,
}

/// Whether the residual stream at the hook (and W_E for top tokens) is centred per position,
/// and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Centring {
    pub centred: bool,
    pub rule: CentringRule,
}

/// Decides centring as TransformerLens' default processing would: `center_writing_weights`
/// (on unless the SAE's `model_from_pretrained_kwargs` or `[source]` turns it off) only
/// affects LayerNorm models; TransformerLens skips it for RMSNorm models. `[source]` wins over
/// the SAE's cfg; asking `[source]` to centre an RMSNorm model is an error, since
/// TransformerLens would not. `model` names the model in that error.
pub fn decide_centring(
    uses_layer_norm: bool,
    sae_cfg: Option<bool>,
    source_override: Option<bool>,
    model: &str,
) -> Result<Centring> {
    let (centred, rule) = match (source_override, sae_cfg) {
        (Some(true), _) if !uses_layer_norm => bail!(
            "[source] center_writing_weights = true, but model {model} uses RMSNorm: \
             TransformerLens centres the writing weights of LayerNorm models only (it skips \
             RMSNorm models such as Gemma and Llama); remove the key or set it to false"
        ),
        (Some(c), _) => (c, CentringRule::SourceOverride),
        (None, Some(false)) => (false, CentringRule::SaeCfg),
        (None, Some(true) | None) => (uses_layer_norm, CentringRule::ModelLayerNorm),
    };
    Ok(Centring { centred, rule })
}

/// The inputs of one config, resolved lazily.
pub struct Sources<'a> {
    pub config: &'a Config,
    pub hub: &'a Hub,
    pub device: &'a Device,
}

/// `layer_12/width_16k/...` → `blocks.12.hook_resid_post` (Gemma Scope); `blocks.L.hook_*[_W]`
/// → `blocks.L.hook_*`.
pub fn hook_from_sae_id(sae_id: &str) -> Option<String> {
    if sae_id.starts_with("blocks.") {
        let parts: Vec<&str> = sae_id.splitn(3, '.').collect();
        let hook = parts
            .get(2)?
            .split('_')
            .take(3)
            .collect::<Vec<_>>()
            .join("_");
        return Some(format!("blocks.{}.{hook}", parts[1]));
    }
    let layer = sae_id.strip_prefix("layer_")?.split('/').next()?;
    Some(format!("blocks.{layer}.hook_resid_post"))
}

impl<'a> Sources<'a> {
    pub fn new(config: &'a Config, hub: &'a Hub, device: &'a Device) -> Self {
        Self {
            config,
            hub,
            device,
        }
    }

    /// Loads the SAE `sae_id` (decoder norms folded). A local `[source] sae` without
    /// placeholders may be the SAE's own folder or file, or a folder holding its subfolder (the
    /// built-in table's, else the sae id; both are tried).
    pub fn load_sae(&self, sae_id: &str) -> Result<Sae> {
        let (files, defaults) = self.resolve_sae(sae_id)?;
        Sae::load(&files, &defaults, self.device)
    }

    /// The files of the SAE `sae_id` and the defaults its cfg may leave out.
    fn resolve_sae(&self, sae_id: &str) -> Result<(SaeFiles, SaeDefaults)> {
        let g = &self.config.generation;
        let src = &self.config.source;
        let entry = registry::sae_entry(&g.model_name, &g.sae_release_short, sae_id);
        let (location, subfolders) = match &src.sae {
            Some(spec) => match registry::expand_sae_path(spec, sae_id) {
                Some(expanded) => (
                    Location::parse(&expanded, src.sae_revision.as_deref()),
                    Vec::new(),
                ),
                None => (
                    Location::parse(spec, src.sae_revision.as_deref()),
                    entry
                        .as_ref()
                        .map(|e| e.subfolder.clone())
                        .into_iter()
                        .chain([registry::default_subfolder(sae_id)])
                        .collect(),
                ),
            },
            None => {
                let e = entry.as_ref().with_context(|| {
                    format!(
                        "no [source] sae given and release '{}' of model '{}' is not in the built-in table",
                        g.sae_release_short, g.model_name
                    )
                })?;
                (
                    Location::Hub {
                        repo: e.hub_repo.into(),
                        revision: "main".into(),
                    },
                    vec![e.subfolder.clone()],
                )
            }
        };
        let defaults = SaeDefaults {
            hook_name: entry
                .as_ref()
                .and_then(|e| e.hook_name.clone())
                .or_else(|| hook_from_sae_id(sae_id)),
            neuronpedia_id: entry.as_ref().and_then(|e| e.neuronpedia_id.clone()),
            context_size: entry.as_ref().map(|e| e.context_size),
            dataset_path: entry.as_ref().map(|e| e.dataset.to_string()),
        };
        let subfolders: Vec<&str> = subfolders.iter().map(String::as_str).collect();
        let files = SaeFiles::resolve_any(&location, &subfolders, self.hub)?;
        Ok((files, defaults))
    }

    /// What decides the counts of `sae_id` read through `tokenizer` from `dataset_files`
    /// (local files in reading order; none for a hub dataset named `dataset`), for
    /// [`crate::provenance::fingerprint`].
    pub fn input_sources<'t>(
        &self,
        sae_id: &str,
        tokenizer: &'t Tokenizer,
        dataset: &Location,
        dataset_files: Vec<std::path::PathBuf>,
    ) -> Result<crate::provenance::InputSources<'t>> {
        let sae_files = self.sae_file_list(sae_id)?;
        let model = ModelFiles::resolve(&self.model_location()?, self.hub)?;
        Ok(crate::provenance::InputSources {
            sae_files,
            model_files: std::iter::once(model.config).chain(model.weights).collect(),
            tokenizer,
            dataset_files,
            dataset: dataset.describe(),
            settings: crate::provenance::settings_text(self.config, sae_id)?,
        })
    }

    /// The files of the SAE `sae_id`, as fingerprinted.
    fn sae_file_list(&self, sae_id: &str) -> Result<Vec<std::path::PathBuf>> {
        Ok(match self.resolve_sae(sae_id)?.0 {
            SaeFiles::SaeLens { cfg, weights } => vec![cfg, weights],
            SaeFiles::GemmaScope { params } => vec![params],
        })
    }

    /// Fingerprints of what a stage after `cooc` reads again for `sae_id`: the SAE, the model,
    /// the tokenizer and, when given, the dataset at `dataset` (see
    /// `results::manifest::check_counted_inputs`).
    pub fn reread(&self, sae_id: &str, dataset: Option<&Location>) -> Result<Reread> {
        use crate::provenance as p;
        let mut reread = Reread::default();
        let sae_files = self.sae_file_list(sae_id)?;
        let sae_place = sae_files
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        reread.add("sae", sae_place, p::sae_fingerprint(&sae_files)?);
        let model = ModelFiles::resolve(&self.model_location()?, self.hub)?;
        let model_files: Vec<_> = std::iter::once(model.config).chain(model.weights).collect();
        reread.add("model", model.source, p::model_fingerprint(&model_files)?);
        reread.add(
            "tokenizer",
            self.tokenizer_location()?.describe(),
            p::tokenizer_fingerprint(&self.load_tokenizer()?)?,
        );
        if let Some(dataset) = dataset {
            let files = match dataset {
                Location::Local(_) => {
                    let src = &self.config.source;
                    crate::data::Documents::open(
                        dataset,
                        self.hub,
                        src.text_field.as_deref().unwrap_or("text"),
                        src.dataset_files.as_deref(),
                    )?
                    .local_files()
                }
                Location::Hub { .. } => Vec::new(),
            };
            let name = dataset.describe();
            reread.add(
                "dataset",
                name.clone(),
                p::dataset_fingerprint(&files, &name)?,
            );
        }
        Ok(reread)
    }

    /// Where the model comes from.
    pub fn model_location(&self) -> Result<Location> {
        let src = &self.config.source;
        let spec = match &src.model {
            Some(m) => m.clone(),
            None => registry::model_repo(&self.config.generation.model_name)
                .with_context(|| {
                    format!(
                        "no [source] model given and model '{}' is not in the built-in table",
                        self.config.generation.model_name
                    )
                })?
                .to_string(),
        };
        Ok(Location::parse(&spec, src.model_revision.as_deref()))
    }

    /// Where the tokenizer comes from: `[source] tokenizer`, else the model's.
    fn tokenizer_location(&self) -> Result<Location> {
        match &self.config.source.tokenizer {
            Some(t) => Ok(Location::parse(t, None)),
            None => self.model_location(),
        }
    }

    /// The tokenizer.
    pub fn load_tokenizer(&self) -> Result<Tokenizer> {
        crate::tokenizer::load_tokenizer(&self.tokenizer_location()?, self.hub)
    }

    /// The tokenizer, wrapped to decode single tokens as transformers does.
    pub fn load_token_decoder(&self) -> Result<crate::tokenizer::TokenDecoder> {
        crate::tokenizer::TokenDecoder::load(&self.tokenizer_location()?, self.hub)
    }

    /// Centring of the residual stream of a model (`uses_layer_norm`, named `model` in
    /// errors) read by an SAE whose cfg.json says `sae_cfg`, with `[source]`'s override.
    pub fn centring(
        &self,
        uses_layer_norm: bool,
        sae_cfg: Option<bool>,
        model: &str,
    ) -> Result<Centring> {
        decide_centring(
            uses_layer_norm,
            sae_cfg,
            self.config.source.center_writing_weights,
            model,
        )
    }

    /// TransformerLens' W_E `[vocab, d_model]` of the model `sae` reads (rows centred where
    /// the residual stream is centred), loading no transformer blocks.
    pub fn load_token_embeddings(&self, sae: &Sae) -> Result<Tensor> {
        let files = ModelFiles::resolve(&self.model_location()?, self.hub)?;
        let model = model::load_model(&files, HookPoint::embeddings(), self.device)?;
        ensure!(
            sae.cfg.d_in == model.d_model(),
            "SAE {} has d_in = {} but model {} has width {}",
            sae.source,
            sae.cfg.d_in,
            files.source,
            model.d_model()
        );
        let w_e = model.token_embeddings();
        let centring = self.centring(
            model.uses_layer_norm(),
            sae.cfg.center_writing_weights,
            &files.source,
        )?;
        if centring.centred {
            Ok(w_e.broadcast_sub(&w_e.mean_keepdim(candle_core::D::Minus1)?)?)
        } else {
            Ok(w_e)
        }
    }

    /// Checks, before any work, every token id a run takes from a config or a model file
    /// against the tokenizer's ids and the rows of the model's embedding (`embedding_rows`):
    /// `[run] sequence_separator` and the model's `bos_token_id`, `eos_token_id` and
    /// `pad_token_id` (from config.json or GGUF metadata); and that every id the tokenizer gives
    /// has an embedding row. An error names the key, the value, the file and both sizes.
    pub fn check_token_ids(
        &self,
        files: &ModelFiles,
        tokenizer: &Tokenizer,
        embedding_rows: usize,
    ) -> Result<()> {
        let tokenizer_name = self.tokenizer_location()?.describe();
        let ids = tokenizer_id_count(tokenizer);
        ensure!(
            ids <= embedding_rows,
            "tokenizer {tokenizer_name} gives ids up to {} but model {} has {embedding_rows} embedding rows: they do not belong together",
            ids.saturating_sub(1),
            files.source
        );
        let mut named: Vec<(String, u32)> =
            model::config_token_ids(&files.config_json()?, &files.config_name())?
                .into_iter()
                .map(|(key, id)| (format!("{key} in {}", files.config_name()), id))
                .collect();
        if let Some(crate::data::TokenSpec::Id(id)) = self.config.run.sequence_separator {
            named.push(("[run] sequence_separator in the run config".into(), id));
        }
        for (key, id) in named {
            ensure!(
                (id as usize) < ids,
                "{key} is {id}, which is not a token id: tokenizer {tokenizer_name} has {ids} ids (0 to {}) and model {} {embedding_rows} embedding rows",
                ids.saturating_sub(1),
                files.source
            );
        }
        Ok(())
    }

    /// The text dataset: `[source] dataset`, else the SAE's training data.
    pub fn dataset_location(&self, sae: &Sae) -> Result<Location> {
        let src = &self.config.source;
        let spec = src
            .dataset
            .clone()
            .or_else(|| sae.cfg.dataset_path.clone())
            .context("no [source] dataset given and the SAE names no dataset")?;
        Ok(Location::parse(&spec, src.dataset_revision.as_deref()))
    }
}

/// How many ids `tokenizer` gives: its largest id (added tokens included) plus one.
pub fn tokenizer_id_count(tokenizer: &Tokenizer) -> usize {
    tokenizer
        .get_vocab(true)
        .values()
        .max()
        .map_or(0, |&id| id as usize + 1)
}

/// The BOS id: the model config's `bos_token_id`, else a conventional BOS token of the tokenizer.
pub fn bos_id(files: &ModelFiles, tokenizer: &Tokenizer) -> Result<u32> {
    files
        .special_tokens()?
        .bos
        .or_else(|| {
            ["<|endoftext|>", "<bos>", "<s>"]
                .iter()
                .find_map(|t| tokenizer.token_to_id(t))
        })
        .with_context(|| {
            format!(
                "{} has no bos_token_id and the tokenizer has no BOS token",
                files.config.display()
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn centring_follows_the_model_then_the_sae_then_source() {
        use CentringRule::*;
        let c = |ln, sae, over| decide_centring(ln, sae, over, "m").unwrap();
        let want = |centred, rule| Centring { centred, rule };
        // No opinion anywhere (Gemma Scope params.npz): the model's normalisation decides.
        assert_eq!(c(true, None, None), want(true, ModelLayerNorm));
        assert_eq!(c(false, None, None), want(false, ModelLayerNorm));
        // The SAE's cfg can turn it off; saying true changes nothing.
        assert_eq!(c(true, Some(false), None), want(false, SaeCfg));
        assert_eq!(c(true, Some(true), None), want(true, ModelLayerNorm));
        assert_eq!(c(false, Some(true), None), want(false, ModelLayerNorm));
        // [source] wins over both.
        assert_eq!(c(true, Some(false), Some(true)), want(true, SourceOverride));
        assert_eq!(c(true, None, Some(false)), want(false, SourceOverride));
        assert_eq!(c(false, None, Some(false)), want(false, SourceOverride));
        let err = decide_centring(false, None, Some(true), "tiny-gemma")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("tiny-gemma") && err.contains("RMSNorm") && err.contains("LayerNorm"),
            "{err}"
        );
        assert_eq!(
            serde_json::to_value([ModelLayerNorm, SaeCfg, SourceOverride]).unwrap(),
            serde_json::json!(["model layer norm", "SAE cfg", "[source] override"])
        );
    }

    #[test]
    fn hooks_follow_from_sae_ids() {
        assert_eq!(
            hook_from_sae_id("layer_12/width_16k/canonical").as_deref(),
            Some("blocks.12.hook_resid_post")
        );
        assert_eq!(
            hook_from_sae_id("blocks.8.hook_resid_pre_24576").as_deref(),
            Some("blocks.8.hook_resid_pre")
        );
        assert_eq!(
            hook_from_sae_id("blocks.3.hook_resid_post").as_deref(),
            Some("blocks.3.hook_resid_post")
        );
    }
}
