use crate::support;

use std::collections::HashSet;

use support::World;

/// A world whose agent is logged in, so the preflight gate lets claims through.
fn logged_in() -> World {
    let world = World::new();
    world.login(24 * 3_600_000);
    world
}

#[test]
fn claim_takes_the_best_job_and_leases_it() {
    let world = logged_in();
    let low = world.enqueue("LOW");
    let high = world
        .orch(&[
            "enqueue",
            "--project",
            "web",
            "--task",
            "HIGH",
            "--priority",
            "5",
            "--json",
        ])
        .ok()
        .json()["job_id"]
        .as_i64()
        .unwrap();
    world.config("[projects.web.forge]\nkind = \"github\"\nrepo = \"o/r\"\n");
    let doc = world
        .orch(&["claim", "--worker", "w1", "--json"])
        .ok()
        .json();
    assert_eq!(doc["job_id"].as_i64(), Some(high));
    assert_eq!(doc["attempt"], 1);
    assert_eq!(doc["max_attempts"], 3);
    assert_eq!(doc["stage"], "analyst");
    assert_eq!(doc["workdir"], world.path("work/web").display().to_string());
    let lease = doc["lease_expires_at"].as_i64().unwrap();
    let now = support::now_ms();
    assert!(
        (now + 890_000..=now + 900_000).contains(&lease),
        "lease {lease} now {now}"
    );

    // max_running = 1: the project is busy, so the other job waits.
    world.orch(&["claim", "--worker", "w2"]).status(3);
    world.raw_config(&format!(
        "[projects.web]\nworkdir = \"{}\"\nmax_running = 2\n",
        world.path("work/web").display()
    ));
    let out = world.orch(&["claim", "--worker", "w2"]).ok();
    assert_eq!(out.stdout.trim(), low.to_string());
    let out = world.orch(&["claim", "--worker", "w2"]).status(3);
    assert!(out.stdout.is_empty());
}

#[test]
fn an_expired_lease_is_rescued_and_fails_when_attempts_run_out() {
    let mut world = logged_in();
    world.set("ORCH_MAX_ATTEMPTS", "2");
    let job = world.enqueue("T");
    for attempt in 1..=2 {
        let doc = world
            .orch(&["claim", "--worker", "dead", "--json"])
            .ok()
            .json();
        assert_eq!(doc["job_id"].as_i64(), Some(job));
        assert_eq!(doc["attempt"], attempt);
        world.expire_leases();
    }
    // The second lease expired too; attempts are exhausted, so the rescue fails the job.
    let out = world.orch(&["claim", "--worker", "w"]).status(3);
    assert!(
        out.stderr.contains("lease of dead expired"),
        "{}",
        out.stderr
    );
    let shown = world
        .orch(&["show", &job.to_string(), "--json"])
        .ok()
        .json();
    assert_eq!(shown["job"]["state"], "failed");
    let reasons: Vec<String> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| format!("{} {}", h["to_state"], h["reason"]))
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("queued") && r.contains("lease of dead expired")),
        "{reasons:?}"
    );
    assert!(reasons.last().unwrap().contains("failed"), "{reasons:?}");
}

#[test]
fn cancel_and_retry() {
    let world = logged_in();
    let job = world.enqueue("T").to_string();
    world.orch(&["claim", "--worker", "w"]).ok();
    let doc = world.orch(&["cancel", &job, "--json"]).ok().json();
    assert_eq!(doc["was"], "running");
    world.orch(&["claim", "--worker", "w"]).status(3);
    let doc = world.orch(&["retry", &job, "--json"]).ok().json();
    assert_eq!(doc["was"], "cancelled");
    let doc = world
        .orch(&["claim", "--worker", "w", "--json"])
        .ok()
        .json();
    assert_eq!(doc["attempt"], 1, "retry resets attempts");
    let out = world.orch(&["retry", &job]).status(1);
    assert!(
        out.stderr.contains("only failed or cancelled jobs"),
        "{}",
        out.stderr
    );
    world.orch(&["cancel", "999"]).status(2);
}

