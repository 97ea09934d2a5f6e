//! Collecting a subgraph's examples: the tokens where any of its latents fired
//! (`process_examples` of the original; see docs/formats.md, "PCA h5 files"), for many
//! subgraphs from the same batches. Shared by `pca` and `subspace`.
//!
//! Activations are not thresholded here (any subgraph latent > 0), as in the original.

use anyhow::Result;

/// Tokens of context on each side in `context` strings (`make_token_df`'s 10 / 10).
pub const CONTEXT_TOKENS: usize = 10;

/// One example's row of the original's token table (`make_token_df`).
#[derive(Debug, Clone, PartialEq)]
pub struct TokenRow {
    pub str_token: String,
    /// Up to 10 previous tokens, `|token|`, up to 10 following ones (same window only).
    pub context: String,
    /// Window within its batch.
    pub batch: i64,
    /// Position within the window.
    pub pos: i64,
}

/// Everything gathered for one subgraph.
#[derive(Debug, Clone, Default)]
pub struct Examples {
    /// The subgraph's latents, in node-table order.
    pub latents: Vec<u32>,
    pub rows: Vec<TokenRow>,
    /// `rows × d_in`: the subgraph's part of each reconstruction, `acts[F] · W_dec[F]`.
    pub reconstructions: Vec<f32>,
    /// `rows × |F|`.
    pub graph_acts: Vec<f32>,
    /// `rows × d_sae`, only when asked for.
    pub feature_acts: Vec<f32>,
    /// Per row: every latent with a non-zero activation, `(latent, activation)` in latent
    /// order, only when asked for (a sparse `feature_acts`).
    pub nonzero_acts: Vec<Vec<(u32, f32)>>,
    /// Per row: (max activation, its latent, 1.0 if that latent is in the subgraph).
    pub max_info: Vec<[f32; 3]>,
    /// True once `max_examples` are in.
    pub done: bool,
    /// True when the first pass found too few for a PCA and the batches were doubled.
    pub retried: bool,
}

impl Examples {
    /// An empty collection for `latents`.
    pub fn new(latents: Vec<u32>) -> Self {
        Self {
            latents,
            ..Self::default()
        }
    }

    /// Examples found so far.
    pub fn found(&self) -> usize {
        self.rows.len()
    }

    /// Appends the examples of `other` (gathered for the same latents).
    pub fn append(&mut self, other: Examples) {
        self.rows.extend(other.rows);
        self.reconstructions.extend(other.reconstructions);
        self.graph_acts.extend(other.graph_acts);
        self.feature_acts.extend(other.feature_acts);
        self.nonzero_acts.extend(other.nonzero_acts);
        self.max_info.extend(other.max_info);
    }

    /// Drops every example after the first `keep`.
    fn truncate(&mut self, keep: usize, d_in: usize, d_sae: usize, keep_feature_acts: bool) {
        self.rows.truncate(keep);
        self.reconstructions.truncate(keep * d_in);
        self.graph_acts.truncate(keep * self.latents.len());
        if keep_feature_acts {
            self.feature_acts.truncate(keep * d_sae);
        }
        self.nonzero_acts.truncate(keep);
        self.max_info.truncate(keep);
    }
}

/// How examples are collected.
#[derive(Debug, Clone, Copy)]
pub struct GatherSettings {
    pub max_examples: Option<usize>,
    pub trim_excess: bool,
    pub remove_special_tokens: bool,
    pub keep_feature_acts: bool,
    /// Keep each example's non-zero activations over all latents ([`Examples::nonzero_acts`]).
    pub keep_nonzero_acts: bool,
}

/// One batch of windows with the SAE activations of its read positions.
pub struct EncodedBatch<'a> {
    /// Token ids, `windows × context` row-major.
    pub tokens: &'a [u32],
    pub context_size: usize,
    /// The read positions (flat indices into `tokens`; special tokens already dropped when
    /// asked), one per row of `acts`.
    pub positions: &'a [u32],
    /// SAE activations, `positions × d_sae` row-major.
    pub acts: &'a [f32],
    pub d_sae: usize,
}

/// Decodes tokens on demand, once per position of a batch.
pub struct TokenText<'a> {
    decode: &'a dyn Fn(u32) -> Result<String>,
    cache: Vec<Option<String>>,
}

impl<'a> TokenText<'a> {
    pub fn new(decode: &'a dyn Fn(u32) -> Result<String>, positions: usize) -> Self {
        Self {
            decode,
            cache: vec![None; positions],
        }
    }

