//! The contract every kind of agent passes, written once and run against each kind in
//! `AgentKind::ALL`. A kind brings its fixtures (`<kind>/suite.rs`): what its `--version` prints,
//! its credentials in their states, and a corpus of real logs with the class each must get. The
//! checks are the kind-neutral promises orch relies on:
//!
//! - version: the probe starts the binary and reads the version from what it printed;
//! - credentials: the source is found from the environment alone, a file's state is judged at a
//!   given time without the network, the file the gate watches is the one the check reads, and
//!   no check ever holds a token;
//! - argv: the binary first, the prompt one element no agent can read as an option (after `--`,
//!   or joined to its flag with `=`), the profile's then the stage's extra arguments before it, a
//!   session to resume passed on, and a profile's template replacing the kind's;
//! - logs: every log of the corpus gets its class, read whole or a few bytes at a time; it can be
//!   shown (`transcript`) and followed (`progress`) without an error; the corpus covers every kind
//!   of outcome (ok, transient, permanent, gate); an empty log is `empty`, or `timeout` when orch
//!   ended the run.

use std::collections::BTreeMap;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::jsonl::Trickle;
use super::{of_kind, Agent, AgentEnv, AuthPolicy, AuthSource, Launch};
use crate::config::{load_for_test, Config, Stage};
use crate::domain::agent::AgentKind;
use crate::domain::verdict::{Class, Cut, Ending, Kind};

/// One kind's fixtures.
pub struct Suite {
    /// A stand-in for the kind's CLI under `tests/agent/`, which prints the variable
    /// `version_var` of its environment when asked `--version`.
    pub stand_in: &'static str,
    pub version_var: &'static str,
    /// What `--version` printed, and the version orch must read from it (None: none).
    pub versions: &'static [(&'static str, Option<&'static str>)],
    pub credentials: &'static [Credentials],
    /// The corpus: files under `tests/fixtures/agents/<kind>/`.
    pub logs: &'static [Log],
}

/// The agent's credentials in one state.
pub struct Credentials {
    pub name: &'static str,
    /// Whether the agent has a home (HOME in its environment).
    pub home: bool,
    /// Variables of the agent's environment; `{home}` stands for its home.
    pub env: &'static [(&'static str, &'static str)],
    /// Files to write, by their path under the home. Any token in them holds `SECRET`.
    pub files: &'static [(&'static str, &'static str)],
    pub expect: Login,
}

/// What the offline check must say.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Login {
    /// The named variable authenticates the agent.
    Env(&'static str),
    /// The file passes; its token expires then (None: no expiry recorded).
    Passes { expires_at: Option<i64> },
    /// The file is read and fails.
    Fails,
    /// Nothing says where the credentials are, or how the agent would log in.
    Nowhere,
    /// The agent logs in a way orch cannot check offline.
    Unchecked,
}

/// One log of the corpus and its class.
pub struct Log {
    pub file: &'static str,
    pub exit_code: Option<i32>,
    /// How orch cut the run short, if it did.
    pub cut: Option<Cut>,
    pub class: Class,
}

/// A credentials state with a home: the agent's environment and the files in its home.
pub const fn with_home(
    name: &'static str,
    env: &'static [(&'static str, &'static str)],
    files: &'static [(&'static str, &'static str)],
    expect: Login,
) -> Credentials {
    Credentials {
        name,
        home: true,
        env,
        files,
        expect,
    }
}

/// The state with no home at all, and nothing in the environment.
pub const NO_HOME: Credentials = Credentials {
    name: "no home",
    home: false,
    env: &[],
    files: &[],
    expect: Login::Nowhere,
};

/// A log of a run that ended by itself with `exit_code`.
pub const fn log(file: &'static str, exit_code: Option<i32>, class: Class) -> Log {
    Log {
        file,
        exit_code,
        cut: None,
        class,
    }
}

/// A log of a run orch cut short.
pub const fn cut(file: &'static str, exit_code: Option<i32>, cut: Cut, class: Class) -> Log {
    Log {
        file,
        exit_code,
        cut: Some(cut),
        class,
    }
}

impl Log {
    /// How the run ended, at the time the captures were made (a kind that reports a time of day
    /// reads it against this).
    fn ending(&self) -> Ending {
        Ending {
            exit_code: self.exit_code,
            cut: self.cut,
            at: Some(CAPTURED_AT),
        }
    }
}

/// When the real logs were captured (2026-11-29T09:35:00Z).
pub const CAPTURED_AT: i64 = 1_795_944_900_000;

/// Checks are made at this time (2026-07-25), so fixtures hold fixed expiry times.
pub const NOW_MS: i64 = 1_785_000_000_000;
const POLICY: AuthPolicy = AuthPolicy {
    skew_ms: 300_000,
    allow_refreshable: false,
};

