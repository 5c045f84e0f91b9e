//! Statements are written once, in SQLite's dialect; this rewrites them for PostgreSQL. What it
//! knows is the short list of spellings the queries use that the two databases differ on:
//!
//! - parameters `?1` → `$1`;
//! - `IS x` / `IS NOT x` (x not NULL) → `IS [NOT] DISTINCT FROM x` (null-safe comparison);
//! - `json_each(?N)`, a JSON list given as one parameter → `json_array_elements_text($N::json)`,
//!   its values compared with an id column read as integers;
//! - `total(x)` → `coalesce(sum(x), 0)::float8`; two-argument `min`/`max` → `least`/`greatest`;
//!   `json_group_array(x)` → `json_agg(x)::text`; `CAST(… AS INTEGER)` → `… AS BIGINT`;
//! - `INDEXED BY name` and `+column` (SQLite's planner hints) → nothing.
//!
//! A statement that needs more is written for each backend (`Db::is_postgres`).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

/// `sql` (SQLite's dialect) as PostgreSQL reads it; each rewrite is made once per process.
pub fn postgres(sql: &str) -> String {
    static DONE: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    let done = DONE.get_or_init(Default::default);
    if let Some(pg) = done.lock().unwrap_or_else(|e| e.into_inner()).get(sql) {
        return pg.clone();
    }
    let pg = rewrite(sql);
    done.lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(sql.to_string(), pg.clone());
    pg
}

fn rewrite(sql: &str) -> String {
    let sql = parameters(sql);
    let sql = json_each(&sql);
    let sql = calls(&sql, "total", |args| {
        Some(format!("coalesce(sum({}), 0)::float8", args.join(",")))
    });
    let sql = calls(&sql, "max", |args| {
        (args.len() == 2).then(|| format!("greatest({})", args.join(",")))
    });
    let sql = calls(&sql, "min", |args| {
        (args.len() == 2).then(|| format!("least({})", args.join(",")))
    });
    let sql = calls(&sql, "json_group_array", |args| {
        Some(format!(
            "coalesce(json_agg({}), '[]')::text",
            args.join(",")
        ))
    });
    outside_strings(&sql, |code| {
        let code = replace_words(code, "AS INTEGER)", "AS BIGINT)");
        null_safe(&without_unary_plus(&without_index_hints(&code)))
    })
}

/// `+column`: SQLite's way to keep a column's index out of a plan; PostgreSQL has no unary plus
/// for text, and plans by itself.
fn without_unary_plus(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut previous = ' ';
    let mut chars = code.chars().peekable();
    while let Some(c) = chars.next() {
        let starts_operand = matches!(previous, '(' | ',') || previous.is_whitespace();
        if c == '+' && starts_operand && chars.peek().is_some_and(|n| n.is_alphabetic()) {
            continue;
        }
        out.push(c);
        previous = c;
    }
    out
}

/// `INDEXED BY name`: SQLite's hint, which PostgreSQL's planner does without.
fn without_index_hints(code: &str) -> String {
    let mut out = String::with_capacity(code.len());
    let mut rest = code;
    while let Some(at) = rest.find("INDEXED BY ") {
        out.push_str(&rest[..at]);
        let after = &rest[at + "INDEXED BY ".len()..];
        let name = after
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        rest = &after[name..];
    }
    out.push_str(rest);
    out
}

/// Apply `f` to the parts of `sql` outside string literals.
fn outside_strings(sql: &str, f: impl Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(sql.len());
    let mut rest = sql;
    while let Some(start) = rest.find('\'') {
        out.push_str(&f(&rest[..start]));
        let after = &rest[start + 1..];
        // '' inside a literal is a quote.
        let mut end = 0;
        let bytes = after.as_bytes();
        loop {
            match after[end..].find('\'') {
                Some(at) if bytes.get(end + at + 1) == Some(&b'\'') => end += at + 2,
                Some(at) => {
                    end += at;
                    break;
                }
                None => {
                    end = after.len();
                    break;
                }
            }
        }
        out.push('\'');
        out.push_str(&after[..end]);
        rest = after.get(end..).unwrap_or("");
        if let Some(stripped) = rest.strip_prefix('\'') {
            out.push('\'');
            rest = stripped;
        }
    }
    out.push_str(&f(rest));
    out
}

