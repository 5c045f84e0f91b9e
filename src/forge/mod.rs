//! The forge: where the project's repository, issues and pull requests live. One trait, one
//! implementation per API — Gitea and Forgejo (`gitea.rs`), GitHub (`github.rs`) — so a caller
//! never matches on the kind. Every call goes through the shared `Http` client (timeouts, no
//! redirects, redacted errors) with the forge token in a header, never in a URL.

mod gitea;
mod github;

use serde_json::Value;

use crate::config::{Forge as ForgeSpec, ForgeKind};
use crate::domain::states::PrState;
use crate::http::{Http, Method, Reply};

/// What a forge call can end in, besides success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Try again later: the forge is down, slow, or answered an error.
    Failed(String),
    /// The forge asked to wait this long first (HTTP 429, or 403 with `Retry-After`).
    RetryAfter { seconds: u64, error: String },
    /// The forge has no such thing (HTTP 404 or 410: an issue or a repository that does not
    /// exist, or that the token may not see): asking again will not find it.
    Gone(String),
}

/// When a 429 (or a 403 with `Retry-After`) names no wait.
const DEFAULT_RETRY_AFTER_SECONDS: u64 = 60;

/// A pull request as a forge describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullRequest {
    pub number: i64,
    /// Its page, for people.
    pub url: String,
    pub state: PrState,
    /// The branch it merges from.
    pub head: String,
    pub body: String,
}

/// A pull request to open.
#[derive(Debug, Clone, Copy)]
pub struct NewPull<'a> {
    pub title: &'a str,
    pub body: &'a str,
    /// The branch to merge from (of the same repository).
    pub head: &'a str,
    /// The branch to merge into.
    pub base: &'a str,
    /// A draft (GitHub; Gitea has none).
    pub draft: bool,
}

/// What orch asks of a forge. Later issues add issue listing, labels, commit statuses and merge
/// here; each implementation knows its own URLs, headers and JSON.
pub trait Forge {
    /// "gitea team/web", for messages.
    fn label(&self) -> String;

    /// Post `body` as a comment on issue (or pull request) `number`.
    fn comment(&self, number: i64, body: &str) -> Result<(), Error>;

    /// The open pull request from branch `head` of this repository, if there is one.
    fn find_open_pull(&self, head: &str) -> Result<Option<PullRequest>, Error>;

    /// Open a pull request.
    fn create_pull(&self, new: &NewPull) -> Result<PullRequest, Error>;

    /// Replace pull request `number`'s body.
    fn update_pull_body(&self, number: i64, body: &str) -> Result<PullRequest, Error>;

    /// Pull request `number` as it is now (its state: open, closed, merged).
    fn pull(&self, number: i64) -> Result<PullRequest, Error>;
}

/// The user name a forge takes with its token over HTTPS (git's Basic auth).
pub fn git_user(kind: &ForgeKind) -> &'static str {
    match kind {
        ForgeKind::Gitea => "oauth2",
        ForgeKind::Github => "x-access-token",
    }
}

/// The host git remotes of this forge live on, the only one a push gives the token to: the
/// forge's own host (GitHub's API host `api.github.com` serves git as `github.com`).
pub fn git_host(spec: &ForgeSpec) -> Option<String> {
    let host = crate::vcs::askpass::url_host(&spec.url)?;
    Some(match (&spec.kind, host.as_str()) {
        (ForgeKind::Github, "api.github.com") => "github.com".to_string(),
        _ => host,
    })
}

/// The forge a project's `[projects.NAME.forge]` table names, talking through `http` with
/// `token`.
pub fn connect<'a>(spec: &'a ForgeSpec, http: &'a Http, token: &'a str) -> Box<dyn Forge + 'a> {
    let api = Api { spec, http, token };
    match spec.kind {
        ForgeKind::Gitea => Box::new(gitea::Gitea(api)),
        ForgeKind::Github => Box::new(github::Github(api)),
    }
}

/// What the implementations share: the project's forge settings, the client and the token.
struct Api<'a> {
    spec: &'a ForgeSpec,
    http: &'a Http,
    token: &'a str,
}

