//! Running a binary fresh from upstream (bump's `<binary> --version`, before anyone has
//! reviewed the release) with nothing of the caller's: an empty environment (a fixed PATH,
//! HOME and TMPDIR inside a scratch directory), that scratch directory as its working
//! directory, removed afterwards, stdin closed, its output read concurrently and bounded,
//! and a time limit after which it and its process group are killed.
//!
//! This keeps the caller's secrets (GITHUB_TOKEN, registry passwords) out of its reach by
//! the environment and keeps its files out of the caller's directories; it is not an OS
//! sandbox: the CI job that runs it holds only read permissions (propose-bumps.yml).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::error::{Error, Result};
pub use crate::process::{Ended, Ran};

/// How long an upstream binary may take to answer (`--version` is instant).
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// What is kept of each of its stdout and stderr; the rest is read and dropped.
pub const OUTPUT_LIMIT: usize = 64 << 10;
/// The only PATH it sees: the system's own tools, nothing of the caller's.
#[cfg(unix)]
const PATH: &str = "/usr/bin:/bin";

/// A directory removed (whatever its modes) when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    /// A fresh directory under the system's temporary directory, named after `what`.
    pub fn new(what: &str) -> Result<Scratch> {
        let dir = std::env::temp_dir().join(crate::pipeline::store::unique_name(what));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
        Ok(Scratch(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        crate::pipeline::store::remove_tree(&self.0);
    }
}

/// Run `program` with `args` in the sandbox, for at most `timeout`, keeping [`OUTPUT_LIMIT`]
/// bytes of each output (more is [`Ended::TooMuchOutput`]: a flood is not a version).
pub fn run(program: &Path, args: &[&str], timeout: Duration) -> Result<Ran> {
    let scratch = Scratch::new("protoreg-run")?;
    let (home, tmp) = (scratch.path().join("home"), scratch.path().join("tmp"));
    for dir in [&home, &tmp] {
        std::fs::create_dir(dir).map_err(|e| Error::io("create", dir, e))?;
    }
    let mut cmd = Command::new(program);
    cmd.args(args).env_clear().current_dir(scratch.path());
    #[cfg(unix)]
    cmd.env("PATH", PATH).env("HOME", &home).env("TMPDIR", &tmp);
    #[cfg(not(unix))]
    {
        // Windows programs need SystemRoot to start at all; it names no secret.
        if let Some(root) = std::env::var_os("SystemRoot") {
            cmd.env("SystemRoot", root);
        }
        cmd.env("USERPROFILE", &home)
            .env("TEMP", &tmp)
            .env("TMP", &tmp);
    }
    crate::process::run(&mut cmd, None, timeout, OUTPUT_LIMIT)
        .map_err(|e| Error::io("run", program, e))
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::time::Instant;

    fn sh(script: &str, timeout: Duration) -> Ran {
        run(Path::new("/bin/sh"), &["-c", script], timeout).unwrap()
    }

    #[test]
    fn nothing_of_the_callers_environment_reaches_it() {
        let ran = sh("env; pwd", TIMEOUT);
        let out = String::from_utf8_lossy(&ran.stdout).to_string();
        assert!(
            matches!(ran.ended, Ended::Exited(s) if s.success()),
            "{ran:?}"
        );
        let names: Vec<&str> = out
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k))
            .collect();
        for name in names {
            assert!(
                ["PATH", "HOME", "TMPDIR", "PWD", "SHLVL", "_", "OLDPWD"].contains(&name),
                "{name} leaked: {out}"
            );
        }
        let cwd = out.lines().last().unwrap_or_default();
        assert!(cwd.contains("protoreg-run-"), "{out}");
        assert!(!Path::new(cwd).exists(), "the scratch directory is removed");
    }

    #[test]
    fn a_flood_is_stopped_at_the_output_limit() {
        // 1 MiB: more than a pipe holds, so an unread pipe would hang it.
        let ran = sh("head -c 1048576 /dev/zero; echo done", TIMEOUT);
        assert!(
            matches!(
                ran.ended,
                Ended::TooMuchOutput {
                    stream: "stdout",
                    ..
                }
            ),
            "{ran:?}"
        );
        assert_eq!(ran.stdout.len(), OUTPUT_LIMIT);
    }

    #[test]
    fn a_hung_program_and_what_it_started_are_killed_at_the_limit() {
        let started = Instant::now();
        // A background child holding the pipes, and a foreground one that never ends.
        let ran = sh("sleep 600 & sleep 600", Duration::from_millis(300));
        assert!(matches!(ran.ended, Ended::TimedOut(_)), "{ran:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        // One that exits at once but leaves a child holding its output: killed too.
        let started = Instant::now();
        let ran = sh("echo hi; sleep 600 &", TIMEOUT);
        assert!(
            matches!(ran.ended, Ended::Exited(s) if s.success()),
            "{ran:?}"
        );
        assert_eq!(ran.stdout, b"hi\n");
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{:?}",
            started.elapsed()
        );
    }
}
