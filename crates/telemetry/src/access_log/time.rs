//! `%START_TIME(...)%`: a strftime subset, parsed once into pieces and rendered in UTC
//! without allocating.
//!
//! Envoy formats with absl's `FormatTime` plus its own `%s` (Unix seconds) and `%f`/`%1f`…`%9f`
//! (fractional seconds, 9 digits for bare `%f`, truncated not rounded). Without a format,
//! Envoy prints `%Y-%m-%dT%H:%M:%E3SZ`, e.g. `2026-12-06T22:34:27.123Z`. `START_TIME` is UTC,
//! so `%z` is `+0000`, `%Ez` is `+00:00` and `%Z` is `UTC`.
//!
//! Specifiers outside the subset are refused when the format is parsed rather than printed
//! differently from Envoy; `%n` is refused as Envoy does (a log line must not break).

use std::fmt::{self, Write};
use std::time::{SystemTime, UNIX_EPOCH};

/// A parsed time format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct TimeFormat {
    pieces: Vec<TimePiece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum TimePiece {
    Literal(Box<str>),
    /// `%Y`: the year, at least 4 digits.
    Year,
    /// `%y`: the year in its century, 2 digits.
    YearOfCentury,
    /// `%C`: the century, 2 digits.
    Century,
    /// `%m`: month 01–12.
    Month,
    /// `%d`: day of month 01–31.
    Day,
    /// `%e`: day of month, space-padded.
    DaySpacePadded,
    /// `%j`: day of year 001–366.
    DayOfYear,
    /// `%H`: hour 00–23.
    Hour,
    /// `%I`: hour 01–12.
    Hour12,
    /// `%M`: minute.
    Minute,
    /// `%S`: second.
    Second,
    /// `%E<n>S`: seconds with n fractional digits (`%ES`/`%E0S` none).
    SecondWithFraction(u8),
    /// `%f` (9 digits) and `%<n>f`: fractional seconds, truncated.
    Fraction(u8),
    /// `%s`: seconds since the Unix epoch.
    EpochSeconds,
    /// `%p`: AM or PM.
    AmPm,
    /// `%a` / `%A`: weekday name.
    Weekday {
        long: bool,
    },
    /// `%b` / `%h` / `%B`: month name.
    MonthName {
        long: bool,
    },
    /// `%u`: weekday 1–7, Monday 1.
    WeekdayMondayOne,
    /// `%w`: weekday 0–6, Sunday 0.
    WeekdaySundayZero,
    /// `%z`: `+0000`.
    Offset,
    /// `%Ez` / `%:z`: `+00:00`.
    OffsetColon,
    /// `%Z`: `UTC`.
    ZoneName,
}

const WEEKDAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

impl TimeFormat {
    /// Envoy's format when `START_TIME` has none: `%Y-%m-%dT%H:%M:%E3SZ`.
    pub(super) fn envoy_default() -> TimeFormat {
        TimeFormat::parse("%Y-%m-%dT%H:%M:%E3SZ").expect("Envoy's default time format parses")
    }

