//! Backoff arithmetic (Python's `change_state(BACKOFF)` and `transition()`): each entry into
//! BACKOFF increments the counter and waits that many seconds, so the waits are 1 s, 2 s,
//! 3 s, … (linear); once the counter exceeds `startretries` the process gives up (FATAL).

use std::time::Duration;

/// The wait before the next attempt, given the counter *after* the increment.
pub fn delay(backoff: u32) -> Duration {
    Duration::from_secs(u64::from(backoff))
}

/// Whether the retries are used up: `startretries + 1` attempts have failed.
pub fn exhausted(backoff: u32, startretries: u32) -> bool {
    backoff > startretries
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_linear_seconds() {
        let secs: Vec<u64> = (1..=4).map(|b| delay(b).as_secs()).collect();
        assert_eq!(secs, [1, 2, 3, 4]);
    }

    #[test]
    fn startretries_plus_one_attempts() {
        // startretries=3: failures 1..=3 retry, the 4th gives up.
        assert!(!exhausted(3, 3));
        assert!(exhausted(4, 3));
        // startretries=0: the first failure gives up.
        assert!(exhausted(1, 0));
    }
}
