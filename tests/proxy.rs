//! `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY` for every kind of source, through a
//! loopback proxy that counts what passed it (tests/common/forward_proxy.rs). The servers are
//! named `*.test`, names only that proxy resolves: a fetch that succeeds went through it. The
//! real protoreg, Debian's docker-registry, real HTTP(S) file servers; every artifact is
//! verified by its pin and the materialized protoc is run.

mod common;

use std::path::Path;

use common::forward_proxy::ForwardProxy;
use common::github::{Asset, FakeGitHub};
use common::http::{HttpServer, Route};
use common::ops::*;
use common::tls::{image_to_push, push_image, test_ca, HttpsServer};
use common::*;

const PROXY_PASSWORD: &str = "pr0xy-S3cret";

/// `host:port` of `reg` as `name:port`.
fn named(host: &str, name: &str) -> String {
    format!("{name}:{}", host.rsplit(':').next().unwrap())
}

/// protoc in a plain-HTTP registry and on an HTTP file server, and the two sources for it
/// (`oci://…`, `http://…/protoc.zip`); with `named`, their hosts are `registry.test` and
/// `files.test`, which only the proxy resolves.
fn both_sources(named_hosts: bool) -> ((RegistryServer, HttpServer), Pinned, String, String) {
    let (reg, protoc) = registry_with_protoc();
    let server = HttpServer::start();
    let mut url = server.route("/protoc.zip", Route::File(protoc.path.clone()));
    let mut authority = reg.host.clone();
    if named_hosts {
        url = url.replace("127.0.0.1", "files.test");
        authority = named(&reg.host, "registry.test");
    }
    let source = format!("oci://{authority}/ns/tools/protoc");
    ((reg, server), protoc, url, source)
}

/// A loopback port nothing listens on.
fn dead_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `protoreg materialize` of the pinned protoc zip from `sources` into `tmp/out-CASE`, with
/// `env` set (on top of the proxy-free environment of [`protoreg`]).
fn materialize(
    tmp: &Path,
    case: &str,
    protoc: &Pinned,
    env: &[(&str, &str)],
    args: &[&str],
) -> std::process::Output {
    let mut cmd = protoreg();
    for (k, v) in env {
        cmd.env(k, v);
    }
    run(cmd
        .args(materialize_args(
            protoc,
            "zip",
            &tmp.join(format!("cache-{case}")),
            &tmp.join(format!("out-{case}")),
        ))
        .args(args))
}

/// Every authorized request went to `authority` (a CONNECT to it, or an absolute URI on it).
fn all_to(proxy: &ForwardProxy, authority: &str) {
    let targets = proxy.targets();
    assert!(!targets.is_empty(), "nothing passed the proxy");
    for (method, target) in &targets {
        let ok = if method == "CONNECT" {
            target == authority
        } else {
            target.starts_with(&format!("http://{authority}/"))
        };
        assert!(ok, "{method} {target} is not for {authority}: {targets:?}");
    }
}

