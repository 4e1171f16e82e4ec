//! Registry retention: `repositories.<category>.retention_days` applied to the registry's
//! own artifacts. An artifact's age is its fixed `org.opencontainers.image.created` (the
//! upstream release date). Never removed: a version a pin names, a version a configured
//! bundle names, anything without a readable `created`, and anything not in this project's
//! tag shape. Manifests are deleted by digest (the distribution API's only way); their blobs
//! are left to the registry's garbage collector.

use std::collections::{BTreeMap, BTreeSet};

use crate::artifact;
use crate::commands::context::Context;
use crate::commands::versions::{parse_tag, TagKind};
use crate::config::{Config, RegistryConfig};
use crate::error::Result;
use crate::maintain::pins::Pins;
use crate::maintain::tools::{self, Tool};
use crate::pipeline::verify::Sha256;
use crate::registry::Registry;

#[derive(Debug, Clone, serde::Serialize)]
pub struct Decision {
    pub repository: String,
    pub tags: Vec<String>,
    pub digest: String,
    pub version: String,
    pub created: Option<String>,
    pub age_days: Option<i64>,
    /// `delete`, or why it is kept.
    pub action: String,
}

/// (tool, version) pairs that must stay: pinned or in a bundle.
pub fn protected(config: &Config, pins: Option<&Pins>) -> BTreeSet<(String, String)> {
    let mut out = BTreeSet::new();
    if let Some(p) = pins {
        for (tool, versions) in &p.pins {
            for v in versions.keys() {
                out.insert((tool.clone(), v.clone()));
            }
        }
    }
    for b in config.bundles.values() {
        for (tool, v) in &b.tools {
            out.insert((tool.clone(), v.clone()));
        }
    }
    out
}

fn created_of(bytes: &[u8]) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(bytes).ok()?;
    v.get("annotations")?
        .get(artifact::CREATED)?
        .as_str()
        .map(str::to_string)
}

/// Decide, per manifest, in one tool repository.
fn plan_repository(
    config: &Config,
    client: &Registry,
    repo: &str,
    tool: &Tool,
    retention_days: u64,
    keep: &BTreeSet<(String, String)>,
    now: i64,
) -> Result<Vec<Decision>> {
    // digest -> decision (several tags may point at one manifest)
    let mut by_digest: BTreeMap<String, Decision> = BTreeMap::new();
    for tag in client.tags(repo)? {
        let version = match parse_tag(config, &tag) {
            Some(TagKind::Platform { version, .. }) | Some(TagKind::Index { version }) => version,
            None => continue,
        };
        let Some((bytes, digest)) = client.manifest(repo, &tag)? else {
            continue;
        };
        if let Some(d) = by_digest.get_mut(&digest) {
            d.tags.push(tag);
            continue;
        }
        let created = created_of(&bytes);
        let age_days = created
            .as_deref()
            .and_then(crate::utc::parse)
            .map(|t| (now - t) / 86_400);
        let action = if keep.contains(&(tool.name.to_string(), version.clone())) {
            "keep: pinned or in a bundle".to_string()
        } else {
            match age_days {
                None => "keep: no readable created annotation".to_string(),
                Some(a) if a > 0 && a as u64 > retention_days => "delete".to_string(),
                Some(a) => format!("keep: {a} days old, retention {retention_days}"),
            }
        };
        by_digest.insert(
            digest.clone(),
            Decision {
                repository: repo.to_string(),
                tags: vec![tag],
                digest,
                version,
                created,
                age_days,
                action,
            },
        );
    }
    Ok(by_digest.into_values().collect())
}

/// Plan (and unless `dry_run`, apply) retention on `reg`.
pub fn run(
    ctx: &mut Context,
    reg: &RegistryConfig,
    pins: Option<&Pins>,
    dry_run: bool,
) -> Result<Vec<Decision>> {
    let keep = protected(&ctx.config, pins);
    let client = ctx.connect(reg)?;
    let now = crate::utc::now_secs();
    let mut all = Vec::new();
    for tool in tools::all()? {
        let category = Config::category_of(tool);
        let Some(days) = ctx
            .config
            .repositories
            .get(category)
            .and_then(|r| r.retention_days)
        else {
            continue;
        };
        let tool = ctx.config.tool(&tool.name)?;
        let repo = ctx.config.tool_repository(reg, tool);
        let mut decisions = plan_repository(&ctx.config, &client, &repo, tool, days, &keep, now)?;
        // Indexes before the manifests they list: a registry refuses nothing either way, but
        // a reader never sees an index whose children are gone.
        decisions.sort_by_key(|d| {
            !d.tags
                .iter()
                .any(|t| matches!(parse_tag(&ctx.config, t), Some(TagKind::Index { .. })))
        });
        if !dry_run {
            for d in decisions.iter().filter(|d| d.action == "delete") {
                let op = ctx
                    .audit
                    .op("retention.delete", format!("{}/{}", reg.host, d.repository))
                    .digest(d.digest.clone())
                    .detail(format!(
                        "tags {}; created {}",
                        d.tags.join(","),
                        d.created.clone().unwrap_or_default()
                    ));
                let digest: Sha256 = d.digest.parse()?;
                let r = client.delete_manifest(&d.repository, &digest);
                op.finish(&r);
                r?;
            }
        }
        all.extend(decisions);
    }
    Ok(all)
}
