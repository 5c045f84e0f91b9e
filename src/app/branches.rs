//! A branch and a worktree per task, pushed, with one pull request: the use cases around a
//! task's git work. `checkout` gives a job's run its directory (the task's worktree, made on its
//! first run); `commit` commits an ok stage's work there; `after_finalize` pushes the branch,
//! queues the pull request's message and removes the worktree of a finished task; `push_pending`
//! retries the pushes this host owes (tick); `prune` clears worktrees a crash left behind.
//!
//! A project branches its tasks when `worktrees` is on (the default) and its workdir is in a git
//! repository with a commit: that repository is the main clone. A workdir that is no repository
//! runs its tasks in place, as does a project with `worktrees = false` (one at a time).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde::Serialize;

use crate::app::finalize::Decision;
use crate::config::{self, Config, Project};
use crate::domain::branch;
use crate::domain::states::TaskState;
use crate::forge;
use crate::fsx;
use crate::notify;
use crate::store::{
    AlertKind, BranchClaim, BranchClaimed, BranchUpdate, Job, NewAlert, NewPullRequest,
    PushOutcome, Run, Store, Task, WorktreeChange, WorktreeRecord,
};
use crate::vcs::git::{self, Committed, Git};
use crate::vcs::push::{self, Credentials, PushRequest};
use crate::vcs::worktree::{self, Probe, ProjectLock, Repo, Start};

/// Who orch's commits in a worktree are by when neither `commit_author` nor git's configuration
/// names anyone.
const FALLBACK_AUTHOR: &str = "orch <orch@localhost>";

/// Pushes the tick retries at most, per tick.
const PUSHES_PER_TICK: i64 = 20;

fn git_timeout(config: &Config) -> Duration {
    config.seconds(config::GIT_TIMEOUT_SECONDS)
}

/// Why the project's jobs cannot run on this host now, if they cannot: its workdir is missing, or
/// its tasks get worktrees and its main clone has no commit to start a branch from. Cheap (no
/// git process): a claim asks it of every project, and holds the project while it says why.
pub fn not_ready(project: &Project) -> Option<String> {
    project.workdir_missing().or_else(|| {
        if !project.worktrees {
            return None;
        }
        worktree::surely_unborn(&project.workdir).map(|top| unborn(&top, project))
    })
}

fn unborn(top: &Path, project: &Project) -> String {
    format!(
        "the main clone {} has no commit yet, and each task's branch starts from one: commit \
         something there, or set worktrees = false in [projects.{}]",
        top.display(),
        project.name
    )
}

/// The project's main clone, when its tasks get worktrees; None when they run in place. Err for
/// a repository without a commit (nothing to branch from).
pub fn main_clone(config: &Config, project: &Project) -> Result<Option<Repo>, String> {
    if !project.worktrees {
        return Ok(None);
    }
    match worktree::probe(&project.workdir, git_timeout(config))? {
        Probe::NotGit => Ok(None),
        Probe::Repo(repo) => Ok(Some(repo)),
        Probe::Unborn(repo) => Err(unborn(&repo.toplevel, project)),
    }
}

