//! The one token flow of every registry call, pulls and pushes included: the bearer
//! challenge is answered here, with bounded documents, and oci-client only ever gets the
//! result (a bearer token, or Basic credentials for a registry that asks for Basic). oci-client's
//! own flow reads a token server's answer whole, follows a plain-HTTP realm with the
//! credentials, and echoes the token server's error body; it is never started.

use std::time::Duration;

use oci_client::secrets::RegistryAuth;
use oci_client::token_cache::{RegistryOperation, RegistryTokenType};
use oci_client::{Client, Reference};

use super::challenge::{query_escape, BearerChallenge};
use crate::auth::Credentials;
use crate::pipeline::fetch::{HttpAgent, DOCUMENT_BYTES};

/// The longest a negotiated token (or the finding that none is needed) is reused.
const LONGEST_REUSE: Duration = Duration::from_secs(3600);

/// Why a token could not be had: one line (not yet redacted: the caller knows the
/// credentials) and what to do about it.
pub struct Failure {
    pub reason: String,
    pub hint: String,
}

fn failure(reason: impl Into<String>, hint: impl Into<String>) -> Failure {
    Failure {
        reason: reason.into(),
        hint: hint.into(),
    }
}

/// How to ask one registry for tokens.
pub struct TokenFlow<'a> {
    /// The bounded agent of documents (its responses are read to [`DOCUMENT_BYTES`]).
    pub agent: &'a HttpAgent,
    pub budget: Duration,
    /// `HOST[:PORT]`.
    pub host: &'a str,
    /// The registry is reached over plain HTTP.
    pub plain_http: bool,
    /// registry.yaml `allow_plain_http_token_realm: true`: this TLS registry may name a
    /// plain-HTTP token realm.
    pub plain_realm: bool,
    pub creds: &'a Credentials,
}

impl TokenFlow<'_> {
    fn scheme(&self) -> &'static str {
        if self.plain_http {
            "http"
        } else {
            "https"
        }
    }

    /// The token for `repository` (`pull`, or `pull,push`), or None when the registry does
    /// not ask for one (it answers `/v2/` without a bearer challenge: no auth, or Basic), and
    /// how long it may be reused. Bearer credentials are the token themselves.
    pub fn repository_token(
        &self,
        repository: &str,
        push: bool,
    ) -> Result<(Option<String>, Duration), Failure> {
        if let Credentials::Bearer(t) = self.creds {
            return Ok((Some(t.clone()), LONGEST_REUSE));
        }
        let url = format!("{}://{}/v2/", self.scheme(), super::api_host(self.host));
        let resp = crate::pipeline::fetch::http_get(self.agent, &url, &[], Some(self.budget))
            .map_err(|e| {
                // The URL says which scheme was tried (a TLS handshake with a plain-HTTP
                // server fails with nothing better than "corrupt message").
                failure(
                    format!("{url}: {e}"),
                    "check that the registry is up (`protoreg health`) and re-run; a registry that serves plain HTTP needs --plain-http (registry.yaml `plain_http: true`)",
                )
            })?;
        if resp.status().as_u16() != 401 {
            return Ok((None, LONGEST_REUSE));
        }
        let Some(mut challenge) = BearerChallenge::of_response(&resp) else {
            return Ok((None, LONGEST_REUSE));
        };
        let actions = if push { "pull,push" } else { "pull" };
        challenge.scope = Some(format!("repository:{repository}:{actions}"));
        self.token(&challenge).map(|(t, reuse)| (Some(t), reuse))
    }

    /// A token from the challenge's realm for the scopes it names. The realm must be https
    /// on a TLS registry (a token fetched in cleartext can be read or swapped on the way,
    /// and Basic credentials would go with it) unless registry.yaml allows it for this
    /// registry. The answer is read to [`DOCUMENT_BYTES`]; a refusal's body is never
    /// shown (token servers echo the request, `Authorization` included).
    /// With the token, how long it may be reused: three quarters of its `expires_in` (the
    /// token protocol's default, 60 s, when absent or shorter), at most [`LONGEST_REUSE`].
    pub(super) fn token(&self, challenge: &BearerChallenge) -> Result<(String, Duration), Failure> {
        let realm = &challenge.realm;
        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
            return Err(failure(
                "the registry's bearer challenge names a token realm that is not an http(s) URL",
                "check the registry's token auth configuration (its `realm`)",
            ));
        }
        if realm.starts_with("http://") && !self.plain_http && !self.plain_realm {
            return Err(failure(
                format!(
                    "the registry's token realm `{}` is plain HTTP, and tokens and credentials are exchanged only over TLS",
                    crate::error::sanitize(&crate::pipeline::source::redact_url(realm))
                ),
                format!(
                    "serve the token realm over https, or, for a registry you trust on this network, set `allow_plain_http_token_realm: true` on {} in registry.yaml (or `plain_http: true` for a plain-HTTP registry)",
                    self.host
                ),
            ));
        }
        let mut url = realm.clone();
        let mut sep = if url.contains('?') { '&' } else { '?' };
        let mut param = |k: &str, v: &str| {
            url.push_str(&format!("{sep}{k}={}", query_escape(v)));
            sep = '&';
        };
        if let Some(service) = &challenge.service {
            param("service", service);
        }
        for scope in challenge.scope.iter().flat_map(|s| s.split(' ')) {
            if !scope.is_empty() {
                param("scope", scope);
            }
        }
        let mut headers = Vec::new();
        if let Credentials::Basic { username, .. } = self.creds {
            param("account", username);
            if let Some(value) = authorization(None, self.creds) {
                headers.push(("Authorization", value));
            }
        }
        let unreachable =
            "check that the registry's token server (its auth realm) is up and re-run";
        let resp = crate::pipeline::fetch::http_get(self.agent, &url, &headers, Some(self.budget))
            .map_err(|e| failure(format!("the token server did not answer: {e}"), unreachable))?;
        let status = resp.status().as_u16();
        let Some(body) = super::answer_body(resp, DOCUMENT_BYTES)
            .map_err(|reason| failure(format!("the token {reason}"), unreachable))?
        else {
            return Err(failure(
                format!(
                    "the token server's answer is larger than {} ({DOCUMENT_BYTES} bytes), the most a registry document may have",
                    crate::error::Bytes(DOCUMENT_BYTES)
                ),
                "the token server serves something that is not a token (damaged or hostile); check the registry's auth realm",
            ));
        };
        if status != 200 {
            return Err(failure(
                format!("the token server refused: HTTP {status}{}", super::error_codes(&body)),
                "check the registry credentials (PROTOREG_REGISTRY_USERNAME/PASSWORD, registry.yaml auth, docker login)",
            ));
        }
        serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                let lives = v["expires_in"].as_u64().unwrap_or(60).max(60);
                let reuse = Duration::from_secs(lives * 3 / 4).min(LONGEST_REUSE);
                [&v["token"], &v["access_token"]]
                    .into_iter()
                    .find_map(|t| t.as_str().filter(|t| !t.is_empty()).map(str::to_string))
                    .map(|t| (t, reuse))
            })
            .ok_or_else(|| {
                failure(
                    "the token server's answer has no `token`",
                    "check the registry's token server (its auth realm)",
                )
            })
    }
}