    fn get(&mut self, tokens: &[u32], p: usize) -> Result<&str> {
        if self.cache[p].is_none() {
            self.cache[p] = Some((self.decode)(tokens[p])?);
        }
        Ok(self.cache[p].as_deref().unwrap_or_default())
    }

    /// `prefix|token|suffix` within the window of position `p`.
    fn context(&mut self, tokens: &[u32], p: usize, context_size: usize) -> Result<String> {
        let start = p - p % context_size;
        let end = start + context_size;
        let mut out = String::new();
        for q in p.saturating_sub(CONTEXT_TOKENS).max(start)..p {
            out.push_str(self.get(tokens, q)?);
        }
        out.push('|');
        out.push_str(self.get(tokens, p)?);
        out.push('|');
        for q in (p + 1)..(p + 1 + CONTEXT_TOKENS).min(end) {
            out.push_str(self.get(tokens, q)?);
        }
        Ok(out)
    }
}

/// (max, argmax, in-graph flag) of one activation row; the first maximum on ties.
fn max_info(row: &[f32], latents: &[u32]) -> [f32; 3] {
    let mut best = 0;
    for (j, &v) in row.iter().enumerate() {
        if v > row[best] {
            best = j;
        }
    }
    let in_graph = latents.contains(&(best as u32));
    [row[best], best as f32, if in_graph { 1.0 } else { 0.0 }]
}

/// The non-zero entries of one activation row, `(latent, activation)` in latent order.
fn nonzero(row: &[f32]) -> Vec<(u32, f32)> {
    row.iter()
        .enumerate()
        .filter(|(_, &v)| v != 0.0)
        .map(|(j, &v)| (j as u32, v))
        .collect()
}

/// Adds the fired positions of `batch` to every collection of `collections` that is not done.
/// `w_dec` holds the folded decoder rows (`d_sae × d_in`).
pub fn add_batch<'e>(
    collections: impl IntoIterator<Item = &'e mut Examples>,
    batch: &EncodedBatch,
    text: &mut TokenText,
    w_dec: &[f32],
    d_in: usize,
    settings: &GatherSettings,
) -> Result<()> {
    let d_sae = batch.d_sae;
    for ex in collections.into_iter().filter(|e| !e.done) {
        let before = ex.found();
        for (&p, row) in batch.positions.iter().zip(batch.acts.chunks_exact(d_sae)) {
            let p = p as usize;
            if !ex.latents.iter().any(|&f| row[f as usize] > 0.0) {
                continue;
            }
            let start = ex.reconstructions.len();
            ex.reconstructions.resize(start + d_in, 0.0);
            let recon = &mut ex.reconstructions[start..];
            for &f in &ex.latents {
                let a = row[f as usize];
                ex.graph_acts.push(a);
                if a != 0.0 {
                    let dir = &w_dec[f as usize * d_in..(f as usize + 1) * d_in];
                    recon.iter_mut().zip(dir).for_each(|(r, w)| *r += a * w);
                }
            }
            if settings.keep_feature_acts {
                ex.feature_acts.extend_from_slice(row);
            }
            if settings.keep_nonzero_acts {
                ex.nonzero_acts.push(nonzero(row));
            }
            ex.max_info.push(max_info(row, &ex.latents));
            ex.rows.push(TokenRow {
                str_token: text.get(batch.tokens, p)?.to_string(),
                context: text.context(batch.tokens, p, batch.context_size)?,
                batch: (p / batch.context_size) as i64,
                pos: (p % batch.context_size) as i64,
            });
        }
        if let Some(max) = settings.max_examples {
            if ex.found() >= max {
                ex.done = true;
                if settings.trim_excess {
                    ex.truncate(max, d_in, d_sae, settings.keep_feature_acts);
                }
            }
        }
        debug_assert!(ex.found() >= before);
    }
    Ok(())
}

