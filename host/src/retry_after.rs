//! `Retry-After` (RFC 9110 §10.2.3).

use std::time::SystemTime;

/// `Retry-After` as delay-seconds or an HTTP-date, in milliseconds from `wall_now` (a
/// date in the past is 0). `None` for anything else. The core caps it at
/// `max_backoff_ms` (rule 10), so a hostile value cannot freeze the app.
pub fn retry_after_ms(value: &str, wall_now: SystemTime) -> Option<u64> {
    let text = value.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        // Delay-seconds; more digits than a u64 holds is "a very long time".
        return Some(text.parse::<u64>().unwrap_or(u64::MAX).saturating_mul(1000));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(
        at.duration_since(wall_now)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn seconds_or_a_date() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(retry_after_ms("3", now), Some(3_000));
        assert_eq!(retry_after_ms(" 120 ", now), Some(120_000));
        assert_eq!(
            retry_after_ms("99999999999999999999999", now),
            Some(u64::MAX)
        );
        // RFC 9110 §10.2.3's own example date, and one 7 s ahead.
        assert_eq!(
            retry_after_ms("Fri, 31 Dec 1999 23:59:59 GMT", now),
            Some(0)
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(7));
        assert_eq!(retry_after_ms(&later, now), Some(7_000));
        for bad in ["", "soon", "-1", "1.5", "+3", "0x10"] {
            assert_eq!(retry_after_ms(bad, now), None, "{bad:?}");
        }
    }
}
