//! A run's inputs — device, hub, SAE, model, tokenizer, dataset — resolved once by
//! [`resolve`] before any work, and read by every stage from the [`ResolvedRun`].
//!
//! `[source]` entries win; otherwise SAELens' release registry ([`crate::registry`]) supplies
//! hub locations.

use crate::config::{Config, DeviceKind, PcaConfig, Run, Source};
use crate::hub::{Hub, Location};
use crate::model::{self, HookPoint, ModelFiles};
use crate::provenance::Reread;
use crate::registry;
use crate::sae::{Sae, SaeConfig, SaeDefaults, SaeFiles};
use anyhow::{bail, ensure, Context, Result};
use candle_core::{Device, Tensor};
use serde::Serialize;
use serde_json::{Map, Value};
use std::path::PathBuf;
use std::sync::OnceLock;
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

/// What names a run's inputs, whichever config schema named them (`cooc`'s `[generation]`,
/// `pca`'s `[model]`), with the `[source]` and `[run]` tables that say where they are and how
/// they are read.
#[derive(Debug, Clone)]
pub struct InputSpec {
    pub model_name: String,
    pub sae_release_short: String,
    /// The SAEs to resolve (none for a run that reads only the model, as `train-sae`).
    pub sae_ids: Vec<String>,
    pub remove_special_tokens: bool,
    pub source: Source,
    pub run: Run,
    /// The config file that named them, if any (errors name it).
    pub config_file: Option<PathBuf>,
}

impl InputSpec {
    /// The inputs a `cooc`/`graphs` config names.
    pub fn of_config(config: &Config) -> Self {
        let g = &config.generation;
        Self {
            model_name: g.model_name.clone(),
            sae_release_short: g.sae_release_short.clone(),
            sae_ids: g.sae_ids.clone(),
            remove_special_tokens: g.remove_special_tokens,
            source: config.source.clone(),
            run: config.run.clone(),
            config_file: config.file.clone(),
        }
    }

    /// The inputs a `pca` config names.
    pub fn of_pca(config: &PcaConfig) -> Self {
        Self {
            model_name: config.model.name.clone(),
            sae_release_short: config.model.sae_release_short.clone(),
            sae_ids: config.model.sae_ids.clone(),
            remove_special_tokens: config.processing.remove_special_tokens,
            source: config.source.clone(),
            run: config.run.clone(),
            config_file: config.file.clone(),
        }
    }

    /// The same inputs with only the SAEs `sae_ids`.
    pub fn with_sae_ids(self, sae_ids: Vec<String>) -> Self {
        Self { sae_ids, ..self }
    }
}

/// How [`resolve`] runs.
#[derive(Debug, Clone, Default)]
pub struct ResolveOptions<'a> {
    /// `--device`, overriding `[run] device`.
    pub device: Option<DeviceKind>,
    /// The stage whose per-SAE errors name the SAE (`{stage} for SAE {id} failed`); none: the
    /// errors are left as they are.
    pub stage: Option<&'a str>,
}

/// One SAE's files, resolved, and the defaults its cfg may leave out.
pub struct ResolvedSae {
    pub id: String,
    pub files: SaeFiles,
    pub defaults: SaeDefaults,
    /// The registry release's `config_overrides`, applied over the SAE's cfg as SAELens does.
    overrides: Map<String, Value>,
    fingerprint: OnceLock<String>,
}

impl ResolvedSae {
    /// The files the SAE is loaded from, as fingerprinted.
    pub fn paths(&self) -> Vec<PathBuf> {
        self.files.paths()
    }
}

/// A run's inputs, resolved once before any work and passed by reference to every stage: the
/// device, the hub, the model's files, the tokenizer and each SAE's files. Fingerprints are of
/// these same files, each hashed once.
pub struct ResolvedRun {
    pub spec: InputSpec,
    pub hub: Hub,
    pub device: Device,
    pub model: ModelFiles,
    pub tokenizer_location: Location,
    pub tokenizer: Tokenizer,
    pub saes: Vec<ResolvedSae>,
    model_fingerprint: OnceLock<String>,
    tokenizer_fingerprint: OnceLock<String>,
}

