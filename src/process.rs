//! Every child orch starts: one environment builder (`command`) and, for the short-lived ones
//! (git, the agent's `--version`), one helper that runs a child to its end within a deadline,
//! keeps a bounded part of what it printed and leaves nothing of its process group behind
//! (`capture`). The agent's own run is supervised by `crate::runner`, from a `command` too.

use std::ffi::OsStr;
use std::io::{self, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use crate::secrets;

/// A command for `program` whose environment holds no secret: orch's own secrets were taken out
/// of its environment at start-up, and every name scrubbed then (the secrets, their `_FILE`
/// variants, the configuration's `secret_env`) is removed again here, whoever set it since; so
/// is every agent kind's credential variable (an agent's command puts back its own kind's). It
/// leads its own process group (so ending it ends what it started) and reads /dev/null.
pub fn command(program: impl AsRef<OsStr>) -> Command {
    let mut command = Command::new(program);
    for name in secrets::scrubbed_names() {
        command.env_remove(name);
    }
    for name in crate::domain::agent::AgentKind::all_credential_vars() {
        command.env_remove(name);
    }
    command.stdin(Stdio::null()).process_group(0);
    command
}

/// What a child printed and how it ended.
#[derive(Debug)]
pub struct Captured {
    pub status: ExitStatus,
    /// At most the cap given to `capture`, each.
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

#[derive(Debug)]
pub enum Failure {
    /// The child could not be started (binary missing, not executable, …).
    Spawn(io::Error),
    /// It ran past the deadline; its whole group was killed.
    TimedOut,
}

/// Run `command` (from `command()`) to its end, at most `timeout`, keeping the first `cap` bytes
/// of its stdout and stderr. Whatever its group still holds when it ends (a hook's background
/// process, a grandchild) is killed, and its output is waited for a moment at most.
pub fn capture(mut command: Command, timeout: Duration, cap: usize) -> Result<Captured, Failure> {
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().map_err(Failure::Spawn)?;
    let stdout = reader(child.stdout.take(), cap);
    let stderr = reader(child.stderr.take(), cap);
    let deadline = Instant::now() + timeout;
    let exited = wait_until(&child, deadline);
    // The leader has exited but is not reaped yet, so its pid, the group's id, is still ours.
    kill_group(&child);
    let status = child.wait();
    let status = match (exited, status) {
        (true, Ok(status)) => status,
        _ => return Err(Failure::TimedOut),
    };
    let grace = deadline
        .saturating_duration_since(Instant::now())
        .min(Duration::from_secs(1));
    let until = Instant::now() + grace;
    let take = |rx: mpsc::Receiver<Vec<u8>>| {
        rx.recv_timeout(until.saturating_duration_since(Instant::now()))
            .unwrap_or_default()
    };
    let stdout = take(stdout);
    let stderr = take(stderr);
    Ok(Captured {
        status,
        stdout,
        stderr,
    })
}

/// Read a pipe to its end on a thread, keeping the first `cap` bytes.
fn reader(pipe: Option<impl Read + Send + 'static>, cap: usize) -> mpsc::Receiver<Vec<u8>> {
    let (tx, rx) = mpsc::channel();
    if let Some(mut pipe) = pipe {
        thread::spawn(move || {
            let mut kept = Vec::new();
            let mut buf = [0u8; 8192];
            loop {
                match pipe.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        let room = cap.saturating_sub(kept.len());
                        kept.extend_from_slice(&buf[..n.min(room)]);
                    }
                    Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                    Err(_) => break,
                }
            }
            let _ = tx.send(kept);
        });
    } else {
        let _ = tx.send(Vec::new());
    }
    rx
}

/// Wait until the child exits (true) or `deadline` passes (false), polling with a short, growing
/// pause. The child is left unreaped.
fn wait_until(child: &Child, deadline: Instant) -> bool {
    let mut pause = Duration::from_micros(200);
    loop {
        match has_exited(child.id()) {
            Ok(true) => return true,
            Ok(false) => {}
            // The child cannot be waited for: treat it like a hang, which ends it.
            Err(_) => return false,
        }
        let now = Instant::now();
        if now >= deadline {
            return false;
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// Whether the child `pid` has exited, without reaping it (WNOWAIT): its pid, and with it its
/// process group's id, stays reserved until it is waited for.
pub fn has_exited(pid: u32) -> io::Result<bool> {
    loop {
        // SAFETY: waitid fills `info`, which lives on this stack frame.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        let flags = libc::WEXITED | libc::WNOHANG | libc::WNOWAIT;
        // SAFETY: as above.
        let rc = unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) };
        if rc == 0 {
            // SAFETY: waitid set the fields; si_pid is 0 when no child has changed state.
            return Ok(unsafe { info.si_pid() } != 0);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// SIGKILL the process group `child` leads.
fn kill_group(child: &Child) {
    if let Ok(pgid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals a process group; no memory is passed.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn captures_output_and_ends_the_group() {
        let mut cmd = command("sh");
        cmd.args(["-c", "echo out; echo err >&2; sleep 30 & exit 3"]);
        let started = Instant::now();
        let got = capture(cmd, Duration::from_secs(10), 2).unwrap();
        assert_eq!(got.status.code(), Some(3));
        assert_eq!(got.stdout, b"ou");
        assert_eq!(got.stderr, b"er");
        // The background sleep held the pipes; it was killed with the group.
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[test]
    fn a_hang_times_out() {
        let mut cmd = command("sleep");
        cmd.arg("30");
        assert!(matches!(
            capture(cmd, Duration::from_millis(100), 10),
            Err(Failure::TimedOut)
        ));
        assert!(matches!(
            capture(command("/nonexistent/x"), Duration::from_secs(1), 10),
            Err(Failure::Spawn(_))
        ));
    }
}
