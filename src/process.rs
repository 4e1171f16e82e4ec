//! Running another program to a deadline: its stdout and stderr are read while it runs (a
//! program blocked on a full pipe never exits), each bounded, and on the way out (time up,
//! too much output, or something it started still holding the pipes) it is killed with the
//! process group it leads. Used for the two kinds of program protoreg runs: a binary fresh
//! from upstream ([`crate::maintain::sandbox`]) and Docker credential helpers
//! ([`crate::auth`]).

use std::io::{Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How a run ended.
#[derive(Debug)]
pub enum Ended {
    Exited(ExitStatus),
    /// Still running at the time limit: killed, with its process group.
    TimedOut(Duration),
    /// Wrote more than the limit on `stream` (`stdout` or `stderr`): killed, with its group.
    TooMuchOutput {
        stream: &'static str,
        limit: usize,
    },
}

/// How a run ended, and the first `limit` bytes of each of its stdout and stderr.
#[derive(Debug)]
pub struct Ran {
    pub ended: Ended,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// One stream's bytes, and whether it wrote more than the limit.
struct Captured {
    stdout: bool,
    bytes: Vec<u8>,
    overflowed: bool,
}

/// Start `cmd` as the leader of a process group, give it `input` on stdin (nothing: stdin is
/// closed), and wait at most `timeout` for it, keeping at most `limit` bytes of each output.
pub fn run(
    cmd: &mut Command,
    input: Option<&[u8]>,
    timeout: Duration,
    limit: usize,
) -> std::io::Result<Ran> {
    cmd.stdin(if input.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    crate::sys::own_process_group(cmd);
    crate::sys::close_inherited_on_exec(cmd);
    let mut child = cmd.spawn()?;
    let (tx, rx) = mpsc::channel();
    if let Some(out) = child.stdout.take() {
        capture(out, true, limit, tx.clone());
    }
    if let Some(err) = child.stderr.take() {
        capture(err, false, limit, tx.clone());
    }
    drop(tx);
    if let (Some(mut stdin), Some(input)) = (child.stdin.take(), input) {
        // A program that exits without reading is reported by its status.
        let _ = stdin.write_all(input);
    }
    let started = Instant::now();
    let mut got = Vec::new();
    let ended = loop {
        while let Ok(c) = rx.try_recv() {
            got.push(c);
        }
        if let Some(c) = got.iter().find(|c| c.overflowed) {
            crate::sys::kill_group(&mut child);
            break Ended::TooMuchOutput {
                stream: if c.stdout { "stdout" } else { "stderr" },
                limit,
            };
        }
        match child.try_wait() {
            Ok(Some(status)) => break Ended::Exited(status),
            Ok(None) if started.elapsed() >= timeout => {
                // Not reaped yet: the group's id is still its own.
                crate::sys::kill_group(&mut child);
                break Ended::TimedOut(timeout);
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(5)),
            Err(e) => {
                crate::sys::kill_group(&mut child);
                let _ = child.wait();
                return Err(e);
            }
        }
    };
    let _ = child.wait();
    collect(&rx, &mut got, Duration::from_secs(2));
    if got.len() < 2 {
        // Something it started still holds a pipe open, so the group is still in use: kill
        // it, then the pipes close.
        crate::sys::kill_group(&mut child);
        collect(&rx, &mut got, Duration::from_secs(2));
    }
    let (mut stdout, mut stderr) = (Vec::new(), Vec::new());
    for c in got {
        *(if c.stdout { &mut stdout } else { &mut stderr }) = c.bytes;
    }
    Ok(Ran {
        ended,
        stdout,
        stderr,
    })
}

/// Receive until both streams are in, waiting at most `wait` in all.
fn collect(rx: &mpsc::Receiver<Captured>, got: &mut Vec<Captured>, wait: Duration) {
    let deadline = Instant::now() + wait;
    while got.len() < 2 {
        match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            Ok(c) => got.push(c),
            Err(_) => break,
        }
    }
}

/// Read `pipe` on a thread to its end, or until it has written more than `limit` (then the
/// program is killed: a flood is not an answer), and send what was kept.
fn capture(
    mut pipe: impl Read + Send + 'static,
    stdout: bool,
    limit: usize,
    tx: mpsc::Sender<Captured>,
) {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let mut buf = [0u8; 8192];
        let mut overflowed = false;
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    let room = limit - bytes.len();
                    bytes.extend_from_slice(&buf[..n.min(room)]);
                    if n > room {
                        overflowed = true;
                        break;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        // The receiver is gone only once the run is over.
        let _ = tx.send(Captured {
            stdout,
            bytes,
            overflowed,
        });
    });
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn sh(script: &str, timeout: Duration, limit: usize) -> Ran {
        run(
            Command::new("/bin/sh").args(["-c", script]),
            None,
            timeout,
            limit,
        )
        .unwrap()
    }

    #[test]
    fn output_up_to_the_limit_is_kept_whole_and_a_flood_is_stopped() {
        // 1 MiB on stderr: more than a pipe holds, so an unread pipe would hang it.
        let ran = sh(
            "head -c 1048576 /dev/zero >&2; echo done",
            Duration::from_secs(10),
            2 << 20,
        );
        assert!(
            matches!(ran.ended, Ended::Exited(s) if s.success()),
            "{ran:?}"
        );
        assert_eq!(
            (ran.stderr.len(), ran.stdout.as_slice()),
            (1 << 20, &b"done\n"[..])
        );
        let started = Instant::now();
        let ran = sh("yes", Duration::from_secs(30), 64 << 10);
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
        assert_eq!(ran.stdout.len(), 64 << 10);
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn input_reaches_stdin() {
        let ran = run(
            Command::new("/bin/sh").args(["-c", "cat"]),
            Some(b"server\n"),
            Duration::from_secs(10),
            1024,
        )
        .unwrap();
        assert_eq!(ran.stdout, b"server\n");
    }

    #[test]
    fn a_hung_program_and_what_it_started_are_killed_at_the_limit() {
        let started = Instant::now();
        // A background child holding the pipes, and a foreground one that never ends.
        let ran = sh("sleep 600 & sleep 600", Duration::from_millis(300), 1024);
        assert!(matches!(ran.ended, Ended::TimedOut(_)), "{ran:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
    }
}
