//! Real Buck2 on the harness's own fixture repository, so the harness is held to what Buck2
//! does rather than to what it was believed to do:
//!
//! - every negative case (the table in `negative_cases/mod.rs`, shared with `negative.rs`)
//!   fails in Buck2, and Buck2's error contains the same fragments the harness's does;
//! - every positive fixture builds for every fixture platform, and what Buck2 produces matches
//!   the harness: the `bundle` command line (`buck2 aquery`), the `write_json` manifest, the
//!   bytes the host's action writes, the loopback download (refused when the bytes are wrong,
//!   with the same words), and the two fixture tests (one passes, one fails).
//!
//! Buck2 runs on a scratch copy of `fixtures/repo` in a temporary directory (with a
//! `.buckroot`, so no enclosing `.buckconfig` is consulted), with one daemon for the whole
//! test, killed at the end whatever happens. The binary is `$BUCK2`, else
//! `<repository root>/../shared/tools/buck2/buck2`; without it the test fails.

mod negative_cases;

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use buck2_harness::{ActionKind, Harness};
use negative_cases::{missing, CASES, PLATFORM};

fn fixture_repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/repo")
}

fn buck2_binary() -> PathBuf {
    let (path, how) = match std::env::var_os("BUCK2") {
        Some(p) => (PathBuf::from(p), "$BUCK2"),
        None => (
            // The repository root is two levels above this crate.
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/tools/buck2/buck2"),
            "<repository root>/../shared/tools/buck2/buck2 (set BUCK2 to use another)",
        ),
    };
    assert!(
        path.is_file(),
        "real Buck2 is required by this test and was not found at `{}` ({how})",
        path.display()
    );
    path
}

/// The fixture platforms, as in `positive.rs`.
const PLATFORMS: [&str; 5] = [
    "linux-x86_64",
    "linux-aarch64",
    "darwin-arm64",
    "darwin-x86_64",
    "windows-x86_64",
];

/// The fixture platform of this machine: the execution platform `prelude//platforms:exec`
/// registers, so the one Buck2 runs every action on.
fn host_platform() -> &'static str {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => "linux-x86_64",
        ("linux", "aarch64") => "linux-aarch64",
        ("macos", "aarch64") => "darwin-arm64",
        ("macos", "x86_64") => "darwin-x86_64",
        other => panic!("no fixture platform for host {other:?}"),
    }
}

fn platform(name: &str) -> String {
    format!("prelude//platforms:{name}")
}

const BLOB_URL: &str = "http://downloads.invalid";
const GOOD_BLOB: &[u8] = b"hello from loopback\n";
const BAD_BLOB: &[u8] = b"tampered bytes here\n";
const BLOB_SHA256: &str = "549ed6d2e9a81a14207ce0d780e0c581528305f798f43a706cfa1f0730501960";

/// One Buck2 daemon on one scratch project; `buck2 kill` when dropped (also on panic), before
/// the temporary directory goes.
struct Buck2 {
    bin: PathBuf,
    root: PathBuf,
}

impl Buck2 {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(&self.bin)
            .args(args)
            .current_dir(&self.root)
            // The loopback server must be reached directly (the daemon inherits this).
            .env("NO_PROXY", "127.0.0.1,localhost")
            .env("no_proxy", "127.0.0.1,localhost")
            .output()
            .unwrap_or_else(|e| panic!("failed to run `{}`: {e}", self.bin.display()))
    }

    /// `buck2 <command> <targets…> --target-platforms <platform>` with the simple console.
    fn cmd(&self, command: &str, targets: &[&str], target_platform: &str, extra: &[&str]) -> Run {
        let mut args = vec![command];
        args.extend(targets);
        args.extend(["--target-platforms", target_platform, "--console", "simple"]);
        args.extend(extra);
        let out = self.run(&args);
        Run {
            line: format!("buck2 {}", args.join(" ")),
            ok: out.status.success(),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }
}

impl Drop for Buck2 {
    fn drop(&mut self) {
        let _ = Command::new(&self.bin)
            .arg("kill")
            .current_dir(&self.root)
            .output();
        // Tidy-up: the daemon's small state directory, `~/.buck/buckd/<project root>`.
        if let (Some(home), Ok(rel)) = (std::env::var_os("HOME"), self.root.strip_prefix("/")) {
            let state = Path::new(&home).join(".buck/buckd").join(rel);
            let _ = std::fs::remove_dir_all(&state);
            // The temporary directory's own entry, if nothing else is left in it.
            let _ = state.parent().map(std::fs::remove_dir);
        }
    }
}

