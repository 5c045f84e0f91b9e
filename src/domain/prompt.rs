//! The stage prompt: a template with `{placeholder}`s, from `[stages.NAME] prompt` or built in.
//! The prompts are orch's, the same whatever agent runs the stage; an agent's argv template
//! (`[agents.NAME] argv`) is filled in by the same rule.
//!
//! Substitution is one pass of plain text replacement: a value is never scanned again, so a task
//! body holding `{stage}` reaches the agent as written, and an unknown `{word}` stays as it is.

/// What a prompt (and an argv template) may refer to, as `{name}`.
pub const PLACEHOLDERS: &[&str] = &[
    "task",
    "title",
    "body",
    "issue",
    "stage",
    "project",
    "attempt",
    "previous_result",
    "ci_failures",
    "review_note",
];

/// The most one argv element may hold on Linux (MAX_ARG_STRLEN, 128 KiB, less its NUL): the
/// prompt reaches the agent as one.
pub const ARG_MAX_BYTES: usize = 128 * 1024 - 1;
/// A task's body and title are refused at enqueue above these sizes, so the prompt built from
/// them (with the previous stage's result, up to 32 KiB, and the template) fits in one argument.
pub const BODY_MAX_BYTES: usize = 64 * 1024;
pub const TITLE_MAX_BYTES: usize = 1024;

/// Why `text` cannot be part of a prompt (one argv element): a NUL byte, or more than `max_bytes`.
pub fn unfit(what: &str, text: &str, max_bytes: usize) -> Option<String> {
    if let Some(at) = text.find('\0') {
        return Some(format!(
            "{what} holds a NUL byte (at byte {at}), which no program argument can carry"
        ));
    }
    (text.len() > max_bytes).then(|| {
        format!(
            "{what} is {} bytes, more than the {max_bytes} it may hold (the prompt reaches the \
             agent as one program argument, at most 128 KiB on Linux)",
            text.len()
        )
    })
}

/// Values for the placeholders, by name. A missing name is left in the text untouched.
pub type Vars<'a> = [(&'a str, &'a str)];

