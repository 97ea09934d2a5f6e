//! What the command line does: `-q` handed to the reporter, each command's flags resolved once
//! into its stage's options, the stage run, and its summary reported. The flags themselves are in [`crate::cli`].

mod analysis;
mod cooc;
mod explorer;
mod releases;
mod sae_ids;
mod scheduler;
mod slurm;
mod tools;

use crate::cli::{Cli, Command, CommonArgs};
use crate::config::{Config, PcaConfig, StageCommon};
use anyhow::Result;
use sae_ids::select_sae_ids;
use std::path::Path;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    crate::report::set_quiet(cli.quiet);
    match cli.command {
        Command::Cooc(args) => cooc::cooc(args),
        Command::Merge(args) => cooc::merge(args),
        Command::Slurm(args) => slurm::slurm(args),
        Command::Bench(args) => tools::bench(args),
        Command::Graphs(args) => analysis::graphs(args),
        Command::Pca(args) => analysis::pca(args),
        Command::Subspace(args) => analysis::subspace(args),
        Command::Stats(args) => analysis::stats(args),
        Command::Export(args) => explorer::export(args),
        Command::Serve(args) => explorer::serve(args),
        Command::TrainSae(args) => tools::train(args),
        Command::Synth(args) => tools::synth(args),
        Command::Releases(args) => releases::releases(args),
        Command::Check(args) => releases::check(args),
    }
}

/// The options shared by the stages that run on a config.
fn common(args: CommonArgs) -> StageCommon {
    StageCommon {
        results_dir: args.results_dir,
        device: args.device,
    }
}

/// The run config at `path` with its `[generation] sae_ids` narrowed to `--sae-id`s.
fn load_config(path: &Path, sae_ids: &[String]) -> Result<Config> {
    let mut config = Config::load(path)?;
    let listed = &config.generation.sae_ids;
    config.generation.sae_ids =
        select_sae_ids(listed, sae_ids, &config_source(path, "[generation]"))?;
    Ok(config)
}

/// The PCA config at `path` with its `[model] sae_ids` narrowed to `--sae-id`s.
fn load_pca_config(path: &Path, sae_ids: &[String]) -> Result<PcaConfig> {
    let mut config = PcaConfig::load(path)?;
    let listed = &config.model.sae_ids;
    config.model.sae_ids = select_sae_ids(listed, sae_ids, &config_source(path, "[model]"))?;
    Ok(config)
}

/// `config {path} ({table} sae_ids)`: where an `--sae-id` was looked for.
fn config_source(path: &Path, table: &str) -> String {
    format!("config {} ({table} sae_ids)", path.display())
}
