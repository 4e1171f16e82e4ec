//! An OCI image-layout directory (the OCI image spec's on-disk format, which oras and skopeo
//! read as `oci:DIR:TAG`): `oci-layout`, `index.json` whose entries carry the tag in
//! `org.opencontainers.image.ref.name`, and `blobs/sha256/<hex>`. One directory per
//! repository; a tree of them (`ROOT/<namespace>/tools/protoc/`) is a serverless registry.

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::error::{Error, IoContext, Result};
use crate::pipeline::store::{unique_name, write_atomic};
use crate::pipeline::verify::{Expected, Sha256};
use crate::registry::{Document, MAX_MANIFEST_BYTES};

pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
const LAYOUT_FILE: &[u8] = br#"{"imageLayoutVersion":"1.0.0"}"#;

pub struct Layout {
    pub dir: PathBuf,
}

impl Layout {
    pub fn new(dir: PathBuf) -> Layout {
        Layout { dir }
    }

    pub fn exists(&self) -> bool {
        self.dir.join("oci-layout").is_file()
    }

    pub fn blob_path(&self, digest: &Sha256) -> PathBuf {
        self.dir.join("blobs/sha256").join(digest.hex())
    }

    fn index(&self) -> Result<Value> {
        let p = self.dir.join("index.json");
        match read_document(&p) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                Error::input(
                    format!("`{}` is not an OCI image index: {e}", p.display()),
                    "point at an OCI image-layout directory (oras, skopeo or protoreg mirror write them)",
                )
            }),
            Err(Some(e)) if e.kind() == std::io::ErrorKind::InvalidInput => Err(Error::input(
                format!("`{}` {e}", p.display()),
                "make index.json the layout's image index, a regular file",
            )),
            Err(Some(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(json!({
                "schemaVersion": 2,
                "mediaType": crate::artifact::INDEX_MEDIA_TYPE,
                "manifests": [],
            })),
            Err(Some(e)) => Err(Error::io("read", p, e)),
            Err(None) => Err(too_large(&self.dir, "index.json", &p)),
        }
    }

    /// The tags in `index.json`, with the descriptor each names.
    pub fn tags(&self) -> Result<Vec<(String, Value)>> {
        if !self.exists() {
            return Ok(vec![]);
        }
        let index = self.index()?;
        let mut out = Vec::new();
        for d in index["manifests"].as_array().into_iter().flatten() {
            if let Some(tag) = d["annotations"][REF_NAME].as_str() {
                out.push((tag.to_string(), d.clone()));
            }
        }
        Ok(out)
    }

    /// The bytes and digest of a manifest by tag or `sha256:` digest.
    pub fn manifest(&self, reference: &str) -> Result<Option<(Vec<u8>, Sha256)>> {
        let digest: Sha256 = if reference.starts_with("sha256:") {
            reference.parse()?
        } else {
            match self.tags()?.into_iter().find(|(t, _)| t == reference) {
                Some((_, d)) => d["digest"].as_str().unwrap_or_default().parse()?,
                None => return Ok(None),
            }
        };
        let p = self.blob_path(&digest);
        match read_document(&p) {
            Ok(bytes) => {
                if Sha256::of_bytes(&bytes) != digest {
                    return Err(Error::Verification {
                        what: format!("manifest `{}`", p.display()),
                        expected: digest.to_string(),
                        actual: Sha256::of_bytes(&bytes).to_string(),
                        hint: "the layout directory is damaged; mirror it again from the registry"
                            .into(),
                    });
                }
                Ok(Some((bytes, digest)))
            }
            Err(Some(e)) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(Some(e)) if e.kind() == std::io::ErrorKind::InvalidInput => {
                Err(damaged(&self.dir, &format!("manifest {reference}"), &p, &e))
            }
            Err(Some(e)) => Err(Error::io("read", p, e)),
            Err(None) => Err(too_large(&self.dir, &format!("manifest {reference}"), &p)),
        }
    }

    /// Blob `digest` opened for streaming, with its path: opened without blocking, and only
    /// a regular file (anything else fails this source, naming the file).
    pub fn open_blob(&self, digest: &Sha256) -> Result<(fs::File, PathBuf)> {
        let p = self.blob_path(digest);
        match crate::textfile::open_regular(&p) {
            Ok((f, _)) => Ok((f, p)),
            Err(e) if e.kind() == std::io::ErrorKind::InvalidInput => Err(damaged(
                &self.dir,
                &format!("blob {}", digest.oci()),
                &p,
                &e,
            )),
            Err(e) => Err(Error::io("open", p, e)),
        }
    }

    fn init(&self) -> Result<()> {
        fs::create_dir_all(self.dir.join("blobs/sha256")).ctx("create", &self.dir)?;
        if !self.exists() {
            write_atomic(&self.dir.join("oci-layout"), LAYOUT_FILE)?;
        }
        Ok(())
    }

    /// Whether blob `expected` is here: present as a regular file of the expected size. (The
    /// content is verified when it is read; the size check catches a copy cut short.)
    pub fn has_blob(&self, expected: &Expected) -> bool {
        fs::symlink_metadata(self.blob_path(&expected.sha256))
            .is_ok_and(|m| m.is_file() && expected.size.is_none_or(|s| m.len() == s))
    }

    /// Move a verified file in as blob `expected` (a blob already here is identical by
    /// content). The blob only ever appears complete: by rename of `tmp`, or, when `tmp` is
    /// on another file system, by a copy to a temporary file inside the layout that is then
    /// renamed into place. A crash leaves at most a `.blob-*` file in the layout's root.
    pub fn put_blob_file(&self, tmp: &Path, expected: &Expected) -> Result<()> {
        self.init()?;
        let dest = self.blob_path(&expected.sha256);
        if self.has_blob(expected) {
            let _ = fs::remove_file(tmp);
            return Ok(());
        }
        // Replaces a torn blob (wrong size) left by an older protoreg.
        if fs::rename(tmp, &dest).is_ok() {
            return Ok(());
        }
        let part = self.dir.join(format!(
            ".{}",
            unique_name(&format!("blob-{}", expected.sha256.hex()))
        ));
        let r = copy_synced(tmp, &part).and_then(|_| fs::rename(&part, &dest));
        if r.is_err() {
            let _ = fs::remove_file(&part);
        }
        r.ctx("write", &dest)?;
        let _ = fs::remove_file(tmp);
        Ok(())
    }

    pub fn put_blob_bytes(&self, bytes: &[u8]) -> Result<Sha256> {
        self.init()?;
        let digest = Sha256::of_bytes(bytes);
        let dest = self.blob_path(&digest);
        if !dest.exists() {
            write_atomic(&dest, bytes)?;
        }
        Ok(digest)
    }

    /// Store a manifest and, with a tag, name it in `index.json` (replacing that tag).
    pub fn put_manifest(
        &self,
        tag: Option<&str>,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Sha256> {
        let digest = self.put_blob_bytes(bytes)?;
        let Some(tag) = tag else {
            return Ok(digest);
        };
        let mut index = self.index()?;
        let doc: Value = serde_json::from_slice(bytes).unwrap_or(Value::Null);
        let mut entry = json!({
            "mediaType": media_type,
            "digest": digest.oci(),
            "size": bytes.len(),
            "annotations": {REF_NAME: tag},
        });
        if let Some(at) = doc.get("artifactType") {
            entry["artifactType"] = at.clone();
        }
        let list = index["manifests"].as_array_mut();
        let mut manifests: Vec<Value> = list.map(std::mem::take).unwrap_or_default();
        manifests.retain(|d| d["annotations"][REF_NAME].as_str() != Some(tag));
        manifests.push(entry);
        manifests.sort_by(|a, b| {
            a["annotations"][REF_NAME]
                .as_str()
                .cmp(&b["annotations"][REF_NAME].as_str())
        });
        index["manifests"] = Value::Array(manifests);
        let text = serde_json::to_vec_pretty(&index).unwrap_or_default();
        write_atomic(&self.dir.join("index.json"), &text)?;
        Ok(digest)
    }
}

