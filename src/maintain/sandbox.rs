//! Running a binary fresh from upstream (bump's `<binary> --version`, before anyone has
//! reviewed the release) with nothing of the caller's: an empty environment (a fixed PATH,
//! HOME and TMPDIR inside a scratch directory), that scratch directory as its working
//! directory, removed afterwards, stdin closed, its output read concurrently and bounded,
//! and a time limit after which it and its process group are killed.
//!
//! This keeps the caller's secrets (GITHUB_TOKEN, registry passwords) out of its reach by
//! the environment and keeps its files out of the caller's directories; it is not an OS
//! sandbox: the CI job that runs it holds only read permissions (propose-bumps.yml).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};

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

/// How a sandboxed run ended.
#[derive(Debug)]
pub enum Ended {
    Exited(ExitStatus),
    /// Still running at the time limit: killed, with its process group.
    TimedOut(Duration),
}

/// What a sandboxed run left: how it ended and the first [`OUTPUT_LIMIT`] bytes of each of
/// its stdout and stderr.
#[derive(Debug)]
pub struct Ran {
    pub ended: Ended,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Run `program` with `args` in the sandbox, for at most `timeout`.
pub fn run(program: &Path, args: &[&str], timeout: Duration) -> Result<Ran> {
    let scratch = Scratch::new("protoreg-run")?;
    let (home, tmp) = (scratch.path().join("home"), scratch.path().join("tmp"));
    for dir in [&home, &tmp] {
        std::fs::create_dir(dir).map_err(|e| Error::io("create", dir, e))?;
    }
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env_clear()
        .current_dir(scratch.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
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
    crate::sys::own_process_group(&mut cmd);
    let mut child = cmd.spawn().map_err(|e| Error::io("run", program, e))?;
    let (tx, rx) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
        capture(out, 1, tx.clone());
    }
    if let Some(err) = child.stderr.take() {
        capture(err, 2, tx.clone());
    }
    drop(tx);
    let started = Instant::now();
    let ended = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ended::Exited(status),
            Ok(None) if started.elapsed() >= timeout => {
                // Not reaped yet: the group's id is still its own.
                crate::sys::kill_group(&mut child);
                break Ended::TimedOut(timeout);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(10)),
            Err(e) => {
                crate::sys::kill_group(&mut child);
                return Err(Error::io("wait for", program, e));
            }
        }
    };
    let _ = child.wait();
    let mut outputs = collect(&rx, 2, Duration::from_secs(2));
    if outputs.len() < 2 {
        // Something it started still holds a pipe open, so the group is still in use: kill
        // it, then the pipes close.
        crate::sys::kill_group(&mut child);
        outputs.extend(collect(&rx, 2 - outputs.len(), Duration::from_secs(2)));
    }
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    for (which, bytes) in outputs {
        match which {
            1 => stdout = bytes,
            _ => stderr = bytes,
        }
    }
    Ok(Ran {
        ended,
        stdout,
        stderr,
    })
}

/// Up to `n` captured outputs, waiting at most `wait` in all.
fn collect(rx: &mpsc::Receiver<(u8, Vec<u8>)>, n: usize, wait: Duration) -> Vec<(u8, Vec<u8>)> {
    let deadline = Instant::now() + wait;
    let mut out = Vec::new();
    while out.len() < n {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(got) => out.push(got),
            Err(_) => break,
        }
    }
    out
}

/// Read `pipe` to its end on a thread, keeping its first [`OUTPUT_LIMIT`] bytes (a program
/// blocked on a full pipe would otherwise never exit), and send them tagged `which`.
fn capture(mut pipe: impl Read + Send + 'static, which: u8, tx: mpsc::Sender<(u8, Vec<u8>)>) {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let room = OUTPUT_LIMIT - kept.len();
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        let _ = tx.send((which, kept));
    });
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

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
    fn output_is_bounded_and_a_flood_does_not_block_it() {
        // 1 MiB on each stream: more than a pipe holds, so an unread pipe would hang it.
        let ran = sh(
            "head -c 1048576 /dev/zero; head -c 1048576 /dev/zero >&2; echo done >&2",
            TIMEOUT,
        );
        assert!(
            matches!(ran.ended, Ended::Exited(s) if s.success()),
            "{ran:?}"
        );
        assert_eq!(ran.stdout.len(), OUTPUT_LIMIT);
        assert_eq!(ran.stderr.len(), OUTPUT_LIMIT);
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
