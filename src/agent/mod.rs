//! The agent seam: what orch needs of an agent's CLI, behind one trait, with one folder per kind
//! (`claude/`, `codex/`, `gemini/`). A kind's implementation holds no state:
//! the profile it runs as (`[agents.NAME]`: binary, home, environment, argv) is an [`AgentEnv`]
//! handed to each call, so reading a log needs the kind alone.
//!
//! Shared by every kind: the profile's environment (`env`), the `--version` probe (`version`),
//! argv templates (`argv`), credentials files read offline (`credentials`), the bounded-memory
//! JSON-lines reader (`jsonl`), what every judge shares (`judging`) and the events `orch logs`
//! shows (`transcript`). The verdict's
//! words are `domain::verdict`'s; the stage prompts are `domain::prompt`'s. `contract` is the
//! suite every kind passes.

/// The `Spec` fields that name a kind's readers (fields of `Spec` from `credentials_file` to
/// `progress`): every kind's folder names them alike (`credentials::locate`, `judge::judge`,
/// `transcript::events_of_line`, …), so a kind says only its progress type and whether its text
/// comes in chunks. Paths resolve in the kind's module.
macro_rules! readers {
    ($progress:ty, chunked_text: $chunked:expr) => {
        $crate::agent::Readers {
            credentials_file: credentials::locate,
            auth_source: credentials::auth_source,
            check_credentials: credentials::check,
            judge: |log, ending| judge::judge(log, ending),
            transcript_line: transcript::events_of_line,
            chunked_text: $chunked,
            progress: || Box::<$progress>::default(),
        }
    };
}

pub mod argv;
pub mod claude;
pub mod codex;
pub mod credentials;
pub mod env;
pub mod gemini;
pub mod jsonl;
pub mod judging;
pub mod transcript;
pub mod version;

#[cfg(test)]
pub(crate) mod contract;

use std::io::{self, BufRead, Read};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::Result;

use crate::config::{Config, Key, Stage};
use crate::domain::agent::AgentKind;
use crate::domain::verdict::{Ending, Verdict};

pub use credentials::{AuthPolicy, AuthSource, CredentialsCheck, CredsFingerprint};
pub use env::{AgentEnv, Located, Unlaunchable};
pub use transcript::Event;
pub use version::{Answer, Problem};

/// What orch says about a kind of agent, where its profiles find their binary, and the plain
/// functions that read its files and logs (the `Agent` trait's default methods call them, so an
/// implementation states only its command line and what else differs).
#[derive(Debug)]
pub struct Spec {
    pub kind: AgentKind,
    /// The product, in messages: "Claude Code".
    pub product: &'static str,
    /// The binary when no setting names one.
    pub default_bin: &'static str,
    /// The setting that names the binary of every profile of this kind (`claude_bin`), if any.
    pub bin_setting: Option<&'static Key>,
    /// How to install it, how to update it, and how to log in as the agent's user: for fixes.
    pub install: &'static str,
    pub update: &'static str,
    pub login: &'static str,
    /// Variables of the agent's environment that change whether it accepts its command line
    /// (`IS_SANDBOX` for Claude Code as root): a profile held for a refused command line is let
    /// go when they change, like its settings.
    pub settings_env: &'static [&'static str],
    /// What reads its files and logs.
    pub readers: Readers,
}

/// The functions that read a kind's files and logs: the `Agent` trait's default methods call them.
#[derive(Debug)]
pub struct Readers {
    /// `Agent::credentials_file`.
    pub credentials_file: fn(&AgentEnv) -> Option<Located<PathBuf>>,
    /// `Agent::auth_source`.
    pub auth_source: fn(&AgentEnv) -> AuthSource,
    /// `Agent::check_credentials`.
    pub check_credentials: fn(&Path, i64, AuthPolicy) -> CredentialsCheck,
    /// `Agent::judge`.
    pub judge: fn(&mut dyn Read, Ending) -> io::Result<Verdict>,
    /// One line of its log as the events `orch logs` shows.
    pub transcript_line: transcript::ParseLine,
    /// The agent streams its text in chunks, a line each: `orch logs` joins them.
    pub chunked_text: bool,
    /// `Agent::progress`.
    pub progress: fn() -> Box<dyn Progress>,
}

/// One start of the agent.
#[derive(Debug, Clone, Copy)]
pub struct Launch<'a> {
    /// The stage's prompt, filled in: one argument, whatever it holds.
    pub prompt: &'a str,
    /// The stage's settings (its `extra_args`).
    pub stage: &'a Stage,
    /// A session to continue (its id as the agent reported it) instead of a new one.
    pub resume: Option<&'a str>,
}

/// The start of every kind's status line: "1m05s · 2 turns · 150 tokens".
pub fn status_parts(elapsed_secs: u64, count: u64, noun: &str, tokens: u64) -> Vec<String> {
    vec![
        format!("{}m{:02}s", elapsed_secs / 60, elapsed_secs % 60),
        format!("{count} {noun}{}", if count == 1 { "" } else { "s" }),
        format!("{tokens} tokens"),
    ]
}

