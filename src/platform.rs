//! The one table of platform names. Every other spelling of a platform (upstream asset
//! names, Go-style, OCI, Buck2 constraints) is derived from here and nowhere else.

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Platform {
    /// Canonical name: `linux-x86_64`.
    pub name: &'static str,
    /// protoc release assets: `protoc-31.1-linux-aarch_64.zip`.
    pub protoc: &'static str,
    /// buf release assets: `buf-Linux-aarch64.tar.gz`.
    pub buf: &'static str,
    /// Go's GOOS and GOARCH: `linux`, `amd64`.
    pub goos: &'static str,
    pub goarch: &'static str,
    /// Buck2 constraint values: `prelude//os:<os>`, `prelude//cpu:<cpu>`.
    pub buck_os: &'static str,
    pub buck_cpu: &'static str,
    /// Suffix of executables (`.exe` on Windows).
    pub exe_suffix: &'static str,
}

impl Platform {
    /// OCI `platform.os` / `platform.architecture` are Go's names.
    pub fn oci_os(&self) -> &'static str {
        self.goos
    }
    pub fn oci_arch(&self) -> &'static str {
        self.goarch
    }
}

pub const PLATFORMS: &[Platform] = &[
    Platform {
        name: "linux-x86_64",
        protoc: "linux-x86_64",
        buf: "Linux-x86_64",
        goos: "linux",
        goarch: "amd64",
        buck_os: "linux",
        buck_cpu: "x86_64",
        exe_suffix: "",
    },
    Platform {
        name: "linux-aarch64",
        protoc: "linux-aarch_64",
        buf: "Linux-aarch64",
        goos: "linux",
        goarch: "arm64",
        buck_os: "linux",
        buck_cpu: "arm64",
        exe_suffix: "",
    },
    Platform {
        name: "darwin-x86_64",
        protoc: "osx-x86_64",
        buf: "Darwin-x86_64",
        goos: "darwin",
        goarch: "amd64",
        buck_os: "macos",
        buck_cpu: "x86_64",
        exe_suffix: "",
    },
    Platform {
        name: "darwin-arm64",
        protoc: "osx-aarch_64",
        buf: "Darwin-arm64",
        goos: "darwin",
        goarch: "arm64",
        buck_os: "macos",
        buck_cpu: "arm64",
        exe_suffix: "",
    },
    Platform {
        name: "windows-x86_64",
        protoc: "win64",
        buf: "Windows-x86_64",
        goos: "windows",
        goarch: "amd64",
        buck_os: "windows",
        buck_cpu: "x86_64",
        exe_suffix: ".exe",
    },
    Platform {
        name: "windows-arm64",
        protoc: "",
        buf: "Windows-arm64",
        goos: "windows",
        goarch: "arm64",
        buck_os: "windows",
        buck_cpu: "arm64",
        exe_suffix: ".exe",
    },
];

/// The five platforms every tool is expected to ship for.
pub const CANONICAL: &[&str] = &[
    "linux-x86_64",
    "linux-aarch64",
    "darwin-x86_64",
    "darwin-arm64",
    "windows-x86_64",
];

/// Look a platform up by its canonical name.
/// What a platform-independent artifact (an archive of .proto sources) is pinned for: not a
/// platform of the table, so nothing that runs is ever selected for it.
pub const ANY: Platform = Platform {
    name: "any",
    protoc: "any",
    buf: "any",
    goos: "any",
    goarch: "any",
    buck_os: "any",
    buck_cpu: "any",
    exe_suffix: "",
};

/// A platform of the table, or [`ANY`].
pub fn by_name(name: &str) -> Result<&'static Platform> {
    if name == ANY.name {
        return Ok(&ANY);
    }
    PLATFORMS.iter().find(|p| p.name == name).ok_or_else(|| {
        let names: Vec<_> = PLATFORMS.iter().map(|p| p.name).collect();
        Error::input(
            format!("unknown platform `{name}`"),
            format!("use one of: {}", names.join(", ")),
        )
    })
}

/// The platform this process runs on.
pub fn host() -> Result<&'static Platform> {
    let os = match std::env::consts::OS {
        "macos" => "darwin",
        other => other,
    };
    let arch = match std::env::consts::ARCH {
        "aarch64" if os == "linux" => "aarch64",
        "aarch64" => "arm64",
        other => other,
    };
    by_name(&format!("{os}-{arch}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_resolvable() {
        for p in PLATFORMS {
            assert_eq!(by_name(p.name).unwrap(), p);
            assert_eq!(PLATFORMS.iter().filter(|q| q.name == p.name).count(), 1);
        }
        for c in CANONICAL {
            by_name(c).unwrap();
        }
        assert!(by_name("linux-amd64").is_err());
    }
}
