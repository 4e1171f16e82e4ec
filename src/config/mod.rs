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

mod sources;
mod yaml;

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

/// One OCI registry: where it is, under which namespace, and how to authenticate.
#[derive(Debug, Clone, PartialEq)]
pub struct RegistryConfig {
    /// `primary` for the primary registry, the configured name for a backup.
    pub name: String,
    /// `HOST[:PORT]`.
    pub host: String,
    /// Repository prefix (`buck2-protobuf`, or `org/buck2-protobuf`); may be empty.
    pub namespace: String,
    pub auth_required: bool,
    pub plain_http: bool,
    pub auth: AuthConfig,
    /// The dotted key of this registry in the file, for messages.
    pub key: String,
}

/// Per-registry credentials, by the names of environment variables that hold them: secrets
/// never live in registry.yaml.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthConfig {
    pub username_env: Option<String>,
    pub password_env: Option<String>,
    pub token_env: Option<String>,
}

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

/// Overrides of the tool catalogue for one upstream source.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolSource {
    pub github_repo: Option<String>,
    /// Canonical platform names to publish.
    pub platforms: Option<Vec<String>>,
    /// Release tag template (`v{version}`).
    pub tag: Option<String>,
    /// Asset name template for every platform.
    pub asset: Option<String>,
    /// Asset name template per platform (wins over `asset`).
    pub assets: BTreeMap<String, String>,
    /// Checksum file name; `Some(None)` when the file says `checksum_file: null`.
    pub checksum_file: Option<Option<String>>,
    /// The minisign signature over the checksum file, and the key that must have made it.
    pub signature_file: Option<String>,
    pub minisign_public_key: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Publishing {
    pub auto_publish: bool,
    pub parallel_uploads: usize,
    pub retries: u32,
    /// Tag of a platform manifest: `{version}` and `{platform}` are replaced.
    pub tag_template: String,
    /// Tag of the multi-platform index.
    pub index_tag_template: String,
    pub github_api_url: Option<String>,
    pub tool_sources: BTreeMap<String, ToolSource>,
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

/// A named set of tool versions published and materialized together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bundle {
    pub name: String,
    pub description: String,
    /// Tag under `bundles/<name>` besides `latest`; default: derived from the members.
    pub version: Option<String>,
    /// tool -> version.
    pub tools: BTreeMap<String, String>,
    /// Default: every canonical platform all members ship.
    pub platforms: Option<Vec<String>>,
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
                let bytes = std::fs::read(&path).map_err(|e| {
                    if e.kind() == std::io::ErrorKind::NotFound {
                        Error::input(
                            format!("configuration file `{}` does not exist", path.display()),
                            "pass an existing file to --config (or PROTOREG_CONFIG), or drop it to use ./registry.yaml",
                        )
                    } else {
                        Error::io("read the configuration", &path, e)
                    }
                })?;
                let text = crate::error::utf8_text(&path, bytes, "the configuration file")?;
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
                            node.error("unknown repository", "use tools, plugins or bundles")
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
                            _ => c.security.audit_log = Some(path_value(&v, file)?),
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
            self.security.audit_log = Some(PathBuf::from(p));
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

    /// The repository of `tool` under `registry`'s namespace: `<ns>/<category path>/<rest>`.
    pub fn tool_repository(&self, registry: &RegistryConfig, tool: &Tool) -> String {
        let (category, rest) = tool
            .oci_repository
            .split_once('/')
            .unwrap_or(("tools", &tool.oci_repository));
        let path = self
            .repositories
            .get(category)
            .map(|r| r.path.as_str())
            .unwrap_or(category);
        registry.repository(&format!("{path}/{rest}"))
    }

    /// The repository of bundle `name`.
    pub fn bundle_repository(&self, registry: &RegistryConfig, name: &str) -> String {
        let path = self
            .repositories
            .get("bundles")
            .map(|r| r.path.as_str())
            .unwrap_or("bundles");
        registry.repository(&format!("{path}/{name}"))
    }

    /// The repository category (`tools`, `plugins`) a tool belongs to.
    pub fn category_of(tool: &Tool) -> &str {
        tool.oci_repository
            .split_once('/')
            .map(|(c, _)| c)
            .unwrap_or("tools")
    }

    /// The catalogue entry for `name` with this file's overrides applied (repository, tag,
    /// asset template, checksum file). The entry lives for the rest of the process: a
    /// command builds at most one per tool.
    pub fn tool(&self, name: &str) -> Result<&'static Tool> {
        let base = tools::by_name(name)?;
        let Some(src) = self.source(name) else {
            return Ok(base);
        };
        let mut t = base.clone();
        if let Some(r) = &src.github_repo {
            t.github_repo = r.clone();
        }
        if let Some(tag) = &src.tag {
            t.tag = tag.clone();
        }
        if let Some(a) = &src.asset {
            t.asset = a.clone();
        }
        t.assets.extend(src.assets.clone());
        if let Some(c) = &src.checksum_file {
            t.checksum_file = c.clone();
        }
        if t == *base {
            return Ok(base);
        }
        Ok(Box::leak(Box::new(t)))
    }

    /// (signature file, public key) that signs `tool`'s checksum file, if any.
    pub fn signing(&self, tool: &Tool) -> Option<(String, String)> {
        let src = self.source(&tool.name);
        let known = crate::operate::signature::KNOWN
            .iter()
            .find(|(t, _, _)| *t == tool.name);
        let file = src
            .and_then(|s| s.signature_file.clone())
            .or_else(|| known.map(|k| k.1.to_string()))?;
        let key = src
            .and_then(|s| s.minisign_public_key.clone())
            .or_else(|| known.map(|k| k.2.to_string()))?;
        Some((file, key))
    }

    /// The asset name template of `tool` for `platform` (per-platform override first).
    pub fn asset_template<'a>(&'a self, tool: &'a Tool, platform: &str) -> &'a str {
        self.source(&tool.name)
            .and_then(|s| s.assets.get(platform))
            .map(String::as_str)
            .unwrap_or_else(|| tool.asset_template(platform))
    }

    pub fn source(&self, tool: &str) -> Option<&ToolSource> {
        self.publishing.tool_sources.get(tool)
    }

    /// The platforms to publish for `tool`: the configured list, else all it ships.
    pub fn platforms_of(&self, tool: &Tool) -> Vec<&'static platform::Platform> {
        let names: Vec<String> = match self.source(&tool.name).and_then(|s| s.platforms.clone()) {
            Some(list) => list,
            None => tool.platforms.iter().map(|s| s.to_string()).collect(),
        };
        names
            .iter()
            .filter_map(|n| platform::by_name(n).ok())
            .collect()
    }

    /// Tag of a platform manifest.
    pub fn platform_tag(&self, version: &str, platform: &str) -> String {
        self.publishing
            .tag_template
            .replace("{version}", version)
            .replace("{platform}", platform)
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

impl RegistryConfig {
    /// `<namespace>/<path>`.
    pub fn repository(&self, path: &str) -> String {
        if self.namespace.is_empty() {
            path.to_string()
        } else {
            format!("{}/{path}", self.namespace)
        }
    }

    pub fn net(&self) -> Result<NetOptions> {
        NetOptions::from_env(self.plain_http)
    }

    /// This registry's credentials: its own `auth:` environment variables, else the shared
    /// ones (PROTOREG_REGISTRY_*, Docker's config.json). With `auth_required` and none found,
    /// a configuration error that says which variable to set.
    pub fn credentials(&self) -> Result<Credentials> {
        let env = |k: &Option<String>| {
            k.as_deref()
                .and_then(|k| std::env::var(k).ok())
                .filter(|v| !v.is_empty())
        };
        let a = &self.auth;
        let creds = if let Some(token) = env(&a.token_env) {
            Credentials::Bearer(token)
        } else if let (Some(username), Some(password)) =
            (env(&a.username_env), env(&a.password_env))
        {
            Credentials::Basic { username, password }
        } else if a.token_env.is_some() || a.username_env.is_some() {
            Credentials::Anonymous
        } else {
            auth::for_registry(&self.host)
        };
        if self.auth_required && creds == Credentials::Anonymous {
            let wanted = match (&a.token_env, &a.username_env, &a.password_env) {
                (Some(t), _, _) => t.clone(),
                (None, Some(u), Some(p)) => format!("{u} and {p}"),
                _ => format!(
                    "{} and {} (or {}), or log in with docker",
                    auth::ENV_USERNAME,
                    auth::ENV_PASSWORD,
                    auth::ENV_TOKEN
                ),
            };
            return Err(Error::input(
                format!(
                    "`{}.auth_required` is true but no credentials for {} were found",
                    self.key, self.host
                ),
                format!("set {wanted}"),
            ));
        }
        Ok(creds)
    }
}

/// `HOST[:PORT][/PATH]`, optionally with `https://` or `http://` (plain HTTP).
fn split_url(url: &str) -> std::result::Result<(String, String, bool), String> {
    let (rest, plain) = if let Some(r) = url.strip_prefix("http://") {
        (r, true)
    } else if let Some(r) = url.strip_prefix("https://") {
        (r, false)
    } else if url.contains("://") {
        return Err("only https:// and http:// are understood".into());
    } else {
        (url, false)
    };
    let rest = rest.trim_end_matches('/');
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    if host.contains('@') {
        return Err(
            "credentials do not belong in the URL: name the environment variables that hold them under `auth:` (username_env, password_env or token_env)"
                .into(),
        );
    }
    if !crate::pipeline::source::valid_host(host) {
        return Err(format!("`{host}` is not HOST or HOST:PORT"));
    }
    if !path
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b))
    {
        return Err(format!(
            "the path `{path}` must be lowercase a-z, 0-9, `.`, `_`, `-`, `/`"
        ));
    }
    Ok((host.to_string(), path.to_string(), plain))
}

