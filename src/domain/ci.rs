//! The CI gate's rules: what a commit's checks (commit statuses and, on GitHub, check runs) say
//! together, what a gated stage's waiting job does next, and the failing checks as the text a
//! prompt carries (`{ci_failures}`). Pure: the forge reads the checks, the app applies the step.

use serde::Serialize;

/// Where one check of a commit stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckState {
    /// Queued or running.
    Pending,
    Success,
    /// Failed, errored, timed out, cancelled, or wants an action.
    Failure,
}

/// One check of a commit: a commit status (by its context) or a check run (by its name).
/// Every text here comes from the forge and is untrusted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    pub name: String,
    pub state: CheckState,
    pub description: String,
    pub url: String,
    /// The end of the check's output, where the forge gives one (a check run's text).
    pub log_tail: String,
}

/// What a commit's checks say together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// No check at all (yet): no CI, or CI that has not started.
    Nothing,
    /// Some check is still running, none failed.
    Pending,
    /// Every check passed.
    Green,
    /// These checks failed.
    Red(Vec<Check>),
}

/// The verdict of `checks`: one failure is red whatever the rest say.
pub fn verdict(checks: &[Check]) -> Verdict {
    if checks.is_empty() {
        return Verdict::Nothing;
    }
    let failed: Vec<Check> = checks
        .iter()
        .filter(|c| c.state == CheckState::Failure)
        .cloned()
        .collect();
    if !failed.is_empty() {
        return Verdict::Red(failed);
    }
    match checks.iter().all(|c| c.state == CheckState::Success) {
        true => Verdict::Green,
        false => Verdict::Pending,
    }
}

/// What to do when a commit has no check once `ci_grace_seconds` passed (`ci_missing`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// Go on, with a note in the job's history (the default: a repository without CI).
    Pass,
    /// Fail the task: CI is required.
    Fail,
}

/// The gate's settings, in milliseconds and counts.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// How long a commit may have no check at all before `missing` applies.
    pub grace_ms: i64,
    /// How long the gate waits for a verdict at most.
    pub timeout_ms: i64,
    pub missing: Missing,
    /// Re-runs of the gated stage for red CI, after which the task fails.
    pub max_fixes: u32,
}

/// What the gate does with a waiting job, looked at `waited_ms` after the gated stage's push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Look again at the next tick.
    Wait,
    /// The next stage may run; the note says why (green, or no CI).
    Pass(String),
    /// Run the gated stage again, these checks in its prompt (fix number `fix` of the maximum).
    Fix { failed: Vec<Check>, fix: u32 },
    /// Fail the task, with this reason.
    Fail(String),
}

/// The gate's step for a commit whose checks say `verdict`, after `fixes` re-runs so far.
pub fn step(verdict: &Verdict, waited_ms: i64, fixes: u32, policy: &Policy) -> Step {
    match verdict {
        Verdict::Green => Step::Pass("CI is green".to_string()),
        Verdict::Red(failed) if fixes < policy.max_fixes => Step::Fix {
            failed: failed.clone(),
            fix: fixes + 1,
        },
        Verdict::Red(failed) => Step::Fail(format!(
            "CI is red after {fixes} fix(es) (ci_max_fixes {}): {}",
            policy.max_fixes,
            names(failed)
        )),
        Verdict::Nothing if waited_ms >= policy.grace_ms => match policy.missing {
            Missing::Pass => Step::Pass(format!(
                "no CI reported on the commit within {} s: passed (ci_missing = \"pass\")",
                policy.grace_ms / 1000
            )),
            Missing::Fail => Step::Fail(format!(
                "no CI reported on the commit within {} s (ci_missing = \"fail\")",
                policy.grace_ms / 1000
            )),
        },
        Verdict::Nothing | Verdict::Pending if waited_ms >= policy.timeout_ms => Step::Fail(
            format!("CI gave no verdict within {} s", policy.timeout_ms / 1000),
        ),
        Verdict::Nothing | Verdict::Pending => Step::Wait,
    }
}

/// The failed checks' names, for a one-line reason.
fn names(checks: &[Check]) -> String {
    let names: Vec<&str> = checks.iter().map(|c| c.name.as_str()).collect();
    crate::output::clip(&names.join(", "), 200)
}

/// Longest `{ci_failures}`: a prompt is one argument of at most 128 KiB, its body and the
/// stage's template need the rest.
pub const FAILURES_MAX_BYTES: usize = 16 * 1024;
/// Longest log tail kept per check.
pub const LOG_TAIL_MAX_BYTES: usize = 2 * 1024;

