//! Bad input of every kind is exit 2 with a message that says what and how to fix it, and
//! touches nothing.

mod common;

use common::*;

const SHA: &str = "0000000000000000000000000000000000000000000000000000000000000000";

fn materialize<S: AsRef<std::ffi::OsStr>>(extra: &[S]) -> (std::process::Output, common::Scratch) {
    let tmp = scratch();
    let o = run(protoreg()
        .arg("materialize")
        .arg("--cache-dir")
        .arg(tmp.path().join("cache"))
        .args(extra));
    (o, tmp)
}

/// A valid-looking `materialize` command line with `over` replacing or adding flags.
fn with(over: &[(&str, &str)]) -> Vec<String> {
    let mut args: Vec<(String, String)> = [
        ("--sha256", SHA),
        ("--size", "1"),
        ("--format", "zip"),
        ("--out", "o"),
    ]
    .iter()
    .map(|(f, v)| (f.to_string(), v.to_string()))
    .collect();
    for (flag, value) in over {
        match args.iter_mut().find(|(f, _)| f == flag) {
            Some(slot) => slot.1 = value.to_string(),
            None => args.push((flag.to_string(), value.to_string())),
        }
    }
    args.into_iter().flat_map(|(f, v)| [f, v]).collect()
}

#[test]
fn each_kind_of_bad_input_is_exit_2_with_a_hint() {
    let g64 = "g".repeat(64);
    let cases: Vec<(Vec<String>, &str)> = vec![
        (with(&[("--sha256", "abc")]), "not a sha256 digest"),
        (with(&[("--sha256", &g64)]), "64 hex digits"),
        (with(&[("--size", "12MB")]), "not a byte count"),
        (with(&[("--format", "rar")]), "unknown format `rar`"),
        (with(&[("--source", "ftp://h/x")]), "malformed source"),
        (with(&[("--source", "oci://host-only")]), "malformed source"),
        (with(&[("--source", "oci://h/Upper")]), "malformed source"),
        (
            with(&[("--source", "oci://127.0.0.1:/x")]),
            "the port a number from 1 to 65535",
        ),
        (with(&[("--link", "symlink")]), "unknown --link"),
        (with(&[("--executable", "../x")]), "invalid path"),
        (with(&[("--strip-prefix", "/abs")]), "invalid path"),
    ];
    for (args, expect) in cases {
        let (o, tmp) = materialize(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(expect), "{args:?}: {err}");
        assert!(err.contains("hint:"), "{args:?}: no hint in {err}");
        assert!(
            !tmp.path().join("cache").exists(),
            "{args:?}: bad input touched the cache"
        );
    }
}

#[test]
fn a_bad_unsized_cap_is_exit_2_with_a_hint() {
    for bad in ["0", "-1", "12MB", "lots", "1.5"] {
        let tmp = scratch();
        let args = with(&[]);
        let i = args.iter().position(|a| a == "--size").unwrap();
        let unsized_args: Vec<&String> = args
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i && *j != i + 1)
            .map(|(_, a)| a)
            .collect();
        // Refused whether or not the size is known: the variable is checked up front.
        for args in [unsized_args, args.iter().collect()] {
            let o = run(protoreg()
                .current_dir(tmp.path())
                .env("PROTOREG_MAX_UNSIZED_BYTES", bad)
                .arg("materialize")
                .arg("--cache-dir")
                .arg(tmp.path().join("cache"))
                .args(&args));
            assert_eq!(o.status.code(), Some(2), "{bad}: {}", text(&o));
            let err = String::from_utf8_lossy(&o.stderr);
            assert!(
                err.contains("PROTOREG_MAX_UNSIZED_BYTES")
                    && err.contains("positive number of bytes"),
                "{bad}: {err}"
            );
            assert!(err.contains("hint:"), "{bad}: {err}");
            assert!(
                !tmp.path().join("cache").exists(),
                "{bad}: touched the cache"
            );
        }
    }
}

