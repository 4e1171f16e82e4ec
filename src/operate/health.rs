//! Health: each configured registry's reachability, measured latency and whether it holds the
//! tags the pins expect; the cache's size against `cache.max_cache_size_gb`. The JSON is the
//! seed document's shape (`status`, `checks.primary_registry.test_tags_found`,
//! `checks.cache.size_gb`/`usage_percent`) with the measurements added.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

use crate::commands::context::Context;
use crate::config::RegistryConfig;
use crate::maintain::pins::Pins;
use crate::maintain::tools;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Healthy,
    Degraded,
    Unhealthy,
}

#[derive(Debug, Clone, Serialize)]
pub struct RegistryCheck {
    pub status: Status,
    pub url: String,
    pub latency_ms: Option<f64>,
    pub test_tags_found: usize,
    pub expected_tags: usize,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub missing_tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CacheCheck {
    pub status: Status,
    pub path: String,
    pub size_gb: f64,
    pub usage_percent: f64,
    pub max_cache_size_gb: f64,
}

#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Check {
    Registry(RegistryCheck),
    Cache(CacheCheck),
}

#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub status: Status,
    pub checks: BTreeMap<String, Check>,
}

/// (repository, tag) pairs the registry should hold: every pinned (tool, version, platform)
/// and each version's index.
fn expected_tags(
    ctx: &Context,
    reg: &RegistryConfig,
    pins: Option<&Pins>,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let Some(pins) = pins else {
        return out;
    };
    for (tool, versions) in &pins.pins {
        let Ok(t) = tools::by_name(tool) else {
            continue;
        };
        let repo = ctx.config.tool_repository(reg, t);
        for (version, platforms) in versions {
            out.push((repo.clone(), ctx.config.index_tag(version)));
            for platform in platforms.keys() {
                out.push((repo.clone(), ctx.config.platform_tag(version, platform)));
            }
        }
    }
    out
}

fn check_registry(ctx: &mut Context, reg: &RegistryConfig, pins: Option<&Pins>) -> RegistryCheck {
    let expected = expected_tags(ctx, reg, pins);
    let mut check = RegistryCheck {
        status: Status::Healthy,
        url: format!("{}/{}", reg.host, reg.namespace),
        latency_ms: None,
        test_tags_found: 0,
        expected_tags: expected.len(),
        missing_tags: vec![],
        error: None,
    };
    let fail = |check: &mut RegistryCheck, e: crate::error::Error| {
        check.status = Status::Unhealthy;
        check.error = Some(e.summary());
    };
    let client = match ctx.connect(reg) {
        Ok(c) => c,
        Err(e) => {
            fail(&mut check, e);
            return check;
        }
    };
    // The repositories to ask: those the pins name, else every tool's.
    let mut repos: Vec<String> = expected.iter().map(|(r, _)| r.clone()).collect();
    if repos.is_empty() {
        repos = tools::all()
            .unwrap_or(&[])
            .iter()
            .map(|t| ctx.config.tool_repository(reg, t))
            .collect();
    }
    repos.dedup();
    let op = ctx
        .audit
        .op("health", format!("{}/{}", reg.host, reg.namespace));
    // Per repository, the number of tags and those of them the pins expect: one list is
    // held at a time, never every repository's.
    let mut found_tags: BTreeMap<String, (usize, Vec<String>)> = BTreeMap::new();
    for repo in &repos {
        let started = Instant::now();
        match client.tags(repo) {
            Ok(tags) => {
                if check.latency_ms.is_none() {
                    check.latency_ms =
                        Some((started.elapsed().as_secs_f64() * 10_000.0).round() / 10.0);
                }
                let wanted: Vec<String> = tags
                    .iter()
                    .filter(|t| expected.iter().any(|(r, e)| r == repo && e == *t))
                    .cloned()
                    .collect();
                found_tags.insert(repo.clone(), (tags.len(), wanted));
            }
            Err(e) => {
                fail(&mut check, e);
                op.detail(check.error.clone().unwrap_or_default())
                    .done("failed");
                return check;
            }
        }
    }
    if expected.is_empty() {
        check.test_tags_found = found_tags.values().map(|(n, _)| n).sum();
    } else {
        for (repo, tag) in &expected {
            if found_tags.get(repo).is_some_and(|(_, t)| t.contains(tag)) {
                check.test_tags_found += 1;
            } else {
                check.missing_tags.push(format!("{repo}:{tag}"));
            }
        }
        if !check.missing_tags.is_empty() {
            check.status = Status::Degraded;
            check.error = Some(format!(
                "{} of {} pinned tags missing (run `protoreg publish`, or `protoreg mirror` to a backup)",
                check.missing_tags.len(),
                expected.len()
            ));
        }
    }
    op.detail(format!("{} tags found", check.test_tags_found))
        .done("ok");
    check
}

pub fn check(ctx: &mut Context, pins: Option<&Pins>) -> Report {
    let mut checks = BTreeMap::new();
    let mut status = Status::Healthy;
    let registries: Vec<RegistryConfig> = ctx.config.registries().cloned().collect();
    for reg in &registries {
        let c = check_registry(ctx, reg, pins);
        let key = if reg.name == "primary" {
            "primary_registry".to_string()
        } else {
            format!("backup_registry:{}", reg.name)
        };
        // A backup in trouble degrades the service; only the primary can make it unhealthy.
        let weight = if reg.name == "primary" {
            c.status
        } else {
            c.status.min(Status::Degraded)
        };
        status = status.max(weight);
        checks.insert(key, Check::Registry(c));
    }
    let store = ctx.store();
    let bytes = crate::pipeline::cache_scan::usage(&store);
    let limit = ctx.config.max_cache_bytes();
    let usage_percent = if limit == 0 {
        if bytes == 0 {
            0.0
        } else {
            100.0
        }
    } else {
        bytes as f64 * 100.0 / limit as f64
    };
    let cache_status = if usage_percent > 100.0 {
        Status::Degraded
    } else {
        Status::Healthy
    };
    status = status.max(cache_status);
    let round = |v: f64, places: i32| {
        let f = 10f64.powi(places);
        (v * f).round() / f
    };
    checks.insert(
        "cache".into(),
        Check::Cache(CacheCheck {
            status: cache_status,
            path: ctx.cache_dir.display().to_string(),
            size_gb: round(bytes as f64 / (1u64 << 30) as f64, 3),
            usage_percent: round(usage_percent, 1),
            max_cache_size_gb: ctx.config.cache.max_cache_size_gb,
        }),
    );
    Report { status, checks }
}