/// The directory `job`'s agent works in: its task's worktree, made now when the task has none on
/// this host (with its branch, on its first run), or the workdir itself. Err says why the
/// worktree could not be made.
pub fn checkout(
    config: &Config,
    store: &mut dyn Store,
    job: &Job,
    project: &Project,
) -> Result<PathBuf, String> {
    let Some(repo) = main_clone(config, project)? else {
        return Ok(project.workdir.clone());
    };
    let timeout = git_timeout(config);
    let here = config.host();
    let task = store
        .task(job.task_id)
        .map_err(|err| format!("{err:#}"))?
        .ok_or_else(|| format!("task {} vanished", job.task))?;
    if let Some(path) = current_worktree(&task, &here, &repo, timeout) {
        return Ok(inside(&path, &repo));
    }
    let _lock = project_lock(config, project)?;
    let project_dir = fsx::ensure_private_dir(
        &config.worktree_dir().join(&project.name),
        "worktree directory",
    )
    .map_err(|err| format!("{err:#}"))?;
    let main = Git::new(&repo.toplevel, timeout);
    let task = match &task.branch {
        Some(_) => task,
        None => choose_branch(store, &main, project, &task)?,
    };
    let (Some(branch_name), Some(base)) = (task.branch.clone(), task.base_branch.clone()) else {
        return Err(format!("task {} has no branch recorded", task.key));
    };
    let remote = task.remote_url.is_some().then_some(project.remote.as_str());
    if let Some(remote) = remote {
        if let Err(why) = worktree::fetch(&main, remote, &base) {
            crate::diag!(
                "orch: warning: fetching {base} from {remote} failed; task {} starts from what \
                 was fetched before: {why}",
                task.key
            );
        }
        // The branch itself, when a run on another host pushed it already.
        let _ = worktree::fetch(&main, remote, &branch_name);
    }
    let local = format!("refs/heads/{branch_name}");
    let tracking = remote.map(|r| format!("refs/remotes/{r}/{branch_name}"));
    let base_ref = match remote {
        Some(remote)
            if worktree::commit_of(&main, &format!("refs/remotes/{remote}/{base}")).is_some() =>
        {
            format!("refs/remotes/{remote}/{base}")
        }
        _ => format!("refs/heads/{base}"),
    };
    let base_sha = worktree::commit_of(&main, &base_ref).ok_or_else(|| {
        format!(
            "the base branch {base} of task {} is neither in {} nor fetched from its remote",
            task.key,
            repo.toplevel.display()
        )
    })?;
    // The branch where it is: in the main clone, else as pushed from another host, else new
    // from the base.
    let start_at = match worktree::commit_of(&main, &local) {
        Some(_) => None,
        None => Some(
            tracking
                .filter(|t| worktree::commit_of(&main, t).is_some())
                .unwrap_or(base_ref),
        ),
    };
    let start = match &start_at {
        None => Start::Existing,
        Some(at) => Start::New(at),
    };
    let path = project_dir.join(branch::worktree_dir(&task.key, task.task_id));
    worktree::add(&main, &repo, &path, &branch_name, start)?;
    let now = store.now().map_err(|err| format!("{err:#}"))?;
    store
        .record_worktree(&WorktreeRecord {
            task_id: task.task_id,
            host: &here,
            path: &path.display().to_string(),
            base_sha: &base_sha,
            now,
        })
        .map_err(|err| format!("{err:#}"))?;
    Ok(inside(&path, &repo))
}

/// Where in a worktree the agent works: where the workdir lies in the main clone.
fn inside(worktree: &Path, repo: &Repo) -> PathBuf {
    if repo.prefix.as_os_str().is_empty() {
        worktree.to_path_buf()
    } else {
        worktree.join(&repo.prefix)
    }
}

/// The task's worktree on this host, when it is there.
fn current_worktree(task: &Task, here: &str, repo: &Repo, timeout: Duration) -> Option<PathBuf> {
    let path = PathBuf::from(task.worktree.as_ref()?);
    (task.worktree_host.as_deref() == Some(here) && worktree::is_worktree_of(&path, repo, timeout))
        .then_some(path)
}

