//! Watching a running agent, in one thread: copy its output to the log as it comes, renew the
//! lease, enforce the timeout and the idle timeout, pass on SIGINT/SIGTERM, and end its whole group when it must stop.
//! One `poll` wakes the loop for output, signals (SIGCHLD included) and the next deadline.

use std::io::{self, Read};
use std::os::fd::AsRawFd;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::log::CappedLog;
use super::process::Agent;
use super::signals::Signals;
use super::status::StatusLine;

pub struct Limits {
    pub timeout: Duration,
    /// The run is ended as stalled when the agent has written nothing for this long.
    pub idle: Duration,
    /// Between SIGTERM and SIGKILL when the agent is ended.
    pub grace: Duration,
    /// The lease each heartbeat grants from now.
    pub lease_ms: i64,
    pub heartbeat_every: Duration,
}

/// How the agent's run went, as far as the process is concerned.
pub struct Watched {
    pub status: ExitStatus,
    pub timed_out: bool,
    /// Ended because its output stopped for `Limits::idle`.
    pub stalled: bool,
    /// Ended by a signal to orch, or because the lease was lost.
    pub interrupted: bool,
    /// The heartbeat found the lease gone (job cancelled, or rescued by another worker).
    pub lease_lost: bool,
}

/// The parts of the run the loop drives.
pub struct Watch<'a> {
    pub agent: &'a mut Agent,
    pub log: &'a mut CappedLog,
    pub signals: &'a mut Signals,
    pub status: Option<&'a mut StatusLine>,
    /// Renew the lease: Ok(false) when it is no longer ours.
    pub heartbeat: &'a mut dyn FnMut() -> Result<bool>,
}

/// What orch says when the run's lease was taken from it.
pub const LEASE_GONE: &str =
    "the job's lease is gone (cancelled, or rescued by another worker or orch)";

/// Reads per wake-up before the loop looks at its clocks again, so a chatty agent cannot starve
/// the timeout.
const READS_PER_TURN: usize = 16;
const CHUNK: usize = 64 * 1024;
/// Longest sleep of the loop, a backstop should a wake-up be missed.
const MAX_NAP: Duration = Duration::from_millis(250);
/// After the agent's group is gone, how long to wait for output held open by a process that left
/// the group.
const FINAL_DRAIN: Duration = Duration::from_secs(1);

