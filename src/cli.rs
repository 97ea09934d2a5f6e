//! The command line's clap types: what each command and flag is, with its help text. What the
//! flags mean to a stage is resolved in [`crate::app`].

use crate::config::{DeviceKind, ModelDType};
use crate::stages::bench::sweep::Sweep;
use crate::stages::bench::ModelShape;
use crate::stages::cooc::ShardRequest;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

/// `--version`: the version and the source commit of the build.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("SAECOOC_GIT_COMMIT"),
    ")"
);

/// Find interpretable subspaces in sparse autoencoders (SAEs) by latent co-occurrence.
///
/// A Rust port of the pipeline of Clarke, Bhatnagar & Bloom (2024), "Compositionality and
/// Ambiguity: Latent Co-occurrence and Interpretable Subspaces". Outputs keep the original's
/// file names and formats so its notebooks and explorer app keep working.
#[derive(Parser)]
#[command(name = "saecooc", version = VERSION, about, long_about)]
pub struct Cli {
    /// Print nothing but errors (no progress bars, no summary).
    #[arg(short, long, global = true)]
    pub quiet: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Count how often SAE latents fire together on a text dataset.
    ///
    /// For every SAE id and activation threshold t of the config, in one pass over the data:
    /// run the model to the SAE's hook, encode with the SAE (decoder norms folded), call latent
    /// i active on a token iff act_i > t + θ_i, and count co-firing pairs. Writes, under
    /// {results_dir}/{model}/{release_short}/{neat_sae_id}/n_batches_{N}/:
    /// feature_acts_cooc_{total,jaccard,activations}_threshold_{ts}.npz and run.json. Count and
    /// Jaccard matrices are dense (arr_0) up to 65,536 latents and scipy CSR above ([run]
    /// matrix_format); pairs accumulate in a dense triangle or, when that would not fit in
    /// [run] dense_limit_gib, in a sparse store ([run] accumulator).
    Cooc(CoocArgs),
    /// Sum the partial counts of a sharded `cooc` run into the usual outputs.
    Merge(MergeArgs),
    /// Write (and with --submit, submit) the SLURM jobs of a whole study.
    ///
    /// Writes into --out: cooc.sh, an array job with a task per (SAE, shard) (`cooc --sae-id ID
    /// --shard i/N --resume`); merge.sh, graphs.sh, pca.sh (with --pca-config: an array job, a
    /// task per SAE) and export.sh, each run after the one before succeeded
    /// (`--dependency=afterok`), each with its log in {out}/logs/; and submit.sh with the
    /// `sbatch` lines, which it prints. What the results folder holds complete (an SAE's
    /// published cooc set for this config, a finished shard) gets no task, so running it again
    /// after a failure resubmits only the rest.
    Slurm(SlurmArgs),
    /// Benchmark counting against the original's dense BᵀB accumulation, or (--end-to-end)
    /// tokens/s per stage of a whole cooc run, or (--sweep) several SAEs in one run against
    /// one at a time.
    Bench(BenchArgs),
    /// Turn Jaccard matrices into subgraphs: edge thresholds, node tables and pictures.
    ///
    /// For every SAE id and every feature_acts_cooc_jaccard_threshold_{ts}.npz found (written by
    /// `cooc` or by the original Python pipeline): bisect for the edge threshold whose largest
    /// connected component has [analysis] min_subgraph_size..=max_subgraph_size latents, then
    /// write edge_thresholds.csv, thresholded_matrices/{,sparse_}thresholded_matrix_{ts}.npz,
    /// dataframes/node_info_df_{ts}.csv, histograms/subgraph_density_{ts}.png,
    /// graphs_{ts}/subgraph_{sid}.html and subgraph_objects/activation_{ts}/subgraph_{sid}.graphml.
    /// Needs the model's embeddings and tokenizer (for top tokens) and the SAE.
    Graphs(GraphsArgs),
    /// PCA of subgraph reconstructions, written as h5 files the original's explorer app reads.
    ///
    /// Takes the original's PCA config (config_pca_streamlit_maxexamples.toml: [generation]
    /// n_batches_generation, [model], [processing] with save_options) plus saecooc's [source]
    /// and [run]. For every subgraph of the sizes in subgraph_sizes_to_plot (from the node table
    /// of `graphs`), gathers the tokens where any of its latents fires, in one shared pass over
    /// the data, runs an exact 3-component PCA on the subgraph's reconstructions and writes
    /// {neat_sae_id}_pca_for_streamlit/{max_examples}cap_graph_analysis_results_size_{k}_nbatch_{nb}.h5.
    Pca(PcaArgs),
    /// Analyse one subgraph in depth: PCA, figures, representative points, custom prompts.
    ///
    /// Takes the PCA config (as `pca`) and a subgraph id from the node table `graphs` wrote
    /// (or a token: --subgraph-of-token picks the subgraph among those `pca` analysed).
    /// Gathers the tokens where the subgraph fires with `pca`'s rules, fits the PCA of their
    /// reconstructions and of the subgraph's decoder rows, and writes into
    /// {out}/{model}/{release}/{neat_sae_id}/pca_{ts}_subgraph_{sid}_n_batches_{N}_graphs_{id}/
    /// (N: the results folder's n_batches; id: its graphs set's): pca_df_subgraph_{sid}.csv
    /// (every example with its PCs and activations), an h5 group in `pca`'s layout, figures as
    /// PNG and interactive HTML (PC scatters by token, top latent, latent strength and active
    /// latents; explained variance; scatter matrix; Ward-clustered heat map; decoder PCA;
    /// representative points and --points with their activation bar charts) and subspace.json.
    /// --prompts places each line's tokens where the subgraph fires into the same PC space.
    Subspace(SubspaceArgs),
    /// Write the interactive explorer of the results as a self-contained static site.
    ///
    /// Scans --results-dir for {model}/{release}/{sae}/n_batches_{N}/ folders (node tables,
    /// thresholded matrices and pca h5 files) and writes --out/index.html plus data/. Open
    /// index.html from disk, or run `saecooc serve --dir <out>`.
    Export(ExportArgs),
    /// Serve an exported site on localhost and print its URL.
    Serve(ServeArgs),
    /// Size-effect analyses over every SAE in a results folder (CSV, JSON, PNG figures).
    ///
    /// Active latents per token (mean, std, histogram), mean subgraph size and the fraction of
    /// latents in subgraphs (from node tables), and observed vs expected co-occurrence
    /// (E = T·p_i·p_j) distributions; figures like the paper's Figures 3, 7 and 9.
    Stats(StatsArgs),
    /// Train a sparse autoencoder on the residual stream at a hook (SAELens format out).
    ///
    /// Reads the config's [source] model and dataset and [run] context_size /
    /// prompts_per_batch; trains a standard ReLU SAE (L1 penalty scaled by decoder norms) or a
    /// TopK SAE with Adam, showing loss, L0 and explained variance; writes cfg.json,
    /// sae_weights.safetensors and training.json (held-out explained variance, dead latents)
    /// to --out, which `cooc` (and SAELens) load.
    TrainSae(TrainArgs),
    /// List SAELens' releases (the registry saecooc ships) and, with --check, whether saecooc
    /// can run each SAE and, if not, exactly why.
    ///
    /// A config names a release as the original does (model_name + sae_release_short) or by
    /// its plain SAELens name in sae_release_short, and SAE ids as the registry lists them.
    Releases(ReleasesArgs),
    /// Check a config offline: it parses, and every SAE it names is in SAELens' registry (or
    /// comes from [source]) and runnable by saecooc (model architecture, hook, SAE format).
    ///
    /// Reads a `cooc`/`graphs` config or a `pca` config; downloads and runs nothing. Prints each
    /// SAE with where it comes from and the hook it reads; exits with an error naming every SAE
    /// that cannot run (an unknown id with the release's closest ids).
    Check(CheckArgs),
    /// Write a random GPT-2-shaped model, a text corpus and a calibrated SAE (offline demo,
    /// tests, benchmarks).
    ///
    /// The model uses the real GPT-2 tokenizer; the SAE is in SAELens format with latents that
    /// fire sparsely in related groups. Also writes cooc.toml, a config that runs on them.
    Synth(SynthArgs),
}

