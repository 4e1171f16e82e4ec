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
        let bad = |why: &str| Error::input(format!("malformed source `{s}`: {why}"), FORMS);
        if let Some(rest) = s.strip_prefix("oci://") {
            let (registry, repository) = rest
                .split_once('/')
                .ok_or_else(|| bad("no repository after the registry host"))?;
            if registry.is_empty() || repository.is_empty() {
                return Err(bad("empty registry host or repository"));
            }
            // OCI repository names: lowercase path components of [a-z0-9._-].
            let valid_repo = repository.split('/').all(|c| {
                !c.is_empty()
                    && c.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b)
                    })
            });
            if !valid_repo {
                return Err(bad(
                    "the repository must be lowercase path components of a-z, 0-9, `.`, `_`, `-`",
                ));
            }
            if repository.contains(['@', ':']) {
                return Err(bad(
                    "give the repository only: the pin's digest selects the blob",
                ));
            }
            if !valid_host(registry) {
                return Err(bad("the registry must be HOST or HOST:PORT"));
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

/// `HOST` or `HOST:PORT` (IPv6 in brackets): the characters a registry address may have.
pub fn valid_host(host: &str) -> bool {
    !host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
}

/// Drop `user:password@` from a URL so credentials never reach output or logs.
pub fn redact_url(url: &str) -> String {
    if let Some((scheme, rest)) = url.split_once("://") {
        let host_end = rest.find('/').unwrap_or(rest.len());
        if let Some(at) = rest[..host_end].rfind('@') {
            return format!("{scheme}://***@{}", &rest[at + 1..]);
        }
    }
    url.to_string()
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
        ] {
            let e = bad.parse::<Source>().unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad}");
        }
    }

    #[test]
    fn redacts_credentials() {
        assert_eq!(
            redact_url("https://u:secret@h/p@x"),
            "https://***@h/p@x".to_string()
        );
        assert!(!Source::Http {
            url: "https://u:pw@h/x".into()
        }
        .to_string()
        .contains("pw"));
    }
}
