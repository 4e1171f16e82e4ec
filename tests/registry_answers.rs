//! Hostile registry answers and credentials on loopback: a token server answering a
//! 256 MiB token or echoing the request, a registry answering a 256 MiB tag list or a
//! 1 MiB tag, and credential helpers that must run only when a registry is contacted. Every
//! run is the real binary; each answer is refused by name, fast, without reading it whole,
//! and no secret (in any encoding) reaches stderr or the audit log.

mod common;

use std::time::{Duration, Instant};

use base64::Engine;
use common::ops::*;
use common::token::{Hostile, Policy, TokenServer, ISSUER, SERVICE};
use common::*;

const USER: &str = "ci";
const PASSWORD: &str = "t0ken/Pa55 word";
const HUGE: u64 = 256 << 20;

fn token_registry() -> (TokenServer, RegistryServer) {
    let tokens = TokenServer::start(Policy {
        user: USER.into(),
        password: PASSWORD.into(),
        anonymous: vec![],
        expires_in: 300,
    });
    let reg = RegistryServer::start_token(&tokens.realm, SERVICE, ISSUER, &tokens.cert, None);
    (tokens, reg)
}

fn with_creds(cmd: &mut std::process::Command) -> &mut std::process::Command {
    cmd.env("PROTOREG_REGISTRY_USERNAME", USER)
        .env("PROTOREG_REGISTRY_PASSWORD", PASSWORD)
}

/// Neither the password, its percent-encoding nor its Basic encoding is in `text`.
fn assert_no_secret(what: &str, text: &str) {
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    for secret in [PASSWORD, "t0ken%2FPa55%20word", basic.as_str()] {
        assert!(!text.contains(secret), "{what} holds `{secret}`:\n{text}");
    }
}

/// `cmd` fails (exit 1) within a minute with a stderr under 64 KiB that says `says`, and
/// the hostile server got out less than 32 MiB of its answer meanwhile.
fn assert_refused_fast(tokens: &TokenServer, cmd: &mut std::process::Command, says: &str) {
    let before = tokens.sent();
    let started = Instant::now();
    let out = run(cmd);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(took < Duration::from_secs(60), "took {took:?}");
    assert!(
        out.stderr.len() < 64 << 10 && out.stdout.len() < 64 << 10,
        "{} bytes of stderr",
        out.stderr.len()
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(says) && err.contains("hint:"), "{err}");
    assert!(!err.contains('\u{1b}') && !err.contains('\u{7}'), "{err:?}");
    assert_no_secret("stderr", &err);
    let sent = tokens.sent() - before;
    assert!(sent < 32 << 20, "{sent} bytes of the answer were read");
}

#[test]
fn a_huge_token_answer_is_refused_without_reading_it() {
    let (tokens, reg) = token_registry();
    tokens.set_hostile(Hostile::HugeToken(HUGE));
    let ws = Workspace::new(&reg.host, "http://127.0.0.1:9", "");
    let says = "the token server's answer is larger than 4.0 MiB";
    // `versions` (tag lists), and `materialize` from an `oci://` source (blob pulls).
    assert_refused_fast(
        &tokens,
        with_creds(&mut ws.cmd()).args(["versions", "protoc", "--json"]),
        says,
    );
    let protoc = pin(&fixture(PROTOC_ZIP));
    let tmp = scratch();
    assert_refused_fast(
        &tokens,
        with_creds(&mut protoreg())
            .args(materialize_args(
                &protoc,
                "zip",
                &tmp.path().join("cache"),
                &tmp.path().join("out"),
            ))
            .args(["--plain-http", "--source"])
            .arg(format!("oci://{}/{NS}/tools/protoc", reg.host)),
        says,
    );
    assert!(absent_or_empty(&tmp.path().join("out")));
}

