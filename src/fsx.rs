//! Reading small files that someone else may have put in our way: a credentials file, a `*_FILE`
//! secret, the config file. Each is read only if it is a regular file, opened without blocking
//! (a FIFO in its place must not hang every command) and read up to a cap (`/dev/zero` must not
//! grow orch to gigabytes).
//!
//! And the directories orch keeps its state in (the database's, the run logs' and tick locks'):
//! created private, and refused when another user owns them or may write in them, since whoever
//! can swap a log there decides how its run is judged.

use std::fs::{File, Metadata};
use std::io::{self, Read};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::exit;

/// Why a small file could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// open(2) or read(2) failed (NotFound included).
    Io(io::Error),
    /// A FIFO, a device, a socket or a directory stands at the path.
    NotRegular(&'static str),
    /// Larger than the cap (the size read so far, or the size stat(2) gave).
    TooLarge { size: u64, cap: u64 },
}

impl ReadError {
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io(err) if err.kind() == io::ErrorKind::NotFound)
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Io(err) => write!(f, "{err}"),
            ReadError::NotRegular(what) => write!(f, "it is {what}, not a regular file"),
            ReadError::TooLarge { size, cap } => write!(
                f,
                "it is larger than {cap} bytes ({size} bytes or more): not a file orch reads"
            ),
        }
    }
}

impl std::error::Error for ReadError {}

/// A path as orch keeps it: `~` and `~/…` stand for `home`; a relative path is made absolute
/// against the current directory when `relative_ok` (a flag: the caller's choice at that moment),
/// else refused (from a file or the environment it would follow whatever directory orch starts
/// in; cron's is not a person's). The error starts with "expected".
pub fn absolute_path(
    raw: &str,
    relative_ok: bool,
    home: Option<&Path>,
) -> Result<std::path::PathBuf, String> {
    let path = match raw.strip_prefix('~') {
        Some(rest) if rest.is_empty() || rest.starts_with('/') => match home {
            Some(home) if rest.is_empty() => home.to_path_buf(),
            Some(home) => home.join(rest.trim_start_matches('/')),
            None => {
                return Err(format!(
                    "expected an absolute path, got {raw:?} and HOME is not an absolute path"
                ))
            }
        },
        _ => std::path::PathBuf::from(raw),
    };
    if path.is_absolute() {
        Ok(path)
    } else if relative_ok {
        std::path::absolute(&path).map_err(|err| format!("expected a path, got {raw:?}: {err}"))
    } else {
        Err(format!(
            "expected an absolute path (or ~/…), got {raw:?}: a relative path would depend on \
             the directory orch is started in"
        ))
    }
}

/// What kind of file `meta` describes, for messages: "a FIFO", "a directory", …
pub fn file_kind(meta: &Metadata) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    let kind = meta.file_type();
    if kind.is_file() {
        "a regular file"
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a regular file"
    }
}

/// Open `path` for reading without blocking (O_NONBLOCK: a FIFO with no writer does not hang
/// open(2)), and refuse anything but a regular file. The descriptor is put back in blocking mode.
pub fn open_regular(path: &Path) -> Result<(File, Metadata), ReadError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(ReadError::Io)?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    if !meta.is_file() {
        return Err(ReadError::NotRegular(file_kind(&meta)));
    }
    set_blocking(&file).map_err(ReadError::Io)?;
    Ok((file, meta))
}

/// The whole of a regular file of at most `cap` bytes, with its metadata from the same open.
pub fn read_capped(path: &Path, cap: u64) -> Result<(Vec<u8>, Metadata), ReadError> {
    let (file, meta) = open_regular(path)?;
    if meta.len() > cap {
        return Err(ReadError::TooLarge {
            size: meta.len(),
            cap,
        });
    }
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    // One byte past the cap tells a file that grew after the stat.
    file.take(cap + 1)
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > cap {
        return Err(ReadError::TooLarge {
            size: bytes.len() as u64,
            cap,
        });
    }
    Ok((bytes, meta))
}

/// As `read_capped`, as UTF-8 text.
pub fn read_capped_text(path: &Path, cap: u64) -> Result<String, ReadError> {
    let (bytes, _) = read_capped(path, cap)?;
    String::from_utf8(bytes).map_err(|_| {
        ReadError::Io(io::Error::new(
            io::ErrorKind::InvalidData,
            "it is not UTF-8 text",
        ))
    })
}

