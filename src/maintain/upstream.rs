//! Upstream releases through the GitHub releases API (github.com or GitHub Enterprise: the
//! API base comes from `GITHUB_API_URL`, then registry.yaml, then `https://api.github.com`;
//! a token from `GITHUB_TOKEN` is sent to the API host only). Assets are downloaded streamed
//! to disk while hashing.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter};
use std::path::Path;

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::maintain::tools::{Origin, Tool};
use crate::pipeline::source::redact_url;
use crate::pipeline::verify::{HashingWriter, Sha256};
use crate::progress::Bar;

pub const ENV_API_URL: &str = "GITHUB_API_URL";
pub const ENV_TOKEN: &str = "GITHUB_TOKEN";
pub const DEFAULT_API_URL: &str = "https://api.github.com";
/// Pages of 100 releases to read at most when listing (protobuf has a few hundred).
const MAX_PAGES: usize = 10;

#[derive(Debug, Clone, Deserialize)]
pub struct ReleaseAsset {
    pub name: String,
    pub size: u64,
    pub browser_download_url: String,
    /// `sha256:<hex>`, reported by GitHub for assets uploaded since mid-2025.
    #[serde(default)]
    pub digest: Option<String>,
}

impl ReleaseAsset {
    pub fn reported_sha256(&self) -> Option<Sha256> {
        self.digest.as_deref()?.parse().ok()
    }
}

#[derive(Debug, Clone, Deserialize)]
pub struct Release {
    pub tag_name: String,
    #[serde(default)]
    pub draft: bool,
    #[serde(default)]
    pub prerelease: bool,
    #[serde(default)]
    pub published_at: Option<String>,
    #[serde(default)]
    pub assets: Vec<ReleaseAsset>,
    /// The tool's version for this tag (filled in by [`Upstream`]).
    #[serde(skip)]
    pub version: String,
}

impl Release {
    pub fn asset(&self, name: &str) -> Option<&ReleaseAsset> {
        self.assets.iter().find(|a| a.name == name)
    }
}

pub struct Upstream {
    api: String,
    token: Option<String>,
    agent: crate::pipeline::fetch::HttpAgent,
}

impl Upstream {
    /// The upstream a command should use: registry.yaml's `publishing.github_api_url` when a
    /// configuration is in reach (`--config` or ./registry.yaml), under `GITHUB_API_URL`.
    pub fn configured(global: &crate::cli::Global) -> Result<Upstream> {
        let api = match crate::config::locate(global.config.as_deref()) {
            Some(_) => {
                crate::config::Config::load(global.config.as_deref(), global.plain_http)?
                    .publishing
                    .github_api_url
            }
            None => None,
        };
        Upstream::new(api.as_deref())
    }

    /// `config_api` is registry.yaml's GitHub API base, if any.
    pub fn new(config_api: Option<&str>) -> Result<Upstream> {
        crate::pipeline::fetch::install_tls_provider();
        let api = std::env::var(ENV_API_URL)
            .ok()
            .filter(|v| !v.is_empty())
            .or_else(|| config_api.map(str::to_string))
            .unwrap_or_else(|| DEFAULT_API_URL.to_string());
        let timeout = crate::settings::timeout()?;
        // Release assets run to ~50 MB: budget the whole body for 150 MiB at the floor rate.
        let proxies = crate::pipeline::fetch::Proxies::from_env()?;
        let agent = crate::pipeline::fetch::http_agent(timeout, 150 << 20, false, &proxies);
        Ok(Upstream {
            api: api.trim_end_matches('/').to_string(),
            token: std::env::var(ENV_TOKEN).ok().filter(|v| !v.is_empty()),
            agent,
        })
    }

    /// A release as read: its date kept only if it looks like one (it is printed, and
    /// recorded in the pins' provenance).
    fn checked(mut r: Release) -> Release {
        let date_like = |d: &String| {
            d.len() <= 40
                && d.bytes()
                    .all(|b| b.is_ascii_digit() || b"-:TZ.+".contains(&b))
        };
        r.published_at = r.published_at.filter(date_like);
        r
    }

    fn get_json<T: serde::de::DeserializeOwned>(&self, url: &str) -> Result<Option<T>> {
        let mut headers = vec![
            ("Accept", "application/vnd.github+json".to_string()),
            ("X-GitHub-Api-Version", "2022-11-28".to_string()),
        ];
        if let Some(t) = &self.token {
            headers.push(("Authorization", format!("Bearer {t}")));
        }
        let call = Call::new(
            "list releases",
            url,
            format!("check {ENV_API_URL} (GitHub Enterprise: https://HOST/api/v3) and {ENV_TOKEN} (rate limits)"),
        );
        let failed = |reason: String| call.failed(reason);
        let Some(mut resp) = self.ok_response(&call, url, &headers, &[404])? else {
            return Ok(None);
        };
        let body = resp
            .body_mut()
            .with_config()
            .limit(64 << 20)
            .read_to_string()
            .map_err(|e| failed(e.to_string()))?;
        serde_json::from_str(&body)
            .map(Some)
            .map_err(|e| failed(format!("unexpected JSON: {e}")))
    }

