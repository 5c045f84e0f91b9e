//! The agent as orch launches it, whatever its kind: its binary, its HOME and its environment,
//! resolved from the settings and the agent's profile (`[agents.NAME]`).
//!
//! Precedence, for the binary and the home: a setting given in the environment or by `--set`
//! (`ORCH_AGENT_HOME`, and the kind's binary setting: `ORCH_CLAUDE_BIN` for kind claude) beats the
//! profile's `bin`/`home`, which beats the same setting in the config file, which beats the
//! default. The agent's environment is orch's environment overlaid with the profile's `env` table.

use std::ffi::OsString;
use std::fmt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Result;

use crate::agent::Spec;
use crate::config::{self, Agent, Config, Key, Source};
use crate::domain::agent::AgentKind;

/// A value and where it came from, for `--explain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located<T> {
    pub value: T,
    pub origin: String,
}

/// Looks up a variable of orch's own environment.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// orch's environment as it was given: an agent credential variable `secrets::init` took out
/// of it is read from where it keeps it.
fn process_env(name: &str) -> Option<String> {
    crate::secrets::agent_var(name).or_else(|| std::env::var(name).ok())
}

pub struct AgentEnv<'a> {
    pub name: String,
    config: &'a Config,
    profile: Agent,
    spec: &'static Spec,
    orch_env: EnvLookup<'a>,
}

impl<'a> AgentEnv<'a> {
    /// The named agent (`claude` exists without a profile); an unknown name is a config error.
    pub fn resolve(config: &'a Config, name: &str) -> Result<AgentEnv<'a>> {
        AgentEnv::resolve_with(config, name, &process_env)
    }

    /// As `resolve`, reading orch's environment through `orch_env` (tests).
    pub fn resolve_with(
        config: &'a Config,
        name: &str,
        orch_env: EnvLookup<'a>,
    ) -> Result<AgentEnv<'a>> {
        let profile = config.agent(name)?;
        Ok(AgentEnv {
            name: name.to_string(),
            config,
            spec: crate::agent::of_kind(profile.kind).spec(),
            profile,
            orch_env,
        })
    }

    pub fn kind(&self) -> AgentKind {
        self.profile.kind
    }

    pub fn config(&self) -> &Config {
        self.config
    }

    /// The agent's profile (`[agents.NAME]`; all defaults for `claude` without one).
    pub fn profile(&self) -> &Agent {
        &self.profile
    }

    /// The binary as configured: a path, or a name looked up on the agent's PATH.
    pub fn bin(&self) -> Located<String> {
        let profile = self.profile.bin.clone();
        let found = match self.spec.bin_setting {
            Some(key) => self.layered(key, profile, "bin"),
            None => self.profile_field(profile, "bin"),
        };
        found.unwrap_or_else(|| Located {
            value: self.spec.default_bin.to_string(),
            origin: "the default".to_string(),
        })
    }

    /// Where an operator names the binary, for a fix: "claude_bin / ORCH_CLAUDE_BIN or bin in
    /// [agents.NAME]".
    pub fn bin_settings(&self) -> String {
        let profile = format!("bin in [agents.{}]", self.name);
        match self.spec.bin_setting {
            Some(key) => format!("{} / {} or {profile}", key.name, key.env()),
            None => profile,
        }
    }

    /// The agent's HOME: the configured one, else the agent environment's HOME. None when
    /// neither exists. A configured home never falls back to orch's HOME: the agent may be
    /// another user.
    pub fn home(&self) -> Option<Located<PathBuf>> {
        self.configured_home().or_else(|| {
            self.var("HOME").filter(|h| !h.is_empty()).map(|h| Located {
                value: PathBuf::from(h),
                origin: "HOME of orch's environment".to_string(),
            })
        })
    }

    /// The home set by `agent_home` or the profile's `home`, if any.
    fn configured_home(&self) -> Option<Located<PathBuf>> {
        let profile = self.profile.home.as_ref().map(|h| h.display().to_string());
        self.layered(config::AGENT_HOME, profile, "home")
            .map(|l| Located {
                value: PathBuf::from(l.value),
                origin: l.origin,
            })
    }

