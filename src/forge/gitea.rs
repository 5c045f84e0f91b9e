//! Gitea and Forgejo: `{url}/api/v1/repos/{owner}/{repo}/…`, `Authorization: token …`.

use serde_json::json;

use super::{Api, Error, Forge};
use crate::http::Method;

pub(super) struct Gitea<'a>(pub(super) Api<'a>);

impl Gitea<'_> {
    fn repo_url(&self, path: &str) -> String {
        format!("{}/api/v1/repos/{}/{path}", self.0.base(), self.0.spec.repo)
    }
}

impl Forge for Gitea<'_> {
    fn label(&self) -> String {
        format!("gitea {}", self.0.spec.repo)
    }

    fn comment(&self, number: i64, body: &str) -> Result<(), Error> {
        let auth = format!("token {}", self.0.token);
        let url = self.repo_url(&format!("issues/{number}/comments"));
        self.0
            .call(
                "gitea",
                Method::Post,
                &url,
                &[("Authorization", &auth)],
                Some(&json!({ "body": body })),
                &format!("#{number}"),
            )
            .map(drop)
    }
}
