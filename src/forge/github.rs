//! GitHub: `{api}/repos/{owner}/{repo}/…` (api default https://api.github.com),
//! `Authorization: Bearer …`, the v3 media type and a pinned API version.

use serde_json::{json, Value};

use super::{one_pull, pull_list, query_value, Api, Error, Forge, NewPull, PullRequest};
use crate::http::{Method, Reply};

pub(super) struct Github<'a>(pub(super) Api<'a>);

impl Github<'_> {
    fn repo_url(&self, path: &str) -> String {
        format!("{}/repos/{}/{path}", self.0.base(), self.0.spec.repo)
    }

    fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Reply, Error> {
        let auth = format!("Bearer {}", self.0.token);
        let headers = [
            ("Authorization", auth.as_str()),
            ("Accept", "application/vnd.github+json"),
            ("X-GitHub-Api-Version", "2022-11-28"),
        ];
        self.0
            .call("github", method, &self.repo_url(path), &headers, body, what)
    }

    fn owner(&self) -> &str {
        self.0.spec.repo.split('/').next().unwrap_or_default()
    }
}

impl Forge for Github<'_> {
    fn label(&self) -> String {
        format!("github {}", self.0.spec.repo)
    }

    fn comment(&self, number: i64, body: &str) -> Result<(), Error> {
        self.send(
            Method::Post,
            &format!("issues/{number}/comments"),
            Some(&json!({ "body": body })),
            &format!("#{number}"),
        )
        .map(drop)
    }

    fn find_open_pull(&self, head: &str) -> Result<Option<PullRequest>, Error> {
        let filter = query_value(&format!("{}:{head}", self.owner()));
        let reply = self.send(
            Method::Get,
            &format!("pulls?head={filter}&state=open"),
            None,
            " pull requests",
        )?;
        Ok(pull_list(&reply, &self.label())?
            .into_iter()
            .find(|p| p.head == head))
    }

    fn create_pull(&self, new: &NewPull) -> Result<PullRequest, Error> {
        let body = json!({
            "title": new.title, "body": new.body, "head": new.head, "base": new.base,
            "draft": new.draft,
        });
        let reply = self.send(
            Method::Post,
            "pulls",
            Some(&body),
            &format!(" pull request from {}", new.head),
        )?;
        one_pull(&reply, &self.label())
    }

    fn update_pull_body(&self, number: i64, body: &str) -> Result<PullRequest, Error> {
        let reply = self.send(
            Method::Patch,
            &format!("pulls/{number}"),
            Some(&json!({ "body": body })),
            &format!("#{number}"),
        )?;
        one_pull(&reply, &self.label())
    }

    fn pull(&self, number: i64) -> Result<PullRequest, Error> {
        let reply = self.send(
            Method::Get,
            &format!("pulls/{number}"),
            None,
            &format!("#{number}"),
        )?;
        one_pull(&reply, &self.label())
    }
}
