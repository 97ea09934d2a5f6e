//! `graphs`, `pca`, `subspace` and `stats`.

use crate::cli::{GraphsArgs, PcaArgs, StatsArgs, SubspaceArgs};
use crate::config::{Config, PcaConfig};
use crate::io::pyfmt::{float_repr, neat_sae_id};
use crate::results::layout::{find_sae_folders, SaeFolder};
use crate::stages::graph::{self, GraphOptions};
use crate::stages::pca::{self, PcaOptions};
use crate::stages::stats;
use crate::stages::subspace::{self, SubspaceOptions};
use anyhow::Result;
use std::path::Path;

fn graph_options(args: GraphsArgs) -> GraphOptions {
    GraphOptions {
        common: super::common(args.common),
        replace: args.replace,
    }
}

pub fn graphs(args: GraphsArgs) -> Result<()> {
    let config = super::load_config(&args.config, &args.saes.sae_ids)?;
    for summary in graph::run(&config, &graph_options(args))? {
        crate::report::summary(format_args!(
            "{} → {}",
            summary.sae_id,
            summary.dir.display()
        ));
        for t in &summary.thresholds {
            crate::report::summary(format_args!(
                "  activation threshold {}: edge threshold {}, largest subgraph {}, {} subgraphs, {} latents in subgraphs of 2+",
                float_repr(t.activation_threshold),
                float_repr(t.edge_threshold),
                t.largest_component,
                t.subgraphs,
                t.latents_in_subgraphs
            ));
        }
    }
    Ok(())
}

fn pca_options(args: PcaArgs) -> PcaOptions {
    PcaOptions {
        common: super::common(args.input.common),
        split_mb: args.split_mb,
        one_pass_per_subgraph: args.one_pass_per_subgraph,
    }
}

pub fn pca(args: PcaArgs) -> Result<()> {
    let config = super::load_pca_config(&args.input.config, &args.saes.sae_ids)?;
    for s in pca::run(&config, &pca_options(args))? {
        crate::report::summary(format_args!(
            "{}: {} subgraphs in {} batches ({:.1} s); {} skipped (too few examples)",
            s.sae_id,
            s.subgraphs_written,
            s.batches_read,
            s.seconds,
            s.skipped.len()
        ));
        for f in &s.h5_files {
            crate::report::summary(format_args!("  {}", f.display()));
        }
    }
    Ok(())
}

fn subspace_options(args: SubspaceArgs) -> SubspaceOptions {
    SubspaceOptions {
        common: super::common(args.input.common),
        sae_id: args.sae_id,
        threshold: args.threshold,
        subgraph: args.subgraph,
        subgraph_of_token: args.subgraph_of_token,
        batches: args.batches,
        prompts: args.prompts,
        points: args.points,
        out: args.out,
    }
}

pub fn subspace(args: SubspaceArgs) -> Result<()> {
    let config = PcaConfig::load(&args.input.config)?;
    let s = subspace::run(&config, &subspace_options(args))?;
    let ratio: Vec<String> = s
        .pca
        .explained_variance_ratio
        .iter()
        .map(|r| format!("{r:.3}"))
        .collect();
    crate::report::summary(format_args!(
        "{}: subgraph {} ({} latents) fired on {} tokens in {} batches; explained variance ratio {} ({:.1} s) → {}",
        s.sae_id,
        s.subgraph_id,
        s.latents.len(),
        s.examples,
        s.batches_read,
        ratio.join(", "),
        s.seconds,
        s.folder.display()
    ));
    if let Some(p) = &s.prompts {
        crate::report::summary(format_args!(
            "  prompts: {} tokens placed from {} prompts; nothing fired on lines {:?}",
            p.examples, p.prompts, p.silent_lines
        ));
    }
    Ok(())
}

pub fn stats(args: StatsArgs) -> Result<()> {
    let results = &args.results_dir;
    let rows = match &args.config {
        Some(path) => {
            let config = super::load_config(path, &args.sae_ids)?;
            let folders = stats_folders(results, &args.sae_ids, Some(&config))?;
            stats::run_with_config(results, &folders, &args.out, &config, args.batches)?
        }
        None => {
            let folders = stats_folders(results, &args.sae_ids, None)?;
            stats::run(results, &folders, &args.out, None)?
        }
    };
    for r in &rows {
        crate::report::summary(format_args!(
            "{} {} {} threshold {}: L0 {}, mean subgraph size (2+) {}, fraction in subgraphs {}{}",
            r.model,
            r.release,
            r.sae,
            float_repr(r.threshold),
            r.l0_mean.map_or("-".into(), |v| format!("{v:.2}")),
            r.mean_subgraph_size_without_singletons
                .map_or("-".into(), |v| format!("{v:.2}")),
            r.fraction_in_subgraphs
                .map_or("-".into(), |v| format!("{v:.3}")),
            r.token_pass.as_ref().map_or(String::new(), |t| format!(
                ", per token: {:.2} latents in {:.2} subgraphs",
                t.latent_l0_mean, t.subgraph_l0_any_mean
            )),
        ));
    }
    crate::report::summary(format_args!(
        "wrote {}/summary.csv, summary.json and figures",
        args.out.display()
    ));
    Ok(())
}

/// The SAE folders under `results` that `stats` reads: all of them, or with `--sae-id`s those
/// of the chosen SAEs (ids of `config`, already narrowed, or else SAE folder names under
/// `results`).
fn stats_folders(
    results: &Path,
    sae_ids: &[String],
    config: Option<&Config>,
) -> Result<Vec<SaeFolder>> {
    let mut folders = find_sae_folders(results)?;
    if sae_ids.is_empty() {
        return Ok(folders);
    }
    let chosen = match config {
        Some(config) => config.generation.sae_ids.clone(),
        None => {
            let mut listed: Vec<String> = Vec::new();
            for f in &folders {
                if !listed.contains(&f.sae) {
                    listed.push(f.sae.clone());
                }
            }
            let source = format!("results folder {}", results.display());
            super::select_sae_ids(&listed, sae_ids, &source)?
        }
    };
    folders.retain(|f| chosen.iter().any(|id| neat_sae_id(id) == f.sae));
    Ok(folders)
}
