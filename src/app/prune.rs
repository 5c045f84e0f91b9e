//! Retention: remove what belongs to tasks finished longer ago than `retention_days` — their
//! jobs, history, runs, delivered messages, logs and worktrees — in short batches, then hand the
//! freed pages back to the file system. `orch prune` runs it whole; `orch tick` runs it when the
//! fleet's turn comes (at most every `prune_interval_hours`, one process at a time), for a few
//! seconds, going on where it stopped at the next tick until it is done.
//!
//! Rows go first, files after: a batch's transaction deletes the rows and queues the files they
//! named in the trash of the host each file is on; each host then removes its own (`take_out`),
//! this one right after the batch, the others at their next tick. Only files orch made, in the
//! directories orch owns, are removed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Result;
use serde::Serialize;

use crate::config::{self, Config};
use crate::domain::retention::{self, Pacer, PRUNE_TURN, TURN_MARGIN_MS};
use crate::domain::states::{OutboxState, TaskState};
use crate::fsx;
use crate::store::{OutboxSweep, PruneBatch, PrunedBatch, Store, TrashItem, TrashKind, Turn};

/// How long each batch's transaction may hold the write lock, about: claims wait no longer.
pub const BATCH_TARGET: Duration = Duration::from_millis(25);
/// How long a tick spends pruning before it goes on with its own work; the next tick goes on.
pub const TICK_BUDGET: Duration = Duration::from_secs(5);
/// Trash items read at a time.
const TRASH_STEP: i64 = 1000;

#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Remove what finished longer ago than this.
    pub older_than_ms: i64,
    /// Count what would go, remove nothing.
    pub dry_run: bool,
    /// Stop (incomplete) when this passes; None: go on until done.
    pub deadline: Option<Instant>,
}

/// What a prune removed (or, dry, would remove).
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub dry_run: bool,
    pub older_than_ms: i64,
    /// Tasks that finished before this time were removed.
    pub finished_before: i64,
    pub tasks: i64,
    pub jobs: i64,
    pub history: i64,
    pub runs: i64,
    /// The copies of the removed runs' logs the database kept.
    pub logs: i64,
    pub outbox: i64,
    #[serde(flatten)]
    pub files: Removed,
    /// Files on other hosts, left in their trash for them to remove.
    pub files_elsewhere: i64,
    pub database: Database,
    /// What went back to the file system here: the log files, and what the database shrank.
    pub bytes_freed: u64,
    pub batches: i64,
    /// The longest batch, the write lock held for most of it.
    pub longest_batch_ms: f64,
    /// False when the deadline came first (a tick's share): the next one goes on.
    pub complete: bool,
}

/// Files removed from this host.
#[derive(Debug, Default, Serialize, Clone, Copy)]
pub struct Removed {
    pub log_files: i64,
    pub log_bytes: u64,
    pub worktrees: i64,
    /// Files agents left in the temporary directories orch gives them (Gemini's error reports,
    /// which hold the prompt), older than the retention.
    pub agent_files: i64,
}

impl std::ops::AddAssign for Removed {
    fn add_assign(&mut self, other: Removed) {
        self.log_files += other.log_files;
        self.log_bytes += other.log_bytes;
        self.worktrees += other.worktrees;
        self.agent_files += other.agent_files;
    }
}

#[derive(Debug, Default, Serialize)]
pub struct Database {
    pub bytes_before: i64,
    pub bytes_after: i64,
    /// Free pages left inside the file (reused by new rows; handed back only when
    /// `incremental`).
    pub free_bytes: i64,
    pub incremental: bool,
}

impl Report {
    fn add(&mut self, batch: &PrunedBatch) {
        self.tasks += batch.tasks;
        self.jobs += batch.jobs;
        self.history += batch.history;
        self.runs += batch.runs;
        self.logs += batch.logs;
        self.outbox += batch.outbox;
    }

