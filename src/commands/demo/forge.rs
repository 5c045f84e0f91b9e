//! The demo's forge: a minimal Gitea on 127.0.0.1, inside orch's own binary, for the demo's
//! duration. It answers only what the demo's pull request and usage comments need —
//! `GET/POST /api/v1/repos/{repo}/pulls`, `GET/PATCH …/pulls/{n}`, `POST …/issues/{n}/comments` —
//! checks the `Authorization: token …` header as Gitea does, keeps everything in memory and
//! notes what happened, for the demo to print.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde_json::{json, Value};

/// A request body larger than this is refused.
const BODY_MAX: usize = 1 << 20;

/// A pull request as the demo's forge keeps it.
#[derive(Debug, Clone)]
pub struct Pull {
    pub number: i64,
    pub title: String,
    pub body: String,
    pub head: String,
    pub base: String,
    pub url: String,
}

#[derive(Default)]
struct State {
    pulls: Vec<Pull>,
    comments: Vec<(i64, String)>,
    /// What happened since the demo last looked ("opened #1 …").
    news: Vec<String>,
}

pub struct Forge {
    pub url: String,
    repo: String,
    token: String,
    state: Arc<Mutex<State>>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

impl Forge {
    /// Listen on an ephemeral port of 127.0.0.1 for repository `repo` and token `token`.
    pub fn start(repo: &str, token: &str) -> std::io::Result<Forge> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let url = format!("http://{}", listener.local_addr()?);
        let state = Arc::new(Mutex::new(State::default()));
        let stop = Arc::new(AtomicBool::new(false));
        let server = Server {
            prefix: format!("/api/v1/repos/{repo}/"),
            auth: format!("token {token}"),
            web: format!("{url}/{repo}"),
            state: Arc::clone(&state),
        };
        let stopped = Arc::clone(&stop);
        let acceptor = std::thread::spawn(move || {
            let server = Arc::new(server);
            for stream in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let server = Arc::clone(&server);
                    std::thread::spawn(move || server.serve(stream));
                }
            }
        });
        Ok(Forge {
            url,
            repo: repo.to_string(),
            token: token.to_string(),
            state,
            stop,
            acceptor: Some(acceptor),
        })
    }

    pub fn repo(&self) -> &str {
        &self.repo
    }

    pub fn token(&self) -> &str {
        &self.token
    }

    /// What happened since the last call.
    pub fn news(&self) -> Vec<String> {
        std::mem::take(&mut self.lock().news)
    }

    pub fn pulls(&self) -> Vec<Pull> {
        self.lock().pulls.clone()
    }

    /// Comments posted, with the issue or pull request each went to.
    pub fn comments(&self) -> Vec<(i64, String)> {
        self.lock().comments.clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for Forge {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor so it sees the flag.
        let _ = TcpStream::connect(self.url.trim_start_matches("http://"));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

struct Server {
    prefix: String,
    auth: String,
    web: String,
    state: Arc<Mutex<State>>,
}

struct Request {
    method: String,
    path: String,
    auth: Option<String>,
    body: Value,
}

impl Server {
    /// Answer requests on one connection until the client closes it.
    fn serve(&self, stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
        let Ok(mut writer) = stream.try_clone() else {
            return;
        };
        let mut reader = BufReader::new(stream);
        while let Some(request) = read(&mut reader) {
            let (status, body) = self.answer(&request);
            let body = body.to_string();
            let head = format!(
                "HTTP/1.1 {status} {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                if status < 300 { "OK" } else { "Error" },
                body.len()
            );
            if writer.write_all(head.as_bytes()).is_err()
                || writer.write_all(body.as_bytes()).is_err()
            {
                return;
            }
        }
    }

    fn answer(&self, request: &Request) -> (u16, Value) {
        if request.auth.as_deref() != Some(self.auth.as_str()) {
            return (401, json!({ "message": "token is required" }));
        }
        let Some(rest) = request.path.strip_prefix(&self.prefix) else {
            return (404, json!({ "message": "Not Found" }));
        };
        let (route, _query) = rest.split_once('?').unwrap_or((rest, ""));
        let parts: Vec<&str> = route.split('/').collect();
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let text = |key: &str| request.body[key].as_str().map(str::to_string);
        match (request.method.as_str(), parts.as_slice()) {
            ("GET", ["pulls"]) => {
                let open: Vec<Value> = state.pulls.iter().map(pull_json).collect();
                (200, Value::Array(open))
            }
            ("POST", ["pulls"]) => {
                let (Some(title), Some(head), Some(base)) =
                    (text("title"), text("head"), text("base"))
                else {
                    return (
                        422,
                        json!({ "message": "title, head and base are required" }),
                    );
                };
                if state.pulls.iter().any(|p| p.head == head) {
                    return (
                        409,
                        json!({ "message": "pull request already exists for these targets" }),
                    );
                }
                let number = state.pulls.len() as i64 + 1;
                let pull = Pull {
                    number,
                    title: title.clone(),
                    body: text("body").unwrap_or_default(),
                    head: head.clone(),
                    base: base.clone(),
                    url: format!("{}/pulls/{number}", self.web),
                };
                state
                    .news
                    .push(format!("#{number} opened: {title} ({head} → {base})"));
                let answer = pull_json(&pull);
                state.pulls.push(pull);
                (201, answer)
            }
            (method @ ("GET" | "PATCH"), ["pulls", n]) => {
                let Some(pull) = state.pulls.iter_mut().find(|p| p.number.to_string() == *n) else {
                    return (404, json!({ "message": "Not Found" }));
                };
                if method == "PATCH" {
                    if let Some(body) = text("body") {
                        pull.body = body;
                    }
                    let rows = pull.body.lines().filter(|l| l.starts_with("| ")).count();
                    let number = pull.number;
                    let answer = pull_json(pull);
                    state.news.push(format!(
                        "#{number} body updated: its table has {} run(s)",
                        rows.saturating_sub(2)
                    ));
                    return (200, answer);
                }
                (200, pull_json(pull))
            }
            ("POST", ["issues", n, "comments"]) => {
                let (Ok(number), Some(body)) = (n.parse::<i64>(), text("body")) else {
                    return (422, json!({ "message": "body is required" }));
                };
                state.comments.push((number, body.clone()));
                let id = state.comments.len();
                (201, json!({ "id": id, "body": body }))
            }
            // The demo's CI passes every commit: the CI gate after the developer stage opens
            // at once.
            ("GET", ["commits", sha, "status"]) => (
                200,
                json!({ "state": "success", "sha": sha, "total_count": 1, "statuses": [
                    { "context": "demo/ci", "state": "success", "description": "the demo's CI passes every commit", "target_url": "" }
                ] }),
            ),
            _ => (404, json!({ "message": "Not Found" })),
        }
    }
}

fn pull_json(pull: &Pull) -> Value {
    json!({
        "number": pull.number, "title": pull.title, "body": pull.body, "state": "open",
        "merged": false, "html_url": pull.url,
        "head": { "ref": pull.head }, "base": { "ref": pull.base },
    })
}

/// One request off the connection; None at its end or when it is not one.
fn read(reader: &mut BufReader<TcpStream>) -> Option<Request> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut first = line.split_whitespace();
    let method = first.next()?.to_string();
    let path = first.next()?.to_string();
    let (mut length, mut auth) = (0usize, None);
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).ok()? == 0 {
            return None;
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':') {
            match name.trim().to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().ok()?,
                "authorization" => auth = Some(value.trim().to_string()),
                _ => {}
            }
        }
    }
    if length > BODY_MAX {
        return None;
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(Request {
        method,
        path,
        auth,
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
    })
}
