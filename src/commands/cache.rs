//! `protoreg cache verify [--repair] [--json]`: re-hash every blob, check every tree against
//! the manifest recorded when it was installed, and with `--repair` remove what is wrong so
//! the next materialize fetches or extracts it again.
//!
//! Locks as the rest of the cache does: a plain verify only reads, and holds the cache's lock
//! shared like a build (so `cleanup` removes nothing under it); `--repair` removes entries,
//! and holds it exclusively like `cleanup` (so no build is copying what it removes). Only a
//! directory marked as a protoreg cache is looked at.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{CacheArgs, CacheCommand, CacheVerifyArgs, Global};
use crate::commands::context::Context;
use crate::error::{sanitize, Error, Result};
use crate::pipeline::cache_scan::{self, Report};
use crate::pipeline::store::{self, Store};

/// How long `--repair` waits for running builds to release the cache (as `cleanup` does).
const LOCK_WAIT: Duration = Duration::from_secs(120);

pub fn run(global: &Global, args: &CacheArgs) -> Result<()> {
    match &args.command {
        CacheCommand::Verify(a) => verify(global, a),
    }
}

fn verify(global: &Global, args: &CacheVerifyArgs) -> Result<()> {
    let ctx = Context::load(global)?;
    let store = ctx.store();
    let root = store.root().to_path_buf();
    match std::fs::symlink_metadata(&root) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if args.json {
                let doc = serde_json::json!({"cache": root, "absent": true, "clean": true,
                    "blobs": 0, "trees": 0, "problems": [], "unverifiable": []});
                crate::outln!("{doc}");
            } else {
                crate::outln!(
                    "no cache at {}: nothing to verify",
                    sanitize(&root.display().to_string())
                );
            }
            return Ok(());
        }
        Err(e) => return Err(Error::io("inspect the cache directory", &root, e)),
        Ok(_) => {}
    }
    if !store.is_marked() {
        return Err(Error::input(
            format!(
                "refusing to verify `{}`: it is not a protoreg cache (it has no CACHEDIR.TAG \
                 written by protoreg); nothing was read or changed there",
                root.display()
            ),
            "point --cache-dir, PROTOREG_CACHE_DIR or registry.yaml's cache.local_cache_dir at \
             the cache protoreg created (it writes CACHEDIR.TAG there)",
        ));
    }
    let _lock = if args.repair {
        let path = store.cache_lock_path();
        Some(store::lock_exclusive(
            store::open_lock_file(&path)?,
            &path,
            LOCK_WAIT.as_secs(),
        )?)
    } else {
        crate::operate::cleanup::use_guard(&root)
    };
    let report = cache_scan::verify(&store)?;
    let removed = if args.repair {
        repair(&store, &report, &ctx)
    } else {
        vec![]
    };
    print(&report, args, &root, &removed);
    if report.problems.is_empty() {
        return Ok(());
    }
    let n = report.problems.len();
    Err(Error::Registry {
        operation: "cache verify".into(),
        registry: format!("the cache `{}`", root.display()),
        reason: format!(
            "{n} problem{} found (listed above){}",
            if n == 1 { "" } else { "s" },
            if args.repair { "; removed" } else { "" }
        ),
        hint: if args.repair {
            "what was wrong is gone from the cache: the next materialize fetches or extracts it \
             again"
                .into()
        } else {
            "run `protoreg cache verify --repair` to remove what is wrong; the next materialize \
             fetches or extracts it again"
                .into()
        },
    })
}

/// Remove every wrong entry (a tree with its manifest), every unverifiable tree, and
/// manifests left without their tree. Returns what was removed.
fn repair(store: &Store, report: &Report, ctx: &Context) -> Vec<PathBuf> {
    let mut doomed: Vec<(PathBuf, String)> = Vec::new();
    for p in &report.problems {
        for path in &p.remove {
            if !doomed.iter().any(|(d, _)| d == path) {
                doomed.push((path.clone(), p.what.clone()));
            }
        }
    }
    for tree in &report.unverifiable {
        doomed.push((tree.clone(), "unverifiable (no manifest)".into()));
    }
    for m in &report.orphans {
        doomed.push((m.clone(), "manifest without its tree".into()));
    }
    let mut removed = Vec::new();
    for (path, why) in doomed {
        if std::fs::symlink_metadata(&path).is_err() {
            continue; // a tree's manifest that was never written
        }
        let op = ctx
            .audit
            .op("cache.repair", path.display().to_string())
            .detail(why);
        store.evict(&path);
        let result = match std::fs::symlink_metadata(&path) {
            Err(_) => Ok(()),
            Ok(_) => Err(Error::io(
                "remove from the cache",
                &path,
                std::io::Error::other("still there"),
            )),
        };
        op.finish(&result);
        if result.is_ok() {
            removed.push(path);
        }
    }
    removed
}

fn print(report: &Report, args: &CacheVerifyArgs, root: &std::path::Path, removed: &[PathBuf]) {
    if args.json {
        let problems: Vec<_> = report
            .problems
            .iter()
            .map(|p| {
                serde_json::json!({
                    "path": p.path,
                    "kind": p.kind,
                    "problem": sanitize(&p.what),
                })
            })
            .collect();
        let doc = serde_json::json!({
            "cache": root,
            "clean": report.problems.is_empty(),
            "blobs": report.blobs,
            "trees": report.trees,
            "problems": problems,
            "unverifiable": report.unverifiable,
            "orphan_manifests": report.orphans,
            "repaired": args.repair,
            "removed": removed,
        });
        crate::outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return;
    }
    let show = |p: &std::path::Path| sanitize(&p.display().to_string());
    for p in &report.problems {
        crate::outln!("wrong: {} {}: {}", p.kind, show(&p.path), sanitize(&p.what));
    }
    for t in &report.unverifiable {
        crate::outln!(
            "unverifiable: tree {}: installed without a manifest (by an older protoreg){}",
            show(t),
            if args.repair {
                ""
            } else {
                "; --repair removes it"
            }
        );
    }
    for p in removed {
        crate::outln!("removed {}", show(p));
    }
    crate::outln!(
        "checked {} blobs and {} trees in {}: {} wrong, {} unverifiable",
        report.blobs,
        report.trees,
        show(root),
        report.problems.len(),
        report.unverifiable.len()
    );
}
