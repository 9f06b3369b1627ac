//! Durations as job files, the command line and messages write them: `90s`, `15m`, `6h`, `1d`,
//! `2w`, and `250ms` for delays.

use std::time::Duration;

/// `90s`, `15m`, `6h`, `1d`, `2w`: a page length or look-back. `None` for anything else,
/// including overflow; zero (`0s`) is a duration, callers that need a positive one check.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let unit_at = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(unit_at);
    if digits.is_empty() {
        return None;
    }
    let amount: u64 = digits.parse().ok()?;
    let unit_secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        "w" => 7 * 86_400,
        _ => return None,
    };
    amount.checked_mul(unit_secs).map(Duration::from_secs)
}

/// `250ms`, `2s`, `5m`: a retry delay or a simulated latency. What [`parse_duration`] reads, plus
/// milliseconds, which a page length or look-back never needs but a retry delay does.
pub fn parse_delay(text: &str) -> Option<Duration> {
    match text.strip_suffix("ms") {
        Some(digits) if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) => {
            digits.parse().ok().map(Duration::from_millis)
        }
        Some(_) => None,
        None => parse_duration(text),
    }
}

/// The largest whole unit up to days that divides `d`: `90s`, `15m`, `6h`, `7d`; parses back
/// with [`parse_duration`] (sub-second parts are dropped).
pub fn format_duration(d: Duration) -> String {
    let s = d.as_secs();
    [(86_400, "d"), (3_600, "h"), (60, "m")]
        .into_iter()
        .find(|(unit, _)| s > 0 && s.is_multiple_of(*unit))
        .map(|(unit, name)| format!("{}{name}", s / unit))
        .unwrap_or_else(|| format!("{s}s"))
}
