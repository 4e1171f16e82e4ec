//! Resolve: the pipeline that turns a pin into a tree. The cache first; then each source in
//! order, streamed into `tmp/` while hashing; the first verified one becomes the blob; the
//! blob is extracted into `tmp/` and renamed into the cache; the tree is materialized.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::{Attempt, Error, IoContext, Result};
use crate::pipeline::cache_scan::{PreHasher, Prehashed};
use crate::pipeline::extract::{self, Layout};
use crate::pipeline::fetch::{Fetcher, NetOptions};
use crate::pipeline::materialize::{self, Link};
use crate::pipeline::source::Source;
use crate::pipeline::store::{remove_tree, Store};
use crate::pipeline::verify::{Expected, HashingWriter, Sha256};
use crate::progress::Progress;

/// What to materialize: the pinned bytes and how to unpack them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Artifact {
    pub expected: Expected,
    pub layout: Layout,
}

impl Artifact {
    /// The cache key of the extracted tree: the pin plus every extraction parameter, never
    /// the source (all sources serve the same bytes). A known size hashes as its decimal
    /// digits (the keys of sized pins are what they always were); an unknown one as `unsized`,
    /// which no size can collide with.
    pub fn tree_key(&self) -> Sha256 {
        let mut s = format!(
            "protoreg-tree-v1\n{}\n{}\n{}\n{}\n",
            self.expected.sha256,
            self.expected
                .size
                .map_or_else(|| "unsized".to_string(), |n| n.to_string()),
            self.layout.format,
            self.layout.strip_prefix.as_deref().unwrap_or("")
        );
        for e in &self.layout.executables {
            s.push_str(e);
            s.push('\n');
        }
        Sha256::of_bytes(s.as_bytes())
    }
}

#[derive(Debug, Clone)]
pub struct Options {
    pub offline: bool,
    pub net: NetOptions,
    /// The most bytes a source may send for an artifact of unknown size
    /// ([`crate::pipeline::verify::max_unsized_bytes`]).
    pub max_unsized: u64,
    /// Where a download or an extraction long enough to watch is shown.
    pub progress: Progress,
    /// What the bars call the artifact (`protoc 31.1 linux-x86_64`).
    pub label: String,
}

/// How a tree was obtained, for `--json`, metrics and the audit log.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    pub tree: PathBuf,
    pub cache_hit: bool,
    /// The source that served the bytes (None for a cache hit).
    pub source: Option<String>,
    /// Sources that were tried and failed before the one that worked.
    pub failed: Vec<Attempt>,
    pub bytes_fetched: u64,
    /// The artifact's verified size when this run saw its bytes (fetched them, or extracted
    /// the cached blob); None for a tree cache hit.
    pub size: Option<u64>,
    /// How the files reached the output (clone, copy, hardlink).
    pub linked: materialize::Linked,
}

/// Get the tree for `artifact` into the cache (if needed) and return where it is.
pub fn ensure_tree(
    store: &Store,
    artifact: &Artifact,
    sources: &[Source],
    opts: &Options,
) -> Result<Outcome> {
    let key = artifact.tree_key();
    let tree_path = store.tree_path(&key);
    if let Some(tree) = store.lookup(&tree_path) {
        return Ok(Outcome {
            tree,
            cache_hit: true,
            ..Outcome::default()
        });
    }
    // The extraction caps, refused (exit 2) before any download when malformed.
    let limits = extract::Limits::from_env()?;
    store.init()?;
    let _lock = store.lock(&key)?;
    // Another process may have finished the entry while we waited for the lock.
    if let Some(tree) = store.lookup(&tree_path) {
        return Ok(Outcome {
            tree,
            cache_hit: true,
            ..Outcome::default()
        });
    }
    let mut outcome = Outcome::default();
    let staging = store.temp_path("tree");
    // Re-verified before a new tree is made from it: a blob changed in the cache is refetched.
    let extracted = match store.verified_blob(&artifact.expected) {
        Some((blob, size)) => {
            outcome.size = Some(size);
            extract_into(&blob, &artifact.layout, &staging, opts).map(|()| Prehashed::new())
        }
        None if opts.offline => {
            return Err(Error::Offline {
                sha256: artifact.expected.sha256.to_string(),
                cache: store.root().to_path_buf(),
            })
        }
        None => fetch_blob(
            store,
            artifact,
            sources,
            opts,
            limits,
            &mut outcome,
            &staging,
        ),
    };
    let prehashed = match extracted {
        Ok(prehashed) => prehashed,
        Err(e) => {
            remove_tree(&staging);
            return Err(e);
        }
    };
    outcome.tree = store.install_tree_with(&staging, &key, &prehashed)?;
    Ok(outcome)
}

fn extract_into(blob: &Path, layout: &Layout, staging: &Path, opts: &Options) -> Result<()> {
    std::fs::create_dir(staging).ctx("create", staging)?;
    let bar = opts
        .progress
        .bytes(&format!("{} (extract)", opts.label), None);
    let extracted = extract::extract_showing(blob, layout, staging, &bar);
    bar.done();
    extracted
}

