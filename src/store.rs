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

use std::fs::{self, File, TryLockError};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::error::{Error, IoContext, Result};
use crate::verify::Sha256;

pub const ENV_CACHE_DIR: &str = "PROTOREG_CACHE_DIR";
pub const ENV_LOCK_TIMEOUT: &str = "PROTOREG_LOCK_TIMEOUT";

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
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            let home = std::env::var_os("HOME").filter(|v| !v.is_empty())?;
            Some(if cfg!(target_os = "macos") {
                PathBuf::from(home).join("Library/Caches")
            } else {
                PathBuf::from(home).join(".cache")
            })
        })
        .ok_or_else(|| {
            Error::input(
                "cannot find a cache directory: neither XDG_CACHE_HOME nor HOME is set",
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
        // Entries are real files and directories, never links: a link here was planted.
        if fs::symlink_metadata(path).ok()?.file_type().is_symlink() {
            return None;
        }
        let f = File::open(path).ok()?;
        // Best effort: a read-only cache (shared, mounted) still serves hits.
        let _ = f.set_modified(SystemTime::now());
        Some(path.to_path_buf())
    }

    /// Create the layout on first use.
    pub fn init(&self) -> Result<()> {
        for d in [self.tmp_dir(), self.root.join("locks")] {
            fs::create_dir_all(&d).ctx("create the cache directory", &d)?;
        }
        let tag = self.root.join("CACHEDIR.TAG");
        if !tag.exists() {
            write_atomic(&tag, CACHEDIR_TAG.as_bytes())?;
        }
        Ok(())
    }

    /// Take the per-entry lock, waiting for another process that holds it.
    pub fn lock(&self, key: &Sha256) -> Result<File> {
        let path = self.root.join("locks").join(format!("{}.lock", key.hex()));
        let seconds = std::env::var(ENV_LOCK_TIMEOUT)
            .ok()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(900);
        lock_exclusive(open_lock_file(&path)?, &path, seconds)
    }

    /// A fresh, unique path under `tmp/` (not created).
    pub fn temp_path(&self, what: &str) -> PathBuf {
        self.tmp_dir().join(unique_name(what))
    }

    /// Move a verified temporary file into place as the blob `sha256`.
    pub fn install_blob(&self, tmp: &Path, sha256: &Sha256) -> Result<PathBuf> {
        let dest = self.blob_path(sha256);
        set_mode(tmp, 0o444)?;
        install(tmp, &dest)?;
        Ok(dest)
    }

    /// Make a finished tree read-only and move it into place.
    pub fn install_tree(&self, tmp: &Path, key: &Sha256) -> Result<PathBuf> {
        let dest = self.tree_path(key);
        make_read_only(tmp)?;
        install(tmp, &dest)?;
        Ok(dest)
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

/// Rename without replacing. An existing destination means another process finished the same
/// entry first: its content is identical by construction, so ours is dropped.
fn install(tmp: &Path, dest: &Path) -> Result<()> {
    let parent = dest.parent().unwrap_or(dest);
    fs::create_dir_all(parent).ctx("create the cache directory", parent)?;
    match rename_noreplace(tmp, dest) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists || dest.exists() => {
            remove_tree(tmp);
            Ok(())
        }
        Err(e) => {
            remove_tree(tmp);
            Err(Error::io("move into the cache", dest, e))
        }
    }
}

#[cfg(target_os = "linux")]
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let cstr = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other);
    let (f, t) = (cstr(from)?, cstr(to)?);
    // SAFETY: both pointers are valid NUL-terminated strings for the duration of the call.
    let rc = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            f.as_ptr(),
            libc::AT_FDCWD,
            t.as_ptr(),
            libc::RENAME_NOREPLACE,
        )
    };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        // Filesystems without renameat2 support: a directory rename onto a non-empty
        // directory still fails, which is the property we need.
        Some(libc::EINVAL) | Some(libc::ENOSYS) => fs::rename(from, to),
        Some(libc::EEXIST) | Some(libc::ENOTEMPTY) => {
            Err(io::Error::new(io::ErrorKind::AlreadyExists, err))
        }
        _ => Err(err),
    }
}

#[cfg(not(target_os = "linux"))]
fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    if to.exists() {
        return Err(io::ErrorKind::AlreadyExists.into());
    }
    fs::rename(from, to)
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

#[cfg(unix)]
pub fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).ctx("set permissions of", path)
}

/// Drop every write bit in a tree (files keep their exec bits).
fn make_read_only(root: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = fs::symlink_metadata(root).ctx("inspect", root)?;
    if meta.is_dir() {
        for entry in fs::read_dir(root).ctx("read directory", root)? {
            let entry = entry.ctx("read directory", root)?;
            make_read_only(&entry.path())?;
        }
    }
    if !meta.file_type().is_symlink() {
        let mode = meta.permissions().mode() & 0o555;
        set_mode(root, mode)?;
    }
    Ok(())
}

/// Remove a tree that may be read-only. Best effort: used for debris and lost races.
pub fn remove_tree(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    fn writable(p: &Path) {
        if let Ok(meta) = fs::symlink_metadata(p) {
            if meta.is_dir() {
                let _ = fs::set_permissions(p, fs::Permissions::from_mode(0o755));
                if let Ok(rd) = fs::read_dir(p) {
                    for e in rd.flatten() {
                        writable(&e.path());
                    }
                }
            }
        }
    }
    match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            writable(path);
            let _ = fs::remove_dir_all(path);
        }
        Ok(_) => {
            let _ = fs::remove_file(path);
        }
        Err(_) => {}
    }
}
