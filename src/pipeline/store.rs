//! The content-addressed cache.
//!
//! ```text
//! <cache>/CACHEDIR.TAG
//! <cache>/blobs-v1/sha256/<2 hex>/<64 hex>   verified artifacts, read-only
//! <cache>/trees-v1/<2 hex>/<64 hex>/          extracted trees, read-only, keyed by the pin
//!                                             and the extraction parameters (tree_key)
//! <cache>/locks/<64 hex>.lock                  one advisory lock per entry being produced
//! <cache>/tmp/                                 downloads and extractions in progress
//! ```
//!
//! An entry only ever appears by rename of a complete, verified file or directory, so an
//! entry that exists is complete: the hit path is one `open` (DotSlash's invariant). A crash
//! leaves debris only under `tmp/`, which `protoreg cleanup` removes.
//!
//! A tree is made read-only before it is installed, except its top directory: moving a
//! directory to a new parent rewrites its `..`, which needs write permission on the directory
//! itself (only root is exempt). The top directory loses its write bit right after the
//! rename; everything a reader can see through the entry was read-only and complete before it
//! existed.
//!
//! Each tree has a manifest beside it, `trees-v1/<2 hex>/<key>.manifest` (every path, type,
//! mode, size and sha256 in it, see [`crate::pipeline::cache_scan::manifest_of`]), installed just
//! before the tree, so `protoreg cache verify` can tell a changed tree from a sound one. A
//! blob is fsynced (file, then its directory) before it is installed, and re-verified (size
//! and sha256) before a new tree is made from it. Entries are real files and directories:
//! a symlink anywhere in an entry's path is never followed, on the hit path or any other.
//!
//! Every process that writes under `tmp/` holds an advisory lock, `locks/tmp-<owner>.lock`,
//! for as long as it lives, and names its `tmp/` entries `<what>.<owner>.<n>`: `cleanup`
//! leaves an entry whose owner's lock is held (see [`Store::temp_entry_locked`]).

