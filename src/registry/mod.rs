//! A thin, blocking facade over oci-client for the operator's side (push, tags, manifests,
//! blob existence). It owns its current-thread runtime, so callers stay synchronous; blobs
//! are streamed from disk in chunks, never read whole.
//!
//! oci-client only pushes and checks blobs, with what [`token`]'s one bounded flow
//! negotiated; tokens, manifests, tag lists, the catalog, deletes and blob pulls are
//! requested here, every answer (error answers included) read to at most 4 MiB.
//!
//! Every call is bounded like a fetch ([`crate::pipeline::fetch::transfer_budget`]): a document
//! (manifest, tag list, catalog page, token) must arrive within the timeout plus the time its
//! 4 MiB budget takes at 256 KiB/s, a blob within the timeout plus its size at that rate,
//! and no read of a pulled blob may wait longer than the timeout. A registry that trickles
//! its answers fails the call instead of holding it up forever.

pub(crate) mod blob;
mod challenge;
pub(crate) mod token;

use std::future::Future;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use oci_client::errors::OciDistributionError;
use oci_client::manifest::{OCI_IMAGE_INDEX_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE};
use oci_client::{Client, Reference};

use crate::auth::{self, Credentials};
use crate::error::{Error, Result};
use crate::pipeline::fetch::{transfer_budget, NetOptions, DOCUMENT_BYTES};
use crate::pipeline::verify::Sha256;
use crate::progress::Bar;
pub(crate) use challenge::query_escape;
use challenge::BearerChallenge;
pub use token::authorization;
use token::TokenFlow;

const CHUNK: usize = 4 << 20;

/// The most pages of one repository's tag list protoreg follows.
pub const MAX_TAG_PAGES: usize = 1000;

/// The most bytes of one listing (a repository's tag list, the catalog), all pages
/// together: about 500 000 names.
pub const MAX_LIST_BYTES: u64 = 4 * DOCUMENT_BYTES;

/// An OCI tag (the distribution spec's `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`).
pub fn valid_tag(tag: &str) -> bool {
    let b = tag.as_bytes();
    (1..=128).contains(&b.len())
        && (b[0].is_ascii_alphanumeric() || b[0] == b'_')
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || b"._-".contains(c))
}

/// The target of a `Link: <URL>; rel="next"` header.
fn next_link(header: &str) -> Option<String> {
    header.split(',').find_map(|part| {
        let (target, params) = part.trim().split_once(';')?;
        let target = target.trim().strip_prefix('<')?.strip_suffix('>')?;
        params
            .split(';')
            .any(|p| {
                let p = p.trim().replace(' ', "");
                p == "rel=\"next\"" || p == "rel=next"
            })
            .then(|| target.to_string())
    })
}

/// The most bytes a manifest or index may have, from a registry or an image-layout
/// directory: the OCI distribution spec's 4 MiB manifest limit. Larger is refused by name.
pub const MAX_MANIFEST_BYTES: u64 = DOCUMENT_BYTES;

/// A document read to a limit.
pub enum Document {
    Whole(Vec<u8>),
    /// More than the limit: what was read is dropped.
    TooLarge,
}

/// Read `r` to at most `limit` + 1 bytes: the whole document, or [`Document::TooLarge`]
/// without reading (or keeping) more than that.
pub fn read_document(r: impl Read, limit: u64) -> std::io::Result<Document> {
    let mut buf = Vec::new();
    r.take(limit.saturating_add(1)).read_to_end(&mut buf)?;
    if buf.len() as u64 > limit {
        Ok(Document::TooLarge)
    } else {
        Ok(Document::Whole(buf))
    }
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::TimedOut => "timed out".into(),
        _ if e.to_string().contains("timeout") => format!("timed out ({e})"),
        std::io::ErrorKind::UnexpectedEof => "body cut short".into(),
        _ => e.to_string(),
    }
}

/// ` (CODE, CODE)` from an OCI error envelope, or nothing: the codes call for different
/// remedies; the free-text details stay out.
fn error_codes(body: &[u8]) -> String {
    error_summary(body, None)
}

/// ` (CODE, CODE)`, or with `messages` ` (CODE: message, ...)`: at most 4 errors, each
/// message scrubbed by `messages` (a registry may echo the request, its credentials and
/// token included) and only then cut to 120 characters, so no cut leaves part of a secret.
/// Codes that are not the spec's upper-case words are left out for the same reason.
fn error_summary(body: &[u8], messages: Option<&dyn Fn(&str) -> String>) -> String {
    let errors: Vec<String> = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v["errors"].as_array().map(|errors| {
                errors
                    .iter()
                    .filter_map(|e| Some((e["code"].as_str()?, e["message"].as_str())))
                    .filter(|(c, _)| {
                        (1..=40).contains(&c.len())
                            && c.bytes().all(|b| b.is_ascii_uppercase() || b == b'_')
                    })
                    .take(4)
                    .map(|(c, m)| match (m, messages) {
                        (Some(m), Some(scrub)) if !m.trim().is_empty() => {
                            let m = scrub(m.trim());
                            format!("{c}: {}", m.chars().take(120).collect::<String>())
                        }
                        _ => c.to_string(),
                    })
                    .collect()
            })
        })
        .unwrap_or_default();
    if errors.is_empty() {
        String::new()
    } else {
        format!(" ({})", errors.join(", "))
    }
}

