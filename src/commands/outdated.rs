use crate::bump;
use crate::cli::{Global, OutdatedArgs};
use crate::error::{Error, Result};
use crate::pins::{self, Pins};
use crate::upstream::Upstream;

pub fn run(global: &Global, args: &OutdatedArgs) -> Result<()> {
    let pins = Pins::load(&pins::locate(args.pins.pins.as_deref())?)?;
    let rows = bump::outdated(&Upstream::configured(global)?, &pins)?;
    let behind: Vec<_> = rows
        .iter()
        .filter(|r| {
            r.latest
                .as_deref()
                .is_some_and(|l| crate::version::compare(l, &r.pinned).is_gt())
        })
        .collect();
    if args.json {
        let doc: Vec<_> = rows
            .iter()
            .map(|r| {
                serde_json::json!({
                    "tool": r.tool, "pinned": r.pinned, "latest": r.latest,
                    "outdated": behind.iter().any(|b| b.tool == r.tool),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(doc));
    } else {
        println!("{:<22} {:<10} {:<10} status", "tool", "pinned", "latest");
        for r in &rows {
            let latest = r.latest.as_deref().unwrap_or("-");
            let status = if behind.iter().any(|b| b.tool == r.tool) {
                format!("outdated: protoreg bump {} {latest}", r.tool)
            } else {
                "current".to_string()
            };
            println!("{:<22} {:<10} {:<10} {status}", r.tool, r.pinned, latest);
        }
    }
    if args.check && !behind.is_empty() {
        return Err(Error::Verification {
            what: "pinned versions".into(),
            expected: "the newest upstream releases".into(),
            actual: format!("{} tool(s) behind", behind.len()),
            hint: "run the `protoreg bump` commands listed above".into(),
        });
    }
    Ok(())
}
