//! Retries for registry writes: transient failures (connection trouble, 5xx, 429, timeouts)
//! are retried with exponential backoff and jitter; authentication failures and bad input
//! are not (retrying cannot fix them). The final error says how many tries over how long.

use std::time::{Duration, Instant};

use crate::error::{Error, Result};

fn transient(e: &Error) -> bool {
    match e {
        Error::Registry { reason, .. } => {
            let r = reason.to_ascii_lowercase();
            // Registry codes about blobs and uploads (docker-registry answers a manifest whose
            // config it misreads with `400 (DIGEST_INVALID, MANIFEST_BLOB_UNKNOWN)`): a fresh
            // upload or a re-push fixes them, so they are retried despite naming `invalid`.
            let recoverable = [
                "blob_unknown",
                "blob_upload_unknown",
                "blob_upload_invalid",
                "digest_invalid",
                "size_invalid",
            ];
            if recoverable.iter().any(|c| r.contains(c)) {
                return true;
            }
            let permanent = [
                "unauthorized",
                "authentication",
                "http 401",
                "http 403",
                "denied",
                "http 404",
                "invalid",
            ];
            !permanent.iter().any(|p| r.contains(p))
        }
        Error::Io { .. } => true,
        _ => false,
    }
}

/// Run `op` up to `1 + retries` times. `on_retry` hears of each retry (for metrics/progress).
pub fn retry<T>(
    retries: u32,
    what: &str,
    mut on_retry: impl FnMut(u32, &Error),
    mut op: impl FnMut() -> Result<T>,
) -> Result<T> {
    let started = Instant::now();
    let mut attempt = 0;
    loop {
        match op() {
            Ok(v) => return Ok(v),
            Err(e) if attempt < retries && transient(&e) => {
                attempt += 1;
                on_retry(attempt, &e);
                // 200 ms, 400 ms, 800 ms, … capped at 5 s, plus up to 25% jitter.
                let base = Duration::from_millis(200 * (1u64 << (attempt - 1).min(5))).min(Duration::from_secs(5));
                let nanos = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos() as u64)
                    .unwrap_or(0);
                let jitter = base.mul_f64((nanos % 1000) as f64 / 4000.0);
                std::thread::sleep(base + jitter);
            }
            Err(e) if attempt > 0 => {
                return Err(Error::Registry {
                    operation: what.to_string(),
                    registry: String::from("(after retries)"),
                    reason: format!(
                        "failed {} times over {:.1}s; last error: {}",
                        attempt + 1,
                        started.elapsed().as_secs_f64(),
                        e.summary()
                    ),
                    hint: "re-run `protoreg publish`: what reached the registry is kept, nothing is pushed twice".into(),
                })
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(reason: &str) -> Error {
        Error::Registry {
            operation: "check blob".into(),
            registry: "127.0.0.1:5000".into(),
            reason: reason.into(),
            hint: String::new(),
        }
    }

    #[test]
    fn server_errors_and_unknown_blobs_are_retried_bad_input_is_not() {
        assert!(transient(&registry(
            "HTTP status server error (500 Internal Server Error) for url (http://127.0.0.1:5000/v2/ns/tools/protoc/blobs/sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a)"
        )));
        assert!(transient(&registry(
            "HTTP 400 (DIGEST_INVALID, MANIFEST_BLOB_UNKNOWN)"
        )));
        assert!(!transient(&registry("HTTP 400 (MANIFEST_INVALID)")));
        assert!(!transient(&registry("unauthorized (HTTP 401)")));
    }
}