/// A manifest or index file's bytes, read to at most [`MAX_MANIFEST_BYTES`] + 1: `Err(None)`
/// when it is larger (a file past the limit is refused by its size before it is read).
/// Opened without blocking and only as a regular file (`InvalidInput` otherwise).
fn read_document(p: &Path) -> std::result::Result<Vec<u8>, Option<std::io::Error>> {
    let (f, meta) = crate::textfile::open_regular(p).map_err(Some)?;
    if meta.len() > MAX_MANIFEST_BYTES {
        return Err(None);
    }
    match crate::registry::read_document(f, MAX_MANIFEST_BYTES).map_err(Some)? {
        Document::Whole(bytes) => Ok(bytes),
        Document::TooLarge => Err(None),
    }
}

fn too_large(dir: &Path, what: &str, p: &Path) -> Error {
    Error::Registry {
        operation: format!("read {what}"),
        registry: format!("oci-layout:{}", dir.display()),
        reason: format!(
            "`{}` is larger than the {} ({MAX_MANIFEST_BYTES} bytes) the OCI distribution spec allows a manifest or index",
            p.display(),
            crate::error::Bytes(MAX_MANIFEST_BYTES)
        ),
        hint: "the layout holds something that is not a manifest (damaged or hostile); mirror it again from the registry".into(),
    }
}

/// A layout file that is not a regular file (a FIFO, device or directory where a blob
/// belongs): that source fails, naming the file.
fn damaged(dir: &Path, what: &str, p: &Path, e: &std::io::Error) -> Error {
    Error::Registry {
        operation: format!("read {what}"),
        registry: format!("oci-layout:{}", dir.display()),
        reason: format!("`{}` {e}", p.display()),
        hint: "the layout is damaged or hostile; mirror it again from the registry".into(),
    }
}

/// Copy `from` to `to` (a new file) and flush it to disk before it is renamed anywhere.
fn copy_synced(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut src = fs::File::open(from)?;
    let mut dst = fs::File::options().write(true).create_new(true).open(to)?;
    std::io::copy(&mut src, &mut dst)?;
    dst.sync_all()
}

/// Every layout directory under `root` (itself included), as paths relative to it.
pub fn repositories(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    // Bounded: a layout tree is a few levels deep; stop at 10,000 directories.
    let mut seen = 0;
    while let Some(d) = stack.pop() {
        seen += 1;
        if seen > 10_000 {
            break;
        }
        if d.join("oci-layout").is_file() {
            let rel = d.strip_prefix(root).unwrap_or(&d).display().to_string();
            out.push(rel);
            continue;
        }
        if let Ok(rd) = fs::read_dir(&d) {
            for e in rd.flatten() {
                if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                    stack.push(e.path());
                }
            }
        }
    }
    out.sort();
    out
}
