//! What the machine gives a run: the memory it may use, detected once (on Linux the least of
//! what the kernel reports available and the limit of the process's control group, as a
//! scheduler such as SLURM sets it; on macOS the physical memory).

use std::path::Path;

/// Memory a run may use, and where the figure came from (for messages).
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryLimit {
    pub bytes: u64,
    pub source: String,
}

impl MemoryLimit {
    /// `gib` GiB, set by the user (`source` names the option).
    pub fn given(gib: f64, source: &str) -> Self {
        Self {
            bytes: (gib * GIB) as u64,
            source: source.to_string(),
        }
    }

    /// The memory available now: the least of what the machine reports ([`machine_figures`]);
    /// None where it reports nothing.
    pub fn detect() -> Option<Self> {
        machine_figures()
            .into_iter()
            .min_by_key(|(b, _)| *b)
            .map(|(bytes, source)| Self {
                bytes,
                source: source.to_string(),
            })
    }

    /// The limit in GiB.
    pub fn gib(&self) -> f64 {
        self.bytes as f64 / GIB
    }
}

const GIB: f64 = (1u64 << 30) as f64;

/// Linux: `/proc/meminfo`'s MemAvailable and the room left under the control group's limit.
#[cfg(target_os = "linux")]
fn machine_figures() -> Vec<(u64, &'static str)> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
    let available = meminfo
        .as_deref()
        .and_then(mem_available)
        .map(|b| (b, "MemAvailable in /proc/meminfo"));
    let cgroup = cgroup_room(Path::new("/sys/fs/cgroup")).map(|b| (b, "the cgroup's limit"));
    [available, cgroup].into_iter().flatten().collect()
}

/// macOS: the physical memory (`sysctl hw.memsize`); macOS reports no figure like Linux's
/// MemAvailable (it compresses and swaps instead), so `--memory-limit-gib` is the way to hold
/// a run below it.
#[cfg(target_os = "macos")]
fn machine_figures() -> Vec<(u64, &'static str)> {
    let mut bytes: u64 = 0;
    let mut len = std::mem::size_of::<u64>();
    // SAFETY: hw.memsize is a 64-bit integer; `bytes` and `len` outlive the call, which writes
    // at most `len` bytes.
    let rc = unsafe {
        libc::sysctlbyname(
            c"hw.memsize".as_ptr(),
            (&mut bytes as *mut u64).cast(),
            &mut len,
            std::ptr::null_mut(),
            0,
        )
    };
    if rc == 0 && bytes > 0 {
        vec![(bytes, "the physical memory (sysctl hw.memsize)")]
    } else {
        Vec::new()
    }
}

/// Elsewhere nothing is detected: `--memory-limit-gib` sets the limit.
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
fn machine_figures() -> Vec<(u64, &'static str)> {
    Vec::new()
}

/// MemAvailable of a `/proc/meminfo` text, in bytes.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The room left under the limit of the control group mounted at `root` (v2 `memory.max`
/// less `memory.current`, or v1 `memory.limit_in_bytes` less `memory.usage_in_bytes`); None
/// without a limit.
#[cfg_attr(not(target_os = "linux"), allow(dead_code))]
fn cgroup_room(root: &Path) -> Option<u64> {
    let read = |name: &str| -> Option<u64> {
        std::fs::read_to_string(root.join(name))
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    let (limit, used) = match read("memory.max") {
        Some(limit) => (limit, read("memory.current").unwrap_or(0)),
        None => (
            read("memory/memory.limit_in_bytes")?,
            read("memory/memory.usage_in_bytes").unwrap_or(0),
        ),
    };
    // cgroup v1 reports "no limit" as a huge number.
    (limit < 1 << 60).then(|| limit.saturating_sub(used))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mem_available_is_read_in_bytes() {
        let text = "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   2048 kB\n";
        assert_eq!(mem_available(text), Some(2048 * 1024));
        assert_eq!(mem_available("MemTotal: 1 kB\n"), None);
    }

    #[test]
    fn cgroup_room_is_the_limit_less_the_usage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(cgroup_room(dir.path()), None);
        std::fs::write(dir.path().join("memory.max"), "max\n").unwrap();
        assert_eq!(cgroup_room(dir.path()), None);
        std::fs::write(dir.path().join("memory.max"), "1000\n").unwrap();
        std::fs::write(dir.path().join("memory.current"), "300\n").unwrap();
        assert_eq!(cgroup_room(dir.path()), Some(700));
    }
}
