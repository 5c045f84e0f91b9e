//! Exponential backoff, the one function both retries use: a failed job's next attempt
//! (`decide`, which adds jitter and the rate-limit floor) and a failed delivery's (`notify`).

/// `base · 2^(attempt-1)`, capped at `max`, for the `attempt`-th failure (1-based; anything
/// lower counts as the first). Saturates instead of overflowing; negative settings count as 0.
pub fn exponential(base_ms: i64, max_ms: i64, attempt: i64) -> i64 {
    let doublings = u32::try_from(attempt.saturating_sub(1).clamp(0, 62)).unwrap_or(62);
    base_ms
        .max(0)
        .saturating_mul(1i64 << doublings)
        .min(max_ms.max(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_from_the_first_failure_and_stops_at_the_cap() {
        let at = |attempt| exponential(1000, 10_000, attempt);
        assert_eq!(
            [at(0), at(1), at(2), at(3), at(4), at(5)],
            [1000, 1000, 2000, 4000, 8000, 10_000]
        );
        assert_eq!(exponential(i64::MAX, i64::MAX, i64::MAX), i64::MAX);
        assert_eq!(exponential(-5, 100, 3), 0);
    }
}
