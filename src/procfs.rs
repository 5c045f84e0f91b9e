//! What /proc says about processes on this host, and ending a run's process group.
//!
//! A pid alone names a process only while it lives: once it is reaped the number may be given
//! to another. So every process orch records is recorded with its start time (field 22 of
//! /proc/PID/stat, clock ticks since boot), and a pid whose start time differs is "gone". The
//! boot id changes with every boot, so a run recorded under another boot has no process left.
//! The pid namespace says whose pids these are: a container with its own sees other numbers.

use std::io;
use std::time::{Duration, Instant};

/// Where a process runs: the host's name (the `host` setting), its boot and its pid namespace.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Place {
    pub host: String,
    pub boot_id: Option<String>,
    pub pid_ns: Option<String>,
}

impl Place {
    /// This process's place, under the host name `host` (`Config::host`).
    pub fn current(host: String) -> Place {
        Place {
            host,
            boot_id: boot_id(),
            pid_ns: pid_namespace(),
        }
    }
}

/// A process as recorded: its pid and its start time, which together never name another.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    pub pid: i32,
    pub start: u64,
}

/// A recorded process as it is now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// Alive and not stopped (running, sleeping or waiting on I/O).
    Running,
    /// Stopped by a signal (SIGSTOP, Ctrl-Z) or a debugger: it holds its lease but cannot renew it.
    Stopped,
    /// Exited (a zombie included), or the pid now names another process.
    Gone,
}

/// The fields of /proc/PID/stat that orch reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Stat {
    pub pid: i32,
    pub state: char,
    pub ppid: i32,
    pub pgrp: i32,
    pub start: u64,
}

