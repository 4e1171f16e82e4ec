//! Running a binary fresh from upstream (bump's `<binary> --version`, before anyone has
//! reviewed the release) with nothing of the caller's.
//!
//! On Linux with bubblewrap (`PROTOREG_SANDBOX`, see [`crate::settings::Sandbox`]) it runs in
//! new user, PID, network, IPC and UTS namespaces, its own session, no capabilities, and a
//! file system of the system's `/usr` (and its merged-/usr links), a fresh `/dev`, `/proc` and
//! `/tmp`, the extracted release read-only at `/release`, and a scratch directory (removed
//! afterwards) as its only writable place and working directory: nothing of the caller's
//! home, checkout or processes is visible, no network is reachable, and when it exits or is
//! killed everything it started dies with its PID namespace.
//!
//! Without bubblewrap (`auto`, and on macOS and Windows) the fallback runs it directly: an
//! empty environment (a fixed PATH, HOME and TMPDIR in the scratch directory), the scratch
//! directory as its working directory, protoreg non-dumpable and a child subreaper meanwhile,
//! and whatever it left behind killed afterwards ([`crate::sys::Contained`]). That keeps
//! protoreg's environment and cwd out of its reach and leaves nothing running, but the binary
//! still has the caller's file access and network: the CI job sets `PROTOREG_SANDBOX=bwrap`.
//!
//! Either way: stdin closed, output read concurrently and bounded, and a time limit after
//! which it and its process group are killed ([`crate::process::run`]).
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::pipeline::store::Scratch;
pub use crate::process::{Ended, Ran};
use crate::settings::Sandbox;

/// How long an upstream binary may take to answer (`--version` is instant).
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// What is kept of each of its stdout and stderr; the rest is read and dropped.
pub const OUTPUT_LIMIT: usize = 64 << 10;
/// The only PATH it sees: the system's own tools, nothing of the caller's.
const PATH: &str = "/usr/bin:/bin";

/// Where bubblewrap is looked for: fixed system directories, never the caller's PATH.
const BWRAP: [&str; 3] = ["/usr/bin/bwrap", "/bin/bwrap", "/usr/local/bin/bwrap"];
/// Where the release and the scratch directory appear inside the sandbox.
const RELEASE: &str = "/release";
const SCRATCH: &str = "/scratch";

