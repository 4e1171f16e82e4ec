//! Registry credentials. Read, in order:
//! 1. `PROTOREG_REGISTRY_TOKEN` (bearer), or `PROTOREG_REGISTRY_USERNAME` +
//!    `PROTOREG_REGISTRY_PASSWORD` (basic): sent to every `oci://` source of the run;
//! 2. Docker's `config.json` (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`),
//!    per host, as Docker reads it: `credHelpers.<host>` (runs `docker-credential-<name>
//!    get`), then `auths.<host>.auth` (base64 `user:password`) or `.registrytoken` (bearer),
//!    then `credsStore` (the helper for every host); a helper that is missing or fails is an
//!    error naming it. Docker Hub's names share `docker login`'s key
//!    `https://index.docker.io/v1/`;
//! 3. `.netrc` (`$NETRC`, else `~/.netrc`): the host's `machine` entry, or `default`;
//! 4. anonymous.
//!
//! Credentials are never printed: `Debug` of [`Credentials`] redacts them.

use std::fmt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use base64::Engine;

pub const ENV_USERNAME: &str = "PROTOREG_REGISTRY_USERNAME";
pub const ENV_PASSWORD: &str = "PROTOREG_REGISTRY_PASSWORD";
pub const ENV_TOKEN: &str = "PROTOREG_REGISTRY_TOKEN";

#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Anonymous,
    Basic { username: String, password: String },
    Bearer(String),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::Anonymous => f.write_str("anonymous"),
            Credentials::Basic { username, .. } => write!(f, "basic({username}, ***)"),
            Credentials::Bearer(_) => f.write_str("bearer(***)"),
        }
    }
}

impl Credentials {
    pub fn to_oci(&self) -> oci_client::secrets::RegistryAuth {
        use oci_client::secrets::RegistryAuth;
        match self {
            Credentials::Anonymous => RegistryAuth::Anonymous,
            Credentials::Basic { username, password } => {
                RegistryAuth::Basic(username.clone(), password.clone())
            }
            Credentials::Bearer(t) => RegistryAuth::Bearer(t.clone()),
        }
    }

    /// Values that must never appear in output, for redaction of third-party error text: the
    /// secret, its percent-encoded form (a URL or query echoed back), and for Basic
    /// credentials the base64 `user:password` of an `Authorization` header (echoed by servers
    /// that print the request). Longest first, so no form is left half-replaced.
    pub fn secrets(&self) -> Vec<String> {
        use base64::engine::general_purpose::{
            STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD,
        };
        let secret = match self {
            Credentials::Anonymous => return vec![],
            Credentials::Basic { password, .. } => password,
            Credentials::Bearer(t) => t,
        };
        if secret.is_empty() {
            return vec![];
        }
        let mut out = vec![secret.clone(), crate::registry::query_escape(secret)];
        if let Credentials::Basic { username, password } = self {
            let pair = format!("{username}:{password}");
            for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
                out.push(engine.encode(&pair));
            }
        }
        out.sort_by_key(|s| std::cmp::Reverse(s.len()));
        out.dedup();
        out
    }
}

/// Credentials for `registry` (`host[:port]`): the environment, Docker's config (its
/// credential helpers run), `.netrc`, else anonymous. The error is one line naming the
/// credential helper that is missing or failed.
pub fn for_registry(registry: &str) -> Result<Credentials, String> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let Some(token) = env(ENV_TOKEN) {
        return Ok(Credentials::Bearer(token));
    }
    if let (Some(username), Some(password)) = (env(ENV_USERNAME), env(ENV_PASSWORD)) {
        return Ok(Credentials::Basic { username, password });
    }
    if let Some(c) = docker_config(registry)? {
        return Ok(c);
    }
    Ok(match crate::netrc::lookup(registry)? {
        Some((username, password)) => Credentials::Basic { username, password },
        None => Credentials::Anonymous,
    })
}

/// The key `docker login` files Docker Hub under, whichever of its names was used.
const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";
/// The names Docker's client treats as Docker Hub.
const DOCKER_HUB_HOSTS: [&str; 3] = ["docker.io", "index.docker.io", "registry-1.docker.io"];

fn is_docker_hub(host: &str) -> bool {
    DOCKER_HUB_HOSTS
        .iter()
        .any(|h| h.eq_ignore_ascii_case(host))
}

/// The key Docker's client files `registry` under (and asks a credential helper for):
/// Docker Hub's for any of its names, else `host[:port]`.
fn config_key(registry: &str) -> &str {
    if is_docker_hub(registry) {
        DOCKER_HUB_KEY
    } else {
        registry
    }
}

/// `host[:port]` of a config.json key, as Docker's `ConvertToHostname` reads it: without
/// `http(s)://` and without a path.
fn key_host(key: &str) -> &str {
    let rest = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    rest.split('/').next().unwrap_or(rest)
}

