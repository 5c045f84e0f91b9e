//! The agent's command line: which binary, its argv template, the extra arguments per agent and
//! per stage, and the home it runs in.

use std::path::PathBuf;

use crate::claude::prompt;
use crate::config::{self, Agent, Config, Stage};

/// Claude Code's print mode, streaming JSON lines (`--verbose` is required with stream-json).
pub const DEFAULT_ARGV: &[&str] = &[
    "{bin}",
    "-p",
    "{prompt}",
    "--output-format",
    "stream-json",
    "--verbose",
];

/// The binary to start: the profile's `bin`, else `claude_bin` (`ORCH_CLAUDE_BIN`).
pub fn agent_bin(config: &Config, profile: &Agent) -> String {
    profile
        .bin
        .clone()
        .or_else(|| config.text(config::CLAUDE_BIN).map(str::to_string))
        .unwrap_or_else(|| "claude".to_string())
}

/// The agent's HOME when it is not orch's: the profile's `home`, else `agent_home`
/// (`ORCH_AGENT_HOME`); None keeps orch's own.
pub fn agent_home(config: &Config, profile: &Agent) -> Option<PathBuf> {
    profile
        .home
        .clone()
        .or_else(|| config.path(config::AGENT_HOME))
}

/// The full argv: the profile's template (or `DEFAULT_ARGV`) with `{bin}` and `{prompt}` filled
/// in, then the profile's and the stage's extra arguments, each as given. Every element goes to
/// the agent as one argument, never through a shell.
pub fn build(bin: &str, prompt_text: &str, profile: &Agent, stage: &Stage) -> Vec<String> {
    let vars = [("bin", bin), ("prompt", prompt_text)];
    let template: Vec<&str> = match &profile.argv {
        Some(argv) => argv.iter().map(String::as_str).collect(),
        None => DEFAULT_ARGV.to_vec(),
    };
    template
        .into_iter()
        .map(|arg| prompt::substitute(arg, &vars))
        .chain(profile.extra_args.iter().cloned())
        .chain(stage.extra_args.iter().cloned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_argv_then_extra_arguments() {
        let profile = Agent {
            extra_args: vec!["--permission-mode".into(), "acceptEdits".into()],
            ..Agent::default()
        };
        let stage = Stage {
            extra_args: vec!["--max-turns".into(), "40".into()],
            ..Stage::default()
        };
        let argv = build("/bin/claude", "do {bin} it\n$(x)", &profile, &stage);
        assert_eq!(
            argv,
            [
                "/bin/claude",
                "-p",
                "do {bin} it\n$(x)",
                "--output-format",
                "stream-json",
                "--verbose",
                "--permission-mode",
                "acceptEdits",
                "--max-turns",
                "40"
            ]
        );
    }

    #[test]
    fn profile_template_replaces_the_default() {
        let profile = Agent {
            argv: Some(vec![
                "wrap".into(),
                "{bin}".into(),
                "--prompt={prompt}".into(),
            ]),
            ..Agent::default()
        };
        let argv = build("claude", "hi", &profile, &Stage::default());
        assert_eq!(argv, ["wrap", "claude", "--prompt=hi"]);
    }
}
