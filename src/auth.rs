//! Registry credentials. Read, in order:
//! 1. `PROTOREG_REGISTRY_TOKEN` (bearer), or `PROTOREG_REGISTRY_USERNAME` +
//!    `PROTOREG_REGISTRY_PASSWORD` (basic): sent to every `oci://` source of the run;
//! 2. Docker's `config.json` (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`):
//!    `auths.<host>.auth` (base64 `user:password`) or `auths.<host>.registrytoken` (bearer),
//!    per host. Credential helpers (`credsStore`) are not run;
//! 3. anonymous.
//!
//! Credentials are never printed: `Debug` of [`Credentials`] redacts them.

use std::fmt;
use std::path::PathBuf;

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

    /// Values that must never appear in output, for redaction of third-party error text.
    pub fn secrets(&self) -> Vec<&str> {
        match self {
            Credentials::Anonymous => vec![],
            Credentials::Basic { password, .. } => vec![password.as_str()],
            Credentials::Bearer(t) => vec![t.as_str()],
        }
    }
}

/// Credentials for `registry` (`host[:port]`), from the environment or Docker's config.
pub fn for_registry(registry: &str) -> Credentials {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    if let Some(token) = env(ENV_TOKEN) {
        return Credentials::Bearer(token);
    }
    if let (Some(username), Some(password)) = (env(ENV_USERNAME), env(ENV_PASSWORD)) {
        return Credentials::Basic { username, password };
    }
    docker_config(registry).unwrap_or(Credentials::Anonymous)
}

fn docker_config(registry: &str) -> Option<Credentials> {
    let path = std::env::var_os("DOCKER_CONFIG")
        .map(|d| PathBuf::from(d).join("config.json"))
        .or_else(|| {
            std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker/config.json"))
        })?;
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let auths = json.get("auths")?.as_object()?;
    let entry = [
        registry.to_string(),
        format!("https://{registry}"),
        format!("http://{registry}"),
        format!("https://{registry}/v2/"),
    ]
    .iter()
    .find_map(|k| auths.get(k))?;
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

/// Replace every secret in `text` by `***` (third-party errors may echo request details).
pub fn redact(text: &str, creds: &Credentials) -> String {
    let mut out = text.to_string();
    for s in creds.secrets() {
        if !s.is_empty() {
            out = out.replace(s, "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_secrets() {
        let c = Credentials::Basic {
            username: "u".into(),
            password: "hunter2".into(),
        };
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(redact("bad hunter2 here", &c), "bad *** here");
    }
}
