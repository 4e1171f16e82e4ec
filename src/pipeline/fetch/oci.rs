//! `oci://HOST[:PORT]/REPOSITORY` sources: the blob is fetched by the pin's digest with
//! oci-client's streaming blob call (never `pull()`, which buffers whole layers). The token
//! is negotiated by the registry facade's one bounded flow ([`crate::registry::token`]),
//! never by oci-client; credentials are looked up when a host is first contacted.
//!
//! Timeouts are the same as an `http(s)://` source's: authentication and the response head
//! within the timeout, no read waiting longer than the timeout, and the whole fetch within
//! [`super::transfer_budget`] of the most bytes the body may have, so a registry trickling
//! bytes too slowly to ever stall is cut off like one that stalls.

use std::io::Write;

use futures_util::StreamExt;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::Reference;

use super::NetOptions;
use crate::auth;
use crate::pipeline::verify::Expected;

pub struct OciFetcher {
    runtime: tokio::runtime::Runtime,
    net: NetOptions,
    /// The agent of token documents, built on first use.
    documents: Option<super::HttpAgent>,
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
        super::install_tls_provider();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the async runtime: {e}"))?;
        Ok(OciFetcher {
            runtime,
            net: net.clone(),
            documents: None,
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
        let agent = self
            .documents
            .get_or_insert_with(|| super::http_agent(stall, super::DOCUMENT_BYTES, false, proxies));
        let flow = crate::registry::token::TokenFlow {
            agent,
            budget: super::transfer_budget(stall, super::DOCUMENT_BYTES),
            host: registry,
            plain_http: self.plain_http || access.is_some_and(|h| h.plain_http),
            plain_realm: access.is_some_and(|h| h.plain_http_token_realm),
            creds: &creds,
        };
        let token = flow
            .repository_token(repository, false)
            .map_err(|f| auth::redact(&format!("{} ({})", f.reason, f.hint), &creds))?;
        let client = self
            .runtime
            .block_on(crate::registry::token::authorized_client(
                oci_client_config(&self.net),
                registry,
                repository,
                token.as_deref(),
                &creds,
            ))?;
        let reference = Reference::with_digest(
            registry.to_string(),
            repository.to_string(),
            expected.sha256.oci(),
        );
        let digest = expected.sha256.oci();
        let client = &client;
        let budget = super::transfer_budget(stall, most);
        let result: Result<(), String> = self.runtime.block_on(async {
            let transfer = async {
                // The response head.
                let mut stream = tokio::time::timeout(
                    stall,
                    client.pull_blob_stream(&reference, digest.as_str()),
                )
                .await
                .map_err(|_| {
                    format!(
                        "timed out after {}s waiting for the registry",
                        stall.as_secs()
                    )
                })?
                .map_err(|e| self.reason(registry, &creds, &e))?;
                loop {
                    let next = tokio::time::timeout(stall, stream.next())
                        .await
                        .map_err(|_| format!("timed out: stalled for {}s", stall.as_secs()))?;
                    match next {
                        None => return Ok(()),
                        Some(Ok(chunk)) => sink
                            .write_all(&chunk)
                            .map_err(|e| format!("write failed: {e}"))?,
                        Some(Err(e)) => return Err(format!("transfer failed: {e}")),
                    }
                }
            };
            tokio::time::timeout(budget, transfer).await.map_err(|_| {
                format!(
                    "timed out: not done after {}s ({}s of PROTOREG_TIMEOUT plus {most} bytes at {} KiB/s)",
                    budget.as_secs(),
                    stall.as_secs(),
                    super::FLOOR_RATE >> 10
                )
            })?
        });
        result.map_err(|e| auth::redact(&e, &creds))
    }

    /// A one-line reason; authentication failures say where credentials come from (or that
    /// the ones sent were refused), and a request that got no answer names the proxy it went
    /// through, if any.
    fn reason(
        &self,
        registry: &str,
        creds: &auth::Credentials,
        e: &oci_client::errors::OciDistributionError,
    ) -> String {
        use oci_client::errors::OciDistributionError as E;
        let text = crate::registry::describe(e);
        match e {
            // A token server's refusal reaches us as the registry's 401: oci-client then
            // retries without a token.
            E::AuthenticationFailure(_) | E::UnauthorizedError { .. }
                if !matches!(creds, auth::Credentials::Anonymous) =>
            {
                format!(
                    "{text}: the registry (or its token server) refused the credentials protoreg sent; check them ({}/{}, {}, Docker's config.json or its helper, .netrc: the first that has this host)",
                    auth::ENV_USERNAME,
                    auth::ENV_PASSWORD,
                    auth::ENV_TOKEN
                )
            }
            E::AuthenticationFailure(_) | E::UnauthorizedError { .. } => format!(
                "{text}: no credentials were sent; set {}/{} (or {}), or add the registry to Docker's config.json or .netrc",
                auth::ENV_USERNAME,
                auth::ENV_PASSWORD,
                auth::ENV_TOKEN
            ),
            E::RequestError(_) | E::ServerError { code: 407, .. } => {
                let plain = self.plain_http
                    || self
                        .hosts
                        .iter()
                        .any(|h| h.host == registry && h.plain_http);
                let url = format!("{}://{registry}/", if plain { "http" } else { "https" });
                let auth_refused = matches!(e, E::ServerError { code: 407, .. });
                super::proxy::via_proxy(self.proxies.for_url(&url), text, auth_refused)
            }
            _ => text,
        }
    }
}