struct Run {
    line: String,
    ok: bool,
    stdout: String,
    stderr: String,
}

impl Run {
    fn report(&self) -> String {
        format!(
            "`{}` {}\n--- stdout\n{}--- stderr\n{}",
            self.line,
            if self.ok { "succeeded" } else { "failed" },
            self.stdout,
            self.stderr
        )
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if e.file_type().unwrap().is_dir() {
            copy_tree(&src, &dst);
        } else {
            // `fs::copy` keeps the permission bits: the fixture tools stay executable.
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

/// A loopback HTTP server answering every GET with the current `body`, for as long as the
/// test runs.
fn serve(body: Arc<Mutex<&'static [u8]>>) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            // Read the whole request head before answering.
            let mut req = Vec::new();
            let mut buf = [0u8; 1024];
            while !req.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => req.extend_from_slice(&buf[..n]),
                }
            }
            let body = *body.lock().unwrap();
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(head.as_bytes()).and_then(|_| s.write_all(body));
        }
    });
    format!("http://{addr}")
}

/// The output directory Buck2 chose for `//protos:api` (e.g. `buck-out/v2/art/root/<hash>`),
/// from `--show-output`.
fn api_out_dir(run: &Run) -> Option<String> {
    run.stdout.lines().find_map(|l| {
        l.strip_prefix("root//protos:api ")?
            .trim()
            .strip_suffix("/protos/__api__/api.txt")
            .map(str::to_owned)
    })
}

/// `buck2 aquery`'s `cmd` of the `bundle` action, as argv.
fn aquery_bundle_argv(json: &str) -> Option<Vec<String>> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    let action = v
        .as_object()?
        .values()
        .find(|a| a.get("category").and_then(|c| c.as_str()) == Some("bundle"))?;
    let cmd = action.get("cmd")?.as_str()?;
    let inner = cmd.strip_prefix('[')?.strip_suffix(']')?;
    Some(inner.split(", ").map(str::to_owned).collect())
}