/// The `Authorization` header of a request made with `token`, else with the credentials
/// themselves.
pub fn authorization(token: Option<&str>, creds: &Credentials) -> Option<String> {
    match (token, creds) {
        (Some(t), _) => Some(format!("Bearer {t}")),
        (None, Credentials::Basic { username, password }) => {
            use base64::Engine;
            let b =
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}"));
            Some(format!("Basic {b}"))
        }
        (None, Credentials::Bearer(t)) => Some(format!("Bearer {t}")),
        (None, Credentials::Anonymous) => None,
    }
}

/// A fresh oci-client for calls on `repository` of `host` that sends `token` (from
/// [`TokenFlow::repository_token`]), else the credentials as Basic, else nothing, and never
/// runs its own token flow: a bearer token stored as the registry's auth is handed back
/// without a request, and Basic credentials are put in its token cache for both operations
/// (so it never probes the registry for a challenge of its own). Build inside the runtime.
pub async fn authorized_client(
    config: oci_client::client::ClientConfig,
    host: &str,
    repository: &str,
    token: Option<&str>,
    creds: &Credentials,
) -> Result<Client, String> {
    let client =
        Client::try_from(config).map_err(|e| format!("cannot build the OCI client: {e}"))?;
    // oci-client files auth under the resolved registry name (docker.io's is index.docker.io).
    let reference = Reference::with_tag(host.into(), repository.into(), "latest".into());
    let registry = reference.resolve_registry();
    match (token, creds) {
        (Some(t), _) => {
            client
                .store_auth_if_needed(registry, &RegistryAuth::Bearer(t.to_string()))
                .await
        }
        (None, Credentials::Basic { username, password }) => {
            client
                .store_auth_if_needed(
                    registry,
                    &RegistryAuth::Basic(username.clone(), password.clone()),
                )
                .await;
            for op in [RegistryOperation::Pull, RegistryOperation::Push] {
                client
                    .tokens
                    .insert(
                        &reference,
                        op,
                        RegistryTokenType::Basic(username.clone(), password.clone()),
                    )
                    .await;
            }
        }
        // No auth stored: oci-client sends none and asks for none.
        _ => {}
    }
    Ok(client)
}
