//! Extraction of verified archives into a fresh directory, refusing anything that could write
//! outside it: absolute paths, `..`, symlinks that leave the tree, hardlinks, device files,
//! and archives that expand past a cap.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use crate::error::{Error, IoContext, Result};

pub const ENV_MAX_EXTRACT: &str = "PROTOREG_MAX_EXTRACT_BYTES";
const DEFAULT_MAX_EXTRACT: u64 = 4 << 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Zip,
    TarGz,
    Raw,
}

impl Format {
    pub fn as_str(&self) -> &'static str {
        match self {
            Format::Zip => "zip",
            Format::TarGz => "tar.gz",
            Format::Raw => "raw",
        }
    }
}

impl FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "zip" => Ok(Format::Zip),
            "tar.gz" | "tgz" => Ok(Format::TarGz),
            "raw" => Ok(Format::Raw),
            _ => Err(Error::input(
                format!("unknown format `{s}`"),
                "use zip, tar.gz or raw",
            )),
        }
    }
}

impl std::fmt::Display for Format {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How to turn an archive into a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Layout {
    pub format: Format,
    /// Leading directory to remove from every member (`buf` for buf's tarballs).
    pub strip_prefix: Option<String>,
    /// Paths (after stripping) that must exist and are made executable. For `raw`, the first
    /// one names the file (default: `artifact`).
    pub executables: Vec<String>,
}

impl Layout {
    /// Validate user-given paths up front, so bad input is exit 2 before any work.
    pub fn validate(&self) -> Result<()> {
        let paths = self.strip_prefix.iter().chain(&self.executables);
        for p in paths {
            safe_relative(p).map_err(|why| {
                Error::input(
                    format!("invalid path `{p}`: {why}"),
                    "give a relative path inside the archive, like bin/protoc",
                )
            })?;
        }
        Ok(())
    }
}

fn max_bytes() -> u64 {
    std::env::var(ENV_MAX_EXTRACT)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(DEFAULT_MAX_EXTRACT)
}

/// Extract `archive` into `dest`, which must be a new, empty directory.
pub fn extract(archive: &Path, layout: &Layout, dest: &Path) -> Result<()> {
    let name = archive.display().to_string();
    let mut x = Extractor::new(&name, layout, dest)?;
    match layout.format {
        Format::TarGz => {
            let file = File::open(archive).ctx("open", archive)?;
            x.tar_gz(io::BufReader::with_capacity(256 << 10, file))?
        }
        Format::Zip => x.zip(archive)?,
        Format::Raw => {
            let name = layout
                .executables
                .first()
                .map(String::as_str)
                .unwrap_or("artifact");
            let rel = safe_relative(name).map_err(|why| x.unsafe_(why))?;
            let mut src = File::open(archive).ctx("open", archive)?;
            x.write_file(&rel, &mut src, true)?;
        }
    }
    x.finish(layout)
}

/// Extract a tar.gz's files and directories as it streams in (`name` names it in errors).
/// The bytes are not verified yet: symlinks and exec bits wait in the returned
/// [`Unfinished`] until the caller has verified the whole body and calls
/// [`Unfinished::finish`]; unverified, `dest` is discarded.
pub fn extract_tar_gz_stream(
    reader: impl Read,
    name: &str,
    layout: &Layout,
    dest: &Path,
) -> Result<Unfinished> {
    let mut x = Extractor::new(name, layout, dest)?;
    x.tar_gz(reader)?;
    Ok(Unfinished(x))
}

/// A streamed extraction whose symlinks and exec bits are not applied yet.
pub struct Unfinished(Extractor);

impl Unfinished {
    pub fn finish(self, layout: &Layout) -> Result<()> {
        self.0.finish(layout)
    }
}

struct Extractor {
    archive: String,
    dest: PathBuf,
    prefix: Option<PathBuf>,
    budget: u64,
    /// Symlink members (path -> target), created last, so no member is written through one;
    /// no member may lie under one.
    links: BTreeMap<PathBuf, PathBuf>,
    /// Copy buffer, reused across members.
    buf: Vec<u8>,
}

const COPY_CHUNK: usize = 512 << 10;

impl Extractor {
    fn new(name: &str, layout: &Layout, dest: &Path) -> Result<Extractor> {
        let prefix = match &layout.strip_prefix {
            Some(p) if !p.is_empty() => Some(safe_relative(p).map_err(|why| {
                Error::input(
                    format!("invalid --strip-prefix `{p}`: {why}"),
                    "give a relative directory",
                )
            })?),
            _ => None,
        };
        Ok(Extractor {
            archive: name.to_string(),
            dest: dest.to_path_buf(),
            prefix,
            budget: max_bytes(),
            links: BTreeMap::new(),
            buf: Vec::new(),
        })
    }

