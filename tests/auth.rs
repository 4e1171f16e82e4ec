//! Basic auth against a registry with htpasswd: works with credentials (environment or
//! Docker's config.json), fails clearly without, and the password is in no output.

mod common;

use base64::Engine;
use common::*;
use protoreg::auth::Credentials;
use protoreg::pipeline::extract::Format;

const PASSWORD: &str = "s3cret-Pa55word";

#[test]
fn basic_auth_with_and_without_credentials() {
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
    let docker = tmp.path().join("docker");
    std::fs::create_dir(&docker).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("ci:{PASSWORD}"));
    std::fs::write(
        docker.join("config.json"),
        format!(
            "{{\"auths\": {{\"{}\": {{\"auth\": \"{auth}\"}}}}}}",
            reg.host
        ),
    )
    .unwrap();
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
