//! Gemini CLI (`gemini`): its login (`~/.gemini/settings.json`'s auth type, `oauth_creds.json`,
//! or an API key in the environment), its command line (`--output-format stream-json
//! --prompt=…`), and its stream-json read live (`stream`), judged (`judge`) and shown
//! (`transcript`). What the real CLI does is written up in
//! `/work/research/agents/gemini/README.md`.

pub mod credentials;
pub mod judge;
pub mod stream;
#[cfg(test)]
pub(crate) mod suite;
pub mod transcript;

use std::path::Path;
use std::process::Command;

use crate::agent::{argv, Agent, AgentEnv, Launch, Spec, Unlaunchable};
use crate::config::{self, PermissionMode, Stage};
use crate::domain::agent::AgentKind;

/// Headless stream-json. The prompt is joined to its option (`--prompt=<text>`): Gemini's
/// option parser takes `-p "--x"` for an option and refuses it, and has no `--` form.
pub const DEFAULT_ARGV: &[&str] = &[
    "{bin}",
    "--output-format",
    "stream-json",
    "--prompt={prompt}",
];

pub static SPEC: Spec = Spec {
    kind: AgentKind::Gemini,
    product: "Gemini CLI",
    default_bin: "gemini",
    bin_setting: Some(config::GEMINI_BIN),
    install: "npm install -g @google/gemini-cli",
    update: "npm install -g @google/gemini-cli@latest",
    login: "run gemini and log in with Google (or set GEMINI_API_KEY in the profile's env)",
    settings_env: &[
        "GEMINI_CLI_HOME",
        "GEMINI_CLI_TRUST_WORKSPACE",
        "GEMINI_RESTRICTED_MODE",
    ],
    readers: readers!(stream::GeminiProgress, chunked_text: true),
};

/// Gemini CLI.
pub struct Gemini;

impl Agent for Gemini {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// The stage's permission mode as `--approval-mode`; a session to continue is
    /// `--resume <session_id>` (Gemini keeps sessions per working directory).
    fn argv(&self, env: &AgentEnv, launch: &Launch) -> Result<Vec<String>, Unlaunchable> {
        let resume: Vec<String> = match launch.resume {
            Some(session) => vec!["--resume".to_string(), session.to_string()],
            None => Vec::new(),
        };
        let settings: Vec<String> = match launch.stage.permission_mode {
            Some(mode) => vec![
                "--approval-mode".to_string(),
                approval_mode(mode).to_string(),
            ],
            None => Vec::new(),
        };
        argv::for_agent(
            env,
            DEFAULT_ARGV,
            launch.prompt,
            argv::Extras {
                lead: &[],
                settings: &settings,
                stage: &launch.stage.extra_args,
                launch: &resume,
            },
        )
    }

    /// The workdir trusted (headless Gemini refuses an untrusted folder, exit 55), no colour in
    /// its messages, and a temporary directory of orch's own: Gemini writes a report with the
    /// conversation (the prompt included) to `$TMPDIR/gemini-client-error-*.json` on every API
    /// failure, which must not land in a /tmp others can read.
    fn command(&self, env: &AgentEnv, program: &Path) -> Command {
        let mut command = env.command(program);
        command.env("GEMINI_CLI_TRUST_WORKSPACE", "true");
        command.env("NO_COLOR", "1");
        let tmp = env.config().log_dir().join("agent-tmp").join(&env.name);
        match crate::fsx::ensure_private_dir(&tmp, "the agent's temporary directory") {
            Ok(dir) => {
                command.env("TMPDIR", dir);
            }
            Err(err) => crate::diag!(
                "orch: warning: Gemini's error reports go to the system's temporary directory: {err:#}"
            ),
        }
        command
    }

    fn unsupported(&self, stage: &Stage) -> Vec<&'static str> {
        super::codex::unsupported_settings(stage)
    }
}

/// Gemini's approval modes for orch's permission modes: `plan` is read-only, `auto_edit` edits
/// without asking, `yolo` runs everything, and `default` asks — which headless means the tools
/// that would ask are not offered at all (dontAsk and auto map there too).
pub fn approval_mode(mode: PermissionMode) -> &'static str {
    match mode {
        PermissionMode::Plan => "plan",
        PermissionMode::AcceptEdits => "auto_edit",
        PermissionMode::BypassPermissions => "yolo",
        PermissionMode::Default | PermissionMode::DontAsk | PermissionMode::Auto => "default",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_for_test;

    const BIN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/agent/fake-gemini");

    /// The mapping the README documents, mode by mode.
    #[test]
    fn every_permission_mode_has_its_approval_mode() {
        let expected = [
            (PermissionMode::Default, "default"),
            (PermissionMode::AcceptEdits, "auto_edit"),
            (PermissionMode::Plan, "plan"),
            (PermissionMode::BypassPermissions, "yolo"),
            (PermissionMode::DontAsk, "default"),
            (PermissionMode::Auto, "default"),
        ];
        assert_eq!(expected.len(), PermissionMode::ALL.len());
        for (mode, approval) in expected {
            assert_eq!(approval_mode(mode), approval, "{mode:?}");
        }
    }

    #[test]
    fn stream_json_the_approval_mode_and_the_prompt_joined_to_its_option() {
        let config = load_for_test(&format!("[agents.gemini]\nbin = {BIN:?}\n"), &[]).unwrap();
        let no_env = |_: &str| None;
        let env = AgentEnv::resolve_with(&config, "gemini", &no_env).unwrap();
        let stage = Stage {
            permission_mode: Some(PermissionMode::AcceptEdits),
            extra_args: vec!["-m".into(), "gemini-2.5-pro".into()],
            ..Stage::default()
        };
        let launch = Launch {
            prompt: "--x {bin}",
            stage: &stage,
            resume: Some("2c773a36-8e5a-4858-878a-8edbddcb0fd3"),
        };
        assert_eq!(
            Gemini.argv(&env, &launch).unwrap(),
            [
                BIN,
                "--output-format",
                "stream-json",
                "--approval-mode",
                "auto_edit",
                "-m",
                "gemini-2.5-pro",
                "--resume",
                "2c773a36-8e5a-4858-878a-8edbddcb0fd3",
                "--prompt=--x {bin}",
            ]
        );
        assert_eq!(approval_mode(PermissionMode::Plan), "plan");
        assert_eq!(approval_mode(PermissionMode::BypassPermissions), "yolo");
        let template: Vec<String> = DEFAULT_ARGV.iter().map(|s| s.to_string()).collect();
        assert!(crate::domain::prompt::prompt_is_positional(&template));
    }
}