#[test]
fn an_oci_registry_over_plain_http_goes_through_http_proxy() {
    let (reg, protoc) = registry_with_protoc();
    let tmp = scratch();
    let authority = named(&reg.host, "registry.test");
    let source = format!("oci://{authority}/ns/tools/protoc");
    // Without the proxy the name does not resolve: the proxy is what carries the traffic.
    let o = materialize(
        tmp.path(),
        "direct",
        &protoc,
        &[],
        &["--plain-http", "--source", &source],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(absent_or_empty(&tmp.path().join("out-direct")));

    let proxy = ForwardProxy::start();
    let o = materialize(
        tmp.path(),
        "proxied",
        &protoc,
        &[("http_proxy", &proxy.url())],
        &["--plain-http", "--source", &source],
    );
    assert_protoc_materialized(&o, &tmp.path().join("out-proxied"));
    // The name resolves only at the proxy, so everything went through it: forwarded (absolute
    // URI, the blob among them) or, as protoreg's one HTTP client for pulls does for plain
    // HTTP too, tunnelled with CONNECT.
    all_to(&proxy, &authority);
    let blob = format!(
        "http://{authority}/v2/ns/tools/protoc/blobs/{}",
        protoc.sha256.oci()
    );
    assert!(
        proxy
            .targets()
            .iter()
            .any(|(m, t)| (m == "GET" && *t == blob) || (m == "CONNECT" && *t == authority)),
        "{:?}",
        proxy.seen()
    );
    eprintln!(
        "plain-http registry: {} requests: {:?}",
        proxy.count(),
        proxy.targets()
    );
}

#[test]
fn an_oci_registry_over_tls_goes_through_https_proxy_with_connect() {
    let tmp = scratch();
    let certs = tmp.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    test_ca(&certs, "DNS:registry.test");
    let ca = certs.join("ca.pem");
    let reg = RegistryServer::start_tls(&certs.join("cert.pem"), &certs.join("key.pem"));
    let authority = named(&reg.host, "registry.test");
    let image = image_to_push(tmp.path(), &authority);
    let proxy = ForwardProxy::start();
    // Pushed through the proxy (a descriptor set: `baseline push` sends any such file)...
    let o = run(push_image(tmp.path())
        .env("HTTPS_PROXY", proxy.url())
        .env("SSL_CERT_FILE", &ca));
    assert!(o.status.success(), "{}", text(&o));
    let pushed = proxy.count();
    assert!(pushed > 0);
    // ...and fetched back by digest through it, tunnelled: the proxy sees CONNECTs only.
    let p = pin(&image);
    let out = tmp.path().join("out");
    let o = run(protoreg()
        .env("HTTPS_PROXY", proxy.url())
        .env("SSL_CERT_FILE", &ca)
        .env_remove("SSL_CERT_DIR")
        .args(materialize_args(
            &p,
            "raw",
            &tmp.path().join("cache2"),
            &out,
        ))
        .args([
            "--executable",
            "image.binpb",
            "--source",
            &format!("oci://{authority}/ns/images/x"),
        ]));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read(out.join("image.binpb")).unwrap(),
        std::fs::read(&image).unwrap()
    );
    assert!(proxy.count() > pushed);
    assert_eq!(
        proxy.targets(),
        [("CONNECT".to_string(), authority.clone())].into(),
        "{:?}",
        proxy.seen()
    );
    eprintln!(
        "TLS registry: {} CONNECTs ({pushed} for the push)",
        proxy.count()
    );
}

#[test]
fn an_https_source_goes_through_https_proxy_with_connect() {
    let tmp = scratch();
    let certs = tmp.path().join("certs");
    let files = tmp.path().join("files");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::create_dir_all(&files).unwrap();
    test_ca(&certs, "DNS:files.test");
    let protoc = pin(&fixture(PROTOC_ZIP));
    std::fs::copy(&protoc.path, files.join("protoc.zip")).unwrap();
    let server = HttpsServer::start(&files, &certs);
    let authority = format!("files.test:{}", server.port);
    let url = format!("https://{authority}/protoc.zip");
    let ca = certs.join("ca.pem").display().to_string();
    let proxy = ForwardProxy::start();
    let o = materialize(
        tmp.path(),
        "https",
        &protoc,
        &[("https_proxy", &proxy.url()), ("SSL_CERT_FILE", &ca)],
        &["--source", &url],
    );
    assert_protoc_materialized(&o, &tmp.path().join("out-https"));
    assert_eq!(proxy.targets(), [("CONNECT".to_string(), authority)].into());
    eprintln!("https source: {} CONNECT(s)", proxy.count());
}

#[test]
fn an_http_source_goes_through_http_proxy() {
    let protoc = pin(&fixture(PROTOC_ZIP));
    let server = HttpServer::start();
    let url = server
        .route("/protoc.zip", Route::File(protoc.path.clone()))
        .replace("127.0.0.1", "files.test");
    let authority = named(&server.addr, "files.test");
    let tmp = scratch();
    let proxy = ForwardProxy::start();
    let o = materialize(
        tmp.path(),
        "http",
        &protoc,
        &[("HTTP_PROXY", &proxy.url())],
        &["--source", &url],
    );
    assert_protoc_materialized(&o, &tmp.path().join("out-http"));
    assert_eq!(server.count("/protoc.zip"), 1);
    // ureq tunnels plain HTTP too (CONNECT), where reqwest forwards: either way, to files.test.
    all_to(&proxy, &authority);
    eprintln!("http source: {:?}", proxy.targets());
}

