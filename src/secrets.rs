//! orch's own secrets (the Telegram bot token, the forge token): read once, first thing in
//! `main`, and kept where no child can find them.
//!
//! `init` runs before any thread or child exists. For each secret it takes `ORCH_<NAME>` (or the
//! file `ORCH_<NAME>_FILE` names) out of the environment: the value is kept in this process's
//! memory, the variable is unset, and its bytes in the original environment block (what
//! `/proc/PID/environ` shows, whatever `unsetenv` did) are overwritten. Then the process is made
//! non-dumpable (`PR_SET_DUMPABLE 0`), which closes its memory and `/proc` files to other
//! processes of the same user (the agent among them). A process with CAP_SYS_PTRACE (root) can
//! still read orch's memory: run the agent as another, unprivileged user where that matters.
//!
//! The agents' credential variables (`ANTHROPIC_API_KEY`, `CODEX_API_KEY`, `GEMINI_API_KEY`…,
//! `AgentKind::credential_vars`) are taken out the same way: kept here (`agent_var`) for the
//! agent of their kind alone, whose command puts them back.
//!
//! Variables listed in the configuration's `secret_env` are scrubbed the same way once the
//! configuration is read (`scrub_names`). Every child's environment is built by
//! `crate::process::command`, which also removes every name scrubbed here.

use std::collections::BTreeMap;
use std::ffi::{CStr, CString, OsStr};
use std::os::unix::ffi::OsStrExt;
use std::sync::{Mutex, OnceLock};

use crate::fsx;

/// The variables orch's secrets come from (each also as `<VAR>_FILE`): the settings of kind
/// `Secret` in `config::KEYS`, which a test there keeps in step with this list.
pub const SECRET_VARS: &[&str] = &["ORCH_TELEGRAM_BOT_TOKEN", "ORCH_FORGE_TOKEN"];

/// The database password's variable (libpq's), under which `get` finds it wherever it came from.
pub const DB_PASSWORD: &str = "PGPASSWORD";
/// The file the database password may be read from instead.
pub const DB_PASSWORD_FILE: &str = "ORCH_DB_PASSWORD_FILE";

/// A secret file holds one token: anything larger is not one.
const SECRET_FILE_MAX_BYTES: u64 = 64 * 1024;

/// What `init` found for one secret setting.
#[derive(Clone)]
pub enum Found {
    Value(String),
    /// `ORCH_<NAME>_FILE` was set but could not be read: the reason, for a config error.
    Unreadable(String),
}

impl std::fmt::Debug for Found {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Found::Value(_) => f.write_str("Value(***)"),
            Found::Unreadable(why) => write!(f, "Unreadable({why:?})"),
        }
    }
}

struct Taken {
    /// By variable (`ORCH_FORGE_TOKEN`).
    values: BTreeMap<&'static str, Found>,
    /// Every variable name scrubbed from the environment (the secrets, their `_FILE` variants,
    /// the configuration's `secret_env`): never passed to a child.
    names: Vec<String>,
    /// The agents' credential variables that were set, by name.
    agent_values: BTreeMap<&'static str, String>,
}

static TAKEN: OnceLock<Mutex<Taken>> = OnceLock::new();

fn taken() -> &'static Mutex<Taken> {
    TAKEN.get_or_init(|| {
        Mutex::new(Taken {
            values: BTreeMap::new(),
            names: Vec::new(),
            agent_values: BTreeMap::new(),
        })
    })
}

