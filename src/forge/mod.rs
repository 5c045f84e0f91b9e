//! The forge: where the project's repository, issues and pull requests live. One trait, one
//! implementation per API — Gitea and Forgejo (`gitea.rs`), GitHub (`github.rs`) — so a caller
//! never matches on the kind. Every call goes through the shared `Http` client (timeouts, no
//! redirects, redacted errors) with the forge token in a header, never in a URL.

mod gitea;
mod github;

use serde_json::Value;

use crate::config::{Forge as ForgeSpec, ForgeKind};
use crate::domain::ci::{Check, CheckState};
use crate::domain::states::PrState;
use crate::http::{Http, Method, Reply};

/// What a forge call can end in, besides success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Try again later: the forge is down, slow, or answered an error.
    Failed(String),
    /// The forge asked to wait this long first (HTTP 429, or 403 with `Retry-After`, or a 403
    /// of GitHub's rate limit with `X-RateLimit-Reset`).
    RetryAfter { seconds: u64, error: String },
    /// The forge has no such thing (HTTP 404 or 410: an issue or a repository that does not
    /// exist, or that the token may not see): asking again will not find it.
    Gone(String),
    /// The forge refused the token (HTTP 401): no retry helps until the token is replaced.
    Unauthorized(String),
    /// The forge refused what was asked for good as things stand: a merge conflict, a pull
    /// request that cannot be merged (HTTP 405, 409, 422 to a merge).
    Refused(String),
}

impl Error {
    /// What went wrong, for a message.
    pub fn text(&self) -> &str {
        match self {
            Error::Failed(error)
            | Error::Unauthorized(error)
            | Error::Refused(error)
            | Error::Gone(error) => error,
            Error::RetryAfter { error, .. } => error,
        }
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.text())
    }
}

/// How a merge names itself in errors; what tells `Api::call` a refusal is for good.
const MERGE_WHAT: &str = " merge";

/// When a 429 (or a 403 with `Retry-After`) names no wait.
const DEFAULT_RETRY_AFTER_SECONDS: u64 = 60;
/// The longest wait a rate limit's reset time is taken at (GitHub's limits reset hourly): a
/// reset further ahead is a clock that is wrong, not a reason to stop for a day.
const MAX_RATE_LIMIT_WAIT_SECONDS: u64 = 3_600;
/// The largest page of a list read (GitHub's issue bodies are up to 64 KiB each, 100 a page).
const LIST_BODY_LIMIT: u64 = 16 * 1024 * 1024;
/// Pages of a list followed at most: a list longer than this is refused whole, not cut (a cut
/// list of open issues would cancel the tasks of the issues left out).
const MAX_LIST_PAGES: usize = 400;

/// How a pull request is merged (`merge_style`): the same three words on Gitea (`Do`) and
/// GitHub (`merge_method`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MergeStyle {
    Merge,
    Squash,
    Rebase,
}

impl MergeStyle {
    pub fn as_str(self) -> &'static str {
        match self {
            MergeStyle::Merge => "merge",
            MergeStyle::Squash => "squash",
            MergeStyle::Rebase => "rebase",
        }
    }

    pub fn from_name(name: &str) -> Option<MergeStyle> {
        [MergeStyle::Merge, MergeStyle::Squash, MergeStyle::Rebase]
            .into_iter()
            .find(|s| s.as_str() == name)
    }
}

/// An issue as a forge describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub number: i64,
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
}

/// A comment on an issue or a pull request, with its author. Its body is untrusted text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Comment {
    pub id: i64,
    /// The author's login.
    pub author: String,
    pub body: String,
    /// When it was written and last edited, epoch milliseconds (0 when the forge gave none).
    pub created_at: i64,
    pub updated_at: i64,
}

