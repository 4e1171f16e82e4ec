//! The OCI bearer-token flow against Debian's docker-registry configured for token auth
//! (distribution's `auth.token`), with a loopback token server that signs ES256 JWTs: the
//! registry answers 401 with `WWW-Authenticate: Bearer realm=…,service=…,scope=…`, protoreg
//! fetches a token from the realm with its credentials and reuses it. Publish, materialize,
//! versions, health and registry retention run as the real binary; a wrong password and
//! anonymous callers are refused clearly, and no secret reaches the output.

mod common;

use base64::Engine;
use common::ops::*;
use common::token::{Caller, Policy, TokenServer, ISSUER, SERVICE};
use common::*;

const USER: &str = "ci";
const PASSWORD: &str = "t0ken-Pa55word";

/// A token server for ci / PASSWORD granting anonymous callers `anonymous`, and a registry
/// trusting it.
fn token_registry(anonymous: Vec<(String, Vec<String>)>) -> (TokenServer, RegistryServer) {
    let tokens = TokenServer::start(Policy {
        user: USER.into(),
        password: PASSWORD.into(),
        anonymous,
        expires_in: 300,
    });
    let reg = RegistryServer::start_token(&tokens.realm, SERVICE, ISSUER, &tokens.cert, None);
    (tokens, reg)
}

fn with_creds<'a>(
    cmd: &'a mut std::process::Command,
    password: &str,
) -> &'a mut std::process::Command {
    cmd.env("PROTOREG_REGISTRY_USERNAME", USER)
        .env("PROTOREG_REGISTRY_PASSWORD", password)
}

fn scope(repo: &str, actions: &str) -> String {
    format!("repository:{repo}:{actions}")
}

/// Neither the password nor its Basic encoding is in `out`.
fn assert_no_secret(out: &std::process::Output, password: &str) {
    let all = text(out);
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{password}"));
    assert!(
        !all.contains(password) && !all.contains(&basic),
        "a secret in the output:\n{all}"
    );
}

/// `materialize` of the fixture protoc from `source` into a fresh cache and tree under
/// `dir/case`.
fn materialize(
    cmd: &mut std::process::Command,
    protoc: &Pinned,
    dir: &std::path::Path,
    case: &str,
    source: &str,
) -> std::process::Output {
    run(cmd
        .args(materialize_args(
            protoc,
            "zip",
            &dir.join(format!("cache-{case}")),
            &dir.join(format!("out-{case}")),
        ))
        .args(["--plain-http", "--source", source]))
}