    /// Whether it removed (or would remove) a row or a file.
    pub fn removed_anything(&self) -> bool {
        self.tasks
            + self.outbox
            + self.files.log_files
            + self.files.worktrees
            + self.files.agent_files
            > 0
    }
}

/// Prune what finished longer ago than `options.older_than_ms`.
pub fn prune(config: &Config, store: &mut dyn Store, options: &Options) -> Result<Report> {
    let now = store.now()?;
    let cutoffs = retention::cutoffs(now, options.older_than_ms);
    let before = store.storage()?;
    let host = config.host();
    let mut report = Report {
        dry_run: options.dry_run,
        older_than_ms: options.older_than_ms,
        finished_before: cutoffs.finished_before,
        database: Database {
            bytes_before: before.bytes(),
            incremental: before.incremental,
            ..Database::default()
        },
        complete: true,
        ..Report::default()
    };
    let out_of_time = || options.deadline.is_some_and(|at| Instant::now() >= at);
    let pause = !options.dry_run;
    let mut after = None;
    report.complete = paced(Pacer::TASKS, pause, &out_of_time, |limit| {
        let batch = PruneBatch {
            finished: TaskState::FINISHED,
            cutoffs,
            after,
            limit,
            host: &host,
            now,
        };
        // The last batch's files first, paced like the batches: each lock the prune takes is
        // followed by a pause as long, so a claim waiting for it gets in.
        if !options.dry_run {
            report.files += take_out(config, store, pause)?;
        }
        let (pruned, took) = timed(|| match options.dry_run {
            true => store.preview_prune(&batch),
            false => store.prune_batch(&batch),
        })?;
        report.batches += 1;
        report.longest_batch_ms = report.longest_batch_ms.max(took.as_secs_f64() * 1000.0);
        report.add(&pruned);
        report.files_elsewhere += pruned.files.iter().filter(|f| f.host != host).count() as i64;
        if options.dry_run {
            report.files += would_remove(config, &pruned.files, &host);
        }
        store.checkpoint()?;
        after = pruned.next;
        Ok((after.is_some(), took))
    })?;
    if !options.dry_run {
        report.files += take_out(config, store, pause)?;
        report.files.agent_files += sweep_agent_tmp(config, cutoffs.finished_before);
    }
    // Delivered messages left without a job (alerts about an agent or a project, or one
    // delivered after its task was pruned): folded ones, then the sent ones they went out with.
    for state in [OutboxState::Folded, OutboxState::Sent] {
        let mut after = None;
        report.complete = report.complete
            && paced(Pacer::TASKS, pause, &out_of_time, |limit| {
                let sweep = OutboxSweep {
                    state,
                    before: cutoffs.finished_before,
                    after,
                    limit,
                    dry_run: options.dry_run,
                };
                let (swept, took) = timed(|| store.sweep_outbox(&sweep))?;
                store.checkpoint()?;
                report.outbox += swept.messages;
                after = swept.next;
                Ok((after.is_some(), took))
            })?;
    }
    // The freed pages back to the file system, when the database is in incremental mode (one
    // made before orch set it keeps them for new rows).
    if report.complete && !options.dry_run && store.storage()?.incremental {
        let mut free = store.storage()?.free_pages;
        report.complete = paced(Pacer::PAGES, true, &out_of_time, |pages| {
            let (left, took) = timed(|| store.release_pages(pages))?;
            store.checkpoint()?;
            let more = left > 0 && left < free;
            free = left;
            Ok((more, took))
        })?;
    }
    let after = store.storage()?;
    report.database.bytes_after = after.bytes();
    report.database.free_bytes = after.free_pages * after.page_size;
    let shrunk = (report.database.bytes_before - report.database.bytes_after).max(0) as u64;
    report.bytes_freed = report.files.log_bytes + shrunk;
    Ok(report)
}

/// `f`'s answer and how long it took.
fn timed<T>(f: impl FnOnce() -> Result<T>) -> Result<(T, Duration)> {
    let started = Instant::now();
    let value = f()?;
    Ok((value, started.elapsed()))
}

