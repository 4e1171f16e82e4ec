//! Extraction of archives into a fresh directory, refusing anything that could write outside
//! it: absolute paths, `..`, symlinks that leave the tree, hardlinks, device files, members
//! listed twice, and archives that expand past a cap or hold too many entries.
//!
//! A tar.gz or tar.xz may be extracted while it downloads, before its bytes are verified
//! (one tar walk, fed by either decoder). What such a stream may write is bounded by its pin
//! ([`unverified_budget`]); past that it stops ([`Streamed::Deferred`]) and the archive is
//! extracted from the verified blob instead.
//! Nothing extracted gets an exec bit, and no symlink is created, until [`Unfinished::finish`],
//! which runs only once the whole body has verified.

use std::collections::{BTreeMap, HashSet};
use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Component, Path, PathBuf};
use std::str::FromStr;

use crate::error::{Error, IoContext, Result};
use crate::progress::Bar;

/// The most bytes one archive may expand to (file contents), verified or not.
pub const ENV_MAX_EXTRACT: &str = "PROTOREG_MAX_EXTRACT_BYTES";
pub const DEFAULT_MAX_EXTRACT: u64 = 4 << 30;
/// The most entries (members of any kind) one archive may hold.
pub const ENV_MAX_ENTRIES: &str = "PROTOREG_MAX_EXTRACT_ENTRIES";
pub const DEFAULT_MAX_ENTRIES: u64 = 100_000;
/// Before its body verifies, a streamed extraction writes at most this many times the pinned
/// size...
pub const UNVERIFIED_FACTOR: u64 = 16;
/// ...or this much when the size is unknown (256 MiB).
pub const UNVERIFIED_UNSIZED: u64 = 256 << 20;
/// What each path component of each entry counts for against that budget, besides the
/// file's contents: a file system block, for the inode or directory it may create.
pub const ENTRY_COST: u64 = 4096;
/// The most memory (KiB) the xz decoder may take for one block, checked before it allocates
/// the dictionary a header asks for (up to 4 GiB): 256 MiB, four times what `xz -9` needs.
pub const XZ_MEMORY_KIB: u32 = 256 << 10;

/// The caps of any extraction, from the environment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// [`ENV_MAX_EXTRACT`]: the most bytes of file contents.
    pub max_bytes: u64,
    /// [`ENV_MAX_ENTRIES`]: the most members.
    pub max_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_bytes: DEFAULT_MAX_EXTRACT,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}

impl Limits {
    /// `PROTOREG_MAX_EXTRACT_BYTES` and `PROTOREG_MAX_EXTRACT_ENTRIES`: each a positive whole
    /// number, else (unset or empty) its default. Anything else is an input error (exit 2).
    pub fn from_env() -> Result<Limits> {
        Limits::parse(
            std::env::var_os(ENV_MAX_EXTRACT),
            std::env::var_os(ENV_MAX_ENTRIES),
        )
    }

    fn parse(bytes: Option<OsString>, entries: Option<OsString>) -> Result<Limits> {
        Ok(Limits {
            max_bytes: crate::settings::positive(
                ENV_MAX_EXTRACT,
                bytes,
                DEFAULT_MAX_EXTRACT,
                "bytes",
            )?,
            max_entries: crate::settings::positive(
                ENV_MAX_ENTRIES,
                entries,
                DEFAULT_MAX_ENTRIES,
                "entries",
            )?,
        })
    }
}

/// What a streamed extraction may write before the body it reads has verified: at most
/// [`UNVERIFIED_FACTOR`] times the pinned size, or [`UNVERIFIED_UNSIZED`] when the size is
/// unknown. File contents count, and [`ENTRY_COST`] per path component of each entry.
pub fn unverified_budget(size: Option<u64>) -> u64 {
    size.map_or(UNVERIFIED_UNSIZED, |s| s.saturating_mul(UNVERIFIED_FACTOR))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Zip,
    TarGz,
    TarXz,
    Raw,
}