/// Opens the compute device.
pub fn open_device(kind: DeviceKind) -> Result<Device> {
    match kind {
        DeviceKind::Cpu => Ok(Device::Cpu),
        DeviceKind::Cuda if candle_core::utils::cuda_is_available() => {
            Device::new_cuda(0).context("cannot open CUDA device 0")
        }
        DeviceKind::Cuda => bail!(
            "device = \"cuda\" but this saecooc was built without CUDA (rebuild with `cargo build --release --features cuda`) or no GPU is visible"
        ),
    }
}

/// Resolves every input `spec` names: the hub, the device, each SAE's files, the model's files
/// and the tokenizer (loaded). `[source]` entries win; otherwise SAELens' release registry
/// (shipped with saecooc) supplies hub locations.
pub fn resolve(spec: InputSpec, options: &ResolveOptions) -> Result<ResolvedRun> {
    let hub = Hub::from_env(crate::report::shows_progress())?;
    let device = open_device(options.device.unwrap_or(spec.run.device))?;
    check_registry_saes(&spec, options.stage)?;
    let mut saes = Vec::with_capacity(spec.sae_ids.len());
    let mut failures = Vec::new();
    for id in &spec.sae_ids {
        match resolve_sae(&spec, &hub, id) {
            Ok((files, defaults, overrides)) => saes.push(ResolvedSae {
                id: id.clone(),
                files,
                defaults,
                overrides,
                fingerprint: OnceLock::new(),
            }),
            Err(e) => failures.push((id.clone(), e)),
        }
    }
    check_all_resolved(failures, spec.sae_ids.len(), options.stage)?;
    let shared = || -> Result<(ModelFiles, Location, Tokenizer)> {
        let model = ModelFiles::resolve(&model_location(&spec)?, &hub)?;
        let tokenizer_location = tokenizer_location(&spec)?;
        let tokenizer = crate::tokenizer::load_tokenizer(&tokenizer_location, &hub)?;
        Ok((model, tokenizer_location, tokenizer))
    };
    let (model, tokenizer_location, tokenizer) =
        shared().map_err(|e| match spec.sae_ids.first() {
            Some(id) => for_sae(options.stage, id, e),
            None => e,
        })?;
    Ok(ResolvedRun {
        spec,
        hub,
        device,
        model,
        tokenizer_location,
        tokenizer,
        saes,
        model_fingerprint: OnceLock::new(),
        tokenizer_fingerprint: OnceLock::new(),
    })
}

/// `e`, an error of the SAE `id`, named as `stage`'s failure for it (`{stage} for SAE {id}
/// failed`); left as it is without a stage.
fn for_sae(stage: Option<&str>, id: &str, e: anyhow::Error) -> anyhow::Error {
    match stage {
        Some(stage) => e.context(format!("{stage} for SAE {id} failed")),
        None => e,
    }
}

/// Refuses a run in which an SAE could not be resolved, before any work: the SAE's own error
/// (see [`for_sae`]) when it is the only one, else one error naming every such SAE of the
/// `total` with its cause, so that a config's bad ids are all found at once.
fn check_all_resolved(
    mut failures: Vec<(String, anyhow::Error)>,
    total: usize,
    stage: Option<&str>,
) -> Result<()> {
    if failures.len() <= 1 {
        return match failures.pop() {
            Some((id, e)) => Err(for_sae(stage, &id, e)),
            None => Ok(()),
        };
    }
    let list: Vec<String> = failures
        .iter()
        .map(|(id, e)| format!("  - SAE {id}: {}", format!("{e:#}").replace('\n', "\n    ")))
        .collect();
    let command = stage.map_or(String::new(), |s| format!("{s}: "));
    bail!(
        "{command}{} of the {total} SAEs cannot be resolved, so nothing was run:\n{}",
        failures.len(),
        list.join("\n")
    )
}

/// Checks every SAE that comes from the registry (no `[source] sae`) against it before anything
/// is downloaded: one error names every SAE the registry lacks (with the closest ids) or that
/// saecooc cannot run (and why).
fn check_registry_saes(spec: &InputSpec, stage: Option<&str>) -> Result<()> {
    if spec.source.sae.is_some() {
        return Ok(());
    }
    let failures = spec
        .sae_ids
        .iter()
        .filter_map(|id| {
            registry::check::runnable_entry(&spec.model_name, &spec.sae_release_short, id)
                .err()
                .map(|e| (id.clone(), e))
        })
        .collect();
    check_all_resolved(failures, spec.sae_ids.len(), stage)
}