#[test]
fn a_token_server_echoing_the_request_puts_no_secret_in_output_or_audit_log() {
    let (tokens, reg) = token_registry();
    tokens.set_hostile(Hostile::EchoRequest);
    let ws = Workspace::new(&reg.host, "http://127.0.0.1:9", "");
    let says = "the token server refused: HTTP 401";
    for args in [
        vec!["versions", "protoc", "--json"],
        vec!["health", "--json"],
    ] {
        let out = run(with_creds(&mut ws.cmd()).args(&args));
        assert_ne!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        let all = text(&out);
        assert_no_secret(&format!("{args:?}"), &all);
        assert!(!all.contains("Basic "), "{args:?}: {all}");
        if args[0] == "versions" {
            assert!(all.contains(says), "{all}");
        }
    }
    let protoc = pin(&fixture(PROTOC_ZIP));
    let tmp = scratch();
    let out = run(with_creds(&mut protoreg())
        .args(materialize_args(
            &protoc,
            "zip",
            &tmp.path().join("cache"),
            &tmp.path().join("out"),
        ))
        .args(["--plain-http", "--source"])
        .arg(format!("oci://{}/{NS}/tools/protoc", reg.host)));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains(says), "{}", text(&out));
    assert_no_secret("materialize", &text(&out));
    // The token server was asked (it saw the credentials) and echoed them each time.
    assert!(tokens.requests().len() >= 2, "{:?}", tokens.summary());
    // health records its failure, the token server's answer included as protoreg saw it.
    let audit = std::fs::read_to_string(ws.audit_log()).unwrap();
    assert!(audit.contains(says), "{audit}");
    assert_no_secret("the audit log", &audit);
    assert!(!audit.contains("Basic "), "{audit}");
}

#[test]
fn a_huge_tag_list_and_a_huge_tag_are_refused_without_reading_them() {
    // The token server plays a registry whose tag lists are hostile.
    let tokens = TokenServer::start(Policy::default());
    tokens.set_hostile(Hostile::HugeTagList(HUGE));
    let ws = Workspace::new(&tokens.host, "http://127.0.0.1:9", "");
    let says = "larger than 4.0 MiB";
    assert_refused_fast(
        &tokens,
        ws.cmd().args(["versions", "protoc", "--json"]),
        says,
    );
    // `health` lists every repository's tags: refused, not held.
    let before = tokens.sent();
    let started = Instant::now();
    let out = ws.run(&["health", "--json"]);
    assert!(
        started.elapsed() < Duration::from_secs(120),
        "{}",
        text(&out)
    );
    assert_ne!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        out.stdout.len() + out.stderr.len() < 256 << 10,
        "{}",
        text(&out)
    );
    assert!(text(&out).contains(says), "{}", text(&out));
    let sent = tokens.sent() - before;
    assert!(sent < 32 << 20, "{sent} bytes read");

    // One tag of 1 MiB (with terminal escapes) is not a tag: refused by name, not echoed.
    tokens.set_hostile(Hostile::LongTag(1 << 20));
    let layout = ws.dir.path().join("layout");
    for args in [
        vec!["versions".to_string(), "protoc".into(), "--json".into()],
        vec![
            "mirror".to_string(),
            "--from".into(),
            "primary".into(),
            "--to".into(),
            format!("oci-layout:{}", layout.display()),
        ],
    ] {
        let out = run(ws.cmd().args(&args));
        assert_ne!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        assert!(
            out.stdout.len() + out.stderr.len() < 64 << 10,
            "{args:?}: {} bytes of output",
            out.stdout.len() + out.stderr.len()
        );
        let all = text(&out);
        assert!(all.contains("not an OCI tag"), "{args:?}: {all}");
        assert!(!all.contains('\u{1b}') && !all.contains('\u{7}'), "{all:?}");
    }
}

/// A Docker credential helper `docker-credential-count` in `dir/bin` that logs each call to
/// `dir/count.log` and answers ci / PASSWORD.
fn counting_helper(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.join("count.log");
    let script = format!(
        "#!/bin/sh\nread -r server\necho \"$1 $server\" >> '{}'\n\
         printf '{{\"Username\":\"ci\",\"Secret\":\"{PASSWORD}\"}}'\n",
        log.display()
    );
    let path = bin.join("docker-credential-count");
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    let docker = dir.join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    std::fs::write(docker.join("config.json"), "{\"credsStore\": \"count\"}").unwrap();
    (bin, docker)
}