/// Take `step`s (each given how much to take; each answering whether more is left, and how long
/// its transaction took) until nothing is left, each sized by a `Pacer` to hold the write lock
/// for about `BATCH_TARGET`, pausing as long after each when `pause`. False when `out_of_time`
/// came first.
fn paced(
    sizes: (i64, i64),
    pause: bool,
    out_of_time: &dyn Fn() -> bool,
    mut step: impl FnMut(i64) -> Result<(bool, Duration)>,
) -> Result<bool> {
    let mut pacer = Pacer::new(sizes, BATCH_TARGET);
    loop {
        if out_of_time() {
            return Ok(false);
        }
        let (more, took) = step(pacer.size)?;
        if !more {
            return Ok(true);
        }
        pacer.next(took);
        if pause {
            std::thread::sleep(Pacer::pause(took));
        }
    }
}

/// The fleet's prune, when its turn has come (`prune_interval_hours` since it was last done,
/// and nobody is at it), for at most `budget`; and this host's trash, every time. None when it
/// was not this process's turn.
pub fn when_due(
    config: &Config,
    store: &mut dyn Store,
    worker: &str,
    budget: Duration,
) -> Result<Option<Report>> {
    take_out(config, store, false)?;
    let every_hours = config.count(config::PRUNE_INTERVAL_HOURS) as i64;
    if every_hours == 0 {
        return Ok(None);
    }
    let holder = format!("{worker}@{}:{}", config.host(), std::process::id());
    let now = store.now()?;
    // This host's agents' temporary files, once an interval: every host keeps its own.
    let here = format!("{PRUNE_TURN}:agent-tmp@{}", config.host());
    let local = Turn {
        name: &here,
        holder: &holder,
        every_ms: every_hours.saturating_mul(3_600_000),
        hold_ms: TURN_MARGIN_MS,
        now,
    };
    if store.take_turn(&local)? {
        sweep_agent_tmp(config, now.saturating_sub(retention_ms(config)));
        store.end_turn(&here, &holder, true, now)?;
    }
    let turn = Turn {
        name: PRUNE_TURN,
        holder: &holder,
        every_ms: every_hours.saturating_mul(3_600_000),
        hold_ms: (budget.as_millis() as i64).saturating_add(TURN_MARGIN_MS),
        now,
    };
    if !store.take_turn(&turn)? {
        return Ok(None);
    }
    let options = Options {
        older_than_ms: retention_ms(config),
        dry_run: false,
        deadline: Some(Instant::now() + budget),
    };
    let pruned = prune(config, store, &options);
    let done = matches!(&pruned, Ok(report) if report.complete);
    let ended = store
        .now()
        .and_then(|now| store.end_turn(PRUNE_TURN, &holder, done, now));
    let report = pruned?;
    ended?;
    Ok(Some(report))
}

/// `retention_days` in milliseconds.
pub fn retention_ms(config: &Config) -> i64 {
    (config.count(config::RETENTION_DAYS) as i64).saturating_mul(86_400_000)
}

/// Note a prune done by hand as the fleet's, when it removed at least what the periodic one
/// would (so the next tick does not do it again).
pub fn record_done(config: &Config, store: &mut dyn Store, report: &Report) -> Result<()> {
    if report.dry_run || !report.complete || report.older_than_ms > retention_ms(config) {
        return Ok(());
    }
    let now = store.now()?;
    store.end_turn(PRUNE_TURN, "", true, now)
}

