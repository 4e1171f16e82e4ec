//! What the cache holds: each entry (a blob, an extracted tree, debris in `tmp/`) with its
//! size on disk and when it was last used (the hit path touches an entry's mtime). Used by
//! `cleanup` to choose, by `health` and `metrics` to report usage. Also the trees' manifests
//! (written at install, checked by `protoreg cache verify`) and that check.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::error::{IoContext, Result};
use crate::pipeline::store::{manifest_for, Store};
use crate::pipeline::verify::{hash_file, Sha256};

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
    // trees-v1/<2 hex>/<64 hex>/: the directory's own mtime is the last use. Its manifest
    // (<64 hex>.manifest) counts with it; a manifest without its tree is an entry of its own
    // (its tree was removed), so cleanup collects it.
    for fan in dir(&store.trees_dir()) {
        for tree in dir(&fan) {
            if let Some(of) = manifest_tree(&tree) {
                if fs::symlink_metadata(&of).is_ok() {
                    continue;
                }
            }
            if let Ok(m) = fs::symlink_metadata(&tree) {
                let manifest = fs::symlink_metadata(manifest_for(&tree)).map_or(0, |m| m.len());
                out.push(Entry {
                    kind: Kind::Tree,
                    bytes: tree_bytes(&tree) + if m.is_dir() { manifest } else { 0 },
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

/// The tree a manifest path belongs to (`<tree>.manifest`), if `path` names a manifest.
pub fn manifest_tree(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let tree = name.strip_suffix(".manifest")?;
    Some(path.with_file_name(tree))
}

const MANIFEST_HEADER: &str = "protoreg-tree-manifest-v1";

/// One path of a tree as recorded: `f` file (mode, size, sha256), `d` directory (mode), `l`
/// symlink (target).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    File {
        mode: u32,
        size: u64,
        sha256: String,
    },
    Dir {
        mode: u32,
    },
    Link {
        target: Vec<u8>,
    },
}

/// A path or link target as one word: printable ASCII but `%` as is, every other byte
/// (space, control, non-UTF-8) as `%XX`.
fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        if b.is_ascii_graphic() && b != b'%' {
            s.push(b as char);
        } else {
            s.push_str(&format!("%{b:02x}"));
        }
    }
    s
}

fn unescape(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len());
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// What is in `root` now: every path below it (relative, as bytes) with its item. Symlinks
/// are recorded, never followed; files are hashed (streamed), the largest first, on up to four
/// threads: a tool tree is a few big binaries, and this runs on the cold path at install.
fn scan(root: &Path, prehashed: &Prehashed) -> Result<BTreeMap<Vec<u8>, Item>> {
    let mut items = BTreeMap::new();
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in fs::read_dir(&d).ctx("read directory", &d)? {
            let path = entry.ctx("read directory", &d)?.path();
            let meta = fs::symlink_metadata(&path).ctx("inspect", &path)?;
            let rel = path
                .strip_prefix(root)
                .map(|r| r.as_os_str().as_encoded_bytes().to_vec())
                .unwrap_or_default();
            let mode = crate::sys::mode(&meta);
            let item = if meta.file_type().is_symlink() {
                let target = fs::read_link(&path).ctx("read symlink", &path)?;
                Item::Link {
                    target: target.as_os_str().as_encoded_bytes().to_vec(),
                }
            } else if meta.is_dir() {
                stack.push(path.clone());
                Item::Dir { mode }
            } else if meta.is_file() {
                match prehashed.get(&path) {
                    Some((size, secs, nanos, sha))
                        if *size == meta.len() && Some((*secs, *nanos)) == mtime(&meta) =>
                    {
                        Item::File {
                            mode,
                            size: *size,
                            sha256: sha.clone(),
                        }
                    }
                    _ => {
                        files.push((meta.len(), path, rel, mode));
                        continue;
                    }
                }
            } else {
                // A fifo, a socket, a device: never part of a tree protoreg made.
                Item::Link {
                    target: b"\0special file".to_vec(),
                }
            };
            items.insert(rel, item);
        }
    }
    for (rel, item) in hash_files(files)? {
        items.insert(rel, item);
    }
    Ok(items)
}

