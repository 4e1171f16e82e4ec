//! Basic auth against a registry with htpasswd: works with credentials (environment or
//! Docker's config.json), fails clearly without, and the password is in no output.

mod common;

use base64::Engine;
use common::*;
use protoreg::auth::Credentials;
use protoreg::pipeline::extract::Format;

const PASSWORD: &str = "s3cret-Pa55word";

/// docker-registry with htpasswd (ci / PASSWORD) holding the fixture protoc: the registry,
/// the pin, and the `oci://` source.
fn registry_with_protoc() -> (RegistryServer, Pinned, String) {
    let reg = RegistryServer::start_with_htpasswd("ci", PASSWORD);
    let protoc = pin(&fixture(PROTOC_ZIP));
    let creds = Credentials::Basic {
        username: "ci".into(),
        password: PASSWORD.into(),
    };
    reg.push(
        "ns/tools/protoc",
        &protoc,
        Format::Zip,
        "v36.2-linux-x86_64",
        Some(creds),
    );
    let source = format!("oci://{}/ns/tools/protoc", reg.host);
    (reg, protoc, source)
}

#[test]
fn basic_auth_with_and_without_credentials() {
    let (reg, protoc, source) = registry_with_protoc();
    let tmp = scratch();

    // Without credentials: exit 1, says why and what to do.
    let out = tmp.path().join("anon");
    let o = run(protoreg()
        .args(materialize_args(
            &protoc,
            "zip",
            &tmp.path().join("c1"),
            &out,
        ))
        .args(["--plain-http", "--source", &source]));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("PROTOREG_REGISTRY_USERNAME"), "{err}");
    assert!(absent_or_empty(&out));

    // Wrong password: refused, and neither password is echoed.
    let o = run(protoreg()
        .env("PROTOREG_REGISTRY_USERNAME", "ci")
        .env("PROTOREG_REGISTRY_PASSWORD", "wrong-Pa55")
        .args(materialize_args(
            &protoc,
            "zip",
            &tmp.path().join("c2"),
            &tmp.path().join("wrong"),
        ))
        .args(["--plain-http", "--source", &source]));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(!text(&o).contains("wrong-Pa55"));

    // From the environment.
    let out = tmp.path().join("env");
    let o = run(protoreg()
        .env("PROTOREG_REGISTRY_USERNAME", "ci")
        .env("PROTOREG_REGISTRY_PASSWORD", PASSWORD)
        .args(materialize_args(
            &protoc,
            "zip",
            &tmp.path().join("c3"),
            &out,
        ))
        .args(["--plain-http", "--json", "--source", &source]));
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains(PASSWORD));
    assert!(out.join("bin/protoc").is_file());

    // From Docker's config.json.
    let docker = docker_config_auths(tmp.path(), &reg.host, "ci", PASSWORD);
    let out = tmp.path().join("docker-out");
    let o = run(protoreg()
        .env("DOCKER_CONFIG", &docker)
        .args(materialize_args(
            &protoc,
            "zip",
            &tmp.path().join("c4"),
            &out,
        ))
        .args(["--plain-http", "--json", "--source", &source]));
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains(PASSWORD));
    assert!(out.join("bin/protoc").is_file());
}

/// A Docker credential helper named `name` in a directory of its own, answering `get` for
/// `host` with ci's password (after logging what it was asked), "credentials not found" for
/// any other server, and failing on anything else it is told to.
fn credential_helper(
    dir: &std::path::Path,
    name: &str,
    host: &str,
    mode: &str,
) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let log = dir.join(format!("{name}.log"));
    let script = format!(
        "#!/bin/sh\nread -r server\necho \"$1 $server\" >> '{log}'\n\
         [ \"{mode}\" = fail ] && {{ echo 'keychain locked' >&2; exit 3; }}\n\
         if [ \"$server\" = '{host}' ]; then\n  printf '{{\"ServerURL\":\"%s\",\"Username\":\"ci\",\"Secret\":\"{PASSWORD}\"}}' \"$server\"\nelse\n  echo 'credentials not found in native keychain'; exit 1\nfi\n",
        log = log.display()
    );
    let path = bin.join(format!("docker-credential-{name}"));
    std::fs::write(&path, script).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[test]