    /// Parses a strftime-like format. The error says which specifier is not supported.
    pub(super) fn parse(source: &str) -> Result<TimeFormat, String> {
        use TimePiece::*;
        let mut pieces = Vec::new();
        let mut literal = String::new();
        let mut chars = source.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            if c != '%' {
                literal.push(c);
                continue;
            }
            let mut spec = String::from('%');
            let mut next = || {
                let (_, c) = chars.next()?;
                spec.push(c);
                Some(c)
            };
            let piece: Vec<TimePiece> = match next() {
                Some('%') => {
                    literal.push('%');
                    continue;
                }
                Some('t') => {
                    literal.push('\t');
                    continue;
                }
                Some('n') => {
                    return Err(
                        "Invalid header configuration. Format string contains newline.".into(),
                    )
                }
                Some('Y') => vec![Year],
                Some('y') => vec![YearOfCentury],
                Some('C') => vec![Century],
                Some('m') => vec![Month],
                Some('d') => vec![Day],
                Some('e') => vec![DaySpacePadded],
                Some('j') => vec![DayOfYear],
                Some('H') => vec![Hour],
                Some('I') => vec![Hour12],
                Some('M') => vec![Minute],
                Some('S') => vec![Second],
                Some('f') => vec![Fraction(9)],
                Some('s') => vec![EpochSeconds],
                Some('p') => vec![AmPm],
                Some('a') => vec![Weekday { long: false }],
                Some('A') => vec![Weekday { long: true }],
                Some('b') | Some('h') => vec![MonthName { long: false }],
                Some('B') => vec![MonthName { long: true }],
                Some('u') => vec![WeekdayMondayOne],
                Some('w') => vec![WeekdaySundayZero],
                Some('z') => vec![Offset],
                Some('Z') => vec![ZoneName],
                Some('F') => vec![Year, lit("-"), Month, lit("-"), Day],
                Some('T') => vec![Hour, lit(":"), Minute, lit(":"), Second],
                Some('R') => vec![Hour, lit(":"), Minute],
                Some('D') => vec![Month, lit("/"), Day, lit("/"), YearOfCentury],
                Some(':') => match next() {
                    Some('z') => vec![OffsetColon],
                    _ => return Err(unsupported(&spec, at)),
                },
                Some(digit @ '1'..='9') => match next() {
                    Some('f') => vec![Fraction(digit as u8 - b'0')],
                    _ => return Err(unsupported(&spec, at)),
                },
                Some('E') => match next() {
                    Some('z') => vec![OffsetColon],
                    Some('S') => vec![SecondWithFraction(0)],
                    Some(digit @ '0'..='9') => match next() {
                        Some('S') => vec![SecondWithFraction(digit as u8 - b'0')],
                        _ => return Err(unsupported(&spec, at)),
                    },
                    _ => return Err(unsupported(&spec, at)),
                },
                _ => return Err(unsupported(&spec, at)),
            };
            if !literal.is_empty() {
                pieces.push(Literal(std::mem::take(&mut literal).into()));
            }
            for p in piece {
                match (p, pieces.last_mut()) {
                    (Literal(l), Some(Literal(prev))) => *prev = format!("{prev}{l}").into(),
                    (p, _) => pieces.push(p),
                }
            }
        }
        if !literal.is_empty() {
            pieces.push(Literal(literal.into()));
        }
        Ok(TimeFormat { pieces })
    }

    /// Writes `time` in UTC.
    pub(super) fn write(&self, time: SystemTime, w: &mut dyn Write) -> fmt::Result {
        let (secs, nanos) = match time.duration_since(UNIX_EPOCH) {
            Ok(d) => (d.as_secs() as i64, d.subsec_nanos()),
            Err(e) => {
                let d = e.duration();
                let (s, n) = (d.as_secs() as i64, d.subsec_nanos());
                if n == 0 {
                    (-s, 0)
                } else {
                    (-s - 1, 1_000_000_000 - n)
                }
            }
        };
        let days = secs.div_euclid(86_400);
        let of_day = secs.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        let (hour, minute, second) = (of_day / 3600, of_day / 60 % 60, of_day % 60);
        let weekday = (days + 4).rem_euclid(7) as usize; // 1970-01-01 was a Thursday
        for piece in &self.pieces {
            match piece {
                TimePiece::Literal(s) => w.write_str(s)?,
                TimePiece::Year => write!(w, "{year:04}")?,
                TimePiece::YearOfCentury => write!(w, "{:02}", year.rem_euclid(100))?,
                TimePiece::Century => write!(w, "{:02}", year.div_euclid(100))?,
                TimePiece::Month => write!(w, "{month:02}")?,
                TimePiece::Day => write!(w, "{day:02}")?,
                TimePiece::DaySpacePadded => write!(w, "{day:2}")?,
                TimePiece::DayOfYear => write!(w, "{:03}", days - days_from_civil(year, 1, 1) + 1)?,
                TimePiece::Hour => write!(w, "{hour:02}")?,
                TimePiece::Hour12 => write!(w, "{:02}", (hour + 11) % 12 + 1)?,
                TimePiece::Minute => write!(w, "{minute:02}")?,
                TimePiece::Second => write!(w, "{second:02}")?,
                TimePiece::SecondWithFraction(0) => write!(w, "{second:02}")?,
                TimePiece::SecondWithFraction(n) => {
                    write!(w, "{second:02}.")?;
                    write_fraction(nanos, *n, w)?
                }
                TimePiece::Fraction(n) => write_fraction(nanos, *n, w)?,
                TimePiece::EpochSeconds => write!(w, "{secs}")?,
                TimePiece::AmPm => w.write_str(if hour < 12 { "AM" } else { "PM" })?,
                TimePiece::Weekday { long } => w.write_str(name(WEEKDAYS[weekday], *long))?,
                TimePiece::MonthName { long } => {
                    w.write_str(name(MONTHS[month as usize - 1], *long))?
                }
                TimePiece::WeekdayMondayOne => write!(w, "{}", (weekday + 6) % 7 + 1)?,
                TimePiece::WeekdaySundayZero => write!(w, "{weekday}")?,
                TimePiece::Offset => w.write_str("+0000")?,
                TimePiece::OffsetColon => w.write_str("+00:00")?,
                TimePiece::ZoneName => w.write_str("UTC")?,
            }
        }
        Ok(())
    }
}

