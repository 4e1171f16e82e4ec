//! TLS for tests: a CA the test makes (openssl) and an HTTPS file server (Python's) with a
//! certificate from it, trusted by protoreg through `SSL_CERT_FILE`.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::text;

/// A CA and a server certificate signed by it for `san` (an openssl subjectAltName value:
/// `IP:127.0.0.1`, `DNS:registry.test,IP:127.0.0.1`), in `dir`: ca.pem, cert.pem, key.pem.
pub fn test_ca(dir: &Path, san: &str) {
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
    std::fs::write(dir.join("san.ext"), format!("subjectAltName = {san}\n")).unwrap();
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
pub struct HttpsServer {
    child: Child,
    pub port: u16,
}

impl HttpsServer {
    pub fn start(root: &Path, certs: &Path) -> HttpsServer {
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

/// Set `dir` up to push a small descriptor set over TLS: a registry.yaml whose primary
/// registry is `authority` (namespace `ns`), and `image.binpb`; returns the image's path.
pub fn image_to_push(dir: &Path, authority: &str) -> std::path::PathBuf {
    std::fs::write(
        dir.join("registry.yaml"),
        format!("primary_registry:\n  url: \"{authority}\"\n  namespace: \"ns\"\n"),
    )
    .unwrap();
    let image = dir.join("image.binpb");
    std::fs::write(
        &image,
        [
            0x0a, 0x09, 0x0a, 0x07, b'a', b'.', b'p', b'r', b'o', b't', b'o',
        ],
    )
    .unwrap();
    image
}

/// `protoreg baseline push` of `dir`'s image (see [`image_to_push`]) as `ns/images/x:v1`,
/// run in `dir` with its cache in `dir/cache-push`; the caller sets the trust and proxies.
pub fn push_image(dir: &Path) -> Command {
    let mut cmd = super::protoreg();
    cmd.env_remove("SSL_CERT_DIR")
        .current_dir(dir)
        .arg("--cache-dir")
        .arg(dir.join("cache-push"))
        .args(["baseline", "push"])
        .arg(dir.join("image.binpb"))
        .args(["--repository", "images/x", "--tag", "v1", "--json"]);
    cmd
}
