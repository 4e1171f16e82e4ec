//! The tool catalogue: for each tool this project distributes, where upstream releases it,
//! how its release assets are named per platform, how its archive is laid out, where it
//! lives in the registry, and how to ask a binary for its version. Asset names are templates
//! over the platform table's spellings, so registry.yaml can override them per tool.

use crate::error::{Error, Result};
use crate::extract::Format;
use crate::platform::{self, Platform};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tool {
    pub name: &'static str,
    /// `owner/repo` on GitHub.
    pub github_repo: &'static str,
    /// Release tag for a version: `{version}` is replaced.
    pub tag: &'static str,
    /// Asset name template; placeholders: `{version}`, `{platform}` (the canonical name),
    /// `{protoc}`, `{buf}`, `{goos}`, `{goarch}` (the platform table's spellings) and
    /// `{archive}` (`zip` on Windows, `tar.gz` elsewhere) and `{tgz_or_exe}` (`exe` on
    /// Windows, `tar.gz` elsewhere: buf ships bare Windows executables). A name ending in
    /// neither `.zip` nor `.tar.gz`/`.tgz` is a raw single binary (only the first of
    /// `binaries` then exists).
    pub asset: &'static str,
    /// Platforms upstream ships (canonical names).
    pub platforms: &'static [&'static str],
    pub strip_prefix: &'static str,
    /// Binaries in the tree, without the platform's exe suffix.
    pub binaries: &'static [&'static str],
    /// Repository under the registry namespace.
    pub oci_repository: &'static str,
    /// A per-release checksum file upstream publishes (`sha256sum` format).
    pub checksum_file: Option<&'static str>,
    /// What `<binary> --version` prints, `{version}` replaced; None if it cannot tell.
    pub version_output: Option<&'static str>,
}

const FIVE: &[&str] = platform::CANONICAL;

pub const TOOLS: &[Tool] = &[
    Tool {
        name: "protoc",
        github_repo: "protocolbuffers/protobuf",
        tag: "v{version}",
        asset: "protoc-{version}-{protoc}.zip",
        platforms: FIVE,
        strip_prefix: "",
        binaries: &["bin/protoc"],
        oci_repository: "tools/protoc",
        checksum_file: None,
        version_output: Some("libprotoc {version}"),
    },
    Tool {
        name: "buf",
        github_repo: "bufbuild/buf",
        tag: "v{version}",
        // buf-Linux-x86_64.tar.gz (buf/bin/{buf,protoc-gen-buf-*}); buf-Windows-x86_64.exe,
        // the bare buf binary: upstream ships no Windows archive.
        asset: "buf-{buf}.{tgz_or_exe}",
        platforms: &[
            "linux-x86_64",
            "linux-aarch64",
            "darwin-x86_64",
            "darwin-arm64",
            "windows-x86_64",
            "windows-arm64",
        ],
        strip_prefix: "buf",
        binaries: &[
            "bin/buf",
            "bin/protoc-gen-buf-breaking",
            "bin/protoc-gen-buf-lint",
        ],
        oci_repository: "tools/buf",
        checksum_file: Some("sha256.txt"),
        version_output: Some("{version}"),
    },
    Tool {
        name: "protoc-gen-go",
        github_repo: "protocolbuffers/protobuf-go",
        tag: "v{version}",
        asset: "protoc-gen-go.v{version}.{goos}.{goarch}.{archive}",
        platforms: FIVE,
        strip_prefix: "",
        binaries: &["protoc-gen-go"],
        oci_repository: "plugins/protoc-gen-go",
        checksum_file: None,
        version_output: Some("protoc-gen-go v{version}"),
    },
    Tool {
        name: "protoc-gen-go-grpc",
        github_repo: "grpc/grpc-go",
        tag: "cmd/protoc-gen-go-grpc/v{version}",
        asset: "protoc-gen-go-grpc.v{version}.{goos}.{goarch}.{archive}",
        platforms: FIVE,
        strip_prefix: "",
        binaries: &["protoc-gen-go-grpc"],
        oci_repository: "plugins/protoc-gen-go-grpc",
        checksum_file: None,
        version_output: Some("protoc-gen-go-grpc {version}"),
    },
    Tool {
        name: "protoc-gen-validate",
        github_repo: "bufbuild/protoc-gen-validate",
        tag: "v{version}",
        asset: "protoc-gen-validate_{version}_{goos}_{goarch}.{archive}",
        platforms: FIVE,
        strip_prefix: "",
        binaries: &["protoc-gen-validate"],
        oci_repository: "plugins/protoc-gen-validate",
        checksum_file: Some("checksums.txt"),
        version_output: None,
    },
    // This project's own helper, for `[protobuf] protoreg = pinned` in .buckconfig: one raw
    // binary per platform, since a pinned protoreg is fetched without a protoreg to unpack it.
    Tool {
        name: "protoreg",
        github_repo: "birbparty/buck2-protobuf",
        tag: "v{version}",
        asset: "protoreg-{version}-{platform}",
        platforms: FIVE,
        strip_prefix: "",
        binaries: &["protoreg"],
        oci_repository: "tools/protoreg",
        checksum_file: None,
        version_output: Some("protoreg {version}"),
    },
];

