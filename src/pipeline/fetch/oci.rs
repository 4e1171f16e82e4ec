//! `oci://HOST[:PORT]/REPOSITORY` sources: the blob is fetched by the pin's digest and
//! streamed ([`crate::registry::blob`]), after the registry facade's one bounded token flow
//! ([`crate::registry::token`]); oci-client is not involved (it reads error answers whole).
//! Credentials are looked up when a host is first contacted, once per run.
//!
//! Timeouts are the same as an `http(s)://` source's (the same agent): connection and the
//! response head within the timeout, no read waiting longer than the timeout, and the whole
//! body within [`super::transfer_budget`] of the most bytes it may have, so a registry
//! trickling bytes too slowly to ever stall is cut off like one that stalls.

use std::io::Write;

use oci_client::client::{ClientConfig, ClientProtocol};

use super::NetOptions;
use crate::auth;
use crate::pipeline::verify::Expected;
use crate::registry::blob;

pub struct OciFetcher {
    /// The agent of token documents and blobs, built on first use.
    agent: Option<super::HttpAgent>,
    /// Credentials of hosts registry.yaml does not configure, looked up once per run.
    other_credentials: std::collections::HashMap<String, Result<auth::Credentials, String>>,
    stall: std::time::Duration,
    hosts: Vec<super::HostAccess>,
    plain_http: bool,
    proxies: super::Proxies,
}

/// The one configuration of oci-client's (reqwest) client: the run's protocol, timeouts and
/// proxies (see [`super::Proxies::for_oci`]: reqwest never reads the environment itself).
pub fn oci_client_config(net: &NetOptions) -> ClientConfig {
    let (https_proxy, http_proxy, no_proxy) = net.proxies.for_oci();
    ClientConfig {
        protocol: {
            let plain: Vec<String> = net
                .hosts
                .iter()
                .filter(|h| h.plain_http)
                .map(|h| h.host.clone())
                .collect();
            if net.plain_http {
                ClientProtocol::Http
            } else if plain.is_empty() {
                ClientProtocol::Https
            } else {
                ClientProtocol::HttpsExcept(plain)
            }
        },
        connect_timeout: Some(net.timeout),
        read_timeout: Some(net.timeout),
        extra_root_certificates: super::trust::oci_certificates(),
        user_agent: concat!("protoreg/", env!("CARGO_PKG_VERSION")),
        https_proxy,
        http_proxy,
        no_proxy,
        ..ClientConfig::default()
    }
}

impl OciFetcher {
    pub fn new(net: &NetOptions) -> Result<OciFetcher, String> {
        Ok(OciFetcher {
            agent: None,
            other_credentials: Default::default(),
            stall: net.timeout,
            hosts: net.hosts.clone(),
            plain_http: net.plain_http,
            proxies: net.proxies.clone(),
        })
    }

    /// Stream the blob into `sink`; `most` is the most bytes it may have (it sets the budget
    /// of the whole fetch).
    pub fn fetch(
        &mut self,
        registry: &str,
        repository: &str,
        most: u64,
        expected: &Expected,
        sink: &mut dyn Write,
    ) -> Result<(), String> {
        let access = self.hosts.iter().find(|h| h.host == registry);
        let creds = match access {
            Some(h) => h.credentials.get()?,
            None => self
                .other_credentials
                .entry(registry.to_string())
                .or_insert_with(|| auth::for_registry(registry))
                .clone()?,
        };
        let (stall, proxies) = (self.stall, &self.proxies);
        // Per request, each body gets its own budget: the agent's is a token's.
        let agent = self
            .agent
            .get_or_insert_with(|| super::http_agent(stall, super::DOCUMENT_BYTES, false, proxies));
        let plain_http = self.plain_http || access.is_some_and(|h| h.plain_http);
        let flow = crate::registry::token::TokenFlow {
            agent,
            budget: super::transfer_budget(stall, super::DOCUMENT_BYTES),
            host: registry,
            plain_http,
            plain_realm: access.is_some_and(|h| h.plain_http_token_realm),
            creds: &creds,
        };
        let (token, _) = flow
            .repository_token(repository, false)
            .map_err(|f| auth::redact(&format!("{} ({})", f.reason, f.hint), &creds))?;
        let api = crate::registry::api_host(registry);
        let url = blob::url(plain_http, api, repository, &expected.sha256.oci());
        let budget = super::transfer_budget(stall, most);
        let authorization = crate::registry::authorization(token.as_deref(), &creds);
        let scrub = |m: &str| blob::scrub(m, &creds, token.as_deref());
        blob::pull(agent, &url, authorization, budget, sink, &scrub)
            .map_err(|e| scrub(&Self::reason(&creds, e)))
    }

    /// A one-line reason; authentication failures say where credentials come from (or that
    /// the ones sent were refused). A request that got no answer already names the proxy it
    /// went through, if any.
    fn reason(creds: &auth::Credentials, e: blob::PullError) -> String {
        match e {
            blob::PullError::Status {
                code: code @ (401 | 403),
                ..
            } if !matches!(creds, auth::Credentials::Anonymous) => format!(
                "unauthorized (HTTP {code}): the registry refused the credentials protoreg sent; check them ({}/{}, {}, Docker's config.json or its helper, .netrc: the first that has this host)",
                auth::ENV_USERNAME,
                auth::ENV_PASSWORD,
                auth::ENV_TOKEN
            ),
            blob::PullError::Status {
                code: code @ (401 | 403),
                ..
            } => format!(
                "unauthorized (HTTP {code}): no credentials were sent; set {}/{} (or {}), or add the registry to Docker's config.json or .netrc",
                auth::ENV_USERNAME,
                auth::ENV_PASSWORD,
                auth::ENV_TOKEN
            ),
            blob::PullError::Status { code, codes } => format!("HTTP {code}{codes}"),
            blob::PullError::Failed(reason) => reason,
        }
    }
}
