//! The OCI shape of a published tool (design.md, "OCI layout"): an image manifest with this
//! project's `artifactType`, the OCI empty config, and one layer that is the upstream file
//! byte for byte, so the layer digest is the upstream sha256. JSON is rendered from structs
//! in a fixed field order with a fixed `created`, so publishing twice gives the same digest.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::pipeline::extract::Format;
use crate::pipeline::verify::Sha256;

pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub const ARTIFACT_TYPE: &str = "application/vnd.buck2-protobuf.tool.v1";
pub const BUNDLE_ARTIFACT_TYPE: &str = "application/vnd.buck2-protobuf.bundle.v1+json";
pub const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The OCI empty descriptor's content `{}`.
pub const EMPTY_CONFIG: &[u8] = b"{}";

pub const TITLE: &str = "org.opencontainers.image.title";
pub const VERSION: &str = "org.opencontainers.image.version";
pub const SOURCE: &str = "org.opencontainers.image.source";
pub const CREATED: &str = "org.opencontainers.image.created";

/// An OCI tag: letters, digits, `.`, `_`, `-` (not first), at most 128 characters.
pub fn valid_tag(tag: &str) -> bool {
    !tag.is_empty()
        && tag.len() <= 128
        && tag
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !tag.starts_with(['.', '-'])
}

/// The layer media type by format. Not the OCI `tar+gzip` layer type: ORAS clients unpack
/// that, and `oras pull` must hand over the upstream file unchanged.
pub fn layer_media_type(format: Format) -> &'static str {
    match format {
        Format::Zip => "application/zip",
        Format::TarGz => "application/vnd.buck2-protobuf.archive.v1.tar+gzip",
        Format::TarXz => "application/vnd.buck2-protobuf.archive.v1.tar+xz",
        Format::Raw => "application/octet-stream",
    }
}