/// Choose and record the task's branch (and its base and remote): the template's name, or the
/// name with the task's id when another task of the project has it. A branch of that name in
/// the repository or on the remote that no task has is this task's (a task re-made after its
/// database was lost finds its branch, and its pull request, again).
fn choose_branch(
    store: &mut dyn Store,
    main: &Git,
    project: &Project,
    task: &Task,
) -> Result<Task, String> {
    let remote_url = worktree::remote_url(main, &project.remote);
    let base = match &project.base_branch {
        Some(base) => base.clone(),
        None => remote_url
            .as_ref()
            .and_then(|_| worktree::default_branch(main, &project.remote))
            .or_else(|| worktree::current_branch(main))
            .ok_or_else(|| {
                format!(
                    "cannot tell which branch task {} starts from: set base_branch in [projects.{}]",
                    task.key, project.name
                )
            })?,
    };
    let name = branch::name(
        &project.branch_template,
        &project.name,
        &task.key,
        &task.title,
        task.issue,
    )?;
    for candidate in [name.clone(), format!("{name}-{}", task.task_id)] {
        let now = store.now().map_err(|err| format!("{err:#}"))?;
        let claimed = store
            .claim_branch(&BranchClaim {
                task_id: task.task_id,
                branch: &candidate,
                base_branch: &base,
                remote_url: remote_url.as_deref(),
                now,
            })
            .map_err(|err| format!("{err:#}"))?;
        match claimed {
            BranchClaimed::Task(task) => return Ok(*task),
            BranchClaimed::Taken { .. } => continue,
        }
    }
    Err(format!(
        "branch {name} and {name}-{} belong to other tasks of project {}",
        task.task_id, project.name
    ))
}

/// Commit an ok stage's work: in the task's worktree when it has one here (always; the branch
/// is the stage's product), else in the workdir when the project asks for auto-commit. Also the
/// commit the task's branch is at when that moved past where it started, for the push.
pub fn commit(
    config: &Config,
    store: &dyn Store,
    job: &Job,
    run: &Run,
) -> (Option<Committed>, Option<String>) {
    let Some(project) = config.projects.get(&job.project) else {
        return (None, None);
    };
    let message = git::commit_message(&job.stage, &run.worker, run.run_id);
    let request = |workdir| git::CommitRequest {
        workdir,
        message: &message,
        author: project.commit_author.as_deref(),
        fallback_author: None,
        timeout: git_timeout(config),
        hooks: config.flag(config::GIT_HOOKS),
    };
    let task = store.task(job.task_id).ok().flatten();
    match task.filter(|t| t.branch.is_some()) {
        Some(task) => {
            let here = config.host();
            let Some(path) = task
                .worktree
                .as_ref()
                .map(PathBuf::from)
                .filter(|p| task.worktree_host.as_deref() == Some(here.as_str()) && p.is_dir())
            else {
                return (None, None);
            };
            let committed = git::auto_commit(&git::CommitRequest {
                fallback_author: Some(FALLBACK_AUTHOR),
                ..request(&path)
            });
            let head = Git::new(&path, git_timeout(config))
                .text(&["rev-parse", "HEAD"])
                .ok()
                .filter(|head| task.base_sha.as_deref() != Some(head.as_str()));
            (Some(committed), head)
        }
        None if project.auto_commit => (Some(git::auto_commit(&request(&project.workdir))), None),
        None => (None, None),
    }
}

/// What became of a task's branch after a finalize, or a retried push.
#[derive(Debug, Clone, Serialize)]
pub struct BranchReport {
    pub task: String,
    pub branch: String,
    /// The commit pushed now.
    pub pushed: Option<String>,
    /// Why the push failed (it is tried again by the next tick).
    pub push_error: Option<String>,
    pub worktree_removed: bool,
    /// The pull request's message was queued (open, or bring its body up to date).
    pub pull_request_queued: bool,
}

/// After finalize decided: push the task's branch when a commit waits, queue its pull request's
/// message, and remove its worktree when the task is done with (completed, or failed for good);
/// else measure it. None for a task without a branch. A failure here never touches the decision.
pub fn after_finalize(
    config: &Config,
    store: &mut dyn Store,
    job: &Job,
    run_id: i64,
    decision: Decision,
) -> Result<Option<BranchReport>> {
    let Some(task) = store.task(job.task_id)? else {
        return Ok(None);
    };
    let Some(project) = config.projects.get(&job.project) else {
        return Ok(None);
    };
    if task.branch.is_none() {
        return Ok(None);
    }
    let finished = matches!(decision, Decision::Completed | Decision::Failed);
    settle(config, store, project, &task, Some(run_id), finished).map(Some)
}

