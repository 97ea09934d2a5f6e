//! One writer per SAE results folder: an advisory lock (`flock`) on `.saecooc.lock`, held for
//! a whole stage run and released by the operating system on exit or crash. A stage that
//! publishes one entry of a folder among others of its kind (a `subspace` folder) locks only
//! that entry, on `.{entry}.lock`. The file names
//! the holder, so a refused second writer can say who holds it. The holder removes the file
//! when done; a new holder checks that the file it locked is still the one at the path, so a
//! removal racing with a second writer can never give two holders.

use anyhow::{bail, Context, Result};
use std::fs::{File, OpenOptions, TryLockError};
use std::io::Write;
use std::path::{Path, PathBuf};

/// The lock file of a whole SAE results folder.
pub const LOCK_FILE: &str = ".saecooc.lock";

/// An exclusive lock on a results folder, or on one output in it (released when dropped).
#[derive(Debug)]
pub struct FolderLock {
    _file: File,
    path: PathBuf,
    dir: PathBuf,
    /// The one entry of `dir` the lock covers (with the staging folders that publish it);
    /// `None`: the whole folder.
    output: Option<String>,
}

impl Drop for FolderLock {
    fn drop(&mut self) {
        // Removed while still locked; the lock itself goes when the file is closed.
        let _ = std::fs::remove_file(&self.path);
    }
}

impl FolderLock {
    /// Creates `dir` if needed and locks it for `stage` (e.g. "cooc"). Refuses when another
    /// process holds it, naming that process; fails early when `dir` is not writable.
    pub fn acquire(dir: &Path, stage: &str) -> Result<Self> {
        Self::acquire_file(dir, LOCK_FILE, stage)
    }

    /// Like [`FolderLock::acquire`], on the lock file `name` inside `dir` (a shard of a split
    /// run locks only its own share).
    pub fn acquire_file(dir: &Path, name: &str, stage: &str) -> Result<Self> {
        Self::acquire_at(dir, name, stage, None)
    }

    /// Locks only the entry `output` of `dir` (a folder a stage publishes there) for `stage`,
    /// on its own lock file [`output_lock_name`]: writers of other entries run side by side,
    /// a second writer of the same one is refused.
    pub fn acquire_output(dir: &Path, output: &str, stage: &str) -> Result<Self> {
        Self::acquire_at(dir, &output_lock_name(output), stage, Some(output))
    }

    fn acquire_at(dir: &Path, name: &str, stage: &str, output: Option<&str>) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create results folder {}", dir.display()))?;
        let path = dir.join(name);
        let covered = output.map_or_else(|| dir.to_path_buf(), |o| dir.join(o));
        let mut file = lock_file_at(&path, &covered)?;
        let holder = format!(
            "pid {}, `saecooc {stage}`, started {}\n",
            std::process::id(),
            utc_now()
        );
        file.set_len(0)
            .and_then(|_| file.write_all(holder.as_bytes()))
            .and_then(|_| file.flush())
            .with_context(|| {
                format!(
                    "results folder {} is not writable (cannot write {})",
                    dir.display(),
                    path.display()
                )
            })?;
        Ok(Self {
            _file: file,
            path,
            dir: dir.to_path_buf(),
            output: output.map(str::to_string),
        })
    }

    /// The locked folder (the one holding the locked entry for [`FolderLock::acquire_output`]).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The one entry of [`FolderLock::dir`] the lock covers; `None`: the whole folder.
    pub fn output(&self) -> Option<&str> {
        self.output.as_deref()
    }
}

/// `.{output}.lock`: the lock file of the entry `output` of a folder.
pub fn output_lock_name(output: &str) -> String {
    format!(".{output}.lock")
}

/// Opens and locks the lock file at `path` (of `dir`, the results folder or output it covers,
/// named in errors), retrying when the file was removed by its previous holder between our
/// open and our lock.
fn lock_file_at(path: &Path, dir: &Path) -> Result<File> {
    use std::os::unix::fs::MetadataExt;
    loop {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| {
                format!(
                    "results folder {} is not writable (cannot open {})",
                    dir.display(),
                    path.display()
                )
            })?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let holder = std::fs::read_to_string(path).unwrap_or_default();
                let holder = holder.trim();
                bail!(
                    "results folder {} is in use by another saecooc process ({}); wait for it to finish or stop it",
                    dir.display(),
                    if holder.is_empty() { "unknown holder" } else { holder }
                );
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()))
            }
        }
        let locked = file.metadata()?.ino();
        if std::fs::metadata(path).is_ok_and(|m| m.ino() == locked) {
            return Ok(file);
        }
    }
}

