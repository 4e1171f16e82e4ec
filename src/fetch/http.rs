//! `https://…` and `http://…` sources, with ureq, streamed.

use std::io::{self, Write};
use std::time::Duration;

use super::NetOptions;

/// The agent for a source of `size` bytes: non-2xx statuses are errors.
pub fn agent(net: &NetOptions, size: u64) -> ureq::Agent {
    build_agent(net.timeout, size, true)
}

/// The one way protoreg builds a ureq agent. A stall is any single read waiting longer than
/// `timeout`; the whole body is also bounded (the timeout plus time for `size` bytes at a
/// slow 256 KiB/s) as a backstop. TLS through the process-wide rustls provider.
pub fn build_agent(timeout: Duration, size: u64, status_as_error: bool) -> ureq::Agent {
    super::install_tls_provider();
    let body = timeout + Duration::from_secs(size / (256 << 10));
    ureq::Agent::config_builder()
        .timeout_connect(Some(timeout))
        .timeout_per_read(Some(timeout))
        .timeout_recv_response(Some(timeout))
        .timeout_recv_body(Some(body))
        .http_status_as_error(status_as_error)
        .user_agent(concat!("protoreg/", env!("CARGO_PKG_VERSION")))
        .build()
        .new_agent()
}

pub fn fetch(agent: &ureq::Agent, url: &str, sink: &mut dyn Write) -> Result<(), String> {
    let response = agent.get(url).call().map_err(describe)?;
    let mut body = response.into_body().into_reader();
    io::copy(&mut body, sink).map_err(|e| format!("transfer failed: {}", io_reason(&e)))?;
    Ok(())
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
