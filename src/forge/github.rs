//! GitHub: `{api}/repos/{owner}/{repo}/…` (api default https://api.github.com),
//! `Authorization: Bearer …`, the v3 media type and a pinned API version.

use serde_json::{json, Value};

use super::{
    pull_list, query_value, Api, Comment, Dialect, Error, Forge, Issue, Label, MergeStyle, NewPull,
    PullRequest,
};
use crate::domain::ci::Check;

/// Items a page of GitHub's lists holds (its largest page).
const PAGE: usize = 100;
use crate::http::{Method, Reply};

pub(super) struct Github<'a>(pub(super) Api<'a>);

impl Dialect for Github<'_> {
    fn label(&self) -> String {
        format!("github {}", self.0.spec.repo)
    }

    fn send_capped(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        what: &str,
        limit: u64,
    ) -> Result<Reply, Error> {
        let auth = format!("Bearer {}", self.0.token);
        let headers = [
            ("Authorization", auth.as_str()),
            ("Accept", "application/vnd.github+json"),
            ("X-GitHub-Api-Version", "2022-11-28"),
        ];
        let url = format!("{}/repos/{}/{path}", self.0.base(), self.0.spec.repo);
        self.0
            .call("github", method, &url, &headers, body, what, limit)
    }
}

impl Forge for Github<'_> {
    fn label(&self) -> String {
        Dialect::label(self)
    }

    fn comment(&self, number: i64, body: &str) -> Result<(), Error> {
        self.post_comment(number, body)
    }

    fn find_open_pull(&self, head: &str) -> Result<Option<PullRequest>, Error> {
        let owner = self.0.spec.repo.split('/').next().unwrap_or_default();
        let filter = query_value(&format!("{owner}:{head}"));
        let reply = self.send(
            Method::Get,
            &format!("pulls?head={filter}&state=open"),
            None,
            " pull requests",
        )?;
        Ok(pull_list(&reply, &Dialect::label(self))?
            .into_iter()
            .find(|p| p.head == head))
    }

    fn create_pull(&self, new: &NewPull) -> Result<PullRequest, Error> {
        let body = json!({
            "title": new.title, "body": new.body, "head": new.head, "base": new.base,
            "draft": new.draft,
        });
        self.open_pull(&body, new.head)
    }

    fn update_pull_body(&self, number: i64, body: &str) -> Result<PullRequest, Error> {
        self.edit_pull_body(number, body)
    }

    fn pull(&self, number: i64) -> Result<PullRequest, Error> {
        self.get_pull(number)
    }

    fn labelled_issues(&self, label: &str) -> Result<Vec<Issue>, Error> {
        let label = query_value(label);
        self.issue_pages(&format!("state=open&labels={label}&per_page={PAGE}"), PAGE)
    }

    fn labels(&self) -> Result<Vec<Label>, Error> {
        self.label_pages(&format!("per_page={PAGE}"), PAGE)
    }

    fn create_label(&self, name: &str, color: &str) -> Result<Label, Error> {
        self.post_label(&json!({ "name": name, "color": color }), name)
    }

    fn issue_labels(&self, number: i64) -> Result<Vec<Label>, Error> {
        self.get_issue_labels(number, &format!("?per_page={PAGE}"))
    }

    // GitHub names a label by its name, in a body and in a path.
    fn add_issue_label(&self, number: i64, label: &Label) -> Result<(), Error> {
        self.post_issue_label(number, json!(label.name), &label.name)
    }

    fn remove_issue_label(&self, number: i64, label: &Label) -> Result<(), Error> {
        self.delete_issue_label(number, &query_value(&label.name), &label.name)
    }

    fn merge_pull(&self, number: i64, style: MergeStyle) -> Result<(), Error> {
        self.merge(
            Method::Put,
            number,
            &json!({ "merge_method": style.as_str() }),
        )
    }

    fn comments_since(&self, number: i64, since: i64) -> Result<Vec<Comment>, Error> {
        self.comment_pages(number, since, &format!("per_page={PAGE}"), PAGE)
    }

    // GitHub has two kinds: commit statuses (outside CI) and check runs (Actions, apps).
    fn commit_checks(&self, sha: &str) -> Result<Vec<Check>, Error> {
        let mut checks = self.commit_statuses(sha)?;
        let sha = query_value(sha);
        for page in 1..=super::MAX_LIST_PAGES {
            let path = format!("commits/{sha}/check-runs?per_page={PAGE}&page={page}");
            let what = format!(" check runs (page {page})");
            let reply =
                self.send_capped(Method::Get, &path, None, &what, super::LIST_BODY_LIMIT)?;
            let (value, _) = reply.said("message");
            // A page of check runs is an object: `{total_count, check_runs: […]}`.
            let runs = value["check_runs"].as_array().cloned().unwrap_or_default();
            checks.extend(runs.iter().map(super::run_check));
            if !super::more_pages(reply.link.as_deref(), runs.len(), PAGE) {
                return Ok(checks);
            }
        }
        Err(Error::Failed(format!(
            "{}: more than {} pages of check runs",
            Dialect::label(self),
            super::MAX_LIST_PAGES
        )))
    }
}
