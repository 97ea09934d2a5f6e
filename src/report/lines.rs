//! Progress as plain lines, for a stderr that is not a terminal (a batch job's log file):
//! timestamped, at most one every few seconds per bar, and a last line when the bar finishes.
//! The clock is the caller's ([`Now`]), so the formatting and the rate limit are testable.

use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

/// The environment variable giving the least number of seconds between two lines of one bar.
pub const PROGRESS_SECONDS_ENV: &str = "SAECOOC_PROGRESS_SECONDS";

/// Seconds between two lines of one bar unless [`PROGRESS_SECONDS_ENV`] says otherwise.
const DEFAULT_SECONDS: f64 = 10.0;

/// One moment: the wall clock for the timestamp, the monotonic clock for rates and intervals.
#[derive(Clone, Copy)]
pub struct Now {
    pub wall: SystemTime,
    pub mono: Instant,
}

impl Now {
    pub fn current() -> Self {
        Now {
            wall: SystemTime::now(),
            mono: Instant::now(),
        }
    }
}

/// The least time between two lines of one bar: [`PROGRESS_SECONDS_ENV`] (seconds, fractions
/// allowed) or 10 s; read once.
pub fn line_interval() -> Duration {
    static INTERVAL: OnceLock<Duration> = OnceLock::new();
    *INTERVAL.get_or_init(|| {
        let text = std::env::var(PROGRESS_SECONDS_ENV).ok();
        parse_interval(text.as_deref()).unwrap_or_else(|| {
            eprintln!(
                "{PROGRESS_SECONDS_ENV}={} is not a number of seconds (0 or more); using {DEFAULT_SECONDS}",
                text.as_deref().unwrap_or_default()
            );
            Duration::from_secs_f64(DEFAULT_SECONDS)
        })
    })
}

/// The interval `text` gives (the default when unset); `None` when it is not a number of seconds.
fn parse_interval(text: Option<&str>) -> Option<Duration> {
    let seconds = match text {
        None => DEFAULT_SECONDS,
        Some(t) => t.trim().parse::<f64>().ok()?,
    };
    (seconds.is_finite() && seconds >= 0.0).then(|| Duration::from_secs_f64(seconds))
}

/// One bar drawn as lines: where it is, and when it last said so.
pub struct LineBar {
    label: String,
    unit: String,
    total: u64,
    position: u64,
    started: Instant,
    last_line: Option<Instant>,
    interval: Duration,
    finished: bool,
}

impl LineBar {
    /// A bar over `total` items of `unit`, started at `now`, printing at most one line per
    /// `interval`.
    pub fn new(label: &str, total: u64, unit: &str, interval: Duration, now: Instant) -> Self {
        LineBar {
            label: label.to_string(),
            unit: unit.to_string(),
            total,
            position: 0,
            started: now,
            last_line: None,
            interval,
            finished: false,
        }
    }

    pub fn set_label(&mut self, label: &str) {
        self.label = label.to_string();
    }

    /// Moves the bar to `position`; the line to print, if one is due.
    pub fn set_position(&mut self, position: u64, now: Now) -> Option<String> {
        self.position = position;
        self.due(now.mono).then(|| {
            self.last_line = Some(now.mono);
            self.progress_line(now)
        })
    }

    /// Moves the bar on by `delta`; the line to print, if one is due.
    pub fn inc(&mut self, delta: u64, now: Now) -> Option<String> {
        self.set_position(self.position.saturating_add(delta), now)
    }

    /// The bar's last line (once: `None` when it already finished).
    pub fn finish(&mut self, now: Now) -> Option<String> {
        (!std::mem::replace(&mut self.finished, true)).then(|| self.finished_line(now))
    }

    /// Whether a line may be printed at `now`: the bar's first, or `interval` after the last.
    fn due(&self, now: Instant) -> bool {
        !self.finished
            && self
                .last_line
                .is_none_or(|last| now.saturating_duration_since(last) >= self.interval)
    }

    /// `{time} {label}: {position}/{total} {unit} ({percent}), {rate} {unit}/s, elapsed {t}, ETA {t}`.
    fn progress_line(&self, now: Now) -> String {
        let elapsed = now.mono.saturating_duration_since(self.started);
        let rate = per_second(self.position, elapsed);
        let eta = match rate {
            Some(r) if r > 0.0 => duration(self.total.saturating_sub(self.position) as f64 / r),
            _ => "-".to_string(),
        };
        format!(
            "{} {}: {}/{} {} ({}), {}, elapsed {}, ETA {eta}",
            crate::report::rfc3339(now.wall),
            self.label,
            self.position,
            self.total,
            self.unit,
            percent(self.position, self.total),
            rate_text(rate, &self.unit),
            duration(elapsed.as_secs_f64()),
        )
    }

    /// `{time} {label}: done, {position}/{total} {unit} in {t} ({rate} {unit}/s)`.
    fn finished_line(&self, now: Now) -> String {
        let elapsed = now.mono.saturating_duration_since(self.started);
        format!(
            "{} {}: done, {}/{} {} in {} ({})",
            crate::report::rfc3339(now.wall),
            self.label,
            self.position,
            self.total,
            self.unit,
            duration(elapsed.as_secs_f64()),
            rate_text(per_second(self.position, elapsed), &self.unit),
        )
    }
}

/// Items per second over `elapsed`; `None` before any time has passed.
fn per_second(items: u64, elapsed: Duration) -> Option<f64> {
    let seconds = elapsed.as_secs_f64();
    (seconds > 0.0).then(|| items as f64 / seconds)
}

