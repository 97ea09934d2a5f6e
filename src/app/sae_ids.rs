//! `--sae-id` (repeatable) on `cooc`, `graphs`, `pca` and `stats`: a subset of the SAEs a config
//! (or a results folder) lists, resolved once before the stage runs.

use crate::io::pyfmt::neat_sae_id;
use anyhow::{bail, Result};

/// How many of the listed ids an unknown id's error suggests.
const SUGGESTIONS: usize = 2;

/// The SAEs of `listed` that `chosen` names, in `listed`'s order and each once; all of
/// `listed` when `chosen` is empty. An id names a listed SAE when both have the same results
/// folder (neat id: `.` and `/` as `_`), so the config's id and its folder name both work.
/// An unknown id is an error naming `source` (what lists the SAEs), the id, its closest listed
/// ids and every listed id.
pub fn select_sae_ids(listed: &[String], chosen: &[String], source: &str) -> Result<Vec<String>> {
    if chosen.is_empty() {
        return Ok(listed.to_vec());
    }
    let unknown: Vec<String> = chosen
        .iter()
        .filter(|id| !listed.iter().any(|l| same_sae(l, id)))
        .map(|id| unknown_id(listed, id))
        .collect();
    if !unknown.is_empty() {
        bail!(
            "{source} does not list {}; it lists: {}",
            unknown.join("; nor "),
            listed.join(", ")
        );
    }
    Ok(listed
        .iter()
        .filter(|l| chosen.iter().any(|id| same_sae(l, id)))
        .cloned()
        .collect())
}

/// Whether `a` and `b` are the same SAE: the same results folder.
fn same_sae(a: &str, b: &str) -> bool {
    neat_sae_id(a) == neat_sae_id(b)
}

/// `--sae-id ID (closest: A, B)`.
fn unknown_id(listed: &[String], id: &str) -> String {
    let closest =
        crate::registry::closest_names(listed.iter().map(String::as_str), id, SUGGESTIONS);
    match closest.is_empty() {
        true => format!("--sae-id {id}"),
        false => format!("--sae-id {id} (closest: {})", closest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    const LISTED: [&str; 3] = [
        "blocks.0.hook_resid_pre",
        "blocks.1.hook_resid_pre",
        "blocks.2.hook_resid_pre",
    ];

    #[test]
    fn nothing_chosen_keeps_every_sae() {
        let listed = ids(&LISTED);
        assert_eq!(select_sae_ids(&listed, &[], "x").unwrap(), listed);
    }

    #[test]
    fn chosen_saes_come_in_the_listed_order_each_once() {
        let chosen = ids(&[
            "blocks.2.hook_resid_pre",
            "blocks.0.hook_resid_pre",
            "blocks.2.hook_resid_pre",
        ]);
        assert_eq!(
            select_sae_ids(&ids(&LISTED), &chosen, "x").unwrap(),
            ids(&["blocks.0.hook_resid_pre", "blocks.2.hook_resid_pre"])
        );
    }

    #[test]
    fn a_folder_name_names_its_sae() {
        let chosen = ids(&["blocks_1_hook_resid_pre"]);
        assert_eq!(
            select_sae_ids(&ids(&LISTED), &chosen, "x").unwrap(),
            ids(&["blocks.1.hook_resid_pre"])
        );
    }

    #[test]
    fn an_unknown_id_names_the_source_the_closest_ids_and_the_list() {
        let chosen = ids(&["blocks.1.hook_resid_pre", "blocks.7.hook_resid_pre"]);
        let err = select_sae_ids(
            &ids(&LISTED),
            &chosen,
            "config run.toml ([generation] sae_ids)",
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "config run.toml ([generation] sae_ids) does not list --sae-id blocks.7.hook_resid_pre \
             (closest: blocks.0.hook_resid_pre, blocks.1.hook_resid_pre); it lists: \
             blocks.0.hook_resid_pre, blocks.1.hook_resid_pre, blocks.2.hook_resid_pre"
        );
    }
}
