//! The agent's command line: its argv template, with the binary and the prompt filled in, and the
//! extra arguments per agent and per stage.

use crate::claude::env::{AgentEnv, Unlaunchable};
use crate::claude::prompt;
use crate::config::{Agent, Stage};

/// Claude Code's print mode, streaming JSON lines (`--verbose` is required with stream-json). The
/// prompt comes last, after `--`: whatever the task's text starts with (`--dangerously-skip-
/// permissions`, say), the agent cannot parse it as an option.
pub const DEFAULT_ARGV: &[&str] = &[
    "{bin}",
    "-p",
    "--output-format",
    "stream-json",
    "--verbose",
    "--",
    "{prompt}",
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
/// in, and the profile's and the stage's extra arguments, each as given, just before the
/// template's `--` (at the end when it has none). Every element goes to the agent as one
/// argument, never through a shell.
pub fn build(bin: &str, prompt_text: &str, profile: &Agent, stage: &Stage) -> Vec<String> {
    let vars = [("bin", bin), ("prompt", prompt_text)];
    let template = template(profile);
    let extras_at = template
        .iter()
        .position(|arg| *arg == "--")
        .unwrap_or(template.len());
    let filled = |args: &[&str]| -> Vec<String> {
        args.iter()
            .map(|arg| prompt::substitute(arg, &vars))
            .collect()
    };
    let mut argv = filled(&template[..extras_at]);
    argv.extend(profile.extra_args.iter().cloned());
    argv.extend(stage.extra_args.iter().cloned());
    argv.extend(filled(&template[extras_at..]));
    argv
}

/// Whether a template keeps the prompt from being read as an option: every element that starts
/// with `{prompt}` comes after a `--` element. (`--prompt={prompt}` is safe as it is.)
pub fn prompt_is_positional(template: &[String]) -> bool {
    let end_of_options = template.iter().position(|arg| arg == "--");
    template
        .iter()
        .enumerate()
        .filter(|(_, arg)| arg.starts_with("{prompt}"))
        .all(|(at, _)| end_of_options.is_some_and(|end| end < at))
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
                "--output-format",
                "stream-json",
                "--verbose",
                "--permission-mode",
                "acceptEdits",
                "--max-turns",
                "40",
                "--",
                "do {bin} it\n$(x)",
            ]
        );
        let template: Vec<String> = DEFAULT_ARGV.iter().map(|s| s.to_string()).collect();
        assert!(prompt_is_positional(&template));
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
        assert!(prompt_is_positional(profile.argv.as_ref().unwrap()));
        let unsafe_template = ["{bin}".to_string(), "-p".into(), "{prompt}".into()];
        assert!(!prompt_is_positional(&unsafe_template));
    }
}
