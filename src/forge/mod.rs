//! The forge: where the project's repository, issues and pull requests live. One trait, one
//! implementation per API — Gitea and Forgejo (`gitea.rs`), GitHub (`github.rs`) — so a caller
//! never matches on the kind. Every call goes through the shared `Http` client (timeouts, no
//! redirects, redacted errors) with the forge token in a header, never in a URL.

mod gitea;
mod github;

use serde_json::Value;

use crate::config::{Forge as ForgeSpec, ForgeKind};
use crate::http::{Http, Method, Reply};

/// What a forge call can end in, besides success.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// Try again later: the forge is down, slow, or answered an error.
    Failed(String),
    /// The forge asked to wait this long first (HTTP 429, or 403 with `Retry-After`).
    RetryAfter { seconds: u64, error: String },
}

/// When a 429 (or a 403 with `Retry-After`) names no wait.
const DEFAULT_RETRY_AFTER_SECONDS: u64 = 60;

/// What orch asks of a forge. Later issues add pull requests, issue listing, labels, commit
/// statuses and merge here; each implementation knows its own URLs, headers and JSON.
pub trait Forge {
    /// "gitea team/web", for messages.
    fn label(&self) -> String;

    /// Post `body` as a comment on issue (or pull request) `number`.
    fn comment(&self, number: i64, body: &str) -> Result<(), Error>;
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
            _ => Error::Failed(error),
        })
    }

    fn base(&self) -> &str {
        self.spec.url.trim_end_matches('/')
    }
}
