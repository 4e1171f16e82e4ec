//! `versions TOOL [--upstream]`: what the registry holds, newest first by version order, and
//! with `--upstream` the published upstream releases the registry lacks.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::cli::{Global, VersionsArgs};
use crate::commands::context::Context;
use crate::config::Config;
use crate::error::{Error, Result};
use crate::maintain::upstream::Upstream;
use crate::operate::metrics::Metrics;
use crate::platform::PLATFORMS;

/// What one registry tag stands for.
#[derive(Debug, PartialEq, Eq)]
pub enum TagKind {
    Platform { version: String, platform: String },
    Index { version: String },
}

/// Read a tag back through the configured templates (`v{version}-{platform}`, `v{version}`).
pub fn parse_tag(config: &Config, tag: &str) -> Option<TagKind> {
    let version_in = |template: &str| -> Option<String> {
        let (pre, post) = template.split_once("{version}")?;
        let v = tag.strip_prefix(pre)?.strip_suffix(post)?;
        (!v.is_empty() && v.starts_with(|c: char| c.is_ascii_digit())).then(|| v.to_string())
    };
    for p in PLATFORMS {
        let t = config.publishing.tag_template.replace("{platform}", p.name);
        if let Some(version) = version_in(&t) {
            return Some(TagKind::Platform {
                version,
                platform: p.name.to_string(),
            });
        }
    }
    version_in(&config.publishing.index_tag_template).map(|version| TagKind::Index { version })
}

/// version -> (platforms, has an index), from a repository's tags.
pub fn versions_of(config: &Config, tags: &[String]) -> BTreeMap<String, (Vec<String>, bool)> {
    let mut out: BTreeMap<String, (Vec<String>, bool)> = BTreeMap::new();
    for tag in tags {
        match parse_tag(config, tag) {
            Some(TagKind::Platform { version, platform }) => {
                out.entry(version).or_default().0.push(platform)
            }
            Some(TagKind::Index { version }) => out.entry(version).or_default().1 = true,
            None => {}
        }
    }
    for (platforms, _) in out.values_mut() {
        platforms.sort();
    }
    out
}

pub fn run(global: &Global, args: &VersionsArgs) -> Result<()> {
    let started = Instant::now();
    let mut ctx = Context::load(global)?;
    let tool = ctx.config.tool(&args.tool)?;
    let reg = match &args.registry {
        Some(name) => ctx.config.registry(name).cloned().ok_or_else(|| {
            let names: Vec<String> = ctx.config.registries().map(|r| r.name.clone()).collect();
            Error::input(
                format!("no registry named `{name}` in the configuration"),
                format!("use one of: {}", names.join(", ")),
            )
        })?,
        None => ctx.config.primary.clone(),
    };
    let repo = ctx.config.tool_repository(&reg, tool);
    let client = ctx.connect(&reg)?;
    let op = ctx.audit.op("versions", format!("{}/{repo}", reg.host));
    let tags = client.tags(&repo);
    op.finish(&tags);
    let held = versions_of(&ctx.config, &tags?);
    let mut order: Vec<String> = held.keys().cloned().collect();
    crate::maintain::version::sort_newest_first(&mut order);

    let upstream = if args.upstream {
        let up = Upstream::new(ctx.config.publishing.github_api_url.as_deref())?;
        Some(up.releases(tool)?)
    } else {
        None
    };
    if args.json {
        let versions: Vec<_> = order
            .iter()
            .map(|v| {
                let (platforms, index) = &held[v];
                serde_json::json!({"version": v, "platforms": platforms, "index": index})
            })
            .collect();
        let mut doc = serde_json::json!({
            "tool": tool.name,
            "registry": reg.host,
            "repository": repo,
            "versions": versions,
        });
        if let Some(releases) = &upstream {
            let list: Vec<_> = releases
                .iter()
                .map(|r| {
                    serde_json::json!({
                        "version": r.version,
                        "published_at": r.published_at,
                        "in_registry": held.contains_key(&r.version),
                    })
                })
                .collect();
            let missing: Vec<&str> = releases
                .iter()
                .filter(|r| !held.contains_key(&r.version))
                .map(|r| r.version.as_str())
                .collect();
            doc["upstream"] = list.into();
            doc["missing"] = missing.into();
        }
        crate::outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    } else {
        // Tags and versions are a registry's and upstream's text: every line is made safe
        // for a terminal (JSON above escapes its own).
        let say = |line: String| crate::outln!("{}", crate::error::sanitize(&line));
        say(format!("{} in {}/{repo}:", tool.name, reg.host));
        if order.is_empty() {
            say("  (none)".into());
        }
        for v in &order {
            let (platforms, index) = &held[v];
            say(format!(
                "  {v}  {}{}",
                platforms.join(" "),
                if *index { "" } else { "  (no index)" }
            ));
        }
        if let Some(releases) = &upstream {
            say(format!("upstream ({}):", tool.github_repo));
            for r in releases {
                let mark = if held.contains_key(&r.version) {
                    "in registry"
                } else {
                    "MISSING"
                };
                say(format!("  {}  {mark}", r.version));
            }
        }
    }
    let mut m = Metrics::default();
    m.time("versions", started.elapsed());
    crate::operate::metrics::record_quietly(&ctx.cache_dir, &m);
    Ok(())
}
