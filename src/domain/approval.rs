//! Approvals by comment: which comment on a task's issue or pull request is a command, and
//! which one counts. Only a comment by a user the project lists in `approvers`, written after
//! the job began to wait and never edited, whose whole text (trimmed) is `/orch approve` or
//! `/orch reject <note>`, is read as one; every other comment is data and does nothing.

/// What a comment asks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Approve,
    Reject(String),
}

/// The longest note a rejection by comment carries.
pub const NOTE_MAX_BYTES: usize = 4096;

/// The command `body` is, if it is exactly one.
pub fn command(body: &str) -> Option<Command> {
    let text = body.trim();
    if text == "/orch approve" {
        return Some(Command::Approve);
    }
    let note = text.strip_prefix("/orch reject ")?.trim();
    (!note.is_empty() && note.len() <= NOTE_MAX_BYTES && !note.contains('\0'))
        .then(|| Command::Reject(note.to_string()))
}

/// A comment as the rule needs it.
#[derive(Debug, Clone, Copy)]
pub struct Said<'a> {
    pub id: i64,
    pub author: &'a str,
    pub body: &'a str,
    /// Epoch milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
}

/// The commands among `comments` (oldest first) that count for a job waiting since `since`,
/// in order: by one of `approvers` (exact login), written at or after `since` (to the second a
/// forge keeps), never edited. Each with its comment's id and author; the caller takes the
/// first not taken before.
pub fn commands(
    comments: &[Said],
    approvers: &[String],
    since: i64,
) -> Vec<(i64, String, Command)> {
    let since_second = since - since.rem_euclid(1000);
    comments
        .iter()
        .filter(|c| approvers.iter().any(|a| a == c.author))
        .filter(|c| c.created_at >= since_second && c.updated_at == c.created_at)
        .filter_map(|c| command(c.body).map(|command| (c.id, c.author.to_string(), command)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_forms_are_commands() {
        assert_eq!(command("/orch approve"), Some(Command::Approve));
        assert_eq!(command("  /orch approve\n"), Some(Command::Approve));
        assert_eq!(
            command("/orch reject use v2 please"),
            Some(Command::Reject("use v2 please".to_string()))
        );
        for not in [
            "/orch approve please",
            "LGTM /orch approve",
            "/orch reject",
            "/orch reject   ",
            "/ORCH approve",
            "> /orch approve",
            "/orch approved",
        ] {
            assert_eq!(command(not), None, "{not:?}");
        }
    }

    #[test]
    fn only_an_approvers_unedited_comment_after_the_wait_began_counts() {
        let approvers = vec!["alice".to_string()];
        let said = |author, body, created_at, updated_at| Said {
            id: created_at,
            author,
            body,
            created_at,
            updated_at,
        };
        let since = 10_500;
        let comments = [
            said("alice", "/orch approve", 9_000, 9_000),
            said("mallory", "/orch approve", 11_000, 11_000),
            said("alice", "/orch approve", 11_000, 12_000),
            said("alice", "nice work", 12_000, 12_000),
            said("alice", "/orch reject not yet", 13_000, 13_000),
            said("alice", "/orch approve", 14_000, 14_000),
        ];
        assert_eq!(
            commands(&comments, &approvers, since),
            [
                (
                    13_000,
                    "alice".to_string(),
                    Command::Reject("not yet".to_string())
                ),
                (14_000, "alice".to_string(), Command::Approve)
            ]
        );
        assert!(commands(&comments[..4], &approvers, since).is_empty());
        assert!(commands(&comments, &[], since).is_empty());
        // A comment in the same second the wait began counts (forges keep seconds).
        let same_second = [said("alice", "/orch approve", 10_000, 10_000)];
        assert_eq!(commands(&same_second, &approvers, since).len(), 1);
    }
}
