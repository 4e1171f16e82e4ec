//! The few Unix calls the cache needs beyond `std`: copy-on-write clones of a file
//! (`FICLONE` on Linux, `clonefile` on macOS) and syncing a directory, so a rename into it
//! survives a power loss.

use std::fs::File;
use std::io;
use std::path::Path;

/// Clone `from` to the new file `to` (which must not exist) sharing its blocks copy-on-write:
/// writing to either later never changes the other. Fails (leaving no `to`) where the file
/// system cannot clone; [`unsupported`] tells that apart from a real error.
#[cfg(target_os = "linux")]
pub fn clone_file(from: &Path, to: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let src = File::open(from)?;
    let dst = File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(to)?;
    // SAFETY: FICLONE takes the source fd as its argument; both fds are open for the call.
    let rc = unsafe { libc::ioctl(dst.as_raw_fd(), libc::FICLONE, src.as_raw_fd()) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    drop(dst);
    let _ = std::fs::remove_file(to);
    Err(err)
}

/// `clonefile(2)`: the clone also carries the source's mode (made the user's by the caller).
#[cfg(target_os = "macos")]
pub fn clone_file(from: &Path, to: &Path) -> io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    const CLONE_NOFOLLOW: u32 = 0x0001;
    let cstr = |p: &Path| CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other);
    let (f, t) = (cstr(from)?, cstr(to)?);
    // SAFETY: both pointers are valid NUL-terminated strings for the duration of the call.
    let rc = unsafe { libc::clonefile(f.as_ptr(), t.as_ptr(), CLONE_NOFOLLOW) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos")))]
pub fn clone_file(_from: &Path, _to: &Path) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Does `err` say only that this file system (or this pair of paths) cannot clone, so a
/// plain copy should be made instead?
pub fn unsupported(err: &io::Error) -> bool {
    if err.kind() == io::ErrorKind::Unsupported {
        return true;
    }
    // ENOTSUP and EOPNOTSUPP are one value on Linux, two on macOS.
    const CANNOT: [i32; 6] = [
        libc::EOPNOTSUPP,
        libc::ENOTSUP,
        libc::EXDEV,
        libc::EINVAL,
        libc::ENOTTY,
        libc::ENOSYS,
    ];
    err.raw_os_error().is_some_and(|n| CANNOT.contains(&n))
}

/// fsync a directory, so the renames and creations in it are durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_or_its_refusal_leaves_the_source_alone() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        std::fs::write(&a, b"original").unwrap();
        match clone_file(&a, &b) {
            Ok(()) => {
                assert_eq!(std::fs::read(&b).unwrap(), b"original");
                std::fs::write(&b, b"changed").unwrap();
                assert_eq!(std::fs::read(&a).unwrap(), b"original");
            }
            Err(e) => {
                assert!(unsupported(&e), "{e}");
                assert!(!b.exists(), "a refused clone leaves nothing");
            }
        }
        sync_dir(dir.path()).unwrap();
    }
}