    /// Create the deferred symlinks, then force the exec bit on the declared binaries.
    fn finish(mut self, layout: &Layout) -> Result<()> {
        self.finish_links()?;
        for exe in &layout.executables {
            let rel = safe_relative(exe).map_err(|why| self.unsafe_(why))?;
            let path = self.dest.join(&rel);
            let meta = fs::symlink_metadata(&path).map_err(|_| {
                Error::input(
                    format!("`{exe}` is declared executable but `{}` has no such file", self.archive),
                    "fix the binaries of the pin (paths are relative to the tree after --strip-prefix)",
                )
            })?;
            if meta.is_file() {
                use std::os::unix::fs::PermissionsExt;
                crate::store::set_mode(&path, (meta.permissions().mode() | 0o111) & 0o7777)?;
            }
        }
        Ok(())
    }

    fn unsafe_(&self, reason: impl Into<String>) -> Error {
        Error::UnsafeArchive {
            archive: self.archive.clone(),
            reason: reason.into(),
        }
    }

    /// Map a member name to its path in the tree; `None` for the prefix directory itself.
    fn member_path(&self, name: &str) -> Result<Option<PathBuf>> {
        let rel = safe_relative(name)
            .map_err(|why| self.unsafe_(format!("member `{}`: {why}", name.escape_debug())))?;
        match &self.prefix {
            None => Ok(if rel.as_os_str().is_empty() {
                None
            } else {
                Some(rel)
            }),
            Some(prefix) => match rel.strip_prefix(prefix) {
                Ok(rest) if rest.as_os_str().is_empty() => Ok(None),
                Ok(rest) => Ok(Some(rest.to_path_buf())),
                Err(_) if prefix.starts_with(&rel) => Ok(None), // a parent of the prefix
                Err(_) => Err(Error::input(
                    format!(
                        "member `{name}` of `{}` is outside --strip-prefix `{}`",
                        self.archive,
                        prefix.display()
                    ),
                    "fix the pin's strip_prefix",
                )),
            },
        }
    }

    /// A member must not sit under a symlink member (it would be written through it once the
    /// link exists) nor repeat one.
    fn guard(&self, rel: &Path) -> Result<()> {
        if self.links.contains_key(rel) {
            return Err(self.unsafe_(format!("member `{}` appears twice", rel.display())));
        }
        if let Some(link) = rel
            .ancestors()
            .skip(1)
            .find(|a| self.links.contains_key(*a))
        {
            return Err(self.unsafe_(format!(
                "member `{}` lies under the symlink `{}`",
                rel.display(),
                link.display()
            )));
        }
        Ok(())
    }

