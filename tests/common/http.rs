//! A loopback HTTP/1.1 server for tests: serves real files, counts requests per path, and
//! injects the faults a mirror can show (404, 500, a body cut short, a changed byte, a stall,
//! a slow body), and records the `Authorization` each request carried. One thread per
//! connection; stopped on drop.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug)]
pub enum Route {
    File(PathBuf),
    Status(u16),
    /// Promise the full length, send half, close.
    Short(PathBuf),
    /// The full file with one byte changed.
    Corrupt(PathBuf),
    /// Accept and never answer (bounded: gives up after the duration).
    Stall(Duration),
    /// The file, in 64 KiB pieces with a pause after each.
    Slow(PathBuf, Duration),
    /// Any body (JSON, text) with a content type.
    Body(&'static str, Vec<u8>),
    /// A body with no length that never ends (zeros until the client hangs up; bounded at
    /// 4 GiB so a client that never stops cannot keep the test running forever).
    Endless,
    /// The file one byte at a time with a pause after each: never a stall as long as the
    /// pause, but a transfer that takes the file's length times the pause (bounded by it).
    Trickle(PathBuf, Duration),
    /// The file when the request's `Authorization` header is exactly this value, else 401.
    RequireAuth(String, PathBuf),
    /// A 302 to this Location.
    Redirect(String),
    /// Any status with a body and a content type (an OCI error envelope, say).
    Answer(u16, &'static str, Vec<u8>),
    /// A huge document: this content type, a `Content-Length` of `declared` (None: no length,
    /// the body ends at close), then spaces, fast, until `sent` bytes (bounded: a client that
    /// buffers everything still gets only `sent`) or the client hangs up.
    Huge {
        ctype: &'static str,
        declared: Option<u64>,
        sent: u64,
    },
}

pub struct HttpServer {
    pub addr: String,
    routes: Arc<Mutex<HashMap<String, Route>>>,
    counts: Arc<Mutex<HashMap<String, usize>>>,
    auths: Auths,
    stop: Arc<AtomicBool>,
}

/// The `Authorization` header (None: none) of each request, per path, in order.
type Auths = Arc<Mutex<HashMap<String, Vec<Option<String>>>>>;

impl HttpServer {
    pub fn start() -> HttpServer {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let routes: Arc<Mutex<HashMap<String, Route>>> = Arc::default();
        let counts: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
        let auths: Auths = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (r, c, a, s) = (routes.clone(), counts.clone(), auths.clone(), stop.clone());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let (r, c, a) = (r.clone(), c.clone(), a.clone());
                std::thread::spawn(move || {
                    let _ = serve(conn, &r, &c, &a);
                });
            }
        });
        HttpServer {
            addr,
            routes,
            counts,
            auths,
            stop,
        }
    }

    pub fn route(&self, path: &str, route: Route) -> String {
        self.routes.lock().unwrap().insert(path.to_string(), route);
        self.url(path)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// GET requests seen for `path`.
    /// Requests for any path so far.
    pub fn total(&self) -> usize {
        self.counts.lock().unwrap().values().sum()
    }

    pub fn count(&self, path: &str) -> usize {
        *self.counts.lock().unwrap().get(path).unwrap_or(&0)
    }

    /// The `Authorization` header of each request for `path` (None: it had none), in order.
    pub fn authorizations(&self, path: &str) -> Vec<Option<String>> {
        self.auths
            .lock()
            .unwrap()
            .get(path)
            .cloned()
            .unwrap_or_default()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}

fn serve(
    mut conn: TcpStream,
    routes: &Mutex<HashMap<String, Route>>,
    counts: &Mutex<HashMap<String, usize>>,
    auths: &Mutex<HashMap<String, Vec<Option<String>>>>,
) -> std::io::Result<()> {
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let path = line.split_whitespace().nth(1).unwrap_or("/").to_string();
    let path = path.split('?').next().unwrap_or("/").to_string();
    let mut authorization = None;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h)? == 0 || h == "\r\n" || h == "\n" {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            if name.eq_ignore_ascii_case("authorization") {
                authorization = Some(value.trim().to_string());
            }
        }
    }
    *counts.lock().unwrap().entry(path.clone()).or_default() += 1;
    auths
        .lock()
        .unwrap()
        .entry(path.clone())
        .or_default()
        .push(authorization.clone());
    let route = routes.lock().unwrap().get(&path).cloned();
    let head = |status: &str, len: u64, ctype: &str| {
        format!("HTTP/1.1 {status}\r\nContent-Length: {len}\r\nContent-Type: {ctype}\r\nConnection: close\r\n\r\n")
    };
    match route {
        None => conn.write_all(head("404 Not Found", 0, "text/plain").as_bytes()),
        Some(Route::Status(code)) => {
            let status = match code {
                404 => "404 Not Found",
                500 => "500 Internal Server Error",
                503 => "503 Service Unavailable",
                _ => "400 Bad Request",
            };
            conn.write_all(head(status, 0, "text/plain").as_bytes())
        }
        Some(Route::RequireAuth(want, p)) if authorization.as_deref() != Some(want.as_str()) => {
            let _ = p;
            conn.write_all(head("401 Unauthorized", 0, "text/plain").as_bytes())
        }
        Some(Route::File(p)) | Some(Route::RequireAuth(_, p)) => {
            let mut f = std::fs::File::open(&p)?;
            let len = f.metadata()?.len();
            conn.write_all(head("200 OK", len, "application/octet-stream").as_bytes())?;
            std::io::copy(&mut f, &mut conn).map(|_| ())
        }
        Some(Route::Short(p)) => {
            let mut f = std::fs::File::open(&p)?;
            let len = f.metadata()?.len();
            conn.write_all(head("200 OK", len, "application/octet-stream").as_bytes())?;
            std::io::copy(&mut (&mut f).take(len / 2), &mut conn)?;
            conn.shutdown(std::net::Shutdown::Both)
        }
        Some(Route::Corrupt(p)) => {
            let mut data = std::fs::read(&p)?;
            let mid = data.len() / 2;
            data[mid] ^= 0x01;
            conn.write_all(
                head("200 OK", data.len() as u64, "application/octet-stream").as_bytes(),
            )?;
            conn.write_all(&data)
        }
        Some(Route::Stall(d)) => {
            std::thread::sleep(d);
            Ok(())
        }
        Some(Route::Slow(p, pause)) => {
            let mut f = std::fs::File::open(&p)?;
            let len = f.metadata()?.len();
            conn.write_all(head("200 OK", len, "application/octet-stream").as_bytes())?;
            let mut buf = vec![0u8; 64 << 10];
            loop {
                let n = f.read(&mut buf)?;
                if n == 0 {
                    return Ok(());
                }
                conn.write_all(&buf[..n])?;
                std::thread::sleep(pause);
            }
        }
        Some(Route::Body(ctype, body)) => {
            conn.write_all(head("200 OK", body.len() as u64, ctype).as_bytes())?;
            conn.write_all(&body)
        }
        Some(Route::Trickle(p, pause)) => {
            let data = std::fs::read(&p)?;
            conn.write_all(
                head("200 OK", data.len() as u64, "application/octet-stream").as_bytes(),
            )?;
            for byte in data {
                conn.write_all(&[byte])?;
                std::thread::sleep(pause);
            }
            Ok(())
        }
        Some(Route::Redirect(location)) => conn.write_all(
            format!(
                "HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
            .as_bytes(),
        ),
        Some(Route::Answer(code, ctype, body)) => {
            conn.write_all(head(&format!("{code} Answer"), body.len() as u64, ctype).as_bytes())?;
            conn.write_all(&body)
        }
        Some(Route::Huge {
            ctype,
            declared,
            sent,
        }) => {
            let length = declared
                .map(|n| format!("Content-Length: {n}\r\n"))
                .unwrap_or_default();
            conn.write_all(
                format!("HTTP/1.1 200 OK\r\n{length}Content-Type: {ctype}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )?;
            let chunk = vec![b' '; 64 << 10];
            let mut left = sent;
            while left > 0 {
                let n = left.min(chunk.len() as u64);
                conn.write_all(&chunk[..n as usize])?;
                left -= n;
            }
            conn.shutdown(std::net::Shutdown::Both)
        }
        Some(Route::Endless) => {
            conn.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nConnection: close\r\n\r\n",
            )?;
            let chunk = vec![0u8; 64 << 10];
            for _ in 0..(4u64 << 30) / chunk.len() as u64 {
                conn.write_all(&chunk)?;
            }
            Ok(())
        }
    }
}