impl Format {
    pub fn as_str(&self) -> &'static str {
        match self {
            Format::Zip => "zip",
            Format::TarGz => "tar.gz",
            Format::TarXz => "tar.xz",
            Format::Raw => "raw",
        }
    }

    /// A tar stream: extracted as it downloads (see [`extract_tar_stream`]).
    pub fn is_tar(&self) -> bool {
        matches!(self, Format::TarGz | Format::TarXz)
    }

    /// The format an upstream file name stands for: `.zip`, `.tar.gz`/`.tgz`,
    /// `.tar.xz`/`.txz`, or else one raw binary.
    /// `name` without this format's extension: `node-v22.23.2-linux-x64` of
    /// `node-v22.23.2-linux-x64.tar.xz` (an archive's usual leading directory).
    pub fn stem(name: &str) -> &str {
        [".zip", ".tar.gz", ".tgz", ".tar.xz", ".txz"]
            .iter()
            .find_map(|ext| name.strip_suffix(ext))
            .unwrap_or(name)
    }

    pub fn of_file_name(name: &str) -> Format {
        if name.ends_with(".zip") {
            Format::Zip
        } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            Format::TarGz
        } else if name.ends_with(".tar.xz") || name.ends_with(".txz") {
            Format::TarXz
        } else {
            Format::Raw
        }
    }
}

