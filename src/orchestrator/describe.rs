//! The text pieces of `getProcessInfo`'s `description`, pure except for the local-time
//! conversion, which goes through the C library as Python's `time.localtime` does.

/// Python's `str(timedelta(seconds=n))` for whole seconds: `H:MM:SS`, with `1 day, ` or
/// `N days, ` in front past 24 hours. A negative gap (clock went back) shows as `0:00:00`.
pub fn uptime(secs: i64) -> String {
    let secs = secs.max(0);
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let hms = format!("{}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60);
    match days {
        0 => hms,
        1 => format!("1 day, {hms}"),
        d => format!("{d} days, {hms}"),
    }
}

/// Broken-down local time of an epoch second.
pub fn local_tm(epoch: i64) -> Option<libc::tm> {
    let t: libc::time_t = epoch;
    // SAFETY: an all-zero `tm` is a valid value for localtime_r to overwrite; both pointers
    // point at live locals for the duration of the call.
    unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&t, &mut tm).is_null() { None } else { Some(tm) }
    }
}

const MONTHS: [&str; 12] =
    ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// `time.strftime('%b %d %I:%M %p')` in the C locale, e.g. `Nov 22 10:56 PM`, for the stop
/// time of a STOPPED or EXITED process.
pub fn stop_time(tm: &libc::tm) -> String {
    let month =
        usize::try_from(tm.tm_mon).ok().and_then(|m| MONTHS.get(m)).copied().unwrap_or("???");
    let hour12 = match tm.tm_hour % 12 {
        0 => 12,
        h => h,
    };
    let ampm = if tm.tm_hour < 12 { "AM" } else { "PM" };
    format!("{month} {:02} {hour12:02}:{:02} {ampm}", tm.tm_mday, tm.tm_min)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uptime_is_python_timedelta() {
        assert_eq!(uptime(0), "0:00:00");
        assert_eq!(uptime(5), "0:00:05");
        assert_eq!(uptime(62), "0:01:02");
        assert_eq!(uptime(36_000), "10:00:00");
        assert_eq!(uptime(86_400 + 2 * 3600 + 3 * 60 + 4), "1 day, 2:03:04");
        assert_eq!(uptime(2 * 86_400 + 1), "2 days, 0:00:01");
        assert_eq!(uptime(-30), "0:00:00");
    }

    fn tm(mon: i32, mday: i32, hour: i32, min: i32) -> libc::tm {
        // SAFETY: all-zero is a valid `tm`.
        let mut t: libc::tm = unsafe { std::mem::zeroed() };
        t.tm_mon = mon;
        t.tm_mday = mday;
        t.tm_hour = hour;
        t.tm_min = min;
        t
    }

    #[test]
    fn stop_time_is_c_locale_strftime() {
        assert_eq!(stop_time(&tm(10, 22, 22, 56)), "Nov 22 10:56 PM");
        assert_eq!(stop_time(&tm(0, 2, 9, 5)), "Jan 02 09:05 AM");
        assert_eq!(stop_time(&tm(5, 30, 0, 0)), "Jun 30 12:00 AM");
        assert_eq!(stop_time(&tm(5, 30, 12, 1)), "Jun 30 12:01 PM");
    }

    #[test]
    fn local_time_round_trips_the_epoch_day() {
        let t = local_tm(0).expect("localtime");
        assert!(t.tm_year == 70 || t.tm_year == 69);
    }
}
