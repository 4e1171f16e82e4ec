//! registry.yaml: the registries, repositories, publishing sources, security switches, cache
//! limits and bundles. The seed document's example loads unchanged; every key either does
//! what its name says or is refused with the file, the line and the dotted key.
//!
//! Precedence: flag, then environment, then the file, then the defaults below. The
//! environment variables, all in one place:
//!
//! | variable | overrides |
//! |---|---|
//! | `PROTOREG_CONFIG` | the file (`--config`; default `./registry.yaml` when present) |
//! | `PROTOREG_CACHE_DIR` | `cache.local_cache_dir` (`--cache-dir`) |
//! | `PROTOREG_REGISTRY` | `primary_registry.url` |
//! | `PROTOREG_NAMESPACE` | `primary_registry.namespace` |
//! | `PROTOREG_PLAIN_HTTP` (`1`/`true`) | `plain_http` of every registry (`--plain-http`) |
//! | `PROTOREG_PARALLEL_UPLOADS` | `publishing.parallel_uploads` |
//! | `PROTOREG_AUDIT_LOG` | `security.audit_log` |
//! | `GITHUB_API_URL`, `GITHUB_TOKEN` | `publishing.github_api_url`; the API token |
//! | `PROTOREG_REGISTRY_USERNAME`/`_PASSWORD`/`_TOKEN` | credentials of registries without an `auth:` block |
//!
//! Per-registry keys that only the file sets: `allow_plain_http_token_realm` (default
//! false) lets a TLS registry name an `http://` token realm; without it such a registry is
//! refused before any token or credential is sent.

mod bundles;
mod publishing;
mod registries;
mod sources;
mod yaml;

use bundles::bundle;
pub use bundles::Bundle;
use publishing::publishing;
pub use publishing::{Publishing, ToolSource};
use registries::{registry, split_url};
pub use registries::{AuthConfig, RegistryConfig};

pub use sources::{host_access, oci_sources, registry_sources};

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::auth::{self, Credentials};
use crate::error::{Error, Result};
use crate::maintain::tools::{self, Tool};
use crate::pipeline::fetch::NetOptions;
use crate::platform;
use yaml::{Doc, Node};

pub const DEFAULT_FILE: &str = "registry.yaml";
pub const ENV_REGISTRY: &str = "PROTOREG_REGISTRY";
pub const ENV_NAMESPACE: &str = "PROTOREG_NAMESPACE";
pub const ENV_PLAIN_HTTP: &str = "PROTOREG_PLAIN_HTTP";
pub const ENV_PARALLEL: &str = "PROTOREG_PARALLEL_UPLOADS";
pub const ENV_AUDIT_LOG: &str = "PROTOREG_AUDIT_LOG";

