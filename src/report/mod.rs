//! What saecooc says while it works, in one place. Progress bars and notes (stderr) and
//! summaries (stdout) are hidden by `-q`; warnings (stderr) and a command's own output
//! (stdout) are printed under `-q` too. Errors are the command line's to print.

//!
//! Progress goes to stderr: bars on a terminal, timestamped lines otherwise ([`lines`]), so a
//! batch job's log shows how far a run is.

mod bar;
mod lines;
mod pass;

pub use bar::{bar, Bar};
pub use lines::PROGRESS_SECONDS_ENV;
pub use pass::{pass_progress, PassProgress};

use std::fmt::Display;
use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

/// `-q`, set once by the command line before any work.
static QUIET: AtomicBool = AtomicBool::new(false);

/// Sets `-q` for the rest of the process.
pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

/// Whether progress is shown: no `-q`.
pub fn shows_progress() -> bool {
    !QUIET.load(Ordering::Relaxed)
}

/// How progress is shown: bars on a terminal, lines in a log, or not at all (`-q`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum ProgressMode {
    Hidden,
    Bars,
    Lines,
}

fn progress_mode() -> ProgressMode {
    match (shows_progress(), std::io::stderr().is_terminal()) {
        (false, _) => ProgressMode::Hidden,
        (true, true) => ProgressMode::Bars,
        (true, false) => ProgressMode::Lines,
    }
}

/// What the run is doing or chose (stderr); hidden by `-q`.
pub fn note(message: impl Display) {
    if shows_progress() {
        eprintln!("{message}");
    }
}

/// What the user should know about their inputs or results even under `-q`: something skipped,
/// left out, left in place or read another way (stderr).
pub fn warning(message: impl Display) {
    eprintln!("{message}");
}

/// A line the user asked for with a flag (`serve --log`), printed under `-q` too (stderr).
pub fn log(line: impl Display) {
    eprintln!("{line}");
}

/// A line of a command's summary (stdout); hidden by `-q`.
pub fn summary(line: impl Display) {
    if shows_progress() {
        println!("{line}");
    }
}

/// What the command is for, printed under `-q` too: a benchmark's tables, the address `serve`
/// listens on (stdout).
pub fn output(line: impl Display) {
    println!("{line}");
}

/// `t` in UTC as RFC 3339 with whole seconds (`1970-01-01T00:00:00Z`).
pub fn rfc3339(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}
