//! `docker logs`: the log the gateway keeps of a container's init process.

use berth_proto::berth::v1::logs_client::LogsClient;
use berth_proto::berth::v1::{LogStream, LogsRequest};
use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeZone, Utc};
use tokio::io::AsyncWriteExt;

use crate::cli::LogsArgs;
use crate::client::Gateway;
use crate::containers::{self, daemon_error};
use crate::error::{CliError, Result};

/// `--tail`: `all` (or a negative number) is everything.
fn parse_tail(tail: &str) -> Result<i64> {
    if tail == "all" {
        return Ok(-1);
    }
    let n: i64 = tail.parse().map_err(|_| {
        CliError::general(format!(
            "Error response from daemon: invalid value for \"tail\": strconv.Atoi: parsing \"{tail}\": invalid syntax"
        ))
    })?;
    Ok(if n < 0 { -1 } else { n })
}

/// Go's `time.ParseDuration`: `1h30m`, `1.5s`, `-5m`, `300ms`.
pub fn parse_go_duration(s: &str) -> Option<chrono::Duration> {
    let (neg, mut rest) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    if rest == "0" {
        return Some(chrono::Duration::zero());
    }
    if rest.is_empty() {
        return None;
    }
    let mut nanos: f64 = 0.0;
    while !rest.is_empty() {
        let num_end = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        if num_end == 0 {
            return None;
        }
        let value: f64 = rest[..num_end].parse().ok()?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" | "μs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return None,
        };
        rest = &rest[unit_end..];
        nanos += value * unit;
    }
    let d = chrono::Duration::nanoseconds(nanos as i64);
    Some(if neg { -d } else { d })
}