/// The entry of `map` (`auths` or `credHelpers`) for `registry`, as Docker finds it: its
/// key exactly, else a key naming the same host in another spelling (`https://HOST/v2/`, a
/// legacy `https://HOST/v1/`; for Docker Hub any of its names).
fn entry_for<'a>(
    map: &'a serde_json::Map<String, serde_json::Value>,
    registry: &str,
) -> Option<&'a serde_json::Value> {
    let same = |host: &str| {
        host.eq_ignore_ascii_case(registry) || (is_docker_hub(host) && is_docker_hub(registry))
    };
    map.get(config_key(registry))
        .or_else(|| map.iter().find(|(k, _)| same(key_host(k))).map(|(_, v)| v))
}

fn docker_config(registry: &str) -> Result<Option<Credentials>, String> {
    let Some(path) = std::env::var_os("DOCKER_CONFIG")
        .map(|d| PathBuf::from(d).join("config.json"))
        .or_else(|| crate::sys::home_dir().map(|h| h.join(".docker").join("config.json")))
    else {
        return Ok(None);
    };
    let bytes = match crate::textfile::read(&path, crate::textfile::MAX_BYTES) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("Docker's config file `{}` {e}", path.display())),
    };
    let Ok(json) = serde_json::from_slice::<serde_json::Value>(&bytes) else {
        return Ok(None);
    };
    from_docker_config(&json, registry, run_helper)
}

/// Credentials for `registry` from a parsed config.json; `helper(name, server, key)` runs a
/// credential helper.
fn from_docker_config(
    json: &serde_json::Value,
    registry: &str,
    helper: impl Fn(&str, &str, &str) -> Result<Option<Credentials>, String>,
) -> Result<Option<Credentials>, String> {
    // Helpers are asked for the key Docker filed the credentials under (Hub's URL).
    let server = config_key(registry);
    let helper_for = json
        .get("credHelpers")
        .and_then(|h| h.as_object())
        .and_then(|h| entry_for(h, registry))
        .and_then(|v| v.as_str());
    if let Some(name) = helper_for {
        return helper(name, server, &format!("credHelpers.{registry}"));
    }
    if let Some(c) = inline_auth(json, registry) {
        return Ok(Some(c));
    }
    match json.get("credsStore").and_then(|v| v.as_str()) {
        Some(store) if !store.is_empty() => helper(store, server, "credsStore"),
        _ => Ok(None),
    }
}

/// `auths.<host>`: a bearer `registrytoken`, or `auth`, base64 of `user:password`.
fn inline_auth(json: &serde_json::Value, registry: &str) -> Option<Credentials> {
    let auths = json.get("auths")?.as_object()?;
    let entry = entry_for(auths, registry)?;
    if let Some(token) = entry.get("registrytoken").and_then(|v| v.as_str()) {
        return Some(Credentials::Bearer(token.to_string()));
    }
    let auth = entry.get("auth")?.as_str()?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(auth)
        .ok()?;
    let decoded = String::from_utf8(decoded).ok()?;
    let (username, password) = decoded.split_once(':')?;
    Some(Credentials::Basic {
        username: username.to_string(),
        password: password.to_string(),
    })
}

/// How long a credential helper may take (one asks the OS keychain, or a cloud's API).
const HELPER_TIMEOUT: Duration = Duration::from_secs(30);

/// `docker-credential-<name> get`, as Docker runs it: the server on stdin, JSON
/// `{"Username", "Secret"}` on stdout. `Username` `<token>` means the secret is a token. A
/// helper that has nothing for the server says so (Docker's "credentials not found"):
/// anonymous, not an error.
fn run_helper(name: &str, server: &str, key: &str) -> Result<Option<Credentials>, String> {
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(format!(
            "Docker's config.json `{key}` names `{name}`, not a credential helper"
        ));
    }
    let program = format!("docker-credential-{name}{}", std::env::consts::EXE_SUFFIX);
    // Looked up here rather than by exec: a PATH directory this user cannot read (root's,
    // for `nobody`) would make exec report "permission denied" for a helper that is simply
    // not installed.
    let path = std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(&program))
        .find(|candidate| candidate.is_file())
        .ok_or_else(|| {
            format!(
                "the Docker credential helper `{program}` (config.json `{key}`) is not on PATH: install it, or remove `{key}`"
            )
        })?;
    let out = crate::process::run(
        Command::new(&path).arg("get"),
        Some(server.as_bytes()),
        HELPER_TIMEOUT,
        HELPER_OUTPUT_BYTES,
    )
    .map_err(|e| format!("could not run the Docker credential helper `{program}`: {e}"))?;
    let status = match out.ended {
        crate::process::Ended::Exited(status) => status,
        crate::process::Ended::TimedOut(limit) => {
            return Err(format!(
                "the Docker credential helper `{program}` gave no answer within {} s",
                limit.as_secs()
            ))
        }
        crate::process::Ended::TooMuchOutput { stream, limit } => {
            return Err(format!(
                "the Docker credential helper `{program}` wrote more than {} on {stream}: it was stopped; check the helper",
                crate::error::Bytes(limit as u64)
            ))
        }
    };
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !status.success() {
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        let said = String::from_utf8_lossy(&out.stderr);
        let first = said
            .lines()
            .chain(stdout.lines())
            .find(|l| !l.trim().is_empty());
        return Err(format!(
            "the Docker credential helper `{program}` failed for {server} ({}): {}",
            status,
            crate::error::sanitize(first.unwrap_or("no message").trim())
        ));
    }
    let json: serde_json::Value = serde_json::from_str(&stdout).map_err(|_| {
        format!("the Docker credential helper `{program}` did not answer with JSON")
    })?;
    let field = |k: &str| {
        json.get(k)
            .and_then(|v| v.as_str())
            .unwrap_or("")
            .to_string()
    };
    let (username, secret) = (field("Username"), field("Secret"));
    Ok(Some(match username.as_str() {
        _ if secret.is_empty() => return Ok(None),
        "<token>" => Credentials::Bearer(secret),
        _ => Credentials::Basic {
            username,
            password: secret,
        },
    }))
}