fn docker_credential_helpers_and_netrc_supply_registry_credentials() {
    let (reg, protoc, source) = registry_with_protoc();
    let tmp = scratch();
    let path = format!(
        "{}:{}",
        credential_helper(tmp.path(), "ok", &reg.host, "ok").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    credential_helper(tmp.path(), "broken", &reg.host, "fail");
    let materialize = |config: &str, case: &str| {
        let docker = tmp.path().join(format!("docker-{case}"));
        std::fs::create_dir_all(&docker).unwrap();
        std::fs::write(docker.join("config.json"), config).unwrap();
        run(protoreg()
            .env("DOCKER_CONFIG", &docker)
            .env("PATH", &path)
            .args(materialize_args(
                &protoc,
                "zip",
                &tmp.path().join(format!("cache-{case}")),
                &tmp.path().join(format!("out-{case}")),
            ))
            .args(["--plain-http", "--source", &source]))
    };
    // credHelpers.<host>, and credsStore for every host.
    for (case, config) in [
        (
            "helpers",
            format!("{{\"credHelpers\": {{\"{}\": \"ok\"}}}}", reg.host),
        ),
        ("store", "{\"credsStore\": \"ok\"}".to_string()),
    ] {
        let o = materialize(&config, case);
        assert!(o.status.success(), "{case}: {}", text(&o));
        assert!(!text(&o).contains(PASSWORD));
    }
    let asked = std::fs::read_to_string(tmp.path().join("ok.log")).unwrap();
    assert_eq!(asked, format!("get {h}\nget {h}\n", h = reg.host));
    // A helper that is not there, or fails: the error names it.
    let o = materialize("{\"credsStore\": \"nothere\"}", "missing");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("`docker-credential-nothere` (config.json `credsStore`) is not on PATH"),
        "{}",
        text(&o)
    );
    let o = materialize("{\"credsStore\": \"broken\"}", "broken");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).contains("`docker-credential-broken` failed")
            && text(&o).contains("keychain locked"),
        "{}",
        text(&o)
    );
    // .netrc, for a registry no Docker config covers.
    let netrc = tmp.path().join("netrc");
    std::fs::write(
        &netrc,
        format!("machine example.invalid login x password y\nmachine 127.0.0.1\n  login ci\n  password {PASSWORD}\n"),
    )
    .unwrap();
    let o = run(protoreg()
        .env("NETRC", &netrc)
        .args(materialize_args(
            &protoc,
            "zip",
            &tmp.path().join("cache-netrc"),
            &tmp.path().join("out-netrc"),
        ))
        .args(["--plain-http", "--source", &source]));
    assert!(o.status.success(), "{}", text(&o));
    assert!(!text(&o).contains(PASSWORD));
}

#[test]
fn netrc_credentials_go_to_their_host_only() {
    use common::http::{HttpServer, Route};
    let protoc = pin(&fixture(PROTOC_ZIP));
    let basic = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("ci:{PASSWORD}"))
    );
    let server = HttpServer::start();
    let url = server.route(
        "/protoc.zip",
        Route::RequireAuth(basic.clone(), protoc.path.clone()),
    );
    // Another host (localhost is not 127.0.0.1 to an origin check) that would accept them.
    let other = HttpServer::start();
    let elsewhere = other
        .route(
            "/protoc.zip",
            Route::RequireAuth(basic.clone(), protoc.path.clone()),
        )
        .replace("127.0.0.1", "localhost");
    let redirect = server.route("/moved.zip", Route::Redirect(elsewhere));
    let tmp = scratch();
    let netrc = tmp.path().join("netrc");
    std::fs::write(
        &netrc,
        format!("machine 127.0.0.1 login ci password {PASSWORD}\nmachine localhost login ci password {PASSWORD}-not-for-redirects\n"),
    )
    .unwrap();
    let fetch = |source: &str, case: &str, netrc: &std::path::Path| {
        run(protoreg()
            .env("NETRC", netrc)
            .args(materialize_args(
                &protoc,
                "zip",
                &tmp.path().join(format!("cache-{case}")),
                &tmp.path().join(format!("out-{case}")),
            ))
            .args(["--source", source]))
    };
    let o = fetch(&url, "netrc", &netrc);
    assert!(o.status.success(), "{}", text(&o));
    let o = fetch(&url, "none", std::path::Path::new("/nonexistent-netrc"));
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("HTTP 401"), "{}", text(&o));
    // Redirected to another host: 127.0.0.1's credentials are not sent there (and the
    // redirect's own host gets none either: headers are for the origin asked).
    let o = fetch(&redirect, "redirect", &netrc);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("HTTP 401"), "{}", text(&o));
    assert!(!text(&o).contains(PASSWORD));
}

