//! An agent's command line from its argv template: the binary and the prompt filled in, and the
//! extra arguments — a subcommand the launch needs first (Codex's `resume <thread>`), the kind's
//! spelling of the stage's settings (permission mode, tools, budget), the profile's, the
//! stage's, and the kind's own options for this launch (a session to resume, say) — just before
//! the template's `--`, or before the element the prompt is joined to (`--prompt={prompt}`). The
//! settings come before the `extra_args`, so an `extra_args` that repeats one of them overrides
//! it (the agents take the last of a repeated option).

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
        .lead
        .iter()
        .chain(extras.settings)
        .chain(&profile.extra_args)
        .chain(extras.stage)
        .chain(extras.launch)
        .collect();
    Ok(build(&bin, prompt_text, &template, &extras))
}

/// The argv for one launch: `for_agent` with the launch's prompt and the stage's `extra_args`,
/// and the kind's `lead` (before everything), `settings` (before the extra arguments) and
/// `tail` (after them).
pub fn for_launch(
    env: &AgentEnv,
    default: &[&str],
    launch: &crate::agent::Launch,
    lead: &[String],
    settings: &[String],
    tail: &[String],
) -> Result<Vec<String>, Unlaunchable> {
    let extras = Extras {
        lead,
        settings,
        stage: &launch.stage.extra_args,
        launch: tail,
    };
    for_agent(env, default, launch.prompt, extras)
}

/// `[option, session]` when the launch continues a session: how most agents are told to.
pub fn resume_option(option: &str, launch: &crate::agent::Launch) -> Vec<String> {
    launch
        .resume
        .map(|session| vec![option.to_string(), session.to_string()])
        .unwrap_or_default()
}

/// The arguments an agent kind adds to its template, in the order they go in.
#[derive(Debug, Clone, Copy)]
pub struct Extras<'a> {
    /// What must come first (a subcommand and its operand: Codex's `resume <thread>`).
    pub lead: &'a [String],
    /// The stage's settings in the kind's words (`--permission-mode plan`, …).
    pub settings: &'a [String],
    /// The stage's `extra_args`.
    pub stage: &'a [String],
    /// This launch's own (`--resume <session>`).
    pub launch: &'a [String],
}

/// The full argv: `template` with `{bin}` and `{prompt}` filled in, and `extras`, each as given,
/// just before the template's `--` or the element that holds the prompt, whichever comes first
/// (at the end when it has neither). Every element goes to the agent as one argument, never
/// through a shell.
pub fn build(bin: &str, prompt_text: &str, template: &[&str], extras: &[&String]) -> Vec<String> {
    let vars = [("bin", bin), ("prompt", prompt_text)];
    let extras_at = template
        .iter()
        .position(|arg| *arg == "--" || arg.contains("{prompt}"))
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
        assert_eq!(argv, ["wrap", "agent", "--max-turns", "40", "--prompt=hi"]);
        let argv = build("agent", "hi", &["{bin}", "run"], &extras);
        assert_eq!(argv, ["agent", "run", "--max-turns", "40"]);
    }
}
