//! `publish`: choose tools, versions and platforms, plan, then publish (or print the plan).

use std::time::Instant;

use crate::cli::{Global, PublishArgs};
use crate::commands::context::Context;
use crate::config::Config;
use crate::error::{Bytes, Error, Result};
use crate::maintain::pins::{self, Pins};
use crate::maintain::tools::{self, Tool};
use crate::maintain::upstream::Upstream;
use crate::operate::metrics::Metrics;
use crate::operate::publish::{Action, Item, Outcome, Publisher, Report, Selection};
use crate::platform::{self, Platform};

/// The tools `--tool` names. `all` is every tool whose repository has `auto_publish`, and
/// nothing when `publishing.auto_publish` is false.
fn selected_tools(
    config: &Config,
    name: &str,
    notes: &mut Vec<String>,
) -> Result<Vec<&'static Tool>> {
    if name != "all" {
        return Ok(vec![config.tool(name)?]);
    }
    if !config.publishing.auto_publish {
        notes.push("publishing.auto_publish is false: `--tool all` publishes nothing (name a tool to publish it)".into());
        return Ok(vec![]);
    }
    let mut out = Vec::new();
    for t in tools::all()? {
        let category = Config::category_of(t);
        if config
            .repositories
            .get(category)
            .is_some_and(|r| r.auto_publish)
        {
            out.push(config.tool(&t.name)?);
        } else {
            notes.push(format!(
                "{}: repositories.{category}.auto_publish is false, skipped",
                t.name
            ));
        }
    }
    Ok(out)
}

fn platforms_for(
    config: &Config,
    tool: &Tool,
    filter: &[&'static Platform],
) -> Vec<&'static Platform> {
    config
        .platforms_of(tool)
        .into_iter()
        .filter(|p| filter.is_empty() || filter.iter().any(|f| f.name == p.name))
        .collect()
}

