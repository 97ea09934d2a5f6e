//! The SAE formats SAELens converts when it loads them (the registry's `conversion_func`):
//! where each keeps its files, and reading them into what SAELens builds (its cfg and its
//! `W_enc`, `b_enc`, `W_dec`, `b_dec`, `threshold` state dict). One file per format.

mod connor_rob_hook_z;
mod deepseek_r1;
mod dictionary_learning;
mod gemma_scope;
mod gemma_scope_2;
mod goodfire;
mod llama_scope;
mod mwhanna;
mod qwen_scope;

use super::formats::{HostTensors, Reading};
use super::{Architecture, Normalization, SaeConfig, SaeDefaults, SaeFormat, TopKSelection};
use crate::hub::{Hub, HubRepo, Location};
use anyhow::{bail, Context, Result};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The files of an SAE in a converted format, and the names its conversion reads.
#[derive(Debug, Clone)]
pub struct ConvertedFiles {
    pub format: SaeFormat,
    /// The hub repo it comes from (the registry's `repo_id`); some conversions infer the hook
    /// or the model from it.
    pub repo_id: Option<String>,
    /// Its folder in the repo (the registry's `path`); conversions infer the hook from it.
    pub folder: String,
    /// The format's config file; None where the format makes it optional and it is absent.
    pub config: Option<PathBuf>,
    pub weights: PathBuf,
}

/// Whether a format's config file must exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    Required,
    Optional,
}

/// Where a format keeps an SAE's files, relative to the repo root.
#[derive(Debug)]
struct Layout {
    config: Option<(String, Need)>,
    weights: String,
}

/// `folder/name`, or `name` alone for the repo root.
fn joined(folder: &str, name: &str) -> String {
    if folder.is_empty() {
        name.to_string()
    } else {
        format!("{folder}/{name}")
    }
}

impl Layout {
    /// The files of the SAE in `folder` (the registry's `path`) for `format`.
    fn of(format: SaeFormat, folder: &str) -> Result<Self> {
        let (config, weights) = match format {
            SaeFormat::GemmaScope | SaeFormat::GemmaScopeTranscoder => {
                (None, joined(folder, "params.npz"))
            }
            SaeFormat::MwhannaTranscoder
            | SaeFormat::QwenScope
            | SaeFormat::Goodfire
            | SaeFormat::DeepseekR1 => (None, folder.to_string()),
            SaeFormat::ConnorRobHookZ => (
                Some((connor_rob_hook_z::config_file(folder), Need::Required)),
                folder.to_string(),
            ),
            SaeFormat::GemmaScope2 => (
                Some((joined(folder, "config.json"), Need::Optional)),
                gemma_scope_2::weights_file(folder),
            ),
            SaeFormat::DictionaryLearning => (
                Some((joined(folder, "config.json"), Need::Required)),
                joined(folder, "ae.pt"),
            ),
            SaeFormat::LlamaScope => (
                Some((joined(folder, "hyperparams.json"), Need::Required)),
                joined(folder, "checkpoints/final.safetensors"),
            ),
            SaeFormat::LlamaScopeR1Distill => (
                Some((joined(folder, "config.json"), Need::Required)),
                joined(folder, "sae_weights.safetensors"),
            ),
            other => bail!(
                "SAE format {}: {}",
                other.conversion_func().unwrap_or("sae_lens"),
                other.unsupported_reason().unwrap_or("no file layout")
            ),
        };
        Ok(Self { config, weights })
    }
}

impl ConvertedFiles {
    /// Finds the files of an SAE of format `defaults.format`: on the hub in its repo's first
    /// `subfolders` entry; locally in each `subfolders` entry under `location`, then in
    /// `location` itself as the SAE's folder.
    pub(super) fn resolve(
        location: &Location,
        subfolders: &[&str],
        hub: &Hub,
        defaults: &SaeDefaults,
    ) -> Result<Self> {
        let format = defaults.format;
        if let Some(why) = format.unsupported_reason() {
            bail!(
                "SAE format {} cannot be read: {why}",
                format.conversion_func().unwrap_or("sae_lens")
            );
        }
        match location {
            Location::Hub { repo, revision } => {
                let folder = subfolders.first().copied().unwrap_or("");
                Self::from_hub(format, HubRepo::model(repo, revision), folder, hub)
            }
            Location::Local(path) => Self::find_local(format, path, subfolders, defaults),
        }
    }

