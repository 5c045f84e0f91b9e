//! The preflight cache and the auth gate, per host and agent.

use std::path::PathBuf;

use orch::store::{CachedVerdict, CredsFingerprint, GateHold, Reset};

use super::*;

fn verdict(ok: bool, creds: Option<CredsFingerprint>) -> CachedVerdict {
    CachedVerdict {
        ok,
        exit_code: if ok { 0 } else { 11 },
        checks_json: "[]".to_string(),
        agent_version: Some("2.1.197".to_string()),
        inputs: "x".to_string(),
        creds,
        created_at: 1_000,
        expires_at: 301_000,
    }
}

fn creds(size: i64) -> CredsFingerprint {
    CredsFingerprint {
        path: PathBuf::from("/home/a/.claude/.credentials.json"),
        size,
        mtime_ns: 42,
    }
}

fn gate(host: &str, agent: &str, run_id: i64, creds: Option<CredsFingerprint>) -> GateHold {
    GateHold {
        host: host.into(),
        agent: agent.into(),
        run_id,
        reason: "Not logged in".into(),
        creds,
        alert: None,
    }
}

#[test]
fn one_read_sees_cache_and_gate() {
    each(|db| {
        let mut store = db.open();
        let state = store.preflight_state(HOST, "claude").unwrap();
        assert!(state.cached.is_none() && state.gate.is_none());
        store
            .save_preflight(HOST, "claude", &verdict(true, Some(creds(10))))
            .unwrap();
        store
            .save_preflight(HOST, "other", &verdict(false, None))
            .unwrap();
        let state = store.preflight_state(HOST, "claude").unwrap();
        let cached = state.cached.unwrap();
        assert_eq!(cached, verdict(true, Some(creds(10))));
        assert!(state.gate.is_none());
        let other = store
            .preflight_state(HOST, "other")
            .unwrap()
            .cached
            .unwrap();
        assert_eq!((other.ok, other.creds), (false, None));
        assert_eq!(
            store
                .cached_agent_version(HOST, "claude")
                .unwrap()
                .as_deref(),
            Some("2.1.197")
        );
        // Saving again replaces.
        store
            .save_preflight(HOST, "claude", &verdict(false, None))
            .unwrap();
        assert!(
            !store
                .preflight_state(HOST, "claude")
                .unwrap()
                .cached
                .unwrap()
                .ok
        );
    });
}

#[test]
fn holding_the_gate_drops_the_cache_and_is_idempotent_per_file() {
    each(|db| {
        let mut store = db.open();
        store
            .save_preflight(HOST, "claude", &verdict(true, Some(creds(10))))
            .unwrap();
        assert!(store
            .hold_auth_gate(&gate(HOST, "claude", 7, Some(creds(10))), 5_000)
            .unwrap());
        let state = store.preflight_state(HOST, "claude").unwrap();
        assert!(state.cached.is_none());
        let held = state.gate.unwrap();
        assert_eq!((held.run_id, held.created_at), (Some(7), 5_000));
        assert_eq!(held.creds, Some(creds(10)));
        let again = store
            .hold_auth_gate(&gate(HOST, "claude", 8, Some(creds(10))), 6_000)
            .unwrap();
        assert!(!again, "same file: the first gate stays");
        let held = store.preflight_state(HOST, "claude").unwrap().gate.unwrap();
        assert_eq!(held.run_id, Some(7));
        let changed = store
            .hold_auth_gate(&gate(HOST, "claude", 9, Some(creds(11))), 7_000)
            .unwrap();
        assert!(changed, "a new file that fails again holds the gate anew");
        assert!(!store.release_auth_gate(HOST, "claude", 5_000).unwrap());
        assert!(store.release_auth_gate(HOST, "claude", 7_000).unwrap());
        assert!(store
            .preflight_state(HOST, "claude")
            .unwrap()
            .gate
            .is_none());
    });
}

