//! `orch demo`: a newcomer's first command. In a directory of its own it makes a project (the
//! main clone of a bare git repository that stands for the remote), a config, two logged-in
//! stand-in agents (one speaks Claude Code's CLI contract, the other Codex CLI's, which runs the
//! reviewer stage), and a loopback forge (`forge`: a minimal Gitea on 127.0.0.1, for the demo's
//! duration); then it walks one task through the whole pipeline — one transient failure and its
//! retry among them — in the task's own worktree and branch, pushed after each stage, with its
//! pull request opened and its body updated as the stages finish, printing each step, the status
//! table, the pull request and the usage comments it posted. Nothing outside its directory (and
//! that port) is read or written: the configuration is built from its own file only, whatever
//! ORCH_* variables the shell holds.

mod forge;

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::app::tick::{self, Event};
use crate::cli::{DemoArgs, GlobalArgs, StatusArgs};
use crate::config::{self, Config, Inputs};
use crate::domain::states::TaskState;
use crate::notify::comment;
use crate::output::{self, Paint};
use crate::store::{now_ms, NewTask};
use crate::{commands, exit, Ctx};

/// The stand-in agents, the same scripts the test suite drives.
const STAND_IN: &str = include_str!("../../../tests/agent/fake-claude");
const CODEX_STAND_IN: &str = include_str!("../../../tests/agent/fake-codex");

/// What the Claude stand-in does on each of its runs, in order: the architect's first attempt
/// fails. The reviewer stage is Codex's.
const SCRIPT: &str = "ok\nerror\nok\nok\nok\nok\n";

/// The stage a second agent runs, to show a pipeline of two.
const CODEX_STAGE: &str = "reviewer";

const TASK: &str = "DEMO-1";

/// The demo forge's repository and token (a demo's, not a secret).
const REPO: &str = "acme/demo";
const DEMO_TOKEN: &str = "demo-forge-token";

pub fn run(ctx: &Ctx, args: &DemoArgs) -> Result<u8> {
    // The demo makes its own database and configuration; a flag that would point elsewhere is
    // refused rather than silently ignored. `--set` applies to the demo's configuration.
    if ctx.global.db.is_some() || ctx.global.config.is_some() {
        return Err(exit::usage(
            "orch demo makes its own database and configuration in its directory: leave out \
             --db and --config (--dir chooses the directory, --set changes a setting)",
        ));
    }
    let dir = match &args.dir {
        Some(dir) => {
            if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
                bail!(
                    "{} is not empty; name a new or empty directory",
                    dir.display()
                );
            }
            dir.clone()
        }
        None => std::env::temp_dir().join(format!("orch-demo-{}-{}", std::process::id(), now_ms())),
    };
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    let kept = args.keep || args.dir.is_some();
    let result = walk(ctx, &dir, kept);
    if !kept {
        if let Err(err) = std::fs::remove_dir_all(&dir) {
            crate::diag!("orch demo: could not remove {}: {err}", dir.display());
        }
    }
    result
}

