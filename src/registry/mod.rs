//! A thin, blocking facade over oci-client for the operator's side (push, tags, manifests,
//! blob existence). It owns its current-thread runtime, so callers stay synchronous; blobs
//! are streamed from disk in chunks, never read whole.
//!
//! Every call is bounded like a fetch ([`crate::pipeline::fetch::transfer_budget`]): a document
//! (manifest, tag list, catalog page, token) must arrive within the timeout plus the time its
//! 4 MiB budget takes at 256 KiB/s, a blob within the timeout plus its size at that rate,
//! and no read of a pulled blob may wait longer than the timeout. A registry that trickles
//! its answers fails the call instead of holding it up forever.

mod challenge;

use std::future::Future;
use std::io::Read;
use std::path::Path;
use std::time::Duration;

use futures_util::StreamExt;
use oci_client::errors::OciDistributionError;
use oci_client::manifest::{OCI_IMAGE_INDEX_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};

use crate::auth::{self, Credentials};
use crate::error::{Error, Result};
use crate::pipeline::fetch::{transfer_budget, NetOptions, DOCUMENT_BYTES};
use crate::pipeline::verify::Sha256;
use crate::progress::Bar;
use challenge::{query_escape, BearerChallenge};

const CHUNK: usize = 4 << 20;

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
    let codes: Vec<String> = serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v["errors"].as_array().map(|errors| {
                errors
                    .iter()
                    .filter_map(|e| e["code"].as_str().map(str::to_string))
                    .collect()
            })
        })
        .unwrap_or_default();
    if codes.is_empty() {
        String::new()
    } else {
        format!(" ({})", codes.join(", "))
    }
}

