//! The README's generated tables match the code. `UPDATE_DOCS=1 cargo test --test it docs::` rewrites
//! them.

use crate::support;

use std::path::Path;

use support::splice;

fn exit_table() -> String {
    let mut out = String::from("| code | meaning |\n|---|---|\n");
    for (code, meaning) in orch::exit::TABLE {
        out.push_str(&format!("| {code} | {meaning} |\n"));
    }
    out
}

fn settings_table() -> String {
    let mut out =
        String::from("| key | environment | default | range | meaning |\n|---|---|---|---|---|\n");
    for key in orch::config::KEYS {
        let default = key.default.map_or("—".to_string(), |d| format!("`{d}`"));
        let range = key
            .range()
            .map_or("—".to_string(), |(min, max)| format!("{min}–{max}"));
        out.push_str(&format!(
            "| `{}` | `{}` | {default} | {range} | {} |\n",
            key.name,
            key.env(),
            key.doc
        ));
    }
    out
}

#[test]
fn readme_tables_match_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let text = std::fs::read_to_string(&path).unwrap();
    let fresh = splice(
        &splice(&text, "exit-codes", &exit_table()),
        "settings",
        &settings_table(),
    );
    if std::env::var_os("UPDATE_DOCS").is_some() {
        std::fs::write(&path, &fresh).unwrap();
        return;
    }
    assert!(
        fresh == text,
        "README.md's generated tables are stale; run `UPDATE_DOCS=1 cargo test --test it docs::`"
    );
}