fn walk(outer: &Ctx, dir: &Path, kept: bool) -> Result<u8> {
    let forge = forge::Forge::start(REPO, DEMO_TOKEN).context("starting the demo's forge")?;
    let ctx = build(outer, dir, &forge)?;
    let paint = ctx.paint();
    let json = outer.json();
    // With --json the steps go into one document at the end, nothing else on stdout.
    let say = |text: String| if json { Ok(()) } else { output::line(text) };
    say(paint.bold(&format!("orch demo in {}", dir.display())))?;
    say(format!(
        "  a project (the main clone of remote.git), a config, two logged-in stand-in agents \
         (claude, and codex for the {CODEX_STAGE}) and a loopback forge at {}; pipeline: {}",
        forge.url,
        ctx.config.stages.join(" → ")
    ))?;
    let mut store = ctx.store()?;
    let now = store.now()?;
    let queued = store.enqueue(
        &NewTask {
            project: "demo",
            key: TASK,
            title: Some("Add a health check endpoint"),
            body: Some("GET /health answers 200 with the build's version.\n"),
            issue: Some(1),
            stage: &ctx.config.stages[0],
            priority: 0,
            max_attempts: 3,
            actor: "demo",
        },
        now,
    )?;
    drop(store);
    say(format!(
        "\n{} job {} ({TASK}, stage {})",
        step(paint, "enqueue"),
        queued.job_id,
        queued.stage
    ))?;

    let mut worked = 0;
    let mut steps = Vec::new();
    for _ in 0..(ctx.config.stages.len() * 3) {
        let request = tick::Request {
            worker: "demo-worker",
            agent: None,
            project: None,
            max_jobs: 1,
            live_status: false,
        };
        let mut printed = Ok(());
        let code = tick::tick(&ctx, &request, &mut |event| {
            if json {
                steps.push(commands::tick::describe(&event));
            } else if printed.is_ok() {
                printed = print_event(paint, &ctx.config, &event);
                // What the delivery did on the forge: the pull request opened or updated.
                if matches!(event, Event::Delivered(_)) {
                    for news in forge.news() {
                        if printed.is_ok() {
                            printed = say(format!("{} {news}", step(paint, "pull")));
                        }
                    }
                }
            }
        })?;
        printed?;
        if code == exit::NOTHING_TO_DO {
            break;
        }
        worked += 1;
    }

    let store = ctx.store()?;
    let comments = store.comments()?;
    let task = store.tasks_by_key(TASK)?.into_iter().next();
    let task_state = task
        .as_ref()
        .map_or_else(|| "missing".to_string(), |t| t.state.to_string());
    let branch = task
        .as_ref()
        .and_then(|t| t.branch.clone())
        .unwrap_or_default();
    let pull = forge.pulls().into_iter().next();
    let posted = forge.comments();
    if json {
        let comments: Vec<_> = comments
            .iter()
            .map(|(id, c)| serde_json::json!({ "id": id, "stage": c.stage, "body": comment::render(c, *id) }))
            .collect();
        let pull_request = pull.as_ref().map(|p| {
            serde_json::json!({
                "number": p.number, "url": p.url, "title": p.title, "head": p.head,
                "base": p.base, "body": p.body,
                "state": task.as_ref().and_then(|t| t.pr_state),
            })
        });
        output::json(&serde_json::json!({
            "dir": dir,
            "kept": kept,
            "task": TASK,
            "task_state": task_state,
            "branch": branch,
            "ticks": worked,
            "steps": steps,
            "pull_request": pull_request,
            "comments": comments,
            "comments_posted": posted.len(),
        }))?;
    } else {
        say(format!("\n{} after {worked} ticks", paint.bold("status")))?;
        commands::status::run(&ctx, &StatusArgs {})?;
        if let Some(pull) = &pull {
            say(format!(
                "\n{} #{} {} ({} → {}) {}\n\n{}",
                paint.bold("pull request"),
                pull.number,
                pull.title,
                pull.head,
                pull.base,
                pull.url,
                pull.body.trim_end()
            ))?;
        }
        say(format!(
            "\n{} ({} posted on the task's issue or, once it had one, its pull request)",
            paint.bold("usage comments"),
            posted.len()
        ))?;
        for (id, comment) in &comments {
            say(format!("\n{}", comment::render(comment, *id)))?;
        }
        say(closing(dir, kept, &branch))?;
    }
    if task_state != TaskState::Complete.as_str() {
        bail!("the demo task ended {task_state}, not complete");
    }
    Ok(exit::OK)
}

/// Where to look next: the kept directory with orch and git, or how to keep it.
fn closing(dir: &Path, kept: bool, branch: &str) -> String {
    if !kept {
        return "\nThe demo's directory was removed. `orch demo --keep` leaves it, with the commands \
                to look at it."
            .to_string();
    }
    let config = dir.join("config.toml");
    let db = dir.join("state/orch.db");
    format!(
        "\nThe demo's files stay in {dir}. Look at them with orch and git:\n  \
         orch --config {config} --db {db} jobs --state done\n  \
         orch --config {config} --db {db} show {TASK}\n  \
         orch --config {config} --db {db} logs 1\n  \
         git -C {remote} log --oneline {branch}",
        dir = dir.display(),
        config = config.display(),
        db = db.display(),
        remote = dir.join("remote.git").display(),
    )
}