/// The host that serves `host`'s registry API: Docker Hub's `docker.io` is
/// `index.docker.io` (as oci-client and Docker resolve it).
pub(crate) fn api_host(host: &str) -> &str {
    if host.eq_ignore_ascii_case("docker.io") {
        "index.docker.io"
    } else {
        host
    }
}

/// (repository, push): what a token is for.
type ScopeKey = (String, bool);

/// A negotiated token (None: none needed) and when it is to be renewed.
type Negotiated = (Option<String>, std::time::Instant);

pub struct Registry {
    runtime: tokio::runtime::Runtime,
    /// The run's network settings, for each oci-client built here.
    net: NetOptions,
    /// oci-clients by (repository, push), each with when its token is to be renewed: each
    /// sends only what [`TokenFlow`] negotiated.
    clients: std::sync::Mutex<std::collections::HashMap<ScopeKey, (Client, std::time::Instant)>>,
    pub host: String,
    creds: Credentials,
    plain_http: bool,
    /// registry.yaml `allow_plain_http_token_realm`: a plain-HTTP token realm is followed.
    plain_realm: bool,
    timeout: std::time::Duration,
    /// The run's proxies: for the requests made here, and to name the proxy when a request
    /// through it fails.
    proxies: crate::pipeline::fetch::Proxies,
    /// `http://HOST/` or `https://HOST/`, as oci-client reaches the registry (for its proxy).
    base_url: String,
    /// Tokens by (repository, push), negotiated by [`TokenFlow`] (None: the registry asks
    /// for none, or for Basic).
    repository_tokens: std::sync::Mutex<std::collections::HashMap<ScopeKey, Negotiated>>,
    /// Tokens answering a bearer challenge, by what they are for (`delete <repository>`,
    /// `catalog`): scopes oci-client does not ask for.
    challenge_tokens: std::sync::Mutex<std::collections::HashMap<String, String>>,
    /// The agent of the requests made here rather than by oci-client, built on first use:
    /// one connection pool and one load of the trusted roots per facade.
    documents: std::sync::OnceLock<crate::pipeline::fetch::HttpAgent>,
}

