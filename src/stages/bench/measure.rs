//! A child process's wall time and peak resident memory, for the benchmarks that run `saecooc`
//! as a user would.

use anyhow::{bail, Result};
use std::process::{Command, ExitStatus};
use std::time::Instant;

/// A child process run to its end.
#[derive(Debug, Clone, Copy)]
pub struct ChildRun {
    pub seconds: f64,
    /// Peak resident set size in bytes: `ru_maxrss` of this child alone (from `wait4`).
    pub peak_rss_bytes: u64,
    pub status: ExitStatus,
    pub success: bool,
}

/// Runs `command` to its end and measures its wall time and peak resident memory.
pub fn run_child(command: &mut Command) -> Result<ChildRun> {
    use std::os::unix::process::ExitStatusExt;
    let start = Instant::now();
    let child = command.spawn()?;
    let pid = child.id() as libc::pid_t;
    let mut status = 0;
    // SAFETY: `rusage` is plain data; wait4 reaps our own child only (std never waits for a
    // dropped `Child`).
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        let reaped = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if reaped == pid {
            break;
        }
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::Interrupted {
            bail!("cannot wait for child process {pid}: {error}");
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    drop(child);
    let status = ExitStatus::from_raw(status);
    Ok(ChildRun {
        seconds,
        peak_rss_bytes: max_rss_bytes(&usage),
        status,
        success: status.success(),
    })
}

/// `ru_maxrss` in bytes (Linux counts kibibytes, macOS bytes).
pub fn max_rss_bytes(usage: &libc::rusage) -> u64 {
    let raw = usage.ru_maxrss.max(0) as u64;
    if cfg!(target_os = "macos") {
        raw
    } else {
        raw * 1024
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_that_holds_memory_shows_it_in_its_peak() {
        // A shell that reads 256 MiB into a variable holds at least that much at its peak. (A
        // forked child's peak may start at what the test process held when it forked, so only
        // a size above that says the child's own memory is measured.)
        let mut cmd = Command::new("sh");
        cmd.args([
            "-c",
            "x=$(head -c 268435456 /dev/zero | tr '\\0' a); echo ${#x} >/dev/null",
        ]);
        let run = run_child(&mut cmd).unwrap();
        assert!(run.success, "{:?}", run.status);
        assert!(run.peak_rss_bytes >= 256 << 20, "{}", run.peak_rss_bytes);
        let small = run_child(&mut Command::new("true")).unwrap();
        assert!(small.peak_rss_bytes > 0);
    }

    #[test]
    fn a_failing_child_is_reported_as_failed() {
        let run = run_child(Command::new("sh").args(["-c", "exit 3"])).unwrap();
        assert!(!run.success);
        assert_eq!(run.status.code(), Some(3));
    }
}
