//! A real HTTP/1.1 server on 127.0.0.1 (ephemeral port) for tests that talk to Telegram or a
//! forge: it records every request (method, path, headers, body) and answers from a script —
//! 200, any status, a Telegram-style 429 with `retry_after`, an echo of the request, or a hang.
//! Dropping it stops it.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub enum Reply {
    /// 200 with Telegram's success body.
    Ok,
    /// This status with this JSON body.
    Status(u16, String),
    /// 429 with `{"ok":false,"error_code":429,"parameters":{"retry_after":N}}`.
    RateLimited(u64),
    /// This status, the body repeating the request line and Authorization (a careless server).
    Echo(u16),
    /// Read the request, never answer; the connection closes when the server stops.
    Hang,
    /// This status, these headers and this body.
    Full(u16, Vec<(&'static str, String)>, String),
}

#[derive(Debug, Clone)]
pub struct Request {
    /// When the server had read it whole.
    pub at: Instant,
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|err| panic!("request body is not JSON ({err}): {}", self.body))
    }
}

/// Computes the answer to a request (a stand-in with state of its own, such as the forge's).
pub type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

struct State {
    requests: Mutex<Vec<Request>>,
    script: Mutex<VecDeque<Reply>>,
    fallback: Mutex<Reply>,
    handler: Mutex<Option<Handler>>,
    delay: Mutex<Duration>,
    stop: AtomicBool,
}

pub struct Server {
    pub url: String,
    state: Arc<State>,
    acceptor: Option<JoinHandle<()>>,
}

impl Server {
    /// A server answering `Reply::Ok` until told otherwise.
    pub fn start() -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let state = Arc::new(State {
            requests: Mutex::new(Vec::new()),
            script: Mutex::new(VecDeque::new()),
            fallback: Mutex::new(Reply::Ok),
            handler: Mutex::new(None),
            delay: Mutex::new(Duration::ZERO),
            stop: AtomicBool::new(false),
        });
        let shared = Arc::clone(&state);
        let acceptor = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let shared = Arc::clone(&shared);
                    std::thread::spawn(move || serve(stream, &shared));
                }
            }
        });
        Server {
            url,
            state,
            acceptor: Some(acceptor),
        }
    }

    /// Answer the next requests with these replies, in order, then with the fallback.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.script.lock().unwrap().extend(replies);
    }

    /// Answer with `handler` once the script is used up (instead of the fallback).
    pub fn handle(&self, handler: Handler) {
        *self.state.handler.lock().unwrap() = Some(handler);
    }

    /// The answer once the script is used up.
    pub fn fallback(&self, reply: Reply) {
        *self.state.fallback.lock().unwrap() = reply;
    }

    /// Wait this long before each answer.
    pub fn delay(&self, delay: Duration) {
        *self.state.delay.lock().unwrap() = delay;
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.requests.lock().unwrap().clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor so it sees the flag.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Serve requests on one connection until the client closes it or the server stops.
fn serve(stream: TcpStream, state: &State) {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    while let Some(request) = read_request(&mut reader, state) {
        let reply = {
            let next = state.script.lock().unwrap().pop_front();
            let handler = state.handler.lock().unwrap().clone();
            match (next, handler) {
                (Some(reply), _) => reply,
                (None, Some(handler)) => handler(&request),
                (None, None) => state.fallback.lock().unwrap().clone(),
            }
        };
        let echo = format!(
            "{} {} authorization={}",
            request.method,
            request.path,
            request.header("authorization").unwrap_or("")
        );
        state.requests.lock().unwrap().push(request);
        std::thread::sleep(*state.delay.lock().unwrap());
        let mut extra = String::new();
        let (status, body) = match reply {
            Reply::Ok => (200, r#"{"ok":true,"result":{"message_id":1}}"#.to_string()),
            Reply::Status(status, body) => (status, body),
            Reply::Full(status, headers, body) => {
                for (name, value) in headers {
                    extra.push_str(&format!("{name}: {value}\r\n"));
                }
                (status, body)
            }
            Reply::RateLimited(after) => (
                429,
                format!(
                    r#"{{"ok":false,"error_code":429,"description":"Too Many Requests: retry after {after}","parameters":{{"retry_after":{after}}}}}"#
                ),
            ),
            Reply::Echo(status) => (
                status,
                serde_json::json!({ "ok": false, "description": echo, "message": echo })
                    .to_string(),
            ),
            Reply::Hang => {
                while !state.stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                return;
            }
        };
        let head = format!(
            "HTTP/1.1 {status} Test\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n",
            body.len()
        );
        if writer.write_all(head.as_bytes()).is_err() || writer.write_all(body.as_bytes()).is_err()
        {
            return;
        }
    }
}

/// Read one request; None at end of stream, on a broken one, or when the server stops.
fn read_request(reader: &mut BufReader<TcpStream>, state: &State) -> Option<Request> {
    let mut lines = Vec::new();
    // Kept across reads: a read that times out mid-line leaves its bytes here.
    let mut line = String::new();
    loop {
        match reader.read_line(&mut line) {
            Ok(0) => return None,
            Ok(_) => {
                let done = std::mem::take(&mut line);
                if done == "\r\n" || done == "\n" {
                    break;
                }
                lines.push(done.trim_end().to_string());
            }
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                if state.stop.load(Ordering::SeqCst) {
                    return None;
                }
            }
            Err(_) => return None,
        }
    }
    let mut first = lines.first()?.split_whitespace();
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let headers: Vec<(String, String)> = lines[1..]
        .iter()
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    let find = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let body = if find("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        read_chunked(reader)?
    } else {
        let length: usize = find("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        read_exact(reader, length)?
    };
    Some(Request {
        at: Instant::now(),
        method,
        path,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn read_exact(reader: &mut BufReader<TcpStream>, length: usize) -> Option<Vec<u8>> {
    let mut body = vec![0; length];
    let mut filled = 0;
    while filled < length {
        match reader.read(&mut body[filled..]) {
            Ok(0) => return None,
            Ok(n) => filled += n,
            Err(err)
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return None,
        }
    }
    Some(body)
}

fn read_chunked(reader: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size = String::new();
        reader.read_line(&mut size).ok()?;
        let size = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
        let chunk = read_exact(reader, size + 2)?;
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(&chunk[..size]);
    }
}
