//! A small loopback token server for distribution's `auth.token`: `GET /token?service=…&
//! scope=…[&scope=…][&account=…]` answers a JWT signed with ES256 (ring) by a key whose
//! self-signed certificate (made with the `openssl` CLI) is the registry's `rootcertbundle`
//! and travels in the token's `x5c` header. Basic credentials are checked against one
//! user: the user is granted every action asked for, a wrong password gets 401, and no
//! credentials at all get only what the test grants anonymous callers. Every request is
//! counted. It listens on 127.0.0.1 and stops when dropped (by a connection to its own
//! port, which wakes the accepting thread to see the flag).

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};

pub const SERVICE: &str = "protoreg-test-registry";
pub const ISSUER: &str = "protoreg-test-token-issuer";

/// How a request to the token server went.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Caller {
    /// Right user and password.
    User,
    /// Basic credentials that do not match (answered 401).
    Refused,
    /// No credentials.
    Anonymous,
}

/// One request the token server answered.
#[derive(Clone, Debug)]
pub struct TokenRequest {
    pub scopes: Vec<String>,
    pub service: Option<String>,
    pub account: Option<String>,
    pub caller: Caller,
    /// The raw query string.
    pub query: String,
}

/// What the token server grants.
#[derive(Clone, Debug, Default)]
pub struct Policy {
    pub user: String,
    pub password: String,
    /// (repository, actions) anonymous callers may have; anything else asked is left out
    /// of their token (which the registry then refuses), as real token servers do.
    pub anonymous: Vec<(String, Vec<String>)>,
    /// Seconds a token lives.
    pub expires_in: u64,
}

/// A misbehaving token server (or registry), for tests of what protoreg does with hostile
/// answers.
#[derive(Clone, Debug)]
pub enum Hostile {
    /// Answer every token request 200 with a JSON token document of this many bytes.
    HugeToken(u64),
    /// Refuse every token request (401) with a body echoing the request: its
    /// `Authorization` header and query, in the message and in an error code.
    EchoRequest,
    /// Also act as a registry (`/v2/` answers 200) whose tag lists are this many bytes.
    HugeTagList(u64),
    /// Also act as a registry whose tag lists hold one tag of this many bytes, with
    /// terminal escape sequences.
    LongTag(u64),
    /// Also act as a registry answering every blob with HTTP 500 and an error body of this
    /// many bytes.
    HugeErrorBody(u64),
    /// Also act as a registry answering every blob 404 `BLOB_UNKNOWN` with a message that
    /// echoes the request's `Authorization` after this many padding characters. `bearer`:
    /// its `/v2/` and blobs first challenge for a token from this server's realm; else they
    /// take whatever comes (Basic credentials straight to the blob).
    EchoBlobRequest { pad: usize, bearer: bool },
}

struct Shared {
    policy: Policy,
    requests: Vec<TokenRequest>,
    hostile: Option<Hostile>,
    /// Body bytes written by the hostile answers (the rest unread once the client hangs up).
    sent: u64,
}

pub struct TokenServer {
    /// `http://127.0.0.1:PORT/token`: the realm the registry names in its challenge.
    pub realm: String,
    /// `127.0.0.1:PORT`.
    pub host: String,
    /// The signing certificate (PEM): the registry's `rootcertbundle`.
    pub cert: PathBuf,
    shared: Arc<Mutex<Shared>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    _dir: super::Scratch,
}

