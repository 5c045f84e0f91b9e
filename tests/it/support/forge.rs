//! A forge stand-in on 127.0.0.1 that speaks both the Gitea/Forgejo (`/api/v1/repos/…`,
//! `Authorization: token …`) and the GitHub (`/repos/…`, `Authorization: Bearer …`) dialects of
//! the endpoints orch uses, keeps repositories' pull requests, issues (with labels and comments
//! by author), labels, commit statuses and check runs in memory, and checks requests as the real
//! APIs do: a missing or wrong token is 401, a body missing a required field is 422. A test sets
//! state (issues, statuses, a merge conflict) and faults (the next requests answer 500, 429 with
//! `Retry-After`, 403 with `X-RateLimit-Reset`, or hang) through its methods.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde_json::{json, Value};

use super::http::{Reply, Request, Server};

/// Which API a request spoke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Gitea,
    Github,
}

#[derive(Debug, Clone)]
pub struct Pull {
    pub number: i64,
    pub title: String,
    pub body: String,
    pub head: String,
    pub base: String,
    pub state: String,
    pub merged: bool,
    pub draft: bool,
}

#[derive(Debug, Clone)]
pub struct Comment {
    pub id: i64,
    pub author: String,
    pub body: String,
    /// When it was written and last edited, epoch milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Epoch milliseconds as the forges write times: RFC 3339, to the second.
fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn comment_json(c: &Comment) -> Value {
    json!({ "id": c.id, "body": c.body, "user": { "login": c.author },
            "created_at": rfc3339(c.created_at), "updated_at": rfc3339(c.updated_at) })
}

#[derive(Debug, Clone)]
pub struct Issue {
    pub number: i64,
    pub title: String,
    pub body: String,
    pub state: String,
    pub labels: Vec<String>,
    pub comments: Vec<Comment>,
}

#[derive(Debug, Clone)]
pub struct Status {
    pub state: String,
    pub context: String,
    pub description: String,
    pub target_url: String,
}

/// A GitHub check run: `status` queued, in_progress or completed; `conclusion` once completed.
#[derive(Debug, Clone)]
pub struct CheckRun {
    pub name: String,
    pub status: String,
    pub conclusion: Option<String>,
    pub title: String,
    pub text: String,
}

#[derive(Debug, Default)]
struct Repo {
    pulls: Vec<Pull>,
    issues: Vec<Issue>,
    labels: Vec<String>,
    statuses: BTreeMap<String, Vec<Status>>,
    /// GitHub's check runs by commit (Gitea has none).
    check_runs: BTreeMap<String, Vec<CheckRun>>,
    /// A merge of these pull requests is refused as a conflict.
    conflicts: Vec<i64>,
}

#[derive(Default)]
struct State {
    repos: BTreeMap<String, Repo>,
    faults: VecDeque<Reply>,
    /// Requests answered as usual before the faults start.
    faults_after: usize,
    /// Every request answers 503 while set.
    down: bool,
    /// The next request with this method and path ending is carried out, then left unanswered
    /// (a forge that did the work and a client that died before hearing of it).
    hang_after: Option<(String, String)>,
    next_number: i64,
    next_comment: i64,
    token: String,
    /// The user the token belongs to (the author of comments it posts).
    user: String,
}

/// The stand-in: a real HTTP server and the state it keeps.
pub struct Forge {
    pub server: Server,
    state: Arc<Mutex<State>>,
}

impl Forge {
    /// A forge that accepts `token` (as the user `orch-bot`).
    pub fn start(token: &str) -> Forge {
        let server = Server::start();
        let state = Arc::new(Mutex::new(State {
            next_number: 1,
            next_comment: 1,
            token: token.to_string(),
            user: "orch-bot".to_string(),
            ..State::default()
        }));
        let shared = Arc::clone(&state);
        server.handle(Arc::new(move |request| {
            let mut state = shared.lock().unwrap();
            if state.down {
                return json_reply(503, json!({ "message": "Service Unavailable" }));
            }
            if state.faults_after > 0 {
                state.faults_after -= 1;
            } else if let Some(fault) = state.faults.pop_front() {
                return fault;
            }
            let reply = answer(&mut state, request);
            let path = request.path.split('?').next().unwrap_or_default();
            let hang = state.hang_after.as_ref().is_some_and(|(method, end)| {
                *method == request.method && path.ends_with(end.as_str())
            });
            if hang {
                state.hang_after = None;
                return Reply::Hang;
            }
            reply
        }));
        Forge { server, state }
    }

