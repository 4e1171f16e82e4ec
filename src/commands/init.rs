//! `protoreg init`: these rules in a Buck2 repository, new or existing.
//!
//! It writes three things, each marked so that a re-run finds and updates its own and
//! nothing else: a block of `.buckconfig` (the `protobuf` git cell at a commit, and the
//! `[protobuf]` section), a block of `toolchains/BUCK` (the toolchains, from the cell's
//! shipped pins with the repository's own merged over them), and `toolchains/pins.bzl`, the
//! repository's own pins for `protoreg bump`, when there is none. With `--workflow`, also
//! .github/workflows/protobuf-bumps.yml, the weekly pull request that moves those pins.
//! Everything is checked before anything is written; a re-run that changes nothing says so.

use std::path::{Path, PathBuf};

use crate::cli::InitArgs;
use crate::error::{Error, Result};
use crate::maintain::pins::Pins;

const BEGIN: &str =
    "# >>> buck2-protobuf: written by `protoreg init`; re-run it to update this block";
const END: &str = "# <<< buck2-protobuf";
/// The first line of the workflow file (`--workflow`), which protoreg owns whole.
const WORKFLOW_MARK: &str = "# >>> buck2-protobuf: written by `protoreg init --workflow`";

/// This project's public repository: the default origin of the cell.
pub const ORIGIN: &str = "https://github.com/birbparty/buck2-protobuf";

/// The commit this protoreg was built from, when its build said (scripts/release-build).
const BUILT_FROM: Option<&str> = option_env!("PROTOREG_GIT_COMMIT");

pub fn run(args: &InitArgs) -> Result<()> {
    let dir = &args.dir;
    if !dir.is_dir() {
        return Err(Error::input(
            format!("`{}` is not a directory", dir.display()),
            "give the root of the Buck2 repository (created with `buck2 init` or empty)",
        ));
    }
    let commit = match args.commit.as_deref().or(BUILT_FROM) {
        Some(c) if c.len() == 40 && c.bytes().all(|b| b.is_ascii_hexdigit()) => c.to_lowercase(),
        Some(c) => {
            return Err(Error::input(
                format!("--commit `{c}` is not a 40-digit git commit"),
                "give the full commit hash of buck2-protobuf to use (`git rev-parse HEAD`)",
            ))
        }
        None => return Err(Error::input(
            "this protoreg was not built from a release, so it names no commit of the rules",
            "give --commit with a commit of buck2-protobuf (its releases' protoreg knows its own)",
        )),
    };
    for (flag, value) in [("--origin", &args.origin), ("--registry", &args.registry)] {
        if value.is_empty() || value.contains(char::is_whitespace) {
            return Err(Error::input(
                format!("{flag} `{value}` is empty or has spaces"),
                "give one URL or HOST/NAMESPACE",
            ));
        }
    }
    let mut plan = vec![
        buckconfig(dir, args, &commit)?,
        toolchains_buck(dir, &args.tools)?,
        own_pins(dir)?,
    ];
    if args.workflow {
        plan.push(workflow(dir)?);
    }
    for change in &plan {
        match &change.write {
            Some(text) => {
                if let Some(parent) = change.path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| Error::io("create", parent, e))?;
                }
                crate::pipeline::store::write_atomic(&change.path, text.as_bytes())?;
                crate::outln!("{}: {}", change.what, change.path.display());
            }
            None => crate::outln!("up to date: {}", change.path.display()),
        }
    }
    if plan.iter().any(|c| c.write.is_some()) {
        crate::outln!(
            "next: `buck2 build //...`; your own pins (toolchains/pins.bzl, over the shipped ones) move with `protoreg bump TOOL VERSION`"
        );
    }
    Ok(())
}

/// One file: what would be written (None: it is as it should be) and what that means.
struct Change {
    path: PathBuf,
    write: Option<String>,
    what: &'static str,
}