#[test]
fn publish_downloads_upstream_and_pushes_through_the_proxy() {
    let reg = RegistryServer::start();
    let gh = FakeGitHub::start_named("github.test");
    let assets = common::github::protoc_assets();
    let list: Vec<Asset> = assets.iter().map(|(n, p)| Asset::new(n, p)).collect();
    gh.release(PROTOC_REPO, "v36.2", &list, false, false);
    let registry = named(&reg.host, "registry.test");
    let ws = Workspace::new(&registry, &gh.api_url(), "");
    let proxy = ForwardProxy::start();
    let o = run(ws.cmd().env("http_proxy", proxy.url()).args([
        "publish",
        "--tool",
        "protoc",
        "--version",
        "36.2",
        "--json",
    ]));
    assert!(o.status.success(), "{}", text(&o));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["counters"]["blobs_uploaded"], 5, "{report}");
    for (name, _) in &assets {
        assert_eq!(gh.downloads(PROTOC_REPO, "v36.2", name), 1, "{name}");
    }
    // The GitHub API and the downloads (ureq: CONNECT), the registry (oci-client's reqwest:
    // forwarded; the manifest reads protoreg makes itself with ureq: CONNECT).
    let github = named(&gh.server.addr, "github.test");
    let targets = proxy.targets();
    assert!(
        targets.contains(&("CONNECT".to_string(), github.clone())),
        "{targets:?}"
    );
    assert!(
        targets
            .iter()
            .any(|(m, t)| m == "PUT" && t.starts_with(&format!("http://{registry}/v2/"))),
        "{targets:?}"
    );
    for (method, target) in &targets {
        assert!(
            *target == github
                || *target == registry
                || target.starts_with(&format!("http://{registry}/")),
            "{method} {target}"
        );
    }
    eprintln!("publish: {} requests through the proxy", proxy.count());
    // What was published is the upstream protoc: materialized back (directly) and run.
    let tmp = scratch();
    let protoc = pin(&fixture(PROTOC_ZIP));
    let source = format!("oci://{}/{NS}/tools/protoc", reg.host);
    let o = materialize(
        tmp.path(),
        "back",
        &protoc,
        &[],
        &["--plain-http", "--source", &source],
    );
    assert_protoc_materialized(&o, &tmp.path().join("out-back"));
}

#[test]
fn no_proxy_sends_listed_hosts_direct() {
    let ((_reg, server), protoc, url, source) = both_sources(false);
    let tmp = scratch();
    let proxy = ForwardProxy::start();
    let everything = [
        ("https_proxy", proxy.url()),
        ("http_proxy", proxy.url()),
        ("ALL_PROXY", proxy.url()),
    ];
    // An address, a range, and `*` (which covers addresses too, as in curl).
    for (case, list, args) in [
        (
            "ip",
            "example.com, 127.0.0.1",
            vec!["--plain-http", "--source", source.as_str()],
        ),
        (
            "range",
            ".example.com,127.0.0.0/8",
            vec!["--plain-http", "--source", source.as_str()],
        ),
        (
            "star-oci",
            "*",
            vec!["--plain-http", "--source", source.as_str()],
        ),
        ("star-http", "*", vec!["--source", url.as_str()]),
        (
            "ip-http",
            "localhost,127.0.0.1:9",
            vec!["--source", url.as_str()],
        ),
    ] {
        let mut env: Vec<(&str, &str)> = everything.iter().map(|(k, v)| (*k, v.as_str())).collect();
        env.push(("NO_PROXY", list));
        let o = materialize(tmp.path(), case, &protoc, &env, &args);
        assert!(o.status.success(), "{case}: {}", text(&o));
        assert_eq!(
            protoc_version(&tmp.path().join(format!("out-{case}"))),
            "libprotoc 36.2"
        );
        assert_eq!(proxy.count(), 0, "{case}: {:?}", proxy.seen());
    }
    assert_eq!(server.count("/protoc.zip"), 2);
    // A list that does not name the host: through the proxy (which reaches 127.0.0.1 too).
    let mut env: Vec<(&str, &str)> = everything.iter().map(|(k, v)| (*k, v.as_str())).collect();
    env.push(("no_proxy", "example.com,10.0.0.0/8"));
    let o = materialize(tmp.path(), "unlisted", &protoc, &env, &["--source", &url]);
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(proxy.count(), 1, "{:?}", proxy.seen());
}

