//! `releases`: the shipped SAELens registry, and (--check) what saecooc can run of it.

use crate::cli::{CheckArgs, ReleasesArgs};
use crate::config::{Config, PcaConfig};
use crate::inputs::InputSpec;
use crate::registry::check::{self, ReleaseReport, Verdict};
use crate::registry::{self, Registry, Release};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

pub fn releases(args: ReleasesArgs) -> Result<()> {
    let registry = registry::registry()?;
    let chosen = chosen_releases(registry, &args)?;
    if let Some(release) = args.release.as_deref().and(chosen.first()) {
        print_ids(registry, release, args.check);
        return Ok(());
    }
    let reports: Vec<ReleaseReport> = chosen.iter().map(|r| check::report(registry, r)).collect();
    println!(
        "SAELens registry of sae-lens {}: {} releases shown",
        registry.sae_lens_version,
        reports.len()
    );
    for report in &reports {
        print_release(report, args.check);
    }
    if args.check {
        print_totals(&reports);
    }
    Ok(())
}

/// The releases `--model` / `--release` pick (all by default); an unknown `--release` is an
/// error naming the closest ones.
fn chosen_releases<'r>(registry: &'r Registry, args: &ReleasesArgs) -> Result<Vec<&'r Release>> {
    if let Some(name) = &args.release {
        let release = registry.release(name).with_context(|| {
            format!(
                "release '{name}' is not in the SAELens registry (sae-lens {}); closest: {}",
                registry.sae_lens_version,
                registry::closest_releases(name, 3).join(", ")
            )
        })?;
        return Ok(vec![release]);
    }
    let wanted = args.model.as_deref().map(str::to_lowercase);
    Ok(registry
        .releases
        .iter()
        .filter(|r| match &wanted {
            None => true,
            Some(m) => {
                let repo = registry.model(&r.model).map_or("", |i| i.repo.as_str());
                r.model.to_lowercase().contains(m) || repo.to_lowercase().contains(m)
            }
        })
        .collect())
}

fn print_release(r: &ReleaseReport, check: bool) {
    if !check {
        println!(
            "{}  model {}  {} SAEs  format {}  repo {}",
            r.release, r.model, r.saes, r.format, r.repo
        );
        return;
    }
    let status = if r.runnable == r.saes { "ok" } else { "--" };
    println!(
        "{status} {}  ({}, {})  {} of {} SAEs runnable",
        r.release, r.family, r.model, r.runnable, r.saes
    );
    if r.hook_from_cfg > 0 {
        println!(
            "     {} of them name their hook only in cfg.json (checked when loaded)",
            r.hook_from_cfg
        );
    }
    for (why, n) in &r.reasons {
        println!("     {n} not runnable: {why}");
    }
}

/// Per family: SAEs and runnable SAEs; then the whole registry.
fn print_totals(reports: &[ReleaseReport]) {
    let mut families: BTreeMap<&str, (usize, usize)> = BTreeMap::new();
    for r in reports {
        let entry = families.entry(&r.family).or_default();
        entry.0 += r.saes;
        entry.1 += r.runnable;
    }
    println!("\nper model family (SAEs runnable / SAEs):");
    let mut rows: Vec<_> = families.into_iter().collect();
    rows.sort_by_key(|(_, (saes, _))| std::cmp::Reverse(*saes));
    for (family, (saes, runnable)) in &rows {
        println!(
            "  {family:<14} {runnable:>6} / {saes:<6} {}",
            percent(*runnable, *saes)
        );
    }
    let saes: usize = rows.iter().map(|(_, (s, _))| s).sum();
    let runnable: usize = rows.iter().map(|(_, (_, r))| r).sum();
    println!(
        "  {:<14} {runnable:>6} / {saes:<6} {}",
        "all",
        percent(runnable, saes)
    );
}

fn percent(part: usize, whole: usize) -> String {
    format!("{:.1}%", 100.0 * part as f64 / whole.max(1) as f64)
}

/// The SAE ids of one release, with their paths (and verdicts).
fn print_ids(registry: &Registry, release: &Release, check: bool) {
    println!(
        "{} ({}, repo {}, format {}): {} SAEs",
        release.release,
        release.model,
        release.repo_id,
        release.conversion_func.as_deref().unwrap_or("saelens"),
        release.saes.len()
    );
    for sae in &release.saes {
        let verdict = match check.then(|| check::verdict(registry, release, sae)) {
            None => String::new(),
            Some(Verdict::Runnable { hook: Some(h) }) => format!("  runnable at {h}"),
            Some(Verdict::Runnable { hook: None }) => "  runnable (hook from cfg.json)".into(),
            Some(Verdict::Not(why)) => format!("  not runnable: {why}"),
        };
        println!("  {}  ->  {}{verdict}", sae.id(), sae.path());
    }
}

/// `check`: the config's SAEs against the registry, offline.
pub fn check(args: CheckArgs) -> Result<()> {
    let spec = input_spec(&args.config)?;
    let mut problems = Vec::new();
    for id in &spec.sae_ids {
        match check_sae(&spec, id) {
            Ok(line) => println!("ok  {id}: {line}"),
            Err(e) => problems.push(format!("  - SAE {id}: {e:#}")),
        }
    }
    if let Err(e) = check_model(&spec) {
        problems.push(format!("  - model {}: {e:#}", spec.model_name));
    }
    if !problems.is_empty() {
        bail!(
            "{}: {} problem(s):\n{}",
            args.config.display(),
            problems.len(),
            problems.join("\n")
        );
    }
    println!(
        "{}: {} SAE(s) of model {}, all runnable",
        args.config.display(),
        spec.sae_ids.len(),
        spec.model_name
    );
    Ok(())
}

/// The inputs a config names, whichever schema it is in (a `pca` config has `[model]`).
fn input_spec(path: &Path) -> Result<InputSpec> {
    let text = crate::encoding::read_text_file(path)
        .with_context(|| format!("cannot read config file {}", path.display()))?;
    let table: toml::Table = text
        .parse()
        .with_context(|| format!("invalid config file {}", path.display()))?;
    if table.contains_key("model") && !table.contains_key("analysis") {
        Ok(InputSpec::of_pca(&PcaConfig::load(path)?))
    } else {
        Ok(InputSpec::of_config(&Config::load(path)?))
    }
}

/// Where one SAE comes from and what it reads, or why saecooc cannot run it.
fn check_sae(spec: &InputSpec, id: &str) -> Result<String> {
    if let Some(sae) = &spec.source.sae {
        return Ok(format!(
            "from [source] sae = {sae:?} (its files are read when it loads)"
        ));
    }
    let entry = registry::check::runnable_entry(&spec.model_name, &spec.sae_release_short, id)?;
    let hook = entry
        .hook_name
        .unwrap_or_else(|| "the hook its cfg.json names".into());
    Ok(format!(
        "{}/{} (release {}, format {}), reads {hook}",
        entry.hub_repo,
        entry.subfolder,
        entry.release,
        entry.format.conversion_func().unwrap_or("saelens")
    ))
}

/// The model comes from `[source]` or the registry's model table.
fn check_model(spec: &InputSpec) -> Result<()> {
    if spec.source.model.is_some() || registry::model_repo(&spec.model_name).is_some() {
        return Ok(());
    }
    bail!("no [source] model given and the SAELens registry's model table does not have it")
}