#[derive(Args)]
pub struct CoocArgs {
    /// The run's TOML config (the original's [generation]/[analysis]/[pca] tables plus
    /// saecooc's [source] and [run]; see README).
    #[arg(long, short)]
    pub config: PathBuf,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub saes: SaeIdArgs,
    /// Count only share I of N (windows w with w mod N = I) and write partial counts to
    /// shards/shard_I_of_N.npz; `saecooc merge --shards N` sums them. `auto`: the share the
    /// scheduler gave this task (a SLURM array job's SLURM_ARRAY_TASK_ID of
    /// SLURM_ARRAY_TASK_COUNT); `auto/N`: N shards, this task's index from
    /// SLURM_ARRAY_TASK_ID or a Kubernetes indexed Job's JOB_COMPLETION_INDEX.
    #[arg(long, value_name = "I/N|auto[/N]", value_parser = ShardRequest::parse)]
    pub shard: Option<ShardRequest>,
    /// Continue from the checkpoint of an interrupted run (refused, naming the input, if the
    /// config, SAE, model, tokenizer or dataset files changed since).
    #[arg(long)]
    pub resume: bool,
    /// Save a checkpoint every this many batches (0: never).
    #[arg(long, default_value_t = 50)]
    pub checkpoint_every: usize,
    /// The memory the SAEs of one model pass may use, in GiB (default: what the machine has
    /// available, or the cgroup's limit under a scheduler). The SAEs of a config share one
    /// pass while their count stores, weights and the model fit; the rest get further passes.
    #[arg(long, value_name = "GIB")]
    pub memory_limit_gib: Option<f64>,
    /// Replace the folder's whole cooc set. Without it, the thresholds of an earlier run that
    /// this one does not count are kept when counted from the same inputs, and the run is
    /// refused when they were not.
    #[arg(long)]
    pub replace: bool,
}