/// The format a layer media type stands for (also accepting what other ORAS clients push).
pub fn format_of_media_type(media_type: &str) -> Option<Format> {
    match media_type {
        "application/zip" => Some(Format::Zip),
        "application/vnd.buck2-protobuf.archive.v1.tar+gzip"
        | "application/gzip"
        | "application/x-gzip"
        | "application/vnd.oci.image.layer.v1.tar+gzip" => Some(Format::TarGz),
        // OCI defines no xz layer type; `application/x-xz` is what file(1) and ORAS users name.
        "application/vnd.buck2-protobuf.archive.v1.tar+xz" | "application/x-xz" => {
            Some(Format::TarXz)
        }
        "application/octet-stream" | "application/vnd.oci.image.layer.v1.tar" => Some(Format::Raw),
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Descriptor {
    #[serde(rename = "mediaType")]
    pub media_type: String,
    pub digest: String,
    pub size: u64,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<OciPlatform>,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OciPlatform {
    pub architecture: String,
    pub os: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType")]
    pub media_type: String,
    #[serde(rename = "artifactType", default)]
    pub artifact_type: Option<String>,
    pub config: Descriptor,
    pub layers: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Index {
    #[serde(rename = "schemaVersion")]
    pub schema_version: u32,
    #[serde(rename = "mediaType")]
    pub media_type: String,
    #[serde(
        rename = "artifactType",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub artifact_type: Option<String>,
    pub manifests: Vec<Descriptor>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// What one published file is.
#[derive(Debug, Clone)]
pub struct ToolFile {
    pub file_name: String,
    pub sha256: Sha256,
    pub size: u64,
    pub format: Format,
    pub version: String,
    pub source_url: String,
    /// The release date: fixed, so re-publishing is byte-identical.
    pub created: String,
}

pub fn empty_config() -> Descriptor {
    Descriptor {
        media_type: EMPTY_MEDIA_TYPE.into(),
        digest: Sha256::of_bytes(EMPTY_CONFIG).oci(),
        size: EMPTY_CONFIG.len() as u64,
        annotations: BTreeMap::new(),
        platform: None,
        artifact_type: None,
    }
}

/// The shape every artifact of this project has: `artifact_type`, the empty config, and one
/// layer (`title`, `media_type`, `digest`, `size`) with the manifest's `annotations`.
pub fn one_layer_manifest(
    artifact_type: &str,
    title: &str,
    media_type: &str,
    digest: &Sha256,
    size: u64,
    annotations: BTreeMap<String, String>,
) -> Manifest {
    let mut layer_ann = BTreeMap::new();
    layer_ann.insert(TITLE.to_string(), title.to_string());
    Manifest {
        schema_version: 2,
        media_type: MANIFEST_MEDIA_TYPE.into(),
        artifact_type: Some(artifact_type.into()),
        config: empty_config(),
        layers: vec![Descriptor {
            media_type: media_type.into(),
            digest: digest.oci(),
            size,
            annotations: layer_ann,
            platform: None,
            artifact_type: None,
        }],
        annotations,
    }
}

impl ToolFile {
    pub fn manifest(&self) -> Manifest {
        let mut ann = BTreeMap::new();
        ann.insert(CREATED.to_string(), self.created.clone());
        ann.insert(SOURCE.to_string(), self.source_url.clone());
        ann.insert(TITLE.to_string(), self.file_name.clone());
        ann.insert(VERSION.to_string(), self.version.clone());
        one_layer_manifest(
            ARTIFACT_TYPE,
            &self.file_name,
            layer_media_type(self.format),
            &self.sha256,
            self.size,
            ann,
        )
    }
}

/// One platform manifest for a multi-platform index.
#[derive(Debug, Clone)]
pub struct PlatformManifest {
    pub platform: &'static crate::platform::Platform,
    pub digest: Sha256,
    pub size: u64,
}

/// The multi-platform index of one version: entries in the platform table's order, each
/// with its OCI `platform`, and the same fixed annotations as its manifests.
pub fn tool_index(
    version: &str,
    created: &str,
    source: &str,
    entries: &[PlatformManifest],
) -> Index {
    let mut sorted: Vec<&PlatformManifest> = entries.iter().collect();
    let rank = |p: &PlatformManifest| {
        crate::platform::PLATFORMS
            .iter()
            .position(|q| q.name == p.platform.name)
            .unwrap_or(usize::MAX)
    };
    sorted.sort_by_key(|p| rank(p));
    let mut ann = BTreeMap::new();
    ann.insert(CREATED.to_string(), created.to_string());
    ann.insert(SOURCE.to_string(), source.to_string());
    ann.insert(VERSION.to_string(), version.to_string());
    Index {
        schema_version: 2,
        media_type: INDEX_MEDIA_TYPE.into(),
        artifact_type: Some(ARTIFACT_TYPE.into()),
        manifests: sorted
            .iter()
            .map(|p| Descriptor {
                media_type: MANIFEST_MEDIA_TYPE.into(),
                digest: p.digest.oci(),
                size: p.size,
                annotations: BTreeMap::new(),
                platform: Some(OciPlatform {
                    architecture: p.platform.oci_arch().into(),
                    os: p.platform.oci_os().into(),
                }),
                artifact_type: Some(ARTIFACT_TYPE.into()),
            })
            .collect(),
        annotations: ann,
    }
}

/// The media type of a bundle document layer.
pub const BUNDLE_DOC_MEDIA_TYPE: &str = "application/vnd.buck2-protobuf.bundle.v1+json";

/// One member artifact of a bundle on one platform: everything needed to fetch, verify and
/// unpack it, so materializing a bundle needs nothing but the bundle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleArtifact {
    /// The platform manifest's digest in the member's repository.
    pub manifest: String,
    pub sha256: String,
    pub size: u64,
    pub format: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub strip_prefix: String,
    pub binaries: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleMember {
    pub tool: String,
    pub version: String,
    /// Repository under the namespace (`tools/protoc`).
    pub repository: String,
    pub platforms: BTreeMap<String, BundleArtifact>,
}

/// The bundle document (the single layer of a bundle artifact).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleDoc {
    pub bundle: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    pub members: Vec<BundleMember>,
}

/// The manifest of a bundle artifact whose document has `doc_digest` and `doc_size`.
pub fn bundle_manifest(
    name: &str,
    version: &str,
    created: &str,
    doc_digest: &Sha256,
    doc_size: u64,
) -> Manifest {
    let mut ann = BTreeMap::new();
    ann.insert(CREATED.to_string(), created.to_string());
    ann.insert(TITLE.to_string(), name.to_string());
    ann.insert(VERSION.to_string(), version.to_string());
    one_layer_manifest(
        BUNDLE_ARTIFACT_TYPE,
        &format!("{name}.bundle.json"),
        BUNDLE_DOC_MEDIA_TYPE,
        doc_digest,
        doc_size,
        ann,
    )
}

/// Canonical bytes of a manifest or index (the digest is over these bytes).
pub fn to_bytes<T: Serialize>(doc: &T) -> Vec<u8> {
    // Serializing these plain structs cannot fail.
    serde_json::to_vec(doc).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_format_reads_back_from_its_layer_media_type() {
        for format in [Format::Zip, Format::TarGz, Format::TarXz, Format::Raw] {
            assert_eq!(
                format_of_media_type(layer_media_type(format)),
                Some(format),
                "{format}"
            );
        }
        // Not an OCI layer type that ORAS would unpack: `oras pull` hands over the file.
        assert_eq!(
            layer_media_type(Format::TarXz),
            "application/vnd.buck2-protobuf.archive.v1.tar+xz"
        );
        assert_eq!(
            format_of_media_type("application/x-xz"),
            Some(Format::TarXz)
        );
    }

    #[test]
    fn manifest_is_deterministic_and_ors_shaped() {
        let f = ToolFile {
            file_name: "protoc-36.2-linux-x86_64.zip".into(),
            sha256: Sha256::of_bytes(b"x"),
            size: 1,
            format: Format::Zip,
            version: "36.2".into(),
            source_url: "https://example/".into(),
            created: "2025-01-01T00:00:00Z".into(),
        };
        let a = to_bytes(&f.manifest());
        assert_eq!(a, to_bytes(&f.manifest()));
        let v: serde_json::Value = serde_json::from_slice(&a).unwrap();
        assert_eq!(v["mediaType"], MANIFEST_MEDIA_TYPE);
        assert_eq!(v["artifactType"], ARTIFACT_TYPE);
        assert_eq!(
            v["config"]["digest"],
            "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"
        );
        assert_eq!(
            v["layers"][0]["annotations"][TITLE],
            "protoc-36.2-linux-x86_64.zip"
        );
    }
}
