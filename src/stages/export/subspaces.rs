//! The subspaces that `saecooc subspace` analysed, added to the site: one data file each,
//! `data/subspaces/{key}.js` (the subgraph view's data plus the subspace's own: explained
//! variance, representative points and `--points`, the custom prompts' points, the figure
//! list), and copies of its PNG figures under `data/subspaces/{key}/`. Each is paired with the
//! results folder whose graphs set it analysed (its `subspace.json` records that set's id).

use super::site::SiteWriter;
use super::subgraph_json;
use super::tables::{check_group, check_nodes, read_csr, read_nodes, Csr, Node};
use crate::io::pyfmt::{neat_sae_id, threshold_tag};
use crate::results::h5::read_pca_file;
use crate::results::layout::{
    node_table_name, site_files, site_key, subspace_folder_prefix, subspace_manifest, GraphFiles,
    SaeFolder, DATAFRAMES, GRAPHS_JSON,
};
use crate::results::set::PublishedSet;
use crate::results::stage::Stage;
use crate::results::subspace_summary::{
    find_subspaces, read_prompt_rows, PromptRows, ShownPoint, SubspaceFolder,
};
use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// What the folder name says beyond `pca_{ts}_subgraph_{sid}`: the results folder and graphs
/// set analysed (`n_batches_{N}_graphs_{id}`); empty for folders of older versions, which named
/// neither.
fn results_tag(s: &SubspaceFolder) -> String {
    let m = &s.summary;
    let base = subspace_folder_prefix(m.activation_threshold, m.subgraph_id);
    let name = s.dir.file_name().unwrap_or_default().to_string_lossy();
    name.strip_prefix(&base)
        .map(|rest| rest.trim_start_matches('_').to_string())
        .unwrap_or_else(|| name.into_owned())
}

/// `{model}__{release}__{sae}__{ts}__{sid}` plus `__{results tag}` when the folder name has one,
/// as a site key ([`site_key`]).
fn subspace_key(s: &SubspaceFolder) -> String {
    let m = &s.summary;
    let sae = neat_sae_id(&m.sae_id);
    let ts = threshold_tag(m.activation_threshold);
    let sid = m.subgraph_id.to_string();
    let tag = results_tag(s);
    let mut parts = vec![m.model.as_str(), m.release.as_str(), &sae, &ts, &sid];
    if !tag.is_empty() {
        parts.push(&tag);
    }
    site_key(&parts)
}

/// The graphs set id the subspace was computed from, when its summary records one.
fn recorded_graphs_set(s: &SubspaceFolder) -> Option<&str> {
    let id = s.summary.set.inputs.get("graphs")?;
    (id != "unchecked").then_some(id.as_str())
}

/// The results folder holding `table` (`{dir}/dataframes/node_info_df_{ts}.csv`).
fn results_folder_of(table: &Path) -> &Path {
    table
        .parent()
        .and_then(Path::parent)
        .unwrap_or(Path::new(""))
}

