//! Colour: `--color auto|always|never` and `ORCH_COLOR`; auto colours only a terminal, without
//! `NO_COLOR` (set and not empty) and with a `TERM` other than `dumb`; `--json` never.
//! The terminal cases run orch under a pseudo-terminal made by util-linux `script`.

use crate::support;

use std::process::Stdio;

use support::{Out, World, ORCH};

const ESC: char = '\u{1b}';

/// A world with a queued job, so `status` prints a table with a bold header.
fn world() -> World {
    let w = World::new();
    w.enqueue("T-1");
    w
}

fn coloured(out: &Out) -> bool {
    out.stdout.contains(ESC)
}

/// Whether `script` can give orch a terminal here.
fn have_script() -> bool {
    std::process::Command::new("script")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn quote(arg: &str) -> String {
    format!("'{}'", arg.replace('\'', r"'\''"))
}

/// `orch ARGS` with stdout on a pseudo-terminal, with `vars` on top of the world's environment;
/// None when `script` is missing (the case is then skipped, and says so).
fn on_terminal(w: &World, args: &[&str], vars: &[(&str, &str)]) -> Option<Out> {
    if !have_script() {
        eprintln!("skipped: util-linux `script` is not installed, no pseudo-terminal to test on");
        return None;
    }
    let line: Vec<String> = std::iter::once(ORCH)
        .chain(args.iter().copied())
        .map(quote)
        .collect();
    let mut command = w.command("script");
    command.args(["-qec", &line.join(" "), "/dev/null"]);
    for (key, value) in vars {
        command.env(key, value);
    }
    let out = Out::from(command.stdin(Stdio::null()).output().unwrap());
    assert_eq!(
        out.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        out.stdout, out.stderr
    );
    Some(out)
}

#[test]
fn a_pipe_gets_no_colour_unless_asked() {
    let w = world();
    assert!(!coloured(&w.orch(&["status"]).ok()));
    assert!(!coloured(&w.orch(&["status", "--color", "auto"]).ok()));
    let always = w.orch(&["status", "--color", "always"]).ok();
    assert!(coloured(&always), "{}", always.stdout);
    assert!(coloured(
        &w.orch(&["status"]).env("ORCH_COLOR", "always").ok()
    ));
    w.config("color = \"always\"");
    assert!(coloured(&w.orch(&["status"]).ok()));
}

#[test]
fn the_flag_beats_the_environment_and_the_file() {
    let w = world();
    let out = w
        .orch(&["status", "--color", "always"])
        .env("ORCH_COLOR", "never")
        .ok();
    assert!(coloured(&out));
    let out = w
        .orch(&["status", "--color", "never"])
        .env("ORCH_COLOR", "always")
        .ok();
    assert!(!coloured(&out));
    w.config("color = \"always\"");
    assert!(!coloured(
        &w.orch(&["status"]).env("ORCH_COLOR", "never").ok()
    ));
}

#[test]
fn an_explicit_always_beats_no_color() {
    // NO_COLOR asks programs not to colour *by default*; an explicit choice is the user's.
    let w = world();
    let out = w
        .orch(&["status", "--color", "always"])
        .env("NO_COLOR", "1")
        .ok();
    assert!(coloured(&out));
}

#[test]
fn json_is_never_coloured() {
    let w = world();
    for command in [&["status"][..], &["show", "1"], &["config"], &["metrics"]] {
        let mut args = command.to_vec();
        args.extend(["--json", "--color", "always"]);
        let out = w.orch(&args).ok();
        assert!(!coloured(&out), "{args:?}: {}", out.stdout);
        out.json();
    }
    if let Some(out) = on_terminal(&w, &["status", "--json"], &[("TERM", "xterm")]) {
        assert!(!coloured(&out), "{}", out.stdout);
    }
}

/// Arguments, environment, and whether the output should be coloured.
type Case<'a> = (&'a [&'a str], &'a [(&'a str, &'a str)], bool);

#[test]
fn auto_colours_a_terminal_only_without_no_color_and_a_dumb_term() {
    let w = world();
    let Some(out) = on_terminal(&w, &["status"], &[("TERM", "xterm")]) else {
        return;
    };
    assert!(coloured(&out), "{}", out.stdout);
    assert!(out.stdout.contains("STAGE"));
    let cases: &[Case] = &[
        (&["status"], &[("TERM", "xterm"), ("NO_COLOR", "1")], false),
        // An empty NO_COLOR counts as unset (no-color.org).
        (&["status"], &[("TERM", "xterm"), ("NO_COLOR", "")], true),
        (&["status"], &[("TERM", "dumb")], false),
        (&["status", "--color", "never"], &[("TERM", "xterm")], false),
        (
            &["status"],
            &[("TERM", "xterm"), ("ORCH_COLOR", "never")],
            false,
        ),
        (&["status", "--color", "always"], &[("TERM", "dumb")], true),
    ];
    for (args, vars, expected) in cases {
        let out = on_terminal(&w, args, vars).unwrap();
        assert_eq!(
            coloured(&out),
            *expected,
            "{args:?} {vars:?}: {}",
            out.stdout
        );
    }
}

#[test]
fn a_bad_choice_is_refused() {
    let w = world();
    let out = w.orch(&["status"]).env("ORCH_COLOR", "rainbow").status(78);
    assert!(out.stderr.contains("rainbow"), "{}", out.stderr);
    w.orch(&["status", "--color", "rainbow"]).status(2);
}

#[test]
fn marks_are_coloured_by_meaning() {
    let w = world();
    w.login(24 * 3_600_000);
    let ok = w.orch(&["preflight", "--color", "always"]).ok().stdout;
    assert!(ok.starts_with("\u{1b}[32mok"), "{ok:?}");
    w.logout();
    let fail = w
        .orch(&["preflight", "--no-cache", "--color", "always"])
        .status(11)
        .stdout;
    assert!(fail.starts_with("\u{1b}[1;31mfail"), "{fail:?}");
    let plain = w
        .orch(&["preflight", "--no-cache", "--color", "never"])
        .status(11)
        .stdout;
    assert!(plain.starts_with("fail "), "{plain:?}");
}
