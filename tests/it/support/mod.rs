//! The test harness: a temporary world (database, config, HOME, project workdir) and a builder
//! that runs the real `orch` binary in it with a clean environment.
#![allow(dead_code)]

pub mod faults;
pub mod forge;
pub mod git_http;
pub mod http;
pub mod netns;
pub mod pg;

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

pub const ORCH: &str = env!("CARGO_BIN_EXE_orch");

/// The stand-in agent that plays Claude Code's CLI contract.
pub fn fake_claude() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/agent/fake-claude")
}

/// The stand-in agent that plays Codex CLI's contract.
pub fn fake_codex() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/agent/fake-codex")
}

/// The stand-in agent that plays Gemini CLI's contract.
pub fn fake_gemini() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/agent/fake-gemini")
}

/// A temporary world for one test.
pub struct World {
    pub dir: tempfile::TempDir,
    /// Environment every command in this world gets (on top of PATH only).
    pub env: BTreeMap<String, OsString>,
    /// What the world's database lives in when it is not a file of `dir` (a PostgreSQL schema).
    pub keep: Option<pg::Schema>,
}

impl World {
    /// A world with one project `web` (its workdir exists) and the stand-in agents as `claude`,
    /// `codex` and `gemini`.
    pub fn new() -> World {
        let dir = tempfile::Builder::new()
            .prefix("orch-test-")
            .tempdir()
            .unwrap();
        let root = dir.path().to_path_buf();
        for sub in ["home", "work/web", "state"] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        let mut world = World {
            dir,
            env: BTreeMap::new(),
            keep: None,
        };
        world.set("HOME", root.join("home"));
        world.set("ORCH_DB", root.join("state/orch.db"));
        world.set("ORCH_CONFIG", root.join("config.toml"));
        world.set("ORCH_CLAUDE_BIN", fake_claude());
        world.set("FAKE_CLAUDE_CALLS", root.join("calls.txt"));
        world.set("ORCH_CODEX_BIN", fake_codex());
        world.set("FAKE_CODEX_CALLS", root.join("codex-calls.txt"));
        world.set("ORCH_GEMINI_BIN", fake_gemini());
        world.set("FAKE_GEMINI_CALLS", root.join("gemini-calls.txt"));
        world.config("");
        world
    }

    /// `new`, its database a schema of its own on the PostgreSQL server of the tests
    /// (`ORCH_TEST_PG_URL`); None without one.
    pub fn on_postgres() -> Option<World> {
        pg::url()?;
        let mut world = World::new();
        let schema = pg::Schema::fresh();
        world.set("ORCH_DB", schema.url());
        world.keep = Some(schema);
        Some(world)
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.root().join(rel)
    }

    pub fn set(&mut self, key: &str, value: impl Into<OsString>) -> &mut World {
        self.env.insert(key.to_string(), value.into());
        self
    }

    pub fn unset(&mut self, key: &str) -> &mut World {
        self.env.remove(key);
        self
    }

    /// Write config.toml: `extra` (top-level keys and tables) and the project `web`.
    pub fn config(&self, extra: &str) {
        let text = format!(
            "{extra}\n\n[projects.web]\nworkdir = \"{}\"\n",
            self.path("work/web").display()
        );
        std::fs::write(self.path("config.toml"), text).unwrap();
    }

    /// Write config.toml exactly as given.
    pub fn raw_config(&self, text: &str) {
        std::fs::write(self.path("config.toml"), text).unwrap();
    }

    /// Write a valid credentials file for the agent's HOME, expiring `expires_in_ms` from now.
    pub fn login(&self, expires_in_ms: i64) {
        login_at(&self.path("home"), expires_in_ms);
    }

    /// Run `f` on the world's database, whichever backend it is on: the statements in SQLite's
    /// dialect (`orch::store::sql`), for assertions on what neither the CLI nor the store's API
    /// shows.
    pub fn with_db<T>(&self, f: impl FnOnce(&orch::store::sql::Db) -> T) -> T {
        use orch::store::sql::{Cache, Db};
        match &self.keep {
            Some(schema) => {
                let mut client = postgres::Client::connect(&schema.url(), postgres::NoTls).unwrap();
                let cache = std::cell::RefCell::new(Cache::default());
                f(&Db::postgres(&mut client, &cache))
            }
            None => f(&Db::sqlite(&self.db())),
        }
    }

    /// Log Codex in for the agent's HOME: an API key in `~/.codex/auth.json`.
    pub fn login_codex(&self) {
        let dir = self.path("home/.codex");
        std::fs::create_dir_all(&dir).unwrap();
        let body = r#"{"auth_mode":"apikey","OPENAI_API_KEY":"sk-test","tokens":null,"last_refresh":null}"#;
        write_private(&dir.join("auth.json"), body.as_bytes());
    }

