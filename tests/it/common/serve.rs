//! `saecooc serve` as a child process of a test.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};

/// A `saecooc serve` child, killed when dropped.
pub struct ServeChild {
    pub child: Child,
    /// The URL it printed first.
    pub url: String,
}

impl ServeChild {
    /// Spawns `cmd` (a `serve --port 0` command line) and reads the URL it prints.
    pub fn spawn(cmd: &mut Command) -> Self {
        let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let url = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no URL in {line:?}"))
            .to_string();
        Self { child, url }
    }
}

impl Drop for ServeChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
