//! The run's log file: private, written as the output arrives, cut at a byte cap.

use std::fs::{DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

pub struct CappedLog {
    file: File,
    cap: u64,
    pub written: u64,
    pub truncated: bool,
}

impl CappedLog {
    /// Create the log (mode 0600; its directory 0700 when orch creates it). An existing file is
    /// an error: a log is never overwritten.
    pub fn create(path: &Path, cap: u64) -> io::Result<CappedLog> {
        if let Some(dir) = path.parent() {
            DirBuilder::new().recursive(true).mode(0o700).create(dir)?;
        }
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        Ok(CappedLog {
            file,
            cap,
            written: 0,
            truncated: false,
        })
    }

    /// Append what fits under the cap; past it, the rest is discarded and the log is marked cut.
    /// After a write error nothing more is written, and `written` still counts every byte that
    /// reached the file (a full disk takes part of a chunk before it refuses the rest).
    pub fn write(&mut self, chunk: &[u8]) -> io::Result<()> {
        let room = self.cap.saturating_sub(self.written);
        let take = chunk.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        if take < chunk.len() {
            self.truncated = true;
        }
        let mut rest = &chunk[..take];
        while !rest.is_empty() {
            match self.file.write(rest) {
                Ok(0) => return Err(self.stop(io::ErrorKind::WriteZero.into())),
                Ok(n) => {
                    self.written += n as u64;
                    rest = &rest[n..];
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(self.stop(err)),
            }
        }
        Ok(())
    }

    /// A full disk, say: keep what is there and discard the rest, like past the cap.
    fn stop(&mut self, err: io::Error) -> io::Error {
        self.cap = self.written;
        self.truncated = true;
        err
    }

    /// Flush to disk: the verdict is made from this file, maybe by another process.
    pub fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn private_and_cut_at_the_cap() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("logs/run.log");
        let mut log = CappedLog::create(&path, 10).unwrap();
        log.write(b"12345").unwrap();
        assert!(!log.truncated);
        log.write(b"67890abc").unwrap();
        log.write(b"more").unwrap();
        assert!(log.truncated);
        assert_eq!(log.written, 10);
        assert_eq!(std::fs::read(&path).unwrap(), b"1234567890");
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert!(CappedLog::create(&path, 10).is_err());
    }

    #[test]
    fn a_write_error_ends_the_log_where_it_stands() {
        // /dev/full refuses every write with ENOSPC, like a full log filesystem.
        let Ok(file) = OpenOptions::new().write(true).open("/dev/full") else {
            return;
        };
        let mut log = CappedLog {
            file,
            cap: 100,
            written: 0,
            truncated: false,
        };
        let err = log.write(b"12345").unwrap_err();
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC));
        assert!(log.truncated);
        assert_eq!(log.written, 0);
        log.write(b"more").unwrap();
        assert_eq!(log.written, 0, "nothing is written after the error");
    }
}
