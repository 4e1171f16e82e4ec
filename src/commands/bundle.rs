//! `materialize --bundle NAME[@VERSION] --platform P --out DIR`: every member of the bundle,
//! fetched by digest from the configured registries, verified, into `DIR/<tool>/`.
//!
//! Each registry keeps its own transport and credentials (registry.yaml's `plain_http` and
//! `auth:`); `--plain-http` alone turns cleartext on everywhere. With `--offline` nothing is
//! fetched: the bundle document comes from the cache (kept there by an earlier online run)
//! and so does every member.

use std::time::Instant;

use crate::artifact::{BundleDoc, BundleMember};
use crate::cli::{Global, MaterializeArgs};
use crate::commands::context::Context;
use crate::error::{Error, IoContext, Result};
use crate::pipeline::extract::Layout;
use crate::pipeline::fetch::NetOptions;
use crate::pipeline::materialize::Link;
use crate::pipeline::resolve::{self, Artifact, Options};
use crate::pipeline::source::Source;
use crate::pipeline::store::Store;
use crate::pipeline::verify::Expected;
use crate::platform;

pub fn materialize(global: &Global, args: &MaterializeArgs, spec: &str) -> Result<()> {
    let started = Instant::now();
    let (name, tag) = match spec.split_once('@') {
        Some((n, v)) => (n, v),
        None => (spec, crate::operate::bundle::LATEST),
    };
    let plat = match &args.platform {
        Some(p) => platform::by_name(p)?,
        None => platform::host()?,
    };
    let link: Link = args.link.parse()?;
    let max_unsized = crate::pipeline::verify::max_unsized_bytes()?;
    crate::settings::check()?;
    crate::pipeline::materialize::check_output(&args.out)?;
    let extra: Vec<Source> = args
        .sources
        .iter()
        .map(|s| s.parse())
        .collect::<Result<_>>()?;
    let mut ctx = Context::load(global)?;
    let store = ctx.store();
    let _in_use = crate::operate::cleanup::use_guard(store.root());
    crate::pipeline::materialize::check_outside_cache(&args.out, store.root())?;
    let mut net = NetOptions::from_env(global.plain_http)?;
    let (doc, from) = if args.offline {
        cached_document(&ctx, &store, name, tag)?
    } else {
        // Per-host transport and credentials, for the members as for the document.
        net.hosts = crate::config::host_access(&ctx.config)?;
        for h in &net.hosts {
            if let Ok(creds) = &h.credentials.get() {
                ctx.scrub(creds);
            }
        }
        fetch_document(&mut ctx, &store, name, tag)?
    };
    let opts = Options {
        offline: args.offline,
        net,
        max_unsized,
        progress: crate::progress::Progress::detect(global.quiet, args.json),
        label: String::new(),
    };
    let created_out = !args.out.exists();
    std::fs::create_dir_all(&args.out).ctx("create", &args.out)?;
    let result = members(&ctx, args, &doc, &from, plat, &extra, &store, &opts, link);
    if result.is_err() {
        // Nothing half-made is left: every member or none.
        if created_out {
            crate::pipeline::store::remove_tree(&args.out);
        } else if let Ok(rd) = std::fs::read_dir(&args.out) {
            for e in rd.flatten() {
                crate::pipeline::store::remove_tree(&e.path());
            }
        }
    }
    let results = result?;
    if args.json {
        let doc = serde_json::json!({
            "bundle": name,
            "tag": tag,
            "platform": plat.name,
            "document_from": from,
            "members": results,
            "duration_ms": started.elapsed().as_millis() as u64,
        });
        crate::outln!("{doc}");
    }
    Ok(())
}

