//! The built-in table of the paper's models and SAE releases: where they live on the Hugging
//! Face hub, which data they were trained on, and their Neuronpedia ids.
//!
//! Config files name SAEs as the original does, by `(model_name, sae_release_short, sae_id)`;
//! this table turns that into hub locations when `[source]` does not say otherwise.

use crate::io::pyfmt::neat_sae_id;

/// Hub defaults for a model name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelEntry {
    pub name: &'static str,
    pub hub_repo: &'static str,
}

const MODELS: &[ModelEntry] = &[
    ModelEntry {
        name: "gpt2-small",
        hub_repo: "openai-community/gpt2",
    },
    ModelEntry {
        name: "gpt2",
        hub_repo: "openai-community/gpt2",
    },
    ModelEntry {
        name: "gemma-2-2b",
        hub_repo: "google/gemma-2-2b",
    },
];

/// The hub repo of a known model name.
pub fn model_repo(model_name: &str) -> Option<&'static str> {
    MODELS
        .iter()
        .find(|m| m.name == model_name)
        .map(|m| m.hub_repo)
}

/// Where one SAE of a known release lives, and what it was trained with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaeEntry {
    /// SAELens release name (`gpt2-small-res-jb`, `gemma-scope-2b-pt-res-canonical`, ...).
    pub release: String,
    pub hub_repo: &'static str,
    /// Folder of this SAE inside the repo.
    pub subfolder: String,
    pub neuronpedia_id: Option<String>,
    pub hook_name: Option<String>,
    pub dataset: &'static str,
    pub context_size: usize,
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

/// Gemma Scope canonical SAEs are aliases for one `average_l0_*` folder each (SAELens table).
fn gemma_canonical_path(sae_id: &str) -> Option<&'static str> {
    let table: &[(&str, &str)] = &[
        (
            "layer_0/width_16k/canonical",
            "layer_0/width_16k/average_l0_105",
        ),
        (
            "layer_12/width_16k/canonical",
            "layer_12/width_16k/average_l0_82",
        ),
        (
            "layer_18/width_16k/canonical",
            "layer_18/width_16k/average_l0_74",
        ),
        (
            "layer_21/width_16k/canonical",
            "layer_21/width_16k/average_l0_70",
        ),
        (
            "layer_12/width_32k/canonical",
            "layer_12/width_32k/average_l0_76",
        ),
        (
            "layer_12/width_65k/canonical",
            "layer_12/width_65k/average_l0_72",
        ),
        (
            "layer_12/width_262k/canonical",
            "layer_12/width_262k/average_l0_121",
        ),
        (
            "layer_12/width_524k/canonical",
            "layer_12/width_524k/average_l0_115",
        ),
        (
            "layer_12/width_1m/canonical",
            "layer_12/width_1m/average_l0_107",
        ),
    ];
    table.iter().find(|(id, _)| *id == sae_id).map(|(_, p)| *p)
}

fn number_after<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    let start = text.find(prefix)? + prefix.len();
    let rest = &text[start..];
    let end = rest
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(rest.len());
    (end > 0).then(|| &rest[..end])
}

