//! Every call protoreg makes beyond portable `std`, in one place: permission bits, the
//! no-replace rename that makes installs atomic, copy-on-write clones, symlinks, file
//! identity, pipe sizing, process groups, and containing an unsandboxed program. Linux and macOS get the native calls; every other system gets a
//! portable fallback here, so a port is a matter of this module.
//!
//! Modes are Unix permission bits everywhere. Where a system has none, [`mode`] reports what
//! it can (read-only or not) in those terms and [`set_mode`] keeps only the write bit.

use std::fs::{File, Metadata};
use std::io;
use std::path::Path;

/// The permission bits of `meta` (`0o7777` at most).
#[cfg(unix)]
pub fn mode(meta: &Metadata) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    meta.permissions().mode() & 0o7777
}

#[cfg(not(unix))]
pub fn mode(meta: &Metadata) -> u32 {
    let base = if meta.is_dir() { 0o755 } else { 0o644 };
    if meta.permissions().readonly() {
        base & 0o555
    } else {
        base
    }
}

/// The user's home directory: `$HOME` on Unix (unset or empty: none, so a test or a sandbox
/// that clears it sees no `~/.netrc` or `~/.docker`), the profile folder elsewhere.
pub fn home_dir() -> Option<std::path::PathBuf> {
    #[cfg(unix)]
    return std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(std::path::PathBuf::from);
    #[cfg(not(unix))]
    dirs::home_dir()
}

/// The name of the netrc file in the home directory, as curl looks for it.
#[cfg(not(windows))]
pub const NETRC: &str = ".netrc";
#[cfg(windows)]
pub const NETRC: &str = "_netrc";

/// Set the permission bits of `path` (not following a symlink's target is the caller's
/// business: it never calls this on one).
#[cfg(unix)]
pub fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(not(unix))]
pub fn set_mode(path: &Path, mode: u32) -> io::Result<()> {
    let mut permissions = std::fs::metadata(path)?.permissions();
    permissions.set_readonly(mode & 0o222 == 0);
    std::fs::set_permissions(path, permissions)
}

/// Create the new file `path` (refusing one that exists) with `mode` from the start, so no
/// moment exists at which it has wider bits.
pub fn create_new(path: &Path, mode: u32) -> io::Result<File> {
    let mut options = File::options();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    options.open(path)
}

/// Rename `from` to `to` unless `to` exists, atomically where the system can: the error is
/// [`io::ErrorKind::AlreadyExists`] when something is there. Installs rely on it: the first
/// of several racing writers wins and the others keep their copies to themselves.
#[cfg(target_os = "linux")]
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let (f, t) = (c_path(from)?, c_path(to)?);
    // The system call itself: musl (the static release builds) has no renameat2 wrapper.
    // SAFETY: both pointers are valid NUL-terminated strings for the duration of the call.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
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
        // File systems without renameat2 support: a directory rename onto a non-empty
        // directory still fails, which is the property installs need.
        Some(libc::EINVAL) | Some(libc::ENOSYS) => std::fs::rename(from, to),
        Some(libc::EEXIST) | Some(libc::ENOTEMPTY) => {
            Err(io::Error::new(io::ErrorKind::AlreadyExists, err))
        }
        _ => Err(err),
    }
}

/// `renamex_np(2)` with `RENAME_EXCL`, macOS's no-replace rename.
#[cfg(target_os = "macos")]
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    let (f, t) = (c_path(from)?, c_path(to)?);
    // SAFETY: both pointers are valid NUL-terminated strings for the duration of the call.
    let rc = unsafe { libc::renamex_np(f.as_ptr(), t.as_ptr(), libc::RENAME_EXCL) };
    if rc == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENOTSUP) => rename_checked(from, to),
        Some(libc::EEXIST) | Some(libc::ENOTEMPTY) => {
            Err(io::Error::new(io::ErrorKind::AlreadyExists, err))
        }
        _ => Err(err),
    }
}