/// Take every secret out of the environment and make the process non-dumpable. Call it first in
/// `main`, while the process has one thread.
pub fn init() {
    let mut found = BTreeMap::new();
    let mut names = Vec::new();
    for var in SECRET_VARS {
        let file_var = format!("{var}_FILE");
        let value = take_var(var);
        let file = take_var(&file_var);
        match (value, file) {
            (Some(value), _) if !value.is_empty() => {
                found.insert(*var, Found::Value(value));
            }
            (_, Some(path)) if !path.is_empty() => {
                found.insert(*var, read_secret_file(&file_var, &path));
            }
            _ => {}
        }
        names.extend([var.to_string(), file_var]);
    }
    match (take_var(DB_PASSWORD), take_var(DB_PASSWORD_FILE)) {
        (Some(value), _) if !value.is_empty() => {
            found.insert(DB_PASSWORD, Found::Value(value));
        }
        (_, Some(path)) if !path.is_empty() => {
            found.insert(DB_PASSWORD, read_secret_file(DB_PASSWORD_FILE, &path));
        }
        _ => {}
    }
    names.extend([DB_PASSWORD.to_string(), DB_PASSWORD_FILE.to_string()]);
    let agent_values = crate::domain::agent::AgentKind::all_credential_vars()
        .filter_map(|var| take_var(var).map(|value| (var, value)))
        .filter(|(_, value)| !value.is_empty())
        .collect();
    {
        let mut taken = taken().lock().unwrap_or_else(|e| e.into_inner());
        taken.values = found;
        taken.names = names;
        taken.agent_values = agent_values;
    }
    // SAFETY: prctl with integer arguments; no memory is passed.
    unsafe {
        libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

/// The secret of variable `var` (`ORCH_FORGE_TOKEN`), as `init` found it.
pub fn get(var: &str) -> Option<Found> {
    taken()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .values
        .get(var)
        .cloned()
}

/// An agent credential variable `init` took out of the environment (`ANTHROPIC_API_KEY`), for
/// the agent of its kind.
pub fn agent_var(name: &str) -> Option<String> {
    taken()
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .agent_values
        .get(name)
        .cloned()
}

/// Every secret value orch holds, the agents' credentials among them, for redaction.
pub fn values() -> Vec<String> {
    let taken = taken().lock().unwrap_or_else(|e| e.into_inner());
    taken
        .values
        .values()
        .filter_map(|found| match found {
            Found::Value(value) => Some(value.clone()),
            Found::Unreadable(_) => None,
        })
        .chain(taken.agent_values.values().cloned())
        .collect()
}

/// Scrub more variables (the configuration's `secret_env`) from the environment, like the secrets.
/// Call it while the process has one thread (the configuration is read before any other starts).
pub fn scrub_names(extra: &[String]) {
    let mut taken = taken().lock().unwrap_or_else(|e| e.into_inner());
    for name in extra {
        take_var(name);
        if !taken.names.contains(name) {
            taken.names.push(name.clone());
        }
    }
}

/// Every name a child's environment must not have.
pub fn scrubbed_names() -> Vec<String> {
    let taken = taken().lock().unwrap_or_else(|e| e.into_inner());
    // The secrets' own names even before `init` ran (unit tests).
    let mut names: Vec<String> = SECRET_VARS
        .iter()
        .flat_map(|var| [var.to_string(), format!("{var}_FILE")])
        .chain([DB_PASSWORD.to_string(), DB_PASSWORD_FILE.to_string()])
        .collect();
    names.extend(
        taken
            .names
            .iter()
            .filter(|n| !names.contains(n))
            .cloned()
            .collect::<Vec<_>>(),
    );
    names
}

/// Read a `*_FILE` secret: an absolute path (or `~/…`, orch's HOME), a small regular file; its
/// content without the trailing newline.
fn read_secret_file(var: &str, raw: &str) -> Found {
    let home = std::env::var_os("HOME")
        .map(std::path::PathBuf::from)
        .filter(|h| h.is_absolute());
    let path = match fsx::absolute_path(raw, false, home.as_deref()) {
        Ok(path) => path,
        Err(why) => return Found::Unreadable(format!("{var}: {why}")),
    };
    match fsx::read_capped_text(&path, SECRET_FILE_MAX_BYTES) {
        Ok(text) => Found::Value(text.trim_end().to_string()),
        Err(err) => Found::Unreadable(format!("cannot read {var} ({raw}): {err}")),
    }
}

/// What identifies a database login in a password file: the server, its port, the database and
/// the user, as the URL names them.
pub struct PgLogin<'a> {
    pub host: &'a str,
    pub port: u16,
    pub dbname: &'a str,
    pub user: &'a str,
}

/// The password for `login` in the password file libpq reads (`PGPASSFILE`, else
/// `~/.pgpass`): the first line whose fields (`*` for any) match. As libpq does, a file that
/// others may read is ignored.
pub fn pgpass_password(login: &PgLogin) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let path = match std::env::var_os("PGPASSFILE").filter(|p| !p.is_empty()) {
        Some(path) => std::path::PathBuf::from(path),
        None => std::path::PathBuf::from(std::env::var_os("HOME")?).join(".pgpass"),
    };
    let (bytes, meta) = fsx::read_capped(&path, SECRET_FILE_MAX_BYTES).ok()?;
    if meta.permissions().mode() & 0o077 != 0 {
        return None;
    }
    pgpass_lookup(&String::from_utf8_lossy(&bytes), login)
}

