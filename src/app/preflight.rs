//! Preflight: may this agent take a job? Its binary must answer `--version` (exit 10 otherwise)
//! and it must be logged in, judged from its credentials file without sending the token anywhere
//! (exit 11 otherwise). The verdict is cached per host and agent in the database for
//! `preflight_cache_ttl` seconds, so a warm check spawns nothing: one SELECT and one stat() of the
//! credentials file. An auth gate held by a failed run on this host overrides everything until
//! the credentials file changes; a usage limit a run hit holds the agent (exit 13) until the time
//! the agent said the limit resets; a command line the agent refused holds it (exit 10) until
//! the settings that make it change.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::agent::credentials::fingerprint;
use crate::agent::{self, version, AuthPolicy, AuthSource, CredentialsCheck, CredsFingerprint};
use crate::agent::{Located, Profile};
use crate::config::{self, Config};
use crate::domain::clock;
use crate::exit;
use crate::store::{AuthGate, CachedVerdict, InvocationHold, Store, UsageHold};

pub const VERSION_CHECK: &str = "version";
pub const AUTH_CHECK: &str = "auth";
pub const MODE_CHECK: &str = "credentials_mode";
pub const USAGE_CHECK: &str = "usage_limit";
pub const INVOCATION_CHECK: &str = "invocation";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Warn,
    Fail,
    /// Not checked (turned off).
    Skip,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Warn => "warn",
            Status::Fail => "fail",
            Status::Skip => "skip",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Check {
    pub name: String,
    pub status: Status,
    pub reason: String,
    pub detail: Detail,
}

/// A check's evidence and, when it did not pass, the fix. Never a token.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Detail {
    /// The agent's binary: its path when found, else as configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin: Option<String>,
    /// Which setting named the binary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bin_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_version: Option<String>,
    /// The credentials file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// How the credentials file was chosen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_from: Option<String>,
    /// When the access token expires, epoch milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<bool>,
    /// The variable of the agent's environment that authenticates it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_var: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env_from: Option<String>,
    /// The credentials file's permission bits, octal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    /// The run that held the auth gate, what it said, and since when.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since: Option<i64>,
    /// When a usage hold lifts (the agent's usage limit resets), epoch milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

/// The answer: `--json` prints it as it is.
#[derive(Debug, Clone, Serialize)]
pub struct Verdict {
    pub ok: bool,
    pub cached: bool,
    pub age_seconds: u64,
    pub agent: String,
    pub checks: Vec<Check>,
    /// 0, 10 (agent missing or broken, or refusing its command line), 11 (not authenticated) or
    /// 13 (over its usage limit).
    #[serde(skip)]
    pub exit_code: u8,
}

impl Verdict {
    /// The first failing check, the one a gate reports.
    pub fn failure(&self) -> Option<&Check> {
        self.checks.iter().find(|c| c.status == Status::Fail)
    }
}

/// Evaluate the agent's preflight: the auth gate first, then the cached verdict when `use_cache`
/// and it is still good (same settings, within its TTL, credentials file unchanged), else afresh;
/// a fresh verdict is stored. Failing checks are a verdict, not an error: Err means orch itself
/// could not work (unknown agent, bad settings, database).
pub fn evaluate(
    config: &Config,
    store: &mut dyn Store,
    agent: &str,
    use_cache: bool,
) -> Result<Verdict> {
    let plan = Plan::new(config, agent)?;
    let now = store.now()?;
    // The verdict and the gate are this host's: another host's binary and credentials file are
    // not the ones checked here.
    let host = config.host();
    let state = store.preflight_state(&host, agent)?;
    if let Some(gate) = state.gate {
        let current = plan.creds.as_ref().and_then(|c| fingerprint(&c.value));
        if gate.creds == current {
            return Ok(plan.gated(&gate));
        }
        store.release_auth_gate(&host, agent, gate.created_at)?;
    }
    // The agent refused how it was called: nothing but another setting changes that.
    if let Some(hold) = state.invocation {
        if hold.inputs == invocation_inputs(config, agent)? {
            return Ok(plan.refused(&hold));
        }
        store.release_invocation_hold(&host, agent, hold.created_at)?;
    }
    // The account's usage limit: nothing on this host can fix it but time.
    if let Some(hold) = state.usage.filter(|hold| hold.holds(now)) {
        return Ok(plan.usage_held(&hold));
    }
    if use_cache {
        if let Some(verdict) = state.cached.and_then(|cached| plan.serve(cached, now)) {
            return Ok(verdict);
        }
    }
    let (verdict, row) = plan.fresh(now)?;
    store.save_preflight(&host, agent, &row)?;
    Ok(verdict)
}