    /// Log Gemini in for the agent's HOME: a Google login (settings select it, a refresh token).
    pub fn login_gemini(&self) {
        let dir = self.path("home/.gemini");
        std::fs::create_dir_all(&dir).unwrap();
        let settings = r#"{"security":{"auth":{"selectedType":"oauth-personal"}}}"#;
        write_private(&dir.join("settings.json"), settings.as_bytes());
        let creds = r#"{"access_token":"ya29.test","refresh_token":"1//test","token_type":"Bearer","expiry_date":1700000000000}"#;
        write_private(&dir.join("oauth_creds.json"), creds.as_bytes());
    }

    pub fn logout(&self) {
        let _ = std::fs::remove_file(self.path("home/.claude/.credentials.json"));
    }

    /// Any program, run in this world's directory with this world's environment only.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        command.env_clear().current_dir(self.root());
        command.env("PATH", std::env::var_os("PATH").unwrap_or_default());
        command.env("TZ", "UTC");
        for (key, value) in &self.env {
            command.env(key, value);
        }
        command
    }

    /// orch as a user that permission bits bind: as root, `nobody` through setpriv (the world's
    /// files must then be readable by others).
    pub fn orch_unprivileged(&self, args: &[&str]) -> Command {
        let mut cmd = if unsafe { libc::geteuid() } == 0 {
            let mut cmd = self.command("setpriv");
            cmd.args(["--reuid=65534", "--regid=65534", "--clear-groups", ORCH]);
            cmd
        } else {
            self.command(ORCH)
        };
        cmd.args(args);
        cmd
    }

    /// orch on `host` of a fleet: in its network namespace, under its host name.
    pub fn orch_on(&self, host: &netns::Host, args: &[&str]) -> Cmd {
        let mut command = host.command(self.command("ip"), ORCH);
        command.args(args);
        Cmd {
            command,
            stdin: None,
        }
    }

    pub fn orch(&self, args: &[&str]) -> Cmd {
        let mut command = self.command(ORCH);
        command.args(args);
        Cmd {
            command,
            stdin: None,
        }
    }

    /// The stand-in agent's call log, one entry per invocation.
    pub fn calls(&self) -> Vec<String> {
        self.lines("calls.txt")
    }

    /// The lines of a file in this world (none when it does not exist).
    pub fn lines(&self, rel: &str) -> Vec<String> {
        std::fs::read_to_string(self.path(rel))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Enqueue a task for project `web`; returns the job id.
    pub fn enqueue(&self, task: &str) -> i64 {
        let out = self
            .orch(&["enqueue", "--project", "web", "--task", task, "--json"])
            .ok();
        out.json()["job_id"].as_i64().unwrap()
    }

    /// The name orch gives this machine in this world: `ORCH_HOST` when the world sets it, else
    /// the system's host name (what `Config::host` answers).
    pub fn host(&self) -> String {
        if let Some(host) = self.env.get("ORCH_HOST") {
            return host.to_string_lossy().trim().to_string();
        }
        let mut buf = [0u8; 256];
        // SAFETY: gethostname writes at most buf.len() bytes into the buffer we own.
        assert_eq!(
            unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) },
            0
        );
        let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
        String::from_utf8_lossy(&buf[..len]).into_owned()
    }

    /// Hold `agent`'s auth gate on this world's host as finalize does after run `run_id`'s auth
    /// failure, with the credentials file's fingerprint `creds`.
    pub fn hold_gate(
        &self,
        agent: &str,
        run_id: i64,
        reason: &str,
        creds: Option<orch::store::CredsFingerprint>,
    ) {
        let gate = orch::store::GateHold {
            host: self.host(),
            agent: agent.to_string(),
            run_id,
            reason: reason.to_string(),
            creds,
            alert: None,
        };
        assert!(self.store().hold_auth_gate(&gate, now_ms()).unwrap());
    }

    /// The world's store through orch's own store API (`orch::store::open`): the way tests
    /// queue or read what the CLI does not.
    pub fn store(&self) -> Box<dyn orch::store::Store> {
        let db = self.env["ORCH_DB"].to_string_lossy();
        orch::store::open(&orch::store::Options {
            location: &orch::store::Location::parse(&db),
            busy_timeout_ms: 5000,
            host: "test",
        })
        .unwrap()
    }

    /// One value read straight from the database: the first column of the one row `sql` (with
    /// `params`) answers.
    pub fn sql<T: rusqlite::types::FromSql>(&self, sql: &str, params: impl rusqlite::Params) -> T {
        self.db()
            .query_row(sql, params, |row| row.get(0))
            .unwrap_or_else(|err| panic!("{sql}: {err}"))
    }

    /// Open the database file directly, for assertions on what neither the CLI nor the store's
    /// API shows (the SQLite backend's columns): the one place tests reach past the store.
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.path("state/orch.db")).unwrap()
    }

    /// Make every running job's lease run out now, as if its worker died long ago (a lease is
    /// at least a second: 0 would fail jobs that never ran).
    pub fn expire_leases(&self) {
        self.db()
            .execute(
                "UPDATE jobs SET lease_expires_at = ?1 WHERE state = 'running'",
                [now_ms() - 1],
            )
            .unwrap();
    }
}