/// The files of the SAE `sae_id`, the defaults its cfg may leave out, and the registry's
/// overrides of its cfg. Without `[source] sae`, the SAE is the registry's (an id the registry
/// lacks is an error naming the closest ones). A local `[source] sae` without placeholders may
/// be the SAE's own folder or file, or a folder holding its subfolder (the registry's, else the
/// sae id; both are tried).
fn resolve_sae(
    spec: &InputSpec,
    hub: &Hub,
    sae_id: &str,
) -> Result<(SaeFiles, SaeDefaults, Map<String, Value>)> {
    let src = &spec.source;
    let entry = match registry::lookup(&spec.model_name, &spec.sae_release_short, sae_id) {
        registry::Lookup::Found(e) | registry::Lookup::HubRepo(e) => Some(e),
        _ if src.sae.is_some() => None,
        _ => Some(registry::require(
            &spec.model_name,
            &spec.sae_release_short,
            sae_id,
        )?),
    };
    let (location, subfolders) = match (&src.sae, &entry) {
        (Some(sae), _) => match registry::expand_sae_path(sae, sae_id) {
            Some(expanded) => (
                Location::parse(&expanded, src.sae_revision.as_deref()),
                Vec::new(),
            ),
            None => (
                Location::parse(sae, src.sae_revision.as_deref()),
                entry
                    .iter()
                    .map(|e| e.subfolder.clone())
                    .chain([sae_id.to_string()])
                    .collect(),
            ),
        },
        (None, Some(e)) => (
            Location::Hub {
                repo: e.hub_repo.clone(),
                revision: "main".into(),
            },
            vec![e.subfolder.clone()],
        ),
        (None, None) => bail!("SAE {sae_id}: no [source] sae and no registry entry"),
    };
    let defaults = SaeDefaults {
        format: entry.as_ref().map(|e| e.format).unwrap_or_default(),
        norm_scaling_factor: entry.as_ref().and_then(|e| e.norm_scaling_factor),
        hook_name: entry
            .as_ref()
            .and_then(|e| e.hook_name.clone())
            .or_else(|| registry::hook_from_sae_id(sae_id)),
        neuronpedia_id: entry.as_ref().and_then(|e| e.neuronpedia_id.clone()),
        context_size: entry.as_ref().and_then(|e| e.context_size),
        dataset_path: entry.as_ref().and_then(|e| e.dataset.clone()),
        repo_id: entry.as_ref().map(|e| e.hub_repo.clone()),
    };
    let subfolders: Vec<&str> = subfolders.iter().map(String::as_str).collect();
    let files = SaeFiles::resolve_any(&location, &subfolders, hub, &defaults)?;
    let overrides = entry.map(|e| e.overrides).unwrap_or_default();
    check_sae_config(&files, &defaults, &overrides)?;
    Ok((files, defaults, overrides))
}

/// Reads an SAE's config as loading will (file headers only, no weights) and checks that its
/// hook is one saecooc reads, so that a bad SAE stops the run before any work.
fn check_sae_config(
    files: &SaeFiles,
    defaults: &SaeDefaults,
    overrides: &Map<String, Value>,
) -> Result<()> {
    let mut cfg = Sae::read_config(files, defaults)?;
    apply_overrides(&mut cfg, overrides);
    HookPoint::parse(&cfg.hook_name)?;
    Ok(())
}

/// Sets the registry's `config_overrides` on a loaded SAE's cfg, as SAELens sets them over
/// what the SAE's files say: the dataset, the hook, the Neuronpedia id, and TransformerLens'
/// `center_writing_weights` from `model_from_pretrained_kwargs`.
fn apply_overrides(cfg: &mut SaeConfig, overrides: &Map<String, Value>) {
    let text = |key: &str| overrides.get(key).and_then(Value::as_str).map(String::from);
    if let Some(dataset) = text("dataset_path") {
        cfg.dataset_path = Some(dataset);
    }
    if let Some(hook) = text("hook_name") {
        cfg.hook_name = hook;
    }
    if let Some(id) = text("neuronpedia_id") {
        cfg.neuronpedia_id = Some(id);
    }
    let centring = overrides
        .get("model_from_pretrained_kwargs")
        .and_then(|kw| kw.get("center_writing_weights"))
        .and_then(Value::as_bool);
    if let Some(centre) = centring {
        cfg.center_writing_weights = Some(centre);
    }
}

