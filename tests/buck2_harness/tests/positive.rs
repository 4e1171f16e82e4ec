//! Positive fixtures: analysis results and exact command lines for each platform, then the
//! host platform's actions executed for real.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;

use buck2_harness::{ActionKind, Harness};

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/repo")
}

fn platform(name: &str) -> String {
    format!("prelude//platforms:{name}")
}

fn bundle_argv(h: &Harness, target: &str, tp: &str, ep: &str) -> Vec<String> {
    let r = h
        .analyze(target, &platform(tp), &platform(ep))
        .unwrap_or_else(|e| panic!("{e:?}"));
    let runs: Vec<_> = r
        .actions
        .iter()
        .filter(|a| a.category == "bundle")
        .collect();
    assert_eq!(runs.len(), 1);
    match &runs[0].kind {
        ActionKind::Run { argv, .. } => argv.clone(),
        k => panic!("not a run: {k:?}"),
    }
}

const PLATFORMS: [(&str, &str); 5] = [
    ("linux-x86_64", "tools/gen-linux.sh"),
    // `:linux-arm64` (os and cpu) is more specific than `prelude//os:linux`, so it wins.
    ("linux-aarch64", "tools/gen-linux-arm64.sh"),
    ("darwin-arm64", "tools/gen-macos.sh"),
    ("darwin-x86_64", "tools/gen-macos.sh"),
    ("windows-x86_64", "tools/gen-windows.sh"),
];

#[test]
fn command_lines_per_platform() {
    let h = Harness::open(repo()).unwrap();
    for (p, tool) in PLATFORMS {
        let argv = bundle_argv(&h, "//protos:api", p, p);
        let out = format!("buck-out/v2/gen/root/{p}/protos/__api__/api.txt");
        // Post-order over the transitive set: the dependency's sources come first.
        let want = [
            tool,
            "--greeting=hello",
            "--out",
            &out,
            "protos/base.proto",
            "protos/api/a.proto",
            "protos/api/b.proto",
        ];
        assert_eq!(argv, want, "platform {p}");
    }
}

#[test]
fn tool_follows_the_execution_platform_not_the_target_platform() {
    let h = Harness::open(repo()).unwrap();
    let argv = bundle_argv(&h, "//protos:base", "linux-x86_64", "darwin-arm64");
    assert_eq!(
        argv,
        [
            "tools/gen-macos.sh",
            "--greeting=hello",
            "--out",
            "buck-out/v2/gen/root/linux-x86_64/protos/__base__/base.txt",
            "protos/base.proto"
        ]
    );
}

#[test]
fn providers_and_other_actions() {
    let h = Harness::open(repo()).unwrap();
    let p = platform("linux-x86_64");
    let r = h.analyze("//protos:api", &p, &p).unwrap();
    assert_eq!(r.cfg, "linux-x86_64");
    let cats: Vec<_> = r
        .actions
        .iter()
        .map(|a| (a.category.as_str(), a.identifier.as_deref()))
        .collect();
    assert_eq!(cats, [("bundle", None), ("write_json", Some("api.json"))]);
    match &r.actions[1].kind {
        ActionKind::Write { content, .. } => {
            assert_eq!(
                content,
                r#"{"count":3,"out":"buck-out/v2/gen/root/linux-x86_64/protos/__api__/api.txt","short_paths":["api/a.proto","api/b.proto"]}"#
            )
        }
        k => panic!("{k:?}"),
    }
    let providers = r.providers();
    assert_eq!(providers.len(), 2);
    assert!(providers[0].starts_with("DefaultInfo("), "{providers:?}");
    assert!(providers[1].starts_with("SrcsInfo("), "{providers:?}");

    let tc = h.analyze("//toolchains:gen", &p, &p).unwrap();
    assert_eq!(
        tc.provider_field("GenToolchainInfo", "flags").as_deref(),
        Some(r#"["--greeting=hello"]"#)
    );

    let blob = h.analyze("//protos:blob", &p, &p).unwrap();
    let kinds: Vec<_> = blob.actions.iter().map(|a| a.category.as_str()).collect();
    assert_eq!(kinds, ["download_file", "symlinked_dir", "copy"]);
}

fn host_platform() -> &'static str {
    match (std::env::consts::OS, std::env::consts::ARCH) {
        ("linux", "x86_64") => "linux-x86_64",
        ("linux", "aarch64") => "linux-aarch64",
        ("macos", "aarch64") => "darwin-arm64",
        ("macos", "x86_64") => "darwin-x86_64",
        other => panic!("no fixture platform for host {other:?}"),
    }
}