/// Looks up an SAE of the paper's releases. `None` for releases the table does not know.
pub fn sae_entry(model_name: &str, release_short: &str, sae_id: &str) -> Option<SaeEntry> {
    let release = release_name(model_name, release_short);
    let layer = number_after(sae_id, "blocks.").or_else(|| number_after(sae_id, "layer_"));
    match release.as_str() {
        "gpt2-small-res-jb" => Some(SaeEntry {
            hub_repo: "jbloom/GPT2-Small-SAEs-Reformatted",
            subfolder: sae_id.to_string(),
            // Neuronpedia numbers residual SAEs by the block they read into: resid_post of
            // block L is `{L+1}-res-jb`.
            neuronpedia_id: layer.and_then(|l| l.parse::<usize>().ok()).map(|l| {
                let np_layer = if sae_id.ends_with("hook_resid_post") {
                    l + 1
                } else {
                    l
                };
                format!("gpt2-small/{np_layer}-res-jb")
            }),
            hook_name: Some(sae_id.to_string()),
            dataset: "Skylion007/openwebtext",
            context_size: 128,
            release,
        }),
        "gpt2-small-res-jb-feature-splitting" => {
            let width = sae_id
                .rsplit('_')
                .next()
                .filter(|w| w.chars().all(|c| c.is_ascii_digit()));
            Some(SaeEntry {
                hub_repo: "jbloom/GPT2-Small-Feature-Splitting-Experiment-Layer-8",
                subfolder: sae_id.to_string(),
                neuronpedia_id: layer
                    .zip(width)
                    .map(|(l, w)| format!("gpt2-small/{l}-res_fs{w}-jb")),
                hook_name: layer.map(|l| format!("blocks.{l}.hook_resid_pre")),
                dataset: "Skylion007/openwebtext",
                context_size: 128,
                release,
            })
        }
        "gemma-scope-2b-pt-res-canonical" | "gemma-scope-2b-pt-res" => {
            let canonical = release.ends_with("canonical");
            let subfolder = if canonical {
                gemma_canonical_path(sae_id)
                    .map(String::from)
                    .unwrap_or_else(|| sae_id.to_string())
            } else {
                sae_id.to_string()
            };
            let width = sae_id.split('/').find_map(|p| p.strip_prefix("width_"));
            Some(SaeEntry {
                hub_repo: "google/gemma-scope-2b-pt-res",
                subfolder,
                // The original's CSVs for the average_l0 release have no Neuronpedia links.
                neuronpedia_id: if canonical {
                    layer
                        .zip(width)
                        .map(|(l, w)| format!("gemma-2-2b/{l}-gemmascope-res-{w}"))
                } else {
                    None
                },
                hook_name: layer.map(|l| format!("blocks.{l}.hook_resid_post")),
                dataset: "monology/pile-uncopyrighted",
                context_size: 1024,
                release,
            })
        }
        _ => None,
    }
}

/// The default SAE subfolder when a release is unknown: the sae id itself.
pub fn default_subfolder(sae_id: &str) -> String {
    sae_id.to_string()
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

    #[test]
    fn paper_releases_resolve() {
        let e = sae_entry("gpt2-small", "res-jb", "blocks.8.hook_resid_pre").unwrap();
        assert_eq!(e.release, "gpt2-small-res-jb");
        assert_eq!(e.hub_repo, "jbloom/GPT2-Small-SAEs-Reformatted");
        assert_eq!(e.subfolder, "blocks.8.hook_resid_pre");
        assert_eq!(e.neuronpedia_id.as_deref(), Some("gpt2-small/8-res-jb"));
        let e = sae_entry("gpt2-small", "res-jb", "blocks.11.hook_resid_post").unwrap();
        assert_eq!(e.neuronpedia_id.as_deref(), Some("gpt2-small/12-res-jb"));
        let e = sae_entry(
            "gemma-2-2b",
            "gemma-scope-2b-pt-res-canonical",
            "layer_12/width_65k/canonical",
        )
        .unwrap();
        assert_eq!(e.subfolder, "layer_12/width_65k/average_l0_72");
        assert_eq!(
            e.neuronpedia_id.as_deref(),
            Some("gemma-2-2b/12-gemmascope-res-65k")
        );

        let e = sae_entry(
            "gpt2-small",
            "res-jb-feature-splitting",
            "blocks.8.hook_resid_pre_768",
        )
        .unwrap();
        assert_eq!(
            e.neuronpedia_id.as_deref(),
            Some("gpt2-small/8-res_fs768-jb")
        );
        assert_eq!(e.hook_name.as_deref(), Some("blocks.8.hook_resid_pre"));

        let e = sae_entry(
            "gemma-2-2b",
            "gemma-scope-2b-pt-res-canonical",
            "layer_12/width_16k/canonical",
        )
        .unwrap();
        assert_eq!(e.release, "gemma-scope-2b-pt-res-canonical");
        assert_eq!(e.subfolder, "layer_12/width_16k/average_l0_82");
        assert_eq!(
            e.neuronpedia_id.as_deref(),
            Some("gemma-2-2b/12-gemmascope-res-16k")
        );
        assert_eq!(e.hook_name.as_deref(), Some("blocks.12.hook_resid_post"));

        let e = sae_entry(
            "gemma-2-2b",
            "gemma-scope-2b-pt-res",
            "layer_12/width_16k/average_l0_82",
        )
        .unwrap();
        assert_eq!(e.subfolder, "layer_12/width_16k/average_l0_82");
        assert_eq!(e.neuronpedia_id, None);

        assert!(sae_entry("tiny", "synthetic", "blocks.1.hook_resid_pre").is_none());
        assert_eq!(
            expand_sae_path("saes/{neat_sae_id}", "blocks.1.x").as_deref(),
            Some("saes/blocks_1_x")
        );
    }
}