/// 8 processes race over 2,000 jobs: each is claimed exactly once, none is lost.
#[test]
fn concurrent_claimers_take_every_job_exactly_once() {
    let world = logged_in();
    world.raw_config(&format!(
        "[projects.web]\nworkdir = \"{}\"\nmax_running = 10000\n",
        world.path("work/web").display()
    ));
    world.enqueue("SEED");
    let now = support::now_ms();
    {
        let mut db = world.db();
        let tx = db.transaction().unwrap();
        for i in 0..1999 {
            tx.execute(
                "INSERT INTO tasks (project, key, created_at, updated_at) VALUES ('web', ?1, ?2, ?2)",
                rusqlite::params![format!("T{i}"), now],
            )
            .unwrap();
            tx.execute(
                "INSERT INTO jobs (task_id, project, stage, state, max_attempts, run_after, created_at, updated_at)
                 VALUES (last_insert_rowid(), 'web', 'analyst', 'queued', 3, ?1, ?1, ?1)",
                [now],
            )
            .unwrap();
        }
        tx.commit().unwrap();
    }
    let script = format!(
        "while true; do \"{orch}\" claim --worker \"w$1\"; rc=$?; [ $rc -eq 0 ] || break; done; echo \"rc=$rc\" >&2",
        orch = support::ORCH
    );
    let children: Vec<_> = (0..8)
        .map(|n| {
            let mut shell = world.command("bash");
            shell.args(["-c", &script, "claimer", &n.to_string()]);
            shell
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            shell.spawn().unwrap()
        })
        .collect();
    let mut claimed = Vec::new();
    for child in children {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.trim_end().ends_with("rc=3"),
            "a claimer stopped on an error: {stderr}"
        );
        claimed.extend(
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| l.parse::<i64>().unwrap()),
        );
    }
    let unique: HashSet<i64> = claimed.iter().copied().collect();
    assert_eq!(claimed.len(), 2000, "every job claimed once");
    assert_eq!(unique.len(), 2000, "no job claimed twice");
    let running: i64 = world.sql(
        "SELECT count(*) FROM jobs WHERE state = 'running' AND attempt = 1",
        [],
    );
    assert_eq!(running, 2000);
}

/// max_running holds under concurrency: 6 claimers, limit 2, never more than 2 running.
#[test]
fn max_running_is_respected_under_concurrency() {
    let world = logged_in();
    world.raw_config(&format!(
        "[projects.web]\nworkdir = \"{}\"\nmax_running = 2\n",
        world.path("work/web").display()
    ));
    for i in 0..10 {
        world.enqueue(&format!("T{i}"));
    }
    let children: Vec<_> = (0..6)
        .map(|n| {
            let mut cmd = world.orch(&["claim", "--worker", &format!("w{n}")]).command;
            cmd.stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    let codes: Vec<i32> = children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap().status.code().unwrap())
        .collect();
    assert_eq!(codes.iter().filter(|c| **c == 0).count(), 2, "{codes:?}");
    assert_eq!(codes.iter().filter(|c| **c == 3).count(), 4, "{codes:?}");
}

/// The job's history, one "to_state reason" line per transition.
fn history(world: &World, job: i64) -> Vec<String> {
    let shown = world
        .orch(&["show", &job.to_string(), "--json"])
        .ok()
        .json();
    shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| format!("{} {}", h["to_state"], h["reason"]))
        .collect()
}

