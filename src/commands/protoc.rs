//! `protoreg protoc`: the command line of the rules' protoc actions, with no shell.
//!
//! protoc writes into each `--NAME_out=DIR` but does not create DIR, and Buck2 creates only
//! its parent; a plugin must be one executable, since protoc starts it with no arguments.
//! Rules used `/bin/sh` (or `cmd.exe`) for both, which a minimal executor does not have.
//! Here protoreg makes the directories and runs protoc; a plugin that is a command line
//! (`node protoc-gen-es`) is given to protoc as protoreg itself, which, started that way,
//! runs the command in its place ([`as_plugin`]). With `--prune-descriptor-sets`, protoc
//! gets of the `--descriptor_set_in` sets only the files its inputs import
//! ([`descriptor_closure`]); `--dep-file` names the sets those come from, for Buck2.

use std::ffi::{OsStr, OsString};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use super::descriptor_closure::{self, ProtoPath, Request};
use crate::cli::ProtocArgs;
use crate::error::{Error, IoContext, Result};

/// Set on protoc's environment when a plugin is a command line: the JSON array of it.
const PLUGIN_COMMAND: &str = "PROTOREG_PLUGIN_COMMAND";

/// Flags whose value is a file, not an output directory.
const FILE_OUTPUTS: &[&str] = &["--descriptor_set_out", "--dependency_out"];

/// An `--NAME_out` ending so is one archive protoc writes whole (Java's `.srcjar`).
const ARCHIVE_OUTPUTS: &[&str] = &[".zip", ".jar", ".srcjar"];

pub fn run(args: &ProtocArgs) -> Result<()> {
    let (protoc, rest) = args.protoc.split_first().ok_or_else(|| {
        Error::input(
            "no protoc to run",
            "give protoc and its arguments after `--`: protoreg protoc -- PROTOC ARGS…",
        )
    })?;
    for dir in rest.iter().filter_map(|a| out_dir(a)) {
        std::fs::create_dir_all(dir).ctx("create the output directory", dir)?;
    }
    let mut cmd = Command::new(protoc);
    let read = (args.prune_descriptor_sets || args.dep_file.is_some())
        .then(|| Arguments::read(rest))
        .flatten();
    // Kept until protoc has run: the pruned set and the argument file naming it.
    let pruned = read
        .as_ref()
        .filter(|_| args.prune_descriptor_sets)
        .and_then(prune);
    match &pruned {
        Some(p) => cmd.args(&p.args),
        None => cmd.args(rest),
    };
    if let Some(dep_file) = &args.dep_file {
        // Every set, when it could not prune: a dep file must never leave out one protoc read.
        let used = match (&pruned, &read) {
            (Some(p), _) => &p.used,
            (None, Some(read)) if read.complete() => &read.sets,
            _ => {
                return Err(Error::input(
                    "protoreg cannot tell which descriptor sets protoc reads, for --dep-file",
                    "give protoc's arguments as UTF-8 text (on the command line or in an @FILE, one per line), sets as --descriptor_set_in=FILE and roots as --proto_path=DIR",
                ))
            }
        };
        // Buck2's dep file: the inputs used, one per line, from the project root.
        let lines: String = used.iter().map(|s| s.replace('\\', "/") + "\n").collect();
        std::fs::write(dep_file, lines).ctx("write the dep file", dep_file)?;
    }
    if let Some(spec) = &args.plugin_command {
        let (name, program) = spec.split_once('=').filter(|(n, p)| valid_name(n) && !p.is_empty()).ok_or_else(|| {
            Error::input(
                format!("--plugin-command `{spec}` is not NAME=PROGRAM"),
                "give the plugin's name and its program, e.g. --plugin-command es=node --plugin-arg protoc-gen-es.js",
            )
        })?;
        let me = std::env::current_exe().ctx("find protoreg's own path", "/proc/self/exe")?;
        let mut plugin = OsString::from(format!("--plugin=protoc-gen-{name}="));
        plugin.push(me.as_os_str());
        cmd.arg(plugin);
        let line: Vec<&str> = std::iter::once(program)
            .chain(args.plugin_arg.iter().map(String::as_str))
            .collect();
        cmd.env(PLUGIN_COMMAND, serde_json::Value::from(line).to_string());
    }
    let status = cmd
        .status()
        .ctx("run protoc", Path::new(protoc.as_os_str()))?;
    if status.success() {
        return Ok(());
    }
    // protoc has said what failed; its status is the action's.
    std::process::exit(status.code().unwrap_or(1));
}

