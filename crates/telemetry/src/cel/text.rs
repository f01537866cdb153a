//! Text forms of values: doubles as CEL's `string(double)` writes them, durations and
//! timestamps both ways (CEL duration strings like `1h30m`, RFC 3339 timestamps).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::EvalError;

/// The longest duration CEL allows: 10,000 years of 365.25 days, in seconds.
const MAX_DURATION_SECS: u64 = 315_576_000_000;

const NANOS_PER_SEC: u128 = 1_000_000_000;

/// A double as cel-go's `string(double)` writes it (Go's `%g`, shortest form): `1.5`,
/// `100000`, `1e+06`, `1e-05`, `NaN`, `+Inf`.
pub(super) fn format_double(d: f64) -> String {
    if d.is_nan() {
        return "NaN".to_owned();
    }
    if d.is_infinite() {
        return if d > 0.0 { "+Inf" } else { "-Inf" }.to_owned();
    }
    if d == 0.0 {
        return if d.is_sign_negative() { "-0" } else { "0" }.to_owned();
    }
    // Rust's `{:e}` gives the shortest digits that round-trip, like Go's shortest form.
    let scientific = format!("{d:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let (sign, mantissa) = match mantissa.strip_prefix('-') {
        Some(m) => ("-", m),
        None => ("", mantissa),
    };
    let digits: String = mantissa.chars().filter(|c| *c != '.').collect();
    let mut out = sign.to_owned();
    if !(-4..6).contains(&exponent) {
        out.push_str(&digits[..1]);
        if digits.len() > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        let exp_sign = if exponent < 0 { '-' } else { '+' };
        out.push_str(&format!("e{exp_sign}{:02}", exponent.unsigned_abs()));
    } else if exponent >= 0 {
        let int_len = exponent.unsigned_abs() as usize + 1;
        if digits.len() <= int_len {
            out.push_str(&digits);
            out.push_str(&"0".repeat(int_len - digits.len()));
        } else {
            out.push_str(&digits[..int_len]);
            out.push('.');
            out.push_str(&digits[int_len..]);
        }
    } else {
        out.push_str("0.");
        out.push_str(&"0".repeat(exponent.unsigned_abs() as usize - 1));
        out.push_str(&digits);
    }
    out
}

/// A duration as CEL's `string(duration)` writes it: seconds with the fraction they need,
/// `1.5s`, `0.000001s`, `3600s`.
pub(super) fn format_duration(d: Duration) -> String {
    let secs = d.as_secs();
    match d.subsec_nanos() {
        0 => format!("{secs}s"),
        nanos => {
            let fraction = format!("{nanos:09}");
            format!("{secs}.{}s", fraction.trim_end_matches('0'))
        }
    }
}

/// Parses a CEL (Go) duration string: a sequence of decimal numbers, each with an optional
/// fraction and a unit (`h`, `m`, `s`, `ms`, `us` or `µs`, `ns`), e.g. `1h30m`, `1.5s`,
/// `250ms`; `0` alone is zero too. Negative durations and durations over CEL's 10,000 years
/// are invalid arguments.
pub(super) fn parse_duration(s: &str) -> Result<Duration, EvalError> {
    let invalid = |why: &str| EvalError::InvalidArgument(format!("invalid duration '{s}': {why}"));
    let (negative, mut rest) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Ok(Duration::ZERO);
    }
    if rest.is_empty() {
        return Err(invalid("no number"));
    }
    let not_digit = |c: char| !c.is_ascii_digit();
    let max_nanos = u128::from(MAX_DURATION_SECS + 1) * NANOS_PER_SEC - 1;
    let mut total: u128 = 0;
    while !rest.is_empty() {
        let (int_digits, after) = rest.split_at(rest.find(not_digit).unwrap_or(rest.len()));
        let (frac_digits, after) = match after.strip_prefix('.') {
            Some(after) => after.split_at(after.find(not_digit).unwrap_or(after.len())),
            None => ("", after),
        };
        if int_digits.is_empty() && frac_digits.is_empty() {
            return Err(invalid("expected a number"));
        }
        let unit_len = after
            .find(|c: char| c == '.' || c.is_ascii_digit())
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let unit_nanos: u128 = match unit {
            "ns" => 1,
            "us" | "µs" | "μs" => 1_000,
            "ms" => 1_000_000,
            "s" => NANOS_PER_SEC,
            "m" => 60 * NANOS_PER_SEC,
            "h" => 3600 * NANOS_PER_SEC,
            "" => return Err(invalid("missing unit (h, m, s, ms, us or ns)")),
            _ => return Err(invalid(&format!("unknown unit '{unit}'"))),
        };
        // Over 20 integer digits is out of range whatever the unit; past 18 fraction digits
        // nothing is left at nanosecond precision.
        if int_digits.len() > 20 {
            return Err(invalid("out of range"));
        }
        let frac_digits = &frac_digits[..frac_digits.len().min(18)];
        let int: u128 = int_digits.parse().unwrap_or(0);
        let frac: u128 = frac_digits.parse().unwrap_or(0);
        let scale = 10u128.pow(frac_digits.len() as u32);
        total = int
            .checked_mul(unit_nanos)
            .and_then(|n| n.checked_add(frac * unit_nanos / scale))
            .and_then(|n| n.checked_add(total))
            .filter(|n| *n <= max_nanos)
            .ok_or_else(|| invalid("out of range"))?;
        rest = after;
    }
    if negative && total != 0 {
        return Err(EvalError::InvalidArgument(format!(
            "invalid duration '{s}': negative durations are not supported"
        )));
    }
    let secs = u64::try_from(total / NANOS_PER_SEC).map_err(|_| invalid("out of range"))?;
    Ok(Duration::new(secs, (total % NANOS_PER_SEC) as u32))
}

