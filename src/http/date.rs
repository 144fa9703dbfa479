//! The `Date` response header (RFC 9110 §6.6.1), in IMF-fixdate form.
//!
//! Every response carries it, so formatting is done at most once per wall-clock second
//! and the bytes are reused in between; the calendar arithmetic is written out here
//! rather than pulled from a crate, since it is a dozen lines.

use std::time::{SystemTime, UNIX_EPOCH};

/// Length of an IMF-fixdate such as `Sun, 06 Nov 1994 08:49:37 GMT`.
pub(crate) const DATE_LEN: usize = 29;

/// The last second IMF-fixdate can express (9999-12-31 23:59:59): its year has four
/// digits. Later times are clamped to it rather than producing a malformed header.
pub(crate) const MAX_UNIX_SECS: u64 = 253_402_300_799;

const DAYS: [&[u8; 3]; 7] = [b"Sun", b"Mon", b"Tue", b"Wed", b"Thu", b"Fri", b"Sat"];
const MONTHS: [&[u8; 3]; 12] = [
    b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec",
];

/// A formatted `Date` value and the second it was formatted for; one per event loop.
#[derive(Debug, Clone)]
pub struct DateCache {
    buf: [u8; DATE_LEN],
    /// The second `buf` holds; `u64::MAX` (never a clamped input) until the first use.
    secs: u64,
    /// How many times `buf` was formatted, so tests can see the cache working.
    #[cfg(test)]
    formats: u32,
}

impl Default for DateCache {
    fn default() -> Self {
        Self::new()
    }
}

impl DateCache {
    /// An empty cache; the first [`get`](Self::get) formats.
    pub fn new() -> Self {
        DateCache {
            buf: [0; DATE_LEN],
            secs: u64::MAX,
            #[cfg(test)]
            formats: 0,
        }
    }

    /// The IMF-fixdate for now (always 29 bytes), re-formatted only when the wall-clock
    /// second changed. A clock set before 1970 reads as 1970.
    pub fn get(&mut self) -> &[u8] {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        self.get_at(now)
    }

    /// Like [`get`](Self::get) for a time the caller already has (an event loop
    /// usually reads the clock once per iteration), which also makes the cache testable.
    pub fn get_at(&mut self, unix_secs: u64) -> &[u8] {
        let secs = unix_secs.min(MAX_UNIX_SECS);
        if secs != self.secs {
            Self::format(secs, &mut self.buf);
            self.secs = secs;
            #[cfg(test)]
            {
                self.formats += 1;
            }
        }
        &self.buf
    }

    /// Writes the IMF-fixdate of `unix_secs` (UTC, clamped to [`MAX_UNIX_SECS`]) into
    /// `out`. Pure, so it can be checked against known dates.
    pub fn format(unix_secs: u64, out: &mut [u8; DATE_LEN]) {
        let t = unix_secs.min(MAX_UNIX_SECS);
        let days = t / 86_400;
        let sod = t % 86_400;
        let (year, month, day) = civil_from_days(days);
        // 1970-01-01 was a Thursday.
        let weekday = ((days + 4) % 7) as usize;

        out[0..3].copy_from_slice(DAYS[weekday]);
        out[3..5].copy_from_slice(b", ");
        two_digits(&mut out[5..7], day);
        out[7] = b' ';
        out[8..11].copy_from_slice(MONTHS[month as usize - 1]);
        out[11] = b' ';
        two_digits(&mut out[12..14], (year / 100) as u32);
        two_digits(&mut out[14..16], (year % 100) as u32);
        out[16] = b' ';
        two_digits(&mut out[17..19], (sod / 3600) as u32);
        out[19] = b':';
        two_digits(&mut out[20..22], (sod / 60 % 60) as u32);
        out[22] = b':';
        two_digits(&mut out[23..25], (sod % 60) as u32);
        out[25..29].copy_from_slice(b" GMT");
    }
}

