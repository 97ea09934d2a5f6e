//! The user's own prompts (`--prompts FILE`, one per line): each run through model and SAE on
//! its own, BOS prepended, and every token where the subgraph fires placed in the PC space of
//! the data's examples by projecting with the PCA fitted there (not refitted).
//!
//! Deliberate differences: the original refits the PCA on the prompts' examples and pads the
//! prompts of a batch of 10 to one length; here each prompt runs unpadded, so no pad position is
//! ever read.

use super::analysis::PromptExamples;
use crate::activations::HookedSae;
use crate::examples::gather::{add_batch, EncodedBatch, Examples, GatherSettings, TokenText};
use crate::pca_solver::Pca;
use crate::tokenizer::{encode_documents, TokenDecoder};
use anyhow::{Context, Result};
use candle_core::Device;
use std::path::Path;

/// The non-empty lines of a prompts file with their line numbers (from 1).
pub fn read_prompts(path: &Path) -> Result<Vec<(usize, String)>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read --prompts file {}", path.display()))?;
    let prompts: Vec<(usize, String)> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| (i + 1, l.to_string()))
        .collect();
    anyhow::ensure!(
        !prompts.is_empty(),
        "--prompts file {} has no prompts (one per line)",
        path.display()
    );
    Ok(prompts)
}

/// Runs every prompt and gathers the positions where any of `latents` fires (the gathering
/// rules of the data's examples, special tokens dropped when `remove_special`).
pub fn place_prompts(
    encoder: &mut HookedSae,
    prompts: &[(usize, String)],
    latents: &[u32],
    remove_special: bool,
    pca: &Pca,
    device: &Device,
) -> Result<PromptExamples> {
    let settings = GatherSettings {
        max_examples: None,
        trim_excess: false,
        remove_special_tokens: remove_special,
        keep_feature_acts: false,
        keep_nonzero_acts: true,
    };
    let decoder = TokenDecoder::new(encoder.runner.tokenizer.clone(), false);
    let decode = |id: u32| decoder.decode_one(id);
    let (d_in, d_sae) = (encoder.sae.cfg.d_in, encoder.sae.cfg.d_sae);
    let mut out = PromptExamples {
        examples: Examples::new(latents.to_vec()),
        prompts: prompts.len(),
        ..PromptExamples::default()
    };
    for (line, text) in prompts {
        let mut run = || -> Result<Examples> {
            let ids = encode_documents(&encoder.runner.tokenizer, vec![text.clone()])?;
            let tokens: Vec<u32> = std::iter::once(encoder.runner.bos)
                .chain(ids.into_iter().flatten())
                .collect();
            let positions: Vec<u32> = (0..tokens.len() as u32)
                .filter(|&p| {
                    !(remove_special && encoder.runner.special.contains(&tokens[p as usize]))
                })
                .collect();
            let mut found = vec![Examples::new(latents.to_vec())];
            if positions.is_empty() {
                return Ok(found.remove(0));
            }
            let resid =
                encoder
                    .runner
                    .residual(std::slice::from_ref(&tokens), &positions, device)?;
            let acts = encoder.encode(&resid)?;
            if let Some(bad) = acts.iter().position(|v| !v.is_finite()) {
                anyhow::bail!(
                    "SAE activation is {} at position {}: the model or SAE produced non-finite values",
                    acts[bad],
                    positions[bad / d_sae]
                );
            }
            let mut token_text = TokenText::new(&decode, tokens.len());
            let view = EncodedBatch {
                tokens: &tokens,
                context_size: tokens.len(),
                positions: &positions,
                acts: &acts,
                d_sae,
            };
            add_batch(
                &mut found,
                &view,
                &mut token_text,
                &encoder.sae.w_dec,
                d_in,
                &settings,
            )?;
            Ok(found.remove(0))
        };
        let found = run().with_context(|| format!("prompt on line {line} failed"))?;
        if found.found() == 0 {
            out.silent.push(*line);
        }
        out.line.extend(std::iter::repeat_n(*line, found.found()));
        out.examples.append(found);
    }
    out.scores = pca.transform(&out.examples.reconstructions, d_in);
    Ok(out)
}
