//! Progress for the person at a terminal: bars on stderr (bytes, rate, ETA; one line per
//! artifact when several move at once), drawn by indicatif. Drawn only when stderr is a
//! terminal, `CI` is unset and neither `--quiet` nor `--json` was given. Anywhere else a bar
//! is hidden and costs an atomic add, and what a log gets instead is plain lines
//! (`[3/12] published tools/protoc:31.1`), which `--quiet` drops too. Always stderr: stdout
//! stays the machine-readable result.

use std::borrow::Cow;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressFinish, ProgressStyle};

/// How this run reports progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Redrawn bars, with log lines printed above them.
    Bars,
    /// No bars; log lines only (a pipe, a CI log, `--json`).
    Lines,
    /// Nothing but errors (`--quiet`).
    Quiet,
}

impl Mode {
    /// Bars only for a person: stderr is a terminal that can redraw, and not a CI job (whose
    /// "terminal" is a log that keeps every redraw).
    pub fn detect(quiet: bool, json: bool) -> Mode {
        let ci = std::env::var("CI").is_ok_and(|v| !v.is_empty() && v != "false" && v != "0");
        let dumb = std::env::var("TERM").is_ok_and(|t| t == "dumb");
        if quiet {
            Mode::Quiet
        } else if json || ci || dumb || !std::io::stderr().is_terminal() {
            Mode::Lines
        } else {
            Mode::Bars
        }
    }
}

/// The progress display of one command. Cheap to clone; clones share the display.
#[derive(Debug, Clone)]
pub struct Progress {
    mode: Mode,
    multi: MultiProgress,
}

impl Progress {
    pub fn new(mode: Mode) -> Progress {
        let target = if mode == Mode::Bars {
            ProgressDrawTarget::stderr_with_hz(10)
        } else {
            ProgressDrawTarget::hidden()
        };
        Progress {
            mode,
            multi: MultiProgress::with_draw_target(target),
        }
    }

    /// For the command line's `--quiet` and the command's `--json`.
    pub fn detect(quiet: bool, json: bool) -> Progress {
        Progress::new(Mode::detect(quiet, json))
    }

    /// Nothing shown (library callers, tests).
    pub fn hidden() -> Progress {
        Progress::new(Mode::Quiet)
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// A bar counting the bytes of `label` (a download, an upload, an extraction) out of
    /// `total`; without a total, a counter with the rate.
    pub fn bytes(&self, label: &str, total: Option<u64>) -> Bar {
        let style = match total {
            Some(_) => {
                "{prefix} [{bar:24}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}"
            }
            None => "{prefix} {spinner} {bytes} {binary_bytes_per_sec} {msg}",
        };
        self.bar(label, total, style)
    }

    /// A bar counting `total` steps (artifacts of a publish).
    pub fn steps(&self, label: &str, total: u64) -> Bar {
        self.bar(
            label,
            Some(total),
            "{prefix} [{bar:24}] {pos}/{len} {elapsed} {msg}",
        )
    }

    fn bar(&self, label: &str, total: Option<u64>, template: &str) -> Bar {
        if self.mode != Mode::Bars {
            return Bar::hidden();
        }
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
        let bar = match total {
            Some(n) => ProgressBar::new(n),
            None => ProgressBar::no_length(),
        };
        let bar = self.multi.add(
            bar.with_style(style)
                .with_prefix(label.to_string())
                // Gone without `done` (an error): cleared, not left under the message.
                .with_finish(ProgressFinish::AndClear),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Bar(bar)
    }

    /// A line for the log (a step done, a retry): above the bars on a terminal, as it is
    /// elsewhere, and nowhere with `--quiet`.
    pub fn line(&self, message: &str) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Bars => {
                let _ = self.multi.println(message);
            }
            Mode::Lines => {
                let _ = writeln!(std::io::stderr().lock(), "{message}");
            }
        }
    }
}

/// One bar; hidden ones ignore every call.
#[derive(Debug, Clone)]
pub struct Bar(ProgressBar);

impl Bar {
    pub fn hidden() -> Bar {
        Bar(ProgressBar::hidden())
    }

    pub fn inc(&self, n: u64) {
        self.0.inc(n);
    }

    /// Start over (a retry, the next phase) with a new total.
    pub fn restart(&self, total: Option<u64>, message: impl Into<Cow<'static, str>>) {
        self.0.set_position(0);
        match total {
            Some(n) => self.0.set_length(n),
            None => self.0.unset_length(),
        }
        self.0.reset_eta();
        self.0.set_message(message);
    }

    pub fn set_message(&self, message: impl Into<Cow<'static, str>>) {
        self.0.set_message(message);
    }

    /// Remove the bar: what it showed is reported by the command's result.
    pub fn done(&self) {
        self.0.finish_and_clear();
    }

    /// `inner`, counting what is read through it on this bar.
    pub fn reader<R: std::io::Read>(&self, inner: R) -> Counting<R> {
        Counting {
            inner,
            bar: self.clone(),
        }
    }

    /// `inner`, counting what is written through it on this bar.
    pub fn writer<W: Write>(&self, inner: W) -> Counting<W> {
        Counting {
            inner,
            bar: self.clone(),
        }
    }
}

/// A reader or writer that counts its bytes on a [`Bar`].
pub struct Counting<W> {
    inner: W,
    bar: Bar,
}

impl<W> Counting<W> {
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for Counting<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<R: std::io::Read> std::io::Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.bar.inc(n as u64);
        Ok(n)
    }
}
