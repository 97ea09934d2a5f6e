//! `export` and `serve`.

use crate::cli::{ExportArgs, ServeArgs};
use crate::config::PcaConfig;
use crate::results::layout::{default_figures_dir, default_stats_dir};
use crate::stages::export;
use anyhow::Result;

pub fn export(args: ExportArgs) -> Result<()> {
    let views = match &args.config {
        Some(path) => export::recommended_views(PcaConfig::load(path)?.recommended_views.as_ref()),
        None => Vec::new(),
    };
    let figures = args
        .figures_dir
        .clone()
        .unwrap_or_else(|| default_figures_dir(&args.results_dir));
    let stats = args
        .stats_dir
        .clone()
        .unwrap_or_else(|| default_stats_dir(&args.results_dir));
    let inputs = export::ExportInputs {
        results: &args.results_dir,
        figures: &figures,
        stats: &stats,
    };
    let s = export::run(&inputs, &args.out, &views)?;
    for line in &s.runs {
        crate::report::summary(format_args!("{line}"));
    }
    crate::report::summary(format_args!(
        "explorer of {} SAEs ({} subgraphs with PCA, {} analysed subspaces; {} files, {:.1} MB): open {} or run `saecooc serve --dir {}`",
        s.saes,
        s.subgraphs,
        s.subspaces,
        s.files,
        s.bytes as f64 / 1e6,
        s.index.display(),
        args.out.display()
    ));
    Ok(())
}

pub fn serve(args: ServeArgs) -> Result<()> {
    export::serve::serve(&args.dir, args.port, args.log)
}
