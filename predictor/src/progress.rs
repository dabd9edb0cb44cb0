//! Progress reporting for long fits and evaluations: an indicatif bar on a terminal, plain lines
//! (one per stage and per 10 %) otherwise, so logs of non-interactive runs stay readable.
use crate::eval::Progress;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;

/// Progress on standard error.
#[derive(Debug)]
pub struct StderrProgress {
    bar: Option<ProgressBar>,
    terminal: bool,
    stage: String,
    total: u64,
    done: u64,
    last_decile: u64,
}

impl Default for StderrProgress {
    fn default() -> Self {
        Self::new()
    }
}

impl StderrProgress {
    /// Bars when standard error is a terminal, lines otherwise.
    pub fn new() -> Self {
        Self {
            bar: None,
            terminal: std::io::stderr().is_terminal(),
            stage: String::new(),
            total: 0,
            done: 0,
            last_decile: 0,
        }
    }

    /// Ends the current bar, if any.
    pub fn finish(&mut self) {
        if let Some(b) = self.bar.take() {
            b.finish();
        }
    }
}

impl Progress for StderrProgress {
    fn stage(&mut self, name: &str, total: u64) {
        self.finish();
        self.stage = name.to_string();
        self.total = total;
        self.done = 0;
        self.last_decile = 0;
        if self.terminal {
            let bar = ProgressBar::new(total);
            if let Ok(style) = ProgressStyle::with_template(
                "{prefix:>9} [{elapsed_precise}] {wide_bar} {pos}/{len} (eta {eta})",
            ) {
                bar.set_style(style);
            }
            bar.set_prefix(name.to_string());
            self.bar = Some(bar);
        } else {
            eprintln!("{name}: 0/{total}");
        }
    }

    fn advance(&mut self, n: u64) {
        self.done += n;
        match &self.bar {
            Some(b) => b.inc(n),
            None => {
                let decile = self.done * 10 / self.total.max(1);
                if decile > self.last_decile {
                    self.last_decile = decile;
                    eprintln!("{}: {}/{}", self.stage, self.done, self.total);
                }
            }
        }
    }
}
