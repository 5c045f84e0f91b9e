//! Codex CLI (`codex`): its login file (`$CODEX_HOME/auth.json`), its command line
//! (`codex exec --json`), and its JSON-lines events read live (`stream`), judged (`judge`) and
//! shown (`transcript`). Everything orch knows about Codex is in this folder; what the real CLI
//! does is written up in `/work/research/agents/codex/README.md`.

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

/// `codex exec --json`: headless, JSON lines on stdout, approvals `never` (exec's default). The
/// prompt comes last, after `--`, so no task text can read as an option. orch starts it with
/// stdin from /dev/null (it reads a piped stdin into the prompt otherwise).
pub const DEFAULT_ARGV: &[&str] = &["{bin}", "exec", "--json", "--", "{prompt}"];

pub static SPEC: Spec = Spec {
    kind: AgentKind::Codex,
    product: "Codex CLI",
    default_bin: "codex",
    bin_setting: Some(config::CODEX_BIN),
    install: "npm install -g @openai/codex",
    update: "npm install -g @openai/codex@latest",
    login: "run codex login (or set CODEX_API_KEY in the profile's env)",
    settings_env: &["CODEX_HOME"],
    readers: readers!(stream::CodexProgress, chunked_text: false),
};

/// Codex CLI.
pub struct Codex;

impl Agent for Codex {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// The stage's permission mode as a sandbox (`-c sandbox_mode=…`, which `exec` and
    /// `exec resume` both take, unlike `--sandbox`); a session to continue is `exec resume
    /// <thread_id>`, its options after it.
    fn argv(&self, env: &AgentEnv, launch: &Launch) -> Result<Vec<String>, Unlaunchable> {
        let resume = argv::resume_option("resume", launch);
        let settings = stage_options(launch.stage);
        argv::for_launch(env, DEFAULT_ARGV, launch, &resume, &settings, &[])
    }

    /// Codex reports a usage limit's reset as a time of day in the process's time zone: it runs
    /// in UTC, so the judge can read it.
    fn command(&self, env: &AgentEnv, program: &Path) -> Command {
        let mut command = env.command(program);
        command.env("TZ", "UTC");
        command
    }

    fn unsupported(&self, stage: &Stage) -> Vec<&'static str> {
        unsupported_settings(stage)
    }
}

/// The sandbox a permission mode maps to: Codex has no per-tool permissions, only how far its
/// commands may reach. Modes that only read (plan), or that deny whatever is not allowed
/// (default, dontAsk: orch passes no tool lists to Codex), are read-only; modes that edit are
/// workspace-write; bypassPermissions drops the sandbox and approvals altogether.
pub fn sandbox(mode: PermissionMode) -> Option<&'static str> {
    match mode {
        PermissionMode::Plan | PermissionMode::Default | PermissionMode::DontAsk => {
            Some("read-only")
        }
        PermissionMode::AcceptEdits | PermissionMode::Auto => Some("workspace-write"),
        PermissionMode::BypassPermissions => None,
    }
}

fn stage_options(stage: &Stage) -> Vec<String> {
    match stage.permission_mode.map(sandbox) {
        Some(Some(mode)) => vec!["-c".to_string(), format!("sandbox_mode=\"{mode}\"")],
        Some(None) => vec!["--dangerously-bypass-approvals-and-sandbox".to_string()],
        None => Vec::new(),
    }
}

