//! `https://…` and `http://…` sources, with ureq, streamed. Redirects are followed here, not
//! by ureq, so a redirect to another scheme (`file://`, `ftp://`) is refused by name.

use std::io::{self, Write};
use std::time::Duration;

use super::{NetOptions, Proxies};
use crate::pipeline::source::redact_url;

/// Redirects [`get`] follows before giving up.
pub const MAX_REDIRECTS: usize = 10;

/// The agent for a source of `size` bytes: non-2xx statuses are errors.
pub fn agent(net: &NetOptions, size: u64) -> HttpAgent {
    build_agent(net.timeout, size, true, &net.proxies)
}

/// A ureq agent with the run's proxies: each request picks the proxy for its own URL (a
/// redirect may change scheme or host), so the agent itself has none.
#[derive(Clone)]
pub struct HttpAgent {
    agent: ureq::Agent,
    proxies: Proxies,
}

impl HttpAgent {
    /// A GET of `url` through its proxy, if any.
    pub fn get(&self, url: &str) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        self.agent
            .get(url)
            .config()
            .proxy(self.proxies.ureq_for(url))
            .build()
    }

    /// A DELETE of `url` through its proxy, if any.
    pub fn delete(&self, url: &str) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        self.agent
            .delete(url)
            .config()
            .proxy(self.proxies.ureq_for(url))
            .build()
    }

    /// The one-line reason for a request to `url` that failed: one that got no answer of
    /// the server's own names the proxy it went through, if any (never its credentials), so a
    /// dead proxy is not taken for a dead server.
    pub fn failure(&self, url: &str, e: ureq::Error) -> String {
        let auth_refused = matches!(&e, ureq::Error::ConnectProxyFailed(m) if m.contains(" 407/"));
        match e {
            ureq::Error::StatusCode(_) => describe(e),
            _ => super::proxy::via_proxy(self.proxies.for_url(url), describe(e), auth_refused),
        }
    }
}

/// The one way protoreg builds a ureq agent. A stall is any single read waiting longer than
/// `timeout`; the whole body is also bounded by [`super::transfer_budget`] (the timeout plus
/// time for `size` bytes at 256 KiB/s), so a trickle that never stalls is cut off too. TLS
/// through the process-wide rustls provider, trusting what the platform trusts (on Linux the
/// system store, or `SSL_CERT_FILE` / `SSL_CERT_DIR` when set): the same roots as the
/// registries' client, so a corporate CA installed once serves every source. The agent
/// follows no redirects: [`get`] does. Proxies are `proxies`' per URL, never ureq's own
/// reading of the environment (which would send `http://` through `HTTPS_PROXY`).
pub fn build_agent(
    timeout: Duration,
    size: u64,
    status_as_error: bool,
    proxies: &Proxies,
) -> HttpAgent {
    super::install_tls_provider();
    let body = super::transfer_budget(timeout, size);
    let agent = ureq::Agent::config_builder()
        .tls_config(
            ureq::tls::TlsConfig::builder()
                .root_certs(super::trust::ureq_roots())
                .build(),
        )
        .proxy(None)
        .max_redirects(0)
        .timeout_connect(Some(timeout))
        .timeout_per_read(Some(timeout))
        .timeout_recv_response(Some(timeout))
        .timeout_recv_body(Some(body))
        .http_status_as_error(status_as_error)
        .user_agent(concat!("protoreg/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent();
    HttpAgent {
        agent,
        proxies: proxies.clone(),
    }
}

/// Stream `url`'s body into `sink`; the whole body must arrive within `budget` (the agent's
/// budget is the first artifact's; each fetch sets its own).
pub fn fetch(
    agent: &HttpAgent,
    url: &str,
    budget: Duration,
    sink: &mut dyn Write,
) -> Result<(), String> {
    let response = get(agent, url, &netrc_authorization(url)?, Some(budget))?;
    if !response.status().is_success() {
        return Err(format!("HTTP {}", response.status().as_u16()));
    }
    let mut body = response.into_body().into_reader();
    io::copy(&mut body, sink).map_err(|e| format!("transfer failed: {}", io_reason(&e)))?;
    Ok(())
}

/// GET `url`, following up to [`MAX_REDIRECTS`] redirects to `http://` or `https://` URLs.
/// A redirect anywhere else is refused, naming the scheme; `headers` (credentials) go only to
/// the origin they were meant for; `body`, when given, replaces the agent's whole-body
/// budget. The error is a one-line reason.
pub fn get(
    agent: &HttpAgent,
    url: &str,
    headers: &[(&str, String)],
    body: Option<Duration>,
) -> Result<ureq::http::Response<ureq::Body>, String> {
    let mut current = url.to_string();
    for _ in 0..=MAX_REDIRECTS {
        let mut req = agent.get(&current);
        if let Some(budget) = body {
            req = req.config().timeout_recv_body(Some(budget)).build();
        }
        if origin(&current) == origin(url) {
            for (name, value) in headers {
                req = req.header(*name, value);
            }
        }
        let response = req.call().map_err(|e| agent.failure(&current, e))?;
        if !matches!(response.status().as_u16(), 301 | 302 | 303 | 307 | 308) {
            return Ok(response);
        }
        let location = response
            .headers()
            .get("location")
            .ok_or_else(|| format!("HTTP {} without a Location", response.status().as_u16()))?
            .to_str()
            .map_err(|_| "a redirect Location that is not text".to_string())?
            .to_string();
        current = follow(&current, &location)?;
    }
    Err(format!(
        "more than {MAX_REDIRECTS} redirects (last to `{}`)",
        redact_url(&current)
    ))
}

/// Where a redirect from `base` to `location` leads, or why it is refused.
fn follow(base: &str, location: &str) -> Result<String, String> {
    let location = location.trim();
    if location.is_empty() || location.chars().any(|c| c.is_control() || c == ' ') {
        return Err("a redirect to an empty or malformed Location".into());
    }
    // RFC 3986: scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ), then `:`.
    if let Some((scheme, _)) = location.split_once(':') {
        let is_scheme = scheme
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic())
            && scheme
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"+-.".contains(&b));
        if is_scheme {
            return match scheme.to_ascii_lowercase().as_str() {
                "http" | "https" => Ok(location.to_string()),
                _ => Err(format!(
                    "refused a redirect to `{}`: the `{scheme}:` scheme is not followed (only http:// and https://)",
                    redact_url(location)
                )),
            };
        }
    }
    let (scheme, rest) = base
        .split_once("://")
        .ok_or_else(|| format!("cannot resolve the redirect `{location}`"))?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    if let Some(net_path) = location.strip_prefix("//") {
        return Ok(format!("{scheme}://{net_path}"));
    }
    if location.starts_with('/') {
        return Ok(format!("{scheme}://{authority}{location}"));
    }
    let path = path.split(['?', '#']).next().unwrap_or_default();
    let dir = path.rfind('/').map_or("/", |i| &path[..=i]);
    Ok(format!("{scheme}://{authority}{dir}{location}"))
}