/// Where the model comes from: `[source] model`, else the registry's repo for the model name.
fn model_location(spec: &InputSpec) -> Result<Location> {
    let src = &spec.source;
    let model = match &src.model {
        Some(m) => m.clone(),
        None => registry::model_repo(&spec.model_name).with_context(|| {
            format!(
                "no [source] model given and model '{}' is not in the SAELens registry's model table",
                spec.model_name
            )
        })?,
    };
    Ok(Location::parse(&model, src.model_revision.as_deref()))
}

/// Where the tokenizer comes from: `[source] tokenizer`, else the model's.
fn tokenizer_location(spec: &InputSpec) -> Result<Location> {
    match &spec.source.tokenizer {
        Some(t) => Ok(Location::parse(t, None)),
        None => model_location(spec),
    }
}

/// The value in `cell`, computed by `compute` the first time.
fn once(cell: &OnceLock<String>, compute: impl FnOnce() -> Result<String>) -> Result<String> {
    if let Some(value) = cell.get() {
        return Ok(value.clone());
    }
    let value = compute()?;
    Ok(cell.get_or_init(|| value).clone())
}

impl ResolvedRun {
    /// The resolved SAE `sae_id`.
    pub fn sae(&self, sae_id: &str) -> Result<&ResolvedSae> {
        self.saes
            .iter()
            .find(|s| s.id == sae_id)
            .with_context(|| format!("SAE {sae_id} is not among the SAEs this run resolved"))
    }

    /// Loads the SAE `sae_id` (decoder norms folded) from its resolved files.
    pub fn load_sae(&self, sae_id: &str) -> Result<Sae> {
        let resolved = self.sae(sae_id)?;
        let mut sae = Sae::load(&resolved.files, &resolved.defaults, &self.device)?;
        apply_overrides(&mut sae.cfg, &resolved.overrides);
        Ok(sae)
    }

    /// The cfg of SAE `sae_id` as loading it gives it (file headers only, no weights).
    pub fn sae_config(&self, sae_id: &str) -> Result<crate::sae::SaeConfig> {
        let resolved = self.sae(sae_id)?;
        let mut cfg = Sae::read_config(&resolved.files, &resolved.defaults)?;
        apply_overrides(&mut cfg, &resolved.overrides);
        Ok(cfg)
    }

    /// The `sae` fingerprint of `sae_id`'s files.
    pub fn sae_fingerprint(&self, sae_id: &str) -> Result<String> {
        let sae = self.sae(sae_id)?;
        once(&sae.fingerprint, || {
            crate::provenance::sae_fingerprint(&sae.paths())
        })
    }

    /// The model's files (config and weights), as fingerprinted.
    fn model_paths(&self) -> Vec<PathBuf> {
        std::iter::once(self.model.config.clone())
            .chain(self.model.weights.iter().cloned())
            .collect()
    }

    /// The `model` fingerprint of the model's files.
    pub fn model_fingerprint(&self) -> Result<String> {
        once(&self.model_fingerprint, || {
            crate::provenance::model_fingerprint(&self.model_paths())
        })
    }

    /// The `tokenizer` fingerprint of the loaded tokenizer.
    pub fn tokenizer_fingerprint(&self) -> Result<String> {
        once(&self.tokenizer_fingerprint, || {
            crate::provenance::tokenizer_fingerprint(&self.tokenizer)
        })
    }

    /// What decides the counts of `sae_id` read from `dataset_files` (local files in reading
    /// order; none for a hub dataset `dataset`) under `settings`, for
    /// [`crate::provenance::fingerprint`].
    pub fn input_sources(
        &self,
        sae_id: &str,
        dataset: &Location,
        dataset_files: Vec<PathBuf>,
        settings: String,
    ) -> Result<crate::provenance::InputSources> {
        Ok(crate::provenance::InputSources {
            sae: self.sae_fingerprint(sae_id)?,
            model: self.model_fingerprint()?,
            tokenizer: self.tokenizer_fingerprint()?,
            dataset_files,
            dataset: dataset.describe(),
            settings,
        })
    }