fn parameters(sql: &str) -> String {
    outside_strings(sql, |code| {
        let mut out = String::with_capacity(code.len());
        let mut chars = code.chars().peekable();
        while let Some(c) = chars.next() {
            if c == '?' && chars.peek().is_some_and(char::is_ascii_digit) {
                out.push('$');
            } else {
                out.push(c);
            }
        }
        out
    })
}

fn replace_words(code: &str, from: &str, to: &str) -> String {
    let lower = code.to_ascii_lowercase();
    let from_lower = from.to_ascii_lowercase();
    let mut out = String::with_capacity(code.len());
    let mut at = 0;
    while let Some(found) = lower[at..].find(&from_lower) {
        out.push_str(&code[at..at + found]);
        out.push_str(to);
        at += found + from.len();
    }
    out.push_str(&code[at..]);
    out
}

/// `a IS b` and `a IS NOT b`, b not NULL: SQLite's null-safe comparisons.
fn null_safe(code: &str) -> String {
    let words: Vec<&str> = code.split_inclusive(char::is_whitespace).collect();
    let mut out = String::with_capacity(code.len() + 16);
    let mut i = 0;
    let word = |w: &str| w.trim().to_ascii_uppercase();
    while i < words.len() {
        if word(words[i]) == "IS" {
            let next = words.get(i + 1).map(|w| word(w)).unwrap_or_default();
            let after = words.get(i + 2).map(|w| word(w)).unwrap_or_default();
            if next == "NOT" && !after.starts_with("NULL") && !after.starts_with("DISTINCT") {
                out.push_str("IS DISTINCT FROM ");
                i += 2;
                continue;
            }
            if !next.is_empty()
                && !next.starts_with("NULL")
                && next != "NOT"
                && !next.starts_with("DISTINCT")
            {
                out.push_str("IS NOT DISTINCT FROM ");
                i += 1;
                continue;
            }
        }
        out.push_str(words[i]);
        i += 1;
    }
    out
}

/// `json_each($N) AS p` → a set of text values named `p.value`; `x IN (SELECT value FROM
/// json_each($N))` → the same, read as integers when x is an id.
fn json_each(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 32);
    let mut rest = sql;
    const CALL: &str = "json_each(";
    while let Some(start) = rest.find(CALL) {
        let Some(close) = rest[start..].find(')').map(|at| start + at) else {
            break;
        };
        // A parameter (`$4`, a JSON text) or an expression (`p.value`, JSON already).
        let arg = &rest[start + CALL.len()..close];
        let json = if arg.starts_with('$') {
            format!("CAST({arg} AS json)")
        } else {
            arg.to_string()
        };
        let end = close + 1;
        let before = &rest[..start];
        let set = format!("json_array_elements_text({json})");
        let after = &rest[end..];
        if let Some(alias) = after.strip_prefix(" AS ") {
            let name: String = alias
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.push_str(before);
            if sql.contains(&format!("{name}.key")) {
                // A JSON object: PostgreSQL's json_each has the same key and value columns (its
                // values JSON).
                out.push_str(&format!("json_each({json}) AS {name}"));
            } else {
                out.push_str(&format!("{set} AS {name}(value)"));
            }
            rest = &alias[name.len()..];
            continue;
        }
        // `… IN (SELECT value FROM ` before it: the column compared decides the type.
        let select = "SELECT value FROM ";
        let compared_to_id = before
            .strip_suffix(select)
            .map(|b| b.trim_end_matches(['(', ' ', '\n']).to_ascii_lowercase())
            .and_then(|b| b.strip_suffix(" in").map(str::to_string))
            .is_some_and(|b| {
                let column = b.rsplit([' ', '(', '\n']).next().unwrap_or("");
                column == "id"
                    || column.ends_with(".id")
                    || column.ends_with("_id")
                    || column.ends_with("folded_into")
            });
        if compared_to_id && before.ends_with(select) {
            out.push_str(&before[..before.len() - select.len()]);
            out.push_str(&format!("SELECT value::bigint FROM {set} AS value"));
        } else {
            out.push_str(before);
            out.push_str(&format!("{set} AS value"));
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Rewrite every call of the function `name` (a whole word, any case) outside string literals
/// with `f` over its arguments (already rewritten); None keeps a call as it is.
fn calls(sql: &str, name: &str, f: impl Fn(&[String]) -> Option<String> + Copy) -> String {
    let lower = sql.to_ascii_lowercase();
    let pattern = format!("{name}(");
    let mut out = String::with_capacity(sql.len());
    let mut at = 0;
    while let Some(found) = lower[at..].find(&pattern) {
        let start = at + found;
        let word_start = start == 0
            || !lower.as_bytes()[start - 1].is_ascii_alphanumeric()
                && lower.as_bytes()[start - 1] != b'_';
        let open = start + pattern.len();
        let in_string = sql[..start].matches('\'').count() % 2 == 1;
        let Some(close) = word_start
            .then(|| matching_paren(sql, open))
            .flatten()
            .filter(|_| !in_string)
        else {
            out.push_str(&sql[at..open]);
            at = open;
            continue;
        };
        let args: Vec<String> = split_args(&sql[open..close])
            .iter()
            .map(|arg| calls(arg, name, f))
            .collect();
        out.push_str(&sql[at..start]);
        match f(&args) {
            Some(call) => out.push_str(&call),
            None => {
                out.push_str(&sql[start..open]);
                out.push_str(&args.join(","));
                out.push(')');
            }
        }
        at = close + 1;
    }
    out.push_str(&sql[at..]);
    out
}

/// The index of the `)` closing the parenthesis opened just before `open`.
fn matching_paren(sql: &str, open: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut quoted = false;
    for (i, c) in sql[open..].char_indices() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth == 0 => return Some(open + i),
            ')' if !quoted => depth -= 1,
            _ => {}
        }
    }
    None
}

