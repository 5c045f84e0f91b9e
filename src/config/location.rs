//! Where the store is: a file (SQLite) or a `postgres://` URL (PostgreSQL). The URL is checked
//! here only for what must never be in it, a password: a value in argv, the environment or the
//! config file shows in `ps`, `orch config` and shell histories, so the password comes from
//! `PGPASSWORD`, `ORCH_DB_PASSWORD_FILE` or `~/.pgpass` (`secrets`). The backend reads the rest.

use std::path::PathBuf;

/// Where the store is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// An SQLite database file.
    File(PathBuf),
    /// A PostgreSQL server and database, as a URL without a password.
    Url(String),
}

impl Location {
    /// A checked setting's value (see `check_url`) as a location.
    pub fn parse(value: &str) -> Location {
        if is_url(value) {
            Location::Url(value.to_string())
        } else {
            Location::File(PathBuf::from(value))
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::File(path) => write!(f, "{}", path.display()),
            Location::Url(url) => f.write_str(url),
        }
    }
}

/// Whether `value` names a PostgreSQL database (the two schemes libpq knows).
pub fn is_url(value: &str) -> bool {
    let lower = value.trim_start().to_ascii_lowercase();
    lower.starts_with("postgres://") || lower.starts_with("postgresql://")
}

/// Refuse a URL that carries a password, in its user part or as a `password` parameter. The
/// reason never repeats the URL (it would repeat the password).
pub fn check_url(url: &str) -> Result<(), String> {
    let rest = url
        .trim_start()
        .split_once("://")
        .map_or("", |(_, rest)| rest);
    let (authority, query) = match rest.find(['/', '?']) {
        Some(at) => (
            &rest[..at],
            rest[at..].split_once('?').map_or("", |(_, q)| q),
        ),
        None => (rest, ""),
    };
    let in_user_part = authority
        .rsplit_once('@')
        .is_some_and(|(user, _)| user.contains(':'));
    let as_parameter = query.split('&').any(|pair| {
        pair.split_once('=')
            .map_or(pair, |(name, _)| name)
            .eq_ignore_ascii_case("password")
    });
    if in_user_part || as_parameter {
        return Err(
            "the database URL holds a password, which orch does not take from a URL (it would show \
             in process lists, `orch config` and logs): remove it from the URL and put it in \
             PGPASSWORD, a file named by ORCH_DB_PASSWORD_FILE, or ~/.pgpass"
                .to_string(),
        );
    }
    if authority.is_empty() && !query.contains("host=") {
        return Err("the database URL names no server: postgres://USER@HOST:PORT/DBNAME".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_url_is_postgres_and_a_path_a_file() {
        assert!(is_url("postgres://orch@db/orch"));
        assert!(is_url("postgresql://orch@db/orch"));
        assert!(is_url("POSTGRES://orch@db/orch"));
        assert!(!is_url("/var/lib/orch/orch.db"));
        assert!(!is_url("postgres.db"));
        assert_eq!(
            Location::parse("postgres://orch@db:5432/orch?sslmode=require"),
            Location::Url("postgres://orch@db:5432/orch?sslmode=require".into())
        );
        assert_eq!(
            Location::parse("/x/orch.db"),
            Location::File(PathBuf::from("/x/orch.db"))
        );
    }

    #[test]
    fn a_password_in_the_url_is_refused_without_repeating_it() {
        for url in [
            "postgres://orch:hunter2@db/orch",
            "postgresql://orch:hunter2@db:5432/orch?sslmode=require",
            "postgres://orch@db/orch?sslmode=require&password=hunter2",
            "postgres://orch@db/orch?PASSWORD=hunter2",
        ] {
            let why = check_url(url).unwrap_err();
            assert!(!why.contains("hunter2"), "{why}");
            assert!(why.contains("PGPASSWORD"), "{why}");
            assert!(why.contains("ORCH_DB_PASSWORD_FILE"), "{why}");
        }
        for url in [
            "postgres://orch@db/orch",
            "postgres://orch@db:5432/orch?sslmode=verify-full&application_name=a:b",
            "postgres://db/orch",
            "postgres:///orch?host=/run/postgresql",
        ] {
            assert_eq!(check_url(url), Ok(()), "{url}");
        }
    }
}
