//! One TLS trust for every source: an `https://` source and a `docker-registry` serving TLS,
//! both with a certificate from a CA the test makes (openssl), are refused until that CA is
//! trusted through `SSL_CERT_FILE` (the store) or `--ca-bundle`/`PROTOREG_CA_BUNDLE` (added
//! to the store); then they are fetched from and verified.

mod common;

use std::path::Path;

use common::bounded::run_within;
use common::tls::{image_to_push, push_image, test_ca, HttpsServer};
use common::*;

#[test]
fn an_https_source_is_trusted_through_the_one_trust_setting() {
    let tmp = scratch();
    let certs = tmp.path().join("certs");
    let files = tmp.path().join("files");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::create_dir_all(&files).unwrap();
    test_ca(&certs, "IP:127.0.0.1");
    let protoc = pin(&fixture(PROTOC_ZIP));
    std::fs::copy(&protoc.path, files.join("protoc.zip")).unwrap();
    let server = HttpsServer::start(&files, &certs);
    let url = format!("https://127.0.0.1:{}/protoc.zip", server.port);
    let fetch = |case: &str, ca: Option<&Path>| {
        let mut cmd = protoreg();
        cmd.env_remove("SSL_CERT_DIR");
        match ca {
            Some(ca) => cmd.env("SSL_CERT_FILE", ca),
            None => cmd.env_remove("SSL_CERT_FILE"),
        };
        run(cmd
            .args(materialize_args(
                &protoc,
                "zip",
                &tmp.path().join(format!("cache-{case}")),
                &tmp.path().join(format!("out-{case}")),
            ))
            .args(["--source", &url]))
    };
    // The machine's trust store does not know the test CA: refused, and nothing written.
    let o = fetch("untrusted", None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    assert!(
        text(&o).to_lowercase().contains("certificate") || text(&o).contains("UnknownIssuer"),
        "{}",
        text(&o)
    );
    assert!(absent_or_empty(&tmp.path().join("out-untrusted")));
    // Trusted through SSL_CERT_FILE, as registries are: fetched and verified.
    let o = fetch("trusted", Some(&certs.join("ca.pem")));
    assert!(o.status.success(), "{}", text(&o));
    assert!(tmp.path().join("out-trusted/bin/protoc").is_file());
}

#[test]
fn a_registry_serving_tls_is_trusted_through_the_same_setting() {
    let tmp = scratch();
    let certs = tmp.path().join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    test_ca(&certs, "IP:127.0.0.1");
    let reg = RegistryServer::start_tls(&certs.join("cert.pem"), &certs.join("key.pem"));
    let ca = certs.join("ca.pem");
    // A descriptor set to push (`baseline push` sends any such file over TLS, no plain HTTP).
    let image = image_to_push(tmp.path(), &reg.host);
    let push = |ca: Option<&Path>| {
        let mut cmd = push_image(tmp.path());
        match ca {
            Some(ca) => cmd.env("SSL_CERT_FILE", ca),
            None => cmd.env_remove("SSL_CERT_FILE"),
        };
        run(&mut cmd)
    };
    let o = push(None);
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).to_lowercase().contains("certificate") || text(&o).contains("UnknownIssuer"),
        "{}",
        text(&o)
    );
    let o = push(Some(&ca));
    assert!(o.status.success(), "{}", text(&o));
    // Fetched back over TLS by digest, trusted the same way.
    let p = pin(&image);
    let out = tmp.path().join("out");
    let o = run(protoreg()
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
            &format!("oci://{}/ns/images/x", reg.host),
        ]));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read(out.join("image.binpb")).unwrap(),
        std::fs::read(&image).unwrap()
    );
}

