//! A loopback TCP proxy in front of a real registry that cuts large uploads mid-body: the
//! first `faults` connections that carry more than `cut_after` bytes towards the registry are
//! closed at that point. Bounded: once the budget is spent it only forwards.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

pub struct FaultyProxy {
    pub addr: String,
    faults_left: Arc<AtomicUsize>,
    pub cuts: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl FaultyProxy {
    pub fn start(upstream: &str, faults: usize, cut_after: usize) -> FaultyProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let faults_left = Arc::new(AtomicUsize::new(faults));
        let cuts = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (f, c, s, up) = (
            faults_left.clone(),
            cuts.clone(),
            stop.clone(),
            upstream.to_string(),
        );
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(&up) else {
                    continue;
                };
                let (f, c) = (f.clone(), c.clone());
                // server -> client: plain copy.
                let (mut s_read, mut c_write) =
                    (server.try_clone().unwrap(), client.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s_read, &mut c_write);
                    let _ = c_write.shutdown(Shutdown::Both);
                });
                // client -> server: count, and cut once past the threshold while faults last.
                std::thread::spawn(move || {
                    let (mut c_read, mut s_write) = (client, server);
                    let mut sent = 0usize;
                    let mut buf = vec![0u8; 64 << 10];
                    loop {
                        let n = match c_read.read(&mut buf) {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        if sent + n > cut_after
                            && f.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |x| {
                                x.checked_sub(1)
                            })
                            .is_ok()
                        {
                            let keep = cut_after.saturating_sub(sent);
                            let _ = s_write.write_all(&buf[..keep]);
                            c.fetch_add(1, Ordering::SeqCst);
                            let _ = s_write.shutdown(Shutdown::Both);
                            let _ = c_read.shutdown(Shutdown::Both);
                            return;
                        }
                        if s_write.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        sent += n;
                    }
                    let _ = s_write.shutdown(Shutdown::Write);
                });
            }
        });
        FaultyProxy {
            addr,
            faults_left,
            cuts,
            stop,
        }
    }

    pub fn faults_left(&self) -> usize {
        self.faults_left.load(Ordering::SeqCst)
    }
}

impl Drop for FaultyProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}

/// One canned answer: the first `times` requests whose method is `method` and whose path
/// contains `path_contains` are answered by the proxy with `status` (and `body`, an OCI error
/// envelope or empty), never reaching the registry.
#[derive(Clone)]
pub struct Answer {
    pub method: &'static str,
    pub path_contains: String,
    pub status: u16,
    pub body: String,
    pub times: usize,
}

/// A loopback HTTP/1.1 proxy in front of a real registry that answers chosen requests itself
/// (a 500 for a blob check, a 200 for a blob the registry does not hold). Requests are parsed
/// one at a time per connection (clients do not pipeline); bodies are framed by
/// Content-Length; a chunked request turns the rest of its connection into a plain copy.
/// Bounded: once every answer is spent it only forwards.
pub struct AnsweringProxy {
    pub addr: String,
    answers: Arc<std::sync::Mutex<Vec<Answer>>>,
    stop: Arc<AtomicBool>,
}

fn read_head(r: &mut TcpStream, buf: &mut Vec<u8>) -> Option<Vec<u8>> {
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(i + 4);
            return Some(std::mem::replace(buf, rest));
        }
        if buf.len() > 1 << 20 {
            return None;
        }
        match r.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

fn read_body(r: &mut TcpStream, buf: &mut Vec<u8>, len: usize) -> Option<Vec<u8>> {
    let mut chunk = [0u8; 65536];
    while buf.len() < len {
        match r.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let rest = buf.split_off(len);
    Some(std::mem::replace(buf, rest))
}

impl AnsweringProxy {
    pub fn start(upstream: &str, answers: Vec<Answer>) -> AnsweringProxy {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let answers = Arc::new(std::sync::Mutex::new(answers));
        let stop = Arc::new(AtomicBool::new(false));
        let (a, s, up) = (answers.clone(), stop.clone(), upstream.to_string());
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let Ok(server) = TcpStream::connect(&up) else {
                    continue;
                };
                let (mut s_read, mut c_write) =
                    (server.try_clone().unwrap(), client.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut s_read, &mut c_write);
                    let _ = c_write.shutdown(Shutdown::Both);
                });
                let a = a.clone();
                std::thread::spawn(move || {
                    let (mut c_read, mut s_write) = (client, server);
                    let mut c_write = c_read.try_clone().unwrap();
                    let mut buf = Vec::new();
                    // Bounded by the connection: each turn consumes one request.
                    while let Some(head) = read_head(&mut c_read, &mut buf) {
                        let text = String::from_utf8_lossy(&head).to_string();
                        let mut first = text.split_whitespace();
                        let (method, path) = (
                            first.next().unwrap_or_default().to_string(),
                            first.next().unwrap_or_default().to_string(),
                        );
                        let header = |name: &str| {
                            text.lines().find_map(|l| {
                                let (k, v) = l.split_once(':')?;
                                k.trim()
                                    .eq_ignore_ascii_case(name)
                                    .then(|| v.trim().to_string())
                            })
                        };
                        if header("transfer-encoding").is_some() {
                            let _ = s_write.write_all(&head);
                            let _ = s_write.write_all(&buf);
                            let _ = std::io::copy(&mut c_read, &mut s_write);
                            break;
                        }
                        let len = header("content-length")
                            .and_then(|v| v.parse().ok())
                            .unwrap_or(0usize);
                        let Some(body) = read_body(&mut c_read, &mut buf, len) else {
                            break;
                        };
                        let canned = a.lock().ok().and_then(|mut list| {
                            let hit = list.iter_mut().find(|x| {
                                x.times > 0 && x.method == method && path.contains(&x.path_contains)
                            })?;
                            hit.times -= 1;
                            Some((hit.status, hit.body.clone()))
                        });
                        let sent = match canned {
                            Some((status, body)) => {
                                let mut resp = format!(
                                    "HTTP/1.1 {status} Canned\r\nContent-Type: application/json\r\n\
                                     Docker-Distribution-Api-Version: registry/2.0\r\n\
                                     Content-Length: {}\r\n\r\n",
                                    body.len()
                                );
                                if method != "HEAD" {
                                    resp.push_str(&body);
                                }
                                c_write.write_all(resp.as_bytes())
                            }
                            None => s_write
                                .write_all(&head)
                                .and_then(|_| s_write.write_all(&body)),
                        };
                        if sent.is_err() {
                            break;
                        }
                    }
                    let _ = s_write.shutdown(Shutdown::Write);
                });
            }
        });
        AnsweringProxy {
            addr,
            answers,
            stop,
        }
    }

    /// How many canned answers are still to give.
    pub fn answers_left(&self) -> usize {
        self.answers.lock().unwrap().iter().map(|a| a.times).sum()
    }
}

impl Drop for AnsweringProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(&self.addr);
    }
}