/// `MoveFileExW` without `MOVEFILE_REPLACE_EXISTING`, Windows' own no-replace rename (of a
/// file or a directory): it fails with ERROR_ALREADY_EXISTS when `to` exists, atomically.
#[cfg(windows)]
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    use std::os::windows::ffi::OsStrExt;
    #[link(name = "kernel32")]
    extern "system" {
        fn MoveFileExW(existing: *const u16, new: *const u16, flags: u32) -> i32;
    }
    const ERROR_FILE_EXISTS: i32 = 80;
    const ERROR_ALREADY_EXISTS: i32 = 183;
    let wide = |p: &Path| -> Vec<u16> { p.as_os_str().encode_wide().chain([0]).collect() };
    let (f, t) = (wide(from), wide(to));
    // SAFETY: both pointers are valid NUL-terminated UTF-16 strings for the duration of the
    // call; flags 0 (no replace, same volume only).
    if unsafe { MoveFileExW(f.as_ptr(), t.as_ptr(), 0) } != 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(ERROR_FILE_EXISTS) | Some(ERROR_ALREADY_EXISTS) => {
            Err(io::Error::new(io::ErrorKind::AlreadyExists, err))
        }
        _ => Err(err),
    }
}

#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    rename_checked(from, to)
}

/// The portable no-replace rename, where the system offers none: look, then rename. A racing
/// writer can slip in between, and then a directory rename onto its non-empty directory
/// fails, so a tree is never replaced; a file may be, by identical content (callers install
/// content-addressed files only).
#[cfg(not(any(target_os = "linux", windows)))]
fn rename_checked(from: &Path, to: &Path) -> io::Result<()> {
    if std::fs::symlink_metadata(to).is_ok() {
        return Err(io::ErrorKind::AlreadyExists.into());
    }
    std::fs::rename(from, to).map_err(|e| {
        if std::fs::symlink_metadata(to).is_ok() {
            io::Error::new(io::ErrorKind::AlreadyExists, e)
        } else {
            e
        }
    })
}

#[cfg(any(target_os = "linux", target_os = "macos"))]
fn c_path(p: &Path) -> io::Result<std::ffi::CString> {
    use std::os::unix::ffi::OsStrExt;
    std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other)
}

