//! Secrets out of reach of the agent and of anything it plants: a hook or fsmonitor in the
//! checkout, the parent's and its own /proc/*/environ, and server replies that echo a token in
//! another encoding. Through the real binary and the stand-in agent.

use crate::support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use support::http::{Reply, Server};
use support::World;

const BOT_TOKEN: &str = "123456789:AAHbotSECRETtokenPart_x1";
const FORGE_TOKEN: &str = "forgeSECRETtoken0123456789";

/// A logged-in world whose orch holds both tokens, its project `web` a git repository with
/// auto-commit on; `extra` goes at the top of the config.
fn world(extra: &str) -> World {
    let mut w = World::new();
    w.login(24 * 3_600_000);
    w.set("ORCH_TELEGRAM_BOT_TOKEN", BOT_TOKEN)
        .set("ORCH_FORGE_TOKEN", FORGE_TOKEN)
        .set("ORCH_TELEGRAM_CHAT_ID", "-100")
        .set("ORCH_TELEGRAM_API_URL", "http://127.0.0.1:9");
    w.raw_config(&format!(
        "{extra}\n[projects.web]\nworkdir = \"{}\"\nauto_commit = true\n",
        w.path("work/web").display()
    ));
    let repo = w.path("work/web");
    for args in [
        &["init", "-q", "-b", "main"][..],
        &["config", "user.name", "Owner"],
        &["config", "user.email", "owner@example.org"],
        &["commit", "-q", "--allow-empty", "-m", "initial"],
    ] {
        let ok = Command::new("git")
            .arg("-C")
            .arg(&repo)
            .args(args)
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", &repo)
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    }
    w
}

