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

/// The request carries the forge's auth header and the others its API wants.
fn assert_headers(request: &crate::support::http::Request, expect: &Expect) {
    assert_eq!(request.header("authorization"), Some(expect.auth));
    for (name, value) in expect.headers {
        assert_eq!(
            request.header(name),
            Some(*value),
            "{} {name}",
            expect.label
        );
    }
}

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
        assert_eq!(request.header("content-type"), Some("application/json"));
        assert_headers(request, expect);
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
            Error::Unauthorized(text) => assert!(text.contains("HTTP 401"), "{text}"),
            other => panic!("{other:?}"),
        }
    }
    stand_in.comment_as("team/web", issue, "alice", "/orch approve");
    let comments = stand_in.issue("team/web", issue).unwrap().comments;
    let authors: Vec<&str> = comments.iter().map(|c| c.author.as_str()).collect();
    assert_eq!(authors, ["orch-bot", "orch-bot", "alice"]);
}

/// Each kind's pull-request requests on team/web: finding an open one by branch, opening one,
/// editing its body, reading its state.
struct PullPaths {
    kind: ForgeKind,
    find: &'static str,
    create: &'static str,
    one: &'static str,
}

const PULL_PATHS: &[PullPaths] = &[
    PullPaths {
        kind: ForgeKind::Gitea,
        find: "/api/v1/repos/team/web/pulls?state=open&limit=50&page=1",
        create: "/api/v1/repos/team/web/pulls",
        one: "/api/v1/repos/team/web/pulls/4",
    },
    PullPaths {
        kind: ForgeKind::Github,
        find: "/repos/team/web/pulls?head=team%3Afeature%2FT-1-x&state=open",
        create: "/repos/team/web/pulls",
        one: "/repos/team/web/pulls/4",
    },
];

fn pull_reply(number: i64, head: &str, state: &str, merged: bool) -> Reply {
    Reply::Status(
        200,
        serde_json::json!({
            "number": number, "state": state, "merged": merged, "body": "b",
            "html_url": format!("http://forge.invalid/team/web/pull/{number}"),
            "head": { "ref": head },
        })
        .to_string(),
    )
}

#[test]
fn every_forge_asks_for_pull_requests_as_its_api_wants() {
    use orch::domain::states::PrState;
    use orch::forge::NewPull;
    for (expect, paths) in FORGES.iter().zip(PULL_PATHS) {
        assert_eq!(expect.kind, paths.kind);
        let server = Server::start();
        server.script([
            Reply::Status(
                200,
                serde_json::json!([
                    { "number": 3, "state": "open", "head": { "ref": "feature/other" } },
                    { "number": 4, "state": "open", "html_url": "http://forge.invalid/team/web/pull/4",
                      "head": { "ref": "feature/T-1-x" } },
                ])
                .to_string(),
            ),
            Reply::Status(201, serde_json::json!({ "number": 4, "state": "open", "head": { "ref": "feature/T-1-x" } }).to_string()),
            pull_reply(4, "feature/T-1-x", "open", false),
            pull_reply(4, "feature/T-1-x", "closed", true),
        ]);
        let spec = spec(expect.kind.clone(), &server.url);
        let http = http();
        let forge = forge::connect(&spec, &http, TOKEN);
        let found = forge.find_open_pull("feature/T-1-x").unwrap().unwrap();
        assert_eq!((found.number, found.state), (4, PrState::Open));
        assert_eq!(found.url, "http://forge.invalid/team/web/pull/4");
        let new = NewPull {
            title: "T-1: X",
            body: "table",
            head: "feature/T-1-x",
            base: "main",
            draft: true,
        };
        assert_eq!(forge.create_pull(&new).unwrap().number, 4);
        forge.update_pull_body(4, "new table").unwrap();
        let merged = forge.pull(4).unwrap();
        assert_eq!(merged.state, PrState::Merged, "{}", expect.label);

        let requests = server.requests();
        let shape: Vec<(&str, &str)> = requests
            .iter()
            .map(|r| (r.method.as_str(), r.path.as_str()))
            .collect();
        assert_eq!(
            shape,
            [
                ("GET", paths.find),
                ("POST", paths.create),
                ("PATCH", paths.one),
                ("GET", paths.one),
            ],
            "{}",
            expect.label
        );
        for request in &requests {
            assert_headers(request, expect);
        }
        let created = requests[1].json();
        assert_eq!(created["title"], "T-1: X");
        assert_eq!(created["body"], "table");
        assert_eq!(created["head"], "feature/T-1-x");
        assert_eq!(created["base"], "main");
        // Only GitHub has drafts.
        assert_eq!(
            created.get("draft").is_some(),
            expect.kind == ForgeKind::Github,
            "{created}"
        );
        assert_eq!(
            requests[2].json(),
            serde_json::json!({ "body": "new table" })
        );
    }
}

