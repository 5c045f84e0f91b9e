//! The live status line on a terminal: what the agent's `Progress` makes of its output (elapsed
//! time, turns, tokens, cost, the last tool), redrawn in place on stderr as the output arrives.

use std::io::Write;
use std::time::{Duration, Instant};

use crate::agent::Progress;

/// Lines longer than this (a big tool result) are skipped, so a status line never holds much.
const MAX_LINE: usize = 1024 * 1024;
const REDRAW_EVERY: Duration = Duration::from_millis(200);

pub struct StatusLine {
    progress: Box<dyn Progress>,
    partial: Vec<u8>,
    /// Inside a line longer than MAX_LINE: skip to its end.
    skipping: bool,
    started: Instant,
    last_draw: Option<Instant>,
    drawn: bool,
}

impl StatusLine {
    pub fn new(started: Instant, progress: Box<dyn Progress>) -> StatusLine {
        StatusLine {
            progress,
            partial: Vec::new(),
            skipping: false,
            started,
            last_draw: None,
            drawn: false,
        }
    }

    /// Take a chunk of output, whole lines or not.
    pub fn feed(&mut self, mut chunk: &[u8]) {
        while let Some(end) = memchr::memchr(b'\n', chunk) {
            if !self.skipping {
                self.partial.extend_from_slice(&chunk[..end]);
                self.progress.observe(&self.partial);
            }
            self.partial.clear();
            self.skipping = false;
            chunk = &chunk[end + 1..];
        }
        if !self.skipping {
            self.partial.extend_from_slice(chunk);
            if self.partial.len() > MAX_LINE {
                self.partial = Vec::new();
                self.skipping = true;
            }
        }
    }

    /// When the line should be redrawn next, at the latest.
    pub fn next_due(&self) -> Instant {
        self.last_draw
            .map_or_else(Instant::now, |at| at + Duration::from_secs(1))
    }

    /// Redraw, at most every REDRAW_EVERY.
    pub fn draw(&mut self, now: Instant) {
        if self.last_draw.is_some_and(|at| now < at + REDRAW_EVERY) {
            return;
        }
        self.last_draw = Some(now);
        let text = self
            .progress
            .render(now.saturating_duration_since(self.started).as_secs());
        let width = terminal_width().saturating_sub(1).max(10);
        let text: String = text.chars().take(width).collect();
        let mut err = std::io::stderr().lock();
        // The line shows what the agent printed (its last tool's name): made safe first.
        let _ = write!(err, "\r\x1b[2K{}", crate::output::terminal_text(&text));
        let _ = err.flush();
        self.drawn = true;
    }

    /// Erase the line, leaving the terminal as it was.
    pub fn clear(&mut self) {
        if self.drawn {
            let mut err = std::io::stderr().lock();
            let _ = write!(err, "\r\x1b[2K");
            let _ = err.flush();
            self.drawn = false;
        }
    }
}

fn terminal_width() -> usize {
    // SAFETY: TIOCGWINSZ fills the winsize struct on this stack frame.
    let mut size: libc::winsize = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut size) };
    if rc == 0 && size.ws_col > 0 {
        usize::from(size.ws_col)
    } else {
        80
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::rc::Rc;

    /// Records the lines it is fed.
    struct Lines(Rc<RefCell<Vec<Vec<u8>>>>);

    impl Progress for Lines {
        fn observe(&mut self, line: &[u8]) {
            self.0.borrow_mut().push(line.to_vec());
        }
        fn render(&self, _: u64) -> String {
            String::new()
        }
    }

    #[test]
    fn lines_split_across_chunks_and_huge_lines_skipped() {
        let seen = Rc::new(RefCell::new(Vec::new()));
        let mut status = StatusLine::new(Instant::now(), Box::new(Lines(seen.clone())));
        let line = br#"{"type":"assistant"}"#;
        status.feed(&line[..10]);
        status.feed(&line[10..]);
        status.feed(b"\n");
        assert_eq!(*seen.borrow(), [line.to_vec()]);
        status.feed(&vec![b'x'; MAX_LINE + 10]);
        status.feed(b"yy\n");
        status.feed(line);
        status.feed(b"\n");
        assert_eq!(*seen.borrow(), [line.to_vec(), line.to_vec()]);
        assert!(status.partial.is_empty());
    }
}