/// A credential helper `docker-credential-NAME` in `dir/bin` running `body` (a shell script).
fn helper_script(dir: &std::path::Path, name: &str, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let path = bin.join(format!("docker-credential-{name}"));
    std::fs::write(&path, format!("#!/bin/sh\nread -r server\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[test]
fn a_credential_helper_that_writes_a_lot_neither_hangs_nor_floods() {
    let (_reg, protoc, source) = registry_with_protoc();
    let tmp = scratch();
    // ~1 MiB of chatter on stderr (a pipe holds 64 KiB), then the right answer.
    let bin = helper_script(
        tmp.path(),
        "chatty",
        &format!(
            "head -c 1000000 /dev/zero | tr '\\0' x >&2\nprintf '{{\"Username\":\"ci\",\"Secret\":\"{PASSWORD}\"}}'"
        ),
    );
    // Never stops talking (bounded: `yes` dies of SIGPIPE once nobody reads, and the test
    // process kills nothing it did not start).
    helper_script(tmp.path(), "endless", "exec yes '{\"Username\":'");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let materialize = |store: &str| {
        let docker = tmp.path().join(format!("docker-{store}"));
        std::fs::create_dir_all(&docker).unwrap();
        std::fs::write(
            docker.join("config.json"),
            format!("{{\"credsStore\": \"{store}\"}}"),
        )
        .unwrap();
        let started = std::time::Instant::now();
        let o = run(protoreg()
            .env("DOCKER_CONFIG", &docker)
            .env("PATH", &path)
            .args(materialize_args(
                &protoc,
                "zip",
                &tmp.path().join(format!("cache-{store}")),
                &tmp.path().join(format!("out-{store}")),
            ))
            .args(["--plain-http", "--source", &source]));
        (o, started.elapsed())
    };
    let (o, took) = materialize("chatty");
    assert_protoc_materialized(&o, &tmp.path().join("out-chatty"));
    assert!(took.as_secs() < 10, "took {took:?}: {}", text(&o));
    assert!(!text(&o).contains(PASSWORD));

    let (o, took) = materialize("endless");
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(took.as_secs() < 10, "took {took:?}: {}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("`docker-credential-endless` wrote more than 1.0 MiB on stdout"),
        "{err}"
    );
    assert!(err.len() < 4096, "{err}");
    assert!(absent_or_empty(&tmp.path().join("out-endless")));
}

/// `.netrc` is read as curl reads it: for each file, real curl (`--netrc-file`) and protoreg
/// (`NETRC`) fetch from the same loopback server, which records the `Authorization` each
/// sent; they must agree, and on the expected credentials (or none). The cases are the
/// issue's (comments that named `default` or a machine, a commented-out `default` line, a
/// quoted password with a space) and curl's other rules (escapes in quotes, `#` inside a
/// token, `macdef` bodies, `default`, CRLF).
#[test]
fn netrc_is_read_as_curl_reads_it() {
    use common::http::{HttpServer, Route};
    let protoc = pin(&fixture(PROTOC_ZIP));
    let server = HttpServer::start();
    let tmp = scratch();
    let basic = |user_pass: &str| {
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(user_pass)
        ))
    };
    let cases: [(&str, &str, Option<String>); 10] = [
        (
            "comment-names-default",
            "machine other.example # default for other.example\n  login u password p\n",
            None,
        ),
        (
            "commented-default-line",
            "machine other.example login a password b\n# default login u password p\n",
            None,
        ),
        (
            "comment-names-machine",
            "machine other.example # was: machine 127.0.0.1\n  login u password p\n",
            None,
        ),
        (
            "quoted-password",
            "machine 127.0.0.1 login ci password \"two words\"\n",
            basic("ci:two words"),
        ),
        (
            "quoted-escapes",
            "machine 127.0.0.1 login \"c i\" password \"q\\\"x\\\\y\\tz\"\n",
            basic("c i:q\"x\\y\tz"),
        ),
        (
            "hash-inside-a-token",
            "machine 127.0.0.1 login ci password pa#ss # a comment\n",
            basic("ci:pa#ss"),
        ),
        (
            "macro-body",
            "macdef init\nmachine 127.0.0.1 login evil password bad\n\nmachine 127.0.0.1 login ci password good\n",
            basic("ci:good"),
        ),
        (
            "default",
            "machine other.example login a password b\ndefault login d password x\n",
            basic("d:x"),
        ),
        (
            "crlf-and-case",
            "MACHINE 127.0.0.1\r\n  LOGIN ci\r\n  PASSWORD crlf\r\n",
            basic("ci:crlf"),
        ),
        (
            "indented-comment",
            "   # machine 127.0.0.1 login u password p\nmachine other.example login a password b\n",
            None,
        ),
    ];
    for (case, netrc, want) in cases {
        let file = tmp.path().join(format!("netrc-{case}"));
        std::fs::write(&file, netrc).unwrap();
        let by_curl = server.route(&format!("/{case}/curl"), Route::File(protoc.path.clone()));
        let mut curl = std::process::Command::new("curl");
        for var in PROXY_VARS {
            curl.env_remove(var);
        }
        // -q: no ~/.curlrc; the netrc file is the only source of credentials.
        let o = run(curl
            .args([
                "-q",
                "-sS",
                "-o",
                "/dev/null",
                "--max-time",
                "20",
                "--noproxy",
                "*",
            ])
            .arg("--netrc-file")
            .arg(&file)
            .arg(&by_curl));
        assert!(o.status.success(), "curl, {case}: {}", text(&o));
        let by_protoreg = server.route(
            &format!("/{case}/protoreg"),
            Route::File(protoc.path.clone()),
        );
        let o = run(protoreg()
            .env("NETRC", &file)
            .args(materialize_args(
                &protoc,
                "zip",
                &tmp.path().join(format!("cache-{case}")),
                &tmp.path().join(format!("out-{case}")),
            ))
            .args(["--source", &by_protoreg]));
        assert!(o.status.success(), "protoreg, {case}: {}", text(&o));
        let curl_sent = server.authorizations(&format!("/{case}/curl"));
        let protoreg_sent = server.authorizations(&format!("/{case}/protoreg"));
        assert_eq!(curl_sent, [want], "curl, {case}");
        assert_eq!(protoreg_sent, curl_sent, "protoreg and curl differ: {case}");
    }
}

/// A netrc that is not one: an open quote names the file and line; a huge file is refused
/// unread past the bound; `/dev/null` and a FIFO give no credentials (neither blocks).
#[test]
fn a_netrc_that_is_not_one_is_named_or_ignored_never_waited_on() {
    use common::http::{HttpServer, Route};
    let protoc = pin(&fixture(PROTOC_ZIP));
    let server = HttpServer::start();
    let url = server.route("/protoc.zip", Route::File(protoc.path.clone()));
    let tmp = scratch();
    let fetch = |case: &str, netrc: &std::path::Path| {
        let mut cmd = protoreg();
        cmd.env("NETRC", netrc)
            .args(materialize_args(
                &protoc,
                "zip",
                &tmp.path().join(format!("cache-{case}")),
                &tmp.path().join(format!("out-{case}")),
            ))
            .args(["--source", &url]);
        common::bounded::run_within(&mut cmd, std::time::Duration::from_secs(20))
            .unwrap_or_else(|| panic!("{case}: NETRC={} hung", netrc.display()))
    };
    let open_quote = tmp.path().join("open-quote");
    std::fs::write(
        &open_quote,
        format!("machine 127.0.0.1\n  login ci\n  password \"{PASSWORD}\n"),
    )
    .unwrap();
    let o = fetch("open-quote", &open_quote);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains(&format!(
            "`{}` line 3: a quoted token is not closed",
            open_quote.display()
        )),
        "{t}"
    );
    assert!(!t.contains(PASSWORD), "{t}");
    assert!(absent_or_empty(&tmp.path().join("out-open-quote")));
    let huge = tmp.path().join("huge");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let o = fetch("huge", &huge);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(text(&o).contains("is larger than 1.0 MiB"), "{}", text(&o));
    let fifo = tmp.path().join("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    for (case, path) in [("null", std::path::Path::new("/dev/null")), ("fifo", &fifo)] {
        let o = fetch(case, path);
        assert_protoc_materialized(&o, &tmp.path().join(format!("out-{case}")));
    }
    assert_eq!(server.authorizations("/protoc.zip"), [None, None]);
}

