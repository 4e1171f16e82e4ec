//! Cache cleanup: entries unused for a duration, then least recently used ones beyond a size.
//! It holds the cache's lock exclusively while it works, and every `materialize` holds it
//! shared, so nothing is removed from under a running build; an entry is first renamed into
//! `tmp/` (atomic: it stops being an entry at once) and then deleted. A turnstile in front
//! of that lock keeps cleanup from starving: once it is waiting, new builds wait behind it
//! while the running ones finish, so builds that overlap without a gap cannot hold it off.
//!
//! Only a directory marked as a protoreg cache (the `CACHEDIR.TAG` protoreg writes when it
//! creates one) is cleaned: anything else is refused before anything is created, changed or
//! removed there. In `tmp/`, only what protoreg named is considered, and it is removed only
//! when it is old and its owner is dead (its `tmp/` lock is free, see [`Store::temp_path`]).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::{Error, IoContext, Result};
use crate::pipeline::cache_scan::{self, Entry, Kind};
use crate::pipeline::store::{self, Store};

/// How long cleanup waits for running builds to release the cache.
const LOCK_WAIT: Duration = Duration::from_secs(120);

fn lock_path(cache: &Path) -> PathBuf {
    cache.join("locks").join("cache.lock")
}

fn turnstile_path(cache: &Path) -> PathBuf {
    cache.join("locks").join("cleanup.lock")
}

fn open_lock(cache: &Path) -> Result<File> {
    crate::pipeline::store::open_lock_file(&lock_path(cache))
}

/// Held by every process that uses cache entries; cleanup waits for all of them. Best
/// effort on a read-only cache (there is nothing cleanup could remove there either).
pub fn use_guard(cache: &Path) -> Option<File> {
    // Through the turnstile first: while a cleanup holds it (waiting for the running builds,
    // then working), a new build waits here. Taken and let go before the cache's lock, so
    // no process holds one while it waits for the other.
    if let Ok(turnstile) = store::open_lock_file(&turnstile_path(cache)) {
        let _ = turnstile.lock_shared();
    }
    let f = open_lock(cache).ok()?;
    f.lock_shared().ok()?;
    Some(f)
}

/// The turnstile, then the cache's lock, both exclusively (dropped in reverse order).
fn exclusive(cache: &Path) -> Result<(File, File)> {
    let turnstile = store::lock_exclusive(
        store::open_lock_file(&turnstile_path(cache))?,
        &turnstile_path(cache),
        LOCK_WAIT.as_secs(),
    )?;
    let cache_lock =
        store::lock_exclusive(open_lock(cache)?, &lock_path(cache), LOCK_WAIT.as_secs())?;
    Ok((cache_lock, turnstile))
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
    // Past u64 seconds a Duration cannot hold it (from_secs_f64 would panic).
    Duration::try_from_secs_f64(secs).map_err(|_| {
        Error::input(
            format!("--older-than `{s}` is out of range"),
            "write a duration under 2^64 seconds (584 billion years), e.g. 3650d; \
             --older-than 0 removes every entry",
        )
    })
}

/// registry.yaml's `cache.cleanup_older_than_days`, as a duration (exit 2 when too large).
pub fn days(days: u64) -> Result<Duration> {
    days.checked_mul(86_400)
        .map(Duration::from_secs)
        .ok_or_else(|| {
            Error::input(
                format!("cache.cleanup_older_than_days `{days}` is out of range"),
                "set a number of days under 200 trillion in registry.yaml, or pass --older-than",
            )
        })
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
    // 2^64 and above would saturate silently to u64::MAX.
    if v >= u64::MAX as f64 {
        return Err(Error::input(
            format!("--max-size `{s}` is out of range"),
            "write a size under 16 EiB, e.g. 10G",
        ));
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
    /// The cache directory does not exist: nothing was done, nothing was written.
    pub absent: bool,
}

/// Is `root` something cleanup may work on? A protoreg cache (marked by its `CACHEDIR.TAG`),
/// or nothing at all (`Ok(false)`: there is nothing to clean, and nothing is created).
/// Anything else is refused, exit 2. `named_by` says which setting chose the directory.
pub fn check_marked(store: &Store, named_by: &str) -> Result<bool> {
    let root = store.root();
    match std::fs::symlink_metadata(root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::io("inspect the cache directory", root, e)),
        Ok(_) => {}
    }
    if store.is_marked() {
        return Ok(true);
    }
    Err(Error::input(
        format!(
            "refusing to clean `{}` (named by {named_by}): it is not a protoreg cache \
             (it has no CACHEDIR.TAG written by protoreg); nothing was changed there",
            root.display()
        ),
        "point --cache-dir, PROTOREG_CACHE_DIR or registry.yaml's cache.local_cache_dir at \
         the cache protoreg created (it writes CACHEDIR.TAG there), or drop them to clean the \
         default cache",
    ))
}

