use crate::support;

use support::World;

#[test]
fn enqueue_creates_the_task_and_its_first_stage_job() {
    let world = World::new();
    let out = world
        .orch(&[
            "enqueue",
            "--project",
            "web",
            "--task",
            "ORCH-1",
            "--title",
            "Add login",
            "--issue",
            "7",
            "--json",
        ])
        .ok();
    let doc = out.json();
    assert_eq!(doc["created"], true);
    assert_eq!(doc["stage"], "analyst");
    assert_eq!(doc["project"], "web");
    assert_eq!(doc["task"], "ORCH-1");
    let job = doc["job_id"].as_i64().unwrap();
    let shown = world
        .orch(&["show", &job.to_string(), "--json"])
        .ok()
        .json();
    assert_eq!(shown["job"]["state"], "queued");
    assert_eq!(shown["job"]["title"], "Add login");
    assert_eq!(shown["job"]["issue"], 7);
    assert_eq!(shown["history"][0]["to_state"], "queued");
}

#[test]
fn the_same_task_with_a_live_job_is_a_no_op() {
    let world = World::new();
    let first = world.enqueue("ORCH-2");
    let again = world
        .orch(&["enqueue", "--project", "web", "--task", "ORCH-2", "--json"])
        .ok()
        .json();
    assert_eq!(again["created"], false);
    assert_eq!(again["job_id"].as_i64(), Some(first));
    let text = world
        .orch(&["enqueue", "--project", "web", "--task", "ORCH-2"])
        .ok();
    assert!(
        text.stdout.contains("already has a live job"),
        "{}",
        text.stdout
    );
    let count: i64 = world.sql("SELECT count(*) FROM jobs", []);
    assert_eq!(count, 1);
}

#[test]
fn stage_and_body_from_stdin() {
    let world = World::new();
    let body = "line one\n$(rm -rf ~) \"quoted\"\n";
    let doc = world
        .orch(&[
            "enqueue",
            "--project",
            "web",
            "--task",
            "T",
            "--stage",
            "developer",
            "--body-file",
            "-",
            "--json",
        ])
        .stdin(body)
        .ok()
        .json();
    assert_eq!(doc["stage"], "developer");
    let stored: String = world.sql("SELECT body FROM tasks", []);
    assert_eq!(stored, body);
}

#[test]
fn bad_input_is_refused_and_nothing_is_written() {
    let world = World::new();
    world.enqueue("SEED");
    let cases: &[(&[&str], i32, &str)] = &[
        (
            &["enqueue", "--project", "nope", "--task", "X"],
            2,
            "unknown project \"nope\"",
        ),
        (
            &[
                "enqueue",
                "--project",
                "web",
                "--task",
                "X",
                "--stage",
                "qa",
            ],
            2,
            "unknown stage \"qa\"",
        ),
        (
            &[
                "enqueue",
                "--project",
                "web",
                "--task",
                "X",
                "--priority",
                "-1",
            ],
            2,
            "--priority -1",
        ),
        (
            &[
                "enqueue",
                "--project",
                "web",
                "--task",
                "X",
                "--body-file",
                "/nonexistent/body.md",
            ],
            2,
            "/nonexistent/body.md",
        ),
        (
            &["enqueue", "--project", "web", "--task", ""],
            2,
            "task key",
        ),
        (&["enqueue", "--project", "web"], 2, "--task"),
    ];
    for (args, code, needle) in cases {
        let out = world.orch(args).status(*code);
        assert!(out.stderr.contains(needle), "{args:?}: {}", out.stderr);
        assert!(out.stdout.is_empty(), "{args:?}: {}", out.stdout);
    }
    let count: i64 = world.sql("SELECT count(*) FROM jobs", []);
    assert_eq!(count, 1, "a refused enqueue wrote a job");
}

/// A body or title the agent's prompt cannot carry (one program argument: no NUL byte, at most
/// 128 KiB with the rest of the prompt) is refused at enqueue, and nothing is queued.
#[test]
fn a_body_or_title_no_prompt_can_carry_is_refused() {
    let world = World::new();
    world.orch(&["status"]).ok();
    std::fs::write(world.path("nul.md"), b"fix the bug\0 in login").unwrap();
    std::fs::write(world.path("huge.md"), "x".repeat(64 * 1024 + 1)).unwrap();
    std::fs::write(world.path("fits.md"), "x".repeat(64 * 1024)).unwrap();
    let enqueue = |extra: &[&str]| {
        let mut args = vec!["enqueue", "--project", "web", "--task", "T-1"];
        args.extend_from_slice(extra);
        world.orch(&args)
    };
    let out = enqueue(&["--body-file", "nul.md"]).status(2);
    assert!(
        out.stderr.contains(
            "--body-file nul.md: the task body holds a NUL byte (at byte 11), which no program argument can carry"
        ),
        "{}",
        out.stderr
    );
    let out = enqueue(&["--body-file", "-"]).stdin(&b"a\0b"[..]).status(2);
    assert!(
        out.stderr
            .contains("--body-file -: the task body holds a NUL byte"),
        "{}",
        out.stderr
    );
    let out = enqueue(&["--body-file", "huge.md"]).status(2);
    assert!(
        out.stderr.contains(
            "--body-file huge.md: the task body is 65537 bytes, more than the 65536 it may hold"
        ),
        "{}",
        out.stderr
    );
    let title = "t".repeat(1025);
    let out = enqueue(&["--title", &title]).status(2);
    assert!(
        out.stderr
            .contains("--title: the title is 1025 bytes, more than the 1024 it may hold"),
        "{}",
        out.stderr
    );
    let count: i64 = world.sql("SELECT count(*) FROM tasks", []);
    assert_eq!(count, 0, "nothing was queued");
    enqueue(&["--body-file", "fits.md", "--title", &title[..1024]]).ok();
}