/// The document from the first registry that has it (kept in the cache for `--offline`),
/// and the registry it came from. A registry that failed (unreachable, refused, damaged
/// data) makes a miss a failure of the work (exit 1); only when every registry answered
/// that it has no such bundle is it bad input (exit 2).
fn fetch_document(
    ctx: &mut Context,
    store: &Store,
    name: &str,
    tag: &str,
) -> Result<(BundleDoc, String)> {
    let registries: Vec<_> = ctx.config.registries().cloned().collect();
    let mut tried = Vec::new();
    let mut failed = false;
    for reg in &registries {
        let client = match ctx.connect(reg) {
            Ok(c) => c,
            Err(e) => {
                failed |= e.exit_code() == 1;
                tried.push(format!("{}: {}", reg.host, e.summary()));
                continue;
            }
        };
        let repo = ctx.config.bundle_repository(reg, name);
        let op = ctx.audit.op("bundle.fetch", format!("{}/{repo}", reg.host));
        match crate::operate::bundle::fetch(&ctx.config, reg, &client, name, tag) {
            Ok(Some(fetched)) => {
                op.digest(fetched.manifest.oci()).done("ok");
                // Best effort: a read-only cache still materializes, only not offline later.
                let _ =
                    crate::operate::bundle::remember(store.root(), &reg.host, &repo, tag, &fetched);
                return Ok((fetched.doc, reg.host.clone()));
            }
            Ok(None) => {
                op.detail(format!("no tag {tag}")).done("failed");
                tried.push(format!("{}: no {name}:{tag}", reg.host));
            }
            Err(e) => {
                failed = true;
                op.detail(e.summary()).done("failed");
                tried.push(format!("{}: {}", reg.host, e.summary()));
            }
        }
    }
    if failed {
        return Err(Error::Registry {
            operation: format!("fetch bundle `{name}@{tag}`"),
            registry: registries
                .iter()
                .map(|r| r.host.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            reason: tried.join("; "),
            hint: "check that the registries are reachable from here (`protoreg health`), or \
                   use --offline with a cache that materialized this bundle before"
                .into(),
        });
    }
    Err(Error::input(
        format!(
            "bundle `{name}@{tag}` is in no configured registry ({})",
            tried.join("; ")
        ),
        "publish it (`protoreg publish --bundles`) or check the name in registry.yaml",
    ))
}

/// `--offline`: the document an earlier online run kept in this cache, from the first
/// registry (primary, then backups) it was read from.
fn cached_document(
    ctx: &Context,
    store: &Store,
    name: &str,
    tag: &str,
) -> Result<(BundleDoc, String)> {
    for reg in ctx.config.registries() {
        let repo = ctx.config.bundle_repository(reg, name);
        if let Some(doc) = crate::operate::bundle::remembered(store.root(), &reg.host, &repo, tag)?
        {
            return Ok((doc, format!("cache ({})", reg.host)));
        }
    }
    Err(Error::Registry {
        operation: format!("resolve bundle `{name}@{tag}` with --offline"),
        registry: format!("the cache `{}`", store.root().display()),
        reason: "no configured registry's document for it is in the cache, and --offline \
                 forbids fetching it"
            .into(),
        hint: "run once without --offline with this cache (or point --cache-dir at one that \
               materialized the bundle)"
            .into(),
    })
}

/// The bundle document is remote data: a member that names an unknown tool or an unusable
/// repository or digest is a failure of the work (exit 1), never a path to write to.
fn bad_member(from: &str, doc: &BundleDoc, member: &BundleMember, why: String) -> Error {
    Error::Registry {
        operation: format!("read bundle `{}`", doc.bundle),
        registry: from.to_string(),
        reason: format!("member `{}`: {why}", member.tool.escape_debug()),
        hint: "the bundle document is not one protoreg publishes; re-publish the bundle \
               (`protoreg publish --bundles`)"
            .into(),
    }
}

/// An OCI repository path under a namespace: lowercase components of `a-z 0-9 . _ -`, none
/// of them `.` or `..`.
fn valid_repository(path: &str) -> bool {
    !path.is_empty()
        && path.split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        })
}

#[allow(clippy::too_many_arguments)]
fn members(
    ctx: &Context,
    args: &MaterializeArgs,
    doc: &BundleDoc,
    from: &str,
    plat: &platform::Platform,
    extra: &[Source],
    store: &Store,
    opts: &Options,
    link: Link,
) -> Result<Vec<serde_json::Value>> {
    let name = &doc.bundle;
    // Check every member before anything is fetched or written.
    type Planned<'a> = (
        &'static crate::maintain::tools::Tool,
        &'a BundleMember,
        &'a crate::artifact::BundleArtifact,
        Artifact,
        Vec<Source>,
    );
    let mut plan: Vec<Planned> = Vec::new();
    for member in &doc.members {
        let bad = |why: String| bad_member(from, doc, member, why);
        // The output directory is named by the catalogue, never by the document's text.
        let tool = crate::maintain::tools::by_name(&member.tool)
            .map_err(|_| bad("not a tool protoreg knows".into()))?;
        if plan.iter().any(|(t, ..)| t.name == tool.name) {
            return Err(bad("listed twice".into()));
        }
        if !valid_repository(&member.repository) {
            return Err(bad(format!(
                "`{}` is not an OCI repository path",
                member.repository.escape_debug()
            )));
        }
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
                sha256: a.sha256.parse().map_err(|e: Error| bad(e.summary()))?,
                size: Some(a.size),
            },
            layout: Layout {
                format: a.format.parse().map_err(|e: Error| bad(e.summary()))?,
                strip_prefix: Some(a.strip_prefix.clone()).filter(|s| !s.is_empty()),
                executables: a.binaries.clone(),
            },
        };
        let mut sources = extra.to_vec();
        sources.extend(crate::config::oci_sources(&ctx.config, |reg| {
            reg.repository(&member.repository)
        }));
        plan.push((tool, member, a, artifact, sources));
    }
    let mut results = Vec::new();
    for (tool, member, a, artifact, sources) in plan {
        let out = args.out.join(&tool.name);
        let t = Instant::now();
        let opts = Options {
            label: format!("{name}: {}", tool.name),
            ..opts.clone()
        };
        let result = resolve::materialize(store, &artifact, &sources, &opts, &out, link);
        crate::operate::telemetry::materialized(
            store.root(),
            ctx.config.security.audit_log.as_deref(),
            &artifact.expected,
            &result,
            t.elapsed(),
        );
        let outcome = result?;
        results.push(serde_json::json!({
            "tool": tool.name,
            "version": member.version,
            "sha256": a.sha256,
            "out": out,
            "cache": if outcome.cache_hit { "hit" } else { "miss" },
            "source": outcome.source,
        }));
    }
    Ok(results)
}

#[cfg(test)]
mod tests {
    use super::valid_repository;

    #[test]
    fn member_repositories_are_plain_oci_paths() {
        assert!(valid_repository("tools/protoc"));
        assert!(valid_repository("plugins/protoc-gen-go"));
        for bad in [
            "",
            "/tools",
            "tools/",
            "../x",
            "tools/../../x",
            "a/./b",
            "Tools",
            "a b",
        ] {
            assert!(!valid_repository(bad), "{bad}");
        }
    }
}