#[test]
fn reset_is_per_agent_or_all_of_one_host() {
    each(|db| {
        let mut store = db.open();
        for host in [HOST, "h2"] {
            for agent in ["a", "b"] {
                store
                    .save_preflight(host, agent, &verdict(true, None))
                    .unwrap();
                store
                    .hold_auth_gate(&gate(host, agent, 1, None), 1)
                    .unwrap();
                store
                    .save_preflight(host, agent, &verdict(true, None))
                    .unwrap();
            }
        }
        let one = Reset {
            verdicts: 1,
            gates: 1,
            usage_holds: 0,
            invocation_holds: 0,
        };
        assert_eq!(store.reset_preflight(HOST, Some("a")).unwrap(), one);
        assert!(store.preflight_state(HOST, "b").unwrap().cached.is_some());
        assert_eq!(store.reset_preflight(HOST, None).unwrap(), one);
        let other = store.preflight_state("h2", "a").unwrap();
        assert!(
            other.cached.is_some() && other.gate.is_some(),
            "another host's stay"
        );
    });
}

#[test]
fn each_host_keeps_its_own_verdict_and_gate() {
    each(|db| {
        let mut store = db.open();
        store
            .save_preflight("a", "claude", &verdict(true, Some(creds(10))))
            .unwrap();
        store
            .save_preflight("b", "claude", &verdict(false, None))
            .unwrap();
        assert!(
            store
                .preflight_state("a", "claude")
                .unwrap()
                .cached
                .unwrap()
                .ok
        );
        assert!(
            !store
                .preflight_state("b", "claude")
                .unwrap()
                .cached
                .unwrap()
                .ok
        );
        assert!(store
            .hold_auth_gate(&gate("b", "claude", 3, None), 10)
            .unwrap());
        let a = store.preflight_state("a", "claude").unwrap();
        assert!(a.gate.is_none(), "b's gate does not hold a");
        assert!(a.cached.is_some(), "nor does it drop a's verdict");
        let b = store.preflight_state("b", "claude").unwrap();
        assert!(b.gate.is_some() && b.cached.is_none());
        assert!(!store.release_auth_gate("a", "claude", 10).unwrap());
        let facts = store.metrics("a", 20).unwrap();
        assert_eq!(facts.preflight.len(), 1);
        assert_eq!(
            (facts.preflight[0].ok, facts.preflight[0].gate_held),
            (Some(true), false)
        );
        let facts = store.metrics("b", 20).unwrap();
        assert_eq!(
            (facts.preflight[0].ok, facts.preflight[0].gate_held),
            (None, true)
        );
    });
}

#[test]
fn the_held_hosts_are_those_with_a_gate_or_a_usage_hold_standing() {
    each(|db| {
        let mut store = db.open();
        assert!(store.held_hosts(T0).unwrap().is_empty());
        for (host, agent, run) in [("b", "claude", 3), ("a", "codex", 4), ("b", "codex", 5)] {
            assert!(store
                .hold_auth_gate(&gate(host, agent, run, None), T0)
                .unwrap());
        }
        assert_eq!(store.held_hosts(T0).unwrap(), ["a", "b"]);
        assert!(store.release_auth_gate("a", "codex", T0).unwrap());
        assert_eq!(store.held_hosts(T0).unwrap(), ["b"]);

        // A usage limit holds the run's host until it resets.
        enqueue(&mut *store, "T-1", T0);
        let (job, run_id) = ran(&mut *store, "w1", T0);
        let mut limited = plan(&job, run_id, Decision::Gated, JobState::Queued, T0 + 10);
        limited.usage_hold = Some(orch::store::UsageHoldRequest {
            host: "c".into(),
            agent: "claude".into(),
            until: T0 + 3_600_000,
            run_id,
            reason: "usage limit reached".into(),
            alert: NewAlert::new(AlertKind::UsageLimit, "claude@c", "usage limit reached"),
        });
        assert!(matches!(
            store.apply_finalize(&limited).unwrap(),
            orch::store::Applied::Done(_)
        ));
        assert_eq!(store.held_hosts(T0 + 20).unwrap(), ["b", "c"]);
        // Past its end it holds no more, and the host is not listed.
        assert_eq!(store.held_hosts(T0 + 3_600_000).unwrap(), ["b"]);
    });
}
