//! RFC 3339 timestamps (`2026-11-22T17:20:18Z`) as GitHub writes them, from Unix time,
//! and the ISO 8601 timestamps GitHub accepts in queries (`since`, `until`).

/// Formats Unix seconds as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn iso8601(unix_secs: u64) -> String {
    let days = unix_secs / 86_400;
    let secs = unix_secs % 86_400;
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        (secs % 3600) / 60,
        secs % 60
    )
}

/// Unix seconds of an ISO 8601 timestamp: `YYYY-MM-DD`, or that followed by
/// `THH:MM[:SS[.fraction]]` and an optional `Z`, `±HH:MM` or `±HHMM` (no zone = UTC).
/// `None` if it is not one.
pub fn parse_iso8601(text: &str) -> Option<i64> {
    let (date, rest) = text.split_at_checked(10)?;
    let mut parts = date.split('-');
    let year: i64 = digits(parts.next()?, 4)?;
    let month: i64 = digits(parts.next()?, 2)?;
    let day: i64 = digits(parts.next()?, 2)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let secs = match rest.strip_prefix(['T', 't', ' ']) {
        None if rest.is_empty() => 0,
        None => return None,
        Some(time) => clock(time)?,
    };
    Some(days * 86_400 + secs)
}

/// `HH:MM[:SS[.fraction]][zone]` as seconds after midnight UTC.
fn clock(text: &str) -> Option<i64> {
    let zone_at = text.find(['Z', 'z', '+', '-']).unwrap_or(text.len());
    let (time, zone) = text.split_at_checked(zone_at)?;
    let time = time.split('.').next()?;
    let mut parts = time.split(':');
    let h: i64 = digits(parts.next()?, 2)?;
    let m: i64 = digits(parts.next()?, 2)?;
    let s: i64 = parts.next().map_or(Some(0), |s| digits(s, 2))?;
    if parts.next().is_some() || h > 23 || m > 59 || s > 60 {
        return None;
    }
    Some(h * 3600 + m * 60 + s - offset(zone)?)
}

/// A zone suffix as seconds east of UTC.
fn offset(zone: &str) -> Option<i64> {
    if zone.is_empty() || zone.eq_ignore_ascii_case("z") {
        return Some(0);
    }
    let (sign, hm) = zone.split_at_checked(1)?;
    let hm = hm.replace(':', "");
    let (h, m) = hm.split_at_checked(2)?;
    let secs = digits(h, 2)? * 3600 + digits(m, 2)? * 60;
    Some(if sign == "-" { -secs } else { secs })
}

/// Exactly `len` ASCII digits as a number.
fn digits(text: &str, len: usize) -> Option<i64> {
    (text.len() == len && text.bytes().all(|b| b.is_ascii_digit()))
        .then(|| text.parse().ok())
        .flatten()
}

/// Howard Hinnant's civil-to-days algorithm, the inverse of [`civil_from_days`].
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Howard Hinnant's days-to-civil algorithm (proleptic Gregorian calendar).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(1_795_364_418), "2026-11-22T16:20:18Z");
        assert_eq!(iso8601(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn parses_what_it_writes_and_github_query_forms() {
        for secs in [0, 951_782_400, 1_795_364_418, 4_102_444_799] {
            assert_eq!(parse_iso8601(&iso8601(secs)), Some(secs as i64));
        }
        assert_eq!(parse_iso8601("2000-02-29"), Some(951_782_400));
        assert_eq!(
            parse_iso8601("2000-02-29T02:00:00+02:00"),
            Some(951_782_400)
        );
        assert_eq!(
            parse_iso8601("2000-02-28T19:00:00.123-0500"),
            Some(951_782_400)
        );
        assert_eq!(parse_iso8601("2000-02-29T00:00"), Some(951_782_400));
        for bad in [
            "",
            "yesterday",
            "2000-13-01",
            "2000-02-29T25:00:00Z",
            "2000-02-29X",
            "2000-2-29",
            "2000-02-29T00:00:00+2",
        ] {
            assert_eq!(parse_iso8601(bad), None, "{bad}");
        }
    }
}