pub fn run(global: &Global, args: &PublishArgs) -> Result<()> {
    let started = Instant::now();
    let mut ctx = Context::load(global)?;
    let mut report = Report::default();
    let filter: Vec<&'static Platform> = args
        .platforms
        .iter()
        .map(|p| platform::by_name(p))
        .collect::<Result<_>>()?;
    let selection = match (args.versions, args.version.is_empty()) {
        (Some(0), _) => {
            return Err(Error::input(
                "--versions 0 publishes nothing",
                "give --versions 1 or more",
            ))
        }
        (Some(n), _) => Selection::Newest(n),
        (None, false) => Selection::Exact(args.version.clone()),
        (None, true) => Selection::Newest(1),
    };
    let tools = selected_tools(&ctx.config, &args.tool, &mut report.notes)?;
    let with_bundles = args.bundles || args.tool == "all";
    let pins = match pins::locate(None) {
        Ok(p) => Some(Pins::load(&p)?),
        Err(_) => None,
    };
    let reg = ctx.config.primary.clone();
    let client = ctx.connect(&reg)?;
    let store = ctx.store();
    store.init()?;
    let _in_use = crate::operate::cleanup::use_guard(store.root());
    let upstream = Upstream::new(ctx.config.publishing.github_api_url.as_deref())?;
    let config = ctx.config.clone();
    let progress = crate::progress::Progress::detect(global.quiet, args.json);
    let publisher = Publisher {
        config: &config,
        registry: &reg,
        client: &client,
        upstream: &upstream,
        store: &store,
        audit: &ctx.audit,
        pins: pins.as_ref(),
        progress: &progress,
    };

    // Plan: the selected releases, plus every version a bundle needs.
    let mut items: Vec<Item> = Vec::new();
    let mut planned: Vec<(String, String)> = Vec::new();
    let plan_one = |tool: &'static Tool,
                    release: &crate::maintain::upstream::Release,
                    items: &mut Vec<Item>,
                    notes: &mut Vec<String>|
     -> Result<()> {
        let platforms = platforms_for(&config, tool, &filter);
        if platforms.is_empty() {
            notes.push(format!(
                "{}: none of the requested platforms is shipped",
                tool.name
            ));
            return Ok(());
        }
        items.extend(publisher.plan(
            tool,
            release,
            &platforms,
            !filter.is_empty() && args.tool != "all",
            notes,
        )?);
        Ok(())
    };
    for &tool in &tools {
        for release in publisher.releases(tool, &selection)? {
            planned.push((tool.name.to_string(), release.version.clone()));
            plan_one(tool, &release, &mut items, &mut report.notes)?;
        }
    }
    if with_bundles {
        for b in config.bundles.values() {
            for (name, version) in &b.tools {
                if planned.iter().any(|(t, v)| t == name && v == version) {
                    continue;
                }
                let tool = config.tool(name)?;
                let release = upstream.release(tool, version)?;
                planned.push((name.clone(), version.clone()));
                plan_one(tool, &release, &mut items, &mut report.notes)?;
            }
        }
    }

    let result = if args.dry_run {
        for i in &items {
            report.outcomes.push(Outcome {
                repository: i.repository.clone(),
                tag: i.tag.clone(),
                asset: i.asset.name.clone(),
                status: match i.action {
                    Action::UpToDate => "up-to-date".into(),
                    Action::Publish => "planned".into(),
                },
                digest: None,
                sha256: i.known.first().map(|(_, d)| d.oci()),
                size: i.asset.size,
                error: None,
            });
        }
        Ok(())
    } else {
        publisher.execute(items, &mut report).and_then(|_| {
            if with_bundles {
                for b in config.bundles.values() {
                    let o = crate::operate::bundle::publish(
                        &config,
                        &reg,
                        &client,
                        b,
                        &ctx.audit,
                        &mut report.counters,
                    )?;
                    report.outcomes.push(o);
                }
            }
            Ok(())
        })
    };
    print_report(&report, args);

    let c = &report.counters;
    let mut m = Metrics::default();
    m.time("publish", started.elapsed());
    m.add("publish_artifacts", c.artifacts_published)
        .add("publish_skipped", c.artifacts_skipped)
        .add("blobs_uploaded", c.blobs_uploaded)
        .add("blobs_skipped", c.blobs_skipped)
        .add("bytes_uploaded", c.bytes_uploaded)
        .add("upload_retries", c.retries)
        .add("verification_failures", c.verification_failures)
        .add("bytes_downloaded", c.bytes_downloaded);
    if result.is_err() {
        m.add("errors", 1);
    }
    crate::operate::metrics::record_quietly(&ctx.cache_dir, &m);
    result
}

fn print_report(report: &Report, args: &PublishArgs) {
    if args.json {
        let mut doc = serde_json::to_value(report).unwrap_or_default();
        doc["dry_run"] = args.dry_run.into();
        crate::outln!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return;
    }
    for note in &report.notes {
        crate::outln!("note: {note}");
    }
    for o in &report.outcomes {
        // The layer's sha256 is the pin (what a user compares); the manifest digest, when
        // this run pushed or found one, follows it.
        let id = match (o.sha256.as_deref(), o.digest.as_deref()) {
            (Some(layer), Some(manifest)) => format!("{layer}  manifest {manifest}"),
            (Some(layer), None) => layer.to_string(),
            // An index has no layer of its own.
            (None, Some(index)) => format!("index {index}"),
            (None, None) => "sha256 known after download".to_string(),
        };
        crate::outln!(
            "{:<18} {}:{}  {}  {}  {id}",
            o.status,
            o.repository,
            o.tag,
            o.asset,
            Bytes(o.size)
        );
        if let Some(e) = &o.error {
            for line in e.lines() {
                crate::outln!("    {line}");
            }
        }
    }
    let c = &report.counters;
    if args.dry_run {
        let n = report
            .outcomes
            .iter()
            .filter(|o| o.status == "planned")
            .count();
        crate::outln!("dry run: {n} artifacts to publish, nothing changed");
    } else {
        crate::outln!(
            "published {} artifacts ({} up to date); blobs: {} uploaded ({}), {} already there; {} downloads, {} retries",
            c.artifacts_published,
            c.artifacts_skipped,
            c.blobs_uploaded,
            Bytes(c.bytes_uploaded),
            c.blobs_skipped,
            c.downloads,
            c.retries
        );
    }
}