fn step(paint: Paint, name: &str) -> String {
    paint.bold(&format!("▸ {name:<9}"))
}

fn print_event(paint: Paint, config: &Config, event: &Event) -> Result<()> {
    let line = match event {
        Event::Delivered(_)
        | Event::Rescued(_)
        | Event::Pruned(_)
        | Event::Synced(_)
        | Event::Gated(_)
        | Event::Stopped(..)
        | Event::Pushed(_) => return Ok(()),
        Event::Recovered(outcome) => format!(
            "{} run {} left by a dead worker: {}",
            step(paint, "recover"),
            outcome.run_id,
            outcome.decision.as_str()
        ),
        Event::Preflight(verdict) => {
            let how = if verdict.cached { "cached" } else { "checked" };
            format!(
                "{} {} (agent {}, {how})",
                step(paint, "preflight"),
                paint.pass("pass"),
                verdict.agent
            )
        }
        Event::AgentHeld { agent, why, .. } => format!(
            "{} {} (agent {agent}): {why}",
            step(paint, "preflight"),
            paint.fail("held")
        ),
        Event::Claimed(job) => format!(
            "{} job {} {} stage {} (agent {}), attempt {}/{}",
            step(paint, "claim"),
            job.job_id,
            job.task,
            paint.bold(&job.stage),
            config.stage_agent(&job.project, &job.stage),
            job.attempt,
            job.max_attempts
        ),
        Event::Ran(run) => format!(
            "{} {}",
            step(paint, "run"),
            crate::commands::run::summary(paint, run)
        ),
        Event::Finalized(outcome) => {
            let what = match (
                outcome.decision.as_str(),
                &outcome.next_stage,
                outcome.retry_at,
            ) {
                ("advanced", Some(next), _) => format!("advanced to {next}"),
                ("requeued", _, Some(at)) => {
                    format!("will retry {}", output::relative(at, now_ms()))
                }
                (decision, _, _) => decision.to_string(),
            };
            let pushed = match &outcome.branch {
                Some(branch) if branch.pushed.is_some() => format!(", pushed {}", branch.branch),
                _ => String::new(),
            };
            format!(
                "{} {} → {what}{}{pushed}",
                step(paint, "finalize"),
                super::paint_class(paint, &outcome.class),
                match &outcome.commit {
                    Some(crate::vcs::git::Committed::Committed { sha }) =>
                        format!(", committed {}", &sha[..sha.len().min(10)]),
                    _ => String::new(),
                }
            )
        }
    };
    output::line(line)
}