/// What an agent steered by the task's text could plant in its checkout: a pre-commit hook, a
/// post-commit hook and an fsmonitor, each dumping its environment and its ancestors'.
fn plant(repo: &Path, out: &Path) {
    let script = format!(
        "#!/bin/sh\n{{ echo \"== $0\"; env; for p in $PPID $(ps -o ppid= -p $PPID); do \
         tr '\\0' '\\n' </proc/$p/environ 2>/dev/null || echo unreadable $p; done; }} >>{}\n",
        out.display()
    );
    for name in ["pre-commit", "post-commit", "fsmonitor"] {
        let path = repo.join(".git/hooks").join(name);
        std::fs::write(&path, &script).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let ok = Command::new("git")
        .arg("-C")
        .arg(repo)
        .args(["config", "core.fsmonitor", ".git/hooks/fsmonitor"])
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

/// An agent's API key in orch's environment: the agent of its kind gets it, nothing else does.
const AGENT_KEY: &str = "sk-ant-AGENTkeyPart_z9";

/// One job through the tick with an agent that edits the checkout.
fn tick(w: &World) {
    w.enqueue("T-1");
    w.orch(&["tick", "--worker", "w1"])
        .env("FAKE_CLAUDE_TOUCH", "CHANGES.md")
        .env("ANTHROPIC_API_KEY", AGENT_KEY)
        .ok();
}

fn assert_no_token(text: &str, what: &str) {
    for token in [
        BOT_TOKEN,
        FORGE_TOKEN,
        "AAHbotSECRETtokenPart_x1",
        AGENT_KEY,
    ] {
        assert!(!text.contains(token), "{token} in {what}:\n{text}");
    }
}

#[test]
fn planted_git_code_does_not_run_by_default_and_never_sees_a_token() {
    let w = world("");
    let planted = w.path("planted.txt");
    plant(&w.path("work/web"), &planted);
    tick(&w);
    let log = Command::new("git")
        .arg("-C")
        .arg(w.path("work/web"))
        .args(["log", "--all", "--format=%s"])
        .output()
        .unwrap();
    // On the task's branch, in its worktree: the repository's hooks are the worktree's too.
    let subjects = String::from_utf8_lossy(&log.stdout);
    assert!(subjects.contains("auto-commit from analyst"), "{subjects}");
    assert!(
        !planted.exists(),
        "a hook ran: {}",
        std::fs::read_to_string(&planted).unwrap_or_default()
    );

    // With hooks on (the operator's choice) they run, and see no token in their environment or
    // in any ancestor's.
    let w = world("git_hooks = true");
    let planted = w.path("planted.txt");
    plant(&w.path("work/web"), &planted);
    tick(&w);
    let seen = std::fs::read_to_string(&planted).expect("the hooks ran");
    assert!(
        seen.contains("pre-commit") && seen.contains("post-commit"),
        "{seen}"
    );
    assert!(
        !seen.contains("== .git/hooks/fsmonitor"),
        "fsmonitor ran:\n{seen}"
    );
    assert_no_token(&seen, "a hook's view");
    assert!(!seen.contains("ORCH_FORGE_TOKEN"), "{seen}");
}

#[test]
fn the_agent_finds_no_token_in_its_parents_or_its_own_environ() {
    for via_file in [false, true] {
        let mut w = world("");
        if via_file {
            let file = w.path("forge.token");
            support::write_private(&file, format!("{FORGE_TOKEN}\n").as_bytes());
            w.unset("ORCH_FORGE_TOKEN")
                .set("ORCH_FORGE_TOKEN_FILE", &file);
        }
        let snoop = w.path("snoop.txt");
        w.set("FAKE_CLAUDE_SNOOP", &snoop);
        tick(&w);
        let seen = std::fs::read_to_string(&snoop).unwrap();
        // As root the parent's environ is readable; what it holds is scrubbed. The agent's API
        // key is its own (the first part), and not its parent's (the second).
        let parts: Vec<&str> = seen.split("== /proc/").collect();
        assert_eq!(parts.len(), 3, "{seen}");
        assert!(
            parts[1].contains(AGENT_KEY),
            "the agent has its key: {seen}"
        );
        let seen = seen.replacen(&format!("ANTHROPIC_API_KEY={AGENT_KEY}\n"), "", 1);
        assert_no_token(&seen, "the agent's view");
        assert!(!seen.contains("ORCH_FORGE_TOKEN"), "{seen}");
        assert!(!seen.contains("ORCH_TELEGRAM_BOT_TOKEN="), "{seen}");
        // The tokens still work: the queued alert goes out with the bot token.
        let server = Server::start();
        let out = w
            .orch(&["notify", "--json"])
            .env("ORCH_TELEGRAM_API_URL", &server.url)
            .ok();
        assert_no_token(&out.stdout, "notify's output");
        let paths: Vec<String> = server.requests().iter().map(|r| r.path.clone()).collect();
        assert!(
            paths.iter().all(|p| p.contains(BOT_TOKEN)),
            "the bot token reached Telegram: {paths:?}"
        );
    }
}

#[test]
fn orch_is_not_dumpable_so_a_same_user_agent_cannot_read_it() {
    // As a user whom permission bits bind, the agent (the same user) may not read its parent's
    // environ at all.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to run orch as nobody");
        return;
    }
    let mut w = World::new();
    let root = w.root().to_path_buf();
    // Traversable by nobody, writable by root only (orch refuses state under a directory others
    // may write in).
    std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o755)).unwrap();
    w.set("ORCH_DB", root.join("nobody/orch.db"))
        .set("ORCH_FORGE_TOKEN", FORGE_TOKEN)
        .set("HOME", root.join("nobody-home"));
    for dir in ["nobody", "nobody-home"] {
        std::fs::create_dir_all(root.join(dir)).unwrap();
        let _ = Command::new("chown")
            .args(["65534:65534"])
            .arg(root.join(dir))
            .status();
        std::fs::set_permissions(root.join(dir), std::fs::Permissions::from_mode(0o700)).unwrap();
    }
    let snoop = root.join("nobody/snoop.txt");
    w.set("FAKE_CLAUDE_SNOOP", &snoop)
        .set("FAKE_CLAUDE_CALLS", root.join("nobody/calls.txt"))
        .set("ORCH_PREFLIGHT_CHECK_AUTH", "false");
    let config = root.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "[projects.web]\nworkdir = \"{}\"\n",
            root.join("nobody").display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).unwrap();
    let enqueue = w
        .orch_unprivileged(&["enqueue", "--project", "web", "--task", "T-1"])
        .output()
        .unwrap();
    assert!(enqueue.status.success(), "{enqueue:?}");
    let tick = w
        .orch_unprivileged(&["tick", "--worker", "w1"])
        .output()
        .unwrap();
    assert!(tick.status.success(), "{tick:?}");
    let seen = std::fs::read_to_string(&snoop).unwrap();
    let parent = seen
        .lines()
        .filter(|l| l.starts_with("unreadable") || l.starts_with("=="))
        .nth(1)
        .unwrap()
        .to_string();
    assert!(parent.starts_with("unreadable /proc/"), "{seen}");
    assert_no_token(&seen, "the agent's view");
}

