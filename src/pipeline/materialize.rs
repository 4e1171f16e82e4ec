//! Materialize a cached tree into the requested output directory, staged beside the output
//! and renamed into place, so a failure leaves no output. Files are cloned copy-on-write where
//! the file system can (`--link auto`, the default), else copied (`--link copy` always
//! copies): either way the output is the user's, and writing to it never changes the cache.
//! `--link hardlink` shares the cache's inodes instead: fastest, but whoever can write to the
//! output's files (root, or its owner after `chmod u+w`) changes the cached file with them.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{Error, IoContext, Result};
use crate::pipeline::store::{remove_tree, unique_name};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// A copy-on-write clone of each file where the file system has them, else a copy.
    Auto,
    Copy,
    Hardlink,
}

/// How the files of a materialized tree were made (for `--json`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Linked {
    pub cloned: usize,
    pub copied: usize,
    pub hardlinked: usize,
}

impl Linked {
    /// `clone`, `copy` or `hardlink` when every file was made that way, else `mixed`; for a
    /// tree without files, `none`.
    pub fn method(&self) -> &'static str {
        match (self.cloned, self.copied, self.hardlinked) {
            (0, 0, 0) => "none",
            (_, 0, 0) => "clone",
            (0, _, 0) => "copy",
            (0, 0, _) => "hardlink",
            _ => "mixed",
        }
    }
}

impl FromStr for Link {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "auto" => Ok(Link::Auto),
            "copy" => Ok(Link::Copy),
            "hardlink" => Ok(Link::Hardlink),
            _ => Err(Error::input(
                format!("unknown --link `{s}`"),
                "use auto (clone where the file system can, else copy; the default), copy, or \
                 hardlink (shares the cache's files: writing to the output changes the cache)",
            )),
        }
    }
}

/// Refuse an output that holds anything: materialize never overwrites a user's files. A
/// symlink is refused whatever it points at: the output is replaced, never written through.
pub fn check_output(out: &Path) -> Result<()> {
    if fs::symlink_metadata(out).is_ok_and(|m| m.file_type().is_symlink()) {
        let target = fs::read_link(out)
            .map(|t| format!(" (to `{}`)", t.display()))
            .unwrap_or_default();
        return Err(Error::input(
            format!(
                "the output `{}` is a symbolic link{target}; protoreg never writes through one",
                out.display()
            ),
            "remove the link, or give --out a path that does not exist (or an empty directory \
             that is not a link)",
        ));
    }
    match fs::read_dir(out) {
        Ok(mut rd) => {
            if rd.next().is_some() {
                return Err(Error::input(
                    format!(
                        "the output directory `{}` exists and is not empty",
                        out.display()
                    ),
                    "remove it, or choose another --out",
                ));
            }
            Ok(())
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotADirectory => Err(Error::input(
            format!("the output `{}` exists and is a file", out.display()),
            "choose another --out",
        )),
        Err(e) => Err(Error::io("inspect the output directory", out, e)),
    }
}

/// Refuse an output inside the cache: a tree copied into itself never ends (root, whom
/// read-only trees do not stop, copied until ENAMETOOLONG), and anything written there is
/// protoreg's to remove. Both paths are compared as the file system resolves them.
pub fn check_outside_cache(out: &Path, cache: &Path) -> Result<()> {
    let (Some(out_real), Ok(cache_real)) = (resolved(out), fs::canonicalize(cache)) else {
        return Ok(()); // no cache yet: nothing to be inside of
    };
    if out_real.starts_with(&cache_real) {
        return Err(Error::input(
            format!(
                "the output `{}` is inside the cache `{}`",
                out.display(),
                cache.display()
            ),
            "give --out a directory outside the cache (Buck2 gives each action its own); \
             the cache's trees are protoreg's and are never written to",
        ));
    }
    Ok(())
}

/// `path` with its longest existing ancestor canonicalized and the rest appended: where it
/// would be created, through any symlinked directory on the way.
fn resolved(path: &Path) -> Option<PathBuf> {
    use std::path::Component;
    let abs = std::path::absolute(path).ok()?;
    let mut rest = Vec::new();
    let mut cur = abs.as_path();
    loop {
        if let Ok(mut real) = fs::canonicalize(cur) {
            // What does not exist yet is created as plain directories: `..` there is lexical.
            for c in rest.iter().rev() {
                match c {
                    Component::ParentDir => {
                        real.pop();
                    }
                    Component::Normal(name) => real.push(name),
                    _ => {}
                }
            }
            return Some(real);
        }
        rest.push(cur.components().next_back()?);
        cur = cur.parent()?;
    }
}

/// A staging path beside `out` (same file system, so the final rename is atomic).
pub fn staging_path(out: &Path) -> Result<PathBuf> {
    let name = out.file_name().ok_or_else(|| {
        Error::input(
            format!("`{}` is not a directory name", out.display()),
            "give --out a directory path",
        )
    })?;
    let parent = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&parent).ctx("create the parent of the output", &parent)?;
    Ok(parent.join(format!(".{}", unique_name(&name.to_string_lossy()))))
}

