//! The subspace's data files: every example as a CSV row (token, context, PCs, each latent's
//! activation), the custom prompts' examples likewise, the decoder-row PCA, and the h5 group in
//! `pca`'s layout (see docs/formats.md, "One subspace in depth").

use super::analysis::{Analysis, PromptExamples};
use crate::config::SaveOptions;
use crate::examples::gather::{top_tokens_and_context, TokenRow};
use crate::io::atomic::write_bytes;
use crate::pca_solver::COMPONENTS;
use crate::results::h5::{write_file, SubgraphOutput};
use anyhow::Result;
use std::fmt::Write;
use std::path::Path;

/// A CSV field, quoted when it holds a comma, quote or line break (quotes doubled).
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// `latent_{id}` column names.
fn latent_columns(latents: &[u32]) -> String {
    latents
        .iter()
        .map(|f| format!(",latent_{f}"))
        .collect::<String>()
}

/// One row's text columns, PCs and activations (floats in their shortest round-trip form).
fn row_cells(out: &mut String, row: &TokenRow, pcs: &[f32], acts: &[f32]) {
    let _ = write!(
        out,
        "{},{},{},{}",
        field(&row.str_token),
        field(&row.context),
        row.batch,
        row.pos
    );
    for v in pcs.iter().chain(acts) {
        let _ = write!(out, ",{v}");
    }
    out.push('\n');
}

/// `pca_df_subgraph_{sid}.csv`: `point_id, tokens, context, batch, pos, PC1, PC2, PC3`, then one
/// `latent_{id}` column per subgraph latent.
pub fn examples_csv(a: &Analysis) -> String {
    let k = a.latents().len();
    let mut out = format!(
        "point_id,tokens,context,batch,pos,PC1,PC2,PC3{}\n",
        latent_columns(a.latents())
    );
    for (i, row) in a.examples.rows.iter().enumerate() {
        let _ = write!(out, "{i},");
        row_cells(
            &mut out,
            row,
            &a.scores[i * COMPONENTS..(i + 1) * COMPONENTS],
            &a.examples.graph_acts[i * k..(i + 1) * k],
        );
    }
    out
}

/// `prompts_subgraph_{sid}.csv`: `line, tokens, context, batch, pos, PC1, PC2, PC3` and the
/// latent columns, one row per token of a prompt where the subgraph fired (`line`: the
/// prompt's line in the prompts file; `batch` is always 0, `pos` the position in the prompt
/// with BOS at 0).
pub fn prompts_csv(p: &PromptExamples) -> String {
    let k = p.examples.latents.len();
    let mut out = format!(
        "line,tokens,context,batch,pos,PC1,PC2,PC3{}\n",
        latent_columns(&p.examples.latents)
    );
    for (i, row) in p.examples.rows.iter().enumerate() {
        let _ = write!(out, "{},", p.line[i]);
        row_cells(
            &mut out,
            row,
            &p.scores[i * COMPONENTS..(i + 1) * COMPONENTS],
            &p.examples.graph_acts[i * k..(i + 1) * k],
        );
    }
    out
}

/// `pca_decoder_df_subgraph_{sid}.csv`: `latent, PC1, PC2, PC3` (the original's columns plus
/// the latent).
pub fn decoder_csv(latents: &[u32], scores: &[f32]) -> String {
    let mut out = String::from("latent,PC1,PC2,PC3\n");
    for (f, pcs) in latents.iter().zip(scores.chunks_exact(COMPONENTS)) {
        let _ = writeln!(out, "{f},{},{},{}", pcs[0], pcs[1], pcs[2]);
    }
    out
}

/// Writes the CSV text to `dir/name`; returns the name.
pub fn write_csv(dir: &Path, name: String, text: &str) -> Result<String> {
    write_bytes(&dir.join(&name), text.as_bytes())?;
    Ok(name)
}

/// Writes the subgraph's h5 group (the layout `pca` writes, `save` choosing the datasets) to
/// `dir/name`.
pub fn write_h5(
    dir: &Path,
    name: String,
    a: &Analysis,
    save: &SaveOptions,
    d_in: usize,
    d_sae: usize,
) -> Result<String> {
    let ex = &a.examples;
    let (top_3_tokens, example_context) = top_tokens_and_context(&ex.rows);
    let output = SubgraphOutput {
        subgraph_id: a.subgraph_id,
        tokens: ex.rows.iter().map(|r| r.str_token.clone()).collect(),
        contexts: ex.rows.iter().map(|r| r.context.clone()).collect(),
        batches: ex.rows.iter().map(|r| r.batch).collect(),
        positions: ex.rows.iter().map(|r| r.pos).collect(),
        n_latents: ex.latents.len(),
        reconstructions: ex.reconstructions.clone(),
        graph_acts: ex.graph_acts.clone(),
        feature_acts: ex.feature_acts.clone(),
        max_info: ex.max_info.clone(),
        top_3_tokens,
        example_context,
        pca_scores: a.scores.clone(),
    };
    write_file(&dir.join(&name), &[&output], save, d_in, d_sae)?;
    Ok(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_quoted_only_when_needed() {
        assert_eq!(field(" the"), " the");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("x\ny"), "\"x\ny\"");
        assert_eq!(
            decoder_csv(&[5], &[1.0, -0.5, 0.25]),
            "latent,PC1,PC2,PC3\n5,1,-0.5,0.25\n"
        );
    }
}