/// The node table the subspace came from. With a recorded graphs set: the table of the results
/// folder that holds that set now (the summary's path first, then the same SAE's folders of the
/// results), never another set's table of the same name. Without one (older versions, graphs
/// without a manifest): the summary's path, else the only results folder of the SAE with that
/// threshold's table.
fn node_table(s: &SubspaceFolder, saes: &[SaeFolder]) -> Result<PathBuf> {
    let m = &s.summary;
    let name = node_table_name(&threshold_tag(m.activation_threshold));
    let same_sae = saes
        .iter()
        .filter(|f| f.model == m.model && f.release == m.release && f.sae == neat_sae_id(&m.sae_id))
        .map(|f| f.dir.join(DATAFRAMES).join(&name));
    let candidates: Vec<PathBuf> = std::iter::once(m.node_table.clone())
        .chain(same_sae)
        .filter(|p| p.is_file())
        .collect();
    if let Some(id) = recorded_graphs_set(s) {
        return candidates
            .into_iter()
            .find(|t| {
                PublishedSet::open(results_folder_of(t), Stage::Graphs.name(), GRAPHS_JSON)
                    .is_ok_and(|g| g.set_id() == Some(id))
            })
            .with_context(|| {
                format!(
                    "it analysed graphs set {id} (node table {}), which no results folder holds now (`graphs` was rerun or the folder is gone): rerun `saecooc subspace`",
                    m.node_table.display()
                )
            });
    }
    if m.node_table.is_file() {
        return Ok(m.node_table.clone());
    }
    match candidates.as_slice() {
        [one] => Ok(one.clone()),
        [] => bail!(
            "its node table {} is gone and no results folder has {name}",
            m.node_table.display()
        ),
        several => bail!(
            "its node table {} is gone and {} results folders have {name} ({}): it does not record which one it analysed",
            m.node_table.display(),
            several.len(),
            several
                .iter()
                .map(|p| results_folder_of(p).display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The latents of the subgraph (node-table rows, in the summary's order) and the thresholded
/// matrix beside the node table.
fn graph_inputs(s: &SubspaceFolder, saes: &[SaeFolder]) -> Result<(Vec<Node>, Csr)> {
    let table = node_table(s, saes)?;
    let nodes = read_nodes(&table)?;
    let members = s
        .summary
        .latents
        .iter()
        .map(|id| {
            nodes
                .iter()
                .find(|n| n.id == *id)
                .cloned()
                .with_context(|| format!("latent {id} is not in {}", table.display()))
        })
        .collect::<Result<Vec<_>>>()?;
    let csr_path = GraphFiles::new(results_folder_of(&table), s.summary.activation_threshold)
        .sparse_thresholded;
    let csr = read_csr(&csr_path)?;
    check_nodes(&nodes, &table, &csr, &csr_path)?;
    Ok((members, csr))
}

/// Appends the prompts' rows to the points (after the examples), with `prompt_line` (null for
/// an example) and `max` the prompt token's strongest latent.
fn add_prompt_points(points: &mut Value, rows: &PromptRows, latents: &[u32], examples: usize) {
    let push = |points: &mut Value, key: &str, v: Value| {
        if let Some(a) = points[key].as_array_mut() {
            a.push(v);
        }
    };
    let mut lines = vec![Value::Null; examples];
    for i in 0..rows.tokens.len() {
        let acts = &rows.acts[i];
        let max = acts
            .iter()
            .enumerate()
            .filter(|(_, &a)| a > 0.0)
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map_or(-1, |(k, _)| latents[k] as i64);
        push(points, "pc", json!(rows.pcs[i].map(super::round)));
        push(points, "token", json!(rows.tokens[i]));
        push(points, "context", json!(rows.contexts[i]));
        push(points, "max", json!(max));
        push(
            points,
            "acts",
            json!(acts.iter().map(|&a| super::round(a)).collect::<Vec<_>>()),
        );
        lines.push(json!(rows.line[i]));
    }
    points["prompt_line"] = json!(lines);
}

/// The PNG figures of the folder and of its point folders, as paths relative to it, in name
/// order.
fn png_figures(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut visit = |sub: &Path, prefix: &str| {
        let Ok(entries) = std::fs::read_dir(sub) else {
            return Vec::new();
        };
        let mut dirs = Vec::new();
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if e.path().is_dir() {
                dirs.push(name);
            } else if name.ends_with(".png") {
                out.push(format!("{prefix}{name}"));
            }
        }
        dirs
    };
    for d in visit(dir, "") {
        visit(&dir.join(&d), &format!("{d}/"));
    }
    out.sort();
    out
}

fn shown_points(points: &[ShownPoint], figures: &[String]) -> Value {
    json!(points
        .iter()
        .map(|p| {
            let figure = figures
                .iter()
                .find(|f| f.starts_with(&format!("{}/", p.folder)) && !f.contains("pca_pc2"));
            json!({
                "point_id": p.point_id,
                "token": p.token,
                "context": p.context,
                "pcs": p.pcs,
                "folder": p.folder,
                "figure": figure,
            })
        })
        .collect::<Vec<_>>())
}

/// The subspace folder as a result set: its `subspace.json` lists every file with its SHA-256
/// (a folder written before manifests is read unchecked).
fn subspace_set(s: &SubspaceFolder) -> Result<PublishedSet> {
    let parent = s.dir.parent().unwrap_or(Path::new("."));
    let folder = s.dir.file_name().unwrap_or_default().to_string_lossy();
    PublishedSet::open(parent, Stage::Subspace.name(), &subspace_manifest(&folder))
}

/// Writes one subspace's data file and figures; returns its entry in `data/index.js`.
fn export_subspace(site: &mut SiteWriter, s: &SubspaceFolder, saes: &[SaeFolder]) -> Result<Value> {
    let m = &s.summary;
    let key = subspace_key(s);
    let set = subspace_set(s)?;
    set.verify(&s.h5())?;
    let groups = read_pca_file(&[s.h5()])?;
    let Some(group) = groups.iter().find(|g| g.subgraph_id == m.subgraph_id) else {
        bail!(
            "{} has no group subgraph_{}",
            s.h5().display(),
            m.subgraph_id
        );
    };
    let (members, csr) = graph_inputs(s, saes)?;
    let member_refs: Vec<&Node> = members.iter().collect();
    check_group(group, &member_refs, &csr)
        .with_context(|| format!("{} [subgraph_{}]", s.h5().display(), m.subgraph_id))?;
    let mut data = subgraph_json(group, &member_refs, &csr);
    let examples = group.pcs.len() / 3;
    let prompt_rows = if m.prompts.is_some() && s.prompts_csv().is_file() {
        set.verify(&s.prompts_csv())?;
        read_prompt_rows(&s.prompts_csv(), &m.latents)?
    } else {
        PromptRows::default()
    };
    add_prompt_points(&mut data["points"], &prompt_rows, &m.latents, examples);
    let figures = png_figures(&s.dir);
    for f in &figures {
        set.verify(&s.dir.join(f))?;
        site.copy_file(
            &format!("{}/{f}", site_files::subspace_dir(&key)),
            &s.dir,
            f,
        )?;
    }
    data["subspace"] = json!({
        "model": m.model,
        "release": m.release,
        "sae": m.sae_id,
        "threshold": m.activation_threshold,
        "subgraph": m.subgraph_id,
        "examples": examples,
        "explained_variance": m.pca.explained_variance,
        "explained_variance_ratio": m.pca.explained_variance_ratio,
        "representative": shown_points(&m.representative_points, &figures),
        "points": shown_points(&m.points, &figures),
        "prompts": m.prompts.as_ref().map(|p| json!({
            "prompts": p.prompts, "examples": prompt_rows.tokens.len(), "silent_lines": p.silent_lines,
        })),
        "figures": figures,
        "dir": site_files::page_path(&site_files::subspace_dir(&key)),
    });
    site.write_call(&site_files::subspace_file(&key), "subspace", &key, &data)?;
    Ok(json!({
        "key": key,
        "model": m.model,
        "release": m.release,
        "sae": m.sae_id,
        "threshold": m.activation_threshold,
        "subgraph": m.subgraph_id,
        "results": results_tag(s),
        "latents": m.latents.len(),
        "examples": examples,
        "prompt_points": prompt_rows.tokens.len(),
        "file": site_files::page_path(&site_files::subspace_file(&key)),
    }))
}

/// Adds every subspace under `figures` to the site; returns their index entries and notes on
/// those left out (each with its folder and why).
pub(super) fn export_subspaces(
    site: &mut SiteWriter,
    figures: &Path,
    saes: &[SaeFolder],
) -> (Vec<Value>, Vec<String>) {
    let (found, mut notes) = find_subspaces(figures);
    let mut entries = Vec::new();
    for s in &found {
        match export_subspace(site, s, saes) {
            Ok(entry) => entries.push(entry),
            Err(e) => notes.push(format!(
                "subspace {} left out of the explorer: {e:#}",
                s.dir.display()
            )),
        }
    }
    (entries, notes)
}
