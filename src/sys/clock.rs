//! The one place that reads the clock, and the one conversion to local time.
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

/// Broken-down local time of an epoch second, from the C library's `localtime_r` (which
/// honours `TZ` and `/etc/localtime`, as Python's `time.localtime` does); `None` for a time
/// the C library cannot represent.
pub fn local_tm(epoch: i64) -> Option<libc::tm> {
    // SAFETY: an all-zero `tm` is a valid value for localtime_r to overwrite (integers and a
    // null `tm_zone`); both pointers point at live locals for the duration of the call, and
    // localtime_r is thread-safe.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        // time_t is i64 on every 64-bit Linux libc (the alias is deprecated on musl).
        if libc::localtime_r(&epoch, &mut tm).is_null() { None } else { Some(tm) }
    }
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

    #[test]
    fn local_time_round_trips_the_epoch_day() {
        let t = local_tm(0).expect("localtime");
        assert!(t.tm_year == 70 || t.tm_year == 69);
    }
}