/// Push (when due and this host has the commit), remove or measure the worktree, record it all.
fn settle(
    config: &Config,
    store: &mut dyn Store,
    project: &Project,
    task: &Task,
    run_id: Option<i64>,
    finished: bool,
) -> Result<BranchReport> {
    let here = config.host();
    let ours = task.worktree_host.as_deref() == Some(here.as_str());
    let push = (ours && task.push_due() && task.remote_url.is_some())
        .then(|| push_branch(config, project, task));
    let worktree = match task.worktree.as_ref().map(PathBuf::from) {
        Some(path) if ours && finished => match remove_worktree(config, project, &path) {
            Ok(()) => WorktreeChange::Removed,
            Err(why) => {
                crate::diag!(
                    "orch: warning: could not remove the worktree {} of task {} (`orch \
                     prune-worktrees` tries again): {why}",
                    path.display(),
                    task.key
                );
                WorktreeChange::Unchanged
            }
        },
        Some(path) if ours && path.is_dir() => {
            WorktreeChange::Measured(i64::try_from(worktree::disk_usage(&path)).unwrap_or(i64::MAX))
        }
        _ => WorktreeChange::Unchanged,
    };
    let alert = match &push {
        Some(PushOutcome::Failed { error }) if notify::alerts_switch(config).on => Some(NewAlert {
            project: Some(project.name.clone()),
            task: Some(task.key.clone()),
            run_id,
            ..NewAlert::new(
                AlertKind::PushFailed,
                &format!("{}/{}", project.name, task.key),
                &format!(
                    "pushing {} failed: {error}",
                    task.branch.as_deref().unwrap_or_default()
                ),
            )
        }),
        _ => None,
    };
    let pull_request = project.opens_pull_requests().then(|| NewPullRequest {
        project: project.name.clone(),
        task: task.key.clone(),
        task_id: task.task_id,
    });
    let recorded = store.record_branch(&BranchUpdate {
        task_id: task.task_id,
        run_id,
        push: push.clone(),
        worktree,
        pull_request,
        alert,
        now: store.now()?,
    })?;
    let (pushed, push_error) = match push {
        Some(PushOutcome::Pushed { sha }) => (Some(sha), None),
        Some(PushOutcome::Failed { error }) => {
            crate::diag!(
                "orch: task {}: {error} (the next tick tries again)",
                task.key
            );
            (None, Some(error))
        }
        None => (None, None),
    };
    Ok(BranchReport {
        task: task.key.clone(),
        branch: task.branch.clone().unwrap_or_default(),
        pushed,
        push_error,
        worktree_removed: worktree == WorktreeChange::Removed,
        pull_request_queued: recorded.pull_request_queued.is_some(),
    })
}

/// Push the task's branch head to its remote, with the forge token when the remote is the
/// forge's over HTTP(S).
fn push_branch(config: &Config, project: &Project, task: &Task) -> PushOutcome {
    let failed = |error: String| PushOutcome::Failed { error };
    let (Some(url), Some(sha), Some(branch_name)) =
        (&task.remote_url, &task.head_sha, &task.branch)
    else {
        return failed("nothing to push".to_string());
    };
    let repo = match main_clone(config, project) {
        Ok(Some(repo)) => repo,
        Ok(None) => {
            return failed(format!(
                "{} is no git repository",
                project.workdir.display()
            ))
        }
        Err(why) => return failed(why),
    };
    let token = config
        .text(config::FORGE_TOKEN)
        .map(str::trim)
        .filter(|t| !t.is_empty());
    let host = project.forge.as_ref().and_then(forge::git_host);
    let over_http = url.starts_with("https://") || url.starts_with("http://");
    let credentials = match (&project.forge, token, host.as_deref()) {
        (Some(spec), Some(token), Some(host))
            if over_http && crate::vcs::askpass::url_host(url).as_deref() == Some(host) =>
        {
            Some(Credentials {
                user: forge::git_user(&spec.kind),
                token,
                host,
            })
        }
        _ => None,
    };
    let scratch = config.worktree_dir().join(".push");
    if let Err(err) = fsx::ensure_private_dir(&config.worktree_dir(), "worktree directory") {
        return failed(format!("{err:#}"));
    }
    match push::push(&PushRequest {
        common_dir: &repo.common_dir,
        scratch: &scratch,
        url,
        sha,
        branch: branch_name,
        credentials,
        timeout: git_timeout(config),
    }) {
        Ok(()) => PushOutcome::Pushed { sha: sha.clone() },
        Err(error) => failed(error),
    }
}

