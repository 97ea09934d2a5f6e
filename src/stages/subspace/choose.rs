//! `--subgraph-of-token`: the subgraph to analyse chosen by a rule from `pca`'s results, so a
//! script or demo names a token rather than a subgraph id (ids change whenever the SAE or the
//! co-occurrence counts change a little).
//!
//! The rule: among the subgraphs of 2+ latents that `pca` analysed (its published set in the
//! results folder, computed from the graphs set there now, for the same threshold), the one
//! whose examples have the token (exactly, leading space included) most often; ties go to the
//! larger share of its examples, then to the lower subgraph id.

use crate::io::pyfmt::threshold_tag;
use crate::results::h5::read_pca_file;
use crate::results::layout::pca_manifest;
use crate::results::node_table::NodeRow;
use crate::results::set::PublishedSet;
use crate::results::stage::{open_checked, Stage};
use anyhow::{bail, ensure, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// How often a subgraph's examples have the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenCount {
    pub subgraph: i64,
    pub latents: usize,
    /// Examples whose token is the token.
    pub count: usize,
    pub examples: usize,
}

/// The subgraph chosen for a token, and the others whose examples have it.
#[derive(Debug, Clone)]
pub struct TokenChoice {
    pub token: String,
    pub chosen: TokenCount,
    /// The other subgraphs whose examples have the token, best first.
    pub others: Vec<TokenCount>,
}

impl TokenChoice {
    /// One line saying which subgraph was picked and why.
    pub fn describe(&self) -> String {
        let c = &self.chosen;
        let others = if self.others.is_empty() {
            "no other subgraph `pca` analysed has it".to_string()
        } else {
            let list: Vec<String> = self
                .others
                .iter()
                .take(3)
                .map(|o| format!("subgraph {} ({} of {})", o.subgraph, o.count, o.examples))
                .collect();
            format!("next: {}", list.join(", "))
        };
        format!(
            "--subgraph-of-token {:?}: subgraph {} ({} latents), whose examples in `pca`'s results have {:?} most often ({} of {}); {others}",
            self.token, c.subgraph, c.latents, self.token, c.count, c.examples
        )
    }
}

/// The h5 files of the `pca` set in the results folder `dir`, checked: computed from the graphs
/// set there now, for the node table of `threshold`.
fn pca_h5_files(
    dir: &Path,
    neat: &str,
    threshold: f64,
    graphs: &PublishedSet,
) -> Result<(PublishedSet, Vec<PathBuf>)> {
    let manifest = dir.join(pca_manifest(neat));
    ensure!(
        manifest.is_file(),
        "--subgraph-of-token chooses among the subgraphs `pca` analysed, and {} has no `pca` results ({}): run `saecooc pca` first",
        dir.display(),
        manifest.display()
    );
    let set = open_checked(dir, Stage::Pca, &pca_manifest(neat), graphs)?;
    let summary: serde_json::Value = serde_json::from_slice(
        &std::fs::read(&manifest).with_context(|| format!("cannot read {}", manifest.display()))?,
    )
    .with_context(|| format!("{} is not valid JSON", manifest.display()))?;
    let analysed = summary["activation_threshold"].as_f64();
    ensure!(
        analysed == Some(threshold),
        "{} analysed the node table of threshold {}, not {}: run `saecooc pca` for threshold {} first, or choose with --subgraph",
        manifest.display(),
        analysed.map_or("(none)".into(), threshold_tag),
        threshold_tag(threshold),
        threshold_tag(threshold)
    );
    let files: Vec<PathBuf> = match &set.record {
        Some(r) => r
            .files
            .iter()
            .filter(|f| f.path.ends_with(".h5"))
            .map(|f| dir.join(&f.path))
            .collect(),
        None => summary["h5_files"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|p| p.as_str().map(PathBuf::from))
            .collect(),
    };
    Ok((set, files))
}