/// A host spelled fully qualified (`localhost.`) is the same host to `NO_PROXY` (curl's
/// rule: a trailing dot on the host or the entry is dropped), for registries and file sources
/// alike. Only the proxy resolves `localhost.` here, so a direct attempt fails to connect:
/// what counts is that the proxy saw nothing.
#[test]
fn no_proxy_matches_a_host_with_a_trailing_dot_for_registries_and_sources() {
    let ((_reg, _server), protoc, url, source) = both_sources(false);
    let source = source.replace("127.0.0.1", "localhost.");
    let url = url.replace("127.0.0.1", "localhost.");
    let tmp = scratch();
    let proxy = ForwardProxy::start();
    let cases = [
        ("oci", vec!["--plain-http", "--source", source.as_str()]),
        ("http", vec!["--source", url.as_str()]),
    ];
    // Not listed: through the proxy, which carries it.
    for (case, args) in &cases {
        let before = proxy.count();
        let o = materialize(
            tmp.path(),
            &format!("proxied-{case}"),
            &protoc,
            &[("http_proxy", &proxy.url())],
            args,
        );
        assert_protoc_materialized(&o, &tmp.path().join(format!("out-proxied-{case}")));
        assert!(proxy.count() > before, "{case}: {:?}", proxy.seen());
    }
    // Listed, with or without the dot, or as a parent domain: direct for both clients.
    for list in [
        "localhost",
        "localhost.",
        ".localhost",
        "example.com,LOCALHOST",
    ] {
        for (case, args) in &cases {
            let before = proxy.seen().len();
            let name = format!("{case}-{}", list.replace(['.', ','], "_"));
            let o = materialize(
                tmp.path(),
                &name,
                &protoc,
                &[("http_proxy", &proxy.url()), ("NO_PROXY", list)],
                args,
            );
            assert_eq!(
                proxy.seen().len(),
                before,
                "NO_PROXY={list}, {case}: went through the proxy: {:?}\n{}",
                proxy.seen(),
                text(&o)
            );
            assert!(!text(&o).contains("through the proxy"), "{}", text(&o));
        }
    }
}

#[test]
fn each_scheme_uses_only_its_own_proxy_variable() {
    let ((_reg, _server), protoc, url, source) = both_sources(false);
    let tmp = scratch();
    let proxy = ForwardProxy::start();
    // Only HTTPS_PROXY: http:// sources and a plain-HTTP registry go direct.
    for (case, args) in [
        ("http", vec!["--source", url.as_str()]),
        ("oci", vec!["--plain-http", "--source", source.as_str()]),
    ] {
        let o = materialize(
            tmp.path(),
            case,
            &protoc,
            &[("HTTPS_PROXY", &proxy.url()), ("https_proxy", &proxy.url())],
            &args,
        );
        assert!(o.status.success(), "{case}: {}", text(&o));
        assert_eq!(
            protoc_version(&tmp.path().join(format!("out-{case}"))),
            "libprotoc 36.2"
        );
    }
    assert_eq!(proxy.count(), 0, "{:?}", proxy.seen());
    // Only HTTP_PROXY: an https:// source goes direct.
    let certs = tmp.path().join("certs");
    let files = tmp.path().join("files");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::create_dir_all(&files).unwrap();
    test_ca(&certs, "IP:127.0.0.1");
    std::fs::copy(&protoc.path, files.join("protoc.zip")).unwrap();
    let https = HttpsServer::start(&files, &certs);
    let ca = certs.join("ca.pem").display().to_string();
    let o = materialize(
        tmp.path(),
        "https",
        &protoc,
        &[("HTTP_PROXY", &proxy.url()), ("SSL_CERT_FILE", &ca)],
        &[
            "--source",
            &format!("https://127.0.0.1:{}/protoc.zip", https.port),
        ],
    );
    assert_protoc_materialized(&o, &tmp.path().join("out-https"));
    assert_eq!(proxy.count(), 0, "{:?}", proxy.seen());
    // ALL_PROXY is the fallback for both.
    let o = materialize(
        tmp.path(),
        "all",
        &protoc,
        &[("ALL_PROXY", &proxy.url())],
        &["--source", &url.replace("127.0.0.1", "files.test")],
    );
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(proxy.count(), 1, "{:?}", proxy.seen());
}