impl Registry {
    pub fn connect(host: &str, net: &NetOptions, creds: Option<Credentials>) -> Result<Registry> {
        crate::pipeline::fetch::install_tls_provider();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::io("start the async runtime for", host, e))?;
        let access = net.hosts.iter().find(|h| h.host == host);
        Ok(Registry {
            runtime,
            net: net.clone(),
            clients: Default::default(),
            host: host.to_string(),
            creds: match creds {
                Some(c) => c,
                None => auth::for_registry(host).map_err(|why| {
                    Error::input(
                        format!("no credentials for {host}: {why}"),
                        "fix Docker's config.json (or the helper), or set PROTOREG_REGISTRY_USERNAME/_PASSWORD",
                    )
                })?,
            },
            plain_http: net.plain_http || access.is_some_and(|h| h.plain_http),
            plain_realm: access.is_some_and(|h| h.plain_http_token_realm),
            timeout: net.timeout,
            proxies: net.proxies.clone(),
            base_url: {
                let plain = net.plain_http || access.is_some_and(|h| h.plain_http);
                format!("{}://{host}/", if plain { "http" } else { "https" })
            },
            repository_tokens: Default::default(),
            challenge_tokens: Default::default(),
            documents: Default::default(),
        })
    }

    fn document_agent(&self) -> &crate::pipeline::fetch::HttpAgent {
        self.documents.get_or_init(|| {
            crate::pipeline::fetch::http_agent(self.timeout, DOCUMENT_BYTES, false, &self.proxies)
        })
    }

    /// GET a document made here (a manifest, a catalog page, a token) within the document
    /// budget: the response whatever its status, or why none came (one line).
    fn get_document(
        &self,
        url: &str,
        headers: &[(&str, String)],
    ) -> std::result::Result<ureq::http::Response<ureq::Body>, String> {
        crate::pipeline::fetch::http_get(
            self.document_agent(),
            url,
            headers,
            Some(self.document_budget()),
        )
    }

    fn reference(&self, repository: &str, tag_or_digest: &str) -> Reference {
        if tag_or_digest.starts_with("sha256:") {
            Reference::with_digest(self.host.clone(), repository.into(), tag_or_digest.into())
        } else {
            Reference::with_tag(self.host.clone(), repository.into(), tag_or_digest.into())
        }
    }

    fn token_flow(&self) -> TokenFlow<'_> {
        TokenFlow {
            agent: self.document_agent(),
            budget: self.document_budget(),
            host: &self.host,
            plain_http: self.plain_http,
            plain_realm: self.plain_realm,
            creds: &self.creds,
        }
    }

    /// The oci-client for calls on `repository` (`push`: pull and push), authorized by the
    /// one bounded token flow; built once per repository and operation, and again when its
    /// token is due for renewal (oci-client would keep sending it).
    fn client(&self, operation: &str, repository: &str, push: bool) -> Result<Client> {
        let key = (repository.to_string(), push);
        if let Some((c, _)) = self
            .clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .filter(|(_, renew_at)| std::time::Instant::now() < *renew_at)
        {
            return Ok(c.clone());
        }
        let (token, renew_at) = self.negotiated(operation, repository, push, false)?;
        let config = crate::pipeline::fetch::oci_client_config(&self.net);
        let client = self
            .runtime
            .block_on(token::authorized_client(
                config,
                &self.host,
                repository,
                token.as_deref(),
                &self.creds,
            ))
            .map_err(|reason| Error::Registry {
                operation: operation.into(),
                registry: self.host.clone(),
                reason,
                hint: "check the TLS settings".into(),
            })?;
        self.clients
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key, (client.clone(), renew_at));
        Ok(client)
    }

    /// The budget of a call that moves a document (or nothing much) either way.
    fn document_budget(&self) -> Duration {
        transfer_budget(self.timeout, DOCUMENT_BYTES)
    }

    /// Run `call` on this facade's runtime, failing it with `operation` timed out when it is
    /// not done within `budget`.
    fn bounded<T, E>(
        &self,
        operation: &str,
        budget: Duration,
        call: impl Future<Output = std::result::Result<T, E>>,
    ) -> Result<T>
    where
        E: Into<BoundedError>,
    {
        match self
            .runtime
            .block_on(async { tokio::time::timeout(budget, call).await })
        {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(match e.into() {
                BoundedError::Oci(e) => self.err(operation, e),
                BoundedError::Done(e) => e,
            }),
            Err(_) => Err(Error::Registry {
                operation: operation.into(),
                registry: self.host.clone(),
                reason: format!(
                    "timed out: not done after {}s (PROTOREG_TIMEOUT plus the transfer at {} KiB/s)",
                    budget.as_secs(),
                    crate::pipeline::fetch::FLOOR_RATE >> 10
                ),
                hint: "the registry is too slow or stalled: check it (`protoreg health`), or raise PROTOREG_TIMEOUT".into(),
            }),
        }
    }

    fn err(&self, operation: &str, e: OciDistributionError) -> Error {
        let mut reason = auth::redact(&describe(&e), &self.creds);
        let auth_refused = matches!(e, OciDistributionError::ServerError { code: 407, .. });
        if auth_refused || matches!(e, OciDistributionError::RequestError(_)) {
            let proxy = self.proxies.for_url(&self.base_url);
            reason = crate::pipeline::fetch::via_proxy(proxy, reason, auth_refused);
        }
        let hint = match e {
            OciDistributionError::AuthenticationFailure(_)
            | OciDistributionError::UnauthorizedError { .. } => {
                "check the registry credentials (PROTOREG_REGISTRY_USERNAME/PASSWORD, registry.yaml auth, docker login)"
            }
            _ => "check that the registry is up (`protoreg health`) and re-run: every step is idempotent",
        };
        Error::Registry {
            operation: operation.into(),
            registry: self.host.clone(),
            reason,
            hint: hint.into(),
        }
    }

    pub fn blob_exists(&self, repository: &str, digest: &Sha256) -> Result<bool> {
        let r = self.reference(repository, &digest.oci());
        let client = self.client("check blob", repository, false)?;
        self.bounded(
            "check blob",
            self.document_budget(),
            client.blob_exists(&r, &digest.oci()),
        )
    }

    /// Push a blob from memory (small documents: configs).
    pub fn push_blob_bytes(&self, repository: &str, data: &[u8]) -> Result<Sha256> {
        let digest = Sha256::of_bytes(data);
        if self.blob_exists(repository, &digest)? {
            return Ok(digest);
        }
        let r = self.reference(repository, &digest.oci());
        let client = self.client("push blob", repository, true)?;
        self.bounded(
            "push blob",
            transfer_budget(self.timeout, data.len() as u64),
            client.push_blob(&r, data.to_vec(), &digest.oci()),
        )?;
        Ok(digest)
    }

    /// Stream a file to the registry as blob `digest`, counting what was read on `bar`.
    /// Returns false when it was already there.
    pub fn push_blob_file(
        &self,
        repository: &str,
        path: &Path,
        digest: &Sha256,
        size: u64,
        bar: &Bar,
    ) -> Result<bool> {
        if self.blob_exists(repository, digest)? {
            return Ok(false);
        }
        let file = std::fs::File::open(path).map_err(|e| Error::io("open", path, e))?;
        bar.restart(Some(size), "upload");
        let file = bar.reader(file);
        let stream = futures_util::stream::unfold(Some(file), |state| async move {
            let mut file = state?;
            let mut buf = vec![0u8; CHUNK];
            let mut filled = 0;
            while filled < CHUNK {
                match file.read(&mut buf[filled..]) {
                    Ok(0) => break,
                    Ok(n) => filled += n,
                    Err(e) => return Some((Err(OciDistributionError::IoError(e)), None)),
                }
            }
            if filled == 0 {
                return None;
            }
            buf.truncate(filled);
            Some((Ok(bytes::Bytes::from(buf)), Some(file)))
        })
        .boxed();
        let r = self.reference(repository, &digest.oci());
        let client = self.client("push blob", repository, true)?;
        self.bounded(
            "push blob",
            transfer_budget(self.timeout, size),
            client.push_blob_stream(&r, stream, &digest.oci(), Some(size)),
        )?;
        Ok(true)
    }

    /// Push a manifest or index (exact bytes) under `tag` (or its digest when `tag` is None).
    pub fn push_manifest(
        &self,
        repository: &str,
        tag: Option<&str>,
        bytes: &[u8],
        media_type: &str,
    ) -> Result<Sha256> {
        let digest = Sha256::of_bytes(bytes);
        let target = tag.map(str::to_string).unwrap_or_else(|| digest.oci());
        let r = self.reference(repository, &target);
        let content_type = media_type.parse().map_err(|_| {
            Error::input(
                format!("bad media type `{media_type}`"),
                "use an OCI media type",
            )
        })?;
        let client = self.client("push manifest", repository, true)?;
        self.bounded(
            "push manifest",
            self.document_budget(),
            client.push_manifest_raw(&r, bytes.to_vec(), content_type),
        )?;
        Ok(digest)
    }

    /// The raw bytes and digest of a manifest or index, or None when the tag does not exist.
    ///
    /// Read here rather than through oci-client, which buffers a body of any length: the
    /// body is read to at most [`MAX_MANIFEST_BYTES`] + 1 bytes (a declared `Content-Length`
    /// past the limit is refused before any of it is read), within the document budget, so a
    /// hostile registry's endless or 3 GB "manifest" costs 4 MiB of memory, not its size. The
    /// digest is the sha256 of the bytes, never a header's.
    pub fn manifest(
        &self,
        repository: &str,
        tag_or_digest: &str,
    ) -> Result<Option<(Vec<u8>, String)>> {
        let reference = if tag_or_digest.starts_with("sha256:") {
            format!("{repository}@{tag_or_digest}")
        } else {
            format!("{repository}:{tag_or_digest}")
        };
        let operation = format!("read manifest {reference}");
        let failed = |reason: String, hint: &str| Error::Registry {
            operation: operation.clone(),
            registry: self.host.clone(),
            reason: auth::redact(&reason, &self.creds),
            hint: hint.into(),
        };
        let scheme = if self.plain_http { "http" } else { "https" };
        let url = format!(
            "{scheme}://{}/v2/{repository}/manifests/{tag_or_digest}",
            api_host(&self.host)
        );
        // A cached token the registry no longer takes (expired) is renewed once.
        for renew in [false, true] {
            let token = self.repository_token(&operation, repository, false, renew)?;
            let mut headers = vec![(
                "Accept",
                format!("{OCI_IMAGE_MEDIA_TYPE}, {OCI_IMAGE_INDEX_MEDIA_TYPE}"),
            )];
            if let Some(value) = self.authorization(token.as_deref()) {
                headers.push(("Authorization", value));
            }
            let resp = self.get_document(&url, &headers).map_err(|e| {
                failed(
                    e,
                    "check that the registry is up (`protoreg health`) and re-run",
                )
            })?;
            let status = resp.status().as_u16();
            let declared = resp
                .headers()
                .get("content-length")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.trim().parse::<u64>().ok());
            let too_large = |size: String| {
                failed(
                    format!(
                        "the manifest is {size}, more than the {} ({MAX_MANIFEST_BYTES} bytes) the OCI distribution spec allows a manifest or index",
                        crate::error::Bytes(MAX_MANIFEST_BYTES)
                    ),
                    "the source registry serves something that is not a manifest (damaged or hostile); check it with skopeo inspect --raw",
                )
            };
            if declared.is_some_and(|n| n > MAX_MANIFEST_BYTES) && status == 200 {
                return Err(too_large(format!(
                    "{declared} bytes by its Content-Length",
                    declared = declared.unwrap_or_default()
                )));
            }
            let Some(body) = answer_body(resp, MAX_MANIFEST_BYTES).map_err(|reason| {
                failed(
                    reason,
                    "check that the registry is up (`protoreg health`) and re-run",
                )
            })?
            else {
                return Err(too_large("larger than that (cut off)".into()));
            };
            match status {
                200 => {
                    let digest = Sha256::of_bytes(&body);
                    if tag_or_digest.starts_with("sha256:") && tag_or_digest != digest.oci() {
                        return Err(Error::Verification {
                            what: format!("manifest {reference} from {}", self.host),
                            expected: tag_or_digest.to_string(),
                            actual: digest.oci(),
                            hint: "the registry serves other bytes for this digest".into(),
                        });
                    }
                    return Ok(Some((body, digest.oci())));
                }
                404 => return Ok(None),
                401 if !renew && token.is_some() => continue,
                401 | 403 => {
                    return Err(failed(
                        format!("HTTP {status}{}", error_codes(&body)),
                        "check the registry credentials (PROTOREG_REGISTRY_USERNAME/PASSWORD, registry.yaml auth, docker login)",
                    ))
                }
                _ => {
                    return Err(failed(
                        format!("HTTP {status}{}", error_codes(&body)),
                        "check that the registry is up (`protoreg health`) and re-run: every step is idempotent",
                    ))
                }
            }
        }
        Err(failed(
            "HTTP 401 with a renewed token".into(),
            "check the registry credentials (PROTOREG_REGISTRY_USERNAME/PASSWORD, registry.yaml auth, docker login)",
        ))
    }

    /// The token for `repository` (`push`: pull and push; None: the registry asks for none,
    /// or for Basic), negotiated by the one bounded [`TokenFlow`] once per repository and
    /// cached until it is due for renewal; `renew` drops the cached one first.
    fn repository_token(
        &self,
        operation: &str,
        repository: &str,
        push: bool,
        renew: bool,
    ) -> Result<Option<String>> {
        Ok(self.negotiated(operation, repository, push, renew)?.0)
    }

    /// [`Registry::repository_token`] with when it is to be renewed.
    fn negotiated(
        &self,
        operation: &str,
        repository: &str,
        push: bool,
        renew: bool,
    ) -> Result<Negotiated> {
        let key = (repository.to_string(), push);
        let mut cached = self
            .repository_tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if renew {
            cached.remove(&key);
            self.clients
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(&key);
        }
        if let Some(found) = cached
            .get(&key)
            .filter(|(_, renew_at)| std::time::Instant::now() < *renew_at)
        {
            return Ok(found.clone());
        }
        let (token, reuse) = self
            .token_flow()
            .repository_token(repository, push)
            .map_err(|f| self.token_failure(operation, f))?;
        let found = (token, std::time::Instant::now() + reuse);
        cached.insert(key, found.clone());
        Ok(found)
    }

    fn token_failure(&self, operation: &str, f: token::Failure) -> Error {
        Error::Registry {
            operation: operation.into(),
            registry: self.host.clone(),
            reason: auth::redact(&f.reason, &self.creds),
            hint: f.hint,
        }
    }

    /// The `Authorization` header of a request made here rather than by oci-client: the
    /// negotiated token, else the credentials themselves.
    fn authorization(&self, token: Option<&str>) -> Option<String> {
        token::authorization(token, &self.creds)
    }

    /// Every tag of a repository (empty when the repository does not exist).
    ///
    /// Read here rather than through oci-client, which buffers a tag list of any length:
    /// each page is a document (at most [`DOCUMENT_BYTES`]), pages follow the registry's
    /// `Link` header (same registry only) up to [`MAX_TAG_PAGES`], and the whole list is
    /// bounded by [`MAX_LIST_BYTES`]. A tag that is not an OCI tag (the grammar's
    /// `[A-Za-z0-9_][A-Za-z0-9._-]{0,127}`) is refused before anything shows or uses it.
    pub fn tags(&self, repository: &str) -> Result<Vec<String>> {
        let operation = format!("list tags of {repository}");
        let failed = |reason: String, hint: &str| Error::Registry {
            operation: operation.clone(),
            registry: self.host.clone(),
            reason: auth::redact(&reason, &self.creds),
            hint: hint.into(),
        };
        let scheme = if self.plain_http { "http" } else { "https" };
        let origin = format!("{scheme}://{}", api_host(&self.host));
        let mut url = format!("{origin}/v2/{repository}/tags/list");
        let mut out: Vec<String> = Vec::new();
        let mut total: u64 = 0;
        for _ in 0..MAX_TAG_PAGES {
            let mut renewed = false;
            let resp = loop {
                let token = self.repository_token(&operation, repository, false, renewed)?;
                let headers: Vec<(&str, String)> = self
                    .authorization(token.as_deref())
                    .map(|v| vec![("Authorization", v)])
                    .unwrap_or_default();
                let resp = self.get_document(&url, &headers).map_err(|e| {
                    failed(
                        e,
                        "check that the registry is up (`protoreg health`) and re-run",
                    )
                })?;
                // A cached token the registry no longer takes (expired) is renewed once.
                if resp.status().as_u16() == 401 && token.is_some() && !renewed {
                    renewed = true;
                    continue;
                }
                break resp;
            };
            let next = resp
                .headers()
                .get("link")
                .and_then(|v| v.to_str().ok())
                .and_then(next_link);
            let Some(page) = list_page(
                resp,
                &ListPage {
                    what: "tag list",
                    field: "tags",
                    denied: "check the registry credentials (PROTOREG_REGISTRY_USERNAME/PASSWORD, registry.yaml auth, docker login)",
                    other: "check that the registry is up (`protoreg health`) and re-run: every step is idempotent",
                },
                &mut total,
                &failed,
            )?
            else {
                return Ok(vec![]);
            };
            if let Some(bad) = page.iter().find(|t| !valid_tag(t)) {
                return Err(failed(
                    format!(
                        "the tag list has `{}`, not an OCI tag (letters, digits, `_`, `.`, `-`; at most 128, not starting with `.` or `-`)",
                        crate::error::sanitize(&bad.chars().take(40).collect::<String>())
                    ),
                    "the registry serves tags no client can pull (damaged or hostile); check it",
                ));
            }
            out.extend(page);
            match next {
                // Only a page of the same registry (relative, or this origin).
                Some(link) if link.starts_with('/') && !link.starts_with("//") => {
                    url = format!("{origin}{link}")
                }
                Some(link) if link.starts_with(&format!("{origin}/")) => url = link,
                Some(_) => return Err(failed(
                    "the tag list's next page is on another server".into(),
                    "the registry's `Link` header points elsewhere (damaged or hostile); check it",
                )),
                None => return Ok(out),
            }
        }
        Err(failed(
            format!("the tag list has more than {MAX_TAG_PAGES} pages"),
            "the registry serves an endless tag list; check it, or prune the repository's tags",
        ))
    }

    /// Stream a blob of at most `most` bytes into `sink` (verification is the caller's),
    /// through [`blob::pull`]: an error answer is read to 4 MiB for its codes, never whole.
    pub fn pull_blob(
        &self,
        repository: &str,
        digest: &Sha256,
        most: u64,
        sink: &mut dyn std::io::Write,
    ) -> Result<()> {
        let operation = format!("pull blob {repository}@{}", digest.oci());
        let failed = |reason: String, hint: &str| Error::Registry {
            operation: operation.clone(),
            registry: self.host.clone(),
            reason: auth::redact(&reason, &self.creds),
            hint: hint.into(),
        };
        let url = blob::url(
            self.plain_http,
            api_host(&self.host),
            repository,
            &digest.oci(),
        );
        // A cached token the registry no longer takes (expired) is renewed once.
        for renew in [false, true] {
            let token = self.repository_token(&operation, repository, false, renew)?;
            let scrub = |m: &str| blob::scrub(m, &self.creds, token.as_deref());
            let answer = blob::pull(
                self.document_agent(),
                &url,
                self.authorization(token.as_deref()),
                transfer_budget(self.timeout, most),
                sink,
                &scrub,
            );
            return match answer {
                Ok(()) => Ok(()),
                Err(blob::PullError::Status { code: 401, .. }) if !renew && token.is_some() => {
                    continue
                }
                Err(blob::PullError::Status {
                    code: code @ (401 | 403),
                    codes,
                }) => Err(failed(
                    format!("HTTP {code}{codes}"),
                    "check the registry credentials (PROTOREG_REGISTRY_USERNAME/PASSWORD, registry.yaml auth, docker login)",
                )),
                Err(blob::PullError::Status { code, codes }) => Err(failed(
                    format!("HTTP {code}{codes}"),
                    "check that the registry is up (`protoreg health`) and re-run: every step is idempotent",
                )),
                Err(blob::PullError::Failed(reason)) => Err(failed(
                    reason,
                    "check that the registry is up (`protoreg health`) and re-run: every step is idempotent",
                )),
            };
        }
        Err(failed(
            "HTTP 401 with a renewed token".into(),
            "check the registry credentials (PROTOREG_REGISTRY_USERNAME/PASSWORD, registry.yaml auth, docker login)",
        ))
    }
}

