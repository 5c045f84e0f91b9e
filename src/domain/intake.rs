//! Intake: what a forge's labelled issue becomes as a task (its key, title and body), and when
//! the fleet's next sync of a project is due after one that failed. Pure: the app lists the
//! issues and the store writes what they imply.

use super::prompt;
use super::states::{JobState, PrState, TaskState};

/// The key of a task taken in from issue 44 of `team/orchestrator`: `ORCHESTRATOR-44`.
pub const DEFAULT_TASK_KEY: &str = "{REPO}-{number}";
/// The label that marks an issue for orch.
pub const DEFAULT_LABEL: &str = "orch";
/// The placeholders of `task_key`.
pub const KEY_PLACEHOLDERS: &[&str] = &["{number}", "{repo}", "{REPO}"];

/// The task key `template` gives issue `number` of `repo` (`owner/name`): `{number}`, `{repo}`
/// (the name as it is) and `{REPO}` (the name in upper case).
pub fn task_key(template: &str, repo: &str, number: i64) -> String {
    let name = repo.rsplit('/').next().unwrap_or(repo);
    template
        .replace("{number}", &number.to_string())
        .replace("{REPO}", &name.to_uppercase())
        .replace("{repo}", name)
}

/// Why `template` cannot be a `task_key`: it must name the issue's number (two issues would
/// share a task otherwise) and use no placeholder but `KEY_PLACEHOLDERS`.
pub fn check_task_key(template: &str) -> Result<(), String> {
    if !template.contains("{number}") {
        return Err("expected a template with {number}, e.g. \"{REPO}-{number}\"".to_string());
    }
    let mut rest = template.to_string();
    for known in KEY_PLACEHOLDERS {
        rest = rest.replace(known, "");
    }
    if rest.contains('{') || rest.contains('}') {
        return Err(format!(
            "unknown placeholder; a task key may use {}",
            KEY_PLACEHOLDERS.join(", ")
        ));
    }
    if template.len() > 100 || template.chars().any(char::is_control) {
        return Err("expected at most 100 printable characters".to_string());
    }
    Ok(())
}

/// Why `label` cannot be an intake label: the forges' issue lists take a comma-separated list
/// of labels, so one label with a comma would be read as two.
pub fn check_label(label: &str) -> Result<(), String> {
    if label.trim().is_empty() || label.len() > 100 {
        return Err("expected a label name of 1 to 100 characters".to_string());
    }
    if label.contains(',') || label.chars().any(char::is_control) {
        return Err("expected a label name without commas or control characters".to_string());
    }
    Ok(())
}

/// An issue's title for its task: the first line, cut to what a prompt carries.
pub fn title(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default().trim();
    within(line, prompt::TITLE_MAX_BYTES)
}

/// An issue's body for its task, cut to what a prompt carries (a forge allows more than the
/// one program argument a prompt travels in).
pub fn body(text: &str) -> String {
    within(text, prompt::BODY_MAX_BYTES)
}

/// `text` in at most `max_bytes`, the note that it was cut included.
fn within(text: &str, max_bytes: usize) -> String {
    match text.len() <= max_bytes {
        true => text.to_string(),
        false => prompt::cap(text.to_string(), max_bytes.saturating_sub(CUT_NOTE_ROOM)),
    }
}

/// Room for `prompt::cap`'s note.
const CUT_NOTE_ROOM: usize = 32;

/// The state labels orch keeps on an issue (`issue_labels = true`), one at a time.
pub const STATE_LABELS: &[&str] = &[
    "orch:queued",
    "orch:running",
    "orch:review",
    "orch:failed",
    "orch:done",
];

/// The colour each state label is made with (Gitea and GitHub take six hex digits).
pub fn label_color(label: &str) -> &'static str {
    match label {
        "orch:queued" => "c5def5",
        "orch:running" => "1d76db",
        "orch:review" => "fbca04",
        "orch:failed" => "d93f0b",
        _ => "0e8a16",
    }
}

