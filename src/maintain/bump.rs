//! The maintainer's flow: move a tool's pin to a new upstream version. For every platform the
//! sha256 comes from upstream's checksum file or the releases API's reported digest (or, with
//! neither, from downloading and hashing); the size from the API. The host's binary is always
//! downloaded, verified against those values, unpacked and run: the bump is refused unless it
//! reports the version being pinned (toolchains_protoc's validation, done at bump time).

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::maintain::pins::{self, Pin, Pins};
use crate::maintain::sandbox::{self, Ended};
use crate::maintain::tools::{self, Kind, Origin, Tool};
use crate::maintain::upstream::{self, Release, Upstream};
use crate::pipeline::extract;
use crate::pipeline::verify::Sha256;
use crate::platform::{self, Platform};

/// New pins for one (tool, version), ready to write.
#[derive(Debug, Clone)]
pub struct Bump {
    pub tool: &'static Tool,
    pub version: String,
    pub pins: BTreeMap<String, Pin>,
    pub provenance: String,
    /// What the host binary printed.
    pub reported: String,
}

/// Gather and check the pins of `tool` at `version`. `work` is a scratch directory.
pub fn prepare(up: &Upstream, tool: &'static Tool, version: &str, work: &Path) -> Result<Bump> {
    let release = up.release(tool, version)?;
    let checksum_file = tool.checksum_file_for(version);
    let checksums = match checksum_file.as_deref().and_then(|f| release.asset(f)) {
        Some(file) => upstream::parse_checksums(&up.text(&file.browser_download_url)?),
        None => BTreeMap::new(),
    };
    let claimed_by = match (&checksum_file, &tool.origin) {
        (Some(f), _) => f.clone(),
        (None, Origin::Url { .. }) => "checksum_url".to_string(),
        (None, Origin::GitHub) => "checksums".to_string(),
    };
    let protos = tool.kind == Kind::Protos;
    // What is checked here: the host's binary (run for its version), or an archive of
    // sources (unpacked, every declared .proto looked for).
    let host = if protos {
        &platform::ANY
    } else {
        platform::host()?
    };
    if !tool.ships(host) {
        return Err(Error::input(
            format!(
                "{} does not ship a {} binary, so this machine cannot check the version it reports",
                tool.name, host.name
            ),
            "run the bump on one of the platforms the tool ships",
        ));
    }
    let mut pins = BTreeMap::new();
    let mut sha_from = Vec::new();
    let mut reported = String::new();
    for name in &tool.platforms {
        let plat = platform::by_name(name)?;
        let expected = tool.asset(version, plat, "https://github.com")?;
        let asset_name = expected.name.clone();
        let asset = release.asset(&asset_name).ok_or_else(|| Error::Registry {
            operation: "find the release asset".into(),
            registry: format!("{} {}", tool.github_repo, release.tag_name),
            reason: format!("no asset `{asset_name}` for {}", plat.name),
            hint: "upstream may have renamed its assets: fix the tool's `asset` (or `assets`) in toolchains/tools.bzl".into(),
        })?;
        // The URL goes into pins.bzl, where builds download from it: a plain http(s) URL
        // with no credentials, whatever the releases API says.
        let url_ok = matches!(
            asset.browser_download_url.parse(),
            Ok(crate::pipeline::source::Source::Http { .. })
        ) && crate::pipeline::source::redact_url(&asset.browser_download_url)
            == asset.browser_download_url;
        if !url_ok {
            return Err(Error::Registry {
                operation: "read the release asset".into(),
                registry: format!("{} {}", tool.github_repo, release.tag_name),
                reason: format!(
                    "`{asset_name}` has the download URL `{}`, not a plain http(s) URL",
                    asset.browser_download_url
                ),
                hint: format!(
                    "check {}: that is not GitHub's answer",
                    upstream::ENV_API_URL
                ),
            });
        }
        let from_file = checksums.get(&asset_name).cloned();
        let from_api = asset.reported_sha256();
        // A host that states no size (0): the asset is downloaded, for its exact size.
        let sized = asset.size > 0;
        let (api_name, size_from) = match tool.origin {
            Origin::GitHub => ("the releases API", "releases API"),
            Origin::Url { .. } => ("checksum_url", "Content-Length"),
        };
        if let (Some(a), Some(b)) = (&from_file, &from_api) {
            if a != b {
                return Err(mismatch(&asset_name, &claimed_by, a, api_name, b));
            }
        }
        let (sha256, size) = match from_file.clone().or(from_api.clone()) {
            // Another platform with a published digest and size: no need to download it.
            Some(claimed) if plat != host && sized => (claimed, asset.size),
            claimed => {
                let dest = work.join(&asset_name);
                let limit = if sized {
                    asset.size
                } else {
                    crate::pipeline::verify::max_unsized_bytes()?
                };
                let (got, size) = up.download(
                    &asset.browser_download_url,
                    &dest,
                    limit,
                    &crate::progress::Bar::hidden(),
                )?;
                if sized && size != asset.size {
                    return Err(Error::Verification {
                        what: format!("size of {asset_name}"),
                        expected: format!("{} bytes ({size_from})", asset.size),
                        actual: format!("{size} bytes"),
                        hint: "re-run the bump; if it persists, the release changed under its name"
                            .into(),
                    });
                }
                if let Some(c) = &claimed {
                    if *c != got {
                        let what = if from_file.is_some() {
                            claimed_by.as_str()
                        } else {
                            api_name
                        };
                        return Err(mismatch(&asset_name, what, c, "the downloaded file", &got));
                    }
                }
                if plat == host && protos {
                    reported = check_sources(tool, version, &dest, work)?;
                } else if plat == host {
                    reported = check_host_binary(tool, version, plat, &dest, work)?;
                }
                (got, size)
            }
        };
        sha_from.push(if from_file.is_some() {
            claimed_by.clone()
        } else if from_api.is_some() {
            match tool.origin {
                Origin::GitHub => "API digest",
                Origin::Url { .. } => "checksum_url",
            }
            .to_string()
        } else {
            "downloaded and hashed".to_string()
        });
        pins.insert(
            plat.name.to_string(),
            Pin {
                format: expected.format,
                // Always the exact size: the releases API states it (and the host's download
                // was checked against it above), or the asset was downloaded. A bump never
                // writes an unknown size.
                size: Some(size),
                sha256,
                url: asset.browser_download_url.clone(),
            },
        );
    }
    sha_from.sort_unstable();
    sha_from.dedup();
    Ok(Bump {
        tool,
        version: version.to_string(),
        provenance: provenance(tool, &release, &sha_from, host, &reported),
        pins,
        reported,
    })
}

