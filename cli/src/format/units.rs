//! Human-readable sizes and durations, worded as docker's go-units prints
//! them (`4.26MB`, `2 days`, `About an hour`), and Go's `%g` they rest on.

use std::time::Duration;

const DECIMAL_UNITS: [&str; 9] = ["B", "kB", "MB", "GB", "TB", "PB", "EB", "ZB", "YB"];
const BINARY_UNITS: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];

fn scaled(size: f64, base: f64, units: &[&'static str]) -> (f64, &'static str) {
    let mut size = size;
    let mut i = 0;
    while size >= base && i < units.len() - 1 {
        size /= base;
        i += 1;
    }
    (size, units[i])
}

/// go-units `HumanSizeWithPrecision`: decimal units, `precision` significant
/// digits (`docker images` uses 3).
pub fn human_size_precision(size: f64, precision: usize) -> String {
    let (v, unit) = scaled(size, 1000.0, &DECIMAL_UNITS);
    format!("{}{unit}", format_float_g(v, Some(precision)))
}

/// go-units `HumanSize`: 4 significant digits.
pub fn human_size(size: f64) -> String {
    human_size_precision(size, 4)
}

/// go-units `BytesSize`: binary units, 4 significant digits (`docker info`'s
/// Total Memory).
pub fn bytes_size(size: f64) -> String {
    let (v, unit) = scaled(size, 1024.0, &BINARY_UNITS);
    format!("{}{unit}", format_float_g(v, Some(4)))
}

/// go-units `HumanDuration`, as `docker images` and `docker ps` word ages.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs_f64();
    let seconds = secs as i64;
    if seconds < 1 {
        return "Less than a second".into();
    }
    if seconds == 1 {
        return "1 second".into();
    }
    if seconds < 60 {
        return format!("{seconds} seconds");
    }
    let minutes = (secs / 60.0) as i64;
    if minutes == 1 {
        return "About a minute".into();
    }
    if minutes < 60 {
        return format!("{minutes} minutes");
    }
    // Hours are rounded, as go-units does with math.Round.
    let hours = (secs / 3600.0).round() as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    // The year count truncates the hours instead of rounding them.
    format!("{} years", (secs / 3600.0) as i64 / 24 / 365)
}

/// Go's `%g` (`precision` significant digits) or `%v` (`None`: shortest
/// representation) of a float: exponent form when the exponent is below -4
/// or at least the precision (6 for the shortest form), trailing zeros cut.
pub fn format_float_g(v: f64, precision: Option<usize>) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if !v.is_finite() {
        return if v.is_nan() {
            "NaN".into()
        } else if v > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    let sci = match precision {
        Some(p) => format!("{:.*e}", p.max(1) - 1, v),
        None => format!("{v:e}"),
    };
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(|c| c.is_ascii_digit()).collect();
    let digits = digits.trim_end_matches('0');
    let digits = if digits.is_empty() { "0" } else { digits };
    let nd = digits.len() as i32;
    let dp = exp + 1;
    let mut eprec = match precision {
        Some(p) => p.max(1) as i32,
        None => 6,
    };
    if precision.is_some() && eprec > nd && nd >= dp {
        eprec = nd;
    }
    let mut out = String::new();
    if negative {
        out.push('-');
    }
    if exp < -4 || exp >= eprec {
        out.push_str(&digits[..1]);
        if nd > 1 {
            out.push('.');
            out.push_str(&digits[1..]);
        }
        out.push('e');
        out.push(if exp < 0 { '-' } else { '+' });
        out.push_str(&format!("{:02}", exp.abs()));
    } else if dp <= 0 {
        out.push_str("0.");
        out.push_str(&"0".repeat((-dp) as usize));
        out.push_str(digits);
    } else if dp >= nd {
        out.push_str(digits);
        out.push_str(&"0".repeat((dp - nd) as usize));
    } else {
        out.push_str(&digits[..dp as usize]);
        out.push('.');
        out.push_str(&digits[dp as usize..]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_like_go_units() {
        let cases = [
            (0.0, 3, "0B"),
            (999.0, 3, "999B"),
            (1000.0, 3, "1kB"),
            (4_261_550.0, 3, "4.26MB"),
            (2_129_920.0, 3, "2.13MB"),
            (77_800_000.0, 3, "77.8MB"),
            (123_456_789.0, 3, "123MB"),
            (1_500_000_000.0, 3, "1.5GB"),
            // Go's %.3g switches to exponent form at 1000 after rounding.
            (999_600.0, 3, "1e+03kB"),
            (4_261_550.0, 4, "4.262MB"),
        ];
        for (size, prec, want) in cases {
            assert_eq!(human_size_precision(size, prec), want, "{size} with {prec}");
        }
        assert_eq!(human_size(1_048_576.0), "1.049MB");
        assert_eq!(bytes_size(2_097_152_000.0), "1.953GiB");
        assert_eq!(bytes_size(512.0), "512B");
    }

    #[test]
    fn durations_like_go_units() {
        let h = 3600;
        let cases = [
            (0, "Less than a second"),
            (1, "1 second"),
            (59, "59 seconds"),
            (60, "About a minute"),
            (119, "About a minute"),
            (120, "2 minutes"),
            (59 * 60, "59 minutes"),
            (60 * 60, "About an hour"),
            (90 * 60, "2 hours"),
            (47 * h, "47 hours"),
            (48 * h, "2 days"),
            (13 * 24 * h, "13 days"),
            (14 * 24 * h, "2 weeks"),
            (59 * 24 * h, "8 weeks"),
            (60 * 24 * h, "2 months"),
            (729 * 24 * h, "24 months"),
            (730 * 24 * h, "2 years"),
            // An image created at the Unix epoch, seen in late 2026.
            (1_795_000_000, "56 years"),
        ];
        for (secs, want) in cases {
            assert_eq!(human_duration(Duration::from_secs(secs)), want, "{secs}s");
        }
    }

    #[test]
    fn float_g_like_go() {
        let cases = [
            (1.5, None, "1.5"),
            (1e6, None, "1e+06"),
            (123456.0, None, "123456"),
            (0.0001, None, "0.0001"),
            (0.00001, None, "1e-05"),
            (100.0, Some(3), "100"),
            (1000.0, Some(3), "1e+03"),
            (4.2615, Some(3), "4.26"),
            (-2.5, Some(2), "-2.5"),
        ];
        for (v, p, want) in cases {
            assert_eq!(format_float_g(v, p), want, "{v} {p:?}");
        }
    }
}
