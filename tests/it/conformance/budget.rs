//! Budgets as the store keeps them: a project's day spent parks its queue (one alert), a task
//! over its own budget waits alone, a raise releases what it allows, and the spending `status`
//! shows.

use orch::domain::budget::{day_start, Budget};
use orch::domain::states::JobState;
use orch::store::{Applied, BudgetRaise};

use super::*;

const DAY: Budget = Budget {
    per_task_usd: None,
    per_day_usd: Some(1.0),
};

/// A claim by `worker` at `now` under `budget`: the job taken, if any.
fn claim_under(store: &mut dyn Store, budget: Budget, now: i64) -> Option<Job> {
    claim_with(store, "w1", now, |request| {
        request.projects[0].budget = budget;
    })
    .unwrap()
    .job
}

/// Run `job` and finalize it at `now`, its run having cost `usd`, moving it to `to`.
fn cost(store: &mut dyn Store, job: &Job, usd: f64, decision: Decision, now: i64) {
    let run_id = start(store, job, now);
    end(store, run_id, now + 1);
    let mut finish = plan(job, run_id, decision, JobState::Done, now + 2);
    finish.verdict.cost_usd = Some(usd);
    if decision == Decision::Advanced {
        finish.next_job = Some(orch::store::NextJob {
            stage: "developer".into(),
            priority: 0,
            max_attempts: 3,
            reason: "advanced".into(),
            ci_gate: None,
            approval: false,
        });
    }
    assert!(matches!(
        store.apply_finalize(&finish).unwrap(),
        Applied::Done(_)
    ));
}

fn raise(
    store: &mut dyn Store,
    job_id: i64,
    usd: f64,
    budget: Budget,
    now: i64,
) -> orch::store::Raised {
    store
        .raise_budget(&BudgetRaise {
            job_id,
            usd,
            budget,
            day_start: day_start(now),
            actor: "alice",
            now,
        })
        .unwrap()
}

fn spend(store: &dyn Store, now: i64) -> (f64, f64, i64) {
    let spends = store.project_spends(&[PROJECT], day_start(now)).unwrap();
    assert_eq!(spends.len(), 1, "{spends:?}");
    (
        spends[0].today_usd,
        spends[0].today_extra_usd,
        spends[0].over_budget,
    )
}

#[test]
fn a_spent_day_parks_the_queue_once_and_a_raise_lets_it_run() {
    each(|db| {
        let mut store = db.open();
        let first = enqueue(&mut *store, "T-1", T0);
        let second = enqueue(&mut *store, "T-2", T0);
        let third = enqueue(&mut *store, "T-3", T0);
        let job = claim_under(&mut *store, DAY, T0 + 10).unwrap();
        assert_eq!(job.job_id, first);
        cost(&mut *store, &job, 1.5, Decision::Completed, T0 + 20);
        assert_eq!(spend(&*store, T0 + 30), (1.5, 0.0, 0));

        // The day is spent: the claim parks the queue, takes nothing, alerts once.
        assert!(claim_under(&mut *store, DAY, T0 + 100).is_none());
        for id in [second, third] {
            let parked = store.job(id).unwrap().unwrap();
            assert_eq!(
                (parked.state, parked.last_class.as_deref()),
                (JobState::OverBudget, Some("over_budget"))
            );
        }
        assert_eq!(spend(&*store, T0 + 100), (1.5, 0.0, 2));
        assert!(claim_under(&mut *store, DAY, T0 + 110).is_none());
        assert_eq!(store.outbox_summary(T0 + 110, 10).unwrap().pending, 1);
        // The counters (what status reads) see them too.
        let over = store
            .state_counts()
            .unwrap()
            .iter()
            .filter(|c| c.state == JobState::OverBudget)
            .map(|c| c.count)
            .sum::<i64>();
        assert_eq!(over, 2);

        // Too little: still spent, the job waits, the raise is kept.
        let small = raise(&mut *store, second, 0.25, DAY, T0 + 120);
        assert!(!small.released, "{small:?}");
        assert_eq!((small.day_spent_usd, small.day_extra_usd), (1.5, 0.25));
        assert_eq!(
            store.job(second).unwrap().unwrap().state,
            JobState::OverBudget
        );
        // Enough: that job is queued again; today's budget is 2.25 now.
        let enough = raise(&mut *store, second, 1.0, DAY, T0 + 130);
        assert!(enough.released, "{enough:?}");
        assert_eq!(enough.day_budget_usd, Some(1.0));
        assert_eq!(store.job(second).unwrap().unwrap().state, JobState::Queued);
        assert_eq!(spend(&*store, T0 + 130), (1.5, 1.25, 1));
        // The next claim lets the other waiting job go too, and takes the first of them.
        assert_eq!(
            claim_under(&mut *store, DAY, T0 + 140).unwrap().job_id,
            second
        );
        assert_eq!(store.job(third).unwrap().unwrap().state, JobState::Queued);
        assert_eq!(spend(&*store, T0 + 140).2, 0);

        // A raise is for a job waiting for budget only.
        let queued = store
            .raise_budget(&BudgetRaise {
                job_id: third,
                usd: 1.0,
                budget: DAY,
                day_start: day_start(T0),
                actor: "alice",
                now: T0 + 150,
            })
            .unwrap_err();
        assert_eq!(
            orch::exit::code_of(&queued),
            orch::exit::USAGE,
            "{queued:#}"
        );
    });
}

#[test]
fn a_task_over_its_budget_waits_alone() {
    let task = Budget {
        per_task_usd: Some(1.0),
        per_day_usd: None,
    };
    each(|db| {
        let mut store = db.open();
        enqueue(&mut *store, "T-1", T0);
        let job = claim_under(&mut *store, task, T0 + 10).unwrap();
        cost(&mut *store, &job, 1.5, Decision::Advanced, T0 + 20);
        let other = enqueue(&mut *store, "T-2", T0 + 30);

        // T-1's developer job is due first, but its task is spent: it waits, uncounted, and the
        // claim takes T-2's.
        let taken = claim_under(&mut *store, task, T0 + 40).unwrap();
        assert_eq!(taken.job_id, other);
        let waiting = store
            .jobs_of_task(job.task_id)
            .unwrap()
            .into_iter()
            .find(|j| j.stage == "developer")
            .unwrap();
        assert_eq!((waiting.state, waiting.attempt), (JobState::OverBudget, 0));
        assert_eq!(spend(&*store, T0 + 40), (1.5, 0.0, 1));

        // The raise goes to the task's budget and releases it.
        let raised = raise(&mut *store, waiting.job_id, 1.0, task, T0 + 50);
        assert!(raised.released, "{raised:?}");
        assert_eq!(
            (
                raised.task_spent_usd,
                raised.task_extra_usd,
                raised.day_extra_usd
            ),
            (1.5, 1.0, 0.0)
        );
        assert_eq!(
            claim_under(&mut *store, task, T0 + 60).unwrap().job_id,
            waiting.job_id
        );
    });
}