fn mismatch(asset: &str, a_name: &str, a: &Sha256, b_name: &str, b: &Sha256) -> Error {
    Error::Verification {
        what: format!("sha256 of {asset}"),
        expected: format!("{a} ({a_name})"),
        actual: format!("{b} ({b_name})"),
        hint: "upstream's sources disagree: do not pin this release until they agree".into(),
    }
}

/// What the bump saw of the bytes themselves, for the provenance.
fn checked(tool: &Tool, host: &Platform, reported: &str) -> String {
    match tool.kind {
        Kind::Tool => format!("the {} binary reported `{}`", host.name, reported.trim()),
        Kind::Protos => format!("unpacked: {}", reported.trim()),
    }
}

fn provenance(
    tool: &Tool,
    release: &Release,
    sha_from: &[String],
    host: &Platform,
    reported: &str,
) -> String {
    match &tool.origin {
        Origin::GitHub => format!(
            "github.com/{} release {} ({}): sizes from the releases API, sha256 from {}; {}",
            tool.github_repo,
            release.tag_name,
            release.published_at.as_deref().unwrap_or("date unknown"),
            sha_from.join(" + "),
            checked(tool, host, reported)
        ),
        Origin::Url { url, .. } => format!(
            "{} version {}: sizes from the host's Content-Length, sha256 from {}; {}",
            crate::pipeline::source::redact_url(url),
            release.version,
            sha_from.join(" + "),
            checked(tool, host, reported)
        ),
    }
}

/// Unpack an archive of sources and find every declared .proto in it.
fn check_sources(tool: &Tool, version: &str, archive: &Path, work: &Path) -> Result<String> {
    let format = tool
        .asset(version, &platform::ANY, "https://github.com")?
        .format;
    let tree = work.join("sources");
    std::fs::create_dir_all(&tree).map_err(|e| Error::io("create", &tree, e))?;
    extract::extract(
        archive,
        &pins::layout(tool, version, format, &platform::ANY),
        &tree,
    )?;
    let missing: Vec<&str> = tool
        .srcs
        .iter()
        .filter(|s| !tree.join(s).is_file())
        .map(String::as_str)
        .collect();
    if !missing.is_empty() {
        // The declaration does not describe this archive: bad input, nothing is pinned.
        return Err(Error::input(
            format!(
                "{} {version} has no {} under `{}`",
                tool.name,
                missing.join(", "),
                tool.strip_prefix_for(version, &platform::ANY)
            ),
            "fix the entry's `srcs` or `strip_prefix` in toolchains/tools.bzl, or pin another version",
        ));
    }
    Ok(format!("{} .proto files present", tool.srcs.len()))
}