impl Registry {
    /// Every repository the registry lists (`_catalog`, paged), optionally under `prefix/`.
    ///
    /// Requested here rather than through oci-client, which asks a token registry for a
    /// repository's pull scope, not the `registry:catalog:*` the catalog needs: the bearer
    /// challenge of the 401 names the scope (see [`Registry::send_authorized`]).
    pub fn catalog(&self, prefix: &str) -> Result<Vec<String>> {
        let scheme = if self.plain_http { "http" } else { "https" };
        let failed = |reason: String, hint: &str| Error::Registry {
            operation: "list repositories".into(),
            registry: self.host.clone(),
            reason: auth::redact(&reason, &self.creds),
            hint: hint.into(),
        };
        let mut out: Vec<String> = Vec::new();
        let mut total: u64 = 0;
        // Bounded: 1000 pages of 1000 repositories, MAX_LIST_BYTES in all.
        for _ in 0..1000 {
            let mut url = format!("{scheme}://{}/v2/_catalog?n=1000", api_host(&self.host));
            if let Some(last) = out.last() {
                url.push_str(&format!("&last={}", query_escape(last)));
            }
            let resp = self.send_authorized("list repositories", "catalog", |authorization| {
                let headers: Vec<(&str, String)> = authorization
                    .map(|v| vec![("Authorization", v)])
                    .unwrap_or_default();
                self.get_document(&url, &headers).map_err(|e| {
                    failed(
                        e,
                        "check that the registry is up (`protoreg health`) and re-run",
                    )
                })
            })?;
            let Some(page) = list_page(
                resp,
                &ListPage {
                    what: "catalog",
                    field: "repositories",
                    denied: "check the registry credentials (PROTOREG_REGISTRY_USERNAME/PASSWORD, registry.yaml auth, docker login), and that they may list the catalog",
                    other: "the registry may not offer a catalog; check it (`protoreg health`)",
                },
                &mut total,
                &failed,
            )?
            else {
                return Err(failed(
                    "HTTP 404".into(),
                    "the registry may not offer a catalog; check it (`protoreg health`)",
                ));
            };
            let n = page.len();
            out.extend(page);
            if n < 1000 {
                break;
            }
        }
        let want = format!("{}/", prefix.trim_end_matches('/'));
        out.retain(|repo| prefix.is_empty() || repo.starts_with(&want));
        Ok(out)
    }

