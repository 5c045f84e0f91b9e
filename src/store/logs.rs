//! Logs from anywhere: a run's log as the store keeps it (gzip, its tail when it was longer than
//! `log_store_max_bytes`), so `orch logs` shows it on a host that does not have the file.
//!
//! gzip through flate2 (its pure-Rust miniz_oxide backend, already in the build for ureq's
//! gzip): no C toolchain and no new crate in the tree; agents' JSON-lines logs shrink several
//! times over at its default level, which is what matters here (zstd would compress a little
//! better and faster, at the price of a C library built with the binary).

use std::io::{self, BufRead, Read};

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use serde::Serialize;

/// A run's log as stored in the database.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredLog {
    /// The whole log's length when it was stored.
    pub bytes: i64,
    /// Where in the log the stored part begins: 0 when the whole log is kept, else the start of
    /// the first whole line of its last `log_store_max_bytes`.
    pub kept_from: i64,
    /// The kept part, gzip-compressed.
    #[serde(skip)]
    pub data: Vec<u8>,
}

impl StoredLog {
    /// Read `log` (`bytes` long, positioned at its start) and keep at most its last `cap` bytes,
    /// from the first line that begins inside them, compressed.
    pub fn compress(mut log: impl BufRead + io::Seek, bytes: u64, cap: u64) -> io::Result<Self> {
        let mut kept_from = 0;
        if bytes > cap {
            // The cut falls inside a line unless the byte before it ends one: the kept part
            // starts at the next line, or at the cut when no line ends after it.
            let start = bytes - cap;
            log.seek(io::SeekFrom::Start(start - 1))?;
            let mut skipped = Vec::new();
            log.read_until(b'\n', &mut skipped)?;
            kept_from = start - 1 + skipped.len() as u64;
            if !skipped.ends_with(b"\n") {
                kept_from = start;
            }
            log.seek(io::SeekFrom::Start(kept_from))?;
        }
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        io::copy(&mut log.take(bytes - kept_from), &mut encoder)?;
        Ok(StoredLog {
            bytes: i64::try_from(bytes).unwrap_or(i64::MAX),
            kept_from: i64::try_from(kept_from).unwrap_or(i64::MAX),
            data: encoder.finish()?,
        })
    }

    /// The kept part, decompressed as it is read.
    pub fn reader(&self) -> impl Read + '_ {
        GzDecoder::new(self.data.as_slice())
    }

    /// Whether only the log's tail is kept.
    pub fn cut(&self) -> bool {
        self.kept_from > 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(log: &[u8], cap: u64) -> (i64, Vec<u8>) {
        let kept = StoredLog::compress(io::Cursor::new(log), log.len() as u64, cap).unwrap();
        let mut out = Vec::new();
        kept.reader().read_to_end(&mut out).unwrap();
        assert_eq!(kept.bytes, log.len() as i64);
        (kept.kept_from, out)
    }

    #[test]
    fn a_log_within_the_cap_is_kept_whole() {
        assert_eq!(stored(b"one\ntwo\n", 8), (0, b"one\ntwo\n".to_vec()));
        assert_eq!(stored(b"", 8), (0, Vec::new()));
    }

    #[test]
    fn a_longer_log_keeps_its_tail_from_a_whole_line() {
        // The cut inside "two": the tail starts at the next line.
        assert_eq!(stored(b"one\ntwo\nthree\n", 8), (8, b"three\n".to_vec()));
        // The cut right after a line's end: that line is whole.
        assert_eq!(stored(b"one\ntwo\nsix\n", 8), (4, b"two\nsix\n".to_vec()));
        // No line ends after the cut: the tail is cut mid-line.
        assert_eq!(stored(b"one\nlonglonglong", 5), (11, b"glong".to_vec()));
    }
}
