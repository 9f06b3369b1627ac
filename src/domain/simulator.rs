//! What a job file and the simulator agree on: the metrics endpoint's dialect, the simulated user
//! whose metrics token a job fetches by default, and the `faults` spec (its syntax and what each
//! fault does on the wire are in the simulator's `faults` module). Parsing only; the simulator
//! draws and serves the faults.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::Deserialize;

use super::duration::parse_delay;

/// The login of the simulated user whose metrics token a job fetches when it names none.
pub const METRICS_USER: &str = "vscope-reader";

/// The dialect of the metrics endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    /// OVH's Metrics Data Platform proxy (`reference/opentsdb.md`, "OVH's endpoint").
    #[default]
    Ovh,
    /// Stock OpenTSDB 2.x.
    Opentsdb,
}

/// Rates are kept in parts per million, so that a spec compares exactly (and `SimConfig` stays
/// `Eq`) and a draw is an integer comparison.
pub(crate) const PER_MILLION: u32 = 1_000_000;

/// `Retry-After` of a 429 when the spec gives none: short, because tests wait for it.
const DEFAULT_RETRY_AFTER_SECS: u32 = 1;

/// What one faulty answer does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultKind {
    /// A 5xx answer.
    ServerError,
    /// 429 with `Retry-After` in seconds.
    TooManyRequests { retry_after_secs: u32 },
    /// The connection is dropped before the body.
    Reset,
    /// The real body, cut short (OpenTSDB only).
    Truncate,
    /// The real answer after this delay.
    Slow(Duration),
    /// A 200 whose body is not JSON (OpenTSDB only).
    InvalidJson,
}

/// A parsed `faults` spec; see the module documentation for the syntax. In a job file it is the
/// string `[source.simulator] faults`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Faults {
    /// `/api/query` faults with their rates (parts per million), in spec order.
    pub query: Vec<(FaultKind, u32)>,
    /// APIv6 faults with their rates (parts per million), in spec order.
    pub apiv6: Vec<(FaultKind, u32)>,
    /// A point cap lower than the simulator's `point_cap`.
    pub cap: Option<u64>,
    /// Seeds the schedule; `None`: the simulator's seed.
    pub seed: Option<u64>,
}

/// A `faults` spec that cannot be read; names the item at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FaultSpecError {
    #[error("fault `{item}`: {reason}")]
    Item { item: String, reason: String },
    #[error("the {api} fault rates add up to {total}, more than 1")]
    Total { api: &'static str, total: String },
}

impl Faults {
    /// Whether the spec injects anything at all.
    pub fn is_none(&self) -> bool {
        self == &Faults::default()
    }
}

impl FromStr for Faults {
    type Err = FaultSpecError;

