//! Time values of the contract: instants at millisecond precision and calendar dates.
//!
//! The core never reads a clock: every "now" is handed in by the caller, so tests and stores
//! agree on time. Conversions between days and civil dates are done here with the proleptic
//! Gregorian calendar, which keeps the crate free of a date library.

use std::fmt;

/// An instant in UTC, in whole milliseconds since the Unix epoch.
///
/// Rendered as RFC 3339 with a `Z` and exactly three fractional digits, on every store.
///
/// ```
/// use task_api_core::Timestamp;
/// let t = Timestamp::from_millis(1_795_256_130_123);
/// assert_eq!(t.to_string(), "2026-11-21T10:15:30.123Z");
/// assert_eq!(Timestamp::parse_rfc3339("2026-11-21T10:15:30.123Z"), Some(t));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

impl Timestamp {
    /// The instant `ms` milliseconds after 1970-01-01T00:00:00Z.
    pub const fn from_millis(ms: i64) -> Self {
        Timestamp(ms)
    }

    /// Milliseconds since the Unix epoch.
    pub const fn as_millis(self) -> i64 {
        self.0
    }

    /// Whole seconds since the Unix epoch (rounded down).
    pub const fn as_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// This instant moved by `ms` milliseconds (saturating).
    pub const fn plus_millis(self, ms: i64) -> Self {
        Timestamp(self.0.saturating_add(ms))
    }

    /// The instant of a [`std::time::SystemTime`], truncated to milliseconds.
    ///
    /// ```
    /// use task_api_core::Timestamp;
    /// let now = Timestamp::from_system_time(std::time::SystemTime::now());
    /// assert!(now.as_millis() > 1_700_000_000_000);
    /// ```
    pub fn from_system_time(t: std::time::SystemTime) -> Self {
        match t.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => Timestamp(i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
            Err(e) => Timestamp(-i64::try_from(e.duration().as_millis()).unwrap_or(i64::MAX)),
        }
    }

    /// Parses the exact form this crate renders (`YYYY-MM-DDTHH:MM:SS.mmmZ`).
    pub fn parse_rfc3339(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 24 || b[10] != b'T' || b[13] != b':' || b[16] != b':' || b[19] != b'.' {
            return None;
        }
        if b[23] != b'Z' {
            return None;
        }
        let date = DueDate::parse(&s[..10])?;
        let hh = digits(&b[11..13])?;
        let mm = digits(&b[14..16])?;
        let ss = digits(&b[17..19])?;
        let ms = digits(&b[20..23])?;
        if hh > 23 || mm > 59 || ss > 59 {
            return None;
        }
        let day = date.days_since_epoch();
        Some(Timestamp(
            day * DAY_MS + i64::from(hh * 3_600_000 + mm * 60_000 + ss * 1000 + ms),
        ))
    }
}

impl Timestamp {
    /// Parses any RFC 3339 date-time, as an import meets them: `T`, `t` or a space between
    /// date and time, any fraction of a second (kept to the millisecond, truncated), and `Z`
    /// or an offset `±HH:MM`.
    ///
    /// ```
    /// use task_api_core::Timestamp;
    /// let z = Timestamp::parse_rfc3339("2026-12-01T10:00:05.000Z").unwrap();
    /// assert_eq!(Timestamp::parse_rfc3339_any("2026-12-01T12:00:05+02:00"), Some(z));
    /// assert_eq!(Timestamp::parse_rfc3339_any("2026-12-01 10:00:05.0009z"), Some(z));
    /// assert_eq!(Timestamp::parse_rfc3339_any("2026-12-01T10:00:05"), None);
    /// ```
    pub fn parse_rfc3339_any(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() < 20 || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
            return None;
        }
        let date = DueDate::parse(s.get(..10)?)?;
        let (hh, mm, ss) = (
            digits(&b[11..13])?,
            digits(&b[14..16])?,
            digits(&b[17..19])?,
        );
        if hh > 23 || mm > 59 || ss > 59 {
            return None;
        }
        let mut rest = &b[19..];
        let mut ms = 0;
        if let Some(frac) = rest.strip_prefix(b".") {
            let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
            if n == 0 {
                return None;
            }
            let mut three = [b'0'; 3];
            for (i, d) in frac[..n.min(3)].iter().enumerate() {
                three[i] = *d;
            }
            ms = digits(&three)?;
            rest = &frac[n..];
        }
        let offset_min = match rest {
            [b'Z' | b'z'] => 0,
            [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
                let (oh, om) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
                if oh > 23 || om > 59 {
                    return None;
                }
                let m = i64::from(oh * 60 + om);
                if *sign == b'-' { -m } else { m }
            }
            _ => return None,
        };
        let local = date.days_since_epoch() * DAY_MS
            + i64::from(hh * 3_600_000 + mm * 60_000 + ss * 1000 + ms);
        Some(Timestamp(local - offset_min * 60_000))
    }

    /// The RFC 3339 form, written into a fixed buffer: lists render many timestamps, and
    /// this avoids the formatting machinery for each.
    fn render(self) -> [u8; 24] {
        let days = self.0.div_euclid(DAY_MS);
        let ms_of_day = self.0.rem_euclid(DAY_MS);
        let (y, m, d) = civil_from_days(days);
        let mut out = *b"0000-00-00T00:00:00.000Z";
        let mut put = |at: usize, width: usize, mut n: i64| {
            for i in (at..at + width).rev() {
                out[i] = b'0' + (n % 10) as u8;
                n /= 10;
            }
        };
        put(0, 4, y.clamp(0, 9999));
        put(5, 2, m);
        put(8, 2, d);
        put(11, 2, ms_of_day / 3_600_000);
        put(14, 2, ms_of_day / 60_000 % 60);
        put(17, 2, ms_of_day / 1000 % 60);
        put(20, 3, ms_of_day % 1000);
        out
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let buf = self.render();
        // Only ASCII digits and separators are ever written.
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let buf = self.render();
        s.serialize_str(std::str::from_utf8(&buf).map_err(serde::ser::Error::custom)?)
    }
}