/// What a credential helper may write on each of stdout and stderr (an answer is a few
/// hundred bytes).
const HELPER_OUTPUT_BYTES: usize = 1 << 20;

/// Replace every secret in `text` by `***` (third-party errors may echo request details).
/// Each form [`Credentials::secrets`] lists goes: headers and URLs are echoed too.
pub fn redact(text: &str, creds: &Credentials) -> String {
    let mut out = text.to_string();
    for s in creds.secrets() {
        if !s.is_empty() {
            out = out.replace(&s, "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_covers_encoded_forms() {
        let c = Credentials::Basic {
            username: "ci".into(),
            password: "p@ss w/rd".into(),
        };
        let basic = base64::engine::general_purpose::STANDARD.encode("ci:p@ss w/rd");
        let text = format!(
            "echo: Authorization: Basic {basic}; query password=p%40ss%20w%2Frd; raw p@ss w/rd"
        );
        let out = redact(&text, &c);
        assert_eq!(
            out,
            "echo: Authorization: Basic ***; query password=***; raw ***"
        );
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = Credentials::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(redact("bad hunter2 here", &c), "bad *** here");
    }

    #[test]
    fn docker_hub_login_key_serves_every_name_of_docker_hub() {
        // What `docker login` (no server) writes, and a `credsStore` it fills.
        let auth = base64::engine::general_purpose::STANDARD.encode("hubuser:hubpass");
        let json: serde_json::Value = serde_json::from_str(&format!(
            "{{\"auths\": {{\"https://index.docker.io/v1/\": {{\"auth\": \"{auth}\"}}}}}}"
        ))
        .unwrap();
        let no_helper = |_: &str, _: &str, _: &str| -> Result<Option<Credentials>, String> {
            panic!("no helper is configured")
        };
        let hub = Credentials::Basic {
            username: "hubuser".into(),
            password: "hubpass".into(),
        };
        for host in [
            "docker.io",
            "index.docker.io",
            "registry-1.docker.io",
            "Docker.IO",
        ] {
            assert_eq!(
                from_docker_config(&json, host, no_helper).unwrap(),
                Some(hub.clone()),
                "{host}"
            );
        }
        assert_eq!(
            from_docker_config(&json, "ghcr.io", no_helper).unwrap(),
            None
        );
        // A helper is asked for the key Docker stored the login under.
        let asked = std::cell::RefCell::new(Vec::new());
        let helper = |name: &str, server: &str, _: &str| {
            asked.borrow_mut().push(format!("{name} {server}"));
            Ok(None)
        };
        let store: serde_json::Value =
            serde_json::from_str("{\"credsStore\": \"desktop\"}").unwrap();
        from_docker_config(&store, "registry-1.docker.io", helper).unwrap();
        from_docker_config(&store, "ghcr.io", helper).unwrap();
        let helpers: serde_json::Value =
            serde_json::from_str("{\"credHelpers\": {\"https://index.docker.io/v1/\": \"hub\", \"https://reg.example:5000/v2/\": \"reg\"}}").unwrap();
        from_docker_config(&helpers, "docker.io", helper).unwrap();
        from_docker_config(&helpers, "reg.example:5000", helper).unwrap();
        assert_eq!(
            *asked.borrow(),
            [
                "desktop https://index.docker.io/v1/",
                "desktop ghcr.io",
                "hub https://index.docker.io/v1/",
                "reg reg.example:5000",
            ]
        );
    }
}
