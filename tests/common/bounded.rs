//! Running a program that may hang (the bug under test) without hanging the test.

use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// `cmd`'s output, or None when it did not finish within `limit` (then it was killed, by the
/// PID this started). Its output must fit a pipe (it is read after it exits).
pub fn run_within(cmd: &mut Command, limit: Duration) -> Option<Output> {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Some(child.wait_with_output().expect("output"))
}
