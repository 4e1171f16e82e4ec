//! A loopback HTTP proxy that counts what passes it: `CONNECT host:port` (a tunnel) and
//! absolute-URI requests (`GET http://host:port/path`, forwarded as one origin-form request
//! with `Connection: close`). It resolves names ending in `.test` to 127.0.0.1, names the
//! machine cannot resolve: a client that bypasses the proxy for such a name fails, so a
//! success proves the proxy carried the traffic. It connects to loopback only. Optional Basic
//! proxy authentication (407 without the right `Proxy-Authorization`). One thread per
//! connection (at most [`MAX_CONNECTIONS`] at once), every socket with a timeout; stopped on
//! drop.

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Connections served at once; more are answered 503 and closed.
pub const MAX_CONNECTIONS: usize = 64;
/// The longest any read or write waits.
const IO_TIMEOUT: Duration = Duration::from_secs(60);

/// One request the proxy saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    /// `CONNECT`, `GET`, `PUT`, …
    pub method: String,
    /// `host:port` for CONNECT, the absolute URI otherwise.
    pub target: String,
    /// False when it was refused with 407.
    pub authorized: bool,
}

pub struct ForwardProxy {
    pub addr: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
}

/// `(host:port, 127.0.0.1:port)`: names the proxy takes to a loopback server of the test's
/// (a public registry's name, say), before its `.test` rule.
type Aliases = Vec<(String, String)>;

impl ForwardProxy {
    pub fn start() -> ForwardProxy {
        Self::start_with(None, Vec::new())
    }

    /// Also taking each `host:port` of `aliases` to its loopback `127.0.0.1:port`.
    pub fn with_aliases(aliases: &[(&str, &str)]) -> ForwardProxy {
        let aliases = aliases
            .iter()
            .map(|(from, to)| (from.to_ascii_lowercase(), to.to_string()))
            .collect();
        Self::start_with(None, aliases)
    }

    /// Requiring `Proxy-Authorization: Basic base64(user:password)`.
    pub fn with_auth(user: &str, password: &str) -> ForwardProxy {
        use base64::Engine;
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        Self::start_with(Some(format!("Basic {token}")), Vec::new())
    }

    fn start_with(auth: Option<String>, aliases: Aliases) -> ForwardProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let active = Arc::new(AtomicUsize::new(0));
        let (s, st, auth, aliases) = (
            seen.clone(),
            stop.clone(),
            Arc::new(auth),
            Arc::new(aliases),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if st.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut conn) = conn else { continue };
                if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
                    active.fetch_sub(1, Ordering::SeqCst);
                    let _ = conn.write_all(
                        b"HTTP/1.1 503 Too Many Connections\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                    continue;
                }
                let (s, auth, active, aliases) =
                    (s.clone(), auth.clone(), active.clone(), aliases.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &s, auth.as_deref(), &aliases);
                    active.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        ForwardProxy { addr, seen, stop }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://USER:PASSWORD@127.0.0.1:PORT`.
    pub fn url_with(&self, user: &str, password: &str) -> String {
        format!("http://{user}:{password}@{}", self.addr)
    }

    /// Every request seen, in order.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// How many requests passed (authorized ones).
    pub fn count(&self) -> usize {
        self.seen().iter().filter(|s| s.authorized).count()
    }

    /// The distinct `(method, target)` pairs of the authorized requests.
    pub fn targets(&self) -> std::collections::BTreeSet<(String, String)> {
        self.seen()
            .into_iter()
            .filter(|s| s.authorized)
            .map(|s| (s.method, s.target))
            .collect()
    }
}

impl Drop for ForwardProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}

/// `host:port` with a `.test` (or loopback) host, with or without a trailing dot, as
/// 127.0.0.1:port; anything else is refused.
fn loopback(authority: &str, aliases: &Aliases) -> Option<String> {
    let lower = authority.to_ascii_lowercase();
    if let Some((_, to)) = aliases.iter().find(|(from, _)| *from == lower) {
        return Some(to.clone());
    }
    let (host, port) = authority.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    // A fully qualified name (trailing dot) is the same host.
    let host = host.to_ascii_lowercase();
    let host = host.strip_suffix('.').unwrap_or(&host);
    (host.ends_with(".test") || host == "127.0.0.1" || host == "localhost")
        .then(|| format!("127.0.0.1:{port}"))
}

