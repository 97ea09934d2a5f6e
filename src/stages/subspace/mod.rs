//! `saecooc subspace`: one chosen subgraph in depth, as the paper's case studies were made.
//!
//! Reads the node table `graphs` wrote (its result set checked), gathers the tokens where the
//! subgraph fires with `pca`'s rules (so its PCA equals `pca`'s for the same subgraph), fits
//! the PCA of the reconstructions and of the decoder rows, picks representative points, clusters
//! examples and latents (Ward), places the user's own prompts in the PC space, and writes data
//! files, figures (PNG + interactive HTML) and a JSON summary into
//! `{out}/{model}/{release}/{neat_sae_id}/pca_{ts}_subgraph_{sid}_n_batches_{N}_graphs_{id}/`
//! (one folder per results folder and graphs set analysed), published as a whole (see
//! docs/formats.md, "One subspace in depth").

pub mod analysis;
pub mod choose;
mod drawing;
pub mod figures;
pub mod points;
pub mod prompts;
pub mod tables;
pub mod ward;

use crate::activations::HookedSae;
use crate::config::{check_finite, check_name, PcaConfig, StageCommon};
use crate::examples::gather::{Examples, GatherSettings};
use crate::examples::pass::{gather_sweep, Pass, SaeGathering};
use crate::harness::{locate_node_table, lock_output, publish, NodeTableInput, SetSummary};
use crate::inputs::{resolve, InputSpec, ResolveOptions, ResolvedRun};
use crate::io::atomic::write_bytes;
use crate::io::hash::sha256_file;
use crate::io::pyfmt::neat_sae_id;
use crate::pca_solver::COMPONENTS;
use crate::results::layout::{
    check_creatable, sae_names_dir, sae_results_dir, subspace_decoder_csv_name,
    subspace_examples_csv_name, subspace_folder_name, subspace_h5_name, subspace_manifest,
    subspace_prompts_csv_name, GraphFiles, SUBSPACE_PICTURE,
};
use crate::results::lock::FolderLock;
use crate::results::node_table::NodeRow;
use crate::results::set::{Ownership, PublishedSet, SetRecord, Staging};
use crate::results::stage::Stage;
use crate::results::subspace_summary::{PromptsInfo, ShownPoint, SubspaceSummary, Variance};
use analysis::{decoder_pca, Analysis, PromptExamples};
use anyhow::{bail, ensure, Context, Result};
use candle_core::Device;
use figures::{Figures, Membership};
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Command-line options of a `subspace` run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct SubspaceOptions {
    pub common: StageCommon,
    /// The SAE (default: the config's only [model] sae_ids entry).
    pub sae_id: Option<String>,
    /// Activation threshold of the node table to read (default: [processing]
    /// activation_threshold).
    pub threshold: Option<f64>,
    /// The subgraph id (node table column subgraph_id).
    pub subgraph: Option<i64>,
    /// Choose the subgraph by a token instead (run `pca` first): among the subgraphs of 2+
    /// latents that `pca` analysed, the one whose examples have the token most often (exactly,
    /// leading space included, e.g. " first"); ties: the larger share of its examples, then
    /// the lower id. Says which subgraph it picked and why.
    pub subgraph_of_token: Option<String>,
    /// Batches of windows to search for examples (default: [processing]
    /// n_batches_reconstruction).
    pub batches: Option<usize>,
    /// A text file of prompts, one per line, placed into the subspace's PC space.
    pub prompts: Option<PathBuf>,
    /// Example ids (point_id) to show in depth, e.g. 0,17,42.
    pub points: Vec<usize>,
    /// Figures root (default: `figures` beside the results folder).
    pub out: Option<PathBuf>,
}

/// The explained variance of a fitted PCA, as `subspace.json` reports it.
fn variance(p: &crate::pca_solver::Pca) -> Variance {
    Variance {
        explained_variance: p.explained_variance.clone(),
        explained_variance_ratio: p.explained_variance_ratio.clone(),
    }
}

/// The SAE to analyse: `--sae-id`, else the config's only one.
fn chosen_sae(config: &PcaConfig, options: &SubspaceOptions) -> Result<String> {
    match (&options.sae_id, config.model.sae_ids.as_slice()) {
        (Some(id), _) => check_name("--sae-id", id).map(|()| id.clone()),
        (None, [only]) => Ok(only.clone()),
        (None, ids) => bail!(
            "the config names {} SAEs ({}): choose one with --sae-id",
            ids.len(),
            ids.join(", ")
        ),
    }
}

