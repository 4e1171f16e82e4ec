//! Windows programs, run for real under Wine (Debian's `wine64` 8.0): protoreg built for
//! `x86_64-pc-windows-gnu`, and the Windows protoc and buf from upstream's archives.
//!
//! Wine 8.0 has no `bcryptprimitives.dll`, whose `ProcessPrng` Rust's standard library (and
//! Go's runtime, so buf) call for random bytes: a stand-in built here with mingw forwards it
//! to `SystemFunction036` (RtlGenRandom), which Wine has. It goes into the prefix's
//! `system32`, where Go's runtime looks too (next to the program is enough for Rust only).
//!
//! Everything runs as the unprivileged user (`nobody` under root): Wine running as root
//! opens a read-only file for writing where Windows would refuse, which would hide the very
//! cases the cache must get right. One prefix per user, kept under the temp directory
//! between runs (making one takes seconds and ~700 MB); Wine's own server exits by itself
//! a few seconds after its last program.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use super::user::User;
use super::{text, Scratch};

pub const WINE: &str = "/usr/lib/wine/wine64";
const WINESERVER: &str = "/usr/lib/wine/wineserver";

/// The stand-in `bcryptprimitives.dll`: `ProcessPrng` over `SystemFunction036`, whose length
/// is a ULONG, so in pieces.
const PRNG_DLL: &str = r#"#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T size)
{
    while (size > 0) {
        ULONG piece = size > 0x7fffffffUL ? 0x7fffffffUL : (ULONG)size;
        if (!SystemFunction036(data, piece)) return FALSE;
        data += piece;
        size -= piece;
    }
    return TRUE;
}
"#;

pub struct Wine {
    pub user: User,
    /// WINEPREFIX, owned by the user.
    pub prefix: PathBuf,
    /// HOME for Wine itself (not the Windows profile, which is in the prefix).
    home: PathBuf,
    /// protoreg.exe where the user can run it.
    pub protoreg_exe: PathBuf,
    _dir: Scratch,
}

/// `path` as a Windows program names it: the Z: drive Wine maps to `/`, backslashes.
pub fn win(path: &Path) -> String {
    format!("Z:{}", path.display()).replace('/', "\\")
}

/// protoreg for Windows, built as `scripts/release-build` builds it (same profile, target
/// and commit, so one build serves both).
pub fn build_protoreg_exe() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let build = Command::new("cargo")
        .args(["build", "--release", "--locked", "--quiet"])
        .args(["--target", "x86_64-pc-windows-gnu", "--bin", "protoreg"])
        .current_dir(root)
        .env("PROTOREG_GIT_COMMIT", super::head_commit())
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "cargo build (windows): {}",
        text(&build)
    );
    root.join("target/x86_64-pc-windows-gnu/release/protoreg.exe")
}

impl Wine {
    /// The one Wine of this test process: protoreg.exe built, the prefix made (or reused)
    /// with the stand-in DLL in place.
    pub fn get() -> &'static Wine {
        static WINE_ONCE: OnceLock<Wine> = OnceLock::new();
        WINE_ONCE.get_or_init(Wine::set_up)
    }

    fn set_up() -> Wine {
        assert!(
            Path::new(WINE).is_file(),
            "{WINE} not found: scripts/install-deps installs Debian's wine64"
        );
        let user = User::unprivileged();
        let dir = user.tempdir();
        let exe = dir.path().join("protoreg.exe");
        std::fs::copy(build_protoreg_exe(), &exe).unwrap();
        let base = std::env::temp_dir().join(format!("buck2-protobuf-wine-{}", user.uid));
        let (prefix, home) = (base.join("prefix"), base.join("home"));
        user.own(&base);
        user.own(&home);
        let wine = Wine {
            user,
            prefix,
            home,
            protoreg_exe: exe,
            _dir: dir,
        };
        if !wine.prefix.join("system.reg").is_file() {
            let _ = std::fs::remove_dir_all(&wine.prefix);
            let boot = wine.run(wine.command(Path::new("wineboot")).arg("--init"));
            assert!(boot.status.success(), "wineboot: {}", text(&boot));
            wine.wait_server();
        }
        wine.install_prng_dll();
        wine
    }

    fn install_prng_dll(&self) {
        let src = self._dir.path().join("bcryptprimitives.c");
        std::fs::write(&src, PRNG_DLL).unwrap();
        let dll = self._dir.path().join("bcryptprimitives.dll");
        let cc = Command::new("x86_64-w64-mingw32-gcc")
            .args(["-O2", "-shared", "-s", "-o"])
            .arg(&dll)
            .arg(&src)
            .args(["-ladvapi32", "-Wl,--kill-at"])
            .output()
            .unwrap();
        assert!(cc.status.success(), "mingw: {}", text(&cc));
        let system32 = self.prefix.join("drive_c/windows/system32");
        let to = system32.join("bcryptprimitives.dll");
        let _ = std::fs::remove_file(&to);
        std::fs::copy(&dll, &to).unwrap();
        if self.user.dropped() {
            std::os::unix::fs::chown(&to, Some(self.user.uid), Some(self.user.gid)).unwrap();
        }
    }

    /// The Windows profile directory (`%USERPROFILE%`), as a Linux path.
    pub fn profile(&self) -> PathBuf {
        let name = if self.user.dropped() {
            "nobody".to_string()
        } else {
            std::env::var("USER").unwrap_or_else(|_| "root".into())
        };
        self.prefix.join("drive_c/users").join(name)
    }

    /// `program` (a Windows program: a Linux path to an .exe, or a name Wine knows) run by
    /// Wine as the user, with only Wine's environment.
    pub fn command(&self, program: &Path) -> Command {
        let mut c = self.user.command(WINE);
        c.arg(program)
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .env("HOME", &self.home)
            .env("WINEPREFIX", &self.prefix)
            .env("WINEDEBUG", "-all")
            .env("WINEDLLOVERRIDES", "mscoree,mshtml=")
            .stdin(std::process::Stdio::null());
        c
    }

    /// A program that runs its arguments (a Windows program and its arguments) under this
    /// Wine: what a Windows executor's worker is given as its entrypoint.
    pub fn launcher(&self) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self._dir.path().join("wine-launcher");
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\n# Each action's command line, as a Windows executor runs it.\n\
                 export HOME='{}' WINEPREFIX='{}' WINEDEBUG=-all WINEDLLOVERRIDES='mscoree,mshtml='\n\
                 exec {WINE} \"$@\"\n",
                self.home.display(),
                self.prefix.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    /// protoreg.exe, with no cache or configuration of the caller's.
    pub fn protoreg(&self) -> Command {
        self.command(&self.protoreg_exe)
    }

    pub fn run(&self, cmd: &mut Command) -> Output {
        cmd.output().unwrap()
    }

    /// Wait until Wine's server for the prefix has exited (after the last program).
    pub fn wait_server(&self) {
        let _ = self
            .user
            .command(WINESERVER)
            .arg("-w")
            .env_clear()
            .env("HOME", &self.home)
            .env("WINEPREFIX", &self.prefix)
            .status();
    }
}