/// `materialize TOOL` with a registry.yaml in reach runs the credential helper only when a
/// registry is contacted: once on a miss, never on a cache hit.
#[test]
fn credentials_are_looked_up_only_when_a_registry_is_contacted() {
    let reg = RegistryServer::start();
    let protoc = pin(&fixture(PROTOC_ZIP));
    let repo = format!("{NS}/tools/protoc");
    reg.push(
        &repo,
        &protoc,
        protoreg::pipeline::extract::Format::Zip,
        "v36.2-linux-x86_64",
        None,
    );
    let ws = Workspace::new(&reg.host, "http://127.0.0.1:9", "");
    let pins = ws.dir.path().join("pins.bzl");
    std::fs::write(
        &pins,
        format!(
            "TOOLS = {{\n    \"protoc\": {{\"default\": \"36.2\"}},\n}}\n\
             PINS = {{\n    \"protoc\": {{\n        \"36.2\": {{\n            \"linux-x86_64\": (\"zip\", {}, \"{}\", \"https://example.invalid/protoc-36.2-linux-x86_64.zip\"),\n        }},\n    }},\n}}\n\
             PROVENANCE = {{\n    \"protoc\": {{\n        \"36.2\": \"test\",\n    }},\n}}\n",
            protoc.size, protoc.sha256
        ),
    )
    .unwrap();
    let (bin, docker) = counting_helper(ws.dir.path());
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let calls = || {
        std::fs::read_to_string(ws.dir.path().join("count.log"))
            .unwrap_or_default()
            .lines()
            .count()
    };
    let materialize = |out: &str| {
        let o = run(ws
            .cmd()
            .env("PATH", &path)
            .env("DOCKER_CONFIG", &docker)
            .args([
                "materialize",
                "protoc",
                "--platform",
                "linux-x86_64",
                "--json",
            ])
            .arg("--pins")
            .arg(&pins)
            .arg("--out")
            .arg(ws.dir.path().join(out)));
        assert!(o.status.success(), "{}", text(&o));
        assert_no_secret("materialize", &text(&o));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap()
    };
    let miss = materialize("out-1");
    assert_eq!(miss["cache"], "miss", "{miss}");
    assert_eq!(
        calls(),
        1,
        "a miss asks the helper once for the one registry"
    );
    for (i, out) in ["out-2", "out-3"].iter().enumerate() {
        let hit = materialize(out);
        assert_eq!(hit["cache"], "hit", "{hit}");
        assert_eq!(calls(), 1, "cache hit {i} ran the credential helper");
    }
}

/// A registry answering a blob with HTTP 500 and a 256 MiB error body: the pull fails with
/// the status, having read at most the document bound of the body.
#[test]
fn a_huge_error_body_of_a_blob_pull_is_not_read_whole() {
    let tokens = TokenServer::start(Policy::default());
    tokens.set_hostile(Hostile::HugeErrorBody(HUGE));
    let protoc = pin(&fixture(PROTOC_ZIP));
    let tmp = scratch();
    assert_refused_fast(
        &tokens,
        protoreg()
            .args(materialize_args(
                &protoc,
                "zip",
                &tmp.path().join("cache"),
                &tmp.path().join("out"),
            ))
            .args(["--plain-http", "--source"])
            .arg(format!("oci://{}/{NS}/tools/protoc", tokens.host)),
        "HTTP 500",
    );
    assert!(absent_or_empty(&tmp.path().join("out")));
}

/// A registry whose blob error message echoes the request: neither the bearer token the
/// pull negotiated nor any part of the Basic credentials reaches stderr, whether the echo
/// comes first or after padding that puts the cut for length inside the secret.
#[test]
fn a_blob_error_echoing_the_request_shows_no_token_and_no_part_of_a_secret() {
    let protoc = pin(&fixture(PROTOC_ZIP));
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
    for bearer in [true, false] {
        for pad in [0, 84, 100] {
            let tokens = TokenServer::start(Policy {
                user: USER.into(),
                password: PASSWORD.into(),
                anonymous: vec![],
                expires_in: 300,
            });
            tokens.set_hostile(Hostile::EchoBlobRequest { pad, bearer });
            let tmp = scratch();
            let o = run(with_creds(
                protoreg()
                    .args(materialize_args(
                        &protoc,
                        "zip",
                        &tmp.path().join("cache"),
                        &tmp.path().join("out"),
                    ))
                    .args(["--plain-http", "--source"])
                    .arg(format!("oci://{}/{NS}/tools/protoc", tokens.host)),
            ));
            assert_eq!(o.status.code(), Some(1), "{}", text(&o));
            let err = String::from_utf8_lossy(&o.stderr).to_string();
            assert!(err.contains("BLOB_UNKNOWN"), "{err}");
            assert_no_secret("stderr", &err);
            // No 8-character piece of the Basic value, nor of a token (a JWT's header
            // always starts `eyJ`), nor of the password.
            for secret in [basic.as_str(), PASSWORD] {
                for piece in secret.as_bytes().windows(8) {
                    let piece = String::from_utf8_lossy(piece);
                    assert!(
                        !err.contains(piece.as_ref()),
                        "bearer={bearer} pad={pad}: `{piece}` in {err}"
                    );
                }
            }
            assert!(
                !err.contains("eyJ"),
                "bearer={bearer} pad={pad}: a token in {err}"
            );
        }
    }
}
