//! Bundles: a named set of tool versions from registry.yaml (the seed's `go-development`,
//! `validation-tools`) published under `bundles/<name>` as one document that pins every
//! member artifact per platform (manifest digest, sha256, size, layout). Materializing a
//! bundle needs nothing but that document, and every member is verified by the pipeline.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::artifact::{self, BundleArtifact, BundleDoc, BundleMember};
use crate::config::{Bundle, Config, RegistryConfig};
use crate::error::{Error, Result};
use crate::operate::audit::Audit;
use crate::operate::publish::{Counters, Outcome};
use crate::pipeline::verify::Sha256;
use crate::platform::{self, CANONICAL};
use crate::registry::Registry;

/// The tag every bundle also carries.
pub const LATEST: &str = "latest";
/// Bundle documents are small; a bigger one is refused, not buffered.
const MAX_DOC: u64 = 4 << 20;

/// The platforms of a bundle: configured, else every canonical platform all members ship.
pub fn platforms(config: &Config, bundle: &Bundle) -> Result<Vec<&'static platform::Platform>> {
    let names: Vec<String> = match &bundle.platforms {
        Some(list) => list.clone(),
        None => CANONICAL
            .iter()
            .filter(|p| {
                bundle.tools.keys().all(|t| {
                    config
                        .tool(t)
                        .map(|tool| config.platforms_of(tool).iter().any(|q| q.name == **p))
                        .unwrap_or(false)
                })
            })
            .map(|p| p.to_string())
            .collect(),
    };
    names.iter().map(|n| platform::by_name(n)).collect()
}

/// Build the bundle document from what the registry holds (every member must be there).
pub fn document(
    config: &Config,
    reg: &RegistryConfig,
    client: &Registry,
    bundle: &Bundle,
) -> Result<(BundleDoc, String)> {
    let mut members = Vec::new();
    let mut created = String::new();
    for (name, version) in &bundle.tools {
        let tool = config.tool(name)?;
        let repo = config.tool_repository(reg, tool);
        let rel = repo
            .strip_prefix(&format!("{}/", reg.namespace))
            .unwrap_or(&repo)
            .to_string();
        let mut by_platform = BTreeMap::new();
        for plat in platforms(config, bundle)? {
            let tag = config.platform_tag(version, plat.name);
            let (bytes, _) = client.manifest(&repo, &tag)?.ok_or_else(|| {
                Error::input(
                    format!(
                        "bundle `{}` needs {repo}:{tag}, which {} does not hold",
                        bundle.name, reg.host
                    ),
                    format!("publish it first: protoreg publish --tool {name} --version {version}"),
                )
            })?;
            let m: artifact::Manifest =
                serde_json::from_slice(&bytes).map_err(|e| Error::Registry {
                    operation: format!("read {repo}:{tag}"),
                    registry: reg.host.clone(),
                    reason: format!("not an OCI manifest: {e}"),
                    hint: "re-publish the tool".into(),
                })?;
            let layer = m.layers.first().ok_or_else(|| Error::Registry {
                operation: format!("read {repo}:{tag}"),
                registry: reg.host.clone(),
                reason: "the manifest has no layer".into(),
                hint: "re-publish the tool".into(),
            })?;
            let format = artifact::format_of_media_type(&layer.media_type).ok_or_else(|| {
                Error::Registry {
                    operation: format!("read {repo}:{tag}"),
                    registry: reg.host.clone(),
                    reason: format!("unknown layer media type `{}`", layer.media_type),
                    hint: "re-publish the tool with protoreg".into(),
                }
            })?;
            if let Some(c) = m.annotations.get(artifact::CREATED) {
                if *c > created {
                    created = c.clone();
                }
            }
            by_platform.insert(
                plat.name.to_string(),
                BundleArtifact {
                    manifest: Sha256::of_bytes(&bytes).oci(),
                    sha256: layer.digest.clone(),
                    size: layer.size,
                    format: format.as_str().to_string(),
                    strip_prefix: tool.strip_prefix_for(version, plat),
                    // A raw artifact is its first binary alone.
                    binaries: crate::maintain::pins::layout(tool, version, format, plat)
                        .executables,
                },
            );
        }
        members.push(BundleMember {
            tool: name.clone(),
            version: version.clone(),
            repository: rel,
            platforms: by_platform,
        });
    }
    Ok((
        BundleDoc {
            bundle: bundle.name.clone(),
            description: bundle.description.clone(),
            members,
        },
        created,
    ))
}