fn remove_worktree(config: &Config, project: &Project, path: &Path) -> Result<(), String> {
    let repo = match main_clone(config, project)? {
        Some(repo) => repo,
        None => {
            return Err(format!(
                "{} is no git repository",
                project.workdir.display()
            ))
        }
    };
    // Not while another task's worktree is being made: removing ends with `git worktree prune`.
    let _lock = project_lock(config, project)?;
    worktree::remove(&Git::new(&repo.toplevel, git_timeout(config)), path)
}

/// Remove a pruned task's worktree at `path`, under its project's lock, unless `in_use` (asked
/// under the lock, so that no checkout makes the directory again in between) finds a live task
/// has it now. The main clone forgets it too (`git worktree remove`; a directory git does not
/// know as a worktree is removed, then `git worktree prune`). Ok(false): left, a live task's.
pub fn remove_pruned_worktree(
    config: &Config,
    project: &str,
    path: &Path,
    in_use: impl FnOnce() -> Result<bool, String>,
) -> Result<bool, String> {
    let remove_dir = || std::fs::remove_dir_all(path).map_err(|err| err.to_string());
    // A project no longer configured has no main clone to tell, and no checkout to race.
    let Some(project) = config.projects.get(project) else {
        return match in_use()? {
            true => Ok(false),
            false => remove_dir().map(|()| true),
        };
    };
    let _lock = project_lock(config, project)?;
    if in_use()? {
        return Ok(false);
    }
    match main_clone(config, project) {
        Ok(Some(repo)) => {
            let main = Git::new(&repo.toplevel, git_timeout(config));
            if worktree::remove(&main, path).is_err() {
                remove_dir()?;
                worktree::remove(&main, path)?;
            }
        }
        _ => remove_dir()?,
    }
    Ok(true)
}

/// The lock on the project's main clone (see `ProjectLock`), in the worktree directory.
fn project_lock(config: &Config, project: &Project) -> Result<ProjectLock, String> {
    let root = fsx::ensure_private_dir(&config.worktree_dir(), "worktree directory")
        .map_err(|err| format!("{err:#}"))?;
    ProjectLock::take(&root.join(format!("{}.lock", project.name)))
        .map_err(|err| format!("locking the worktrees of project {}: {err}", project.name))
}

/// The pushes this host owes (a push that failed, or one orch died before), tried again: the
/// tick's step. After a project's push fails, its other tasks wait for the next tick (one
/// timeout per remote per tick, not one per task).
pub fn push_pending(config: &Config, store: &mut dyn Store) -> Result<Vec<BranchReport>> {
    let mut reports = Vec::new();
    let mut failed: BTreeSet<String> = BTreeSet::new();
    for task in store.unpushed_branches(&config.host(), PUSHES_PER_TICK)? {
        let Some(project) = config.projects.get(&task.project) else {
            continue;
        };
        if failed.contains(&task.project) {
            continue;
        }
        // A task that finished while its push failed (or orch died) loses its worktree now.
        let finished = task.state != TaskState::Active;
        let report = settle(config, store, project, &task, None, finished)?;
        if report.push_error.is_some() {
            failed.insert(task.project.clone());
        }
        reports.push(report);
    }
    Ok(reports)
}

/// A worktree `prune` removed (or would, with `dry_run`).
#[derive(Debug, Clone, Serialize)]
pub struct Pruned {
    pub project: String,
    /// The task it was made for, when orch knows it.
    pub task: Option<String>,
    pub path: PathBuf,
    pub why: String,
    /// Why it could not be removed (it stays).
    pub error: Option<String>,
}

