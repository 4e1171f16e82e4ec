//! The small files protoreg is pointed at (registry.yaml, pins.bzl, tools.bzl, Docker's
//! config.json, .netrc, READMEs, OCI layouts, archives, images): opened only without
//! blocking and read only when the opened file is regular, since opening a FIFO blocks until
//! someone writes to it and a device such as `/dev/zero` never ends, and only up to a bound.

use std::fs::{File, Metadata};
use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};

/// More than any configuration, pins file or catalogue a person writes.
pub const MAX_BYTES: u64 = 16 << 20;

/// What [`open_regular`] says of a path that is not a regular file.
pub const NOT_REGULAR: &str = "is not a regular file (a FIFO, device or directory is never read)";

/// Open a file protoreg was pointed at, regular files only, never blocking: opened without
/// waiting (a FIFO with no writer opens at once), then the opened file itself is checked, so
/// nothing swapped in after a check by path can block or run forever. A missing file is
/// `NotFound`; anything but a regular file is `InvalidInput` with [`NOT_REGULAR`].
pub fn open_regular(path: &Path) -> std::io::Result<(File, Metadata)> {
    let file = crate::sys::open_nonblocking(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            NOT_REGULAR,
        ));
    }
    Ok((file, meta))
}

/// `path`'s bytes. A missing file is `NotFound`, as from `std::fs::read`; one that is not a
/// regular file is `InvalidInput`, one larger than `limit` is `FileTooLarge`, each with a
/// message that finishes "the file `…` …".
pub fn read(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::{Error as IoError, ErrorKind};
    let (file, _) = open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(IoError::new(
            ErrorKind::FileTooLarge,
            format!("is larger than {}", crate::error::Bytes(limit)),
        ));
    }
    Ok(bytes)
}

/// The UTF-8 text of the file `kind` names (`the pins file`) at `path`: missing, not a
/// regular file, over [`MAX_BYTES`] or not UTF-8 is exit 2 naming it; `missing` is the hint
/// for a file that does not exist.
pub fn read_text(path: &Path, kind: &str, missing: &str) -> Result<String> {
    let bytes = read(path, MAX_BYTES).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::input(
            format!("{kind} `{}` does not exist", path.display()),
            missing,
        ),
        std::io::ErrorKind::InvalidInput | std::io::ErrorKind::FileTooLarge => Error::input(
            format!("{kind} `{}` {e}", path.display()),
            format!("point protoreg at {kind} itself"),
        ),
        _ => Error::io("read", path, e),
    })?;
    crate::error::utf8_text(path, bytes, kind)
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn a_fifo_a_device_and_a_large_file_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        assert!(std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success());
        // Opened directly, as after a swap past any check by path: refused at once. On a
        // thread, so an open that blocks fails the test instead of hanging it.
        let (tx, rx) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || tx.send(open_regular(&path).map(|_| ()).map_err(|e| e.kind())));
        let opened = rx.recv_timeout(std::time::Duration::from_secs(5));
        assert_eq!(opened, Ok(Err(std::io::ErrorKind::InvalidInput)));
        for path in [fifo.as_path(), Path::new("/dev/zero"), dir.path()] {
            let e = read(path, MAX_BYTES).unwrap_err();
            assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput, "{path:?}");
        }
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; 11]).unwrap();
        assert_eq!(
            read(&big, 10).unwrap_err().kind(),
            std::io::ErrorKind::FileTooLarge
        );
        assert_eq!(read(&big, 11).unwrap().len(), 11);
        let e = read_text(&fifo, "the pins file", "-").unwrap_err();
        assert_eq!(e.exit_code(), 2);
        assert!(e.to_string().contains("not a regular file"), "{e}");
    }
}