impl Stat {
    fn dead(&self) -> bool {
        matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// Parse one /proc/PID/stat line. The command name (field 2) is in parentheses and may itself
/// hold spaces and parentheses, so the fields are counted from its last ')'.
pub fn parse_stat(line: &str) -> Option<Stat> {
    let (head, rest) = line.rsplit_once(')')?;
    let pid = head.split_once(" (")?.0.trim().parse().ok()?;
    // Fields from 3 on: state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt cmajflt
    // utime stime cutime cstime priority nice num_threads itrealvalue starttime …
    let fields: Vec<&str> = rest.split_ascii_whitespace().collect();
    Some(Stat {
        pid,
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start: fields.get(19)?.parse().ok()?,
    })
}

/// /proc/PID/stat, or None when there is no such process.
pub fn stat(pid: i32) -> Option<Stat> {
    if pid <= 0 {
        return None;
    }
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// This process as recorded on a run.
pub fn this_process() -> Option<Proc> {
    let pid = std::process::id() as i32;
    stat(pid).map(|s| Proc {
        pid,
        start: s.start,
    })
}

/// The start time of a live process (a zombie's too: it keeps its pid until it is reaped).
pub fn start_time(pid: i32) -> Option<u64> {
    stat(pid).map(|s| s.start)
}

/// Is the recorded process still there, and may it work?
pub fn liveness(process: Proc) -> Liveness {
    match stat(process.pid) {
        Some(s) if s.start == process.start && !s.dead() => {
            if matches!(s.state, 'T' | 't') {
                Liveness::Stopped
            } else {
                Liveness::Running
            }
        }
        _ => Liveness::Gone,
    }
}

/// This boot's id: a run recorded under another boot has no process left.
pub fn boot_id() -> Option<String> {
    let id = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(id.trim().to_string()).filter(|id| !id.is_empty())
}

/// This process's pid namespace ("pid:[4026531836]"): pids recorded in another mean nothing here.
pub fn pid_namespace() -> Option<String> {
    std::fs::read_link("/proc/self/ns/pid")
        .ok()
        .map(|link| link.display().to_string())
}

/// Every process /proc lists now (those that vanish while it is read are skipped).
fn all() -> io::Result<Vec<Stat>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc")? {
        let Ok(entry) = entry else { continue };
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if let Some(s) = stat(pid) {
            found.push(s);
        }
    }
    Ok(found)
}

/// The live members of the group a run's agent led. `leader` is the agent as recorded (its pid
/// is the group id). Linux keeps a pid reserved while a process group uses it, so while any
/// member lives the id cannot have been given to another group; it can only have been reused
/// once the whole group ended. A process now holding the leader's pid with another start time
/// is such a reuse: nothing is returned then. Members started before the leader cannot be its
/// group's either.
pub fn group_members(leader: Proc) -> io::Result<Vec<i32>> {
    let all = all()?;
    let reused = all
        .iter()
        .any(|s| s.pid == leader.pid && s.start != leader.start);
    if reused {
        return Ok(Vec::new());
    }
    Ok(all
        .iter()
        .filter(|s| s.pgrp == leader.pid && s.start >= leader.start && !s.dead())
        .map(|s| s.pid)
        .collect())
}

/// The groups led by `parent`'s children: the agent of a supervisor whose run has not recorded
/// its agent yet (orch stopped between starting it and writing its pid).
pub fn child_group_leaders(parent: Proc) -> io::Result<Vec<Proc>> {
    if liveness(parent) == Liveness::Gone {
        return Ok(Vec::new());
    }
    Ok(all()?
        .into_iter()
        .filter(|s| s.ppid == parent.pid && s.pgrp == s.pid && !s.dead())
        .map(|s| Proc {
            pid: s.pid,
            start: s.start,
        })
        .collect())
}

/// How long `end_group` waits for SIGKILLed members to be gone: a signal is delivered when the
/// process is next scheduled, which on a loaded machine takes a while.
const END_WAIT: Duration = Duration::from_secs(2);

/// SIGKILL every live member of the group `leader` led, again until none is left (a member may
/// fork between the scan and the signal), waiting for them to die so that nothing of the group
/// runs once this returns (barring `END_WAIT` running out). Returns how many processes were
/// signalled.
pub fn end_group(leader: Proc) -> io::Result<usize> {
    let mut signalled = std::collections::BTreeSet::new();
    let until = Instant::now() + END_WAIT;
    loop {
        let members = group_members(leader)?;
        if members.is_empty() || Instant::now() >= until {
            break;
        }
        for pid in members {
            // SAFETY: plain syscall; `pid` was just read as a live member of the recorded group.
            if unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
                signalled.insert(pid);
            }
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(signalled.len())
}

/// Ask the group to stop (SIGTERM), give it `grace` to do so, then end what is left (SIGKILL).
/// Returns how many processes were signalled at first.
pub fn stop_group(leader: Proc, grace: Duration) -> io::Result<usize> {
    let members = group_members(leader)?;
    for &pid in &members {
        // SAFETY: as in `end_group`.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    let until = Instant::now() + grace;
    while Instant::now() < until && !group_members(leader)?.is_empty() {
        std::thread::sleep(Duration::from_millis(20));
    }
    end_group(leader)?;
    Ok(members.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_lines_parse_whatever_the_command_name() {
        let line = "4242 (a (weird) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        assert_eq!(
            parse_stat(line),
            Some(Stat {
                pid: 4242,
                state: 'S',
                ppid: 1,
                pgrp: 4242,
                start: 98765
            })
        );
        assert_eq!(parse_stat("garbage"), None);
        assert_eq!(parse_stat("1 (x) S 0"), None);
    }

    #[test]
    fn this_process_is_running_and_a_wrong_start_time_is_gone() {
        let me = this_process().unwrap();
        assert_eq!(liveness(me), Liveness::Running);
        let other = Proc {
            start: me.start + 1,
            ..me
        };
        assert_eq!(liveness(other), Liveness::Gone);
        assert_eq!(
            liveness(Proc {
                pid: i32::MAX,
                start: 0
            }),
            Liveness::Gone
        );
        assert!(boot_id().is_some());
        assert!(pid_namespace().unwrap().starts_with("pid:"));
    }

    #[test]
    fn a_stopped_child_is_stopped_and_its_group_is_ended() {
        use std::os::unix::process::CommandExt;
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let leader = Proc {
            pid,
            start: start_time(pid).unwrap(),
        };
        // SAFETY: a signal to our own child.
        unsafe { libc::kill(pid, libc::SIGSTOP) };
        let until = Instant::now() + Duration::from_secs(5);
        while liveness(leader) != Liveness::Stopped {
            assert!(Instant::now() < until, "the child never showed as stopped");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(group_members(leader).unwrap(), vec![pid]);
        assert_eq!(end_group(leader).unwrap(), 1);
        child.wait().unwrap();
        assert_eq!(liveness(leader), Liveness::Gone);
        assert!(group_members(leader).unwrap().is_empty());
    }
}
