//! The one place that reads the clock.
//!
//! The pure core takes `now` as an argument; the shell asks here. The monotonic reading goes
//! through tokio so that tests running with paused tokio time see the virtual clock.

use std::time::{Instant, SystemTime};

/// Monotonic "now", for deadlines (startsecs, backoff, stopwaitsecs).
// The single legitimate monotonic clock read; everything else receives `now` as an argument.
#[allow(clippy::disallowed_methods)]
pub fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Wall-clock "now", for what users see: log timestamps and `start`/`stop`/`now` in RPC.
pub fn wall_now() -> SystemTime {
    SystemTime::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn monotonic_never_goes_back() {
        let a = now();
        let b = now();
        assert!(b >= a);
    }

    #[test]
    fn wall_clock_is_after_the_epoch() {
        assert!(wall_now() > SystemTime::UNIX_EPOCH);
    }
}