impl Api<'_> {
    /// Send one request; a 2xx answer is Ok, anything else an `Error` whose text names the forge,
    /// the repository, what was asked (`what`, e.g. "#7") and what the forge said.
    fn call(
        &self,
        name: &str,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
        what: &str,
    ) -> Result<Reply, Error> {
        let repo = &self.spec.repo;
        let reply = self
            .http
            .send(method, url, headers, body)
            .map_err(|err| Error::Failed(format!("{name} {repo}{what}: {err}")))?;
        if (200..300).contains(&reply.status) {
            return Ok(reply);
        }
        let (_, said) = reply.said("message");
        let error = format!("{name} {repo}{what} answered HTTP {}: {said}", reply.status);
        Err(match (reply.status, reply.retry_after) {
            (429, after) | (403, after @ Some(_)) => Error::RetryAfter {
                seconds: after.unwrap_or(DEFAULT_RETRY_AFTER_SECONDS),
                error,
            },
            (404 | 410, _) => Error::Gone(error),
            _ => Error::Failed(error),
        })
    }

    fn base(&self) -> &str {
        self.spec.url.trim_end_matches('/')
    }
}

/// How an implementation sends a request about its repository (its URLs and headers): the
/// requests every forge asks the same way (a comment, a pull request's body or state) are
/// written once, over this.
trait Dialect {
    /// "gitea team/web", for messages.
    fn label(&self) -> String;

    /// Send `method` to `path` under the repository's API URL; `what` names it in errors.
    fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Reply, Error>;

    fn post_comment(&self, number: i64, body: &str) -> Result<(), Error> {
        self.send(
            Method::Post,
            &format!("issues/{number}/comments"),
            Some(&serde_json::json!({ "body": body })),
            &format!("#{number}"),
        )
        .map(drop)
    }

    /// Open a pull request with this JSON body (each forge has its own fields).
    fn open_pull(&self, body: &Value, head: &str) -> Result<PullRequest, Error> {
        let what = format!(" pull request from {head}");
        let reply = self.send(Method::Post, "pulls", Some(body), &what)?;
        one_pull(&reply, &self.label())
    }

    fn edit_pull_body(&self, number: i64, body: &str) -> Result<PullRequest, Error> {
        let reply = self.send(
            Method::Patch,
            &format!("pulls/{number}"),
            Some(&serde_json::json!({ "body": body })),
            &format!("#{number}"),
        )?;
        one_pull(&reply, &self.label())
    }

    fn get_pull(&self, number: i64) -> Result<PullRequest, Error> {
        let path = format!("pulls/{number}");
        let reply = self.send(Method::Get, &path, None, &format!("#{number}"))?;
        one_pull(&reply, &self.label())
    }
}

/// A pull request from a forge's JSON (Gitea and GitHub agree on these fields; GitHub's lists
/// give `merged_at` where its single answers give `merged`).
fn pull_from(value: &Value, name: &str) -> Result<PullRequest, Error> {
    let number = value["number"]
        .as_i64()
        .ok_or_else(|| Error::Failed(format!("{name}: a pull request without a number")))?;
    let merged = value["merged"].as_bool().unwrap_or(false) || value["merged_at"].is_string();
    let state = match (merged, value["state"].as_str()) {
        (true, _) => PrState::Merged,
        (false, Some("open")) => PrState::Open,
        _ => PrState::Closed,
    };
    Ok(PullRequest {
        number,
        url: value["html_url"].as_str().unwrap_or_default().to_string(),
        state,
        head: value["head"]["ref"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        body: value["body"].as_str().unwrap_or_default().to_string(),
    })
}

/// The answer's body as one pull request.
fn one_pull(reply: &Reply, name: &str) -> Result<PullRequest, Error> {
    let (value, _) = reply.said("message");
    pull_from(&value, name)
}

/// The answer's body as a list of pull requests.
fn pull_list(reply: &Reply, name: &str) -> Result<Vec<PullRequest>, Error> {
    let (value, said) = reply.said("message");
    value
        .as_array()
        .ok_or_else(|| {
            Error::Failed(format!(
                "{name}: expected a list of pull requests, got {said}"
            ))
        })?
        .iter()
        .map(|item| pull_from(item, name))
        .collect()
}

/// `text` for a URL's query: every byte but the unreserved ones percent-encoded.
fn query_value(text: &str) -> String {
    let mut out = String::new();
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                out.push(byte as char)
            }
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}
