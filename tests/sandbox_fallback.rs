//! The fallback sandbox's pieces (`protoreg::sys::Contained`: what bump does where bubblewrap
//! cannot run), tested directly. They act on the whole process (dumpability, subreaping, and
//! killing every child that appears), so they run in a process of their own: this test binary
//! again, running only `subject`. As root a reader would hold CAP_SYS_PTRACE and read any
//! process's environ anyway, so the subject then runs as `nobody`.

#![cfg(target_os = "linux")]

mod common;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Set (to the secret) only in the subject's process.
const SUBJECT: &str = "PROTOREG_TEST_CONTAINED_SECRET";
/// A directory the subject may write.
const DIR: &str = "PROTOREG_TEST_CONTAINED_DIR";

#[test]
fn a_contained_protoreg_hides_its_environment_and_leaves_nothing_running() {
    let user = common::user::User::unprivileged();
    let dir = user.tempdir();
    let exe = std::env::current_exe().unwrap();
    let o = common::bounded::run_within(
        user.command(&exe)
            .args([
                "--exact",
                "subject",
                "--include-ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(SUBJECT, "fallback-secret-42")
            .env(DIR, dir.path()),
        Duration::from_secs(60),
    )
    .expect("the subject still runs after 60 s");
    let out = common::text(&o);
    assert!(o.status.success(), "{out}");
    assert!(out.contains("1 passed"), "the subject did not run:\n{out}");
}

/// What a same-user child sees of its parent (this process): its environ and its cwd.
fn peek_at_parent() -> String {
    let o = Command::new("/bin/sh")
        .args([
            "-c",
            "tr '\\000' '\\n' < /proc/$PPID/environ; readlink /proc/$PPID/cwd",
        ])
        .output()
        .unwrap();
    String::from_utf8_lossy(&o.stdout).to_string()
}

fn parent_of(pid: i32) -> Option<i32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(1)?.parse().ok()
}

#[test]
#[ignore = "run by the test above, in a process of its own"]
fn subject() {
    let (Ok(secret), Some(dir)) = (std::env::var(SUBJECT), std::env::var_os(DIR)) else {
        return;
    };
    let dir = Path::new(&dir);
    let cwd = std::env::current_dir().unwrap();
    // Uncontained, a same-user process reads both: the check below can fail.
    let seen = peek_at_parent();
    assert!(
        seen.contains(&secret) && seen.contains(&*cwd.to_string_lossy()),
        "{seen}"
    );

    let contained = protoreg::sys::Contained::enter();
    let seen = peek_at_parent();
    assert!(!seen.contains(&secret), "environ readable: {seen}");
    assert!(
        !seen.contains(&*cwd.to_string_lossy()),
        "cwd readable: {seen}"
    );

    // A program that escapes its process group and its parent: a new session, double-forked.
    let pidfile = dir.join("pid");
    let status = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!(
            "(setsid sh -c 'echo $$ > \"{}\"; exec sleep 60' </dev/null >/dev/null 2>&1 &); exit 0",
            pidfile.display()
        ))
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        if let Some(pid) = std::fs::read_to_string(&pidfile)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "the grandchild never started");
        std::thread::sleep(Duration::from_millis(20));
    };
    // Orphaned, it is reparented to this process, not init.
    let me = std::process::id() as i32;
    let deadline = Instant::now() + Duration::from_secs(10);
    while parent_of(pid) != Some(me) {
        assert!(
            Instant::now() < deadline,
            "{pid} has parent {:?}, not {me}",
            parent_of(pid)
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = contained.end().expect("nothing left running");
    assert!(killed >= 1, "killed {killed}");
    assert!(
        !Path::new(&format!("/proc/{pid}")).exists(),
        "{pid} still exists (or is an unreaped zombie)"
    );
    // Afterwards protoreg is as it was.
    assert!(peek_at_parent().contains(&secret));

    // A chain deeper than the rounds of killing (each process the parent of the next): the
    // whole tree dies in one round, not one generation per round.
    let contained = protoreg::sys::Contained::enter();
    let script = dir.join("chain.sh");
    std::fs::write(
        &script,
        "#!/bin/sh\nif [ \"$1\" -gt 0 ]; then \"$0\" $(($1 - 1)) \"$2\" & else echo $$ > \"$2\"; fi\nexec sleep 60\n",
    )
    .unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let leaf_file = dir.join("leaf");
    let mut chain = Command::new(&script);
    let mut chain = chain
        .arg("600")
        .arg(&leaf_file)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let leaf = loop {
        if let Some(pid) = std::fs::read_to_string(&leaf_file)
            .ok()
            .and_then(|t| t.trim().parse::<i32>().ok())
        {
            break pid;
        }
        assert!(
            Instant::now() < deadline,
            "the chain never reached its leaf"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let killed = contained.end().expect("nothing left running");
    // Reaped by `end` already: this only tells clippy the child is accounted for.
    let _ = chain.try_wait();
    assert!(killed >= 600, "killed {killed}");
    assert!(
        !Path::new(&format!("/proc/{leaf}")).exists(),
        "the leaf {leaf} survived"
    );
}
