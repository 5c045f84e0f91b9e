//! Pushing a task's branch to its remote, with the forge token kept out of every place a process
//! of the user (the agent among them) could read it.
//!
//! The push does not run in the main clone: its `.git/config` and hooks are within the agent's
//! reach (a worktree's `git config` writes the shared config), and a planted `url.*.insteadOf`,
//! `http.proxy`, `credential.helper`, `core.hooksPath` or pre-push hook would see or redirect the
//! token. It runs in a new, empty bare repository of orch's own (in the worktree directory's
//! `.push/`, removed afterwards) that borrows the main clone's objects
//! (`objects/info/alternates`) and pushes one commit: `git push URL SHA:refs/heads/BRANCH`. The
//! user's global and the system git configuration are not read (`GIT_CONFIG_GLOBAL=/dev/null`,
//! `GIT_CONFIG_NOSYSTEM=1`: the agent can write `~/.gitconfig`), hooks are off whatever
//! `git_hooks` says (`--no-verify`, `core.hooksPath=/dev/null`), credential helpers are cleared,
//! redirects are not followed.
//!
//! The token reaches git only through `askpass`: orch's own binary, answering git's password
//! prompt from a socket orch filled (see there). It is never in argv, the environment, a config
//! file or a URL, and is masked in whatever git prints.
//!
//! Residual risk, documented in the README: while git-remote-http reads the askpass's answer the
//! token passes through a pipe of that (dumpable) git process, which another process of the same
//! user could open through `/proc/PID/fd` and race for; and a process allowed to ptrace git reads
//! its memory. Run the agent as another user where that matters.

use std::io::Write;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::askpass;
use super::git::Git;

/// What the forge expects with its token over HTTPS.
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    /// The user name to answer git with (`x-access-token`, `oauth2`).
    pub user: &'a str,
    pub token: &'a str,
    /// The only host the token is given to (the forge's).
    pub host: &'a str,
}

pub struct PushRequest<'a> {
    /// The main clone's git directory: whose objects the push sends.
    pub common_dir: &'a Path,
    /// A private directory for the push's own repository.
    pub scratch: &'a Path,
    pub url: &'a str,
    pub sha: &'a str,
    pub branch: &'a str,
    /// For an HTTP(S) remote on the forge's host; None: git's own means (SSH keys, a file path).
    pub credentials: Option<Credentials<'a>>,
    pub timeout: Duration,
}

/// Push `sha` to `refs/heads/<branch>` at `url` (a fast-forward: orch never forces). Err is git's
/// words, with the token masked.
pub fn push(request: &PushRequest) -> Result<(), String> {
    let repo = Scratch::new(request.scratch)?;
    let git = Git::new(&repo.path, request.timeout);
    let isolated = [
        ("GIT_CONFIG_GLOBAL", "/dev/null"),
        ("GIT_CONFIG_NOSYSTEM", "1"),
    ];
    git.check(&["init", "--quiet", "--bare"], &isolated)?;
    let objects = request.common_dir.join("objects");
    std::fs::write(
        repo.path.join("objects/info/alternates"),
        format!("{}\n", objects.display()),
    )
    .map_err(|err| format!("preparing the push: {err}"))?;
    let refspec = format!("{}:refs/heads/{}", request.sha, request.branch);
    let args = [
        "-c",
        "credential.helper=",
        "-c",
        "http.followRedirects=false",
        "-c",
        "core.askPass=",
        "push",
        "--no-verify",
        "--quiet",
        "--porcelain",
        request.url,
        &refspec,
    ];
    let orch = std::env::current_exe().map_err(|err| format!("finding orch's binary: {err}"))?;
    let socket = match request.credentials {
        Some(credentials) => Some(TokenSocket::new(credentials.token)?),
        None => None,
    };
    let fd_text = socket.as_ref().map(|s| s.child.as_raw_fd().to_string());
    let mut env: Vec<(&str, &str)> = isolated.to_vec();
    let orch_text = orch.display().to_string();
    if let (Some(credentials), Some(fd)) = (request.credentials, fd_text.as_deref()) {
        env.extend([
            ("GIT_ASKPASS", orch_text.as_str()),
            (askpass::FD_VAR, fd),
            (askpass::USER_VAR, credentials.user),
            (askpass::HOST_VAR, credentials.host),
        ]);
    }
    let child_fd = socket.as_ref().map(|s| s.child.as_raw_fd());
    let secrets: Vec<&str> = request.credentials.iter().map(|c| c.token).collect();
    let ran = git.run_with(&args, &env, &secrets, |command| {
        command.env_remove("SSH_ASKPASS");
        // SAFETY: runs in the forked child before exec and calls only async-signal-safe functions.
        unsafe {
            command.pre_exec(move || {
                // git dies with orch: a push left running could race the next tick's.
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                // The token's socket is inherited by git (and its askpass) only: orch opened it
                // close-on-exec.
                if let Some(fd) = child_fd {
                    if libc::fcntl(fd, libc::F_SETFD, 0) != 0 {
                        return Err(std::io::Error::last_os_error());
                    }
                }
                Ok(())
            });
        }
    })?;
    drop(socket);
    if ran.status.success() {
        Ok(())
    } else {
        Err(ran.failure(&format!("git push to {}", request.url)))
    }
}

/// The push's own repository, removed when dropped.
struct Scratch {
    path: PathBuf,
}

impl Scratch {
    fn new(dir: &Path) -> Result<Scratch, String> {
        use std::os::unix::fs::DirBuilderExt;
        crate::fsx::ensure_private_dir(dir, "push directory").map_err(|err| format!("{err:#}"))?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path = dir.join(format!("push-{}-{nanos}", std::process::id()));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&path)
            .map_err(|err| format!("making {}: {err}", path.display()))?;
        Ok(Scratch { path })
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A Unix socket pair holding the token: orch writes it into one end before git starts and
/// keeps that end; git inherits the other.
struct TokenSocket {
    _orch: OwnedFd,
    child: OwnedFd,
}

impl TokenSocket {
    fn new(token: &str) -> Result<TokenSocket, String> {
        let mut fds = [0; 2];
        // SAFETY: socketpair fills `fds`, which lives on this stack frame.
        let rc = unsafe {
            libc::socketpair(
                libc::AF_UNIX,
                libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
                0,
                fds.as_mut_ptr(),
            )
        };
        if rc != 0 {
            return Err(format!(
                "making the token's socket: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: socketpair succeeded: both descriptors are open and ours alone.
        let (orch, child) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        let mut writer = std::fs::File::from(
            orch.try_clone()
                .map_err(|err| format!("making the token's socket: {err}"))?,
        );
        writer
            .write_all(format!("{token}\n").as_bytes())
            .map_err(|err| format!("writing the token's socket: {err}"))?;
        drop(writer);
        // SAFETY: shutdown on a descriptor this function owns.
        unsafe {
            libc::shutdown(orch.as_raw_fd(), libc::SHUT_WR);
        }
        Ok(TokenSocket { _orch: orch, child })
    }
}