    /// Fingerprints of what a stage after `cooc` reads again for `sae_id`: the SAE, the model,
    /// the tokenizer and, when given, the dataset at `dataset` (see
    /// `results::manifest::check_counted_inputs`).
    pub fn reread(&self, sae_id: &str, dataset: Option<&Location>) -> Result<Reread> {
        use crate::provenance as p;
        let mut reread = Reread::default();
        let sae_place = self
            .sae(sae_id)?
            .paths()
            .iter()
            .map(|f| f.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        reread.add("sae", sae_place, self.sae_fingerprint(sae_id)?);
        reread.add(
            "model",
            self.model.source.clone(),
            self.model_fingerprint()?,
        );
        reread.add(
            "tokenizer",
            self.tokenizer_location.describe(),
            self.tokenizer_fingerprint()?,
        );
        if let Some(dataset) = dataset {
            let files = match dataset {
                Location::Local(_) => self.open_documents(dataset)?.local_files(),
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

    /// The documents of `dataset`, read as `[source]` says (text field, file filter).
    pub fn open_documents(&self, dataset: &Location) -> Result<crate::data::Documents<'_>> {
        let src = &self.spec.source;
        crate::data::Documents::open(
            dataset,
            &self.hub,
            src.text_field.as_deref().unwrap_or("text"),
            src.dataset_files.as_deref(),
        )
    }

    /// The tokenizer, wrapped to decode single tokens as transformers does.
    pub fn load_token_decoder(&self) -> Result<crate::tokenizer::TokenDecoder> {
        crate::tokenizer::TokenDecoder::with_config(
            self.tokenizer.clone(),
            &self.tokenizer_location,
            &self.hub,
        )
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
            self.spec.source.center_writing_weights,
            model,
        )
    }

    /// TransformerLens' W_E `[vocab, d_model]` of the model `sae` reads (rows centred where
    /// the residual stream is centred), loading no transformer blocks; None when the SAE's
    /// vectors are not as wide as the residual stream (a `hook_z` SAE), so that W_E · W_dec
    /// means nothing.
    pub fn load_token_embeddings(&self, sae: &Sae) -> Result<Option<Tensor>> {
        let files = &self.model;
        let model = model::load_model(files, HookPoint::embeddings(), &self.device)?;
        if sae.cfg.d_in != model.d_model() {
            return Ok(None);
        }
        let w_e = model.token_embeddings();
        let centring = self.centring(
            model.uses_layer_norm(),
            sae.cfg.center_writing_weights,
            &files.source,
        )?;
        Ok(Some(if centring.centred {
            w_e.broadcast_sub(&w_e.mean_keepdim(candle_core::D::Minus1)?)?
        } else {
            w_e
        }))
    }

    /// Checks, before any work, every token id a run takes from a config or a model file
    /// against the tokenizer's ids and the rows of the model's embedding (`embedding_rows`):
    /// `[run] sequence_separator` and the model's `bos_token_id`, `eos_token_id` and
    /// `pad_token_id` (from config.json or GGUF metadata); and that every id the tokenizer gives
    /// has an embedding row. An error names the key, the value, the file and both sizes.
    pub fn check_token_ids(&self, embedding_rows: usize) -> Result<()> {
        let (files, tokenizer) = (&self.model, &self.tokenizer);
        let tokenizer_name = self.tokenizer_location.describe();
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
        if let Some(crate::data::TokenSpec::Id(id)) = self.spec.run.sequence_separator {
            let file = match &self.spec.config_file {
                Some(path) => path.display().to_string(),
                None => "the run config".into(),
            };
            named.push((format!("[run] sequence_separator in {file}"), id));
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
        let src = &self.spec.source;
        let dataset = src
            .dataset
            .clone()
            .or_else(|| sae.cfg.dataset_path.clone())
            .context("no [source] dataset given and the SAE names no dataset")?;
        Ok(Location::parse(&dataset, src.dataset_revision.as_deref()))
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
    fn a_pca_config_names_its_inputs_as_a_cooc_config_does() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("configs/pca-streamlit-maxexamples.toml");
        let pca = PcaConfig::load(&path).unwrap();
        let spec = InputSpec::of_pca(&pca);
        assert_eq!(spec.model_name, pca.model.name);
        assert_eq!(spec.sae_release_short, pca.model.sae_release_short);
        assert_eq!(spec.sae_ids, pca.model.sae_ids);
        assert_eq!(
            spec.remove_special_tokens,
            pca.processing.remove_special_tokens
        );
        assert_eq!(spec.with_sae_ids(Vec::new()).sae_ids, Vec::<String>::new());
    }
}