#[test]
fn usage_errors_are_exit_2() {
    let (o, _t) = materialize(&["--sha256", SHA]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = run(protoreg().arg("no-such-command"));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = run(protoreg().args([
        "extract",
        "/nonexistent",
        "--sha256",
        "xyz",
        "--format",
        "zip",
        "--out",
        "/tmp/x",
    ]));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
}

#[test]
fn a_non_empty_output_is_refused_and_kept() {
    let tmp = scratch();
    let out = tmp.path().join("out");
    std::fs::create_dir(&out).unwrap();
    std::fs::write(out.join("mine.txt"), "keep me").unwrap();
    let o = run(protoreg()
        .args([
            "materialize",
            "--sha256",
            SHA,
            "--size",
            "1",
            "--format",
            "zip",
            "--cache-dir",
        ])
        .arg(tmp.path().join("cache"))
        .arg("--out")
        .arg(&out));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("exists and is not empty"));
    assert_eq!(
        std::fs::read_to_string(out.join("mine.txt")).unwrap(),
        "keep me"
    );
}

#[test]
fn missing_files_named_on_the_command_line_are_exit_2() {
    let tmp = scratch();
    let o = run(protoreg()
        .args([
            "materialize",
            "protoc",
            "--pins",
            "/nonexistent/pins.bzl",
            "--out",
        ])
        .arg(tmp.path().join("o")));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr)
        .contains("pins file `/nonexistent/pins.bzl` does not exist"));
    let o = run(protoreg()
        .args([
            "extract",
            "/nonexistent/a.zip",
            "--sha256",
            SHA,
            "--format",
            "zip",
            "--out",
        ])
        .arg(tmp.path().join("o")));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not exist"));
}

#[test]
fn bad_durations_in_the_environment_are_exit_2_never_a_default_or_a_panic() {
    for (var, bad) in [
        ("PROTOREG_TIMEOUT", "abc"),
        ("PROTOREG_TIMEOUT", "0"),
        ("PROTOREG_TIMEOUT", "-1"),
        ("PROTOREG_TIMEOUT", "inf"),
        ("PROTOREG_TIMEOUT", "1e300"),
        ("PROTOREG_TIMEOUT", "86401"),
        ("PROTOREG_LOCK_TIMEOUT", "18446744073709551615"),
        ("PROTOREG_LOCK_TIMEOUT", "-5"),
    ] {
        let tmp = scratch();
        let o = run(protoreg()
            .current_dir(tmp.path())
            .env(var, bad)
            .arg("materialize")
            .arg("--cache-dir")
            .arg(tmp.path().join("cache"))
            .args(with(&[])));
        assert_eq!(o.status.code(), Some(2), "{var}={bad}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&format!("{var}=`{bad}`"))
                && err.contains("whole number of seconds")
                && err.contains("to 86400"),
            "{var}={bad}: {err}"
        );
        assert!(err.contains("hint:"), "{var}={bad}: {err}");
        assert!(
            !tmp.path().join("cache").exists(),
            "{var}={bad}: touched the cache"
        );
    }
}

#[test]
fn a_pins_file_nested_too_deep_or_not_utf8_is_exit_2_naming_it() {
    let tmp = scratch();
    let deep = tmp.path().join("deep.bzl");
    std::fs::write(&deep, format!("PINS = {}\n", "[".repeat(100_000))).unwrap();
    let latin1 = tmp.path().join("latin1.bzl");
    std::fs::write(&latin1, b"PINS = {}\n# caf\xe9\n").unwrap();
    for (file, want) in [
        (&deep, ":1: `pins`: values nested more than 32 deep"),
        (&latin1, ":2: `(document)`: the pins file is not UTF-8"),
    ] {
        let o = run(protoreg()
            .args(["materialize", "protoc", "--pins"])
            .arg(file)
            .arg("--out")
            .arg(tmp.path().join("o")));
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains(&format!("{}{want}", file.display())),
            "want `{want}` in {err}"
        );
        assert!(err.contains("hint:"), "{err}");
    }
}

