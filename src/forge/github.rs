//! GitHub: `{api}/repos/{owner}/{repo}/…` (api default https://api.github.com),
//! `Authorization: Bearer …`, the v3 media type and a pinned API version.

use serde_json::json;

use super::{Api, Error, Forge};
use crate::http::Method;

pub(super) struct Github<'a>(pub(super) Api<'a>);

impl Github<'_> {
    fn repo_url(&self, path: &str) -> String {
        format!("{}/repos/{}/{path}", self.0.base(), self.0.spec.repo)
    }
}

impl Forge for Github<'_> {
    fn label(&self) -> String {
        format!("github {}", self.0.spec.repo)
    }

    fn comment(&self, number: i64, body: &str) -> Result<(), Error> {
        let auth = format!("Bearer {}", self.0.token);
        let headers = [
            ("Authorization", auth.as_str()),
            ("Accept", "application/vnd.github+json"),
            ("X-GitHub-Api-Version", "2022-11-28"),
        ];
        let url = self.repo_url(&format!("issues/{number}/comments"));
        self.0
            .call(
                "github",
                Method::Post,
                &url,
                &headers,
                Some(&json!({ "body": body })),
                &format!("#{number}"),
            )
            .map(drop)
    }
}