    fn write_file(&mut self, rel: &Path, src: &mut dyn Read, executable: bool) -> Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        self.guard(rel)?;
        let path = self.dest.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).ctx("create directory", parent)?;
        }
        let mut f = File::options()
            .write(true)
            .create_new(true)
            .mode(if executable { 0o755 } else { 0o644 })
            .open(&path)
            .map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    self.unsafe_(format!("member `{}` appears twice", rel.display()))
                } else {
                    Error::io("create", &path, e)
                }
            })?;
        // Large reads and writes: a tool archive is mostly a few big binaries, and 8 KiB
        // chunks (io::copy's) cost a syscall per chunk.
        let mut buf = std::mem::take(&mut self.buf);
        buf.resize(COPY_CHUNK, 0);
        let mut n: u64 = 0;
        let copied = loop {
            let k = match src.read(&mut buf) {
                Ok(0) => break Ok(()),
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                // The bytes were verified: a read error is a corrupt archive.
                Err(e) => {
                    break Err(self.unsafe_(format!("cannot read member `{}`: {e}", rel.display())))
                }
            };
            n += k as u64;
            if n > self.budget {
                break Err(self.unsafe_(format!(
                    "it expands past the cap of {} bytes (set {ENV_MAX_EXTRACT} to change it)",
                    max_bytes()
                )));
            }
            if let Err(e) = f.write_all(&buf[..k]) {
                break Err(Error::io("write", &path, e));
            }
        };
        self.buf = buf;
        copied?;
        self.budget -= n;
        f.flush().ctx("write", &path)?;
        Ok(())
    }

    fn dir(&self, rel: &Path) -> Result<()> {
        self.guard(rel)?;
        let path = self.dest.join(rel);
        fs::create_dir_all(&path).ctx("create directory", &path)
    }

    fn symlink(&mut self, rel: PathBuf, target: &str) -> Result<()> {
        self.guard(&rel)?;
        let target_path = Path::new(target);
        if target.is_empty() || target_path.is_absolute() || target.contains('\0') {
            return Err(self.outside(&rel, target));
        }
        // Checked once every link is known (finish_links): a target may pass through another.
        self.links.insert(rel, target_path.to_path_buf());
        Ok(())
    }

    fn outside(&self, rel: &Path, target: &str) -> Error {
        self.unsafe_(format!(
            "symlink `{}` points to `{target}`, outside the tree",
            rel.display()
        ))
    }

    /// Check every link against the full set, then create them. No member lies under a link
    /// (guard), so a link's own location is its written path; its target is walked from
    /// there component by component, and may neither climb above the root nor pass through
    /// another link (whose own target could climb: `d/up -> ..` then `t -> d/up/..`).
    fn finish_links(&mut self) -> Result<()> {
        for (rel, target) in &self.links {
            let mut at: Vec<&std::ffi::OsStr> =
                rel.parent().map(|p| p.iter().collect()).unwrap_or_default();
            let mut parts = target.components().peekable();
            while let Some(c) = parts.next() {
                match c {
                    Component::CurDir => {}
                    Component::ParentDir => {
                        if at.pop().is_none() {
                            return Err(self.outside(rel, &target.to_string_lossy()));
                        }
                    }
                    Component::Normal(name) => {
                        at.push(name);
                        let here: PathBuf = at.iter().collect();
                        if parts.peek().is_some() && self.links.contains_key(&here) {
                            return Err(self.unsafe_(format!(
                                "symlink `{}` points through the symlink `{}`",
                                rel.display(),
                                here.display()
                            )));
                        }
                    }
                    _ => return Err(self.outside(rel, &target.to_string_lossy())),
                }
            }
        }
        for (rel, target) in std::mem::take(&mut self.links) {
            let path = self.dest.join(&rel);
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).ctx("create directory", parent)?;
            }
            std::os::unix::fs::symlink(&target, &path).ctx("create symlink", &path)?;
        }
        Ok(())
    }

    fn tar_gz(&mut self, reader: impl Read) -> Result<()> {
        let gz = flate2::read::GzDecoder::new(reader);
        let mut tar = tar::Archive::new(gz);
        let corrupt = |e: io::Error, this: &Self| this.unsafe_(format!("corrupt tar.gz: {e}"));
        for entry in tar.entries().map_err(|e| corrupt(e, self))? {
            let mut entry = entry.map_err(|e| corrupt(e, self))?;
            let name = String::from_utf8(entry.path_bytes().into_owned())
                .map_err(|_| self.unsafe_("a member name is not UTF-8"))?;
            let kind = entry.header().entry_type();
            if kind.is_pax_global_extensions()
                || kind.is_pax_local_extensions()
                || kind.is_gnu_longname()
                || kind.is_gnu_longlink()
            {
                continue;
            }
            let Some(rel) = self.member_path(&name)? else {
                continue;
            };
            use tar::EntryType as T;
            match kind {
                T::Regular | T::Continuous | T::GNUSparse => {
                    let exe = entry
                        .header()
                        .mode()
                        .map(|m| m & 0o111 != 0)
                        .unwrap_or(false);
                    self.write_file(&rel, &mut entry, exe)?;
                }
                T::Directory => self.dir(&rel)?,
                T::Symlink => {
                    let target = entry
                        .link_name_bytes()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default();
                    self.symlink(rel, &target)?;
                }
                T::Link => return Err(self.unsafe_(format!("member `{name}` is a hardlink"))),
                T::Char | T::Block | T::Fifo => {
                    return Err(self.unsafe_(format!("member `{name}` is a device or fifo")))
                }
                other => {
                    return Err(
                        self.unsafe_(format!("member `{name}` has unsupported type {other:?}"))
                    )
                }
            }
        }
        Ok(())
    }

    fn zip(&mut self, archive: &Path) -> Result<()> {
        let file = File::open(archive).ctx("open", archive)?;
        let mut zip = zip::ZipArchive::new(io::BufReader::new(file))
            .map_err(|e| self.unsafe_(format!("corrupt zip: {e}")))?;
        for i in 0..zip.len() {
            let mut member = zip
                .by_index(i)
                .map_err(|e| self.unsafe_(format!("corrupt zip member {i}: {e}")))?;
            let name = String::from_utf8(member.name_raw().to_vec())
                .map_err(|_| self.unsafe_("a member name is not UTF-8"))?;
            let Some(rel) = self.member_path(&name)? else {
                continue;
            };
            let mode = member.unix_mode().unwrap_or(0);
            const S_IFMT: u32 = 0o170000;
            match mode & S_IFMT {
                0o120000 => {
                    let mut target = String::new();
                    member
                        .by_ref()
                        .take(4096)
                        .read_to_string(&mut target)
                        .map_err(|e| self.unsafe_(format!("member `{name}`: {e}")))?;
                    self.symlink(rel, &target)?;
                }
                0o020000 | 0o060000 | 0o010000 | 0o140000 => {
                    return Err(self.unsafe_(format!("member `{name}` is a device, fifo or socket")))
                }
                _ if member.is_dir() => self.dir(&rel)?,
                _ => {
                    let exe = mode & 0o111 != 0;
                    self.write_file(&rel, &mut member, exe)?;
                }
            }
        }
        Ok(())
    }
}

/// A relative path with only normal components: no root, no `..`, no NUL or control
/// characters, no backslashes (which mean separators on Windows).
pub fn safe_relative(name: &str) -> std::result::Result<PathBuf, String> {
    if name.chars().any(|c| c.is_control()) {
        return Err("contains control characters".into());
    }
    if name.contains('\\') {
        return Err("contains a backslash".into());
    }
    if name.starts_with('/') || (name.len() > 1 && name.as_bytes()[1] == b':') {
        return Err("is an absolute path".into());
    }
    let mut out = PathBuf::new();
    for c in Path::new(name).components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err("contains `..`".into()),
            Component::RootDir | Component::Prefix(_) => return Err("is an absolute path".into()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn safe_relative_refuses_escapes() {
        assert_eq!(
            safe_relative("./bin/protoc").unwrap(),
            PathBuf::from("bin/protoc")
        );
        assert_eq!(safe_relative("buf/").unwrap(), PathBuf::from("buf"));
        for bad in [
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/../b",
            "C:/x",
            "a\\b",
            "a\nb",
            "a\0b",
        ] {
            assert!(safe_relative(bad).is_err(), "{bad:?}");
        }
    }
}