#[test]
fn publish_materialize_versions_and_health_through_the_token_flow() {
    let (tokens, reg) = token_registry(vec![]);
    let gh = github_with_protoc_and_buf();
    let ws = Workspace::new(&reg.host, &gh.api_url(), "");
    let repo = format!("{NS}/tools/protoc");
    let protoc = pin(&fixture(PROTOC_ZIP));

    // Publish all 5 platforms with the environment's credentials: 5 blobs, a config, 5
    // manifests and an index go up, plus existence checks and manifest reads.
    let publish = || {
        let out = run(with_creds(&mut ws.cmd(), PASSWORD).args([
            "publish",
            "--tool",
            "protoc",
            "--version",
            "36.2",
            "--json",
        ]));
        assert!(out.status.success(), "{}", text(&out));
        assert_no_secret(&out, PASSWORD);
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let report = publish();
    assert_eq!(report["counters"]["blobs_uploaded"], 5, "{report}");
    assert_eq!(report["counters"]["artifacts_published"], 6, "{report}");
    // The tokens are reused: one per scope per connection (the run's own, and each of the
    // at most 4 upload workers' that had work), not one per request.
    let seen = tokens.summary();
    assert!(seen.iter().all(|(c, _)| *c == Caller::User), "{seen:?}");
    let pulls = seen.iter().filter(|r| r.1 == scope(&repo, "pull")).count();
    let pushes = seen
        .iter()
        .filter(|r| r.1 == scope(&repo, "pull,push"))
        .count();
    assert_eq!(pulls + pushes, seen.len(), "{seen:?}");
    assert_eq!(pulls, pushes, "{seen:?}");
    assert!((2..=5).contains(&pulls), "{seen:?}");
    assert!(tokens
        .requests()
        .iter()
        .all(|r| r.service.as_deref() == Some(SERVICE)));
    // Again: nothing to push, the tags are read with one pull token.
    tokens.reset();
    let again = publish();
    assert_eq!(again["counters"]["artifacts_published"], 0, "{again}");
    assert_eq!(tokens.summary(), vec![(Caller::User, scope(&repo, "pull"))]);
    let audit = std::fs::read_to_string(ws.audit_log()).unwrap();
    assert!(audit.contains("publish.blob") && !audit.contains(PASSWORD));

    // Materialize it back with the environment's credentials: one token, for pull.
    let tmp = scratch();
    let source = format!("oci://{}/{repo}", reg.host);
    tokens.reset();
    let o = materialize(
        with_creds(&mut protoreg(), PASSWORD),
        &protoc,
        tmp.path(),
        "env",
        &source,
    );
    assert_protoc_materialized(&o, &tmp.path().join("out-env"));
    assert_no_secret(&o, PASSWORD);
    assert_eq!(tokens.summary(), vec![(Caller::User, scope(&repo, "pull"))]);

    // And with Docker's config.json (`auths.<registry host>`).
    let docker = docker_config_auths(tmp.path(), &reg.host, USER, PASSWORD);
    tokens.reset();
    let o = materialize(
        protoreg().env("DOCKER_CONFIG", &docker),
        &protoc,
        tmp.path(),
        "docker",
        &source,
    );
    assert_protoc_materialized(&o, &tmp.path().join("out-docker"));
    assert_no_secret(&o, PASSWORD);
    assert_eq!(tokens.summary(), vec![(Caller::User, scope(&repo, "pull"))]);

    // `versions` lists the tags through a pull token.
    tokens.reset();
    let out = run(with_creds(&mut ws.cmd(), PASSWORD).args(["versions", "protoc", "--json"]));
    assert!(out.status.success(), "{}", text(&out));
    assert_no_secret(&out, PASSWORD);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["versions"][0]["version"], "36.2", "{v}");
    assert_eq!(tokens.summary(), vec![(Caller::User, scope(&repo, "pull"))]);

    // `health`: reachable, healthy.
    tokens.reset();
    let out = run(with_creds(&mut ws.cmd(), PASSWORD).args(["health", "--json"]));
    assert!(out.status.success(), "{}", text(&out));
    assert_no_secret(&out, PASSWORD);
    let h: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(h["checks"]["primary_registry"]["status"], "healthy", "{h}");
    // One pull token for each repository whose tags it reads, none twice.
    let seen = tokens.summary();
    let mut scopes: Vec<&str> = seen.iter().map(|r| r.1.as_str()).collect();
    scopes.sort();
    scopes.dedup();
    assert_eq!(scopes.len(), seen.len(), "{seen:?}");
    assert!(
        seen.iter()
            .all(|r| r.0 == Caller::User && r.1.ends_with(":pull")),
        "{seen:?}"
    );
    assert!(seen.contains(&(Caller::User, scope(&repo, "pull"))));
}

#[test]
fn a_wrong_password_is_refused_clearly_and_never_printed() {
    let (tokens, reg) = token_registry(vec![]);
    let repo = format!("{NS}/tools/protoc");
    let protoc = pin(&fixture(PROTOC_ZIP));
    reg.push(
        &repo,
        &protoc,
        protoreg::pipeline::extract::Format::Zip,
        "v36.2-linux-x86_64",
        Some(protoreg::auth::Credentials::Basic {
            username: USER.into(),
            password: PASSWORD.into(),
        }),
    );
    let tmp = scratch();
    let source = format!("oci://{}/{repo}", reg.host);
    let wrong = "wr0ng-Pa55word";
    tokens.reset();
    let o = materialize(
        with_creds(&mut protoreg(), wrong),
        &protoc,
        tmp.path(),
        "wrong",
        &source,
    );
    // Exit 1 (the work failed, as with a wrong password on basic auth), naming the source.
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert_no_secret(&o, wrong);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!(
            "oci://{}/{repo}: the token server refused: HTTP 401 (UNAUTHORIZED) (check the registry credentials",
            reg.host
        )) && err.contains("PROTOREG_REGISTRY_USERNAME"),
        "{err}"
    );
    assert!(absent_or_empty(&tmp.path().join("out-wrong")));
    // The realm was asked once, and refused.
    assert_eq!(
        tokens.summary(),
        vec![(Caller::Refused, scope(&repo, "pull"))]
    );

    let ws = Workspace::new(&reg.host, "http://127.0.0.1:9", "");
    tokens.reset();
    let out = run(with_creds(&mut ws.cmd(), wrong).args(["versions", "protoc", "--json"]));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_no_secret(&out, wrong);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains(&format!(
            "list tags of {repo} on {} failed: the token server refused: HTTP 401",
            reg.host
        )) && err.contains("check the registry credentials"),
        "{err}"
    );
    assert_eq!(
        tokens.summary(),
        vec![(Caller::Refused, scope(&repo, "pull"))]
    );
}

