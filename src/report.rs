//! What saecooc says while it works, in one place. Progress bars and notes (stderr) and
//! summaries (stdout) are hidden by `-q`; warnings (stderr) and a command's own output
//! (stdout) are printed under `-q` too. Errors are the command line's to print.

use indicatif::{ProgressBar, ProgressStyle};

/// A progress bar of [`bar`] (hidden under `-q`): the stages hold it, the reporter draws it.
pub type Bar = ProgressBar;
use std::fmt::Display;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

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

/// A bar over `total` items of `unit` (e.g. "tokens", "rows"), labelled `label`; hidden by `-q`.
pub fn bar(total: u64, label: &str, unit: &str) -> Bar {
    if !shows_progress() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{msg}} [{{bar:30.cyan/blue}}] {{human_pos}}/{{human_len}} {unit} ({{per_sec}}, ETA {{eta}})"
        ))
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message(label.to_string());
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}
