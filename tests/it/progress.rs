//! Progress in batch logs: with stderr redirected to a file, `cooc` writes timestamped progress
//! lines naming the SAE, and a last line when it finishes.

use crate::common::{config_text, fixture, saecooc};
use std::time::{Duration, SystemTime};

/// A progress line's parts: `{time} {label}: {pos}/{total} {unit} ({pct}), {rate} {unit}/s,
/// elapsed {t}, ETA {t}`.
struct ProgressLine {
    time: String,
    label: String,
    position: u64,
    total: u64,
    unit: String,
    rate: f64,
    eta: String,
}

fn parse_progress(line: &str) -> Option<ProgressLine> {
    let (time, rest) = line.split_once(' ')?;
    let (label, rest) = rest.split_once(": ")?;
    let (counts, rest) = rest.split_once(" (")?;
    let (position, rest_counts) = counts.split_once('/')?;
    let (total, unit) = rest_counts.split_once(' ')?;
    let (_percent, rest) = rest.split_once("), ")?;
    let (rate, rest) = rest.split_once(&format!(" {unit}/s, elapsed "))?;
    let (_elapsed, eta) = rest.split_once(", ETA ")?;
    Some(ProgressLine {
        time: time.to_string(),
        label: label.to_string(),
        position: position.parse().ok()?,
        total: total.parse().ok()?,
        unit: unit.to_string(),
        rate: rate.parse().ok()?,
        eta: eta.to_string(),
    })
}

/// `2026-12-06T09:41:02Z`: RFC 3339 in UTC with whole seconds.
fn is_rfc3339_seconds(time: &str) -> bool {
    let shape = "dddd-dd-ddTdd:dd:ddZ";
    time.len() == shape.len()
        && time.chars().zip(shape.chars()).all(|(c, s)| match s {
            'd' => c.is_ascii_digit(),
            _ => c == s,
        })
}

#[test]
fn a_redirected_cooc_logs_timestamped_progress_lines_and_a_last_line() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let p = fixture(d);
    let config = d.join("run.toml");
    std::fs::write(&config, config_text(&p, 4, "")).unwrap();
    let log = d.join("cooc.log");
    let started = saecooc::report::rfc3339(SystemTime::now());
    let status = saecooc(&["cooc", "--config"])
        .arg(&config)
        .arg("--results-dir")
        .arg(d.join("results"))
        .env("SAECOOC_PROGRESS_SECONDS", "0")
        .stderr(std::fs::File::create(&log).unwrap())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    let ended = saecooc::report::rfc3339(SystemTime::now() + Duration::from_secs(1));
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(status.success(), "{text}");

    let sae = "blocks.1.hook_resid_pre";
    // The pass's display labels each SAE's lines with the stage and the SAE.
    let label = format!("cooc {sae}");
    let progress: Vec<ProgressLine> = text.lines().filter_map(parse_progress).collect();
    assert!(
        progress.len() >= 4,
        "one line per batch with SAECOOC_PROGRESS_SECONDS=0:\n{text}"
    );
    for line in &progress {
        assert!(is_rfc3339_seconds(&line.time), "{text}");
        assert!(
            started <= line.time && line.time <= ended,
            "{} is not within the run ({started}..{ended})",
            line.time
        );
        assert_eq!(
            (line.label.as_str(), line.unit.as_str()),
            (label.as_str(), "batches")
        );
        assert_eq!(line.total, 4);
        assert!(line.rate.is_finite() && line.rate >= 0.0, "{text}");
        assert!(!line.eta.is_empty(), "{text}");
    }
    let positions: Vec<u64> = progress.iter().map(|l| l.position).collect();
    assert!(positions.windows(2).all(|w| w[0] <= w[1]), "{positions:?}");
    assert_eq!(positions.last(), Some(&4), "{text}");
    assert!(
        progress.iter().any(|l| l.position < 4 && l.eta != "-"),
        "an ETA while batches are left:\n{text}"
    );

    let last = text
        .lines()
        .find(|l| l.contains(&format!("{label}: done, 4/4 batches in ")))
        .unwrap_or_else(|| panic!("no last line:\n{text}"));
    assert!(
        is_rfc3339_seconds(last.split(' ').next().unwrap()),
        "{last}"
    );
    assert!(last.ends_with(" batches/s)"), "{last}");
}