type FileToHash = (u64, PathBuf, Vec<u8>, u32);

fn hash_files(mut files: Vec<FileToHash>) -> Result<Vec<(Vec<u8>, Item)>> {
    let done = std::sync::Mutex::new(Vec::with_capacity(files.len()));
    crate::pipeline::spread::largest_first(
        &mut files,
        |f| f.0,
        8 << 20,
        |(_, path, rel, mode)| {
            let (sha, size) = hash_file(path)?;
            let item = Item::File {
                mode: *mode,
                size,
                sha256: sha.hex().to_string(),
            };
            done.lock()
                .unwrap_or_else(|e| e.into_inner())
                .push((rel.clone(), item));
            Ok(())
        },
    )?;
    Ok(done.into_inner().unwrap_or_else(|e| e.into_inner()))
}

/// The manifest of the tree at `root` (its top directory excluded: its mode changes at
/// install): a header line, then one line per path, sorted:
/// `f MODE SIZE SHA256 PATH`, `d MODE - - PATH`, `l - - TARGET PATH`, MODE in octal, PATH and
/// TARGET escaped (`%XX` for any byte that is not printable ASCII, and for `%`).
pub fn manifest_of(root: &Path) -> Result<String> {
    manifest_of_with(root, &Prehashed::new())
}

/// A file's modification time (seconds and nanoseconds since 1970), or None where the
/// system cannot tell: then a file hashed during extraction is simply hashed again.
fn mtime(meta: &fs::Metadata) -> Option<(i64, i64)> {
    let since = meta
        .modified()
        .ok()?
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()?;
    Some((
        i64::try_from(since.as_secs()).ok()?,
        i64::from(since.subsec_nanos()),
    ))
}

/// Files hashed while their tree was still being extracted: path -> (size, modification time
/// in seconds and nanoseconds, sha256), as each was when it was hashed.
pub type Prehashed = std::collections::HashMap<PathBuf, (u64, i64, i64, String)>;

/// Hashes files on a thread of its own as an extraction finishes them: a cold materialize's
/// inflating keeps one core busy while the other has little to do, so the manifest's hashing
/// mostly happens alongside it instead of after it.
pub struct PreHasher {
    tx: Option<std::sync::mpsc::Sender<PathBuf>>,
    handle: std::thread::JoinHandle<Prehashed>,
}

impl PreHasher {
    pub fn start() -> PreHasher {
        let (tx, rx) = std::sync::mpsc::channel::<PathBuf>();
        let handle = std::thread::spawn(move || {
            let mut done = Prehashed::new();
            for path in rx {
                // Taken before hashing: a change while hashing moves the mtime past it, and
                // `manifest_of_with` then hashes the file again.
                let Ok(meta) = fs::symlink_metadata(&path) else {
                    continue;
                };
                if !meta.is_file() {
                    continue;
                }
                if let Ok((sha, size)) = hash_file(&path) {
                    if size == meta.len() {
                        if let Some((secs, nanos)) = mtime(&meta) {
                            done.insert(path, (size, secs, nanos, sha.hex().to_string()));
                        }
                    }
                }
            }
            done
        });
        PreHasher {
            tx: Some(tx),
            handle,
        }
    }

    pub fn sender(&self) -> Option<std::sync::mpsc::Sender<PathBuf>> {
        self.tx.clone()
    }

    /// What was hashed; waits for the files already sent.
    pub fn finish(mut self) -> Prehashed {
        drop(self.tx.take());
        self.handle.join().unwrap_or_default()
    }
}

/// [`manifest_of`], taking the hash of each file `prehashed` holds unchanged (same size and
/// modification time) instead of reading it again.
pub fn manifest_of_with(root: &Path, prehashed: &Prehashed) -> Result<String> {
    let mut text = format!("{MANIFEST_HEADER}\n");
    for (path, item) in scan(root, prehashed)? {
        let path = escape(&path);
        let line = match item {
            Item::File { mode, size, sha256 } => format!("f {mode:04o} {size} {sha256} {path}\n"),
            Item::Dir { mode } => format!("d {mode:04o} - - {path}\n"),
            Item::Link { target } => format!("l - - {} {path}\n", escape(&target)),
        };
        text.push_str(&line);
    }
    Ok(text)
}