/// The flags shared by the stages that run on a config (`cooc`, `graphs`, `pca`, `subspace`).
#[derive(Args)]
pub struct CommonArgs {
    /// Results folder, overriding [run] results_dir (default results/). For `graphs` it may
    /// also be one SAE's folder (the one holding its Jaccard files).
    #[arg(long)]
    pub results_dir: Option<PathBuf>,
    /// Compute device, overriding [run] device.
    #[arg(long, value_enum)]
    pub device: Option<DeviceKind>,
}

/// `--sae-id`, shared by the stages that run a config's SAEs (`cooc`, `graphs`, `pca`).
#[derive(Args)]
pub struct SaeIdArgs {
    /// Run only this SAE id of the config (repeatable; the SAEs run in the config's order).
    #[arg(long = "sae-id", value_name = "ID")]
    pub sae_ids: Vec<String>,
}

#[derive(Args)]
pub struct BenchArgs {
    /// SAE widths to test.
    #[arg(long, value_delimiter = ',', default_value = "768,3072,24576")]
    pub widths: Vec<usize>,
    /// Active latents per token.
    #[arg(long, value_delimiter = ',', default_value = "20,100")]
    pub l0: Vec<usize>,
    /// Tokens per batch [default: 4096]; with --sweep, tokens every run counts [default: 16384],
    /// in batches of at most 4,096.
    #[arg(long)]
    pub tokens: Option<usize>,
    /// Skip the dense baseline when one batch is projected to take longer (seconds).
    #[arg(long, default_value_t = 60.0)]
    pub max_dense_seconds: f64,
    /// Our pair store: dense triangle or sparse pairs (default: as `cooc` picks it).
    #[arg(long, value_enum)]
    pub store: Option<BenchStore>,
    /// Instead: tokens/s per stage (tokenize, forward, encode, count) of a whole `cooc` run on a
    /// GPT-2-small-shaped random model (12 layers, d 768, hook blocks.8.hook_resid_pre) with a
    /// 24,576-latent SAE, written once to --dir by `synth`.
    #[arg(long)]
    pub end_to_end: bool,
    /// Instead: a sweep of several SAEs of the GPT-2-small-shaped random model, counted by one
    /// `cooc` run of a config naming them all and by one run per SAE (a config of it alone), each
    /// a child process: wall time, SAE-tokens/s, peak memory, the speed-up, and a byte-for-byte
    /// comparison of every SAE's .npz files. feature-splitting: 8 SAEs at
    /// blocks.8.hook_resid_pre with 768, 1,536, ..., 98,304 latents; layers: 12 SAEs of 24,576
    /// latents at blocks.0-11.hook_resid_pre. Inputs are written once to --dir, runs go to
    /// --dir/sweep-NAME/.
    #[arg(long, value_enum)]
    pub sweep: Option<Sweep>,
    /// Folder of the end-to-end and sweep benchmarks' model, SAEs, corpus and results.
    #[arg(long, default_value = "bench/gpt2-small-shaped")]
    pub dir: PathBuf,
    /// Batches of 4,096 tokens for the end-to-end benchmark.
    #[arg(long, default_value_t = 4)]
    pub batches: usize,
    /// Device for the end-to-end and sweep benchmarks (and --shape, --golden).
    #[arg(long, value_enum, default_value = "cpu")]
    pub device: DeviceKind,
    /// Instead: time the forward pass to the hook and the SAE encode alone on a model of this
    /// shape with random weights in memory (nothing is written).
    #[arg(long, value_enum)]
    pub shape: Option<ModelShape>,
    /// Tokens per forward pass for --shape.
    #[arg(long, default_value_t = 4096)]
    pub shape_tokens: usize,
    /// Window length for --shape.
    #[arg(long, default_value_t = 128)]
    pub window: usize,
    /// The float type of the model for --shape (bf16 needs --device cuda).
    #[arg(long, value_enum, default_value = "f32")]
    pub dtype: ModelDType,
    /// Timed repetitions for --shape (the best is reported).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
    /// Instead: run the golden fixtures' models (tests/fixtures) on --device and compare every
    /// hook with the reference values (relative error at most 1e-4).
    #[arg(long)]
    pub golden: Option<PathBuf>,
}

