//! Records the source commit the binary is built from as `SAECOOC_GIT_COMMIT`: the env
//! variable of that name when set (for builds outside a checkout, e.g. from a tarball), else
//! `git rev-parse HEAD` with `-dirty` when tracked files differ from it, else `unknown`.
//! Checkouts sharing one target folder share this script's record: a checkout none of whose
//! sources or git files changed since another checkout's build keeps that build's commit until
//! one does (a fresh clone's files are newer, so CI's clones are always read anew).

use std::path::PathBuf;
use std::process::Command;

/// The checkout being built, read when the script runs: `env!` would bake in the folder the
/// script was first compiled in, and another clone sharing the target folder would then report
/// that clone's commit.
fn manifest_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_default()
}

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(manifest_dir())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn commit() -> String {
    let Some(head) = git(&["rev-parse", "HEAD"]).filter(|h| !h.is_empty()) else {
        return "unknown".into();
    };
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    if dirty {
        format!("{head}-dirty")
    } else {
        head
    }
}

/// Reruns this script when HEAD, the branch it points to or the index move, and when a source
/// file changes (which may make the tree dirty or clean).
fn watch_git() {
    for name in ["HEAD", "index", "packed-refs"] {
        if let Some(path) = git(&["rev-parse", "--git-path", name]) {
            let path = manifest_dir().join(path);
            if path.exists() {
                println!("cargo:rerun-if-changed={}", path.display());
            }
        }
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        if let Some(path) = git(&["rev-parse", "--git-path", &branch]) {
            let path = manifest_dir().join(path);
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
    for path in ["src", "Cargo.toml", "build.rs"] {
        println!("cargo:rerun-if-changed={path}");
    }
}

fn main() {
    println!("cargo:rerun-if-env-changed=SAECOOC_GIT_COMMIT");
    let commit = match std::env::var("SAECOOC_GIT_COMMIT") {
        Ok(c) if !c.trim().is_empty() => c.trim().to_string(),
        _ => {
            watch_git();
            commit()
        }
    };
    println!("cargo:rustc-env=SAECOOC_GIT_COMMIT={commit}");
}