/// Whether a process with this pid exists (signal 0 probes without sending anything).
pub fn process_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    // SAFETY: kill with signal 0 only checks for the process; it has no other effect.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The pid of a temporary entry saecooc names after its process: `{prefix}{pid}` for one of
/// `prefixes`, or an atomic write's `.{name}.partial-{pid}`.
pub fn temporary_pid(name: &str, prefixes: &[&str]) -> Option<u32> {
    let digits = |s: &str| {
        (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse().ok())
            .flatten()
    };
    prefixes
        .iter()
        .find_map(|p| name.strip_prefix(p).and_then(digits))
        .or_else(|| {
            name.starts_with('.')
                .then(|| name.rsplit_once(".partial-"))
                .flatten()
                .and_then(|(_, pid)| digits(pid))
        })
}

/// Removes the temporary entries of `dir` (see [`temporary_pid`]) whose process no longer
/// runs: what a killed saecooc left. Folders and files only, never a symbolic link or what it
/// points to. Returns what was removed.
pub fn remove_dead_temporaries(dir: &Path, prefixes: &[&str]) -> Vec<PathBuf> {
    let mut removed = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return removed;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = temporary_pid(&name, prefixes) else {
            continue;
        };
        if pid == std::process::id() || process_alive(pid) {
            continue;
        }
        let path = e.path();
        let gone = match e.file_type() {
            Ok(t) if t.is_dir() => std::fs::remove_dir_all(&path).is_ok(),
            Ok(t) if t.is_file() => std::fs::remove_file(&path).is_ok(),
            _ => false,
        };
        if gone {
            removed.push(path);
        }
    }
    removed
}

/// The current time as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        rest / 3600,
        rest / 60 % 60,
        rest % 60
    )
}

/// The proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_holder_named() {
        let dir = tempfile::tempdir().unwrap();
        let sae = dir.path().join("a/b");
        let first = FolderLock::acquire(&sae, "cooc").unwrap();
        let err = format!("{:#}", FolderLock::acquire(&sae, "graphs").unwrap_err());
        assert!(err.contains("in use by another saecooc process"), "{err}");
        assert!(
            err.contains(&format!("pid {}", std::process::id())),
            "{err}"
        );
        assert!(err.contains("`saecooc cooc`"), "{err}");
        drop(first);
        assert!(
            !sae.join(LOCK_FILE).exists(),
            "the lock file is removed on release"
        );
        FolderLock::acquire(&sae, "graphs").unwrap();
    }

    #[test]
    fn dates_are_gregorian() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(19_722), (2023, 12, 31));
        assert_eq!(civil_from_days(20_513), (2026, 3, 1));
        assert!(process_alive(std::process::id()));
    }

    #[test]
    fn only_dead_temporaries_of_saecooc_names_are_removed() {
        assert_eq!(temporary_pid(".data-new-12", &[".data-new-"]), Some(12));
        assert_eq!(temporary_pid(".x.npz.partial-7", &[]), Some(7));
        assert_eq!(temporary_pid(".data-new-12a", &[".data-new-"]), None);
        assert_eq!(temporary_pid("data-new-12", &[".data-new-"]), None);
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let elsewhere = tempfile::tempdir().unwrap();
        std::fs::write(elsewhere.path().join("keep.txt"), "x").unwrap();
        std::fs::create_dir(d.join(".data-new-999999999")).unwrap();
        std::fs::write(d.join(".data-new-999999999/a.js"), "x").unwrap();
        std::fs::write(d.join(".a.partial-999999999"), "x").unwrap();
        std::os::unix::fs::symlink(elsewhere.path(), d.join(".data-old-999999998")).unwrap();
        let mine = format!(".data-new-{}", std::process::id());
        std::fs::create_dir(d.join(&mine)).unwrap();
        std::fs::create_dir(d.join(".data-newer-999999999")).unwrap();
        let removed = remove_dead_temporaries(d, &[".data-new-", ".data-old-"]);
        assert_eq!(removed.len(), 2, "{removed:?}");
        assert!(d.join(&mine).exists() && d.join(".data-newer-999999999").exists());
        assert!(std::fs::symlink_metadata(d.join(".data-old-999999998")).is_ok());
        assert!(elsewhere.path().join("keep.txt").exists());
    }
}
