//! The kinds of agent orch knows, by the name a profile gives (`[agents.NAME] kind = "codex"`).
//! Only the names live here, so the config can check them; what each kind knows is in
//! `agent::<kind>/`.

use std::fmt;

use serde::Serialize;

/// A kind of agent: which CLI a profile runs, and so how orch asks it, starts it and reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AgentKind {
    /// Claude Code (`claude -p --output-format stream-json`), the kind of every profile before
    /// kinds existed.
    #[default]
    Claude,
    /// Codex CLI (`codex exec --json`).
    Codex,
    /// Gemini CLI (`gemini --output-format stream-json --prompt=…`).
    Gemini,
}

impl AgentKind {
    /// Every kind, in the order messages list them.
    pub const ALL: &'static [AgentKind] = &[AgentKind::Claude, AgentKind::Codex, AgentKind::Gemini];

    pub fn name(self) -> &'static str {
        match self {
            AgentKind::Claude => "claude",
            AgentKind::Codex => "codex",
            AgentKind::Gemini => "gemini",
        }
    }

    /// The variables of the environment that carry this kind's credentials (an API key, a token,
    /// a service account's file). Only an agent of this kind gets them: every other child orch
    /// starts (another kind's agent, git and its hooks, a version probe) has them removed.
    pub fn credential_vars(self) -> &'static [&'static str] {
        match self {
            AgentKind::Claude => &["ANTHROPIC_API_KEY", "CLAUDE_CODE_OAUTH_TOKEN"],
            AgentKind::Codex => &["CODEX_API_KEY", "OPENAI_API_KEY"],
            AgentKind::Gemini => &[
                "GEMINI_API_KEY",
                "GOOGLE_API_KEY",
                "GOOGLE_APPLICATION_CREDENTIALS",
            ],
        }
    }

    /// Whether its logs say what a run cost (Claude Code's do; Codex's and Gemini's give tokens
    /// only, so a cost needs a price table).
    pub fn reports_cost(self) -> bool {
        self == AgentKind::Claude
    }

    /// Every kind's credential variables.
    pub fn all_credential_vars() -> impl Iterator<Item = &'static str> {
        AgentKind::ALL
            .iter()
            .flat_map(|kind| kind.credential_vars().iter().copied())
    }

    pub fn from_name(name: &str) -> Option<AgentKind> {
        AgentKind::ALL
            .iter()
            .copied()
            .find(|kind| kind.name() == name)
    }

    /// The kind of a profile that does not say: the kind named like the profile, else the
    /// default (`claude`), which every profile was before kinds existed.
    pub fn for_profile(profile: &str) -> AgentKind {
        AgentKind::from_name(profile).unwrap_or_default()
    }

    /// "claude, codex, gemini", for messages.
    pub fn names() -> String {
        let names: Vec<&str> = AgentKind::ALL.iter().map(|kind| kind.name()).collect();
        names.join(", ")
    }
}

impl fmt::Display for AgentKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_profiles_default_to_claude() {
        for kind in AgentKind::ALL {
            assert_eq!(AgentKind::from_name(kind.name()), Some(*kind));
            assert_eq!(AgentKind::for_profile(kind.name()), *kind);
        }
        assert_eq!(AgentKind::from_name("Claude"), None);
        assert_eq!(AgentKind::for_profile("fast"), AgentKind::Claude);
        assert_eq!(AgentKind::for_profile("codex"), AgentKind::Codex);
        assert_eq!(AgentKind::names(), "claude, codex, gemini");
    }
}
