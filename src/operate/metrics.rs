//! Counters kept across runs, in the cache directory (`metrics-v1.json`). Each run adds its
//! deltas under an exclusive lock (read, add, write a temp file, rename), so concurrent
//! processes never lose an update and a crash leaves the previous totals intact.
//!
//! Rendered as JSON or as Prometheus text exposition (`protoreg_<counter>_total`).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Every counter, with its help text (the Prometheus `# HELP` line). Keeping the list here
/// means `metrics` shows zeros instead of omitting what never happened.
pub const COUNTERS: &[(&str, &str)] = &[
    (
        "pulls",
        "artifacts fetched from a source (cache misses that succeeded)",
    ),
    ("cache_hits", "materializations served from the cache"),
    ("cache_misses", "materializations that had to fetch"),
    (
        "bytes_downloaded",
        "bytes fetched from registries, mirrors and upstream",
    ),
    (
        "fallbacks",
        "sources that failed before another one served the bytes",
    ),
    (
        "verification_failures",
        "downloads refused because size or sha256 did not match",
    ),
    ("errors", "operations that failed"),
    (
        "publish_artifacts",
        "platform manifests, indexes and bundles pushed",
    ),
    (
        "publish_skipped",
        "artifacts already in the registry, not pushed again",
    ),
    ("blobs_uploaded", "blobs sent to a registry"),
    ("blobs_skipped", "blobs the registry already had"),
    ("bytes_uploaded", "bytes sent to registries"),
    (
        "upload_retries",
        "uploads retried after a transient failure",
    ),
    ("mirror_artifacts", "manifests and indexes copied by mirror"),
    (
        "cleanup_removed",
        "cache entries or registry artifacts removed by cleanup",
    ),
    ("cleanup_bytes", "bytes freed in the cache by cleanup"),
];

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timing {
    pub count: u64,
    pub total_ms: u64,
    pub max_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    #[serde(default)]
    pub counters: BTreeMap<String, u64>,
    /// Per command: how many runs and how long they took.
    #[serde(default)]
    pub durations: BTreeMap<String, Timing>,
}

impl Metrics {
    pub fn add(&mut self, counter: &str, n: u64) -> &mut Self {
        *self.counters.entry(counter.to_string()).or_default() += n;
        self
    }

    pub fn time(&mut self, command: &str, d: Duration) -> &mut Self {
        let ms = d.as_millis() as u64;
        let t = self.durations.entry(command.to_string()).or_default();
        t.count += 1;
        t.total_ms += ms;
        t.max_ms = t.max_ms.max(ms);
        self
    }

    pub fn get(&self, counter: &str) -> u64 {
        self.counters.get(counter).copied().unwrap_or(0)
    }

    fn merge(&mut self, other: &Metrics) {
        for (k, v) in &other.counters {
            *self.counters.entry(k.clone()).or_default() += v;
        }
        for (k, t) in &other.durations {
            let mine = self.durations.entry(k.clone()).or_default();
            mine.count += t.count;
            mine.total_ms += t.total_ms;
            mine.max_ms = mine.max_ms.max(t.max_ms);
        }
    }

    /// Every known counter (zeros included), as JSON, with the storage gauge.
    pub fn to_json(&self, cache_bytes: u64) -> serde_json::Value {
        let mut counters = serde_json::Map::new();
        for (name, _) in COUNTERS {
            counters.insert(name.to_string(), self.get(name).into());
        }
        for (k, v) in &self.counters {
            counters.entry(k.clone()).or_insert((*v).into());
        }
        serde_json::json!({
            "counters": counters,
            "durations_ms": self.durations,
            "storage": {"cache_bytes": cache_bytes},
        })
    }

    /// Prometheus text exposition format, version 0.0.4.
    pub fn to_prometheus(&self, cache_bytes: u64) -> String {
        let mut s = String::new();
        for (name, help) in COUNTERS {
            s.push_str(&format!(
                "# HELP protoreg_{name}_total {help}\n# TYPE protoreg_{name}_total counter\nprotoreg_{name}_total {}\n",
                self.get(name)
            ));
        }
        if !self.durations.is_empty() {
            s.push_str("# HELP protoreg_command_duration_seconds time spent per command\n# TYPE protoreg_command_duration_seconds summary\n");
            for (cmd, t) in &self.durations {
                s.push_str(&format!(
                    "protoreg_command_duration_seconds_sum{{command=\"{cmd}\"}} {:.3}\nprotoreg_command_duration_seconds_count{{command=\"{cmd}\"}} {}\n",
                    t.total_ms as f64 / 1000.0,
                    t.count
                ));
            }
        }
        s.push_str(&format!(
            "# HELP protoreg_cache_bytes bytes held by the local cache\n# TYPE protoreg_cache_bytes gauge\nprotoreg_cache_bytes {cache_bytes}\n"
        ));
        s
    }
}

pub fn path(cache_dir: &Path) -> PathBuf {
    cache_dir.join("metrics-v1.json")
}

fn lock(cache_dir: &Path) -> Result<File> {
    let p = cache_dir.join("locks").join("metrics.lock");
    // Held only for a read-modify-write of a small file: a long wait means a stuck process.
    crate::pipeline::store::lock_exclusive(crate::pipeline::store::open_lock_file(&p)?, &p, 60)
}

fn read(path: &Path) -> Result<Metrics> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
            Error::input(
                format!("`{}` is not a metrics file: {e}", path.display()),
                "delete it to start the counters from zero",
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Metrics::default()),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// The totals so far.
pub fn load(cache_dir: &Path) -> Result<Metrics> {
    read(&path(cache_dir))
}

/// Add `delta` to the totals.
pub fn record(cache_dir: &Path, delta: &Metrics) -> Result<()> {
    if delta == &Metrics::default() {
        return Ok(());
    }
    let _lock = lock(cache_dir)?;
    let p = path(cache_dir);
    let mut totals = read(&p)?;
    totals.merge(delta);
    let bytes = serde_json::to_vec_pretty(&totals).unwrap_or_default();
    crate::pipeline::store::write_atomic(&p, &bytes)
}

/// Best-effort [`record`] for commands whose own outcome matters more than the counters.
pub fn record_quietly(cache_dir: &Path, delta: &Metrics) {
    match record(cache_dir, delta) {
        Ok(()) => {}
        // A shared, read-only cache still serves hits; it just keeps no counters.
        Err(Error::Io { source, .. })
            if matches!(
                source.kind(),
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
            ) => {}
        Err(e) => eprintln!("warning: metrics not recorded: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_accumulate_across_records() {
        let dir = tempfile::tempdir().unwrap();
        let mut d = Metrics::default();
        d.add("cache_hits", 2)
            .time("materialize", Duration::from_millis(5));
        record(dir.path(), &d).unwrap();
        record(dir.path(), &d).unwrap();
        let m = load(dir.path()).unwrap();
        assert_eq!(m.get("cache_hits"), 4);
        assert_eq!(m.durations["materialize"].count, 2);
        let text = m.to_prometheus(7);
        assert!(text.contains("protoreg_cache_hits_total 4\n"), "{text}");
        assert!(text.contains("protoreg_cache_bytes 7\n"));
        assert_eq!(m.to_json(0)["counters"]["pulls"], 0);
    }
}
