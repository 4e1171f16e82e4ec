//! `cleanup --registry`: retention on the primary registry.

use std::time::Instant;

use crate::cli::CleanupArgs;
use crate::commands::context::Context;
use crate::error::{Error, Result};
use crate::maintain::pins::{self, Pins};
use crate::operate::metrics::Metrics;

pub fn run(ctx: &mut Context, args: &CleanupArgs) -> Result<()> {
    let started = Instant::now();
    // The pins protect what builds use: without them retention could delete a pinned
    // version, so running without is only ever explicit (--no-pins).
    let pins = if args.no_pins {
        None
    } else {
        let path = pins::locate(args.pins.pins.as_deref()).map_err(|e| match e {
            Error::Input { what, .. } => Error::input(
                format!(
                    "{what}: retention needs the pins so that it never deletes a pinned version"
                ),
                format!(
                    "run from the repository, pass --pins FILE (or set {}), or pass --no-pins \
                     to let only bundles protect versions",
                    pins::ENV_PINS
                ),
            ),
            other => other,
        })?;
        if !path.is_file() {
            return Err(Error::input(
                format!("the pins file `{}` does not exist", path.display()),
                "pass an existing pins file to --pins (or PROTOREG_PINS), or --no-pins",
            ));
        }
        Some(Pins::load(&path)?)
    };
    let reg = ctx.config.primary.clone();
    let decisions = crate::operate::retention::run(ctx, &reg, pins.as_ref(), args.dry_run)?;
    let deleted = decisions.iter().filter(|d| d.action == "delete").count();
    if args.json {
        let doc = serde_json::json!({
            "registry": reg.host,
            "dry_run": args.dry_run,
            "artifacts": decisions,
            "deleted": if args.dry_run { 0 } else { deleted },
        });
        crate::outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
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
            crate::outln!(
                "{}:{} ({}) {what}",
                d.repository,
                d.tags.join(","),
                d.digest
            );
        }
        crate::outln!(
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
    crate::operate::metrics::record_quietly(&ctx.cache_dir, &m);
    Ok(())
}
