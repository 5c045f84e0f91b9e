//! The agent's command line: its argv template, with the binary and the prompt filled in, and the
//! extra arguments per agent and per stage.

use crate::claude::env::{AgentEnv, Unlaunchable};
use crate::claude::prompt;
use crate::config::{Agent, Stage};

/// Claude Code's print mode, streaming JSON lines (`--verbose` is required with stream-json).
pub const DEFAULT_ARGV: &[&str] = &[
    "{bin}",
    "-p",
    "{prompt}",
    "--output-format",
    "stream-json",
    "--verbose",
];

/// The argv to start `agent` with for one stage. `{bin}` is the binary preflight checks, found
/// the same way (`AgentEnv::program`); a template that names it fails when it cannot be found.
pub fn for_agent(
    agent: &AgentEnv,
    prompt_text: &str,
    stage: &Stage,
) -> Result<Vec<String>, Unlaunchable> {
    let profile = agent.profile();
    let bin = if template(profile).iter().any(|arg| arg.contains("{bin}")) {
        agent.program()?.to_string_lossy().into_owned()
    } else {
        agent.bin().value
    };
    Ok(build(&bin, prompt_text, profile, stage))
}

/// The profile's argv template, else `DEFAULT_ARGV`.
fn template(profile: &Agent) -> Vec<&str> {
    match &profile.argv {
        Some(argv) => argv.iter().map(String::as_str).collect(),
        None => DEFAULT_ARGV.to_vec(),
    }
}

/// The full argv: the profile's template (or `DEFAULT_ARGV`) with `{bin}` and `{prompt}` filled
/// in, then the profile's and the stage's extra arguments, each as given. Every element goes to
/// the agent as one argument, never through a shell.
pub fn build(bin: &str, prompt_text: &str, profile: &Agent, stage: &Stage) -> Vec<String> {
    let vars = [("bin", bin), ("prompt", prompt_text)];
    template(profile)
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