/// docker's `--since`/`--until` values: a Go duration before `now`, an
/// RFC 3339 time (local when it names no zone), a date, or Unix seconds.
/// Returns Unix nanoseconds.
pub fn parse_time(value: &str, now: DateTime<Utc>) -> Result<i64> {
    let invalid = || {
        CliError::general(format!(
            "failed to parse value as time or duration: \"{value}\""
        ))
    };
    let nanos = |t: DateTime<Utc>| t.timestamp_nanos_opt().ok_or_else(invalid);
    if value != "0" {
        if let Some(d) = parse_go_duration(value) {
            return nanos(now - d);
        }
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(value) {
        return nanos(t.with_timezone(&Utc));
    }
    let local = |n: NaiveDateTime| {
        Local
            .from_local_datetime(&n)
            .earliest()
            .map(|t| t.with_timezone(&Utc))
    };
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(n) = NaiveDateTime::parse_from_str(value, fmt) {
            return nanos(local(n).ok_or_else(invalid)?);
        }
    }
    if let Some(hour) = value
        .split_once('T')
        .filter(|(_, h)| h.len() <= 2 && !h.is_empty())
    {
        if let (Ok(d), Ok(h)) = (
            NaiveDate::parse_from_str(hour.0, "%Y-%m-%d"),
            hour.1.parse::<u32>(),
        ) {
            let n = d.and_hms_opt(h, 0, 0).ok_or_else(invalid)?;
            return nanos(local(n).ok_or_else(invalid)?);
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(value, "%Y-%m-%d") {
        return nanos(local(d.and_hms_opt(0, 0, 0).ok_or_else(invalid)?).ok_or_else(invalid)?);
    }
    if value.contains('-') {
        return Err(invalid());
    }
    // Unix seconds with an optional fraction.
    let (secs, frac) = value.split_once('.').unwrap_or((value, ""));
    let secs: i64 = secs.parse().map_err(|_| invalid())?;
    if frac.len() > 9 || !frac.chars().all(|c| c.is_ascii_digit()) {
        return Err(invalid());
    }
    let frac: i64 = if frac.is_empty() {
        0
    } else {
        format!("{frac:0<9}").parse().map_err(|_| invalid())?
    };
    secs.checked_mul(1_000_000_000)
        .and_then(|s| s.checked_add(frac))
        .ok_or_else(invalid)
}

/// docker's `--timestamps` form: RFC 3339 with nine fraction digits, UTC.
fn timestamp(nanos: i64) -> String {
    let t = DateTime::from_timestamp(
        nanos.div_euclid(1_000_000_000),
        nanos.rem_euclid(1_000_000_000) as u32,
    )
    .unwrap_or_default();
    t.format("%Y-%m-%dT%H:%M:%S%.9fZ").to_string()
}

/// Prefixes every line that starts in `data` with `stamp`; `at_start`
/// carries over whether the previous chunk ended a line.
fn stamp_lines(data: &[u8], stamp: &str, at_start: &mut bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + stamp.len() + 1);
    for &b in data {
        if *at_start {
            out.extend_from_slice(stamp.as_bytes());
            out.push(b' ');
            *at_start = false;
        }
        out.push(b);
        if b == b'\n' {
            *at_start = true;
        }
    }
    out
}

pub async fn logs(gw: &Gateway, a: LogsArgs) -> Result<i32> {
    let (c, _) = containers::find(gw, &a.container).await?;
    let now = Utc::now();
    let since = a
        .since
        .as_deref()
        .map(|s| parse_time(s, now))
        .transpose()?
        .unwrap_or(0);
    let until = a
        .until
        .as_deref()
        .map(|s| parse_time(s, now))
        .transpose()?
        .unwrap_or(0);
    let req = LogsRequest {
        container_id: c.id.clone(),
        follow: a.follow,
        tail: parse_tail(&a.tail)?,
        since,
        until,
    };
    let mut entries = LogsClient::new(gw.channel.clone())
        .read(req)
        .await
        .map_err(|s| daemon_error(&s))?
        .into_inner();
    let (mut stdout, mut stderr) = (tokio::io::stdout(), tokio::io::stderr());
    let mut at_start = [true, true];
    // `--details` adds log attributes; berth's log keeps none, so it prints the same.
    while let Some(entry) = entries.message().await.map_err(|s| daemon_error(&s))? {
        let is_err = entry.stream == LogStream::Stderr as i32;
        let data = if a.timestamps {
            stamp_lines(
                &entry.data,
                &timestamp(entry.time),
                &mut at_start[is_err as usize],
            )
        } else {
            entry.data
        };
        let out: &mut (dyn tokio::io::AsyncWrite + Unpin + Send) =
            if is_err { &mut stderr } else { &mut stdout };
        out.write_all(&data).await?;
        out.flush().await?;
    }
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_values() {
        assert_eq!(parse_tail("all").unwrap(), -1);
        assert_eq!(parse_tail("5").unwrap(), 5);
        assert_eq!(parse_tail("-3").unwrap(), -1);
        assert!(parse_tail("x").is_err());
    }

    #[test]
    fn go_durations() {
        assert_eq!(
            parse_go_duration("42m"),
            Some(chrono::Duration::minutes(42))
        );
        assert_eq!(
            parse_go_duration("1h30m"),
            Some(chrono::Duration::minutes(90))
        );
        assert_eq!(
            parse_go_duration("1.5s"),
            Some(chrono::Duration::milliseconds(1500))
        );
        assert_eq!(
            parse_go_duration("-5s"),
            Some(chrono::Duration::seconds(-5))
        );
        assert_eq!(parse_go_duration("10"), None);
        assert_eq!(parse_go_duration("5d"), None);
    }

    #[test]
    fn since_and_until_values() {
        let now = DateTime::parse_from_rfc3339("2024-05-01T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let at = |s: &str| {
            DateTime::parse_from_rfc3339(s)
                .unwrap()
                .timestamp_nanos_opt()
                .unwrap()
        };
        assert_eq!(parse_time("10m", now).unwrap(), at("2024-05-01T11:50:00Z"));
        assert_eq!(
            parse_time("2024-05-01T10:00:00Z", now).unwrap(),
            at("2024-05-01T10:00:00Z")
        );
        assert_eq!(
            parse_time("2024-05-01T10:00:00.5+02:00", now).unwrap(),
            at("2024-05-01T08:00:00.5Z")
        );
        assert_eq!(
            parse_time("1714557600", now).unwrap(),
            at("2024-05-01T10:00:00Z")
        );
        assert_eq!(
            parse_time("1714557600.25", now).unwrap(),
            at("2024-05-01T10:00:00.25Z")
        );
        assert_eq!(parse_time("0", now).unwrap(), 0);
        let local = Local
            .with_ymd_and_hms(2024, 5, 1, 10, 0, 0)
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(
            parse_time("2024-05-01T10:00:00", now).unwrap(),
            local.timestamp_nanos_opt().unwrap()
        );
        assert_eq!(
            parse_time("2024-05-01T10", now).unwrap(),
            local.timestamp_nanos_opt().unwrap()
        );
        assert!(parse_time("yesterday", now).is_err());
        assert!(parse_time("2024-13-01", now).is_err());
    }

    #[test]
    fn timestamps_prefix_each_line() {
        let ts = timestamp(1_714_557_600_123_000_000);
        assert_eq!(ts, "2024-05-01T10:00:00.123000000Z");
        let mut at_start = true;
        let a = stamp_lines(b"one\ntw", "T", &mut at_start);
        let b = stamp_lines(b"o\nthree\n", "T", &mut at_start);
        assert_eq!(
            String::from_utf8([a, b].concat()).unwrap(),
            "T one\nT two\nT three\n"
        );
        assert!(at_start);
    }
}
