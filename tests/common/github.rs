//! A loopback server in the shape of the GitHub releases API (`/repos/OWNER/REPO/releases`,
//! `/releases/tags/TAG`) that also serves the assets, for publish, bump and outdated tests.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::Path;

use super::http::{HttpServer, Route};

pub struct Asset<'a> {
    pub name: &'a str,
    pub file: &'a Path,
    /// What the API reports as `digest`; None to omit (older releases), Some(wrong) to lie.
    pub digest: Option<String>,
}

impl<'a> Asset<'a> {
    /// An asset with the digest GitHub would report.
    pub fn new(name: &'a str, file: &'a Path) -> Asset<'a> {
        let (sha, _) = protoreg::pipeline::verify::hash_file(file).unwrap();
        Asset {
            name,
            file,
            digest: Some(format!("sha256:{sha}")),
        }
    }
}

pub struct FakeGitHub {
    pub server: HttpServer,
    releases: RefCell<BTreeMap<String, Vec<serde_json::Value>>>,
    /// `HOST:PORT` in the URLs it hands out (the API's and the assets').
    authority: String,
}

impl FakeGitHub {
    pub fn start() -> FakeGitHub {
        let server = HttpServer::start();
        FakeGitHub {
            authority: server.addr.clone(),
            server,
            releases: RefCell::default(),
        }
    }

    /// Known as `name` (say `github.test`, which only a test proxy resolves) in every URL it
    /// hands out, on the port it listens on.
    pub fn start_named(name: &str) -> FakeGitHub {
        let mut gh = FakeGitHub::start();
        let port = gh.server.addr.rsplit(':').next().unwrap_or_default();
        gh.authority = format!("{name}:{port}");
        gh
    }

    fn named(&self, url: String) -> String {
        url.replacen(&self.server.addr, &self.authority, 1)
    }

    /// The value for GITHUB_API_URL.
    pub fn api_url(&self) -> String {
        self.named(self.server.url(""))
    }

    /// Add a release of `repo` (`owner/name`) at `tag`.
    pub fn release(&self, repo: &str, tag: &str, assets: &[Asset], prerelease: bool, draft: bool) {
        let mut list = Vec::new();
        for a in assets {
            let path = format!("/download/{repo}/{tag}/{}", a.name);
            let url = self.named(self.server.route(&path, Route::File(a.file.to_path_buf())));
            let size = std::fs::metadata(a.file).unwrap().len();
            let mut j =
                serde_json::json!({"name": a.name, "size": size, "browser_download_url": url});
            if let Some(d) = &a.digest {
                j["digest"] = serde_json::Value::String(d.clone());
            }
            list.push(j);
        }
        let release = serde_json::json!({
            "tag_name": tag, "draft": draft, "prerelease": prerelease,
            "published_at": "2025-07-01T00:00:00Z", "assets": list,
        });
        self.server.route(
            &format!("/repos/{repo}/releases/tags/{tag}"),
            Route::Body("application/json", serde_json::to_vec(&release).unwrap()),
        );
        let mut all = self.releases.borrow_mut();
        let entry = all.entry(repo.to_string()).or_default();
        entry.push(release);
        self.server.route(
            &format!("/repos/{repo}/releases"),
            Route::Body("application/json", serde_json::to_vec(&entry).unwrap()),
        );
    }

    /// Add a release of `repo` as given (any JSON, for releases upstream spells oddly).
    pub fn raw_release(&self, repo: &str, release: serde_json::Value) {
        if let Some(tag) = release["tag_name"].as_str() {
            self.server.route(
                &format!("/repos/{repo}/releases/tags/{tag}"),
                Route::Body("application/json", serde_json::to_vec(&release).unwrap()),
            );
        }
        let mut all = self.releases.borrow_mut();
        let entry = all.entry(repo.to_string()).or_default();
        entry.push(release);
        self.server.route(
            &format!("/repos/{repo}/releases"),
            Route::Body("application/json", serde_json::to_vec(&entry).unwrap()),
        );
    }

    /// Replace a served asset (to simulate a changed upstream byte).
    pub fn replace_asset(&self, repo: &str, tag: &str, name: &str, route: Route) {
        self.server
            .route(&format!("/download/{repo}/{tag}/{name}"), route);
    }

    /// GET requests seen for an asset.
    pub fn downloads(&self, repo: &str, tag: &str, name: &str) -> usize {
        self.server.count(&format!("/download/{repo}/{tag}/{name}"))
    }
}

/// The five protoc 36.2 zips of the fixtures, by upstream asset name.
pub fn protoc_assets() -> Vec<(String, std::path::PathBuf)> {
    [
        "linux-x86_64",
        "linux-aarch_64",
        "osx-x86_64",
        "osx-aarch_64",
        "win64",
    ]
    .iter()
    .map(|p| {
        let name = format!("protoc-36.2-{p}.zip");
        let path = super::fixture(&name);
        (name, path)
    })
    .collect()
}