fn openssl(args: &[&str]) {
    let o = Command::new("openssl")
        .args(args)
        .output()
        .expect("openssl missing: run scripts/install-deps");
    assert!(
        o.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A fresh P-256 key (PKCS#8 DER, for ring) and its self-signed certificate (PEM file, and
/// DER for `x5c`).
fn signing_key(dir: &Path) -> (Vec<u8>, PathBuf, Vec<u8>) {
    let s = |p: &Path| p.display().to_string();
    let key_pem = dir.join("key.pem");
    let key_der = dir.join("key.pk8.der");
    let cert_pem = dir.join("cert.pem");
    let cert_der = dir.join("cert.der");
    openssl(&[
        "genpkey",
        "-algorithm",
        "EC",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-out",
        &s(&key_pem),
    ]);
    openssl(&[
        "pkcs8",
        "-topk8",
        "-nocrypt",
        "-outform",
        "DER",
        "-in",
        &s(&key_pem),
        "-out",
        &s(&key_der),
    ]);
    openssl(&[
        "req",
        "-x509",
        "-new",
        "-key",
        &s(&key_pem),
        "-subj",
        "/CN=protoreg test token signer",
        "-days",
        "2",
        "-out",
        &s(&cert_pem),
    ]);
    openssl(&[
        "x509",
        "-in",
        &s(&cert_pem),
        "-outform",
        "DER",
        "-out",
        &s(&cert_der),
    ]);
    (
        std::fs::read(key_der).unwrap(),
        cert_pem,
        std::fs::read(cert_der).unwrap(),
    )
}

fn b64url(data: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(data)
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < b.len() => {
                match std::str::from_utf8(&b[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                {
                    Some(v) => {
                        out.push(v);
                        i += 2;
                    }
                    None => out.push(b'%'),
                }
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// RFC 3339 UTC of seconds since the epoch.
fn rfc3339(secs: u64) -> String {
    let days = (secs / 86400) as i64;
    let rem = secs % 86400;
    // Civil from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

impl TokenServer {
    pub fn start(policy: Policy) -> TokenServer {
        let dir = super::scratch();
        let (pkcs8, cert, cert_der) = signing_key(dir.path());
        let rng = ring::rand::SystemRandom::new();
        let key = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &pkcs8, &rng)
            .expect("ring refused openssl's P-256 PKCS#8 key");
        assert_eq!(key.public_key().as_ref().len(), 65);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let shared = Arc::new(Mutex::new(Shared {
            policy,
            requests: Vec::new(),
            hostile: None,
            sent: 0,
        }));
        let stop = Arc::new(AtomicBool::new(false));
        let x5c = base64::engine::general_purpose::STANDARD.encode(&cert_der);
        let thread = {
            let shared = shared.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let signer = Signer { key, rng, x5c };
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    if let Ok(conn) = conn {
                        let _ = serve(conn, &shared, &signer);
                    }
                }
            })
        };
        TokenServer {
            realm: format!("http://{host}/token"),
            host,
            cert,
            shared,
            stop,
            thread: Some(thread),
            _dir: dir,
        }
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<TokenRequest> {
        self.shared.lock().unwrap().requests.clone()
    }

    /// Forget the requests so far.
    pub fn reset(&self) {
        self.shared.lock().unwrap().requests.clear();
    }

    /// Misbehave from now on.
    pub fn set_hostile(&self, hostile: Hostile) {
        self.shared.lock().unwrap().hostile = Some(hostile);
    }

    /// Body bytes the hostile answers got out so far (what the client read, plus what the
    /// sockets buffered).
    pub fn sent(&self) -> u64 {
        self.shared.lock().unwrap().sent
    }

    /// Change what is granted from now on.
    pub fn set_anonymous(&self, grants: Vec<(String, Vec<String>)>) {
        self.shared.lock().unwrap().policy.anonymous = grants;
    }

    /// `(caller, scopes joined by a space)` of each request, for exact comparisons.
    pub fn summary(&self) -> Vec<(Caller, String)> {
        self.requests()
            .into_iter()
            .map(|r| (r.caller, r.scopes.join(" ")))
            .collect()
    }
}

impl Drop for TokenServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accepting thread (it owns this port) so it sees the flag.
        let _ = TcpStream::connect(&self.host);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Signer {
    key: EcdsaKeyPair,
    rng: ring::rand::SystemRandom,
    x5c: String,
}

impl Signer {
    fn jwt(&self, claims: &serde_json::Value) -> String {
        let header = serde_json::json!({"typ": "JWT", "alg": "ES256", "x5c": [self.x5c]});
        let input = format!(
            "{}.{}",
            b64url(header.to_string().as_bytes()),
            b64url(claims.to_string().as_bytes())
        );
        let sig = self.key.sign(&self.rng, input.as_bytes()).unwrap();
        format!("{input}.{}", b64url(sig.as_ref()))
    }
}

/// Answer `status` with `head`, then `fill` repeated, then `tail`, `total` bytes in all (as
/// its `Content-Length` says): counted into `sent` until the client stops reading. Bounded by
/// `total` and by the socket's write timeout.
fn stream(
    conn: &mut TcpStream,
    shared: &Mutex<Shared>,
    status: &str,
    head: &str,
    fill: u8,
    tail: &str,
    total: u64,
) -> std::io::Result<()> {
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {total}\r\nConnection: close\r\n\r\n"
    )?;
    let chunk = vec![fill; 64 << 10];
    let count = |n: usize| shared.lock().unwrap_or_else(|e| e.into_inner()).sent += n as u64;
    conn.write_all(head.as_bytes())?;
    count(head.len());
    let mut left = total.saturating_sub((head.len() + tail.len()) as u64);
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        conn.write_all(&chunk[..n])?;
        count(n);
        left -= n as u64;
    }
    conn.write_all(tail.as_bytes())?;
    count(tail.len());
    conn.flush()
}

fn respond(conn: &mut TcpStream, status: &str, body: &str) -> std::io::Result<()> {
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    conn.flush()
}

/// The actions of `scope` (`type:name:actions`, the name may hold colons: host:port/x)
/// granted to `caller`.
fn grant(policy: &Policy, caller: &Caller, scope: &str) -> Option<serde_json::Value> {
    let (rest, actions) = scope.rsplit_once(':')?;
    let (kind, name) = rest.split_once(':')?;
    let asked: Vec<String> = actions.split(',').map(str::to_string).collect();
    let granted: Vec<String> = match caller {
        Caller::User => asked,
        _ => {
            let allowed: Vec<String> = policy
                .anonymous
                .iter()
                .filter(|(repo, _)| kind == "repository" && repo == name)
                .flat_map(|(_, a)| a.clone())
                .collect();
            asked.into_iter().filter(|a| allowed.contains(a)).collect()
        }
    };
    if granted.is_empty() {
        return None;
    }
    Some(serde_json::json!({"type": kind, "name": name, "actions": granted}))
}

fn serve(mut conn: TcpStream, state: &Mutex<Shared>, signer: &Signer) -> std::io::Result<()> {
    let shared = state;
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    conn.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let target = line.split_whitespace().nth(1).unwrap_or("").to_string();
    let mut authorization = None;
    for _ in 0..100 {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h.trim().is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.trim().eq_ignore_ascii_case("authorization") {
                authorization = Some(v.trim().to_string());
            }
        }
    }
    let (path, query) = target.split_once('?').unwrap_or((&target, ""));
    let hostile = shared
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .hostile
        .clone();
    match (&hostile, path) {
        (Some(Hostile::EchoBlobRequest { pad, bearer }), p) if p.starts_with("/v2/") => {
            let auth = authorization.clone().unwrap_or_default();
            if *bearer && !auth.starts_with("Bearer ") {
                let port = conn.local_addr()?.port();
                let challenge = format!(
                    "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"http://127.0.0.1:{port}/token\",service=\"{SERVICE}\"\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
                );
                return conn.write_all(challenge.as_bytes());
            }
            if p == "/v2/" {
                return respond(&mut conn, "200 OK", "{}");
            }
            let echo = serde_json::json!({"errors": [{
                "code": "BLOB_UNKNOWN",
                "message": format!("{}you sent {auth}", "x".repeat(*pad)),
            }]});
            return respond(&mut conn, "404 Not Found", &echo.to_string());
        }
        (
            Some(Hostile::HugeTagList(_) | Hostile::LongTag(_) | Hostile::HugeErrorBody(_)),
            "/v2/",
        ) => return respond(&mut conn, "200 OK", "{}"),
        (Some(Hostile::HugeErrorBody(total)), p) if p.contains("/blobs/") => {
            let head = "{\"errors\":[{\"code\":\"UNKNOWN\",\"message\":\"";
            let status = "500 Internal Server Error";
            return stream(&mut conn, shared, status, head, b'e', "\"}]}", *total);
        }
        (Some(Hostile::HugeTagList(total)), p) if p.ends_with("/tags/list") => {
            let head = "{\"name\":\"x\",\"tags\":[\"";
            return stream(&mut conn, shared, "200 OK", head, b'a', "\"]}", *total);
        }
        (Some(Hostile::LongTag(total)), p) if p.ends_with("/tags/list") => {
            let head = "{\"name\":\"x\",\"tags\":[\"v1\",\"\\u001b]0;pwned\\u0007";
            return stream(&mut conn, shared, "200 OK", head, b'b', "\"]}", *total);
        }
        _ => {}
    }
    if path != "/token" {
        return respond(&mut conn, "404 Not Found", "{}");
    }
    let mut scopes = Vec::new();
    let (mut service, mut account) = (None, None);
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let v = percent_decode(v);
        match k {
            // A scope parameter may itself hold several, space-separated.
            "scope" => scopes.extend(v.split(' ').filter(|s| !s.is_empty()).map(str::to_string)),
            "service" => service = Some(v),
            "account" => account = Some(v),
            _ => {}
        }
    }
    let mut shared = shared.lock().unwrap_or_else(|e| e.into_inner());
    let caller = match authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Basic "))
        .map(|b| base64::engine::general_purpose::STANDARD.decode(b.trim()))
    {
        None => Caller::Anonymous,
        Some(Ok(raw)) => {
            let want = format!("{}:{}", shared.policy.user, shared.policy.password);
            if raw == want.as_bytes() {
                Caller::User
            } else {
                Caller::Refused
            }
        }
        Some(Err(_)) => Caller::Refused,
    };
    shared.requests.push(TokenRequest {
        scopes: scopes.clone(),
        service: service.clone(),
        account: account.clone(),
        caller: caller.clone(),
        query: query.to_string(),
    });
    let echo = serde_json::json!({"errors": [{
        "code": authorization.clone().unwrap_or_default(),
        "message": format!("denied: Authorization: {} for {query}", authorization.clone().unwrap_or_default()),
    }]});
    match hostile {
        Some(Hostile::EchoRequest) => {
            drop(shared);
            return respond(&mut conn, "401 Unauthorized", &echo.to_string());
        }
        Some(Hostile::HugeToken(total)) => {
            drop(shared);
            return stream(
                &mut conn,
                state,
                "200 OK",
                "{\"token\":\"",
                b't',
                "\"}",
                total,
            );
        }
        _ => {}
    }
    if caller == Caller::Refused {
        return respond(
            &mut conn,
            "401 Unauthorized",
            "{\"errors\":[{\"code\":\"UNAUTHORIZED\",\"message\":\"bad username or password\"}]}",
        );
    }
    let access: Vec<serde_json::Value> = scopes
        .iter()
        .filter_map(|s| grant(&shared.policy, &caller, s))
        .collect();
    let expires_in = shared.policy.expires_in.max(1);
    drop(shared);
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let jti = format!(
        "{:x}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let sub = if caller == Caller::User {
        account.clone().unwrap_or_default()
    } else {
        String::new()
    };
    let claims = serde_json::json!({
        "iss": ISSUER,
        "sub": sub,
        "aud": service.clone().unwrap_or_default(),
        "exp": now + expires_in,
        "nbf": now.saturating_sub(5),
        "iat": now,
        "jti": jti,
        "access": access,
    });
    let token = signer.jwt(&claims);
    let body = serde_json::json!({
        "token": token,
        "access_token": token,
        "expires_in": expires_in,
        "issued_at": rfc3339(now),
    });
    respond(&mut conn, "200 OK", &body.to_string())
}
