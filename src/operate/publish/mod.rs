//! Publish: upstream releases to the registry, as design.md's OCI layout says. For each
//! (tool, version, platform): find the upstream asset, learn what its bytes must be (the
//! GitHub-reported digest, upstream's checksum file, the pins), skip it when the registry
//! already holds exactly that, else download it streamed while hashing, verify it against
//! every known digest, and push the blob (once) and its manifest; then the version's index.
//! Uploads run in parallel with retries; nothing unverified is ever pushed.

pub mod retry;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use crate::artifact::{self, PlatformManifest, ToolFile};
use crate::config::{Config, RegistryConfig};
use crate::error::{Error, Result};
use crate::maintain::pins::Pins;
use crate::maintain::tools::Tool;
use crate::maintain::upstream::{parse_checksums, Release, ReleaseAsset, Upstream};
use crate::operate::audit::Audit;
use crate::pipeline::extract::Format;
use crate::pipeline::store::Store;
use crate::pipeline::verify::Sha256;
use crate::platform::{self, Platform};
use crate::progress::Progress;
use crate::registry::Registry;

/// Which versions to publish.
#[derive(Debug, Clone)]
pub enum Selection {
    Newest(usize),
    Exact(Vec<String>),
}

/// What the registry should end up holding for one (tool, version, platform).
#[derive(Debug, Clone)]
pub struct Item {
    pub tool: &'static Tool,
    pub version: String,
    pub platform: &'static Platform,
    pub asset: ReleaseAsset,
    pub format: Format,
    pub created: String,
    pub repository: String,
    pub tag: String,
    /// Digests the bytes must have, with who says so (`github`, `sha256.txt`, `pins`).
    pub known: Vec<(String, Sha256)>,
    pub pin_size: Option<u64>,
    /// The layer digest the registry's tag holds, when it exists (compared after download
    /// when no digest was known before).
    pub existing_layer: Option<String>,
    pub action: Action,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// The registry holds this artifact with the known digest already.
    UpToDate,
    /// Download, verify, push.
    Publish,
}

/// One line of the result.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    pub repository: String,
    pub tag: String,
    pub asset: String,
    /// `published`, `up-to-date`, `planned`, `failed`, `index-published`, `index-up-to-date`.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    pub size: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Counters {
    pub blobs_uploaded: u64,
    pub blobs_skipped: u64,
    pub bytes_uploaded: u64,
    pub retries: u64,
    pub artifacts_published: u64,
    pub artifacts_skipped: u64,
    pub verification_failures: u64,
    pub downloads: u64,
    pub bytes_downloaded: u64,
}

#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub outcomes: Vec<Outcome>,
    pub counters: Counters,
    /// Human notes: skipped platforms, auto_publish switches.
    pub notes: Vec<String>,
}

pub struct Publisher<'a> {
    pub config: &'a Config,
    pub registry: &'a RegistryConfig,
    pub client: &'a Registry,
    pub upstream: &'a Upstream,
    pub store: &'a Store,
    pub audit: &'a Audit,
    pub pins: Option<&'a Pins>,
    /// Bars on a terminal (one per artifact in flight), step lines in a log.
    pub progress: &'a Progress,
}

/// The release date as a fixed RFC 3339 UTC timestamp (the `created` annotation). A static
/// host states no release date: its artifacts get the Unix epoch, as reproducible builds
/// do, so publishing again gives the same manifest.
fn created_of(release: &Release, tool: &Tool) -> Result<String> {
    if tool.origin != crate::maintain::tools::Origin::GitHub {
        return Ok(crate::utc::format(0));
    }
    let raw = release.published_at.as_deref().unwrap_or_default();
    crate::utc::parse(raw)
        .map(crate::utc::format)
        .ok_or_else(|| Error::Registry {
            operation: format!("read release {} of {}", release.tag_name, tool.name),
            registry: tool.github_repo.to_string(),
            reason: format!("no usable published_at (`{raw}`)"),
            hint: "the release date fixes the `created` annotation; a published GitHub release always has one".into(),
        })
}