/// The subgraph's latents in node-table order.
fn subgraph_latents(rows: &[NodeRow], sid: i64, table: &Path) -> Result<Vec<u32>> {
    let latents: Vec<u32> = rows
        .iter()
        .filter(|r| r.subgraph_id == sid)
        .map(|r| r.node_id)
        .collect();
    if latents.is_empty() {
        let max = rows.iter().map(|r| r.subgraph_id).max().unwrap_or(-1);
        bail!(
            "subgraph {sid} is not in node table {} (its subgraph ids run 0..={max})",
            table.display()
        );
    }
    refuse_one_latent(sid, &latents, table)?;
    Ok(latents)
}

/// A subgraph of one latent has no subspace to analyse: every example's reconstruction is a
/// multiple of that latent's decoder row, so its PCA is one line (see docs/formats.md, "One
/// subspace in depth").
fn refuse_one_latent(sid: i64, latents: &[u32], table: &Path) -> Result<()> {
    if let [latent] = latents {
        bail!(
            "subgraph {sid} of {} is one latent ({latent}): every reconstruction lies on its decoder row, so there is no subspace to plot (PC2 and PC3 would be rounding noise); choose a subgraph of 2 or more latents",
            table.display()
        );
    }
    Ok(())
}

/// Subgraph and subgraph size of every latent id.
fn membership(rows: &[NodeRow], d_sae: usize) -> Membership {
    let mut out = vec![None; d_sae];
    for r in rows {
        if let Some(slot) = out.get_mut(r.node_id as usize) {
            *slot = Some((r.subgraph_id, r.subgraph_size));
        }
    }
    out
}

/// Hex digits of the graphs set's id in a subspace folder name.
const SHORT_ID: usize = 8;

/// A short id of the graphs set: the start of its `set_id`, or, for graphs written without a
/// saecooc manifest, of the node table's SHA-256.
fn graphs_short_id(graphs: &PublishedSet, table: &Path) -> Result<String> {
    let id = match graphs.set_id() {
        Some(id) => id.to_string(),
        None => sha256_file(table)?,
    };
    Ok(id.chars().take(SHORT_ID).collect())
}

/// The subgraph to analyse: `--subgraph`, or the one `--subgraph-of-token` picks from the
/// `pca` results of the results folder `dir` (said as a note).
fn chosen_subgraph(
    options: &SubspaceOptions,
    dir: &Path,
    sae_id: &str,
    threshold: f64,
    graphs: &PublishedSet,
    rows: &[NodeRow],
) -> Result<i64> {
    match (&options.subgraph_of_token, options.subgraph) {
        (Some(token), _) => {
            let neat = neat_sae_id(sae_id);
            let choice = choose::subgraph_of_token(dir, &neat, threshold, graphs, rows, token)?;
            crate::report::note(format_args!("{}", choice.describe()));
            Ok(choice.chosen.subgraph)
        }
        (None, Some(sid)) => Ok(sid),
        (None, None) => bail!("choose the subgraph with --subgraph or --subgraph-of-token"),
    }
}

/// Runs `subspace`.
pub fn run(config: &PcaConfig, options: &SubspaceOptions) -> Result<SubspaceSummary> {
    let started = Instant::now();
    let run_start = crate::results::manifest::RunStart::now();
    let p = &config.processing;
    let sae_id = chosen_sae(config, options)?;
    let threshold = options.threshold.unwrap_or(p.activation_threshold);
    check_finite("--threshold", threshold, 0.0..)?;
    let budget = options.batches.unwrap_or(p.n_batches_reconstruction);
    ensure!(budget >= 1, "--batches must be at least 1");
    let results_root = options.common.results_root(&config.run);
    let dir = sae_results_dir(
        &results_root,
        &config.model.name,
        &config.model.sae_release_short,
        &sae_id,
        config.generation.n_batches_generation,
    );
    let table = locate_node_table(&dir, threshold, "this SAE and threshold")?;
    let input = NodeTableInput::read(dir, table)?;
    let sid = chosen_subgraph(
        options,
        &input.dir,
        &sae_id,
        threshold,
        &input.graphs,
        &input.rows,
    )?;
    let latents = subgraph_latents(&input.rows, sid, &input.table)?;
    let prompts = options
        .prompts
        .as_deref()
        .map(prompts::read_prompts)
        .transpose()?;
    let sae_figures = figures_dir(config, options, &results_root, &sae_id)?;
    let resolved = resolve(
        InputSpec::of_pca(config).with_sae_ids(vec![sae_id.clone()]),
        &ResolveOptions {
            device: options.common.device,
            stage: None,
        },
    )?;
    let device = &resolved.device;
    let mut encoder = input.load_encoder(&resolved, &sae_id, Stage::Subspace)?;
    let (d_in, d_sae) = (encoder.sae.cfg.d_in, encoder.sae.cfg.d_sae);
    // Locked (and so created) only once the inputs load: a refused run leaves no folder. Only
    // this subgraph's folder is locked: runs on other subgraphs of the SAE go side by side.
    let folder = subspace_folder_name(
        threshold,
        sid,
        config.generation.n_batches_generation,
        &graphs_short_id(&input.graphs, &input.table)?,
    );
    let lock = lock_output(&sae_figures, &folder, Stage::Subspace)?;
    let (examples, batches_read) = gather_subgraph(
        &mut encoder,
        &resolved,
        config,
        budget,
        &sae_id,
        sid,
        &latents,
    )?;
    let n = examples.found();
    points::check_points(&options.points, n)?;
    let Some(mut a) = Analysis::new(sid, threshold, examples, d_in, options.points.clone()) else {
        bail!(
            "subgraph {sid} fired on {n} tokens in {batches_read} batches, too few for a PCA with {COMPONENTS} components: raise --batches"
        );
    };
    a.decoder = decoder_pca(&encoder.sae.w_dec, d_in, &latents);
    if let Some(list) = &prompts {
        a.prompts = Some(place_prompts(
            &mut encoder,
            device,
            list,
            &a,
            config,
            options,
        )?);
    }

    let (staging, subgraph_picture) =
        stage_outputs(&input, &lock, &folder, &a, config, (d_in, d_sae))?;
    let mut summary = summary_of(&a, config, options, &sae_id, batches_read);
    summary.node_table = input.table.clone();
    summary.subgraph_picture = subgraph_picture;
    summary.folder = sae_figures.join(&folder);
    summary.seconds = started.elapsed().as_secs_f64();
    summary.run_info = Some(run_start.finish(run_facts(
        config, options, &sae_id, threshold, budget, &input.dir,
    )));
    publish(staging, &mut summary)?;
    Ok(summary)
}