    /// A variable of the agent's environment: the profile's `env` table, else orch's own.
    pub fn var(&self, name: &str) -> Option<String> {
        match self.profile.env.get(name) {
            Some(value) => Some(value.clone()),
            None => (self.orch_env)(name),
        }
    }

    /// Where `name` in the agent's environment comes from.
    pub fn var_origin(&self, name: &str) -> String {
        if self.profile.env.contains_key(name) {
            format!("[agents.{}] env", self.name)
        } else {
            "orch's environment".to_string()
        }
    }

    pub fn min_version(&self) -> Option<&str> {
        self.profile
            .min_version
            .as_deref()
            .filter(|v| !v.trim().is_empty())
    }

    /// The binary's path: `bin` itself when it holds a `/`, else the first executable `bin` on
    /// the agent's PATH.
    pub fn program(&self) -> Result<PathBuf, Unlaunchable> {
        let bin = self.bin().value;
        if bin.contains('/') {
            let path = PathBuf::from(&bin);
            return match std::fs::metadata(&path) {
                Err(_) => Err(Unlaunchable::NoSuchFile(path)),
                Ok(meta) if meta.is_file() && meta.permissions().mode() & 0o111 != 0 => Ok(path),
                Ok(_) => Err(Unlaunchable::NotExecutable(path)),
            };
        }
        let search = self.var("PATH").unwrap_or_default();
        std::env::split_paths(&OsString::from(search))
            .map(|dir| {
                let dir = if dir.as_os_str().is_empty() {
                    PathBuf::from(".")
                } else {
                    dir
                };
                dir.join(&bin)
            })
            .find(|candidate| is_executable_file(candidate))
            .ok_or(Unlaunchable::NotOnPath(bin))
    }

    /// A command for `program` in the agent's environment: orch's secrets and other kinds'
    /// credentials removed, its own kind's credential variables from orch's environment, the
    /// profile's `env` applied, HOME set to a configured agent home, in its own process group so
    /// a timeout can end the whole tree. The caller sets argv and stdio.
    pub fn command(&self, program: &Path) -> Command {
        let mut command = crate::process::command(program);
        let scrubbed = crate::secrets::scrubbed_names();
        for name in self.spec.kind.credential_vars() {
            if let Some(value) =
                (self.orch_env)(name).filter(|_| !scrubbed.iter().any(|s| s == name))
            {
                command.env(name, value);
            }
        }
        // The profile's env table cannot bring a secret back: it is the operator's, but a name
        // orch scrubs stays scrubbed.
        command.envs(
            self.profile
                .env
                .iter()
                .filter(|(name, _)| !scrubbed.contains(name)),
        );
        if let Some(home) = self.configured_home() {
            command.env("HOME", home.value);
        }
        command
    }

    /// A setting from the environment or a flag, else the profile's field, else the setting
    /// from the file or its default.
    fn layered(&self, key: &Key, profile: Option<String>, field: &str) -> Option<Located<String>> {
        let setting = self.config.get(key).filter(|s| !s.value.is_empty());
        let strong = setting.is_some_and(|s| matches!(s.source, Source::Env | Source::Flag));
        let setting = setting.map(|s| Located {
            value: s.value.clone(),
            origin: key.origin(s.source),
        });
        let profile = self.profile_field(profile, field);
        if strong {
            setting
        } else {
            profile.or(setting)
        }
    }

    /// The profile's `field`, when it sets one.
    fn profile_field(&self, value: Option<String>, field: &str) -> Option<Located<String>> {
        value.filter(|v| !v.is_empty()).map(|value| Located {
            value,
            origin: format!("{field} in [agents.{}]", self.name),
        })
    }
}

fn is_executable_file(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Why the agent's binary cannot be started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unlaunchable {
    NotOnPath(String),
    NoSuchFile(PathBuf),
    NotExecutable(PathBuf),
}