#[test]
fn a_proxy_with_credentials_works_and_they_never_show() {
    let ((_reg, _server), protoc, url, source) = both_sources(true);
    let tmp = scratch();
    let proxy = ForwardProxy::with_auth("px", PROXY_PASSWORD);
    let good = proxy.url_with("px", PROXY_PASSWORD);
    // reqwest (forwarded, Proxy-Authorization on each request) and ureq (on the CONNECT).
    for (case, args) in [
        (
            "oci",
            vec!["--plain-http", "--json", "--source", source.as_str()],
        ),
        ("http", vec!["--json", "--source", url.as_str()]),
    ] {
        let o = materialize(tmp.path(), case, &protoc, &[("http_proxy", &good)], &args);
        assert!(o.status.success(), "{case}: {}", text(&o));
        assert!(!text(&o).contains(PROXY_PASSWORD), "{}", text(&o));
        assert_eq!(
            protoc_version(&tmp.path().join(format!("out-{case}"))),
            "libprotoc 36.2"
        );
    }
    assert!(
        proxy.seen().iter().all(|s| s.authorized),
        "{:?}",
        proxy.seen()
    );
    let passed = proxy.count();
    assert!(passed >= 2);
    // A wrong password: refused by the proxy; the error names it, never the password.
    let bad = proxy.url_with("px", "wr0ng-S3cret");
    for (case, args) in [
        ("oci-bad", vec!["--plain-http", "--source", source.as_str()]),
        ("http-bad", vec!["--source", url.as_str()]),
    ] {
        let o = materialize(tmp.path(), case, &protoc, &[("http_proxy", &bad)], &args);
        assert_eq!(o.status.code(), Some(1), "{case}: {}", text(&o));
        let t = text(&o);
        assert!(
            !t.contains("wr0ng-S3cret") && !t.contains(PROXY_PASSWORD),
            "{t}"
        );
        assert!(t.contains("407"), "{case}: {t}");
        assert!(
            t.contains(&format!(
                "the proxy http://***@{} (from http_proxy)",
                proxy.addr
            )),
            "{case}: {t}"
        );
        assert!(absent_or_empty(&tmp.path().join(format!("out-{case}"))));
        eprintln!("{case}: {t}");
    }
    assert_eq!(proxy.count(), passed);
    assert!(proxy.seen().iter().any(|s| !s.authorized));
}

#[test]
fn an_unreachable_or_unusable_proxy_is_named_without_its_credentials() {
    let ((_reg, server), protoc, url, source) = both_sources(false);
    let dead = dead_port();
    let proxy = format!("http://px:{PROXY_PASSWORD}@127.0.0.1:{dead}");
    let tmp = scratch();
    for (case, var, args) in [
        ("http", "HTTP_PROXY", vec!["--source", url.as_str()]),
        (
            "oci",
            "ALL_PROXY",
            vec!["--plain-http", "--source", source.as_str()],
        ),
    ] {
        let o = materialize(tmp.path(), case, &protoc, &[(var, &proxy)], &args);
        assert_eq!(o.status.code(), Some(1), "{case}: {}", text(&o));
        let t = text(&o);
        assert!(!t.contains(PROXY_PASSWORD), "{t}");
        assert!(
            t.contains(&format!(
                "the proxy http://***@127.0.0.1:{dead} (from {var})"
            )),
            "{case}: {t}"
        );
        assert!(absent_or_empty(&tmp.path().join(format!("out-{case}"))));
        eprintln!("{case}: {t}");
    }
    assert_eq!(server.count("/protoc.zip"), 0);
    // A value that is no proxy URL at all: a usage error (exit 2) naming the variable.
    let o = materialize(
        tmp.path(),
        "unusable",
        &protoc,
        &[(
            "https_proxy",
            &format!("socks5://px:{PROXY_PASSWORD}@127.0.0.1:1"),
        )],
        &["--source", &url],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let t = text(&o);
    assert!(
        t.contains("https_proxy") && !t.contains(PROXY_PASSWORD),
        "{t}"
    );
}

#[test]
fn the_scheme_variable_beats_all_proxy_and_lower_case_beats_upper_case() {
    // Left to themselves, ureq would take ALL_PROXY first and reqwest HTTP_PROXY before
    // http_proxy: both would pick the dead proxy here. protoreg's one reading picks the live one.
    let ((_reg, server), protoc, url, source) = both_sources(true);
    let dead = dead_port();
    let dead = format!("http://127.0.0.1:{dead}");
    let proxy = ForwardProxy::start();
    let live = proxy.url();
    let env = [
        ("ALL_PROXY", dead.as_str()),
        ("all_proxy", dead.as_str()),
        ("HTTP_PROXY", dead.as_str()),
        ("http_proxy", live.as_str()),
    ];
    let tmp = scratch();
    for (case, args) in [
        ("http", vec!["--source", url.as_str()]),
        ("oci", vec!["--plain-http", "--source", source.as_str()]),
    ] {
        let o = materialize(tmp.path(), case, &protoc, &env, &args);
        assert!(o.status.success(), "{case}: {}", text(&o));
        assert_eq!(
            protoc_version(&tmp.path().join(format!("out-{case}"))),
            "libprotoc 36.2"
        );
    }
    assert!(proxy.count() >= 2, "{:?}", proxy.seen());
    assert_eq!(server.count("/protoc.zip"), 1);
}