use std::fs::{self, File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::error::{Error, IoContext, Result};
use crate::pipeline::verify::Sha256;

pub const ENV_CACHE_DIR: &str = "PROTOREG_CACHE_DIR";

const CACHEDIR_TAG: &str = "Signature: 8a477f597d28d172789f06886806bc55\n\
# This file is a cache directory tag created by protoreg (buck2-protobuf).\n\
# For information about cache directory tags see https://bford.info/cachedir/\n";

pub struct Store {
    root: PathBuf,
}

/// Where the cache lives: flag, then `PROTOREG_CACHE_DIR`, then registry.yaml's
/// `cache.local_cache_dir`, then the user cache directory.
pub fn cache_dir(flag: Option<&Path>, from_config: Option<&Path>) -> Result<PathBuf> {
    if let Some(p) = flag {
        return Ok(p.to_path_buf());
    }
    if let Some(p) = std::env::var_os(ENV_CACHE_DIR).filter(|v| !v.is_empty()) {
        return Ok(PathBuf::from(p));
    }
    if let Some(p) = from_config {
        return Ok(p.to_path_buf());
    }
    // The OS's user cache directory: $XDG_CACHE_HOME or ~/.cache on Linux,
    // ~/Library/Caches on macOS, %LOCALAPPDATA% on Windows.
    let base = dirs::cache_dir().ok_or_else(|| {
        Error::input(
            "cannot find the user cache directory (on Linux: neither XDG_CACHE_HOME nor HOME is set)",
            format!("pass --cache-dir or set {ENV_CACHE_DIR}"),
        )
    })?;
    Ok(base.join("buck2-protobuf"))
}

impl Store {
    /// No I/O: the hit path must stay one `open`.
    pub fn new(root: PathBuf) -> Store {
        Store { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn blob_path(&self, sha256: &Sha256) -> PathBuf {
        let hex = sha256.hex();
        self.root.join("blobs-v1/sha256").join(&hex[..2]).join(hex)
    }

    pub fn tree_path(&self, key: &Sha256) -> PathBuf {
        let hex = key.hex();
        self.root.join("trees-v1").join(&hex[..2]).join(hex)
    }

    /// The manifest of the tree `key`, beside it.
    pub fn manifest_path(&self, key: &Sha256) -> PathBuf {
        manifest_for(&self.tree_path(key))
    }

    /// The cache's own lock: every build holds it shared, `cleanup` and `cache verify
    /// --repair` exclusively.
    pub fn cache_lock_path(&self) -> PathBuf {
        self.root.join("locks").join("cache.lock")
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs-v1")
    }
    pub fn trees_dir(&self) -> PathBuf {
        self.root.join("trees-v1")
    }
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// A complete entry, if present; marks it used (mtime) so cleanup sees the use.
    pub fn lookup(&self, path: &Path) -> Option<PathBuf> {
        // Entries are real files and directories, never links: a link here, or in the
        // layout above it (`trees-v1`, its fan directory), was planted.
        if !self.no_link_below_root(path) {
            return None;
        }
        let f = crate::sys::open_to_touch(path).ok()?;
        // Best effort: a read-only cache (shared, mounted) still serves hits.
        let _ = f.set_modified(SystemTime::now());
        Some(path.to_path_buf())
    }

    /// Is every component of `path` below the root (the entry included) a real file or
    /// directory, not a symlink? (The root itself may be a link: the user chose it.) False
    /// for a missing entry too.
    fn no_link_below_root(&self, path: &Path) -> bool {
        let Ok(rel) = path.strip_prefix(&self.root) else {
            return false;
        };
        let mut at = self.root.clone();
        for c in rel.components() {
            at.push(c);
            match fs::symlink_metadata(&at) {
                Ok(m) if !m.file_type().is_symlink() => {}
                _ => return false,
            }
        }
        true
    }

    /// The blob of `expected`, re-verified (size when pinned, and sha256, streamed) before
    /// anything is made from it, with its size. A blob that no longer matches its pin (bytes
    /// replaced, truncated, a torn write) is moved out of the cache and reported on stderr,
    /// and `None` returned: it is fetched again like a missing one. Call with the entry's lock
    /// held.
    pub fn verified_blob(
        &self,
        expected: &crate::pipeline::verify::Expected,
    ) -> Option<(PathBuf, u64)> {
        let path = self.lookup(&self.blob_path(&expected.sha256))?;
        let problem = match crate::pipeline::verify::hash_file(&path) {
            Ok((sha, size))
                if sha == expected.sha256 && expected.size.is_none_or(|n| n == size) =>
            {
                return Some((path, size));
            }
            Ok((sha, size)) => format!("it holds {size} bytes with sha256 {sha}"),
            Err(e) => e.to_string(),
        };
        eprintln!(
            "warning: the cached blob `{}` does not match its pin ({problem}); it is removed \
             and fetched again (`protoreg cache verify` checks the whole cache)",
            path.display()
        );
        self.evict(&path);
        None
    }

    /// Move an entry (a blob, a tree, a manifest, a planted link) out of the cache, then
    /// delete it: it stops being an entry at the rename. Best effort.
    pub fn evict(&self, path: &Path) {
        if fs::symlink_metadata(path).is_ok_and(|m| m.is_dir()) {
            let _ = writable_dir(path);
        }
        let doomed = self.temp_path("doomed");
        if fs::create_dir_all(self.tmp_dir()).is_ok() && fs::rename(path, &doomed).is_ok() {
            remove_tree(&doomed);
        } else {
            remove_tree(path);
        }
    }

    /// Create the layout on first use. The tag comes first: it is what marks the directory
    /// as a protoreg cache, the only kind of directory `cleanup` removes anything from.
    pub fn init(&self) -> Result<()> {
        fs::create_dir_all(&self.root).ctx("create the cache directory", &self.root)?;
        let tag = self.root.join("CACHEDIR.TAG");
        if fs::symlink_metadata(&tag).is_err() {
            write_atomic(&tag, CACHEDIR_TAG.as_bytes())?;
        }
        for d in [self.tmp_dir(), self.root.join("locks")] {
            fs::create_dir_all(&d).ctx("create the cache directory", &d)?;
        }
        Ok(())
    }

    /// Is the root marked as a protoreg cache: a `CACHEDIR.TAG` (a regular file) that
    /// protoreg wrote? Another tool's tag (Cargo's `target/` has one, and a `tmp/`) does not
    /// count.
    pub fn is_marked(&self) -> bool {
        use std::io::Read;
        let tag = self.root.join("CACHEDIR.TAG");
        match fs::symlink_metadata(&tag) {
            Ok(m) if m.is_file() => {}
            _ => return false,
        }
        let mut head = Vec::new();
        let read = File::open(&tag).and_then(|f| f.take(4096).read_to_end(&mut head));
        let mut want = CACHEDIR_TAG.lines();
        let mut have = head.split(|b| *b == b'\n');
        read.is_ok()
            && want.next().map(str::as_bytes) == have.next()
            && want.next().map(str::as_bytes) == have.next()
    }

    /// Take the per-entry lock, waiting for another process that holds it.
    pub fn lock(&self, key: &Sha256) -> Result<File> {
        let path = self.root.join("locks").join(format!("{}.lock", key.hex()));
        let seconds = crate::settings::lock_timeout()?.as_secs();
        lock_exclusive(open_lock_file(&path)?, &path, seconds)
    }

    /// A fresh, unique path under `tmp/` (not created), named `<what>.<owner>.<n>` after
    /// this process's `tmp/` lock (claimed on first use), so `cleanup` can tell it is alive.
    /// `what` is a plain word. Without a lock (a read-only `locks/`), the name is the older
    /// `<what>-<pid>-<n>-<nanos>` and only age protects the entry.
    pub fn temp_path(&self, what: &str) -> PathBuf {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        match self.tmp_owner() {
            Some(owner) => {
                let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.tmp_dir().join(format!("{what}.{owner}.{n}"))
            }
            None => self.tmp_dir().join(unique_name(what)),
        }
    }

    fn owner_lock_path(&self, owner: &str) -> PathBuf {
        self.root.join("locks").join(format!("tmp-{owner}.lock"))
    }

    /// This process's owner id for this cache's `tmp/`, its lock held until the process
    /// exits (the kernel releases it when the process dies, however it dies).
    fn tmp_owner(&self) -> Option<String> {
        type Owners = Vec<(PathBuf, Option<(String, File)>)>;
        static OWNERS: std::sync::Mutex<Owners> = std::sync::Mutex::new(Vec::new());
        let mut owners = OWNERS.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, claimed)) = owners.iter().find(|(root, _)| *root == self.root) {
            return claimed.as_ref().map(|(id, _)| id.clone());
        }
        let claimed = self.claim_owner();
        let id = claimed.as_ref().map(|(id, _)| id.clone());
        owners.push((self.root.clone(), claimed));
        id
    }

    fn claim_owner(&self) -> Option<(String, File)> {
        for _ in 0..5 {
            let nanos = SystemTime::now()
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(0);
            let id = format!("{}-{nanos}", std::process::id());
            let path = self.owner_lock_path(&id);
            let file = open_lock_file(&path).ok()?;
            if file.try_lock().is_err() {
                continue; // cleanup is collecting it: it is about to be unlinked
            }
            // The lock counts only on the file the path names: cleanup may have unlinked a
            // dead-looking file between our create and our lock.
            let (Ok(ours), Ok(named)) = (file.metadata(), fs::metadata(&path)) else {
                continue;
            };
            if crate::sys::same_file(&ours, &named) {
                return Some((id, file));
            }
        }
        None
    }

    /// Is the `tmp/` entry `name` still being written by a live process? True when its
    /// owner's lock is held, or cannot be tested; false for a dead owner (its lock is free or
    /// gone) and for names without an owner.
    pub fn temp_entry_locked(&self, name: &str) -> bool {
        let Some(owner) = temp_owner(name) else {
            return false;
        };
        let path = self.owner_lock_path(owner);
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return false,
            Err(_) => return true,
        };
        file.try_lock().is_err()
    }

    /// Remove the `tmp/` locks of processes that are gone (each taken first, so a live
    /// process's lock is never removed). For `cleanup`, which holds the cache exclusively.
    pub fn collect_dead_owner_locks(&self) {
        let dir = self.root.join("locks");
        let Ok(rd) = fs::read_dir(&dir) else { return };
        for e in rd.flatten() {
            let name = e.file_name();
            let name = name.to_string_lossy();
            if !(name.starts_with("tmp-") && name.ends_with(".lock")) {
                continue;
            }
            if let Ok(f) = File::open(e.path()) {
                if f.try_lock().is_ok() {
                    let _ = fs::remove_file(e.path());
                }
            }
        }
    }

    /// Move a verified temporary file into place as the blob `sha256`: synced to disk first,
    /// then its directory after the rename, so a power loss never leaves a torn blob under a
    /// name that claims its digest.
    pub fn install_blob(&self, tmp: &Path, sha256: &Sha256) -> Result<PathBuf> {
        let dest = self.blob_path(sha256);
        // Synced through a handle open for writing, before it is read-only: Windows flushes
        // only such a handle (FlushFileBuffers on a read-only one is "Access denied").
        File::options()
            .write(true)
            .open(tmp)
            .and_then(|f| f.sync_all())
            .ctx("sync to disk", tmp)?;
        set_mode(tmp, 0o444)?;
        self.install(tmp, &dest, false)?;
        if let Some(dir) = dest.parent() {
            crate::sys::sync_dir(dir).ctx("sync to disk", dir)?;
        }
        Ok(dest)
    }

    /// Make a finished tree read-only and move it into place.
    ///
    /// Its top directory keeps its owner's write bit until it is in place: renaming a
    /// directory into a new parent rewrites its `..`, which needs write permission on it.
    /// Everything below is read-only before the rename, so the entry is complete and
    /// read-only in content the instant it exists; its top directory becomes read-only just
    /// after (a process killed in between leaves a complete entry whose top directory is
    /// writable by its owner, nothing worse).
    pub fn install_tree(&self, tmp: &Path, key: &Sha256) -> Result<PathBuf> {
        self.install_tree_with(tmp, key, &crate::pipeline::cache_scan::Prehashed::new())
    }

    /// [`Store::install_tree`], with files already hashed during the extraction.
    pub fn install_tree_with(
        &self,
        tmp: &Path,
        key: &Sha256,
        prehashed: &crate::pipeline::cache_scan::Prehashed,
    ) -> Result<PathBuf> {
        let dest = self.tree_path(key);
        let prepared = make_read_only(tmp).and_then(|mode| {
            set_mode(tmp, mode | 0o200)?;
            Ok(mode)
        });
        // The manifest is taken from the finished, read-only tree and installed first: a tree
        // that exists always has the manifest it was installed with.
        let prepared = prepared.and_then(|mode| {
            let manifest = crate::pipeline::cache_scan::manifest_of_with(tmp, prehashed)?;
            self.install_manifest(&self.manifest_path(key), manifest.as_bytes())?;
            Ok(mode)
        });
        let mode = match prepared {
            Ok(mode) => mode,
            Err(e) => {
                remove_tree(tmp);
                return Err(e);
            }
        };
        if self.install(tmp, &dest, true)? {
            // Ours: drop the write bit the rename needed. Best effort (the entry is complete
            // either way); checked by mode, not trusted.
            if fs::symlink_metadata(&dest)
                .is_ok_and(|m| m.is_dir() && crate::sys::mode(&m) & 0o222 != 0)
            {
                let _ = set_mode(&dest, mode);
            }
        }
        Ok(dest)
    }
}