/// A label of a repository.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Label {
    pub id: i64,
    pub name: String,
}

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

    /// Every open issue (not pull request) that carries `label`, following every page. A page
    /// that fails fails the whole list: a part of it is never taken for all of it.
    fn labelled_issues(&self, label: &str) -> Result<Vec<Issue>, Error>;

    /// The repository's labels, every page.
    fn labels(&self) -> Result<Vec<Label>, Error>;

    /// Make a label in the repository, of `color` (six hex digits).
    fn create_label(&self, name: &str, color: &str) -> Result<Label, Error>;

    /// The labels issue (or pull request) `number` carries.
    fn issue_labels(&self, number: i64) -> Result<Vec<Label>, Error>;

    /// Add `label` (one of the repository's) to issue `number`, its other labels kept.
    fn add_issue_label(&self, number: i64, label: &Label) -> Result<(), Error>;

    /// Take `label` off issue `number`.
    fn remove_issue_label(&self, number: i64, label: &Label) -> Result<(), Error>;

    /// The comments on issue (or pull request) `number` written or edited at or after `since`
    /// (epoch milliseconds), every page, oldest first.
    fn comments_since(&self, number: i64, since: i64) -> Result<Vec<Comment>, Error>;

    /// Merge pull request `number` the `style` way. A conflict or a pull request the forge will
    /// not merge is `Error::Refused`, with what the forge said.
    fn merge_pull(&self, number: i64, style: MergeStyle) -> Result<(), Error>;

    /// Every check of commit `sha`: its commit statuses (the combined status's list) and, on
    /// GitHub, its check runs. Empty when nothing reported on it.
    fn commit_checks(&self, sha: &str) -> Result<Vec<Check>, Error>;
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
    #[allow(clippy::too_many_arguments)]
    fn call(
        &self,
        name: &str,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
        what: &str,
        limit: u64,
    ) -> Result<Reply, Error> {
        let repo = &self.spec.repo;
        let reply = self
            .http
            .send_capped(method, url, headers, body, limit)
            .map_err(|err| Error::Failed(format!("{name} {repo}{what}: {err}")))?;
        if (200..300).contains(&reply.status) {
            return Ok(reply);
        }
        let (_, said) = reply.said("message");
        let error = format!("{name} {repo}{what} answered HTTP {}: {said}", reply.status);
        let now = chrono::Utc::now().timestamp();
        Err(match rate_limit_wait(&reply, now) {
            Some(seconds) => Error::RetryAfter { seconds, error },
            None if reply.status == 401 => Error::Unauthorized(error),
            // A merge is the one request a 405, 409 or 422 refuses for good (see `merge`).
            None if what.ends_with(MERGE_WHAT) && matches!(reply.status, 405 | 409 | 422) => {
                Error::Refused(error)
            }
            None if matches!(reply.status, 404 | 410) => Error::Gone(error),
            None => Error::Failed(error),
        })
    }

    fn base(&self) -> &str {
        self.spec.url.trim_end_matches('/')
    }
}

/// How long a refusal asks to wait, when it is a rate limit: a 429 (its `Retry-After`, or a
/// minute), a 403 with `Retry-After` (GitHub's secondary limits), or a 403 with GitHub's
/// `X-RateLimit-Reset` and no requests remaining (its primary limit), until that reset.
fn rate_limit_wait(reply: &Reply, now_seconds: i64) -> Option<u64> {
    let until_reset = || {
        let reset = reply.rate_limit_reset?;
        let spent = reply.rate_limit_remaining.is_none_or(|left| left <= 0);
        spent.then(|| {
            u64::try_from(reset.saturating_sub(now_seconds))
                .unwrap_or(0)
                .clamp(1, MAX_RATE_LIMIT_WAIT_SECONDS)
        })
    };
    match (reply.status, reply.retry_after) {
        (429, after) => Some(
            after
                .or_else(until_reset)
                .unwrap_or(DEFAULT_RETRY_AFTER_SECONDS),
        ),
        (403, Some(after)) => Some(after),
        (403, None) => until_reset(),
        _ => None,
    }
}