/// Lay out the demo's directory and the context that points at nothing else but its forge.
fn build(outer: &Ctx, dir: &Path, forge: &forge::Forge) -> Result<Ctx> {
    let bin = dir.join("bin/claude");
    let codex_bin = dir.join("bin/codex");
    let home = dir.join("home");
    let project = dir.join("project");
    for sub in [
        dir.join("bin"),
        home.join(".claude"),
        home.join(".codex"),
        project.clone(),
        dir.join("state"),
    ] {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&sub)?;
    }
    write(&bin, STAND_IN.as_bytes(), 0o755)?;
    write(&codex_bin, CODEX_STAND_IN.as_bytes(), 0o755)?;
    write(
        &home.join(".codex/auth.json"),
        br#"{"auth_mode":"apikey","OPENAI_API_KEY":"sk-demo","tokens":null,"last_refresh":null}"#,
        0o600,
    )?;
    let expires = now_ms() + 24 * 3_600_000;
    let credentials = format!(
        r#"{{"claudeAiOauth":{{"accessToken":"sk-ant-oat01-demo","refreshToken":"sk-ant-ort01-demo","expiresAt":{expires},"scopes":["user:inference"],"subscriptionType":"demo"}}}}"#
    );
    write(
        &home.join(".claude/.credentials.json"),
        credentials.as_bytes(),
        0o600,
    )?;
    let script = dir.join("agent-script.txt");
    write(&script, SCRIPT.as_bytes(), 0o600)?;
    // The remote (a bare repository) and its main clone, the project's workdir.
    let remote = dir.join("remote.git");
    git(
        dir,
        &[
            "init",
            "--quiet",
            "--bare",
            "--initial-branch=main",
            "remote.git",
        ],
    )?;
    git(&project, &["init", "--quiet", "--initial-branch=main"])?;
    write(&project.join("README.md"), b"# demo\n", 0o644)?;
    git(&project, &["add", "README.md"])?;
    git(&project, &["commit", "--quiet", "-m", "initial commit"])?;
    let remote_path = remote.display().to_string();
    git(&project, &["remote", "add", "origin", &remote_path])?;
    git(&project, &["push", "--quiet", "origin", "main"])?;
    git(&project, &["remote", "set-head", "origin", "main"])?;

    let config = format!(
        r#"# Written by `orch demo`: retries are due at once so the demo never waits.
retry_base_seconds = 0
retry_max_seconds = 0
rate_limit_backoff_seconds = 0
run_timeout_seconds = 60
kill_grace_seconds = 1
preflight_cache_ttl = 300

[projects.demo]
workdir = "{project}"
auto_commit = true
commit_author = "orch demo <demo@orch.invalid>"
forge = {{ kind = "gitea", url = "{forge}", repo = "{repo}" }}

[agents.claude]
bin = "{bin}"
home = "{home}"
env = {{ FAKE_CLAUDE_SCRIPT = "{script}", FAKE_CLAUDE_SLEEP = "0.2", FAKE_CLAUDE_TOUCH = "CHANGES.md" }}

# Codex reports no cost: this price table makes an estimate of its tokens.
[agents.codex]
bin = "{codex_bin}"
home = "{home}"
env = {{ FAKE_CODEX_SLEEP = "0.2", FAKE_CODEX_TOUCH = "CHANGES.md" }}
prices = {{ input_per_mtok = 1.25, cached_input_per_mtok = 0.125, output_per_mtok = 10.0 }}

[stages.{CODEX_STAGE}]
agent = "codex"
"#,
        project = project.display(),
        bin = bin.display(),
        codex_bin = codex_bin.display(),
        home = home.display(),
        script = script.display(),
        forge = forge.url,
        repo = forge.repo(),
    );
    let config_path = dir.join("config.toml");
    write(&config_path, config.as_bytes(), 0o600)?;
    let global = GlobalArgs {
        config: Some(config_path),
        db: Some(dir.join("state/orch.db")),
        color: outer.global.color,
        set: outer.global.set.clone(),
        json: outer.global.json,
    };
    let home_text = home.display().to_string();
    let token = forge.token().to_string();
    let forge_token = config::FORGE_TOKEN.env();
    let config = Config::load_from(&Inputs {
        global: &global.overrides(),
        env: &|name| (name == "HOME").then(|| home_text.clone()),
        // No secret of the caller's reaches the demo: its forge takes the demo's own token.
        secret: &|name| (name == forge_token).then(|| crate::secrets::Found::Value(token.clone())),
    })?;
    Ok(Ctx { global, config })
}

fn write(path: &PathBuf, bytes: &[u8], mode: u32) -> Result<()> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    std::io::Write::write_all(&mut file, bytes)?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

fn git(dir: &Path, args: &[&str]) -> Result<()> {
    let out = crate::process::command("git")
        .args([
            "-c",
            "user.name=orch demo",
            "-c",
            "user.email=demo@orch.invalid",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .stdin(std::process::Stdio::null())
        .output()
        .context("running git (the demo's project is a git repository: install git)")?;
    if !out.status.success() {
        bail!(
            "git {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}
