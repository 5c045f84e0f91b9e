//! The one way orch runs git (`Git`), and auto-commit after an ok run. Each command is an argv
//! (never a shell) from `process::command` (stdin from /dev/null, no secret in its environment,
//! its own process group so a timeout ends its hooks too); what git prints is kept up to a cap,
//! redacted, for the error message. `worktree` and `push` run git through `Git` too.
//!
//! The checkout is the agent's, and the agent may be steered by the task's text: it can write
//! `.git/hooks/*` or `core.fsmonitor` into the repository's config. orch's own git commands run
//! with `core.fsmonitor=false` always, and with `core.hooksPath=/dev/null` unless the operator
//! sets `git_hooks = true`. Either way nothing git starts can see a token: none is in its
//! environment, and orch's memory is closed to it (`crate::secrets`).

use std::path::Path;
use std::process::ExitStatus;
use std::time::Duration;

use serde::Serialize;

use crate::config::parse_author;
use crate::process;

/// What a failed git command printed, kept for the message.
const OUTPUT_CAP: usize = 16 * 1024;

/// Variables of orch's environment that would point git at another repository.
const REPO_VARS: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_COMMON_DIR",
    "GIT_NAMESPACE",
];

pub struct CommitRequest<'a> {
    pub workdir: &'a Path,
    pub message: &'a str,
    /// `Name <email>`; the repository's own identity when None.
    pub author: Option<&'a str>,
    /// `Name <email>` to commit as when neither `author` nor the repository names anyone (a task's
    /// worktree must commit whatever git's configuration lacks).
    pub fallback_author: Option<&'a str>,
    /// Each git command's limit.
    pub timeout: Duration,
    /// Run the repository's hooks (`git_hooks`); off, git is told `core.hooksPath=/dev/null`.
    pub hooks: bool,
}

/// How an auto-commit went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Committed {
    NotARepository,
    NoChanges,
    Committed { sha: String },
    Failed { error: String },
}

/// The auto-commit message: `<stage>(<worker>): auto-commit from <stage> run_id=<id>`.
pub fn commit_message(stage: &str, worker: &str, run_id: i64) -> String {
    format!("{stage}({worker}): auto-commit from {stage} run_id={run_id}")
}

/// Stage every change under the workdir and commit it, when the workdir is in a git work tree
/// and something changed. Never an Err: a failure is the outcome `Failed`, with git's words.
pub fn auto_commit(request: &CommitRequest) -> Committed {
    match try_commit(request) {
        Ok(done) => done,
        Err(error) => Committed::Failed { error },
    }
}

fn try_commit(request: &CommitRequest) -> Result<Committed, String> {
    let git = Git {
        dir: request.workdir,
        timeout: request.timeout,
        hooks: request.hooks,
    };
    let inside = git.run(&["rev-parse", "--is-inside-work-tree"], &[])?;
    if !inside.status.success() || inside.stdout.trim() != "true" {
        return Ok(Committed::NotARepository);
    }
    git.check(&["add", "-A", "--", "."], &[])?;
    // Exit 1: the index differs from HEAD (or there is no HEAD yet and something is staged).
    let staged = git.run(&["diff", "--cached", "--quiet"], &[])?;
    match staged.status.code() {
        Some(0) => return Ok(Committed::NoChanges),
        Some(1) => {}
        _ => return Err(staged.failure("git diff --cached --quiet")),
    }
    let mut identity: Vec<(&str, &str)> = Vec::new();
    let own = git.run(&["config", "user.email"], &[])?;
    let has_own = own.status.success() && !own.stdout.trim().is_empty();
    let author = match (request.author, request.fallback_author) {
        (Some(author), _) => Some(author),
        (None, Some(fallback)) if !has_own && std::env::var_os("EMAIL").is_none() => Some(fallback),
        _ => None,
    };
    if let Some(author) = author {
        let (name, email) = parse_author(author)
            .ok_or_else(|| format!("commit_author {author:?}: expected \"Name <email>\""))?;
        identity.extend([("GIT_AUTHOR_NAME", name), ("GIT_AUTHOR_EMAIL", email)]);
        // A checkout without an identity of its own commits as the author too.
        if !has_own {
            identity.extend([("GIT_COMMITTER_NAME", name), ("GIT_COMMITTER_EMAIL", email)]);
        }
    }
    git.check(&["commit", "--quiet", "-m", request.message], &identity)?;
    let head = git.check(&["rev-parse", "HEAD"], &[])?;
    Ok(Committed::Committed {
        sha: head.stdout.trim().to_string(),
    })
}

/// git, run in `dir`: every git command orch runs goes through here.
pub struct Git<'a> {
    pub dir: &'a Path,
    /// Each command's limit.
    pub timeout: Duration,
    /// Run the repository's hooks (`git_hooks`); off, git is told `core.hooksPath=/dev/null`.
    pub hooks: bool,
}