/// Stages the subspace set `folder`, which `lock` holds, and writes the analysis `a` into it;
/// returns the staging and the copied subgraph picture's name.
fn stage_outputs(
    input: &NodeTableInput,
    lock: &FolderLock,
    folder: &str,
    a: &Analysis,
    config: &PcaConfig,
    (d_in, d_sae): (usize, usize),
) -> Result<(Staging, Option<String>)> {
    let ownership = Ownership {
        dirs: vec![folder.to_string()],
        prefixes: Vec::new(),
    };
    let staging =
        input.begin_staging(lock, Stage::Subspace, &subspace_manifest(folder), ownership)?;
    let stage_dir = staging.root().join(folder);
    std::fs::create_dir_all(&stage_dir)
        .with_context(|| format!("cannot create {}", stage_dir.display()))?;
    let subgraph_picture = write_outputs(
        &stage_dir,
        a,
        config,
        &membership(&input.rows, d_sae),
        &input.graphs,
        &GraphFiles::new(&input.dir, a.activation_threshold),
        d_in,
        d_sae,
    )?;
    Ok((staging, subgraph_picture))
}

/// What the run was asked, as its `run_info` records it.
fn run_facts(
    config: &PcaConfig,
    options: &SubspaceOptions,
    sae_id: &str,
    threshold: f64,
    budget: usize,
    results_dir: &Path,
) -> serde_json::Value {
    serde_json::json!({
        "config": config,
        "options": options,
        "sae_id": sae_id,
        "activation_threshold": threshold,
        "batches": budget,
        "results_dir": results_dir,
    })
}

impl SetSummary for SubspaceSummary {
    fn set_mut(&mut self) -> &mut SetRecord {
        &mut self.set
    }
}

/// The SAE's folder under the figures root (`--out`, else `figures` beside the results
/// folder), checked creatable (nothing is created yet).
fn figures_dir(
    config: &PcaConfig,
    options: &SubspaceOptions,
    results_root: &Path,
    sae_id: &str,
) -> Result<PathBuf> {
    let figures_root = options
        .out
        .clone()
        .unwrap_or_else(|| crate::results::layout::default_figures_dir(results_root));
    let sae_figures = sae_names_dir(
        &figures_root,
        &config.model.name,
        &config.model.sae_release_short,
        sae_id,
    );
    check_creatable(&sae_figures)?;
    Ok(sae_figures)
}

/// Gathers the examples of subgraph `sid` (its `latents`) with `pca`'s rules, keeping every
/// nonzero activation; returns them with the batches read.
#[allow(clippy::too_many_arguments)]
fn gather_subgraph(
    encoder: &mut HookedSae,
    resolved: &ResolvedRun,
    config: &PcaConfig,
    budget: usize,
    sae_id: &str,
    sid: i64,
    latents: &[u32],
) -> Result<(Examples, u64)> {
    let label = format!("{sae_id} subgraph {sid}");
    let pass = Pass {
        budget,
        prompts: config.run.prompts_per_batch,
        settings: GatherSettings {
            keep_nonzero_acts: true,
            ..GatherSettings::of(&config.processing)
        },
        device: &resolved.device,
        bar: crate::report::bar(budget as u64, &label, "batches"),
        label,
    };
    let mut work = [SaeGathering::new(
        vec![Examples::new(latents.to_vec())],
        false,
    )];
    gather_sweep(std::slice::from_mut(encoder), &mut work, resolved, &pass)?;
    pass.bar.finish_and_clear();
    let [SaeGathering {
        mut collections,
        batches_read,
        ..
    }] = work;
    Ok((collections.remove(0), batches_read))
}

