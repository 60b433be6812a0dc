//! Wall-clock helpers. Only the IO edges call `now_ms`; pure code takes time
//! as an argument.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// RFC 3339 in UTC, seconds precision; empty for 0 (never).
pub fn format_ms(ms: i64) -> String {
    if ms <= 0 {
        return String::new();
    }
    let t = UNIX_EPOCH + Duration::from_millis(ms as u64);
    humantime::format_rfc3339_seconds(t).to_string()
}

/// "3m ago" style age for tables; `now_ms` is passed in so this stays pure.
pub fn format_age(ms: i64, now_ms: i64) -> String {
    if ms <= 0 {
        return "never".into();
    }
    let secs = (now_ms - ms).max(0) / 1000;
    match secs {
        0..60 => format!("{secs}s ago"),
        60..3600 => format!("{}m ago", secs / 60),
        3600..86400 => format!("{}h ago", secs / 3600),
        _ => format!("{}d ago", secs / 86400),
    }
}

/// Parses "30s", "5m", "1h30m" (humantime) into a Duration.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    humantime::parse_duration(s)
        .map_err(|e| format!("invalid duration {s:?}: {e} (try 30s, 5m, 1h)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_naturally() {
        let now = 10_000_000;
        assert_eq!(format_age(now - 5_000, now), "5s ago");
        assert_eq!(format_age(now - 120_000, now), "2m ago");
        assert_eq!(format_age(now - 7_200_000, now), "2h ago");
        assert_eq!(format_age(0, now), "never");
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("ten").unwrap_err().contains("try 30s"));
    }
}
