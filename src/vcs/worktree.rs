//! A git worktree per task: what the project's main clone is, where a task's branch starts, and
//! making, finding, measuring and removing worktrees. Every command goes through `git::Git`
//! (hooks and fsmonitor off, no prompt, a deadline each). Errors are git's words, redacted.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::os::unix::io::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::git::Git;

/// What the project's workdir is, as git sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// Not inside a git work tree: tasks run in the workdir itself.
    NotGit,
    /// A repository without a commit yet: nothing to start a branch from.
    Unborn(Repo),
    Repo(Repo),
}

/// The main clone a workdir belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repo {
    /// Its top-level directory.
    pub toplevel: PathBuf,
    /// Where the workdir lies inside it ("" at the top): a task's agent works at the same place
    /// in its worktree.
    pub prefix: PathBuf,
    /// Its git directory, shared by every worktree (objects, refs, config).
    pub common_dir: PathBuf,
}

/// The top-level directory of the repository `workdir` is in, when it surely has no commit yet,
/// read from its files alone (no git process: a claim asks this of every project). Only the
/// plain layout answers — a `.git` directory with loose or packed refs; anything else (a linked
/// worktree, a submodule, reftable refs, a detached HEAD) is None, and `probe` finds out.
pub fn surely_unborn(workdir: &Path) -> Option<PathBuf> {
    let top = workdir.ancestors().find(|dir| dir.join(".git").exists())?;
    let git_dir = top.join(".git");
    if !git_dir.is_dir() || git_dir.join("reftable").exists() {
        return None;
    }
    let head = std::fs::read_to_string(git_dir.join("HEAD")).ok()?;
    let name = head.trim().strip_prefix("ref: ")?;
    if !name.starts_with("refs/heads/") || name.contains("..") {
        return None;
    }
    if git_dir.join(name).exists() {
        return None;
    }
    let packed = std::fs::read_to_string(git_dir.join("packed-refs")).unwrap_or_default();
    let packed_here = packed
        .lines()
        .any(|line| line.split_once(' ').is_some_and(|(_, r)| r == name));
    (!packed_here).then(|| top.to_path_buf())
}

/// Look at `workdir`.
pub fn probe(workdir: &Path, timeout: Duration) -> Result<Probe, String> {
    // No `.git` here or above: no repository, and no git process to start to learn it (orch's
    // git never takes GIT_DIR from the environment).
    if !workdir.ancestors().any(|dir| dir.join(".git").exists()) {
        return Ok(Probe::NotGit);
    }
    let git = Git::new(workdir, timeout);
    let ran = git.run(
        &[
            "rev-parse",
            "--path-format=absolute",
            "--show-toplevel",
            "--git-common-dir",
            "--show-prefix",
        ],
        &[],
    )?;
    if !ran.status.success() {
        // Not a repository (git says so on stderr, exit 128), or a bare one: no work tree.
        return Ok(Probe::NotGit);
    }
    let mut lines = ran.stdout.lines();
    let (Some(toplevel), Some(common_dir)) = (lines.next(), lines.next()) else {
        return Ok(Probe::NotGit);
    };
    let repo = Repo {
        toplevel: PathBuf::from(toplevel),
        common_dir: PathBuf::from(common_dir),
        prefix: PathBuf::from(lines.next().unwrap_or("").trim_end_matches('/')),
    };
    let head = git.run(&["rev-parse", "--verify", "--quiet", "HEAD^{commit}"], &[])?;
    Ok(match head.status.success() {
        true => Probe::Repo(repo),
        false => Probe::Unborn(repo),
    })
}

/// The URL `remote` pushes to in the main clone (`pushurl`, else `url`), if it has that remote.
pub fn remote_url(main: &Git, remote: &str) -> Option<String> {
    ["pushurl", "url"].iter().find_map(|key| {
        main.text(&["config", "--get", &format!("remote.{remote}.{key}")])
            .ok()
            .filter(|url| !url.is_empty())
    })
}

/// The remote's default branch: what `refs/remotes/<remote>/HEAD` points at (set by clone), else
/// what the remote itself says (`ls-remote --symref`).
pub fn default_branch(main: &Git, remote: &str) -> Option<String> {
    let local = main
        .text(&[
            "symbolic-ref",
            "--quiet",
            &format!("refs/remotes/{remote}/HEAD"),
        ])
        .ok()
        .and_then(|r| {
            r.strip_prefix(&format!("refs/remotes/{remote}/"))
                .map(str::to_string)
        });
    local.or_else(|| {
        let said = main.text(&["ls-remote", "--symref", remote, "HEAD"]).ok()?;
        said.lines()
            .find_map(|line| line.strip_prefix("ref: refs/heads/"))
            .and_then(|rest| rest.split_whitespace().next())
            .map(str::to_string)
    })
}