pub fn by_name(name: &str) -> Result<&'static Tool> {
    TOOLS.iter().find(|t| t.name == name).ok_or_else(|| {
        let names: Vec<_> = TOOLS.iter().map(|t| t.name).collect();
        Error::input(
            format!("unknown tool `{name}`"),
            format!("use one of: {}", names.join(", ")),
        )
    })
}

/// One upstream file for (tool, version, platform).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    pub name: String,
    pub format: Format,
    pub url: String,
}

impl Tool {
    pub fn tag_for(&self, version: &str) -> String {
        self.tag.replace("{version}", version)
    }

    /// The version a release tag names, if it is one of this tool's tags.
    pub fn version_of_tag(&self, tag: &str) -> Option<String> {
        let (prefix, suffix) = self.tag.split_once("{version}")?;
        let v = tag.strip_prefix(prefix)?.strip_suffix(suffix)?;
        (!v.is_empty() && v.starts_with(|c: char| c.is_ascii_digit())).then(|| v.to_string())
    }

    pub fn ships(&self, platform: &Platform) -> bool {
        self.platforms.contains(&platform.name)
    }

    pub fn asset(&self, version: &str, platform: &Platform, download_base: &str) -> Result<Asset> {
        self.asset_from_template(self.asset, version, platform, download_base)
    }

    pub fn asset_from_template(
        &self,
        template: &str,
        version: &str,
        platform: &Platform,
        download_base: &str,
    ) -> Result<Asset> {
        if !self.ships(platform) {
            return Err(Error::input(
                format!("{} does not ship a {} build", self.name, platform.name),
                format!("{} ships: {}", self.name, self.platforms.join(", ")),
            ));
        }
        let windows = platform.goos == "windows";
        let archive = if windows { "zip" } else { "tar.gz" };
        let tgz_or_exe = if windows { "exe" } else { "tar.gz" };
        let name = template
            .replace("{version}", version)
            .replace("{platform}", platform.name)
            .replace("{protoc}", platform.protoc)
            .replace("{buf}", platform.buf)
            .replace("{goos}", platform.goos)
            .replace("{goarch}", platform.goarch)
            .replace("{archive}", archive)
            .replace("{tgz_or_exe}", tgz_or_exe);
        let format = if name.ends_with(".zip") {
            Format::Zip
        } else if name.ends_with(".tar.gz") || name.ends_with(".tgz") {
            Format::TarGz
        } else {
            Format::Raw
        };
        let url = format!(
            "{}/{}/releases/download/{}/{}",
            download_base.trim_end_matches('/'),
            self.github_repo,
            self.tag_for(version),
            name
        );
        Ok(Asset { name, format, url })
    }

    /// Binaries with the platform's executable suffix.
    pub fn binaries_for(&self, platform: &Platform) -> Vec<String> {
        self.binaries
            .iter()
            .map(|b| format!("{b}{}", platform.exe_suffix))
            .collect()
    }
}

