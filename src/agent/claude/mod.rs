//! Claude Code (`claude`), the agent orch started with: its credentials file, its command line,
//! its stream-json output read live (`stream`), judged (`judge`) and shown (`transcript`).
//! Everything orch knows about Claude Code is in this folder.

pub mod credentials;
pub mod judge;
pub mod stream;
#[cfg(test)]
pub(crate) mod suite;
pub mod transcript;

use crate::agent::{argv, Agent, AgentEnv, Launch, Spec, Unlaunchable};
use crate::config::{self, Stage};
use crate::domain::agent::AgentKind;

/// Claude Code's print mode, streaming JSON lines (`--verbose` is required with stream-json). The
/// prompt comes last, after `--`: whatever the task's text starts with (`--dangerously-skip-
/// permissions`, say), the agent cannot parse it as an option, and no variadic option
/// (`--allowedTools`) can swallow it.
pub const DEFAULT_ARGV: &[&str] = &[
    "{bin}",
    "-p",
    "--output-format",
    "stream-json",
    "--verbose",
    "--",
    "{prompt}",
];

pub static SPEC: Spec = Spec {
    kind: AgentKind::Claude,
    product: "Claude Code",
    default_bin: "claude",
    bin_setting: Some(config::CLAUDE_BIN),
    install: "npm install -g @anthropic-ai/claude-code",
    update: "claude update",
    login: "run claude, then /login",
    settings_env: &["IS_SANDBOX", "CLAUDE_CODE_BUBBLEWRAP"],
    readers: readers!(stream::StreamProgress, chunked_text: false),
};

/// Claude Code.
pub struct Claude;

impl Agent for Claude {
    fn spec(&self) -> &'static Spec {
        &SPEC
    }

    /// The stage's permission mode, tools and budget as Claude Code's options; `--resume
    /// <session id>` continues a session (from the same working directory only).
    fn argv(&self, env: &AgentEnv, launch: &Launch) -> Result<Vec<String>, Unlaunchable> {
        let settings = stage_options(launch.stage);
        let resume = argv::resume_option("--resume", launch);
        argv::for_launch(env, DEFAULT_ARGV, launch, &[], &settings, &resume)
    }
}

/// A stage's settings as Claude Code's options. The tool lists are variadic options in Claude
/// Code: each tool goes as `--allowedTools=RULE`, which binds exactly one value and cannot take
/// the arguments after it.
fn stage_options(stage: &Stage) -> Vec<String> {
    let mut args = Vec::new();
    if let Some(mode) = stage.permission_mode {
        args.extend(["--permission-mode".to_string(), mode.as_str().to_string()]);
    }
    args.extend(
        stage
            .allowed_tools
            .iter()
            .map(|tool| format!("--allowedTools={tool}")),
    );
    args.extend(
        stage
            .disallowed_tools
            .iter()
            .map(|tool| format!("--disallowedTools={tool}")),
    );
    if let Some(usd) = stage.max_budget_usd {
        args.extend(["--max-budget-usd".to_string(), usd.to_string()]);
    }
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{load_for_test, PermissionMode};

    #[test]
    fn print_mode_streaming_json_extras_then_the_prompt_last() {
        let bin = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/agent/fake-claude");
        let config = load_for_test(
            &format!(
                "[agents.claude]\nbin = {bin:?}\nextra_args = [\"--permission-mode\", \"acceptEdits\"]\n"
            ),
            &[],
        )
        .unwrap();
        let no_env = |_: &str| None;
        let env = AgentEnv::resolve_with(&config, "claude", &no_env).unwrap();
        let stage = Stage {
            extra_args: vec!["--max-turns".into(), "40".into()],
            permission_mode: Some(PermissionMode::Plan),
            allowed_tools: vec!["Bash(git diff:*)".into(), "Edit".into()],
            disallowed_tools: vec!["WebFetch".into()],
            max_budget_usd: Some(2.5),
            ..Stage::default()
        };
        let launch = Launch {
            prompt: "do {bin} it\n$(x)",
            stage: &stage,
            resume: Some("33d934ee-0346-4605-97d5-57f9a6a80ff4"),
        };
        assert_eq!(
            Claude.argv(&env, &launch).unwrap(),
            [
                bin,
                "-p",
                "--output-format",
                "stream-json",
                "--verbose",
                "--permission-mode",
                "plan",
                "--allowedTools=Bash(git diff:*)",
                "--allowedTools=Edit",
                "--disallowedTools=WebFetch",
                "--max-budget-usd",
                "2.5",
                "--permission-mode",
                "acceptEdits",
                "--max-turns",
                "40",
                "--resume",
                "33d934ee-0346-4605-97d5-57f9a6a80ff4",
                "--",
                "do {bin} it\n$(x)",
            ]
        );
        let template: Vec<String> = DEFAULT_ARGV.iter().map(|s| s.to_string()).collect();
        assert!(crate::domain::prompt::prompt_is_positional(&template));
    }
}