fn parse_manifest(text: &str) -> Option<BTreeMap<Vec<u8>, Item>> {
    let mut lines = text.lines();
    if lines.next()? != MANIFEST_HEADER {
        return None;
    }
    let mut items = BTreeMap::new();
    for line in lines {
        let f: Vec<&str> = line.split(' ').collect();
        let [kind, mode, size, digest, path] = f.as_slice() else {
            return None;
        };
        let mode = || u32::from_str_radix(mode, 8).ok();
        let item = match *kind {
            "f" => Item::File {
                mode: mode()?,
                size: size.parse().ok()?,
                sha256: digest.parse::<Sha256>().ok()?.hex().to_string(),
            },
            "d" => Item::Dir { mode: mode()? },
            "l" => Item::Link {
                target: unescape(digest)?,
            },
            _ => return None,
        };
        items.insert(unescape(path)?, item);
    }
    Some(items)
}

/// What is wrong with a cache entry, in words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    /// `blob`, `tree`, `manifest` or `layout`.
    pub kind: &'static str,
    pub what: String,
    /// Removing `path` (and a tree's manifest) repairs it.
    pub remove: Vec<PathBuf>,
}

/// Check a tree against the manifest recorded at its install: every path there, of the same
/// type, mode, size and sha256 (or link target), and nothing else. Each difference in words.
/// `Ok(None)` when the tree has no manifest (installed by an older protoreg: unverifiable).
pub fn check_tree(tree: &Path) -> Result<Option<Vec<String>>> {
    let manifest = manifest_for(tree);
    let text = match fs::symlink_metadata(&manifest) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(crate::error::Error::io("inspect", &manifest, e)),
        Ok(m) if !m.is_file() => {
            return Ok(Some(vec![format!(
                "its manifest `{}` is not a regular file",
                manifest.display()
            )]))
        }
        Ok(_) => fs::read(&manifest).ctx("read", &manifest)?,
    };
    let Some(recorded) = std::str::from_utf8(&text).ok().and_then(parse_manifest) else {
        return Ok(Some(vec![format!(
            "its manifest `{}` is unreadable (not a protoreg tree manifest)",
            manifest.display()
        )]));
    };
    let actual = scan(tree, &Prehashed::new())?;
    let mut problems = Vec::new();
    let show = |p: &[u8]| escape(p);
    for (path, want) in &recorded {
        let name = show(path);
        let Some(have) = actual.get(path) else {
            problems.push(format!("`{name}` is missing"));
            continue;
        };
        match (want, have) {
            (
                Item::File { mode, size, sha256 },
                Item::File {
                    mode: m2,
                    size: s2,
                    sha256: h2,
                },
            ) => {
                if size != s2 {
                    problems.push(format!(
                        "`{name}` changed size: recorded {size} bytes, now {s2}"
                    ));
                } else if sha256 != h2 {
                    problems.push(format!(
                        "`{name}` changed content: recorded sha256 {sha256}, now {h2}"
                    ));
                }
                if mode != m2 {
                    problems.push(format!(
                        "`{name}` changed mode: recorded {mode:04o}, now {m2:04o}"
                    ));
                }
            }
            (Item::Dir { mode }, Item::Dir { mode: m2 }) if mode != m2 => problems.push(format!(
                "`{name}` changed mode: recorded {mode:04o}, now {m2:04o}"
            )),
            (Item::Dir { .. }, Item::Dir { .. }) => {}
            (Item::Link { target }, Item::Link { target: t2 }) if target != t2 => {
                problems.push(format!(
                    "`{name}` changed target: recorded `{}`, now `{}`",
                    show(target),
                    show(t2)
                ))
            }
            (Item::Link { .. }, Item::Link { .. }) => {}
            (want, have) => problems.push(format!(
                "`{name}` changed type: recorded a {}, now a {}",
                kind_word(want),
                kind_word(have)
            )),
        }
    }
    for path in actual.keys().filter(|p| !recorded.contains_key(*p)) {
        problems.push(format!("`{}` was added (not in the manifest)", show(path)));
    }
    Ok(Some(problems))
}