    /// Send a request made here (not by oci-client), answering the registry's bearer
    /// challenge once. `send` gets the `Authorization` value: the token cached under `key`,
    /// else the credentials themselves. On HTTP 401 with `WWW-Authenticate: Bearer realm=…,
    /// service=…,scope=…`, a token for the scope the challenge names is fetched from the realm
    /// (see [`TokenFlow::token`]: an https realm, unless allowed), cached under `key`, and the
    /// request sent again. The answer is the last response,
    /// whatever its status.
    fn send_authorized(
        &self,
        operation: &str,
        key: &str,
        send: impl Fn(Option<String>) -> Result<ureq::http::Response<ureq::Body>>,
    ) -> Result<ureq::http::Response<ureq::Body>> {
        let cached = self
            .challenge_tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(key)
            .cloned();
        let resp = send(self.authorization(cached.as_deref()))?;
        if resp.status().as_u16() != 401 || matches!(self.creds, Credentials::Bearer(_)) {
            return Ok(resp);
        }
        let Some(challenge) = BearerChallenge::of_response(&resp) else {
            return Ok(resp);
        };
        let token = self.challenge_token(operation, &challenge)?;
        self.challenge_tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key.to_string(), token.clone());
        send(Some(format!("Bearer {token}")))
    }

    /// A token from the challenge's realm for the scopes it names (see [`TokenFlow::token`]).
    fn challenge_token(&self, operation: &str, challenge: &BearerChallenge) -> Result<String> {
        self.token_flow()
            .token(challenge)
            .map(|(token, _)| token)
            .map_err(|f| self.token_failure(operation, f))
    }

    /// Delete a manifest or index by digest (the distribution API deletes by digest only;
    /// every tag pointing at it goes with it). oci-client has no delete, so this is one
    /// request made here; a token registry's challenge for the `delete` action (which no
    /// pull or push token carries) is answered with a token for it.
    pub fn delete_manifest(&self, repository: &str, digest: &Sha256) -> Result<()> {
        let scheme = if self.plain_http { "http" } else { "https" };
        let url = format!(
            "{scheme}://{}/v2/{repository}/manifests/{}",
            api_host(&self.host),
            digest.oci()
        );
        let agent = self.document_agent();
        let operation = format!("delete {repository}@{}", digest.oci());
        let failed = |reason: String, hint: &str| Error::Registry {
            operation: operation.clone(),
            registry: self.host.clone(),
            reason: auth::redact(&reason, &self.creds),
            hint: hint.into(),
        };
        let resp = self.send_authorized(
            &operation,
            &format!("delete {repository}"),
            |authorization| {
                let mut req = agent.delete(&url);
                if let Some(value) = authorization {
                    req = req.header("Authorization", &value);
                }
                req.call()
                    .map_err(|e| failed(agent.failure(&url, e), "check that the registry is up"))
            },
        )?;
        match resp.status().as_u16() {
            200 | 202 | 404 => Ok(()),
            405 => Err(failed(
                "HTTP 405: deletes are disabled".into(),
                "enable deletes on the registry (distribution: storage.delete.enabled: true)",
            )),
            401 | 403 => Err(failed(
                format!("HTTP {}", resp.status().as_u16()),
                "the credentials may read but not delete: use an account with delete rights",
            )),
            code => Err(failed(format!("HTTP {code}"), "re-run later")),
        }
    }
}