/// Publish `bundle` under `bundles/<name>`, tagged with its version and `latest`.
pub fn publish(
    config: &Config,
    reg: &RegistryConfig,
    client: &Registry,
    bundle: &Bundle,
    audit: &Audit,
    counters: &mut Counters,
) -> Result<Outcome> {
    let (doc, created) = document(config, reg, client, bundle)?;
    let doc_bytes = artifact::to_bytes(&doc);
    let doc_digest = Sha256::of_bytes(&doc_bytes);
    let version = bundle
        .version
        .clone()
        .unwrap_or_else(|| format!("doc-{}", &doc_digest.hex()[..12]));
    let manifest = artifact::bundle_manifest(
        &bundle.name,
        &version,
        &created,
        &doc_digest,
        doc_bytes.len() as u64,
    );
    let bytes = artifact::to_bytes(&manifest);
    let digest = Sha256::of_bytes(&bytes);
    let repo = config.bundle_repository(reg, &bundle.name);
    let mut outcome = Outcome {
        repository: repo.clone(),
        tag: version.clone(),
        asset: format!("{} members", doc.members.len()),
        status: "bundle-up-to-date".into(),
        digest: Some(digest.oci()),
        sha256: Some(doc_digest.oci()),
        size: doc_bytes.len() as u64,
        error: None,
    };
    let current = |tag: &str| -> Result<Option<Sha256>> {
        Ok(client
            .manifest(&repo, tag)?
            .map(|(b, _)| Sha256::of_bytes(&b)))
    };
    if current(&version)? == Some(digest.clone()) && current(LATEST)? == Some(digest.clone()) {
        counters.artifacts_skipped += 1;
        return Ok(outcome);
    }
    let op = audit
        .op("publish.bundle", format!("{}/{repo}", reg.host))
        .digest(digest.oci())
        .detail(format!("tags {version},{LATEST}"));
    let r = (|| -> Result<()> {
        if !client.blob_exists(&repo, &doc_digest)? {
            client.push_blob_bytes(&repo, &doc_bytes)?;
            counters.blobs_uploaded += 1;
            counters.bytes_uploaded += doc_bytes.len() as u64;
        } else {
            counters.blobs_skipped += 1;
        }
        client.push_blob_bytes(&repo, artifact::EMPTY_CONFIG)?;
        for tag in [version.as_str(), LATEST] {
            client.push_manifest(&repo, Some(tag), &bytes, artifact::MANIFEST_MEDIA_TYPE)?;
        }
        Ok(())
    })();
    op.finish(&r);
    r?;
    counters.artifacts_published += 1;
    outcome.status = "bundle-published".into();
    Ok(outcome)
}

/// A bundle document as read from a registry.
pub struct Fetched {
    pub doc: BundleDoc,
    /// The bundle manifest's digest.
    pub manifest: Sha256,
    /// The document's own bytes and digest (the manifest's layer).
    pub doc_bytes: Vec<u8>,
    pub doc_digest: Sha256,
}

/// Read a bundle document from `reg`: the manifest by tag, the document by its digest
/// (verified), never more than [`MAX_DOC`] bytes.
pub fn fetch(
    config: &Config,
    reg: &RegistryConfig,
    client: &Registry,
    name: &str,
    tag: &str,
) -> Result<Option<Fetched>> {
    let repo = config.bundle_repository(reg, name);
    let Some((bytes, _)) = client.manifest(&repo, tag)? else {
        return Ok(None);
    };
    let m: artifact::Manifest = serde_json::from_slice(&bytes).map_err(|e| Error::Registry {
        operation: format!("read {repo}:{tag}"),
        registry: reg.host.clone(),
        reason: format!("not an OCI manifest: {e}"),
        hint: "re-publish the bundle".into(),
    })?;
    let layer = m
        .layers
        .iter()
        .find(|l| l.media_type == artifact::BUNDLE_DOC_MEDIA_TYPE)
        .ok_or_else(|| Error::Registry {
            operation: format!("read {repo}:{tag}"),
            registry: reg.host.clone(),
            reason: "not a bundle (no bundle document layer)".into(),
            hint: "check the bundle name".into(),
        })?;
    if layer.size > MAX_DOC {
        return Err(Error::Registry {
            operation: format!("read {repo}:{tag}"),
            registry: reg.host.clone(),
            reason: format!(
                "bundle document of {} bytes is over the {MAX_DOC}-byte cap",
                layer.size
            ),
            hint: "a bundle lists a few tools; this is not one".into(),
        });
    }
    let digest: Sha256 = layer.digest.parse().map_err(|e: Error| Error::Registry {
        operation: format!("read {repo}:{tag}"),
        registry: reg.host.clone(),
        reason: format!("the document layer's digest is not valid: {}", e.summary()),
        hint: "re-publish the bundle".into(),
    })?;
    let expected = crate::pipeline::verify::Expected {
        sha256: digest.clone(),
        size: Some(layer.size),
    };
    let mut w = crate::pipeline::verify::HashingWriter::new(Vec::new(), layer.size);
    client.pull_blob(&repo, &digest, layer.size, &mut w)?;
    let doc_bytes = w.finish(
        &expected,
        &format!("bundle document {repo}@{}", digest.oci()),
    )?;
    let doc: BundleDoc = serde_json::from_slice(&doc_bytes).map_err(|e| Error::Registry {
        operation: format!("read {repo}:{tag}"),
        registry: reg.host.clone(),
        reason: format!("bundle document is not valid: {e}"),
        hint: "re-publish the bundle".into(),
    })?;
    Ok(Some(Fetched {
        doc,
        manifest: Sha256::of_bytes(&bytes),
        doc_bytes,
        doc_digest: digest,
    }))
}