/// The Unix time of an IMF-fixdate (`If-Modified-Since`, `If-Range`); None for
/// anything else, including the obsolete RFC 850 and asctime forms (a condition that
/// cannot be read is treated as absent, which only costs a full response).
pub fn parse(s: &[u8]) -> Option<u64> {
    if s.len() != DATE_LEN {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u64> {
        s[r].iter().try_fold(0u64, |n, &b| b.is_ascii_digit().then(|| n * 10 + u64::from(b - b'0')))
    };
    let day = num(5..7)?;
    let month = MONTHS.iter().position(|m| &s[8..11] == *m)? as u64 + 1;
    let year = num(12..16)?;
    let (h, mi, sec) = (num(17..19)?, num(20..22)?, num(23..25)?);
    if year < 1970 || !(1..=31).contains(&day) || h > 23 || mi > 59 || sec > 59 {
        return None;
    }
    let t = days_from_civil(year, month, day) * 86_400 + h * 3600 + mi * 60 + sec;
    // Formatting the result back must give the input: this checks the weekday, the
    // separators and days past the end of their month in one comparison.
    let mut back = [0u8; DATE_LEN];
    DateCache::format(t, &mut back);
    (back[..] == *s).then_some(t)
}

/// Days from 1970-01-01 to a proleptic Gregorian date (year >= 1970), the inverse
/// of `civil_from_days`, on the same March-based years.
fn days_from_civil(year: u64, month: u64, day: u64) -> u64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let year_of_era = y % 400;
    let month_from_march = if month > 2 { month - 3 } else { month + 9 };
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn two_digits(out: &mut [u8], v: u32) {
    out[0] = b'0' + (v / 10) as u8;
    out[1] = b'0' + (v % 10) as u8;
}

/// (year, month 1-12, day 1-31) of the proleptic Gregorian date `days` after
/// 1970-01-01.
///
/// Counts from 0000-03-01 instead, so that the leap day is the last day of its
/// "year" and every 400-year era has the same shape (146097 days); the month then
/// follows from the day of that March-based year with one linear formula, because
/// month lengths from March repeat 31,30,31,30,31 in five-month groups of 153 days.
fn civil_from_days(days: u64) -> (u64, u32, u32) {
    // 719468 days from 0000-03-01 to 1970-01-01.
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z % 146_097;
    // Years of 365 days, corrected for the leap days of the 4-, 100- and 400-year
    // cycles already passed within the era.
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = (if month_from_march < 10 { month_from_march + 3 } else { month_from_march - 9 }) as u32;
    let year = era * 400 + year_of_era + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fmt(t: u64) -> String {
        let mut out = [0u8; DATE_LEN];
        DateCache::format(t, &mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn parse_inverts_format_and_refuses_the_rest() {
        for t in [0, 784_111_777, 951_782_400, 1_709_164_800, MAX_UNIX_SECS] {
            assert_eq!(parse(fmt(t).as_bytes()), Some(t));
        }
        assert_eq!(parse(b"Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(parse(b"Mon, 06 Nov 1994 08:49:37 GMT"), None, "wrong weekday");
        assert_eq!(parse(b"Thu, 31 Feb 2000 00:00:00 GMT"), None);
        assert_eq!(parse(b"Sunday, 06-Nov-94 08:49:37 GMT"), None);
        assert_eq!(parse(b"Sun Nov  6 08:49:37 1994"), None);
        assert_eq!(parse(b"Sun, 06 Nov 1994 08:49:37 UTC"), None);
    }

    #[test]
    fn known_timestamps() {
        assert_eq!(fmt(0), "Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(fmt(784_111_777), "Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(fmt(951_782_400), "Tue, 29 Feb 2000 00:00:00 GMT");
        assert_eq!(fmt(951_868_799), "Tue, 29 Feb 2000 23:59:59 GMT");
        assert_eq!(fmt(951_868_800), "Wed, 01 Mar 2000 00:00:00 GMT");
        assert_eq!(fmt(4_107_456_000), "Sun, 28 Feb 2100 00:00:00 GMT");
        assert_eq!(fmt(4_107_542_400), "Mon, 01 Mar 2100 00:00:00 GMT", "2100 is not a leap year");
        assert_eq!(fmt(2_147_483_647), "Tue, 19 Jan 2038 03:14:07 GMT");
        assert_eq!(fmt(2_147_483_648), "Tue, 19 Jan 2038 03:14:08 GMT");
        assert_eq!(fmt(4_294_967_296), "Sun, 07 Feb 2106 06:28:16 GMT");
        assert_eq!(fmt(1_703_980_799), "Sat, 30 Dec 2023 23:59:59 GMT");
        assert_eq!(fmt(1_704_067_199), "Sun, 31 Dec 2023 23:59:59 GMT");
        assert_eq!(fmt(1_704_067_200), "Mon, 01 Jan 2024 00:00:00 GMT");
        assert_eq!(fmt(1_709_164_800), "Thu, 29 Feb 2024 00:00:00 GMT");
        assert_eq!(fmt(946_684_799), "Fri, 31 Dec 1999 23:59:59 GMT");
        assert_eq!(fmt(MAX_UNIX_SECS), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(fmt(MAX_UNIX_SECS + 1), "Fri, 31 Dec 9999 23:59:59 GMT");
        assert_eq!(fmt(u64::MAX), "Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn every_day_for_800_years_is_consecutive() {
        // Walk day by day with an independent calendar and compare, covering every
        // leap rule (4, 100, 400) twice.
        let month_len = |y: u64, m: u32| match m {
            2 if (y.is_multiple_of(4) && !y.is_multiple_of(100)) || y.is_multiple_of(400) => 29,
            2 => 28,
            4 | 6 | 9 | 11 => 30,
            _ => 31,
        };
        let (mut y, mut m, mut d) = (1970u64, 1u32, 1u32);
        for days in 0..(800 * 366) {
            assert_eq!(civil_from_days(days), (y, m, d), "day {days}");
            d += 1;
            if d > month_len(y, m) {
                d = 1;
                m += 1;
                if m > 12 {
                    m = 1;
                    y += 1;
                }
            }
        }
    }

    #[test]
    fn cache_formats_once_per_second() {
        let mut c = DateCache::new();
        assert_eq!(c.get_at(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(c.get_at(784_111_777), b"Sun, 06 Nov 1994 08:49:37 GMT");
        assert_eq!(c.formats, 1);
        assert_eq!(c.get_at(784_111_778), b"Sun, 06 Nov 1994 08:49:38 GMT");
        assert_eq!(c.formats, 2);
        // Clamped times are one second as far as the cache is concerned.
        c.get_at(u64::MAX);
        c.get_at(u64::MAX - 1);
        assert_eq!(c.formats, 3);
        // The clock going backwards is a change too.
        assert_eq!(c.get_at(0), b"Thu, 01 Jan 1970 00:00:00 GMT");
        assert_eq!(c.formats, 4);
    }

    #[test]
    fn get_reads_the_clock() {
        let mut c = DateCache::default();
        let before = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        let got = c.get().to_vec();
        let after = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(got.len(), DATE_LEN);
        assert!((before..=after).any(|t| fmt(t).as_bytes() == got), "{:?}", String::from_utf8_lossy(&got));
    }

    #[test]
    fn matches_gnu_date() {
        use std::io::Write;
        use std::process::{Command, Stdio};
        // Only where a GNU `date` exists: it is the independent oracle, not a dependency.
        let gnu = Command::new("date")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).contains("GNU"));
        if !gnu {
            eprintln!("skipping: no GNU date");
            return;
        }
        let mut x: u64 = 0x0123_4567_89ab_cdef;
        let times: Vec<u64> = (0..400)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                // Mostly this era, some across the whole range, some right at midnight.
                match i % 4 {
                    0 => x % (MAX_UNIX_SECS + 1),
                    1 => x % 4_102_444_800,
                    2 => x % 4_102_444_800 / 86_400 * 86_400 + 86_399 * (x & 1),
                    _ => x % 2_000_000_000 + 946_684_800,
                }
            })
            .collect();
        let mut child = Command::new("date")
            .args(["-u", "-f", "-", "+%a, %d %b %Y %H:%M:%S GMT"])
            .env("LC_ALL", "C")
            .env("TZ", "UTC")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn date");
        let input: String = times.iter().map(|t| format!("@{t}\n")).collect();
        child.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success());
        let lines: Vec<&str> = std::str::from_utf8(&out.stdout).unwrap().lines().collect();
        assert_eq!(lines.len(), times.len());
        for (t, line) in times.iter().zip(lines) {
            assert_eq!(fmt(*t), line, "unix time {t}");
        }
    }
}