/// The live status line's view of a run, fed the agent's output line by line as it prints.
pub trait Progress {
    /// Take one output line (without its line end) into account; a line the agent's format
    /// does not know is ignored.
    fn observe(&mut self, line: &[u8]);
    /// "1m05s · 2 turns · 150 tokens · $0.0123 · Bash": what the line shows after
    /// `elapsed_secs`.
    fn render(&self, elapsed_secs: u64) -> String;
}

/// What orch needs of one kind of agent CLI. Every method is offline except `version`, which
/// starts the binary and nothing else; none may print, log or return a credential.
pub trait Agent: Send + Sync {
    /// Its kind, its product's name and how its profiles find their binary.
    fn spec(&self) -> &'static Spec;

    /// Ask the profile's binary for its version, within `timeout` (`<bin> --version` by default).
    fn version(&self, env: &AgentEnv, timeout: Duration) -> Result<Answer, Problem> {
        version::probe(env, timeout, version::parse)
    }

    /// How the profile's login will be checked, from its settings and environment alone: a
    /// variable that authenticates it, else its credentials file.
    fn auth_source(&self, env: &AgentEnv) -> AuthSource {
        (self.spec().readers.auth_source)(env)
    }

    /// The credentials file a login or logout rewrites, whether or not the check reads it: a
    /// held auth gate opens when it changes. None when nothing says where it is.
    fn credentials_file(&self, env: &AgentEnv) -> Option<Located<PathBuf>> {
        (self.spec().readers.credentials_file)(env)
    }

    /// Read the credentials file at `path` (from `auth_source`) and judge it at `now_ms`,
    /// without the network.
    fn check_credentials(&self, path: &Path, now_ms: i64, policy: AuthPolicy) -> CredentialsCheck {
        (self.spec().readers.check_credentials)(path, now_ms, policy)
    }

    /// The argv that starts the profile's agent on one stage: program first, the prompt one
    /// element that no agent can read as an option.
    fn argv(&self, env: &AgentEnv, launch: &Launch) -> Result<Vec<String>, Unlaunchable>;

    /// A command for `program` in the profile's environment (orch's secrets removed); the caller
    /// sets argv, cwd and stdio.
    fn command(&self, env: &AgentEnv, program: &Path) -> Command {
        env.command(program)
    }

    /// The stage's settings this kind's CLI cannot honour (it has no such option), by name: orch
    /// warns about them rather than drop them silently.
    fn unsupported(&self, _stage: &Stage) -> Vec<&'static str> {
        Vec::new()
    }

    /// Judge a finished run's log (read once, in bounded memory) into the neutral verdict, given
    /// how the run ended (the agent's exit status when known; whether orch cut it short; when).
    fn judge(&self, log: &mut dyn Read, ending: Ending) -> io::Result<Verdict> {
        (self.spec().readers.judge)(log, ending)
    }

    /// The log as events a person can follow (`orch logs`), read in bounded memory.
    fn transcript<'r>(
        &self,
        log: Box<dyn BufRead + 'r>,
    ) -> Box<dyn Iterator<Item = io::Result<Event>> + 'r> {
        let readers = &self.spec().readers;
        let events = transcript::Transcript::new(log, readers.transcript_line);
        if readers.chunked_text {
            Box::new(transcript::Joined::new(events))
        } else {
            Box::new(events)
        }
    }

    /// A fresh view for the live status line.
    fn progress(&self) -> Box<dyn Progress> {
        (self.spec().readers.progress)()
    }

    /// [`Agent::judge`] on a file.
    fn judge_path(&self, path: &Path, ending: Ending) -> io::Result<Verdict> {
        self.judge(&mut std::fs::File::open(path)?, ending)
    }
}

/// The implementation of `kind`.
pub fn of_kind(kind: AgentKind) -> &'static dyn Agent {
    match kind {
        AgentKind::Claude => &claude::Claude,
        AgentKind::Codex => &codex::Codex,
        AgentKind::Gemini => &gemini::Gemini,
    }
}

/// A configured agent: its profile as resolved, and its kind's implementation.
pub struct Profile<'a> {
    pub env: AgentEnv<'a>,
    pub agent: &'static dyn Agent,
}

impl Profile<'_> {
    pub fn name(&self) -> &str {
        &self.env.name
    }
}

/// The named agent (`claude` exists without a profile); an unknown name is a config error.
pub fn resolve<'a>(config: &'a Config, name: &str) -> Result<Profile<'a>> {
    let env = AgentEnv::resolve(config, name)?;
    Ok(Profile {
        agent: of_kind(env.kind()),
        env,
    })
}

/// The agent that writes the logs of a profile: the profile's kind; for a name the config no
/// longer has (a run older than a config change), the kind named like it, else `claude`.
pub fn of_profile(config: &Config, name: &str) -> &'static dyn Agent {
    let kind = match config.agents.get(name) {
        Some(profile) => profile.kind,
        None => AgentKind::for_profile(name),
    };
    of_kind(kind)
}

/// The agent whose rules read a run's log: the kind the run recorded, else (a run made before
/// kinds were recorded) its profile's.
pub fn of_run(config: &Config, run: &crate::store::Run) -> &'static dyn Agent {
    match run.agent_kind.as_deref().and_then(AgentKind::from_name) {
        Some(kind) => of_kind(kind),
        None => of_profile(config, &run.agent),
    }
}
