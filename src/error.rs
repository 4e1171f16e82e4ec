//! The one error type of protoreg. Every variant says what failed, where, and what to do;
//! [`Error::exit_code`] maps it to the command line's contract (1 = the work failed,
//! 2 = bad usage, configuration or input). Every message is displayed through [`sanitize`]:
//! no raw control character or URL credential from an archive, a registry or a file gets out.

use std::fmt;
use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// One source that was tried and why it was not used.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub source: String,
    pub reason: String,
}

#[derive(Debug)]
pub enum Error {
    /// Bad input on the command line or in a file: exit 2.
    Input { what: String, hint: String },

    /// Bad configuration file content: exit 2.
    Config {
        file: PathBuf,
        line: usize,
        key: String,
        what: String,
        hint: String,
    },

    /// Every source was tried and none gave the pinned bytes: exit 1.
    AllSourcesFailed {
        sha256: String,
        attempts: Vec<Attempt>,
    },

    /// `--offline` and the cache does not hold the artifact: exit 1.
    Offline { sha256: String, cache: PathBuf },

    /// The bytes are not the pinned bytes: exit 1.
    Verification {
        what: String,
        expected: String,
        actual: String,
        hint: String,
    },

    /// An archive that would write outside its tree, or is otherwise unsafe: exit 1.
    UnsafeArchive { archive: String, reason: String },

    /// A file system operation failed.
    Io {
        action: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },

    /// A registry operation (other than a fetch with fallback) failed.
    Registry {
        operation: String,
        registry: String,
        reason: String,
        hint: String,
    },

    /// `health` found a registry or the cache in trouble: exit 1 (the report says which).
    Unhealthy { status: String },

    /// Timed out waiting for another process that holds a cache entry lock.
    LockTimeout { path: PathBuf, seconds: u64 },
}

impl Error {
    /// The message as composed, before [`sanitize`]: fields may hold text from archives,
    /// registries, configuration files and URLs, none of it trusted.
    fn raw(&self) -> String {
        match self {
            Error::Input { what, hint } => format!("{what}\n  hint: {hint}"),
            Error::Config {
                file,
                line,
                key,
                what,
                hint,
            } => format!(
                "{}:{line}: `{key}`: {what}\n  hint: {hint}",
                file.display()
            ),
            Error::AllSourcesFailed { sha256, attempts } => all_sources_failed(sha256, attempts),
            Error::Offline { sha256, cache } => format!(
                "sha256:{sha256} is not in the cache at `{}` and --offline forbids fetching it\n  hint: run once without --offline (or with PROTOREG_CACHE_DIR pointing at a warm cache)",
                cache.display()
            ),
            Error::Verification {
                what,
                expected,
                actual,
                hint,
            } => format!(
                "{what} does not match its pin: expected {expected}, got {actual}\n  hint: {hint}"
            ),
            Error::UnsafeArchive { archive, reason } => format!(
                "refusing to extract `{archive}`: {reason}\n  hint: the artifact is not a plain tool archive; check the pin and the source it came from"
            ),
            Error::Io {
                action,
                path,
                source,
            } => format!("failed to {action} `{}`: {source}", path.display()),
            Error::Registry {
                operation,
                registry,
                reason,
                hint,
            } => format!("{operation} on {registry} failed: {reason}\n  hint: {hint}"),
            Error::Unhealthy { status } => format!(
                "the registry service is {status}\n  hint: see the report above; `protoreg health --json` has the details"
            ),
            Error::LockTimeout { path, seconds } => format!(
                "timed out after {seconds}s waiting for the lock `{}` held by another protoreg\n  hint: wait for that protoreg to finish (entry locks wait PROTOREG_LOCK_TIMEOUT seconds), or remove the lock file if no protoreg is running",
                path.display()
            ),
        }
    }
}

/// Every error is displayed through [`sanitize`], the one place untrusted text is made safe
/// for a terminal and a log: whatever a variant holds, no control character and no URL
/// credential reaches stderr, `--json` reasons, the audit log or a report.
impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&sanitize(&self.raw()))
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}

/// Make text safe to show: control characters other than the line breaks and tabs that
/// messages are laid out with (ESC, BEL, CR, backspace, DEL, the C1 range, and the Unicode
/// bidirectional overrides that reorder what a terminal shows) are written as Rust escapes
/// (`\u{1b}`), and the `user:password@` of every `scheme://` URL becomes `***@`.
pub fn sanitize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let bidi = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if (c.is_control() && c != '\n' && c != '\t') || bidi {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    redact_userinfo(&out)
}