/// Try each source in order; the first whose bytes verify is installed as the blob and its
/// tree left extracted in `staging` (with the files already hashed while it was extracted).
fn fetch_blob(
    store: &Store,
    artifact: &Artifact,
    sources: &[Source],
    opts: &Options,
    limits: extract::Limits,
    outcome: &mut Outcome,
    staging: &Path,
) -> Result<Prehashed> {
    let expected = &artifact.expected;
    let mut fetcher = Fetcher::new(opts.net.clone());
    for source in sources {
        let tmp = store.temp_path("blob");
        match fetch_one(&mut fetcher, source, artifact, opts, limits, &tmp, staging) {
            Ok((extracted, fetched, prehashed)) => {
                outcome.source = Some(source.to_string());
                outcome.bytes_fetched = fetched;
                outcome.size = Some(fetched);
                // A verified archive that fails to extract is refused whole: nothing of it,
                // not even the blob, stays in the cache. One whose streamed extraction was
                // deferred (past its unverified budget) is extracted now, from the blob.
                let (result, prehashed) = match extracted {
                    Some(result) => (result, prehashed),
                    None => (
                        extract_into(&tmp, &artifact.layout, staging, opts),
                        Prehashed::new(),
                    ),
                };
                if let Err(e) = result {
                    let _ = std::fs::remove_file(&tmp);
                    return Err(e);
                }
                store.install_blob(&tmp, &expected.sha256)?;
                return Ok(prehashed);
            }
            Err(reason) => {
                let _ = std::fs::remove_file(&tmp);
                remove_tree(staging);
                outcome.failed.push(Attempt {
                    source: source.to_string(),
                    reason,
                });
            }
        }
    }
    Err(Error::AllSourcesFailed {
        sha256: expected.sha256.to_string(),
        attempts: outcome.failed.clone(),
    })
}

/// Writes to the blob file and, while the extractor is listening, to its pipe; counts what
/// arrived on the download's bar.
struct Tee {
    file: BufWriter<File>,
    pipe: Option<std::io::PipeWriter>,
    bar: crate::progress::Bar,
}

