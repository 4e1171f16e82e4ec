//! What a finished operation reports: one audit line and the metric deltas, written together
//! so the two never disagree. Commands call these after their work, never before.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::operate::audit::{Audit, Entry};
use crate::operate::metrics::{self, Metrics};
use crate::pipeline::resolve::Outcome;
use crate::pipeline::verify::Expected;

/// The audit log for a cache: `PROTOREG_AUDIT_LOG`, else `configured`, else the cache's own.
pub fn audit_for(cache_dir: &Path, configured: Option<&Path>) -> Audit {
    let path = std::env::var_os(crate::config::ENV_AUDIT_LOG)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| configured.map(Path::to_path_buf))
        .unwrap_or_else(|| crate::operate::audit::default_path(cache_dir));
    Audit::new(path)
}

/// Is this attempt reason a verification failure (the bytes were not the pinned bytes)?
fn is_verification(reason: &str) -> bool {
    reason.contains("does not match its pin")
        || reason.contains("more than the pinned")
        || reason.contains("the cap for an artifact of unknown size")
}

/// After `materialize`: hit or miss, bytes, fallbacks, verification failures, errors.
pub fn materialized(
    cache_dir: &Path,
    audit_log: Option<&Path>,
    expected: &Expected,
    result: &Result<Outcome>,
    took: Duration,
) {
    let mut m = Metrics::default();
    m.time("materialize", took);
    let audit = audit_for(cache_dir, audit_log);
    let mut entry = Entry {
        time: crate::utc::format(crate::utc::now_secs() - took.as_secs() as i64),
        op: "materialize".into(),
        target: cache_dir.display().to_string(),
        digest: Some(expected.sha256.oci()),
        source: None,
        outcome: "ok".into(),
        duration_ms: took.as_millis() as u64,
        bytes: None,
        detail: None,
    };
    match result {
        Ok(o) if o.cache_hit => {
            m.add("cache_hits", 1);
            entry.source = Some("cache".into());
        }
        Ok(o) => {
            m.add("cache_misses", 1);
            // A miss can still be served by the blob already in the cache (a new layout of
            // the same bytes): only a fetch counts as a pull.
            if o.source.is_some() {
                m.add("pulls", 1).add("bytes_downloaded", o.bytes_fetched);
                entry.bytes = Some(o.bytes_fetched);
            }
            m.add("fallbacks", o.failed.len() as u64);
            let verif = o
                .failed
                .iter()
                .filter(|a| is_verification(&a.reason))
                .count();
            m.add("verification_failures", verif as u64);
            entry.source = o.source.clone().or(Some("cache (blob)".into()));
            if !o.failed.is_empty() {
                let tried: Vec<String> = o
                    .failed
                    .iter()
                    .map(|a| format!("{}: {}", a.source, a.reason))
                    .collect();
                entry.detail = Some(format!("fell back past: {}", tried.join("; ")));
            }
        }
        Err(e) => {
            m.add("cache_misses", 1).add("errors", 1);
            if let Error::AllSourcesFailed { attempts, .. } = e {
                let verif = attempts
                    .iter()
                    .filter(|a| is_verification(&a.reason))
                    .count();
                m.add("verification_failures", verif as u64);
            }
            entry.outcome = "failed".into();
            entry.detail = Some(e.summary());
        }
    }
    audit.record(entry);
    metrics::record_quietly(cache_dir, &m);
}
