//! `orch notify` against real HTTP servers on 127.0.0.1: Telegram alerts and forge comments
//! delivered from the outbox at least once, never twice by two processes, with retries,
//! backoff, 429s, timeouts and dedup folding — and the tokens nowhere.
//!
//! Messages are queued through the store's own operation (`Store::queue`, as finalize's
//! transaction queues them), on the test's database.

use crate::support;

use std::process::Stdio;
use std::time::{Duration, Instant};

use orch::store::{AlertKind, Message, NewAlert, NewComment};
use serde_json::Value;
use support::http::{Reply, Server};
use support::{now_ms, World};

const BOT_TOKEN: &str = "123456789:AAH-bot_SECRET-token";
const FORGE_TOKEN: &str = "forge-SECRET-token-0123";
const CHAT: &str = "-100777";

/// A world whose alerts go to `server`, with a 1 s timeout and no backoff.
fn telegram_world(server: &Server) -> World {
    let mut world = World::new();
    world
        .set("ORCH_TELEGRAM_API_URL", &server.url)
        .set("ORCH_TELEGRAM_CHAT_ID", CHAT)
        .set("ORCH_TELEGRAM_BOT_TOKEN", BOT_TOKEN)
        .set("ORCH_HTTP_TIMEOUT_SECONDS", "1")
        .set("ORCH_NOTIFY_RETRY_BASE_SECONDS", "0");
    world
}

/// A world whose project `web` has a forge of `kind` at `server`.
fn forge_world(server: &Server, kind: &str) -> World {
    let mut world = World::new();
    world.config(&format!(
        "[projects.web.forge]\nkind = \"{kind}\"\nurl = \"{}\"\nrepo = \"team/web\"\n",
        server.url
    ));
    world
        .set("ORCH_FORGE_TOKEN", FORGE_TOKEN)
        .set("ORCH_HTTP_TIMEOUT_SECONDS", "1")
        .set("ORCH_NOTIFY_RETRY_BASE_SECONDS", "0");
    world
}

fn alert(key: &str, task: &str) -> NewAlert {
    NewAlert {
        kind: AlertKind::SilentFailure,
        dedup_key: key.to_string(),
        project: Some("web".into()),
        task: Some(task.into()),
        stage: Some("developer".into()),
        agent: Some("claude".into()),
        job_id: Some(42),
        run_id: Some(17),
        class: Some("empty".into()),
        attempt: Some(1),
        max_attempts: Some(3),
        reason: "exit 0 but the log holds no result\nsecond line not sent".into(),
    }
}

fn queue_alerts(world: &World, alerts: &[NewAlert]) -> Vec<i64> {
    let messages: Vec<Message> = alerts.iter().cloned().map(Message::Alert).collect();
    queue(world, &messages)
}

/// Queue `messages` as finalize does, each due now; their ids.
fn queue(world: &World, messages: &[Message]) -> Vec<i64> {
    let mut store = world.store();
    messages
        .iter()
        .map(|m| store.queue(m, now_ms()).unwrap())
        .collect()
}

fn comment() -> NewComment {
    NewComment {
        project: "web".into(),
        task: "ORCH-44".into(),
        task_id: 0,
        issue: 7,
        job_id: 42,
        run_id: 17,
        stage: "developer".into(),
        verdict: "ok".into(),
        attempt: 1,
        max_attempts: Some(3),
        cost_usd: Some(0.4213),
        cost_estimated: false,
        input_tokens: Some(1234),
        output_tokens: Some(5678),
        cache_read_tokens: Some(120_000),
        cache_write_tokens: Some(3000),
        turns: Some(12),
        duration_ms: Some(192_000),
        models: vec!["claude-sonnet-4-5".into(), "claude-haiku-4-5".into()],
    }
}

fn queue_comments(world: &World, comments: &[NewComment]) -> Vec<i64> {
    let messages: Vec<Message> = comments.iter().cloned().map(Message::Comment).collect();
    queue(world, &messages)
}

fn notify(world: &World) -> Value {
    world.orch(&["notify", "--json"]).ok().json()
}