/// Remove this host's worktrees of finished tasks (complete, failed, cancelled) left behind by
/// a crash, and worktrees under `worktree_dir` that no live task of the project has; forget
/// worktrees whose directory is gone. Only git worktrees of the project's main clone under
/// orch's own directory are ever removed. `dry_run`: only say what would go.
pub fn prune(config: &Config, store: &mut dyn Store, dry_run: bool) -> Result<Vec<Pruned>> {
    let here = config.host();
    let mut pruned = Vec::new();
    let recorded = store.worktrees(&here)?;
    let mut kept: BTreeSet<PathBuf> = BTreeSet::new();
    for task in &recorded {
        let path = PathBuf::from(task.worktree.as_deref().unwrap_or_default());
        let Some(project) = config.projects.get(&task.project) else {
            kept.insert(path);
            continue;
        };
        let why = match (task.state, path.is_dir()) {
            (_, false) => "its directory is gone".to_string(),
            (TaskState::Active, true) => {
                kept.insert(path);
                continue;
            }
            (state, true) => format!("task {} is {state}", task.key),
        };
        let error = if dry_run || !path.is_dir() {
            None
        } else {
            remove_worktree(config, project, &path).err()
        };
        if error.is_none() && !dry_run {
            store.record_branch(&BranchUpdate {
                task_id: task.task_id,
                run_id: None,
                push: None,
                worktree: WorktreeChange::Removed,
                pull_request: None,
                alert: None,
                now: store.now()?,
            })?;
        }
        if error.is_some() {
            kept.insert(path.clone());
        }
        pruned.push(Pruned {
            project: project.name.clone(),
            task: Some(task.key.clone()),
            path,
            why,
            error,
        });
    }
    let root = config.worktree_dir();
    for project in config.projects.values() {
        let under = root.join(&project.name);
        if !under.is_dir() {
            continue;
        }
        let Ok(Some(repo)) = main_clone(config, project) else {
            continue;
        };
        let main = Git::new(&repo.toplevel, git_timeout(config));
        let _lock = project_lock(config, project).map_err(anyhow::Error::msg)?;
        let listed = worktree::list(&main).map_err(anyhow::Error::msg)?;
        for path in listed {
            if !path.starts_with(&under) || kept.contains(&path) {
                continue;
            }
            if pruned.iter().any(|p| p.path == path) {
                continue;
            }
            let error = if dry_run {
                None
            } else {
                worktree::remove(&main, &path).err()
            };
            pruned.push(Pruned {
                project: project.name.clone(),
                task: None,
                path,
                why: "no live task of the project has it".to_string(),
                error,
            });
        }
        if !dry_run {
            let _ = main.run(&["worktree", "prune"], &[]);
        }
    }
    if !dry_run {
        clear_stale_pushes(&root.join(".push"));
    }
    Ok(pruned)
}

/// Remove push directories a killed orch left (older than an hour: a live push is bounded by
/// its git timeout).
fn clear_stale_pushes(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let hour = Duration::from_secs(3600);
    for entry in entries.flatten() {
        let old = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|at| at.elapsed().ok())
            .is_some_and(|age| age > hour);
        if old && entry.file_name().to_string_lossy().starts_with("push-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// Where `orch run --dry-run` shows the agent working: the task's worktree (made on its first
/// run), or the workdir.
pub fn planned_cwd(
    config: &Config,
    store: &dyn Store,
    job: &Job,
    project: &Project,
) -> Result<PathBuf> {
    let Some(repo) = main_clone(config, project).map_err(anyhow::Error::msg)? else {
        return Ok(project.workdir.clone());
    };
    let task = store
        .task(job.task_id)?
        .with_context(|| format!("task {} vanished", job.task))?;
    let here = config.host();
    if let Some(path) = current_worktree(&task, &here, &repo, git_timeout(config)) {
        return Ok(inside(&path, &repo));
    }
    let path = config
        .worktree_dir()
        .join(&project.name)
        .join(branch::worktree_dir(&task.key, task.task_id));
    Ok(inside(&path, &repo))
}
