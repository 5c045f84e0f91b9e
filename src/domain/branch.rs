//! A task's branch name and worktree directory, from its key and title: pure text rules.
//!
//! The branch comes from a template (`branch_template`, default `feature/{task}-{slug}`): `{task}`
//! is the task key made safe (ASCII letters, digits, `-` and `_`, at most 64 characters), `{slug}`
//! the title lower-cased and folded to ASCII, every other run of characters a hyphen, at most 40
//! characters. Whatever a title or key holds (`../../x`, `-f`, `@{`, control characters, 300
//! characters of emoji), the name is one git accepts as a branch (`git check-ref-format
//! --branch`) and that cannot be read as an option; `valid` checks a whole name by git's rules,
//! so a template an operator wrote is checked too.

/// The default `branch_template`.
pub const DEFAULT_TEMPLATE: &str = "feature/{task}-{slug}";
/// The placeholders a branch template may use.
pub const PLACEHOLDERS: &[&str] = &["task", "slug", "project", "issue"];
/// A slug is at most this many characters.
pub const SLUG_MAX: usize = 40;
/// The task key's part of a branch or directory name is at most this many characters.
pub const TASK_MAX: usize = 64;

/// The title as a slug: lower case, ASCII (common accented Latin letters folded to their base
/// letter), every run of other characters one hyphen, no hyphen at either end, at most
/// `SLUG_MAX` characters.
pub fn slug(title: &str) -> String {
    let mut folded = String::new();
    for c in title.chars().flat_map(char::to_lowercase) {
        match fold(c) {
            Some(ascii) => folded.push_str(ascii),
            None if c.is_ascii_alphanumeric() => folded.push(c),
            None => folded.push('-'),
        }
    }
    hyphenate(&folded, SLUG_MAX)
}

/// A task key as part of a name: ASCII letters (case kept), digits, `-` and `_`; every run of
/// other characters one hyphen; no hyphen at either end; at most `TASK_MAX` characters.
pub fn safe_key(key: &str) -> String {
    let mapped: String = key
        .chars()
        .map(|c| match c {
            c if c.is_ascii_alphanumeric() || c == '_' => c,
            _ => '-',
        })
        .collect();
    hyphenate(&mapped, TASK_MAX)
}

/// Collapse runs of `-`, trim them (and `_`) from both ends, cut to `max` (ASCII) characters.
fn hyphenate(text: &str, max: usize) -> String {
    let mut out = String::new();
    for c in text.chars() {
        if c == '-' && (out.is_empty() || out.ends_with('-')) {
            continue;
        }
        out.push(c);
    }
    out.truncate(max.min(out.len()));
    out.trim_matches(['-', '_']).to_string()
}

/// The branch for a task: `template` with its placeholders filled in (each value made safe),
/// every `/`-separated component trimmed of the hyphens and dots an empty value leaves (so an
/// empty slug gives `feature/T-1`, not `feature/T-1-`), empty components dropped. Err names what
/// is wrong when the result is still not a valid branch (a template with a `~`, say).
pub fn name(
    template: &str,
    project: &str,
    key: &str,
    title: &str,
    issue: Option<i64>,
) -> Result<String, String> {
    let issue = issue.map(|n| n.to_string()).unwrap_or_default();
    // A key with nothing safe in it still names a task.
    let task = Some(safe_key(key))
        .filter(|k| !k.is_empty())
        .unwrap_or_else(|| "task".to_string());
    let (slug, project) = (slug(title), safe_key(project));
    let values = [
        ("task", task.as_str()),
        ("slug", slug.as_str()),
        ("project", project.as_str()),
        ("issue", issue.as_str()),
    ];
    let filled = super::prompt::substitute(template, &values);
    let tidy: Vec<String> = filled
        .split('/')
        .map(|part| {
            let mut part = part.to_string();
            while part.contains("--") {
                part = part.replace("--", "-");
            }
            part.trim_matches(['-', '.']).to_string()
        })
        .filter(|part| !part.is_empty())
        .collect();
    let branch = tidy.join("/");
    match valid(&branch) {
        Ok(()) => Ok(branch),
        Err(why) => Err(format!(
            "branch_template {template:?} gives {branch:?}, which is not a valid branch: {why}"
        )),
    }
}

/// Whether `branch` is a name git takes for a branch (`git check-ref-format --branch`) and that
/// reads as no option: ASCII only here, on top of git's rules.
pub fn valid(branch: &str) -> Result<(), &'static str> {
    if branch.is_empty() {
        return Err("it is empty");
    }
    if branch.len() > 200 {
        return Err("it is longer than 200 characters");
    }
    if branch.starts_with('-') {
        return Err("it starts with '-'");
    }
    if branch == "@" || branch.contains("@{") {
        return Err("it holds \"@{\" or is \"@\"");
    }
    if branch.contains("..") {
        return Err("it holds \"..\"");
    }
    if branch.starts_with('/') || branch.ends_with('/') || branch.contains("//") {
        return Err("it has an empty component");
    }
    if branch.ends_with('.') {
        return Err("it ends with '.'");
    }
    if branch
        .chars()
        .any(|c| !c.is_ascii_graphic() || "~^:?*[\\".contains(c))
    {
        return Err("it holds a space, a control or non-ASCII character, or one of ~ ^ : ? * [ \\");
    }
    for part in branch.split('/') {
        if part.starts_with('.') || part.ends_with(".lock") {
            return Err("a component starts with '.' or ends with \".lock\"");
        }
    }
    Ok(())
}

