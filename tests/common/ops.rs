//! The operator's side under test: a real registry, a GitHub-shaped loopback upstream serving
//! protoc 36.2 (5 platforms) and buf 1.75.0 (every platform upstream ships, with sha256.txt),
//! a registry.yaml pointing at them, and a runner for `protoreg` with that environment.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::github::{protoc_assets, Asset, FakeGitHub};
use super::*;

pub const PROTOC_REPO: &str = "protocolbuffers/protobuf";
pub const BUF_REPO: &str = "bufbuild/buf";
pub const NS: &str = "buck2-protobuf";

/// buf 1.75.0's assets as upstream names them: 4 archives, the 2 bare Windows executables
/// (upstream ships no Windows archive), then sha256.txt.
pub fn buf_assets() -> Vec<(String, PathBuf)> {
    let mut v: Vec<(String, PathBuf)> = [
        "buf-Linux-x86_64.tar.gz",
        "buf-Linux-aarch64.tar.gz",
        "buf-Darwin-x86_64.tar.gz",
        "buf-Darwin-arm64.tar.gz",
        "buf-Windows-x86_64.exe",
        "buf-Windows-arm64.exe",
    ]
    .iter()
    .map(|n| (n.to_string(), fixture(n)))
    .collect();
    v.push(("sha256.txt".into(), fixture("sha256.txt")));
    v
}

/// A test signing key (fixed seed), standing in for buf's release key: (public key for
/// registry.yaml, signer).
pub struct Minisign {
    key: ed25519_dalek::SigningKey,
}

const KEY_ID: [u8; 8] = [0x42, 0, 0, 0, 0, 0, 0, 0x17];

impl Minisign {
    pub fn test_key() -> Minisign {
        Minisign {
            key: ed25519_dalek::SigningKey::from_bytes(&[7u8; 32]),
        }
    }

    pub fn public_key(&self) -> String {
        use base64::Engine;
        let mut bin = b"Ed".to_vec();
        bin.extend_from_slice(&KEY_ID);
        bin.extend_from_slice(&self.key.verifying_key().to_bytes());
        base64::engine::general_purpose::STANDARD.encode(bin)
    }

    /// A `.minisig` file over `data` (legacy Ed25519 over the bytes, as older minisign makes).
    pub fn sign(&self, data: &[u8]) -> String {
        use base64::Engine;
        use ed25519_dalek::Signer;
        let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
        let sig = self.key.sign(data).to_bytes();
        let mut bin = b"Ed".to_vec();
        bin.extend_from_slice(&KEY_ID);
        bin.extend_from_slice(&sig);
        let trusted = "timestamp:1751328000\tfile:sha256.txt";
        let mut global = sig.to_vec();
        global.extend_from_slice(trusted.as_bytes());
        let gsig = self.key.sign(&global).to_bytes();
        format!(
            "untrusted comment: signature from protoreg tests\n{}\ntrusted comment: {trusted}\n{}\n",
            b64(&bin),
            b64(&gsig)
        )
    }
}

/// `sha256.txt.minisig` over the fixtures' sha256.txt, signed by the test key.
pub fn buf_signature() -> PathBuf {
    let dir = fixtures().parent().unwrap().join("test-signatures");
    std::fs::create_dir_all(&dir).unwrap();
    let sums = std::fs::read(fixture("sha256.txt")).unwrap();
    let path = dir.join(format!(
        "sha256.txt.{}.minisig",
        protoreg::pipeline::verify::Sha256::of_bytes(&sums)
    ));
    if !path.is_file() {
        let tmp = dir.join(format!(".{}.tmp", std::process::id()));
        std::fs::write(&tmp, Minisign::test_key().sign(&sums)).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    }
    path
}

pub fn github_with_protoc_and_buf() -> FakeGitHub {
    let gh = FakeGitHub::start();
    let protoc = protoc_assets();
    let list: Vec<Asset> = protoc.iter().map(|(n, p)| Asset::new(n, p)).collect();
    gh.release(PROTOC_REPO, "v36.2", &list, false, false);
    let mut buf = buf_assets();
    buf.push(("sha256.txt.minisig".into(), buf_signature()));
    let list: Vec<Asset> = buf.iter().map(|(n, p)| Asset::new(n, p)).collect();
    gh.release(BUF_REPO, "v1.75.0", &list, false, false);
    gh
}

/// A working directory with a registry.yaml and a cache.
pub struct Workspace {
    pub dir: super::Scratch,
    pub api: String,
}

impl Workspace {
    /// `extra` is appended to registry.yaml (more top-level keys).
    pub fn new(registry_host: &str, api: &str, extra: &str) -> Workspace {
        let dir = scratch();
        let ws = Workspace {
            dir,
            api: api.to_string(),
        };
        ws.write_config(registry_host, extra);
        ws
    }

    pub fn write_config(&self, registry_host: &str, extra: &str) {
        let text = format!(
            "primary_registry:\n  url: \"{registry_host}\"\n  namespace: \"{NS}\"\n  auth_required: false\n  plain_http: true\n\
             publishing:\n  parallel_uploads: 4\n  retries: 4\n  tool_sources:\n    buf:\n      minisign_public_key: \"{key}\"\n\
             {extra}",
            key = Minisign::test_key().public_key()
        );
        std::fs::write(self.config(), text).unwrap();
    }

    pub fn config(&self) -> PathBuf {
        self.dir.path().join("registry.yaml")
    }

    pub fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    pub fn audit_log(&self) -> PathBuf {
        self.cache().join("audit-v1.jsonl")
    }

    /// `protoreg` run in the workspace (no pins file in reach) with its config and cache.
    pub fn cmd(&self) -> Command {
        let mut c = protoreg();
        c.current_dir(self.dir.path())
            .env("GITHUB_API_URL", &self.api)
            .env_remove("GITHUB_TOKEN")
            .env_remove("PROTOREG_PINS")
            .env_remove("PROTOREG_CONFIG")
            .env_remove("PROTOREG_AUDIT_LOG")
            .arg("--config")
            .arg(self.config())
            .arg("--cache-dir")
            .arg(self.cache());
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        run(self.cmd().args(args))
    }

    /// Run, require success, parse stdout as JSON.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let out = self.run(args);
        assert!(out.status.success(), "{args:?}\n{}", text(&out));
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: not JSON ({e})\n{}", text(&out)))
    }
}

/// The digest every tag of `repository` points at, sorted by tag.
pub fn tag_digests(reg: &RegistryServer, repository: &str) -> Vec<(String, String)> {
    let client = reg.client(None);
    let mut tags = client.tags(repository).unwrap();
    tags.sort();
    tags.into_iter()
        .map(|t| {
            let (bytes, _) = client.manifest(repository, &t).unwrap().unwrap();
            (
                t,
                protoreg::pipeline::verify::Sha256::of_bytes(&bytes).oci(),
            )
        })
        .collect()
}

pub fn python() -> PathBuf {
    let p = fixtures().parent().unwrap().join("venv/bin/python");
    assert!(
        p.is_file(),
        "{} missing: run scripts/install-deps",
        p.display()
    );
    p
}

pub fn is_file(p: &Path) -> bool {
    p.is_file()
}
