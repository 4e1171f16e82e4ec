//! `protoreg expect-findings`: a `buf_lint_test` with `expect_findings`, with no shell.
//!
//! Runs `buf lint … --error-format json`, shows its report, and passes only when buf exits
//! 100 (it found lint failures) and the set of rules it reports (each JSON line's `"type"`)
//! is exactly the expected set. The test then runs the same on every executor, Windows
//! included, where it used to need `/bin/sh`.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::cli::ExpectFindingsArgs;
use crate::error::{Error, IoContext, Result};
use crate::process::{self, Ended};

/// buf's exit status when it found lint failures.
const FOUND: i32 = 100;
/// A lint report larger than this is not a report.
const LIMIT: usize = 16 << 20;
/// Buck2 bounds a test's time; this only keeps a wedged buf from outliving it.
const DEADLINE: Duration = Duration::from_secs(3600);

pub fn run(args: &ExpectFindingsArgs) -> Result<()> {
    let (buf, rest) = args.command.split_first().ok_or_else(|| {
        Error::input(
            "no buf command to run",
            "give the buf lint command after `--`: protoreg expect-findings --rule R -- BUF lint …",
        )
    })?;
    let expected: BTreeSet<&str> = args.rules.iter().map(String::as_str).collect();
    let ran = process::run(Command::new(buf).args(rest), None, DEADLINE, LIMIT)
        .ctx("run buf", Path::new(buf))?;
    // buf's report, as it wrote it, for whoever reads the test's output.
    crate::out!("{}", String::from_utf8_lossy(&ran.stdout));
    eprint!("{}", String::from_utf8_lossy(&ran.stderr));
    let want = expected.iter().copied().collect::<Vec<_>>().join(" ");
    let status = match ran.ended {
        Ended::Exited(status) => status.code(),
        Ended::TimedOut(after) => {
            eprintln!("buf lint did not finish within {after:?}");
            std::process::exit(1);
        }
        Ended::TooMuchOutput { stream, limit } => {
            eprintln!("buf lint wrote more than {limit} bytes on {stream}");
            std::process::exit(1);
        }
    };
    if status != Some(FOUND) {
        let how = status.map_or("by a signal".to_string(), |c| c.to_string());
        eprintln!("buf lint exited {how}, not {FOUND} (findings); expected exactly: {want}");
        std::process::exit(1);
    }
    let found = rules_in(&ran.stdout);
    let found_text = found.iter().cloned().collect::<Vec<_>>().join(" ");
    if found.iter().map(String::as_str).collect::<BTreeSet<_>>() != expected {
        eprintln!("buf lint reported: {found_text}; expected exactly: {want}");
        std::process::exit(1);
    }
    crate::outln!("buf lint reported exactly the expected findings: {want}");
    Ok(())
}

/// The `"type"` of each JSON line of a `--error-format json` report.
fn rules_in(report: &[u8]) -> BTreeSet<String> {
    String::from_utf8_lossy(report)
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter_map(|v| v.get("type")?.as_str().map(str::to_string))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rules_are_each_json_lines_type() {
        let report = b"{\"path\":\"a.proto\",\"type\":\"FIELD_LOWER_SNAKE_CASE\"}\nnot json\n{\"type\":\"ENUM_ZERO_VALUE_SUFFIX\"}\n{\"type\":\"FIELD_LOWER_SNAKE_CASE\"}\n";
        let rules: Vec<String> = rules_in(report).into_iter().collect();
        assert_eq!(rules, ["ENUM_ZERO_VALUE_SUFFIX", "FIELD_LOWER_SNAKE_CASE"]);
    }
}