    fn from_hub(format: SaeFormat, at: HubRepo, folder: &str, hub: &Hub) -> Result<Self> {
        let layout = Layout::of(format, folder)?;
        let config = match &layout.config {
            Some((name, Need::Required)) => Some(hub.get(at, name)?),
            Some((name, Need::Optional)) => hub.try_get(at, name),
            None => None,
        };
        let weights = hub
            .get(at, &layout.weights)
            .with_context(|| format!("hub repo {} has no {}", at.repo, layout.weights))?;
        Ok(Self {
            format,
            repo_id: Some(at.repo.to_string()),
            folder: folder.to_string(),
            config,
            weights,
        })
    }

    fn find_local(
        format: SaeFormat,
        path: &Path,
        subfolders: &[&str],
        defaults: &SaeDefaults,
    ) -> Result<Self> {
        // (folder relative to `path`, the folder name the conversion reads)
        let named = subfolders.iter().copied().find(|s| !s.is_empty());
        let own_name = named.map_or_else(|| path.display().to_string(), String::from);
        let candidates = subfolders
            .iter()
            .filter(|s| !s.is_empty())
            .map(|s| (s.to_string(), s.to_string()))
            .chain([(String::new(), own_name)]);
        let mut tried = Vec::new();
        for (folder, name) in candidates {
            let layout = Layout::of(format, &folder)?;
            let weights = path.join(&layout.weights);
            let config = layout
                .config
                .as_ref()
                .map(|(c, need)| (path.join(c), *need));
            let missing_config = matches!(&config, Some((c, Need::Required)) if !c.is_file());
            if !weights.is_file() || missing_config {
                let want = config.iter().map(|(c, _)| c).chain([&weights]);
                let want: Vec<String> = want.map(|p| p.display().to_string()).collect();
                tried.push(want.join(" + "));
                continue;
            }
            return Ok(Self {
                format,
                repo_id: defaults.repo_id.clone(),
                folder: name,
                config: config.map(|(c, _)| c).filter(|c| c.is_file()),
                weights,
            });
        }
        bail!(
            "no {} SAE found at {}; looked for:\n  {}",
            format.conversion_func().unwrap_or("sae_lens"),
            path.display(),
            tried.join("\n  ")
        )
    }
}

/// Reads the SAE's files into its config and SAELens-named tensors (their values, or their
/// shapes alone: see [`Reading`]).
pub(super) fn read(
    files: &ConvertedFiles,
    defaults: &SaeDefaults,
    reading: Reading,
) -> Result<(SaeConfig, HostTensors)> {
    match files.format {
        SaeFormat::GemmaScope => gemma_scope::read(files, defaults, reading),
        SaeFormat::DictionaryLearning => dictionary_learning::read(files, defaults, reading),
        SaeFormat::GemmaScopeTranscoder => gemma_scope::read_transcoder(files, defaults, reading),
        SaeFormat::MwhannaTranscoder => mwhanna::read(files, defaults, reading),
        SaeFormat::GemmaScope2 => gemma_scope_2::read(files, defaults, reading),
        SaeFormat::LlamaScope | SaeFormat::LlamaScopeR1Distill => {
            llama_scope::read(files, defaults, reading)
        }
        SaeFormat::QwenScope => qwen_scope::read(files, defaults, reading),
        SaeFormat::ConnorRobHookZ => connor_rob_hook_z::read(files, defaults, reading),
        SaeFormat::Goodfire => goodfire::read(files, defaults, reading),
        SaeFormat::DeepseekR1 => deepseek_r1::read(files, defaults, reading),
        other => bail!(
            "internal: SAE format {:?} has files but no reader",
            other.conversion_func()
        ),
    }
}

/// The dataset SAELens records for the Gemma Scope SAEs.
const PILE: &str = "monology/pile-uncopyrighted";