/// The failed checks as the gated stage's prompt shows them (`{ci_failures}`): each check's
/// name, description, link and the tail of its log, at most `FAILURES_MAX_BYTES` in all. The
/// text is the forge's: it is data for the agent, after `--`, never a command to orch.
pub fn failures_text(failed: &[Check]) -> String {
    let mut out = String::new();
    for check in failed {
        out.push_str(&format!("- {} failed", one_line(&check.name)));
        if !check.description.trim().is_empty() {
            out.push_str(&format!(": {}", one_line(&check.description)));
        }
        if !check.url.trim().is_empty() {
            out.push_str(&format!(" ({})", one_line(&check.url)));
        }
        out.push('\n');
        let tail = tail(&check.log_tail, LOG_TAIL_MAX_BYTES);
        if !tail.trim().is_empty() {
            out.push_str("  last lines of its log:\n");
            for line in tail.lines() {
                out.push_str(&format!("    {line}\n"));
            }
        }
    }
    super::prompt::cap(out, FAILURES_MAX_BYTES)
}

/// The text on one line, at most 300 characters.
fn one_line(text: &str) -> String {
    crate::output::clip(&text.split_whitespace().collect::<Vec<_>>().join(" "), 300)
}

/// The last `max_bytes` of `text`, from a character boundary.
pub fn tail(text: &str, max_bytes: usize) -> &str {
    if text.len() <= max_bytes {
        return text;
    }
    let mut start = text.len() - max_bytes;
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(name: &str, state: CheckState) -> Check {
        Check {
            name: name.to_string(),
            state,
            description: format!("{name} said so"),
            url: format!("https://ci.example/{name}"),
            log_tail: String::new(),
        }
    }

    const POLICY: Policy = Policy {
        grace_ms: 60_000,
        timeout_ms: 3_600_000,
        missing: Missing::Pass,
        max_fixes: 3,
    };

    #[test]
    fn one_failure_is_red_and_all_success_is_green() {
        use CheckState::*;
        assert_eq!(verdict(&[]), Verdict::Nothing);
        assert_eq!(
            verdict(&[check("a", Success), check("b", Success)]),
            Verdict::Green
        );
        assert_eq!(
            verdict(&[check("a", Success), check("b", Pending)]),
            Verdict::Pending
        );
        let red = verdict(&[check("a", Pending), check("b", Failure)]);
        assert_eq!(red, Verdict::Red(vec![check("b", Failure)]));
    }

    #[test]
    fn the_gate_waits_passes_fixes_and_fails_by_the_policy() {
        let red = Verdict::Red(vec![check("lint", CheckState::Failure)]);
        assert_eq!(step(&Verdict::Pending, 1_000, 0, &POLICY), Step::Wait);
        assert_eq!(step(&Verdict::Nothing, 1_000, 0, &POLICY), Step::Wait);
        assert!(matches!(
            step(&Verdict::Green, 1, 0, &POLICY),
            Step::Pass(_)
        ));
        assert!(
            matches!(step(&Verdict::Nothing, 60_000, 0, &POLICY), Step::Pass(note) if note.contains("no CI"))
        );
        let fail = Policy {
            missing: Missing::Fail,
            ..POLICY
        };
        assert!(matches!(
            step(&Verdict::Nothing, 60_000, 0, &fail),
            Step::Fail(_)
        ));
        assert!(matches!(
            step(&red, 1, 0, &POLICY),
            Step::Fix { fix: 1, .. }
        ));
        assert!(matches!(
            step(&red, 1, 2, &POLICY),
            Step::Fix { fix: 3, .. }
        ));
        assert!(matches!(step(&red, 1, 3, &POLICY), Step::Fail(why) if why.contains("lint")));
        assert!(matches!(
            step(&Verdict::Pending, 3_600_000, 0, &POLICY),
            Step::Fail(why) if why.contains("no verdict")
        ));
    }

    #[test]
    fn the_failures_text_names_each_check_and_is_bounded() {
        let mut lint = check("lint", CheckState::Failure);
        lint.log_tail = format!("{}\nerror: unused import\n", "x".repeat(10_000));
        let text = failures_text(&[lint]);
        assert!(text.starts_with("- lint failed: lint said so (https://ci.example/lint)\n"));
        assert!(text.contains("    error: unused import"));
        assert!(text.len() < 3 * 1024, "{}", text.len());
        let many: Vec<Check> = (0..200)
            .map(|i| {
                let mut c = check(&format!("check-{i}"), CheckState::Failure);
                c.log_tail = "y".repeat(2000);
                c
            })
            .collect();
        let text = failures_text(&many);
        assert!(text.len() <= FAILURES_MAX_BYTES + 32, "{}", text.len());
        assert!(text.ends_with("[… cut by orch]"));
        assert_eq!(tail("héllo", 4), "llo");
    }
}