/// `12.3 tokens/s` (three significant digits below 100, whole numbers above); `- tokens/s`
/// before any time has passed.
fn rate_text(rate: Option<f64>, unit: &str) -> String {
    match rate {
        Some(r) if r >= 100.0 => format!("{r:.0} {unit}/s"),
        Some(r) if r >= 10.0 => format!("{r:.1} {unit}/s"),
        Some(r) => format!("{r:.2} {unit}/s"),
        None => format!("- {unit}/s"),
    }
}

/// `position` as a whole percentage of `total` (`-` for an empty total).
fn percent(position: u64, total: u64) -> String {
    match total {
        0 => "-".to_string(),
        _ => format!("{}%", (position as u128 * 100 / total as u128).min(999)),
    }
}

/// Whole seconds as `42s`, `3m07s` or `2h05m09s`.
fn duration(seconds: f64) -> String {
    let s = seconds.max(0.0).round() as u64;
    match (s / 3600, s / 60 % 60, s % 60) {
        (0, 0, sec) => format!("{sec}s"),
        (0, min, sec) => format!("{min}m{sec:02}s"),
        (h, min, sec) => format!("{h}h{min:02}m{sec:02}s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A clock `seconds` after `base`, at wall time 2026-12-06T09:00:00Z plus `seconds`.
    fn at(base: Instant, seconds: f64) -> Now {
        let wall = SystemTime::UNIX_EPOCH + Duration::from_secs(1_796_547_600);
        Now {
            wall: wall + Duration::from_secs_f64(seconds),
            mono: base + Duration::from_secs_f64(seconds),
        }
    }

    fn bar(interval: f64, base: Instant) -> LineBar {
        LineBar::new(
            "blocks.1.hook_resid_pre",
            40,
            "batches",
            Duration::from_secs_f64(interval),
            base,
        )
    }

    #[test]
    fn a_progress_line_has_time_label_counts_rate_elapsed_and_eta() {
        let base = Instant::now();
        let mut b = bar(10.0, base);
        // 10 of 40 batches in 20 s: 0.5 batches/s, 30 left → 60 s.
        let line = b.set_position(10, at(base, 20.0)).unwrap();
        assert_eq!(
            line,
            "2026-12-06T09:00:20Z blocks.1.hook_resid_pre: 10/40 batches (25%), 0.50 batches/s, elapsed 20s, ETA 1m00s"
        );
    }

    #[test]
    fn the_last_line_says_done_with_the_mean_rate_once() {
        let base = Instant::now();
        let mut b = bar(10.0, base);
        b.set_position(40, at(base, 1.0));
        let line = b.finish(at(base, 3725.0)).unwrap();
        assert_eq!(
            line,
            "2026-12-06T10:02:05Z blocks.1.hook_resid_pre: done, 40/40 batches in 1h02m05s (0.01 batches/s)"
        );
        assert!(b.finish(at(base, 3726.0)).is_none());
        assert!(
            b.inc(1, at(base, 4000.0)).is_none(),
            "no lines after the last"
        );
    }

    #[test]
    fn lines_are_at_most_one_per_interval() {
        let base = Instant::now();
        let mut b = bar(10.0, base);
        let printed: Vec<f64> = [0.5, 1.0, 9.0, 10.4, 10.6, 20.0, 20.7, 31.0]
            .into_iter()
            .filter(|&t| b.inc(1, at(base, t)).is_some())
            .collect();
        assert_eq!(printed, vec![0.5, 10.6, 20.7, 31.0]);
    }

    #[test]
    fn interval_zero_prints_every_update() {
        let base = Instant::now();
        let mut b = bar(0.0, base);
        assert!((0..5).all(|i| b.inc(1, at(base, 0.001 * i as f64)).is_some()));
    }

    #[test]
    fn no_time_passed_gives_no_rate_and_no_eta() {
        let base = Instant::now();
        let line = bar(0.0, base).set_position(0, at(base, 0.0)).unwrap();
        assert!(line.ends_with("0/40 batches (0%), - batches/s, elapsed 0s, ETA -"));
    }

    #[test]
    fn the_label_follows_set_label() {
        let base = Instant::now();
        let mut b = bar(0.0, base);
        b.set_label("training: loss 0.5");
        assert!(b
            .inc(1, at(base, 1.0))
            .unwrap()
            .contains(" training: loss 0.5: 1/40"));
    }

    #[test]
    fn rates_and_durations_read_as_people_write_them() {
        assert_eq!(rate_text(Some(12_345.6), "tokens"), "12346 tokens/s");
        assert_eq!(rate_text(Some(12.345), "tokens"), "12.3 tokens/s");
        assert_eq!(duration(59.4), "59s");
        assert_eq!(duration(187.0), "3m07s");
        assert_eq!(duration(7509.0), "2h05m09s");
        assert_eq!(percent(3, 0), "-");
        assert_eq!(percent(41, 40), "102%");
    }

    #[test]
    fn the_interval_is_seconds_or_the_default() {
        assert_eq!(parse_interval(None), Some(Duration::from_secs(10)));
        assert_eq!(parse_interval(Some("0")), Some(Duration::ZERO));
        assert_eq!(
            parse_interval(Some(" 2.5 ")),
            Some(Duration::from_millis(2500))
        );
        assert_eq!(parse_interval(Some("-1")), None);
        assert_eq!(parse_interval(Some("soon")), None);
    }
}