fn serve(
    conn: TcpStream,
    seen: &Mutex<Vec<Seen>>,
    auth: Option<&str>,
    aliases: &Aliases,
) -> std::io::Result<()> {
    conn.set_read_timeout(Some(IO_TIMEOUT))?;
    conn.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Ok(());
    };
    let (method, target) = (method.to_string(), target.to_string());
    let mut headers = Vec::new();
    let mut authorized = auth.is_none();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            if name.eq_ignore_ascii_case("proxy-authorization") {
                authorized |= Some(value.trim()) == auth;
                continue;
            }
            if ["proxy-connection", "connection", "keep-alive"]
                .iter()
                .any(|n| name.trim().eq_ignore_ascii_case(n))
            {
                continue;
            }
        }
        headers.push(h);
    }
    seen.lock().unwrap().push(Seen {
        method: method.clone(),
        target: target.clone(),
        authorized,
    });
    let mut client = conn;
    let answer = |client: &mut TcpStream, status: &str, extra: &str| {
        client.write_all(
            format!("HTTP/1.1 {status}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
    };
    if !authorized {
        return answer(
            &mut client,
            "407 Proxy Authentication Required",
            "Proxy-Authenticate: Basic realm=\"test proxy\"\r\n",
        );
    }
    if method == "CONNECT" {
        let Some(to) = loopback(&target, aliases) else {
            return answer(&mut client, "502 Bad Gateway", "");
        };
        let Ok(upstream) = TcpStream::connect(&to) else {
            return answer(&mut client, "502 Bad Gateway", "");
        };
        upstream.set_read_timeout(Some(IO_TIMEOUT))?;
        upstream.set_write_timeout(Some(IO_TIMEOUT))?;
        client.write_all(b"HTTP/1.1 200 Connection Established\r\n\r\n")?;
        // Bytes the client sent right after its CONNECT head.
        let early = reader.buffer().to_vec();
        let mut up_write = upstream.try_clone()?;
        up_write.write_all(&early)?;
        let mut client_read = client.try_clone()?;
        let to_upstream = std::thread::spawn(move || {
            let _ = std::io::copy(&mut client_read, &mut up_write);
            let _ = up_write.shutdown(Shutdown::Write);
        });
        let mut up_read = upstream;
        let _ = std::io::copy(&mut up_read, &mut client);
        let _ = client.shutdown(Shutdown::Write);
        let _ = to_upstream.join();
        return Ok(());
    }
    // Absolute URI: `http://host:port/path`.
    let Some(rest) = target.strip_prefix("http://") else {
        return answer(&mut client, "400 Bad Request", "");
    };
    let end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(end);
    let path = if path.is_empty() { "/" } else { path };
    let authority_port = if authority.contains(':') {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let Some(to) = loopback(&authority_port, aliases) else {
        return answer(&mut client, "502 Bad Gateway", "");
    };
    let Ok(mut upstream) = TcpStream::connect(&to) else {
        return answer(&mut client, "502 Bad Gateway", "");
    };
    upstream.set_read_timeout(Some(IO_TIMEOUT))?;
    upstream.set_write_timeout(Some(IO_TIMEOUT))?;
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    for h in &headers {
        head.push_str(h);
    }
    head.push_str("Connection: close\r\n\r\n");
    upstream.write_all(head.as_bytes())?;
    // The request body (if any): whatever follows the head, until the client is done.
    let early = reader.buffer().to_vec();
    upstream.write_all(&early)?;
    let mut up_write = upstream.try_clone()?;
    let mut client_read = client.try_clone()?;
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_read, &mut up_write);
    });
    // The response: its head with `Connection: close`, then the body until the origin closes.
    let mut up = BufReader::new(upstream);
    let mut status = String::new();
    up.read_line(&mut status)?;
    let mut out = status;
    loop {
        let mut h = String::new();
        if up.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        let name = h.split(':').next().unwrap_or("").trim().to_string();
        if ["connection", "keep-alive", "proxy-connection"]
            .iter()
            .any(|n| name.eq_ignore_ascii_case(n))
        {
            continue;
        }
        out.push_str(&h);
    }
    out.push_str("Connection: close\r\n\r\n");
    client.write_all(out.as_bytes())?;
    let _ = std::io::copy(&mut up, &mut client);
    let _ = client.shutdown(Shutdown::Both);
    Ok(())
}