/// The error of a call run by [`Registry::bounded`]: oci-client's (described by the facade)
/// or one of protoreg's own.
pub enum BoundedError {
    Oci(OciDistributionError),
    Done(Error),
}

impl From<OciDistributionError> for BoundedError {
    fn from(e: OciDistributionError) -> Self {
        BoundedError::Oci(e)
    }
}

impl From<Error> for BoundedError {
    fn from(e: Error) -> Self {
        BoundedError::Done(e)
    }
}

pub fn describe(e: &OciDistributionError) -> String {
    use OciDistributionError as E;
    match e {
        // Its text is the token server's body, which may echo the request (Authorization
        // included): never shown.
        E::AuthenticationFailure(_) => "authentication failed".into(),
        E::UnauthorizedError { .. } => "unauthorized (HTTP 401)".into(),
        // Keep the registry's error codes (400 MANIFEST_BLOB_UNKNOWN and MANIFEST_INVALID
        // call for different remedies); their free-text details stay out.
        E::ServerError { code, message, .. } => {
            format!("HTTP {code}{}", error_codes(message.as_bytes()))
        }
        E::ImageManifestNotFoundError(_) => "not found".into(),
        E::RegistryError { envelope, .. } => {
            let codes: Vec<String> = envelope
                .errors
                .iter()
                .map(|x| format!("{:?}: {}", x.code, x.message))
                .collect();
            format!("registry error: {}", codes.join("; "))
        }
        other => {
            let mut s = other.to_string();
            let mut src = std::error::Error::source(other);
            while let Some(inner) = src {
                s.push_str(": ");
                s.push_str(&inner.to_string());
                src = inner.source();
            }
            s
        }
    }
}