impl FromStr for Format {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "zip" => Ok(Format::Zip),
            "tar.gz" | "tgz" => Ok(Format::TarGz),
            "tar.xz" | "txz" => Ok(Format::TarXz),
            "raw" => Ok(Format::Raw),
            _ => Err(Error::input(
                format!("unknown format `{s}`"),
                "use zip, tar.gz, tar.xz or raw",
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
    /// Validate user-given paths up front, so bad input is exit 2 before any work. An
    /// executable must name a file below the tree, not the tree itself (`.`, `bin/..`).
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
        for exe in &self.executables {
            if executable_path(exe).is_err() {
                return Err(Error::input(
                    format!(
                        "invalid --executable `{exe}`: it names the tree itself, not a file in it"
                    ),
                    "give the relative path of a file inside the archive, like bin/protoc",
                ));
            }
        }
        Ok(())
    }
}

/// The path of a declared executable in the tree: safe and not empty.
fn executable_path(exe: &str) -> std::result::Result<PathBuf, String> {
    let rel = safe_relative(exe)?;
    if rel.as_os_str().is_empty() {
        return Err("names the tree itself, not a file in it".into());
    }
    Ok(rel)
}

/// Extract `archive`, whose bytes are verified, into `dest`, which must be a new, empty
/// directory; the caps are [`Limits::from_env`].
pub fn extract(archive: &Path, layout: &Layout, dest: &Path) -> Result<()> {
    extract_showing(archive, layout, dest, &Bar::hidden())
}

/// The archive, opened without blocking and only as a regular file: a missing one, a FIFO or
/// a device named as one is refused (exit 2, naming it), never read.
pub fn open_archive(archive: &Path) -> Result<File> {
    let refused = |what: String| {
        Error::input(
            format!("the archive `{}` {what}", archive.display()),
            "give the path of the downloaded archive",
        )
    };
    match crate::textfile::open_regular(archive) {
        Ok((file, _)) => Ok(file),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(refused("does not exist".into())),
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => Err(refused(e.to_string())),
        Err(e) => Err(Error::io("open", archive, e)),
    }
}

/// [`extract`], counting the bytes written on `bar`.
pub fn extract_showing(archive: &Path, layout: &Layout, dest: &Path, bar: &Bar) -> Result<()> {
    let name = archive.display().to_string();
    let mut x = Extractor::new(&name, layout, dest, Limits::from_env()?, None)?;
    x.bar = bar.clone();
    match layout.format {
        Format::TarGz | Format::TarXz => {
            let file = open_archive(archive)?;
            x.tar(layout.format, io::BufReader::with_capacity(256 << 10, file))?
        }
        Format::Zip => x.zip(archive)?,
        Format::Raw => {
            let name = layout
                .executables
                .first()
                .map(String::as_str)
                .unwrap_or("artifact");
            let rel = executable_path(name).map_err(|why| x.unsafe_(why))?;
            let mut src = open_archive(archive)?;
            x.count_entry()?;
            x.write_file(&rel, &mut src, true)?;
        }
    }
    x.finish(layout)
}

/// Extract a tar.gz's or tar.xz's files and directories (by `layout.format`) as it streams in
/// (`name` names it in errors).
/// The bytes are not verified yet, so what is written is bounded by `unverified` bytes (see
/// [`unverified_budget`]): past it the extraction stops, removes `dest` and answers
/// [`Streamed::Deferred`]. Files are written without exec bits; those and the symlinks wait
/// in the returned [`Unfinished`] until the caller has verified the whole body and calls
/// [`Unfinished::finish`]; unverified, `dest` is discarded.
/// Each file's path is sent to `written`, if given, once its contents are complete (so it
/// can be hashed while the rest of the archive inflates).
pub fn extract_tar_stream(
    reader: impl Read,
    name: &str,
    layout: &Layout,
    dest: &Path,
    limits: Limits,
    unverified: u64,
    written: Option<std::sync::mpsc::Sender<PathBuf>>,
) -> Result<Streamed> {
    let mut x = Extractor::new(name, layout, dest, limits, Some(unverified))?;
    x.written_files = written;
    match x.tar(layout.format, reader) {
        _ if x.deferred => {
            crate::pipeline::store::remove_tree(dest);
            Ok(Streamed::Deferred)
        }
        Ok(()) => Ok(Streamed::Extracted(Box::new(Unfinished(x)))),
        Err(e) => Err(e),
    }
}

/// How a streamed extraction ended.
pub enum Streamed {
    /// Every member was written, waiting for [`Unfinished::finish`].
    Extracted(Box<Unfinished>),
    /// It would have written more than its unverified budget: it stopped and removed what it
    /// wrote. Once the body verifies, extract the blob with [`extract`].
    Deferred,
}

/// A streamed extraction whose symlinks and exec bits are not applied yet.
pub struct Unfinished(Extractor);

impl Unfinished {
    pub fn finish(self, layout: &Layout) -> Result<()> {
        self.0.finish(layout)
    }
}

struct Extractor {
    /// Told the path of each file whose contents are complete.
    written_files: Option<std::sync::mpsc::Sender<PathBuf>>,
    archive: String,
    dest: PathBuf,
    prefix: Option<PathBuf>,
    limits: Limits,
    /// Bytes of file contents written so far (against `limits.max_bytes`).
    written: u64,
    /// Members seen so far (against `limits.max_entries`).
    entries: u64,
    /// For bytes not verified yet: what may still be written (contents, and [`ENTRY_COST`]
    /// per path component of each entry) before the extraction stops and defers.
    unverified_left: Option<u64>,
    /// The unverified budget ran out: the caller extracts the verified blob instead.
    deferred: bool,
    /// Every member path written or recorded, so a second member of the same path is
    /// refused whatever its kind (zip readers keep only the last of a name).
    seen: HashSet<PathBuf>,
    /// Files whose archive mode has an exec bit: they get it in `finish`, after verification.
    exec: Vec<PathBuf>,
    /// Symlink members (path -> target), created last, so no member is written through one;
    /// no member may lie under one.
    links: BTreeMap<PathBuf, PathBuf>,
    /// Copy buffer, reused across members.
    buf: Vec<u8>,
    /// Counts the bytes written, for a person watching a long extraction.
    bar: Bar,
}

const COPY_CHUNK: usize = 512 << 10;

impl Extractor {
    fn new(
        name: &str,
        layout: &Layout,
        dest: &Path,
        limits: Limits,
        unverified: Option<u64>,
    ) -> Result<Extractor> {
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
            written_files: None,
            archive: name.to_string(),
            dest: dest.to_path_buf(),
            prefix,
            limits,
            written: 0,
            entries: 0,
            unverified_left: unverified,
            deferred: false,
            seen: HashSet::new(),
            exec: Vec::new(),
            links: BTreeMap::new(),
            buf: Vec::new(),
            bar: Bar::hidden(),
        })
    }

    /// Once the bytes are verified: create the deferred symlinks, then give the exec bit
    /// (wherever the read bit is) to the files the archive marks executable and to the
    /// declared binaries, each of which must be a regular file.
    fn finish(mut self, layout: &Layout) -> Result<()> {
        self.finish_links()?;
        let mut exec = std::mem::take(&mut self.exec);
        for exe in &layout.executables {
            let rel = executable_path(exe).map_err(|why| self.unsafe_(why))?;
            let meta = fs::symlink_metadata(self.dest.join(&rel)).map_err(|_| {
                Error::input(
                    format!("`{exe}` is declared executable but `{}` has no such file", self.archive),
                    "fix the binaries of the pin (paths are relative to the tree after --strip-prefix)",
                )
            })?;
            if !meta.is_file() {
                let kind = if meta.is_dir() {
                    "a directory"
                } else if meta.file_type().is_symlink() {
                    "a symlink"
                } else {
                    "not a regular file"
                };
                return Err(Error::input(
                    format!(
                        "`{exe}` is declared executable but in `{}` it is {kind}",
                        self.archive
                    ),
                    "name the regular file itself (paths are relative to the tree after --strip-prefix)",
                ));
            }
            exec.push(rel);
        }
        for rel in exec {
            let path = self.dest.join(&rel);
            let meta = fs::symlink_metadata(&path).ctx("inspect", &path)?;
            if meta.is_file() {
                let mode = crate::sys::mode(&meta);
                let with_x = mode | ((mode & 0o444) >> 2) | 0o100;
                if with_x != mode {
                    crate::pipeline::store::set_mode(&path, with_x)?;
                }
            }
        }
        Ok(())
    }

    /// Count one member (every header, even one that is skipped): refuse past the cap.
    fn count_entry(&mut self) -> Result<()> {
        self.entries += 1;
        if self.entries > self.limits.max_entries {
            return Err(self.too_many_entries());
        }
        Ok(())
    }

    /// Charge a member's path to the unverified budget: [`ENTRY_COST`] per component, for
    /// the file or directories it may create.
    fn charge_path(&mut self, rel: &Path) -> Result<()> {
        self.charge_unverified(ENTRY_COST.saturating_mul(rel.components().count().max(1) as u64))
    }

    fn too_many_entries(&self) -> Error {
        self.unsafe_(format!(
            "it holds more than {} entries (set {ENV_MAX_ENTRIES} to change the cap)",
            self.limits.max_entries
        ))
    }

    /// Charge `n` bytes to the unverified budget; past it, stop (the caller defers).
    fn charge_unverified(&mut self, n: u64) -> Result<()> {
        if let Some(left) = self.unverified_left {
            if n > left {
                self.deferred = true;
                return Err(self.unsafe_(
                    "the unverified stream reached its budget; extraction waits for verification",
                ));
            }
            self.unverified_left = Some(left - n);
        }
        Ok(())
    }

    /// A read of the archive failed: corrupt, or (xz) its decoder would need more memory than
    /// [`XZ_MEMORY_KIB`].
    fn unreadable(&self, what: String, e: io::Error) -> Error {
        if e.kind() == io::ErrorKind::OutOfMemory {
            self.unsafe_(format!(
                "its xz dictionary needs more than the {} MiB protoreg allows a decoder",
                XZ_MEMORY_KIB >> 10
            ))
        } else {
            self.unsafe_(format!("{what}: {e}"))
        }
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
    /// link exists) nor repeat any member.
    fn guard(&mut self, rel: &Path) -> Result<()> {
        if !self.seen.insert(rel.to_path_buf()) {
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

    /// `create_dir_all` inside the tree. The tree is new, so a path in the way that is not a
    /// directory (the archive named `a` as a file, then `a/b`) is the archive's fault.
    fn make_dir(&self, rel: &Path, path: &Path) -> Result<()> {
        fs::create_dir_all(path).map_err(|e| {
            if matches!(
                e.kind(),
                io::ErrorKind::AlreadyExists | io::ErrorKind::NotADirectory
            ) {
                self.unsafe_(format!(
                    "member `{}` needs a directory where the archive has a file or a link",
                    rel.display()
                ))
            } else {
                Error::io("create directory", path, e)
            }
        })
    }

    fn write_file(&mut self, rel: &Path, src: &mut dyn Read, executable: bool) -> Result<()> {
        self.guard(rel)?;
        let path = self.dest.join(rel);
        if let Some(parent) = path.parent() {
            self.make_dir(rel, parent)?;
        }
        // Never an exec bit before verification: `finish` adds it.
        if executable {
            self.exec.push(rel.to_path_buf());
        }
        let mut f = crate::sys::create_new(&path, 0o644).map_err(|e| {
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
                    break Err(self.unreadable(format!("cannot read member `{}`", rel.display()), e))
                }
            };
            n += k as u64;
            if self.written + n > self.limits.max_bytes {
                break Err(self.unsafe_(format!(
                    "it expands past the cap of {} bytes (set {ENV_MAX_EXTRACT} to change it)",
                    self.limits.max_bytes
                )));
            }
            if let Err(e) = self.charge_unverified(k as u64) {
                break Err(e);
            }
            if let Err(e) = f.write_all(&buf[..k]) {
                break Err(Error::io("write", &path, e));
            }
            self.bar.inc(k as u64);
        };
        self.buf = buf;
        copied?;
        self.written += n;
        f.flush().ctx("write", &path)?;
        if let Some(tx) = &self.written_files {
            // A listener that has gone away only means nobody hashes ahead.
            let _ = tx.send(path);
        }
        Ok(())
    }

    fn dir(&mut self, rel: &Path) -> Result<()> {
        self.guard(rel)?;
        let path = self.dest.join(rel);
        self.make_dir(rel, &path)
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
                self.make_dir(&rel, parent)?;
            }
            crate::sys::symlink(&target, &path).map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    self.unsafe_(format!(
                        "symlink `{}` is at a path the archive also uses for another member",
                        rel.display()
                    ))
                } else {
                    Error::io("create symlink", &path, e)
                }
            })?;
        }
        Ok(())
    }

    /// Walk a compressed tar, decoded by `format`'s decompressor as it is read.
    fn tar(&mut self, format: Format, reader: impl Read) -> Result<()> {
        match format {
            // A gzip file may be several members back to back (`cat a.gz b.gz`, pigz, bgzip):
            // all of them are the archive, as `tar xzf` reads it. Likewise xz streams.
            Format::TarGz => self.tar_entries(format, flate2::read::MultiGzDecoder::new(reader)),
            Format::TarXz => self.tar_entries(
                format,
                lzma_rust2::XzReader::new_mem_limit(reader, true, XZ_MEMORY_KIB),
            ),
            Format::Zip | Format::Raw => Err(self.unsafe_(format!("`{format}` is not a tar"))),
        }
    }

    /// Walk a decompressed tar stream, writing each member.
    fn tar_entries(&mut self, format: Format, decoded: impl Read) -> Result<()> {
        let mut tar = tar::Archive::new(decoded);
        let corrupt = |e: io::Error, this: &Self| this.unreadable(format!("corrupt {format}"), e);
        for entry in tar.entries().map_err(|e| corrupt(e, self))? {
            let mut entry = entry.map_err(|e| corrupt(e, self))?;
            self.count_entry()?;
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
            self.charge_path(&rel)?;
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
                    // Never rewritten: a target that is not UTF-8 is refused, not lossily
                    // changed into another one.
                    let target = entry
                        .link_name_bytes()
                        .map(|b| String::from_utf8(b.into_owned()))
                        .transpose()
                        .map_err(|_| {
                            self.unsafe_(format!(
                                "the target of symlink `{}` is not UTF-8",
                                rel.display()
                            ))
                        })?
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
        let file = open_archive(archive)?;
        let mut zip = zip::ZipArchive::new(io::BufReader::new(file))
            .map_err(|e| self.unsafe_(format!("corrupt zip: {e}")))?;
        // The reader indexes members by name, keeping only the last of a name: a repeated
        // name would silently replace a member.
        if zip.has_duplicate_names() {
            return Err(self.unsafe_("a member name appears twice"));
        }
        if zip.len() as u64 > self.limits.max_entries {
            return Err(self.too_many_entries());
        }
        for i in 0..zip.len() {
            let mut member = zip
                .by_index(i)
                .map_err(|e| self.unsafe_(format!("corrupt zip member {i}: {e}")))?;
            self.count_entry()?;
            let name = String::from_utf8(member.name_raw().to_vec())
                .map_err(|_| self.unsafe_("a member name is not UTF-8"))?;
            let Some(rel) = self.member_path(&name)? else {
                continue;
            };
            self.charge_path(&rel)?;
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
    use std::os::unix::fs::PermissionsExt;

    /// A tar.gz of `(name, mode, data)` regular files, in memory.
    fn tgz(members: &[(&str, u32, &[u8])]) -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut b = tar::Builder::new(gz);
        for (name, mode, data) in members {
            let mut h = tar::Header::new_gnu();
            h.set_entry_type(tar::EntryType::Regular);
            h.set_mode(*mode);
            h.set_size(data.len() as u64);
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap().finish().unwrap()
    }

    fn layout(executables: &[&str]) -> Layout {
        Layout {
            format: Format::TarGz,
            strip_prefix: None,
            executables: executables.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn the_caps_are_positive_whole_numbers_or_their_defaults() {
        let parse =
            |b: Option<&str>, e: Option<&str>| Limits::parse(b.map(Into::into), e.map(Into::into));
        assert_eq!(parse(None, None).unwrap(), Limits::default());
        assert_eq!(parse(Some(""), Some("")).unwrap().max_entries, 100_000);
        let l = parse(Some("1000"), Some(" 7 ")).unwrap();
        assert_eq!((l.max_bytes, l.max_entries), (1000, 7));
        for bad in ["0", "-1", "1e6", "lots", "99999999999999999999999"] {
            for (b, e, name) in [
                (Some(bad), None, ENV_MAX_EXTRACT),
                (None, Some(bad), ENV_MAX_ENTRIES),
            ] {
                let err = parse(b, e).unwrap_err();
                assert_eq!(err.exit_code(), 2, "{bad}");
                let text = err.to_string();
                assert!(text.contains(name) && text.contains("hint:"), "{text}");
            }
        }
    }

    #[test]
    fn the_unverified_budget_follows_the_pin() {
        assert_eq!(unverified_budget(Some(2_000_000)), 32_000_000);
        assert_eq!(unverified_budget(None), 256 << 20);
        assert_eq!(unverified_budget(Some(u64::MAX)), u64::MAX);
    }

    #[test]
    fn a_stream_past_its_unverified_budget_stops_and_removes_what_it_wrote() {
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("x");
        fs::create_dir(&dest).unwrap();
        let zeros = vec![0u8; 8 << 20];
        let body = tgz(&[("a", 0o644, b"a"), ("big", 0o644, &zeros)]);
        let budget = unverified_budget(Some(body.len() as u64));
        assert!(budget < zeros.len() as u64);
        let got = extract_tar_stream(
            &body[..],
            "t",
            &layout(&[]),
            &dest,
            Limits::default(),
            budget,
            None,
        )
        .unwrap();
        assert!(matches!(got, Streamed::Deferred));
        assert!(!dest.exists(), "what the stream wrote was left behind");
        // The same bytes, once verified, extract whole.
        let blob = t.path().join("blob");
        fs::write(&blob, &body).unwrap();
        let tree = t.path().join("tree");
        fs::create_dir(&tree).unwrap();
        extract(&blob, &layout(&[]), &tree).unwrap();
        assert_eq!(
            fs::metadata(tree.join("big")).unwrap().len(),
            zeros.len() as u64
        );
    }

    #[test]
    fn entries_past_the_cap_are_refused() {
        let t = tempfile::tempdir().unwrap();
        let names: Vec<String> = (0..11).map(|i| format!("f{i}")).collect();
        let members: Vec<(&str, u32, &[u8])> = names
            .iter()
            .map(|n| (n.as_str(), 0o644, &b""[..]))
            .collect();
        let body = tgz(&members);
        let limits = Limits {
            max_entries: 10,
            ..Limits::default()
        };
        let dest = t.path().join("x");
        fs::create_dir(&dest).unwrap();
        let err = extract_tar_stream(&body[..], "t", &layout(&[]), &dest, limits, u64::MAX, None)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("more than 10 entries") && err.contains(ENV_MAX_ENTRIES),
            "{err}"
        );
        let dest = t.path().join("y");
        fs::create_dir(&dest).unwrap();
        let limits = Limits {
            max_entries: 11,
            ..limits
        };
        extract_tar_stream(&body[..], "t", &layout(&[]), &dest, limits, u64::MAX, None).unwrap();
    }

    #[test]
    fn exec_bits_wait_for_finish() {
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("x");
        fs::create_dir(&dest).unwrap();
        let body = tgz(&[
            ("bin/tool", 0o755, b"#!/bin/sh\n"),
            ("bin/plain", 0o644, b"x"),
        ]);
        let got = extract_tar_stream(
            &body[..],
            "t",
            &layout(&["bin/plain"]),
            &dest,
            Limits::default(),
            u64::MAX,
            None,
        )
        .unwrap();
        let Streamed::Extracted(unfinished) = got else {
            panic!("deferred")
        };
        for f in ["bin/tool", "bin/plain"] {
            assert_eq!(
                mode(&dest.join(f)) & 0o111,
                0,
                "{f} executable before verification"
            );
        }
        unfinished.finish(&layout(&["bin/plain"])).unwrap();
        for f in ["bin/tool", "bin/plain"] {
            assert_eq!(mode(&dest.join(f)) & 0o111, 0o111, "{f}");
        }
    }

    #[test]
    fn a_multi_member_gzip_is_read_whole() {
        // One tar stream cut in two at a member boundary, each half its own gzip member.
        let tar = {
            let mut b = tar::Builder::new(Vec::new());
            for name in ["first", "second"] {
                let mut h = tar::Header::new_gnu();
                h.set_mode(0o644);
                h.set_size(3);
                b.append_data(&mut h, name, &b"abc"[..]).unwrap();
            }
            b.into_inner().unwrap()
        };
        let mut body = Vec::new();
        for part in [&tar[..1024], &tar[1024..]] {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(part).unwrap();
            body.extend(gz.finish().unwrap());
        }
        let t = tempfile::tempdir().unwrap();
        let dest = t.path().join("x");
        fs::create_dir(&dest).unwrap();
        let Streamed::Extracted(u) = extract_tar_stream(
            &body[..],
            "t",
            &layout(&[]),
            &dest,
            Limits::default(),
            u64::MAX,
            None,
        )
        .unwrap() else {
            panic!("deferred")
        };
        u.finish(&layout(&[])).unwrap();
        assert_eq!(fs::read(dest.join("second")).unwrap(), b"abc");
    }

    #[test]
    fn formats_by_name_and_by_file_name() {
        for (name, format) in [
            ("zip", Format::Zip),
            ("tar.gz", Format::TarGz),
            ("tgz", Format::TarGz),
            ("tar.xz", Format::TarXz),
            ("txz", Format::TarXz),
            ("raw", Format::Raw),
        ] {
            assert_eq!(name.parse::<Format>().unwrap(), format);
        }
        let err = "tar.bz2".parse::<Format>().unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("tar.xz"), "{err}");
        for (file, format) in [
            ("protoc-36.2-win64.zip", Format::Zip),
            ("buf-Linux-x86_64.tar.gz", Format::TarGz),
            ("x.tgz", Format::TarGz),
            ("node-v22.12.0-linux-x64.tar.xz", Format::TarXz),
            ("x.txz", Format::TarXz),
            ("buf-Windows-x86_64.exe", Format::Raw),
            ("protoc-gen-es", Format::Raw),
        ] {
            assert_eq!(Format::of_file_name(file), format, "{file}");
        }
    }

    #[test]
    fn an_executable_must_name_a_file_in_the_tree() {
        for bad in [".", "./", "a/..", "/bin/x", "../x", ""] {
            let l = layout(&[bad]);
            assert_eq!(l.validate().unwrap_err().exit_code(), 2, "{bad:?}");
        }
        layout(&["bin/protoc", "./bin/buf"]).validate().unwrap();
    }

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