/// A password holding `/` (or `?`, `#`, `@`) is still a password: no error shows it, whether
/// the URL came from a proxy variable, registry.yaml, PROTOREG_REGISTRY or `--source`.
#[test]
fn a_password_with_a_slash_is_never_printed() {
    const SECRET: &str = "pa/ss?w#rd@x";
    let tmp = scratch();
    let check = |what: &str, o: &std::process::Output| {
        let stderr = text(o);
        assert!(!o.status.success(), "{what}: {stderr}");
        for part in ["pa/ss", "ss?w", "w#rd", "rd@x"] {
            assert!(!stderr.contains(part), "{what} showed `{part}`: {stderr}");
        }
        assert!(stderr.contains("***@"), "{what}: {stderr}");
    };
    // A proxy variable that is not usable (an unsupported scheme).
    let o = run(protoreg()
        .arg("materialize")
        .arg("--cache-dir")
        .arg(tmp.path().join("cache"))
        .args(with(&[("--source", "https://127.0.0.1:9/a.zip")]))
        .env(
            "HTTPS_PROXY",
            format!("socks5://user:{SECRET}@127.0.0.1:1080"),
        )
        .current_dir(tmp.path()));
    check("a proxy variable", &o);
    // registry.yaml's `url` with credentials in it is refused by name.
    let yaml = tmp.path().join("registry.yaml");
    std::fs::write(
        &yaml,
        format!("primary_registry:\n  url: \"https://user:{SECRET}@127.0.0.1:9\"\n"),
    )
    .unwrap();
    let o = run(protoreg()
        .args(["--config", yaml.to_str().unwrap(), "health"])
        .current_dir(tmp.path()));
    check("registry.yaml", &o);
    // PROTOREG_REGISTRY with credentials.
    let o = run(protoreg()
        .args(["health"])
        .env("PROTOREG_REGISTRY", format!("user:{SECRET}@127.0.0.1:9/ns"))
        .current_dir(tmp.path()));
    check("PROTOREG_REGISTRY", &o);
    // A failed `--source http://user:pa/ss@…`: the attempt line names the source.
    let o = run(protoreg()
        .arg("materialize")
        .arg("--cache-dir")
        .arg(tmp.path().join("cache"))
        .args(with(&[(
            "--source",
            &format!("http://user:{SECRET}@127.0.0.1:9/a.zip"),
        )]))
        .current_dir(tmp.path()));
    check("--source", &o);
}

/// The refusals that echo what was given (a registry URL, a mirror endpoint, a source) hide a
/// password wherever it ends: before a `/`, with a space in it, or in an address without a
/// scheme.
#[test]
fn echoed_registry_addresses_and_sources_never_show_a_password() {
    const SECRET: &str = "Hunter2SECRET";
    let tmp = scratch();
    let shows_no_secret = |what: &str, o: &std::process::Output| {
        assert!(!o.status.success(), "{what}: {}", text(o));
        let all = text(o);
        assert!(
            !all.contains("Hunter2") && !all.contains("SECRET"),
            "{what}: {all}"
        );
    };
    let yaml = tmp.path().join("registry.yaml");
    std::fs::write(
        &yaml,
        format!(
            "primary_registry:\n  url: \"https://ci:{SECRET}/x@reg.example\"\n  namespace: \"x\"\n"
        ),
    )
    .unwrap();
    let o = run(protoreg().args(["--config", yaml.to_str().unwrap(), "health"]));
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    shows_no_secret("registry.yaml", &o);
    // Hosts no syntax check keeps up with (IDN, an IPv6 zone, a `+`) end the userinfo too.
    for registry in [
        format!("ci:{SECRET}/x@127.0.0.1:9"),
        format!("ci:{SECRET}@bücher.example"),
        format!("ci:{SECRET}@[fe80::1%eth0]:5000"),
        format!("ci:{SECRET}@my+reg:5000"),
    ] {
        let o = run(protoreg()
            .current_dir(tmp.path())
            .args(["health"])
            .env("PROTOREG_REGISTRY", &registry));
        shows_no_secret("PROTOREG_REGISTRY", &o);
    }
    let o = run(protoreg()
        .arg("materialize")
        .arg("--cache-dir")
        .arg(tmp.path().join("cache"))
        .args(with(&[("--source", "http://127.0.0.1:9/a.zip")]))
        .env("HTTP_PROXY", format!("http://u:{SECRET}@bücher.example:1"))
        .current_dir(tmp.path()));
    shows_no_secret("HTTP_PROXY", &o);
    let layout = tmp.path().join("layout");
    for from in [
        format!("ci:{SECRET}@127.0.0.1:9"),
        format!("oci://ci:{SECRET}@127.0.0.1:9/ns"),
    ] {
        let o = run(protoreg()
            .current_dir(tmp.path())
            .args(["mirror", "--from", &from, "--to"])
            .arg(format!("oci-layout:{}", layout.display())));
        shows_no_secret("mirror --from", &o);
    }
    for source in [
        format!("http://user:pa ss{SECRET}@127.0.0.1:9/x"),
        format!("http://ci:{SECRET}@bücher.example/a.zip"),
        format!("oci://ci:{SECRET}@127.0.0.1:9/repo"),
    ] {
        let (o, _tmp) = materialize(&with(&[("--source", &source)]));
        shows_no_secret("--source", &o);
    }
}