/// The stage settings a CLI without tool lists or a budget option cannot honour: Codex and
/// Gemini take neither (and their tools have other names than Claude Code's).
pub fn unsupported_settings(stage: &Stage) -> Vec<&'static str> {
    let mut names = Vec::new();
    if !stage.allowed_tools.is_empty() {
        names.push("allowed_tools");
    }
    if !stage.disallowed_tools.is_empty() {
        names.push("disallowed_tools");
    }
    if stage.max_budget_usd.is_some() {
        names.push("max_budget_usd");
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_for_test;

    const BIN: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/agent/fake-codex");

    fn argv_for(stage: &Stage, resume: Option<&str>) -> Vec<String> {
        let config = load_for_test(&format!("[agents.codex]\nbin = {BIN:?}\n"), &[]).unwrap();
        let no_env = |_: &str| None;
        let env = AgentEnv::resolve_with(&config, "codex", &no_env).unwrap();
        let launch = Launch {
            prompt: "--fix {bin}\n$(x)",
            stage,
            resume,
        };
        Codex.argv(&env, &launch).unwrap()
    }

    #[test]
    fn exec_json_with_the_sandbox_of_the_permission_mode_then_the_prompt() {
        let stage = Stage {
            permission_mode: Some(PermissionMode::AcceptEdits),
            extra_args: vec!["--skip-git-repo-check".into()],
            ..Stage::default()
        };
        assert_eq!(
            argv_for(&stage, None),
            [
                BIN,
                "exec",
                "--json",
                "-c",
                "sandbox_mode=\"workspace-write\"",
                "--skip-git-repo-check",
                "--",
                "--fix {bin}\n$(x)"
            ]
        );
        let plan = Stage {
            permission_mode: Some(PermissionMode::Plan),
            ..Stage::default()
        };
        assert_eq!(argv_for(&plan, None)[4], "sandbox_mode=\"read-only\"");
        let bypass = Stage {
            permission_mode: Some(PermissionMode::BypassPermissions),
            ..Stage::default()
        };
        assert_eq!(
            argv_for(&bypass, None)[3],
            "--dangerously-bypass-approvals-and-sandbox"
        );
    }

    /// The mapping the README documents, mode by mode, as it reaches the command line.
    #[test]
    fn every_permission_mode_has_its_sandbox_on_the_command_line() {
        let expected = [
            (PermissionMode::Default, "-c sandbox_mode=\"read-only\""),
            (
                PermissionMode::AcceptEdits,
                "-c sandbox_mode=\"workspace-write\"",
            ),
            (PermissionMode::Plan, "-c sandbox_mode=\"read-only\""),
            (
                PermissionMode::BypassPermissions,
                "--dangerously-bypass-approvals-and-sandbox",
            ),
            (PermissionMode::DontAsk, "-c sandbox_mode=\"read-only\""),
            (PermissionMode::Auto, "-c sandbox_mode=\"workspace-write\""),
        ];
        assert_eq!(expected.len(), PermissionMode::ALL.len());
        for (mode, flags) in expected {
            let stage = Stage {
                permission_mode: Some(mode),
                ..Stage::default()
            };
            let argv = argv_for(&stage, None).join(" ");
            assert!(
                argv.starts_with(&format!("{BIN} exec --json {flags} -- ")),
                "{mode:?}: {argv}"
            );
        }
        // No mode set (a profile's own argv, say): Codex's own default, nothing passed.
        assert_eq!(argv_for(&Stage::default(), None)[3], "--");
    }

    #[test]
    fn a_thread_is_resumed_by_the_resume_subcommand_its_options_after_it() {
        let stage = Stage {
            permission_mode: Some(PermissionMode::AcceptEdits),
            ..Stage::default()
        };
        assert_eq!(
            argv_for(&stage, Some("01a226a8-915f-7291-ba2c-4b240d23891e")),
            [
                BIN,
                "exec",
                "--json",
                "resume",
                "01a226a8-915f-7291-ba2c-4b240d23891e",
                "-c",
                "sandbox_mode=\"workspace-write\"",
                "--",
                "--fix {bin}\n$(x)"
            ]
        );
    }

    #[test]
    fn tool_lists_and_budgets_are_named_not_passed() {
        let stage = Stage {
            allowed_tools: vec!["Bash(git diff:*)".into()],
            max_budget_usd: Some(2.0),
            ..Stage::default()
        };
        assert_eq!(
            Codex.unsupported(&stage),
            ["allowed_tools", "max_budget_usd"]
        );
        let argv = argv_for(&stage, None);
        assert!(!argv.iter().any(|a| a.contains("Bash")), "{argv:?}");
    }
}
