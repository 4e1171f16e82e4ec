//! Test support: a real registry (Debian's docker-registry) on loopback, a small loopback HTTP
//! server that serves real files or injects faults, the real upstream fixtures, and the
//! protoreg binary. Every server listens on 127.0.0.1 and is stopped by the PID we started.
#![allow(dead_code)]

pub mod bounded;
pub mod buck2;
pub mod forward_proxy;
pub mod github;
pub mod http;
pub mod nativelink;
pub mod ops;
pub mod proxy;
pub mod tls;
pub mod token;
pub mod user;
pub mod wine;
pub mod xz;

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use protoreg::artifact::{self, ToolFile};
use protoreg::auth::Credentials;
use protoreg::pipeline::extract::Format;
use protoreg::pipeline::fetch::NetOptions;
use protoreg::pipeline::verify::{hash_file, Sha256};
use protoreg::registry::Registry;

/// The directory of real upstream-layout archives built by `scripts/install-deps`.
pub fn fixtures() -> PathBuf {
    let dir = std::env::var_os("PROTOREG_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join(".fixtures"))
        .join("upstream");
    assert!(
        dir.join("buf-Linux-x86_64.tar.gz").is_file(),
        "test fixtures missing in {}: run scripts/install-deps first",
        dir.display()
    );
    dir
}

pub fn fixture(name: &str) -> PathBuf {
    let p = fixtures().join(name);
    assert!(
        p.is_file(),
        "fixture {} missing: run scripts/install-deps",
        p.display()
    );
    p
}

pub const PROTOC_ZIP: &str = "protoc-36.2-linux-x86_64.zip";
pub const BUF_TGZ: &str = "buf-Linux-x86_64.tar.gz";

/// A file with its pin.
#[derive(Clone, Debug)]
pub struct Pinned {
    pub path: PathBuf,
    pub sha256: Sha256,
    pub size: u64,
}

pub fn pin(path: &Path) -> Pinned {
    let (sha256, size) = hash_file(path).unwrap();
    Pinned {
        path: path.to_path_buf(),
        sha256,
        size,
    }
}

/// A temporary directory removed on drop even when a test, as an unprivileged user, left
/// read-only cache trees in it (`TempDir` alone fails there and leaks the whole directory).
pub struct Scratch(Option<tempfile::TempDir>);

pub fn scratch() -> Scratch {
    Scratch(Some(tempfile::tempdir().unwrap()))
}

pub fn scratch_in(parent: &Path) -> Scratch {
    Scratch(Some(tempfile::tempdir_in(parent).unwrap()))
}

impl std::ops::Deref for Scratch {
    type Target = tempfile::TempDir;
    fn deref(&self) -> &tempfile::TempDir {
        self.0.as_ref().unwrap()
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            let _ = writable_tree(dir.path());
        }
    }
}

/// Give every directory under `path` its owner's write bit, so it can be removed.
fn writable_tree(path: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::symlink_metadata(path)?;
    if meta.is_dir() {
        let mode = meta.permissions().mode();
        if mode & 0o700 != 0o700 {
            fs::set_permissions(path, fs::Permissions::from_mode(mode | 0o700))?;
        }
        for entry in fs::read_dir(path)? {
            writable_tree(&entry?.path())?;
        }
    }
    Ok(())
}

/// The proxy variables protoreg reads: cleared for every test run of it, so a proxy of the
/// machine's never carries (or breaks) a test's loopback traffic.
pub const PROXY_VARS: [&str; 8] = [
    "http_proxy",
    "HTTP_PROXY",
    "https_proxy",
    "HTTPS_PROXY",
    "all_proxy",
    "ALL_PROXY",
    "no_proxy",
    "NO_PROXY",
];

pub fn protoreg() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_protoreg"));
    for var in PROXY_VARS {
        c.env_remove(var);
    }
    c.env_remove("PROTOREG_CACHE_DIR")
        .env_remove("PROTOREG_REGISTRY_USERNAME")
        .env_remove("PROTOREG_REGISTRY_PASSWORD")
        .env_remove("PROTOREG_REGISTRY_TOKEN")
        .env("DOCKER_CONFIG", "/nonexistent-docker-config")
        .env("NETRC", "/nonexistent-netrc")
        .stdin(Stdio::null());
    c
}

pub fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("spawn")
}

