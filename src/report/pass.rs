//! [`PassProgress`]: the progress of one pass over the data that serves several items (the SAEs
//! of a sweep) at once: one bar per item on a terminal, lines naming each item in a log.

use super::bar::{terminal_bar, Bar};
use super::{progress_mode, summary, ProgressMode};
use indicatif::{MultiProgress, ProgressBar};
use std::fmt::Display;

/// The progress of a pass of `stage` over several items; see [`pass_progress`].
pub struct PassProgress {
    /// One bar per item, in the order of the items.
    bars: Vec<Bar>,
    /// The terminal display holding the bars (only on a terminal).
    multi: Option<MultiProgress>,
}

/// The progress of one pass of `stage` (e.g. "cooc") over `total` items of `unit` serving every
/// one of `items` (e.g. SAE ids): on a terminal one bar per item labelled with it, otherwise
/// timestamped lines naming it; nothing under `-q`.
pub fn pass_progress(stage: &str, items: &[String], total: u64, unit: &str) -> PassProgress {
    pass_progress_as(progress_mode(), stage, items, total, unit)
}

/// [`pass_progress`] shown as `mode` says.
fn pass_progress_as(
    mode: ProgressMode,
    stage: &str,
    items: &[String],
    total: u64,
    unit: &str,
) -> PassProgress {
    let multi = (mode == ProgressMode::Bars).then(MultiProgress::new);
    let bars = items
        .iter()
        .map(|item| match (&multi, mode) {
            (Some(multi), _) => {
                let drawn = multi.add(terminal_bar(ProgressBar::new(total), item, unit));
                drawn.set_prefix(format!("{stage} "));
                Bar::drawn(drawn)
            }
            (None, ProgressMode::Lines) => Bar::lines(total, &format!("{stage} {item}"), unit),
            (None, _) => Bar::hidden(),
        })
        .collect();
    PassProgress { bars, multi }
}

impl PassProgress {
    /// Moves item `item`'s bar (an index into the items) to `position`.
    pub fn set(&self, item: usize, position: u64) {
        if let Some(bar) = self.bars.get(item) {
            bar.set_position(position);
        }
    }

    /// Item `item` is done: finishes its bar and prints its summary `line` now (stdout, hidden
    /// by `-q`, as [`summary`]).
    pub fn finish_item(&self, item: usize, line: impl Display) {
        if let Some(bar) = self.bars.get(item) {
            bar.finish();
        }
        match &self.multi {
            Some(multi) => multi.suspend(|| summary(line)),
            None => summary(line),
        }
    }

    /// The pass is over: clears the bars from the terminal.
    pub fn finish(self) {
        for bar in &self.bars {
            bar.finish_and_clear();
        }
        if let Some(multi) = &self.multi {
            let _ = multi.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_a_log_each_item_has_its_own_line_bar_finished_on_its_own() {
        let items = vec!["blocks.0.hook_resid_pre".to_string(), "l1/w16k".to_string()];
        let pass = pass_progress_as(ProgressMode::Lines, "cooc", &items, 10, "batches");
        pass.set(0, 4);
        pass.set(1, 3);
        pass.set(7, 1);
        pass.finish_item(0, "blocks.0.hook_resid_pre: counted");
        assert!(
            pass.bars[0].last_line().is_none(),
            "finish_item wrote item 0's last line already"
        );
        let last = pass.bars[1].last_line().unwrap();
        assert!(
            last.contains(" cooc l1/w16k: done, 3/10 batches in "),
            "{last}"
        );
        pass.finish();
    }

    #[test]
    fn under_quiet_nothing_is_drawn() {
        let items = vec!["a".to_string()];
        let pass = pass_progress_as(ProgressMode::Hidden, "cooc", &items, 10, "tokens");
        pass.set(0, 5);
        assert!(pass.bars[0].last_line().is_none());
        assert!(pass.multi.is_none());
    }
}