/// A timestamp as CEL's `string(timestamp)` writes it: RFC 3339 in UTC with the fraction of a
/// second it needs, `2024-01-01T00:00:00Z`, `2024-01-01T00:00:00.25Z`.
pub(super) fn format_timestamp(t: SystemTime) -> String {
    let (secs, nanos) = unix_parts(t);
    let (year, month, day) = civil_from_days(secs.div_euclid(86_400));
    let second_of_day = secs.rem_euclid(86_400);
    let mut out = format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}",
        second_of_day / 3600,
        second_of_day % 3600 / 60,
        second_of_day % 60
    );
    if nanos != 0 {
        let fraction = format!("{nanos:09}");
        out.push('.');
        out.push_str(fraction.trim_end_matches('0'));
    }
    out.push('Z');
    out
}

/// Parses an RFC 3339 timestamp: `YYYY-MM-DDTHH:MM:SS`, an optional fraction of a second,
/// and `Z` or a `±HH:MM` offset. Years 0001 to 9999, as CEL allows.
pub(super) fn parse_timestamp(s: &str) -> Result<SystemTime, EvalError> {
    let invalid = || {
        EvalError::InvalidArgument(format!(
            "invalid timestamp '{s}' (expected RFC 3339, like 2024-01-01T00:00:00Z)"
        ))
    };
    let b = s.as_bytes();
    let number = |from: usize, len: usize| -> Result<i64, EvalError> {
        let digits = b.get(from..from + len).ok_or_else(invalid)?;
        digits.iter().try_fold(0i64, |n, d| {
            d.is_ascii_digit()
                .then(|| n * 10 + i64::from(d - b'0'))
                .ok_or_else(invalid)
        })
    };
    let expect = |at: usize, options: &[u8]| -> Result<(), EvalError> {
        b.get(at)
            .filter(|c| options.contains(c))
            .map(|_| ())
            .ok_or_else(invalid)
    };
    let year = number(0, 4)?;
    expect(4, b"-")?;
    let month = number(5, 2)?;
    expect(7, b"-")?;
    let day = number(8, 2)?;
    expect(10, b"Tt")?;
    let hour = number(11, 2)?;
    expect(13, b":")?;
    let minute = number(14, 2)?;
    expect(16, b":")?;
    let second = number(17, 2)?;
    let mut at = 19;
    let mut nanos: u32 = 0;
    if b.get(at) == Some(&b'.') {
        at += 1;
        let digits = b[at..].iter().take_while(|c| c.is_ascii_digit()).count();
        if digits == 0 {
            return Err(invalid());
        }
        for (i, d) in b[at..at + digits].iter().take(9).enumerate() {
            nanos += u32::from(d - b'0') * 10u32.pow(8 - i as u32);
        }
        at += digits;
    }
    let offset = match b.get(at) {
        Some(b'Z' | b'z') if b.len() == at + 1 => 0,
        Some(sign @ (b'+' | b'-')) if b.len() == at + 6 => {
            expect(at + 3, b":")?;
            let (hours, minutes) = (number(at + 1, 2)?, number(at + 4, 2)?);
            if hours > 23 || minutes > 59 {
                return Err(invalid());
            }
            let offset = hours * 3600 + minutes * 60;
            if *sign == b'-' {
                -offset
            } else {
                offset
            }
        }
        _ => return Err(invalid()),
    };
    let valid = (1..=9999).contains(&year)
        && (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour <= 23
        && minute <= 59
        && second <= 59;
    if !valid {
        return Err(invalid());
    }
    let secs =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second - offset;
    system_time(secs, nanos).ok_or(EvalError::Overflow)
}

/// The time `secs` seconds and `nanos` nanoseconds after the Unix epoch (`secs` may be
/// negative); `None` when the system cannot represent it.
pub(super) fn system_time(secs: i64, nanos: u32) -> Option<SystemTime> {
    let whole = if secs >= 0 {
        UNIX_EPOCH.checked_add(Duration::from_secs(secs.unsigned_abs()))
    } else {
        UNIX_EPOCH.checked_sub(Duration::from_secs(secs.unsigned_abs()))
    };
    whole?.checked_add(Duration::from_nanos(u64::from(nanos)))
}

/// Seconds since the Unix epoch (rounded down, so negative before it) and nanoseconds.
pub(super) fn unix_parts(t: SystemTime) -> (i64, u32) {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => (
            i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            d.subsec_nanos(),
        ),
        Err(before) => {
            let d = before.duration();
            let secs = i64::try_from(d.as_secs()).unwrap_or(i64::MAX);
            match d.subsec_nanos() {
                0 => (-secs, 0),
                nanos => (-secs - 1, 1_000_000_000 - nanos),
            }
        }
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year.rem_euclid(400);
    let month_from_march = (month + 9) % 12;
    let day_of_year = (153 * month_from_march + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian date `days` days after 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_from_march + 2) / 5 + 1;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    };
    let year = era * 400 + year_of_era + i64::from(month <= 2);
    (year, month as u32, day as u32)
}