    /// Published releases of `tool`, newest version first (drafts and pre-releases skipped).
    /// A static host lists none: its versions are given, not discovered.
    pub fn releases(&self, tool: &Tool) -> Result<Vec<Release>> {
        if tool.origin != Origin::GitHub {
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        for page in 1..=MAX_PAGES {
            let url = format!(
                "{}/repos/{}/releases?per_page=100&page={page}",
                self.api, tool.github_repo
            );
            let batch: Vec<Release> = self.get_json(&url)?.unwrap_or_default();
            let done = batch.len() < 100;
            for r in batch {
                let mut r = Self::checked(r);
                if r.draft || r.prerelease {
                    continue;
                }
                if let Some(v) = tool.version_of_tag(&r.tag_name) {
                    r.version = v;
                    out.push(r);
                }
            }
            if done {
                break;
            }
        }
        out.sort_by(|a, b| crate::maintain::version::compare(&b.version, &a.version));
        Ok(out)
    }

    /// The release of `tool` at `version`.
    pub fn release(&self, tool: &Tool, version: &str) -> Result<Release> {
        if let Origin::Url { .. } = tool.origin {
            return self.url_release(tool, version);
        }
        let tag = tool.tag_for(version);
        let url = format!(
            "{}/repos/{}/releases/tags/{tag}",
            self.api, tool.github_repo
        );
        let found: Option<Release> = self.get_json(&url)?;
        let mut r = found.map(Self::checked).ok_or_else(|| {
            Error::input(
                format!(
                    "{} has no release `{tag}` upstream ({})",
                    tool.name, tool.github_repo
                ),
                format!(
                    "list the versions with `protoreg versions {} --upstream`",
                    tool.name
                ),
            )
        })?;
        // The release asked for, or none: its tag goes into the provenance the pins record.
        if r.tag_name != tag {
            return Err(Error::Registry {
                operation: "read the release".into(),
                registry: redact_url(&url),
                reason: format!(
                    "asked for tag `{tag}`, the answer is tagged `{}`",
                    r.tag_name
                ),
                hint: format!("check {ENV_API_URL}: that is not GitHub's answer"),
            });
        }
        if r.draft {
            return Err(Error::input(
                format!("release `{tag}` of {} is a draft", tool.name),
                "pick a published release",
            ));
        }
        r.version = version.to_string();
        Ok(r)
    }

    /// A static host's "release": each platform's asset at its templated URL, its size as the
    /// host states it (0 if it does not) and its digest, when the tool has a `checksum_url`,
    /// read from there.
    fn url_release(&self, tool: &Tool, version: &str) -> Result<Release> {
        let mut assets = Vec::new();
        for name in &tool.platforms {
            let plat = crate::platform::by_name(name)?;
            let asset = tool.asset(version, plat, "")?;
            // Like a GitHub release without that platform's asset: left out, and what needs
            // it says which asset is missing.
            let Some(size) = self.content_length(&asset.url)? else {
                continue;
            };
            let digest = match tool.checksum_url(version, plat, &asset.name) {
                Some(url) => {
                    let text = self.text(&url)?;
                    let sha = checksum_for(&text, &asset.name).ok_or_else(|| Error::Registry {
                        operation: "read the checksum".into(),
                        registry: redact_url(&url),
                        reason: format!("no sha256 for `{}` in it", asset.name),
                        hint: "check the tool's checksum_url in toolchains/tools.bzl".into(),
                    })?;
                    Some(format!("sha256:{sha}"))
                }
                None => None,
            };
            assets.push(ReleaseAsset {
                name: asset.name,
                size,
                browser_download_url: asset.url,
                digest,
            });
        }
        if assets.is_empty() {
            return Err(Error::input(
                format!(
                    "{} {version}: no platform's asset is on its host",
                    tool.name
                ),
                "check the version, and the tool's `url` and `asset` in the catalogue",
            ));
        }
        Ok(Release {
            tag_name: tool.tag_for(version),
            draft: false,
            prerelease: false,
            published_at: None,
            assets,
            version: version.to_string(),
        })
    }

    /// The size a host states for `url` (its Content-Length; 0 when it states none), None
    /// when it has no such file. Only the headers are read: the body is dropped unread.
    fn content_length(&self, url: &str) -> Result<Option<u64>> {
        let call = Call::new(
            "find the asset",
            url,
            "check the version, and the tool's url in toolchains/tools.bzl",
        );
        let Some(resp) = self.ok_response(&call, url, &[], &[404, 410])? else {
            return Ok(None);
        };
        Ok(Some(
            resp.headers()
                .get("content-length")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0),
        ))
    }

