//! SIGINT, SIGTERM and SIGCHLD while an agent runs: the handler only records the signal and
//! writes a byte to a self-pipe, which wakes the supervising `poll`; everything else happens in
//! the loop. One `Signals` exists at a time; dropping it restores the previous handlers.

use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicI32, AtomicU32, Ordering};

use super::process::nonblocking_pipe;

static WAKE_FD: AtomicI32 = AtomicI32::new(-1);
/// Bit `n` set: signal `n` arrived since the last `take_stop`.
static RECEIVED: AtomicU32 = AtomicU32::new(0);

const HANDLED: [libc::c_int; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGCHLD];

extern "C" fn on_signal(signal: libc::c_int) {
    // SAFETY (whole body): atomics and write(2) are async-signal-safe; errno is preserved so the
    // interrupted code sees its own.
    let saved_errno = unsafe { *libc::__errno_location() };
    RECEIVED.fetch_or(1 << signal, Ordering::SeqCst);
    let fd = WAKE_FD.load(Ordering::SeqCst);
    if fd >= 0 {
        let byte = signal as u8;
        // A full pipe already holds a wake-up: losing this byte loses nothing.
        unsafe { libc::write(fd, (&byte as *const u8).cast(), 1) };
    }
    unsafe { *libc::__errno_location() = saved_errno };
}

pub struct Signals {
    wake_read: std::fs::File,
    _wake_write: OwnedFd,
    previous: Vec<(libc::c_int, libc::sigaction)>,
}

impl Signals {
    pub fn install() -> io::Result<Signals> {
        let (read, write) = nonblocking_pipe()?;
        WAKE_FD.store(write.as_raw_fd(), Ordering::SeqCst);
        RECEIVED.store(0, Ordering::SeqCst);
        let mut signals = Signals {
            wake_read: std::fs::File::from(read),
            _wake_write: write,
            previous: Vec::new(),
        };
        for signal in HANDLED {
            // SAFETY: a zeroed sigaction is valid; we fill handler, mask and flags.
            let mut action: libc::sigaction = unsafe { std::mem::zeroed() };
            action.sa_sigaction = on_signal as *const () as libc::sighandler_t;
            action.sa_flags = libc::SA_RESTART | libc::SA_NOCLDSTOP;
            let mut previous: libc::sigaction = unsafe { std::mem::zeroed() };
            // SAFETY: both structs are valid for the call.
            let rc = unsafe {
                libc::sigemptyset(&mut action.sa_mask);
                libc::sigaction(signal, &action, &mut previous)
            };
            if rc != 0 {
                return Err(io::Error::last_os_error());
            }
            signals.previous.push((signal, previous));
            // Started with SIGINT or SIGTERM ignored (`orch run &` from a script): keep it so.
            if signal != libc::SIGCHLD && previous.sa_sigaction == libc::SIG_IGN {
                // SAFETY: puts back the action just read.
                unsafe { libc::sigaction(signal, &previous, std::ptr::null_mut()) };
            }
        }
        Ok(signals)
    }

    /// The descriptor that becomes readable when a signal arrives.
    pub fn wake_fd(&self) -> RawFd {
        self.wake_read.as_raw_fd()
    }

    /// Empty the self-pipe and return the stop signals (SIGINT, SIGTERM) that arrived since the
    /// last call, in signal-number order.
    pub fn take_stop(&mut self) -> Vec<libc::c_int> {
        let mut sink = [0u8; 64];
        while matches!(self.wake_read.read(&mut sink), Ok(n) if n > 0) {}
        let stop_mask = (1 << libc::SIGINT) | (1 << libc::SIGTERM);
        let arrived = RECEIVED.fetch_and(!stop_mask, Ordering::SeqCst) & stop_mask;
        [libc::SIGINT, libc::SIGTERM]
            .into_iter()
            .filter(|signal| arrived & (1 << signal) != 0)
            .collect()
    }
}

impl Signals {
    /// Restore the previous handlers, then deliver to orch itself the stop signals that arrived
    /// and were not taken: they meant "stop", and everything is recorded by now.
    pub fn finish(mut self) {
        let pending = self.take_stop();
        drop(self);
        for signal in pending {
            // SAFETY: plain syscall.
            unsafe { libc::raise(signal) };
        }
    }
}

impl Drop for Signals {
    fn drop(&mut self) {
        for (signal, previous) in self.previous.drain(..).rev() {
            // SAFETY: restores the action saved by `install`.
            unsafe { libc::sigaction(signal, &previous, std::ptr::null_mut()) };
        }
        WAKE_FD.store(-1, Ordering::SeqCst);
    }
}
