//! Progress bars: drawn when stderr is a terminal (a pty made by `script`), never on a pipe,
//! in CI, with --json or with --quiet; publishing shows one bar per artifact in flight.

mod common;

use std::process::Command;
use std::time::Duration;

use common::http::{HttpServer, Route};
use common::ops::{github_with_protoc_and_buf, Workspace};
use common::*;

/// Run `cmd` (program, arguments, environment) with a pty as its stdout and stderr, the way
/// a person at a terminal runs it, and return its exit status and what the terminal showed.
fn on_a_terminal(cmd: &Command, extra_env: &[(&str, &str)]) -> (bool, String) {
    let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
    let mut line = quote(&cmd.get_program().to_string_lossy());
    for a in cmd.get_args() {
        line.push(' ');
        line.push_str(&quote(&a.to_string_lossy()));
    }
    let mut pty = Command::new("script");
    pty.args(["-qefc", &line, "/dev/null"]);
    if let Some(dir) = cmd.get_current_dir() {
        pty.current_dir(dir);
    }
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => pty.env(k, v),
            None => pty.env_remove(k),
        };
    }
    pty.env_remove("CI").env("TERM", "xterm-256color");
    for (k, v) in extra_env {
        pty.env(k, v);
    }
    let out = pty.output().expect("run script(1)");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

/// A bar was drawn: indicatif's bytes, rate and ETA, redrawn in place.
fn drew_a_bar(shown: &str) -> bool {
    shown.contains("ETA") && shown.contains("MiB") && shown.contains('\x1b')
}

/// materialize of protoc served slowly enough (64 KiB every 15 ms) for a bar to be drawn.
fn slow_materialize(
    server: &HttpServer,
    cache: &std::path::Path,
    out: &std::path::Path,
) -> Command {
    let protoc = pin(&fixture(PROTOC_ZIP));
    let url = server.route(
        "/protoc.zip",
        Route::Slow(protoc.path.clone(), Duration::from_millis(15)),
    );
    let mut c = protoreg();
    c.args(materialize_args(&protoc, "zip", cache, out))
        .args(["--source", &url]);
    c
}

#[test]
fn a_download_shows_a_bar_on_a_terminal_only() {
    let server = HttpServer::start();
    let tmp = scratch();
    let sha = pin(&fixture(PROTOC_ZIP)).sha256.to_string();

    // A person at a terminal: bytes, rate and ETA, labelled with the artifact.
    let cmd = slow_materialize(&server, &tmp.path().join("c1"), &tmp.path().join("o1"));
    let (ok, shown) = on_a_terminal(&cmd, &[]);
    assert!(ok, "{shown}");
    assert!(drew_a_bar(&shown), "no bar on a terminal:\n{shown}");
    assert!(shown.contains(&format!("sha256:{}", &sha[..12])), "{shown}");
    assert!(tmp.path().join("o1/bin/protoc").is_file());

    // A pipe (a build, a script): not a byte of it.
    let o = run(&mut slow_materialize(
        &server,
        &tmp.path().join("c2"),
        &tmp.path().join("o2"),
    ));
    assert!(o.status.success(), "{}", text(&o));
    assert!(o.stderr.is_empty(), "{}", text(&o));

    // A terminal, but CI's log, --quiet or --json: no bar either.
    for (i, (flag, env)) in [
        (None, [("CI", "true")]),
        (Some("--quiet"), [("CI", "")]),
        (Some("--json"), [("CI", "")]),
    ]
    .into_iter()
    .enumerate()
    {
        let mut cmd = slow_materialize(
            &server,
            &tmp.path().join(format!("c{i}x")),
            &tmp.path().join(format!("o{i}x")),
        );
        cmd.args(flag);
        let (ok, shown) = on_a_terminal(&cmd, &env);
        assert!(ok, "{flag:?} {env:?}: {shown}");
        assert!(!drew_a_bar(&shown), "{flag:?} {env:?} drew a bar:\n{shown}");
    }
}

#[test]
fn a_parallel_publish_shows_one_bar_per_artifact_and_plain_lines_in_a_log() {
    let reg = RegistryServer::start();
    let gh = github_with_protoc_and_buf();
    let ws = Workspace::new(&reg.host, &gh.api_url(), "");

    // In a log: one plain line per artifact, no escape sequence.
    let o = ws.run(&["publish", "--tool", "protoc", "--version", "36.2"]);
    assert!(o.status.success(), "{}", text(&o));
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(!log.contains('\x1b'), "{log}");
    for n in 1..=5 {
        assert!(log.contains(&format!("[{n}/5] published ")), "{log}");
    }

    // At a terminal: the overall bar and a bar per artifact (labelled repository:tag),
    // with the same step lines printed above them.
    let mut cmd = ws.cmd();
    cmd.args(["publish", "--tool", "buf", "--version", "1.75.0"]);
    let (ok, shown) = on_a_terminal(&cmd, &[]);
    assert!(ok, "{shown}");
    assert!(shown.contains("publish ["), "no overall bar:\n{shown}");
    assert!(
        shown.contains("/tools/buf:v1.75.0-"),
        "no artifact bar:\n{shown}"
    );
    assert!(shown.contains('\x1b'), "{shown}");
    assert!(shown.contains("[6/6] published "), "{shown}");

    // A mirror to an image layout: a bar per blob in flight, a line per tag copied.
    let layout = ws.dir.path().join("layout");
    let mut cmd = ws.cmd();
    cmd.args(["mirror", "--from", "primary", "--to"])
        .arg(format!("oci-layout:{}", layout.display()));
    let (ok, shown) = on_a_terminal(&cmd, &[]);
    assert!(ok, "{shown}");
    assert!(shown.contains("tools/buf@sha256:"), "no blob bar:\n{shown}");
    assert!(shown.contains("copied tools/buf:v1.75.0"), "{shown}");

    // --quiet: no bar and no step line (a republish has a line per artifact too); the
    // result on stdout stays.
    let mut cmd = ws.cmd();
    cmd.args([
        "--quiet",
        "publish",
        "--tool",
        "protoc",
        "--version",
        "36.2",
    ]);
    let (ok, shown) = on_a_terminal(&cmd, &[]);
    assert!(ok, "{shown}");
    assert!(
        !shown.contains("publish [") && !shown.contains("/5] "),
        "{shown}"
    );
    assert!(shown.contains("published 0 artifacts"), "{shown}");
}