/// The fixtures of `kind`: a kind without a suite does not build.
fn suite(kind: AgentKind) -> &'static Suite {
    match kind {
        AgentKind::Claude => &super::claude::suite::SUITE,
        AgentKind::Codex => &super::codex::suite::SUITE,
        AgentKind::Gemini => &super::gemini::suite::SUITE,
    }
}

fn each_kind(check: impl Fn(AgentKind, &'static dyn Agent, &'static Suite)) {
    for kind in AgentKind::ALL {
        let agent = of_kind(*kind);
        assert_eq!(
            agent.spec().kind,
            *kind,
            "{kind}: the spec names another kind"
        );
        check(*kind, agent, suite(*kind));
    }
}

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

/// A config with one profile `p` of `kind`, and more TOML for it.
fn config_with(kind: AgentKind, profile: &str) -> Config {
    load_for_test(&format!("[agents.p]\nkind = \"{kind}\"\n{profile}"), &[]).unwrap()
}

/// orch's environment, from `vars` alone.
fn lookup(vars: &BTreeMap<String, String>) -> impl Fn(&str) -> Option<String> + '_ {
    |name| vars.get(name).cloned()
}

#[test]
fn version_answers_are_read() {
    each_kind(|kind, agent, suite| {
        for (printed, expected) in suite.versions {
            let toml = format!(
                "bin = {:?}\n[agents.p.env]\n{} = {printed:?}\n",
                repo(suite.stand_in).display(),
                suite.version_var
            );
            let config = config_with(kind, &toml);
            let vars = BTreeMap::from([("PATH".to_string(), "/usr/bin:/bin".to_string())]);
            let orch_env = lookup(&vars);
            let env = AgentEnv::resolve_with(&config, "p", &orch_env).unwrap();
            let answer = agent.version(&env, Duration::from_secs(20));
            match (answer, expected) {
                (Ok(answer), Some(version)) => {
                    assert_eq!(answer.version, *version, "{kind}: {printed:?}");
                    assert_eq!(answer.program, repo(suite.stand_in));
                }
                (Err(super::Problem::NoVersion { .. }), None) => {}
                (got, _) => panic!("{kind}: {printed:?} gave {got:?}"),
            }
        }
    });
}

#[test]
fn credentials_are_judged_offline_and_never_held() {
    each_kind(|kind, agent, suite| {
        for case in suite.credentials {
            let home = tempfile::tempdir().unwrap();
            let home_text = home.path().display().to_string();
            let mut vars = BTreeMap::new();
            if case.home {
                vars.insert("HOME".to_string(), home_text.clone());
            }
            for (name, value) in case.env {
                vars.insert(name.to_string(), value.replace("{home}", &home_text));
            }
            for (path, contents) in case.files {
                let path = home.path().join(path);
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, contents).unwrap();
            }
            let config = config_with(kind, "");
            let orch_env = lookup(&vars);
            let env = AgentEnv::resolve_with(&config, "p", &orch_env).unwrap();
            let what = format!("{kind}: {}", case.name);
            let source = agent.auth_source(&env);
            assert!(
                !format!("{source:?}").contains("SECRET"),
                "{what}: {source:?}"
            );
            match (&source, case.expect) {
                (AuthSource::Env { var, .. }, Login::Env(expected)) => {
                    assert_eq!(*var, expected, "{what}")
                }
                (AuthSource::Nowhere { .. }, Login::Nowhere) => {}
                (AuthSource::Unchecked { .. }, Login::Unchecked) => {}
                (AuthSource::File(path), Login::Passes { .. } | Login::Fails) => {
                    assert_eq!(
                        agent.credentials_file(&env).map(|f| f.value).as_ref(),
                        Some(&path.value),
                        "{what}: the gate must watch the file the check reads"
                    );
                    let check = agent.check_credentials(&path.value, NOW_MS, POLICY);
                    assert!(
                        !format!("{check:?}").contains("SECRET"),
                        "{what}: {check:?}"
                    );
                    assert_eq!(check.path, path.value, "{what}");
                    assert_eq!(
                        check.fingerprint.is_some(),
                        path.value.exists(),
                        "{what}: a file read has a fingerprint"
                    );
                    match case.expect {
                        Login::Passes { expires_at } => {
                            assert!(check.passes, "{what}: {check:?}");
                            assert_eq!(check.expires_at, expires_at, "{what}");
                            if let (Some(until), Some(expires)) = (check.valid_until, expires_at) {
                                assert!(until <= expires && until > NOW_MS, "{what}: {check:?}");
                            }
                        }
                        _ => {
                            assert!(!check.passes, "{what}: {check:?}");
                            assert!(check.fix.is_some(), "{what}: a failure says what to do");
                            assert_eq!(check.valid_until, None, "{what}");
                        }
                    }
                }
                (source, expected) => panic!("{what}: {source:?}, expected {expected:?}"),
            }
        }
    });
}

