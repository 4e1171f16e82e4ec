use std::time::Instant;

use crate::cli::{Global, MirrorArgs};
use crate::commands::context::Context;
use crate::error::{Bytes, Result};
use crate::operate::metrics::Metrics;
use crate::operate::mirror;

pub fn run(global: &Global, args: &MirrorArgs) -> Result<()> {
    let started = Instant::now();
    let mut ctx = Context::load(global)?;
    let from = mirror::endpoint(&args.from, &ctx.config, global.plain_http)?;
    let to = mirror::endpoint(&args.to, &ctx.config, global.plain_http)?;
    for e in [&from, &to] {
        if let mirror::Endpoint::Registry { cfg, .. } = e {
            ctx.scrub(&cfg.credentials()?);
        }
    }
    let store = ctx.store();
    // Blobs pass through the cache's tmp/: `cleanup` (which takes this lock exclusively)
    // must not remove them mid-copy.
    let _in_use = crate::operate::cleanup::use_guard(store.root());
    let progress = crate::progress::Progress::detect(global.quiet, args.json);
    let report = mirror::mirror(
        &from,
        &to,
        &ctx.config,
        &store,
        args.dry_run,
        &ctx.audit,
        &progress,
    )?;
    if args.json {
        let mut doc = serde_json::to_value(&report).unwrap_or_default();
        doc["from"] = from.label().into();
        doc["to"] = to.label().into();
        doc["dry_run"] = args.dry_run.into();
        crate::outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        let verb = if args.dry_run { "would copy" } else { "copied" };
        for c in &report.copied {
            crate::outln!("{verb} {c}");
        }
        crate::outln!(
            "{} -> {}: {verb} {} tags ({} blobs, {}), {} already there",
            from.label(),
            to.label(),
            report.copied.len(),
            report.blobs_copied,
            Bytes(report.bytes_copied),
            report.skipped.len()
        );
    }
    let mut m = Metrics::default();
    m.time("mirror", started.elapsed());
    if !args.dry_run {
        m.add("mirror_artifacts", report.copied.len() as u64)
            .add("blobs_uploaded", report.blobs_copied)
            .add("blobs_skipped", report.blobs_skipped)
            .add("bytes_uploaded", report.bytes_copied);
    }
    crate::operate::metrics::record_quietly(&ctx.cache_dir, &m);
    Ok(())
}