/// The claim gate: the (cached) verdict, or an error carrying exit 10, 11 or 13 and the failing
/// reason. Nothing about any job has been touched when it fails.
pub fn require(config: &Config, store: &mut dyn Store, agent: &str) -> Result<Verdict> {
    let verdict = evaluate(config, store, agent, true)?;
    match verdict.failure() {
        None => Ok(verdict),
        Some(check) => Err(exit::coded(
            verdict.exit_code,
            format!(
                "preflight failed for agent {agent}: {} (details: orch preflight --agent {agent} --explain)",
                check.reason
            ),
        )),
    }
}

/// Whether the profile's login passes the offline check now: the reason when it does. For an
/// auth failure that may be the network's (the agent validates its login online).
pub fn login_passes(config: &Config, agent: &str) -> Result<Option<String>> {
    let plan = Plan::new(config, agent)?;
    let now = crate::store::now_ms();
    let (checks, _, _) = plan.auth_checks(now);
    Ok(checks
        .into_iter()
        .find(|c| c.name == AUTH_CHECK && matches!(c.status, Status::Pass | Status::Warn))
        .map(|c| c.reason))
}

/// The agent's credentials file as it is now (None when it is missing or nowhere to be found):
/// what an auth gate held after a failed run watches for a change.
pub fn creds_fingerprint(config: &Config, agent: &str) -> Result<Option<CredsFingerprint>> {
    let profile = agent::resolve(config, agent)?;
    let file = profile.agent.credentials_file(&profile.env);
    Ok(file.and_then(|c| fingerprint(&c.value)))
}

/// A fingerprint of everything that decides whether the agent accepts the command line orch gives
/// it: the profile (binary, argv, extra arguments, environment), the kind's variables that matter
/// (`Spec::settings_env`), the settings of the stages that run it, and whether the workdirs of
/// the projects it runs in are git work trees (Codex refuses one that is not). A hold for a
/// refused command line stands while it is the same. Hashed: the profile's environment may hold
/// a key, which must not be stored.
pub fn invocation_inputs(config: &Config, agent: &str) -> Result<String> {
    let profile = agent::resolve(config, agent)?;
    let settings = profile.env.profile();
    let mut text = format!(
        "kind={}\nbin={}\nargv={:?}\nextra_args={:?}\nenv={:?}\n",
        settings.kind,
        profile.env.bin().value,
        settings.argv,
        settings.extra_args,
        settings.env
    );
    for name in profile.agent.spec().settings_env {
        text.push_str(&format!("{name}={:?}\n", profile.env.var(name)));
    }
    for (name, project) in &config.projects {
        let stages: Vec<&String> = (config.stages.iter())
            .filter(|stage| config.stage_agent(name, stage) == agent)
            .collect();
        if stages.is_empty() {
            continue;
        }
        let git = config::in_git_work_tree(&project.workdir);
        text.push_str(&format!("project {name} git={git}\n"));
        for stage in stages {
            let s = config.stage(stage);
            text.push_str(&format!(
                "stage {stage} {:?} {:?}\n",
                s.extra_args, s.permission_mode
            ));
        }
    }
    Ok(format!("fnv1a64:{:016x}", fnv1a64(text.as_bytes())))
}

/// FNV-1a, 64 bits: stable across builds and platforms (a fingerprint stored in the database
/// must compare equal tomorrow), not a secret-keeping hash.
fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