/// How a git command ended and what it printed (redacted, capped).
pub struct Ran {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
    pub args: String,
}

impl Ran {
    pub fn failure(&self, what: &str) -> String {
        let said = [self.stderr.trim(), self.stdout.trim()]
            .into_iter()
            .find(|s| !s.is_empty())
            .unwrap_or("no output");
        format!("{what} failed ({}): {said}", self.status)
    }
}

impl<'a> Git<'a> {
    /// git in `dir`, hooks off.
    pub fn new(dir: &'a Path, timeout: Duration) -> Git<'a> {
        Git {
            dir,
            timeout,
            hooks: false,
        }
    }

    /// Run git and insist on success.
    pub fn check(&self, args: &[&str], env: &[(&str, &str)]) -> Result<Ran, String> {
        let ran = self.run(args, env)?;
        if ran.status.success() {
            Ok(ran)
        } else {
            Err(ran.failure(&format!("git {}", ran.args)))
        }
    }

    /// Run git, insist on success, and return what it printed on stdout, trimmed.
    pub fn text(&self, args: &[&str]) -> Result<String, String> {
        self.check(args, &[])
            .map(|ran| ran.stdout.trim().to_string())
    }

    /// Run git; Err only when it could not be started or ran out of time.
    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Result<Ran, String> {
        self.run_with(args, env, &[], |_| {})
    }

    /// Run git with `setup` applied to its command last (extra variables, a descriptor to
    /// inherit); `secrets` are masked in what it printed besides the ones orch holds.
    pub fn run_with(
        &self,
        args: &[&str],
        env: &[(&str, &str)],
        secrets: &[&str],
        setup: impl FnOnce(&mut std::process::Command),
    ) -> Result<Ran, String> {
        let shown = args.join(" ");
        let mut command = process::command("git");
        command.arg("-C").arg(self.dir);
        // The checkout is the agent's: what it wrote into .git/config or .git/hooks must not run
        // as part of orch's own commands unless the operator asked for hooks. Nor does orch's git
        // start a garbage collection in a repository other processes use at the same time.
        command.args(["-c", "core.fsmonitor=false", "-c", "gc.auto=0"]);
        if !self.hooks {
            command.args(["-c", "core.hooksPath=/dev/null"]);
        }
        command.args(args);
        for var in REPO_VARS {
            command.env_remove(var);
        }
        // Never wait for a person to type a password.
        command.env("GIT_TERMINAL_PROMPT", "0");
        command.envs(env.iter().copied());
        setup(&mut command);
        let captured =
            process::capture(command, self.timeout, OUTPUT_CAP).map_err(
                |failure| match failure {
                    process::Failure::Spawn(err) => format!("cannot run git {shown}: {err}"),
                    process::Failure::TimedOut => {
                        format!("git {shown}: timed out after {} s", self.timeout.as_secs())
                    }
                },
            )?;
        let mut masked = crate::secrets::values();
        masked.extend(secrets.iter().map(|s| s.to_string()));
        let text =
            |bytes: &[u8]| crate::redact::redact_with(&String::from_utf8_lossy(bytes), &masked);
        Ok(Ran {
            status: captured.status,
            stdout: text(&captured.stdout),
            stderr: text(&captured.stderr),
            args: shown,
        })
    }
}

/// git in `dir` for a unit test, as a person would run it (an identity on the command line
/// only); panics when it fails.
#[cfg(test)]
pub(crate) fn git_for_test(dir: &Path, args: &[&str]) {
    let ok = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=t", "-c", "user.email=t@example.org"])
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap()
        .success();
    assert!(ok, "git {args:?}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        git_for_test(dir, args)
    }

    fn request<'a>(dir: &'a Path, author: Option<&'a str>) -> CommitRequest<'a> {
        CommitRequest {
            workdir: dir,
            message: "developer(w1): auto-commit from developer run_id=3",
            author,
            fallback_author: None,
            timeout: Duration::from_secs(30),
            hooks: false,
        }
    }

    #[test]
    fn message_names_stage_worker_and_run() {
        assert_eq!(
            commit_message("tester", "host-1", 42),
            "tester(host-1): auto-commit from tester run_id=42"
        );
    }

    #[test]
    fn commits_changes_only_in_a_repository() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            auto_commit(&request(dir.path(), None)),
            Committed::NotARepository
        );
        git(dir.path(), &["init", "-q"]);
        // No identity anywhere: the configured author commits as itself.
        std::fs::write(dir.path().join("a.txt"), "a").unwrap();
        let done = auto_commit(&request(dir.path(), Some("orch bot <bot@example.org>")));
        assert!(
            matches!(done, Committed::Committed { ref sha } if sha.len() == 40),
            "{done:?}"
        );
        assert_eq!(
            auto_commit(&request(dir.path(), None)),
            Committed::NoChanges
        );
    }
}
