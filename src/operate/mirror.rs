//! Mirror: copy every artifact of this project from one registry or image-layout tree to
//! another with digests unchanged (manifests are copied as bytes, never re-serialized), so a
//! move to GHCR, ECR or Docker Hub is a registry.yaml change plus one `mirror`. Idempotent:
//! a tag whose digest already matches is skipped, and blobs the target has are not sent.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::artifact::{INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};
use crate::config::{Config, RegistryConfig};
use crate::error::{Error, IoContext, Result};
use crate::maintain::tools;
use crate::operate::audit::Audit;
use crate::operate::oci_layout::{self, Layout};
use crate::pipeline::source::redact_url;
use crate::pipeline::store::Store;
use crate::pipeline::verify::{Expected, HashingWriter, Sha256};
use crate::progress::{Bar, Progress};
use crate::registry::Registry;

pub enum Endpoint {
    Registry {
        cfg: RegistryConfig,
        client: Box<Registry>,
    },
    Layout {
        root: PathBuf,
    },
}

const FORMS: &str = "use a configured registry name (primary, a backup's name), oci://HOST[:PORT][/NAMESPACE] or oci-layout:DIR";

/// Parse `--from`/`--to`.
pub fn endpoint(spec: &str, config: &Config, plain_http: bool) -> Result<Endpoint> {
    if let Some(dir) = spec.strip_prefix("oci-layout:") {
        if dir.is_empty() {
            return Err(Error::input(format!("`{spec}` names no directory"), FORMS));
        }
        return Ok(Endpoint::Layout {
            root: PathBuf::from(dir),
        });
    }
    let cfg = if let Some(rest) = spec.strip_prefix("oci://") {
        let rest = rest.trim_end_matches('/');
        let (host, ns) = rest.split_once('/').unwrap_or((rest, ""));
        if !crate::pipeline::source::valid_host(host) {
            return Err(Error::input(
                format!("`{}` is not a registry", redact_url(spec)),
                FORMS,
            ));
        }
        // A configured registry on the same host keeps its auth and plain_http settings.
        let known = config.registries().find(|r| r.host == host).cloned();
        let mut cfg = known.unwrap_or_else(|| RegistryConfig {
            name: host.to_string(),
            host: host.to_string(),
            namespace: String::new(),
            auth_required: false,
            plain_http: false,
            plain_http_token_realm: false,
            auth: Default::default(),
            key: format!("--from/--to {}", redact_url(spec)),
        });
        cfg.namespace = ns.to_string();
        cfg.plain_http |= plain_http;
        cfg
    } else {
        config.registry(spec).cloned().ok_or_else(|| {
            Error::input(
                format!("`{}` is not a configured registry", redact_url(spec)),
                FORMS,
            )
        })?
    };
    let client = Box::new(Registry::connect(
        &cfg.host,
        &cfg.net()?,
        Some(cfg.credentials()?),
    )?);
    Ok(Endpoint::Registry { cfg, client })
}

impl Endpoint {
    pub fn label(&self) -> String {
        match self {
            Endpoint::Registry { cfg, .. } => format!("oci://{}/{}", cfg.host, cfg.namespace),
            Endpoint::Layout { root } => format!("oci-layout:{}", root.display()),
        }
    }

    fn full(&self, rel: &str) -> String {
        match self {
            Endpoint::Registry { cfg, .. } => cfg.repository(rel),
            Endpoint::Layout { root } => root.join(rel).display().to_string(),
        }
    }

    fn layout(&self, rel: &str) -> Option<Layout> {
        match self {
            Endpoint::Layout { root } => Some(Layout::new(root.join(rel))),
            _ => None,
        }
    }

    /// This project's repositories here, relative to the namespace (`tools/protoc`).
    pub fn repositories(&self, config: &Config) -> Result<Vec<String>> {
        match self {
            Endpoint::Layout { root } => Ok(oci_layout::repositories(root)),
            Endpoint::Registry { cfg, client } => {
                let mut rels: Vec<String> = match client.catalog(&cfg.namespace) {
                    Ok(list) => list
                        .into_iter()
                        .map(|r| {
                            r.strip_prefix(&format!("{}/", cfg.namespace))
                                .unwrap_or(&r)
                                .to_string()
                        })
                        .collect(),
                    // Registries without a catalog (GHCR, ECR): the repositories this project
                    // knows it publishes.
                    Err(_) => Vec::new(),
                };
                if rels.is_empty() {
                    for t in tools::all()? {
                        let full = config.tool_repository(cfg, t);
                        rels.push(cfg_rel(cfg, &full));
                    }
                    for b in config.bundles.keys() {
                        rels.push(cfg_rel(cfg, &config.bundle_repository(cfg, b)));
                    }
                }
                rels.sort();
                rels.dedup();
                Ok(rels)
            }
        }
    }