impl Store {
    /// Write a manifest in `tmp/`, then rename it to `dest`, replacing a stale one (of a tree
    /// removed since; the entry's lock is held, so no other process installs this tree).
    fn install_manifest(&self, dest: &Path, text: &[u8]) -> Result<()> {
        use std::io::Write;
        let tmp = self.temp_path("manifest");
        let written = File::create(&tmp).and_then(|mut f| {
            f.write_all(text)?;
            f.sync_all()
        });
        let result = written
            .ctx("write", &tmp)
            .and_then(|()| set_mode(&tmp, 0o444))
            .and_then(|()| {
                let parent = dest.parent().unwrap_or(dest);
                self.check_layout(parent)?;
                fs::create_dir_all(parent).ctx("create the cache directory", parent)?;
                self.clear_planted(dest)?;
                fs::rename(&tmp, dest).ctx("move into the cache", dest)
            });
        if result.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        result
    }

    /// Refuse to write below a symlink in the cache's layout (`trees-v1`, a fan directory):
    /// one there was planted, and following it would put an entry outside the cache.
    fn check_layout(&self, dir: &Path) -> Result<()> {
        let Ok(rel) = dir.strip_prefix(&self.root) else {
            return Ok(());
        };
        let mut at = self.root.clone();
        for c in rel.components() {
            at.push(c);
            if fs::symlink_metadata(&at).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(Error::input(
                    format!(
                        "`{}` in the cache is a symbolic link; protoreg never follows one there",
                        at.display()
                    ),
                    "remove it (`protoreg cache verify --repair` does), then run again",
                ));
            }
        }
        Ok(())
    }

    /// A symlink where an entry belongs was planted: it is removed (the entry's lock is held),
    /// never followed or served.
    fn clear_planted(&self, dest: &Path) -> Result<()> {
        match fs::symlink_metadata(dest) {
            Ok(m) if m.file_type().is_symlink() => {
                fs::remove_file(dest).ctx("remove the symbolic link planted at", dest)
            }
            _ => Ok(()),
        }
    }

    /// Rename without replacing; true when ours was installed. An existing destination means
    /// another process finished the same entry first: its content is identical by
    /// construction, so ours is dropped. But only a real entry of the right kind counts: a
    /// symlink (or a file where a tree belongs) was planted, and is replaced by ours.
    fn install(&self, tmp: &Path, dest: &Path, is_dir: bool) -> Result<bool> {
        let parent = dest.parent().unwrap_or(dest);
        let fail = |e: Error| {
            remove_tree(tmp);
            Err(e)
        };
        if let Err(e) = self.check_layout(parent) {
            return fail(e);
        }
        if let Err(e) = fs::create_dir_all(parent).ctx("create the cache directory", parent) {
            return fail(e);
        }
        for _ in 0..2 {
            match crate::sys::rename_noreplace(tmp, dest) {
                Ok(()) => return Ok(true),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists || dest.exists() => {
                    match fs::symlink_metadata(dest) {
                        Ok(m) if !m.file_type().is_symlink() && m.is_dir() == is_dir => {
                            remove_tree(tmp);
                            return Ok(false);
                        }
                        // Planted (a link, or the wrong kind): out of the cache, then ours.
                        Ok(_) => self.evict(dest),
                        Err(_) => {}
                    }
                }
                Err(e) => return fail(Error::io("move into the cache", dest, e)),
            }
        }
        fail(Error::io(
            "move into the cache",
            dest,
            io::Error::new(
                io::ErrorKind::AlreadyExists,
                "something that is not a cache entry keeps appearing there",
            ),
        ))
    }
}