/// Run `program` (a path inside the extracted release tree `release`) with `args` in the
/// sandbox, for at most `timeout`, keeping [`OUTPUT_LIMIT`] bytes of each output (more is
/// [`Ended::TooMuchOutput`]: a flood is not a version).
pub fn run(release: &Path, program: &Path, args: &[&str], timeout: Duration) -> Result<Ran> {
    // Joined to the release on both sides of the sandbox: it must stay inside.
    if program.as_os_str().is_empty()
        || !program
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
    {
        return Err(Error::input(
            format!("`{}` is not a path inside the release", program.display()),
            "name the binary by its relative path in the archive (`binaries` in toolchains/tools.bzl)",
        ));
    }
    let bwrap = choose()?;
    let scratch = Scratch::new("protoreg-run")?;
    let (home, tmp) = (scratch.path().join("home"), scratch.path().join("tmp"));
    for dir in [&home, &tmp] {
        std::fs::create_dir(dir).map_err(|e| Error::io("create", dir, e))?;
    }
    let binary = release.join(program);
    if let Some(bwrap) = bwrap {
        let mut cmd = Command::new(bwrap);
        give_scratch(&scratch, crate::sys::unprivileged_if_root(&mut cmd))?;
        cmd.env_clear()
            .args(system_view())
            .arg("--ro-bind")
            .arg(release)
            .arg(RELEASE)
            .arg("--bind")
            .arg(scratch.path())
            .arg(SCRATCH)
            .args(["--chdir", SCRATCH])
            .args(["--setenv", "HOME", &format!("{SCRATCH}/home")])
            .args(["--setenv", "TMPDIR", &format!("{SCRATCH}/tmp")])
            .arg("--")
            .arg(Path::new(RELEASE).join(program))
            .args(args);
        return crate::process::run(&mut cmd, None, timeout, OUTPUT_LIMIT)
            .map_err(|e| Error::io("run", &binary, e));
    }
    let mut cmd = Command::new(&binary);
    give_scratch(&scratch, crate::sys::unprivileged_if_root(&mut cmd))?;
    cmd.args(args).env_clear().current_dir(scratch.path());
    #[cfg(unix)]
    cmd.env("PATH", PATH).env("HOME", &home).env("TMPDIR", &tmp);
    #[cfg(not(unix))]
    {
        // Windows programs need SystemRoot to start at all; it names no secret.
        if let Some(root) = std::env::var_os("SystemRoot") {
            cmd.env("SystemRoot", root);
        }
        cmd.env("USERPROFILE", &home)
            .env("TEMP", &tmp)
            .env("TMP", &tmp);
    }
    let contained = crate::sys::Contained::enter();
    let ran = crate::process::run(&mut cmd, None, timeout, OUTPUT_LIMIT);
    if let Err(left) = contained.end() {
        return Err(Error::Verification {
            what: "what the release's binary left running".into(),
            expected: "nothing".into(),
            actual: format!("{left} processes still running after protoreg's rounds of killing"),
            hint: "the release spawns faster than protoreg can stop it: refusing to trust this \
                   run; install bubblewrap (PROTOREG_SANDBOX=bwrap) and bump again"
                .into(),
        });
    }
    ran.map_err(|e| Error::io("run", &binary, e))
}

/// The scratch directory (and its `home`, `tmp`) for a program that runs as `ids` (nobody,
/// when protoreg is root), closed to every other user.
fn give_scratch(scratch: &Scratch, ids: Option<(u32, u32)>) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for dir in [
            scratch.path().to_path_buf(),
            scratch.path().join("home"),
            scratch.path().join("tmp"),
        ] {
            if let Some((uid, gid)) = ids {
                std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                    .map_err(|e| Error::io("hand over", &dir, e))?;
            }
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| Error::io("close", &dir, e))?;
        }
    }
    #[cfg(not(unix))]
    let _ = (scratch, ids);
    Ok(())
}

/// Check `PROTOREG_SANDBOX` and, where it requires bubblewrap, that it can start a sandbox:
/// bump calls this before fetching anything, so a refusal costs nothing.
pub fn ready() -> Result<()> {
    if crate::settings::sandbox()? == Sandbox::Bwrap {
        choose()?;
    }
    Ok(())
}

/// bubblewrap if it can run, else the fallback (None) where `auto` allows it, with a warning.
fn choose() -> Result<Option<PathBuf>> {
    match (crate::settings::sandbox()?, bubblewrap()) {
        (_, Ok(bwrap)) => Ok(Some(bwrap)),
        (Sandbox::Bwrap, Err(why)) => Err(Error::input(
            format!(
                "{}=bwrap, but bubblewrap cannot start a sandbox here: {why}",
                crate::settings::ENV_SANDBOX
            ),
            "install it (Debian/Ubuntu: `apt-get install bubblewrap`; unprivileged user namespaces must be enabled), or unset PROTOREG_SANDBOX to accept the weaker fallback",
        )),
        (Sandbox::Auto, Err(why)) => {
            warn_fallback(&why);
            Ok(None)
        }
    }
}