/// Clone `from` to the new file `to` (which must not exist) sharing its blocks copy-on-write:
/// writing to either later never changes the other. Fails (leaving no `to`) where the file
/// system cannot clone; [`clone_unsupported`] tells that apart from a real error.
#[cfg(target_os = "linux")]
pub fn clone_file(from: &Path, to: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let src = File::open(from)?;
    let dst = create_new(to, 0o600)?;
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
    const CLONE_NOFOLLOW: u32 = 0x0001;
    let (f, t) = (c_path(from)?, c_path(to)?);
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
pub fn clone_unsupported(err: &io::Error) -> bool {
    if err.kind() == io::ErrorKind::Unsupported {
        return true;
    }
    #[cfg(unix)]
    {
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
    #[cfg(not(unix))]
    false
}

/// fsync a directory, so the renames and creations in it are durable. Where a directory
/// cannot be opened as a file (Windows), renames are journaled by the file system and there
/// is nothing to do.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    #[cfg(unix)]
    return File::open(dir)?.sync_all();
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// A symlink at `link` pointing at `target` (relative to the link's directory, as in a tool
/// archive). Windows tells file links from directory links: the target decides.
pub fn symlink(target: &Path, link: &Path) -> io::Result<()> {
    #[cfg(unix)]
    return std::os::unix::fs::symlink(target, link);
    #[cfg(windows)]
    {
        let resolved = link.parent().unwrap_or(Path::new(".")).join(target);
        if resolved.is_dir() {
            std::os::windows::fs::symlink_dir(target, link)?;
        } else {
            std::os::windows::fs::symlink_file(target, link)?;
        }
        // Checked, not trusted: Wine reports success and makes nothing, and a tree missing a
        // member must not pass for complete.
        match std::fs::symlink_metadata(link) {
            Ok(m) if m.file_type().is_symlink() => Ok(()),
            _ => Err(io::Error::other(
                "the system reported the symbolic link made, but there is none",
            )),
        }
    }
}

/// Open a cache entry (a file or a directory) so that its modification time can be set:
/// Unix opens either for reading. Windows opens a directory only with backup semantics, and
/// sets times only through a handle with the attribute-writing right (which a read-only
/// file still grants).
pub fn open_to_touch(path: &Path) -> io::Result<File> {
    #[cfg(windows)]
    {
        use std::os::windows::fs::OpenOptionsExt;
        const FILE_READ_ATTRIBUTES: u32 = 0x80;
        const FILE_WRITE_ATTRIBUTES: u32 = 0x100;
        const FILE_FLAG_BACKUP_SEMANTICS: u32 = 0x0200_0000;
        File::options()
            .access_mode(FILE_READ_ATTRIBUTES | FILE_WRITE_ATTRIBUTES)
            .custom_flags(FILE_FLAG_BACKUP_SEMANTICS)
            .open(path)
    }
    #[cfg(not(windows))]
    File::open(path)
}

/// Do two metadata describe the same file (not merely equal ones)? Where `std` exposes no
/// file identity, true: there an open file cannot be unlinked from under its holder, which
/// is the case callers guard against.
pub fn same_file(a: &Metadata, b: &Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        a.dev() == b.dev() && a.ino() == b.ino()
    }
    #[cfg(not(unix))]
    {
        let _ = (a, b);
        true
    }
}

/// A 1 MiB pipe instead of the default 64 KiB: the two threads of a streamed extraction hand
/// over 16 times less often. Best effort (the kernel may cap it at
/// /proc/sys/fs/pipe-max-size); a no-op elsewhere.
pub fn grow_pipe(pipe: &std::io::PipeWriter) {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        // SAFETY: F_SETPIPE_SZ on a pipe fd we own; failure leaves the pipe as it was.
        unsafe {
            libc::fcntl(pipe.as_raw_fd(), libc::F_SETPIPE_SZ, 1 << 20);
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = pipe;
}

/// Run `cmd` in this process's place with its stdin and stdout (Unix: exec(2)); elsewhere
/// run it to the end and exit with its status. Returns only the error that stopped it.
pub fn exec(cmd: &mut std::process::Command) -> io::Error {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.exec()
    }
    #[cfg(not(unix))]
    match cmd.status() {
        Ok(status) => std::process::exit(status.code().unwrap_or(1)),
        Err(e) => e,
    }
}

/// Start `cmd` as the leader of a new process group, so [`kill_group`] reaches whatever it
/// starts (Unix; elsewhere the process alone is killed).
pub fn own_process_group(cmd: &mut std::process::Command) {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    #[cfg(not(unix))]
    let _ = cmd;
}

/// Kill `child` and, on Unix, the process group it leads (see [`own_process_group`]). Call it
/// while the group is known to be in use (the child not reaped yet, or a member still
/// holding its pipes), so its id cannot have been reused.
pub fn kill_group(child: &mut std::process::Child) {
    #[cfg(unix)]
    if let Ok(pid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) takes no pointers; a negative pid signals that process group.
        unsafe {
            libc::kill(-pid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
}

/// Open `path` for reading without ever blocking in the open: on Unix with `O_NONBLOCK`, so a
/// FIFO opens at once even with no writer, and `O_NOCTTY`, so a terminal never becomes
/// protoreg's. The caller checks what it opened ([`crate::textfile::open_regular`]); on a
/// regular file the flag changes nothing. Elsewhere a plain open (no FIFOs at plain paths).
pub fn open_nonblocking(path: &Path) -> io::Result<File> {
    open_nonblocking_with(File::options().read(true), path, false)
}

/// `options` opened at `path` without ever blocking in the open (see [`open_nonblocking`]);
/// with `no_follow`, a symbolic link as the last component is refused by the open itself
/// (Unix `O_NOFOLLOW`), not by a check that a swap could race.
pub fn open_nonblocking_with(
    options: &mut std::fs::OpenOptions,
    path: &Path,
    no_follow: bool,
) -> io::Result<File> {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        options,
        libc::O_NONBLOCK | libc::O_NOCTTY | if no_follow { libc::O_NOFOLLOW } else { 0 },
    );
    #[cfg(not(unix))]
    let _ = no_follow;
    options.open(path)
}

/// Protoreg's hold on an unsandboxed program it runs (the fallback when no OS sandbox can be
/// had; see [`crate::maintain::sandbox`]), from [`Contained::enter`] to [`Contained::end`].
/// On Linux, while held: protoreg is not dumpable, so a same-user process cannot read its
/// `/proc/<pid>/environ`, `cwd` or `mem` (the caller's token, checkout); and it is a child
/// subreaper, so what the program starts and orphans (`setsid`, double fork) is reparented to
/// protoreg instead of init, where [`Contained::end`] finds and kills it. Elsewhere a no-op.
/// Hold it only while protoreg starts nothing else: every child that appears meanwhile is
/// taken for the program's.
pub struct Contained {
    #[cfg(target_os = "linux")]
    was_dumpable: bool,
    #[cfg(target_os = "linux")]
    was_subreaper: bool,
    /// Children protoreg had before: not the program's, never killed.
    #[cfg(target_os = "linux")]
    before: Vec<i32>,
}

/// How often [`Contained::end`] rescans for descendants (each kill can orphan more of them),
/// and for how long at most.
#[cfg(target_os = "linux")]
const REAP_ROUNDS: usize = 500;
#[cfg(target_os = "linux")]
const REAP_TIME: std::time::Duration = std::time::Duration::from_secs(5);

impl Contained {
    #[cfg(target_os = "linux")]
    pub fn enter() -> Contained {
        // SAFETY: prctl with integer arguments only; a failure leaves the flag as it was.
        let (was_dumpable, was_subreaper) = unsafe {
            let mut reaper: libc::c_int = 0;
            let r = libc::prctl(
                libc::PR_GET_CHILD_SUBREAPER,
                &mut reaper as *mut libc::c_int,
            );
            (
                libc::prctl(libc::PR_GET_DUMPABLE) == 1,
                r == 0 && reaper != 0,
            )
        };
        let before = children(std::process::id() as i32);
        // SAFETY: as above.
        unsafe {
            libc::prctl(libc::PR_SET_DUMPABLE, 0 as libc::c_ulong);
            libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong);
        }
        Contained {
            was_dumpable,
            was_subreaper,
            before,
        }
    }

    #[cfg(not(target_os = "linux"))]
    pub fn enter() -> Contained {
        Contained {}
    }

    /// Kill every process the program left behind, all its generations at once in each
    /// round (a kill orphans the next generation to protoreg, the subreaper, and a deep chain
    /// must not outlast the rounds), reaping what became protoreg's, until none is left
    /// (bounded in rounds and time); then restore protoreg's flags. `Ok(killed)`, or
    /// `Err(left)` when some still ran at the bound: the caller must not trust the run.
    pub fn end(self) -> std::result::Result<usize, usize> {
        #[cfg(target_os = "linux")]
        {
            let me = std::process::id() as i32;
            let deadline = std::time::Instant::now() + REAP_TIME;
            let mut killed = 0;
            let mut left = 0;
            for _ in 0..REAP_ROUNDS {
                let tree: Vec<i32> = descendants(me)
                    .into_iter()
                    .filter(|p| !self.before.contains(p))
                    .collect();
                left = tree.len();
                if tree.is_empty() || std::time::Instant::now() >= deadline {
                    break;
                }
                for &pid in &tree {
                    // SAFETY: kill takes no pointers. A descendant's pid cannot be reused
                    // before its parent (or protoreg, the subreaper) reaps it.
                    if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
                        killed += 1;
                    }
                }
                // Reap what is protoreg's now; the rest is reparented here as it dies.
                for pid in children(me)
                    .into_iter()
                    .filter(|p| !self.before.contains(p))
                {
                    let mut status = 0;
                    // SAFETY: the status out-param is a live local.
                    unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
                }
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            // SAFETY: prctl with integer arguments only.
            unsafe {
                if !self.was_subreaper {
                    libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 0 as libc::c_ulong);
                }
                if self.was_dumpable {
                    libc::prctl(libc::PR_SET_DUMPABLE, 1 as libc::c_ulong);
                }
            }
            if left == 0 {
                Ok(killed)
            } else {
                Err(left)
            }
        }
        #[cfg(not(target_os = "linux"))]
        Ok(0)
    }
}