/// What an evaluation reads, decided from the settings alone (no I/O).
struct Plan<'a> {
    agent: Profile<'a>,
    /// How the login is checked; None when `preflight_check_auth` is off.
    auth: Option<AuthSource>,
    /// The credentials file, whether or not auth reads it: the gate watches it.
    creds: Option<Located<PathBuf>>,
    min_version: Option<String>,
    policy: AuthPolicy,
    /// The settings a verdict depends on, in one string: a cached verdict made under others is
    /// not served.
    inputs: String,
}

impl<'a> Plan<'a> {
    fn new(config: &'a Config, name: &str) -> Result<Plan<'a>> {
        let agent = agent::resolve(config, name)?;
        let min_version = agent.env.min_version().map(|v| v.trim().to_string());
        if let Some(min) = &min_version {
            if !version::is_version(min) {
                return Err(exit::config(format!(
                    "[agents.{name}] min_version: expected a version like 2.1.0, got {min:?}"
                )));
            }
        }
        let creds = agent.agent.credentials_file(&agent.env);
        let auth = config
            .flag(config::PREFLIGHT_CHECK_AUTH)
            .then(|| agent.agent.auth_source(&agent.env));
        let policy = AuthPolicy {
            skew_ms: config.millis(config::AUTH_EXPIRY_SKEW_SECONDS),
            allow_refreshable: config.flag(config::AUTH_ALLOW_REFRESHABLE),
        };
        let auth_input = match &auth {
            None => "off".to_string(),
            Some(AuthSource::Env { var, .. }) => format!("env:{var}"),
            Some(AuthSource::File(path)) => {
                format!("file:{} ({})", path.value.display(), path.origin)
            }
            Some(AuthSource::Nowhere { .. }) => "nowhere".to_string(),
            Some(AuthSource::Unchecked { reason }) => format!("unchecked:{reason}"),
        };
        let bin = agent.env.bin();
        let inputs = format!(
            "kind={}\nbin={} ({})\nmin_version={}\nauth={auth_input}\nskew_ms={}\nallow_refreshable={}",
            agent.env.kind(),
            bin.value,
            bin.origin,
            min_version.as_deref().unwrap_or(""),
            policy.skew_ms,
            policy.allow_refreshable,
        );
        Ok(Plan {
            agent,
            auth,
            creds,
            min_version,
            policy,
            inputs,
        })
    }

    fn verdict(&self, checks: Vec<Check>, cached: bool, age_ms: i64) -> Verdict {
        let failed = |name: &str| {
            checks
                .iter()
                .any(|c| c.name == name && c.status == Status::Fail)
        };
        let exit_code = if failed(VERSION_CHECK) || failed(INVOCATION_CHECK) {
            exit::PREFLIGHT_AGENT
        } else if failed(AUTH_CHECK) {
            exit::PREFLIGHT_AUTH
        } else if failed(USAGE_CHECK) {
            exit::USAGE_LIMIT
        } else {
            exit::OK
        };
        Verdict {
            ok: exit_code == exit::OK,
            cached,
            age_seconds: (age_ms.max(0) / 1000) as u64,
            agent: self.agent.name().to_string(),
            checks,
            exit_code,
        }
    }

    /// The verdict while a run's auth failure holds the gate.
    fn gated(&self, gate: &AuthGate) -> Verdict {
        let reason = match gate.run_id {
            Some(run) => format!("auth failure seen in run {run}"),
            None => "auth failure seen in a run".to_string(),
        };
        let check = Check {
            name: AUTH_CHECK.to_string(),
            status: Status::Fail,
            reason,
            detail: Detail {
                path: gate.creds.as_ref().map(|c| c.path.display().to_string()),
                run_id: gate.run_id,
                run_reason: Some(gate.reason.clone()),
                since: Some(gate.created_at),
                fix: Some(format!(
                    "log in as the agent's user: {} (the gate opens by itself when the \
                     credentials file changes); once fixed otherwise, run `orch reset-cache`",
                    self.agent.agent.spec().login
                )),
                ..Detail::default()
            },
        };
        self.verdict(vec![check], false, 0)
    }

    /// The verdict while the agent is held for refusing its command line.
    fn refused(&self, hold: &InvocationHold) -> Verdict {
        let reason = match hold.run_id {
            Some(run) => format!("the agent refused its command line in run {run}"),
            None => "the agent refused its command line".to_string(),
        };
        let check = Check {
            name: INVOCATION_CHECK.to_string(),
            status: Status::Fail,
            reason,
            detail: Detail {
                run_id: hold.run_id,
                run_reason: Some(hold.reason.clone()),
                since: Some(hold.created_at),
                fix: Some(format!(
                    "{} (the hold lifts by itself once the settings change; `orch reset-cache` \
                     lifts it at once)",
                    hold.fix
                )),
                ..Detail::default()
            },
        };
        self.verdict(vec![check], false, 0)
    }

    /// The verdict while a usage limit a run hit holds the agent on this host.
    fn usage_held(&self, hold: &UsageHold) -> Verdict {
        let check = Check {
            name: USAGE_CHECK.to_string(),
            status: Status::Fail,
            reason: format!(
                "over its usage limit until {}",
                crate::output::stamp(hold.until)
            ),
            detail: Detail {
                run_id: hold.run_id,
                run_reason: Some(hold.reason.clone()),
                since: Some(hold.created_at),
                until: Some(hold.until),
                fix: Some(
                    "none needed: claims resume by themselves when the limit resets; `orch \
                     reset-cache` lifts the hold at once (after a plan upgrade, say)"
                        .to_string(),
                ),
                ..Detail::default()
            },
        };
        self.verdict(vec![check], false, 0)
    }

    /// The cached verdict, if it still holds.
    fn serve(&self, cached: CachedVerdict, now: i64) -> Option<Verdict> {
        // The TTL as set now counts too: lowering it takes effect at once.
        let ttl_ms = self.agent.env.config().millis(config::PREFLIGHT_CACHE_TTL);
        // A verdict made "in the future" (by a clock that ran ahead) would be served for as long
        // as that clock was wrong: it is not served.
        let from_the_future = clock::ahead_beyond(cached.created_at, now, 0).is_some()
            || clock::ahead_beyond(cached.expires_at, now, ttl_ms).is_some();
        if cached.inputs != self.inputs
            || now >= cached.expires_at
            || now >= cached.created_at.saturating_add(ttl_ms)
            || from_the_future
        {
            return None;
        }
        let current = match &self.auth {
            Some(AuthSource::File(path)) => fingerprint(&path.value),
            _ => None,
        };
        if current != cached.creds {
            return None;
        }
        // A row that no longer parses (an older layout) is simply evaluated afresh.
        let checks: Vec<Check> = serde_json::from_str(&cached.checks_json).ok()?;
        Some(self.verdict(checks, true, now - cached.created_at))
    }

    /// Evaluate every check now, and the row that caches the result.
    fn fresh(&self, now: i64) -> Result<(Verdict, CachedVerdict)> {
        let config = self.agent.env.config();
        let timeout = config.seconds(config::VERSION_TIMEOUT_SECONDS);
        let (version_check, agent_version) = self.version_check(timeout);
        let mut checks = vec![version_check];
        let (auth_checks, creds, valid_until) = self.auth_checks(now);
        checks.extend(auth_checks);
        let verdict = self.verdict(checks, false, 0);
        let ttl_ms = config.millis(config::PREFLIGHT_CACHE_TTL);
        let expires_at = valid_until.map_or(now.saturating_add(ttl_ms), |until| {
            until.min(now.saturating_add(ttl_ms))
        });
        let row = CachedVerdict {
            ok: verdict.ok,
            exit_code: verdict.exit_code,
            checks_json: serde_json::to_string(&verdict.checks)?,
            agent_version,
            inputs: self.inputs.clone(),
            creds,
            created_at: now,
            expires_at,
        };
        Ok((verdict, row))
    }

    fn version_check(&self, timeout: Duration) -> (Check, Option<String>) {
        let bin = self.agent.env.bin();
        let detail = Detail {
            bin: Some(bin.value.clone()),
            bin_from: Some(bin.origin.clone()),
            min_version: self.min_version.clone(),
            ..Detail::default()
        };
        let answer = self.agent.agent.version(&self.agent.env, timeout);
        match answer.and_then(|answer| version::at_least(answer, self.min_version.as_deref())) {
            Ok(answer) => {
                let check = Check {
                    name: VERSION_CHECK.to_string(),
                    status: Status::Pass,
                    reason: format!("version {}", answer.version),
                    detail: Detail {
                        bin: Some(answer.program.display().to_string()),
                        version: Some(answer.version.clone()),
                        ..detail
                    },
                };
                (check, Some(answer.version))
            }
            Err(problem) => {
                let version = match &problem {
                    version::Problem::TooOld { version, .. } => Some(version.clone()),
                    _ => None,
                };
                let check = Check {
                    name: VERSION_CHECK.to_string(),
                    status: Status::Fail,
                    reason: problem.to_string(),
                    detail: Detail {
                        bin: problem
                            .program()
                            .map(|p| p.display().to_string())
                            .or(detail.bin.clone()),
                        version: version.clone(),
                        fix: Some(problem.fix(self.agent.agent.spec())),
                        ..detail
                    },
                };
                (check, version)
            }
        }
    }

    /// The auth check (and a warning about the file's mode), the file's fingerprint when it was
    /// read, and until when a pass holds (the token's expiry less the skew).
    fn auth_checks(&self, now: i64) -> (Vec<Check>, Option<CredsFingerprint>, Option<i64>) {
        let check = |status, reason: String, detail| Check {
            name: AUTH_CHECK.to_string(),
            status,
            reason,
            detail,
        };
        let path = match &self.auth {
            None => {
                let reason = "not checked (preflight_check_auth is false)".to_string();
                return (
                    vec![check(Status::Skip, reason, Detail::default())],
                    None,
                    None,
                );
            }
            Some(AuthSource::Env { var, from }) => {
                let reason = format!("authenticated by {var} in the agent's environment");
                let detail = Detail {
                    env_var: Some(var.to_string()),
                    env_from: Some(from.clone()),
                    ..Detail::default()
                };
                return (vec![check(Status::Pass, reason, detail)], None, None);
            }
            Some(AuthSource::Unchecked { reason }) => {
                return (
                    vec![check(Status::Warn, reason.clone(), Detail::default())],
                    None,
                    None,
                );
            }
            Some(AuthSource::Nowhere { reason, fix }) => {
                let detail = Detail {
                    fix: Some(fix.clone()),
                    ..Detail::default()
                };
                return (
                    vec![check(Status::Fail, reason.clone(), detail)],
                    None,
                    None,
                );
            }
            Some(AuthSource::File(path)) => path,
        };
        let seen = self
            .agent
            .agent
            .check_credentials(&path.value, now, self.policy);
        let status = match (seen.passes, seen.doubtful) {
            (false, _) => Status::Fail,
            (true, true) => Status::Warn,
            (true, false) => Status::Pass,
        };
        let mut reason = seen.reason.clone();
        if seen.passes && seen.refreshable == Some(true) {
            reason.push_str(" (allowed by auth_allow_refreshable)");
        }
        let detail = Detail {
            path: Some(path.value.display().to_string()),
            path_from: Some(path.origin.clone()),
            expires_at: seen.expires_at,
            refresh_token: seen.refreshable,
            fix: seen.fix.clone().filter(|_| status != Status::Pass),
            ..Detail::default()
        };
        let mut checks = vec![check(status, reason, detail)];
        if let Some(warning) = mode_warning(&seen) {
            checks.push(warning);
        }
        (checks, seen.fingerprint, seen.valid_until)
    }
}

/// A warning when group or others may read the credentials file.
fn mode_warning(seen: &CredentialsCheck) -> Option<Check> {
    if !seen.exposed() {
        return None;
    }
    let path = seen.path.display();
    let mode = format!("{:04o}", seen.mode.unwrap_or_default());
    Some(Check {
        name: MODE_CHECK.to_string(),
        status: Status::Warn,
        reason: format!("the credentials file is readable by group or others (mode {mode})"),
        detail: Detail {
            path: Some(path.to_string()),
            mode: Some(mode),
            fix: Some(format!("chmod 600 {path}")),
            ..Detail::default()
        },
    })
}