impl Write for Tee {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.file.write_all(buf)?;
        self.bar.inc(buf.len() as u64);
        // The extractor stops reading when it fails or reaches the end of the archive; the
        // download must still run to the end so the whole body is verified.
        if self
            .pipe
            .as_mut()
            .is_some_and(|p| p.write_all(buf).is_err())
        {
            self.pipe = None;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

/// A streamed extraction's result (when the format streams and the stream was not deferred)
/// and the bytes the source sent.
type Fetched = (Option<Result<()>>, u64, Prehashed);

/// Fetch one source into `tmp`, verifying it, and say how many bytes it sent. A tar.gz or
/// tar.xz is
/// extracted into `staging` on a second thread as it streams (inflating overlaps the
/// download); its result is returned only when the bytes verified, and only then may the tree
/// be used. Until then the extraction writes at most [`extract::unverified_budget`] of the
/// pin, gives no file an exec bit and creates no symlink; past the budget it removes what it
/// wrote and stops, and the verified blob is extracted afterwards (`None`). An artifact of
/// unknown size is verified by its sha256 alone, and a body longer than `opts.max_unsized` is
/// refused like one longer than a pinned size.
fn fetch_one(
    fetcher: &mut Fetcher,
    source: &Source,
    artifact: &Artifact,
    opts: &Options,
    limits: extract::Limits,
    tmp: &Path,
    staging: &Path,
) -> std::result::Result<Fetched, String> {
    let expected = &artifact.expected;
    let file = File::create(tmp).map_err(|e| format!("cannot create `{}`: {e}", tmp.display()))?;
    let mut extractor = None;
    let mut pipe = None;
    let mut hasher = None;
    if artifact.layout.format.is_tar() {
        std::fs::create_dir(staging)
            .map_err(|e| format!("cannot create `{}`: {e}", staging.display()))?;
        let (reader, writer) = std::io::pipe().map_err(|e| format!("cannot create a pipe: {e}"))?;
        crate::sys::grow_pipe(&writer);
        let (layout, dest, name) = (
            artifact.layout.clone(),
            staging.to_path_buf(),
            source.to_string(),
        );
        let budget = extract::unverified_budget(expected.size);
        let prehasher = PreHasher::start();
        let written = prehasher.sender();
        hasher = Some(prehasher);
        extractor = Some(std::thread::spawn(move || {
            let reader = std::io::BufReader::with_capacity(256 << 10, reader);
            extract::extract_tar_stream(reader, &name, &layout, &dest, limits, budget, written)
        }));
        pipe = Some(writer);
    }
    let bar = opts.progress.bytes(&opts.label, expected.size);
    bar.set_message(source.to_string());
    let tee = Tee {
        file: BufWriter::with_capacity(1 << 20, file),
        pipe,
        bar: bar.clone(),
    };
    let mut writer = HashingWriter::for_expected(tee, expected, opts.max_unsized);
    let most = expected.size.unwrap_or(opts.max_unsized);
    let fetched = fetcher.fetch(source, most, expected, &mut writer);
    bar.done();
    let written = writer.written();
    let verified = match fetched {
        Ok(()) => writer
            .finish(expected, "the download")
            .map_err(|e| e.summary()),
        Err(reason) => {
            // A failed source still holds the pipe's writer: drop it, or the extractor never
            // sees the end of its input and the join below waits forever.
            drop(writer);
            Err(reason)
        }
    };
    // Every path has dropped or now drops the pipe's writer: the extractor sees the end of
    // its input and the join below cannot wait forever.
    let verified = verified.map(|mut tee| {
        drop(tee.pipe.take());
        tee
    });
    let extracted = extractor.map(|handle| {
        handle.join().unwrap_or_else(|_| {
            Err(Error::input(
                "the extraction thread panicked",
                "report this as a bug",
            ))
        })
    });
    // Symlinks and exec bits only for bytes that verified.
    let extracted = match (&verified, extracted) {
        (Ok(_), Some(Ok(extract::Streamed::Extracted(unfinished)))) => {
            Some(unfinished.finish(&artifact.layout))
        }
        // Past its unverified budget: it removed what it wrote; the blob is extracted next.
        (Ok(_), Some(Ok(extract::Streamed::Deferred))) => None,
        (Ok(_), Some(Err(e))) => Some(Err(e)),
        // Not verified: whatever the extraction did is discarded with `staging`.
        (_, _) => None,
    };
    // Hashes of the extracted files count only for a tree that is used as extracted.
    let prehashed = match (&extracted, hasher) {
        (Some(Ok(())), Some(h)) => h.finish(),
        _ => Prehashed::new(),
    };
    verified?
        .file
        .into_inner()
        .map_err(|e| format!("write failed: {}", e.error()))?;
    Ok((extracted, written, prehashed))
}

/// The whole `materialize` command: tree into the cache, then into `out`.
pub fn materialize(
    store: &Store,
    artifact: &Artifact,
    sources: &[Source],
    opts: &Options,
    out: &Path,
    link: Link,
) -> Result<Outcome> {
    // Refuse a non-empty --out before any download (materialize checks it again right before
    // writing, which costs one more read_dir on an empty directory).
    materialize::check_output(out)?;
    materialize::check_outside_cache(out, store.root())?;
    let mut outcome = ensure_tree(store, artifact, sources, opts)?;
    outcome.linked = materialize::materialize(&outcome.tree, out, link)?;
    Ok(outcome)
}

/// `extract`: verify a local archive and unpack it to `out`, with no cache and no network.
/// With no size (Buck2's download_file already checked it, or upstream states none) the
/// sha256 alone verifies: the file is already on disk, so no cap applies.
pub fn extract_local(archive: &Path, artifact: &Artifact, out: &Path) -> Result<()> {
    materialize::check_output(out)?;
    extract::Limits::from_env()?;
    // Hashed from the file as opened (non-blocking, regular files only), not reopened.
    let mut file = extract::open_archive(archive)?;
    let mut hashed = HashingWriter::new(std::io::sink(), u64::MAX);
    std::io::copy(&mut file, &mut hashed).ctx("read", archive)?;
    let (sha, size) = hashed.into_digest();
    let expected = &artifact.expected;
    let mismatch = |what: &str, want: String, got: String| Error::Verification {
        what: format!("{what} of `{}`", archive.display()),
        expected: want,
        actual: got,
        hint: "the archive is not the pinned one; download it again".into(),
    };
    if let Some(want) = expected.size.filter(|want| *want != size) {
        return Err(mismatch(
            "size",
            format!("{want} bytes"),
            format!("{size} bytes"),
        ));
    }
    if sha != expected.sha256 {
        return Err(mismatch(
            "sha256",
            expected.sha256.to_string(),
            sha.to_string(),
        ));
    }
    let staging = materialize::staging_path(out)?;
    std::fs::create_dir(&staging).ctx("create", &staging)?;
    if let Err(e) = extract::extract(archive, &artifact.layout, &staging) {
        remove_tree(&staging);
        return Err(e);
    }
    materialize::promote(&staging, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::extract::Format;

    fn artifact(size: Option<u64>) -> Artifact {
        Artifact {
            expected: Expected {
                sha256: Sha256::of_bytes(b"x"),
                size,
            },
            layout: Layout {
                format: Format::Zip,
                strip_prefix: None,
                executables: vec!["bin/protoc".into()],
            },
        }
    }

    #[test]
    fn an_unknown_size_has_its_own_deterministic_tree_key() {
        let none = artifact(None).tree_key();
        assert_eq!(none, artifact(None).tree_key());
        for size in [0, 1, 123, u64::MAX] {
            assert_ne!(none, artifact(Some(size)).tree_key(), "{size}");
        }
        // A sized pin keeps the key it had before sizes became optional.
        let old = format!(
            "protoreg-tree-v1\n{}\n123\nzip\n\nbin/protoc\n",
            Sha256::of_bytes(b"x")
        );
        assert_eq!(
            artifact(Some(123)).tree_key(),
            Sha256::of_bytes(old.as_bytes())
        );
    }
}