/// `text` with the marked block set to `block` (appended when it has none); None when it
/// already holds exactly that. A block opened but not closed is refused: a hand edit.
fn with_block(path: &Path, text: &str, block: &str) -> Result<Option<String>> {
    let marked = format!("{BEGIN}\n{block}{END}\n");
    let Some(start) = text.find(BEGIN) else {
        let sep = if text.is_empty() || text.ends_with("\n\n") {
            ""
        } else if text.ends_with('\n') {
            "\n"
        } else {
            "\n\n"
        };
        return Ok(Some(format!("{text}{sep}{marked}")));
    };
    let Some(end) = text[start..].find(END).map(|e| start + e) else {
        return Err(Error::input(
            format!("`{}` has the buck2-protobuf block's first line but not its last (`{END}`)", path.display()),
            "restore the block's last line or delete the whole block, then run `protoreg init` again",
        ));
    };
    let after = text[end + END.len()..]
        .strip_prefix('\n')
        .unwrap_or(&text[end + END.len()..]);
    let next = format!("{}{marked}{after}", &text[..start]);
    Ok((next != text).then_some(next))
}

fn read_or_empty(path: &Path) -> Result<String> {
    match std::fs::read(path) {
        Ok(bytes) => crate::error::utf8_text(path, bytes, "file"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(Error::io("read", path, e)),
    }
}

/// `text` without the marked block: what the user wrote.
fn outside_block(text: &str) -> String {
    match (text.find(BEGIN), text.find(END)) {
        (Some(s), Some(e)) if e > s => format!("{}{}", &text[..s], &text[e + END.len()..]),
        _ => text.to_string(),
    }
}

/// Does `text`, outside the marked block, have the section `[name]`?
fn has_section(text: &str, name: &str) -> bool {
    let header = format!("[{name}]");
    outside_block(text).lines().any(|l| l.trim() == header)
}

fn buckconfig(dir: &Path, args: &InitArgs, commit: &str) -> Result<Change> {
    let path = dir.join(".buckconfig");
    let text = read_or_empty(&path)?;
    let mut block = String::new();
    let fresh = outside_block(&text).trim().is_empty();
    if fresh {
        // A new repository: Meta's prelude, bundled with Buck2, and the usual cells.
        block.push_str(
            "[cells]\n  root = .\n  prelude = prelude\n  toolchains = toolchains\n  none = none\n\n\
             [cell_aliases]\n  config = prelude\n  ovr_config = prelude\n  fbcode = none\n  fbsource = none\n  fbcode_macros = none\n  buck = none\n\n\
             [external_cells]\n  prelude = bundled\n\n\
             [parser]\n  target_platform_detector_spec = target:root//...->prelude//platforms:default\n\n\
             [build]\n  execution_platforms = prelude//platforms:default\n\n",
        );
    }
    if has_section(&text, "external_cell_protobuf") {
        // Already a cell the user declared: theirs to move.
    } else {
        block.push_str(&format!(
            "# These rules (and their shipped pins) as the `protobuf` cell, at a commit.\n\
             [cells]\n  protobuf = protobuf\n\n\
             [external_cells]\n  protobuf = git\n\n\
             [external_cell_protobuf]\n  git_origin = {}\n  commit_hash = {commit}\n\n",
            args.origin
        ));
    }
    if !has_section(&text, "protobuf") {
        block.push_str(&format!(
            "# How toolchains get protoc, buf and the plugins (keys: @protobuf//prelude/proto/README.md).\n\
             [protobuf]\n  fetch_mode = {}\n  registry = {}\n  plain_http = {}\n  protoreg = {}\n",
            args.fetch_mode, args.registry, args.plain_http, args.protoreg
        ));
    }
    Ok(Change {
        write: with_block(&path, &text, &block)?,
        what: written(&text),
        path,
    })
}

/// What writing the block into `text` does.
fn written(text: &str) -> &'static str {
    if text.is_empty() {
        "created"
    } else if text.contains(BEGIN) {
        "updated the buck2-protobuf block of"
    } else {
        "added the buck2-protobuf block to"
    }
}