#[test]
fn anonymous_pull_where_granted_and_refused_where_not() {
    let open = format!("{NS}/tools/protoc");
    let closed = format!("{NS}/private/protoc");
    let (tokens, reg) = token_registry(vec![(open.clone(), vec!["pull".into()])]);
    let protoc = pin(&fixture(PROTOC_ZIP));
    for repo in [&open, &closed] {
        reg.push(
            repo,
            &protoc,
            protoreg::pipeline::extract::Format::Zip,
            "v36.2-linux-x86_64",
            Some(protoreg::auth::Credentials::Basic {
                username: USER.into(),
                password: PASSWORD.into(),
            }),
        );
    }
    let tmp = scratch();
    tokens.reset();
    let o = materialize(
        &mut protoreg(),
        &protoc,
        tmp.path(),
        "open",
        &format!("oci://{}/{open}", reg.host),
    );
    assert_protoc_materialized(&o, &tmp.path().join("out-open"));
    assert_eq!(
        tokens.summary(),
        vec![(Caller::Anonymous, scope(&open, "pull"))]
    );
    tokens.reset();
    let o = materialize(
        &mut protoreg(),
        &protoc,
        tmp.path(),
        "closed",
        &format!("oci://{}/{closed}", reg.host),
    );
    // The anonymous token grants nothing there: the registry refuses it, and the error names
    // the source and where credentials come from.
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains(&format!(
            "oci://{}/{closed}: unauthorized (HTTP 401): no credentials were sent",
            reg.host
        )) && err.contains("PROTOREG_REGISTRY_USERNAME"),
        "{err}"
    );
    assert_eq!(
        tokens.summary(),
        vec![(Caller::Anonymous, scope(&closed, "pull"))]
    );
    assert!(absent_or_empty(&tmp.path().join("out-closed")));
}

#[test]
fn registry_retention_deletes_through_the_token_flow() {
    let (tokens, reg) = token_registry(vec![]);
    let repo = format!("{NS}/tools/protoc");
    // Created 2025-01-01: older than the one-day retention.
    reg.push(
        &repo,
        &pin(&fixture(PROTOC_ZIP)),
        protoreg::pipeline::extract::Format::Zip,
        "v36.2-linux-x86_64",
        Some(protoreg::auth::Credentials::Basic {
            username: USER.into(),
            password: PASSWORD.into(),
        }),
    );
    let ws = Workspace::new(
        &reg.host,
        "http://127.0.0.1:9",
        "repositories:\n  tools:\n    retention_days: 1\n",
    );
    tokens.reset();
    let out = run(with_creds(&mut ws.cmd(), PASSWORD).args([
        "cleanup",
        "--registry",
        "--no-pins",
        "--json",
    ]));
    assert!(out.status.success(), "{}", text(&out));
    assert_no_secret(&out, PASSWORD);
    let done: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(done["deleted"], 1, "{done}");
    // The delete was challenged for its own action and answered with one token for it;
    // nothing asked for push.
    let seen = tokens.summary();
    assert!(
        !seen.iter().any(|r| r.1.ends_with(":pull,push")),
        "{seen:?}"
    );
    assert_each_token_fetched_once(&seen);
    assert_eq!(
        seen.iter()
            .filter(|r| r.1 == scope(&repo, "delete"))
            .collect::<Vec<_>>(),
        vec![&(Caller::User, scope(&repo, "delete"))],
        "{seen:?}"
    );
    let creds = protoreg::auth::Credentials::Basic {
        username: USER.into(),
        password: PASSWORD.into(),
    };
    assert!(reg.client(Some(creds)).tags(&repo).unwrap().is_empty());
}

#[test]
fn mirror_lists_the_catalog_through_the_token_flow() {
    let (tokens, reg) = token_registry(vec![]);
    let creds = protoreg::auth::Credentials::Basic {
        username: USER.into(),
        password: PASSWORD.into(),
    };
    let protoc = pin(&fixture(PROTOC_ZIP));
    // One repository this project knows, and one only the catalog names.
    for repo in ["tools/protoc", "extra/protoc"] {
        reg.push(
            &format!("{NS}/{repo}"),
            &protoc,
            protoreg::pipeline::extract::Format::Zip,
            "v36.2-linux-x86_64",
            Some(creds.clone()),
        );
    }
    let ws = Workspace::new(&reg.host, "http://127.0.0.1:9", "");
    let layout = ws.dir.path().join("layout");
    tokens.reset();
    let out = run(with_creds(&mut ws.cmd(), PASSWORD).args([
        "mirror",
        "--from",
        "primary",
        "--to",
        &format!("oci-layout:{}", layout.display()),
        "--json",
    ]));
    assert!(out.status.success(), "{}", text(&out));
    assert_no_secret(&out, PASSWORD);
    let r: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(r["copied"].as_array().unwrap().len(), 2, "{r}");
    assert!(layout.join("extra/protoc/index.json").is_file(), "{r}");
    let seen = tokens.summary();
    assert_each_token_fetched_once(&seen);
    assert_eq!(
        seen.iter()
            .filter(|r| r.1 == "registry:catalog:*")
            .collect::<Vec<_>>(),
        vec![&(Caller::User, "registry:catalog:*".to_string())],
        "{seen:?}"
    );
}

