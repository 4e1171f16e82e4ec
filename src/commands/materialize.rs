use std::time::Instant;

use crate::cli::{Global, MaterializeArgs};
use crate::error::{Error, Result};
use std::path::PathBuf;

use crate::config::{self, Config};
use crate::maintain::pins::{self, Pins};
use crate::maintain::tools;
use crate::pipeline::fetch::{HostAccess, NetOptions};
use crate::pipeline::materialize::Link;
use crate::pipeline::resolve::{self, Artifact, Options};
use crate::pipeline::source::Source;
use crate::pipeline::store::{self, Store};
use crate::platform;

pub fn run(global: &Global, args: &MaterializeArgs) -> Result<()> {
    let started = Instant::now();
    if let Some(bundle) = &args.bundle {
        return crate::commands::bundle::materialize(global, args, bundle);
    }
    if args.platform.is_some() && args.tool.is_none() {
        return Err(Error::input(
            "--platform needs a TOOL or --bundle",
            "drop --platform: a --sha256 pin names one artifact already",
        ));
    }
    // Validate everything before touching the disk or the network.
    let max_unsized = crate::pipeline::verify::max_unsized_bytes()?;
    let mut sources = args
        .sources
        .iter()
        .map(|s| s.parse())
        .collect::<Result<Vec<Source>>>()?;
    crate::settings::check()?;
    let mut net = NetOptions::from_env(global.plain_http)?;
    let mut config_cache_dir = None;
    // registry.yaml's security.audit_log, when a configuration is read: every command's
    // records go where the operator said.
    let mut audit_log = None;
    let artifact = match &args.tool {
        Some(spec) => {
            let pinned = pinned(global, args, spec)?;
            sources.extend(pinned.sources);
            net.hosts = pinned.hosts;
            config_cache_dir = pinned.cache_dir;
            audit_log = pinned.audit_log;
            pinned.artifact
        }
        None => Artifact {
            expected: super::parse_expected(
                args.sha256.as_deref().unwrap_or_default(),
                args.size.as_deref(),
            )?,
            layout: super::parse_layout(&args.layout)?,
        },
    };
    // registry.yaml's cache.local_cache_dir counts when a configuration is named (--config or
    // PROTOREG_CONFIG); a plain --sha256 run reads no file it was not pointed at.
    if config_cache_dir.is_none() && global.config.is_some() {
        let config = Config::load(global.config.as_deref(), global.plain_http)?;
        config_cache_dir = config.cache.local_cache_dir;
        audit_log = audit_log.or(config.security.audit_log);
    }
    let link: Link = args.link.parse()?;
    let store = Store::new(store::cache_dir(
        global.cache_dir.as_deref(),
        config_cache_dir.as_deref(),
    )?);
    let opts = Options {
        offline: args.offline,
        net,
        max_unsized,
        progress: crate::progress::Progress::detect(global.quiet, args.json),
        label: match &args.tool {
            Some(spec) => format!("{spec} {}", args.platform.as_deref().unwrap_or_default())
                .trim_end()
                .to_string(),
            None => format!("sha256:{:.12}", artifact.expected.sha256.to_string()),
        },
    };
    // Shared with every build; `cleanup` takes it exclusively, so it never removes an entry
    // this run is about to copy.
    let _in_use = crate::operate::cleanup::use_guard(store.root());
    let result = resolve::materialize(&store, &artifact, &sources, &opts, &args.out, link);
    crate::operate::telemetry::materialized(
        store.root(),
        audit_log.as_deref(),
        &artifact.expected,
        &result,
        started.elapsed(),
    );
    let outcome = result?;
    if args.json {
        let failed: Vec<_> = outcome
            .failed
            .iter()
            .map(|a| serde_json::json!({"source": a.source, "reason": a.reason}))
            .collect();
        let doc = serde_json::json!({
            "sha256": artifact.expected.sha256.hex(),
            // The pinned size; else the bytes this run verified; else (a tree cache hit of a
            // pin of unknown size) null.
            "size": artifact.expected.size.or(outcome.size),
            "out": args.out,
            "tree": outcome.tree,
            "cache": if outcome.cache_hit { "hit" } else { "miss" },
            "source": outcome.source,
            // How the files reached --out: clone, copy, hardlink (or mixed, none).
            "link": outcome.linked.method(),
            "failed_sources": failed,
            "duration_ms": started.elapsed().as_millis() as u64,
        });
        crate::outln!("{doc}");
    }
    Ok(())
}

/// What `materialize TOOL[@VERSION]` resolves to.
struct Pinned {
    artifact: Artifact,
    /// The configured registries (primary, then backups), by digest; then the pin's URL.
    sources: Vec<Source>,
    hosts: Vec<HostAccess>,
    cache_dir: Option<PathBuf>,
    audit_log: Option<PathBuf>,
}

/// The artifact from the pins file; the sources from registry.yaml (when there is one: the
/// `--config` file or ./registry.yaml) and the pin's upstream URL, after any --source.
fn pinned(global: &Global, args: &MaterializeArgs, spec: &str) -> Result<Pinned> {
    if args.layout.format.is_some()
        || args.layout.strip_prefix.is_some()
        || !args.layout.executables.is_empty()
    {
        return Err(Error::input(
            "--format, --strip-prefix and --executable come from the pins when a TOOL is given",
            "drop them, or materialize by --sha256/--size/--format instead of TOOL",
        ));
    }
    let (name, version) = match spec.split_once('@') {
        Some((n, v)) => (n, Some(v)),
        None => (spec, None),
    };
    let tool = tools::by_name(name)?;
    let plat = match &args.platform {
        Some(p) => platform::by_name(p)?,
        // An archive of .proto sources is the same everywhere.
        None if tool.kind == tools::Kind::Protos => &platform::ANY,
        None => platform::host()?,
    };
    let pins = Pins::load(&pins::locate(args.pins.pins.as_deref())?)?;
    let (version, pin) = pins.get(&tool.name, version, plat.name)?;
    let artifact = Artifact {
        expected: pin.expected(),
        layout: pins::layout(tool, &version, pin.format, plat),
    };
    let mut sources = Vec::new();
    let mut hosts = Vec::new();
    let mut cache_dir = None;
    let mut audit_log = None;
    if config::locate(global.config.as_deref()).is_some() {
        let config = Config::load(global.config.as_deref(), global.plain_http)?;
        (sources, hosts) = config::registry_sources(&config, tool)?;
        cache_dir = config.cache.local_cache_dir.clone();
        audit_log = config.security.audit_log.clone();
    }
    sources.push(pin.url.parse()?);
    Ok(Pinned {
        artifact,
        sources,
        hosts,
        cache_dir,
        audit_log,
    })
}
