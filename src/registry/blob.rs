//! Blob pulls, made here rather than by oci-client (which reads an error answer whole): a
//! GET of `/v2/REPOSITORY/blobs/DIGEST` with the authorization [`super::token`] negotiated,
//! redirects followed by the one HTTP client (credentials only to the registry's own origin),
//! the body streamed into the caller's verifying sink, and an error answer read to
//! [`DOCUMENT_BYTES`] for its OCI error codes and (cut short) messages.

use std::io::{Read, Write};
use std::time::Duration;

use super::{error_summary, io_reason, read_document, Document};
use crate::pipeline::fetch::{HttpAgent, DOCUMENT_BYTES};

/// Why a pull failed.
pub enum PullError {
    /// The registry answered this status; `codes` is ` (CODE: message, ...)` or empty.
    Status { code: u16, codes: String },
    /// No answer, a body that failed, or a sink that refused (one line).
    Failed(String),
}

/// `text` without `creds`' secrets or the bearer `token` the pull sent: a registry's error
/// message may echo the request.
pub fn scrub(text: &str, creds: &crate::auth::Credentials, token: Option<&str>) -> String {
    let text = crate::auth::redact(text, creds);
    match token {
        Some(t) if !t.is_empty() => text.replace(t, "***"),
        _ => text,
    }
}

/// `scheme://HOST/v2/REPOSITORY/blobs/DIGEST`.
pub fn url(plain_http: bool, host: &str, repository: &str, digest: &str) -> String {
    let scheme = if plain_http { "http" } else { "https" };
    format!("{scheme}://{host}/v2/{repository}/blobs/{digest}")
}

/// Stream the blob at `url` into `sink`, the whole answer within `budget` (the agent's
/// per-read timeout bounds a stall). An error answer's messages are shown through `scrub`.
pub fn pull(
    agent: &HttpAgent,
    url: &str,
    authorization: Option<String>,
    budget: Duration,
    sink: &mut dyn Write,
    scrub: &dyn Fn(&str) -> String,
) -> Result<(), PullError> {
    let headers: Vec<(&str, String)> = authorization
        .map(|v| vec![("Authorization", v)])
        .unwrap_or_default();
    let resp = crate::pipeline::fetch::http_get(agent, url, &headers, Some(budget))
        .map_err(PullError::Failed)?;
    let code = resp.status().as_u16();
    let mut body = resp.into_body().into_reader();
    if !(200..300).contains(&code) {
        let codes = match read_document(body, DOCUMENT_BYTES) {
            Ok(Document::Whole(bytes)) => error_summary(&bytes, Some(scrub)),
            _ => String::new(),
        };
        return Err(PullError::Status { code, codes });
    }
    let mut buf = vec![0u8; 256 << 10];
    loop {
        let n = match body.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(PullError::Failed(format!(
                    "transfer failed: {}",
                    io_reason(&e)
                )))
            }
        };
        sink.write_all(&buf[..n])
            .map_err(|e| PullError::Failed(format!("write failed: {e}")))?;
    }
}