#[derive(Debug, Clone, PartialEq)]
pub struct RepositoryConfig {
    /// Path under the namespace (`tools`).
    pub path: String,
    pub description: String,
    /// Included in `publish --tool all` (the weekly automation).
    pub auto_publish: bool,
    /// `cleanup --registry` deletes artifacts released longer ago than this.
    pub retention_days: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Security {
    /// Verify upstream signatures where the tool source has a signing key.
    pub verify_signatures: bool,
    /// Verify against upstream checksum files where upstream publishes them.
    pub verify_checksums: bool,
    pub audit_log: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CacheConfig {
    pub local_cache_dir: Option<PathBuf>,
    pub max_cache_size_gb: f64,
    pub cleanup_older_than_days: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The file this came from (None: built-in defaults only).
    pub file: Option<PathBuf>,
    pub primary: RegistryConfig,
    pub backups: Vec<RegistryConfig>,
    pub repositories: BTreeMap<String, RepositoryConfig>,
    pub publishing: Publishing,
    pub security: Security,
    pub cache: CacheConfig,
    pub bundles: BTreeMap<String, Bundle>,
}

/// Repository categories and their default paths and retention.
const CATEGORIES: &[(&str, &str, Option<u64>)] = &[
    ("tools", "Core protobuf tools (protoc, buf)", Some(365)),
    ("plugins", "protoc plugins", Some(180)),
    // Pinned by commit and imported by released APIs: kept unless configured otherwise.
    ("protos", "Archives of .proto sources (googleapis)", None),
    ("bundles", "Curated sets of tool versions", None),
];

impl Default for Config {
    fn default() -> Self {
        let repositories = CATEGORIES
            .iter()
            .map(|(name, description, retention)| {
                (
                    name.to_string(),
                    RepositoryConfig {
                        path: name.to_string(),
                        description: description.to_string(),
                        auto_publish: true,
                        retention_days: *retention,
                    },
                )
            })
            .collect();
        Config {
            file: None,
            primary: RegistryConfig {
                name: "primary".into(),
                host: "oras.birb.homes".into(),
                namespace: "buck2-protobuf".into(),
                auth_required: false,
                plain_http: false,
                plain_http_token_realm: false,
                auth: AuthConfig::default(),
                key: "primary_registry".into(),
            },
            backups: vec![],
            repositories,
            publishing: Publishing {
                auto_publish: true,
                parallel_uploads: 4,
                retries: 3,
                tag_template: "v{version}-{platform}".into(),
                index_tag_template: "v{version}".into(),
                github_api_url: None,
                tool_sources: BTreeMap::new(),
            },
            security: Security {
                verify_signatures: true,
                verify_checksums: true,
                audit_log: None,
            },
            cache: CacheConfig {
                local_cache_dir: None,
                max_cache_size_gb: 10.0,
                cleanup_older_than_days: 7,
            },
            bundles: BTreeMap::new(),
        }
    }
}

/// Which registry.yaml to read: `--config`/`PROTOREG_CONFIG`, else `./registry.yaml` when
/// present, else none (defaults).
pub fn locate(flag: Option<&Path>) -> Option<PathBuf> {
    if let Some(p) = flag {
        return Some(p.to_path_buf());
    }
    let p = PathBuf::from(DEFAULT_FILE);
    p.is_file().then_some(p)
}

impl Config {
    /// Load the configuration the command line selects, with the environment applied.
    /// `plain_http_flag` is `--plain-http`.
    pub fn load(flag: Option<&Path>, plain_http_flag: bool) -> Result<Config> {
        let mut config = match locate(flag) {
            Some(path) => {
                let text = crate::textfile::read_text(
                    &path,
                    "the configuration file",
                    "pass an existing file to --config (or PROTOREG_CONFIG), or drop it to use ./registry.yaml",
                )?;
                Config::parse(&path, &text)?
            }
            None => Config::default(),
        };
        config.apply_env(plain_http_flag)?;
        Ok(config)
    }

    /// Parse registry.yaml text (no environment applied).
    pub fn parse(file: &Path, text: &str) -> Result<Config> {
        let doc = Doc::parse(file, text)?;
        let mut c = Config {
            file: Some(file.to_path_buf()),
            ..Config::default()
        };
        for (key, node) in doc.root().mapping(&[
            "primary_registry",
            "backup_registries",
            "repositories",
            "publishing",
            "security",
            "cache",
            "bundles",
        ])? {
            match key.as_str() {
                "primary_registry" => registry(&node, &mut c.primary)?,
                "backup_registries" => {
                    for item in node.sequence()? {
                        let mut r = RegistryConfig {
                            name: String::new(),
                            host: String::new(),
                            key: item.key().to_string(),
                            ..Config::default().primary
                        };
                        registry(&item, &mut r)?;
                        if r.name.is_empty() || r.host.is_empty() {
                            return Err(item.error(
                                "a backup registry needs `name` and `url`",
                                "write `- {name: ghcr, url: ghcr.io, namespace: buck2-protobuf}`",
                            ));
                        }
                        if r.name == "primary" || c.backups.iter().any(|b| b.name == r.name) {
                            return Err(item.error(
                                format!("registry name `{}` is used twice", r.name),
                                "give each backup registry its own name (not `primary`)",
                            ));
                        }
                        c.backups.push(r);
                    }
                }
                "repositories" => {
                    let known: Vec<&str> = CATEGORIES.iter().map(|c| c.0).collect();
                    for (name, node) in node.mapping(&known)? {
                        let entry = c.repositories.get_mut(&name).ok_or_else(|| {
                            node.error(
                                "unknown repository",
                                format!("use one of: {}", known.join(", ")),
                            )
                        })?;
                        repository(&node, entry)?;
                    }
                }
                "publishing" => publishing(&node, &mut c.publishing)?,
                "security" => {
                    for (k, v) in
                        node.mapping(&["verify_signatures", "verify_checksums", "audit_log"])?
                    {
                        match k.as_str() {
                            "verify_signatures" => c.security.verify_signatures = v.boolean()?,
                            "verify_checksums" => c.security.verify_checksums = v.boolean()?,
                            _ => {
                                let path = path_value(&v, file)?;
                                crate::operate::audit::check_path(&path)
                                    .map_err(|(what, hint)| v.error(what, hint))?;
                                c.security.audit_log = Some(path);
                            }
                        }
                    }
                }
                "cache" => {
                    for (k, v) in node.mapping(&[
                        "local_cache_dir",
                        "max_cache_size_gb",
                        "cleanup_older_than_days",
                    ])? {
                        match k.as_str() {
                            "local_cache_dir" => {
                                c.cache.local_cache_dir = Some(path_value(&v, file)?)
                            }
                            "max_cache_size_gb" => {
                                c.cache.max_cache_size_gb = v.number(0.0, 1e6)?
                            }
                            _ => c.cache.cleanup_older_than_days = v.uint(0, 36500)?,
                        }
                    }
                }
                _ => {
                    for (name, node) in node.mapping(&[])? {
                        let b = bundle(&name, &node)?;
                        c.bundles.insert(name, b);
                    }
                }
            }
        }
        Ok(c)
    }

    fn apply_env(&mut self, plain_http_flag: bool) -> Result<()> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        if let Some(url) = env(ENV_REGISTRY) {
            let (host, path, plain) = split_url(&url).map_err(|why| {
                Error::input(
                    format!(
                        "{ENV_REGISTRY}=`{}` is not a registry: {why}",
                        crate::pipeline::source::redact_url(&url)
                    ),
                    "use HOST[:PORT] (optionally http:// for plain HTTP)",
                )
            })?;
            self.primary.host = host;
            if !path.is_empty() {
                self.primary.namespace = path;
            }
            self.primary.plain_http |= plain;
        }
        if let Some(ns) = env(ENV_NAMESPACE) {
            self.primary.namespace = ns.trim_matches('/').to_string();
        }
        let plain_env = env(ENV_PLAIN_HTTP).is_some_and(|v| matches!(v.as_str(), "1" | "true"));
        if plain_http_flag || plain_env {
            self.primary.plain_http = true;
            for b in &mut self.backups {
                b.plain_http = true;
            }
        }
        if let Some(n) = env(ENV_PARALLEL) {
            self.publishing.parallel_uploads = n
                .parse::<usize>()
                .ok()
                .filter(|n| (1..=64).contains(n))
                .ok_or_else(|| {
                    Error::input(
                        format!("{ENV_PARALLEL}=`{n}` is not a number from 1 to 64"),
                        "set it to how many uploads may run at once",
                    )
                })?;
        }
        if let Some(p) = env(ENV_AUDIT_LOG) {
            let path = PathBuf::from(p);
            crate::operate::audit::check_path(&path)
                .map_err(|(what, hint)| Error::input(format!("{ENV_AUDIT_LOG}: {what}"), hint))?;
            self.security.audit_log = Some(path);
        }
        Ok(())
    }

    /// The primary registry, then the backups.
    pub fn registries(&self) -> impl Iterator<Item = &RegistryConfig> {
        std::iter::once(&self.primary).chain(self.backups.iter())
    }

    /// A registry by name (`primary` or a backup's name).
    pub fn registry(&self, name: &str) -> Option<&RegistryConfig> {
        self.registries().find(|r| r.name == name)
    }

    /// Tag of a multi-platform index.
    pub fn index_tag(&self, version: &str) -> String {
        self.publishing
            .index_tag_template
            .replace("{version}", version)
    }

    /// Where the cache lives (flag > environment > file > default).
    pub fn cache_dir(&self, flag: Option<&Path>) -> Result<PathBuf> {
        crate::pipeline::store::cache_dir(flag, self.cache.local_cache_dir.as_deref())
    }

    /// Cache size limit in bytes.
    pub fn max_cache_bytes(&self) -> u64 {
        (self.cache.max_cache_size_gb * 1024.0 * 1024.0 * 1024.0) as u64
    }

    /// Where the audit log goes for a cache at `cache_dir`.
    pub fn audit_log(&self, cache_dir: &Path) -> PathBuf {
        self.security
            .audit_log
            .clone()
            .unwrap_or_else(|| crate::operate::audit::default_path(cache_dir))
    }
}

fn repository(node: &Node, r: &mut RepositoryConfig) -> Result<()> {
    for (k, v) in node.mapping(&["path", "description", "auto_publish", "retention_days"])? {
        match k.as_str() {
            "path" => {
                let p = v.string()?.trim_matches('/').to_string();
                if p.is_empty()
                    || !p.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b)
                    })
                {
                    return Err(v.error(
                        format!("`{p}` is not a repository path"),
                        "use lowercase a-z, 0-9, `.`, `_`, `-`, `/`",
                    ));
                }
                r.path = p;
            }
            "description" => r.description = v.string()?,
            "auto_publish" => r.auto_publish = v.boolean()?,
            _ => {
                r.retention_days = if v.is_null() {
                    None
                } else {
                    Some(v.uint(1, 36500)?)
                }
            }
        }
    }
    Ok(())
}

