use std::time::Instant;

use crate::cli::{Global, HealthArgs};
use crate::commands::context::Context;
use crate::error::{Error, Result};
use crate::maintain::pins::{self, Pins};
use crate::operate::health::{self, Check, Status};
use crate::operate::metrics::Metrics;

pub fn run(global: &Global, args: &HealthArgs) -> Result<()> {
    let started = Instant::now();
    let mut ctx = Context::load(global)?;
    // The pins say which tags must exist; without a pins file, reachability alone counts.
    let pins = match args.pins.pins.as_deref() {
        Some(p) => Some(Pins::load(p)?),
        None => match pins::locate(None) {
            Ok(p) => Some(Pins::load(&p)?),
            Err(_) => None,
        },
    };
    let report = health::check(&mut ctx, pins.as_ref());
    if args.json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        for (name, check) in &report.checks {
            match check {
                Check::Registry(r) => {
                    let latency = r
                        .latency_ms
                        .map(|l| format!("{l} ms"))
                        .unwrap_or_else(|| "-".into());
                    crate::outln!(
                        "{name}: {:?} ({}) latency {latency}, tags {}/{}",
                        r.status,
                        r.url,
                        r.test_tags_found,
                        r.expected_tags
                    );
                    if let Some(e) = &r.error {
                        crate::outln!("  {e}");
                    }
                    for m in r.missing_tags.iter().take(10) {
                        crate::outln!("  missing {m}");
                    }
                }
                Check::Cache(c) => crate::outln!(
                    "{name}: {:?} ({}) {:.3} GB of {} GB ({:.1}%)",
                    c.status,
                    c.path,
                    c.size_gb,
                    c.max_cache_size_gb,
                    c.usage_percent
                ),
            }
        }
        crate::outln!("status: {:?}", report.status);
    }
    let mut m = Metrics::default();
    m.time("health", started.elapsed());
    if report.status != Status::Healthy {
        m.add("errors", 1);
    }
    crate::operate::metrics::record_quietly(&ctx.cache_dir, &m);
    match report.status {
        Status::Healthy => Ok(()),
        s => Err(Error::Unhealthy {
            status: format!("{s:?}").to_lowercase(),
        }),
    }
}