    pub fn tags(&self, rel: &str) -> Result<Vec<String>> {
        match self {
            Endpoint::Registry { client, .. } => client.tags(&self.full(rel)),
            Endpoint::Layout { .. } => Ok(self
                .layout(rel)
                .map(|l| l.tags())
                .transpose()?
                .unwrap_or_default()
                .into_iter()
                .map(|(t, _)| t)
                .collect()),
        }
    }

    pub fn manifest(&self, rel: &str, reference: &str) -> Result<Option<(Vec<u8>, Sha256)>> {
        match self {
            Endpoint::Registry { client, .. } => {
                let Some((bytes, _)) = client.manifest(&self.full(rel), reference)? else {
                    return Ok(None);
                };
                // The digest is recomputed from the bytes, never taken from a header.
                let digest = Sha256::of_bytes(&bytes);
                if reference.starts_with("sha256:") && reference != digest.oci() {
                    return Err(Error::Verification {
                        what: format!("manifest {reference} from {}", self.label()),
                        expected: reference.to_string(),
                        actual: digest.oci(),
                        hint: "the source registry serves other bytes for this digest".into(),
                    });
                }
                Ok(Some((bytes, digest)))
            }
            Endpoint::Layout { .. } => match self.layout(rel) {
                Some(l) => l.manifest(reference),
                None => Ok(None),
            },
        }
    }

    fn has_blob(&self, rel: &str, expected: &Expected) -> Result<bool> {
        match self {
            Endpoint::Registry { client, .. } => {
                client.blob_exists(&self.full(rel), &expected.sha256)
            }
            // A blob of the wrong size (a copy cut short by an older protoreg) is not there.
            Endpoint::Layout { .. } => Ok(self.layout(rel).is_some_and(|l| l.has_blob(expected))),
        }
    }

    /// Stream blob `expected` into `tmp`, verified, counting it on `bar`.
    fn fetch_blob(&self, rel: &str, expected: &Expected, tmp: &Path, bar: &Bar) -> Result<()> {
        let file = File::create(tmp).ctx("create", tmp)?;
        bar.restart(expected.size, "download");
        let mut w = HashingWriter::for_expected(
            bar.writer(BufWriter::with_capacity(1 << 20, file)),
            expected,
            crate::pipeline::verify::DEFAULT_MAX_UNSIZED,
        );
        match self {
            Endpoint::Registry { client, .. } => client.pull_blob(
                &self.full(rel),
                &expected.sha256,
                expected
                    .size
                    .unwrap_or(crate::pipeline::verify::DEFAULT_MAX_UNSIZED),
                &mut w,
            )?,
            Endpoint::Layout { .. } => {
                let layout = self
                    .layout(rel)
                    .unwrap_or_else(|| Layout::new(PathBuf::new()));
                let (mut f, p) = layout.open_blob(&expected.sha256)?;
                std::io::copy(&mut f, &mut w).ctx("read", &p)?;
            }
        }
        let what = format!("blob {} from {}", expected.sha256.oci(), self.label());
        let inner = w.finish(expected, &what)?;
        inner
            .into_inner()
            .into_inner()
            .map_err(|e| Error::io("write", tmp, e.into_error()))?;
        Ok(())
    }

    fn put_blob(&self, rel: &str, tmp: &Path, expected: &Expected, bar: &Bar) -> Result<()> {
        match self {
            Endpoint::Registry { client, .. } => {
                let size = match expected.size {
                    Some(size) => size,
                    None => std::fs::metadata(tmp).ctx("read", tmp)?.len(),
                };
                client.push_blob_file(&self.full(rel), tmp, &expected.sha256, size, bar)?;
                let _ = std::fs::remove_file(tmp);
                Ok(())
            }
            Endpoint::Layout { .. } => match self.layout(rel) {
                Some(l) => l.put_blob_file(tmp, expected),
                None => Ok(()),
            },
        }
    }

