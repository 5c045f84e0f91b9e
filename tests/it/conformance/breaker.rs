//! The circuit breaker as the store keeps it: finalize's transitions, the claim's gate, the one
//! probe, and closing it by hand.

use orch::domain::breaker::{Change, State};
use orch::store::{Applied, ClaimMessage, Message};

use super::*;

/// Run and fail one job transiently at `now`: what the breaker did.
fn fail_one(store: &mut dyn Store, key: &str, now: i64) -> (Change, Vec<AlertKind>) {
    enqueue(store, key, now);
    let (job, run_id) = ran(store, "w1", now);
    let mut fail = plan(&job, run_id, Decision::Failed, JobState::Failed, now + 1);
    fail.breaker.event = Event::Failure;
    match store.apply_finalize(&fail).unwrap() {
        Applied::Done(effects) => (effects.change, effects.alerts),
        other => panic!("{other:?}"),
    }
}

/// Run the probe `job` from `now` and finalize it with `event`: what the breaker did.
fn finish_probe(store: &mut dyn Store, job: &Job, event: Event, now: i64) -> Change {
    let run_id = start(store, job, now);
    end(store, run_id, now + 1);
    let (decision, to) = match event {
        Event::Success => (Decision::Completed, JobState::Done),
        _ => (Decision::Failed, JobState::Failed),
    };
    let mut finish = plan(job, run_id, decision, to, now + 2);
    finish.breaker.event = event;
    match store.apply_finalize(&finish).unwrap() {
        Applied::Done(effects) => effects.change,
        other => panic!("the probe's plan is not applied: {other:?}"),
    }
}

#[test]
fn the_breaker_opens_refuses_then_lets_one_probe_through() {
    each(|db| {
        let mut store = db.open();
        assert_eq!(fail_one(&mut *store, "T-1", T0).0, Change::None);
        assert_eq!(fail_one(&mut *store, "T-2", T0 + 10).0, Change::None);
        let (change, alerts) = fail_one(&mut *store, "T-3", T0 + 20);
        assert_eq!(
            (change, alerts),
            (Change::Opened, vec![AlertKind::BreakerOpen])
        );
        let open = store.breaker("claude").unwrap();
        assert_eq!((open.state, open.consecutive_failures), (State::Open, 3));
        assert_eq!((open.opened_at, open.cooldown_ms), (Some(T0 + 21), 600_000));
        let rows = store.breakers(T0 + 30).unwrap();
        assert_eq!(
            (rows[0].agent.as_str(), rows[0].probe_live),
            ("claude", false)
        );
        // The alert says why, in the breaker's words.
        let claimed = store
            .claim_message(&ClaimMessage {
                claimer: "n",
                now: T0 + 30,
                claim_ms: 1000,
                dedup_ms: 0,
                alerts: true,
                comments: false,
                skip_projects: &[],
            })
            .unwrap()
            .unwrap();
        let Ok(Message::Alert(alert)) = claimed.message else {
            panic!("{:?}", claimed.message)
        };
        assert!(
            alert.reason.contains("after 3 transient failures"),
            "{}",
            alert.reason
        );

        // Open: claims are refused, and take nothing.
        let queued = enqueue(&mut *store, "T-4", T0 + 30);
        let refused = claim_with(&mut *store, "w1", T0 + 40, |_| {}).unwrap_err();
        assert_eq!(orch::exit::code_of(&refused), orch::exit::BREAKER_OPEN);
        assert_eq!(store.job(queued).unwrap().unwrap().state, JobState::Queued);
        // Past the cooldown: one probe, and no second claim while it holds its lease.
        let half_open = T0 + 21 + 600_000;
        let probe = claim_with(&mut *store, "w1", half_open, |_| {}).unwrap();
        assert!(probe.probe);
        let probe_job = probe.job.unwrap();
        enqueue(&mut *store, "T-5", half_open);
        assert!(claim_with(&mut *store, "w2", half_open + 1, |_| {}).is_err());
        assert!(store.breakers(half_open + 1).unwrap()[0].probe_live);
        // The probe's success closes it.
        let change = finish_probe(&mut *store, &probe_job, Event::Success, half_open + 2);
        assert_eq!(change, Change::Closed);
        assert_eq!(store.breaker("claude").unwrap().state, State::Closed);
        assert!(claim(&mut *store, "w2", half_open + 10).is_some());
    });
}

#[test]
fn a_failed_probe_reopens_and_an_operator_closes_it() {
    each(|db| {
        let mut store = db.open();
        for n in 0..3 {
            fail_one(&mut *store, &format!("T-{n}"), T0 + n * 10);
        }
        let half_open = T0 + 21 + 600_000;
        enqueue(&mut *store, "probe", half_open);
        let probe = claim_with(&mut *store, "w1", half_open, |_| {}).unwrap();
        assert!(probe.probe);
        let job = probe.job.unwrap();
        let change = finish_probe(&mut *store, &job, Event::Failure, half_open);
        assert_eq!(change, Change::Reopened);
        assert_eq!(store.breaker("claude").unwrap().cooldown_ms, 1_200_000);
        assert_eq!(store.close_breakers(Some("other")).unwrap(), 0);
        assert_eq!(store.close_breakers(None).unwrap(), 1);
        assert_eq!(store.breaker("claude").unwrap().state, State::Closed);
        assert!(store.breakers(half_open).unwrap().is_empty());
    });
}

#[test]
fn an_open_breaker_keeps_only_its_agents_stages_out_of_a_claim() {
    each(|db| {
        let mut store = db.open();
        // claude's breaker opens (analyst and developer jobs ran on claude until now).
        for n in 0..3 {
            fail_one(&mut *store, &format!("T-{n}"), T0 + n * 10);
        }
        let analyst = enqueue(&mut *store, "A", T0 + 30);
        // The developer stage is codex's.
        let split = |r: &mut ClaimRequest| {
            r.projects[0].stages = vec![
                ClaimStage {
                    stage: STAGES[0],
                    agent: "claude",
                },
                ClaimStage {
                    stage: STAGES[1],
                    agent: "codex",
                },
            ]
        };
        // Nothing of codex's is queued: nothing to claim, and claude's refusal said.
        let claimed = claim_with(&mut *store, "w1", T0 + 40, split).unwrap();
        assert!(claimed.job.is_none());
        assert_eq!(claimed.refused.len(), 1);
        assert_eq!(claimed.refused[0].0, "claude");
        // A developer job is codex's to run: claimed, with its agent named.
        let mut developer = task("D");
        developer.stage = STAGES[1];
        let developer = store.enqueue(&developer, T0 + 50).unwrap().job_id;
        let claimed = claim_with(&mut *store, "w1", T0 + 60, split).unwrap();
        assert_eq!(claimed.job.map(|j| j.job_id), Some(developer));
        assert_eq!(claimed.agent.as_deref(), Some("codex"));
        assert!(!claimed.probe);
        assert_eq!(store.job(analyst).unwrap().unwrap().state, JobState::Queued);
        // Every agent of the claim refused: the error, nothing written.
        let claude_only = |r: &mut ClaimRequest| {
            r.projects[0].stages = ClaimStage::all(&STAGES, "claude");
        };
        let refused = claim_with(&mut *store, "w1", T0 + 70, claude_only).unwrap_err();
        assert_eq!(orch::exit::code_of(&refused), orch::exit::BREAKER_OPEN);
    });
}