/// Per analysed subgraph of 2+ latents: its latents, how many examples have `token`, and
/// how many examples it has; and every example token with its count (for near misses).
fn count_token(
    files: &[PathBuf],
    set: &PublishedSet,
    rows: &[NodeRow],
    token: &str,
) -> Result<(Vec<TokenCount>, BTreeMap<String, usize>)> {
    let sizes: BTreeMap<i64, usize> = rows
        .iter()
        .map(|r| (r.subgraph_id, r.subgraph_size))
        .collect();
    let (mut counts, mut all) = (Vec::new(), BTreeMap::new());
    for file in files {
        set.verify(file)?;
        for g in read_pca_file(std::slice::from_ref(file))? {
            let latents = sizes.get(&g.subgraph_id).copied().unwrap_or(0);
            if latents < 2 {
                continue;
            }
            for t in &g.tokens {
                *all.entry(t.clone()).or_insert(0) += 1;
            }
            counts.push(TokenCount {
                subgraph: g.subgraph_id,
                latents,
                count: g.tokens.iter().filter(|t| *t == token).count(),
                examples: g.tokens.len(),
            });
        }
    }
    Ok((counts, all))
}

/// Best first: most examples with the token, then the larger share, then the lower id.
fn rank(counts: &mut [TokenCount]) {
    counts.sort_by(|a, b| {
        b.count
            .cmp(&a.count)
            .then((b.count * a.examples).cmp(&(a.count * b.examples)))
            .then(a.subgraph.cmp(&b.subgraph))
    });
}

/// Example tokens equal to `token` up to case and surrounding spaces, most frequent first, at
/// most five (for the error message).
fn near_tokens(all: &BTreeMap<String, usize>, token: &str) -> Vec<(String, usize)> {
    let key = token.trim().to_lowercase();
    let mut near: Vec<(String, usize)> = all
        .iter()
        .filter(|(t, _)| t.trim().to_lowercase() == key)
        .map(|(t, &n)| (t.clone(), n))
        .collect();
    near.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    near.truncate(5);
    near
}

/// The subgraph of `token` by the rule (see the module doc), from the `pca` set of the results
/// folder `dir`. Errors, with near misses, when no analysed subgraph's examples have it.
pub fn subgraph_of_token(
    dir: &Path,
    neat: &str,
    threshold: f64,
    graphs: &PublishedSet,
    rows: &[NodeRow],
    token: &str,
) -> Result<TokenChoice> {
    ensure!(!token.is_empty(), "--subgraph-of-token needs a token");
    let (set, files) = pca_h5_files(dir, neat, threshold, graphs)?;
    let (mut counts, all) = count_token(&files, &set, rows, token)?;
    let analysed = counts.len();
    counts.retain(|c| c.count > 0);
    rank(&mut counts);
    if counts.is_empty() {
        let mut why = format!(
            "no example of the {analysed} subgraphs of 2+ latents that `pca` analysed ({}) has the token {token:?}",
            dir.join(pca_manifest(neat)).display()
        );
        let near = near_tokens(&all, token);
        if !near.is_empty() {
            let list: Vec<String> = near
                .iter()
                .map(|(t, n)| format!("{t:?} ({n} examples)"))
                .collect();
            why.push_str(&format!(
                "; tokens match exactly, leading space included: did you mean {}?",
                list.join(" or ")
            ));
        }
        bail!("{why}; choose another token, or a subgraph with --subgraph");
    }
    let chosen = counts.remove(0);
    Ok(TokenChoice {
        token: token.to_string(),
        chosen,
        others: counts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(subgraph: i64, count: usize, examples: usize) -> TokenCount {
        TokenCount {
            subgraph,
            latents: 3,
            count,
            examples,
        }
    }

    #[test]
    fn most_examples_then_largest_share_then_lowest_id() {
        let mut counts = vec![
            count(9, 5, 100),
            count(4, 7, 1000),
            count(2, 5, 50),
            count(1, 5, 100),
        ];
        rank(&mut counts);
        let order: Vec<i64> = counts.iter().map(|c| c.subgraph).collect();
        assert_eq!(order, [4, 2, 1, 9]);
    }

    #[test]
    fn near_misses_are_offered_most_frequent_first() {
        let all: BTreeMap<String, usize> = [(" Nobody", 3), ("nobody", 7), (" Some", 9)]
            .into_iter()
            .map(|(t, n)| (t.to_string(), n))
            .collect();
        assert_eq!(
            near_tokens(&all, "Nobody"),
            [("nobody".to_string(), 7), (" Nobody".to_string(), 3)]
        );
    }
}