    fn put_manifest(
        &self,
        rel: &str,
        tag: Option<&str>,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<()> {
        match self {
            Endpoint::Registry { client, .. } => {
                client.push_manifest(&self.full(rel), tag, bytes, media_type)?;
            }
            Endpoint::Layout { .. } => {
                if let Some(l) = self.layout(rel) {
                    l.put_manifest(tag, bytes, media_type)?;
                }
            }
        }
        Ok(())
    }
}

/// A repository name from the source (a registry's `_catalog` is remote data) becomes a
/// directory under a layout root: it must be a plain relative path, no `..`, not absolute.
fn checked_repository(from: &Endpoint, rel: &str) -> Result<()> {
    crate::pipeline::extract::safe_relative(rel)
        .map(|_| ())
        .map_err(|why| Error::Registry {
            operation: "list repositories".into(),
            registry: from.label(),
            reason: format!("the repository name `{}` {why}", rel.escape_debug()),
            hint: "a registry never names a repository like that; check what --from points at"
                .into(),
        })
}

/// A tag from the source goes into request paths and the target's index: it must be a tag
/// by the OCI grammar (`[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`).
fn checked_tag(from: &Endpoint, rel: &str, tag: &str) -> Result<()> {
    if crate::registry::valid_tag(tag) {
        return Ok(());
    }
    // Shown cut short: a hostile tag may be megabytes.
    let shown: String = tag.chars().take(40).collect();
    Err(Error::Registry {
        operation: format!("list the tags of {}", from.full(rel)),
        registry: from.label(),
        reason: format!("`{}` is not an OCI tag", shown.escape_debug()),
        hint: "a registry never names a tag like that; check what --from points at".into(),
    })
}

fn cfg_rel(cfg: &RegistryConfig, full: &str) -> String {
    full.strip_prefix(&format!("{}/", cfg.namespace))
        .unwrap_or(full)
        .to_string()
}

#[derive(Debug, Default, Clone, serde::Serialize)]
pub struct Report {
    /// `repository:tag` copied (or, in a dry run, to copy).
    pub copied: Vec<String>,
    /// Already identical at the target.
    pub skipped: Vec<String>,
    pub blobs_copied: u64,
    pub blobs_skipped: u64,
    pub bytes_copied: u64,
}

fn media_type_of(bytes: &[u8]) -> String {
    serde_json::from_slice::<Value>(bytes)
        .ok()
        .and_then(|v| v["mediaType"].as_str().map(str::to_string))
        .unwrap_or_else(|| MANIFEST_MEDIA_TYPE.to_string())
}

/// The most indexes that may lead to a manifest (an index listing indexes, ...). protoreg
/// publishes one level (`v<version>` lists the platforms' manifests); 8 leaves room for any
/// sane producer and keeps the recursion shallow.
pub const MAX_INDEX_DEPTH: usize = 8;

struct Copier<'a> {
    from: &'a Endpoint,
    to: &'a Endpoint,
    store: &'a Store,
    report: Report,
    progress: &'a Progress,
    /// The most bytes one blob may have (PROTOREG_MAX_UNSIZED_BYTES): a source manifest's
    /// claimed size is remote data, never a bound by itself.
    max_blob: u64,
}

