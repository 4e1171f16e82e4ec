//! The audit log: one JSON line per operation that touched a registry or the cache (what,
//! which digest, which source, outcome, duration). Lines are appended with `O_APPEND` in a
//! single write, so concurrent protoreg processes never interleave within a line.
//!
//! No secret ever reaches it: URLs lose their `user:password@`, and every field is scrubbed
//! of the values of the credential variables this process can see.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;

/// Where the log goes when neither `PROTOREG_AUDIT_LOG` nor `security.audit_log` says.
pub fn default_path(cache_dir: &Path) -> PathBuf {
    cache_dir.join("audit-v1.jsonl")
}

/// Whether protoreg may append to `path` as its audit log; `Err((what, hint))` says why not.
/// The path comes from registry.yaml or the environment, and a line may hold text a
/// registry chose: so only a `.jsonl` or `.log` file, never through a symlink, and never a
/// file that protoreg did not start (a shell profile, a config file).
pub fn check_path(path: &Path) -> std::result::Result<(), (String, String)> {
    let hint = "name a new `.jsonl` file (or one protoreg already writes), e.g. \
                `/var/log/protoreg/audit.jsonl`";
    let refuse = |why: &str| {
        Err((
            format!("the audit log `{}` {why}", path.display()),
            hint.to_string(),
        ))
    };
    if !matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("jsonl" | "log")
    ) {
        return refuse("is not a `.jsonl` or `.log` file; protoreg appends to no other kind");
    }
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(_) => return Ok(()), // created on first use
    };
    if meta.file_type().is_symlink() {
        return refuse("is a symbolic link; protoreg never appends through one");
    }
    if !meta.is_file() {
        return refuse("exists and is not a regular file");
    }
    if meta.len() > 0 && !starts_with_a_record(path) {
        return refuse(
            "exists and is not a protoreg audit log (its first line is not an audit record)",
        );
    }
    Ok(())
}

/// Whether the file's first line is an [`Entry`] (read to at most 64 KiB).
fn starts_with_a_record(path: &Path) -> bool {
    use std::io::{BufRead, Read};
    // Checked as opened: a FIFO swapped in after check_path's look neither blocks nor passes.
    let Ok((f, _)) = crate::textfile::open_regular(path) else {
        return false;
    };
    let mut first = Vec::new();
    if std::io::BufReader::new(f.take(64 << 10))
        .read_until(b'\n', &mut first)
        .is_err()
    {
        return false;
    }
    serde_json::from_slice::<serde_json::Value>(&first).is_ok_and(|v| {
        v.get("time").is_some_and(|t| t.is_string()) && v.get("op").is_some_and(|o| o.is_string())
    })
}

/// Environment variables whose values are secrets wherever they appear.
const SECRET_VARS: &[&str] = &[
    crate::auth::ENV_PASSWORD,
    crate::auth::ENV_TOKEN,
    crate::maintain::upstream::ENV_TOKEN,
];

#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    pub time: String,
    /// `materialize`, `publish.blob`, `publish.manifest`, `mirror.manifest`, `cleanup.cache`, …
    pub op: String,
    /// The registry repository, cache path or bundle the operation touched.
    pub target: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// `ok`, `skipped` (already there), `planned` (dry run) or `failed`.
    pub outcome: String,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

pub struct Audit {
    path: PathBuf,
    /// Extra secret values (a registry's own credentials), besides [`SECRET_VARS`].
    secrets: Vec<String>,
}

impl Audit {
    pub fn new(path: PathBuf) -> Audit {
        let mut secrets: Vec<String> = SECRET_VARS
            .iter()
            .filter_map(|k| std::env::var(k).ok())
            .filter(|v| v.len() >= 4)
            .collect();
        secrets.sort();
        secrets.dedup();
        Audit { path, secrets }
    }