    pub fn url(&self) -> &str {
        &self.server.url
    }

    /// The next requests are answered with these, in order, whatever they ask.
    pub fn faults(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.lock().unwrap().faults.extend(replies);
    }

    /// The next `skip` requests are answered as usual, then these, in order (a list whose
    /// first pages answer and a later one fails).
    pub fn faults_after(&self, skip: usize, replies: impl IntoIterator<Item = Reply>) {
        let mut state = self.state.lock().unwrap();
        state.faults_after = skip;
        state.faults.extend(replies);
    }

    /// Answer 503 to every request (true), or serve again.
    pub fn down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    /// Carry out the next `method` request whose path ends with `end`, then never answer it.
    pub fn hang_after(&self, method: &str, end: &str) {
        self.state.lock().unwrap().hang_after = Some((method.to_string(), end.to_string()));
    }

    pub fn pulls(&self, repo: &str) -> Vec<Pull> {
        self.with_repo(repo, |r| r.pulls.clone())
    }

    pub fn issue(&self, repo: &str, number: i64) -> Option<Issue> {
        self.with_repo(repo, |r| {
            r.issues.iter().find(|i| i.number == number).cloned()
        })
    }

    /// Open `count` issues titled "Issue N" with these labels; their numbers.
    pub fn open_issues(&self, repo: &str, count: usize, labels: &[&str]) -> Vec<i64> {
        (0..count)
            .map(|i| self.open_issue(repo, &format!("Issue {i}"), &format!("Body {i}"), labels))
            .collect()
    }

    pub fn labels(&self, repo: &str) -> Vec<String> {
        self.with_repo(repo, |r| r.labels.clone())
    }

    /// Open an issue with these labels; returns its number (shared with pull requests).
    pub fn open_issue(&self, repo: &str, title: &str, body: &str, labels: &[&str]) -> i64 {
        let mut state = self.state.lock().unwrap();
        let number = state.next_number;
        state.next_number += 1;
        let repo = state.repos.entry(repo.to_string()).or_default();
        for label in labels {
            if !repo.labels.iter().any(|l| l == label) {
                repo.labels.push(label.to_string());
            }
        }
        repo.issues.push(Issue {
            number,
            title: title.to_string(),
            body: body.to_string(),
            state: "open".to_string(),
            labels: labels.iter().map(|l| l.to_string()).collect(),
            comments: Vec::new(),
        });
        number
    }

    pub fn close_issue(&self, repo: &str, number: i64) {
        self.edit_issue(repo, number, |i| i.state = "closed".to_string());
    }

    pub fn set_labels(&self, repo: &str, number: i64, labels: &[&str]) {
        self.edit_issue(repo, number, |i| {
            i.labels = labels.iter().map(|l| l.to_string()).collect()
        });
    }

    /// A comment by `author` (someone other than orch's user); its id. On a pull request too
    /// (kept on a shadow issue of its number).
    pub fn comment_as(&self, repo: &str, number: i64, author: &str, body: &str) -> i64 {
        let mut state = self.state.lock().unwrap();
        state.next_comment += 1;
        let id = state.next_comment;
        let repo = state.repos.entry(repo.to_string()).or_default();
        let at = now_ms();
        let comment = Comment {
            id,
            author: author.to_string(),
            body: body.to_string(),
            created_at: at,
            updated_at: at,
        };
        match repo.issues.iter_mut().find(|i| i.number == number) {
            Some(issue) => issue.comments.push(comment),
            None => repo.issues.push(Issue {
                number,
                title: String::new(),
                body: String::new(),
                state: "pull".to_string(),
                labels: Vec::new(),
                comments: vec![comment],
            }),
        }
        id
    }

    /// Edit comment `id` on issue `number`: its body and when it was last edited (a second
    /// later than it was written, at least).
    pub fn edit_comment(&self, repo: &str, number: i64, id: i64, body: &str) {
        self.edit_issue(repo, number, |i| {
            if let Some(c) = i.comments.iter_mut().find(|c| c.id == id) {
                c.body = body.to_string();
                c.updated_at = now_ms().max(c.created_at + 1000);
            }
        });
    }

