//! Cache cleanup: entries unused for a duration, then least recently used ones beyond a size.
//! It holds the cache's lock exclusively while it works, and every `materialize` holds it
//! shared, so nothing is removed from under a running build; an entry is first renamed into
//! `tmp/` (atomic: it stops being an entry at once) and then deleted.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::cache_scan::{self, Entry, Kind};
use crate::error::{Error, IoContext, Result};
use crate::store::{self, Store};

/// How long cleanup waits for running builds to release the cache.
const LOCK_WAIT: Duration = Duration::from_secs(120);

fn lock_path(cache: &Path) -> PathBuf {
    cache.join("locks").join("cache.lock")
}

fn open_lock(cache: &Path) -> Result<File> {
    crate::store::open_lock_file(&lock_path(cache))
}

/// Held by every process that uses cache entries; cleanup waits for all of them. Best
/// effort on a read-only cache (there is nothing cleanup could remove there either).
pub fn use_guard(cache: &Path) -> Option<File> {
    let f = open_lock(cache).ok()?;
    f.lock_shared().ok()?;
    Some(f)
}

fn exclusive(cache: &Path) -> Result<File> {
    crate::store::lock_exclusive(open_lock(cache)?, &lock_path(cache), LOCK_WAIT.as_secs())
}

/// `7d`, `12h`, `30m`, `45s`, or a bare number of days (the seed's `--older-than 7`).
pub fn parse_duration(s: &str) -> Result<Duration> {
    let bad = || {
        Error::input(
            format!("--older-than `{s}` is not a duration"),
            "write 7d, 12h, 30m, 45s, or a number of days",
        )
    };
    let t = s.trim();
    let (num, unit) = match t.find(|c: char| !(c.is_ascii_digit() || c == '.')) {
        Some(i) => (&t[..i], t[i..].trim()),
        None => (t, "d"),
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    let secs = match unit {
        "d" | "day" | "days" => n * 86_400.0,
        "h" | "hour" | "hours" => n * 3600.0,
        "m" | "min" | "minutes" => n * 60.0,
        "s" | "sec" | "seconds" => n,
        "w" | "week" | "weeks" => n * 7.0 * 86_400.0,
        _ => return Err(bad()),
    };
    if !secs.is_finite() || secs < 0.0 {
        return Err(bad());
    }
    Ok(Duration::from_secs_f64(secs))
}

/// `10G`, `500M`, `1.5GB`, `64KiB`, or bytes.
pub fn parse_size(s: &str) -> Result<u64> {
    let bad = || {
        Error::input(
            format!("--max-size `{s}` is not a size"),
            "write 10G, 500M, 64K or a number of bytes",
        )
    };
    let t = s.trim();
    let i = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let n: f64 = t[..i].parse().map_err(|_| bad())?;
    let mult: f64 = match t[i..].trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" | "kib" => 1024.0,
        "m" | "mb" | "mib" => 1024.0 * 1024.0,
        "g" | "gb" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "t" | "tb" | "tib" => 1024f64.powi(4),
        _ => return Err(bad()),
    };
    let v = n * mult;
    if !v.is_finite() || v < 0.0 {
        return Err(bad());
    }
    Ok(v as u64)
}

#[derive(Debug, Clone)]
pub struct Removal {
    pub entry: Entry,
    /// `unused` (older than the cutoff), `lru` (beyond the size), `debris` (tmp/).
    pub reason: &'static str,
}

#[derive(Debug, Default)]
pub struct Plan {
    pub removals: Vec<Removal>,
    pub kept_bytes: u64,
}

/// Choose what to remove: debris in `tmp/` (only ever there while a process holds the
/// cache, and cleanup holds it exclusively), entries unused since `older_than`, then the
/// least recently used until the rest fits in `max_size`.
pub fn plan(store: &Store, older_than: Duration, max_size: Option<u64>) -> Plan {
    let now = SystemTime::now();
    let mut keep = Vec::new();
    let mut plan = Plan::default();
    for e in cache_scan::entries(store) {
        let age = now.duration_since(e.last_used).unwrap_or_default();
        if e.kind == Kind::Temp {
            plan.removals.push(Removal {
                entry: e,
                reason: "debris",
            });
        } else if age >= older_than {
            plan.removals.push(Removal {
                entry: e,
                reason: "unused",
            });
        } else {
            keep.push(e);
        }
    }
    if let Some(max) = max_size {
        keep.sort_by_key(|e| e.last_used);
        let mut total: u64 = keep.iter().map(|e| e.bytes).sum();
        let mut rest = Vec::new();
        for e in keep {
            if total > max {
                total -= e.bytes;
                plan.removals.push(Removal {
                    entry: e,
                    reason: "lru",
                });
            } else {
                rest.push(e);
            }
        }
        keep = rest;
    }
    plan.kept_bytes = keep.iter().map(|e| e.bytes).sum();
    plan
}

/// Take the cache exclusively, plan, and (unless `dry_run`) remove.
pub fn run(
    store: &Store,
    older_than: Duration,
    max_size: Option<u64>,
    dry_run: bool,
    audit: &crate::audit::Audit,
) -> Result<Plan> {
    if !store.root().is_dir() {
        return Ok(Plan::default());
    }
    let _guard = exclusive(store.root())?;
    let plan = plan(store, older_than, max_size);
    if dry_run {
        return Ok(plan);
    }
    for r in &plan.removals {
        let op = audit
            .op("cleanup.cache", r.entry.path.display().to_string())
            .bytes(r.entry.bytes)
            .detail(r.reason);
        let op = match r.entry.path.file_name() {
            Some(n) if r.entry.kind == Kind::Blob => {
                op.digest(format!("sha256:{}", n.to_string_lossy()))
            }
            _ => op,
        };
        // Rename first: from this instant the entry no longer exists for any reader.
        let doomed = store.temp_path("doomed");
        let result =
            std::fs::rename(&r.entry.path, &doomed).ctx("move out of the cache", &r.entry.path);
        if result.is_ok() {
            store::remove_tree(&doomed);
        }
        op.finish(&result);
        result?;
    }
    Ok(plan)
}
