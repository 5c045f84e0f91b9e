//! `<agent> --version`: started without a shell, stdin from /dev/null, in its own process group,
//! ended (the whole group) when it outlives the timeout. Claude Code answers `2.1.197 (Claude Code)`,
//! Codex `codex-cli 0.171.0`, Gemini `0.61.0`. An agent answers even when logged out, which is why
//! preflight also checks its credentials.

use std::cmp::Ordering;
use std::fmt;
use std::path::PathBuf;
use std::process::ExitStatus;
use std::time::Duration;

use super::env::{AgentEnv, Unlaunchable};
use super::Spec;
use crate::process;

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

    /// What an operator does about it, in the words of the agent's kind.
    pub fn fix(&self, spec: &Spec) -> String {
        let bin_settings = match spec.bin_setting {
            Some(key) => format!("{} (or bin in [agents.NAME])", key.env()),
            None => "bin in [agents.NAME]".to_string(),
        };
        let by_hand = |program: &PathBuf| {
            format!(
                "run `{} --version` by hand as the agent's user to see what is wrong",
                program.display()
            )
        };
        match self {
            Problem::Unlaunchable(Unlaunchable::NotExecutable(program)) => format!(
                "chmod +x {}, or point {bin_settings} at the real binary",
                program.display()
            ),
            Problem::Unlaunchable(_) => format!(
                "install {} ({}), or set {bin_settings} to its path",
                spec.product, spec.install
            ),
            Problem::Spawn { program, .. }
            | Problem::Exit { program, .. }
            | Problem::NoVersion { program, .. } => by_hand(program),
            Problem::TimedOut { program, .. } => format!(
                "{}; raise ORCH_VERSION_TIMEOUT_SECONDS if the machine is just slow",
                by_hand(program)
            ),
            Problem::TooOld { .. } => format!(
                "update {} ({}), or lower min_version in [agents.NAME]",
                spec.product, spec.update
            ),
        }
    }
}

/// Ask the agent's binary for its version (`--version`), within `timeout`; `parse` finds it in
/// what the binary printed.
pub fn probe(
    agent: &AgentEnv,
    timeout: Duration,
    parse: fn(&str) -> Option<String>,
) -> Result<Answer, Problem> {
    let program = agent.program().map_err(Problem::Unlaunchable)?;
    let mut command = agent.command(&program);
    command.arg("--version");
    let captured = match process::capture(command, timeout, KEEP_BYTES) {
        Ok(captured) => captured,
        Err(process::Failure::Spawn(err)) => {
            return Err(Problem::Spawn {
                program,
                error: err.to_string(),
            })
        }
        Err(process::Failure::TimedOut) => {
            return Err(Problem::TimedOut {
                program,
                seconds: timeout.as_secs(),
            })
        }
    };
    let (status, stdout, stderr) = (captured.status, captured.stdout, captured.stderr);
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
    Ok(Answer { program, version })
}

/// The answer, unless its version is older than `min_version`.
pub fn at_least(answer: Answer, min_version: Option<&str>) -> Result<Answer, Problem> {
    match min_version {
        Some(min) if compare(&answer.version, min) == Some(Ordering::Less) => {
            Err(Problem::TooOld {
                program: answer.program,
                version: answer.version,
                min_version: min.to_string(),
            })
        }
        _ => Ok(answer),
    }
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
    let mut line = crate::redact::redact(line);
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
            Some("token sk-ant-… bad")
        );
        assert_eq!(first_line(b"  \n"), None);
        assert_eq!(first_line(&[b'x'; 500]).unwrap().chars().count(), 161);
    }
}
