//! Fetch: stream one source's bytes into a writer that hashes them. Each source kind has its
//! own module; they share the timeouts and the (lazily built) network clients.

mod http;
mod layout;
mod oci;
mod proxy;
pub mod trust;

pub use http::build_agent as http_agent;
pub use http::get as http_get;
pub use http::HttpAgent;
pub use oci::oci_client_config;
pub use proxy::{via_proxy, Proxies, Proxy};

use std::io::Write;
use std::time::Duration;

use crate::pipeline::source::Source;
use crate::pipeline::verify::Expected;

pub use crate::settings::ENV_TIMEOUT;

/// The slowest transfer rate a body may keep up: a body of `n` bytes must arrive within the
/// timeout plus `n / FLOOR_RATE` seconds (a source trickling bytes too slowly to ever stall
/// is cut off there, like one that stalls).
pub const FLOOR_RATE: u64 = 256 << 10;

/// The most bytes a registry document (manifest, index, tag list, token) is budgeted: the
/// OCI distribution spec's 4 MiB manifest limit.
pub const DOCUMENT_BYTES: u64 = 4 << 20;

/// The whole time a transfer of at most `bytes` bytes may take: the timeout, plus the time
/// those bytes take at [`FLOOR_RATE`]. The one budget every source kind and registry call uses.
pub fn transfer_budget(timeout: Duration, bytes: u64) -> Duration {
    timeout.saturating_add(Duration::from_secs(bytes / FLOOR_RATE))
}

/// Network settings shared by all sources of one run.
#[derive(Debug, Clone)]
pub struct NetOptions {
    /// Plain HTTP for every `oci://` source (the ORAS `--plain-http` convention).
    pub plain_http: bool,
    /// Connect timeout, and the longest a transfer may stall.
    pub timeout: Duration,
    /// Registries with settings of their own (from registry.yaml): plain HTTP for just that
    /// host, and its credentials. Other hosts use TLS and [`crate::auth::for_registry`].
    pub hosts: Vec<HostAccess>,
    /// `HTTPS_PROXY`, `HTTP_PROXY`, `ALL_PROXY` and `NO_PROXY`, read once: both HTTP stacks
    /// follow these, never their own reading of the environment.
    pub proxies: Proxies,
}

#[derive(Debug, Clone)]
pub struct HostAccess {
    /// `HOST[:PORT]`.
    pub host: String,
    pub plain_http: bool,
    /// registry.yaml `allow_plain_http_token_realm`: this TLS registry may name a plain-HTTP
    /// token realm (refused otherwise).
    pub plain_http_token_realm: bool,
    /// Resolved only when the host is actually contacted, at most once: a cache hit runs no
    /// credential helper, and cannot fail for want of credentials it never needed.
    pub credentials: LazyCredentials,
}

type Resolve = dyn Fn() -> std::result::Result<crate::auth::Credentials, String> + Send + Sync;

/// Credentials looked up on first use (Docker's credential helpers are programs, some slow)
/// and kept for the run; clones share the one lookup.
#[derive(Clone)]
pub struct LazyCredentials {
    resolve: std::sync::Arc<Resolve>,
    resolved:
        std::sync::Arc<std::sync::OnceLock<std::result::Result<crate::auth::Credentials, String>>>,
}

impl LazyCredentials {
    pub fn new(
        resolve: impl Fn() -> std::result::Result<crate::auth::Credentials, String>
            + Send
            + Sync
            + 'static,
    ) -> LazyCredentials {
        LazyCredentials {
            resolve: std::sync::Arc::new(resolve),
            resolved: Default::default(),
        }
    }

    /// The credentials, looked up now if this is the first call.
    pub fn get(&self) -> std::result::Result<crate::auth::Credentials, String> {
        self.resolved.get_or_init(|| (self.resolve)()).clone()
    }
}

impl std::fmt::Debug for LazyCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.resolved.get() {
            Some(Ok(c)) => write!(f, "{c:?}"),
            Some(Err(_)) => f.write_str("unavailable"),
            None => f.write_str("not yet resolved"),
        }
    }
}

impl NetOptions {
    /// The timeout from `PROTOREG_TIMEOUT` and the proxies (an invalid value of either is
    /// exit 2, see [`crate::settings`] and [`Proxies`]).
    pub fn from_env(plain_http: bool) -> crate::error::Result<NetOptions> {
        Ok(NetOptions {
            plain_http,
            timeout: crate::settings::timeout()?,
            hosts: Vec::new(),
            proxies: Proxies::from_env()?,
        })
    }
}

/// Clients are built on first use: a run served from the cache or from a layout directory
/// starts no async runtime and opens no connection.
pub struct Fetcher {
    net: NetOptions,
    http: Option<HttpAgent>,
    oci: Option<oci::OciFetcher>,
}

impl Fetcher {
    pub fn new(net: NetOptions) -> Fetcher {
        Fetcher {
            net,
            http: None,
            oci: None,
        }
    }

    /// Stream `source`'s bytes for `expected` into `sink`; `most` is the most bytes the body
    /// may have (the pinned size, or the cap for an unknown size), which bounds the time a
    /// network body may take ([`transfer_budget`], the same for `http(s)://` and `oci://`).
    /// The error is a one-line reason for the attempt list; verification (and refusing a body
    /// past `most`) happens in the sink and the caller.
    pub fn fetch(
        &mut self,
        source: &Source,
        most: u64,
        expected: &Expected,
        sink: &mut dyn Write,
    ) -> Result<(), String> {
        match source {
            Source::Http { url } => {
                let net = &self.net;
                let budget = transfer_budget(net.timeout, most);
                let agent = self.http.get_or_insert_with(|| http::agent(net, most));
                http::fetch(agent, url, budget, sink)
            }
            Source::Oci {
                registry,
                repository,
            } => {
                if self.oci.is_none() {
                    self.oci = Some(oci::OciFetcher::new(&self.net)?);
                }
                let oci = self.oci.as_mut().ok_or("OCI client unavailable")?;
                oci.fetch(registry, repository, most, expected, sink)
            }
            Source::Layout { dir } => layout::fetch(dir, expected, sink),
        }
    }
}

/// Make sure the process-wide TLS provider is installed (one stack: rustls with ring).
pub fn install_tls_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}
