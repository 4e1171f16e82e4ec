//! Running protoreg as an unprivileged user. Buck2 users are not root, and root skips the
//! permission checks that matter to a cache (renaming a read-only directory, removing a
//! read-only tree). CI runs as root: then every command runs as `nobody` (65534) through
//! `setpriv` (util-linux; `runuser` when it is missing), on directories chowned to it. A
//! developer who is not root already is unprivileged: commands run directly as them. Never
//! skipped: without a way to drop privileges as root, the tests fail.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

pub const NOBODY: u32 = 65534;

enum Wrap {
    /// Not root: run directly.
    Direct,
    Setpriv,
    Runuser,
}

pub struct User {
    pub uid: u32,
    pub gid: u32,
    wrap: Wrap,
    /// The protoreg binary, where this user can execute it.
    bin: PathBuf,
    _bin_dir: Option<super::Scratch>,
}

fn has(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

impl User {
    /// `nobody` when the tests run as root, else the current user.
    pub fn unprivileged() -> User {
        // SAFETY: getters without arguments or failure modes.
        let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let bin = PathBuf::from(env!("CARGO_BIN_EXE_protoreg"));
        if euid != 0 {
            return User {
                uid: euid,
                gid: egid,
                wrap: Wrap::Direct,
                bin,
                _bin_dir: None,
            };
        }
        let wrap = if has("setpriv") {
            Wrap::Setpriv
        } else if has("runuser") {
            Wrap::Runuser
        } else {
            panic!(
                "running as root, and neither setpriv nor runuser (util-linux) is installed: \
                 cannot run protoreg as an unprivileged user"
            );
        };
        let mut user = User {
            uid: NOBODY,
            gid: NOBODY,
            wrap,
            bin: bin.clone(),
            _bin_dir: None,
        };
        // target/ may sit under a directory nobody cannot traverse: then use a copy.
        let reachable = user
            .command("test")
            .arg("-x")
            .arg(&bin)
            .status()
            .is_ok_and(|s| s.success());
        if !reachable {
            let dir = super::scratch();
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            let copy = dir.path().join("protoreg");
            std::fs::copy(&bin, &copy).unwrap();
            std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o755)).unwrap();
            user.bin = copy;
            user._bin_dir = Some(dir);
        }
        let o = user.protoreg().arg("--version").output().unwrap();
        assert!(
            o.status.success(),
            "protoreg does not run as uid {}: {}",
            user.uid,
            super::text(&o)
        );
        user
    }

    /// The protoreg binary, where this user can execute it.
    pub fn bin(&self) -> &Path {
        &self.bin
    }

    /// Is this a dropped-privileges run (root → nobody)?
    pub fn dropped(&self) -> bool {
        !matches!(self.wrap, Wrap::Direct)
    }

    /// A temporary directory this user owns (the test, as root, can still read it).
    pub fn tempdir(&self) -> super::Scratch {
        let dir = super::scratch();
        self.own(dir.path());
        dir
    }

    /// Create `path` (and parents up to an existing directory) owned by this user.
    pub fn own(&self, path: &Path) {
        std::fs::create_dir_all(path).unwrap();
        if self.dropped() {
            std::os::unix::fs::chown(path, Some(self.uid), Some(self.gid)).unwrap();
        }
    }

    /// `program` run as this user.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut c = match self.wrap {
            Wrap::Direct => return Command::new(program),
            Wrap::Setpriv => {
                let mut c = Command::new("setpriv");
                c.arg(format!("--reuid={}", self.uid))
                    .arg(format!("--regid={}", self.gid))
                    .arg("--clear-groups")
                    .arg("--");
                c
            }
            Wrap::Runuser => {
                let mut c = Command::new("runuser");
                c.args(["-u", "nobody", "--"]);
                c
            }
        };
        c.arg(program);
        c
    }

    /// `protoreg` as this user, with the environment of [`super::protoreg`]. setpriv execs,
    /// so the child's pid is protoreg's (a kill reaches protoreg itself).
    pub fn protoreg(&self) -> Command {
        let mut c = self.command(&self.bin);
        c.env_remove("PROTOREG_CACHE_DIR")
            .env_remove("PROTOREG_CONFIG")
            .env_remove("PROTOREG_PINS")
            .env_remove("PROTOREG_AUDIT_LOG")
            .env_remove("PROTOREG_REGISTRY_USERNAME")
            .env_remove("PROTOREG_REGISTRY_PASSWORD")
            .env_remove("PROTOREG_REGISTRY_TOKEN")
            .env_remove("XDG_CACHE_HOME")
            .env("DOCKER_CONFIG", "/nonexistent-docker-config")
            .stdin(Stdio::null());
        c
    }
}
