//! A file served over HTTP on loopback with an `ETag` the test sets: the
//! upstream of a `wget`/`curl` step. It counts HEAD and GET requests, so
//! a test can tell a lookup from a download. Stopped (its port closed)
//! when dropped: then it is an upstream that is down.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

#[derive(Default)]
struct State {
    body: String,
    etag: String,
    heads: usize,
    gets: usize,
}

pub struct FileServer {
    pub port: u16,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FileServer {
    /// Serves `body` with `ETag: "etag"` at every path.
    pub fn start(body: &str, etag: &str) -> FileServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let port = listener.local_addr().expect("bound").port();
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, halt) = (state.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            for conn in listener.incoming() {
                if halt.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(conn) = conn {
                    answer(conn, &s);
                }
            }
        });
        let server = FileServer {
            port,
            state,
            stop,
            thread: Some(thread),
        };
        server.set(body, etag);
        server
    }

    /// What the file is from now on.
    pub fn set(&self, body: &str, etag: &str) {
        let mut s = self.state.lock().unwrap();
        s.body = body.to_string();
        s.etag = etag.to_string();
    }

    /// (HEAD, GET) requests so far.
    pub fn requests(&self) -> (usize, usize) {
        let s = self.state.lock().unwrap();
        (s.heads, s.gets)
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }
}

impl Drop for FileServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop, which then sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn answer(mut conn: TcpStream, state: &Mutex<State>) {
    let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(5)));
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 64 << 10 {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request);
    let method = text
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string();
    let (body, etag) = {
        let mut s = state.lock().unwrap();
        match method.as_str() {
            "HEAD" => s.heads += 1,
            _ => s.gets += 1,
        }
        (s.body.clone(), s.etag.clone())
    };
    let head = format!(
        "HTTP/1.1 200 OK\r\nETag: \"{etag}\"\r\nContent-Length: {}\r\n\
         Content-Type: text/plain\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = conn.write_all(head.as_bytes());
    if method != "HEAD" {
        let _ = conn.write_all(body.as_bytes());
    }
}