/// Create `dir` and its missing parents private to orch's user (0700), or take the one that is
/// there if `check_private_dir` passes it. `what` names it in messages ("log directory").
/// Returns the absolute path.
pub fn ensure_private_dir(dir: &Path, what: &str) -> Result<PathBuf> {
    let dir = std::path::absolute(dir)
        .with_context(|| format!("locating the {what} {}", dir.display()))?;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("creating the {what} {}", dir.display()))?;
    check_private_dir(&dir, what)?;
    Ok(dir)
}

/// Refuse (exit 78, with the fix) a directory orch keeps state in when another user owns it or
/// may write in it, or may write in a directory above it (anyone who can rename an ancestor can
/// swap the whole tree). Root is trusted like orch's own user; a directory above with the
/// sticky bit (`/tmp`) lets nobody rename another's entries, so it passes. Links are followed:
/// the real directories are the ones checked.
pub fn check_private_dir(dir: &Path, what: &str) -> Result<()> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    let real = std::fs::canonicalize(dir)
        .with_context(|| format!("locating the {what} {}", dir.display()))?;
    for (depth, at) in real.ancestors().enumerate() {
        let meta = std::fs::metadata(at)
            .with_context(|| format!("checking the {what} {}", at.display()))?;
        if depth == 0 && !meta.is_dir() {
            return Err(exit::config(format!(
                "the {what} {} is {}, not a directory",
                dir.display(),
                file_kind(&meta)
            )));
        }
        let sticky = depth > 0 && meta.mode() & libc::S_ISVTX != 0;
        let why = if meta.uid() != me && meta.uid() != 0 {
            format!("is owned by another user (uid {})", meta.uid())
        } else if meta.mode() & 0o022 != 0 && !sticky {
            format!("may be written by others (mode {:o})", meta.mode() & 0o7777)
        } else {
            continue;
        };
        let subject = if depth == 0 {
            format!("the {what} {}", dir.display())
        } else {
            format!(
                "the {what} {} lies in {}, which",
                dir.display(),
                at.display()
            )
        };
        return Err(exit::config(format!(
            "{subject} {why}: whoever can write there can swap orch's files (a run's log, the \
             database) for their own; make it yours and private (`chown $(id -un) {0}; chmod \
             go-w {0}`) or point orch at a directory of your own",
            at.display()
        )));
    }
    Ok(())
}

fn set_blocking(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function's caller owns; no memory is passed.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) < 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_fifos_devices_and_big_files() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: mkfifo with a valid C string.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        assert!(matches!(
            read_capped(&fifo, 10),
            Err(ReadError::NotRegular("a FIFO"))
        ));
        assert!(matches!(
            read_capped(Path::new("/dev/zero"), 10),
            Err(ReadError::NotRegular("a character device"))
        ));
        assert!(matches!(
            read_capped(dir.path(), 10),
            Err(ReadError::NotRegular("a directory"))
        ));
        let big = dir.path().join("big");
        std::fs::write(&big, [b'x'; 11]).unwrap();
        assert!(matches!(
            read_capped(&big, 10),
            Err(ReadError::TooLarge { size: 11, cap: 10 })
        ));
        std::fs::write(&big, [b'x'; 10]).unwrap();
        assert_eq!(read_capped(&big, 10).unwrap().0.len(), 10);
        assert!(read_capped(&dir.path().join("none"), 10)
            .unwrap_err()
            .is_not_found());
    }

    #[test]
    fn a_state_directory_is_private_to_its_owner() {
        use std::os::unix::fs::PermissionsExt;
        let chmod = |path: &Path, mode| {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        let top = tempfile::tempdir().unwrap();
        let dir = top.path().join("a/logs");
        let made = ensure_private_dir(&dir, "log directory").unwrap();
        assert_eq!(made, dir);
        let mode = std::fs::metadata(&dir).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        chmod(&dir, 0o770);
        let err = check_private_dir(&dir, "log directory").unwrap_err();
        assert_eq!(exit::code_of(&err), exit::CONFIG);
        assert!(
            err.to_string()
                .contains("may be written by others (mode 770)"),
            "{err}"
        );
        chmod(&dir, 0o755);
        check_private_dir(&dir, "log directory").unwrap();
        // Above it: writable by others refuses, unless sticky (as /tmp is).
        chmod(&top.path().join("a"), 0o777);
        let err = check_private_dir(&dir, "log directory").unwrap_err();
        assert!(err.to_string().contains("lies in"), "{err}");
        chmod(&top.path().join("a"), 0o1777);
        check_private_dir(&dir, "log directory").unwrap();
        let file = top.path().join("file");
        std::fs::write(&file, "").unwrap();
        let err = check_private_dir(&file, "log directory").unwrap_err();
        assert!(err.to_string().contains("not a directory"), "{err}");
    }
}