fn toolchains_buck(dir: &Path, tools: &[String]) -> Result<Change> {
    let path = dir.join("toolchains/BUCK");
    let text = read_or_empty(&path)?;
    for t in tools {
        if t.is_empty()
            || !t
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        {
            return Err(Error::input(
                format!("--tool `{t}` is not a tool name"),
                "name tools of the shipped catalogue, e.g. --tool protoc --tool buf",
            ));
        }
    }
    let shipped = if tools.is_empty() {
        "PROTOBUF_SHIPPED_PINS".to_string()
    } else {
        let list: Vec<String> = tools.iter().map(|t| format!("\"{t}\"")).collect();
        format!(
            "{{t: v for t, v in PROTOBUF_SHIPPED_PINS.items() if t in [{}]}}",
            list.join(", ")
        )
    };
    let block = format!(
        "load(\"@protobuf//prelude/proto:toolchains.bzl\", \"merge_pins\", \"protobuf_toolchains\")\n\
         load(\"@protobuf//toolchains:pins.bzl\", PROTOBUF_SHIPPED_DEFAULTS = \"DEFAULTS\", PROTOBUF_SHIPPED_PINS = \"PINS\", PROTOBUF_PLATFORMS = \"PLATFORMS\")\n\
         load(\"@protobuf//toolchains:tools.bzl\", PROTOBUF_SHIPPED_TOOLS = \"TOOLS\")\n\
         load(\":pins.bzl\", PROTOBUF_DEFAULTS = \"DEFAULTS\", PROTOBUF_PINS = \"PINS\")\n\n\
         # The cell's shipped pins, with this repository's own (toolchains/pins.bzl, moved by\n\
         # `protoreg bump`) winning per tool and version.\n\
         protobuf_toolchains(\n    pins = merge_pins({shipped}, PROTOBUF_PINS),\n    tools = PROTOBUF_SHIPPED_TOOLS,\n    defaults = PROTOBUF_SHIPPED_DEFAULTS | PROTOBUF_DEFAULTS,\n    platforms = PROTOBUF_PLATFORMS,\n)\n"
    );
    Ok(Change {
        write: with_block(&path, &text, &block)?,
        what: written(&text),
        path,
    })
}

/// The repository's own pins: an empty pins file unless there is one (a pins file protoreg
/// reads is kept as it is; anything else at that path is refused).
fn own_pins(dir: &Path) -> Result<Change> {
    let path = dir.join("toolchains/pins.bzl");
    if path.exists() {
        Pins::load(&path).map_err(|e| {
            Error::input(
                format!(
                    "`{}` exists and is not a pins file protoreg reads: {}",
                    path.display(),
                    e.summary()
                ),
                "move it aside (toolchains/BUCK loads your own pins from there), then run `protoreg init` again",
            )
        })?;
        return Ok(Change {
            path,
            write: None,
            what: "kept",
        });
    }
    Ok(Change {
        path,
        write: Some(Pins::default().render()),
        what: "created",
    })
}

/// The weekly bump workflow, whole: a file of protoreg's (its first line says so) is brought
/// up to date; any other file at that path is the user's and is refused.
fn workflow(dir: &Path) -> Result<Change> {
    const TEMPLATE: &str = include_str!("../../.github/workflow-templates/protobuf-bumps.yml");
    let path = dir.join(".github/workflows/protobuf-bumps.yml");
    let text = read_or_empty(&path)?;
    if !text.is_empty() && !text.starts_with(WORKFLOW_MARK) {
        return Err(Error::input(
            format!(
                "`{}` exists and was not written by `protoreg init`",
                path.display()
            ),
            "move it aside (or leave out --workflow), then run `protoreg init` again",
        ));
    }
    Ok(Change {
        write: (text != TEMPLATE).then(|| TEMPLATE.to_string()),
        what: if text.is_empty() {
            "created"
        } else {
            "updated"
        },
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_block_is_appended_once_then_replaced_in_place() {
        let p = Path::new("x");
        let first = with_block(p, "user = 1\n", "a\n").unwrap().unwrap();
        assert_eq!(first, format!("user = 1\n\n{BEGIN}\na\n{END}\n"));
        assert_eq!(with_block(p, &first, "a\n").unwrap(), None);
        let moved = format!("{first}after\n");
        let second = with_block(p, &moved, "b\n").unwrap().unwrap();
        assert_eq!(second, format!("user = 1\n\n{BEGIN}\nb\n{END}\nafter\n"));
        assert!(with_block(p, &format!("{BEGIN}\nhalf\n"), "a\n").is_err());
    }
}