/// bubblewrap's arguments for everything but the release and the scratch directory: new
/// namespaces, no capabilities, its own session, dying with protoreg, an empty environment
/// but PATH, and a read-only view of the system's programs and libraries only.
fn system_view() -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = [
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--clearenv",
        "--setenv",
        "PATH",
        PATH,
        "--ro-bind",
        "/usr",
        "/usr",
    ]
    .iter()
    .map(Into::into)
    .collect();
    // The merged-/usr links (or, on an older layout, the directories) as the host has them.
    for top in ["/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"] {
        let Ok(meta) = std::fs::symlink_metadata(top) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            if let Ok(target) = std::fs::read_link(top) {
                args.extend(["--symlink".into(), target.into(), top.into()]);
            }
        } else if meta.is_dir() {
            args.extend(["--ro-bind".into(), top.into(), top.into()]);
        }
    }
    if Path::new("/etc/ld.so.cache").is_file() {
        args.extend(["--ro-bind", "/etc/ld.so.cache", "/etc/ld.so.cache"].map(Into::into));
    }
    args.extend(["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"].map(Into::into));
    // A new /proc still shows the kernel's settings: read-only, whoever the sandbox maps to.
    for knob in ["/proc/sys", "/proc/sysrq-trigger", "/proc/irq", "/proc/bus"] {
        args.extend(["--ro-bind-try", knob, knob].map(Into::into));
    }
    args
}

/// bubblewrap, if one in a system directory can start this sandbox (tried once per run: a
/// machine without unprivileged user namespaces has the program but no sandbox), or why not.
fn bubblewrap() -> std::result::Result<PathBuf, String> {
    static FOUND: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    FOUND.get_or_init(probe).clone()
}

fn probe() -> std::result::Result<PathBuf, String> {
    if !cfg!(target_os = "linux") {
        return Err("bubblewrap is Linux-only".into());
    }
    let Some(bwrap) = BWRAP.iter().map(Path::new).find(|p| p.is_file()) else {
        return Err(format!("no {}", BWRAP.join(", no ")));
    };
    let mut cmd = Command::new(bwrap);
    // As the sandboxes will run: as nobody when protoreg is root.
    crate::sys::unprivileged_if_root(&mut cmd);
    cmd.env_clear()
        .args(system_view())
        .args(["--", "/bin/sh", "-c", ":"]);
    match crate::process::run(&mut cmd, None, TIMEOUT, 4096) {
        Ok(Ran {
            ended: Ended::Exited(s),
            ..
        }) if s.success() => Ok(bwrap.to_path_buf()),
        Ok(ran) => {
            let said = String::from_utf8_lossy(&ran.stderr);
            Err(format!(
                "{} failed ({})",
                bwrap.display(),
                crate::error::sanitize(said.lines().next().unwrap_or("no message").trim())
            ))
        }
        Err(e) => Err(format!("{} does not run: {e}", bwrap.display())),
    }
}