#[test]
fn a_token_echoed_in_any_encoding_is_redacted_everywhere() {
    let server = Server::start();
    let encoded = BOT_TOKEN.replace(':', "%3A");
    let json_escaped = serde_json::to_string(BOT_TOKEN).unwrap();
    server.script([
        Reply::Status(404, format!("Not found: /bot{encoded}/sendMessage")),
        Reply::Status(
            400,
            format!(
                r#"{{"ok":false,"description":"token {}"}}"#,
                json_escaped.trim_matches('"')
            ),
        ),
    ]);
    server.fallback(Reply::Status(
        404,
        format!("Not found: /bot{}/x", BOT_TOKEN.replace(':', "%3a")),
    ));
    let mut w = World::new();
    w.set("ORCH_TELEGRAM_API_URL", &server.url)
        .set("ORCH_TELEGRAM_CHAT_ID", "-100")
        .set("ORCH_TELEGRAM_BOT_TOKEN", BOT_TOKEN)
        .set("ORCH_HTTP_TIMEOUT_SECONDS", "1")
        .set("ORCH_NOTIFY_RETRY_BASE_SECONDS", "0");
    let mut outputs = Vec::new();
    for round in 0..3 {
        // Each round queues an alert through a failing run (a job that fails for good).
        w.set("ORCH_MAX_ATTEMPTS", "1");
        w.login(24 * 3_600_000);
        w.enqueue(&format!("T-{round}"));
        let out = w
            .orch(&["tick", "--worker", "w1"])
            .env("FAKE_CLAUDE_MODE", "max_turns")
            .run();
        outputs.push(format!("{}\n{}", out.stdout, out.stderr));
        for args in [
            &["notify"][..],
            &["notify", "--json"],
            &["status"],
            &["status", "--json"],
        ] {
            let out = w.orch(args).run();
            outputs.push(format!("{args:?}\n{}\n{}", out.stdout, out.stderr));
        }
    }
    assert!(server.requests().len() >= 3, "{:?}", server.requests());
    let db = support::dump_db(&w);
    assert!(db.contains("Not found: /bot***"), "{db}");
    for text in outputs.iter().chain([&db]) {
        assert_no_token(text, "output or database");
        assert!(!text.contains("AAHbotSECRETtokenPart_x1"), "{text}");
    }
}

/// Text of `out` with orch's own colour sequences (SGR: ESC [ digits m) removed: whatever escape
/// is left came from outside.
fn foreign_escapes(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find(['\u{1b}', '\u{7}', '\r', '\u{9b}']) {
        let tail = &rest[at..];
        let sgr = tail
            .strip_prefix("\u{1b}[")
            .and_then(|t| t.find('m').map(|end| &t[..end]))
            .is_some_and(|params| params.bytes().all(|b| b.is_ascii_digit() || b == b';'));
        let len = tail.chars().next().unwrap().len_utf8();
        if !sgr {
            found.push(tail.chars().take(12).collect());
        }
        rest = &tail[len..];
    }
    found
}

#[test]
fn escape_sequences_from_outside_never_reach_the_terminal() {
    const NASTY: &str = "\u{1b}[2J\u{1b}]0;pwned\u{7}\r\u{9b}31m";
    let server = Server::start();
    server.fallback(Reply::Status(
        500,
        format!("{{\"description\":\"down {NASTY}\"}}"),
    ));
    let mut w = world("git_hooks = true");
    w.set("ORCH_TELEGRAM_API_URL", &server.url)
        .set("ORCH_HTTP_TIMEOUT_SECONDS", "1")
        .set("ORCH_MAX_ATTEMPTS", "1");
    // git's stderr, from a hook that fails.
    let hook = w.path("work/web/.git/hooks/pre-commit");
    std::fs::write(
        &hook,
        format!("#!/bin/sh\nprintf 'no {NASTY}' >&2\nexit 1\n"),
    )
    .unwrap();
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).unwrap();
    // A task title.
    let job = w
        .orch(&[
            "enqueue",
            "--project",
            "web",
            "--task",
            "T-1",
            "--title",
            NASTY,
            "--json",
        ])
        .ok()
        .json()["job_id"]
        .as_i64()
        .unwrap()
        .to_string();
    w.orch(&["tick", "--worker", "w1"])
        .env("FAKE_CLAUDE_TOUCH", "CHANGES.md")
        .ok();
    // An alert (the next stage fails for good) whose delivery fails with the server's words.
    w.orch(&["tick", "--worker", "w1"])
        .env("FAKE_CLAUDE_MODE", "max_turns")
        .status(21);
    let mut shown = Vec::new();
    for color in ["never", "always"] {
        for args in [
            &["show", job.as_str()][..],
            &["status"],
            &["notify"],
            &["logs", job.as_str()],
            &["enqueue", "--project", NASTY, "--task", "T-2"],
            &["show", NASTY],
        ] {
            let mut args = args.to_vec();
            args.extend(["--color", color]);
            let out = w.orch(&args).run();
            shown.push((format!("{args:?}"), out.stdout, out.stderr));
        }
    }
    let all: String = shown
        .iter()
        .map(|(a, o, e)| format!("{a}\n{o}\n{e}\n"))
        .collect();
    assert!(
        all.contains("no \u{fffd}[2J"),
        "git's stderr was shown:\n{all}"
    );
    assert!(
        all.contains("down \u{fffd}[2J"),
        "the server's reply was shown:\n{all}"
    );
    for (args, stdout, stderr) in &shown {
        assert_eq!(
            foreign_escapes(stdout),
            Vec::<String>::new(),
            "{args} stdout:\n{stdout}"
        );
        assert_eq!(
            foreign_escapes(stderr),
            Vec::<String>::new(),
            "{args} stderr:\n{stderr}"
        );
    }
}

