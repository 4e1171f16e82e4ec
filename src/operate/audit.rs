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
        let Ok(mut line) = serde_json::to_vec(&e) else {
            return;
        };
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
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    f.write_all(data)
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
