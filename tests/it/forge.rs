//! The forge suite: every implementation of `orch::forge::Forge` against a real HTTP server on
//! 127.0.0.1, checked for the request shapes its API expects (method, path, auth header, JSON
//! body) and for how it maps answers (2xx, errors, rate limits, a server that is not there). A
//! new forge adds its row to `FORGES` and passes.

use std::time::Duration;

use orch::config::{Forge as ForgeSpec, ForgeKind};
use orch::forge::{self, Error};
use orch::http::Http;

use crate::support::http::{Reply, Server};

const TOKEN: &str = "forge-TOKEN-suite-0123";

/// Each kind: how it names itself, the path of a comment on #7 of team/web, its auth header and
/// the other headers its API wants.
struct Expect {
    kind: ForgeKind,
    label: &'static str,
    comment_path: &'static str,
    auth: &'static str,
    headers: &'static [(&'static str, &'static str)],
}

const FORGES: &[Expect] = &[
    Expect {
        kind: ForgeKind::Gitea,
        label: "gitea team/web",
        comment_path: "/api/v1/repos/team/web/issues/7/comments",
        auth: "token forge-TOKEN-suite-0123",
        headers: &[],
    },
    Expect {
        kind: ForgeKind::Github,
        label: "github team/web",
        comment_path: "/repos/team/web/issues/7/comments",
        auth: "Bearer forge-TOKEN-suite-0123",
        headers: &[
            ("accept", "application/vnd.github+json"),
            ("x-github-api-version", "2022-11-28"),
        ],
    },
];

fn spec(kind: ForgeKind, url: &str) -> ForgeSpec {
    ForgeSpec {
        kind,
        url: url.to_string(),
        repo: "team/web".to_string(),
    }
}

fn http() -> Http {
    Http::new(Duration::from_secs(2), vec![TOKEN.to_string()])
}

#[test]
fn every_forge_posts_a_comment_as_its_api_wants() {
    for expect in FORGES {
        let server = Server::start();
        let spec = spec(expect.kind.clone(), &server.url);
        let http = http();
        let forge = forge::connect(&spec, &http, TOKEN);
        assert_eq!(forge.label(), expect.label);
        forge.comment(7, "hello | **world**").unwrap();
        let requests = server.requests();
        assert_eq!(requests.len(), 1, "{}", expect.label);
        let request = &requests[0];
        assert_eq!(request.method, "POST", "{}", expect.label);
        assert_eq!(request.path, expect.comment_path, "{}", expect.label);
        assert_eq!(request.header("authorization"), Some(expect.auth));
        assert_eq!(request.header("content-type"), Some("application/json"));
        for (name, value) in expect.headers {
            assert_eq!(
                request.header(name),
                Some(*value),
                "{} {name}",
                expect.label
            );
        }
        assert_eq!(request.json()["body"], "hello | **world**");
    }
}

#[test]
fn every_forge_maps_errors_and_rate_limits_the_same_way() {
    for expect in FORGES {
        let server = Server::start();
        server.script([
            Reply::Status(500, r#"{"message":"boom"}"#.to_string()),
            Reply::Full(
                429,
                vec![("Retry-After", "17".to_string())],
                "{}".to_string(),
            ),
            Reply::Full(
                403,
                vec![("Retry-After", "5".to_string())],
                "{}".to_string(),
            ),
            Reply::Status(403, r#"{"message":"forbidden"}"#.to_string()),
            Reply::Status(429, "{}".to_string()),
        ]);
        let spec = spec(expect.kind.clone(), &server.url);
        let http = http();
        let forge = forge::connect(&spec, &http, TOKEN);
        let errors: Vec<Error> = (0..5).map(|_| forge.comment(7, "x").unwrap_err()).collect();
        match &errors[0] {
            Error::Failed(text) => {
                assert!(text.contains("answered HTTP 500: boom"), "{text}");
                assert!(text.contains(expect.label) && text.contains("#7"), "{text}");
            }
            other => panic!("{other:?}"),
        }
        assert!(
            matches!(&errors[1], Error::RetryAfter { seconds: 17, .. }),
            "{:?}",
            errors[1]
        );
        assert!(
            matches!(&errors[2], Error::RetryAfter { seconds: 5, .. }),
            "{:?}",
            errors[2]
        );
        assert!(matches!(&errors[3], Error::Failed(_)), "{:?}", errors[3]);
        assert!(
            matches!(&errors[4], Error::RetryAfter { seconds: 60, .. }),
            "{:?}",
            errors[4]
        );
        // Nobody listening: a failure that names no URL and no token.
        let closed = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", listener.local_addr().unwrap())
        };
        let spec = self::spec(expect.kind.clone(), &closed);
        let forge = forge::connect(&spec, &http, TOKEN);
        match forge.comment(7, "x").unwrap_err() {
            Error::Failed(text) => {
                assert!(text.contains("connection failed"), "{text}");
                assert!(!text.contains(TOKEN), "{text}");
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn the_forge_stand_in_checks_tokens_and_keeps_comments_by_author() {
    use crate::support::forge::Forge as StandIn;
    let stand_in = StandIn::start(TOKEN);
    let issue = stand_in.open_issue("team/web", "Add /health", "body", &["orch"]);
    for kind in [ForgeKind::Gitea, ForgeKind::Github] {
        let spec = spec(kind.clone(), stand_in.url());
        let http = http();
        forge::connect(&spec, &http, TOKEN)
            .comment(issue, "from orch")
            .unwrap();
        let wrong = forge::connect(&spec, &http, "not-the-token");
        match wrong.comment(issue, "x").unwrap_err() {
            Error::Failed(text) => assert!(text.contains("HTTP 401"), "{text}"),
            other => panic!("{other:?}"),
        }
    }
    stand_in.comment_as("team/web", issue, "alice", "/orch approve");
    let comments = stand_in.issue("team/web", issue).unwrap().comments;
    let authors: Vec<&str> = comments.iter().map(|c| c.author.as_str()).collect();
    assert_eq!(authors, ["orch-bot", "orch-bot", "alice"]);
}