fn kind_word(item: &Item) -> &'static str {
    match item {
        Item::File { .. } => "file",
        Item::Dir { .. } => "directory",
        Item::Link { .. } => "symlink",
    }
}

/// The result of checking the whole cache.
#[derive(Debug, Default)]
pub struct Report {
    pub blobs: usize,
    pub trees: usize,
    /// What is wrong: removing it (`--repair`) makes the next materialize fetch or extract
    /// it again.
    pub problems: Vec<Problem>,
    /// Trees with no manifest (installed before manifests existed): not known to be wrong,
    /// but not verifiable either.
    pub unverifiable: Vec<PathBuf>,
    /// Manifests whose tree is gone (cleanup removed the tree): harmless.
    pub orphans: Vec<PathBuf>,
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn layout_problem(path: &Path, what: &str) -> Problem {
    Problem {
        path: path.to_path_buf(),
        kind: "layout",
        what: what.to_string(),
        remove: vec![path.to_path_buf()],
    }
}

/// A directory of the layout, if it is a real one; a symlink or a file there is a problem.
fn layout_dir(path: &Path, report: &mut Report) -> Vec<PathBuf> {
    match fs::symlink_metadata(path) {
        Err(_) => vec![],
        Ok(m) if m.file_type().is_symlink() => {
            report.problems.push(layout_problem(
                path,
                "is a symbolic link (planted: entries are never read through one)",
            ));
            vec![]
        }
        Ok(m) if !m.is_dir() => {
            report
                .problems
                .push(layout_problem(path, "is not a directory"));
            vec![]
        }
        Ok(_) => dir(path),
    }
}

/// Re-hash every blob (its name is its sha256) and check every tree against its manifest.
/// Reads only: nothing in the cache is changed.
pub fn verify(store: &Store) -> Result<Report> {
    let mut report = Report::default();
    let blobs = store.blobs_dir();
    for sub in layout_dir(&blobs, &mut report) {
        if sub.file_name().and_then(|n| n.to_str()) != Some("sha256") {
            report
                .problems
                .push(layout_problem(&sub, "is not part of the cache's layout"));
            continue;
        }
        for fan in layout_dir(&sub, &mut report) {
            let fan_name = fan.file_name().and_then(|n| n.to_str()).unwrap_or("");
            for blob in layout_dir(&fan, &mut report) {
                let name = blob.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if !(is_hex64(name) && name.starts_with(fan_name) && fan_name.len() == 2) {
                    report.problems.push(layout_problem(
                        &blob,
                        "is not a blob (a name that is not its sha256)",
                    ));
                    continue;
                }
                report.blobs += 1;
                let what = match fs::symlink_metadata(&blob) {
                    Ok(m) if m.file_type().is_symlink() => {
                        Some("is a symbolic link (planted: never served)".to_string())
                    }
                    Ok(m) if !m.is_file() => Some("is not a regular file".to_string()),
                    Ok(_) => match hash_file(&blob) {
                        Ok((sha, _)) if sha.hex() == name => None,
                        Ok((sha, size)) => Some(format!(
                            "does not match its name: {size} bytes with sha256 {sha} \
                             (truncated, replaced or torn)"
                        )),
                        Err(e) => Some(format!("cannot be read: {e}")),
                    },
                    Err(e) => Some(format!("cannot be inspected: {e}")),
                };
                if let Some(what) = what {
                    report.problems.push(Problem {
                        path: blob.clone(),
                        kind: "blob",
                        what,
                        remove: vec![blob],
                    });
                }
            }
        }
    }
    for fan in layout_dir(&store.trees_dir(), &mut report) {
        for entry in layout_dir(&fan, &mut report) {
            let name = entry.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if let Some(tree) = manifest_tree(&entry) {
                let tree_name = tree.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if !is_hex64(tree_name) {
                    report
                        .problems
                        .push(layout_problem(&entry, "is not part of the cache's layout"));
                } else if fs::symlink_metadata(&tree).is_err() {
                    report.orphans.push(entry);
                }
                continue;
            }
            if !is_hex64(name) {
                report
                    .problems
                    .push(layout_problem(&entry, "is not part of the cache's layout"));
                continue;
            }
            report.trees += 1;
            let manifest = manifest_for(&entry);
            let remove = vec![entry.clone(), manifest];
            let problem = |what: String| Problem {
                path: entry.clone(),
                kind: "tree",
                what,
                remove: remove.clone(),
            };
            match fs::symlink_metadata(&entry) {
                Ok(m) if m.file_type().is_symlink() => report
                    .problems
                    .push(problem("is a symbolic link (planted: never served)".into())),
                Ok(m) if !m.is_dir() => report.problems.push(problem("is not a directory".into())),
                Err(e) => report
                    .problems
                    .push(problem(format!("cannot be inspected: {e}"))),
                Ok(_) => match check_tree(&entry) {
                    Ok(None) => report.unverifiable.push(entry.clone()),
                    Ok(Some(found)) => {
                        for what in found {
                            report.problems.push(problem(what));
                        }
                    }
                    Err(e) => report
                        .problems
                        .push(problem(format!("cannot be read: {e}"))),
                },
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_hashed_during_extraction_are_used_only_while_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("tree");
        fs::create_dir_all(t.join("bin")).unwrap();
        fs::write(t.join("bin/tool"), b"first contents").unwrap();
        fs::write(t.join("notes"), b"never sent").unwrap();
        let hasher = PreHasher::start();
        hasher.sender().unwrap().send(t.join("bin/tool")).unwrap();
        let pre = hasher.finish();
        assert_eq!(pre.len(), 1);
        assert_eq!(
            manifest_of_with(&t, &pre).unwrap(),
            manifest_of(&t).unwrap()
        );

        // Same size, other bytes, another mtime: hashed again, not taken from `pre`.
        fs::write(t.join("bin/tool"), b"other contents").unwrap();
        let later = std::time::SystemTime::now() + std::time::Duration::from_secs(5);
        fs::File::options()
            .write(true)
            .open(t.join("bin/tool"))
            .unwrap()
            .set_modified(later)
            .unwrap();
        let fresh = manifest_of(&t).unwrap();
        assert_eq!(manifest_of_with(&t, &pre).unwrap(), fresh);
        assert!(fresh.contains(&Sha256::of_bytes(b"other contents").hex().to_string()));
    }

    #[test]
    fn a_manifest_round_trips_odd_names_and_finds_each_change() {
        use std::os::unix::ffi::OsStrExt;
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("tree");
        fs::create_dir_all(t.join("bin")).unwrap();
        fs::write(t.join("bin/tool"), b"binary").unwrap();
        fs::write(t.join("a b%c"), b"x").unwrap();
        let odd = std::ffi::OsStr::from_bytes(b"caf\xe9\n");
        fs::write(t.join(odd), b"y").unwrap();
        std::os::unix::fs::symlink("bin/tool", t.join("link")).unwrap();
        let text = manifest_of(&t).unwrap();
        assert!(
            text.lines()
                .all(|l| l.split(' ').count() == 5 || l == MANIFEST_HEADER),
            "{text}"
        );
        assert_eq!(
            parse_manifest(&text).unwrap(),
            scan(&t, &Prehashed::new()).unwrap()
        );
        fs::write(manifest_for(&t), &text).unwrap();
        assert_eq!(check_tree(&t).unwrap(), Some(vec![]));

        fs::write(t.join("bin/tool"), b"binarY").unwrap();
        fs::remove_file(t.join("a b%c")).unwrap();
        fs::write(t.join("extra"), b"").unwrap();
        fs::remove_file(t.join("link")).unwrap();
        std::os::unix::fs::symlink("/etc/passwd", t.join("link")).unwrap();
        let found = check_tree(&t).unwrap().unwrap();
        let all = found.join("\n");
        assert_eq!(found.len(), 4, "{all}");
        for needle in [
            "`bin/tool` changed content",
            "`a%20b%25c` is missing",
            "`extra` was added",
            "`link` changed target",
        ] {
            assert!(all.contains(needle), "{needle}: {all}");
        }
        fs::remove_file(manifest_for(&t)).unwrap();
        assert_eq!(check_tree(&t).unwrap(), None);
    }
}