/// Remove the files waiting in this host's trash, and forget them (a file that cannot be
/// removed is reported once, and forgotten too: it is not orch's, or not there). Files in a
/// directory others may write in are left in the trash, said so, until it is orch's alone again.
/// With `pace`, after forgetting each step of items it pauses as long as that took.
pub fn take_out(config: &Config, store: &mut dyn Store, pace: bool) -> Result<Removed> {
    let host = config.host();
    let mut removed = Removed::default();
    let mut places = None;
    loop {
        let items = store.trash(&host, TRASH_STEP)?;
        if items.is_empty() {
            return Ok(removed);
        }
        // Looked at once, and only when there is something to remove.
        let places: &Places = places.get_or_insert_with(|| {
            let places = Places::of(config);
            for root in [&places.log_dir, &places.worktrees] {
                if let Err(why) = &root.real {
                    crate::diag!(
                        "orch: prune: leaving the files in {}: {why}",
                        root.path.display()
                    );
                }
            }
            places
        });
        let (kept, forget): (Vec<&TrashItem>, Vec<&TrashItem>) = items
            .iter()
            .partition(|item| places.root(item.kind).real.is_err());
        for item in &forget {
            match remove(config, &*store, places, item) {
                Ok(freed) => removed += freed,
                Err(why) => crate::diag!(
                    "orch: prune: left {} {}: {why}",
                    item.kind.as_str(),
                    item.path
                ),
            }
        }
        let ids: Vec<i64> = forget.iter().map(|item| item.id).collect();
        let ((), took) = timed(|| store.empty_trash(&ids))?;
        if pace {
            std::thread::sleep(Pacer::pause(took));
        }
        if (items.len() as i64) < TRASH_STEP || !kept.is_empty() {
            return Ok(removed);
        }
    }
}

/// Remove the files last changed before `before` (epoch ms) from the temporary directories orch
/// gives agents on this host (`<log_dir>/agent-tmp/<profile>/`, Gemini's error reports among
/// them: they hold the prompt). Only regular files, found without following a link, in
/// directories only orch's user may write; how many went.
pub fn sweep_agent_tmp(config: &Config, before: i64) -> i64 {
    let root = config.log_dir().join("agent-tmp");
    let Ok(profiles) = std::fs::read_dir(&root) else {
        return 0;
    };
    if let Err(why) = fsx::check_private_dir(&root, "the agents' temporary directory") {
        crate::diag!("orch: prune: leaving {}: {why:#}", root.display());
        return 0;
    }
    let cutoff = std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(before).unwrap_or(0));
    let mut removed = 0;
    let mut dirs: Vec<PathBuf> = profiles.flatten().map(|e| e.path()).collect();
    while let Some(dir) = dirs.pop() {
        let private = std::fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir())
            && fsx::check_private_dir(&dir, "directory").is_ok();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) if private => entries,
            _ => continue,
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.path().symlink_metadata() else {
                continue;
            };
            if meta.is_dir() {
                dirs.push(entry.path());
            } else if meta.is_file()
                && meta.modified().is_ok_and(|at| at < cutoff)
                && std::fs::remove_file(entry.path()).is_ok()
            {
                removed += 1;
            }
        }
    }
    removed
}

/// What removing `files` would free on this host (a dry run).
fn would_remove(config: &Config, files: &[TrashItem], host: &str) -> Removed {
    let places = Places::of(config);
    let mut removed = Removed::default();
    for item in files.iter().filter(|item| item.host == host) {
        match (item.kind, places.locate(item)) {
            (TrashKind::Log, Ok(Some(path))) => {
                removed.log_files += 1;
                removed.log_bytes += std::fs::symlink_metadata(path).map_or(0, |m| m.len());
            }
            (TrashKind::Worktree, Ok(Some(_))) => removed.worktrees += 1,
            _ => {}
        }
    }
    removed
}

/// The directories orch owns on this host that pruned files live in, each looked at once: None
/// when it does not exist (nothing of orch's is there to remove), or why it is not orch's alone.
struct Places {
    log_dir: Root,
    worktrees: Root,
}

struct Root {
    path: PathBuf,
    /// The directory, resolved, when it exists and only orch's user may write in it.
    real: Result<Option<PathBuf>, String>,
}