pub struct Registry {
    runtime: tokio::runtime::Runtime,
    client: Client,
    pub host: String,
    creds: Credentials,
    plain_http: bool,
    timeout: std::time::Duration,
    /// The run's proxies: for the requests made here, and to name the proxy when a request
    /// through it fails.
    proxies: crate::pipeline::fetch::Proxies,
    /// `http://HOST/` or `https://HOST/`, as oci-client reaches the registry (for its proxy).
    base_url: String,
    /// Pull tokens by repository, for the requests made here (manifests).
    pull_tokens: std::sync::Mutex<std::collections::HashMap<String, Option<String>>>,
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
        let client = {
            let _guard = runtime.enter();
            Client::try_from(crate::pipeline::fetch::oci_client_config(net)).map_err(|e| {
                Error::Registry {
                    operation: "connect".into(),
                    registry: host.into(),
                    reason: e.to_string(),
                    hint: "check the TLS settings".into(),
                }
            })?
        };
        Ok(Registry {
            runtime,
            client,
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
            plain_http: net.plain_http,
            timeout: net.timeout,
            proxies: net.proxies.clone(),
            base_url: {
                let plain = net.plain_http
                    || net.hosts.iter().any(|h| h.host == host && h.plain_http);
                format!("{}://{host}/", if plain { "http" } else { "https" })
            },
            pull_tokens: Default::default(),
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

    fn auth(&self) -> RegistryAuth {
        self.creds.to_oci()
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
        self.bounded("check blob", self.document_budget(), async {
            self.client
                .store_auth_if_needed(r.resolve_registry(), &self.auth())
                .await;
            self.client.blob_exists(&r, &digest.oci()).await
        })
    }

    /// Push a blob from memory (small documents: configs).
    pub fn push_blob_bytes(&self, repository: &str, data: &[u8]) -> Result<Sha256> {
        let digest = Sha256::of_bytes(data);
        if self.blob_exists(repository, &digest)? {
            return Ok(digest);
        }
        let r = self.reference(repository, &digest.oci());
        self.bounded(
            "push blob",
            transfer_budget(self.timeout, data.len() as u64),
            self.client.push_blob(&r, data.to_vec(), &digest.oci()),
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
        self.bounded("push blob", transfer_budget(self.timeout, size), async {
            self.client
                .store_auth_if_needed(r.resolve_registry(), &self.auth())
                .await;
            self.client
                .push_blob_stream(&r, stream, &digest.oci(), Some(size))
                .await
        })?;
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
        self.bounded("push manifest", self.document_budget(), async {
            self.client
                .store_auth_if_needed(r.resolve_registry(), &self.auth())
                .await;
            self.client
                .push_manifest_raw(&r, bytes.to_vec(), content_type)
                .await
        })?;
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
            self.host
        );
        // A cached token the registry no longer takes (expired) is renewed once.
        for renew in [false, true] {
            let token = self.pull_token(repository, renew)?;
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
            let body = match read_document(resp.into_body().into_reader(), MAX_MANIFEST_BYTES) {
                Ok(Document::Whole(bytes)) => bytes,
                Ok(Document::TooLarge) if status == 200 => {
                    return Err(too_large("larger than that (cut off)".into()))
                }
                // An error page past the limit: only its status matters.
                Ok(Document::TooLarge) => Vec::new(),
                Err(e) => {
                    return Err(failed(
                        format!("transfer failed: {}", io_reason(&e)),
                        "check that the registry is up (`protoreg health`) and re-run",
                    ))
                }
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

    /// The bearer token for pulling from `repository` (None: basic or no credentials, as the
    /// registry's challenge says), negotiated by oci-client once per repository and cached;
    /// `renew` drops the cached one first.
    fn pull_token(&self, repository: &str, renew: bool) -> Result<Option<String>> {
        let mut cached = self
            .pull_tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if renew {
            cached.remove(repository);
        }
        if let Some(token) = cached.get(repository) {
            return Ok(token.clone());
        }
        let r = self.reference(repository, "latest");
        let token = self.bounded(
            "authenticate",
            self.document_budget(),
            self.client.auth(&r, &self.auth(), RegistryOperation::Pull),
        )?;
        cached.insert(repository.to_string(), token.clone());
        Ok(token)
    }

    /// The `Authorization` header of a request made here rather than by oci-client: the
    /// negotiated token, else the credentials themselves.
    fn authorization(&self, token: Option<&str>) -> Option<String> {
        match (token, &self.creds) {
            (Some(t), _) => Some(format!("Bearer {t}")),
            (None, Credentials::Basic { username, password }) => {
                use base64::Engine;
                let b = base64::engine::general_purpose::STANDARD
                    .encode(format!("{username}:{password}"));
                Some(format!("Basic {b}"))
            }
            (None, Credentials::Bearer(t)) => Some(format!("Bearer {t}")),
            (None, Credentials::Anonymous) => None,
        }
    }

    /// Every tag of a repository (empty when the repository does not exist).
    pub fn tags(&self, repository: &str) -> Result<Vec<String>> {
        // Negotiated through the one cache first: oci-client's `auth` never looks in its own,
        // so a list_tags before a manifest read would fetch the same pull token twice.
        self.pull_token(repository, false)?;
        let r = self.reference(repository, "latest");
        let answer = self.bounded("list tags", self.document_budget(), async {
            Ok::<_, BoundedError>(self.client.list_tags(&r, &self.auth(), None, None).await)
        })?;
        match answer {
            Ok(t) => Ok(t.tags),
            Err(OciDistributionError::RegistryError { envelope, .. })
                if envelope
                    .errors
                    .iter()
                    .any(|e| matches!(e.code, oci_client::errors::OciErrorCode::NameUnknown)) =>
            {
                Ok(vec![])
            }
            Err(e) => Err(self.err("list tags", e)),
        }
    }

    /// Stream a blob of at most `most` bytes into `sink` (verification is the caller's).
    pub fn pull_blob(
        &self,
        repository: &str,
        digest: &Sha256,
        most: u64,
        sink: &mut dyn std::io::Write,
    ) -> Result<()> {
        let r = self.reference(repository, &digest.oci());
        let stall = self.timeout;
        let stalled = || Error::Registry {
            operation: "pull blob".into(),
            registry: self.host.clone(),
            reason: format!("timed out: stalled for {}s", stall.as_secs()),
            hint: "the registry stopped sending: check it (`protoreg health`) and re-run".into(),
        };
        self.bounded("pull blob", transfer_budget(stall, most), async {
            self.client
                .store_auth_if_needed(r.resolve_registry(), &self.auth())
                .await;
            let mut stream = self
                .client
                .pull_blob_stream(&r, digest.oci().as_str())
                .await
                .map_err(|e| self.err("pull blob", e))?;
            while let Some(chunk) = tokio::time::timeout(stall, stream.next())
                .await
                .map_err(|_| stalled())?
            {
                let chunk = chunk.map_err(|e| Error::io("download", &self.host, e))?;
                sink.write_all(&chunk)
                    .map_err(|e| Error::io("write", &self.host, e))?;
            }
            Ok::<(), Error>(())
        })
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
        // Bounded: 1000 pages of 1000 repositories.
        for _ in 0..1000 {
            let mut url = format!("{scheme}://{}/v2/_catalog?n=1000", self.host);
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
            let status = resp.status().as_u16();
            let body = match read_document(resp.into_body().into_reader(), DOCUMENT_BYTES) {
                Ok(Document::Whole(bytes)) => bytes,
                Ok(Document::TooLarge) => {
                    return Err(failed(
                        format!(
                            "a catalog page larger than {}",
                            crate::error::Bytes(DOCUMENT_BYTES)
                        ),
                        "the registry serves something that is not a catalog page",
                    ))
                }
                Err(e) => {
                    return Err(failed(
                        format!("transfer failed: {}", io_reason(&e)),
                        "check that the registry is up (`protoreg health`) and re-run",
                    ))
                }
            };
            match status {
                200 => {}
                401 | 403 => {
                    return Err(failed(
                        format!("HTTP {status}{}", error_codes(&body)),
                        "check the registry credentials (PROTOREG_REGISTRY_USERNAME/PASSWORD, registry.yaml auth, docker login), and that they may list the catalog",
                    ))
                }
                _ => {
                    return Err(failed(
                        format!("HTTP {status}{}", error_codes(&body)),
                        "the registry may not offer a catalog; check it (`protoreg health`)",
                    ))
                }
            }
            let page: Vec<String> = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| {
                    v["repositories"].as_array().map(|a| {
                        a.iter()
                            .filter_map(|r| r.as_str().map(str::to_string))
                            .collect()
                    })
                })
                .ok_or_else(|| {
                    failed(
                        "a catalog page that is not `{\"repositories\": [...]}`".into(),
                        "the registry serves something that is not a catalog page",
                    )
                })?;
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
    /// (with the credentials, as the token protocol has it: the registry names its realm),
    /// cached under `key`, and the request sent again. The answer is the last response,
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
        let Some(challenge) = resp
            .headers()
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(BearerChallenge::parse)
        else {
            return Ok(resp);
        };
        let token = self.challenge_token(operation, &challenge)?;
        self.challenge_tokens
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(key.to_string(), token.clone());
        send(Some(format!("Bearer {token}")))
    }

    /// A token from the challenge's realm for the scopes it names.
    fn challenge_token(&self, operation: &str, challenge: &BearerChallenge) -> Result<String> {
        let failed = |reason: String, hint: &str| Error::Registry {
            operation: operation.into(),
            registry: self.host.clone(),
            reason: auth::redact(&reason, &self.creds),
            hint: hint.into(),
        };
        let realm = &challenge.realm;
        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
            return Err(failed(
                "the registry's bearer challenge names a token realm that is not an http(s) URL"
                    .into(),
                "check the registry's token auth configuration (its `realm`)",
            ));
        }
        // Credentials travel over TLS unless plain HTTP was asked for.
        if realm.starts_with("http://") && !self.plain_http {
            return Err(failed(
                format!("the registry's token realm `{}` is plain HTTP, and credentials are sent only over TLS", crate::pipeline::source::redact_url(realm)),
                "serve the token realm over https, or pass --plain-http (registry.yaml `plain_http: true`) for a registry you trust on this network",
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
        if let Credentials::Basic { username, .. } = &self.creds {
            param("account", username);
            if let Some(value) = self.authorization(None) {
                headers.push(("Authorization", value));
            }
        }
        let resp = self.get_document(&url, &headers).map_err(|e| {
            failed(
                format!("the token server did not answer: {e}"),
                "check that the registry's token server (its auth realm) is up and re-run",
            )
        })?;
        let status = resp.status().as_u16();
        let body = match read_document(resp.into_body().into_reader(), DOCUMENT_BYTES) {
            Ok(Document::Whole(bytes)) => bytes,
            Ok(Document::TooLarge) => Vec::new(),
            Err(e) => {
                return Err(failed(
                    format!("the token transfer failed: {}", io_reason(&e)),
                    "check that the registry's token server (its auth realm) is up and re-run",
                ))
            }
        };
        if status != 200 {
            return Err(failed(
                format!("the token server refused: HTTP {status}"),
                "check the registry credentials (PROTOREG_REGISTRY_USERNAME/PASSWORD, registry.yaml auth, docker login)",
            ));
        }
        serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| {
                [&v["token"], &v["access_token"]]
                    .into_iter()
                    .find_map(|t| t.as_str().filter(|t| !t.is_empty()).map(str::to_string))
            })
            .ok_or_else(|| {
                failed(
                    "the token server's answer has no `token`".into(),
                    "check the registry's token server (its auth realm)",
                )
            })
    }

    /// Delete a manifest or index by digest (the distribution API deletes by digest only;
    /// every tag pointing at it goes with it). oci-client has no delete, so this is one
    /// request made here; a token registry's challenge for the `delete` action (which no
    /// pull or push token carries) is answered with a token for it.
    pub fn delete_manifest(&self, repository: &str, digest: &Sha256) -> Result<()> {
        let scheme = if self.plain_http { "http" } else { "https" };
        let url = format!(
            "{scheme}://{}/v2/{repository}/manifests/{}",
            self.host,
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
        E::AuthenticationFailure(m) => format!("authentication failed: {m}"),
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