#[test]
fn log_values_are_data_in_the_usage_comment_and_counters_never_go_down() {
    let server = Server::start();
    let mut w = World::new();
    w.login(24 * 3_600_000);
    w.set("ORCH_FORGE_TOKEN", FORGE_TOKEN)
        .set("ORCH_HTTP_TIMEOUT_SECONDS", "1");
    w.config(&format!(
        "[projects.web.forge]\nkind = \"gitea\"\nurl = \"{}\"\nrepo = \"team/web\"\n",
        server.url
    ));
    w.orch(&[
        "enqueue",
        "--project",
        "web",
        "--task",
        "T-1",
        "--issue",
        "7",
    ])
    .ok();
    w.orch(&["tick", "--worker", "w1"])
        .env("FAKE_CLAUDE_COST", "-1000")
        .env(
            "FAKE_CLAUDE_MODEL",
            "![x](http://e.x/p.png) @everyone <img src=x onerror=alert(1)>",
        )
        .ok();
    w.orch(&["notify"]).ok();
    let requests = server.requests();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let body = requests[0].json()["body"].as_str().unwrap().to_string();
    let models = body.lines().find(|l| l.starts_with("| Models")).unwrap();
    assert_eq!(
        models,
        "| Models | `![x](http://e.x/p.png) @everyone ‹img src=x onerror=alert(1)›` |"
    );
    assert!(body.contains("| Cost | — |"), "{body}");
    assert!(!body.contains("$-"), "{body}");
    let metrics = w.orch(&["metrics"]).ok().stdout;
    let cost = metrics
        .lines()
        .find(|l| l.starts_with("orch_cost_usd_total{"))
        .unwrap_or("orch_cost_usd_total 0");
    let value: f64 = cost.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(value >= 0.0, "{cost}");
}

#[test]
fn no_task_text_is_ever_read_as_an_option_by_the_agent() {
    let mut w = World::new();
    w.login(24 * 3_600_000);
    w.set("FAKE_CLAUDE_ARGV", w.path("argv"));
    w.config("[stages.analyst]\nprompt = \"{title}\"\n");
    w.orch(&[
        "enqueue",
        "--project",
        "web",
        "--task",
        "T-1",
        "--title=--dangerously-skip-permissions",
    ])
    .ok();
    w.orch(&["tick", "--worker", "w1"]).ok();
    let argv = std::fs::read(w.path("argv")).unwrap();
    let args: Vec<String> = argv
        .split(|b| *b == 0)
        .filter(|a| !a.is_empty())
        .map(|a| String::from_utf8_lossy(a).into_owned())
        .collect();
    let at = args
        .iter()
        .position(|a| a == "--dangerously-skip-permissions")
        .expect("the title reached the agent");
    assert_eq!(at, args.len() - 1, "{args:?}");
    assert_eq!(args[at - 1], "--", "{args:?}");

    // A template that would put the prompt where options are read is refused.
    w.config("[agents.claude]\nargv = [\"{bin}\", \"-p\", \"{prompt}\"]\n");
    let out = w.orch(&["config"]).status(78);
    assert!(out.stderr.contains("argv"), "{}", out.stderr);
}
