//! Tests that need what a machine may lack (a browser, assets fetched by
//! `scripts/fetch-demo-assets.sh`) are skipped with a line on the terminal saying so, or fail
//! when an environment switch asks for them: `.ci/run` sets SAECOOC_REQUIRE_BROWSER and
//! SAECOOC_REQUIRE_ASSETS, so there nothing passes without having run.

use std::io::Write;
use std::path::PathBuf;

/// Makes the browser tests fail instead of skipping.
pub const REQUIRE_BROWSER: &str = "SAECOOC_REQUIRE_BROWSER";
/// Makes the tests that need fetched assets fail instead of skipping.
pub const REQUIRE_ASSETS: &str = "SAECOOC_REQUIRE_ASSETS";

/// Whether the switch `var` is on: set, and neither empty nor "0".
pub fn required(var: &str) -> bool {
    std::env::var(var).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// Says on the terminal (not only in the output cargo captures and hides for a passing test)
/// that `test` is skipped because `why`, and how to run it; panics instead when `switch` is on.
pub fn skip_or_fail(test: &str, why: &str, remedy: &str, switch: &str) {
    if required(switch) {
        panic!("{test} cannot run: {why} ({switch} is set, so this fails instead of skipping)");
    }
    let _ = writeln!(
        std::io::stderr(),
        "\nSKIPPED {test}: {why}. {remedy}; {switch}=1 turns this skip into a failure.\n"
    );
}

/// The fetched asset `path` (relative to the repository) that `test` needs, or None when it is
/// missing, after [`skip_or_fail`] with SAECOOC_REQUIRE_ASSETS.
pub fn require_asset(test: &str, path: &str) -> Option<PathBuf> {
    let full = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path);
    if full.is_file() {
        return Some(full);
    }
    skip_or_fail(
        test,
        &format!("{} is not fetched", full.display()),
        "Run scripts/fetch-demo-assets.sh to fetch it",
        REQUIRE_ASSETS,
    );
    None
}