/// Choose what to remove: entries unused since `older_than`, then the least recently used
/// until the rest fits in `max_size`; and in `tmp/`, what protoreg named there that is that
/// old and whose owner is dead (an unfinished download or extraction of a killed process).
pub fn plan(store: &Store, older_than: Duration, max_size: Option<u64>) -> Plan {
    let now = SystemTime::now();
    let mut keep = Vec::new();
    let mut plan = Plan::default();
    for e in cache_scan::entries(store) {
        let age = now.duration_since(e.last_used).unwrap_or_default();
        if e.kind == Kind::Temp {
            let name = e.path.file_name().map(|n| n.to_string_lossy().into_owned());
            let ours = name.as_deref().is_some_and(store::is_temp_name);
            if !ours {
                continue; // not protoreg's: neither removed nor counted
            }
            if age >= older_than && !name.as_deref().is_some_and(|n| store.temp_entry_locked(n)) {
                plan.removals.push(Removal {
                    entry: e,
                    reason: "debris",
                });
            } else {
                plan.kept_bytes += e.bytes;
            }
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
    plan.kept_bytes += keep.iter().map(|e| e.bytes).sum::<u64>();
    plan
}

/// Check the mark, take the cache exclusively, plan, and (unless `dry_run`) remove.
pub fn run(
    store: &Store,
    older_than: Duration,
    max_size: Option<u64>,
    dry_run: bool,
    audit: &crate::operate::audit::Audit,
    named_by: &str,
) -> Result<Plan> {
    if !check_marked(store, named_by)? {
        return Ok(Plan {
            absent: true,
            ..Plan::default()
        });
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
        // Rename first: from this instant the entry no longer exists for any reader. A
        // read-only tree's top directory needs its write bit back to move to a new parent.
        let doomed = store.temp_path("doomed");
        let result = store::writable_dir(&r.entry.path).and_then(|()| {
            std::fs::rename(&r.entry.path, &doomed).ctx("move out of the cache", &r.entry.path)
        });
        if result.is_ok() {
            store::remove_tree(&doomed);
            // A tree's manifest goes with it (one left by a kill here is an entry of its own,
            // collected next time).
            if r.entry.kind == Kind::Tree {
                let _ = std::fs::remove_file(store::manifest_for(&r.entry.path));
            }
        }
        op.finish(&result);
        result?;
    }
    store.collect_dead_owner_locks();
    Ok(plan)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_sizes_out_of_range_are_input_errors() {
        assert_eq!(
            parse_duration("7d").unwrap(),
            Duration::from_secs(7 * 86_400)
        );
        assert_eq!(parse_duration("0").unwrap(), Duration::ZERO);
        for s in [
            "99999999999999999999",
            "99999999999999999999s",
            "60000000000000w",
        ] {
            let e = parse_duration(s).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{s}");
            assert!(e.to_string().contains("out of range"), "{s}: {e}");
        }
        assert_eq!(parse_duration("soon").unwrap_err().exit_code(), 2);
        assert_eq!(parse_size("10G").unwrap(), 10 << 30);
        for s in ["99999999999999999999999T", "18446744073709551616"] {
            assert_eq!(parse_size(s).unwrap_err().exit_code(), 2, "{s}");
        }
        assert_eq!(days(7).unwrap(), Duration::from_secs(7 * 86_400));
        assert_eq!(days(u64::MAX).unwrap_err().exit_code(), 2);
    }
}