/// The cfg most of SAELens' conversions build: a JumpReLU SAE that reads the input as it is
/// (`apply_b_dec_to_input` false, no normalisation), windows of 1024 tokens from BOS, on
/// `dataset`, unless the registry's defaults say otherwise. Readers change what differs.
fn registry_config(
    d_in: usize,
    d_sae: usize,
    hook_name: String,
    defaults: &SaeDefaults,
    dataset: &str,
) -> SaeConfig {
    SaeConfig {
        d_in,
        d_sae,
        hook_name,
        architecture: Architecture::JumpRelu,
        apply_b_dec_to_input: false,
        normalize_activations: Normalization::None,
        neuronpedia_id: defaults.neuronpedia_id.clone(),
        context_size: defaults.context_size.or(Some(1024)),
        dataset_path: defaults
            .dataset_path
            .clone()
            .or_else(|| Some(dataset.to_string())),
        prepend_bos: Some(true),
        center_writing_weights: None,
        topk_selection: TopKSelection::Unscaled,
    }
}

/// The first `layer_N` in `folder` (as SAELens' `re.search(r"layer_(\d+)")` finds it).
fn layer_in(folder: &str) -> Option<usize> {
    folder.match_indices("layer_").find_map(|(i, m)| {
        let digits: String = folder[i + m.len()..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        digits.parse().ok()
    })
}

/// A JSON file's contents.
fn read_json(path: &Path) -> Result<Value> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let text = crate::encoding::text_of(&bytes, path)?;
    serde_json::from_str(text).with_context(|| format!("{} is not valid JSON", path.display()))
}

/// The 2-D shape of `key`, or an error naming the file.
fn matrix_shape(tensors: &HostTensors, key: &str, file: &Path) -> Result<(usize, usize)> {
    match tensors.get(key) {
        Some((s, _)) if s.len() == 2 => Ok((s[0], s[1])),
        Some((s, _)) => bail!(
            "{}: tensor '{key}' has shape {s:?}, expected 2 dimensions",
            file.display()
        ),
        None => bail!("{} has no tensor '{key}'", file.display()),
    }
}

/// Replaces `Linear` weight `from` (`[out, in]`) by its transpose named `to`.
fn transpose_linear(tensors: &mut HostTensors, from: &str, to: &str, file: &Path) -> Result<()> {
    let (shape, data) = tensors
        .remove(from)
        .with_context(|| format!("{} has no tensor '{from}'", file.display()))?;
    let [rows, cols] = shape[..] else {
        bail!(
            "{}: tensor '{from}' has shape {shape:?}, expected 2 dimensions",
            file.display()
        );
    };
    let data = data.map(|v| super::encode::transposed(&v, rows, cols));
    tensors.insert(to.to_string(), (vec![cols, rows], data));
    Ok(())
}

/// An SAE saved as torch `Linear` layers `{encoder}.weight [d_sae, d_in]`, `{encoder}.bias`,
/// `{decoder}.weight [d_in, d_sae]`, `{decoder}.bias`, renamed (and transposed) to SAELens'.
fn linear_layers(
    tensors: &mut HostTensors,
    encoder: &str,
    decoder: &str,
    file: &Path,
) -> Result<()> {
    transpose_linear(tensors, &format!("{encoder}.weight"), "W_enc", file)?;
    transpose_linear(tensors, &format!("{decoder}.weight"), "W_dec", file)?;
    rename(tensors, &format!("{encoder}.bias"), "b_enc");
    rename(tensors, &format!("{decoder}.bias"), "b_dec");
    Ok(())
}

/// Renames tensor `from` to `to` (absent: nothing happens).
fn rename(tensors: &mut HostTensors, from: &str, to: &str) {
    if let Some(t) = tensors.remove(from) {
        tensors.insert(to.to_string(), t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_layer_is_the_first_layer_n_of_the_folder() {
        assert_eq!(layer_in("resid_post/layer_12_width_16k"), Some(12));
        assert_eq!(layer_in("layer_x/layer_3/width_16k"), Some(3));
        assert_eq!(layer_in("embedding/width_4k"), None);
    }
}