/// A calendar date (`YYYY-MM-DD`, years 0001 to 9999), as used for `due_date`.
///
/// Only real dates exist: `2026-02-29` does not parse, `2028-02-29` does.
///
/// ```
/// use task_api_core::DueDate;
/// assert!(DueDate::parse("2028-02-29").is_some());
/// assert!(DueDate::parse("2026-02-29").is_none());
/// assert!(DueDate::parse("2026-1-5").is_none());
/// assert_eq!(DueDate::parse("2026-12-01").unwrap().to_string(), "2026-12-01");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DueDate {
    year: u16,
    month: u8,
    day: u8,
}

impl DueDate {
    /// Parses exactly `YYYY-MM-DD` naming a real date.
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let year = u16::try_from(digits(&b[0..4])?).ok()?;
        let month = u8::try_from(digits(&b[5..7])?).ok()?;
        let day = u8::try_from(digits(&b[8..10])?).ok()?;
        if year == 0 || !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        Some(DueDate { year, month, day })
    }

    /// The year (1 to 9999).
    pub fn year(self) -> u16 {
        self.year
    }

    /// The month (1 to 12).
    pub fn month(self) -> u8 {
        self.month
    }

    /// The day of the month (1 to 31).
    pub fn day(self) -> u8 {
        self.day
    }

    fn days_since_epoch(self) -> i64 {
        days_from_civil(
            i64::from(self.year),
            i64::from(self.month),
            i64::from(self.day),
        )
    }
}

impl fmt::Display for DueDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

impl serde::Serialize for DueDate {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

fn is_leap(year: u16) -> bool {
    (year.is_multiple_of(4) && !year.is_multiple_of(100)) || year.is_multiple_of(400)
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Day counts use an era of 400 years (146,097 days) starting on March 1st, so that the leap
// day falls at the end of each counted year and needs no special case.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let month_from_march = (m + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + d - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let d = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let m = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let y = year_of_era + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_renders_as_1970() {
        assert_eq!(
            Timestamp::from_millis(0).to_string(),
            "1970-01-01T00:00:00.000Z"
        );
    }

    #[test]
    fn timestamps_round_trip_across_centuries() {
        for ms in [
            -1,
            0,
            951_782_400_000,     // 2000-02-29
            4_107_542_399_999,   // 2100-02-28T23:59:59.999
            253_402_300_799_999, // 9999-12-31T23:59:59.999
        ] {
            let t = Timestamp::from_millis(ms);
            assert_eq!(Timestamp::parse_rfc3339(&t.to_string()), Some(t), "{t}");
        }
    }

    #[test]
    fn day_conversion_is_inverse_for_every_day_of_a_long_range() {
        for days in -800_000..800_000i64 {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn leap_years_follow_the_gregorian_rules() {
        assert!(DueDate::parse("2000-02-29").is_some());
        assert!(DueDate::parse("1900-02-29").is_none());
        assert!(DueDate::parse("2024-02-29").is_some());
        assert!(DueDate::parse("2023-02-29").is_none());
    }

    #[test]
    fn malformed_dates_do_not_parse() {
        for s in [
            "",
            "2026-13-01",
            "2026-00-10",
            "2026-04-31",
            "0000-01-01",
            "2026-12-1",
            "2026/12/01",
            "２０２６-12-01",
            "2026-12-01T00:00:00Z",
            " 2026-12-01",
        ] {
            assert!(DueDate::parse(s).is_none(), "{s:?}");
        }
    }

    #[test]
    fn malformed_timestamps_do_not_parse() {
        for s in [
            "2026-11-21T10:15:30Z",
            "2026-11-21T24:00:00.000Z",
            "2026-11-21 10:15:30.123Z",
        ] {
            assert!(Timestamp::parse_rfc3339(s).is_none(), "{s:?}");
        }
    }
}
