//! `protoreg sizes`: record the exact size of every pin that has none. Buck2 defers a
//! `download_file` only when it knows the size, so a pin with a size costs nothing on a build
//! whose results a remote cache already holds. A size is written only as the byte count of
//! bytes that matched the pin's sha256: each artifact is found in the cache or fetched (the
//! configured registries, then its URL), verified and counted, never taken from a header.

use std::collections::BTreeSet;

use crate::cli::{Global, SizesArgs};
use crate::config::{self, Config};
use crate::error::{Error, Result};
use crate::maintain::bump;
use crate::maintain::pins::{self, Pins};
use crate::maintain::tools;
use crate::pipeline::fetch::NetOptions;
use crate::pipeline::resolve::{self, Artifact, Options};
use crate::pipeline::store::{self, Store};
use crate::platform;

pub fn run(global: &Global, args: &SizesArgs) -> Result<()> {
    let path = pins::locate(args.pins.pins.as_deref())?;
    let old_text = Pins::read_text(&path)?;
    let current = Pins::parse(&old_text, &path)?;
    for name in &args.tools {
        if !current.pins.contains_key(name) {
            return Err(Error::input(
                format!("`{name}` has no pins in `{}`", path.display()),
                "name a tool of the pins file, or none for every tool",
            ));
        }
    }
    let wanted = |tool: &str| args.tools.is_empty() || args.tools.iter().any(|t| t == tool);
    let config = match config::locate(global.config.as_deref()) {
        Some(_) => Some(Config::load(global.config.as_deref(), global.plain_http)?),
        None => None,
    };
    let store = Store::new(store::cache_dir(
        global.cache_dir.as_deref(),
        config
            .as_ref()
            .and_then(|c| c.cache.local_cache_dir.as_deref()),
    )?);
    let max_unsized = crate::pipeline::verify::max_unsized_bytes()?;
    crate::settings::check()?;
    let _in_use = crate::operate::cleanup::use_guard(store.root());
    let mut next = current.clone();
    let mut touched = BTreeSet::new();
    let mut recorded = 0usize;
    for (tool_name, versions) in &current.pins {
        if !wanted(tool_name) {
            continue;
        }
        let tool = tools::by_name(tool_name)?;
        for (version, platforms) in versions {
            for (plat_name, pin) in platforms {
                if pin.size.is_some() {
                    continue;
                }
                let plat = platform::by_name(plat_name)?;
                let artifact = Artifact {
                    expected: pin.expected(),
                    layout: pins::layout(tool, version, pin.format, plat),
                };
                let mut net = NetOptions::from_env(global.plain_http)?;
                let mut sources = Vec::new();
                if let Some(config) = &config {
                    (sources, net.hosts) = config::registry_sources(config, tool)?;
                }
                sources.push(pin.url.parse()?);
                let label = format!("{tool_name} {version} {plat_name}");
                let size = match store.lookup(&store.blob_path(&pin.sha256)) {
                    // The cache keeps a blob only once it matched its sha256.
                    Some(blob) => std::fs::metadata(&blob)
                        .map_err(|e| Error::io("inspect", &blob, e))?
                        .len(),
                    None => {
                        let opts = Options {
                            offline: false,
                            net,
                            max_unsized,
                            progress: crate::progress::Progress::detect(global.quiet, false),
                            label: label.clone(),
                        };
                        fetched_size(&store, &artifact, &sources, &opts)?
                    }
                };
                if let Some(slot) = next
                    .pins
                    .get_mut(tool_name)
                    .and_then(|v| v.get_mut(version))
                    .and_then(|p| p.get_mut(plat_name))
                {
                    slot.size = Some(size);
                }
                touched.insert((tool_name.clone(), version.clone()));
                recorded += 1;
                if !global.quiet {
                    eprintln!("{label}: {size} bytes");
                }
            }
        }
    }
    for (tool, version) in &touched {
        if let Some(text) = next
            .provenance
            .get_mut(tool)
            .and_then(|v| v.get_mut(version))
        {
            text.push_str(" Sizes: the byte counts of the downloads that matched these sha256 values (protoreg sizes).");
        }
    }
    let new_text = next.render();
    if args.dry_run {
        crate::out!("{}", bump::diff(&old_text, &new_text));
        return Ok(());
    }
    if new_text == old_text {
        eprintln!("every pin has its size; nothing to change");
        return Ok(());
    }
    bump::write(&path, &next)?;
    eprintln!("recorded {recorded} sizes in {}", path.display());
    Ok(())
}

/// The verified size of `artifact`, fetched into the cache now. Its tree may already be
/// cached without the blob (cleanup keeps trees): then the bytes are fetched into a scratch
/// cache, where nothing is.
fn fetched_size(
    store: &Store,
    artifact: &Artifact,
    sources: &[crate::pipeline::source::Source],
    opts: &Options,
) -> Result<u64> {
    if let Some(size) = resolve::ensure_tree(store, artifact, sources, opts)?.size {
        return Ok(size);
    }
    let scratch = crate::pipeline::store::Scratch::new("protoreg-sizes")?;
    let fresh = Store::new(scratch.path().join("cache"));
    resolve::ensure_tree(&fresh, artifact, sources, opts)?
        .size
        .ok_or_else(|| Error::Verification {
            what: "the size of a fetched artifact".into(),
            expected: "its byte count".into(),
            actual: "none".into(),
            hint: "report this: a fetch into an empty cache counts its bytes".into(),
        })
}