    /// Set a check run of a commit (GitHub), replacing one of the same name.
    pub fn set_check_run(&self, repo: &str, sha: &str, run: CheckRun) {
        self.with_repo(repo, |r| {
            let list = r.check_runs.entry(sha.to_string()).or_default();
            list.retain(|c| c.name != run.name);
            list.push(run);
        })
    }

    /// Set a commit status, replacing one of the same context.
    pub fn set_status(&self, repo: &str, sha: &str, context: &str, state: &str, description: &str) {
        self.with_repo(repo, |r| {
            let list = r.statuses.entry(sha.to_string()).or_default();
            list.retain(|s| s.context != context);
            list.push(Status {
                state: state.to_string(),
                context: context.to_string(),
                description: description.to_string(),
                target_url: format!("http://ci.invalid/{context}"),
            });
        })
    }

    /// Close pull request `number` (a person did), merged or not.
    pub fn close_pull(&self, repo: &str, number: i64, merged: bool) {
        self.with_repo(repo, |r| {
            if let Some(pull) = r.pulls.iter_mut().find(|p| p.number == number) {
                pull.state = "closed".to_string();
                pull.merged = merged;
            }
        });
    }

    /// A merge of pull request `number` is refused as a conflict.
    pub fn conflict(&self, repo: &str, number: i64) {
        self.with_repo(repo, |r| r.conflicts.push(number));
    }

    /// A pull request made outside orch (to be adopted).
    pub fn open_pull(&self, repo: &str, head: &str, base: &str, title: &str) -> i64 {
        let mut state = self.state.lock().unwrap();
        let number = state.next_number;
        state.next_number += 1;
        state
            .repos
            .entry(repo.to_string())
            .or_default()
            .pulls
            .push(Pull {
                number,
                title: title.to_string(),
                body: String::new(),
                head: head.to_string(),
                base: base.to_string(),
                state: "open".to_string(),
                merged: false,
                draft: false,
            });
        number
    }

    fn with_repo<T>(&self, repo: &str, f: impl FnOnce(&mut Repo) -> T) -> T {
        let mut state = self.state.lock().unwrap();
        f(state.repos.entry(repo.to_string()).or_default())
    }

