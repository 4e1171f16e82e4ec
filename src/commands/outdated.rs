use crate::cli::{Global, OutdatedArgs};
use crate::error::{Error, Result};
use crate::maintain::bump;
use crate::maintain::pins::{self, Pins};
use crate::maintain::upstream::Upstream;

/// Where a pinned default stands against upstream.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Status {
    Current,
    Outdated,
    /// Upstream lists no release (none at all, or only drafts and pre-releases, or no
    /// release tag this tool's versions are read from): nothing says the pin is current.
    NoRelease,
    /// A static host lists no versions: whether the pin is current is not known, and not
    /// an error (`--check` passes it).
    Unlisted,
}

impl Status {
    fn of(r: &bump::Outdated) -> Status {
        match r.latest.as_deref() {
            None if !r.listed => Status::Unlisted,
            None => Status::NoRelease,
            Some(l) if crate::maintain::version::compare(l, &r.pinned).is_gt() => Status::Outdated,
            Some(_) => Status::Current,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Status::Current => "current",
            Status::Outdated => "outdated",
            Status::NoRelease => "no-release",
            Status::Unlisted => "unlisted",
        }
    }
}

/// The upstream repository `tool`'s releases are listed from, for messages.
fn repo_of(tool: &str) -> String {
    crate::maintain::tools::by_name(tool)
        .map(|t| t.github_repo.to_string())
        .unwrap_or_else(|_| tool.to_string())
}

pub fn run(global: &Global, args: &OutdatedArgs) -> Result<()> {
    let pins = Pins::load(&pins::locate(args.pins.pins.as_deref())?)?;
    let rows = bump::outdated(&Upstream::configured(global)?, &pins)?;
    let status: Vec<Status> = rows.iter().map(Status::of).collect();
    let count = |s: Status| status.iter().filter(|x| **x == s).count();
    let (behind, missing) = (count(Status::Outdated), count(Status::NoRelease));
    if args.json {
        let doc: Vec<_> = rows
            .iter()
            .zip(&status)
            .map(|(r, s)| {
                serde_json::json!({
                    "tool": r.tool, "pinned": r.pinned, "latest": r.latest,
                    "outdated": *s == Status::Outdated,
                    "status": s.name(),
                })
            })
            .collect();
        crate::outln!("{}", serde_json::Value::Array(doc));
    } else {
        crate::outln!("{:<22} {:<10} {:<10} status", "tool", "pinned", "latest");
        for (r, s) in rows.iter().zip(&status) {
            let latest = r.latest.as_deref().unwrap_or("-");
            let status = match s {
                Status::Outdated => format!("outdated: protoreg bump {} {latest}", r.tool),
                Status::Current => "current".to_string(),
                Status::NoRelease => {
                    format!("unknown: upstream ({}) lists no release", repo_of(&r.tool))
                }
                Status::Unlisted => {
                    "unknown: its static host lists no versions (`protoreg bump TOOL VERSION` moves it)".to_string()
                }
            };
            // Versions are upstream's and the pins file's text: made safe for a terminal.
            crate::outln!(
                "{}",
                crate::error::sanitize(&format!(
                    "{:<22} {:<10} {:<10} {status}",
                    r.tool, r.pinned, latest
                ))
            );
        }
    }
    if args.check && (behind > 0 || missing > 0) {
        let mut actual = Vec::new();
        if behind > 0 {
            actual.push(format!("{behind} tool(s) behind"));
        }
        let unlisted: Vec<String> = rows
            .iter()
            .zip(&status)
            .filter(|(_, s)| **s == Status::NoRelease)
            .map(|(r, _)| format!("{} ({})", r.tool, repo_of(&r.tool)))
            .collect();
        if !unlisted.is_empty() {
            actual.push(format!(
                "upstream lists no release of {}",
                unlisted.join(", ")
            ));
        }
        let hint = if missing > 0 {
            "run the `protoreg bump` commands listed above; for a tool upstream lists no release of, check GITHUB_API_URL (or registry.yaml publishing.github_api_url) and `protoreg versions TOOL --upstream`"
        } else {
            "run the `protoreg bump` commands listed above"
        };
        return Err(Error::Verification {
            what: "pinned versions".into(),
            expected: "the newest upstream releases".into(),
            actual: actual.join("; "),
            hint: hint.into(),
        });
    }
    Ok(())
}