impl Copier<'_> {
    /// Copy one manifest (recursively for an index, its children first) whose bytes are
    /// known; `depth` is how many indexes lead to it. Recursion is bounded by
    /// [`MAX_INDEX_DEPTH`], so a hostile chain of nested indexes is refused, not followed
    /// until the stack overflows.
    fn manifest(&mut self, rel: &str, tag: Option<&str>, bytes: &[u8], depth: usize) -> Result<()> {
        let media_type = media_type_of(bytes);
        // What the source serves is remote data: damage there is a failure of the work
        // (exit 1), not bad input.
        let doc: Value = serde_json::from_slice(bytes).map_err(|e| Error::Registry {
            operation: format!("read a manifest of {}", self.from.full(rel)),
            registry: self.from.label(),
            reason: format!("it is not JSON: {e}"),
            hint: "the source is damaged; check it with skopeo inspect --raw and publish it again"
                .into(),
        })?;
        if media_type == INDEX_MEDIA_TYPE {
            if depth >= MAX_INDEX_DEPTH {
                return Err(Error::Registry {
                    operation: format!("read the index of {}", self.from.full(rel)),
                    registry: self.from.label(),
                    reason: format!(
                        "{} is an index nested {} deep (indexes listing indexes); at most {MAX_INDEX_DEPTH} levels are followed",
                        Sha256::of_bytes(bytes).oci(),
                        depth + 1
                    ),
                    hint: "an artifact's index lists manifests, not a chain of indexes: the source is damaged or hostile; check it with skopeo inspect --raw".into(),
                });
            }
            for child in doc["manifests"].as_array().into_iter().flatten() {
                // A digest from the source goes into request paths: it must be one.
                let d = child["digest"].as_str().unwrap_or_default();
                let d = d
                    .parse::<Sha256>()
                    .map_err(|e| Error::Registry {
                        operation: format!("read the index of {}", self.from.full(rel)),
                        registry: self.from.label(),
                        reason: format!("it lists `{}`: {}", d.escape_debug(), e.summary()),
                        hint: "the source is damaged; publish it again".into(),
                    })?
                    .oci();
                let d = d.as_str();
                if self.to.manifest(rel, d)?.is_some() {
                    continue;
                }
                let (child_bytes, _) =
                    self.from.manifest(rel, d)?.ok_or_else(|| Error::Registry {
                        operation: format!("read the index of {}", self.from.full(rel)),
                        registry: self.from.label(),
                        reason: format!("it lists {d}, which the source does not have"),
                        hint: "the source index is incomplete; publish it again".into(),
                    })?;
                self.manifest(rel, None, &child_bytes, depth + 1)?;
            }
        } else {
            let mut descriptors = vec![doc["config"].clone()];
            descriptors.extend(doc["layers"].as_array().cloned().unwrap_or_default());
            // Every claimed size is checked before any blob moves: a manifest claiming more
            // than the cap is refused with nothing transferred.
            for d in &descriptors {
                let claimed = d["size"].as_u64().unwrap_or(0);
                if claimed > self.max_blob {
                    return Err(Error::Registry {
                        operation: format!("copy a manifest of {}", self.from.full(rel)),
                        registry: self.from.label(),
                        reason: format!(
                            "it claims a {claimed}-byte blob, more than the {} ({} bytes) protoreg copies",
                            crate::error::Bytes(self.max_blob),
                            self.max_blob
                        ),
                        hint: format!(
                            "the source manifest is damaged or hostile; if the blob is real, raise {}",
                            crate::pipeline::verify::ENV_MAX_UNSIZED
                        ),
                    });
                }
            }
            for d in descriptors {
                let Some(digest) = d["digest"].as_str() else {
                    continue;
                };
                let expected = Expected {
                    sha256: digest.parse().map_err(|e: Error| Error::Registry {
                        operation: format!("read a manifest of {}", self.from.full(rel)),
                        registry: self.from.label(),
                        reason: e.summary(),
                        hint: "the source is damaged; publish it again".into(),
                    })?,
                    // Every OCI descriptor states its size; one without is refused by size.
                    size: Some(d["size"].as_u64().unwrap_or(0)),
                };
                if self.to.has_blob(rel, &expected)? {
                    self.report.blobs_skipped += 1;
                    continue;
                }
                let tmp = self.store.temp_path("mirror");
                let bar = self.progress.bytes(
                    &format!("{rel}@{:.19}", expected.sha256.oci()),
                    expected.size,
                );
                let r = self
                    .from
                    .fetch_blob(rel, &expected, &tmp, &bar)
                    .and_then(|_| self.to.put_blob(rel, &tmp, &expected, &bar));
                bar.done();
                let _ = std::fs::remove_file(&tmp);
                r?;
                self.report.blobs_copied += 1;
                self.report.bytes_copied += expected.size.unwrap_or_default();
            }
        }
        self.to.put_manifest(rel, tag, bytes, &media_type)
    }
}

/// Copy every tag of every repository from `from` to `to`.
pub fn mirror(
    from: &Endpoint,
    to: &Endpoint,
    config: &Config,
    store: &Store,
    dry_run: bool,
    audit: &Audit,
    progress: &Progress,
) -> Result<Report> {
    store.init()?;
    let mut copier = Copier {
        from,
        to,
        store,
        report: Report::default(),
        progress,
        max_blob: crate::pipeline::verify::max_unsized_bytes()?,
    };
    for rel in from.repositories(config)? {
        checked_repository(from, &rel)?;
        let mut tags = from.tags(&rel)?;
        tags.sort();
        for tag in tags {
            checked_tag(from, &rel, &tag)?;
            let name = format!("{rel}:{tag}");
            let Some((bytes, digest)) = from.manifest(&rel, &tag)? else {
                continue;
            };
            let there = to.manifest(&rel, &tag)?;
            if there.as_ref().is_some_and(|(_, d)| *d == digest) {
                copier.report.skipped.push(name);
                continue;
            }
            if dry_run {
                copier.report.copied.push(name);
                continue;
            }
            let op = audit
                .op("mirror.manifest", to.full(&rel))
                .digest(digest.oci())
                .source(from.full(&rel))
                .detail(format!("tag {tag}"));
            let r = copier.manifest(&rel, Some(&tag), &bytes, 0);
            op.finish(&r);
            r?;
            progress.line(&format!("copied {name}"));
            copier.report.copied.push(name);
        }
    }
    Ok(copier.report)
}