    /// Also scrub these values (credentials read through registry.yaml's `auth:` blocks).
    pub fn with_secrets(mut self, values: impl IntoIterator<Item = String>) -> Audit {
        self.secrets
            .extend(values.into_iter().filter(|v| v.len() >= 4));
        self
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn scrub(&self, s: &str) -> String {
        // Error texts may hold several URLs: drop the `user:password@` of each.
        let mut out = crate::error::redact_userinfo(s);
        for secret in &self.secrets {
            out = out.replace(secret.as_str(), "***");
        }
        out
    }

    /// Append one entry. Best effort: an unwritable log warns on stderr once per process
    /// instead of failing the build that triggered it.
    pub fn record(&self, mut e: Entry) {
        e.target = self.scrub(&e.target);
        e.source = e.source.map(|s| self.scrub(&s));
        e.detail = e.detail.map(|s| self.scrub(&s));
        let Ok(json) = serde_json::to_string(&e) else {
            return;
        };
        // `$` and a backtick only occur inside JSON strings: as `\u0024`/`\u0060` they decode
        // the same, and a line pasted into (or appended to) a shell script expands nothing.
        let mut line = json
            .replace('$', "\\u0024")
            .replace('`', "\\u0060")
            .into_bytes();
        line.push(b'\n');
        if let Err(err) = append(&self.path, &line) {
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                eprintln!(
                    "warning: cannot write the audit log `{}`: {err} (set PROTOREG_AUDIT_LOG or security.audit_log to a writable file)",
                    self.path.display()
                )
            });
        }
    }

    /// Start timing an operation; finish it with [`Op::done`].
    pub fn op(&self, op: &str, target: impl Into<String>) -> Op<'_> {
        Op {
            audit: self,
            started: Instant::now(),
            entry: Entry {
                time: crate::utc::format(crate::utc::now_secs()),
                op: op.to_string(),
                target: target.into(),
                digest: None,
                source: None,
                outcome: String::new(),
                duration_ms: 0,
                bytes: None,
                detail: None,
            },
        }
    }
}

/// An operation being timed.
pub struct Op<'a> {
    audit: &'a Audit,
    started: Instant,
    pub entry: Entry,
}

impl Op<'_> {
    pub fn digest(mut self, d: impl Into<String>) -> Self {
        self.entry.digest = Some(d.into());
        self
    }
    pub fn source(mut self, s: impl Into<String>) -> Self {
        self.entry.source = Some(s.into());
        self
    }
    pub fn bytes(mut self, n: u64) -> Self {
        self.entry.bytes = Some(n);
        self
    }
    pub fn detail(mut self, d: impl Into<String>) -> Self {
        self.entry.detail = Some(d.into());
        self
    }
    pub fn done(mut self, outcome: &str) {
        self.entry.outcome = outcome.to_string();
        self.entry.duration_ms = self.started.elapsed().as_millis() as u64;
        self.audit.record(self.entry);
    }
    /// `ok`, or `failed` with the error's first line as the detail.
    pub fn finish<T>(self, result: &crate::error::Result<T>) {
        match result {
            Ok(_) => self.done("ok"),
            Err(e) => {
                let first = e.summary();
                self.detail(first).done("failed")
            }
        }
    }
}

fn append(path: &Path, data: &[u8]) -> std::io::Result<()> {
    // Checked when the path was configured; a symlink put there since is still not followed.
    if std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink()) {
        return Err(std::io::Error::other("it is a symbolic link"));
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    // Never blocking in the open (a FIFO swapped in has no reader: the open fails), never
    // through a symlink, and only ever appending to a regular file.
    let mut f = crate::sys::open_nonblocking_with(
        std::fs::OpenOptions::new().create(true).append(true),
        path,
        true,
    )?;
    if !f.metadata()?.is_file() {
        return Err(std::io::Error::other("it is not a regular file"));
    }
    f.write_all(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_fifo_or_a_symlink_put_where_the_log_was_is_never_written_or_waited_on() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("audit.jsonl");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        assert!(
            append(&fifo, b"x\n").is_err(),
            "a FIFO with no reader must not block"
        );
        let target = dir.path().join("bashrc");
        std::fs::write(&target, "mine\n").unwrap();
        let link = dir.path().join("link.jsonl");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        assert!(append(&link, b"x\n").is_err());
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "mine\n");
    }

    #[test]
    fn scrubs_urls_and_secrets() {
        let a = Audit::new(PathBuf::from("/dev/null")).with_secrets(["hunter22".to_string()]);
        let s = a.scrub("GET https://u:pw@h/x failed, then http://v:pw2@k/y; token hunter22");
        assert!(!s.contains("pw") && !s.contains("hunter22"), "{s}");
        assert!(
            s.contains("https://***@h/x") && s.contains("http://***@k/y"),
            "{s}"
        );
    }

    #[test]
    fn a_line_expands_nothing_in_a_shell_and_decodes_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("audit.jsonl");
        let a = Audit::new(log.clone());
        a.op("materialize", "r")
            .detail("$(touch pwned) `touch pwned2`")
            .done("failed");
        let line = std::fs::read_to_string(&log).unwrap();
        assert!(!line.contains('$') && !line.contains('`'), "{line}");
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["detail"], "$(touch pwned) `touch pwned2`");
        assert!(check_path(&log).is_ok());
    }
}
