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