/// The state label a task's issue carries: queued while its live job waits (for its turn, a
/// retry or budget), running while it runs, review while it waits for a person's approval or once complete with its pull request still
/// open (people have the last word), done when complete otherwise, failed when it failed; none
/// once cancelled.
pub fn state_label(
    task: TaskState,
    live_job: Option<JobState>,
    pull_request: Option<PrState>,
) -> Option<&'static str> {
    match (task, live_job) {
        (_, Some(JobState::Running)) => Some("orch:running"),
        (_, Some(JobState::AwaitingApproval)) => Some("orch:review"),
        (_, Some(_)) => Some("orch:queued"),
        // Its last stage done, its pull request waiting to be merged.
        (TaskState::Active, None) => Some("orch:review"),
        (TaskState::Complete, None) if pull_request == Some(PrState::Open) => Some("orch:review"),
        (TaskState::Complete, None) => Some("orch:done"),
        (TaskState::Failed, None) => Some("orch:failed"),
        (TaskState::Cancelled, None) => None,
    }
}

/// When to record a failed sync as done so that the next one is due after `wait_ms` (what a
/// rate limit asked) rather than after the usual `interval_ms`: a turn is due `interval_ms`
/// after it was last done.
pub fn done_at_for_wait(now: i64, interval_ms: i64, wait_ms: i64) -> i64 {
    now.saturating_add(wait_ms.saturating_sub(interval_ms).max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_names_the_issue() {
        assert_eq!(
            task_key(DEFAULT_TASK_KEY, "team/orchestrator", 44),
            "ORCHESTRATOR-44"
        );
        assert_eq!(task_key("{repo}#{number}", "team/web", 7), "web#7");
        assert_eq!(task_key("ISSUE-{number}", "web", 7), "ISSUE-7");
    }

    #[test]
    fn a_key_template_must_name_the_number_and_known_placeholders_only() {
        assert!(check_task_key(DEFAULT_TASK_KEY).is_ok());
        assert!(check_task_key("{repo}-{number}").is_ok());
        assert!(check_task_key("{REPO}").is_err());
        assert!(check_task_key("{project}-{number}").is_err());
        assert!(check_task_key("{number}\n").is_err());
    }

    #[test]
    fn labels_have_no_commas() {
        assert!(check_label("orch").is_ok());
        assert!(check_label("orch: ready").is_ok());
        assert!(check_label("a,b").is_err());
        assert!(check_label(" ").is_err());
    }

    #[test]
    fn issue_text_is_cut_to_what_a_prompt_carries() {
        assert_eq!(title("Fix it\nmore"), "Fix it");
        assert!(title(&"x".repeat(5000)).len() <= prompt::TITLE_MAX_BYTES);
        assert!(body(&"é".repeat(100_000)).len() <= prompt::BODY_MAX_BYTES);
        assert_eq!(body("short"), "short");
    }

    #[test]
    fn an_issue_carries_the_label_of_its_task_state() {
        use JobState as J;
        use TaskState as T;
        assert_eq!(
            state_label(T::Active, Some(J::Queued), None),
            Some("orch:queued")
        );
        assert_eq!(
            state_label(T::Active, Some(J::OverBudget), None),
            Some("orch:queued")
        );
        assert_eq!(
            state_label(T::Active, Some(J::Running), None),
            Some("orch:running")
        );
        assert_eq!(
            state_label(T::Active, None, None),
            Some("orch:review"),
            "waits for its merge"
        );
        let open = Some(PrState::Open);
        assert_eq!(state_label(T::Complete, None, open), Some("orch:review"));
        assert_eq!(
            state_label(T::Complete, None, Some(PrState::Merged)),
            Some("orch:done")
        );
        assert_eq!(state_label(T::Complete, None, None), Some("orch:done"));
        assert_eq!(state_label(T::Failed, None, open), Some("orch:failed"));
        assert_eq!(state_label(T::Cancelled, None, open), None);
        for label in STATE_LABELS {
            assert_eq!(label_color(label).len(), 6);
        }
    }

    #[test]
    fn a_rate_limit_longer_than_the_interval_pushes_the_next_sync_back() {
        assert_eq!(done_at_for_wait(1000, 300, 100), 1000);
        assert_eq!(done_at_for_wait(1000, 300, 900), 1600);
    }
}
