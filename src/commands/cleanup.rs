use std::time::Instant;

use crate::cli::{CleanupArgs, Global};
use crate::commands::context::Context;
use crate::error::{Bytes, Result};
use crate::operate::metrics::Metrics;

pub fn run(global: &Global, args: &CleanupArgs) -> Result<()> {
    let started = Instant::now();
    let mut ctx = Context::load(global)?;
    if args.registry {
        return crate::commands::retention::run(&mut ctx, args);
    }
    let older_than = match &args.older_than {
        Some(s) => crate::operate::cleanup::parse_duration(s)?,
        None => crate::operate::cleanup::days(ctx.config.cache.cleanup_older_than_days)?,
    };
    let max_size = args
        .max_size
        .as_deref()
        .map(crate::operate::cleanup::parse_size)
        .transpose()?;
    let store = ctx.store();
    let plan = crate::operate::cleanup::run(
        &store,
        older_than,
        max_size,
        args.dry_run,
        &ctx.audit,
        &named_by(global, &ctx),
    )?;
    if plan.absent {
        // Nothing to clean, and nothing is created: not even the metrics file.
        if args.json {
            let doc = serde_json::json!({
                "dry_run": args.dry_run,
                "removed": [],
                "freed_bytes": 0,
                "kept_bytes": 0,
                "cache": "absent",
            });
            crate::outln!("{doc}");
        } else {
            crate::outln!("no cache at {}: nothing to clean", ctx.cache_dir.display());
        }
        return Ok(());
    }
    let freed: u64 = plan.removals.iter().map(|r| r.entry.bytes).sum();
    if args.json {
        let removed: Vec<_> = plan
            .removals
            .iter()
            .map(|r| {
                serde_json::json!({
                    "path": r.entry.path,
                    "kind": format!("{:?}", r.entry.kind).to_lowercase(),
                    "bytes": r.entry.bytes,
                    "reason": r.reason,
                })
            })
            .collect();
        let doc = serde_json::json!({
            "dry_run": args.dry_run,
            "removed": removed,
            "freed_bytes": freed,
            "kept_bytes": plan.kept_bytes,
        });
        crate::outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        let verb = if args.dry_run {
            "would remove"
        } else {
            "removed"
        };
        for r in &plan.removals {
            crate::outln!(
                "{verb} {} ({}, {})",
                r.entry.path.display(),
                r.reason,
                Bytes(r.entry.bytes)
            );
        }
        crate::outln!(
            "{verb} {} entries, {}; {} kept",
            plan.removals.len(),
            Bytes(freed),
            Bytes(plan.kept_bytes)
        );
    }
    let mut m = Metrics::default();
    m.time("cleanup", started.elapsed());
    if !args.dry_run {
        m.add("cleanup_removed", plan.removals.len() as u64)
            .add("cleanup_bytes", freed);
    }
    crate::operate::metrics::record_quietly(&ctx.cache_dir, &m);
    Ok(())
}

/// Which setting chose the cache directory (the same precedence as [`crate::pipeline::store::cache_dir`]).
fn named_by(global: &Global, ctx: &Context) -> String {
    if global.cache_dir.is_some() {
        return "--cache-dir".into();
    }
    if std::env::var_os(crate::pipeline::store::ENV_CACHE_DIR).is_some_and(|v| !v.is_empty()) {
        return crate::pipeline::store::ENV_CACHE_DIR.into();
    }
    if ctx.config.cache.local_cache_dir.is_some() {
        return match &ctx.config.file {
            Some(f) => format!("cache.local_cache_dir in {}", f.display()),
            None => "cache.local_cache_dir".into(),
        };
    }
    "the default cache location".into()
}