impl Root {
    fn at(path: PathBuf) -> Root {
        let real = if path.exists() {
            fsx::check_private_dir(&path, "directory")
                .and_then(|()| Ok(std::fs::canonicalize(&path)?))
                .map(Some)
                .map_err(|err| format!("{err:#}"))
        } else {
            Ok(None)
        };
        Root { path, real }
    }
}

impl Places {
    fn of(config: &Config) -> Places {
        Places {
            log_dir: Root::at(config.log_dir()),
            worktrees: Root::at(worktree_root(config)),
        }
    }

    fn root(&self, kind: TrashKind) -> &Root {
        match kind {
            TrashKind::Log => &self.log_dir,
            TrashKind::Worktree => &self.worktrees,
        }
    }

    /// Where the item is on this host, when it is there and is orch's to remove: a log named as
    /// orch names run logs, directly in the log directory; a worktree directory (not a link)
    /// under the worktree root; each in a directory only orch's user may write. Ok(None): not
    /// there (removed already, or never made).
    fn locate(&self, item: &TrashItem) -> Result<Option<PathBuf>, String> {
        let (root, path, want_dir) = match item.kind {
            TrashKind::Log => {
                let path = PathBuf::from(&item.path);
                let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
                if !retention::is_run_log_name(name) {
                    return Err("not a run log's name".into());
                }
                let parent = path.parent().unwrap_or(Path::new(""));
                let inside = match &self.log_dir.real {
                    Ok(Some(real)) => {
                        parent == self.log_dir.path
                            || std::fs::canonicalize(parent).is_ok_and(|p| p == *real)
                    }
                    _ => parent == self.log_dir.path,
                };
                if !inside {
                    return Err(format!(
                        "not in the log directory {}",
                        self.log_dir.path.display()
                    ));
                }
                (&self.log_dir, path, false)
            }
            TrashKind::Worktree => {
                let Some((project, task)) = item.path.split_once('/') else {
                    return Err("not project/task".into());
                };
                if !retention::is_plain_component(project) || !retention::is_plain_component(task) {
                    return Err("not a plain project and task name".into());
                }
                let path = self.worktrees.path.join(project).join(task);
                (&self.worktrees, path, true)
            }
        };
        if root.real.clone()?.is_none() {
            return Ok(None);
        }
        match std::fs::symlink_metadata(&path) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(err) => Err(err.to_string()),
            Ok(meta) if want_dir && meta.is_dir() => Ok(Some(path)),
            Ok(meta) if !want_dir && meta.is_file() => Ok(Some(path)),
            Ok(meta) => Err(format!("it is {}", fsx::file_kind(&meta))),
        }
    }
}

/// Remove one trash item from this host; what that freed. A file a row names again (see
/// `Store::trash_in_use`) is left: it is not the pruned task's any more.
fn remove(
    config: &Config,
    store: &dyn Store,
    places: &Places,
    item: &TrashItem,
) -> Result<Removed, String> {
    let Some(path) = places.locate(item)? else {
        return Ok(Removed::default());
    };
    let in_use = || store.trash_in_use(item).map_err(|err| format!("{err:#}"));
    match item.kind {
        TrashKind::Log if in_use()? => Ok(Removed::default()),
        TrashKind::Log => {
            let bytes = std::fs::symlink_metadata(&path).map_or(0, |m| m.len());
            std::fs::remove_file(&path).map_err(|err| err.to_string())?;
            Ok(Removed {
                log_files: 1,
                log_bytes: bytes,
                ..Removed::default()
            })
        }
        TrashKind::Worktree => {
            let project = item.path.split_once('/').map_or("", |(project, _)| project);
            let removed =
                crate::app::branches::remove_pruned_worktree(config, project, &path, in_use)?;
            Ok(Removed {
                worktrees: i64::from(removed),
                ..Removed::default()
            })
        }
    }
}

/// Where the tasks' worktrees live on this host: `worktree_dir` (`PROJECT/DIR` under it).
pub fn worktree_root(config: &Config) -> PathBuf {
    config.worktree_dir()
}