impl Publisher<'_> {
    /// The releases to publish for `tool`.
    pub fn releases(&self, tool: &'static Tool, selection: &Selection) -> Result<Vec<Release>> {
        match selection {
            Selection::Newest(n) => {
                let mut all = self.upstream.releases(tool)?;
                all.truncate(*n);
                Ok(all)
            }
            Selection::Exact(versions) => versions
                .iter()
                .map(|v| self.upstream.release(tool, v))
                .collect(),
        }
    }

    /// Plan one release: an item per platform, with what is known about its bytes and
    /// whether the registry already has it.
    pub fn plan(
        &self,
        tool: &'static Tool,
        release: &Release,
        platforms: &[&'static Platform],
        explicit_platforms: bool,
        notes: &mut Vec<String>,
    ) -> Result<Vec<Item>> {
        let created = created_of(release, tool)?;
        let repository = self.config.tool_repository(self.registry, tool);
        let checksums = self.checksums(tool, release)?;
        let mut items = Vec::new();
        for &plat in platforms {
            let template = self.config.asset_template(tool, plat.name);
            let expected = tool.asset_from_template(template, &release.version, plat, "")?;
            let Some(asset) = release.asset(&expected.name) else {
                let msg = format!(
                    "{} {} has no asset `{}` for {}",
                    tool.name, release.version, expected.name, plat.name
                );
                if explicit_platforms {
                    return Err(Error::input(
                        msg,
                        "drop that --platform, or fix publishing.tool_sources.<tool>.assets in registry.yaml",
                    ));
                }
                notes.push(format!("skipped: {msg}"));
                continue;
            };
            if asset.size == 0 {
                return Err(Error::Registry {
                    operation: "find the asset's size".into(),
                    registry: crate::pipeline::source::redact_url(&asset.browser_download_url),
                    reason: "the host states no Content-Length".into(),
                    hint: "publish from a host that states sizes, or mirror the asset to one"
                        .into(),
                });
            }
            let mut known = Vec::new();
            if let Some(d) = asset.reported_sha256() {
                let who = match tool.origin {
                    crate::maintain::tools::Origin::GitHub => "github",
                    crate::maintain::tools::Origin::Url { .. } => "checksum_url",
                };
                known.push((who.to_string(), d));
            }
            if let Some((file, sums)) = &checksums {
                let d = sums.get(&asset.name).ok_or_else(|| Error::Verification {
                    what: format!("{} {} `{}`", tool.name, release.version, asset.name),
                    expected: format!("an entry in {file}"),
                    actual: "none".into(),
                    hint: format!("upstream's {file} does not list this asset; refusing to publish it unverified"),
                })?;
                known.push((file.clone(), d.clone()));
            }
            let mut pin_size = None;
            if let Some(pin) = self
                .pins
                .and_then(|p| p.pins.get(&tool.name))
                .and_then(|v| v.get(&release.version))
                .and_then(|p| p.get(plat.name))
            {
                known.push(("pins".to_string(), pin.sha256.clone()));
                // A pin of unknown size checks the digest only.
                pin_size = pin.size;
            }
            // Sources that disagree among themselves: nothing can be right.
            if let Some((who, first)) = known.first() {
                if let Some((other, d)) = known.iter().find(|(_, d)| d != first) {
                    return Err(Error::Verification {
                        what: format!("{} {} `{}`", tool.name, release.version, asset.name),
                        expected: format!("{first} ({who})"),
                        actual: format!("{d} ({other})"),
                        hint: "upstream's sources disagree about the asset; check the release and the pins before publishing".into(),
                    });
                }
            }
            if let Some(size) = pin_size.filter(|s| *s != asset.size) {
                return Err(Error::Verification {
                    what: format!("size of {} {} `{}`", tool.name, release.version, asset.name),
                    expected: format!("{size} bytes (pins)"),
                    actual: format!("{} bytes (upstream)", asset.size),
                    hint: "upstream's asset is not the pinned one; check the release before publishing".into(),
                });
            }
            let tag = self.config.platform_tag(&release.version, plat.name);
            let mut item = Item {
                tool,
                version: release.version.clone(),
                platform: plat,
                asset: asset.clone(),
                format: expected.format,
                created: created.clone(),
                repository: repository.clone(),
                tag,
                known,
                pin_size,
                existing_layer: None,
                action: Action::Publish,
            };
            item.action = self.state(&mut item)?;
            items.push(item);
        }
        Ok(items)
    }

    /// Upstream's checksum file for the release, when the tool has one and verification is on.
    fn checksums(
        &self,
        tool: &Tool,
        release: &Release,
    ) -> Result<Option<(String, BTreeMap<String, Sha256>)>> {
        let Some(file) = tool.checksum_file_for(&release.version) else {
            return Ok(None);
        };
        if !self.config.security.verify_checksums {
            return Ok(None);
        }
        let asset = release.asset(&file).ok_or_else(|| Error::Verification {
            what: format!("{} {}", tool.name, release.version),
            expected: format!("a `{file}` asset (security.verify_checksums is true)"),
            actual: "none in the release".into(),
            hint: format!("set publishing.tool_sources.{}.checksum_file: null if upstream stopped publishing it", tool.name),
        })?;
        let text = self.upstream.text(&asset.browser_download_url)?;
        if self.config.security.verify_signatures {
            if let Some((sig_file, key)) = self.config.signing(tool) {
                let sig = release.asset(&sig_file).ok_or_else(|| Error::Verification {
                    what: format!("{} {} `{file}`", tool.name, release.version),
                    expected: format!("a `{sig_file}` signature (security.verify_signatures is true)"),
                    actual: "none in the release".into(),
                    hint: format!(
                        "set security.verify_signatures: false, or publishing.tool_sources.{}.signature_file, if upstream moved it",
                        tool.name
                    ),
                })?;
                let sig_text = self.upstream.text(&sig.browser_download_url)?;
                let what = format!("{} {} `{file}`", tool.name, release.version);
                let verdict =
                    crate::operate::signature::verify(text.as_bytes(), &sig_text, &key, &what);
                self.audit
                    .op(
                        "publish.signature",
                        format!("{} {}", tool.name, release.version),
                    )
                    .source(sig.browser_download_url.clone())
                    .detail(format!("{sig_file} by {key}"))
                    .finish(&verdict);
                verdict?;
            }
        }
        Ok(Some((file.to_string(), parse_checksums(&text))))
    }

    /// A manifest read, retried: docker-registry answers 500 to a read of a tag that another
    /// publisher is writing at that moment (it rewrites the tag's link file in place).
    fn read_manifest(&self, repository: &str, tag: &str) -> Result<Option<(Vec<u8>, String)>> {
        retry::retry(
            self.config.publishing.retries,
            "read manifest",
            |_, _| {},
            || self.client.manifest(repository, tag),
        )
    }

    /// Does the registry hold this item already? A tag holding other bytes is an error: a
    /// published tag is never silently replaced.
    fn state(&self, item: &mut Item) -> Result<Action> {
        let Some((bytes, _)) = self.read_manifest(&item.repository, &item.tag)? else {
            return Ok(Action::Publish);
        };
        let layer = serde_json::from_slice::<artifact::Manifest>(&bytes)
            .ok()
            .and_then(|m| m.layers.into_iter().next());
        let Some(layer) = layer else {
            return Err(Error::Registry {
                operation: format!("check {}:{}", item.repository, item.tag),
                registry: self.registry.host.clone(),
                reason: "the tag holds something that is not a tool artifact".into(),
                hint: "delete that tag, or publish under another tag_template".into(),
            });
        };
        item.existing_layer = Some(layer.digest.clone());
        match item.known.first() {
            Some((_, d)) if layer.digest == d.oci() && layer.size == item.asset.size => {
                Ok(Action::UpToDate)
            }
            Some((who, d)) => Err(tag_conflict(
                item,
                &self.registry.host,
                &d.oci(),
                who,
                &layer.digest,
            )),
            // Unknown digest: only a download can tell; compared after it.
            None => Ok(Action::Publish),
        }
    }

    /// Download, verify and push one item. Returns the manifest digest and size.
    fn publish_item(
        &self,
        client: &Registry,
        item: &Item,
        counters: &Mutex<Counters>,
        retries: &AtomicU64,
    ) -> Result<(Sha256, u64, Sha256)> {
        let retry_count = self.config.publishing.retries;
        let bar = self.progress.bytes(
            &format!("{}:{}", item.repository, item.tag),
            Some(item.asset.size),
        );
        let note_retry = |n: u32, e: &Error| {
            retries.fetch_add(1, Ordering::Relaxed);
            self.progress.line(&format!(
                "retry {n} for {}:{}: {}",
                item.repository,
                item.tag,
                e.summary()
            ));
        };
        // The blob: from the cache when an earlier run verified it, else downloaded.
        let cached = item
            .known
            .first()
            .map(|(_, d)| self.store.blob_path(d))
            .filter(|p| p.is_file());
        let (sha256, blob_path) = match cached {
            Some(p) => (item.known[0].1.clone(), p),
            None => {
                let tmp = self.store.temp_path("publish");
                let op = self
                    .audit
                    .op("publish.download", item.asset.name.clone())
                    .source(item.asset.browser_download_url.clone());
                let got = retry::retry(retry_count, "download", &note_retry, || {
                    self.upstream.download(
                        &item.asset.browser_download_url,
                        &tmp,
                        item.asset.size,
                        &bar,
                    )
                });
                op.finish(&got);
                let (sha, size) = match got {
                    Ok(v) => v,
                    Err(e) => {
                        let _ = std::fs::remove_file(&tmp);
                        return Err(e);
                    }
                };
                counters
                    .lock()
                    .map(|mut c| {
                        c.downloads += 1;
                        c.bytes_downloaded += size;
                    })
                    .ok();
                let verdict = verify_download(item, &sha, size);
                self.audit
                    .op("publish.verify", item.asset.name.clone())
                    .digest(sha.oci())
                    .bytes(size)
                    .finish(&verdict);
                if let Err(e) = verdict {
                    let _ = std::fs::remove_file(&tmp);
                    counters
                        .lock()
                        .map(|mut c| c.verification_failures += 1)
                        .ok();
                    return Err(e);
                }
                if let Some(have) = item.existing_layer.as_ref().filter(|h| **h != sha.oci()) {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(tag_conflict(
                        item,
                        &self.registry.host,
                        &sha.oci(),
                        "download",
                        have,
                    ));
                }
                let installed = self.store.install_blob(&tmp, &sha)?;
                (sha, installed)
            }
        };
        // Blob, then the empty config, then the manifest (the registry checks references).
        let op = self
            .audit
            .op(
                "publish.blob",
                format!("{}/{}", self.registry.host, item.repository),
            )
            .digest(sha256.oci())
            .bytes(item.asset.size);
        let uploaded = retry::retry(retry_count, "push blob", &note_retry, || {
            client.push_blob_file(&item.repository, &blob_path, &sha256, item.asset.size, &bar)
        });
        op.detail(match &uploaded {
            Ok(true) => "uploaded",
            Ok(false) => "already there",
            Err(_) => "failed",
        })
        .finish(&uploaded);
        let uploaded = uploaded?;
        {
            if let Ok(mut c) = counters.lock() {
                if uploaded {
                    c.blobs_uploaded += 1;
                    c.bytes_uploaded += item.asset.size;
                } else {
                    c.blobs_skipped += 1;
                }
            }
        }
        // The empty config blob was pushed once per repository before the workers started
        // (parallel uploads of one blob race in some registries).
        let file = ToolFile {
            file_name: item.asset.name.clone(),
            sha256: sha256.clone(),
            size: item.asset.size,
            format: item.format,
            version: item.version.clone(),
            source_url: item.asset.browser_download_url.clone(),
            created: item.created.clone(),
        };
        let bytes = artifact::to_bytes(&file.manifest());
        let op = self
            .audit
            .op(
                "publish.manifest",
                format!("{}/{}", self.registry.host, item.repository),
            )
            .digest(Sha256::of_bytes(&bytes).oci())
            .detail(format!("tag {}", item.tag));
        // A rejected manifest is most often one whose references the registry does not hold
        // (400 MANIFEST_BLOB_UNKNOWN): the config pushed before the workers may be gone or be
        // misread (docker-registry rewrites a blob's link file in place, so a concurrent
        // upload of the same blob makes reads of it fail). Retrying the same PUT cannot fix
        // that: before each retry, make sure both blobs are there (a HEAD each when they are).
        let mut first = true;
        let pushed = retry::retry(retry_count, "push manifest", &note_retry, || {
            if !std::mem::take(&mut first) {
                client.push_blob_bytes(&item.repository, artifact::EMPTY_CONFIG)?;
                client.push_blob_file(
                    &item.repository,
                    &blob_path,
                    &sha256,
                    item.asset.size,
                    &crate::progress::Bar::hidden(),
                )?;
            }
            client.push_manifest(
                &item.repository,
                Some(&item.tag),
                &bytes,
                artifact::MANIFEST_MEDIA_TYPE,
            )
        });
        op.finish(&pushed);
        Ok((pushed?, bytes.len() as u64, sha256))
    }

    /// Publish the planned items (in parallel) and then each version's index.
    pub fn execute(&self, items: Vec<Item>, report: &mut Report) -> Result<()> {
        let total = items.len();
        let overall = self.progress.steps("publish", total as u64);
        let done = std::sync::atomic::AtomicUsize::new(0);
        let counters = Mutex::new(Counters::default());
        let retries = AtomicU64::new(0);
        let outcomes: Mutex<Vec<(usize, Outcome)>> = Mutex::new(Vec::new());
        let queue: Mutex<Vec<(usize, &Item)>> =
            Mutex::new(items.iter().enumerate().rev().collect());
        let workers = self
            .config
            .publishing
            .parallel_uploads
            .clamp(1, 64)
            .min(total.max(1));
        let creds = self.registry.credentials()?;
        let mut repositories: Vec<&str> = items
            .iter()
            .filter(|i| i.action == Action::Publish)
            .map(|i| i.repository.as_str())
            .collect();
        repositories.sort();
        repositories.dedup();
        for repo in repositories {
            retry::retry(
                self.config.publishing.retries,
                "push config",
                |_, _| {
                    retries.fetch_add(1, Ordering::Relaxed);
                },
                || self.client.push_blob_bytes(repo, artifact::EMPTY_CONFIG),
            )?;
        }
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    // Each worker has its own connection (oci-client's runtime is per facade).
                    let client = self.registry.net().and_then(|net| {
                        Registry::connect(&self.registry.host, &net, Some(creds.clone()))
                    });
                    loop {
                        let next = queue.lock().ok().and_then(|mut q| q.pop());
                        let Some((i, item)) = next else { break };
                        let mut outcome = Outcome {
                            repository: item.repository.clone(),
                            tag: item.tag.clone(),
                            asset: item.asset.name.clone(),
                            status: String::new(),
                            digest: None,
                            sha256: item.known.first().map(|(_, d)| d.oci()),
                            size: item.asset.size,
                            error: None,
                        };
                        let result = match (&item.action, &client) {
                            (Action::UpToDate, _) => {
                                counters.lock().map(|mut c| c.artifacts_skipped += 1).ok();
                                outcome.status = "up-to-date".into();
                                None
                            }
                            (Action::Publish, Err(e)) => Some(Err(Error::Registry {
                                operation: "connect".into(),
                                registry: self.registry.host.clone(),
                                reason: e.to_string(),
                                hint: "check the registry (`protoreg health`)".into(),
                            })),
                            (Action::Publish, Ok(client)) => {
                                Some(self.publish_item(client, item, &counters, &retries))
                            }
                        };
                        match result {
                            None => {}
                            Some(Ok((digest, _, sha))) => {
                                counters.lock().map(|mut c| c.artifacts_published += 1).ok();
                                outcome.status = "published".into();
                                outcome.digest = Some(digest.oci());
                                outcome.sha256 = Some(sha.oci());
                            }
                            Some(Err(e)) => {
                                outcome.status = "failed".into();
                                outcome.error = Some(e.to_string());
                            }
                        }
                        let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                        overall.inc(1);
                        self.progress.line(&format!(
                            "[{n}/{total}] {} {}:{}",
                            outcome.status, item.repository, item.tag
                        ));
                        if let Ok(mut o) = outcomes.lock() {
                            o.push((i, outcome));
                        }
                    }
                });
            }
        });
        let mut outcomes = outcomes.into_inner().unwrap_or_default();
        outcomes.sort_by_key(|(i, _)| *i);
        let mut c = counters.into_inner().unwrap_or_default();
        c.retries = retries.load(Ordering::Relaxed);
        let failed: Vec<String> = outcomes
            .iter()
            .filter(|(_, o)| o.status == "failed")
            .map(|(_, o)| {
                format!(
                    "{}:{}: {}",
                    o.repository,
                    o.tag,
                    o.error.clone().unwrap_or_default()
                )
            })
            .collect();
        report.outcomes.extend(outcomes.into_iter().map(|(_, o)| o));
        // Indexes: one per (tool, version) whose platforms all made it.
        let mut versions: Vec<(&'static Tool, String)> =
            items.iter().map(|i| (i.tool, i.version.clone())).collect();
        versions.dedup();
        for (tool, version) in versions {
            let broken = report.outcomes.iter().any(|o| {
                o.status == "failed"
                    && items.iter().any(|i| {
                        i.tool.name == tool.name
                            && i.version == version
                            && i.tag == o.tag
                            && i.repository == o.repository
                    })
            });
            if broken {
                continue;
            }
            let item = items
                .iter()
                .find(|i| i.tool.name == tool.name && i.version == version);
            let Some(item) = item else { continue };
            match self.publish_index(tool, &version, &item.created, &item.repository, &mut c) {
                Ok(o) => report.outcomes.push(o),
                Err(e) => {
                    report.counters = c;
                    return Err(e);
                }
            }
        }
        report.counters = c;
        if !failed.is_empty() {
            return Err(Error::Registry {
                operation: "publish".into(),
                registry: self.registry.host.clone(),
                reason: format!(
                    "{} of {total} artifacts failed:\n  - {}",
                    failed.len(),
                    failed.join("\n  - ")
                ),
                hint: "fix the cause and re-run: verified artifacts already pushed are skipped"
                    .into(),
            });
        }
        Ok(())
    }

    /// The index of `version`: every platform manifest the registry holds for it.
    fn publish_index(
        &self,
        tool: &'static Tool,
        version: &str,
        created: &str,
        repository: &str,
        c: &mut Counters,
    ) -> Result<Outcome> {
        let mut entries = Vec::new();
        for plat in platform::PLATFORMS {
            if !tool.ships(plat) {
                continue;
            }
            let tag = self.config.platform_tag(version, plat.name);
            if let Some((bytes, _)) = self.read_manifest(repository, &tag)? {
                entries.push(PlatformManifest {
                    platform: plat,
                    digest: Sha256::of_bytes(&bytes),
                    size: bytes.len() as u64,
                });
            }
        }
        // The index names the project, not one asset: stable whichever mirror served them.
        let index_source = format!("https://github.com/{}", tool.github_repo);
        let index = artifact::tool_index(version, created, &index_source, &entries);
        let bytes = artifact::to_bytes(&index);
        let digest = Sha256::of_bytes(&bytes);
        let tag = self.config.index_tag(version);
        let mut outcome = Outcome {
            repository: repository.to_string(),
            tag: tag.clone(),
            asset: format!("{} platforms", entries.len()),
            status: "index-up-to-date".into(),
            digest: Some(digest.oci()),
            sha256: None,
            size: bytes.len() as u64,
            error: None,
        };
        let current = self
            .read_manifest(repository, &tag)?
            .map(|(b, _)| Sha256::of_bytes(&b));
        if current.as_ref() == Some(&digest) {
            c.artifacts_skipped += 1;
            return Ok(outcome);
        }
        let op = self
            .audit
            .op(
                "publish.index",
                format!("{}/{repository}", self.registry.host),
            )
            .digest(digest.oci())
            .detail(format!("tag {tag}"));
        let r = retry::retry(
            self.config.publishing.retries,
            "push index",
            |_, _| {},
            || {
                self.client.push_manifest(
                    repository,
                    Some(&tag),
                    &bytes,
                    artifact::INDEX_MEDIA_TYPE,
                )
            },
        );
        op.finish(&r);
        r?;
        c.artifacts_published += 1;
        outcome.status = "index-published".into();
        Ok(outcome)
    }
}

/// A tag that holds other bytes than upstream declares: never replaced silently.
fn tag_conflict(item: &Item, host: &str, want: &str, who: &str, have: &str) -> Error {
    Error::Verification {
        what: format!("{}:{} in {host}", item.repository, item.tag),
        expected: format!("{want} ({who})"),
        actual: have.to_string(),
        hint: "the registry holds other bytes under this tag than upstream now serves; investigate (a re-released asset?) before deleting the tag".into(),
    }
}

/// The downloaded bytes against everything known about them.
fn verify_download(item: &Item, sha: &Sha256, size: u64) -> Result<()> {
    if size != item.asset.size {
        return Err(Error::Verification {
            what: format!("size of `{}`", item.asset.name),
            expected: format!("{} bytes (upstream's listing)", item.asset.size),
            actual: format!("{size} bytes"),
            hint: "the download was cut short or changed; nothing was pushed; re-run".into(),
        });
    }
    for (who, d) in &item.known {
        if d != sha {
            return Err(Error::Verification {
                what: format!("sha256 of `{}`", item.asset.name),
                expected: format!("{d} ({who})"),
                actual: sha.to_string(),
                hint: "upstream served other bytes than it declares; nothing was pushed".into(),
            });
        }
    }
    Ok(())
}
