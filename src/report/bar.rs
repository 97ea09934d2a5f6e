//! [`Bar`]: one progress bar, drawn by indicatif on a terminal and written as timestamped lines
//! ([`super::lines`]) when stderr is a file or pipe; hidden by `-q`.

use super::lines::{line_interval, LineBar, Now};
use super::{progress_mode, ProgressMode};
use indicatif::{ProgressBar, ProgressStyle};
use std::borrow::Cow;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// A progress bar of [`bar`]: the stages hold it, the reporter draws it. Clones are the same bar.
#[derive(Clone)]
pub struct Bar {
    /// indicatif's bar (hidden unless stderr is a terminal).
    drawn: ProgressBar,
    /// The bar as lines (only when stderr is not a terminal).
    lines: Option<Arc<Mutex<LineBar>>>,
}

/// A bar over `total` items of `unit` (e.g. "tokens", "rows"), labelled `label`; hidden by `-q`.
pub fn bar(total: u64, label: &str, unit: &str) -> Bar {
    match progress_mode() {
        ProgressMode::Hidden => Bar::hidden(),
        ProgressMode::Bars => Bar::drawn(terminal_bar(ProgressBar::new(total), label, unit)),
        ProgressMode::Lines => Bar::lines(total, label, unit),
    }
}

/// `bar` styled as saecooc's bars are: label, bar, counts, rate and ETA, redrawn every 250 ms.
pub(super) fn terminal_bar(bar: ProgressBar, label: &str, unit: &str) -> ProgressBar {
    bar.set_style(
        ProgressStyle::with_template(&format!(
            "{{prefix}}{{msg}} [{{bar:30.cyan/blue}}] {{human_pos}}/{{human_len}} {unit} ({{per_sec}}, ETA {{eta}})"
        ))
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar.set_message(label.to_string());
    bar.enable_steady_tick(Duration::from_millis(250));
    bar
}

impl Bar {
    /// A bar that shows nothing.
    pub fn hidden() -> Self {
        Bar {
            drawn: ProgressBar::hidden(),
            lines: None,
        }
    }

    /// indicatif's `bar`, drawn on the terminal.
    pub(super) fn drawn(drawn: ProgressBar) -> Self {
        Bar { drawn, lines: None }
    }

    /// A bar written as lines on stderr.
    pub(super) fn lines(total: u64, label: &str, unit: &str) -> Self {
        let line_bar = LineBar::new(label, total, unit, line_interval(), Now::current().mono);
        Bar {
            drawn: ProgressBar::hidden(),
            lines: Some(Arc::new(Mutex::new(line_bar))),
        }
    }

    /// Moves the bar on by `delta`.
    pub fn inc(&self, delta: u64) {
        self.drawn.inc(delta);
        self.write_line(|b, now| b.inc(delta, now));
    }

    /// Moves the bar to `position`.
    pub fn set_position(&self, position: u64) {
        self.drawn.set_position(position);
        self.write_line(|b, now| b.set_position(position, now));
    }

    /// Replaces the bar's label.
    pub fn set_message(&self, message: impl Into<Cow<'static, str>>) {
        let message = message.into();
        if let Some(lines) = &self.lines {
            lock(lines).set_label(&message);
        }
        self.drawn.set_message(message);
    }

    /// Finishes the bar, leaving it drawn (or writing its last line).
    pub fn finish(&self) {
        self.drawn.finish();
        self.write_line(|b, now| b.finish(now));
    }

    /// Finishes the bar and clears it from the terminal (or writes its last line).
    pub fn finish_and_clear(&self) {
        self.drawn.finish_and_clear();
        self.write_line(|b, now| b.finish(now));
    }

    /// The last line of the line bar, finishing it (`None` when drawn, hidden or finished).
    #[cfg(test)]
    pub(super) fn last_line(&self) -> Option<String> {
        self.lines
            .as_ref()
            .and_then(|l| lock(l).finish(Now::current()))
    }

    /// Prints the line `update` gives the line bar now, if it gives one.
    fn write_line(&self, update: impl FnOnce(&mut LineBar, Now) -> Option<String>) {
        if let Some(lines) = &self.lines {
            if let Some(line) = update(&mut lock(lines), Now::current()) {
                eprintln!("{line}");
            }
        }
    }
}

/// The line bar, also after a panic elsewhere (its state is a few counters, always whole).
fn lock(lines: &Mutex<LineBar>) -> std::sync::MutexGuard<'_, LineBar> {
    lines.lock().unwrap_or_else(PoisonError::into_inner)
}
