//! Times from the future. A lease, cache entry or backoff is written as "now + its setting" by the
//! clock of the process that wrote it; a worker whose clock ran ahead (a bad boot clock, later
//! corrected) leaves times that no setting explains, and honouring them would wedge a project
//! for as long as the clock was wrong. So a time dated further ahead than its own setting allows
//! is treated as expired; the allowance below absorbs the ordinary skew between hosts.

/// How far apart the clocks of the hosts sharing one database may be.
pub const SKEW_MS: i64 = 60_000;

/// When `at` lies further ahead of `now` than `longest_ms` (its setting) plus the skew allows:
/// how far ahead of `now` it is. None for a time its setting explains.
pub fn ahead_beyond(at: i64, now: i64, longest_ms: i64) -> Option<i64> {
    let limit = now
        .saturating_add(longest_ms.max(0))
        .saturating_add(SKEW_MS);
    (at > limit).then(|| at.saturating_sub(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_times_beyond_the_setting_and_the_skew_are_from_the_future() {
        let now = 1_000_000_000;
        assert_eq!(ahead_beyond(now, now, 0), None);
        assert_eq!(ahead_beyond(now + 900_000, now, 900_000), None);
        assert_eq!(ahead_beyond(now + 900_000 + SKEW_MS, now, 900_000), None);
        assert_eq!(
            ahead_beyond(now + 900_001 + SKEW_MS, now, 900_000),
            Some(900_001 + SKEW_MS)
        );
        let year = 365 * 86_400_000;
        assert_eq!(ahead_beyond(now + year, now, 900_000), Some(year));
        assert_eq!(ahead_beyond(i64::MAX, now, i64::MAX), None);
        assert_eq!(ahead_beyond(now + SKEW_MS + 1, now, -5), Some(SKEW_MS + 1));
    }
}