/// The user's prompts placed in the subspace's PC space (prompts where the subgraph fired
/// nowhere are noted).
fn place_prompts(
    encoder: &mut HookedSae,
    device: &Device,
    list: &[(usize, String)],
    a: &Analysis,
    config: &PcaConfig,
    options: &SubspaceOptions,
) -> Result<PromptExamples> {
    let placed = prompts::place_prompts(
        encoder,
        list,
        a.latents(),
        config.processing.remove_special_tokens,
        &a.pca,
        device,
    )?;
    if !placed.silent.is_empty() {
        crate::report::note(format_args!(
            "note: the subgraph fired nowhere in the prompts on lines {:?} of {}",
            placed.silent,
            options
                .prompts
                .as_deref()
                .unwrap_or(Path::new(""))
                .display()
        ));
    }
    Ok(placed)
}

/// `subspace.json` of the analysis `a`, before its node table, picture, folder, timings and
/// set are known.
fn summary_of(
    a: &Analysis,
    config: &PcaConfig,
    options: &SubspaceOptions,
    sae_id: &str,
    batches_read: u64,
) -> SubspaceSummary {
    let point_report = |i: usize, folder: String| ShownPoint {
        point_id: i,
        token: a.text(i).0.to_string(),
        context: a.text(i).1.to_string(),
        pcs: a.scores[i * COMPONENTS..(i + 1) * COMPONENTS].to_vec(),
        folder,
    };
    SubspaceSummary {
        model: config.model.name.clone(),
        release: config.model.sae_release_short.clone(),
        sae_id: sae_id.to_string(),
        activation_threshold: a.activation_threshold,
        subgraph_id: a.subgraph_id,
        latents: a.latents().to_vec(),
        examples: a.examples.found(),
        batches_read,
        retried: a.examples.retried,
        pca: variance(&a.pca),
        decoder_pca: a.decoder.as_ref().map(|d| variance(&d.pca)),
        representative_points: a
            .representative
            .iter()
            .enumerate()
            .map(|(r, &i)| point_report(i, format!("rep_point_{}", r + 1)))
            .collect(),
        points: a
            .points
            .iter()
            .map(|&i| point_report(i, format!("point_{i}")))
            .collect(),
        heatmap: a.heatmap.clone(),
        prompts: a.prompts.as_ref().map(|pl| PromptsInfo {
            file: options.prompts.clone().unwrap_or_default(),
            prompts: pl.prompts,
            examples: pl.examples.found(),
            silent_lines: pl.silent.clone(),
        }),
        node_table: PathBuf::new(),
        subgraph_picture: None,
        folder: PathBuf::new(),
        seconds: 0.0,
        run_info: None,
        set: SetRecord::default(),
    }
}

/// Writes the data files, the figures and the copied subgraph picture into `dir`; returns the
/// picture's name when `graphs` drew one.
#[allow(clippy::too_many_arguments)]
fn write_outputs(
    dir: &Path,
    a: &Analysis,
    config: &PcaConfig,
    membership: &Membership,
    graphs: &PublishedSet,
    graph_files: &GraphFiles,
    d_in: usize,
    d_sae: usize,
) -> Result<Option<String>> {
    let sid = a.subgraph_id;
    tables::write_csv(
        dir,
        subspace_examples_csv_name(sid),
        &tables::examples_csv(a),
    )?;
    if let Some(d) = &a.decoder {
        tables::write_csv(
            dir,
            subspace_decoder_csv_name(sid),
            &tables::decoder_csv(a.latents(), &d.scores),
        )?;
    }
    if let Some(pl) = &a.prompts {
        tables::write_csv(
            dir,
            subspace_prompts_csv_name(sid),
            &tables::prompts_csv(pl),
        )?;
    }
    tables::write_h5(
        dir,
        subspace_h5_name(sid),
        a,
        &config.processing.save_options,
        d_in,
        d_sae,
    )?;
    Figures { a, dir, membership }.write_all()?;
    let picture = graph_files.html(sid.max(0) as usize);
    if sid < 0 || !picture.is_file() || !graphs.lists(&picture) {
        return Ok(None);
    }
    graphs.verify(&picture)?;
    let bytes =
        std::fs::read(&picture).with_context(|| format!("cannot read {}", picture.display()))?;
    write_bytes(&dir.join(SUBSPACE_PICTURE), &bytes)?;
    Ok(Some(SUBSPACE_PICTURE.into()))
}