/// One run asks the token server once per caller and scope: a token is reused, never
/// fetched again for the same repository and action.
fn assert_each_token_fetched_once(seen: &[(Caller, String)]) {
    let mut unique: Vec<String> = seen.iter().map(|(c, s)| format!("{c:?} {s}")).collect();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), seen.len(), "a token fetched twice: {seen:?}");
}

/// A registry on TLS whose token realm is plain HTTP: no token and no credential crosses
/// the network in cleartext. The catalog, the tag lists and the blob pulls (`mirror`,
/// `versions`, `health`, `materialize` from an `oci://` source) are all refused, naming the
/// realm and the opt-in, before anything is sent there (mirror no longer falls back from the
/// refused catalog to pulls that send the same password). With registry.yaml's
/// `allow_plain_http_token_realm: true` for that registry, the realm is followed.
#[test]
fn a_plain_http_token_realm_of_a_tls_registry_gets_nothing_unless_allowed() {
    let tokens = TokenServer::start(Policy {
        user: USER.into(),
        password: PASSWORD.into(),
        anonymous: vec![(format!("{NS}/tools/protoc"), vec!["pull".into()])],
        expires_in: 300,
    });
    let certs = scratch();
    common::tls::test_ca(certs.path(), "IP:127.0.0.1");
    let reg = RegistryServer::start_token(
        &tokens.realm,
        SERVICE,
        ISSUER,
        &tokens.cert,
        Some((
            &certs.path().join("cert.pem"),
            &certs.path().join("key.pem"),
        )),
    );
    let ws = Workspace::new(&reg.host, "http://127.0.0.1:9", "");
    let write_config = |extra: &str| {
        std::fs::write(
            ws.config(),
            format!(
                "primary_registry:\n  url: \"{}\"\n  namespace: \"{NS}\"\n{extra}",
                reg.host
            ),
        )
        .unwrap()
    };
    write_config("");
    let tls = |cmd: &mut std::process::Command| {
        cmd.env("SSL_CERT_FILE", certs.path().join("ca.pem"))
            .env_remove("SSL_CERT_DIR");
    };
    let layout = ws.dir.path().join("layout");
    let mirror = |creds: bool| {
        let mut cmd = ws.cmd();
        tls(&mut cmd);
        if creds {
            with_creds(&mut cmd, PASSWORD);
        }
        run(cmd
            .args(["mirror", "--from", "primary", "--to"])
            .arg(format!("oci-layout:{}", layout.display()))
            .arg("--json"))
    };
    let refused = |what: &str, out: &std::process::Output| {
        assert_eq!(out.status.code(), Some(1), "{what}: {}", text(out));
        assert_no_secret(out, PASSWORD);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(&format!(
                "the registry's token realm `{}` is plain HTTP",
                tokens.realm
            )) && err.contains("allow_plain_http_token_realm: true"),
            "{what}: {err}"
        );
    };
    tokens.reset();
    refused("mirror", &mirror(true));
    // Anonymous callers too: a token fetched in cleartext can be read or swapped.
    refused("mirror without credentials", &mirror(false));
    for args in [
        vec!["versions", "protoc", "--json"],
        vec!["health", "--json"],
    ] {
        let mut cmd = ws.cmd();
        tls(&mut cmd);
        let out = run(with_creds(&mut cmd, PASSWORD).args(&args));
        assert_no_secret(&out, PASSWORD);
        assert_ne!(out.status.code(), Some(0), "{args:?}: {}", text(&out));
        // health's report keeps the first line of each error.
        assert!(
            text(&out).contains(&format!("`{}` is plain HTTP", tokens.realm)),
            "{args:?}: {}",
            text(&out)
        );
    }
    let protoc = pin(&fixture(PROTOC_ZIP));
    let mut cmd = protoreg();
    tls(&mut cmd);
    let out = run(with_creds(&mut cmd, PASSWORD)
        .args(materialize_args(
            &protoc,
            "zip",
            &ws.dir.path().join("cache-tls"),
            &ws.dir.path().join("out-tls"),
        ))
        .arg("--source")
        .arg(format!("oci://{}/{NS}/tools/protoc", reg.host)));
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("is plain HTTP"), "{}", text(&out));
    assert_no_secret(&out, PASSWORD);
    assert_eq!(
        tokens.summary(),
        vec![],
        "a token was asked for over plain HTTP"
    );

    // Allowed for this registry: the realm is followed, with the credentials.
    write_config("  allow_plain_http_token_realm: true\n");
    let out = mirror(true);
    assert!(out.status.success(), "{}", text(&out));
    assert_no_secret(&out, PASSWORD);
    assert!(
        tokens.summary().iter().any(|r| r.0 == Caller::User),
        "{:?}",
        tokens.summary()
    );
}