/// Whether a list has a page after this one: the `Link` header's `rel="next"` when the forge
/// sends one (GitHub; Gitea too), else a full page (`count` of `size`).
fn more_pages(link: Option<&str>, count: usize, size: usize) -> bool {
    match link {
        Some(link) => link.split(',').any(|part| {
            part.split(';')
                .skip(1)
                .any(|param| param.trim().replace(' ', "") == "rel=\"next\"")
        }),
        None => count > 0 && count >= size,
    }
}

/// An issue from a forge's JSON (Gitea and GitHub agree on these fields).
fn issue_from(value: &Value, name: &str) -> Result<Issue, Error> {
    let number = value["number"]
        .as_i64()
        .ok_or_else(|| Error::Failed(format!("{name}: an issue without a number")))?;
    let text = |key: &str| value[key].as_str().unwrap_or_default().to_string();
    let labels = value["labels"]
        .as_array()
        .map(|labels| {
            labels
                .iter()
                .filter_map(|l| l["name"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ok(Issue {
        number,
        title: text("title"),
        body: text("body"),
        labels,
    })
}

/// A comment from a forge's JSON (Gitea and GitHub agree: `user.login`, RFC 3339 times).
fn comment_from(value: &Value) -> Option<Comment> {
    let time = |key: &str| {
        value[key]
            .as_str()
            .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
            .map_or(0, |t| t.timestamp_millis())
    };
    Some(Comment {
        id: value["id"].as_i64()?,
        author: value["user"]["login"].as_str()?.to_string(),
        body: value["body"].as_str().unwrap_or_default().to_string(),
        created_at: time("created_at"),
        updated_at: time("updated_at"),
    })
}

/// A commit status as a check: Gitea's `warning` does not block (it is not a failure).
fn status_check(value: &Value) -> Check {
    let text = |key: &str| value[key].as_str().unwrap_or_default().to_string();
    Check {
        name: text("context"),
        state: match value["state"].as_str() {
            Some("success" | "warning") => CheckState::Success,
            Some("failure" | "error") => CheckState::Failure,
            _ => CheckState::Pending,
        },
        description: text("description"),
        url: text("target_url"),
        log_tail: String::new(),
    }
}

/// A GitHub check run as a check: completed with a conclusion that passes (success, neutral,
/// skipped) or fails (anything else), else pending.
fn run_check(value: &Value) -> Check {
    let text = |v: &Value| v.as_str().unwrap_or_default().to_string();
    let state = match (value["status"].as_str(), value["conclusion"].as_str()) {
        (Some("completed"), Some("success" | "neutral" | "skipped")) => CheckState::Success,
        (Some("completed"), _) => CheckState::Failure,
        _ => CheckState::Pending,
    };
    let output = &value["output"];
    let log = [&output["summary"], &output["text"]]
        .iter()
        .map(|v| text(v))
        .filter(|t| !t.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n");
    Check {
        name: text(&value["name"]),
        state,
        description: text(&output["title"]),
        url: text(&value["details_url"]),
        log_tail: crate::domain::ci::tail(&log, crate::domain::ci::LOG_TAIL_MAX_BYTES).to_string(),
    }
}

/// A label from a forge's JSON.
fn label_from(value: &Value, name: &str) -> Result<Label, Error> {
    match (value["id"].as_i64(), value["name"].as_str()) {
        (Some(id), Some(label)) => Ok(Label {
            id,
            name: label.to_string(),
        }),
        _ => Err(Error::Failed(format!(
            "{name}: a label without an id or a name"
        ))),
    }
}

/// How an implementation sends a request about its repository (its URLs and headers): the
/// requests every forge asks the same way (a comment, a pull request's body or state) are
/// written once, over this.
trait Dialect {
    /// "gitea team/web", for messages.
    fn label(&self) -> String;

    /// Send `method` to `path` under the repository's API URL, reading at most `limit` bytes
    /// of the answer; `what` names it in errors.
    fn send_capped(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        what: &str,
        limit: u64,
    ) -> Result<Reply, Error>;

    /// `send_capped` with the usual limit, for one object.
    fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Reply, Error> {
        self.send_capped(method, path, body, what, crate::http::BODY_LIMIT)
    }

    /// Every item of `{path}?{query}&page=N` for N = 1, 2, … while there are more (`size` a
    /// page); `what` names the items in errors.
    fn pages(&self, path: &str, query: &str, size: usize, what: &str) -> Result<Vec<Value>, Error> {
        let name = self.label();
        let mut items = Vec::new();
        for page in 1..=MAX_LIST_PAGES {
            let url = format!("{path}?{query}&page={page}");
            let asked = format!(" {what} (page {page})");
            let reply = self.send_capped(Method::Get, &url, None, &asked, LIST_BODY_LIMIT)?;
            let (value, said) = reply.said("message");
            let Value::Array(list) = value else {
                return Err(Error::Failed(format!(
                    "{name}: expected a list of {what}, got {said}"
                )));
            };
            let count = list.len();
            items.extend(list);
            if !more_pages(reply.link.as_deref(), count, size) {
                return Ok(items);
            }
        }
        Err(Error::Failed(format!(
            "{name}: more than {MAX_LIST_PAGES} pages of {what}; none taken"
        )))
    }

    /// The issues of `issues?{query}`, every page, pull requests left out (GitHub lists them
    /// among issues).
    fn issue_pages(&self, query: &str, size: usize) -> Result<Vec<Issue>, Error> {
        let name = self.label();
        self.pages("issues", query, size, "issues")?
            .iter()
            .filter(|item| item["pull_request"].is_null())
            .map(|item| issue_from(item, &name))
            .collect()
    }

    /// The labels of `labels?{query}`, every page.
    fn label_pages(&self, query: &str, size: usize) -> Result<Vec<Label>, Error> {
        let name = self.label();
        self.pages("labels", query, size, "labels")?
            .iter()
            .map(|item| label_from(item, &name))
            .collect()
    }

    /// Make a label with this JSON body (each forge writes its colour its own way).
    fn post_label(&self, body: &Value, name: &str) -> Result<Label, Error> {
        let what = format!(" label {name:?}");
        let reply = self.send(Method::Post, "labels", Some(body), &what)?;
        let (value, _) = reply.said("message");
        label_from(&value, &self.label())
    }

    fn get_issue_labels(&self, number: i64, query: &str) -> Result<Vec<Label>, Error> {
        let path = format!("issues/{number}/labels{query}");
        let reply = self.send(Method::Get, &path, None, &format!("#{number} labels"))?;
        let (value, said) = reply.said("message");
        let name = self.label();
        value
            .as_array()
            .ok_or_else(|| Error::Failed(format!("{name}: expected a list of labels, got {said}")))?
            .iter()
            .map(|item| label_from(item, &name))
            .collect()
    }

    /// Add a label to an issue: `labels` is how this forge names it (an id, or a name).
    fn post_issue_label(&self, number: i64, labels: Value, name: &str) -> Result<(), Error> {
        let body = serde_json::json!({ "labels": [labels] });
        let what = format!("#{number} label {name:?}");
        let path = format!("issues/{number}/labels");
        self.send(Method::Post, &path, Some(&body), &what).map(drop)
    }

    /// The comments of `issues/{number}/comments?since=…&{page_query}`, every page.
    fn comment_pages(
        &self,
        number: i64,
        since: i64,
        page_query: &str,
        size: usize,
    ) -> Result<Vec<Comment>, Error> {
        let since = chrono::DateTime::from_timestamp_millis(since)
            .unwrap_or_default()
            .format("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let query = format!("since={}&{page_query}", query_value(&since));
        let path = format!("issues/{number}/comments");
        let mut comments: Vec<Comment> = self
            .pages(&path, &query, size, "comments")?
            .iter()
            .filter_map(comment_from)
            .collect();
        comments.sort_by_key(|c| (c.created_at, c.id));
        Ok(comments)
    }

    /// Merge pull request `number` with this JSON body, by `method` (each forge its own).
    fn merge(&self, method: Method, number: i64, body: &Value) -> Result<(), Error> {
        let what = format!("#{number}{MERGE_WHAT}");
        self.send(method, &format!("pulls/{number}/merge"), Some(body), &what)
            .map(drop)
    }

    /// The commit statuses of `sha` (`commits/{sha}/status`, the combined status: Gitea and
    /// GitHub agree on it), one check per context.
    fn commit_statuses(&self, sha: &str) -> Result<Vec<Check>, Error> {
        let path = format!("commits/{}/status", query_value(sha));
        let what = format!(" commit {} status", crate::output::clip(sha, 12));
        let reply = self.send_capped(Method::Get, &path, None, &what, LIST_BODY_LIMIT)?;
        let (value, _) = reply.said("message");
        Ok(value["statuses"]
            .as_array()
            .map(|list| list.iter().map(status_check).collect())
            .unwrap_or_default())
    }

    /// Take a label off an issue: `which` is how this forge names it in a path.
    fn delete_issue_label(&self, number: i64, which: &str, name: &str) -> Result<(), Error> {
        let what = format!("#{number} label {name:?}");
        let path = format!("issues/{number}/labels/{which}");
        self.send(Method::Delete, &path, None, &what).map(drop)
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(
        status: u16,
        retry_after: Option<u64>,
        reset: Option<i64>,
        left: Option<i64>,
    ) -> Reply {
        Reply {
            status,
            retry_after,
            rate_limit_reset: reset,
            rate_limit_remaining: left,
            link: None,
            body: String::new(),
        }
    }

    #[test]
    fn rate_limits_say_how_long_to_wait() {
        let now = 1_000_000;
        assert_eq!(
            rate_limit_wait(&reply(429, Some(7), None, None), now),
            Some(7)
        );
        assert_eq!(
            rate_limit_wait(&reply(429, None, None, None), now),
            Some(60)
        );
        assert_eq!(
            rate_limit_wait(&reply(429, None, Some(now + 30), Some(0)), now),
            Some(30)
        );
        assert_eq!(
            rate_limit_wait(&reply(403, Some(5), None, None), now),
            Some(5)
        );
        assert_eq!(
            rate_limit_wait(&reply(403, None, Some(now + 90), Some(0)), now),
            Some(90)
        );
        assert_eq!(
            rate_limit_wait(&reply(403, None, Some(now + 90), None), now),
            Some(90)
        );
        assert_eq!(
            rate_limit_wait(&reply(403, None, Some(now - 5), Some(0)), now),
            Some(1)
        );
        assert_eq!(
            rate_limit_wait(&reply(403, None, Some(now + 86_400), Some(0)), now),
            Some(MAX_RATE_LIMIT_WAIT_SECONDS)
        );
        // A 403 with requests left is a refusal, not a rate limit.
        assert_eq!(
            rate_limit_wait(&reply(403, None, Some(now + 90), Some(12)), now),
            None
        );
        assert_eq!(rate_limit_wait(&reply(403, None, None, None), now), None);
        assert_eq!(rate_limit_wait(&reply(500, Some(3), None, None), now), None);
    }

    #[test]
    fn a_list_goes_on_while_its_link_names_a_next_page_or_its_page_is_full() {
        let both =
            r#"<https://x/issues?page=3>; rel="next", <https://x/issues?page=9>; rel="last""#;
        assert!(more_pages(Some(both), 3, 100));
        let last =
            r#"<https://x/issues?page=1>; rel="first", <https://x/issues?page=2>; rel="prev""#;
        assert!(!more_pages(Some(last), 100, 100));
        assert!(more_pages(None, 50, 50));
        assert!(!more_pages(None, 49, 50));
        assert!(!more_pages(None, 0, 0));
    }
}
