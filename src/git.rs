//! Auto-commit after an ok run, through the git CLI: each command an argv (never a shell), in the
//! project's workdir, stdin from /dev/null, in its own process group so a timeout ends its hooks
//! too. Commands that could print a lot are run quietly; what they print is kept up to a cap for
//! the error message.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::parse_author;

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
    /// Each git command's limit.
    pub timeout: Duration,
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
        workdir: request.workdir,
        timeout: request.timeout,
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
    if let Some(author) = request.author {
        let (name, email) = parse_author(author)
            .ok_or_else(|| format!("commit_author {author:?}: expected \"Name <email>\""))?;
        identity.extend([("GIT_AUTHOR_NAME", name), ("GIT_AUTHOR_EMAIL", email)]);
        // A checkout without an identity of its own commits as the author too.
        let own = git.run(&["config", "user.email"], &[])?;
        if !own.status.success() || own.stdout.trim().is_empty() {
            identity.extend([("GIT_COMMITTER_NAME", name), ("GIT_COMMITTER_EMAIL", email)]);
        }
    }
    git.check(&["commit", "--quiet", "-m", request.message], &identity)?;
    let head = git.check(&["rev-parse", "HEAD"], &[])?;
    Ok(Committed::Committed {
        sha: head.stdout.trim().to_string(),
    })
}

struct Git<'a> {
    workdir: &'a Path,
    timeout: Duration,
}

struct Ran {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    args: String,
}

impl Ran {
    fn failure(&self, what: &str) -> String {
        let said = [self.stderr.trim(), self.stdout.trim()]
            .into_iter()
            .find(|s| !s.is_empty())
            .unwrap_or("no output");
        format!("{what} failed ({}): {said}", self.status)
    }
}

impl Git<'_> {
    /// Run git and insist on success.
    fn check(&self, args: &[&str], env: &[(&str, &str)]) -> Result<Ran, String> {
        let ran = self.run(args, env)?;
        if ran.status.success() {
            Ok(ran)
        } else {
            Err(ran.failure(&format!("git {}", ran.args)))
        }
    }

    /// Run git; Err only when it could not be started or ran out of time.
    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Result<Ran, String> {
        let shown = args.join(" ");
        let mut command = Command::new("git");
        command
            .arg("-C")
            .arg(self.workdir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        for var in REPO_VARS {
            command.env_remove(var);
        }
        command.envs(env.iter().copied());
        let mut child = command
            .spawn()
            .map_err(|err| format!("cannot run git {shown}: {err}"))?;
        let stdout = drain(child.stdout.take());
        let stderr = drain(child.stderr.take());
        let status = wait(&mut child, self.timeout).map_err(|err| format!("git {shown}: {err}"))?;
        Ok(Ran {
            status,
            stdout: stdout.join().unwrap_or_default(),
            stderr: stderr.join().unwrap_or_default(),
            args: shown,
        })
    }
}

/// Read a pipe to its end on a thread, keeping the first `OUTPUT_CAP` bytes.
fn drain(pipe: Option<impl Read + Send + 'static>) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let Some(mut pipe) = pipe else {
            return String::new();
        };
        let mut kept = Vec::new();
        let mut buf = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            let room = OUTPUT_CAP.saturating_sub(kept.len());
            kept.extend_from_slice(&buf[..n.min(room)]);
        }
        String::from_utf8_lossy(&kept).into_owned()
    })
}

/// Wait for the child; past `timeout`, kill its whole group (hooks included) and say so.
fn wait(child: &mut Child, timeout: Duration) -> Result<ExitStatus, String> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().map_err(|err| err.to_string())? {
            return Ok(status);
        }
        if Instant::now() >= deadline {
            let group = i32::try_from(child.id()).unwrap_or(0);
            if group > 0 {
                // SAFETY: kill(2) with a negative pid signals the group git leads; no memory is
                // touched.
                unsafe { libc::kill(-group, libc::SIGKILL) };
            }
            let _ = child.wait();
            return Err(format!("timed out after {} s", timeout.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn git(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    }

    fn request<'a>(dir: &'a Path, author: Option<&'a str>) -> CommitRequest<'a> {
        CommitRequest {
            workdir: dir,
            message: "developer(w1): auto-commit from developer run_id=3",
            author,
            timeout: Duration::from_secs(30),
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