fn lit(s: &str) -> TimePiece {
    TimePiece::Literal(s.into())
}

fn unsupported(spec: &str, at: usize) -> String {
    format!("time specifier `{spec}` at position {at} is not supported by bowline-proxy")
}

fn name(full: &'static str, long: bool) -> &'static str {
    if long {
        full
    } else {
        &full[..3]
    }
}

/// The first `digits` digits of the nanoseconds, truncated.
fn write_fraction(nanos: u32, digits: u8, w: &mut dyn Write) -> fmt::Result {
    let digits = u32::from(digits.clamp(1, 9));
    let value = nanos / 10u32.pow(9 - digits);
    write!(w, "{value:0width$}", width = digits as usize)
}

/// (year, month 1–12, day 1–31) of a day count since 1970-01-01, proleptic Gregorian.
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Days since 1970-01-01 of a civil date; the inverse of [`civil_from_days`].
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64, nanos: u32) -> SystemTime {
        UNIX_EPOCH + Duration::new(secs, nanos)
    }

    fn render(format: &str, time: SystemTime) -> String {
        let mut out = String::new();
        TimeFormat::parse(format)
            .unwrap()
            .write(time, &mut out)
            .unwrap();
        out
    }

    #[test]
    fn formats_like_envoy() {
        // 2026-12-06T22:34:27.123456789Z is 1796596467 seconds after the epoch.
        let t = at(1_796_596_467, 123_456_789);
        let cases = [
            ("%Y-%m-%dT%H:%M:%E3SZ", "2026-12-06T22:34:27.123Z"),
            ("%Y/%m/%d %H:%M:%S %z", "2026/12/06 22:34:27 +0000"),
            ("%s", "1796596467"),
            ("%s.%3f", "1796596467.123"),
            ("%f", "123456789"),
            ("%1f|%6f|%9f", "1|123456|123456789"),
            ("%E6S", "27.123456"),
            ("%ES", "27"),
            ("%F %T", "2026-12-06 22:34:27"),
            ("%a %A %b %B %j %u %w", "Sun Sunday Dec December 340 7 0"),
            ("%I%p %Ez %Z %y %C %e", "10PM +00:00 UTC 26 20  6"),
            ("100%% at %R", "100% at 22:34"),
            ("no specifiers", "no specifiers"),
        ];
        for (format, want) in cases {
            assert_eq!(render(format, t), want, "{format}");
        }
    }

    #[test]
    fn fractions_truncate_and_pad() {
        assert_eq!(render("%3f", at(0, 999_999_999)), "999");
        assert_eq!(render("%3f", at(0, 5_000_000)), "005");
        assert_eq!(render("%E3S", at(59, 0)), "59.000");
    }

    #[test]
    fn calendar_edges() {
        let cases = [
            (0, "1970-01-01 Thu"),
            (951_782_400, "2000-02-29 Tue"), // leap day of a /400 year
            (4_107_542_400, "2100-03-01 Mon"), // 2100 is not a leap year
            (1_767_225_599, "2025-12-31 Wed"),
        ];
        for (secs, want) in cases {
            assert_eq!(render("%F %a", at(secs, 0)), want, "{secs}");
        }
        let before = UNIX_EPOCH - Duration::from_millis(1);
        assert_eq!(render("%F %T.%3f", before), "1969-12-31 23:59:59.999");
        for days in [-800_000, -1, 0, 59, 60, 365, 11_016, 2_932_896] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    #[test]
    fn refuses_what_it_would_print_differently() {
        for (format, needle) in [
            ("%Q", "`%Q` at position 0"),
            ("x %E3", "`%E3`"),
            ("%-d", "`%-`"),
            ("%", "`%`"),
            ("line%n", "newline"),
        ] {
            let err = TimeFormat::parse(format).unwrap_err();
            assert!(err.contains(needle), "{format}: {err}");
        }
    }
}