#[test]
fn argv_keeps_the_prompt_one_argument_after_the_extras() {
    let prompt = "--dangerously-skip-permissions\n$(rm -rf ~) {bin} {prompt}";
    let stage = Stage {
        extra_args: vec!["--stage-arg".into()],
        ..Stage::default()
    };
    each_kind(|kind, agent, suite| {
        let bin = repo(suite.stand_in).display().to_string();
        let vars = BTreeMap::new();
        let toml = format!("bin = {bin:?}\nextra_args = [\"--profile-arg\", \"1\"]\n");
        let config = config_with(kind, &toml);
        let orch_env = lookup(&vars);
        let env = AgentEnv::resolve_with(&config, "p", &orch_env).unwrap();
        for resume in [None, Some("0e3b1f1a-resume-me")] {
            let launch = Launch {
                prompt,
                stage: &stage,
                resume,
            };
            let argv = agent.argv(&env, &launch).unwrap();
            let what = format!("{kind}: {argv:?}");
            assert_eq!(argv[0], bin, "{what}");
            let holding: Vec<usize> = (0..argv.len())
                .filter(|at| argv[*at].contains(prompt))
                .collect();
            let [at] = holding[..] else {
                panic!("{what}: the prompt must be in exactly one element")
            };
            let after_end_of_options = argv[at] == prompt && argv[..at].iter().any(|a| a == "--");
            let joined = argv[at].starts_with("--") && argv[at].ends_with(&format!("={prompt}"));
            assert!(
                after_end_of_options || joined,
                "{what}: the prompt could be an option"
            );
            let extras = ["--profile-arg", "1", "--stage-arg"];
            let from = argv
                .windows(extras.len())
                .position(|w| w == extras)
                .unwrap_or_else(|| panic!("{what}: the extra arguments, in order"));
            assert!(from + extras.len() <= at, "{what}: extras after the prompt");
            if let Some(session) = resume {
                let passed = argv[..at].iter().any(|a| a.contains(session));
                assert!(passed, "{what}: the session to resume is not passed");
            }
        }
        let toml = format!(
            "bin = {bin:?}\nextra_args = [\"-x\"]\nargv = [\"{{bin}}\", \"run\", \"--\", \"{{prompt}}\"]\n"
        );
        let config = config_with(kind, &toml);
        let orch_env = lookup(&vars);
        let env = AgentEnv::resolve_with(&config, "p", &orch_env).unwrap();
        let launch = Launch {
            prompt: "hi",
            stage: &stage,
            resume: None,
        };
        assert_eq!(
            agent.argv(&env, &launch).unwrap(),
            [bin.as_str(), "run", "-x", "--stage-arg", "--", "hi"],
            "{kind}: a profile's template replaces the kind's"
        );
    });
}

#[test]
fn the_corpus_of_logs_gets_its_classes() {
    each_kind(|kind, agent, suite| {
        let mut kinds_seen = Vec::new();
        for log in suite.logs {
            let path = repo(&format!("tests/fixtures/agents/{kind}/{}", log.file));
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let what = format!("{kind}: {}", log.file);
            let verdict = agent.judge_path(&path, log.ending()).unwrap();
            assert_eq!(verdict.class, log.class, "{what}: {}", verdict.reason);
            assert_eq!(verdict.kind, log.class.kind(), "{what}");
            assert_eq!(
                verdict.fix.is_some(),
                log.class == Class::InvocationError,
                "{what}: an invocation_error, and only one, says which setting to fix"
            );
            if log.class == Class::AgentError && log.file.contains("resume") {
                assert!(verdict.resume_failed, "{what}: a resume miss starts afresh");
            }
            assert_eq!(verdict.ok, log.class == Class::Ok, "{what}");
            let mut trickle = Trickle {
                data: &bytes,
                step: 5,
            };
            let pieces = agent.judge(&mut trickle, log.ending()).unwrap();
            assert_eq!(
                pieces.class, log.class,
                "{what}: read a few bytes at a time"
            );
            let events: Vec<_> = agent
                .transcript(Box::new(BufReader::new(&bytes[..])))
                .collect::<io::Result<_>>()
                .unwrap();
            assert!(!events.is_empty(), "{what}: the transcript shows nothing");
            let mut progress = agent.progress();
            bytes
                .split(|b| *b == b'\n')
                .for_each(|line| progress.observe(line));
            assert!(!progress.render(65).is_empty(), "{what}");
            kinds_seen.push(log.class.kind());
        }
        for outcome in [
            Kind::Ok,
            Kind::Transient,
            Kind::Permanent,
            Kind::Gate,
            Kind::Hold,
        ] {
            assert!(
                kinds_seen.contains(&outcome),
                "{kind}: the corpus has no {} log",
                outcome.name()
            );
        }
        let empty = |timed_out, stalled| {
            let ending = Ending::new(None, timed_out, stalled);
            agent.judge(&mut &b""[..], ending).unwrap().class
        };
        assert_eq!(empty(false, false), Class::Empty, "{kind}");
        assert_eq!(empty(true, false), Class::Timeout, "{kind}");
        assert_eq!(empty(false, true), Class::Stalled, "{kind}");
    });
}
