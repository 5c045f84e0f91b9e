//! `<agent> --version`: started without a shell, stdin from /dev/null, in its own process group,
//! ended (the whole group) when it outlives the timeout. Claude Code answers `2.1.197 (Claude Code)`.
//! It answers even when logged out, which is why preflight also reads the credentials file.

use std::cmp::Ordering;
use std::fmt;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::env::{AgentEnv, Unlaunchable};

/// The part of the output kept for a reason; the rest is drained and dropped.
const KEEP_BYTES: usize = 16 * 1024;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub program: PathBuf,
    pub version: String,
}

/// Why the version check failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    Unlaunchable(Unlaunchable),
    Spawn {
        program: PathBuf,
        error: String,
    },
    Exit {
        program: PathBuf,
        status: String,
        said: String,
    },
    TimedOut {
        program: PathBuf,
        seconds: u64,
    },
    NoVersion {
        program: PathBuf,
        said: String,
    },
    TooOld {
        program: PathBuf,
        version: String,
        min_version: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Unlaunchable(why) => write!(f, "{why}"),
            Problem::Spawn { program, error } => {
                write!(f, "cannot start {}: {error}", program.display())
            }
            Problem::Exit {
                program,
                status,
                said,
            } => {
                write!(f, "`{} --version` {status}", program.display())?;
                if !said.is_empty() {
                    write!(f, ": {said}")?;
                }
                Ok(())
            }
            Problem::TimedOut { program, seconds } => write!(
                f,
                "`{} --version` did not answer within {seconds} s",
                program.display()
            ),
            Problem::NoVersion { program, said } if said.is_empty() => {
                write!(f, "`{} --version` printed nothing", program.display())
            }
            Problem::NoVersion { program, said } => write!(
                f,
                "`{} --version` printed no version: {said:?}",
                program.display()
            ),
            Problem::TooOld {
                version,
                min_version,
                ..
            } => write!(
                f,
                "version {version} is older than min_version {min_version}"
            ),
        }
    }
}

impl Problem {
    pub fn program(&self) -> Option<&PathBuf> {
        match self {
            Problem::Unlaunchable(Unlaunchable::NotOnPath(_)) => None,
            Problem::Unlaunchable(
                Unlaunchable::NoSuchFile(program) | Unlaunchable::NotExecutable(program),
            )
            | Problem::Spawn { program, .. }
            | Problem::Exit { program, .. }
            | Problem::TimedOut { program, .. }
            | Problem::NoVersion { program, .. }
            | Problem::TooOld { program, .. } => Some(program),
        }
    }

    pub fn fix(&self) -> String {
        let by_hand = |program: &PathBuf| {
            format!(
                "run `{} --version` by hand as the agent's user to see what is wrong",
                program.display()
            )
        };
        match self {
            Problem::Unlaunchable(Unlaunchable::NotExecutable(program)) => format!(
                "chmod +x {}, or point ORCH_CLAUDE_BIN (or bin in [agents.NAME]) at the real binary",
                program.display()
            ),
            Problem::Unlaunchable(_) => "install Claude Code (npm install -g @anthropic-ai/claude-code), \
                 or set ORCH_CLAUDE_BIN (or bin in [agents.NAME]) to its path"
                .to_string(),
            Problem::Spawn { program, .. }
            | Problem::Exit { program, .. }
            | Problem::NoVersion { program, .. } => by_hand(program),
            Problem::TimedOut { program, .. } => format!(
                "{}; raise ORCH_VERSION_TIMEOUT_SECONDS if the machine is just slow",
                by_hand(program)
            ),
            Problem::TooOld { .. } => {
                "update Claude Code (claude update), or lower min_version in [agents.NAME]"
                    .to_string()
            }
        }
    }
}

/// Ask the agent's binary for its version, within `timeout`; check it against `min_version`.
pub fn probe(
    agent: &AgentEnv,
    timeout: Duration,
    min_version: Option<&str>,
) -> Result<Answer, Problem> {
    let program = agent.program().map_err(Problem::Unlaunchable)?;
    let mut command = agent.command(&program);
    command
        .arg("--version")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|err| Problem::Spawn {
        program: program.clone(),
        error: err.to_string(),
    })?;
    let outputs = drain(&mut child);
    let deadline = Instant::now() + timeout;
    let Some(status) = wait_until(&mut child, deadline) else {
        end_group(&mut child);
        return Err(Problem::TimedOut {
            program,
            seconds: timeout.as_secs(),
        });
    };
    // A grandchild may still hold the pipes; its output is not worth waiting for.
    let grace = deadline
        .saturating_duration_since(Instant::now())
        .min(Duration::from_secs(1));
    let (stdout, stderr) = outputs.collect(grace);
    if !status.success() {
        let said = first_line(&stderr).or_else(|| first_line(&stdout));
        return Err(Problem::Exit {
            program,
            status: describe(status),
            said: said.unwrap_or_default(),
        });
    }
    let text = String::from_utf8_lossy(&stdout);
    let Some(version) = parse(&text) else {
        return Err(Problem::NoVersion {
            program,
            said: first_line(&stdout).unwrap_or_default(),
        });
    };
    if let Some(min) = min_version {
        if compare(&version, min) == Some(Ordering::Less) {
            return Err(Problem::TooOld {
                program,
                version,
                min_version: min.to_string(),
            });
        }
    }
    Ok(Answer { program, version })
}

