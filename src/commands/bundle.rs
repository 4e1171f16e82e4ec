//! `materialize --bundle NAME[@VERSION] --platform P --out DIR`: every member of the bundle,
//! fetched by digest from the configured registries, verified, into `DIR/<tool>/`.

use std::time::Instant;

use crate::cli::{Global, MaterializeArgs};
use crate::commands::context::Context;
use crate::error::{Error, IoContext, Result};
use crate::extract::Layout;
use crate::fetch::NetOptions;
use crate::materialize::Link;
use crate::platform;
use crate::resolve::{self, Artifact, Options};
use crate::source::Source;
use crate::verify::Expected;

pub fn materialize(global: &Global, args: &MaterializeArgs, spec: &str) -> Result<()> {
    let started = Instant::now();
    let (name, tag) = match spec.split_once('@') {
        Some((n, v)) => (n, v),
        None => (spec, crate::bundle::LATEST),
    };
    let plat = match &args.platform {
        Some(p) => platform::by_name(p)?,
        None => platform::host()?,
    };
    let link: Link = args.link.parse()?;
    crate::materialize::check_output(&args.out)?;
    let mut ctx = Context::load(global)?;
    let registries: Vec<_> = ctx.config.registries().cloned().collect();
    // The document from the first registry that has it.
    let mut found = None;
    let mut tried = Vec::new();
    for reg in &registries {
        let client = match ctx.connect(reg) {
            Ok(c) => c,
            Err(e) => {
                tried.push(format!(
                    "{}: {}",
                    reg.host,
                    e.to_string().lines().next().unwrap_or_default()
                ));
                continue;
            }
        };
        let op = ctx.audit.op(
            "bundle.fetch",
            format!("{}/{}", reg.host, ctx.config.bundle_repository(reg, name)),
        );
        match crate::bundle::fetch(&ctx.config, reg, &client, name, tag) {
            Ok(Some((doc, digest))) => {
                op.digest(digest.oci()).done("ok");
                found = Some(doc);
                break;
            }
            Ok(None) => {
                op.detail(format!("no tag {tag}")).done("failed");
                tried.push(format!("{}: no {name}:{tag}", reg.host));
            }
            Err(e) => {
                let first = e.to_string().lines().next().unwrap_or_default().to_string();
                op.detail(first.clone()).done("failed");
                tried.push(format!("{}: {first}", reg.host));
            }
        }
    }
    let doc = found.ok_or_else(|| {
        Error::input(
            format!(
                "bundle `{name}@{tag}` is in no configured registry ({})",
                tried.join("; ")
            ),
            "publish it (`protoreg publish --bundles`) or check the name in registry.yaml",
        )
    })?;
    let store = ctx.store();
    let _in_use = crate::cleanup::use_guard(store.root());
    let plain_http = registries.iter().any(|r| r.plain_http) || global.plain_http;
    let opts = Options {
        offline: args.offline,
        net: NetOptions::from_env(plain_http),
    };
    let created_out = !args.out.exists();
    std::fs::create_dir_all(&args.out).ctx("create", &args.out)?;
    let result = members(&ctx, args, &doc, plat, &registries, &store, &opts, link);
    if result.is_err() {
        // Nothing half-made is left: every member or none.
        if created_out {
            crate::store::remove_tree(&args.out);
        } else if let Ok(rd) = std::fs::read_dir(&args.out) {
            for e in rd.flatten() {
                crate::store::remove_tree(&e.path());
            }
        }
    }
    let results = result?;
    if args.json {
        let doc = serde_json::json!({
            "bundle": name,
            "tag": tag,
            "platform": plat.name,
            "members": results,
            "duration_ms": started.elapsed().as_millis() as u64,
        });
        println!("{doc}");
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn members(
    ctx: &Context,
    args: &MaterializeArgs,
    doc: &crate::artifact::BundleDoc,
    plat: &platform::Platform,
    registries: &[crate::config::RegistryConfig],
    store: &crate::store::Store,
    opts: &Options,
    link: Link,
) -> Result<Vec<serde_json::Value>> {
    let name = &doc.bundle;
    let mut results = Vec::new();
    for member in &doc.members {
        let a = member.platforms.get(plat.name).ok_or_else(|| {
            Error::input(
                format!(
                    "bundle `{name}` has no {} build of {}",
                    plat.name, member.tool
                ),
                format!(
                    "its platforms: {}",
                    member
                        .platforms
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        let artifact = Artifact {
            expected: Expected {
                sha256: a.sha256.parse()?,
                size: a.size,
            },
            layout: Layout {
                format: a.format.parse()?,
                strip_prefix: Some(a.strip_prefix.clone()).filter(|s| !s.is_empty()),
                executables: a.binaries.clone(),
            },
        };
        let mut sources: Vec<Source> = args
            .sources
            .iter()
            .map(|s| s.parse())
            .collect::<Result<_>>()?;
        for reg in registries {
            sources.push(Source::Oci {
                registry: reg.host.clone(),
                repository: reg.repository(&member.repository),
            });
        }
        let out = args.out.join(&member.tool);
        let t = Instant::now();
        let result = resolve::materialize(store, &artifact, &sources, opts, &out, link);
        crate::telemetry::materialized(
            store.root(),
            ctx.config.security.audit_log.as_deref(),
            &artifact.expected,
            &result,
            t.elapsed(),
        );
        let outcome = result?;
        results.push(serde_json::json!({
            "tool": member.tool,
            "version": member.version,
            "sha256": a.sha256,
            "out": out,
            "cache": if outcome.cache_hit { "hit" } else { "miss" },
            "source": outcome.source,
        }));
    }
    Ok(results)
}