    fn edit_issue(&self, repo: &str, number: i64, f: impl FnOnce(&mut Issue)) {
        self.with_repo(repo, |r| {
            if let Some(issue) = r.issues.iter_mut().find(|i| i.number == number) {
                f(issue);
            }
        });
    }
}

/// GitHub's answer once its rate limit is spent: 403, no requests remaining, the limit lifting
/// at `reset` (Unix seconds).
pub fn rate_limit_spent(reset: i64) -> Reply {
    Reply::Full(
        403,
        vec![
            ("X-RateLimit-Reset", reset.to_string()),
            ("X-RateLimit-Remaining", "0".to_string()),
        ],
        r#"{"message":"API rate limit exceeded"}"#.to_string(),
    )
}

/// Labels as the forges list them: `{id, name}`, the id a label's place in the repository's.
fn label_list(known: &[String], names: &[String]) -> Vec<Value> {
    names
        .iter()
        .map(|name| {
            let id = known.iter().position(|k| k == name).map_or(0, |i| i + 1);
            json!({ "id": id, "name": name })
        })
        .collect()
}

fn json_reply(status: u16, value: Value) -> Reply {
    Reply::Status(status, value.to_string())
}

fn not_found() -> Reply {
    json_reply(404, json!({ "message": "Not Found" }))
}

/// Where a request goes: its dialect, repository (`owner/name`), the rest of its path, its query.
type Route = (Dialect, String, Vec<String>, BTreeMap<String, String>);

fn route(path: &str) -> Option<Route> {
    let (path, query) = path.split_once('?').unwrap_or((path, ""));
    let query = query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect();
    let (dialect, rest) = if let Some(rest) = path.strip_prefix("/api/v1/repos/") {
        (Dialect::Gitea, rest)
    } else {
        (Dialect::Github, path.strip_prefix("/repos/")?)
    };
    let mut parts = rest.split('/').map(str::to_string);
    let owner = parts.next()?;
    let name = parts.next()?;
    Some((dialect, format!("{owner}/{name}"), parts.collect(), query))
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn authorized(state: &State, dialect: Dialect, request: &Request) -> bool {
    let Some(header) = request.header("authorization") else {
        return false;
    };
    let expected = match dialect {
        // Gitea takes either form; GitHub too, but orch must send Bearer.
        Dialect::Gitea => [
            format!("token {}", state.token),
            format!("Bearer {}", state.token),
        ],
        Dialect::Github => [
            format!("Bearer {}", state.token),
            format!("Bearer {}", state.token),
        ],
    };
    expected.iter().any(|e| e == header)
}

fn pull_json(dialect: Dialect, url: &str, repo: &str, pull: &Pull) -> Value {
    let html = format!("{url}/{repo}/pull/{}", pull.number);
    match dialect {
        Dialect::Gitea => json!({
            "number": pull.number, "title": pull.title, "body": pull.body, "state": pull.state,
            "merged": pull.merged, "html_url": html,
            "head": { "ref": pull.head, "label": pull.head },
            "base": { "ref": pull.base, "label": pull.base },
        }),
        Dialect::Github => json!({
            "number": pull.number, "title": pull.title, "body": pull.body, "state": pull.state,
            "merged": pull.merged, "draft": pull.draft, "html_url": html,
            "head": { "ref": pull.head, "label": format!("{}:{}", repo.split('/').next().unwrap_or(""), pull.head) },
            "base": { "ref": pull.base },
        }),
    }
}

fn issue_json(dialect: Dialect, issue: &Issue) -> Value {
    let labels: Vec<Value> = issue
        .labels
        .iter()
        .enumerate()
        .map(|(i, l)| json!({ "id": i + 1, "name": l }))
        .collect();
    let mut value = json!({
        "number": issue.number, "title": issue.title, "body": issue.body,
        "state": issue.state, "labels": labels,
    });
    if dialect == Dialect::Gitea {
        value["pull_request"] = Value::Null;
    }
    value
}

fn answer(state: &mut State, request: &Request) -> Reply {
    let Some((dialect, repo_name, rest, query)) = route(&request.path) else {
        return not_found();
    };
    if !authorized(state, dialect, request) {
        return json_reply(401, json!({ "message": "Bad credentials" }));
    }
    let body: Value = serde_json::from_str(&request.body).unwrap_or(Value::Null);
    let url = "http://forge.invalid".to_string();
    let user = state.user.clone();
    let rest: Vec<&str> = rest.iter().map(String::as_str).collect();
    let method = request.method.as_str();
    let number = &mut state.next_number;
    let next_comment = &mut state.next_comment;
    let repo = state.repos.entry(repo_name.clone()).or_default();
    match (method, rest.as_slice()) {
        ("POST", ["pulls"]) => {
            let field = |k: &str| body[k].as_str().map(str::to_string);
            let (Some(title), Some(head), Some(base)) =
                (field("title"), field("head"), field("base"))
            else {
                return json_reply(
                    422,
                    json!({ "message": "title, head and base are required" }),
                );
            };
            let head = head.rsplit(':').next().unwrap_or(&head).to_string();
            if repo
                .pulls
                .iter()
                .any(|p| p.head == head && p.state == "open")
            {
                return json_reply(422, json!({ "message": "A pull request already exists" }));
            }
            let pull = Pull {
                number: *number,
                title,
                body: field("body").unwrap_or_default(),
                head,
                base,
                state: "open".to_string(),
                merged: false,
                draft: body["draft"].as_bool().unwrap_or(false),
            };
            *number += 1;
            let reply = pull_json(dialect, &url, &repo_name, &pull);
            repo.pulls.push(pull);
            json_reply(201, reply)
        }
        ("GET", ["pulls"]) => {
            let wanted_state = query.get("state").map_or("open", String::as_str);
            let head = query
                .get("head")
                .map(|h| h.rsplit(':').next().unwrap_or(h).to_string());
            let page: usize = query
                .get("page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(1)
                .max(1);
            let size_key = match dialect {
                Dialect::Gitea => "limit",
                Dialect::Github => "per_page",
            };
            let size: usize = query
                .get(size_key)
                .and_then(|p| p.parse().ok())
                .unwrap_or(30);
            let list: Vec<Value> = repo
                .pulls
                .iter()
                .filter(|p| wanted_state == "all" || p.state == wanted_state)
                .filter(|p| head.as_ref().is_none_or(|h| &p.head == h))
                .skip((page - 1) * size)
                .take(size)
                .map(|p| pull_json(dialect, &url, &repo_name, p))
                .collect();
            json_reply(200, Value::Array(list))
        }
        ("GET", ["pulls", n]) => match repo.pulls.iter().find(|p| p.number.to_string() == *n) {
            Some(p) => json_reply(200, pull_json(dialect, &url, &repo_name, p)),
            None => not_found(),
        },
        ("PATCH", ["pulls", n]) => {
            let Some(pull) = repo.pulls.iter_mut().find(|p| p.number.to_string() == *n) else {
                return not_found();
            };
            if let Some(b) = body["body"].as_str() {
                pull.body = b.to_string();
            }
            if let Some(t) = body["title"].as_str() {
                pull.title = t.to_string();
            }
            let pull = pull.clone();
            json_reply(200, pull_json(dialect, &url, &repo_name, &pull))
        }
        ("POST", ["pulls", n, "merge"]) | ("PUT", ["pulls", n, "merge"]) => {
            let style = match dialect {
                Dialect::Gitea => body["Do"].as_str(),
                Dialect::Github => body["merge_method"].as_str().or(Some("merge")),
            };
            if !matches!(style, Some("merge" | "squash" | "rebase")) {
                return json_reply(422, json!({ "message": "merge style required" }));
            }
            let conflicts = repo.conflicts.clone();
            let Some(pull) = repo.pulls.iter_mut().find(|p| p.number.to_string() == *n) else {
                return not_found();
            };
            if conflicts.contains(&pull.number) {
                return json_reply(409, json!({ "message": "Merge conflict" }));
            }
            if pull.state != "open" {
                return json_reply(405, json!({ "message": "Pull Request is not mergeable" }));
            }
            pull.state = "closed".to_string();
            pull.merged = true;
            json_reply(
                200,
                json!({ "merged": true, "message": "Pull Request successfully merged" }),
            )
        }
        ("POST", ["issues", n, "comments"]) => {
            let Some(text) = body["body"].as_str() else {
                return json_reply(422, json!({ "message": "body is required" }));
            };
            *next_comment += 1;
            let at = now_ms();
            let comment = Comment {
                id: *next_comment,
                author: user,
                body: text.to_string(),
                created_at: at,
                updated_at: at,
            };
            let target = n.parse::<i64>().unwrap_or(0);
            if let Some(issue) = repo.issues.iter_mut().find(|i| i.number == target) {
                issue.comments.push(comment.clone());
            } else if repo.pulls.iter().any(|p| p.number == target) {
                // Comments on pull requests are kept on a shadow issue of the same number.
                repo.issues.push(Issue {
                    number: target,
                    title: String::new(),
                    body: String::new(),
                    state: "pull".to_string(),
                    labels: Vec::new(),
                    comments: vec![comment.clone()],
                });
            } else {
                return not_found();
            }
            json_reply(201, comment_json(&comment))
        }
        ("GET", ["issues", n, "comments"]) => {
            let target = n.parse::<i64>().unwrap_or(0);
            let list: Vec<Value> = repo
                .issues
                .iter()
                .filter(|i| i.number == target)
                .flat_map(|i| &i.comments)
                .map(comment_json)
                .collect();
            json_reply(200, Value::Array(list))
        }
        ("GET", ["issues"]) => {
            let page: usize = query
                .get("page")
                .and_then(|p| p.parse().ok())
                .unwrap_or(1)
                .max(1);
            let size: usize = match dialect {
                Dialect::Gitea => query
                    .get("limit")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(30),
                Dialect::Github => query
                    .get("per_page")
                    .and_then(|p| p.parse().ok())
                    .unwrap_or(30),
            };
            let wanted_state = query.get("state").map_or("open", String::as_str);
            let label = query.get("labels").cloned();
            let mut list: Vec<Value> = repo
                .issues
                .iter()
                .filter(|i| i.state != "pull")
                .filter(|i| wanted_state == "all" || i.state == wanted_state)
                .filter(|i| label.as_ref().is_none_or(|l| i.labels.contains(l)))
                .map(|i| issue_json(dialect, i))
                .collect();
            if dialect == Dialect::Github {
                // GitHub lists pull requests among issues; a client must skip them.
                list.extend(repo.pulls.iter().filter(|p| p.state == wanted_state).map(|p| {
                    json!({ "number": p.number, "title": p.title, "body": p.body, "state": p.state,
                            "labels": [], "pull_request": { "url": "x" } })
                }));
            }
            let total = list.len();
            let pages: Vec<Value> = list
                .into_iter()
                .skip((page - 1) * size)
                .take(size)
                .collect();
            let body = Value::Array(pages).to_string();
            // GitHub says where the next page is in `Link`; Gitea's list here leaves it out, so
            // a client must also page by a full page.
            if dialect == Dialect::Github && page * size < total {
                let next = request
                    .path
                    .replace(&format!("&page={page}"), &format!("&page={}", page + 1));
                let last = total.div_ceil(size);
                let link = format!(
                    "<{url}{next}>; rel=\"next\", <{url}{}>; rel=\"last\"",
                    request
                        .path
                        .replace(&format!("&page={page}"), &format!("&page={last}"))
                );
                return Reply::Full(200, vec![("Link", link)], body);
            }
            Reply::Status(200, body)
        }
        ("GET", ["labels"]) => {
            let list: Vec<Value> = repo
                .labels
                .iter()
                .enumerate()
                .map(|(i, l)| json!({ "id": i + 1, "name": l }))
                .collect();
            json_reply(200, Value::Array(list))
        }
        ("POST", ["labels"]) => {
            let Some(name) = body["name"].as_str() else {
                return json_reply(422, json!({ "message": "name is required" }));
            };
            if repo.labels.iter().any(|l| l == name) {
                return json_reply(422, json!({ "message": "label already exists" }));
            }
            repo.labels.push(name.to_string());
            json_reply(201, json!({ "id": repo.labels.len(), "name": name }))
        }
        ("GET", ["issues", n, "labels"]) => {
            match repo.issues.iter().find(|i| i.number.to_string() == *n) {
                Some(issue) => {
                    json_reply(200, Value::Array(label_list(&repo.labels, &issue.labels)))
                }
                None => not_found(),
            }
        }
        ("POST", ["issues", n, "labels"]) | ("PUT", ["issues", n, "labels"]) => {
            let names: Vec<String> = body["labels"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|v| {
                            v.as_str().map(str::to_string).or_else(|| {
                                let id = v.as_u64()? as usize;
                                repo.labels.get(id.checked_sub(1)?).cloned()
                            })
                        })
                        .collect()
                })
                .unwrap_or_default();
            let replace = method == "PUT";
            let Some(issue) = repo.issues.iter_mut().find(|i| i.number.to_string() == *n) else {
                return not_found();
            };
            if replace {
                issue.labels.clear();
            }
            for name in names {
                if !issue.labels.contains(&name) {
                    issue.labels.push(name);
                }
            }
            let list = label_list(&repo.labels, &issue.labels);
            json_reply(200, Value::Array(list))
        }
        ("DELETE", ["issues", n, "labels", label]) => {
            let label = percent_decode(label);
            let by_id = label
                .parse::<usize>()
                .ok()
                .and_then(|id| repo.labels.get(id.checked_sub(1)?).cloned());
            let name = by_id.unwrap_or(label);
            let Some(issue) = repo.issues.iter_mut().find(|i| i.number.to_string() == *n) else {
                return not_found();
            };
            issue.labels.retain(|l| *l != name);
            Reply::Status(204, String::new())
        }
        ("GET", ["commits", sha, "status"]) => {
            let statuses = repo.statuses.get(*sha).cloned().unwrap_or_default();
            let combined = if statuses.is_empty() {
                "pending"
            } else if statuses
                .iter()
                .any(|s| matches!(s.state.as_str(), "failure" | "error"))
            {
                "failure"
            } else if statuses.iter().all(|s| s.state == "success") {
                "success"
            } else {
                "pending"
            };
            let list: Vec<Value> = statuses
                .iter()
                .map(|s| {
                    json!({ "state": s.state, "context": s.context,
                                 "description": s.description, "target_url": s.target_url })
                })
                .collect();
            json_reply(
                200,
                json!({ "state": combined, "sha": sha, "total_count": list.len(), "statuses": list }),
            )
        }
        ("GET", ["commits", sha, "check-runs"]) if dialect == Dialect::Github => {
            let runs: Vec<Value> = repo
                .check_runs
                .get(*sha)
                .cloned()
                .unwrap_or_default()
                .iter()
                .map(|c| {
                    json!({ "name": c.name, "status": c.status, "conclusion": c.conclusion,
                            "details_url": format!("http://ci.invalid/runs/{}", c.name),
                            "output": { "title": c.title, "summary": c.title, "text": c.text } })
                })
                .collect();
            json_reply(
                200,
                json!({ "total_count": runs.len(), "check_runs": runs }),
            )
        }
        _ => not_found(),
    }
}
