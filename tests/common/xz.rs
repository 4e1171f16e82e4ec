//! tar.xz archives made by the system's `tar` and `xz`, the tools Node.js makes its `.tar.xz`
//! releases with.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The top directory of [`protoc_txz`], as Node's `node-v22.12.0-linux-x64/`.
pub const PROTOC_TXZ_PREFIX: &str = "protoc-36.2-linux-x86_64";

/// `tgz` (a tar.gz) decompressed and compressed again by `xz`: `<stem>.tar.xz` beside it.
pub fn xz_of(tgz: &Path) -> PathBuf {
    let tar = tgz.with_extension("tar");
    let mut gz = flate2::read::MultiGzDecoder::new(fs::File::open(tgz).unwrap());
    std::io::copy(&mut gz, &mut fs::File::create(&tar).unwrap()).unwrap();
    let s = Command::new("xz")
        .args(["--compress", "--force", "--threads=1", "-1"])
        .arg(&tar)
        .status()
        .expect("xz missing: run scripts/install-deps");
    assert!(s.success(), "xz failed on {}", tar.display());
    PathBuf::from(format!("{}.xz", tar.display()))
}

/// The protoc 36.2 fixture repacked by `tar -cJf` in `dir`, laid out as Node's tarballs are:
/// everything under one top directory ([`PROTOC_TXZ_PREFIX`]), with a relative symlink in
/// `bin/` (`bin/protoc-link -> protoc`, as Node's `bin/npm -> ../lib/...`).
pub fn protoc_txz(dir: &Path) -> PathBuf {
    let root = dir.join(PROTOC_TXZ_PREFIX);
    let s = Command::new("unzip")
        .arg("-q")
        .arg(super::fixture(super::PROTOC_ZIP))
        .arg("-d")
        .arg(&root)
        .status()
        .expect("unzip missing: run scripts/install-deps");
    assert!(s.success());
    std::os::unix::fs::symlink("protoc", root.join("bin/protoc-link")).unwrap();
    let out = dir.join(format!("{PROTOC_TXZ_PREFIX}.tar.xz"));
    let s = Command::new("tar")
        .env("XZ_OPT", "-1 --threads=1")
        .arg("-cJf")
        .arg(&out)
        .arg("-C")
        .arg(dir)
        .arg(PROTOC_TXZ_PREFIX)
        .status()
        .expect("tar missing");
    assert!(s.success(), "tar -cJf failed");
    out
}