/// Once per run: the fallback does less than the sandbox, and the caller should know.
fn warn_fallback(why: &str) {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        eprintln!(
            "warning: running the upstream binary without an OS sandbox ({why}): its environment and working directory are clean and nothing it starts outlives it, but it can read your files and reach the network\nhint: install bubblewrap (`apt-get install bubblewrap`) and set PROTOREG_SANDBOX=bwrap to require it"
        );
    });
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::time::Instant;

    /// `script` run by `sh` as a release's one binary, `bin/run`.
    fn sh(script: &str, timeout: Duration) -> Ran {
        let release = tempfile::tempdir().unwrap();
        let bin = release.path().join("bin");
        std::fs::create_dir(&bin).unwrap();
        std::fs::write(bin.join("run"), format!("#!/bin/sh\n{script}\n")).unwrap();
        crate::sys::set_mode(&bin.join("run"), 0o755).unwrap();
        run(release.path(), Path::new("bin/run"), &[], timeout).unwrap()
    }

    fn stdout(ran: &Ran) -> String {
        String::from_utf8_lossy(&ran.stdout).to_string()
    }

    #[test]
    fn nothing_of_the_callers_environment_reaches_it() {
        let ran = sh("env; pwd; echo x > here; ls", TIMEOUT);
        let out = stdout(&ran);
        assert!(
            matches!(ran.ended, Ended::Exited(s) if s.success()),
            "{ran:?}"
        );
        let names: Vec<&str> = out
            .lines()
            .filter_map(|l| l.split_once('=').map(|(k, _)| k))
            .collect();
        for name in names {
            assert!(
                ["PATH", "HOME", "TMPDIR", "PWD", "SHLVL", "_", "OLDPWD"].contains(&name),
                "{name} leaked: {out}"
            );
        }
        // Its working directory is the scratch directory (writable, fresh, then removed).
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(
            lines[lines.len() - 3..],
            ["here", "home", "tmp"][..],
            "{out}"
        );
        let cwd = lines[lines.len() - 4];
        assert!(cwd == SCRATCH || cwd.contains("protoreg-run-"), "{out}");
        if cwd != SCRATCH {
            assert!(!Path::new(cwd).exists(), "the scratch directory is removed");
        }
    }

    #[test]
    #[cfg(target_os = "linux")]
    fn in_bubblewrap_it_sees_no_home_no_checkout_no_network_and_cannot_write_the_release() {
        // scripts/install-deps installs it; without it this test fails rather than skips.
        if let Err(why) = bubblewrap() {
            panic!("bubblewrap cannot run here: {why}");
        }
        let checkout = std::env::current_dir().unwrap();
        let home = std::env::var("HOME").unwrap_or_else(|_| "/root".into());
        let script = format!(
            "ls -d '{c}' '{h}' /etc/passwd 2>/dev/null; echo x > /release/bin/new 2>/dev/null && echo wrote-release; \
             echo x > /usr/new 2>/dev/null && echo wrote-usr; ls /sys 2>/dev/null | head -1; \
             ls /proc | grep -c '^[0-9]'; echo done",
            c = checkout.display(),
            h = home
        );
        let ran = sh(&script, TIMEOUT);
        let out = stdout(&ran);
        // Two processes at most: sh, and ls or grep of the pipe (bubblewrap's own init is 1).
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.last(), Some(&"done"), "{ran:?}");
        let visible: usize = lines[lines.len() - 2].parse().unwrap();
        assert!(visible <= 5, "it sees other processes: {out}");
        assert_eq!(lines.len(), 2, "it sees something of the host: {out}");
    }

    #[test]
    fn a_flood_is_stopped_at_the_output_limit() {
        // 1 MiB: more than a pipe holds, so an unread pipe would hang it.
        let ran = sh("head -c 1048576 /dev/zero; echo done", TIMEOUT);
        assert!(
            matches!(
                ran.ended,
                Ended::TooMuchOutput {
                    stream: "stdout",
                    ..
                }
            ),
            "{ran:?}"
        );
        assert_eq!(ran.stdout.len(), OUTPUT_LIMIT);
    }

    #[test]
    fn a_program_outside_the_release_is_refused() {
        let release = tempfile::tempdir().unwrap();
        for bad in ["/bin/sh", "../sh", "bin/../../sh", ""] {
            let e = run(release.path(), Path::new(bad), &[], TIMEOUT).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}: {e}");
        }
    }

    #[test]
    fn a_hung_program_and_what_it_started_are_killed_at_the_limit() {
        let started = Instant::now();
        // A background child holding the pipes, and a foreground one that never ends.
        let ran = sh("sleep 600 & sleep 600", Duration::from_millis(300));
        assert!(matches!(ran.ended, Ended::TimedOut(_)), "{ran:?}");
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        // One that exits at once but leaves a child holding its output: killed too.
        let started = Instant::now();
        let ran = sh("echo hi; sleep 600 &", TIMEOUT);
        assert!(
            matches!(ran.ended, Ended::Exited(s) if s.success()),
            "{ran:?}"
        );
        assert_eq!(ran.stdout, b"hi\n");
        assert!(
            started.elapsed() < Duration::from_secs(8),
            "{:?}",
            started.elapsed()
        );
    }
}