/// A call's arguments, split at the commas outside parentheses and strings.
fn split_args(args: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut depth = 0usize;
    let mut quoted = false;
    let mut current = String::new();
    for c in args.chars() {
        match c {
            '\'' => quoted = !quoted,
            '(' if !quoted => depth += 1,
            ')' if !quoted => depth = depth.saturating_sub(1),
            ',' if !quoted && depth == 0 => {
                parts.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    parts.push(current);
    parts
}

#[cfg(test)]
mod tests {
    use super::rewrite;

    #[test]
    fn parameters_are_numbered_with_dollars_outside_strings() {
        assert_eq!(
            rewrite("SELECT '?1', x FROM t WHERE a = ?1 AND b = ?12"),
            "SELECT '?1', x FROM t WHERE a = $1 AND b = $12"
        );
    }

    #[test]
    fn null_safe_comparisons() {
        assert_eq!(
            rewrite("WHERE a IS NOT b AND c IS NOT NULL AND d IS (SELECT 1) AND e IS NULL"),
            "WHERE a IS DISTINCT FROM b AND c IS NOT NULL AND d IS NOT DISTINCT FROM (SELECT 1) AND e IS NULL"
        );
    }

    #[test]
    fn functions_spelled_otherwise() {
        assert_eq!(
            rewrite("SELECT total(x), max(a, min(b, ?2)), max(c), min(d) FROM t"),
            "SELECT coalesce(sum(x), 0)::float8, greatest(a, least(b, $2)), max(c), min(d) FROM t"
        );
        assert_eq!(
            rewrite("SELECT json_group_array(DISTINCT f) FROM t"),
            "SELECT coalesce(json_agg(DISTINCT f), '[]')::text FROM t"
        );
    }

    #[test]
    fn json_objects_of_lists() {
        assert_eq!(
            rewrite("SELECT 1 FROM json_each(?4) AS p WHERE q.project = p.key AND q.stage IN (SELECT value FROM json_each(p.value))"),
            "SELECT 1 FROM json_each(CAST($4 AS json)) AS p WHERE q.project = p.key AND q.stage IN (SELECT value FROM json_array_elements_text(p.value) AS value)"
        );
    }

    #[test]
    fn json_lists() {
        assert_eq!(
            rewrite("SELECT j.id FROM json_each(?4) AS p JOIN jobs j ON j.project = p.value"),
            "SELECT j.id FROM json_array_elements_text(CAST($4 AS json)) AS p(value) JOIN jobs j ON j.project = p.value"
        );
        assert_eq!(
            rewrite("DELETE FROM jobs WHERE task_id IN (SELECT value FROM json_each(?1))"),
            "DELETE FROM jobs WHERE task_id IN (SELECT value::bigint FROM json_array_elements_text(CAST($1 AS json)) AS value)"
        );
        assert_eq!(
            rewrite("AND stage IN (SELECT value FROM json_each(?5))"),
            "AND stage IN (SELECT value FROM json_array_elements_text(CAST($5 AS json)) AS value)"
        );
    }
}
