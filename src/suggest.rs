//! "Did you mean …?": the known name closest to a typo.

/// The candidate closest to `word` by edit distance, when it is close enough to be a typo (at most
/// a third of the word's length, and at least one edit).
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// ", did you mean `x`?" or nothing.
pub fn hint<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(word, candidates).map_or(String::new(), |c| format!("; did you mean `{c}`?"))
}

/// Edit distance over characters, case-insensitive, a swap of two neighbours counting as one
/// edit (optimal string alignment): `wbe` is one edit from `web`.
fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.to_lowercase().chars().collect();
    let b: Vec<char> = b.to_lowercase().chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_find_their_word() {
        let keys = ["lease_seconds", "max_attempts", "log_dir"];
        assert_eq!(closest("lease_second", keys), Some("lease_seconds"));
        assert_eq!(closest("max_attempt", keys), Some("max_attempts"));
        assert_eq!(closest("colour", keys), None);
        assert_eq!(
            closest("devloper", ["developer", "reviewer"]),
            Some("developer")
        );
        assert_eq!(hint("wbe", ["web"]), "; did you mean `web`?");
    }
}