/// The manifest path of a tree: `<tree>.manifest`, beside it.
pub fn manifest_for(tree: &Path) -> PathBuf {
    let mut name = tree.as_os_str().to_os_string();
    name.push(".manifest");
    PathBuf::from(name)
}

/// A `what` of a `tmp/` name: a plain word.
fn word(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// The owner in a `tmp/` name `<what>.<owner>.<n>` (owner: `<pid>-<nanos>`), if it has one.
pub fn temp_owner(name: &str) -> Option<&str> {
    let mut parts = name.rsplitn(3, '.');
    let (n, owner, what) = (parts.next()?, parts.next()?, parts.next()?);
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (pid, nanos) = owner.split_once('-')?;
    (word(what) && digits(n) && digits(pid) && digits(nanos)).then_some(owner)
}

/// Was `name` made by protoreg in `tmp/`: `<what>.<owner>.<n>` ([`Store::temp_path`]), or
/// an older protoreg's `<what>-<pid>-<n>-<nanos>` ([`unique_name`], 9-digit nanos)? Anything
/// else in `tmp/` is not protoreg's, and `cleanup` leaves it alone.
pub fn is_temp_name(name: &str) -> bool {
    if temp_owner(name).is_some() {
        return true;
    }
    // ...-<pid or counter>-<nanoseconds, always 9 digits>
    let parts: Vec<&str> = name.split('-').collect();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match parts.as_slice() {
        [what, .., before, nanos] => {
            word(what) && !digits(what) && digits(before) && nanos.len() == 9 && digits(nanos)
        }
        _ => false,
    }
}

/// Open a lock file, creating it and its directory.
pub fn open_lock_file(path: &Path) -> Result<File> {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).ctx("create the cache directory", dir)?;
    }
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .ctx("open the lock file", path)
}