#[test]
fn every_forge_finds_opens_edits_and_reads_pull_requests_on_the_stand_in() {
    use crate::support::forge::Forge as StandIn;
    use orch::domain::states::PrState;
    use orch::forge::NewPull;
    for kind in [ForgeKind::Gitea, ForgeKind::Github] {
        let stand_in = StandIn::start(TOKEN);
        // More than a page of others (Gitea lists without a filter by branch).
        for n in 0..75 {
            stand_in.open_pull("team/web", &format!("other/{n}"), "main", "other");
        }
        let spec = spec(kind.clone(), stand_in.url());
        let http = http();
        let forge = forge::connect(&spec, &http, TOKEN);
        assert_eq!(forge.find_open_pull("feature/T-1").unwrap(), None);
        let new = NewPull {
            title: "T-1: one",
            body: "first",
            head: "feature/T-1",
            base: "main",
            draft: false,
        };
        let made = forge.create_pull(&new).unwrap();
        assert_eq!(made.state, PrState::Open);
        // Asked again, the forge refuses a second one from the same branch.
        assert!(forge.create_pull(&new).is_err());
        let found = forge.find_open_pull("feature/T-1").unwrap().unwrap();
        assert_eq!(found.number, made.number, "{kind:?}");
        let edited = forge.update_pull_body(made.number, "second").unwrap();
        assert_eq!(edited.body, "second");
        stand_in.close_pull("team/web", made.number, false);
        assert_eq!(forge.pull(made.number).unwrap().state, PrState::Closed);
        assert_eq!(forge.find_open_pull("feature/T-1").unwrap(), None);
        let mine = stand_in
            .pulls("team/web")
            .into_iter()
            .filter(|p| p.head == "feature/T-1")
            .count();
        assert_eq!(mine, 1);
    }
}

#[test]
fn every_forge_lists_labelled_issues_over_every_page_without_pull_requests() {
    use crate::support::forge::Forge as StandIn;
    for expect in FORGES {
        let stand_in = StandIn::start(TOKEN);
        let labelled = stand_in.open_issues("team/web", 130, &["orch: ready"]);
        stand_in.open_issue("team/web", "Other", "", &["bug"]);
        stand_in.open_pull("team/web", "feature/x", "main", "A pull request");
        let spec = spec(expect.kind.clone(), stand_in.url());
        let http = http();
        let forge = forge::connect(&spec, &http, TOKEN);
        let issues = forge.labelled_issues("orch: ready").unwrap();
        let numbers: Vec<i64> = issues.iter().map(|i| i.number).collect();
        assert_eq!(numbers, labelled, "{}", expect.label);
        assert_eq!(issues[3].title, "Issue 3");
        assert_eq!(issues[3].body, "Body 3");
        assert_eq!(issues[3].labels, ["orch: ready"]);
        for request in stand_in.server.requests() {
            assert_headers(&request, expect);
            assert!(
                request.path.contains("labels=orch%3A%20ready"),
                "{}",
                request.path
            );
        }
    }
}