/// Bundle documents kept for `--offline`, one file per (registry, repository, tag) under
/// `<cache>/bundles-v1/`: the verified document bytes with their digest, rewritten (by
/// atomic rename) each time the tag is read online. Offline, the last document seen for
/// the tag is used, and its digest is checked again.
const CACHE_DIR: &str = "bundles-v1";

#[derive(serde::Serialize, serde::Deserialize)]
struct CachedDoc {
    registry: String,
    repository: String,
    tag: String,
    manifest: String,
    document_sha256: String,
    document: String,
}

fn cache_path(cache: &Path, host: &str, repository: &str, tag: &str) -> PathBuf {
    let key = Sha256::of_bytes(format!("{host}/{repository}:{tag}").as_bytes());
    cache.join(CACHE_DIR).join(format!("{}.json", key.hex()))
}

/// Keep `fetched` (read from `host`'s `repository:tag`) for later `--offline` runs.
pub fn remember(
    cache: &Path,
    host: &str,
    repository: &str,
    tag: &str,
    fetched: &Fetched,
) -> Result<()> {
    let document = String::from_utf8(fetched.doc_bytes.clone()).map_err(|_| {
        Error::io(
            "keep the bundle document in",
            cache.join(CACHE_DIR),
            std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8"),
        )
    })?;
    let entry = CachedDoc {
        registry: host.to_string(),
        repository: repository.to_string(),
        tag: tag.to_string(),
        manifest: fetched.manifest.oci(),
        document_sha256: fetched.doc_digest.oci(),
        document,
    };
    crate::pipeline::store::write_atomic(
        &cache_path(cache, host, repository, tag),
        &artifact::to_bytes(&entry),
    )
}

/// The document last read online from `host`'s `repository:tag` into this cache, if any.
/// A damaged entry is an error (exit 1), not a miss: the cache is not trusted blindly.
pub fn remembered(
    cache: &Path,
    host: &str,
    repository: &str,
    tag: &str,
) -> Result<Option<BundleDoc>> {
    let path = cache_path(cache, host, repository, tag);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read the cached bundle document", path, e)),
    };
    let damaged = |why: String| {
        Error::io(
            "read the cached bundle document",
            path.clone(),
            std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("{why}; remove it and run once without --offline"),
            ),
        )
    };
    let entry: CachedDoc =
        serde_json::from_slice(&bytes).map_err(|e| damaged(format!("not a cache entry: {e}")))?;
    if entry.registry != host || entry.repository != repository || entry.tag != tag {
        return Err(damaged(format!(
            "it is for {}/{}:{}",
            entry.registry, entry.repository, entry.tag
        )));
    }
    let actual = Sha256::of_bytes(entry.document.as_bytes());
    if actual.oci() != entry.document_sha256 {
        return Err(Error::Verification {
            what: format!("cached bundle document `{}`", path.display()),
            expected: entry.document_sha256,
            actual: actual.oci(),
            hint: "remove it and run once without --offline".into(),
        });
    }
    let doc = serde_json::from_str(&entry.document)
        .map_err(|e| damaged(format!("the document is not valid: {e}")))?;
    Ok(Some(doc))
}