/// `bench --store`.
#[derive(Clone, Copy, ValueEnum)]
pub enum BenchStore {
    Dense,
    Sparse,
}

#[derive(Args)]
pub struct MergeArgs {
    /// The config the shards ran with.
    #[arg(long, short)]
    pub config: PathBuf,
    /// Number of shards.
    #[arg(long)]
    pub shards: usize,
    /// Results folder, overriding [run] results_dir.
    #[arg(long)]
    pub results_dir: Option<PathBuf>,
    /// Replace the folder's whole cooc set (as `cooc --replace`).
    #[arg(long)]
    pub replace: bool,
    #[command(flatten)]
    pub saes: SaeIdArgs,
}

#[derive(Args)]
pub struct SlurmArgs {
    /// The run config (as for `cooc`, `merge` and `graphs`).
    #[arg(long, short)]
    pub config: PathBuf,
    /// A PCA config: the study also runs `pca`, a task per SAE of its [model] sae_ids.
    #[arg(long)]
    pub pca_config: Option<PathBuf>,
    /// Shards per SAE (tasks of the cooc array job per SAE).
    #[arg(long, default_value_t = 1)]
    pub shards: usize,
    /// Extra `sbatch` arguments for every job, split at whitespace, e.g.
    /// "--partition=gpu --gres=gpu:1 --time=04:00:00".
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    pub sbatch_args: Option<String>,
    /// Folder for the job scripts, submit.sh, logs/ and the exported site/.
    #[arg(long, default_value = "slurm")]
    pub out: PathBuf,
    /// Results folder, overriding [run] results_dir; every job is given it.
    #[arg(long)]
    pub results_dir: Option<PathBuf>,
    /// `cooc --checkpoint-every` for the cooc tasks.
    #[arg(long, default_value_t = 50)]
    pub checkpoint_every: usize,
    /// Submit the jobs with `sbatch` (in order, each after the one before) and print their ids.
    #[arg(long)]
    pub submit: bool,
}

#[derive(Args)]
pub struct GraphsArgs {
    /// The run's TOML config (the same file as for `cooc`; [analysis] sets the sizes).
    #[arg(long, short)]
    pub config: PathBuf,
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub saes: SaeIdArgs,
    /// Replace the folder's whole graphs set, also removing the outputs of thresholds whose
    /// cooc files are gone or changed (refused without it).
    #[arg(long)]
    pub replace: bool,
}