/// protoc's arguments as protoc reads them (each `@FILE` replaced by its lines), and what
/// they name: the `--proto_path` roots, the descriptor sets, the inputs.
struct Arguments {
    args: Vec<String>,
    from_file: bool,
    proto_paths: Vec<ProtoPath>,
    sets: Vec<String>,
    inputs: Vec<String>,
}

impl Arguments {
    /// None when an argument is not text, or an `@FILE` cannot be read.
    fn read(original: &[OsString]) -> Option<Arguments> {
        let args = expand(original)?;
        let separator = if cfg!(windows) { ';' } else { ':' };
        let list = |value: &str| -> Vec<String> {
            value
                .split(separator)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        };
        let (mut proto_paths, mut sets, mut inputs) = (Vec::new(), Vec::new(), Vec::new());
        for arg in &args {
            if let Some(value) = arg.strip_prefix("--descriptor_set_in=") {
                sets.extend(list(value));
            } else if let Some(value) = arg.strip_prefix("--proto_path=") {
                proto_paths.extend(list(value).iter().map(|p| ProtoPath::parse(p)));
            } else if !arg.starts_with('-') {
                inputs.push(arg.clone());
            }
        }
        Some(Arguments {
            from_file: original
                .iter()
                .any(|a| a.to_str().is_some_and(|a| a.starts_with('@'))),
            args,
            proto_paths,
            sets,
            inputs,
        })
    }

    /// Whether a spelling the rules do not use names a set or a root (`--proto_path DIR`,
    /// `-IDIR`, `--descriptor_set_in FILE`): then this reading of them is not complete.
    fn complete(&self) -> bool {
        !self
            .args
            .iter()
            .any(|a| a == "--descriptor_set_in" || a == "--proto_path" || a.starts_with("-I"))
    }
}

/// protoc's arguments with `--descriptor_set_in` narrowed to what the inputs import
/// ([`descriptor_closure`]): one temporary set in its place, and, when the arguments came in
/// an `@FILE`, a temporary one of those. None when the arguments are not ones this can read
/// for sure, or a temporary file cannot be written: then protoc gets its arguments as they
/// were (pruning saves time; it must never fail a build).
struct Pruned {
    args: Vec<OsString>,
    /// The sets that hold a file the inputs reach.
    used: Vec<String>,
    /// Removed when dropped, after protoc has run.
    _files: Vec<tempfile::NamedTempFile>,
}

fn prune(read: &Arguments) -> Option<Pruned> {
    if read.sets.is_empty() || !read.complete() {
        return None;
    }
    let sets: Vec<Vec<u8>> = read
        .sets
        .iter()
        .map(std::fs::read)
        .collect::<Result<_, _>>()
        .ok()?;
    let closure = descriptor_closure::closure(&Request {
        proto_paths: &read.proto_paths,
        inputs: &read.inputs,
        sets: &sets,
    })?;
    // Buck2 gives each action a scratch directory of its own (locally also its TMPDIR).
    let dir = std::env::var_os("BUCK_SCRATCH_PATH")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let temporary = |suffix: &str, bytes: &[u8]| {
        let mut file = tempfile::Builder::new()
            .suffix(suffix)
            .tempfile_in(&dir)
            .ok()?;
        file.write_all(bytes).ok()?;
        Some(file)
    };
    let set = temporary(".binpb", &closure.set)?;
    let mut pruned: Vec<String> = Vec::new();
    let mut replaced = false;
    for arg in &read.args {
        if !arg.starts_with("--descriptor_set_in=") {
            pruned.push(arg.clone());
        } else if !replaced && !closure.set.is_empty() {
            pruned.push(format!("--descriptor_set_in={}", set.path().to_str()?));
            replaced = true;
        }
    }
    let used = closure
        .used_sets
        .iter()
        .map(|&i| read.sets[i].clone())
        .collect();
    if !read.from_file {
        return Some(Pruned {
            args: pruned.into_iter().map(OsString::from).collect(),
            used,
            _files: vec![set],
        });
    }
    let lines: String = pruned.iter().map(|a| format!("{a}\n")).collect();
    let argfile = temporary(".txt", lines.as_bytes())?;
    let mut at = OsString::from("@");
    at.push(argfile.path());
    Some(Pruned {
        args: vec![at],
        used,
        _files: vec![set, argfile],
    })
}

