//! One TLS trust for every source: an `https://` source and a `docker-registry` serving TLS,
//! both with a certificate from a CA the test makes (openssl), are refused until that CA is
//! trusted through `SSL_CERT_FILE`; then they are fetched from and verified.

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use common::*;

/// A CA and a certificate for 127.0.0.1 signed by it, in `dir`: (ca.pem, cert.pem, key.pem).
fn test_ca(dir: &Path) {
    let openssl = |args: &[&str]| {
        let o = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("openssl");
        assert!(o.status.success(), "openssl {args:?}: {}", text(&o));
    };
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-days",
        "2",
        "-subj",
        "/CN=protoreg test CA",
        "-keyout",
        "ca.key",
        "-out",
        "ca.pem",
    ]);
    openssl(&[
        "req",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-subj",
        "/CN=127.0.0.1",
        "-keyout",
        "key.pem",
        "-out",
        "server.csr",
    ]);
    std::fs::write(dir.join("san.ext"), "subjectAltName = IP:127.0.0.1\n").unwrap();
    openssl(&[
        "x509",
        "-req",
        "-in",
        "server.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-days",
        "2",
        "-extfile",
        "san.ext",
        "-out",
        "cert.pem",
    ]);
}

/// An HTTPS file server over `root` on 127.0.0.1 (Python's, with the test certificate);
/// stopped by its PID on drop.
struct HttpsServer {
    child: Child,
    port: u16,
}

impl HttpsServer {
    fn start(root: &Path, certs: &Path) -> HttpsServer {
        let script = "import http.server, ssl, sys\n\
            handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=sys.argv[1], **k)\n\
            srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), handler)\n\
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n\
            ctx.load_cert_chain(sys.argv[2], sys.argv[3])\n\
            srv.socket = ctx.wrap_socket(srv.socket, server_side=True)\n\
            print(srv.server_address[1], flush=True)\n\
            srv.serve_forever()\n";
        let mut child = Command::new("python3")
            .args(["-c", script])
            .arg(root)
            .arg(certs.join("cert.pem"))
            .arg(certs.join("key.pem"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the server's port");
        HttpsServer { child, port }
    }
}

impl Drop for HttpsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn an_https_source_is_trusted_through_the_one_trust_setting() {
    let tmp = scratch();
    let certs = tmp.path().join("certs");
    let files = tmp.path().join("files");
    std::fs::create_dir_all(&certs).unwrap();
    std::fs::create_dir_all(&files).unwrap();
    test_ca(&certs);
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
    test_ca(&certs);
    let reg = RegistryServer::start_tls(&certs.join("cert.pem"), &certs.join("key.pem"));
    let ca = certs.join("ca.pem");
    std::fs::write(
        tmp.path().join("registry.yaml"),
        format!(
            "primary_registry:\n  url: \"{}\"\n  namespace: \"ns\"\n",
            reg.host
        ),
    )
    .unwrap();
    // A descriptor set to push (`baseline push` sends any such file over TLS, no plain HTTP).
    let image = tmp.path().join("image.binpb");
    std::fs::write(
        &image,
        [
            0x0a, 0x09, 0x0a, 0x07, b'a', b'.', b'p', b'r', b'o', b't', b'o',
        ],
    )
    .unwrap();
    let push = |ca: Option<&Path>| {
        let mut cmd = protoreg();
        cmd.env_remove("SSL_CERT_DIR").current_dir(tmp.path());
        match ca {
            Some(ca) => cmd.env("SSL_CERT_FILE", ca),
            None => cmd.env_remove("SSL_CERT_FILE"),
        };
        run(cmd
            .args(["--cache-dir"])
            .arg(tmp.path().join("cache"))
            .args(["baseline", "push"])
            .arg(&image)
            .args(["--repository", "images/x", "--tag", "v1", "--json"]))
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
        .args(["materialize", "--sha256", p.sha256.hex(), "--size"])
        .arg(p.size.to_string())
        .args([
            "--format",
            "raw",
            "--executable",
            "image.binpb",
            "--cache-dir",
        ])
        .arg(tmp.path().join("cache2"))
        .arg("--out")
        .arg(&out)
        .args(["--source", &format!("oci://{}/ns/images/x", reg.host)]));
    assert!(o.status.success(), "{}", text(&o));
    assert_eq!(
        std::fs::read(out.join("image.binpb")).unwrap(),
        std::fs::read(&image).unwrap()
    );
}