/// `docker login`'s Docker Hub key serves a pull from each of Docker Hub's names, through
/// the real resolution path: a proxy takes Docker Hub's addresses to a loopback registry
/// with htpasswd (over plain HTTP, so no certificate for Docker Hub's names is needed).
#[test]
fn docker_logins_hub_key_serves_every_name_of_docker_hub() {
    use common::forward_proxy::ForwardProxy;
    let (reg, protoc, _) = registry_with_protoc();
    let tmp = scratch();
    let hub = ["docker.io", "index.docker.io", "registry-1.docker.io"];
    let aliases: Vec<(String, &str)> = hub
        .iter()
        .map(|h| (format!("{h}:80"), reg.host.as_str()))
        .collect();
    let aliases: Vec<(&str, &str)> = aliases.iter().map(|(f, t)| (f.as_str(), *t)).collect();
    let proxy = ForwardProxy::with_aliases(&aliases);
    let docker = docker_config_auths(tmp.path(), "https://index.docker.io/v1/", "ci", PASSWORD);
    for host in hub {
        let o = run(protoreg()
            .env("DOCKER_CONFIG", &docker)
            .env("http_proxy", proxy.url())
            .args(materialize_args(
                &protoc,
                "zip",
                &tmp.path().join(format!("cache-{host}")),
                &tmp.path().join(format!("out-{host}")),
            ))
            .args([
                "--plain-http",
                "--source",
                &format!("oci://{host}/ns/tools/protoc"),
            ]));
        assert_protoc_materialized(&o, &tmp.path().join(format!("out-{host}")));
        assert!(!text(&o).contains(PASSWORD));
    }
    // Every request went to Docker Hub's names (none anywhere else): forwarded, or tunnelled
    // with CONNECT (protoreg's pulls use the http(s):// sources' client).
    for (method, target) in proxy.targets() {
        assert!(
            hub.iter().any(|h| if method == "CONNECT" {
                target == format!("{h}:80")
            } else {
                target.starts_with(&format!("http://{h}/"))
            }),
            "{method} {target}"
        );
    }
}