/// `args` with each `@FILE` replaced by its lines, as protoc reads them; None when an
/// argument is not text or cannot go on a line of its own.
fn expand(args: &[OsString]) -> Option<Vec<String>> {
    let mut out = Vec::new();
    for arg in args {
        let arg = arg.to_str()?;
        match arg.strip_prefix('@') {
            Some(file) => {
                let text = std::fs::read_to_string(file).ok()?;
                out.extend(text.lines().map(str::to_string));
            }
            None if arg.contains('\n') => return None,
            None => out.push(arg.to_string()),
        }
    }
    Some(out)
}

/// `protoreg copy-self`: this executable, copied to `out` with its mode (executable).
pub fn copy_self(out: &Path) -> Result<()> {
    let me = std::env::current_exe().ctx("find protoreg's own path", "/proc/self/exe")?;
    std::fs::copy(&me, out).ctx("copy protoreg to", out)?;
    Ok(())
}

/// The directory `arg` names when it is `--NAME_out=[OPTIONS:]DIR`.
fn out_dir(arg: &OsStr) -> Option<&Path> {
    let arg = arg.to_str()?;
    let (flag, value) = arg.split_once('=')?;
    if !flag.starts_with("--") || !flag.ends_with("_out") || FILE_OUTPUTS.contains(&flag) {
        return None;
    }
    // `OPTIONS:DIR`, unless the colon is a Windows drive's (`C:\out`).
    let drive = value.as_bytes().get(1) == Some(&b':')
        && matches!(value.as_bytes().get(2), Some(b'\\' | b'/'));
    let dir = match value.split_once(':') {
        Some((_, dir)) if !drive => dir,
        _ => value,
    };
    let archive = ARCHIVE_OUTPUTS.iter().any(|ext| dir.ends_with(ext));
    (!dir.is_empty() && !archive).then(|| Path::new(dir))
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"_-".contains(&b))
}

/// Started by protoc as a plugin (no arguments, [`PLUGIN_COMMAND`] set): run that command
/// with protoc's stdin and stdout, and return its exit status. None otherwise.
pub fn as_plugin() -> Option<i32> {
    if std::env::args_os().len() != 1 {
        return None;
    }
    let line = std::env::var_os(PLUGIN_COMMAND)?;
    let words: Vec<String> = line
        .to_str()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or_default();
    let Some((program, args)) = words.split_first() else {
        eprintln!("error: {PLUGIN_COMMAND} is not a JSON array of the plugin's command line");
        return Some(2);
    };
    let mut cmd = Command::new(program);
    cmd.args(args).env_remove(PLUGIN_COMMAND);
    let err = crate::sys::exec(&mut cmd);
    eprintln!(
        "error: {}",
        crate::error::sanitize(&format!("failed to run the plugin `{program}`: {err}"))
    );
    Some(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_directories_are_the_out_flags_values() {
        let dir = |a: &str| out_dir(OsStr::new(a)).map(|p| p.to_string_lossy().into_owned());
        assert_eq!(
            dir("--cpp_out=buck-out/gen/cpp"),
            Some("buck-out/gen/cpp".into())
        );
        assert_eq!(dir("--go-grpc_out=out"), Some("out".into()));
        assert_eq!(dir("--cpp_out=lite:out/cpp"), Some("out/cpp".into()));
        assert_eq!(dir("--cpp_out=C:\\out\\cpp"), Some("C:\\out\\cpp".into()));
        assert_eq!(dir("--descriptor_set_out=set.binpb"), None);
        assert_eq!(dir("--java_out=out/weather_java.srcjar"), None);
        assert_eq!(dir("--grpc-java_out=lite:out/grpc.jar"), None);
        assert_eq!(dir("--cpp_out=out/code.zip"), None);
        assert_eq!(dir("--cpp_opt=lite"), None);
        assert_eq!(dir("@args.txt"), None);
        assert_eq!(dir("--cpp_out="), None);
    }
}
