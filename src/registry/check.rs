//! Whether saecooc can run each SAE of the registry, and if not, exactly why: its model's
//! architecture, its hook on that architecture, and its file format.

use super::data::{Registry, RegistrySae, Release};
use super::hooks::expected_hook;
use super::SaeEntry;
use crate::model::{self, HookPoint};
use crate::sae::SaeFormat;
use anyhow::{bail, Result};

/// What saecooc can do with one registry SAE.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// It runs; `hook` is None where only the SAE's cfg.json names it (read at load, and checked
    /// against the model then).
    Runnable { hook: Option<HookPoint> },
    /// It does not, because of this.
    Not(String),
}

/// The family name of a release's model: its architecture's display name without a variant in
/// parentheses ("Gemma 3 (multimodal)" is Gemma 3), else its model_type.
pub fn family(registry: &Registry, release: &Release) -> String {
    match registry.model(&release.model) {
        Some(m) => model::architecture(&m.model_type)
            .map(|(name, _)| name.split(" (").next().unwrap_or(name).to_string())
            .unwrap_or_else(|_| m.model_type.clone()),
        None => release.model.clone(),
    }
}

/// Why the SAEs of `release` cannot run whatever their hook, or None.
pub fn release_blocker(registry: &Registry, release: &Release) -> Option<String> {
    let Some(info) = registry.model(&release.model) else {
        return Some(format!(
            "model '{}' is not in the registry's model table",
            release.model
        ));
    };
    if let Err(e) = model::architecture(&info.model_type) {
        return Some(format!("{} ({}): {e}", release.model, info.repo));
    }
    match SaeFormat::from_conversion_func(release.conversion_func.as_deref()) {
        Err(e) => Some(e.to_string()),
        // Its trainers' class is in each SAE's config.json; the release name says it here.
        Ok(SaeFormat::DictionaryLearning) if release.release.contains("gated") => Some(
            "its dictionary_learning trainers are GatedAutoEncoders, gated SAEs, which saecooc does not encode (standard, JumpReLU and TopK only)".into(),
        ),
        Ok(format) => format.unsupported_reason().map(|why| {
            format!(
                "SAE format {}: {why}",
                format.conversion_func().unwrap_or("SAELens")
            )
        }),
    }
}

/// The verdict on `sae` of `release`.
pub fn verdict(registry: &Registry, release: &Release, sae: &RegistrySae) -> Verdict {
    if let Some(why) = release_blocker(registry, release) {
        return Verdict::Not(why);
    }
    let Some(hook_name) = expected_hook(release, sae) else {
        return Verdict::Runnable { hook: None };
    };
    let hook = match HookPoint::parse(&hook_name) {
        Ok(hook) => hook,
        Err(e) => return Verdict::Not(e.to_string()),
    };
    let model_type = registry
        .model(&release.model)
        .map(|m| m.model_type.as_str())
        .unwrap_or("");
    match model::architecture(model_type).and_then(|(name, kinds)| hook.check_kind(kinds, name)) {
        Ok(()) => Verdict::Runnable { hook: Some(hook) },
        Err(e) => Verdict::Not(e.to_string()),
    }
}

/// The registry entry of an SAE a config names, if saecooc can run it: else an error saying
/// why (an id the release lacks names the closest ones). A hub repo release (`owner/name`
/// outside the registry) passes: its SAEs are checked when loaded.
pub fn runnable_entry(model_name: &str, release_short: &str, sae_id: &str) -> Result<SaeEntry> {
    let entry = super::require(model_name, release_short, sae_id)?;
    let registry = super::registry()?;
    let Some(release) = registry.release(&entry.release) else {
        return Ok(entry);
    };
    let Some(sae) = release.sae(sae_id) else {
        return Ok(entry);
    };
    match verdict(registry, release, sae) {
        Verdict::Runnable { .. } => Ok(entry),
        Verdict::Not(why) => bail!(
            "saecooc cannot run SAE '{sae_id}' of release '{}': {why}",
            release.release
        ),
    }
}

/// The verdicts on one release's SAEs.
#[derive(Debug, Clone)]
pub struct ReleaseReport {
    pub release: String,
    pub model: String,
    pub family: String,
    pub format: String,
    pub repo: String,
    pub saes: usize,
    pub runnable: usize,
    /// Runnable SAEs whose hook only their cfg.json names.
    pub hook_from_cfg: usize,
    /// Each distinct reason an SAE cannot run, with how many SAEs it stops.
    pub reasons: Vec<(String, usize)>,
}

/// The report on `release`.
pub fn report(registry: &Registry, release: &Release) -> ReleaseReport {
    let mut out = ReleaseReport {
        release: release.release.clone(),
        model: release.model.clone(),
        family: family(registry, release),
        format: release
            .conversion_func
            .clone()
            .unwrap_or_else(|| "saelens".into()),
        repo: release.repo_id.clone(),
        saes: release.saes.len(),
        runnable: 0,
        hook_from_cfg: 0,
        reasons: Vec::new(),
    };
    for sae in &release.saes {
        match verdict(registry, release, sae) {
            Verdict::Runnable { hook } => {
                out.runnable += 1;
                out.hook_from_cfg += usize::from(hook.is_none());
            }
            Verdict::Not(why) => match out.reasons.iter_mut().find(|(r, _)| *r == why) {
                Some((_, n)) => *n += 1,
                None => out.reasons.push((why, 1)),
            },
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::registry;

    #[test]
    fn verdicts_name_the_reason() {
        let r = registry().unwrap();
        let res_jb = r.release("gpt2-small-res-jb").unwrap();
        let sae = res_jb.sae("blocks.8.hook_resid_pre").unwrap();
        assert!(matches!(
            verdict(r, res_jb, sae),
            Verdict::Runnable { hook: Some(_) }
        ));
        let qwen35 = r
            .releases
            .iter()
            .find(|rel| rel.model.starts_with("Qwen/Qwen3.5"))
            .unwrap();
        match verdict(r, qwen35, &qwen35.saes[0]) {
            Verdict::Not(why) => assert!(why.contains("qwen3_5"), "{why}"),
            other => panic!("{other:?}"),
        }
    }
}
