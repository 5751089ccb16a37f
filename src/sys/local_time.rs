//! The local time of day, as C's `localtime_r` computes it (the TZ variable, else
//! `/etc/localtime`), for output that upstream printed with `asctime`.

/// A broken-down local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    /// Years since 1900.
    pub year: i32,
    /// Month, 0 = January.
    pub month: i32,
    /// Day of the month, 1..31.
    pub day: i32,
    /// Hours, 0..23.
    pub hour: i32,
    /// Minutes, 0..59.
    pub minute: i32,
    /// Seconds, 0..60.
    pub second: i32,
    /// Day of the week, 0 = Sunday.
    pub weekday: i32,
}

/// `v` as another integer type, if it fits.
fn convert<T: TryFrom<i64>>(v: i64) -> Option<T> {
    T::try_from(v).ok()
}

/// `secs` since the epoch in local time; `None` when the C library cannot convert it.
pub fn local_time(secs: i64) -> Option<LocalTime> {
    // time_t is 32 bits on some targets: there a far date does not convert. Its type is
    // inferred from localtime_r (musl's libc crate deprecates naming it).
    let t = convert(secs)?;
    // SAFETY: an all-zero `tm` is a valid value of the plain C struct (its zone pointer
    // is NULL until localtime_r fills it).
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers refer to live, properly aligned locals for the duration of
    // the call; localtime_r is the reentrant form and keeps no pointer to them.
    let r = unsafe { libc::localtime_r(&t, &mut tm) };
    if r.is_null() {
        return None;
    }
    Some(LocalTime {
        year: tm.tm_year,
        month: tm.tm_mon,
        day: tm.tm_mday,
        hour: tm.tm_hour,
        minute: tm.tm_min,
        second: tm.tm_sec,
        weekday: tm.tm_wday,
    })
}

impl LocalTime {
    /// C's `asctime` text without its newline, e.g. `Mon Mar 27 16:44:44 2023`.
    pub fn asctime(&self) -> Option<String> {
        const DAYS: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
        const MONTHS: [&str; 12] = [
            "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
        ];
        let day = DAYS.get(usize::try_from(self.weekday).ok()?)?;
        let month = MONTHS.get(usize::try_from(self.month).ok()?)?;
        Some(format!(
            "{day} {month}{:3} {:02}:{:02}:{:02} {}",
            self.day,
            self.hour,
            self.minute,
            self.second,
            i64::from(self.year) + 1900
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn asctime_layout() {
        let t = LocalTime {
            year: 123,
            month: 2,
            day: 7,
            hour: 6,
            minute: 4,
            second: 44,
            weekday: 1,
        };
        assert_eq!(t.asctime().unwrap(), "Mon Mar  7 06:04:44 2023");
        assert_eq!(LocalTime { month: 12, ..t }.asctime(), None);
        assert!(local_time(0).is_some());
    }
}
