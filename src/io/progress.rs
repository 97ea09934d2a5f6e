//! Progress bars shared by the stages (indicatif; hidden with `--quiet`).

use indicatif::{ProgressBar, ProgressStyle};
use std::time::Duration;

/// A bar over `total` items of `unit` (e.g. "tokens", "rows"), labelled `label`.
pub fn bar(total: u64, quiet: bool, label: &str, unit: &str) -> ProgressBar {
    if quiet {
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
