//! Timestamps as Go prints them in docker's output.

use chrono::{DateTime, FixedOffset, Local, SecondsFormat, TimeZone, Utc};

/// Parses an RFC 3339 time as found in image configs.
pub fn parse_rfc3339(s: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(s).ok()
}

/// A protobuf timestamp as a UTC time.
pub fn from_timestamp(ts: &prost_types::Timestamp) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp(ts.seconds, ts.nanos.max(0) as u32)
}

/// Go's `time.RFC3339Nano`: fractional seconds without trailing zeros, `Z`
/// for UTC.
pub fn rfc3339_nano<Tz: TimeZone>(t: &DateTime<Tz>) -> String
where
    Tz::Offset: std::fmt::Display,
{
    let fixed = t.fixed_offset();
    let base = fixed.to_rfc3339_opts(SecondsFormat::Nanos, true);
    // chrono writes nine digits; Go drops trailing zeros (and the dot).
    let (head, offset) = match base.rfind(['Z', '+', '-']) {
        Some(i) if i > 19 => base.split_at(i),
        _ => (base.as_str(), ""),
    };
    let head = match head.split_once('.') {
        Some((secs, frac)) => {
            let frac = frac.trim_end_matches('0');
            if frac.is_empty() {
                secs.to_string()
            } else {
                format!("{secs}.{frac}")
            }
        }
        None => head.to_string(),
    };
    format!("{head}{offset}")
}

/// Go's `time.Time.String()` in the local zone, as `docker images` prints
/// `CreatedAt`: `2024-01-01 00:00:00 +0000 UTC`.
pub fn go_time_string(unix_secs: i64) -> String {
    let Some(t) = Local.timestamp_opt(unix_secs, 0).single() else {
        return String::new();
    };
    let offset = t.format("%z").to_string();
    // chrono knows no zone abbreviations; Go prints the offset when it has
    // none, and UTC by name.
    let zone = if offset == "+0000" {
        "UTC".to_string()
    } else {
        offset.clone()
    };
    format!("{} {offset} {zone}", t.format("%Y-%m-%d %H:%M:%S"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_nano_like_go() {
        let t = parse_rfc3339("2024-01-01T00:00:00Z").unwrap();
        assert_eq!(rfc3339_nano(&t), "2024-01-01T00:00:00Z");
        let t = parse_rfc3339("2023-07-18T23:19:33.655005962Z").unwrap();
        assert_eq!(rfc3339_nano(&t), "2023-07-18T23:19:33.655005962Z");
        let t = parse_rfc3339("2023-07-18T23:19:33.5+02:00").unwrap();
        assert_eq!(rfc3339_nano(&t), "2023-07-18T23:19:33.5+02:00");
        let ts = prost_types::Timestamp {
            seconds: 1_704_067_200,
            nanos: 120_000_000,
        };
        assert_eq!(
            rfc3339_nano(&from_timestamp(&ts).unwrap()),
            "2024-01-01T00:00:00.12Z"
        );
    }
}