/// `--ca-bundle` / `PROTOREG_CA_BUNDLE` adds a CA for protoreg alone, on top of the system
/// store: with the store replaced by CA A (`SSL_CERT_FILE`, standing in for a machine's
/// store) and CA B given as the bundle, `https://` sources signed by A and by B and a
/// registry signed by B are all trusted; without the bundle, nothing B signed is.
#[test]
fn a_ca_bundle_is_trusted_besides_the_system_store_for_sources_and_registries() {
    let tmp = scratch();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let files = tmp.path().join("files");
    for d in [&a, &b, &files] {
        std::fs::create_dir_all(d).unwrap();
    }
    test_ca(&a, "IP:127.0.0.1");
    test_ca(&b, "IP:127.0.0.1");
    let protoc = pin(&fixture(PROTOC_ZIP));
    std::fs::copy(&protoc.path, files.join("protoc.zip")).unwrap();
    let https = HttpsServer::start(&files, &b);
    let url = format!("https://127.0.0.1:{}/protoc.zip", https.port);
    let https_a = HttpsServer::start(&files, &a);
    let url_a = format!("https://127.0.0.1:{}/protoc.zip", https_a.port);
    // A registry signed by B, holding a small artifact pushed over TLS (trusting B).
    let reg = RegistryServer::start_tls(&b.join("cert.pem"), &b.join("key.pem"));
    let image = image_to_push(tmp.path(), &reg.host);
    let o = run(push_image(tmp.path()).env("SSL_CERT_FILE", b.join("ca.pem")));
    assert!(o.status.success(), "{}", text(&o));
    let image_pin = pin(&image);
    let materialize = |case: &str, sources: &[&str], bundle: Option<&Path>| {
        let mut cmd = protoreg();
        cmd.env("SSL_CERT_FILE", a.join("ca.pem"))
            .env_remove("SSL_CERT_DIR")
            .env_remove("PROTOREG_CA_BUNDLE");
        if let Some(bundle) = bundle {
            cmd.env("PROTOREG_CA_BUNDLE", bundle);
        }
        let (cache, out) = (
            tmp.path().join(format!("cache-{case}")),
            tmp.path().join(format!("out-{case}")),
        );
        if sources.iter().any(|s| s.starts_with("oci://")) {
            cmd.args(materialize_args(&image_pin, "raw", &cache, &out))
                .args(["--executable", "image.binpb"]);
        } else {
            cmd.args(materialize_args(&protoc, "zip", &cache, &out));
        }
        for s in sources {
            cmd.args(["--source", s]);
        }
        run(&mut cmd)
    };
    let oci = format!("oci://{}/ns/images/x", reg.host);
    // Without the bundle: what B signed is not trusted, by either stack.
    let o = materialize("no-bundle-https", &[&url], None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    let o = materialize("no-bundle-oci", &[&oci], None);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o));
    // With B as the bundle: B's source and registry, and A's source (the store is kept).
    let bundle = b.join("ca.pem");
    let o = materialize("bundle-https", &[&url], Some(&bundle));
    assert!(o.status.success(), "{}", text(&o));
    assert!(tmp.path().join("out-bundle-https/bin/protoc").is_file());
    let o = materialize("bundle-https-store", &[&url_a], Some(&bundle));
    assert!(o.status.success(), "the store is kept: {}", text(&o));
    let o = materialize("bundle-oci", &[&oci], Some(&bundle));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read(tmp.path().join("out-bundle-oci/image.binpb")).unwrap(),
        std::fs::read(&image).unwrap()
    );
    // The flag wins over the variable; a bundle that is not one is exit 2, naming it.
    let junk = tmp.path().join("junk.pem");
    std::fs::write(&junk, "not a certificate\n").unwrap();
    let o = run(protoreg()
        .env("PROTOREG_CA_BUNDLE", &junk)
        .arg("--ca-bundle")
        .arg(&bundle)
        .args(materialize_args(
            &protoc,
            "zip",
            &tmp.path().join("cache-flag"),
            &tmp.path().join("out-flag"),
        ))
        .args(["--source", &url]));
    assert!(o.status.success(), "{}", text(&o));
    for (case, path) in [
        ("junk", junk.clone()),
        ("missing", tmp.path().join("nope.pem")),
    ] {
        let o = materialize(case, &[&url], Some(&path));
        assert_eq!(o.status.code(), Some(2), "{case}: {}", text(&o));
        let t = text(&o);
        assert!(
            t.contains("PROTOREG_CA_BUNDLE") && t.contains("hint:"),
            "{case}: {t}"
        );
        assert!(absent_or_empty(&tmp.path().join(format!("out-{case}"))));
    }
}

/// Every file TLS would read gets the `--ca-bundle` checks: a FIFO (whose read blocks
/// forever), `/dev/zero` (which never ends) or an oversized file named by `SSL_CERT_FILE`,
/// `PROTOREG_CA_BUNDLE` or inside `SSL_CERT_DIR` is exit 2 naming the variable, at once,
/// even for a run that only speaks plain HTTP to its registry.
#[test]
fn trust_files_that_never_end_are_refused_naming_the_variable() {
    let (reg, protoc) = registry_with_protoc();
    let tmp = scratch();
    let fifo = tmp.path().join("certs.fifo");
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    // Larger than any store (sparse: it takes no room).
    let huge = tmp.path().join("huge.pem");
    std::fs::File::create(&huge)
        .unwrap()
        .set_len(64 << 20)
        .unwrap();
    let source = format!("oci://{}/ns/tools/protoc", reg.host);
    let materialize = |case: &str, var: &str, value: &Path| {
        let mut cmd = protoreg();
        cmd.env_remove("SSL_CERT_FILE")
            .env_remove("SSL_CERT_DIR")
            .env_remove("PROTOREG_CA_BUNDLE")
            .env(var, value)
            .args(materialize_args(
                &protoc,
                "zip",
                &tmp.path().join(format!("cache-{case}")),
                &tmp.path().join(format!("out-{case}")),
            ))
            .args(["--plain-http", "--source", &source]);
        let o = run_within(&mut cmd, std::time::Duration::from_secs(20));
        o.unwrap_or_else(|| panic!("{case}: {var}={} hung", value.display()))
    };
    let dir_with = |name: &str, file: &Path| {
        let dir = tmp.path().join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink(file, dir.join("0a1b2c3d.0")).unwrap();
        dir
    };
    let zero = Path::new("/dev/zero");
    for (case, var, value) in [
        ("file-fifo", "SSL_CERT_FILE", fifo.clone()),
        ("file-zero", "SSL_CERT_FILE", zero.to_path_buf()),
        ("file-huge", "SSL_CERT_FILE", huge.clone()),
        ("bundle-fifo", "PROTOREG_CA_BUNDLE", fifo.clone()),
        ("bundle-zero", "PROTOREG_CA_BUNDLE", zero.to_path_buf()),
        ("dir-huge", "SSL_CERT_DIR", dir_with("dir-huge", &huge)),
    ] {
        let o = materialize(case, var, &value);
        assert_eq!(o.status.code(), Some(2), "{case}: {}", text(&o));
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(var) && err.contains("hint:"), "{case}: {err}");
        assert!(absent_or_empty(&tmp.path().join(format!("out-{case}"))));
    }
    // The loader itself skips what is not a regular file in a directory: a FIFO or a
    // device beside a real certificate there is harmless, and the run goes on.
    let dir = dir_with("dir-fifo", &fifo);
    std::os::unix::fs::symlink(zero, dir.join("0a1b2c3d.1")).unwrap();
    test_ca(&dir, "IP:127.0.0.1");
    let o = materialize("dir-fifo", "SSL_CERT_DIR", &dir);
    assert_protoc_materialized(&o, &tmp.path().join("out-dir-fifo"));
}
