//! `protoreg protoc`: the code-generation action's command line, with no shell.
//!
//! protoc writes into each `--NAME_out=DIR` but does not create DIR, and Buck2 creates only
//! its parent; a plugin must be one executable, since protoc starts it with no arguments.
//! Rules used `/bin/sh` (or `cmd.exe`) for both, which a minimal executor does not have.
//! Here protoreg makes the directories and runs protoc; a plugin that is a command line
//! (`node protoc-gen-es`) is given to protoc as protoreg itself, which, started that way,
//! runs the command in its place ([`as_plugin`]).

use std::ffi::{OsStr, OsString};
use std::path::Path;
use std::process::Command;

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
    cmd.args(rest);
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