#[test]
fn jobs_at_a_stage_the_pipeline_dropped_are_not_claimed_shown_and_moved() {
    let world = logged_in();
    let enqueue = |task: &str, extra: &[&str]| -> i64 {
        let mut args = vec!["enqueue", "--project", "web", "--task", task, "--json"];
        args.extend_from_slice(extra);
        world.orch(&args).ok().json()["job_id"].as_i64().unwrap()
    };
    let stuck = enqueue("OLD", &["--stage", "tester", "--priority", "1000"]);
    let fresh = enqueue("NEW", &[]);
    // The pipeline loses its tester stage.
    world.config("[pipeline]\nstages = [\"analyst\", \"developer\"]");
    let doc = world
        .orch(&["claim", "--worker", "w1", "--json"])
        .ok()
        .json();
    assert_eq!(
        doc["job_id"].as_i64(),
        Some(fresh),
        "the job at a stage the pipeline no longer has is skipped, whatever its priority"
    );
    world.orch(&["cancel", &fresh.to_string()]).ok();
    world.orch(&["claim", "--worker", "w1"]).status(3);

    let status = world.orch(&["status", "--json"]).ok().json();
    assert_eq!(
        status["stranded"],
        serde_json::json!([{"job_id": stuck, "task": "OLD", "project": "web", "stage": "tester", "state": "queued"}])
    );
    let text = world.orch(&["status"]).ok().stdout;
    assert!(text.contains("STRANDED"), "{text}");
    assert!(
        text.contains("`orch cancel JOB`, or move one with `orch retry JOB --stage STAGE`"),
        "{text}"
    );

    let out = world
        .orch(&["retry", &stuck.to_string(), "--stage", "tester"])
        .status(2);
    assert!(
        out.stderr
            .contains("--stage: unknown stage \"tester\" (the pipeline is: analyst, developer"),
        "{}",
        out.stderr
    );
    // Without --stage a queued job is not retried: there is nothing to retry.
    world.orch(&["retry", &stuck.to_string()]).status(1);
    let doc = world
        .orch(&[
            "retry",
            &stuck.to_string(),
            "--stage",
            "developer",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(
        (
            doc["was"].as_str(),
            doc["was_stage"].as_str(),
            doc["stage"].as_str()
        ),
        (Some("queued"), Some("tester"), Some("developer"))
    );
    let doc = world
        .orch(&["claim", "--worker", "w1", "--json"])
        .ok()
        .json();
    assert_eq!(doc["job_id"].as_i64(), Some(stuck));
    assert_eq!(doc["stage"], "developer");
    assert!(
        history(&world, stuck)
            .iter()
            .any(|h| h.contains("moved from stage tester to developer")),
        "{:?}",
        history(&world, stuck)
    );
    assert_eq!(
        world.orch(&["status", "--json"]).ok().json()["stranded"],
        serde_json::json!([])
    );

    // A failed or cancelled job may be moved too.
    world.orch(&["cancel", &stuck.to_string()]).ok();
    let doc = world
        .orch(&["retry", &stuck.to_string(), "--stage", "analyst", "--json"])
        .ok()
        .json();
    assert_eq!(
        (doc["was"].as_str(), doc["stage"].as_str()),
        (Some("cancelled"), Some("analyst"))
    );
}

const YEAR_MS: i64 = 365 * 86_400_000;

/// Claim as `worker` (with `env`), expect `job`, and find `note` in its history; the claim's JSON.
fn claim_noted(
    world: &World,
    worker: &str,
    env: &[(&str, &str)],
    job: i64,
    note: &str,
) -> serde_json::Value {
    let mut cmd = world.orch(&["claim", "--worker", worker, "--json"]);
    for (key, value) in env {
        cmd = cmd.env(key, value);
    }
    let doc = cmd.ok().json();
    assert_eq!(doc["job_id"].as_i64(), Some(job));
    let history = history(world, job);
    assert!(history.iter().any(|h| h.contains(note)), "{history:?}");
    doc
}

#[test]
fn a_lease_from_a_clock_a_year_ahead_is_rescued() {
    let world = logged_in();
    let job = world.enqueue("T");
    world.orch(&["claim", "--worker", "ahead"]).ok();
    // Claimed by a worker whose clock ran a year ahead; it died since.
    let ahead = support::now_ms() + YEAR_MS;
    world
        .db()
        .execute(
            "UPDATE jobs SET lease_expires_at = ?1 + 900000, lease_renewed_at = ?1",
            [ahead],
        )
        .unwrap();
    claim_noted(
        &world,
        "w2",
        &[("ORCH_HOST", "another-host")],
        job,
        "lease of ahead runs out in 365 d, further ahead than its length (15 min) allows",
    );
}

#[test]
fn a_job_due_a_year_ahead_is_due_now() {
    let world = logged_in();
    let job = world.enqueue("T");
    world
        .db()
        .execute(
            "UPDATE jobs SET run_after = ?1",
            [support::now_ms() + YEAR_MS],
        )
        .unwrap();
    claim_noted(
        &world,
        "w1",
        &[],
        job,
        "it was due in 365 d, further ahead than the longest backoff allows",
    );
    // Within the longest backoff (retry_max_seconds, 1 h by default): it waits.
    world.orch(&["cancel", &job.to_string()]).ok();
    let job = world.enqueue("U");
    world
        .db()
        .execute(
            "UPDATE jobs SET run_after = ?2 WHERE id = ?1",
            [job, support::now_ms() + 3_000_000],
        )
        .unwrap();
    world.orch(&["claim", "--worker", "w2"]).status(3);
}

#[test]
fn a_breaker_opened_a_year_ahead_lets_a_probe_through() {
    let world = logged_in();
    let job = world.enqueue("T");
    world
        .db()
        .execute(
            "INSERT INTO breakers (agent, state, consecutive_failures, opened_at, cooldown_ms, updated_at)
             VALUES ('claude', 'open', 3, ?1, 600000, ?1)",
            [support::now_ms() + YEAR_MS],
        )
        .unwrap();
    let doc = claim_noted(&world, "w1", &[], job, "so it is treated as half-open");
    assert_eq!(doc["breaker_probe"], true);
}

#[test]
fn a_job_awaiting_approval_or_its_budget_at_a_dropped_stage_is_stranded_too() {
    let world = logged_in();
    let mut ids = Vec::new();
    for (task, state) in [("A", "awaiting_approval"), ("B", "over_budget")] {
        let id = world
            .orch(&[
                "enqueue",
                "--project",
                "web",
                "--task",
                task,
                "--stage",
                "tester",
                "--json",
            ])
            .ok()
            .json()["job_id"]
            .as_i64()
            .unwrap();
        world
            .db()
            .execute(
                "UPDATE jobs SET state = ?2 WHERE id = ?1",
                rusqlite::params![id, state],
            )
            .unwrap();
        ids.push(id);
    }
    world.config("[pipeline]\nstages = [\"analyst\", \"developer\"]");
    let stranded: Vec<i64> = world.orch(&["status", "--json"]).ok().json()["stranded"]
        .as_array()
        .unwrap()
        .iter()
        .map(|job| job["job_id"].as_i64().unwrap())
        .collect();
    assert_eq!(stranded, ids);
}
