//! `primary_registry` and `backup_registries`: where each registry is, under which namespace,
//! and whose credentials it takes.

use super::*;

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
    /// `allow_plain_http_token_realm`: this TLS registry may name a plain-HTTP token realm
    /// (refused by default: tokens and credentials would cross the network in cleartext).
    pub plain_http_token_realm: bool,
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

impl RegistryConfig {
    /// `<namespace>/<path>`.
    pub fn repository(&self, path: &str) -> String {
        if self.namespace.is_empty() {
            path.to_string()
        } else {
            format!("{}/{path}", self.namespace)
        }
    }

    /// The network settings of a connection to this registry (its transport and token realm
    /// switches; credentials are passed to the connection itself).
    pub fn net(&self) -> Result<NetOptions> {
        let mut net = NetOptions::from_env(self.plain_http)?;
        net.hosts.push(crate::pipeline::fetch::HostAccess {
            host: self.host.clone(),
            plain_http: self.plain_http,
            plain_http_token_realm: self.plain_http_token_realm,
            credentials: {
                let reg = self.clone();
                crate::pipeline::fetch::LazyCredentials::new(move || {
                    reg.credentials().map_err(|e| e.to_string())
                })
            },
        });
        Ok(net)
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
            auth::for_registry(&self.host).map_err(|why| {
                Error::input(
                    format!("no credentials for {}: {why}", self.host),
                    "fix Docker's config.json (or the helper), or set this registry's `auth:` variables",
                )
            })?
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
pub(super) fn split_url(url: &str) -> std::result::Result<(String, String, bool), String> {
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
    // Anywhere, not only before the first `/`: a password may hold one, and no registry
    // host or repository path has an `@`.
    if rest.contains('@') {
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

pub(super) fn registry(node: &Node, r: &mut RegistryConfig) -> Result<()> {
    let mut namespace_from_url = None;
    let mut namespace_given = false;
    for (k, v) in node.mapping(&[
        "name",
        "url",
        "namespace",
        "auth_required",
        "plain_http",
        "allow_plain_http_token_realm",
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
            "allow_plain_http_token_realm" => r.plain_http_token_realm = v.boolean()?,
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