/// `scheme://user:password@host/…` becomes `scheme://***@host/…`, wherever it occurs in `text`.
pub fn redact_userinfo(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail.find(ends_url).unwrap_or(tail.len());
        out.push_str(&redact_authority(&tail[..end]));
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Where a URL in running text ends: whitespace, or a quote or bracket messages put around it.
fn ends_url(c: char) -> bool {
    c.is_whitespace() || "`'\"<>".contains(c)
}

/// `user:password@host/path` (a URL after its `scheme://`, or a registry address without one)
/// as `***@host/path`. Which `@` ends the credentials is not what the URL grammar says but
/// what leaks least: a password may hold `/`, `?`, `#`, `@` or a space, and a host may be
/// spelt in ways no check keeps up with (IDN, zone IDs), so the userinfo runs to the *last*
/// `@`. Only a digest (`repo@sha256:…`) is not a userinfo's end. A path with an `@` in it is
/// hidden too: over-redacting is the safe side.
pub fn redact_authority(url: &str) -> String {
    let at = url
        .char_indices()
        .rev()
        .find(|&(i, c)| {
            c == '@'
                && !(url[i + 1..].starts_with("sha256:") || url[i + 1..].starts_with("sha512:"))
        })
        .map(|(i, _)| i);
    match at {
        Some(at) => format!("***{}", &url[at..]),
        None => url.to_string(),
    }
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

/// Text files protoreg reads (registry.yaml, the pins file) must be UTF-8: `bytes` decoded, or
/// a configuration error (exit 2) naming `file` and the line of the first byte that is not.
pub fn utf8_text(file: &std::path::Path, bytes: Vec<u8>, kind: &str) -> Result<String> {
    String::from_utf8(bytes).map_err(|e| {
        let at = e.utf8_error().valid_up_to();
        let bytes = e.as_bytes();
        let line = 1 + bytes[..at].iter().filter(|&&b| b == b'\n').count();
        Error::Config {
            file: file.to_path_buf(),
            line,
            key: "(document)".into(),
            what: format!(
                "{kind} is not UTF-8 text (byte 0x{:02x} at offset {at} is not UTF-8)",
                bytes.get(at).copied().unwrap_or_default()
            ),
            hint: format!(
                "{kind} must be UTF-8: re-save it as UTF-8, or restore it from version control"
            ),
        }
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_layout_kept() {
        let e = Error::UnsafeArchive {
            archive: "a\u{1b}[31m.tgz".into(),
            reason: "symlink points to `\u{1b}]0;x\u{7}\r\u{9b}\u{202e}`".into(),
        };
        let shown = e.to_string();
        assert!(
            !shown.chars().any(|c| c.is_control() && c != '\n'),
            "{shown:?}"
        );
        assert!(shown.contains("a\\u{1b}[31m.tgz"), "{shown}");
        assert!(shown.contains("\\u{7}\\u{d}\\u{9b}\\u{202e}"), "{shown}");
        assert!(shown.contains("\n  hint: "), "{shown}");
        assert_eq!(e.summary(), shown.lines().next().unwrap());
    }

    #[test]
    fn url_credentials_are_redacted_wherever_they_appear() {
        let e = Error::input(
            "`https://user:hunter2@h.example:5000/ns` is not a registry, nor is http://a@b/x?q",
            "see https://docs.example/x (no credentials) or `oci://t0ken@h/r`",
        );
        let shown = e.to_string();
        assert!(
            !shown.contains("hunter2") && !shown.contains("t0ken"),
            "{shown}"
        );
        assert!(shown.contains("`https://***@h.example:5000/ns`"), "{shown}");
        assert!(shown.contains("http://***@b/x?q"), "{shown}");
        assert!(shown.contains("https://docs.example/x"), "{shown}");
        assert!(shown.contains("oci://***@h/r"), "{shown}");
        // A password holding `/`, `?`, `#` or `@` is hidden whole.
        let e = Error::input(
            "`http://u:pa/ss?x#y@z@h:5/r` failed (see https://u:p/w@h)",
            "-",
        );
        let shown = e.to_string();
        assert!(shown.contains("`http://***@h:5/r`"), "{shown}");
        assert!(shown.contains("(see https://***@h)"), "{shown}");
    }

    #[test]
    fn non_utf8_text_names_the_file_and_line() {
        let e = utf8_text(
            std::path::Path::new("registry.yaml"),
            b"a: 1\nb: \xff\n".to_vec(),
            "the configuration file",
        )
        .unwrap_err();
        assert_eq!(e.exit_code(), 2);
        let shown = e.to_string();
        assert!(
            shown.starts_with("registry.yaml:2: ")
                && shown.contains("UTF-8")
                && shown.contains("hint:"),
            "{shown}"
        );
    }
}