/// Basic credentials for `url`'s host from `.netrc`, if it has them: sent to that origin only
/// (a redirect elsewhere drops them, see [`get`]). The error names a netrc that cannot be
/// used.
fn netrc_authorization(url: &str) -> Result<Vec<(&'static str, String)>, String> {
    use base64::Engine;
    let host = origin(url).split_once("://").map(|(_, h)| h.to_string());
    let Some(host) = host.map(|h| h.rsplit('@').next().unwrap_or("").to_string()) else {
        return Ok(Vec::new());
    };
    Ok(match crate::netrc::lookup(&host)? {
        Some((login, password)) => vec![(
            "Authorization",
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{login}:{password}"))
            ),
        )],
        None => Vec::new(),
    })
}

/// `scheme://authority`, lowercased: where credentials may be sent.
fn origin(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("", url));
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    format!("{scheme}://{}", &rest[..end]).to_ascii_lowercase()
}

fn describe(e: ureq::Error) -> String {
    match e {
        ureq::Error::StatusCode(code) => format!("HTTP {code}"),
        ureq::Error::Timeout(what) => format!("timed out ({what})"),
        ureq::Error::Io(io) => io_reason(&io),
        other => other.to_string(),
    }
}

fn io_reason(e: &io::Error) -> String {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => "connection refused".into(),
        io::ErrorKind::TimedOut => "timed out".into(),
        // ureq reports its own deadlines (per read, whole body) as other I/O errors.
        _ if e.to_string().contains("timeout") => format!("timed out ({e})"),
        io::ErrorKind::UnexpectedEof => "body cut short".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_resolve_or_are_refused_by_scheme() {
        let base = "https://h.example/a/b/c.zip?x=1";
        assert_eq!(follow(base, "/d").unwrap(), "https://h.example/d");
        assert_eq!(
            follow(base, "d.zip").unwrap(),
            "https://h.example/a/b/d.zip"
        );
        assert_eq!(follow(base, "//cdn/x").unwrap(), "https://cdn/x");
        assert_eq!(follow(base, "HTTP://o/x").unwrap(), "HTTP://o/x");
        for (loc, scheme) in [
            ("file:///etc/passwd", "file:"),
            ("ftp://h/x", "ftp:"),
            ("data:,x", "data:"),
        ] {
            let e = follow(base, loc).unwrap_err();
            assert!(e.contains(scheme) && e.contains("refused"), "{e}");
            assert!(!e.contains("too many"), "{e}");
        }
        assert!(follow(base, "").is_err());
        assert_eq!(origin("HTTPS://H:1/x"), "https://h:1");
    }
}
