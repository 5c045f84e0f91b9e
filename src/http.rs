//! The one HTTP client Telegram and the forges share: ureq with connect and read timeouts, the
//! proxy variables ureq reads (ALL_PROXY, HTTPS_PROXY, HTTP_PROXY, NO_PROXY), no redirects, and
//! every error text scrubbed of the secrets it was given.
//!
//! Error texts are built here, never by printing a URL or a ureq error as it is: the Telegram
//! URL holds the bot token, and ureq puts the URL in some of its errors.

use std::time::Duration;

use serde_json::Value;

use crate::output::clip;

/// Largest answer body read by `send`; the rest is ignored (a list asks for more: `send_capped`).
pub const BODY_LIMIT: u64 = 64 * 1024;

pub struct Http {
    agent: ureq::Agent,
    timeout: Duration,
    secrets: Vec<String>,
}

/// What the server answered.
pub struct Reply {
    pub status: u16,
    /// The `Retry-After` header, in seconds, when it holds a number.
    pub retry_after: Option<u64>,
    /// GitHub's `X-RateLimit-Reset`: when the rate limit lifts, in Unix seconds.
    pub rate_limit_reset: Option<i64>,
    /// GitHub's `X-RateLimit-Remaining`: requests left until the reset.
    pub rate_limit_remaining: Option<i64>,
    /// The `Link` header (pagination).
    pub link: Option<String>,
    pub body: String,
}

impl Reply {
    /// The body as JSON (Null when it is not), and what the server said: the string at `key` of
    /// its JSON answer, else the body itself, as a short one-line excerpt for an error message.
    pub fn said(&self, key: &str) -> (Value, String) {
        let answer: Value = serde_json::from_str(&self.body).unwrap_or(Value::Null);
        let said = answer[key]
            .as_str()
            .map(excerpt)
            .unwrap_or_else(|| excerpt(&self.body));
        (answer, said)
    }
}

/// The methods the forges' APIs use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Get,
    Post,
    Patch,
    Put,
    Delete,
}

impl Method {
    fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Patch => "PATCH",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

impl Http {
    /// `timeout` bounds each phase: resolving, connecting, sending, waiting for the answer,
    /// reading it. `secrets` are replaced by `***` in every error text.
    pub fn new(timeout: Duration, secrets: Vec<String>) -> Http {
        let limit = Some(timeout);
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .timeout_resolve(limit)
            .timeout_connect(limit)
            .timeout_send_request(limit)
            .timeout_send_body(limit)
            .timeout_recv_response(limit)
            .timeout_recv_body(limit)
            .user_agent(format!("orch/{}", env!("CARGO_PKG_VERSION")))
            .build();
        Http {
            agent: config.into(),
            timeout,
            secrets: secrets.into_iter().filter(|s| !s.is_empty()).collect(),
        }
    }

    /// POST `body` as JSON (`Accept: application/json` unless `headers` name another). Err
    /// carries a redacted description of what went wrong on the way; an answer of any status is
    /// Ok.
    pub fn post_json(
        &self,
        url: &str,
        headers: &[(&str, &str)],
        body: &Value,
    ) -> Result<Reply, String> {
        self.send(Method::Post, url, headers, Some(body))
    }

    /// One request with an optional JSON body, read as `post_json` reads its answer.
    pub fn send(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
    ) -> Result<Reply, String> {
        self.send_capped(method, url, headers, body, BODY_LIMIT)
    }

    /// `send`, reading at most `limit` bytes of the answer's body (a page of a list is larger
    /// than one object).
    pub fn send_capped(
        &self,
        method: Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&Value>,
        limit: u64,
    ) -> Result<Reply, String> {
        let accept = !headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("accept"));
        let mut builder = ureq::http::Request::builder()
            .method(method.as_str())
            .uri(url);
        if accept {
            builder = builder.header("Accept", "application/json");
        }
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let sent = match body {
            Some(body) => {
                let request = builder
                    .header("Content-Type", "application/json")
                    .body(body.to_string())
                    .map_err(|err| self.redact(&err.to_string()))?;
                self.agent.run(request)
            }
            None => {
                let request = builder
                    .body(())
                    .map_err(|err| self.redact(&err.to_string()))?;
                self.agent.run(request)
            }
        };
        let mut response = sent.map_err(|err| self.describe(&err))?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let retry_after = header("retry-after").and_then(|v| v.trim().parse().ok());
        let rate_limit_reset = header("x-ratelimit-reset").and_then(|v| v.trim().parse().ok());
        let rate_limit_remaining =
            header("x-ratelimit-remaining").and_then(|v| v.trim().parse().ok());
        let link = header("link");
        // An answer whose body cannot be read still has its status: judge by that.
        let body = response
            .body_mut()
            .with_config()
            .limit(limit)
            .lossy_utf8(true)
            .read_to_string()
            .unwrap_or_default();
        Ok(Reply {
            status,
            retry_after,
            rate_limit_reset,
            rate_limit_remaining,
            link,
            body: self.redact(&body),
        })
    }

    fn describe(&self, err: &ureq::Error) -> String {
        let text = match err {
            ureq::Error::Timeout(phase) => format!(
                "no answer within {} s (timed out: {phase})",
                self.timeout.as_secs_f64()
            ),
            ureq::Error::Io(io) => format!("connection failed: {io}"),
            ureq::Error::HostNotFound => "host not found".to_string(),
            ureq::Error::ConnectionFailed => "connection failed".to_string(),
            other => other.to_string(),
        };
        self.redact(&text)
    }

    /// `text` with every secret replaced by `***`, in every encoding a server may echo.
    pub fn redact(&self, text: &str) -> String {
        crate::redact::redact_with(text, &self.secrets)
    }
}

/// A short, one-line excerpt of an answer body for an error message.
pub fn excerpt(body: &str) -> String {
    clip(&body.split_whitespace().collect::<Vec<_>>().join(" "), 200)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_every_secret() {
        let http = Http::new(
            Duration::from_secs(1),
            vec!["123:abc".into(), String::new()],
        );
        assert_eq!(
            http.redact("bad uri: http://x/bot123:abc/sendMessage"),
            "bad uri: http://x/bot***/sendMessage"
        );
    }

    #[test]
    fn excerpt_is_one_short_line() {
        assert_eq!(excerpt(" a\n  b "), "a b");
        assert_eq!(excerpt(&"x".repeat(300)).chars().count(), 201);
    }
}
