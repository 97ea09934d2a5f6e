//! What the command line does: each command's flags resolved once into its stage's options,
//! the stage run, and its summary reported. The flags themselves are in [`crate::cli`].

mod analysis;
mod cooc;
mod explorer;
mod tools;

use crate::cli::{Cli, Command, CommonArgs};
use crate::config::StageCommon;
use anyhow::Result;

/// Runs the parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    let quiet = cli.quiet;
    match cli.command {
        Command::Cooc(args) => cooc::cooc(args, quiet),
        Command::Merge(args) => cooc::merge(args, quiet),
        Command::Bench(args) => tools::bench(args),
        Command::Graphs(args) => analysis::graphs(args, quiet),
        Command::Pca(args) => analysis::pca(args, quiet),
        Command::Subspace(args) => analysis::subspace(args, quiet),
        Command::Stats(args) => analysis::stats(args, quiet),
        Command::Export(args) => explorer::export(args, quiet),
        Command::Serve(args) => explorer::serve(args),
        Command::TrainSae(args) => tools::train(args, quiet),
        Command::Synth(args) => tools::synth(args, quiet),
    }
}

/// The options shared by the stages that run on a config.
fn common(args: CommonArgs, quiet: bool) -> StageCommon {
    StageCommon {
        results_dir: args.results_dir,
        device: args.device,
        quiet,
    }
}