fn registry(node: &Node, r: &mut RegistryConfig) -> Result<()> {
    let mut namespace_from_url = None;
    let mut namespace_given = false;
    for (k, v) in node.mapping(&[
        "name",
        "url",
        "namespace",
        "auth_required",
        "plain_http",
        "auth",
    ])? {
        match k.as_str() {
            "name" => {
                let name = v.string()?;
                if name.is_empty()
                    || !name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_".contains(&b))
                {
                    return Err(v.error(
                        format!("`{name}` is not a registry name"),
                        "use letters, digits, `-` and `_`",
                    ));
                }
                r.name = name;
            }
            "url" => {
                let url = v.string()?;
                let (host, path, plain) = split_url(&url).map_err(|why| {
                    v.error(
                        format!(
                            "`{}` is not a registry: {why}",
                            crate::pipeline::source::redact_url(&url)
                        ),
                        "write HOST[:PORT] (oras.birb.homes, ghcr.io, 127.0.0.1:5000)",
                    )
                })?;
                r.host = host;
                r.plain_http |= plain;
                if !path.is_empty() {
                    namespace_from_url = Some(path);
                }
            }
            "namespace" => {
                let ns = v.string()?;
                let ns = ns.trim_matches('/').to_string();
                if !ns
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-/".contains(&b))
                {
                    return Err(v.error(
                        format!("`{ns}` is not an OCI repository prefix"),
                        "use lowercase a-z, 0-9, `.`, `_`, `-`, `/`",
                    ));
                }
                r.namespace = ns;
                namespace_given = true;
            }
            "auth_required" => r.auth_required = v.boolean()?,
            "plain_http" => r.plain_http |= v.boolean()?,
            _ => {
                for (ak, av) in v.mapping(&["username_env", "password_env", "token_env"])? {
                    let name = av.string()?;
                    if name.is_empty()
                        || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                    {
                        return Err(av.error(
                            format!("`{name}` is not an environment variable name"),
                            "name the variable that holds the secret (never the secret itself)",
                        ));
                    }
                    match ak.as_str() {
                        "username_env" => r.auth.username_env = Some(name),
                        "password_env" => r.auth.password_env = Some(name),
                        _ => r.auth.token_env = Some(name),
                    }
                }
                if r.auth.username_env.is_some() != r.auth.password_env.is_some() {
                    return Err(v.error(
                        "`username_env` and `password_env` go together",
                        "give both, or use `token_env` for a bearer token",
                    ));
                }
            }
        }
    }
    if let Some(ns) = namespace_from_url {
        // `url: ghcr.io/org` plus `namespace: buck2-protobuf` is `org/buck2-protobuf`.
        r.namespace = if !namespace_given || r.namespace.is_empty() {
            ns
        } else {
            format!("{ns}/{}", r.namespace)
        };
    }
    Ok(())
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

fn publishing(node: &Node, p: &mut Publishing) -> Result<()> {
    for (k, v) in node.mapping(&[
        "auto_publish",
        "parallel_uploads",
        "retries",
        "tag_template",
        "index_tag_template",
        "github_api_url",
        "tool_sources",
    ])? {
        match k.as_str() {
            "auto_publish" => p.auto_publish = v.boolean()?,
            "parallel_uploads" => p.parallel_uploads = v.uint(1, 64)? as usize,
            "retries" => p.retries = v.uint(0, 10)? as u32,
            "tag_template" => {
                let t = v.string()?;
                if !t.contains("{version}") || !t.contains("{platform}") {
                    return Err(v.error(
                        format!("`{t}` lacks `{{version}}` or `{{platform}}`"),
                        "a platform tag must name both, as in `v{version}-{platform}`",
                    ));
                }
                check_tag_chars(&v, &t)?;
                p.tag_template = t;
            }
            "index_tag_template" => {
                let t = v.string()?;
                if !t.contains("{version}") || t.contains("{platform}") {
                    return Err(v.error(
                        format!("`{t}` must name `{{version}}` and not `{{platform}}`"),
                        "the index covers every platform, as in `v{version}`",
                    ));
                }
                check_tag_chars(&v, &t)?;
                p.index_tag_template = t;
            }
            "github_api_url" => {
                let u = v.string()?;
                if !(u.starts_with("https://") || u.starts_with("http://")) {
                    return Err(v.error(
                        format!("`{u}` is not an http(s) URL"),
                        "use https://api.github.com, or https://HOST/api/v3 for GitHub Enterprise",
                    ));
                }
                p.github_api_url = Some(u.trim_end_matches('/').to_string());
            }
            _ => {
                for (tool, tnode) in v.mapping(&[])? {
                    let t = tools::by_name(&tool)
                        .map_err(|e| tnode.error("unknown tool", hint_of(&e)))?;
                    p.tool_sources.insert(tool, tool_source(&tnode, t)?);
                }
            }
        }
    }
    Ok(())
}

fn check_tag_chars(node: &Node, template: &str) -> Result<()> {
    let probe = template
        .replace("{version}", "1.0.0")
        .replace("{platform}", "linux-x86_64");
    let ok = !probe.is_empty()
        && probe.len() <= 128
        && probe
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !probe.starts_with(['.', '-']);
    if ok {
        Ok(())
    } else {
        Err(node.error(
            format!("`{template}` does not give a valid OCI tag"),
            "tags are letters, digits, `.`, `_`, `-` (not first), at most 128 characters",
        ))
    }
}

fn tool_source(node: &Node, tool: &Tool) -> Result<ToolSource> {
    let mut s = ToolSource::default();
    for (k, v) in node.mapping(&[
        "github_repo",
        "platforms",
        "tag",
        "asset",
        "assets",
        "checksum_file",
        "signature_file",
        "minisign_public_key",
    ])? {
        match k.as_str() {
            "github_repo" => {
                let r = v.string()?;
                let parts: Vec<&str> = r.split('/').collect();
                if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) {
                    return Err(v.error(
                        format!("`{r}` is not OWNER/REPO"),
                        format!("as in `{}`", tool.github_repo),
                    ));
                }
                s.github_repo = Some(r);
            }
            "platforms" => {
                let mut list = Vec::new();
                for item in v.sequence()? {
                    let name = item.string()?;
                    let p = platform::by_name(&name).map_err(|e| {
                        item.error(format!("unknown platform `{name}`"), hint_of(&e))
                    })?;
                    if !tool.ships(p) {
                        return Err(item.error(
                            format!("{} does not ship a {name} build", tool.name),
                            format!("{} ships: {}", tool.name, tool.platforms.join(", ")),
                        ));
                    }
                    list.push(name);
                }
                s.platforms = Some(list);
            }
            "tag" => {
                let t = v.string()?;
                if !t.contains("{version}") {
                    return Err(v.error(
                        format!("`{t}` lacks `{{version}}`"),
                        format!("as in `{}`", tool.tag),
                    ));
                }
                s.tag = Some(t);
            }
            "asset" => s.asset = Some(asset_template(&v)?),
            "assets" => {
                for (plat, pnode) in v.mapping(&[])? {
                    platform::by_name(&plat).map_err(|e| {
                        pnode.error(format!("unknown platform `{plat}`"), hint_of(&e))
                    })?;
                    s.assets.insert(plat, asset_template(&pnode)?);
                }
            }
            "signature_file" => s.signature_file = Some(asset_template(&v)?),
            "minisign_public_key" => {
                let key = v.string()?;
                if minisign_verify::PublicKey::from_base64(&key).is_err() {
                    return Err(v.error(
                        format!("`{key}` is not a minisign public key"),
                        "copy the key (the RW… line) from upstream's release documentation",
                    ));
                }
                s.minisign_public_key = Some(key);
            }
            _ => s.checksum_file = Some(if v.is_null() { None } else { Some(v.string()?) }),
        }
    }
    Ok(s)
}

