//! The usage comment's text: what finished, then a small Markdown table of the run's usage, with
//! every value from a log shown as data. `crate::forge` posts it.

use crate::store::NewComment;

/// The comment: a line saying what finished, then a small Markdown table of the run's usage.
/// A hidden marker names the outbox message, so a duplicate (delivery is at least once) can be
/// recognised.
pub fn render(comment: &NewComment, message_id: i64) -> String {
    let missing = || "—".to_string();
    let count = |n: Option<u64>| n.map_or_else(missing, thousands);
    let attempt = match comment.max_attempts {
        Some(max) => format!("{}/{max}", comment.attempt),
        None => comment.attempt.to_string(),
    };
    // Model names come from the agent's log: data, shown as code so no Markdown, HTML, link,
    // image or mention in them takes effect.
    let models = if comment.models.is_empty() {
        missing()
    } else {
        let names: Vec<String> = comment.models.iter().map(|m| code(m)).collect();
        names.join(", ")
    };
    let rows = [
        ("Stage", comment.stage.clone()),
        ("Run id", comment.run_id.to_string()),
        ("Verdict", comment.verdict.clone()),
        ("Turns", count(comment.turns)),
        (
            "Duration",
            comment
                .duration_ms
                .map_or_else(missing, crate::output::duration),
        ),
        (
            "Cost",
            comment
                .cost_usd
                .filter(|usd| usd.is_finite() && *usd >= 0.0)
                .map_or_else(missing, |usd| match comment.cost_estimated {
                    true => format!("~${usd:.4} (estimated)"),
                    false => format!("${usd:.4}"),
                }),
        ),
        ("Tokens in", count(comment.input_tokens)),
        ("Tokens out", count(comment.output_tokens)),
        ("Cache read", count(comment.cache_read_tokens)),
        ("Cache write", count(comment.cache_write_tokens)),
        ("Models", models),
        ("Attempt", attempt),
    ];
    let mut out = format!(
        "**orch**: stage {} of {} finished: **{}**\n\n| | |\n|---|---|\n",
        code(&comment.stage),
        code(&comment.task),
        cell(&comment.verdict)
    );
    for (name, value) in rows {
        out.push_str(&format!("| {name} | {} |\n", cell(&value)));
    }
    out.push_str(&format!(
        "\n<!-- orch outbox={message_id} job={} run={} -->\n",
        comment.job_id, comment.run_id
    ));
    out
}

/// Text from elsewhere as a Markdown code span: one line, no backtick that could close it, no
/// `<`/`>` an HTML sanitizer might still see, and `|` escaped for a table. Inside a code span
/// Markdown, HTML, links, images and @-mentions are all shown as written.
pub fn code(text: &str) -> String {
    let clean: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .map(|c| match c {
            '`' => '\'',
            '<' => '‹',
            '>' => '›',
            c if c.is_control() => '\u{fffd}',
            c => c,
        })
        .collect();
    if clean.is_empty() {
        return "—".to_string();
    }
    format!("`{clean}`")
}

/// A value safe inside a table cell: one line, pipes escaped.
pub(crate) fn cell(text: &str) -> String {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .replace('|', "\\|")
}

/// 1234567 → "1,234,567".
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
        let duration = crate::output::duration;
        assert_eq!(duration(850), "850 ms");
        assert_eq!(duration(12_345), "12.3 s");
        assert_eq!(duration(192_000), "3 min 12 s");
        assert_eq!(duration(3_720_000), "1 h 02 min");
    }

    #[test]
    fn body_is_a_table_with_every_field() {
        let comment = NewComment {
            task: "ORCH-44".into(),
            job_id: 42,
            run_id: 17,
            stage: "developer".into(),
            verdict: "ok".into(),
            attempt: 2,
            max_attempts: Some(3),
            cost_usd: Some(0.42137),
            input_tokens: Some(1234),
            models: vec!["claude-sonnet-4-5".into(), "a|b".into()],
            ..Default::default()
        };
        let body = render(&comment, 9);
        for row in [
            "| Stage | developer |",
            "| Run id | 17 |",
            "| Verdict | ok |",
            "| Turns | — |",
            "| Cost | $0.4214 |",
            "| Tokens in | 1,234 |",
            "| Cache write | — |",
            "| Models | `claude-sonnet-4-5`, `a\\|b` |",
            "| Attempt | 2/3 |",
            "<!-- orch outbox=9 job=42 run=17 -->",
        ] {
            assert!(body.contains(row), "{row} missing from:\n{body}");
        }
    }

    #[test]
    fn values_from_a_log_are_data_in_markdown() {
        let comment = NewComment {
            task: "T-1".into(),
            verdict: "ok".into(),
            cost_usd: Some(-1000.0),
            models: vec![
                "![x](http://evil/img.png)".into(),
                "@everyone <img src=x onerror=alert(1)>".into(),
                "`code` [link](http://evil)".into(),
            ],
            ..Default::default()
        };
        let body = render(&comment, 1);
        assert!(body.contains("| Cost | — |"), "{body}");
        let models = body.lines().find(|l| l.starts_with("| Models")).unwrap();
        assert_eq!(
            models,
            "| Models | `![x](http://evil/img.png)`, `@everyone ‹img src=x onerror=alert(1)›`, \
             `'code' [link](http://evil)` |"
        );
    }
}