/// Every small file protoreg is pointed at is read only if it is a regular file of bounded
/// size: a FIFO (whose open blocks until someone writes) or `/dev/zero` as Docker's
/// config.json, registry.yaml, the pins file or the catalogue fails fast, naming it.
#[test]
fn a_fifo_or_a_device_as_any_input_file_fails_fast_naming_it() {
    let reg = RegistryServer::start();
    let tmp = scratch();
    let fifo = tmp.path().join("fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let docker = tmp.path().join("docker");
    std::fs::create_dir(&docker).unwrap();
    assert!(std::process::Command::new("mkfifo")
        .arg(docker.join("config.json"))
        .status()
        .unwrap()
        .success());
    let zeros = std::path::Path::new("/dev/zero");
    let sha = "0".repeat(64);
    let base = |c: &mut std::process::Command| {
        c.current_dir(tmp.path())
            .env_remove("PROTOREG_CONFIG")
            .env_remove("PROTOREG_PINS")
            .env_remove("PROTOREG_CATALOGUE")
            .env("HOME", tmp.path())
            .arg("--cache-dir")
            .arg(tmp.path().join("cache"));
    };
    let limit = std::time::Duration::from_secs(20);
    // Docker's config.json, reached when the registry is contacted.
    let mut c = protoreg();
    base(&mut c);
    c.env("DOCKER_CONFIG", &docker)
        .args([
            "--plain-http",
            "materialize",
            "--sha256",
            &sha,
            "--format",
            "raw",
            "--out",
        ])
        .arg(tmp.path().join("out"))
        .args(["--source", &format!("oci://{}/repo", reg.host)]);
    let o = common::bounded::run_within(&mut c, limit).expect("hung on a FIFO config.json");
    assert!(!o.status.success());
    assert!(text(&o).contains("not a regular file"), "{}", text(&o));
    for file in [fifo.as_path(), zeros] {
        // registry.yaml
        let mut c = protoreg();
        base(&mut c);
        c.arg("--config").arg(file).arg("health");
        let o = common::bounded::run_within(&mut c, limit).expect("hung on registry.yaml");
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains("not a regular file"), "{}", text(&o));
        // the pins file and the catalogue
        for flag in ["--pins", "--catalogue"] {
            let mut c = protoreg();
            base(&mut c);
            if flag == "--catalogue" {
                c.arg("--catalogue")
                    .arg(file)
                    .arg("outdated")
                    .arg("--pins")
                    .arg(
                        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                            .join("toolchains/pins.bzl"),
                    );
            } else {
                c.arg("outdated").arg("--pins").arg(file);
            }
            let o = common::bounded::run_within(&mut c, limit).expect("hung on a pins file");
            assert_eq!(o.status.code(), Some(2), "{flag}: {}", text(&o));
            assert!(
                text(&o).contains("not a regular file"),
                "{flag}: {}",
                text(&o)
            );
        }
    }
}
