//! The stop-time piece of `getProcessInfo`'s `description` (`procsup` renders the rest);
//! the local time comes from `sys::clock::local_tm`.

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
}