/// Take `file`'s exclusive lock, polling with backoff for up to `seconds` while another
/// process holds it (the one wait loop of every cache lock: entries, cleanup, metrics).
pub fn lock_exclusive(file: File, path: &Path, seconds: u64) -> Result<File> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut pause = Duration::from_millis(5);
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(file),
            Err(TryLockError::WouldBlock) => {}
            Err(TryLockError::Error(e)) => return Err(Error::io("lock", path, e)),
        }
        if Instant::now() >= deadline {
            return Err(Error::LockTimeout {
                path: path.to_path_buf(),
                seconds,
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// A directory removed (whatever its modes) when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    /// A fresh directory under the system's temporary directory, named after `what`.
    pub fn new(what: &str) -> Result<Scratch> {
        let dir = std::env::temp_dir().join(unique_name(what));
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("create", &dir, e))?;
        Ok(Scratch(dir))
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        remove_tree(&self.0);
    }
}

/// A name no other process or thread uses: pid, a process-wide counter, and the clock (so
/// a reused pid does not meet an old leftover).
pub fn unique_name(what: &str) -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{what}-{}-{n}-{nanos:09}", std::process::id())
}

/// Write a small file atomically: temp file in the same directory, then rename.
pub fn write_atomic(path: &Path, data: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    fs::create_dir_all(dir).ctx("create directory", dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{}", unique_name(&name)));
    fs::write(&tmp, data).ctx("write", &tmp)?;
    fs::rename(&tmp, path).ctx("replace", path)
}

pub fn set_mode(path: &Path, mode: u32) -> Result<()> {
    crate::sys::set_mode(path, mode).ctx("set permissions of", path)
}

/// Drop every write bit below `root` (files keep their exec bits); return the read-only mode
/// for `root` itself, which is left as it is (see [`Store::install_tree`]).
fn make_read_only(root: &Path) -> Result<u32> {
    let meta = fs::symlink_metadata(root).ctx("inspect", root)?;
    if meta.is_dir() {
        for entry in fs::read_dir(root).ctx("read directory", root)? {
            let entry = entry.ctx("read directory", root)?;
            let path = entry.path();
            let mode = make_read_only(&path)?;
            if !entry.file_type().ctx("inspect", &path)?.is_symlink() {
                set_mode(&path, mode)?;
            }
        }
    }
    Ok(crate::sys::mode(&meta) & 0o555)
}

/// Give a directory back its owner's write bit, so it can be moved to a new parent (see
/// [`Store::install_tree`]); files and links are left alone.
pub fn writable_dir(path: &Path) -> Result<()> {
    let meta = fs::symlink_metadata(path).ctx("inspect", path)?;
    if meta.is_dir() && crate::sys::mode(&meta) & 0o200 == 0 {
        set_mode(path, crate::sys::mode(&meta) | 0o200)?;
    }
    Ok(())
}

/// Remove a tree that may be read-only. Best effort: used for debris and lost races.
pub fn remove_tree(path: &Path) {
    fn writable(p: &Path) {
        if let Ok(meta) = fs::symlink_metadata(p) {
            if meta.is_dir() {
                let _ = crate::sys::set_mode(p, 0o755);
                if let Ok(rd) = fs::read_dir(p) {
                    for e in rd.flatten() {
                        writable(&e.path());
                    }
                }
            } else {
                writable_file(p, &meta);
            }
        }
    }
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            writable(path);
            let _ = fs::remove_dir_all(path);
        }
        Ok(m) => {
            writable_file(path, &m);
            let _ = fs::remove_file(path);
        }
        Err(_) => {}
    }
}