/// Check a branch template: its placeholders are known ones and it makes valid names, even from
/// an empty title and a long hostile key.
pub fn check_template(template: &str) -> Result<(), String> {
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        let Some(close) = after.find('}') else { break };
        let placeholder = &after[..close];
        if !PLACEHOLDERS.contains(&placeholder) {
            return Err(format!(
                "unknown placeholder {{{placeholder}}} (known: {})",
                PLACEHOLDERS
                    .iter()
                    .map(|p| format!("{{{p}}}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
        rest = &after[close + 1..];
    }
    for (key, title) in [("T-1", "A title"), ("../../-x", ""), ("x", "@{-1}")] {
        name(template, "web", key, title, Some(7))?;
    }
    Ok(())
}

/// The directory a task's worktree gets under its project's: the safe key, with the task's id
/// when making it safe changed the key (so two keys that differ only in what was dropped never
/// share a directory).
pub fn worktree_dir(key: &str, task_id: i64) -> String {
    let safe = safe_key(key);
    if safe == key && !safe.is_empty() {
        safe
    } else if safe.is_empty() {
        format!("task-{task_id}")
    } else {
        format!("{safe}-{task_id}")
    }
}

/// ASCII for the accented Latin letters titles commonly hold (lower case only: the caller
/// lower-cases first).
fn fold(c: char) -> Option<&'static str> {
    const TABLE: &[(&str, &str)] = &[
        ("àáâãäåāăą", "a"),
        ("çćĉċč", "c"),
        ("ďđð", "d"),
        ("èéêëēĕėęě", "e"),
        ("ĝğġģ", "g"),
        ("ĥħ", "h"),
        ("ìíîïĩīĭįı", "i"),
        ("ĵ", "j"),
        ("ķ", "k"),
        ("ĺļľŀł", "l"),
        ("ñńņňŉ", "n"),
        ("òóôõöøōŏő", "o"),
        ("ŕŗř", "r"),
        ("śŝşš", "s"),
        ("ţťŧ", "t"),
        ("ùúûüũūŭůűų", "u"),
        ("ŵ", "w"),
        ("ýÿŷ", "y"),
        ("źżž", "z"),
        ("ß", "ss"),
        ("æ", "ae"),
        ("œ", "oe"),
        ("þ", "th"),
    ];
    TABLE
        .iter()
        .find(|(from, _)| from.contains(c))
        .map(|(_, to)| *to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn branch(key: &str, title: &str) -> String {
        name(DEFAULT_TEMPLATE, "web", key, title, None).unwrap()
    }

    #[test]
    fn slugs_are_short_lower_ascii_with_hyphens() {
        assert_eq!(slug("Preflight: auth & effort!"), "preflight-auth-effort");
        assert_eq!(slug("Ünïcödé café Straße"), "unicode-cafe-strasse");
        assert_eq!(slug("日本語のタイトル"), "");
        assert_eq!(slug("  --Leading and trailing--  "), "leading-and-trailing");
        let long = slug(&"word ".repeat(60));
        assert!(long.len() <= SLUG_MAX, "{long}");
        assert!(!long.ends_with('-'), "{long}");
    }

    #[test]
    fn the_default_branch_names_task_and_title() {
        assert_eq!(
            branch("ORCH-044", "Preflight auth effort"),
            "feature/ORCH-044-preflight-auth-effort"
        );
        assert_eq!(branch("T-1", ""), "feature/T-1");
        assert_eq!(branch("T-1", "日本"), "feature/T-1");
    }

    #[test]
    fn hostile_titles_and_keys_make_valid_branches() {
        let long = "x".repeat(300);
        let cases = [
            ("T-1", "../../x"),
            ("T-1", "-f"),
            ("T-1", "--force --delete"),
            ("T-1", "Ünïcödé 🚀 emoji"),
            ("T-1", long.as_str()),
            ("../../x", "title"),
            ("-f", "x"),
            ("a b\tc\nd", "@{-1} ~^:?*[\\"),
            ("x.lock", "y.lock"),
            (long.as_str(), long.as_str()),
            ("...", "..."),
        ];
        for (key, title) in cases {
            let got = branch(key, title);
            assert_eq!(valid(&got), Ok(()), "{key:?} {title:?} → {got:?}");
            assert!(got.starts_with("feature/"), "{got}");
            assert!(!got.contains(".."), "{got}");
            assert!(got.len() <= 8 + TASK_MAX + 1 + SLUG_MAX, "{got}");
        }
        assert_eq!(branch("../../x", "title"), "feature/x-title");
        assert_eq!(branch("T-1", "-f"), "feature/T-1-f");
    }

    #[test]
    fn git_rules_are_checked() {
        for bad in [
            "", "-x", "a..b", "a/.b", "a.lock", "a b", "a~1", "a^", "a:b", "a?", "a*", "a[",
            "a\\b", "@", "a@{1}", "/a", "a/", "a//b", "a.", "ä",
        ] {
            assert!(valid(bad).is_err(), "{bad:?} passed");
        }
        for good in ["main", "feature/T-1-x", "a.b", "x_y", "a@b"] {
            assert_eq!(valid(good), Ok(()), "{good:?}");
        }
    }

    #[test]
    fn templates_are_checked_when_read() {
        assert_eq!(check_template(DEFAULT_TEMPLATE), Ok(()));
        assert_eq!(check_template("orch/{project}/{issue}-{task}"), Ok(()));
        assert!(check_template("feature/{tsk}")
            .unwrap_err()
            .contains("{tsk}"));
        assert!(check_template("feat~/{task}").is_err());
        // A substituted value is never expanded again.
        assert_eq!(
            name("x/{task}", "web", "{slug}", "t", None).unwrap(),
            "x/slug"
        );
    }

    #[test]
    fn worktree_directories_are_the_key_or_say_whose() {
        assert_eq!(worktree_dir("ORCH-44", 3), "ORCH-44");
        assert_eq!(worktree_dir("../../x", 3), "x-3");
        assert_eq!(worktree_dir("日本", 9), "task-9");
    }
}
