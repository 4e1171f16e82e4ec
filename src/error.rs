//! The one error type of protoreg. Every variant says what failed, where, and what to do;
//! [`Error::exit_code`] maps it to the command line's contract (1 = the work failed,
//! 2 = bad usage, configuration or input).

use std::fmt;
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One source that was tried and why it was not used.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub source: String,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Bad input on the command line or in a file: exit 2.
    #[error("{what}\n  hint: {hint}")]
    Input { what: String, hint: String },

    /// Bad configuration file content: exit 2.
    #[error("{file}:{line}: `{key}`: {what}\n  hint: {hint}")]
    Config {
        file: PathBuf,
        line: usize,
        key: String,
        what: String,
        hint: String,
    },

    /// Every source was tried and none gave the pinned bytes: exit 1.
    #[error("{}", all_sources_failed(.sha256, .attempts))]
    AllSourcesFailed {
        sha256: String,
        attempts: Vec<Attempt>,
    },

    /// `--offline` and the cache does not hold the artifact: exit 1.
    #[error("sha256:{sha256} is not in the cache at `{cache}` and --offline forbids fetching it\n  hint: run once without --offline (or with PROTOREG_CACHE_DIR pointing at a warm cache)")]
    Offline { sha256: String, cache: PathBuf },

    /// The bytes are not the pinned bytes: exit 1.
    #[error("{what} does not match its pin: expected {expected}, got {actual}\n  hint: {hint}")]
    Verification {
        what: String,
        expected: String,
        actual: String,
        hint: String,
    },

    /// An archive that would write outside its tree, or is otherwise unsafe: exit 1.
    #[error("refusing to extract `{archive}`: {reason}\n  hint: the artifact is not a plain tool archive; check the pin and the source it came from")]
    UnsafeArchive { archive: String, reason: String },

    /// A file system operation failed.
    #[error("failed to {action} `{}`: {source}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A registry operation (other than a fetch with fallback) failed.
    #[error("{operation} on {registry} failed: {reason}\n  hint: {hint}")]
    Registry {
        operation: String,
        registry: String,
        reason: String,
        hint: String,
    },

    /// `health` found a registry or the cache in trouble: exit 1 (the report says which).
    #[error("the registry service is {status}\n  hint: see the report above; `protoreg health --json` has the details")]
    Unhealthy { status: String },

    /// Timed out waiting for another process that holds a cache entry lock.
    #[error("timed out after {seconds}s waiting for the lock `{}` held by another protoreg\n  hint: wait for that protoreg to finish (entry locks wait PROTOREG_LOCK_TIMEOUT seconds), or remove the lock file if no protoreg is running", .path.display())]
    LockTimeout { path: PathBuf, seconds: u64 },
}

fn all_sources_failed(sha256: &str, attempts: &[Attempt]) -> String {
    let mut s = format!("could not fetch sha256:{sha256}: every source failed");
    if attempts.is_empty() {
        s.push_str("\n  (no sources were given)");
    }
    for a in attempts {
        s.push_str(&format!("\n  - {}: {}", a.source, a.reason));
    }
    s.push_str("\n  hint: check that a registry or mirror holds the blob (`protoreg health`), or add a --source");
    s
}

impl Error {
    pub fn input(what: impl Into<String>, hint: impl Into<String>) -> Self {
        Error::Input {
            what: what.into(),
            hint: hint.into(),
        }
    }

    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// The first line (what failed, without the hint): for attempt lists, logs and reports.
    pub fn summary(&self) -> String {
        self.to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_string()
    }

    /// The process exit status for this error: 2 for bad usage or input, 1 otherwise.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Input { .. } | Error::Config { .. } => 2,
            _ => 1,
        }
    }
}

/// Attach the path and the operation to an `io::Error` (uv's fs wrapper idea, as a trait).
pub trait IoContext<T> {
    fn ctx(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn ctx(self, action: &'static str, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(action, path, e))
    }
}

/// Short display of a byte count for messages.
pub struct Bytes(pub u64);

impl fmt::Display for Bytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
        let mut v = self.0 as f64;
        let mut u = 0;
        while v >= 1024.0 && u < UNITS.len() - 1 {
            v /= 1024.0;
            u += 1;
        }
        if u == 0 {
            write!(f, "{} B", self.0)
        } else {
            write!(f, "{v:.1} {}", UNITS[u])
        }
    }
}