fn asset_template(node: &Node) -> Result<String> {
    let t = node.string()?;
    if t.is_empty() || t.contains('/') {
        return Err(node.error(
            format!("`{t}` is not an asset file name"),
            "give the release asset's file name, with placeholders such as `{version}`",
        ));
    }
    Ok(t)
}

fn bundle(name: &str, node: &Node) -> Result<Bundle> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    {
        return Err(node.error(
            format!("`{name}` is not a bundle name"),
            "bundle names are lowercase a-z, 0-9, `.`, `_`, `-` (they become repository names)",
        ));
    }
    let mut b = Bundle {
        name: name.to_string(),
        description: String::new(),
        version: None,
        tools: BTreeMap::new(),
        platforms: None,
    };
    for (k, v) in node.mapping(&["description", "version", "tools", "platforms"])? {
        match k.as_str() {
            "description" => b.description = v.string()?,
            "version" => {
                let ver = v.string()?;
                check_tag_chars(&v, &ver)?;
                b.version = Some(ver);
            }
            "tools" => {
                for (tool, tv) in v.mapping(&[])? {
                    tools::by_name(&tool).map_err(|e| tv.error("unknown tool", hint_of(&e)))?;
                    let version = tv.string()?;
                    if version.is_empty() || !version.starts_with(|c: char| c.is_ascii_digit()) {
                        return Err(tv.error(
                            format!("`{version}` is not a version"),
                            "give the upstream version, as in `36.2` (quote it)",
                        ));
                    }
                    b.tools.insert(tool, version);
                }
            }
            _ => {
                let mut list = Vec::new();
                for item in v.sequence()? {
                    let p = item.string()?;
                    platform::by_name(&p)
                        .map_err(|e| item.error(format!("unknown platform `{p}`"), hint_of(&e)))?;
                    list.push(p);
                }
                b.platforms = Some(list);
            }
        }
    }
    if b.tools.is_empty() {
        return Err(node.error(
            "a bundle needs at least one tool",
            "add `tools: {protoc: \"36.2\"}`",
        ));
    }
    Ok(b)
}

fn path_value(node: &Node, file: &Path) -> Result<PathBuf> {
    let s = node.string()?;
    if s.is_empty() {
        return Err(node.error("empty path", "give a directory or file path"));
    }
    let expanded = match s.strip_prefix("~/") {
        Some(rest) => match std::env::var_os("HOME") {
            Some(h) => PathBuf::from(h).join(rest),
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