/// The branch the main clone has checked out.
pub fn current_branch(main: &Git) -> Option<String> {
    main.text(&["symbolic-ref", "--quiet", "--short", "HEAD"])
        .ok()
}

/// Fetch `branch` of `remote` into `refs/remotes/<remote>/<branch>`.
pub fn fetch(main: &Git, remote: &str, branch: &str) -> Result<(), String> {
    let refspec = format!("+refs/heads/{branch}:refs/remotes/{remote}/{branch}");
    main.check(&["fetch", "--quiet", "--no-tags", remote, &refspec], &[])
        .map(drop)
}

/// The commit `rev` names, if it names one.
pub fn commit_of(git: &Git, rev: &str) -> Option<String> {
    git.text(&[
        "rev-parse",
        "--verify",
        "--quiet",
        &format!("{rev}^{{commit}}"),
    ])
    .ok()
}

/// Where a new worktree's branch comes from.
pub enum Start<'a> {
    /// The branch exists in the main clone: check it out.
    Existing,
    /// Make the branch at this commit (or ref).
    New(&'a str),
}

/// Add a worktree at `path` on `branch`. A worktree of this repository already there on that
/// branch is kept as it is (a run that died after making it).
pub fn add(main: &Git, repo: &Repo, path: &Path, branch: &str, start: Start) -> Result<(), String> {
    if is_worktree_of(path, repo, main.timeout) {
        return Ok(());
    }
    if path.exists() {
        // Half made (git died, or the process did) or left by hand: git would refuse it.
        if std::fs::read_dir(path).map_or(true, |mut d| d.next().is_some()) {
            return Err(format!(
                "{} exists and is not a worktree of {}: move it away (orch makes each task's \
                 worktree there)",
                path.display(),
                repo.toplevel.display()
            ));
        }
        let _ = std::fs::remove_dir(path);
    }
    let shown = path.display().to_string();
    // Stale bookkeeping of a worktree whose directory went away would make git refuse the path.
    let _ = main.run(&["worktree", "prune"], &[]);
    match start {
        Start::Existing => main.check(&["worktree", "add", "--quiet", &shown, branch], &[]),
        Start::New(from) => main.check(
            &[
                "worktree",
                "add",
                "--quiet",
                "--no-track",
                "-b",
                branch,
                &shown,
                from,
            ],
            &[],
        ),
    }
    .map(drop)
}

/// Whether `path` is a worktree of `repo` (its `.git` file leads to the same common directory).
pub fn is_worktree_of(path: &Path, repo: &Repo, timeout: Duration) -> bool {
    if !path.join(".git").is_file() {
        return false;
    }
    Git::new(path, timeout)
        .text(&["rev-parse", "--path-format=absolute", "--git-common-dir"])
        .is_ok_and(|dir| same_file(Path::new(&dir), &repo.common_dir))
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// Remove the worktree at `path` (its changes with it; the branch stays).
pub fn remove(main: &Git, path: &Path) -> Result<(), String> {
    let shown = path.display().to_string();
    let removed = main.check(&["worktree", "remove", "--force", "--force", &shown], &[]);
    if removed.is_err() && path.exists() {
        return removed.map(drop);
    }
    // Gone already (by hand): forget its bookkeeping.
    let _ = main.run(&["worktree", "prune"], &[]);
    Ok(())
}

/// Every worktree of the repository but the main one, by path.
pub fn list(main: &Git) -> Result<Vec<PathBuf>, String> {
    let said = main.text(&["worktree", "list", "--porcelain"])?;
    Ok(said
        .lines()
        .filter_map(|line| line.strip_prefix("worktree "))
        .skip(1)
        .map(PathBuf::from)
        .collect())
}

/// Bytes a directory tree takes on disk (allocated blocks), its own device only, symbolic links
/// not followed. What cannot be read counts as nothing.
pub fn disk_usage(path: &Path) -> u64 {
    let Ok(top) = std::fs::symlink_metadata(path) else {
        return 0;
    };
    let device = top.dev();
    let mut total = top.blocks() * 512;
    let mut stack = vec![path.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let Ok(meta) = entry.metadata() else {
                continue;
            };
            if meta.dev() != device {
                continue;
            }
            total += meta.blocks() * 512;
            if meta.is_dir() {
                stack.push(entry.path());
            }
        }
    }
    total
}

