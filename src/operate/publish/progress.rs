//! Progress for long runs: a redrawn bar on a terminal, one plain line per step otherwise
//! (CI logs), always on stderr so stdout stays the machine-readable result.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

pub struct Progress {
    total: usize,
    done: AtomicUsize,
    tty: bool,
    out: Mutex<()>,
}

impl Progress {
    pub fn new(total: usize) -> Progress {
        Progress {
            total,
            done: AtomicUsize::new(0),
            tty: std::io::stderr().is_terminal(),
            out: Mutex::new(()),
        }
    }

    /// One step finished.
    pub fn step(&self, message: &str) {
        let n = self.done.fetch_add(1, Ordering::SeqCst) + 1;
        let _guard = self.out.lock();
        let mut err = std::io::stderr().lock();
        if self.tty {
            const WIDTH: usize = 30;
            let filled = WIDTH * n / self.total.max(1);
            let _ = write!(
                err,
                "\r\x1b[K[{}{}] {n}/{} {message}",
                "#".repeat(filled),
                ".".repeat(WIDTH - filled),
                self.total
            );
            if n == self.total {
                let _ = writeln!(err);
            }
        } else {
            let _ = writeln!(err, "[{n}/{}] {message}", self.total);
        }
    }

    /// A message outside the count (a retry, a warning).
    pub fn note(&self, message: &str) {
        let _guard = self.out.lock();
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = writeln!(err, "\r\x1b[K{message}");
        } else {
            let _ = writeln!(err, "{message}");
        }
    }
}