impl fmt::Display for Unlaunchable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unlaunchable::NotOnPath(bin) => write!(f, "{bin} not found on the agent's PATH"),
            Unlaunchable::NoSuchFile(path) => write!(f, "{} does not exist", path.display()),
            Unlaunchable::NotExecutable(path) => {
                write!(f, "{} is not an executable file", path.display())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::load_for_test;

    type Vars = &'static [(&'static str, &'static str)];

    fn lookup_in(vars: Vars, key: &str) -> Option<String> {
        vars.iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.to_string())
    }

    fn home(text: &str, vars: Vars) -> Option<Located<PathBuf>> {
        let config = load_for_test(text, vars).unwrap();
        let lookup = |key: &str| lookup_in(vars, key);
        AgentEnv::resolve_with(&config, "claude", &lookup)
            .unwrap()
            .home()
    }

    #[test]
    fn home_precedence() {
        let profile = "agent_home = \"/file\"\n[agents.claude]\nhome = \"/profile\"\n";
        let orch = &[("HOME", "/orch")];
        assert_eq!(
            home(profile, orch).unwrap().value,
            PathBuf::from("/profile")
        );
        let found = home(profile, &[("HOME", "/orch"), ("ORCH_AGENT_HOME", "/env")]).unwrap();
        assert_eq!(found.value, PathBuf::from("/env"));
        assert_eq!(found.origin, "ORCH_AGENT_HOME");
        let file = home("agent_home = \"/file\"\n", orch).unwrap();
        assert_eq!(file.value, PathBuf::from("/file"));
        assert_eq!(file.origin, "agent_home in the config file");
        assert_eq!(home("", orch).unwrap().value, PathBuf::from("/orch"));
        assert_eq!(home("", &[]), None);
    }

    #[test]
    fn the_command_drops_every_secret_and_sets_the_home() {
        let vars: Vars = &[("HOME", "/orch"), ("ORCH_AGENT_HOME", "/home/agent")];
        let config = load_for_test(
            "secret_env = [\"DEPLOY_KEY\"]\n[agents.claude.env]\nCLAUDE_CONFIG_DIR = \"/c\"\n",
            vars,
        )
        .unwrap();
        let lookup = |key: &str| lookup_in(vars, key);
        crate::secrets::scrub_names(&config.secret_env);
        let agent_env = AgentEnv::resolve_with(&config, "claude", &lookup).unwrap();
        let command = agent_env.command(Path::new("/bin/true"));
        let envs: std::collections::BTreeMap<String, Option<String>> = command
            .get_envs()
            .map(|(k, v)| {
                let text = |s: &std::ffi::OsStr| s.to_string_lossy().into_owned();
                (text(k), v.map(text))
            })
            .collect();
        for removed in [
            "ORCH_TELEGRAM_BOT_TOKEN",
            "ORCH_TELEGRAM_BOT_TOKEN_FILE",
            "ORCH_FORGE_TOKEN",
            "ORCH_FORGE_TOKEN_FILE",
            "DEPLOY_KEY",
        ] {
            assert_eq!(envs.get(removed), Some(&None), "{removed}: {envs:?}");
        }
        assert_eq!(envs["HOME"].as_deref(), Some("/home/agent"));
        assert_eq!(envs["CLAUDE_CONFIG_DIR"].as_deref(), Some("/c"));
    }

    #[test]
    fn the_profile_env_overlays_orchs() {
        let vars: Vars = &[("CLAUDE_CONFIG_DIR", "/orch-cfg"), ("PATH", "/bin")];
        let config =
            load_for_test("[agents.claude.env]\nCLAUDE_CONFIG_DIR = \"/cfg\"\n", vars).unwrap();
        let lookup = |key: &str| lookup_in(vars, key);
        let agent_env = AgentEnv::resolve_with(&config, "claude", &lookup).unwrap();
        assert_eq!(agent_env.var("CLAUDE_CONFIG_DIR").as_deref(), Some("/cfg"));
        assert_eq!(
            agent_env.var_origin("CLAUDE_CONFIG_DIR"),
            "[agents.claude] env"
        );
        assert_eq!(agent_env.var("PATH").as_deref(), Some("/bin"));
        assert_eq!(agent_env.var_origin("PATH"), "orch's environment");
        assert!(AgentEnv::resolve_with(&config, "nobody", &lookup).is_err());
    }
}
