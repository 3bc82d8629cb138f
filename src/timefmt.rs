//! Timestamps for people and for JSON: RFC 3339 in UTC, short ages ("3d", "5h"), and
//! durations typed by people ("15m"). Depends on nothing else in the crate.

/// Seconds since the Unix epoch (UTC).
pub type Timestamp = i64;

/// `2026-11-29T01:53:00Z` for a Unix timestamp in seconds.
pub fn rfc3339(ts: Timestamp) -> String {
    let days = ts.div_euclid(86_400);
    let secs = ts.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// `2026-11-30T14:00:00.000Z` (also with an offset, `+0000`, `-05:00`, or no zone: UTC), as
/// Salesforce writes dates, as Unix seconds; anything else is `None`.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 19 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| text.get(r)?.parse::<i64>().ok();
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    let rest = text[19..].trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    // The zone: Z, nothing (UTC), or +HHMM / -HH:MM.
    let offset = match rest {
        "Z" | "" => 0,
        zone => {
            let sign = match zone.as_bytes()[0] {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits: String = zone[1..].chars().filter(|c| *c != ':').collect();
            if digits.len() != 4 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let (h, m) = (
                digits[..2].parse::<i64>().ok()?,
                digits[2..].parse::<i64>().ok()?,
            );
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 3600 + m * 60)
        }
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss - offset)
}

/// A compact age: `45s`, `12m`, `5h`, `3d`, `2y`.
pub fn age(now: Timestamp, then: Timestamp) -> String {
    let secs = (now - then).max(0);
    match secs {
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => format!("{}m", s / 60),
        s if s < 86_400 => format!("{}h", s / 3600),
        s if s < 2 * 365 * 86_400 => format!("{}d", s / 86_400),
        s => format!("{}y", s / (365 * 86_400)),
    }
}

/// Whole days between two timestamps (never negative).
pub fn age_days(now: Timestamp, then: Timestamp) -> i64 {
    (now - then).max(0) / 86_400
}

/// The longest duration accepted anywhere: ten years (keeps every `Instant + Duration` and
/// timestamp addition far from overflow).
pub const MAX_DURATION_SECS: u64 = 10 * 365 * 86_400;

/// Parse a duration: `90` (seconds), `30s`, `15m`, `2h`, `7d`, or a sum such as `1h30m`; at
/// most ten years.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let d = parse_duration_unbounded(text)?;
    if d.as_secs() > MAX_DURATION_SECS {
        return Err(format!("{text:?} is longer than ten years"));
    }
    Ok(d)
}

fn parse_duration_unbounded(text: &str) -> Result<std::time::Duration, String> {
    let err = || format!("{text:?} is not a duration like 30s, 15m, 2h, 1h30m or 7d");
    if text.is_empty() {
        return Err(err());
    }
    if let Ok(secs) = text.parse::<u64>() {
        return Ok(std::time::Duration::from_secs(secs));
    }
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(err()),
        };
        let n: u64 = digits.parse().map_err(|_| err())?;
        total = n
            .checked_mul(unit)
            .and_then(|v| total.checked_add(v))
            .ok_or_else(err)?;
        digits.clear();
    }
    if !digits.is_empty() {
        return Err(err());
    }
    Ok(std::time::Duration::from_secs(total))
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salesforce_dates() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00.000Z"), Some(0));
        assert_eq!(
            parse_rfc3339("2026-11-30T14:00:00.000Z"),
            Some(1_796_047_200)
        );
        assert_eq!(
            parse_rfc3339("2026-11-30T14:00:00+0000"),
            Some(1_796_047_200)
        );
        assert_eq!(parse_rfc3339(&rfc3339(1_796_047_200)), Some(1_796_047_200));
        assert_eq!(
            parse_rfc3339("2026-11-30T15:00:00+01:00"),
            Some(1_796_047_200)
        );
        assert_eq!(
            parse_rfc3339("2026-11-30T09:00:00.5-0500"),
            Some(1_796_047_200)
        );
        for bad in [
            "",
            "2026-11-30",
            "2026-13-01T00:00:00Z",
            "2026-11-30T14:00:00+2500",
            "x026-11-30T14:00:00Z",
        ] {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
    }

    #[test]
    fn known_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_764_370_000), "2025-11-28T22:46:40Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59Z");
    }

    #[test]
    fn durations() {
        let secs = |t: &str| parse_duration(t).map(|d| d.as_secs());
        assert_eq!(secs("0"), Ok(0));
        assert_eq!(secs("90"), Ok(90));
        assert_eq!(secs("15m"), Ok(900));
        assert_eq!(secs("1h30m"), Ok(5400));
        assert_eq!(secs("7d"), Ok(604_800));
        for bad in [
            "",
            "m",
            "5x",
            "1h5",
            "-1",
            "99999999999999999999d",
            "9223372036854775807",
            "3651d",
        ] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ages() {
        assert_eq!(age(100, 100), "0s");
        assert_eq!(age(86_400 * 3 + 5, 0), "3d");
        assert_eq!(age_days(86_400 * 3 + 5, 0), 3);
    }
}
