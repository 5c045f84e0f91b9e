//! The other half of a push with the forge token: orch itself as git's `GIT_ASKPASS`.
//!
//! When git needs a user name and password for an HTTP(S) remote it runs `$GIT_ASKPASS PROMPT`
//! and reads the answer from its stdout. `push` points that at orch's own binary and sets
//! `ORCH_ASKPASS_FD` to the number of a descriptor git inherits: one end of a Unix socket pair
//! whose other end orch filled with the token before it started git. `main` checks for that
//! variable first, before anything else, and hands over here.
//!
//! What the askpass answers:
//! - "Username for 'URL': " — the fixed user name the forge expects with a token
//!   (`ORCH_ASKPASS_USER`: `x-access-token` for GitHub, `oauth2` for Gitea);
//! - "Password for 'URL': " — the token read from the socket, but only when URL's host is the
//!   forge's (`ORCH_ASKPASS_HOST`): a remote URL or a redirect pointing elsewhere gets nothing.
//!
//! The token is never in an argument, a variable, a file or a URL. A socket cannot be reopened
//! through `/proc/PID/fd` the way a pipe can, so only git and its own children hold it. The
//! askpass makes itself non-dumpable first, like orch, so its memory and descriptors are closed
//! to other processes of the user.

use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::ExitCode;

/// The descriptor (a number) of the socket holding the token.
pub const FD_VAR: &str = "ORCH_ASKPASS_FD";
/// The user name to answer with.
pub const USER_VAR: &str = "ORCH_ASKPASS_USER";
/// The only host the token is given to.
pub const HOST_VAR: &str = "ORCH_ASKPASS_HOST";

/// Longest token read from the socket.
const TOKEN_MAX_BYTES: u64 = 64 * 1024;

/// When orch was started as git's askpass, answer git and return the exit status; None
/// otherwise. Call it first in `main`.
pub fn answer_if_asked() -> Option<ExitCode> {
    let fd = std::env::var_os(FD_VAR)?;
    // SAFETY: prctl with integer arguments; no memory is passed.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
    let prompt = std::env::args().nth(1).unwrap_or_default();
    let user = std::env::var(USER_VAR).unwrap_or_default();
    let host = std::env::var(HOST_VAR).unwrap_or_default();
    let fd = fd.to_str().and_then(|n| n.parse::<i32>().ok());
    let answer = match answer(&prompt, &user, &host, fd) {
        Ok(answer) => answer,
        Err(why) => {
            let _ = writeln!(std::io::stderr(), "orch askpass: {why}");
            return Some(ExitCode::from(1));
        }
    };
    let mut out = std::io::stdout().lock();
    match out
        .write_all(answer.as_bytes())
        .and_then(|()| out.write_all(b"\n"))
        .and_then(|()| out.flush())
    {
        Ok(()) => Some(ExitCode::SUCCESS),
        Err(_) => Some(ExitCode::from(1)),
    }
}

/// What to answer `prompt`.
fn answer(prompt: &str, user: &str, host: &str, fd: Option<i32>) -> Result<String, String> {
    let url = prompt
        .split('\'')
        .nth(1)
        .ok_or_else(|| format!("unexpected prompt {prompt:?}"))?;
    if prompt.starts_with("Username") {
        return Ok(user.to_string());
    }
    if !prompt.starts_with("Password") {
        return Err(format!("unexpected prompt {prompt:?}"));
    }
    let asked = url_host(url).unwrap_or_default();
    if host.is_empty() || !asked.eq_ignore_ascii_case(host) {
        return Err(format!(
            "git asked for a password for {asked:?}; the forge token is only given to {host:?}"
        ));
    }
    let fd = fd.ok_or_else(|| format!("{FD_VAR} is not a descriptor number"))?;
    read_token(fd)
}

/// The token from the socket `fd`: its first line.
fn read_token(fd: i32) -> Result<String, String> {
    // SAFETY: fstat fills `stat`, which lives on this stack frame.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above; a bad descriptor is an error, not undefined behaviour.
    if unsafe { libc::fstat(fd, &mut stat) } != 0 || stat.st_mode & libc::S_IFMT != libc::S_IFSOCK {
        return Err(format!("descriptor {fd} is not orch's socket"));
    }
    // SAFETY: the descriptor is open (fstat succeeded) and this process owns it from here on.
    let socket = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut bytes = Vec::new();
    std::fs::File::from(socket)
        .take(TOKEN_MAX_BYTES)
        .read_to_end(&mut bytes)
        .map_err(|err| format!("reading the token: {err}"))?;
    let text = String::from_utf8(bytes).map_err(|_| "the token is not text".to_string())?;
    let token = text.lines().next().unwrap_or("").to_string();
    if token.is_empty() {
        return Err("no token".to_string());
    }
    Ok(token)
}

/// The host of `url` (`scheme://[user@]host[:port]/…`), lower case, without user or port.
pub fn url_host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let host_port = authority.rsplit('@').next()?;
    let host = if let Some(v6) = host_port.strip_prefix('[') {
        v6.split(']').next()?
    } else {
        host_port.split(':').next()?
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_of_urls() {
        assert_eq!(
            url_host("https://x-access-token@GitHub.com/o/r.git").as_deref(),
            Some("github.com")
        );
        assert_eq!(
            url_host("http://127.0.0.1:8080/a").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(url_host("http://[::1]:80/").as_deref(), Some("::1"));
        assert_eq!(url_host("/srv/git/web.git"), None);
    }

    #[test]
    fn the_user_name_is_given_to_anyone_the_token_to_the_forge_only() {
        let user = answer(
            "Username for 'https://git.example.org': ",
            "oauth2",
            "git.example.org",
            None,
        );
        assert_eq!(user.as_deref(), Ok("oauth2"));
        let elsewhere = answer(
            "Password for 'https://oauth2@evil.example': ",
            "oauth2",
            "git.example.org",
            Some(0),
        );
        assert!(elsewhere.unwrap_err().contains("evil.example"));
        let no_host = answer(
            "Password for 'https://oauth2@git.example.org': ",
            "oauth2",
            "",
            Some(0),
        );
        assert!(no_host.is_err());
        // A file is no socket: nothing is read from it.
        let file = tempfile::tempfile().unwrap();
        let not_socket = answer(
            "Password for 'https://oauth2@git.example.org': ",
            "oauth2",
            "git.example.org",
            Some(std::os::fd::AsRawFd::as_raw_fd(&file)),
        );
        assert!(not_socket.unwrap_err().contains("not orch's socket"));
    }
}