/// The commit this checkout is at, as `scripts/release-build` builds it into protoreg.
pub fn head_commit() -> String {
    let head = Command::new("git")
        .args(["rev-parse", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    String::from_utf8_lossy(&head.stdout).trim().to_string()
}

pub fn text(out: &Output) -> String {
    format!(
        "status: {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Arguments of `materialize` for a pinned protoc zip or buf tarball (a raw file's
/// `--executable` is the caller's).
pub fn materialize_args(p: &Pinned, format: &str, cache: &Path, out: &Path) -> Vec<String> {
    let mut a = vec![
        "materialize".to_string(),
        "--sha256".into(),
        p.sha256.to_string(),
        "--size".into(),
        p.size.to_string(),
        "--format".into(),
        format.into(),
        "--cache-dir".into(),
        cache.display().to_string(),
        "--out".into(),
        out.display().to_string(),
    ];
    match format {
        "zip" => a.extend(["--executable".into(), "bin/protoc".into()]),
        "tar.gz" => a.extend([
            "--strip-prefix".into(),
            "buf".into(),
            "--executable".into(),
            "bin/buf".into(),
        ]),
        _ => {}
    }
    a
}

/// The `--version` of the protoc materialized in `tree`.
pub fn protoc_version(tree: &Path) -> String {
    let v = Command::new(tree.join("bin/protoc"))
        .arg("--version")
        .output()
        .expect("run the materialized protoc");
    String::from_utf8_lossy(&v.stdout).trim().to_string()
}

/// `o` succeeded and left in `tree` a protoc 36.2 that runs.
pub fn assert_protoc_materialized(o: &Output, tree: &Path) {
    assert!(o.status.success(), "{}", text(o));
    assert_eq!(protoc_version(tree), "libprotoc 36.2", "{}", text(o));
}

/// A Docker config directory (for `DOCKER_CONFIG`) under `parent` whose `config.json` has
/// basic credentials for `host` in `auths`.
pub fn docker_config_auths(parent: &Path, host: &str, user: &str, password: &str) -> PathBuf {
    use base64::Engine;
    let docker = parent.join("docker");
    fs::create_dir_all(&docker).unwrap();
    let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    fs::write(
        docker.join("config.json"),
        format!("{{\"auths\": {{\"{host}\": {{\"auth\": \"{auth}\"}}}}}}"),
    )
    .unwrap();
    docker
}

/// A plain-HTTP docker-registry holding the fixture protoc 36.2 (linux-x86_64) at
/// `ns/tools/protoc`, as this project publishes it.
pub fn registry_with_protoc() -> (RegistryServer, Pinned) {
    let reg = RegistryServer::start();
    let protoc = pin(&fixture(PROTOC_ZIP));
    reg.push(
        "ns/tools/protoc",
        &protoc,
        protoreg::pipeline::extract::Format::Zip,
        "v36.2-linux-x86_64",
        None,
    );
    (reg, protoc)
}

/// `args` (of [`materialize_args`]) without `--size BYTES`: a pin whose size is unknown.
pub fn without_size(mut args: Vec<String>) -> Vec<String> {
    let i = args
        .iter()
        .position(|a| a == "--size")
        .expect("no --size to drop");
    args.drain(i..i + 2);
    args
}

/// Debian's docker-registry on 127.0.0.1 with a free port.
pub struct RegistryServer {
    pub host: String,
    child: Child,
    pub dir: tempfile::TempDir,
}

/// How a [`RegistryServer`] authenticates its clients.
enum RegistryAuth<'a> {
    None,
    /// htpasswd with this one user and password.
    Htpasswd(&'a str, &'a str),
    /// distribution's `auth.token`: the token server's realm and the certificate bundle its
    /// tokens' signing keys must chain to.
    Token {
        realm: &'a str,
        service: &'a str,
        issuer: &'a str,
        rootcertbundle: &'a Path,
    },
}

impl RegistryServer {
    pub fn start() -> RegistryServer {
        Self::start_with(RegistryAuth::None, None)
    }

    pub fn start_with_htpasswd(user: &str, password: &str) -> RegistryServer {
        Self::start_with(RegistryAuth::Htpasswd(user, password), None)
    }

    /// Serving TLS with this certificate and key (PEM files).
    pub fn start_tls(cert: &Path, key: &Path) -> RegistryServer {
        Self::start_with(RegistryAuth::None, Some((cert, key)))
    }

    /// Bearer-token auth (distribution's `auth.token`): clients are sent to `realm` for a
    /// token issued by `issuer` for `service`, signed by a key `rootcertbundle` (PEM) trusts;
    /// over TLS with `tls` (certificate and key PEM files), else plain HTTP.
    pub fn start_token(
        realm: &str,
        service: &str,
        issuer: &str,
        rootcertbundle: &Path,
        tls: Option<(&Path, &Path)>,
    ) -> RegistryServer {
        Self::start_with(
            RegistryAuth::Token {
                realm,
                service,
                issuer,
                rootcertbundle,
            },
            tls,
        )
    }

    fn start_with(auth: RegistryAuth, tls: Option<(&Path, &Path)>) -> RegistryServer {
        let dir = tempfile::tempdir().unwrap();
        let tls = tls
            .map(|(cert, key)| {
                format!(
                    ", tls: {{certificate: {}, key: {}}}",
                    cert.display(),
                    key.display()
                )
            })
            .unwrap_or_default();
        let mut config = format!(
            "version: 0.1\nlog: {{level: info, accesslog: {{disabled: true}}}}\n\
             storage:\n  filesystem: {{rootdirectory: {}}}\n  delete: {{enabled: true}}\n\
             http: {{addr: '127.0.0.1:0', secret: test{tls}}}\n",
            dir.path().join("data").display()
        );
        match auth {
            RegistryAuth::None => {}
            RegistryAuth::Htpasswd(user, password) => {
                let out = Command::new("htpasswd")
                    .args(["-Bbn", user, password])
                    .output()
                    .expect("htpasswd (apache2-utils) missing: run scripts/install-deps");
                fs::write(dir.path().join("htpasswd"), &out.stdout).unwrap();
                config.push_str(&format!(
                    "auth:\n  htpasswd: {{realm: basic-realm, path: {}}}\n",
                    dir.path().join("htpasswd").display()
                ));
            }
            RegistryAuth::Token {
                realm,
                service,
                issuer,
                rootcertbundle,
            } => config.push_str(&format!(
                "auth:\n  token: {{realm: '{realm}', service: '{service}', issuer: '{issuer}', rootcertbundle: '{}'}}\n",
                rootcertbundle.display()
            )),
        }
        fs::write(dir.path().join("config.yml"), config).unwrap();
        let log = fs::File::create(dir.path().join("log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("docker-registry missing: run scripts/install-deps");
        let deadline = Instant::now() + Duration::from_secs(10);
        let host = loop {
            let mut s = String::new();
            fs::File::open(dir.path().join("log"))
                .unwrap()
                .read_to_string(&mut s)
                .unwrap();
            if let Some(i) = s.find("listening on 127.0.0.1:") {
                let rest = &s[i + "listening on ".len()..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
                    .unwrap_or(rest.len());
                break rest[..end].to_string();
            }
            assert!(
                Instant::now() < deadline,
                "docker-registry did not start: {s}"
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        RegistryServer { host, child, dir }
    }

    pub fn client(&self, creds: Option<Credentials>) -> Registry {
        let net = NetOptions {
            plain_http: true,
            timeout: Duration::from_secs(30),
            hosts: Vec::new(),
            proxies: Default::default(),
        };
        Registry::connect(
            &self.host,
            &net,
            Some(creds.unwrap_or(Credentials::Anonymous)),
        )
        .unwrap()
    }

    /// Push `file` as this project's artifact (design.md's OCI layout) under `tag`.
    pub fn push(
        &self,
        repository: &str,
        file: &Pinned,
        format: Format,
        tag: &str,
        creds: Option<Credentials>,
    ) -> Sha256 {
        let reg = self.client(creds);
        reg.push_blob_file(
            repository,
            &file.path,
            &file.sha256,
            file.size,
            &protoreg::progress::Bar::hidden(),
        )
        .unwrap();
        reg.push_blob_bytes(repository, artifact::EMPTY_CONFIG)
            .unwrap();
        let tool = ToolFile {
            file_name: file
                .path
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned(),
            sha256: file.sha256.clone(),
            size: file.size,
            format,
            version: "test".into(),
            source_url: "https://example.invalid/".into(),
            created: "2025-01-01T00:00:00Z".into(),
        };
        let bytes = artifact::to_bytes(&tool.manifest());
        reg.push_manifest(repository, Some(tag), &bytes, artifact::MANIFEST_MEDIA_TYPE)
            .unwrap()
    }

    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RegistryServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Every regular file under `root` with its contents' digest and mode, for tree comparison.
pub fn tree_listing(root: &Path) -> Vec<(String, String, u32)> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, String, u32)>) {
        let mut entries: Vec<_> = fs::read_dir(dir).unwrap().map(|e| e.unwrap()).collect();
        entries.sort_by_key(|e| e.file_name());
        for e in entries {
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let meta = fs::symlink_metadata(&p).unwrap();
            if meta.is_dir() {
                walk(root, &p, out);
            } else if meta.is_file() {
                let (sha, _) = hash_file(&p).unwrap();
                out.push((rel, sha.to_string(), meta.permissions().mode() & 0o111));
            } else {
                out.push((
                    rel,
                    format!("-> {}", fs::read_link(&p).unwrap().display()),
                    0,
                ));
            }
        }
    }
    walk(root, root, &mut out);
    out
}

/// Is `dir` absent or empty?
pub fn absent_or_empty(dir: &Path) -> bool {
    match fs::read_dir(dir) {
        Ok(mut rd) => rd.next().is_none(),
        Err(_) => true,
    }
}

/// Cache entries that look complete: every directory under trees-v1/xx/ (not the trees'
/// manifests, `<key>.manifest` beside them).
pub fn cache_trees(cache: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(cache.join("trees-v1")) {
        for fan in rd.flatten() {
            for e in fs::read_dir(fan.path()).unwrap().flatten() {
                if !e.file_name().to_string_lossy().ends_with(".manifest") {
                    out.push(e.path());
                }
            }
        }
    }
    out
}

/// The manifests beside the trees of the cache (`trees-v1/xx/<key>.manifest`).
pub fn cache_manifests(cache: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(cache.join("trees-v1")) {
        for fan in rd.flatten() {
            for e in fs::read_dir(fan.path()).unwrap().flatten() {
                if e.file_name().to_string_lossy().ends_with(".manifest") {
                    out.push(e.path());
                }
            }
        }
    }
    out
}

/// The cached blob of `p`.
pub fn cache_blob(cache: &Path, p: &Pinned) -> PathBuf {
    let hex = p.sha256.hex();
    cache.join("blobs-v1/sha256").join(&hex[..2]).join(hex)
}

/// `protoreg cache verify` of `cache` with `extra` arguments.
pub fn cache_verify(cache: &Path, extra: &[&str]) -> Output {
    run(protoreg()
        .args(["cache", "verify", "--cache-dir"])
        .arg(cache)
        .args(extra))
}

/// Give the owner write permission on `path` and every directory above it up to `top`, so a
/// test can tamper with a read-only cache entry whoever runs it.
pub fn make_writable(top: &Path, path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    let mut p = path.to_path_buf();
    loop {
        if let Ok(m) = fs::symlink_metadata(&p) {
            if !m.file_type().is_symlink() {
                let mode = m.permissions().mode() | 0o200;
                fs::set_permissions(&p, fs::Permissions::from_mode(mode)).unwrap();
            }
        }
        if p == top || !p.pop() {
            break;
        }
    }
}

/// A zip of `(name, data, mode)`: a mode with the symlink type makes `data` a link target.
pub fn zip_with(dir: &Path, name: &str, members: &[(&str, &[u8], u32)]) -> PathBuf {
    let path = dir.join(name);
    let mut z = zip::ZipWriter::new(fs::File::create(&path).unwrap());
    for (member, data, mode) in members {
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(*mode);
        if mode & 0o170000 == 0o120000 {
            z.add_symlink(*member, std::str::from_utf8(data).unwrap(), opts)
                .unwrap();
        } else {
            z.start_file(*member, opts).unwrap();
            z.write_all(data).unwrap();
        }
    }
    z.finish().unwrap();
    path
}

/// A tar.gz whose headers are written by hand, so names the tar crate would refuse to
/// build (absolute paths, `..`) can be made.
pub fn tgz_with(
    dir: &Path,
    name: &str,
    members: &[(&str, tar::EntryType, &str, &[u8])],
) -> PathBuf {
    let path = dir.join(name);
    let gz = flate2::write::GzEncoder::new(
        fs::File::create(&path).unwrap(),
        flate2::Compression::fast(),
    );
    let mut b = tar::Builder::new(gz);
    for (member, kind, link, data) in members {
        let mut h = tar::Header::new_gnu();
        let raw = h.as_old_mut();
        raw.name[..member.len()].copy_from_slice(member.as_bytes());
        raw.linkname[..link.len()].copy_from_slice(link.as_bytes());
        h.set_entry_type(*kind);
        h.set_mode(0o755);
        h.set_size(data.len() as u64);
        h.set_cksum();
        b.append(&h, *data).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap();
    path
}

/// A tar.gz of regular files `(name, mode, data)`, in this order.
pub fn tgz_files(dir: &Path, name: &str, members: &[(&str, u32, &[u8])]) -> PathBuf {
    let path = dir.join(name);
    let gz = flate2::write::GzEncoder::new(
        std::fs::File::create(&path).unwrap(),
        flate2::Compression::default(),
    );
    let mut b = tar::Builder::new(gz);
    for (member, mode, data) in members {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Regular);
        h.set_mode(*mode);
        h.set_size(data.len() as u64);
        b.append_data(&mut h, member, *data).unwrap();
    }
    b.into_inner().unwrap().finish().unwrap();
    path
}
