use std::time::Instant;

use crate::cli::{Global, MaterializeArgs};
use crate::error::Result;
use crate::fetch::NetOptions;
use crate::materialize::Link;
use crate::resolve::{self, Artifact, Options};
use crate::source::Source;
use crate::store::{self, Store};

pub fn run(global: &Global, args: &MaterializeArgs) -> Result<()> {
    let started = Instant::now();
    // Validate everything before touching the disk or the network.
    let artifact = Artifact {
        expected: super::parse_expected(&args.sha256, &args.size)?,
        layout: super::parse_layout(&args.layout)?,
    };
    let sources = args
        .sources
        .iter()
        .map(|s| s.parse())
        .collect::<Result<Vec<Source>>>()?;
    let link: Link = args.link.parse()?;
    let store = Store::new(store::cache_dir(global.cache_dir.as_deref(), None)?);
    let opts = Options {
        offline: args.offline,
        net: NetOptions::from_env(global.plain_http),
    };
    let outcome = resolve::materialize(&store, &artifact, &sources, &opts, &args.out, link)?;
    if args.json {
        let failed: Vec<_> = outcome
            .failed
            .iter()
            .map(|a| serde_json::json!({"source": a.source, "reason": a.reason}))
            .collect();
        let doc = serde_json::json!({
            "sha256": artifact.expected.sha256.hex(),
            "size": artifact.expected.size,
            "out": args.out,
            "tree": outcome.tree,
            "cache": if outcome.cache_hit { "hit" } else { "miss" },
            "source": outcome.source,
            "failed_sources": failed,
            "duration_ms": started.elapsed().as_millis() as u64,
        });
        println!("{doc}");
    }
    Ok(())
}
