//! The hook each registry SAE reads, as SAELens' loaders decide it without downloading
//! anything: from the SAE id, the repo and folder names, or the release's config overrides.
//! `None` where only the SAE's own cfg.json says (it is read when the SAE is loaded).

use super::data::{RegistrySae, Release};
use crate::sae::SaeFormat;

/// The TransformerLens hook name in an SAE id such as `blocks.8.hook_resid_pre_24576`
/// (feature-splitting widths), `blocks.12.hook_resid_post__trainer_0` (dictionary_learning
/// trainers) or `blocks.0.hook_z` (TransformerLens' short name of `attn.hook_z`); else a
/// Gemma Scope `layer_L/...` id's residual stream.
pub fn hook_from_sae_id(sae_id: &str) -> Option<String> {
    if let Some(rest) = sae_id.strip_prefix("blocks.") {
        let (layer, hook) = rest.split_once('.')?;
        let hook = hook.split("__").next()?;
        let hook = hook.split('_').take(3).collect::<Vec<_>>().join("_");
        let hook = match hook.as_str() {
            "hook_z" => "attn.hook_z".to_string(),
            _ => hook,
        };
        return Some(format!("blocks.{layer}.{hook}"));
    }
    let layer = sae_id.strip_prefix("layer_")?.split('/').next()?;
    Some(format!("blocks.{layer}.hook_resid_post"))
}

/// The first number after `prefix` in `text`.
fn number_after(text: &str, prefix: &str) -> Option<usize> {
    let start = text.find(prefix)? + prefix.len();
    let digits: String = text[start..]
        .chars()
        .take_while(|c| c.is_ascii_digit())
        .collect();
    digits.parse().ok()
}

/// The hook of `sae` of `release`, as SAELens' loader for its format would name it.
pub fn expected_hook(release: &Release, sae: &RegistrySae) -> Option<String> {
    let overridden = release
        .config_overrides
        .as_ref()
        .and_then(|o| o.get("hook_name"))
        .and_then(|h| h.as_str());
    if let Some(hook) = overridden {
        return Some(hook.to_string());
    }
    let format = SaeFormat::from_conversion_func(release.conversion_func.as_deref()).ok()?;
    let (id, path, repo) = (sae.id(), sae.path(), release.repo_id.as_str());
    let layer = || number_after(path, "layer_").or_else(|| number_after(id, "layer_"));
    let at = |kind: &str| layer().map(|l| format!("blocks.{l}.{kind}"));
    match format {
        SaeFormat::GemmaScope => {
            if repo.contains("res") && path.contains("embedding") {
                Some("hook_embed".into())
            } else if repo.contains("res") {
                at("hook_resid_post")
            } else if repo.contains("mlp") {
                at("hook_mlp_out")
            } else if repo.contains("att") {
                at("attn.hook_z")
            } else {
                None
            }
        }
        SaeFormat::GemmaScope2 => {
            if path.contains("transcoder") || path.contains("clt") {
                at("ln2.hook_normalized")
            } else if path.contains("resid_post") {
                at("hook_resid_post")
            } else if path.contains("attn_out") {
                at("attn.hook_z")
            } else if path.contains("mlp_out") {
                at("hook_mlp_out")
            } else {
                None
            }
        }
        SaeFormat::GemmaScopeTranscoder | SaeFormat::MwhannaTranscoder => at("ln2.hook_normalized"),
        SaeFormat::LlamaScope | SaeFormat::LlamaScopeR1Distill => llama_scope_hook(id),
        SaeFormat::DictionaryLearning => hook_from_sae_id(id).or_else(|| at("hook_resid_post")),
        SaeFormat::QwenScope => {
            number_after(id, "layer").map(|l| format!("blocks.{l}.hook_resid_post"))
        }
        SaeFormat::SaeLens
        | SaeFormat::ConnorRobHookZ
        | SaeFormat::Temporal
        | SaeFormat::Goodfire
        | SaeFormat::DeepseekR1 => id
            .starts_with("blocks.")
            .then(|| hook_from_sae_id(id))
            .flatten()
            .or_else(|| {
                matches!(format, SaeFormat::Goodfire)
                    .then(|| at("hook_resid_post"))
                    .flatten()
            }),
        SaeFormat::MntssCltLayer => None,
    }
}

/// Llama Scope ids name the layer and the site: `l{L}r` (residual stream after the block),
/// `l{L}a` (attention output), `l{L}m` (MLP output), `l{L}tc` (transcoder: the MLP's input).
fn llama_scope_hook(id: &str) -> Option<String> {
    let rest = id.strip_prefix('l')?;
    let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
    let layer: usize = digits.parse().ok()?;
    let site = &rest[digits.len()..];
    let kind = if site.starts_with("tc") {
        "ln2.hook_normalized"
    } else if site.starts_with('r') {
        "hook_resid_post"
    } else if site.starts_with('a') {
        "hook_attn_out"
    } else if site.starts_with('m') {
        "hook_mlp_out"
    } else {
        return None;
    };
    Some(format!("blocks.{layer}.{kind}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sae_ids_name_their_hooks() {
        let hook = |id: &str| hook_from_sae_id(id).unwrap();
        assert_eq!(
            hook("blocks.8.hook_resid_pre_24576"),
            "blocks.8.hook_resid_pre"
        );
        assert_eq!(hook("blocks.8.hook_resid_pre"), "blocks.8.hook_resid_pre");
        assert_eq!(
            hook("blocks.12.hook_resid_post__trainer_0"),
            "blocks.12.hook_resid_post"
        );
        assert_eq!(hook("blocks.0.hook_z"), "blocks.0.attn.hook_z");
        assert_eq!(hook("blocks.3.attn.hook_z"), "blocks.3.attn.hook_z");
        assert_eq!(hook("blocks.5.hook_mlp_out"), "blocks.5.hook_mlp_out");
        assert_eq!(
            hook("layer_12/width_16k/canonical"),
            "blocks.12.hook_resid_post"
        );
        assert_eq!(
            llama_scope_hook("l7a_32x").unwrap(),
            "blocks.7.hook_attn_out"
        );
        assert_eq!(
            llama_scope_hook("l31r_8x").unwrap(),
            "blocks.31.hook_resid_post"
        );
        assert_eq!(llama_scope_hook("l0m_8x").unwrap(), "blocks.0.hook_mlp_out");
        assert_eq!(
            llama_scope_hook("l2tc_8x").unwrap(),
            "blocks.2.ln2.hook_normalized"
        );
    }
}