/// Every process below `root` (children, their children, ...), from one reading of
/// `/proc/*/stat`.
#[cfg(target_os = "linux")]
fn descendants(root: i32) -> Vec<i32> {
    let parents = parent_table();
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let p = found[i];
        found.extend(
            parents
                .iter()
                .filter(|&&(_, pp)| pp == p)
                .map(|&(pid, _)| pid),
        );
        i += 1;
    }
    found.remove(0);
    found
}

/// `(pid, parent pid)` of every process `/proc` shows (entries gone between listing and
/// reading are skipped).
#[cfg(target_os = "linux")]
fn parent_table() -> Vec<(i32, i32)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            // `pid (comm) state ppid ...`: comm may hold spaces and parentheses, so the fields
            // are counted after its last `)`. A stat line is short: the kernel bounds comm.
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let rest = &stat[stat.rfind(')')? + 1..];
            Some((pid, rest.split_whitespace().nth(1)?.parse::<i32>().ok()?))
        })
        .collect()
}

/// The processes whose parent is `parent`.
#[cfg(target_os = "linux")]
fn children(parent: i32) -> Vec<i32> {
    parent_table()
        .into_iter()
        .filter(|&(_, pp)| pp == parent)
        .map(|(pid, _)| pid)
        .collect()
}

/// Mark every descriptor above stderr close-on-exec in `cmd`'s child, so nothing protoreg
/// inherited from its caller (a directory, a socket, a credential file) reaches the program.
pub fn close_inherited_on_exec(cmd: &mut std::process::Command) {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: between fork and exec only async-signal-safe calls: close_range(2) (Linux
        // 5.11+, marking, not closing, so the standard library's own exec-error pipe still
        // works), else fcntl(2) on each descriptor up to the limit.
        unsafe {
            cmd.pre_exec(|| {
                #[cfg(target_os = "linux")]
                {
                    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
                    if libc::syscall(libc::SYS_close_range, 3u32, u32::MAX, CLOSE_RANGE_CLOEXEC)
                        == 0
                    {
                        return Ok(());
                    }
                }
                let max = libc::sysconf(libc::_SC_OPEN_MAX).clamp(256, 1 << 16) as libc::c_int;
                for fd in 3..max {
                    let flags = libc::fcntl(fd, libc::F_GETFD);
                    if flags >= 0 {
                        libc::fcntl(fd, libc::F_SETFD, flags | libc::FD_CLOEXEC);
                    }
                }
                Ok(())
            });
        }
    }
    #[cfg(not(unix))]
    let _ = cmd;
}

