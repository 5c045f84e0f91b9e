//! The agent process: started from an argv (never a shell) as the leader of its own process
//! group, with stdin from /dev/null and stdout and stderr on one pipe, like `2>&1`, so the log
//! keeps the order the agent wrote in. Ending it always means ending its whole group.

use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};

/// A running agent. Dropping it before `wait` kills its group and reaps it, so no error path
/// leaves an agent behind.
pub struct Agent {
    child: Child,
    /// The read end of the agent's stdout+stderr pipe, non-blocking.
    pub output: File,
    reaped: bool,
}

/// Start the agent: `command` holds its program, arguments and environment (from
/// `AgentEnv::command`); it runs in `cwd`. Errors are launch failures: binary missing or not
/// executable, and the like.
pub fn spawn(mut command: Command, cwd: &Path) -> io::Result<Agent> {
    let (read, write) = pipe()?;
    let write_err = write.try_clone()?;
    command
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::from(write))
        .stderr(Stdio::from(write_err))
        // Ending the agent signals its group (`signal_group`): it must lead one.
        .process_group(0);
    let parent = std::process::id() as libc::pid_t;
    // SAFETY: runs in the forked child before exec and calls only async-signal-safe functions.
    unsafe {
        command.pre_exec(move || {
            // If orch is killed (even by SIGKILL) the agent gets SIGKILL, so it cannot keep
            // working on a job whose lease another worker will take over.
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(io::Error::last_os_error());
            }
            // orch died before the line above: nobody would watch this agent.
            if libc::getppid() != parent {
                return Err(io::Error::other("orch exited while starting the agent"));
            }
            Ok(())
        });
    }
    let child = command.spawn()?;
    // The command holds the pipe's write ends: drop them, or the output never reaches EOF.
    drop(command);
    set_nonblocking(&read)?;
    Ok(Agent {
        child,
        output: File::from(read),
        reaped: false,
    })
}

impl Agent {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Send `signal` to the agent's whole process group (gone already: nothing to do).
    pub fn signal_group(&self, signal: libc::c_int) {
        if self.reaped {
            return;
        }
        // SAFETY: plain syscall. The group id is the agent's pid, which stays ours until we reap
        // it, so this cannot hit an unrelated group.
        unsafe {
            libc::kill(-(self.child.id() as libc::pid_t), signal);
        }
    }

    /// Whether the agent (the group leader) has exited. It is not reaped, so its pid, and with it
    /// the group id, stays reserved until `wait`.
    pub fn has_exited(&self) -> io::Result<bool> {
        crate::process::has_exited(self.child.id())
    }

    /// Kill what is left of the group (grandchildren the agent left behind), then reap the agent.
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        self.signal_group(libc::SIGKILL);
        let status = self.child.wait()?;
        self.reaped = true;
        Ok(status)
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        if !self.reaped {
            let _ = self.wait();
        }
    }
}

/// The exit code, or the signal that ended the process: exactly one is Some.
pub fn code_or_signal(status: ExitStatus) -> (Option<i32>, Option<i32>) {
    (status.code(), status.signal())
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 writes two descriptors into `fds`, which we then own.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just opened and are owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

pub(crate) fn set_nonblocking(fd: &impl AsRawFd) -> io::Result<()> {
    let fd = fd.as_raw_fd();
    // SAFETY: fcntl on a descriptor we own.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// A pipe whose both ends are close-on-exec and non-blocking (the signal self-pipe).
pub(crate) fn nonblocking_pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let (read, write) = pipe()?;
    set_nonblocking(&read)?;
    set_nonblocking(&write)?;
    Ok((read, write))
}
