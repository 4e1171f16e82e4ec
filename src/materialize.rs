//! Materialize a cached tree into the requested output directory: copy (the default) or
//! hardlink, staged beside the output and renamed into place, so a failure leaves no output.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use crate::error::{Error, IoContext, Result};
use crate::store::{remove_tree, unique_name};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Copy,
    Hardlink,
}

impl FromStr for Link {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "copy" => Ok(Link::Copy),
            "hardlink" => Ok(Link::Hardlink),
            _ => Err(Error::input(
                format!("unknown --link `{s}`"),
                "use copy or hardlink",
            )),
        }
    }
}

/// Refuse an output that holds anything: materialize never overwrites a user's files.
pub fn check_output(out: &Path) -> Result<()> {
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
    if out.is_dir() {
        let _ = fs::remove_dir(out);
    }
    fs::rename(staging, out).map_err(|e| {
        remove_tree(staging);
        Error::io("move the result to", out, e)
    })
}

/// Copy or hardlink `tree` to `out`.
pub fn materialize(tree: &Path, out: &Path, link: Link) -> Result<()> {
    check_output(out)?;
    let staging = staging_path(out)?;
    if let Err(e) = link_tree(tree, &staging, link) {
        remove_tree(&staging);
        return Err(e);
    }
    promote(&staging, out)
}

fn link_tree(src: &Path, dest: &Path, link: Link) -> Result<()> {
    let mut copies = Vec::new();
    plan_tree(src, dest, link, &mut copies)?;
    copy_files(copies)
}

/// Create the directories, symlinks and hardlinks of the tree; collect the files to copy.
fn plan_tree(
    src: &Path,
    dest: &Path,
    link: Link,
    copies: &mut Vec<(u64, PathBuf, PathBuf)>,
) -> Result<()> {
    fs::create_dir(dest).ctx("create directory", dest)?;
    for entry in fs::read_dir(src).ctx("read directory", src)? {
        let entry = entry.ctx("read directory", src)?;
        let (from, to) = (entry.path(), dest.join(entry.file_name()));
        let kind = entry.file_type().ctx("inspect", &from)?;
        if kind.is_dir() {
            plan_tree(&from, &to, link, copies)?;
        } else if kind.is_symlink() {
            let target = fs::read_link(&from).ctx("read symlink", &from)?;
            std::os::unix::fs::symlink(target, &to).ctx("create symlink", &to)?;
        } else {
            // Hardlinks share the cache's read-only inode: the cache cannot be edited through
            // the output. Across file systems they fail, and we copy instead.
            if link == Link::Hardlink && fs::hard_link(&from, &to).is_ok() {
                continue;
            }
            let size = entry.metadata().ctx("inspect", &from)?.len();
            copies.push((size, from, to));
        }
    }
    Ok(())
}

/// Copy files, the largest first, on up to four threads when there is enough to share: a
/// tool tree is a few big binaries, and one core copies page cache at a few GB/s.
fn copy_files(mut copies: Vec<(u64, PathBuf, PathBuf)>) -> Result<()> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    copies.sort_by_key(|c| std::cmp::Reverse(c.0));
    let total: u64 = copies.iter().map(|c| c.0).sum();
    let threads = if total < (16 << 20) {
        1
    } else {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
            .min(4)
            .min(copies.len())
    };
    let next = AtomicUsize::new(0);
    let work = || -> Result<()> {
        while let Some((_, from, to)) = copies.get(next.fetch_add(1, Ordering::Relaxed)) {
            copy_one(from, to)?;
        }
        Ok(())
    };
    if threads <= 1 {
        return work();
    }
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads).map(|_| scope.spawn(work)).collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    Err(Error::input(
                        "a copy thread panicked",
                        "report this as a bug",
                    ))
                })
            })
            .collect::<Result<Vec<()>>>()
            .map(|_| ())
    })
}

fn copy_one(from: &Path, to: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::copy(from, to).ctx("copy to", to)?;
    // Copies are the user's to change and delete.
    let mode = fs::metadata(to).ctx("inspect", to)?.permissions().mode();
    crate::store::set_mode(to, mode | 0o200)
}