/// Replace every `{name}` whose name is in `vars`, in one pass over `template`.
pub fn substitute(template: &str, vars: &Vars) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let value = after.find('}').and_then(|close| {
            let name = &after[..close];
            vars.iter()
                .find(|(known, _)| *known == name)
                .map(|(_, value)| (*value, close))
        });
        match value {
            Some((value, close)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Whether an argv template keeps the prompt from being read as an option: every element that
/// starts with `{prompt}` comes after a `--` element. (`--prompt={prompt}` is safe as it is.)
pub fn prompt_is_positional(template: &[String]) -> bool {
    let end_of_options = template.iter().position(|arg| arg == "--");
    template
        .iter()
        .enumerate()
        .filter(|(_, arg)| arg.starts_with("{prompt}"))
        .all(|(at, _)| end_of_options.is_some_and(|end| end < at))
}

/// `text` cut to `max_bytes` on a character boundary, with a note saying so: a prompt goes to the
/// agent as one argv element, which Linux limits to 128 KiB.
pub fn cap(mut text: String, max_bytes: usize) -> String {
    if text.len() > max_bytes {
        let mut cut = max_bytes;
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text.push_str("\n[… cut by orch]");
    }
    text
}

/// What a run sent back to fix red CI is told when its template does not place
/// `{ci_failures}` itself.
pub const CI_FAILURES_BLOCK: &str = "\n\nThe repository's CI failed on the commit this stage \
left. Fix what makes these checks fail, then commit:\n{ci_failures}";

/// What a run a reviewer sent back is told when its template does not place `{review_note}`
/// itself.
pub const REVIEW_NOTE_BLOCK: &str = "\n\nA reviewer sent this stage back with this note; \
address it:\n{review_note}";

/// The template for `stage`: the configured one, else the built-in one.
pub fn template(stage: &str, configured: Option<&str>) -> String {
    configured.map_or_else(|| builtin(stage), str::to_string)
}

/// The shared head of every built-in prompt; the stage's instructions follow it.
const FRAME: &str = "You work on the {stage} stage of an automated pipeline: task {task} of \
project {project}, attempt {attempt}. Nobody will answer questions: decide, act, and say what you \
did.

Task {task}: {title}

{body}

Result of the previous stage (empty when there is none):
{previous_result}

";

const ANALYST: &str = "Your job: analyse the task. Read the code and documents it touches. Write \
down what must change and why, the acceptance criteria, the risks and the open questions, and \
what is out of scope. Do not change code. End with a short summary of the analysis.";

const ARCHITECT: &str = "Your job: design the change from the analysis above. Name the modules, \
files, data structures and interfaces involved, the order of the work, and how it will be tested. \
Keep to the existing design of the code base. Do not implement it yet. End with a short summary \
of the design.";

const DEVELOPER: &str = "Your job: implement the task following the design above. Make focused \
changes in the style of the code around them, add or update the tests, and run the build and \
the tests until they pass. End with a short summary of what you changed.";

const REVIEWER: &str = "Your job: review the changes made for this task (see the version \
control history and the working tree). Check correctness, error handling, security, tests and \
style against the task. Fix what is clearly wrong; list anything left for a person. End with a \
short summary of the review.";

const TESTER: &str = "Your job: test the change. Run the whole test suite and exercise the new \
behaviour, including its edge cases and failure paths; add tests where coverage is missing and \
fix what fails. End with a short summary of what was tested and the outcome.";

const DEPLOYER: &str = "Your job: prepare the change for release. Check that it builds cleanly, \
that the tests pass, and that the documentation and the changelog describe it; follow the \
project's release or deployment notes if it has any. End with a short summary of what was done.";

const GENERIC: &str = "Your job: carry out the {stage} stage for this task. End with a short \
summary of what you did.";

fn instructions(stage: &str) -> &'static str {
    match stage {
        "analyst" => ANALYST,
        "architect" => ARCHITECT,
        "developer" => DEVELOPER,
        "reviewer" => REVIEWER,
        "tester" => TESTER,
        "deployer" => DEPLOYER,
        _ => GENERIC,
    }
}

/// The built-in template of `stage` (a generic one for stages orch does not know).
pub fn builtin(stage: &str) -> String {
    format!("{FRAME}{}", instructions(stage))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn substitutes_once_and_leaves_the_rest() {
        let vars = [
            ("task", "T-1"),
            ("body", "run {stage} and $(rm -rf ~)"),
            ("stage", "dev"),
        ];
        assert_eq!(
            substitute("{task}: {body} in {stage} {unknown} {", &vars),
            "T-1: run {stage} and $(rm -rf ~) in dev {unknown} {"
        );
        assert_eq!(substitute("{{task}}", &vars), "{T-1}");
        assert_eq!(substitute("", &vars), "");
    }

    #[test]
    fn the_prompt_must_follow_the_end_of_options() {
        let template =
            |args: &[&str]| -> Vec<String> { args.iter().map(|a| a.to_string()).collect() };
        assert!(prompt_is_positional(&template(&[
            "{bin}", "-p", "--", "{prompt}"
        ])));
        assert!(prompt_is_positional(&template(&[
            "wrap",
            "{bin}",
            "--prompt={prompt}"
        ])));
        assert!(!prompt_is_positional(&template(&[
            "{bin}", "-p", "{prompt}"
        ])));
        assert!(!prompt_is_positional(&template(&[
            "{bin}", "{prompt}", "--"
        ])));
    }

    #[test]
    fn cap_cuts_on_a_character() {
        assert_eq!(cap("All done".into(), 100), "All done");
        assert_eq!(cap("All done".into(), 5), "All d\n[… cut by orch]");
        assert_eq!(cap("né".into(), 2), "n\n[… cut by orch]");
    }

    #[test]
    fn every_default_stage_has_its_own_template() {
        let mut seen = Vec::new();
        for stage in crate::config::DEFAULT_STAGES {
            let text = builtin(stage);
            assert!(!text.contains("carry out the {stage} stage"), "{stage}");
            for name in ["task", "title", "body", "project", "previous_result"] {
                assert!(
                    text.contains(&format!("{{{name}}}")),
                    "{stage} lacks {name}"
                );
            }
            assert!(!seen.contains(&text));
            seen.push(text);
        }
        assert!(builtin("docs").contains("carry out the {stage} stage"));
        assert_eq!(template("x", Some("mine {task}")), "mine {task}");
    }
}
