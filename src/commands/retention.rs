//! `cleanup --registry`: retention on the primary registry.

use std::time::Instant;

use crate::cli::CleanupArgs;
use crate::commands::context::Context;
use crate::error::Result;
use crate::metrics::Metrics;
use crate::pins::{self, Pins};

pub fn run(ctx: &mut Context, args: &CleanupArgs) -> Result<()> {
    let started = Instant::now();
    let pins = match args.pins.pins.as_deref() {
        Some(p) => Some(Pins::load(p)?),
        None => match pins::locate(None) {
            Ok(p) => Some(Pins::load(&p)?),
            Err(_) => None,
        },
    };
    let reg = ctx.config.primary.clone();
    let decisions = crate::retention::run(ctx, &reg, pins.as_ref(), args.dry_run)?;
    let deleted = decisions.iter().filter(|d| d.action == "delete").count();
    if args.json {
        let doc = serde_json::json!({
            "registry": reg.host,
            "dry_run": args.dry_run,
            "artifacts": decisions,
            "deleted": if args.dry_run { 0 } else { deleted },
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        let verb = if args.dry_run {
            "would delete"
        } else {
            "deleted"
        };
        for d in &decisions {
            let what = if d.action == "delete" {
                verb
            } else {
                d.action.as_str()
            };
            println!(
                "{}:{} ({}) {what}",
                d.repository,
                d.tags.join(","),
                d.digest
            );
        }
        println!(
            "{verb} {deleted} of {} artifacts on {}",
            decisions.len(),
            reg.host
        );
    }
    let mut m = Metrics::default();
    m.time("retention", started.elapsed());
    if !args.dry_run {
        m.add("cleanup_removed", deleted as u64);
    }
    crate::metrics::record_quietly(&ctx.cache_dir, &m);
    Ok(())
}