/// Does `output` (of `--version`) report `version`? Compares the last version-like token of
/// the first line, numerically, so `1.0` and `1.0.0` agree but `31.1` and `31.10` do not.
pub fn reports_version(tool: &Tool, output: &str, version: &str) -> bool {
    let Some(template) = tool.version_output else {
        return true;
    };
    let line = output.lines().next().unwrap_or("").trim();
    let expected = template.replace("{version}", version);
    if line == expected {
        return true;
    }
    let token = |s: &str| {
        s.split_whitespace()
            .last()
            .map(|t| t.trim_start_matches('v').to_string())
    };
    let numbers = |v: &str| {
        let mut parts: Vec<u64> = v.split('.').map_while(|p| p.parse().ok()).collect();
        while parts.len() > 1 && parts.last() == Some(&0) {
            parts.pop();
        }
        parts
    };
    let prefix = |s: &str| {
        s.rsplit_once(' ')
            .map(|(p, _)| p.to_string())
            .unwrap_or_default()
    };
    match (token(line), token(&expected)) {
        (Some(got), Some(want)) => {
            prefix(line) == prefix(&expected)
                && !numbers(&got).is_empty()
                && numbers(&got) == numbers(&want)
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GH: &str = "https://github.com";

    #[test]
    fn real_upstream_asset_names() {
        let p = |n: &str| platform::by_name(n).unwrap();
        let a = |t: &str, v: &str, pl: &str| by_name(t).unwrap().asset(v, p(pl), GH).unwrap().name;
        assert_eq!(
            a("protoc", "31.1", "linux-aarch64"),
            "protoc-31.1-linux-aarch_64.zip"
        );
        assert_eq!(
            a("protoc", "31.1", "darwin-arm64"),
            "protoc-31.1-osx-aarch_64.zip"
        );
        assert_eq!(
            a("protoc", "31.1", "windows-x86_64"),
            "protoc-31.1-win64.zip"
        );
        assert_eq!(
            a("buf", "1.75.0", "linux-x86_64"),
            "buf-Linux-x86_64.tar.gz"
        );
        let named = |t: &str, v: &str, pl: &str| {
            let a = by_name(t).unwrap().asset(v, p(pl), GH).unwrap();
            (a.name, a.format)
        };
        assert_eq!(
            named("buf", "1.75.0", "windows-x86_64"),
            ("buf-Windows-x86_64.exe".to_string(), Format::Raw)
        );
        assert_eq!(
            named("buf", "1.75.0", "windows-arm64"),
            ("buf-Windows-arm64.exe".to_string(), Format::Raw)
        );
        assert_eq!(
            named("buf", "1.75.0", "darwin-arm64"),
            ("buf-Darwin-arm64.tar.gz".to_string(), Format::TarGz)
        );
        assert_eq!(
            a("protoc-gen-go", "1.36.6", "darwin-arm64"),
            "protoc-gen-go.v1.36.6.darwin.arm64.tar.gz"
        );
        assert_eq!(
            a("protoc-gen-go-grpc", "1.5.1", "windows-x86_64"),
            "protoc-gen-go-grpc.v1.5.1.windows.amd64.zip"
        );
        assert_eq!(
            a("protoc-gen-validate", "1.2.1", "linux-x86_64"),
            "protoc-gen-validate_1.2.1_linux_amd64.tar.gz"
        );
        let own = by_name("protoreg")
            .unwrap()
            .asset("0.1.0", p("windows-x86_64"), GH)
            .unwrap();
        assert_eq!(
            (own.name.as_str(), own.format),
            ("protoreg-0.1.0-windows-x86_64", Format::Raw)
        );
        let url = by_name("protoc-gen-go-grpc")
            .unwrap()
            .asset("1.5.1", p("linux-x86_64"), GH)
            .unwrap()
            .url;
        assert_eq!(url, "https://github.com/grpc/grpc-go/releases/download/cmd/protoc-gen-go-grpc/v1.5.1/protoc-gen-go-grpc.v1.5.1.linux.amd64.tar.gz");
        assert!(by_name("protoc")
            .unwrap()
            .asset("31.1", p("windows-arm64"), GH)
            .is_err());
    }

    #[test]
    fn tags_and_versions() {
        let grpc = by_name("protoc-gen-go-grpc").unwrap();
        assert_eq!(
            grpc.version_of_tag("cmd/protoc-gen-go-grpc/v1.5.1")
                .as_deref(),
            Some("1.5.1")
        );
        assert_eq!(grpc.version_of_tag("v1.70.0"), None);
        assert_eq!(
            by_name("protoc")
                .unwrap()
                .version_of_tag("v31.1")
                .as_deref(),
            Some("31.1")
        );
    }

    #[test]
    fn version_reports() {
        let protoc = by_name("protoc").unwrap();
        assert!(reports_version(protoc, "libprotoc 31.1\n", "31.1"));
        assert!(!reports_version(protoc, "libprotoc 31.10\n", "31.1"));
        assert!(!reports_version(protoc, "libprotoc 30.2\n", "31.1"));
        let grpc = by_name("protoc-gen-go-grpc").unwrap();
        assert!(reports_version(grpc, "protoc-gen-go-grpc 1.0\n", "1.0.0"));
        assert!(!reports_version(grpc, "protoc-gen-go-grpc 1.1\n", "1.0.0"));
        let go = by_name("protoc-gen-go").unwrap();
        assert!(reports_version(go, "protoc-gen-go v1.28.1", "1.28.1"));
    }
}
