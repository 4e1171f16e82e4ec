//! What the cache holds: each entry (a blob, an extracted tree, debris in `tmp/`) with its
//! size on disk and when it was last used (the hit path touches an entry's mtime). Used by
//! `cleanup` to choose, by `health` and `metrics` to report usage.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::store::Store;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Blob,
    Tree,
    /// An unfinished download or extraction (a crash, or one in progress).
    Temp,
}

#[derive(Debug, Clone)]
pub struct Entry {
    pub path: PathBuf,
    pub kind: Kind,
    pub bytes: u64,
    pub last_used: SystemTime,
}

/// Every entry of the cache (unreadable parts are skipped: this only reports and chooses).
pub fn entries(store: &Store) -> Vec<Entry> {
    let mut out = Vec::new();
    // blobs-v1/sha256/<2 hex>/<64 hex>
    let blobs = dir(&store.blobs_dir())
        .into_iter()
        .find(|p| p.ends_with("sha256"))
        .map(|p| dir(&p))
        .unwrap_or_default();
    for fan in blobs {
        for blob in dir(&fan) {
            if let Ok(m) = fs::symlink_metadata(&blob) {
                out.push(Entry {
                    kind: Kind::Blob,
                    bytes: m.len(),
                    last_used: m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    path: blob,
                });
            }
        }
    }
    // trees-v1/<2 hex>/<64 hex>/: the directory's own mtime is the last use.
    for fan in dir(&store.trees_dir()) {
        for tree in dir(&fan) {
            if let Ok(m) = fs::symlink_metadata(&tree) {
                out.push(Entry {
                    kind: Kind::Tree,
                    bytes: tree_bytes(&tree),
                    last_used: m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    path: tree,
                });
            }
        }
    }
    for tmp in dir(&store.tmp_dir()) {
        if let Ok(m) = fs::symlink_metadata(&tmp) {
            out.push(Entry {
                kind: Kind::Temp,
                bytes: if m.is_dir() {
                    tree_bytes(&tmp)
                } else {
                    m.len()
                },
                last_used: m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                path: tmp,
            });
        }
    }
    out
}

/// Bytes held by the cache's entries.
pub fn usage(store: &Store) -> u64 {
    entries(store).iter().map(|e| e.bytes).sum()
}

/// The entries of `path` when it is a real directory. A symlink in the cache's layout was
/// planted: it is not followed, so nothing outside the cache is ever listed (and cleaned).
fn dir(path: &Path) -> Vec<PathBuf> {
    if !fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
        return vec![];
    }
    match fs::read_dir(path) {
        Ok(rd) => {
            let mut v: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
            v.sort();
            v
        }
        Err(_) => vec![],
    }
}

/// Apparent size of the regular files under `root` (symlinks not followed).
pub fn tree_bytes(root: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![root.to_path_buf()];
    while let Some(p) = stack.pop() {
        let Ok(m) = fs::symlink_metadata(&p) else {
            continue;
        };
        if m.is_dir() {
            stack.extend(dir(&p));
        } else if m.is_file() {
            total += m.len();
        }
    }
    total
}