/// A lock on one project's main clone: fetching and adding worktrees one at a time, so two
/// tasks starting at once do not trip over git's own lock files. Held until dropped.
pub struct ProjectLock {
    _file: File,
}

impl ProjectLock {
    /// Take the lock file at `path`, waiting for another holder (whose git commands each end
    /// within their deadline).
    pub fn take(path: &Path) -> std::io::Result<ProjectLock> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(path)?;
        loop {
            // SAFETY: flock on a descriptor this function owns; no memory is shared.
            if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } == 0 {
                return Ok(ProjectLock { _file: file });
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(err);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vcs::git::git_for_test as git;

    /// The file-only look agrees with git's: unborn until the first commit, loose or packed;
    /// what it cannot read surely (a linked worktree, reftable) is left to `probe`.
    #[test]
    fn a_repository_without_a_commit_is_told_without_git() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("main");
        std::fs::create_dir_all(main.join("sub")).unwrap();
        assert_eq!(surely_unborn(&main), None, "no repository");
        git(&main, &["init", "-q", "-b", "main"]);
        assert_eq!(surely_unborn(&main.join("sub")), Some(main.clone()));
        let timeout = Duration::from_secs(30);
        assert!(matches!(probe(&main, timeout), Ok(Probe::Unborn(_))));
        std::fs::write(main.join("a"), "a").unwrap();
        git(&main, &["add", "a"]);
        git(&main, &["commit", "-q", "-m", "a"]);
        assert_eq!(surely_unborn(&main), None, "a loose ref");
        git(&main, &["pack-refs", "--all"]);
        assert!(!main.join(".git/refs/heads/main").exists());
        assert_eq!(surely_unborn(&main), None, "a packed ref");
        // HEAD on a branch not made yet (`git switch --orphan`): unborn again.
        git(&main, &["symbolic-ref", "HEAD", "refs/heads/next"]);
        assert_eq!(surely_unborn(&main), Some(main.clone()));
        // A linked worktree's `.git` is a file: not read here.
        let linked = dir.path().join("linked");
        std::fs::create_dir_all(&linked).unwrap();
        std::fs::write(linked.join(".git"), "gitdir: /elsewhere\n").unwrap();
        assert_eq!(surely_unborn(&linked), None);
        // Refs in a reftable: not read here either.
        std::fs::create_dir_all(main.join(".git/reftable")).unwrap();
        assert_eq!(surely_unborn(&main), None);
    }

    #[test]
    fn a_worktree_is_made_found_measured_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let main = dir.path().join("main");
        std::fs::create_dir_all(main.join("sub")).unwrap();
        let timeout = Duration::from_secs(30);
        assert_eq!(probe(&main, timeout), Ok(Probe::NotGit));
        git(&main, &["init", "-q", "-b", "main"]);
        assert!(matches!(
            probe(&main.join("sub"), timeout),
            Ok(Probe::Unborn(_))
        ));
        git(&main, &["commit", "-q", "--allow-empty", "-m", "first"]);
        let Ok(Probe::Repo(repo)) = probe(&main.join("sub"), timeout) else {
            panic!("a repository")
        };
        assert_eq!(repo.prefix, Path::new("sub"));
        let g = Git::new(&main, timeout);
        assert_eq!(current_branch(&g).as_deref(), Some("main"));
        assert_eq!(remote_url(&g, "origin"), None);
        let path = dir.path().join("trees/T-1");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        add(&g, &repo, &path, "feature/T-1", Start::New("main")).unwrap();
        assert!(is_worktree_of(&path, &repo, timeout));
        // Again: kept as it is.
        add(&g, &repo, &path, "feature/T-1", Start::Existing).unwrap();
        assert_eq!(list(&g).unwrap(), vec![path.clone()]);
        std::fs::write(path.join("big"), vec![1u8; 64 * 1024]).unwrap();
        assert!(disk_usage(&path) >= 64 * 1024);
        remove(&g, &path).unwrap();
        assert!(!path.exists());
        assert!(list(&g).unwrap().is_empty());
        assert!(commit_of(&g, "feature/T-1").is_some(), "the branch stays");
    }
}
