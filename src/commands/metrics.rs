use crate::cli::{Global, MetricsArgs};
use crate::commands::context::Context;
use crate::error::Result;

pub fn run(global: &Global, args: &MetricsArgs) -> Result<()> {
    let ctx = Context::load(global)?;
    let totals = crate::operate::metrics::load(&ctx.cache_dir)?;
    let bytes = crate::pipeline::cache_scan::usage(&ctx.store());
    if args.prometheus {
        crate::out!("{}", totals.to_prometheus(bytes));
    } else if args.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&totals.to_json(bytes)).unwrap_or_default()
        );
    } else {
        let doc = totals.to_json(bytes);
        if let Some(counters) = doc["counters"].as_object() {
            for (k, v) in counters {
                crate::outln!("{k:<24} {v}");
            }
        }
        for (cmd, t) in &totals.durations {
            crate::outln!(
                "{:<24} {} runs, {} ms total, {} ms max",
                format!("time.{cmd}"),
                t.count,
                t.total_ms,
                t.max_ms
            );
        }
        crate::outln!("{:<24} {bytes}", "cache_bytes");
    }
    Ok(())
}