/// The first `N.N[.N…]` in the text, with any `-pre`/`+build` suffix: `2.1.197 (Claude Code)` →
/// `2.1.197`.
pub fn parse(text: &str) -> Option<String> {
    text.split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | ',' | ';'))
        .map(|word| word.strip_prefix('v').unwrap_or(word))
        .map(|word| word.trim_end_matches(['.', ':']))
        .find(|word| numbers(word).is_some_and(|parts| parts.len() >= 2))
        .map(str::to_string)
}

/// Compare two versions by their numeric parts (missing parts count as 0; suffixes are ignored).
/// None when either is not a version.
pub fn compare(version: &str, other: &str) -> Option<Ordering> {
    let (mut a, mut b) = (numbers(version)?, numbers(other)?);
    let len = a.len().max(b.len());
    a.resize(len, 0);
    b.resize(len, 0);
    Some(a.cmp(&b))
}

/// Whether `text` reads as a version (for validating `min_version`).
pub fn is_version(text: &str) -> bool {
    numbers(text.trim()).is_some()
}

fn numbers(word: &str) -> Option<Vec<u64>> {
    let core = word.split(['-', '+']).next()?;
    core.split('.')
        .map(|part| {
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                None
            } else {
                part.parse().ok()
            }
        })
        .collect()
}

/// Both pipes read on their own threads so a chatty child never blocks on a full pipe.
struct Outputs {
    stdout: mpsc::Receiver<Vec<u8>>,
    stderr: mpsc::Receiver<Vec<u8>>,
}

impl Outputs {
    fn collect(self, grace: Duration) -> (Vec<u8>, Vec<u8>) {
        let until = Instant::now() + grace;
        let take = |rx: mpsc::Receiver<Vec<u8>>| {
            rx.recv_timeout(until.saturating_duration_since(Instant::now()))
                .unwrap_or_default()
        };
        let stdout = take(self.stdout);
        (stdout, take(self.stderr))
    }
}

fn drain(child: &mut Child) -> Outputs {
    fn reader(pipe: Option<impl Read + Send + 'static>) -> mpsc::Receiver<Vec<u8>> {
        let (tx, rx) = mpsc::channel();
        if let Some(mut pipe) = pipe {
            thread::spawn(move || {
                let mut kept = Vec::new();
                let mut buf = [0u8; 4096];
                while let Ok(n) = pipe.read(&mut buf) {
                    if n == 0 {
                        break;
                    }
                    let room = KEEP_BYTES.saturating_sub(kept.len());
                    kept.extend_from_slice(&buf[..n.min(room)]);
                }
                let _ = tx.send(kept);
            });
        }
        rx
    }
    Outputs {
        stdout: reader(child.stdout.take()),
        stderr: reader(child.stderr.take()),
    }
}

/// Wait for the child until `deadline`, polling with a short, growing pause. None on timeout.
fn wait_until(child: &mut Child, deadline: Instant) -> Option<ExitStatus> {
    let mut pause = Duration::from_micros(200);
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Some(status),
            Ok(None) => {}
            // The child cannot be waited for: treat it like a hang, which ends it.
            Err(_) => return None,
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(20));
    }
}

/// End the child's whole process group (it leads one), then reap it.
fn end_group(child: &mut Child) {
    if let Ok(pgid) = i32::try_from(child.id()) {
        // SAFETY: kill(2) with a negative pid signals the process group the child leads; the
        // child is not reaped yet, so its pid cannot have been reused.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "failed".to_string(),
    }
}

/// The first non-blank line of some output, short, with anything shaped like a Claude token cut.
fn first_line(bytes: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(bytes);
    let line = text.lines().map(str::trim).find(|l| !l.is_empty())?;
    let redacted: Vec<&str> = line
        .split(' ')
        .map(|word| {
            if word.contains("sk-ant-") {
                "[redacted]"
            } else {
                word
            }
        })
        .collect();
    let mut line = redacted.join(" ");
    if line.chars().count() > 160 {
        line = line.chars().take(160).collect::<String>() + "…";
    }
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_claude_codes_answer() {
        assert_eq!(parse("2.1.197 (Claude Code)\n").as_deref(), Some("2.1.197"));
        assert_eq!(parse("claude v1.0.3").as_deref(), Some("1.0.3"));
        assert_eq!(
            parse("Claude Code 2.2.0-beta.1, build x").as_deref(),
            Some("2.2.0-beta.1")
        );
        assert_eq!(parse("version 10.2."), Some("10.2".to_string()));
        assert_eq!(parse("Claude Code"), None);
        assert_eq!(parse("7 (Claude Code)"), None);
        assert_eq!(parse(""), None);
    }

    #[test]
    fn compares_numerically() {
        assert_eq!(compare("2.1.197", "2.1.20"), Some(Ordering::Greater));
        assert_eq!(compare("2.1", "2.1.0"), Some(Ordering::Equal));
        assert_eq!(compare("1.9.9", "2"), Some(Ordering::Less));
        assert_eq!(compare("2.0.0-beta", "2.0.0"), Some(Ordering::Equal));
        assert_eq!(compare("2.x", "2.0"), None);
        assert!(is_version("2.1"));
        assert!(!is_version("latest"));
    }

    #[test]
    fn output_lines_are_short_and_redacted() {
        assert_eq!(
            first_line(b"\n  token sk-ant-oat01-abc bad\nmore").as_deref(),
            Some("token [redacted] bad")
        );
        assert_eq!(first_line(b"  \n"), None);
        assert_eq!(first_line(&[b'x'; 500]).unwrap().chars().count(), 161);
    }
}