/// On Windows a read-only file cannot be deleted (its directory's permission is not what
/// decides): clear the attribute first. Elsewhere nothing to do.
fn writable_file(path: &Path, meta: &fs::Metadata) {
    #[cfg(not(unix))]
    if meta.is_file() && meta.permissions().readonly() {
        let _ = crate::sys::set_mode(path, 0o644);
    }
    #[cfg(unix)]
    let _ = (path, meta);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_are_recognized_and_nothing_else() {
        assert_eq!(
            temp_owner("tree.123-1700000000000000000.7"),
            Some("123-1700000000000000000")
        );
        assert_eq!(temp_owner("blob-123-4-000000005"), None);
        for ours in [
            "tree.123-1700000000000000000.7",
            "doomed.1-2.0",
            "blob-12345-000000001",
            "tree-123-4-000000005",
            &unique_name("blob"),
        ] {
            assert!(is_temp_name(ours), "{ours}");
        }
        for theirs in [
            "notes.txt",
            "report-2023-11",
            "backup-2024-01-15",
            "buf.tar.gz",
            "1-2-000000003",
            ".tree.1-2.3",
            "tree.1-2.x",
            "tree.12.3",
            "",
        ] {
            assert!(!is_temp_name(theirs), "{theirs}");
        }
    }

    #[test]
    fn a_temp_path_names_its_live_owner() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().join("cache"));
        store.init().unwrap();
        let p = store.temp_path("blob");
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let owner = temp_owner(&name).expect("an owner in the name");
        assert!(is_temp_name(&name));
        assert!(store.temp_entry_locked(&name), "our own lock is held");
        // The same owner for every entry of this process in this cache.
        let q = store.temp_path("tree");
        assert_eq!(
            temp_owner(&q.file_name().unwrap().to_string_lossy()),
            Some(owner)
        );
        // A live owner's lock survives collection.
        store.collect_dead_owner_locks();
        assert!(store.temp_entry_locked(&name));
        // A dead owner (a free lock file) and a missing one do not lock.
        drop(File::create(store.owner_lock_path("1-2")).unwrap());
        assert!(!store.temp_entry_locked("blob.1-2.0"));
        store.collect_dead_owner_locks();
        assert!(!store.owner_lock_path("1-2").exists());
        assert!(!store.temp_entry_locked("blob.1-2.0"));
    }

    #[test]
    fn only_protoregs_tag_marks_a_cache() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path().to_path_buf());
        assert!(!store.is_marked());
        fs::write(
            dir.path().join("CACHEDIR.TAG"),
            "Signature: 8a477f597d28d172789f06886806bc55\n# created by cargo\n",
        )
        .unwrap();
        assert!(!store.is_marked());
        fs::remove_file(dir.path().join("CACHEDIR.TAG")).unwrap();
        store.init().unwrap();
        assert!(store.is_marked());
    }
}