/// Unpack the host's archive and run its first binary with `--version`.
fn check_host_binary(
    tool: &Tool,
    version: &str,
    host: &Platform,
    archive: &Path,
    work: &Path,
) -> Result<String> {
    let format = tool.asset(version, host, "https://github.com")?.format;
    let tree = work.join("host-tree");
    std::fs::create_dir_all(&tree).map_err(|e| Error::io("create", &tree, e))?;
    extract::extract(archive, &pins::layout(tool, version, format, host), &tree)?;
    let binaries = tool.binaries_for(host);
    let binary = Path::new(&binaries[0]);
    if tool.version_output.is_none() {
        return Ok(String::from("(no version flag)"));
    }
    // Fresh from upstream and unreviewed: run with nothing of ours (see sandbox).
    let ran = sandbox::run(&tree, binary, &["--version"], sandbox::TIMEOUT)?;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&ran.stdout),
        String::from_utf8_lossy(&ran.stderr)
    );
    // Printed, and recorded in the provenance (pins.bzl, the pull request): escaped.
    let first = crate::error::sanitize(text.lines().next().unwrap_or("").trim());
    let hung = matches!(ran.ended, Ended::TimedOut(_));
    let (ok, actual) = match ran.ended {
        Ended::TimedOut(limit) => (
            false,
            format!(
                "no answer within {} s (killed, with what it started)",
                limit.as_secs()
            ),
        ),
        Ended::TooMuchOutput { stream, limit } => (
            false,
            format!(
                "more than {} on {stream} (killed)",
                crate::error::Bytes(limit as u64)
            ),
        ),
        Ended::Exited(status) if first.is_empty() => {
            (false, format!("exit {:?}, no output", status.code()))
        }
        Ended::Exited(status) => (
            status.success() && tools::reports_version(tool, &text, version),
            first.clone(),
        ),
    };
    if !ok {
        return Err(Error::Verification {
            what: format!("the version {} {} reports", tool.name, host.name),
            expected: tool
                .version_output
                .as_deref()
                .unwrap_or("{version}")
                .replace("{version}", version),
            actual,
            hint: if hung {
                "the release's binary hangs when asked its version (it runs with an empty environment, in a scratch directory): refusing to pin it".into()
            } else {
                "the release's binary is not the version its tag says: refusing to pin it".into()
            },
        });
    }
    Ok(first)
}

/// Apply a bump to the pins: the new version becomes the default; the previous default's
/// pins are dropped unless `keep_old`.
pub fn apply(pins: &Pins, bump: &Bump, keep_old: bool) -> Pins {
    let mut next = pins.clone();
    let tool = bump.tool.name.to_string();
    if !keep_old {
        if let Some(old) = pins.defaults.get(&tool).filter(|old| **old != bump.version) {
            if let Some(v) = next.pins.get_mut(&tool) {
                v.remove(old);
            }
            if let Some(v) = next.provenance.get_mut(&tool) {
                v.remove(old);
            }
        }
    }
    next.pins
        .entry(tool.clone())
        .or_default()
        .insert(bump.version.clone(), bump.pins.clone());
    next.provenance
        .entry(tool.clone())
        .or_default()
        .insert(bump.version.clone(), bump.provenance.clone());
    next.defaults.insert(tool, bump.version.clone());
    next
}

/// A minimal unified-style line diff (the pins file is a few hundred lines).
pub fn diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut out) = (0, 0, String::new());
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            i += 1;
            j += 1;
        } else if i < n && (j == m || lcs[i + 1][j] >= lcs[i][j + 1]) {
            // Removals before additions, as in a unified diff.
            out.push_str(&format!("-{}\n", a[i]));
            i += 1;
        } else {
            out.push_str(&format!("+{}\n", b[j]));
            j += 1;
        }
    }
    out
}

/// `outdated`: pinned default against newest upstream release, per pinned tool.
pub struct Outdated {
    pub tool: String,
    pub pinned: String,
    pub latest: Option<String>,
    /// Does upstream list its versions? A static host (`upstream = "url"`) does not.
    pub listed: bool,
}

pub fn outdated(up: &Upstream, pins: &Pins) -> Result<Vec<Outdated>> {
    let mut out = Vec::new();
    for (tool, pinned) in &pins.defaults {
        let t = tools::by_name(tool)?;
        let latest = up.releases(t)?.first().map(|r| r.version.clone());
        out.push(Outdated {
            tool: tool.clone(),
            pinned: pinned.clone(),
            latest,
            listed: t.origin == Origin::GitHub,
        });
    }
    Ok(out)
}

/// Write the pins file atomically: an interrupted bump leaves the old file whole.
pub fn write(path: &Path, pins: &Pins) -> Result<()> {
    crate::pipeline::store::write_atomic(path, pins.render().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_shows_changed_lines_only() {
        let d = diff("a\nb\nc\n", "a\nB\nc\n");
        assert_eq!(d, "-b\n+B\n");
        assert_eq!(diff("x\n", "x\n"), "");
    }
}