fn path_value(node: &Node, file: &Path) -> Result<PathBuf> {
    let s = node.string()?;
    if s.is_empty() {
        return Err(node.error("empty path", "give a directory or file path"));
    }
    let expanded = match s.strip_prefix("~/") {
        Some(rest) => match crate::sys::home_dir() {
            Some(h) => h.join(rest),
            None => return Err(node.error("`~` used but HOME is not set", "use an absolute path")),
        },
        None => PathBuf::from(&s),
    };
    // Relative paths are relative to the file, so a checked-in registry.yaml means the same
    // from any working directory.
    Ok(if expanded.is_relative() {
        file.parent().unwrap_or(Path::new(".")).join(expanded)
    } else {
        expanded
    })
}

fn hint_of(e: &Error) -> String {
    match e {
        Error::Input { hint, .. } => hint.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The seed document's registry.yaml example, verbatim.
    const SEED: &str = include_str!("../../tests/fixtures/seed-registry.yaml");

    fn parse(text: &str) -> Result<Config> {
        Config::parse(Path::new("registry.yaml"), text)
    }

    #[test]
    fn seed_example_loads_unchanged() {
        let c = parse(SEED).unwrap();
        assert_eq!(c.primary.host, "oras.birb.homes");
        assert_eq!(c.primary.namespace, "buck2-protobuf");
        assert!(!c.primary.auth_required);
        assert_eq!(c.repositories["tools"].retention_days, Some(365));
        assert_eq!(c.publishing.parallel_uploads, 4);
        let protoc = tools::by_name("protoc").unwrap();
        assert_eq!(c.platforms_of(protoc).len(), 5);
        assert_eq!(
            c.tool_repository(&c.primary, protoc),
            "buck2-protobuf/tools/protoc"
        );
        assert!(c.security.verify_checksums && c.security.verify_signatures);
    }

    fn config_error(text: &str) -> (usize, String, String) {
        match parse(text).unwrap_err() {
            Error::Config {
                line, key, what, ..
            } => (line, key, what),
            other => panic!("not a config error: {other}"),
        }
    }

    #[test]
    fn unknown_keys_are_refused_with_line_and_key() {
        let text = SEED.replace("  parallel_uploads: 4", "  parallel_upload: 4");
        let (line, key, what) = config_error(&text);
        assert_eq!(
            (line, key.as_str(), what.as_str()),
            (15, "publishing.parallel_upload", "unknown key")
        );
        let text = SEED.replace("github_repo:", "github_rep:");
        let (line, key, _) = config_error(&text);
        assert_eq!(
            (line, key.as_str()),
            (18, "publishing.tool_sources.protoc.github_rep")
        );
    }

    #[test]
    fn bad_values_are_refused_with_line_and_key() {
        let (line, key, _) =
            config_error(&SEED.replace("parallel_uploads: 4", "parallel_uploads: 0"));
        assert_eq!((line, key.as_str()), (15, "publishing.parallel_uploads"));
        let (line, key, _) = config_error(&SEED.replace("\"darwin-arm64\"", "\"darwin-arm\""));
        assert_eq!(
            (line, key.as_str()),
            (19, "publishing.tool_sources.protoc.platforms[3]")
        );
        let (line, key, _) =
            config_error(&SEED.replace("auth_required: false", "auth_required: maybe"));
        assert_eq!((line, key.as_str()), (4, "primary_registry.auth_required"));
        let (line, _, what) = config_error("primary_registry:\n  url: [\n");
        assert!(what.contains("not valid YAML"), "{what}");
        assert!(line >= 2);
        let (line, _, what) =
            config_error("cache:\n  max_cache_size_gb: 1\n  max_cache_size_gb: 2\n");
        assert_eq!(line, 3, "{what}");
    }

    #[test]
    fn versions_keep_their_text_and_backups_their_auth() {
        let c = parse(
            "backup_registries:\n  - name: ghcr\n    url: https://ghcr.io/acme\n    namespace: buck2-protobuf\n    auth:\n      token_env: GHCR_TOKEN\n\
             bundles:\n  go-development:\n    tools: {protoc: 31.10, protoc-gen-go: \"1.28.1\"}\n",
        )
        .unwrap();
        assert_eq!(c.backups[0].host, "ghcr.io");
        assert_eq!(c.backups[0].namespace, "acme/buck2-protobuf");
        assert_eq!(c.backups[0].auth.token_env.as_deref(), Some("GHCR_TOKEN"));
        assert_eq!(c.bundles["go-development"].tools["protoc"], "31.10");
    }
}