#[test]
fn every_forge_maps_a_refused_token_and_a_spent_rate_limit() {
    for expect in FORGES {
        let server = Server::start();
        let reset = chrono::Utc::now().timestamp() + 100;
        server.script([
            Reply::Status(401, r#"{"message":"Bad credentials"}"#.to_string()),
            crate::support::forge::rate_limit_spent(reset),
            Reply::Full(
                403,
                vec![
                    ("X-RateLimit-Reset", reset.to_string()),
                    ("X-RateLimit-Remaining", "4999".to_string()),
                ],
                r#"{"message":"Resource not accessible"}"#.to_string(),
            ),
        ]);
        let spec = spec(expect.kind.clone(), &server.url);
        let http = http();
        let forge = forge::connect(&spec, &http, TOKEN);
        let errors: Vec<Error> = (0..3)
            .map(|_| forge.labelled_issues("orch").unwrap_err())
            .collect();
        assert!(
            matches!(&errors[0], Error::Unauthorized(text) if text.contains("401")),
            "{:?}",
            errors[0]
        );
        assert!(
            matches!(&errors[1], Error::RetryAfter { seconds, .. } if (90..=100).contains(seconds)),
            "{:?}",
            errors[1]
        );
        assert!(matches!(&errors[2], Error::Failed(_)), "{:?}", errors[2]);
    }
}

#[test]
fn every_forge_makes_lists_adds_and_removes_labels_as_its_api_wants() {
    use crate::support::forge::Forge as StandIn;
    for expect in FORGES {
        let stand_in = StandIn::start(TOKEN);
        let issue = stand_in.open_issue("team/web", "Labelled", "", &["bug"]);
        let spec = spec(expect.kind.clone(), stand_in.url());
        let http = http();
        let forge = forge::connect(&spec, &http, TOKEN);
        let made = forge.create_label("orch:queued", "c5def5").unwrap();
        let names: Vec<String> = forge
            .labels()
            .unwrap()
            .into_iter()
            .map(|l| l.name)
            .collect();
        assert_eq!(names, ["bug", "orch:queued"], "{}", expect.label);
        forge.add_issue_label(issue, &made).unwrap();
        let carried: Vec<String> = forge
            .issue_labels(issue)
            .unwrap()
            .into_iter()
            .map(|l| l.name)
            .collect();
        assert_eq!(carried, ["bug", "orch:queued"], "{}", expect.label);
        forge.remove_issue_label(issue, &made).unwrap();
        assert_eq!(stand_in.issue("team/web", issue).unwrap().labels, ["bug"]);
        let requests = stand_in.server.requests();
        let create = requests
            .iter()
            .find(|r| r.method == "POST" && r.path.ends_with("/labels"))
            .unwrap();
        let add = requests
            .iter()
            .find(|r| r.method == "POST" && r.path.contains("/issues/"))
            .unwrap();
        let remove = requests.iter().find(|r| r.method == "DELETE").unwrap();
        match expect.kind {
            ForgeKind::Gitea => {
                // Gitea: the colour with '#', labels named by id in a body and a path.
                assert_eq!(create.json()["color"], "#c5def5");
                assert_eq!(add.json()["labels"], serde_json::json!([made.id]));
                assert!(
                    remove.path.ends_with(&format!("/labels/{}", made.id)),
                    "{}",
                    remove.path
                );
            }
            ForgeKind::Github => {
                // GitHub: six hex digits, labels named by name (percent-encoded in a path).
                assert_eq!(create.json()["color"], "c5def5");
                assert_eq!(add.json()["labels"], serde_json::json!(["orch:queued"]));
                assert!(
                    remove.path.ends_with("/labels/orch%3Aqueued"),
                    "{}",
                    remove.path
                );
            }
        }
        for request in &requests {
            assert_headers(request, expect);
        }
    }
}

#[test]
fn every_forge_reads_a_commits_statuses_and_github_its_check_runs() {
    use crate::support::forge::{CheckRun, Forge as StandIn};
    use orch::domain::ci::CheckState;
    let sha = "0123456789abcdef0123456789abcdef01234567";
    for expect in FORGES {
        let stand_in = StandIn::start(TOKEN);
        let spec = spec(expect.kind.clone(), stand_in.url());
        let http = http();
        let forge = forge::connect(&spec, &http, TOKEN);
        assert!(
            forge.commit_checks(sha).unwrap().is_empty(),
            "{}",
            expect.label
        );
        stand_in.set_status("team/web", sha, "ci/build", "success", "built");
        stand_in.set_status("team/web", sha, "ci/lint", "failure", "2 warnings");
        stand_in.set_status("team/web", sha, "ci/slow", "pending", "");
        stand_in.set_check_run(
            "team/web",
            sha,
            CheckRun {
                name: "tests".to_string(),
                status: "completed".to_string(),
                conclusion: Some("failure".to_string()),
                title: "3 failed".to_string(),
                text: "test a ... FAILED".to_string(),
            },
        );
        let checks = forge.commit_checks(sha).unwrap();
        let seen: Vec<(&str, CheckState)> =
            checks.iter().map(|c| (c.name.as_str(), c.state)).collect();
        let mut expected = vec![
            ("ci/build", CheckState::Success),
            ("ci/lint", CheckState::Failure),
            ("ci/slow", CheckState::Pending),
        ];
        if expect.kind == ForgeKind::Github {
            expected.push(("tests", CheckState::Failure));
            let tests = checks.iter().find(|c| c.name == "tests").unwrap();
            assert_eq!(tests.description, "3 failed");
            assert!(tests.log_tail.contains("test a ... FAILED"), "{tests:?}");
        }
        assert_eq!(seen, expected, "{}", expect.label);
        assert_eq!(checks[1].url, "http://ci.invalid/ci/lint");
        assert_eq!(checks[1].description, "2 warnings");
        for request in stand_in.server.requests() {
            assert_headers(&request, expect);
        }
    }
}

#[test]
fn every_forge_lists_comments_since_a_time_with_their_authors_and_times() {
    use crate::support::forge::Forge as StandIn;
    for expect in FORGES {
        let stand_in = StandIn::start(TOKEN);
        let issue = stand_in.open_issue("team/web", "Issue", "", &[]);
        let first = stand_in.comment_as("team/web", issue, "alice", "/orch approve");
        let second = stand_in.comment_as("team/web", issue, "bob", "hello");
        stand_in.edit_comment("team/web", issue, second, "hello, edited");
        let spec = spec(expect.kind.clone(), stand_in.url());
        let http = http();
        let forge = forge::connect(&spec, &http, TOKEN);
        let since = chrono::Utc::now().timestamp_millis() - 60_000;
        let comments = forge.comments_since(issue, since).unwrap();
        let seen: Vec<(i64, &str, &str)> = comments
            .iter()
            .map(|c| (c.id, c.author.as_str(), c.body.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                (first, "alice", "/orch approve"),
                (second, "bob", "hello, edited")
            ],
            "{}",
            expect.label
        );
        assert!(comments[0].created_at > since && comments[0].updated_at == comments[0].created_at);
        assert!(
            comments[1].updated_at > comments[1].created_at,
            "{:?}",
            comments[1]
        );
        let request = &stand_in.server.requests()[0];
        assert!(
            request.path.contains("/issues/1/comments?since=20"),
            "{}",
            request.path
        );
        assert_headers(request, expect);
    }
}

#[test]
fn every_forge_merges_a_pull_request_and_reports_a_conflict_as_refused() {
    use crate::support::forge::Forge as StandIn;
    use orch::forge::MergeStyle;
    for expect in FORGES {
        let stand_in = StandIn::start(TOKEN);
        let clean = stand_in.open_pull("team/web", "feature/a", "main", "A");
        let conflicted = stand_in.open_pull("team/web", "feature/b", "main", "B");
        stand_in.conflict("team/web", conflicted);
        let spec = spec(expect.kind.clone(), stand_in.url());
        let http = http();
        let forge = forge::connect(&spec, &http, TOKEN);
        forge.merge_pull(clean, MergeStyle::Squash).unwrap();
        assert!(stand_in.pulls("team/web")[0].merged, "{}", expect.label);
        let request = &stand_in.server.requests()[0];
        assert!(
            request.path.ends_with(&format!("/pulls/{clean}/merge")),
            "{}",
            request.path
        );
        assert_headers(request, expect);
        match expect.kind {
            ForgeKind::Gitea => {
                assert_eq!(request.method, "POST");
                assert_eq!(request.json()["Do"], "squash");
            }
            ForgeKind::Github => {
                assert_eq!(request.method, "PUT");
                assert_eq!(request.json()["merge_method"], "squash");
            }
        }
        match forge.merge_pull(conflicted, MergeStyle::Merge).unwrap_err() {
            Error::Refused(text) => assert!(text.contains("Merge conflict"), "{text}"),
            other => panic!("{}: {other:?}", expect.label),
        }
        // Merged already: refused too; a forge error is a failure to try again.
        assert!(matches!(
            forge.merge_pull(clean, MergeStyle::Merge).unwrap_err(),
            Error::Refused(_)
        ));
        stand_in.faults([Reply::Status(500, r#"{"message":"boom"}"#.to_string())]);
        assert!(matches!(
            forge.merge_pull(conflicted, MergeStyle::Merge).unwrap_err(),
            Error::Failed(_)
        ));
    }
}