    fn from_str(spec: &str) -> Result<Faults, FaultSpecError> {
        let mut faults = Faults::default();
        let mut seen: Vec<String> = Vec::new();
        for item in spec.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let bad = |reason: &str| FaultSpecError::Item {
                item: item.to_string(),
                reason: reason.to_string(),
            };
            let (name, value) = item
                .split_once('=')
                .map(|(n, v)| (n.trim(), v.trim()))
                .ok_or_else(|| bad("expected kind=rate, e.g. 5xx=0.2"))?;
            if seen.iter().any(|s| s == name) {
                return Err(bad("given twice"));
            }
            seen.push(name.to_string());
            let (apiv6, kind) = match name.strip_prefix("apiv6-") {
                Some(kind) => (true, kind),
                None => (false, name),
            };
            let (rate, param) = match value.split_once(':') {
                Some((r, p)) => (r.trim(), Some(p.trim())),
                None => (value, None),
            };
            let fault = match (name, kind) {
                ("cap", _) => {
                    let cap = parse_count(value)
                        .filter(|c| *c > 0)
                        .ok_or_else(|| bad("the cap is a positive number of points"))?;
                    faults.cap = Some(cap);
                    continue;
                }
                ("seed", _) => {
                    faults.seed = Some(
                        parse_count(value)
                            .ok_or_else(|| bad("the seed is a non-negative integer"))?,
                    );
                    continue;
                }
                (_, "5xx") => no_param(param, FaultKind::ServerError).map_err(|r| bad(&r))?,
                (_, "429") => FaultKind::TooManyRequests {
                    retry_after_secs: match param {
                        None => DEFAULT_RETRY_AFTER_SECS,
                        Some(p) => parse_seconds(p)
                            .ok_or_else(|| bad("Retry-After is whole seconds, e.g. 429=0.1:2s"))?,
                    },
                },
                (_, "reset") => no_param(param, FaultKind::Reset).map_err(|r| bad(&r))?,
                (_, "slow") => {
                    let delay = param
                        .and_then(parse_delay)
                        .ok_or_else(|| bad("slow needs a delay, e.g. slow=0.1:200ms"))?;
                    FaultKind::Slow(delay)
                }
                ("truncate", _) => no_param(param, FaultKind::Truncate).map_err(|r| bad(&r))?,
                ("invalid-json", _) => {
                    no_param(param, FaultKind::InvalidJson).map_err(|r| bad(&r))?
                }
                _ => {
                    return Err(bad(
                        "unknown kind; use 5xx, 429, reset, truncate, slow, invalid-json, cap, \
                         apiv6-5xx, apiv6-429, apiv6-reset, apiv6-slow or seed",
                    ))
                }
            };
            let rate =
                parse_rate(rate).ok_or_else(|| bad("the rate is 0 to 1 (0.2) or 0% to 100%"))?;
            if apiv6 {
                faults.apiv6.push((fault, rate));
            } else {
                faults.query.push((fault, rate));
            }
        }
        for (api, list) in [("/api/query", &faults.query), ("APIv6", &faults.apiv6)] {
            let total: u32 = list.iter().map(|(_, r)| r).sum();
            if total > PER_MILLION {
                return Err(FaultSpecError::Total {
                    api,
                    total: format_rate(total),
                });
            }
        }
        Ok(faults)
    }
}

fn no_param(param: Option<&str>, kind: FaultKind) -> Result<FaultKind, String> {
    match param {
        None => Ok(kind),
        Some(p) => Err(format!("takes no parameter, but was given `{p}`")),
    }
}

/// `0.25`, `1`, `25%` → parts per million.
fn parse_rate(text: &str) -> Option<u32> {
    let (number, scale) = match text.strip_suffix('%') {
        Some(n) => (n.trim(), 100.0),
        None => (text, 1.0),
    };
    if number.is_empty() || !number.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return None;
    }
    let fraction = number.parse::<f64>().ok()? / scale;
    (0.0..=1.0)
        .contains(&fraction)
        .then(|| (fraction * f64::from(PER_MILLION)).round() as u32)
}

fn format_rate(ppm: u32) -> String {
    let text = format!("{:.6}", f64::from(ppm) / f64::from(PER_MILLION));
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// `500000` or `500_000`.
fn parse_count(text: &str) -> Option<u64> {
    let digits: String = text.chars().filter(|c| *c != '_').collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// `2s` or `2`: whole seconds, as `Retry-After` carries them.
fn parse_seconds(text: &str) -> Option<u32> {
    let digits = text.strip_suffix('s').unwrap_or(text);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

impl fmt::Display for Faults {
    /// The canonical spec: parses back into the same value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut items = Vec::new();
        for (prefix, list) in [("", &self.query), ("apiv6-", &self.apiv6)] {
            for (kind, rate) in list {
                let rate = format_rate(*rate);
                items.push(match kind {
                    FaultKind::ServerError => format!("{prefix}5xx={rate}"),
                    FaultKind::TooManyRequests { retry_after_secs } => {
                        format!("{prefix}429={rate}:{retry_after_secs}s")
                    }
                    FaultKind::Reset => format!("{prefix}reset={rate}"),
                    FaultKind::Truncate => format!("truncate={rate}"),
                    FaultKind::Slow(d) => format!("{prefix}slow={rate}:{}ms", d.as_millis()),
                    FaultKind::InvalidJson => format!("invalid-json={rate}"),
                });
            }
        }
        if let Some(cap) = self.cap {
            items.push(format!("cap={cap}"));
        }
        if let Some(seed) = self.seed {
            items.push(format!("seed={seed}"));
        }
        f.write_str(&items.join(","))
    }
}

impl<'de> Deserialize<'de> for Faults {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Faults, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(de::Error::custom)
    }
}