/// The PCA config and the flags every stage takes (`pca`, `subspace`).
#[derive(Args)]
pub struct PcaConfigArgs {
    /// The PCA config (the original's config_pca_streamlit_maxexamples.toml format).
    #[arg(long, short)]
    pub config: PathBuf,
    #[command(flatten)]
    pub common: CommonArgs,
}

#[derive(Args)]
pub struct PcaArgs {
    #[command(flatten)]
    pub input: PcaConfigArgs,
    #[command(flatten)]
    pub saes: SaeIdArgs,
    /// Split h5 files larger than this many MB into {stem}_chunk{i}.h5 files (the original's
    /// split_h5; its app reads both).
    #[arg(long, value_name = "MB")]
    pub split_mb: Option<f64>,
    /// Gather each subgraph in a pass of its own, as the original did (slower; same results).
    #[arg(long)]
    pub one_pass_per_subgraph: bool,
}

#[derive(Args)]
pub struct SubspaceArgs {
    #[command(flatten)]
    pub input: PcaConfigArgs,
    /// The SAE (default: the config's only [model] sae_ids entry).
    #[arg(long)]
    pub sae_id: Option<String>,
    /// Activation threshold of the node table to read (default: [processing]
    /// activation_threshold).
    #[arg(long)]
    pub threshold: Option<f64>,
    /// The subgraph id (node table column subgraph_id).
    #[arg(
        long,
        required_unless_present = "subgraph_of_token",
        conflicts_with = "subgraph_of_token"
    )]
    pub subgraph: Option<i64>,
    /// Choose the subgraph by a token instead (run `pca` first): among the subgraphs of 2+
    /// latents that `pca` analysed, the one whose examples have the token most often (exactly,
    /// leading space included, e.g. " first"); ties: the larger share of its examples, then
    /// the lower id. Says which subgraph it picked and why.
    #[arg(long, value_name = "TOKEN")]
    pub subgraph_of_token: Option<String>,
    /// Batches of windows to search for examples (default: [processing]
    /// n_batches_reconstruction).
    #[arg(long)]
    pub batches: Option<usize>,
    /// A text file of prompts, one per line, placed into the subspace's PC space.
    #[arg(long, value_name = "FILE")]
    pub prompts: Option<PathBuf>,
    /// Example ids (point_id) to show in depth, e.g. 0,17,42.
    #[arg(long, value_delimiter = ',')]
    pub points: Vec<usize>,
    /// Figures root (default: `figures` beside the results folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Args)]
pub struct ExportArgs {
    /// The results root (as `cooc`/`graphs`/`pca` wrote it).
    #[arg(long, default_value = "results")]
    pub results_dir: PathBuf,
    /// Output folder for the site.
    #[arg(long, default_value = "site")]
    pub out: PathBuf,
    /// Where `subspace` wrote its folders (default: `figures` beside the results folder).
    #[arg(long)]
    pub figures_dir: Option<PathBuf>,
    /// Where `stats` wrote its figures (default: `stats` beside the results folder).
    #[arg(long)]
    pub stats_dir: Option<PathBuf>,
    /// A PCA config (the original's format) whose [recommended_views] become example buttons.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
}

#[derive(Args)]
pub struct ServeArgs {
    /// The exported site.
    #[arg(long, default_value = "site")]
    pub dir: PathBuf,
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Print one line per request on stderr (path, status, bytes sent, gzip or not).
    #[arg(long)]
    pub log: bool,
}

#[derive(Args)]
pub struct StatsArgs {
    /// The results root.
    #[arg(long, default_value = "results")]
    pub results_dir: PathBuf,
    /// Output folder.
    #[arg(long, default_value = "stats")]
    pub out: PathBuf,
    /// A run config: its SAEs also get latent L0 vs subgraph_l0_any from a pass over its data.
    #[arg(long, short)]
    pub config: Option<PathBuf>,
    /// Batches of windows for that pass.
    #[arg(long, default_value_t = 10)]
    pub batches: usize,
    /// Only this SAE (repeatable): an id of --config, or without it an SAE folder of the
    /// results root.
    #[arg(long = "sae-id", value_name = "ID")]
    pub sae_ids: Vec<String>,
}