/// (state, attempts, last_error, next_attempt_at) of one outbox message.
fn message(world: &World, id: i64) -> (String, i64, Option<String>, i64) {
    world
        .db()
        .query_row(
            "SELECT state, attempts, last_error, next_attempt_at FROM outbox WHERE id = ?1",
            [id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
        )
        .unwrap()
}

fn texts(server: &Server) -> Vec<String> {
    server
        .requests()
        .iter()
        .map(|r| r.json()["text"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn an_alert_is_delivered_exactly_once_when_telegram_is_up() {
    let server = Server::start();
    let world = telegram_world(&server);
    let ids = queue_alerts(&world, &[alert("web/developer", "ORCH-44")]);

    let report = notify(&world);
    assert_eq!(report["sent"], 1, "{report}");
    assert_eq!(report["messages"][0]["outcome"], "sent");
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, format!("/bot{BOT_TOKEN}/sendMessage"));
    assert!(request
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    let body = request.json();
    assert_eq!(body["chat_id"], CHAT);
    let text = body["text"].as_str().unwrap();
    for part in [
        "silent failure",
        "project web · task ORCH-44 · stage developer",
        "class empty · attempt 1/3",
        "reason: exit 0 but the log holds no result",
        "look closer: orch show 42",
    ] {
        assert!(text.contains(part), "{part:?} missing from:\n{text}");
    }
    assert!(!text.contains("second line"), "{text}");
    assert_eq!(message(&world, ids[0]).0, "sent");

    // Nothing more to do: no second delivery.
    let again = notify(&world);
    assert_eq!(again["sent"], 0);
    assert_eq!(again["messages"].as_array().unwrap().len(), 0);
    assert_eq!(server.requests().len(), 1);
    let human = world.orch(&["notify"]).ok();
    assert!(human.stdout.contains("nothing due"), "{}", human.stdout);
}

#[test]
fn messages_are_kept_while_telegram_is_down_and_delivered_later() {
    let server = Server::start();
    server.script([Reply::Status(
        500,
        r#"{"ok":false,"description":"boom"}"#.into(),
    )]);
    let world = telegram_world(&server);
    let ids = queue_alerts(&world, &[alert("a", "T-1"), alert("b", "T-2")]);

    let report = notify(&world);
    assert_eq!(
        (report["sent"].as_i64(), report["failed"].as_i64()),
        (Some(0), Some(1))
    );
    // The failure stops Telegram for this run: one request, not one per message.
    assert_eq!(server.requests().len(), 1);
    let failed = &report["messages"][0];
    assert_eq!(failed["outcome"], "failed");
    assert!(
        failed["error"].as_str().unwrap().contains("HTTP 500: boom"),
        "{failed}"
    );
    let (state, attempts, error, _) = message(&world, ids[0]);
    assert_eq!((state.as_str(), attempts), ("pending", 1));
    assert!(error.unwrap().contains("HTTP 500"));
    assert_eq!(report["pending"], 2);

    let status = world.orch(&["status", "--json"]).ok().json();
    assert_eq!(status["outbox"]["pending"], 2);

    let report = notify(&world);
    assert_eq!(report["sent"], 2, "{report}");
    assert_eq!(server.requests().len(), 3);
    assert_eq!(message(&world, ids[0]).0, "sent");
    assert_eq!(message(&world, ids[1]).0, "sent");
}

#[test]
fn backoff_delays_the_next_attempt() {
    let server = Server::start();
    server.fallback(Reply::Status(502, "{}".into()));
    let mut world = telegram_world(&server);
    world.set("ORCH_NOTIFY_RETRY_BASE_SECONDS", "60");
    let ids = queue_alerts(&world, &[alert("a", "T-1")]);
    let before = now_ms();
    notify(&world);
    let (_, attempts, _, next) = message(&world, ids[0]);
    assert_eq!(attempts, 1);
    assert!(
        next >= before + 60_000 && next < now_ms() + 61_000,
        "{next}"
    );
    // Not due: nothing is sent before its time.
    assert_eq!(notify(&world)["messages"].as_array().unwrap().len(), 0);
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn a_message_dies_after_max_attempts_and_retry_dead_revives_it() {
    let server = Server::start();
    server.fallback(Reply::Status(500, "{}".into()));
    let mut world = telegram_world(&server);
    world.set("ORCH_NOTIFY_MAX_ATTEMPTS", "2");
    let ids = queue_alerts(&world, &[alert("a", "T-1")]);
    assert_eq!(notify(&world)["failed"], 1);
    let report = notify(&world);
    assert_eq!(report["dead"], 1, "{report}");
    assert_eq!(report["dead_total"], 1);
    assert_eq!(message(&world, ids[0]).0, "dead");
    assert_eq!(notify(&world)["messages"].as_array().unwrap().len(), 0);

    let status = world.orch(&["status", "--json"]).ok().json();
    assert_eq!(status["outbox"]["dead"], 1);
    assert_eq!(status["outbox"]["recent_dead"][0]["id"], ids[0]);
    assert!(status["outbox"]["recent_dead"][0]["last_error"]
        .as_str()
        .unwrap()
        .contains("HTTP 500"));
    let human = world.orch(&["status"]).ok().stdout;
    assert!(human.contains("1 dead"), "{human}");
    assert!(human.contains("--retry-dead"), "{human}");

    server.fallback(Reply::Ok);
    let report = world
        .orch(&["notify", "--retry-dead", "--json"])
        .ok()
        .json();
    assert_eq!(
        (report["revived"].as_i64(), report["sent"].as_i64()),
        (Some(1), Some(1))
    );
    assert_eq!(message(&world, ids[0]).0, "sent");
}

#[test]
fn a_429_retry_after_is_honoured_without_counting_an_attempt() {
    let server = Server::start();
    server.script([Reply::RateLimited(1)]);
    let world = telegram_world(&server);
    let ids = queue_alerts(&world, &[alert("a", "T-1"), alert("b", "T-2")]);
    let before = now_ms();
    let report = notify(&world);
    assert_eq!(report["deferred"], 1, "{report}");
    assert_eq!(server.requests().len(), 1);
    for id in &ids {
        let (state, attempts, _, next) = message(&world, *id);
        assert_eq!((state.as_str(), attempts), ("pending", 0));
        assert!(
            next >= before + 1000,
            "message {id} due at {next}, before {before}"
        );
    }
    // Within the wait: nothing is tried.
    assert_eq!(notify(&world)["messages"].as_array().unwrap().len(), 0);
    assert_eq!(server.requests().len(), 1);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(notify(&world)["sent"], 2);
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn a_hanging_server_ends_at_the_timeout() {
    let server = Server::start();
    server.script([Reply::Hang]);
    let world = telegram_world(&server);
    let ids = queue_alerts(&world, &[alert("a", "T-1")]);
    let started = Instant::now();
    let report = notify(&world);
    let took = started.elapsed();
    assert!(took < Duration::from_secs(5), "notify took {took:?}");
    assert_eq!(report["failed"], 1, "{report}");
    let error = report["messages"][0]["error"].as_str().unwrap();
    assert!(error.contains("no answer within 1 s"), "{error}");
    assert_eq!(message(&world, ids[0]).0, "pending");
    // The next run gets through.
    assert_eq!(notify(&world)["sent"], 1);
}

#[test]
fn alerts_of_one_kind_and_key_fold_into_one_per_window() {
    let server = Server::start();
    let mut world = telegram_world(&server);
    world.set("ORCH_ALERT_DEDUP_SECONDS", "3");
    let tasks = ["T-1", "T-2", "T-3", "T-4", "T-5"];
    let mut alerts: Vec<NewAlert> = tasks.iter().map(|t| alert("web/developer", t)).collect();
    alerts.push(alert("api/developer", "T-9"));
    let ids = queue_alerts(&world, &alerts);

    let report = notify(&world);
    assert_eq!(
        (report["sent"].as_i64(), report["folded"].as_i64()),
        (Some(2), Some(4))
    );
    let texts = texts(&server);
    assert_eq!(texts.len(), 2);
    assert!(
        texts[0].ends_with("… and 4 more (T-2, T-3, T-4, T-5)"),
        "{}",
        texts[0]
    );
    assert!(texts[0].contains("task T-1"));
    assert!(!texts[1].contains("more"), "{}", texts[1]);
    let folded: Vec<(String, Option<i64>)> = world
        .db()
        .prepare("SELECT state, folded_into FROM outbox WHERE id IN (?1, ?2, ?3, ?4)")
        .unwrap()
        .query_map([ids[1], ids[2], ids[3], ids[4]], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        folded
            .iter()
            .all(|f| *f == ("folded".to_string(), Some(ids[0]))),
        "{folded:?}"
    );

    // Within the window after the send: held, not sent, visible as pending.
    let late = queue_alerts(&world, &[alert("web/developer", "T-6")])[0];
    assert_eq!(notify(&world)["messages"].as_array().unwrap().len(), 0);
    assert_eq!(server.requests().len(), 2);
    let status = world.orch(&["status", "--json"]).ok().json();
    assert_eq!(status["outbox"]["waiting"][0]["id"], late);
    let (_, _, _, held_until) = message(&world, late);
    let sent_at: i64 = world
        .db()
        .query_row("SELECT sent_at FROM outbox WHERE id = ?1", [ids[0]], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(held_until, sent_at + 3000);
    // Once the window is over, it goes out.
    let wait = (held_until - now_ms() + 100).max(0) as u64;
    std::thread::sleep(Duration::from_millis(wait));
    assert_eq!(notify(&world)["sent"], 1);
    assert_eq!(server.requests().len(), 3);
}

#[test]
fn two_notify_processes_at_once_send_each_message_once() {
    let server = Server::start();
    server.delay(Duration::from_millis(15));
    let world = telegram_world(&server);
    let alerts: Vec<NewAlert> = (0..40)
        .map(|i| alert(&format!("key-{i}"), &format!("T-{i}")))
        .collect();
    queue_alerts(&world, &alerts);

    let children: Vec<_> = (0..2)
        .map(|_| {
            let mut command = world.orch(&["notify", "--json"]).command;
            command
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut sent = 0;
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{out:?}");
        let report: Value = serde_json::from_slice(&out.stdout).unwrap();
        sent += report["sent"].as_i64().unwrap();
    }
    assert_eq!(sent, 40);
    let mut seen: Vec<String> = texts(&server)
        .iter()
        .map(|t| {
            t.split("task ")
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .to_string()
        })
        .collect();
    seen.sort();
    let mut want: Vec<String> = (0..40).map(|i| format!("T-{i}")).collect();
    want.sort();
    assert_eq!(seen, want, "every message exactly once");
    let unsent: i64 = world.sql("SELECT count(*) FROM outbox WHERE state <> 'sent'", []);
    assert_eq!(unsent, 0);
}

#[test]
fn a_crashed_senders_claim_runs_out_and_the_message_goes_out() {
    let server = Server::start();
    let world = telegram_world(&server);
    let ids = queue_alerts(&world, &[alert("a", "T-1"), alert("b", "T-2")]);
    let db = world.db();
    // T-1: claimed by a sender that died; T-2: claimed by one still at work.
    db.execute(
        "UPDATE outbox SET state = 'sending', attempts = 1, claimed_by = 'notify:gone',
                claim_expires_at = ?2 WHERE id = ?1",
        [ids[0], now_ms() - 1],
    )
    .unwrap();
    db.execute(
        "UPDATE outbox SET state = 'sending', attempts = 1, claimed_by = 'notify:busy',
                claim_expires_at = ?2 WHERE id = ?1",
        [ids[1], now_ms() + 600_000],
    )
    .unwrap();
    let report = notify(&world);
    assert_eq!(report["sent"], 1, "{report}");
    assert_eq!(report["messages"][0]["id"], ids[0]);
    assert_eq!(report["messages"][0]["attempts"], 2);
    assert_eq!(message(&world, ids[1]).0, "sending");
    assert_eq!(server.requests().len(), 1);
}

#[test]
fn alerts_wait_visibly_while_telegram_is_not_configured() {
    let server = Server::start();
    let mut world = telegram_world(&server);
    world.unset("ORCH_TELEGRAM_BOT_TOKEN");
    let ids = queue_alerts(&world, &[alert("a", "T-1")]);

    let report = notify(&world);
    assert_eq!(report["messages"].as_array().unwrap().len(), 0);
    assert_eq!(report["waiting"][0]["kind"], "alert");
    assert_eq!(report["waiting"][0]["count"], 1);
    assert!(server.requests().is_empty());
    let (state, attempts, error, _) = message(&world, ids[0]);
    assert_eq!((state.as_str(), attempts), ("pending", 0));
    assert!(error.unwrap().contains("ORCH_TELEGRAM_BOT_TOKEN not set"));

    let status = world.orch(&["status"]).ok().stdout;
    assert!(status.contains("silent_failure web T-1"), "{status}");
    assert!(
        status.contains("alerts are off: ORCH_TELEGRAM_BOT_TOKEN not set"),
        "{status}"
    );
    let config = world.orch(&["config"]).ok().stdout;
    assert!(
        config.contains("alerts: off (ORCH_TELEGRAM_BOT_TOKEN not set)"),
        "{config}"
    );
    let config = world.orch(&["config", "--json"]).ok().json();
    assert_eq!(config["alerts"]["on"], false);
    let human = world.orch(&["notify"]).ok().stdout;
    assert!(human.contains("1 alert(s) wait in the outbox"), "{human}");

    let config = world
        .orch(&["config", "--json"])
        .env("ORCH_TELEGRAM_BOT_TOKEN", BOT_TOKEN)
        .ok()
        .json();
    assert_eq!(config["alerts"]["on"], true);
    let report = world
        .orch(&["notify", "--json"])
        .env("ORCH_TELEGRAM_BOT_TOKEN", BOT_TOKEN)
        .ok()
        .json();
    assert_eq!(report["sent"], 1);
    // A bare world has neither setting.
    let bare = World::new();
    let config = bare.orch(&["config"]).ok().stdout;
    assert!(
        config.contains("alerts: off (ORCH_TELEGRAM_BOT_TOKEN and ORCH_TELEGRAM_CHAT_ID not set)"),
        "{config}"
    );
}

fn assert_comment_table(body: &str) {
    for row in [
        "stage `developer` of `ORCH-44` finished: **ok**",
        "| Stage | developer |",
        "| Run id | 17 |",
        "| Verdict | ok |",
        "| Turns | 12 |",
        "| Duration | 3 min 12 s |",
        "| Cost | $0.4213 |",
        "| Tokens in | 1,234 |",
        "| Tokens out | 5,678 |",
        "| Cache read | 120,000 |",
        "| Cache write | 3,000 |",
        "| Models | `claude-sonnet-4-5`, `claude-haiku-4-5` |",
        "| Attempt | 1/3 |",
    ] {
        assert!(body.contains(row), "{row:?} missing from:\n{body}");
    }
}

#[test]
fn a_usage_comment_goes_to_the_gitea_issue() {
    let server = Server::start();
    server.fallback(Reply::Status(201, r#"{"id":1}"#.into()));
    let world = forge_world(&server, "gitea");
    let ids = queue_comments(&world, &[comment()]);
    let report = notify(&world);
    assert_eq!(report["sent"], 1, "{report}");
    let requests = server.requests();
    assert_eq!(requests.len(), 1);
    let request = &requests[0];
    assert_eq!(request.method, "POST");
    assert_eq!(request.path, "/api/v1/repos/team/web/issues/7/comments");
    assert_eq!(
        request.header("authorization"),
        Some(format!("token {FORGE_TOKEN}").as_str())
    );
    assert!(request
        .header("content-type")
        .unwrap()
        .starts_with("application/json"));
    assert_comment_table(request.json()["body"].as_str().unwrap());
    assert_eq!(message(&world, ids[0]).0, "sent");
}

#[test]
fn a_usage_comment_goes_to_the_github_issue() {
    let server = Server::start();
    server.fallback(Reply::Status(201, r#"{"id":1}"#.into()));
    let world = forge_world(&server, "github");
    queue_comments(&world, &[comment()]);
    assert_eq!(notify(&world)["sent"], 1);
    let request = &server.requests()[0];
    assert_eq!(request.path, "/repos/team/web/issues/7/comments");
    assert_eq!(
        request.header("authorization"),
        Some(format!("Bearer {FORGE_TOKEN}").as_str())
    );
    assert_eq!(
        request.header("accept"),
        Some("application/vnd.github+json")
    );
    assert!(request.header("user-agent").unwrap().starts_with("orch/"));
    assert_comment_table(request.json()["body"].as_str().unwrap());
}

#[test]
fn comments_wait_for_a_token_and_die_without_a_forge() {
    let server = Server::start();
    server.fallback(Reply::Status(201, "{}".into()));
    let mut world = forge_world(&server, "gitea");
    world.unset("ORCH_FORGE_TOKEN");
    let mut elsewhere = comment();
    elsewhere.project = "gone".into();
    let ids = queue_comments(&world, &[comment(), elsewhere]);

    let report = notify(&world);
    assert_eq!(report["waiting"][0]["kind"], "comment");
    assert_eq!(report["waiting"][0]["count"], 2);
    assert_eq!(message(&world, ids[0]).1, 0);
    let config = world.orch(&["config"]).ok().stdout;
    assert!(
        config.contains("usage comments: off (ORCH_FORGE_TOKEN not set)"),
        "{config}"
    );

    let report = world
        .orch(&["notify", "--json"])
        .env("ORCH_FORGE_TOKEN", FORGE_TOKEN)
        .ok()
        .json();
    assert_eq!(
        (report["sent"].as_i64(), report["dead"].as_i64()),
        (Some(1), Some(1))
    );
    let (state, _, error, _) = message(&world, ids[1]);
    assert_eq!(state, "dead");
    assert!(error
        .unwrap()
        .contains("\"gone\" is not in the configuration"));
    assert_eq!(server.requests().len(), 1);
}

/// Every file under `dir`, read as bytes.
fn files_under(dir: &std::path::Path, out: &mut Vec<(std::path::PathBuf, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files_under(&path, out);
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path, bytes));
        }
    }
}

#[test]
fn the_tokens_appear_in_no_output_error_row_or_file() {
    let server = Server::start();
    // A careless server that repeats the request (its path holds the bot token, its headers
    // the forge token) in its error, then a rate limit, a hang, and success.
    server.script([
        Reply::Echo(500),
        Reply::Echo(500),
        Reply::RateLimited(0),
        Reply::Hang,
    ]);
    let mut world = forge_world(&server, "gitea");
    world
        .set("ORCH_TELEGRAM_API_URL", &server.url)
        .set("ORCH_TELEGRAM_CHAT_ID", CHAT)
        .set("ORCH_TELEGRAM_BOT_TOKEN", BOT_TOKEN);
    queue_alerts(&world, &[alert("a", "T-1")]);
    queue_comments(&world, &[comment()]);

    let first = world.orch(&["notify", "--json"]).ok();
    // The deliveries did happen, and the echoed errors were recorded, redacted.
    let echoed = support::dump_db(&world);
    assert!(
        echoed.contains("sendMessage"),
        "the echo was recorded:\n{echoed}"
    );
    assert!(echoed.contains("bot***"), "{echoed}");
    assert!(echoed.contains("token ***"), "{echoed}");
    let mut outputs = vec![format!("{}\n{}", first.stdout, first.stderr)];
    for args in [
        &["notify"][..],
        &["notify", "--json"],
        &["status"],
        &["status", "--json"],
        &["config"],
        &["config", "--json"],
    ] {
        let out = world.orch(args).ok();
        outputs.push(format!("{args:?}\n{}\n{}", out.stdout, out.stderr));
    }
    // Telegram unreachable (nothing listens there): the connection error names no URL.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    queue_alerts(&world, &[alert("c", "T-3")]);
    let out = world
        .orch(&["notify", "--json"])
        .env("ORCH_TELEGRAM_API_URL", &closed)
        .ok();
    outputs.push(format!("{}\n{}", out.stdout, out.stderr));
    assert!(out.stdout.contains("connection failed"), "{}", out.stdout);
    // A bot token that is not one: alerts are off, the value not repeated.
    let out = world
        .orch(&["config"])
        .env("ORCH_TELEGRAM_BOT_TOKEN", format!("{BOT_TOKEN}/x"))
        .ok();
    assert!(out
        .stdout
        .contains("alerts: off (ORCH_TELEGRAM_BOT_TOKEN is not a bot token"));
    outputs.push(out.stdout);

    let requests = server.requests();
    assert!(requests.len() >= 6, "{requests:?}");
    let dump = format!("{echoed}\n{}", support::dump_db(&world));

    let mut files = Vec::new();
    files_under(world.root(), &mut files);
    for token in [BOT_TOKEN, FORGE_TOKEN] {
        for output in &outputs {
            assert!(!output.contains(token), "{token} printed:\n{output}");
        }
        assert!(!dump.contains(token), "{token} in the database:\n{dump}");
        for (path, bytes) in &files {
            let found = bytes.windows(token.len()).any(|w| w == token.as_bytes());
            assert!(!found, "{token} in {}", path.display());
        }
    }
}
