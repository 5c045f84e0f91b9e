//! An agent's command line from its argv template: the binary and the prompt filled in, and the
//! extra arguments — the kind's spelling of the stage's settings (permission mode, tools,
//! budget), the profile's, the stage's, and the kind's own for this launch (a session to resume,
//! say) — just before the template's `--`. The settings come first, so an `extra_args` that
//! repeats one of them overrides it (the agents take the last of a repeated option).

use crate::agent::env::{AgentEnv, Unlaunchable};
use crate::domain::prompt;

/// The argv to start the profile's agent with: the profile's template, else `default` (the
/// kind's), with `Extras` before its `--`. `{bin}` is
/// the binary preflight checks, found the same way (`AgentEnv::program`); a template that names
/// it fails when it cannot be found.
pub fn for_agent(
    env: &AgentEnv,
    default: &[&str],
    prompt_text: &str,
    extras: Extras,
) -> Result<Vec<String>, Unlaunchable> {
    let profile = env.profile();
    let template: Vec<&str> = match &profile.argv {
        Some(argv) => argv.iter().map(String::as_str).collect(),
        None => default.to_vec(),
    };
    let bin = if template.iter().any(|arg| arg.contains("{bin}")) {
        env.program()?.to_string_lossy().into_owned()
    } else {
        env.bin().value
    };
    let extras: Vec<&String> = extras
        .settings
        .iter()
        .chain(&profile.extra_args)
        .chain(extras.stage)
        .chain(extras.launch)
        .collect();
    Ok(build(&bin, prompt_text, &template, &extras))
}

/// The arguments an agent kind adds to its template, in the order they go in.
#[derive(Debug, Clone, Copy)]
pub struct Extras<'a> {
    /// The stage's settings in the kind's words (`--permission-mode plan`, …).
    pub settings: &'a [String],
    /// The stage's `extra_args`.
    pub stage: &'a [String],
    /// This launch's own (`--resume <session>`).
    pub launch: &'a [String],
}

/// The full argv: `template` with `{bin}` and `{prompt}` filled in, and `extras`, each as given,
/// just before the template's `--` (at the end when it has none). Every element goes to the agent
/// as one argument, never through a shell.
pub fn build(bin: &str, prompt_text: &str, template: &[&str], extras: &[&String]) -> Vec<String> {
    let vars = [("bin", bin), ("prompt", prompt_text)];
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
    argv.extend(extras.iter().map(|arg| arg.to_string()));
    argv.extend(filled(&template[extras_at..]));
    argv
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extras_go_before_the_end_of_options_and_values_are_not_rescanned() {
        let extras = ["--max-turns".to_string(), "40".to_string()];
        let extras: Vec<&String> = extras.iter().collect();
        let argv = build(
            "/bin/agent",
            "do {bin} it\n$(x)",
            &["{bin}", "run", "--", "{prompt}"],
            &extras,
        );
        assert_eq!(
            argv,
            [
                "/bin/agent",
                "run",
                "--max-turns",
                "40",
                "--",
                "do {bin} it\n$(x)"
            ]
        );
        let argv = build(
            "agent",
            "hi",
            &["wrap", "{bin}", "--prompt={prompt}"],
            &extras,
        );
        assert_eq!(argv, ["wrap", "agent", "--prompt=hi", "--max-turns", "40"]);
    }
}