/// git in `dir`, with nothing of the user's git configuration (nor the test's environment but
/// PATH) and an identity for what it commits; its stdout. Panics when it fails.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.org"])
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

pub fn write_private(path: &Path, bytes: &[u8]) {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .unwrap();
    file.write_all(bytes).unwrap();
}

/// A FIFO at `path` that nobody writes to: opening it for reading blocks forever.
pub fn mkfifo(path: &Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: mkfifo with a valid C string.
    assert_eq!(
        unsafe { libc::mkfifo(c.as_ptr(), 0o600) },
        0,
        "mkfifo {}",
        path.display()
    );
}

/// Run `command` (stdout and stderr captured) for at most `limit`: a hang is killed and reported
/// as one (`timed_out`) instead of hanging the test suite.
pub fn output_within(command: &mut Command, limit: std::time::Duration) -> (Output, bool) {
    let child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let pid = child.id() as i32;
    let (done, wait) = std::sync::mpsc::channel();
    std::thread::spawn(move || done.send(child.wait_with_output()));
    match wait.recv_timeout(limit) {
        Ok(output) => (output.unwrap(), false),
        Err(_) => {
            // SAFETY: kill(2) on the child this function started and has not reaped.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            (wait.recv().unwrap().unwrap(), true)
        }
    }
}

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

pub struct Cmd {
    pub command: Command,
    stdin: Option<Vec<u8>>,
}

impl Cmd {
    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Cmd {
        self.command.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: &str) -> Cmd {
        self.command.env_remove(key);
        self
    }

    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Cmd {
        self.stdin = Some(bytes.into());
        self
    }

    pub fn run(mut self) -> Out {
        self.command
            .stdin(if self.stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = self.command.spawn().expect("spawn orch");
        if let Some(bytes) = self.stdin.take() {
            child.stdin.take().unwrap().write_all(&bytes).unwrap();
        }
        Out::from(child.wait_with_output().unwrap())
    }

    /// Start it in the background, its output captured; `Out::of` waits for it.
    pub fn spawn(mut self) -> std::process::Child {
        self.command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn orch")
    }

    /// Run and assert the exit status.
    pub fn status(self, code: i32) -> Out {
        let out = self.run();
        assert_eq!(
            out.code, code,
            "expected exit {code}, got {}\nstdout:\n{}\nstderr:\n{}",
            out.code, out.stdout, out.stderr
        );
        out
    }

    pub fn ok(self) -> Out {
        self.status(0)
    }
}

#[derive(Debug)]
pub struct Out {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Out {
    fn from(output: Output) -> Out {
        use std::os::unix::process::ExitStatusExt;
        Out {
            code: output
                .status
                .code()
                .unwrap_or_else(|| 128 + output.status.signal().unwrap_or(0)),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }
}

impl Out {
    /// Wait for a command started with `Cmd::spawn`.
    pub fn of(child: std::process::Child) -> Out {
        Out::from(child.wait_with_output().unwrap())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|err| panic!("stdout is not JSON ({err}):\n{}", self.stdout))
    }
}

/// Replace the text between `<!-- NAME…-->` and `<!-- /NAME -->` with `body`.
pub fn splice(text: &str, name: &str, body: &str) -> String {
    let open = format!("<!-- {name}");
    let close = format!("<!-- /{name} -->");
    let start = text
        .find(&open)
        .unwrap_or_else(|| panic!("README lacks {open}"));
    let start = start + text[start..].find("-->").unwrap() + 3;
    let end = text
        .find(&close)
        .unwrap_or_else(|| panic!("README lacks {close}"));
    format!("{}\n{}{}", &text[..start], body, &text[end..])
}

/// Every value of every table of the world's database, as text (to look for what must not be
/// there).
pub fn dump_db(world: &World) -> String {
    let db = world.db();
    let tables: Vec<String> = db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut out = String::new();
    for table in tables {
        let mut stmt = db.prepare(&format!("SELECT * FROM \"{table}\"")).unwrap();
        let columns = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(row) = rows.next().unwrap() {
            for i in 0..columns {
                let value: rusqlite::types::Value = row.get(i).unwrap();
                out.push_str(&format!("{table}: {value:?}\n"));
            }
        }
    }
    out
}

/// Write a valid credentials file for the agent of HOME `home`, expiring `expires_in_ms` from now.
pub fn login_at(home: &Path, expires_in_ms: i64) {
    let expires = now_ms() + expires_in_ms;
    let dir = home.join(".claude");
    std::fs::create_dir_all(&dir).unwrap();
    let body = format!(
        r#"{{"claudeAiOauth":{{"accessToken":"sk-ant-oat01-test","refreshToken":"sk-ant-ort01-test","expiresAt":{expires},"scopes":["user:inference"],"subscriptionType":"max"}}}}"#
    );
    write_private(&dir.join(".credentials.json"), body.as_bytes());
}