#[test]
fn real_buck2_agrees_with_the_harness() {
    let started = Instant::now();
    let bin = buck2_binary();
    negative_cases::assert_table_matches_fixtures(&fixture_repo());

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap().join("repo");
    copy_tree(&fixture_repo(), &root);
    // The project root is this directory, whatever encloses the temporary directory.
    std::fs::write(root.join(".buckroot"), "").unwrap();
    // As `Harness::rewrite_url` does: the fixture's download comes from loopback.
    let blob_body = Arc::new(Mutex::new(BAD_BLOB));
    let server = serve(blob_body.clone());
    let protos = root.join("protos/BUCK");
    let text = std::fs::read_to_string(&protos).unwrap();
    assert!(
        text.contains(BLOB_URL),
        "protos/BUCK no longer downloads from {BLOB_URL}"
    );
    std::fs::write(&protos, text.replace(BLOB_URL, &server)).unwrap();

    let buck2 = Buck2 {
        bin,
        root: root.clone(),
    };
    let harness = Harness::open(fixture_repo()).unwrap();
    let host = host_platform();
    let mut failures: Vec<String> = Vec::new();

    // Positive fixtures, every platform: Buck2 builds them, and its `bundle` command line and
    // manifest are the harness's once Buck2's output directory is replaced by the harness's.
    // Buck2 runs every action on the host, so the harness is asked for that execution platform.
    for p in PLATFORMS {
        let build = buck2.cmd(
            "build",
            &[
                "//protos:api",
                "//protos:base",
                "//toolchains:gen",
                "//tools:gen",
            ],
            &platform(p),
            &["--show-output"],
        );
        let Some(out_dir) = build.ok.then(|| api_out_dir(&build)).flatten() else {
            failures.push(build.report());
            continue;
        };
        let ours = format!("buck-out/v2/gen/root/{p}");
        let normalize = |s: &str| s.replace(&format!("{out_dir}/"), &format!("{ours}/"));
        let analysis = harness
            .analyze("//protos:api", &platform(p), &platform(host))
            .unwrap_or_else(|e| panic!("{e:?}"));

        let aquery = buck2.cmd(
            "aquery",
            &["//protos:api"],
            &platform(p),
            &[
                "--output-attribute",
                "cmd",
                "--output-attribute",
                "category",
            ],
        );
        let want_argv = analysis.actions.iter().find_map(|a| match &a.kind {
            ActionKind::Run { argv, .. } if a.category == "bundle" => Some(argv.clone()),
            _ => None,
        });
        match aquery_bundle_argv(&aquery.stdout) {
            Some(argv) => {
                let argv: Vec<String> = argv.iter().map(|a| normalize(a)).collect();
                if Some(&argv) != want_argv.as_ref() {
                    failures.push(format!(
                        "{p}: `bundle` command lines differ\nBuck2:   {argv:?}\nharness: {want_argv:?}"
                    ));
                }
            }
            None => failures.push(aquery.report()),
        }

        let manifest = std::fs::read_to_string(root.join(&out_dir).join("protos/__api__/api.json"))
            .unwrap_or_else(|e| format!("<{e}>"));
        let want_manifest = analysis.actions.iter().find_map(|a| match &a.kind {
            ActionKind::Write { content, .. } if a.category == "write_json" => {
                Some(content.clone())
            }
            _ => None,
        });
        if Some(normalize(&manifest)) != want_manifest {
            failures.push(format!(
                "{p}: manifests differ\nBuck2:   {manifest}\nharness: {want_manifest:?}"
            ));
        }

        if p == host {
            let built = harness
                .build("//protos:api", &platform(host))
                .unwrap_or_else(|e| panic!("{e:?}"));
            let by_harness = std::fs::read_to_string(&built.outputs[0]).unwrap();
            let by_buck2 =
                std::fs::read_to_string(root.join(&out_dir).join("protos/__api__/api.txt"))
                    .unwrap_or_else(|e| format!("<{e}>"));
            if by_harness != by_buck2 {
                failures.push(format!(
                    "{p}: the bundles differ\nBuck2:   {by_buck2:?}\nharness: {by_harness:?}"
                ));
            }
        }
    }

    // The download: refused with wrong bytes (in the harness's words, which are Buck2's), then
    // fetched, staged and copied.
    let wrong = buck2.cmd("build", &["//protos:blob"], &platform(host), &[]);
    let want = format!("Invalid sha256 digest. Expected {BLOB_SHA256}, got ");
    if wrong.ok || !wrong.stderr.contains(&want) {
        failures.push(format!("wrong bytes: want `{want}`\n{}", wrong.report()));
    }
    *blob_body.lock().unwrap() = GOOD_BLOB;
    let blob = buck2.cmd(
        "build",
        &["//protos:blob"],
        &platform(host),
        &["--show-output"],
    );
    if blob.ok {
        let default = blob
            .stdout
            .lines()
            .find_map(|l| l.strip_prefix("root//protos:blob "))
            .unwrap_or("")
            .trim();
        let out_dir = default.strip_suffix("/blob.txt").unwrap_or(default);
        for f in [
            format!("{out_dir}/blob.txt"),
            format!("{out_dir}/staged/blob/blob.txt"),
            format!("{out_dir}/copy_blob.txt"),
        ] {
            let got = std::fs::read(root.join(&f)).unwrap_or_default();
            if got != GOOD_BLOB {
                failures.push(format!(
                    "download: `{f}` holds {:?}",
                    String::from_utf8_lossy(&got)
                ));
            }
        }
    } else {
        failures.push(blob.report());
    }

    // The fixture tests: `has_a` passes, `has_z` fails with the script's complaint.
    let pass = buck2.cmd("test", &["//checks:has_a"], &platform(host), &[]);
    if !pass.ok {
        failures.push(pass.report());
    }
    let fail = buck2.cmd("test", &["//checks:has_z"], &platform(host), &[]);
    if fail.ok
        || !fail.stderr.contains("missing from buck-out/")
        || !fail.stderr.contains("api.txt: syntax = \"proto3\"; // z")
    {
        failures.push(format!(
            "`has_z` must fail as the harness's does\n{}",
            fail.report()
        ));
    }
    let positives = started.elapsed();

    // Negative cases: Buck2 refuses each, with the words the harness is held to.
    for case in CASES {
        let target = format!("//bad/{}:t", case.name);
        let run = buck2.cmd("build", &[&target], PLATFORM, &[]);
        let lacking = missing(case, &run.stderr);
        if run.ok || !lacking.is_empty() {
            failures.push(format!(
                "case `{}`: Buck2 must fail with {:?}; missing {lacking:?}\n{}",
                case.name,
                case.reason,
                run.report()
            ));
        }
    }
    eprintln!(
        "real Buck2: positives {:.1?}, {} negative cases {:.1?}",
        positives,
        CASES.len(),
        started.elapsed() - positives
    );

    assert!(
        failures.is_empty(),
        "{} disagreement(s) with real Buck2:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
    drop(buck2);
    drop(dir);
}
