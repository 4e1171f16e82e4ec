//! Where bytes can come from. A source is parsed from its command-line spelling and names
//! itself the same way in errors, so a failure can be matched to the flag that caused it.

use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;

use crate::error::{Error, Result};

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `oci://HOST[:PORT]/REPOSITORY`: a blob fetched by the pin's digest.
    Oci {
        registry: String,
        repository: String,
    },
    /// `https://…` or `http://…`: the file itself.
    Http { url: String },
    /// `oci-layout:DIR`: an OCI image-layout directory (`DIR/blobs/sha256/<hex>`).
    Layout { dir: PathBuf },
}

const FORMS: &str =
    "use oci://HOST[:PORT]/REPOSITORY, https://HOST/PATH, http://HOST/PATH or oci-layout:DIR";

impl FromStr for Source {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::input(
                format!("malformed source `{}`: {why}", redact_url(s)),
                FORMS,
            )
        };
        if let Some(rest) = s.strip_prefix("oci://") {
            let (registry, repository) = rest
                .split_once('/')
                .ok_or_else(|| bad("no repository after the registry host"))?;
            if registry.is_empty() || repository.is_empty() {
                return Err(bad("empty registry host or repository"));
            }
            if !valid_repository(repository) {
                return Err(bad(
                    "the repository must be lowercase path components of a-z, 0-9, `.`, `_`, `-`",
                ));
            }
            if repository.contains(['@', ':']) {
                return Err(bad(
                    "give the repository only: the pin's digest selects the blob",
                ));
            }
            if registry.contains('@') {
                return Err(bad(
                    "credentials do not belong in a source: set PROTOREG_REGISTRY_USERNAME/PASSWORD or PROTOREG_REGISTRY_TOKEN",
                ));
            }
            if !valid_host(registry) {
                return Err(bad(
                    "the registry must be HOST or HOST:PORT, the port a number from 1 to 65535",
                ));
            }
            Ok(Source::Oci {
                registry: registry.to_string(),
                repository: repository.to_string(),
            })
        } else if s.starts_with("https://") || s.starts_with("http://") {
            let host_and_path = s.split_once("://").map(|x| x.1).unwrap_or_default();
            if host_and_path.is_empty() || host_and_path.starts_with('/') {
                return Err(bad("no host in the URL"));
            }
            if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
                return Err(bad("whitespace or control characters in the URL"));
            }
            Ok(Source::Http { url: s.to_string() })
        } else if let Some(dir) = s.strip_prefix("oci-layout:") {
            if dir.is_empty() {
                return Err(bad("no directory after `oci-layout:`"));
            }
            Ok(Source::Layout {
                dir: PathBuf::from(dir),
            })
        } else {
            Err(bad("unknown scheme"))
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Oci {
                registry,
                repository,
            } => write!(f, "oci://{registry}/{repository}"),
            Source::Http { url } => f.write_str(&redact_url(url)),
            Source::Layout { dir } => write!(f, "oci-layout:{}", dir.display()),
        }
    }
}

/// An OCI repository name: `/`-separated lowercase components of a-z, 0-9, `.`, `_`, `-`,
/// each starting with a letter or digit.
pub fn valid_repository(repository: &str) -> bool {
    repository.split('/').all(|c| {
        c.starts_with(|ch: char| ch.is_ascii_lowercase() || ch.is_ascii_digit())
            && c.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    })
}

/// `HOST` or `HOST:PORT`, the host a name or an IPv4 address of letters, digits, `.` and `-`,
/// or an IPv6 address in brackets; a port, when its `:` is there, is a number from 1 to 65535
/// (`host:` with an empty port is not an address).
pub fn valid_host(host: &str) -> bool {
    let (name_ok, port) = match host.strip_prefix('[') {
        Some(rest) => {
            let Some((v6, after)) = rest.split_once(']') else {
                return false;
            };
            let v6_ok = v6.contains(':')
                && v6
                    .bytes()
                    .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
            match after {
                "" => (v6_ok, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (v6_ok, Some(port)),
                    None => return false,
                },
            }
        }
        None => {
            let (name, port) = match host.split_once(':') {
                Some((name, port)) => (name, Some(port)),
                None => (host, None),
            };
            let ok = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".-".contains(&b));
            (ok, port)
        }
    };
    let port_ok = port.is_none_or(|p| {
        (1..=5).contains(&p.len())
            && p.bytes().all(|b| b.is_ascii_digit())
            && p.parse::<u16>().is_ok_and(|n| n > 0)
    });
    name_ok && port_ok
}

/// Drop `user:password@` from a URL (with or without its `scheme://`) so credentials never
/// reach output or logs: [`crate::error::redact_authority`] decides where they end.
pub fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => format!("{scheme}://{}", crate::error::redact_authority(rest)),
        None => crate::error::redact_authority(url),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_kind() {
        assert_eq!(
            "oci://127.0.0.1:5000/buck2-protobuf/tools/protoc"
                .parse::<Source>()
                .unwrap(),
            Source::Oci {
                registry: "127.0.0.1:5000".into(),
                repository: "buck2-protobuf/tools/protoc".into()
            }
        );
        assert!(matches!(
            "https://example.com/a.zip".parse::<Source>().unwrap(),
            Source::Http { .. }
        ));
        assert!(matches!(
            "oci-layout:/tmp/x".parse::<Source>().unwrap(),
            Source::Layout { .. }
        ));
    }

    #[test]
    fn rejects_malformed() {
        for bad in [
            "oci://host",
            "oci:///repo",
            "oci://host/Repo",
            "oci://host/repo:tag",
            "ftp://x/y",
            "https://",
            "oci-layout:",
            "/tmp/file",
            "oci://127.0.0.1:/x",
            "oci://127.0.0.1:0/x",
            "oci://127.0.0.1:65536/x",
            "oci://127.0.0.1:5000:1/x",
            "oci://h:x/r",
            "oci://[::1/r",
            "oci://[::1]x/r",
            "oci://u:pw@h/r",
        ] {
            let e = bad.parse::<Source>().unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
        }
    }

    #[test]
    fn hosts_and_ports() {
        for ok in [
            "h",
            "a.b-c",
            "127.0.0.1:5000",
            "h:1",
            "h:65535",
            "[::1]",
            "[::1]:5000",
        ] {
            assert!(valid_host(ok), "{ok}");
        }
        for bad in [
            "", ":5000", "h:", "h:0", "h:65536", "h:123456", "h:+1", "[]", "[::1]:", "u@h",
        ] {
            assert!(!valid_host(bad), "{bad}");
        }
        let e = "oci://u:hunter2@h/r".parse::<Source>().unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn redacts_credentials() {
        assert_eq!(redact_url("u:pw@h:5000/ns"), "***@h:5000/ns");
        // A password may hold `/`, `?`, `#` and `@`: the last `@` before a host ends it.
        assert_eq!(redact_url("u:pa/ss@h:5000/ns"), "***@h:5000/ns");
        assert_eq!(redact_url("https://u:p@s/s?#@h/x"), "https://***@h/x");
        assert_eq!(
            redact_url("http://u:pw@[::1]:5000/x"),
            "http://***@[::1]:5000/x"
        );
        // A digest is not a host; a path's `@` before a host-like segment is hidden (over-
        // redacting is the safe side).
        assert_eq!(redact_url("h:5000/r@sha256:0a1b"), "h:5000/r@sha256:0a1b");
        assert_eq!(redact_url("https://u:secret@h/p@x"), "https://***@x");
        assert!(!Source::Http {
            url: "https://u:pw@h/x".into()
        }
        .to_string()
        .contains("pw"));
    }
}