/// The password of the first line of a password file that matches `login`.
fn pgpass_lookup(text: &str, login: &PgLogin) -> Option<String> {
    let port = login.port.to_string();
    let wanted = [login.host, &port, login.dbname, login.user];
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .find_map(|line| {
            let fields = pgpass_fields(line);
            let [host, port, db, user, password] = fields.as_slice() else {
                return None;
            };
            let matches = [host, port, db, user]
                .iter()
                .zip(wanted)
                .all(|(field, want)| *field == "*" || *field == want);
            matches.then(|| password.clone())
        })
}

/// A password-file line's five fields: `:` separates them, `\` escapes `:` and itself.
fn pgpass_fields(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => fields.last_mut().unwrap().extend(chars.next()),
            ':' if fields.len() < 5 => fields.push(String::new()),
            c => fields.last_mut().unwrap().push(c),
        }
    }
    fields
}

extern "C" {
    static mut environ: *mut *mut libc::c_char;
}

/// Remove `name` from the environment and return its value. Its entry's bytes in the environment
/// block are overwritten first: `unsetenv` only drops the pointer, and `/proc/PID/environ` reads
/// the block itself. The value is copied out before the bytes are overwritten.
fn take_var(name: &str) -> Option<String> {
    if name.is_empty() || name.contains(['=', '\0']) {
        return None;
    }
    let value = std::env::var_os(name)?;
    let prefix = format!("{name}=");
    // SAFETY: called while the process has one thread (see `init` and `scrub_names`), so nothing
    // reads or changes the environment meanwhile. Each entry of `environ` is a NUL-terminated
    // string that stays valid until unsetenv; we overwrite bytes inside it, up to its NUL.
    unsafe {
        let mut found: Vec<(*mut u8, usize)> = Vec::new();
        let mut entry = environ;
        while !entry.is_null() && !(*entry).is_null() {
            let bytes = CStr::from_ptr(*entry).to_bytes();
            if bytes.starts_with(prefix.as_bytes()) {
                found.push((*entry as *mut u8, bytes.len()));
            }
            entry = entry.add(1);
        }
        if let Ok(c_name) = CString::new(name) {
            libc::unsetenv(c_name.as_ptr());
        }
        // Name and value: that a token is configured at all is nobody else's business.
        for (start, len) in found {
            std::ptr::write_bytes(start, 0, len);
        }
    }
    Some(String::from_utf8_lossy(OsStr::as_bytes(&value)).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_file_matches_fields_wildcards_and_escapes() {
        let login = PgLogin {
            host: "db.internal",
            port: 5432,
            dbname: "orch",
            user: "orch",
        };
        let text = "# a comment\n\
                    other:5432:orch:orch:wrong\n\
                    db.internal:5433:orch:orch:wrong-port\n\
                    db.internal:*:orch:orch:pa\\:ss\\\\word\n\
                    *:*:*:*:fallback\n";
        assert_eq!(pgpass_lookup(text, &login).as_deref(), Some("pa:ss\\word"));
        let elsewhere = PgLogin {
            host: "other",
            port: 1,
            ..login
        };
        assert_eq!(pgpass_lookup(text, &elsewhere).as_deref(), Some("fallback"));
        assert_eq!(pgpass_lookup("db.internal:5432:orch:orch\n", &login), None);
    }
}