#[derive(Args)]
pub struct TrainArgs {
    /// A config with [source] model and dataset ([generation] names the model).
    #[arg(long, short)]
    pub config: PathBuf,
    /// Hook to train on, e.g. blocks.3.hook_resid_post.
    #[arg(long)]
    pub hook: String,
    /// Number of latents.
    #[arg(long)]
    pub d_sae: usize,
    /// standard (ReLU + L1) or topk.
    #[arg(long, value_enum, default_value = "topk", hide_possible_values = true)]
    pub architecture: Architecture,
    /// TopK: latents kept per token.
    #[arg(long, default_value_t = 32)]
    pub k: usize,
    /// Standard: L1 coefficient.
    #[arg(long, default_value_t = 5.0)]
    pub l1_coefficient: f64,
    /// Adam learning rate.
    #[arg(long, default_value_t = 4e-4)]
    pub lr: f64,
    /// Training tokens.
    #[arg(long, default_value_t = 1_000_000)]
    pub tokens: u64,
    /// Tokens per step.
    #[arg(long, default_value_t = 4096)]
    pub batch_tokens: usize,
    /// Tokens in the shuffle buffer.
    #[arg(long, default_value_t = 65_536)]
    pub buffer_tokens: usize,
    /// Passes over each buffer before it is refilled.
    #[arg(long, default_value_t = 1)]
    pub buffer_passes: usize,
    /// Held-out tokens for the final explained variance.
    #[arg(long, default_value_t = 16_384)]
    pub heldout_tokens: usize,
    /// Output SAE folder.
    #[arg(long)]
    pub out: PathBuf,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also train on special-token positions (BOS/EOS/PAD), which are dropped by default as
    /// `cooc` drops them with remove_special_tokens.
    #[arg(long)]
    pub keep_special_tokens: bool,
    /// Compute device, overriding [run] device.
    #[arg(long, value_enum)]
    pub device: Option<DeviceKind>,
}

/// `train-sae --architecture`.
#[derive(Clone, Copy, ValueEnum)]
pub enum Architecture {
    /// ReLU with an L1 penalty.
    #[value(alias = "relu")]
    Standard,
    /// The k largest latents per token.
    Topk,
}

#[derive(Args)]
pub struct CheckArgs {
    /// The config to check (a `cooc` config with [generation], or a `pca` config with [model]).
    #[arg(long, short)]
    pub config: PathBuf,
}

#[derive(Args)]
pub struct ReleasesArgs {
    /// Only releases whose model name or hub repo contains this (case-insensitive).
    #[arg(long)]
    pub model: Option<String>,
    /// Only this release; lists its SAE ids (with --check, each one's verdict).
    #[arg(long)]
    pub release: Option<String>,
    /// Say for each release how many of its SAEs saecooc can run and why the others cannot,
    /// then the totals per model family.
    #[arg(long)]
    pub check: bool,
}

#[derive(Args)]
pub struct SynthArgs {
    /// Output folder (gets model/, sae/, corpus.txt and cooc.toml).
    #[arg(long)]
    pub out: PathBuf,
    /// Transformer blocks.
    #[arg(long, default_value_t = 2)]
    pub layers: usize,
    /// Residual stream width.
    #[arg(long, default_value_t = 64)]
    pub d_model: usize,
    /// Attention heads.
    #[arg(long, default_value_t = 4)]
    pub heads: usize,
    /// Positions (longest window).
    #[arg(long, default_value_t = 128)]
    pub n_positions: usize,
    /// SAE latents.
    #[arg(long, default_value_t = 512)]
    pub d_sae: usize,
    /// The SAE reads blocks.{hook_layer}.hook_resid_pre.
    #[arg(long, default_value_t = 1)]
    pub hook_layer: usize,
    /// Documents in the corpus.
    #[arg(long, default_value_t = 2000)]
    pub documents: usize,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Also write a random sparse Jaccard matrix with about this many non-zeros per row (and
    /// per-latent totals) for threshold 1.5 under {out}/results/, to measure `graphs` on wide
    /// SAEs without counting first.
    #[arg(long, value_name = "NNZ_PER_ROW")]
    pub random_jaccard: Option<usize>,
}
