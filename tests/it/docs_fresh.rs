//! `orch man` and `orch completions`: the committed man/ and completions/ are what the binary
//! generates now. After a CLI change, `scripts/regen-docs.sh` regenerates them.

use crate::support;

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use support::World;

const REGEN: &str = "run `scripts/regen-docs.sh` and commit man/ and completions/";

/// Every file of `dir` with its bytes.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap_or_else(|err| panic!("reading {}: {err}", dir.display()))
        .map(|entry| {
            let entry = entry.unwrap();
            let name = entry.file_name().into_string().unwrap();
            (name, std::fs::read(entry.path()).unwrap())
        })
        .collect()
}

/// Fail, naming every stale, missing and extra file, unless `generated` and the repository's
/// `committed` directory hold the same files byte for byte.
fn assert_fresh(generated: &Path, committed: &str) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join(committed);
    let fresh = files(generated);
    let old = if repo.exists() {
        files(&repo)
    } else {
        BTreeMap::new()
    };
    let mut problems = Vec::new();
    for (name, bytes) in &fresh {
        match old.get(name) {
            None => problems.push(format!("{committed}/{name} is missing")),
            Some(committed_bytes) if committed_bytes != bytes => {
                problems.push(format!("{committed}/{name} is stale"))
            }
            Some(_) => {}
        }
    }
    for name in old.keys().filter(|name| !fresh.contains_key(*name)) {
        problems.push(format!("{committed}/{name} is no longer generated"));
    }
    assert!(problems.is_empty(), "{}\n{REGEN}", problems.join("\n"));
}

#[test]
fn man_pages_are_fresh() {
    let w = World::new();
    let dir = w.path("man");
    let out = w
        .orch(&["man", "--dir", dir.to_str().unwrap(), "--json"])
        .ok();
    let written = out.json()["written"].as_array().unwrap().len();
    let pages = files(&dir);
    assert_eq!(written, pages.len());
    assert!(pages.contains_key("orch.1"), "{:?}", pages.keys());
    for page in [
        "orch-claim.1",
        "orch-logs.1",
        "orch-metrics.1",
        "orch-man.1",
    ] {
        assert!(
            pages.contains_key(page),
            "{page} missing: {:?}",
            pages.keys()
        );
    }
    assert!(!pages.contains_key("orch-help.1"));
    let mode = std::fs::metadata(dir.join("orch.1"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o644, "manual pages are for everyone to read");
    assert_fresh(&dir, "man");
}

#[test]
fn completions_are_fresh() {
    let w = World::new();
    let dir = w.path("completions");
    let out = w
        .orch(&["completions", "--dir", dir.to_str().unwrap()])
        .ok();
    assert_eq!(out.stdout.lines().count(), 5, "{}", out.stdout);
    let scripts = files(&dir);
    let names: Vec<&str> = scripts.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        ["_orch", "_orch.ps1", "orch.bash", "orch.elv", "orch.fish"]
    );
    assert_fresh(&dir, "completions");
}

#[test]
fn one_shell_prints_to_stdout() {
    let w = World::new();
    let bash = w.orch(&["completions", "bash"]).ok();
    let dir = w.path("one");
    w.orch(&["completions", "bash", "--dir", dir.to_str().unwrap()])
        .ok();
    assert_eq!(
        bash.stdout.as_bytes(),
        std::fs::read(dir.join("orch.bash")).unwrap()
    );
    assert_eq!(files(&dir).len(), 1);
    // The script asks orch itself, which knows every subcommand.
    assert!(bash.stdout.contains("COMPLETE=\"bash\""), "{}", bash.stdout);
    let json = w.orch(&["completions", "zsh", "--json"]).ok().json();
    assert_eq!(json["file_name"], "_orch");
    assert!(json["script"]
        .as_str()
        .unwrap()
        .starts_with("#compdef orch"));
}

#[test]
fn bad_or_missing_shell_is_a_usage_error() {
    let w = World::new();
    w.orch(&["completions"]).status(2);
    let out = w.orch(&["completions", "tcsh"]).status(2);
    assert!(out.stderr.contains("tcsh"), "{}", out.stderr);
    w.orch(&["man"]).status(2);
}