/// When protoreg runs as root, run `cmd` as `nobody` (65534) instead, with no supplementary
/// groups: a sandbox must not start from root, whose mapped uid 0 keeps powers over the host
/// (`/proc/sys`, setuid files). Returns the uid and gid it will run as, for the files it
/// must own; None when protoreg is not root (the program runs as the caller).
pub fn unprivileged_if_root(cmd: &mut std::process::Command) -> Option<(u32, u32)> {
    #[cfg(unix)]
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: geteuid takes no arguments and cannot fail.
        if unsafe { libc::geteuid() } == 0 {
            // The standard library drops the supplementary groups when root sets a uid.
            cmd.uid(65534).gid(65534);
            return Some((65534, 65534));
        }
    }
    let _ = cmd;
    None
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
                assert!(clone_unsupported(&e), "{e}");
                assert!(!b.exists(), "a refused clone leaves nothing");
            }
        }
        sync_dir(dir.path()).unwrap();
    }

    #[test]
    fn rename_noreplace_moves_once_and_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
        );
        for d in [&a, &b] {
            std::fs::create_dir(d).unwrap();
            std::fs::write(d.join("f"), d.to_string_lossy().as_bytes()).unwrap();
        }
        let err = rename_noreplace(&a, &b).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
        assert_eq!(
            std::fs::read(b.join("f")).unwrap(),
            b.to_string_lossy().as_bytes()
        );
        rename_noreplace(&a, &c).unwrap();
        assert!(!a.exists() && c.join("f").exists());
        // Files too: an existing file is never replaced.
        std::fs::write(&a, b"new").unwrap();
        let err = rename_noreplace(&a, &c.join("f")).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists, "{err}");
    }

    #[test]
    fn modes_round_trip_and_files_are_created_with_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("f");
        drop(create_new(&f, 0o640).unwrap());
        assert!(
            create_new(&f, 0o640).is_err(),
            "create_new refuses an existing file"
        );
        set_mode(&f, 0o555).unwrap();
        let meta = std::fs::metadata(&f).unwrap();
        assert!(meta.permissions().readonly());
        assert_eq!(mode(&meta) & 0o222, 0);
        #[cfg(unix)]
        assert_eq!(mode(&meta), 0o555);
        set_mode(&f, 0o644).unwrap();
        assert!(!std::fs::metadata(&f).unwrap().permissions().readonly());
        assert!(same_file(
            &std::fs::metadata(&f).unwrap(),
            &File::open(&f).unwrap().metadata().unwrap()
        ));
    }
}