#[test]
fn host_actions_execute() {
    let h = Harness::open(repo()).unwrap();
    let host = host_platform();
    let b = h
        .build("//protos:api", &platform(host))
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(b.executed.len(), 1, "{:?}", b.executed);
    let text = std::fs::read_to_string(&b.outputs[0]).unwrap();
    let tool = PLATFORMS.iter().find(|(p, _)| *p == host).unwrap().1;
    let name = tool.trim_start_matches("tools/").trim_end_matches(".sh");
    assert_eq!(
        text,
        format!("{name} --greeting=hello\nsyntax = \"proto3\"; // base\nsyntax = \"proto3\"; // a\nsyntax = \"proto3\"; // b\n")
    );
    let manifest = std::fs::read_to_string(&b.outputs[1]).unwrap();
    assert!(manifest.contains("\"count\":3"), "{manifest}");
}

/// Serve one fixed body on loopback for every request, `n` times.
fn serve(body: &'static [u8], n: usize) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().take(n) {
            let mut s = s.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            s.write_all(head.as_bytes()).unwrap();
            s.write_all(body).unwrap();
        }
    });
    format!("http://{addr}")
}

#[test]
fn download_is_served_from_loopback_and_verified() {
    let mut h = Harness::open(repo()).unwrap();
    h.rewrite_url(
        "http://downloads.invalid",
        &serve(b"hello from loopback\n", 1),
    );
    let b = h
        .build("//protos:blob", &platform(host_platform()))
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert_eq!(
        std::fs::read_to_string(&b.outputs[0]).unwrap(),
        "hello from loopback\n"
    );
    let staged = b.outputs[1].join("blob/blob.txt");
    assert_eq!(
        std::fs::read_to_string(staged).unwrap(),
        "hello from loopback\n"
    );
    assert_eq!(
        std::fs::read_to_string(&b.outputs[2]).unwrap(),
        "hello from loopback\n"
    );
}

#[test]
fn download_with_wrong_bytes_fails() {
    let mut h = Harness::open(repo()).unwrap();
    h.rewrite_url(
        "http://downloads.invalid",
        &serve(b"tampered bytes here\n", 1),
    );
    let e = h
        .build("//protos:blob", &platform(host_platform()))
        .err()
        .expect("a digest mismatch");
    // Buck2's words (real_buck2.rs checks Buck2 says the same).
    assert!(
        format!("{e:?}").contains("Invalid sha256 digest. Expected 549ed6d2e9a81a14207ce0d780e0c581528305f798f43a706cfa1f0730501960, got "),
        "{e:?}"
    );
}

#[test]
fn tests_run_after_their_inputs_are_built() {
    let h = Harness::open(repo()).unwrap();
    let p = platform(host_platform());
    // `src` is `//protos:api`'s output: the runner builds it, then runs the command with `env`.
    let pass = h
        .test("//checks:has_a", &p)
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert!(pass.passed(), "{}{}", pass.stdout, pass.stderr);
    assert_eq!(pass.stdout, "found: syntax = \"proto3\"; // a\n");
    assert_eq!(
        pass.command,
        [
            "/bin/sh",
            "checks/expect.sh",
            &format!(
                "buck-out/v2/gen/root/{}/protos/__api__/api.txt",
                host_platform()
            )
        ]
    );

    let fail = h
        .test("//checks:has_z", &p)
        .unwrap_or_else(|e| panic!("{e:?}"));
    assert!(!fail.passed());
    assert!(
        fail.stderr.starts_with("missing from buck-out/")
            && fail
                .stderr
                .ends_with("api.txt: syntax = \"proto3\"; // z\n"),
        "{}",
        fail.stderr
    );

    let e = h.test("//protos:api", &p).err().expect("not a test");
    assert!(
        format!("{e:?}").contains("it returns no `ExternalRunnerTestInfo`"),
        "{e:?}"
    );
}