/// The three most common fired tokens with their counts (ties: first seen first, as
/// `Counter.most_common`), and the context of the first example of the most common one.
pub fn top_tokens_and_context(rows: &[TokenRow]) -> (Vec<(String, usize)>, String) {
    let mut counts: Vec<(String, usize)> = Vec::new();
    for r in rows {
        match counts.iter_mut().find(|(t, _)| *t == r.str_token) {
            Some((_, c)) => *c += 1,
            None => counts.push((r.str_token.clone(), 1)),
        }
    }
    // Stable sort keeps first-seen order among equal counts.
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    counts.truncate(3);
    let context = counts
        .first()
        .and_then(|(top, _)| rows.iter().find(|r| &r.str_token == top))
        .map(|r| r.context.clone())
        .unwrap_or_default();
    (counts, context)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(id: u32) -> Result<String> {
        Ok(format!("t{id}"))
    }

    /// The original's test_make_token_df contexts, with 1 and 10 tokens of context.
    #[test]
    fn contexts_stop_at_the_window_edges() {
        let tokens = [1, 2, 3, 4, 5, 6];
        let f: &dyn Fn(u32) -> Result<String> = &decode;
        let mut text = TokenText::new(f, tokens.len());
        assert_eq!(text.context(&tokens, 0, 3).unwrap(), "|t1|t2t3");
        assert_eq!(text.context(&tokens, 1, 3).unwrap(), "t1|t2|t3");
        assert_eq!(text.context(&tokens, 2, 3).unwrap(), "t1t2|t3|");
        assert_eq!(text.context(&tokens, 3, 3).unwrap(), "|t4|t5t6");
        let long: Vec<u32> = (0..30).collect();
        let mut text = TokenText::new(f, long.len());
        let c = text.context(&long, 15, 30).unwrap();
        assert_eq!(
            c,
            "t5t6t7t8t9t10t11t12t13t14|t15|t16t17t18t19t20t21t22t23t24t25"
        );
    }

    /// Hand-computed: two windows of 3 tokens, 4 latents, subgraph {1, 3}.
    #[test]
    fn fired_positions_and_reconstructions() {
        // Positions 0 and 3 hold the special token 0: the stream does not read them.
        let tokens = [0, 7, 8, 0, 9, 7];
        let positions = [1, 2, 4, 5];
        #[rustfmt::skip]
        let acts = [
            0.0, 0.0, 2.0, 0.0, // not fired (latent 2 is not in the subgraph)
            0.0, 1.0, 0.0, 3.0, // fired
            4.0, 0.0, 0.0, 0.5, // fired; max is latent 0 (not in graph)
            0.0, 2.0, 0.0, 0.0, // fired
        ];
        let w_dec = [
            1.0, 0.0, // latent 0
            0.0, 1.0, // latent 1
            1.0, 1.0, // latent 2
            2.0, -1.0, // latent 3
        ];
        let batch = EncodedBatch {
            tokens: &tokens,
            context_size: 3,
            positions: &positions,
            acts: &acts,
            d_sae: 4,
        };
        let settings = GatherSettings {
            max_examples: Some(2),
            trim_excess: true,
            remove_special_tokens: true,
            keep_feature_acts: false,
            keep_nonzero_acts: true,
        };
        let f: &dyn Fn(u32) -> Result<String> = &decode;
        let mut text = TokenText::new(f, tokens.len());
        let mut ex = vec![Examples::new(vec![1, 3])];
        add_batch(&mut ex, &batch, &mut text, &w_dec, 2, &settings).unwrap();
        let e = &ex[0];
        // Three fired, trimmed to max_examples = 2.
        assert_eq!(e.found(), 2);
        assert!(e.done);
        assert_eq!(e.graph_acts, [1.0, 3.0, 0.0, 0.5]);
        // 1·(0,1) + 3·(2,−1) = (6, −2); 0.5·(2,−1) = (1, −0.5)
        assert_eq!(e.reconstructions, [6.0, -2.0, 1.0, -0.5]);
        assert_eq!(e.max_info, [[3.0, 3.0, 1.0], [4.0, 0.0, 0.0]]);
        assert_eq!(
            e.nonzero_acts,
            [vec![(1, 1.0), (3, 3.0)], vec![(0, 4.0), (3, 0.5)]]
        );
        assert_eq!(
            e.rows[1],
            TokenRow {
                str_token: "t9".into(),
                context: "t0|t9|t7".into(),
                batch: 1,
                pos: 1
            }
        );
    }

    /// The original's test_top_tokens_and_context.
    #[test]
    fn top_three_with_first_seen_ties() {
        let row = |t: &str, c: &str| TokenRow {
            str_token: t.into(),
            context: c.into(),
            batch: 0,
            pos: 0,
        };
        let rows = [
            row("b", "1"),
            row("a", "2"),
            row("a", "3"),
            row("c", "4"),
            row("b", "5"),
            row("d", "6"),
        ];
        let (top, context) = top_tokens_and_context(&rows);
        assert_eq!(top, [("b".into(), 2), ("a".into(), 2), ("c".into(), 1)]);
        assert_eq!(context, "1");
        assert_eq!(top_tokens_and_context(&[]), (vec![], String::new()));
    }
}