pub fn supervise(watch: Watch, limits: &Limits, started: Instant) -> Result<Watched> {
    let Watch {
        agent,
        log,
        signals,
        status,
        heartbeat,
    } = watch;
    let deadline = started + limits.timeout;
    let mut next_heartbeat = started + limits.heartbeat_every;
    let mut kill_at: Option<Instant> = None;
    let mut killed = false;
    let mut timed_out = false;
    let mut stalled = false;
    let mut interrupted = false;
    let mut lease_lost = false;
    let mut eof = false;
    let mut buf = vec![0; CHUNK];
    let mut copy = Copy {
        log,
        status,
        warned: false,
        last_output: started,
    };

    // Asks the group to stop, once; the SIGKILL follows after the grace period.
    let end_group = |agent: &Agent, signal: libc::c_int, kill_at: &mut Option<Instant>| {
        if kill_at.is_none() {
            agent.signal_group(signal);
            *kill_at = Some(Instant::now() + limits.grace);
        }
    };

    loop {
        if !eof {
            eof = copy.drain(&mut agent.output, &mut buf)?;
        }
        if agent.has_exited().context("watching the agent")? {
            break;
        }
        let stops = signals.take_stop();
        if !stops.is_empty() {
            interrupted = true;
            if kill_at.is_some() {
                // Asked again: no more grace.
                agent.signal_group(libc::SIGKILL);
                killed = true;
            }
            for signal in stops {
                end_group(agent, signal, &mut kill_at);
            }
        }
        if kill_at.is_none() && Instant::now() >= deadline {
            timed_out = true;
            end_group(agent, libc::SIGTERM, &mut kill_at);
        }
        // Silence counts from the agent's last output, past the log's cap too: a chatty agent
        // whose log is full is not stalled.
        let idle_deadline = copy.last_output + limits.idle;
        if kill_at.is_none() && Instant::now() >= idle_deadline {
            stalled = true;
            crate::diag!(
                "orch: the agent wrote nothing for {}: stopping it as stalled",
                crate::output::span(limits.idle.as_millis() as i64)
            );
            end_group(agent, libc::SIGTERM, &mut kill_at);
        }
        if !lease_lost && Instant::now() >= next_heartbeat {
            match heartbeat() {
                Ok(true) => {}
                Ok(false) => {
                    lease_lost = true;
                    interrupted = true;
                    crate::diag!("orch: {LEASE_GONE}: stopping the agent");
                    end_group(agent, libc::SIGTERM, &mut kill_at);
                }
                Err(err) => crate::diag!("orch: warning: could not renew the lease: {err:#}"),
            }
            next_heartbeat = Instant::now() + limits.heartbeat_every;
        }
        if let Some(at) = kill_at.filter(|_| !killed) {
            if Instant::now() >= at {
                agent.signal_group(libc::SIGKILL);
                killed = true;
            }
        }
        let now = Instant::now();
        if let Some(status) = copy.status.as_deref_mut() {
            status.draw(now);
        }
        let mut wake = (now + MAX_NAP).min(next_heartbeat);
        match kill_at {
            Some(at) if !killed => wake = wake.min(at),
            Some(_) => {}
            None => wake = wake.min(deadline).min(copy.last_output + limits.idle),
        }
        if let Some(status) = copy.status.as_deref() {
            wake = wake.min(status.next_due());
        }
        let output = (!eof).then(|| agent.output.as_raw_fd());
        wait_for(
            output,
            Some(signals.wake_fd()),
            wake.saturating_duration_since(now),
        )?;
    }

    let status = agent.wait().context("reaping the agent")?;
    let drain_until = Instant::now() + FINAL_DRAIN;
    while !eof {
        eof = copy.drain(&mut agent.output, &mut buf)?;
        let left = drain_until.saturating_duration_since(Instant::now());
        if eof || left.is_zero() {
            break;
        }
        wait_for(Some(agent.output.as_raw_fd()), None, left)?;
    }
    Ok(Watched {
        status,
        timed_out,
        stalled,
        interrupted,
        lease_lost,
    })
}

/// Output on its way to the log (and the status line).
struct Copy<'a> {
    log: &'a mut CappedLog,
    status: Option<&'a mut StatusLine>,
    warned: bool,
    /// When the agent last wrote anything.
    last_output: Instant,
}

impl Copy<'_> {
    /// Read what the pipe holds (a bounded amount); true at end of file.
    fn drain(&mut self, output: &mut std::fs::File, buf: &mut [u8]) -> Result<bool> {
        for _ in 0..READS_PER_TURN {
            let n = match output.read(buf) {
                Ok(0) => return Ok(true),
                Ok(n) => n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err).context("reading the agent's output"),
            };
            self.last_output = Instant::now();
            if let Err(err) = self.log.write(&buf[..n]) {
                if !self.warned {
                    crate::diag!(
                        "orch: warning: writing the run's log failed, the rest is discarded: {err}"
                    );
                    self.warned = true;
                }
            }
            if let Some(status) = self.status.as_deref_mut() {
                status.feed(&buf[..n]);
            }
        }
        Ok(false)
    }
}

/// Sleep until one of the descriptors is readable (or hung up) or `timeout` passes.
fn wait_for(first: Option<i32>, second: Option<i32>, timeout: Duration) -> Result<()> {
    let mut fds: Vec<libc::pollfd> = [first, second]
        .into_iter()
        .flatten()
        .map(|fd| libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    // Round up, so a wake-up due in 0.4 ms does not spin.
    let millis = timeout.as_micros().div_ceil(1000).min(i32::MAX as u128) as libc::c_int;
    // SAFETY: `fds` is a valid array of `fds.len()` pollfd structs.
    let rc = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, millis) };
    if rc < 0 {
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err).context("waiting for the agent");
        }
    }
    Ok(())
}
