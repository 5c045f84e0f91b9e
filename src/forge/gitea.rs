//! Gitea and Forgejo: `{url}/api/v1/repos/{owner}/{repo}/…`, `Authorization: token …`.

use serde_json::{json, Value};

use super::{
    pull_list, query_value, Api, Comment, Dialect, Error, Forge, Issue, Label, MergeStyle, NewPull,
    PullRequest,
};
use crate::domain::ci::Check;
use crate::http::{Method, Reply};

pub(super) struct Gitea<'a>(pub(super) Api<'a>);

/// Items a page of Gitea's lists holds (its largest page by default).
const PAGE: usize = 50;
/// Pages of open pull requests looked through for one from a branch.
const MAX_PAGES: usize = 40;

impl Dialect for Gitea<'_> {
    fn label(&self) -> String {
        format!("gitea {}", self.0.spec.repo)
    }

    fn send_capped(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        what: &str,
        limit: u64,
    ) -> Result<Reply, Error> {
        let auth = format!("token {}", self.0.token);
        let url = format!("{}/api/v1/repos/{}/{path}", self.0.base(), self.0.spec.repo);
        self.0.call(
            "gitea",
            method,
            &url,
            &[("Authorization", &auth)],
            body,
            what,
            limit,
        )
    }
}

impl Forge for Gitea<'_> {
    fn label(&self) -> String {
        Dialect::label(self)
    }

    fn comment(&self, number: i64, body: &str) -> Result<(), Error> {
        self.post_comment(number, body)
    }

    fn find_open_pull(&self, head: &str) -> Result<Option<PullRequest>, Error> {
        // Gitea lists pull requests without a filter by branch: page through the open ones.
        for page in 1..=MAX_PAGES {
            let reply = self.send(
                Method::Get,
                &format!("pulls?state=open&limit={PAGE}&page={page}"),
                None,
                " pull requests",
            )?;
            let pulls = pull_list(&reply, &Dialect::label(self))?;
            let last = pulls.len() < PAGE;
            if let Some(found) = pulls.into_iter().find(|p| p.head == head) {
                return Ok(Some(found));
            }
            if last {
                break;
            }
        }
        Ok(None)
    }

    fn create_pull(&self, new: &NewPull) -> Result<PullRequest, Error> {
        // Gitea has no drafts.
        let body =
            json!({ "title": new.title, "body": new.body, "head": new.head, "base": new.base });
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
        let query = format!("state=open&type=issues&labels={label}&limit={PAGE}");
        self.issue_pages(&query, PAGE)
    }

    fn labels(&self) -> Result<Vec<Label>, Error> {
        self.label_pages(&format!("limit={PAGE}"), PAGE)
    }

    fn create_label(&self, name: &str, color: &str) -> Result<Label, Error> {
        self.post_label(&json!({ "name": name, "color": format!("#{color}") }), name)
    }

    fn issue_labels(&self, number: i64) -> Result<Vec<Label>, Error> {
        self.get_issue_labels(number, "")
    }

    // Gitea names a label by its id, in a body and in a path.
    fn add_issue_label(&self, number: i64, label: &Label) -> Result<(), Error> {
        self.post_issue_label(number, json!(label.id), &label.name)
    }

    fn remove_issue_label(&self, number: i64, label: &Label) -> Result<(), Error> {
        self.delete_issue_label(number, &label.id.to_string(), &label.name)
    }

    fn merge_pull(&self, number: i64, style: MergeStyle) -> Result<(), Error> {
        self.merge(Method::Post, number, &json!({ "Do": style.as_str() }))
    }

    fn comments_since(&self, number: i64, since: i64) -> Result<Vec<Comment>, Error> {
        self.comment_pages(number, since, &format!("limit={PAGE}"), PAGE)
    }

    // Gitea's Actions and outside CI both report as commit statuses.
    fn commit_checks(&self, sha: &str) -> Result<Vec<Check>, Error> {
        self.commit_statuses(sha)
    }
}