    /// Stream `url` into `dest` while hashing, counting it on `bar`; returns the digest and
    /// size. `limit` bounds the body (the asset's reported size).
    pub fn download(&self, url: &str, dest: &Path, limit: u64, bar: &Bar) -> Result<(Sha256, u64)> {
        let call = Call::new(
            "download",
            url,
            "re-run: downloads are verified and nothing is kept from a failed one",
        );
        let failed = |reason: String| call.failed(reason);
        let mut resp = self
            .ok_response(&call, url, &[], &[])?
            .ok_or_else(|| failed("no body".into()))?;
        let file = File::create(dest).map_err(|e| Error::io("create", dest, e))?;
        bar.restart(Some(limit), "download");
        let mut w = HashingWriter::new(bar.writer(BufWriter::with_capacity(1 << 20, file)), limit);
        let mut body = resp.body_mut().as_reader();
        io::copy(&mut body, &mut w).map_err(|e| failed(format!("transfer failed: {e}")))?;
        io::Write::flush(&mut w).map_err(|e| Error::io("write", dest, e))?;
        Ok(w.into_digest())
    }

    /// A small text asset (checksum files).
    pub fn text(&self, url: &str) -> Result<String> {
        let call = Call::new(
            "download",
            url,
            "re-run later, or check the release's assets",
        );
        let mut resp = self
            .ok_response(&call, url, &[], &[])?
            .ok_or_else(|| call.failed("no body".into()))?;
        resp.body_mut()
            .with_config()
            .limit(1 << 20)
            .read_to_string()
            .map_err(|e| call.failed(e.to_string()))
    }

    /// GET `url`: the response when it is 200, None when its status is one of `absent`
    /// (what this call takes for "not there"), else `call`'s error naming the status.
    fn ok_response(
        &self,
        call: &Call,
        url: &str,
        headers: &[(&str, String)],
        absent: &[u16],
    ) -> Result<Option<ureq::http::Response<ureq::Body>>> {
        let resp = crate::pipeline::fetch::http_get(&self.agent, url, headers, None)
            .map_err(|reason| call.failed(reason))?;
        match resp.status().as_u16() {
            200 => Ok(Some(resp)),
            code if absent.contains(&code) => Ok(None),
            code => Err(call.failed(format!("HTTP {code}"))),
        }
    }
}

/// One request to upstream, for its errors: what it was for, where (credentials redacted)
/// and how to fix a failure.
struct Call {
    operation: &'static str,
    shown: String,
    hint: String,
}

impl Call {
    fn new(operation: &'static str, url: &str, hint: impl Into<String>) -> Call {
        Call {
            operation,
            shown: redact_url(url),
            hint: hint.into(),
        }
    }

    fn failed(&self, reason: String) -> Error {
        Error::Registry {
            operation: self.operation.into(),
            registry: self.shown.clone(),
            reason,
            hint: self.hint.clone(),
        }
    }
}

/// The sha256 of `asset` in a checksum file: a bare digest (Maven's `.sha256`), or the line
/// of `sha256sum` output that names it.
pub fn checksum_for(text: &str, asset: &str) -> Option<Sha256> {
    let mut words = text.split_whitespace();
    if let (Some(only), None) = (words.next(), words.next()) {
        return only.parse().ok();
    }
    parse_checksums(text).get(asset).cloned()
}

/// Parse `sha256sum` output (`<hex>  <name>` or `<hex> *<name>`) into name -> digest.
pub fn parse_checksums(text: &str) -> BTreeMap<String, Sha256> {
    text.lines()
        .filter_map(|line| {
            let (hex, name) = line.trim().split_once(char::is_whitespace)?;
            let name = name.trim().trim_start_matches('*');
            Some((name.to_string(), hex.parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sha256sum_format() {
        let h = "a".repeat(64);
        let m = parse_checksums(&format!(
            "{h}  buf-Linux-x86_64.tar.gz\n{h} *b.zip\nbogus\n"
        ));
        assert_eq!(m.len(), 2);
        assert!(m.contains_key("buf-Linux-x86_64.tar.gz") && m.contains_key("b.zip"));
    }
}