/// A registry answer's body, read to `limit`: `Ok(None)` for a successful answer larger than
/// that (the caller names what it is), an empty body for an error answer larger than that
/// (only its status matters), `Err` with a one-line reason when the transfer fails.
pub(super) fn answer_body(
    resp: ureq::http::Response<ureq::Body>,
    limit: u64,
) -> std::result::Result<Option<Vec<u8>>, String> {
    let ok = resp.status().as_u16() == 200;
    match read_document(resp.into_body().into_reader(), limit) {
        Ok(Document::Whole(bytes)) => Ok(Some(bytes)),
        Ok(Document::TooLarge) if ok => Ok(None),
        Ok(Document::TooLarge) => Ok(Some(Vec::new())),
        Err(e) => Err(format!("transfer failed: {}", io_reason(&e))),
    }
}

/// What a paged list is, for [`list_page`]'s errors.
struct ListPage {
    /// `tag list` or `catalog`.
    what: &'static str,
    /// The array it is under: `tags` or `repositories`.
    field: &'static str,
    /// The hint for HTTP 401/403, and for any other failure.
    denied: &'static str,
    other: &'static str,
}

/// One page of a paged list: its body read to [`DOCUMENT_BYTES`], the running `total` of all
/// pages kept under [`MAX_LIST_BYTES`], and the strings of its array (`null` is none).
/// `Ok(None)` is HTTP 404: no such repository.
fn list_page(
    resp: ureq::http::Response<ureq::Body>,
    kind: &ListPage,
    total: &mut u64,
    failed: &dyn Fn(String, &str) -> Error,
) -> Result<Option<Vec<String>>> {
    let what = kind.what;
    let status = resp.status().as_u16();
    let Some(body) = answer_body(resp, DOCUMENT_BYTES).map_err(|reason| {
        failed(
            reason,
            "check that the registry is up (`protoreg health`) and re-run",
        )
    })?
    else {
        return Err(failed(
            format!(
                "a {what} page larger than {} ({DOCUMENT_BYTES} bytes), the most a registry document may have",
                crate::error::Bytes(DOCUMENT_BYTES)
            ),
            &format!("the registry serves something that is not a {what} (damaged or hostile); check it"),
        ));
    };
    match status {
        200 => {}
        404 => return Ok(None),
        401 | 403 => {
            return Err(failed(
                format!("HTTP {status}{}", error_codes(&body)),
                kind.denied,
            ))
        }
        _ => {
            return Err(failed(
                format!("HTTP {status}{}", error_codes(&body)),
                kind.other,
            ))
        }
    }
    *total += body.len() as u64;
    if *total > MAX_LIST_BYTES {
        return Err(failed(
            format!(
                "the {what} is larger than {} in all its pages, the most protoreg reads",
                crate::error::Bytes(MAX_LIST_BYTES)
            ),
            &format!("the registry serves an endless or hostile {what}; check it"),
        ));
    }
    let field = kind.field;
    serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| match &v[field] {
            serde_json::Value::Null => Some(Vec::new()),
            serde_json::Value::Array(a) => a
                .iter()
                .map(|t| t.as_str().map(str::to_string))
                .collect::<Option<Vec<String>>>(),
            _ => None,
        })
        .map(Some)
        .ok_or_else(|| {
            failed(
                format!("a {what} page that is not `{{\"{field}\": [...]}}`"),
                &format!("the registry serves something that is not a {what}"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_follow_the_oci_grammar() {
        assert!(valid_tag("v36.2-linux-x86_64") && valid_tag("_x") && valid_tag(&"a".repeat(128)));
        for bad in ["", ".x", "-x", "a/b", "a\u{1b}]0;x", &"a".repeat(129)] {
            assert!(!valid_tag(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_next_page_comes_from_the_link_header() {
        assert_eq!(
            next_link(r#"</v2/x/tags/list?last=b&n=2>; rel="next""#).as_deref(),
            Some("/v2/x/tags/list?last=b&n=2")
        );
        assert_eq!(
            next_link(r#"<https://h/prev>; rel="prev", <https://h/next>; rel=next"#).as_deref(),
            Some("https://h/next")
        );
        assert_eq!(next_link(r#"<https://h/x>; rel="prev""#), None);
    }

    #[test]
    fn error_summaries_keep_spec_codes_only() {
        let body = br#"{"errors":[{"code":"BLOB_UNKNOWN","message":"blob unknown"},{"code":"Basic Y2k6cHc=","message":"x"}]}"#;
        assert_eq!(error_codes(body), " (BLOB_UNKNOWN)");
        assert_eq!(
            error_summary(body, Some(&|m: &str| m.to_string())),
            " (BLOB_UNKNOWN: blob unknown)"
        );
        assert_eq!(error_codes(b"not json"), "");
    }
}