/// Move a finished staging directory to `out` (an empty `out` is replaced).
pub fn promote(staging: &Path, out: &Path) -> Result<()> {
    // symlink_metadata: a link put there since the check is replaced, never followed.
    if fs::symlink_metadata(out).is_ok_and(|m| m.is_dir()) {
        let _ = fs::remove_dir(out);
    }
    fs::rename(staging, out).map_err(|e| {
        remove_tree(staging);
        Error::io("move the result to", out, e)
    })
}

/// Clone, copy or hardlink `tree` to `out`; say how the files were made.
pub fn materialize(tree: &Path, out: &Path, link: Link) -> Result<Linked> {
    check_output(out)?;
    let staging = staging_path(out)?;
    match link_tree(tree, &staging, link) {
        Ok(linked) => promote(&staging, out).map(|()| linked),
        Err(e) => {
            remove_tree(&staging);
            Err(e)
        }
    }
}

fn link_tree(src: &Path, dest: &Path, link: Link) -> Result<Linked> {
    let mut copies = Vec::new();
    let mut linked = Linked::default();
    plan_tree(src, dest, link, &mut copies, &mut linked)?;
    let (cloned, copied) = copy_files(copies, link == Link::Auto)?;
    linked.cloned = cloned;
    linked.copied += copied;
    Ok(linked)
}

/// Create the directories, symlinks and hardlinks of the tree; collect the files to copy.
fn plan_tree(
    src: &Path,
    dest: &Path,
    link: Link,
    copies: &mut Vec<(u64, PathBuf, PathBuf)>,
    linked: &mut Linked,
) -> Result<()> {
    fs::create_dir(dest).ctx("create directory", dest)?;
    for entry in fs::read_dir(src).ctx("read directory", src)? {
        let entry = entry.ctx("read directory", src)?;
        let (from, to) = (entry.path(), dest.join(entry.file_name()));
        let kind = entry.file_type().ctx("inspect", &from)?;
        if kind.is_dir() {
            plan_tree(&from, &to, link, copies, linked)?;
        } else if kind.is_symlink() {
            let target = fs::read_link(&from).ctx("read symlink", &from)?;
            crate::sys::symlink(&target, &to).ctx("create symlink", &to)?;
        } else {
            // Hardlinks share the cache's read-only inode: root, or the owner after
            // `chmod u+w`, changes the cached file by writing to the output (an explicit
            // opt-in; `cache verify` finds such a change). Across file systems they fail,
            // and we copy instead.
            if link == Link::Hardlink && fs::hard_link(&from, &to).is_ok() {
                linked.hardlinked += 1;
                continue;
            }
            let size = entry.metadata().ctx("inspect", &from)?.len();
            copies.push((size, from, to));
        }
    }
    Ok(())
}

/// Copy (or with `clone`, clone where the file system can) files, the largest first, on a few
/// threads ([`crate::pipeline::spread`]). Returns how many were cloned and how many copied.
fn copy_files(mut copies: Vec<(u64, PathBuf, PathBuf)>, clone: bool) -> Result<(usize, usize)> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let cloned = AtomicUsize::new(0);
    // Once the file system says it cannot clone, the rest are copied without asking again.
    let can_clone = AtomicBool::new(clone);
    crate::pipeline::spread::largest_first(
        &mut copies,
        |c| c.0,
        16 << 20,
        |(_, from, to)| {
            if can_clone.load(Ordering::Relaxed) {
                match crate::sys::clone_file(from, to) {
                    Ok(()) => {
                        make_users(from, to)?;
                        cloned.fetch_add(1, Ordering::Relaxed);
                        return Ok(());
                    }
                    Err(e) if crate::sys::clone_unsupported(&e) => {
                        can_clone.store(false, Ordering::Relaxed);
                    }
                    Err(e) => return Err(Error::io("clone to", to, e)),
                }
            }
            copy_one(from, to)
        },
    )?;
    let cloned = cloned.load(Ordering::Relaxed);
    Ok((cloned, copies.len() - cloned))
}

fn copy_one(from: &Path, to: &Path) -> Result<()> {
    fs::copy(from, to).ctx("copy to", to)?;
    // Copies are the user's to change and delete.
    let mode = crate::sys::mode(&fs::metadata(to).ctx("inspect", to)?);
    crate::pipeline::store::set_mode(to, mode | 0o200)
}

/// A clone gets its source's permissions (exec bits included), plus the user's write bit.
fn make_users(from: &Path, to: &Path) -> Result<()> {
    let mode = crate::sys::mode(&fs::metadata(from).ctx("inspect", from)?) & 0o777;
    crate::pipeline::store::set_mode(to, mode | 0o200)
}
