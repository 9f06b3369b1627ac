//! The streaming parser of `/api/query` response bodies: bytes in (in chunks of any size, split
//! anywhere), one [`Series`] out per series object as soon as its closing brace arrives. Owns the
//! JSON dialect of stock OpenTSDB and of OVH's proxy (members in any order, `NaN` in its three
//! spellings, `dps` as a map or as `[ts, value]` pairs); knows nothing about HTTP or Parquet.
//! A name given twice in an object (which JSON advises against, and a broken proxy may still
//! send) is worth its last member, as when JSON is read into a map. Within one `dps`, though,
//! every point is kept: sorted by time, those sharing a timestamp in the order given.
//!
//! Memory is bounded by the largest series object, not by the body: only the unconsumed tail of
//! the input is kept (at most one unfinished member or point), and the point buffers are reused
//! from one series to the next. The hot path (one `"ts":value` pair) scans bytes directly and
//! allocates nothing.

use std::fmt;

use crate::points::cents::{self, ValuesSlice};

/// One series of the response, borrowed from the parser until the sink returns.
#[derive(Debug, Clone, Copy)]
pub struct Series<'a> {
    pub metric: &'a str,
    /// Sorted by key, each once; may hold more keys than asked for (OVH adds `env`,
    /// `servicename`, …).
    pub tags: &'a [(String, String)],
    pub aggregate_tags: &'a [String],
    /// Which sub-query this answers, when the endpoint echoes `"query":{"index":n}`.
    pub query_index: Option<usize>,
    /// Unix milliseconds, ascending (sorted here when the server did not).
    pub timestamps_ms: &'a [i64],
    /// One per timestamp; `f64::NAN` means "no value" (`null`, `NaN`, `"NaN"`, `±Infinity`).
    /// Held as hundredths keys ([`cents::key`]) when the parser read every value of the series
    /// as a number of hundredths (what vScope serves): it then never works out their doubles,
    /// which a sink that needs them gets from the slice.
    pub values: ValuesSlice<'a>,
}

impl Series<'_> {
    /// A copy that outlives the parser's buffers.
    pub fn to_owned_series(&self) -> OwnedSeries {
        OwnedSeries {
            metric: self.metric.to_string(),
            tags: self.tags.to_vec(),
            aggregate_tags: self.aggregate_tags.to_vec(),
            query_index: self.query_index,
            timestamps_ms: self.timestamps_ms.to_vec(),
            values: self.values.to_doubles(),
        }
    }

    /// The value of one tag, if the series carries it.
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags
            .binary_search_by(|(k, _)| k.as_str().cmp(key))
            .ok()
            .map(|i| self.tags[i].1.as_str())
    }
}

/// An owned [`Series`], for tests and for callers that keep series around.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OwnedSeries {
    pub metric: String,
    pub tags: Vec<(String, String)>,
    pub aggregate_tags: Vec<String>,
    pub query_index: Option<usize>,
    pub timestamps_ms: Vec<i64>,
    pub values: Vec<f64>,
}

impl OwnedSeries {
    /// The borrowed view the transform stage takes.
    pub fn as_series(&self) -> Series<'_> {
        Series {
            metric: &self.metric,
            tags: &self.tags,
            aggregate_tags: &self.aggregate_tags,
            query_index: self.query_index,
            timestamps_ms: &self.timestamps_ms,
            values: ValuesSlice::doubles(&self.values),
        }
    }
}

/// Receives every series as soon as it is complete.
pub trait SeriesSink {
    fn series(&mut self, series: Series<'_>);
}

impl<F: FnMut(Series<'_>)> SeriesSink for F {
    fn series(&mut self, series: Series<'_>) {
        self(series)
    }
}

/// What one response held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseStats {
    pub series: usize,
    pub points: u64,
    /// Bytes of (decompressed) body read.
    pub bytes: u64,
}

/// A body that is not the JSON the endpoint promises, with the byte where it went wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid response at byte {offset}: {message}")]
pub struct ParseError {
    /// Offset in the (decompressed) body.
    pub offset: u64,
    pub message: String,
    /// The body ended before the document did: a cut connection rather than a server that
    /// speaks another language, so worth another attempt.
    pub truncated: bool,
}

impl ParseError {
    pub fn new(offset: u64, message: impl Into<String>) -> ParseError {
        ParseError {
            offset,
            message: message.into(),
            truncated: false,
        }
    }
}

/// Where in the document the next byte belongs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Nothing read yet: `[`.
    Start,
    /// After `[`: a series object or `]`.
    ArrayOpen,
    /// After `,` in the top array: a series object.
    ArrayNext,
    /// After a series object: `,` or `]`.
    ArrayAfter,
    /// After `{` of a series: a member or `}`.
    ObjectOpen,
    /// After `,` in a series: a member.
    ObjectNext,
    /// After a member's value: `,` or `}`.
    ObjectAfter,
    /// After `"dps":{`: a `"ts":value` pair or `}`.
    DpsMapOpen,
    /// After `,` in `dps`: a pair.
    DpsMapNext,
    /// After a pair: `,` or `}`.
    DpsMapAfter,
    /// After `"dps":[`: a `[ts, value]` pair or `]`.
    DpsListOpen,
    DpsListNext,
    DpsListAfter,
    /// After the closing `]`: only whitespace.
    Done,
}

impl State {
    fn expectation(self) -> &'static str {
        match self {
            State::Start => "'[' (the body is empty)",
            State::ArrayOpen => "a series object or ']'",
            State::ArrayNext => "a series object",
            State::ArrayAfter => "',' or ']' after a series object",
            State::ObjectOpen | State::ObjectNext => "a member of a series object",
            State::ObjectAfter => "',' or '}' after a member of a series object",
            State::DpsMapOpen | State::DpsMapNext => "a \"timestamp\":value pair in \"dps\"",
            State::DpsMapAfter => "',' or '}' after a point in \"dps\"",
            State::DpsListOpen | State::DpsListNext => "a [timestamp, value] pair in \"dps\"",
            State::DpsListAfter => "',' or ']' after a point in \"dps\"",
            State::Done => "nothing",
        }
    }
}

/// Why a unit could not be consumed.
enum Stop {
    /// The input ends inside the unit: wait for the next chunk and start the unit again.
    More,
    /// The input is wrong at `at` (an index into the slice being parsed).
    Bad { at: usize, message: String },
}

type Step<T> = Result<T, Stop>;

/// Deeper nesting in an unknown member is refused rather than risking the stack.
const MAX_DEPTH: usize = 64;

/// How much of a chunk is copied behind the unfinished end of the one before to finish it: more
/// than a point or a key takes. A longer unit (a long string) takes the whole chunk.
const STITCH_BYTES: usize = 4096;

/// `10^k` for the exact fast path of decimal parsing (exact as `f64` up to `10^22`).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// The series object being read; its buffers are reused for the next one.
#[derive(Default)]
struct SeriesBuf {
    metric: String,
    has_metric: bool,
    /// The series' tags are the first `tags_len`; the others' strings wait to be reused.
    tags: Vec<(String, String)>,
    tags_len: usize,
    aggregate_tags: Vec<String>,
    query_index: Option<usize>,
    timestamps_ms: Vec<i64>,
    values: Vec<f64>,
    /// The values' hundredths keys, while every value so far came with one; `values` is then
    /// left empty (see [`SeriesBuf::values_from_keys`]), and the series handed on as its keys.
    cents: Vec<u32>,
    all_cents: bool,
    /// False once a timestamp arrived that is not after the previous one.
    sorted: bool,
    /// Scratch space to sort points by time without allocating per series.
    sort_scratch: Vec<(i64, f64)>,
}

impl SeriesBuf {
    fn reset(&mut self) {
        self.metric.clear();
        self.has_metric = false;
        self.tags_len = 0;
        self.aggregate_tags.clear();
        self.query_index = None;
        self.clear_points();
    }

    /// No points, and nothing known about them: what a new series, and each `dps` member
    /// (which replaces any before it), starts from.
    fn clear_points(&mut self) {
        self.timestamps_ms.clear();
        self.values.clear();
        self.cents.clear();
        self.all_cents = true;
        self.sorted = true;
    }

    /// A point off the fast path (a point cut by the end of a chunk, in an unusual spelling, or
    /// of a `[ts, value]` list), its value's key worked out from the double.
    fn push(&mut self, ts_ms: i64, value: f64) {
        match cents::key(value) {
            Some(key) if self.all_cents => self.push_key(ts_ms, key),
            _ => self.push_value(ts_ms, value),
        }
    }

    /// A point whose value is [`cents::value`] of `key`, while every value has a key.
    #[inline]
    fn push_key(&mut self, ts_ms: i64, key: u32) {
        self.push_ts(ts_ms);
        self.cents.push(key);
    }

    /// A point whose value has no key, or any point once one had none.
    #[inline]
    fn push_value(&mut self, ts_ms: i64, value: f64) {
        if self.all_cents {
            self.values_from_keys();
            self.all_cents = false;
        }
        self.push_ts(ts_ms);
        self.values.push(value);
    }

    #[inline]
    fn push_ts(&mut self, ts_ms: i64) {
        if let Some(&last) = self.timestamps_ms.last() {
            if ts_ms < last {
                self.sorted = false;
            }
        }
        self.timestamps_ms.push(ts_ms);
    }

    /// `values` worked out from the keys (the same doubles the text parses to).
    fn values_from_keys(&mut self) {
        self.values.clear();
        self.values
            .extend(self.cents.iter().map(|&k| cents::value(k)));
    }

    fn sort_points(&mut self) {
        if self.sorted {
            return;
        }
        self.sort_scratch.clear();
        self.sort_scratch.extend(
            self.timestamps_ms
                .iter()
                .copied()
                .zip(self.values.iter().copied()),
        );
        // Stable, so points sharing a timestamp keep the server's order.
        self.sort_scratch.sort_by_key(|&(ts, _)| ts);
        for (i, &(ts, v)) in self.sort_scratch.iter().enumerate() {
            self.timestamps_ms[i] = ts;
            self.values[i] = v;
        }
        self.sorted = true;
    }
}

/// Which member of a series object a key names.
enum Member {
    Metric,
    Tags,
    AggregateTags,
    Query,
    Dps,
    Other,
}

/// Push-based parser of one `/api/query` response body.
pub struct ResponseParser {
    /// The unconsumed tail of the input: at most one unfinished unit.
    buf: Vec<u8>,
    /// Absolute body offset of `buf[0]`.
    consumed: u64,
    state: State,
    cur: SeriesBuf,
    /// Decoded member key, reused.
    key: String,
    /// The first eight digits of the last compact point's key, and their value.
    key_prefix: (u64, i64),
    /// Whether compact points take the fast path; off only to hold it to the general one.
    fast_points: bool,
    stats: ParseStats,
    /// Once the body is known to be bad every later call reports the same error.
    failed: Option<ParseError>,
}

impl Default for ResponseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ResponseParser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseParser")
            .field("consumed", &self.consumed)
            .field("pending", &self.buf.len())
            .field("state", &self.state)
            .field("stats", &self.stats)
            .finish()
    }
}

impl ResponseParser {
    pub fn new() -> Self {
        ResponseParser {
            buf: Vec::new(),
            consumed: 0,
            state: State::Start,
            cur: SeriesBuf {
                sorted: true,
                all_cents: true,
                ..SeriesBuf::default()
            },
            key: String::new(),
            // No key's digits are eight NUL bytes.
            key_prefix: (0, 0),
            fast_points: true,
            stats: ParseStats::default(),
            failed: None,
        }
    }

    /// A parser whose every point takes the general path: for the tests and the fuzz target,
    /// which hold the fast path to giving the same series.
    #[doc(hidden)]
    pub fn without_fast_path() -> Self {
        ResponseParser {
            fast_points: false,
            ..Self::new()
        }
    }

    /// Feed the next chunk; emits every series object completed so far to the sink.
    pub fn feed(&mut self, chunk: &[u8], sink: &mut impl SeriesSink) -> Result<(), ParseError> {
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        self.stats.bytes += chunk.len() as u64;
        let result = if self.buf.is_empty() {
            self.run_in_place(chunk, sink)
        } else {
            // The last chunk ended inside a unit (a point, a key): that unit is finished from
            // the tail and the head of this chunk, and the rest of the chunk is parsed where it
            // is, rather than copied behind the tail.
            let tail = self.buf.len();
            let head = chunk.len().min(STITCH_BYTES);
            let mut buf = std::mem::take(&mut self.buf);
            buf.extend_from_slice(&chunk[..head]);
            match self.run(&buf, sink) {
                Ok(used) if used >= tail => {
                    self.consumed += used as u64;
                    buf.clear();
                    self.buf = buf;
                    self.run_in_place(&chunk[used - tail..], sink)
                }
                Ok(used) => {
                    // A unit longer than the head: the whole chunk goes behind the tail.
                    self.consumed += used as u64;
                    buf.drain(..used);
                    buf.extend_from_slice(&chunk[head..]);
                    let result = self.run(&buf, sink);
                    if let Ok(used) = result {
                        self.consumed += used as u64;
                        buf.drain(..used);
                    }
                    self.buf = buf;
                    result.map(|_| ())
                }
                Err(err) => {
                    self.buf = buf;
                    Err(err)
                }
            }
        };
        result.inspect_err(|err| {
            self.failed = Some(err.clone());
        })
    }

    /// Parses `chunk` with nothing left over before it; keeps its unfinished end.
    fn run_in_place(&mut self, chunk: &[u8], sink: &mut impl SeriesSink) -> Result<(), ParseError> {
        let used = self.run(chunk, sink)?;
        self.consumed += used as u64;
        self.buf.extend_from_slice(&chunk[used..]);
        Ok(())
    }

    /// End of body: error if the document is incomplete (truncated body) or has trailing garbage.
    pub fn finish(&mut self, _sink: &mut impl SeriesSink) -> Result<ParseStats, ParseError> {
        // Every complete series was already emitted by `feed`; the sink is taken so that a
        // future dialect with a trailer can still emit at the end.
        if let Some(err) = &self.failed {
            return Err(err.clone());
        }
        if self.state == State::Done {
            return Ok(self.stats);
        }
        let expected = if self.buf.is_empty() {
            self.state.expectation()
        } else {
            "the rest of an unfinished value"
        };
        let err = ParseError {
            offset: self.stats.bytes,
            message: format!("the body ended early (truncated response): expected {expected}"),
            truncated: true,
        };
        self.failed = Some(err.clone());
        Err(err)
    }

    /// What was read so far.
    pub fn stats(&self) -> ParseStats {
        self.stats
    }

    /// Consumes as many whole units of `data` as possible; returns how many bytes were used.
    fn run<S: SeriesSink + ?Sized>(
        &mut self,
        data: &[u8],
        sink: &mut S,
    ) -> Result<usize, ParseError> {
        let mut pos = 0;
        loop {
            skip_ws(data, &mut pos);
            if pos == data.len() {
                return Ok(pos);
            }
            let step = self.unit(data, &mut pos, sink);
            match step {
                Ok(()) => {}
                Err(Stop::More) => return Ok(pos),
                Err(Stop::Bad { at, message }) => {
                    return Err(ParseError::new(self.consumed + at as u64, message));
                }
            }
        }
    }

    /// One unit from `data[*pos]` (not whitespace); advances `*pos` only past what it commits.
    fn unit<S: SeriesSink + ?Sized>(
        &mut self,
        data: &[u8],
        pos: &mut usize,
        sink: &mut S,
    ) -> Step<()> {
        let at = *pos;
        let byte = data[at];
        match self.state {
            State::Start => {
                if byte != b'[' {
                    return Err(expected(data, at, "'[' at the start of the response"));
                }
                *pos += 1;
                self.state = State::ArrayOpen;
            }
            State::ArrayOpen | State::ArrayNext => {
                if byte == b']' && self.state == State::ArrayOpen {
                    *pos += 1;
                    self.state = State::Done;
                } else if byte == b'{' {
                    *pos += 1;
                    self.cur.reset();
                    self.state = State::ObjectOpen;
                } else {
                    return Err(expected(data, at, self.state.expectation()));
                }
            }
            State::ArrayAfter => match byte {
                b',' => {
                    *pos += 1;
                    self.state = State::ArrayNext;
                }
                b']' => {
                    *pos += 1;
                    self.state = State::Done;
                }
                _ => return Err(expected(data, at, self.state.expectation())),
            },
            State::ObjectOpen | State::ObjectNext => {
                if byte == b'}' && self.state == State::ObjectOpen {
                    self.emit(data, at, sink)?;
                    *pos += 1;
                } else {
                    self.member(data, pos)?;
                }
            }
            State::ObjectAfter => match byte {
                b',' => {
                    *pos += 1;
                    self.state = State::ObjectNext;
                }
                b'}' => {
                    self.emit(data, at, sink)?;
                    *pos += 1;
                }
                _ => return Err(expected(data, at, self.state.expectation())),
            },
            State::DpsMapOpen | State::DpsMapNext | State::DpsMapAfter => {
                self.dps_map(data, pos)?
            }
            State::DpsListOpen | State::DpsListNext | State::DpsListAfter => {
                self.dps_list(data, pos)?
            }
            State::Done => {
                return Err(expected(
                    data,
                    at,
                    "nothing after the end of the response array",
                ))
            }
        }
        Ok(())
    }

    /// The series object closed at `at`: hand it to the sink.
    fn emit<S: SeriesSink + ?Sized>(&mut self, data: &[u8], at: usize, sink: &mut S) -> Step<()> {
        if !self.cur.has_metric {
            return Err(Stop::Bad {
                at,
                message: format!(
                    "a series object without \"metric\" ends here ({})",
                    describe(data, at)
                ),
            });
        }
        let cur = &mut self.cur;
        let held = if cur.all_cents {
            cur.cents.len()
        } else {
            cur.values.len()
        };
        debug_assert_eq!(
            held,
            cur.timestamps_ms.len(),
            "a value or a key for each point"
        );
        if cur.all_cents && !cur.sorted {
            // Keys go with the points in arrival order: a series sorted here hands on none.
            cur.values_from_keys();
            cur.all_cents = false;
        }
        cur.sort_points();
        let cur = &self.cur;
        sink.series(Series {
            metric: &cur.metric,
            tags: &cur.tags[..cur.tags_len],
            aggregate_tags: &cur.aggregate_tags,
            query_index: cur.query_index,
            timestamps_ms: &cur.timestamps_ms,
            values: if cur.all_cents {
                ValuesSlice::keys(&cur.cents)
            } else {
                ValuesSlice::doubles(&cur.values)
            },
        });
        self.stats.series += 1;
        self.stats.points += cur.timestamps_ms.len() as u64;
        self.state = State::ArrayAfter;
        Ok(())
    }

    /// `"key": value` of a series object; `dps` only up to its opening bracket.
    fn member(&mut self, data: &[u8], pos: &mut usize) -> Step<()> {
        let mut p = *pos;
        if data[p] != b'"' {
            return Err(expected(
                data,
                p,
                "a member name (a string) in a series object",
            ));
        }
        string_into(data, &mut p, &mut self.key)?;
        let member = match self.key.as_str() {
            "metric" => Member::Metric,
            "tags" => Member::Tags,
            "aggregateTags" => Member::AggregateTags,
            "query" => Member::Query,
            "dps" => Member::Dps,
            _ => Member::Other,
        };
        ws_then(data, &mut p)?;
        if data[p] != b':' {
            return Err(expected(data, p, "':' after a member name"));
        }
        p += 1;
        ws_then(data, &mut p)?;
        // A name given twice is worth its last member (as a JSON object read into a map would
        // be): each member below replaces what an earlier one of its name left.
        let mut next = State::ObjectAfter;
        match member {
            Member::Metric => {
                if data[p] != b'"' {
                    return Err(expected(data, p, "the metric name as a string"));
                }
                string_into(data, &mut p, &mut self.cur.metric)?;
                self.cur.has_metric = true;
            }
            Member::Tags => self.cur.tags_len = tags_into(data, &mut p, &mut self.cur.tags)?,
            Member::AggregateTags => strings_into(data, &mut p, &mut self.cur.aggregate_tags)?,
            Member::Query => self.cur.query_index = query_index(data, &mut p, &mut self.key)?,
            Member::Dps => match data[p] {
                b'{' => {
                    p += 1;
                    next = State::DpsMapOpen;
                }
                b'[' => {
                    p += 1;
                    next = State::DpsListOpen;
                }
                b'n' => literal(data, &mut p, b"null")?,
                _ => return Err(expected(data, p, "an object or an array as \"dps\"")),
            },
            Member::Other => skip_value(data, &mut p, 0)?,
        }
        if let Member::Dps = member {
            // Committed only now that the member cannot be cut short: an earlier `dps`
            // member's points, keys and order must not survive into this one's.
            self.cur.clear_points();
        }
        self.state = next;
        *pos = p;
        Ok(())
    }

    /// The hot loop: `"ts":value` pairs of a `dps` object, committed one at a time.
    fn dps_map(&mut self, data: &[u8], pos: &mut usize) -> Step<()> {
        loop {
            skip_ws(data, pos);
            if *pos == data.len() {
                return Err(Stop::More);
            }
            let byte = data[*pos];
            match self.state {
                State::DpsMapAfter => match byte {
                    b',' => {
                        *pos += 1;
                        self.state = State::DpsMapNext;
                    }
                    b'}' => {
                        *pos += 1;
                        self.state = State::ObjectAfter;
                        return Ok(());
                    }
                    _ => return Err(expected(data, *pos, self.state.expectation())),
                },
                _ => {
                    if byte == b'}' && self.state == State::DpsMapOpen {
                        *pos += 1;
                        self.state = State::ObjectAfter;
                        return Ok(());
                    }
                    let mut p = *pos;
                    if byte != b'"' {
                        return Err(expected(data, p, self.state.expectation()));
                    }
                    // Compact points go through the fast path, one after the other, as long as
                    // they are compact; anything else (whitespace, NaN, exponents, the end of
                    // the input near) is left to the general one below.
                    let mut after = None;
                    while let Some((ts, value, q)) = if self.fast_points {
                        fast_point(data, p, &mut self.key_prefix)
                    } else {
                        None
                    } {
                        // A hundredth while every value is one: its double is not needed yet.
                        match value.key() {
                            key if self.cur.all_cents && key != cents::NO_KEY => {
                                self.cur.push_key(ts, key)
                            }
                            _ => self.cur.push_value(ts, value.double()),
                        }
                        match data[q] {
                            b',' => {
                                p = q + 1;
                                after = Some(State::DpsMapNext);
                            }
                            b'}' => {
                                *pos = q + 1;
                                self.state = State::ObjectAfter;
                                return Ok(());
                            }
                            _ => {
                                p = q;
                                after = Some(State::DpsMapAfter);
                                break;
                            }
                        }
                    }
                    if let Some(state) = after {
                        self.state = state;
                        *pos = p;
                        continue;
                    }
                    let ts = timestamp_key(data, &mut p)?;
                    ws_then(data, &mut p)?;
                    if data[p] != b':' {
                        return Err(expected(data, p, "':' after a timestamp in \"dps\""));
                    }
                    p += 1;
                    ws_then(data, &mut p)?;
                    let value = point_value(data, &mut p)?;
                    self.cur.push(ts, value);
                    self.state = State::DpsMapAfter;
                    *pos = p;
                }
            }
        }
    }

    /// `[ts, value]` pairs of a `dps` array (OpenTSDB's `arrays` option).
    fn dps_list(&mut self, data: &[u8], pos: &mut usize) -> Step<()> {
        loop {
            skip_ws(data, pos);
            if *pos == data.len() {
                return Err(Stop::More);
            }
            let byte = data[*pos];
            match self.state {
                State::DpsListAfter => match byte {
                    b',' => {
                        *pos += 1;
                        self.state = State::DpsListNext;
                    }
                    b']' => {
                        *pos += 1;
                        self.state = State::ObjectAfter;
                        return Ok(());
                    }
                    _ => return Err(expected(data, *pos, self.state.expectation())),
                },
                _ => {
                    if byte == b']' && self.state == State::DpsListOpen {
                        *pos += 1;
                        self.state = State::ObjectAfter;
                        return Ok(());
                    }
                    let mut p = *pos;
                    if byte != b'[' {
                        return Err(expected(data, p, self.state.expectation()));
                    }
                    p += 1;
                    ws_then(data, &mut p)?;
                    let ts = timestamp_number(data, &mut p)?;
                    ws_then(data, &mut p)?;
                    if data[p] != b',' {
                        return Err(expected(
                            data,
                            p,
                            "',' after a timestamp in a [timestamp, value] pair",
                        ));
                    }
                    p += 1;
                    ws_then(data, &mut p)?;
                    let value = point_value(data, &mut p)?;
                    ws_then(data, &mut p)?;
                    if data[p] != b']' {
                        return Err(expected(data, p, "']' closing a [timestamp, value] pair"));
                    }
                    p += 1;
                    self.cur.push(ts, value);
                    self.state = State::DpsListAfter;
                    *pos = p;
                }
            }
        }
    }
}

#[inline]
fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\r' | b'\t')
}

#[inline]
fn skip_ws(data: &[u8], pos: &mut usize) {
    while *pos < data.len() && is_ws(data[*pos]) {
        *pos += 1;
    }
}

/// Skips whitespace inside a unit; the unit cannot end here, so running out means "more".
#[inline]
fn ws_then(data: &[u8], pos: &mut usize) -> Step<()> {
    skip_ws(data, pos);
    if *pos == data.len() {
        Err(Stop::More)
    } else {
        Ok(())
    }
}

/// What was found at `at`, for messages.
fn describe(data: &[u8], at: usize) -> String {
    match data.get(at) {
        None => "end of input".to_string(),
        Some(&b) if b.is_ascii_graphic() => format!("found '{}'", b as char),
        Some(&b) => format!("found byte 0x{b:02x}"),
    }
}

fn expected(data: &[u8], at: usize, what: &str) -> Stop {
    Stop::Bad {
        at,
        message: format!("expected {what}, {}", describe(data, at)),
    }
}

/// `word` at `*pos` (a bare token such as `null` or `NaN`).
fn literal(data: &[u8], pos: &mut usize, word: &[u8]) -> Step<()> {
    let rest = &data[*pos..];
    if rest.len() >= word.len() {
        if &rest[..word.len()] == word {
            *pos += word.len();
            return Ok(());
        }
    } else if word.starts_with(rest) {
        return Err(Stop::More);
    }
    let word = String::from_utf8_lossy(word);
    Err(expected(data, *pos, &format!("'{word}'")))
}

/// Decodes the string at `*pos` (which is `"`) into `out`, replacing its content.
fn string_into(data: &[u8], pos: &mut usize, out: &mut String) -> Step<()> {
    out.clear();
    let mut p = *pos + 1;
    let mut seg = p;
    loop {
        let Some(&b) = data.get(p) else {
            return Err(Stop::More);
        };
        match b {
            b'"' => {
                push_utf8(data, seg, p, out)?;
                *pos = p + 1;
                return Ok(());
            }
            b'\\' => {
                push_utf8(data, seg, p, out)?;
                p = unescape(data, p, out)?;
                seg = p;
            }
            0x00..=0x1f => {
                return Err(Stop::Bad {
                    at: p,
                    message: format!("unescaped control character 0x{b:02x} in a string"),
                })
            }
            _ => p += 1,
        }
    }
}

fn push_utf8(data: &[u8], start: usize, end: usize, out: &mut String) -> Step<()> {
    match std::str::from_utf8(&data[start..end]) {
        Ok(s) => {
            out.push_str(s);
            Ok(())
        }
        Err(err) => Err(Stop::Bad {
            at: start + err.valid_up_to(),
            message: "invalid UTF-8 in a string".to_string(),
        }),
    }
}

/// One escape starting at `data[p] == '\\'`; returns the index after it.
fn unescape(data: &[u8], p: usize, out: &mut String) -> Step<usize> {
    let Some(&kind) = data.get(p + 1) else {
        return Err(Stop::More);
    };
    let simple = match kind {
        b'"' => Some('"'),
        b'\\' => Some('\\'),
        b'/' => Some('/'),
        b'b' => Some('\u{8}'),
        b'f' => Some('\u{c}'),
        b'n' => Some('\n'),
        b'r' => Some('\r'),
        b't' => Some('\t'),
        b'u' => None,
        _ => {
            return Err(expected(
                data,
                p + 1,
                "an escape character (one of \"\\/bfnrtu)",
            ))
        }
    };
    if let Some(c) = simple {
        out.push(c);
        return Ok(p + 2);
    }
    let unit = hex4(data, p + 2)?;
    let mut next = p + 6;
    let c = match unit {
        0xD800..=0xDBFF => {
            // A high surrogate: the low half must follow as another `\u` escape.
            match data.get(next..next + 2) {
                None if data.len() < next + 6 => return Err(Stop::More),
                _ => {}
            }
            if data.get(next..next + 2) == Some(b"\\u") {
                if data.len() < next + 6 {
                    return Err(Stop::More);
                }
                let low = hex4(data, next + 2)?;
                if (0xDC00..=0xDFFF).contains(&low) {
                    next += 6;
                    let code = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
                    char::from_u32(code).unwrap_or(char::REPLACEMENT_CHARACTER)
                } else {
                    char::REPLACEMENT_CHARACTER
                }
            } else {
                char::REPLACEMENT_CHARACTER
            }
        }
        // A lone low surrogate is not a character; keep the rest of the string.
        0xDC00..=0xDFFF => char::REPLACEMENT_CHARACTER,
        _ => char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER),
    };
    out.push(c);
    Ok(next)
}

fn hex4(data: &[u8], at: usize) -> Step<u32> {
    let mut v = 0u32;
    for i in at..at + 4 {
        let Some(&b) = data.get(i) else {
            return Err(Stop::More);
        };
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return Err(expected(data, i, "a hexadecimal digit in a \\u escape")),
        };
        v = v * 16 + u32::from(d);
    }
    Ok(v)
}

/// Skips the string at `*pos` (which is `"`) without decoding it.
fn skip_string(data: &[u8], pos: &mut usize) -> Step<()> {
    let mut p = *pos + 1;
    loop {
        let Some(&b) = data.get(p) else {
            return Err(Stop::More);
        };
        match b {
            b'"' => {
                *pos = p + 1;
                return Ok(());
            }
            b'\\' => p += 2,
            _ => p += 1,
        }
    }
}

/// `{"k": "v", …}` into the first entries of `tags`, sorted by key; how many (`null` is none).
/// The strings of the entries there before are written over, not allocated anew each series.
fn tags_into(data: &[u8], pos: &mut usize, tags: &mut Vec<(String, String)>) -> Step<usize> {
    let mut p = *pos;
    if data[p] == b'n' {
        literal(data, &mut p, b"null")?;
        *pos = p;
        return Ok(0);
    }
    if data[p] != b'{' {
        return Err(expected(data, p, "an object as \"tags\""));
    }
    p += 1;
    ws_then(data, &mut p)?;
    if data[p] == b'}' {
        *pos = p + 1;
        return Ok(0);
    }
    let mut n = 0;
    loop {
        if data[p] != b'"' {
            return Err(expected(data, p, "a tag name (a string)"));
        }
        if n == tags.len() {
            tags.push(Default::default());
        }
        let (key, value) = &mut tags[n];
        n += 1;
        string_into(data, &mut p, key)?;
        ws_then(data, &mut p)?;
        if data[p] != b':' {
            return Err(expected(data, p, "':' after a tag name"));
        }
        p += 1;
        ws_then(data, &mut p)?;
        if data[p] != b'"' {
            return Err(expected(data, p, "a tag value (a string)"));
        }
        string_into(data, &mut p, value)?;
        ws_then(data, &mut p)?;
        match data[p] {
            b',' => {
                p += 1;
                ws_then(data, &mut p)?;
            }
            b'}' => {
                p += 1;
                break;
            }
            _ => return Err(expected(data, p, "',' or '}' in \"tags\"")),
        }
    }
    *pos = p;
    Ok(last_of_each_key(&mut tags[..n]))
}

/// Sorts `tags` by key and keeps, of a key given more than once, its last value (as a JSON
/// object read into a map would); how many distinct keys there are, first in `tags`. The
/// entries dropped stay behind them, for their strings to be reused.
fn last_of_each_key(tags: &mut [(String, String)]) -> usize {
    // Stable: of equal keys, the last given is the last here.
    tags.sort_by(|a, b| a.0.cmp(&b.0));
    let mut n = 0;
    for i in 0..tags.len() {
        if n > 0 && tags[n - 1].0 == tags[i].0 {
            tags.swap(n - 1, i);
        } else {
            tags.swap(n, i);
            n += 1;
        }
    }
    n
}

/// `["a", "b"]` into `out`; `null` is none.
fn strings_into(data: &[u8], pos: &mut usize, out: &mut Vec<String>) -> Step<()> {
    out.clear();
    let mut p = *pos;
    if data[p] == b'n' {
        literal(data, &mut p, b"null")?;
        *pos = p;
        return Ok(());
    }
    if data[p] != b'[' {
        return Err(expected(
            data,
            p,
            "an array of strings as \"aggregateTags\"",
        ));
    }
    p += 1;
    ws_then(data, &mut p)?;
    if data[p] == b']' {
        *pos = p + 1;
        return Ok(());
    }
    loop {
        if data[p] != b'"' {
            return Err(expected(
                data,
                p,
                "a tag name (a string) in \"aggregateTags\"",
            ));
        }
        let mut s = String::new();
        string_into(data, &mut p, &mut s)?;
        out.push(s);
        ws_then(data, &mut p)?;
        match data[p] {
            b',' => {
                p += 1;
                ws_then(data, &mut p)?;
            }
            b']' => {
                p += 1;
                break;
            }
            _ => return Err(expected(data, p, "',' or ']' in \"aggregateTags\"")),
        }
    }
    *pos = p;
    Ok(())
}

/// The `query` member: `{"index": n, …}` gives `Some(n)`; any other value is skipped.
fn query_index(data: &[u8], pos: &mut usize, key: &mut String) -> Step<Option<usize>> {
    let mut p = *pos;
    if data[p] != b'{' {
        skip_value(data, &mut p, 0)?;
        *pos = p;
        return Ok(None);
    }
    p += 1;
    ws_then(data, &mut p)?;
    let mut index = None;
    if data[p] == b'}' {
        *pos = p + 1;
        return Ok(None);
    }
    loop {
        if data[p] != b'"' {
            return Err(expected(data, p, "a member name (a string) in \"query\""));
        }
        string_into(data, &mut p, key)?;
        ws_then(data, &mut p)?;
        if data[p] != b':' {
            return Err(expected(data, p, "':' after a member name"));
        }
        p += 1;
        ws_then(data, &mut p)?;
        let start = p;
        skip_value(data, &mut p, 1)?;
        if key == "index" {
            // A later `index` replaces an earlier one, even with something that is no index.
            let raw = &data[start..p];
            index = (!raw.is_empty() && raw.len() <= 18 && raw.iter().all(u8::is_ascii_digit))
                .then(|| {
                    raw.iter()
                        .fold(0usize, |n, &d| n * 10 + usize::from(d - b'0'))
                });
        }
        ws_then(data, &mut p)?;
        match data[p] {
            b',' => {
                p += 1;
                ws_then(data, &mut p)?;
            }
            b'}' => {
                p += 1;
                break;
            }
            _ => return Err(expected(data, p, "',' or '}' in \"query\"")),
        }
    }
    *pos = p;
    Ok(index)
}

/// Skips any JSON value (plus the bare `NaN`/`Infinity` tokens) at `*pos`.
fn skip_value(data: &[u8], pos: &mut usize, depth: usize) -> Step<()> {
    if depth > MAX_DEPTH {
        return Err(Stop::Bad {
            at: *pos,
            message: format!("values nested deeper than {MAX_DEPTH} levels"),
        });
    }
    let mut p = *pos;
    match data[p] {
        b'"' => skip_string(data, &mut p)?,
        b't' => literal(data, &mut p, b"true")?,
        b'f' => literal(data, &mut p, b"false")?,
        b'{' | b'[' => {
            let close = if data[p] == b'{' { b'}' } else { b']' };
            let is_object = close == b'}';
            p += 1;
            ws_then(data, &mut p)?;
            if data[p] == close {
                p += 1;
            } else {
                loop {
                    if is_object {
                        if data[p] != b'"' {
                            return Err(expected(data, p, "a member name (a string)"));
                        }
                        skip_string(data, &mut p)?;
                        ws_then(data, &mut p)?;
                        if data[p] != b':' {
                            return Err(expected(data, p, "':' after a member name"));
                        }
                        p += 1;
                        ws_then(data, &mut p)?;
                    }
                    skip_value(data, &mut p, depth + 1)?;
                    ws_then(data, &mut p)?;
                    if data[p] == b',' {
                        p += 1;
                        ws_then(data, &mut p)?;
                    } else if data[p] == close {
                        p += 1;
                        break;
                    } else if is_object {
                        return Err(expected(data, p, "',' or '}' in an object"));
                    } else {
                        return Err(expected(data, p, "',' or ']' in an array"));
                    }
                }
            }
        }
        _ => {
            point_value(data, &mut p)?;
        }
    }
    *pos = p;
    Ok(())
}

/// A `dps` key: a string of digits; 10 digits or fewer are seconds, more are milliseconds.
#[inline]
fn timestamp_key(data: &[u8], pos: &mut usize) -> Step<i64> {
    let start = *pos + 1;
    let mut p = start;
    let mut n: i64 = 0;
    loop {
        let Some(&b) = data.get(p) else {
            return Err(Stop::More);
        };
        match b {
            b'0'..=b'9' if p - start < 18 => {
                n = n * 10 + i64::from(b - b'0');
                p += 1;
            }
            b'"' if p > start => break,
            _ => {
                return Err(expected(
                    data,
                    p,
                    "a timestamp of at most 18 digits as a \"dps\" key",
                ))
            }
        }
    }
    *pos = p + 1;
    Ok(to_ms(n, p - start))
}

/// Bytes a compact point can take: a quoted key of up to 18 digits, ':', a sign and up to 19
/// digits with a decimal point, and the separator after it.
const POINT_WINDOW: usize = 48;

/// One compact `"ts":value` point at `p`: its timestamp, its value as written ([`Decimal`]) and
/// the position of the `,` or `}` right after it, when the input holds [`POINT_WINDOW`] more
/// bytes and the point has no whitespace, exponent or long mantissa: the shape nearly every
/// point of a response has. The key's first eight digits are read as one word, and not again
/// while they stay those of the point before (`prefix`: the word and its value). `None` leaves
/// the point to the general parser, which also reports any error.
#[inline]
fn fast_point(data: &[u8], p: usize, prefix: &mut (u64, i64)) -> Option<(i64, Decimal, usize)> {
    let w: &[u8; POINT_WINDOW] = data.get(p..p + POINT_WINDOW)?.try_into().ok()?;
    if w[0] != b'"' {
        return None;
    }
    let first8 = u64::from_le_bytes([w[1], w[2], w[3], w[4], w[5], w[6], w[7], w[8]]);
    if first8 != prefix.0 {
        if !all_digits(first8) {
            return None;
        }
        *prefix = (first8, parse_eight_digits(first8) as i64);
    }
    let mut ts = prefix.1;
    let mut i = 9;
    let rest = word_at(w, i);
    let more = leading_digits(rest);
    if more == 2 {
        // Seconds, ten digits: the usual key.
        ts = ts * 100 + i64::from(w[9] - b'0') * 10 + i64::from(w[10] - b'0');
        i += 2;
    } else if more < 8 {
        // Milliseconds (13 digits) and the rest: in one step.
        ts = ts * POW10_INT[more] as i64 + digits_value(rest, more) as i64;
        i += more;
    } else {
        while i < 19 && w[i].is_ascii_digit() {
            ts = ts * 10 + i64::from(w[i] - b'0');
            i += 1;
        }
    }
    if w[i] != b'"' || w[i + 1] != b':' {
        return None;
    }
    let ts = to_ms(ts, i - 1);
    i += 2;
    let negative = w[i] == b'-';
    if negative {
        i += 1;
    }
    let (mantissa, decimals, end) = match short_decimal(w, i) {
        // At most seven digits: nothing more to check.
        Some((mantissa, _, decimals, end)) => (mantissa, decimals, end),
        None => match long_decimal(w, i)? {
            (_, 0, ..) | (_, 20.., ..) => return None,
            (mantissa, _, _, _) if mantissa > 1 << 53 => return None,
            (mantissa, _, decimals, end) => (mantissa, decimals, end),
        },
    };
    i = end;
    // What ends the value must end the point too (anything else, an exponent, a blank or more
    // digits, is the general parser's).
    if w[i] != b',' && w[i] != b'}' {
        return None;
    }
    let value = Decimal {
        mantissa,
        decimals,
        negative,
    };
    Some((ts, value, p + i))
}

/// A compact point's value as written, `±mantissa / 10^decimals` (mantissa at most 2^53): its
/// double and its hundredths key are worked out only when asked for.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Decimal {
    mantissa: u64,
    decimals: usize,
    negative: bool,
}

impl Decimal {
    /// The double the text parses to: one IEEE division of two exact numbers, correctly rounded
    /// (the same as [`number`] gives).
    #[inline]
    fn double(self) -> f64 {
        let v = self.mantissa as f64 / POW10[self.decimals];
        if self.negative {
            -v
        } else {
            v
        }
    }

    /// Its [`cents::key`], or [`cents::NO_KEY`].
    #[inline]
    fn key(self) -> u32 {
        cents_key(self.mantissa, self.decimals, self.negative)
    }
}

/// The [`cents::key`] of the decimal `±mantissa / 10^decimals` (mantissa below 2^53), from its
/// digits: the double that decimal parses to is `m / 100` for `m = mantissa × 10^(2 − decimals)`
/// (both are the correctly rounded value of the same number), so its key is that of `±m`.
#[inline]
fn cents_key(mantissa: u64, decimals: usize, negative: bool) -> u32 {
    const SCALE: [u64; 3] = [100, 10, 1];
    let Some(&scale) = SCALE.get(decimals) else {
        return cents::NO_KEY;
    };
    // Below 2^60: no overflow.
    let m = (mantissa * scale) as i64;
    let key = if negative { -m } else { m } + cents::OFFSET;
    // −0 is not 0 (its bits differ): no key.
    if (negative && m == 0) || !(0..cents::KEYS as i64).contains(&key) {
        cents::NO_KEY
    } else {
        key as u32
    }
}

/// The digits of a decimal at `at` that fits in one word with the byte after it (at most six
/// digits and a dot: the usual value), read in one step: (mantissa, digits, decimals, end).
#[inline]
fn short_decimal(w: &[u8; POINT_WINDOW], at: usize) -> Option<(u64, usize, usize, usize)> {
    let word = word_at(w, at);
    let others = non_digits(word);
    let n = (others.trailing_zeros() / 8) as usize;
    if n == 0 || n == 8 {
        return None;
    }
    if w[at + n] != b'.' {
        return Some((digits_value(word, n), n, 0, at + n));
    }
    // The next byte that is not a digit ends the decimals.
    let end = ((others & (others - 1)).trailing_zeros() / 8) as usize;
    if end == 8 || end == n + 1 {
        return None;
    }
    // The integer's digits, then the decimals moved down over the dot.
    let below = (1u64 << (8 * n)) - 1;
    let joined = (word & below) | ((word >> 8) & !below);
    Some((
        digits_value(joined, end - 1),
        end - 1,
        end - n - 1,
        at + end,
    ))
}

/// The same for any decimal the fast path takes (up to 19 digits in all), a digit at a time;
/// `None` for a dot without decimals.
fn long_decimal(w: &[u8; POINT_WINDOW], at: usize) -> Option<(u64, usize, usize, usize)> {
    let mut i = at;
    let mut mantissa: u64 = 0;
    while i < at + 19 && w[i].is_ascii_digit() {
        mantissa = mantissa * 10 + u64::from(w[i] - b'0');
        i += 1;
    }
    let mut digits = i - at;
    let mut decimals = 0;
    if digits > 0 && w[i] == b'.' {
        i += 1;
        let frac_start = i;
        while i < at + 20 && w[i].is_ascii_digit() {
            mantissa = mantissa * 10 + u64::from(w[i] - b'0');
            i += 1;
        }
        decimals = i - frac_start;
        digits += decimals;
        if decimals == 0 {
            return None;
        }
    }
    Some((mantissa, digits, decimals, i))
}

/// Powers of ten up to 10^7, for joining a fraction of fewer than eight digits to its integer.
const POW10_INT: [u64; 8] = [1, 10, 100, 1_000, 10_000, 100_000, 1_000_000, 10_000_000];

/// The eight bytes of `w` from `at`, the first in the lowest byte.
#[inline]
fn word_at(w: &[u8; POINT_WINDOW], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&w[at..at + 8]);
    u64::from_le_bytes(b)
}

/// The high bit of each byte of `word` that is not an ASCII digit.
#[inline]
fn non_digits(word: u64) -> u64 {
    let t = word ^ 0x3030_3030_3030_3030;
    // A digit's byte is 0x00..=0x09 here: adding 0x76 to its low seven bits leaves the high bit
    // clear, as for no other byte (and cannot carry into the next one).
    (((t & 0x7F7F_7F7F_7F7F_7F7F) + 0x7676_7676_7676_7676) | t) & 0x8080_8080_8080_8080
}

/// How many of the first bytes of `word` are ASCII digits (8 if all are).
#[inline]
fn leading_digits(word: u64) -> usize {
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const LOW: u64 = 0x0F0F_0F0F_0F0F_0F0F;
    let t = word ^ 0x3030_3030_3030_3030;
    // A digit's byte is 0x00..=0x09 here: nothing in the high nibble, even after adding 6 to
    // the low one (which cannot carry into the next byte).
    let non_digit = (t | ((t & LOW) + 0x0606_0606_0606_0606)) & HIGH;
    (non_digit.trailing_zeros() / 8) as usize
}

/// The number the first `n` (< 8) bytes of `word`, all digits, spell.
#[inline]
fn digits_value(word: u64, n: usize) -> u64 {
    if n == 0 {
        return 0;
    }
    // Move the digits to the top and fill the bytes below with '0's: leading zeros.
    let shift = 8 * (8 - n) as u32;
    parse_eight_digits((word << shift) | (0x3030_3030_3030_3030u64 >> (64 - shift)))
}

/// Whether the eight bytes of `word` are all ASCII digits.
#[inline]
fn all_digits(word: u64) -> bool {
    const HIGH: u64 = 0xF0F0_F0F0_F0F0_F0F0;
    const ZEROS: u64 = 0x3030_3030_3030_3030;
    word & HIGH == ZEROS && word.wrapping_add(0x0606_0606_0606_0606) & HIGH == ZEROS
}

/// The number eight ASCII digits spell, the first one in the lowest byte, in three steps of
/// combining neighbours (pairs, fours, eights) instead of eight multiply-adds.
#[inline]
fn parse_eight_digits(word: u64) -> u64 {
    let x = word.wrapping_sub(0x3030_3030_3030_3030);
    let x = (x.wrapping_mul(10) + (x >> 8)) & 0x00FF_00FF_00FF_00FF;
    let x = (x.wrapping_mul(100) + (x >> 16)) & 0x0000_FFFF_0000_FFFF;
    (x.wrapping_mul(10_000) + (x >> 32)) & 0xFFFF_FFFF
}

/// A `[ts, value]` timestamp: a JSON integer, seconds or milliseconds as for keys.
fn timestamp_number(data: &[u8], pos: &mut usize) -> Step<i64> {
    let start = *pos;
    let mut p = start;
    let mut n: i64 = 0;
    loop {
        let Some(&b) = data.get(p) else {
            return Err(Stop::More);
        };
        match b {
            b'0'..=b'9' if p - start < 18 => {
                n = n * 10 + i64::from(b - b'0');
                p += 1;
            }
            b',' | b' ' | b'\n' | b'\r' | b'\t' if p > start => break,
            _ => return Err(expected(data, p, "a timestamp of at most 18 digits")),
        }
    }
    *pos = p;
    Ok(to_ms(n, p - start))
}

#[inline]
fn to_ms(n: i64, digits: usize) -> i64 {
    if digits <= 10 {
        n * 1000
    } else {
        n
    }
}

/// A point's value: any JSON number, or one of the spellings of "no value" (`null`, `NaN`,
/// `"NaN"`, `Infinity`, `-Infinity`, bare or quoted), which all become `f64::NAN`.
#[inline]
fn point_value(data: &[u8], pos: &mut usize) -> Step<f64> {
    let p = *pos;
    match data[p] {
        b'0'..=b'9' => number(data, pos),
        b'-' => match data.get(p + 1) {
            None => Err(Stop::More),
            Some(b'I') => {
                literal(data, pos, b"-Infinity")?;
                Ok(f64::NAN)
            }
            Some(_) => number(data, pos),
        },
        b'n' => literal(data, pos, b"null").map(|()| f64::NAN),
        b'N' => literal(data, pos, b"NaN").map(|()| f64::NAN),
        b'I' => literal(data, pos, b"Infinity").map(|()| f64::NAN),
        b'"' => {
            let mut q = p;
            skip_string(data, &mut q)?;
            match &data[p + 1..q - 1] {
                b"NaN" | b"Infinity" | b"-Infinity" => {
                    *pos = q;
                    Ok(f64::NAN)
                }
                _ => Err(expected(
                    data,
                    p,
                    "a number (a string is only allowed as \"NaN\" or \"Infinity\")",
                )),
            }
        }
        _ => Err(expected(data, p, "a number, null or NaN as a value")),
    }
}

/// A JSON number at `*pos`. Short decimals (nearly every metric value) take an exact fast path:
/// with at most 19 digits, a mantissa below 2^53 and at most 22 decimals, one IEEE division of
/// two exactly representable numbers is correctly rounded, so the result equals
/// `str::parse::<f64>`'s. Everything else goes to `str::parse`.
#[inline]
fn number(data: &[u8], pos: &mut usize) -> Step<f64> {
    let start = *pos;
    let mut p = start;
    let negative = data[p] == b'-';
    if negative {
        p += 1;
    }
    let mut mantissa: u64 = 0;
    let int_start = p;
    while let Some(&b) = data.get(p) {
        if !b.is_ascii_digit() {
            break;
        }
        mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
        p += 1;
    }
    let mut digits = p - int_start;
    let mut decimals = 0;
    if data.get(p) == Some(&b'.') {
        p += 1;
        let frac_start = p;
        while let Some(&b) = data.get(p) {
            if !b.is_ascii_digit() {
                break;
            }
            mantissa = mantissa.wrapping_mul(10).wrapping_add(u64::from(b - b'0'));
            p += 1;
        }
        decimals = p - frac_start;
        digits += decimals;
    }
    let Some(&next) = data.get(p) else {
        return Err(Stop::More);
    };
    if digits == 0 {
        return Err(expected(data, p, "a digit in a number"));
    }
    if !matches!(next, b'e' | b'E' | b'+' | b'-' | b'.')
        && digits <= 19
        && decimals < POW10.len()
        && mantissa <= (1u64 << 53)
    {
        let v = mantissa as f64 / POW10[decimals];
        *pos = p;
        return Ok(if negative { -v } else { v });
    }
    // Slow path: exponents, long mantissas.
    let mut end = p;
    while let Some(&b) = data.get(end) {
        if !matches!(b, b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-') {
            break;
        }
        end += 1;
    }
    if end == data.len() {
        return Err(Stop::More);
    }
    let text = std::str::from_utf8(&data[start..end]).unwrap_or("");
    match text.parse::<f64>() {
        Ok(v) => {
            *pos = end;
            Ok(v)
        }
        Err(_) => Err(Stop::Bad {
            at: start,
            message: format!("expected a number, found '{text}'"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A series with NaN made comparable: `None` where the value is NaN.
    #[derive(Debug, Clone, PartialEq)]
    struct Got {
        metric: String,
        tags: Vec<(String, String)>,
        aggregate_tags: Vec<String>,
        query_index: Option<usize>,
        points: Vec<(i64, Option<f64>)>,
    }

    fn got(s: Series<'_>) -> Got {
        Got {
            metric: s.metric.to_string(),
            tags: s.tags.to_vec(),
            aggregate_tags: s.aggregate_tags.to_vec(),
            query_index: s.query_index,
            points: s
                .timestamps_ms
                .iter()
                .enumerate()
                .map(|(i, &t)| (t, Some(s.values.get(i)).filter(|v| !v.is_nan())))
                .collect(),
        }
    }

    /// Parses `body` fed in chunks of `chunk` bytes.
    fn parse_chunked(body: &[u8], chunk: usize) -> Result<(Vec<Got>, ParseStats), ParseError> {
        let mut out = Vec::new();
        let mut sink = |s: Series<'_>| out.push(got(s));
        let mut parser = ResponseParser::new();
        for part in body.chunks(chunk.max(1)) {
            parser.feed(part, &mut sink)?;
        }
        let stats = parser.finish(&mut sink)?;
        Ok((out, stats))
    }

    fn parse(body: &str) -> Result<Vec<Got>, ParseError> {
        parse_chunked(body.as_bytes(), usize::MAX).map(|(s, _)| s)
    }

    fn tags(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// The example response of the vScope guide, verbatim in shape.
    const GUIDE_EXAMPLE: &str = r#"[
    {
        "metric":"vscope.host.mem.usage.perc",
        "tags":{
            "datacenter":"pcc-37-187-228-180_datacenter869",
            "env":"prod",
            "host":"172.17.86.51",
            "servicename":"pcc-37-187-228-180",
            "servicetype":"vscope"
        },
        "query":{
            "index":0
        },
        "aggregateTags":[],
        "dps":{
            "1564409391":4.38,
            "1564410591":4.35,
            "1564411791":4.37,
            "1564412991":4.38,
            "1564494591":4.36
        }
    }
]"#;

    #[test]
    fn guide_example_gives_one_series_in_milliseconds() {
        let (series, stats) = parse_chunked(GUIDE_EXAMPLE.as_bytes(), 4096).unwrap();
        assert_eq!(series.len(), 1);
        let s = &series[0];
        assert_eq!(s.metric, "vscope.host.mem.usage.perc");
        assert_eq!(
            s.tags,
            tags(&[
                ("datacenter", "pcc-37-187-228-180_datacenter869"),
                ("env", "prod"),
                ("host", "172.17.86.51"),
                ("servicename", "pcc-37-187-228-180"),
                ("servicetype", "vscope"),
            ])
        );
        assert_eq!(s.query_index, Some(0));
        assert!(s.aggregate_tags.is_empty());
        assert_eq!(s.points.len(), 5);
        assert_eq!(s.points[0], (1_564_409_391_000, Some(4.38)));
        assert_eq!(s.points[4], (1_564_494_591_000, Some(4.36)));
        assert_eq!(
            stats,
            ParseStats {
                series: 1,
                points: 5,
                bytes: GUIDE_EXAMPLE.len() as u64
            }
        );
    }

    #[test]
    fn members_in_any_order_and_unknown_members_are_skipped() {
        let body = r#"[{"dps":{"1700000000000":1},"stats":{"a":[1,{"b":null},"x\"]"],"c":true,"d":-1.5e3},
            "aggregateTags":["host"],"sparkline":[[1,2],[]],"tsuids":["000001"],"tags":{"vm":"vm-1"},
            "annotations":[],"weird":"NaN","query":{"aggregator":"none","tags":{"vm":"*"},"index":3,"filters":[]},
            "metric":"vscope.vm.cpu.usage.perc"}]"#;
        let series = parse(body).unwrap();
        assert_eq!(
            series,
            vec![Got {
                metric: "vscope.vm.cpu.usage.perc".to_string(),
                tags: tags(&[("vm", "vm-1")]),
                aggregate_tags: vec!["host".to_string()],
                query_index: Some(3),
                points: vec![(1_700_000_000_000, Some(1.0))],
            }]
        );
    }

    #[test]
    fn escapes_and_unicode_in_strings_are_decoded() {
        let body = r#"[{"metric":"m\/x","tags":{"vm":"caf\u00e9 \"quoted\" \\ \t\n","emoji":"\ud83d\ude00 ok","raw":"é—ü","lone":"a\udc00b"},"dps":{}}]"#;
        let series = parse(body).unwrap();
        assert_eq!(series[0].metric, "m/x");
        assert_eq!(
            series[0].tags,
            tags(&[
                ("emoji", "\u{1F600} ok"),
                ("lone", "a\u{FFFD}b"),
                ("raw", "é—ü"),
                ("vm", "café \"quoted\" \\ \t\n"),
            ])
        );
    }

    #[test]
    fn second_keys_are_scaled_and_millisecond_keys_kept() {
        let body = r#"[{"metric":"m","dps":{"1564409391":1,"1564409391500":2,"0":3}}]"#;
        let series = parse(body).unwrap();
        assert_eq!(
            series[0].points,
            vec![
                (0, Some(3.0)),
                (1_564_409_391_000, Some(1.0)),
                (1_564_409_391_500, Some(2.0))
            ]
        );
    }

    #[test]
    #[allow(
        clippy::excessive_precision,
        reason = "the text has more digits than a double: it must parse to the nearest"
    )]
    fn every_spelling_of_no_value_is_nan_and_numbers_in_any_form_parse() {
        let body = r#"[{"metric":"m","dps":{"1":null,"2":"NaN","3":NaN,"4":Infinity,"5":-Infinity,
            "6":"Infinity","7":"-Infinity","8":-0.5,"9":1e3,"10":2.5E-2,"11":12345678901234567890,
            "12":0.1,"13":-7,"14":1.7976931348623157e308,"15":123456789.123456789}}]"#;
        let series = parse(body).unwrap();
        let values: Vec<Option<f64>> = series[0].points.iter().map(|p| p.1).collect();
        assert_eq!(
            values,
            vec![
                None,
                None,
                None,
                None,
                None,
                None,
                None,
                Some(-0.5),
                Some(1000.0),
                Some(0.025),
                Some(12345678901234567890.0),
                Some(0.1),
                Some(-7.0),
                Some(f64::MAX),
                Some(123456789.123456789),
            ]
        );
    }

    #[test]
    fn the_fast_path_takes_compact_points_and_leaves_the_rest() {
        let window = |point: &str| format!("{point}{}", " ".repeat(POINT_WINDOW));
        let fast = |body: &[u8]| {
            fast_point(body, 0, &mut (0, 0)).map(|(ts, v, end)| (ts, v.double(), v.key(), end))
        };
        let body = window(r#""1759276800":12.34,"#);
        assert_eq!(
            fast(body.as_bytes()),
            Some((1_759_276_800_000, 12.34, cents::key(12.34).unwrap(), 18))
        );
        let body = window(r#""1759276800123":-7}"#);
        assert_eq!(
            fast(body.as_bytes()),
            Some((1_759_276_800_123, -7.0, cents::key(-7.0).unwrap(), 18))
        );
        // The key's first eight digits are read again when they change, and only then.
        let mut prefix = (0, 0);
        for (key, ts) in [
            ("1759276800", 1_759_276_800_000),
            ("1759276860", 1_759_276_860_000),
            ("1759286800", 1_759_286_800_000),
            ("1759286800123", 1_759_286_800_123),
            ("1759276800", 1_759_276_800_000),
        ] {
            let body = window(&format!(r#""{key}":1,"#));
            assert_eq!(fast_point(body.as_bytes(), 0, &mut prefix).unwrap().0, ts);
            assert_eq!(prefix.1, key[..8].parse::<i64>().unwrap());
        }
        for other in [
            r#""1759276800" : 1,"#,
            r#""1759276800":NaN,"#,
            r#""1759276800":1e3,"#,
            r#""1759276800":.5,"#,
            r#""1759276800":7.,"#,
            r#""1759276800":7.5.1,"#,
            r#""17592768x0":1,"#,
        ] {
            assert_eq!(fast(window(other).as_bytes()), None, "{other}");
        }
        // Too close to the end of the input: left to the general path.
        assert_eq!(fast(br#""1759276800":12.34,"#), None);
    }

    #[test]
    fn compact_points_carry_their_values_hundredths_key() {
        let window = |value: &str| format!(r#""1759276800":{value},{}"#, " ".repeat(POINT_WINDOW));
        for value in [
            "4.38",
            "4.3",
            "4",
            "0",
            "0.0",
            "0.01",
            "-0",
            "-0.00",
            "-0.01",
            "35.31",
            "1225.91",
            "83886.07",
            "83886.08",
            "-83886.08",
            "-83886.09",
            "8388607",
            "0.001",
            "12.345",
            "-7",
            "1234567",
            "100000.5",
            "0.10",
        ] {
            let (_, decimal, _) = fast_point(window(value).as_bytes(), 0, &mut (0, 0)).unwrap();
            let (v, key) = (decimal.double(), decimal.key());
            assert_eq!(v, value.parse::<f64>().unwrap(), "{value}");
            assert_eq!(key, cents::key(v).unwrap_or(cents::NO_KEY), "{value}");
        }
        // A series hands its keys on only when every value had one and the points came in order.
        let series = |dps: &str| {
            let body = format!(
                r#"[{{"metric":"m","tags":{{}},"dps":{{{dps}}}}}]{}"#,
                " ".repeat(64)
            );
            let mut keys = Vec::new();
            ResponseParser::new()
                .feed(body.as_bytes(), &mut |s: Series<'_>| {
                    keys.push(s.values.as_keys().map(<[u32]>::to_vec));
                })
                .unwrap();
            keys.pop().unwrap()
        };
        let dps = |values: [&str; 3]| {
            let keys = ["1759276800", "1759276860", "1759276920"];
            let points = keys
                .iter()
                .zip(values)
                .map(|(k, v)| format!(r#""{k}":{v}"#));
            points.collect::<Vec<_>>().join(",")
        };
        let expected = [4.38, 0.5, -2.0].map(|v| cents::key(v).unwrap()).to_vec();
        assert_eq!(series(&dps(["4.38", "0.5", "-2"])), Some(expected.clone()));
        assert_eq!(series(&dps(["4.38", "0.125", "-2"])), None);
        assert_eq!(series(&dps(["4.38", "NaN", "-2"])), None);
        // Off the fast path (here for the blank), a value's key is worked out from the double.
        assert_eq!(series(&dps(["4.38", " 0.5", "-2"])), Some(expected.clone()));
        assert_eq!(series(&dps(["4.38", " 0.125", "-2"])), None);
        let unsorted = dps(["4.38", "0.5", "-2"]).replace("1759276860", "1759276700");
        assert_eq!(series(&unsorted), None);

        // A series handed on as its keys offers no doubles, only what the keys are worth; one
        // handed on as doubles has them all, NaN for no value.
        for (values, doubles, as_keys) in [
            (["4.38", "0.5", "-2"], [4.38, 0.5, -2.0], true),
            (["4.38", "0.125", "-2"], [4.38, 0.125, -2.0], false),
            (["4.38", "NaN", "-2"], [4.38, f64::NAN, -2.0], false),
        ] {
            let body = format!(
                r#"[{{"metric":"m","tags":{{}},"dps":{{{}}}}}]{}"#,
                dps(values),
                " ".repeat(64)
            );
            let mut got = Vec::new();
            ResponseParser::new()
                .feed(body.as_bytes(), &mut |s: Series<'_>| {
                    assert_eq!(s.values.as_doubles().is_none(), as_keys, "{values:?}");
                    got.push(s.values.to_doubles());
                })
                .unwrap();
            let bits = |v: &[f64]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&got.pop().unwrap()), bits(&doubles), "{values:?}");
        }
    }

    #[test]
    fn compact_points_parse_as_the_general_path_does() {
        // Each point alone in a body padded so the fast path sees it, and the same body with
        // whitespace so the general path does: both must give the same series.
        let points = [
            ("1759276800", "12.34"),
            ("1759276860", "-0"),
            ("1759276920", "0.1"),
            ("1759276980000", "9007199254740992"),
            ("1759277040", "9007199254740993"),
            ("1759277100", "1e3"),
            ("1759277160", "123456789012345678"),
            ("1759277220", "0.0000000000000000001"),
            ("17592772", "5"),
            ("999999999999999999", "3.25"),
            ("1759277280", "NaN"),
            ("1759277340", "-1234.5678"),
            ("1759277400", "12345678.5"),
            ("1759277460", "0.12345678"),
            ("1759277520", "1.1234567"),
            ("1759277580", "-7"),
            ("1759277640", "1234567"),
            ("1759277700", "99999999999999999999"),
            ("1759277760", "4503599627370496.5"),
            ("1759277820", "1234567.1234567"),
            ("1759277880", "-0.05"),
            ("1759277940", "12.50e1"),
            // Around the one-word decimal: six digits and a dot, and one more.
            ("1759278000", "1234.56"),
            ("1759278060", "1.23456"),
            ("1759278120", "123456.7"),
            ("1759278180", "12345.67"),
            ("1759278240", "-999999.9"),
            ("1759278300", "100000"),
        ];
        for (key, value) in points {
            let compact = format!(
                r#"[{{"metric":"m","tags":{{}},"dps":{{"{key}":{value},"{key}":{value}}}}}{}]"#,
                " ".repeat(64)
            );
            let spaced = compact.replace(':', " : ").replace(',', " , ");
            let (a, b) = (parse(&compact).unwrap(), parse(&spaced).unwrap());
            assert_eq!(a, b, "{key}:{value}");
            let expected = value.parse::<f64>().ok().filter(|v| !v.is_nan());
            assert_eq!(a[0].points[0].1, expected, "{key}:{value}");
            assert_eq!(a[0].points.len(), 2);
        }
        for (text, n) in [
            ("12.34,\"1", 2),
            ("7\"abcdef", 1),
            ("1234567.", 7),
            (",1234567", 0),
        ] {
            let word = u64::from_le_bytes(text.as_bytes().try_into().unwrap());
            assert_eq!(leading_digits(word), n, "{text}");
            let expected: u64 = if n == 0 {
                0
            } else {
                text[..n].parse().unwrap()
            };
            assert_eq!(digits_value(word, n), expected, "{text}");
        }
        assert_eq!(leading_digits(u64::from_le_bytes(*b"12345678")), 8);
        // One flag a byte that is not a digit, whatever the byte: '.', ',', '"', ':', '/', 0xB0.
        let flags = non_digits(u64::from_le_bytes(*b"12.34,\"1"));
        assert_eq!(flags, 0x80 << 16 | 0x80 << 40 | 0x80 << 48);
        let flags = non_digits(u64::from_le_bytes([
            b'9', b':', b'/', 0xB0, b'0', 0, b'5', 0x39,
        ]));
        assert_eq!(flags, 0x80 << 8 | 0x80 << 16 | 0x80 << 24 | 0x80 << 40);
        let word = u64::from_le_bytes(*b"17592768");
        assert!(all_digits(word));
        assert_eq!(parse_eight_digits(word), 17_592_768);
        for bad in [*b"1759276a", *b"1759/768", *b"175927:8", *b" 7592768"] {
            assert!(!all_digits(u64::from_le_bytes(bad)), "{bad:?}");
        }
    }

    #[test]
    fn fast_number_path_matches_std_parse() {
        let samples = [
            "4.38",
            "0.1",
            "0.3",
            "1",
            "-0",
            "123.456",
            "9007199254740993",
            "9007199254740992",
            "0.000000000000000000001",
            "99.99999999999999",
            "1.0000000000000002",
            "33.333333333",
            "4503599627370497.5",
            "0.00000000000000000000001",
        ];
        for s in samples {
            let body = format!("{s},");
            let mut pos = 0;
            let Ok(v) = number(body.as_bytes(), &mut pos) else {
                panic!("{s} did not parse")
            };
            let want: f64 = s.parse().unwrap();
            assert_eq!(v.to_bits(), want.to_bits(), "{s}");
            assert_eq!(pos, s.len());
        }
    }

    #[test]
    fn empty_array_empty_and_missing_dps_are_fine() {
        assert_eq!(parse("[]").unwrap(), vec![]);
        assert_eq!(parse(" \n[ ]\r\n ").unwrap(), vec![]);
        let series = parse(r#"[{"metric":"a","dps":{}},{"metric":"b"},{"metric":"c","dps":[]},{"metric":"d","dps":null,"tags":null}]"#).unwrap();
        assert_eq!(series.len(), 4);
        assert!(series.iter().all(|s| s.points.is_empty()));
        assert_eq!(series[3].metric, "d");
    }

    #[test]
    fn unsorted_points_come_out_sorted() {
        let body = r#"[{"metric":"m","dps":{"30":3,"10":1,"20":2,"10000000000000":4}}]"#;
        let series = parse(body).unwrap();
        assert_eq!(
            series[0].points,
            vec![
                (10_000, Some(1.0)),
                (20_000, Some(2.0)),
                (30_000, Some(3.0)),
                (10_000_000_000_000, Some(4.0))
            ]
        );
    }

    #[test]
    fn dps_as_an_array_of_pairs() {
        let body =
            r#"[{"metric":"m","dps":[[1564409391,4.38],[ 1564409391500 , null ],[1,"NaN"]]}]"#;
        let series = parse(body).unwrap();
        assert_eq!(
            series[0].points,
            vec![
                (1000, None),
                (1_564_409_391_000, Some(4.38)),
                (1_564_409_391_500, None)
            ]
        );
    }

    /// A body that exercises every kind of token, for the split-point test.
    const SPLIT_SAMPLE: &str = r#" [ {"dps" : {"1564409391" : 4.38 , "1564409392":-1.5e-3,"1564409390":null},
  "metric":"vscope.vm.net.rx","tags":{"vm":"v\u00e9\ud83d\ude00","datacenter":"dc\"1\\"},
  "x":{"deep":[1,[2,{"z":"]}"}],true,false,null,NaN,-Infinity]},"aggregateTags":["a","b"],
  "query":{"index":12}},{"metric":"m2","dps":[[1,"NaN"],[2,Infinity],[1700000000123,0.25]]},
  {"metric":"m3"}]
"#;

    #[test]
    fn every_split_point_gives_the_same_series() {
        let body = SPLIT_SAMPLE.as_bytes();
        let whole = parse_chunked(body, usize::MAX).unwrap();
        assert_eq!(whole.0.len(), 3);
        assert_eq!(whole.0[0].points.len(), 3);
        assert_eq!(whole.0[0].query_index, Some(12));
        for split in 0..=body.len() {
            let mut out = Vec::new();
            let mut sink = |s: Series<'_>| out.push(got(s));
            let mut parser = ResponseParser::new();
            parser.feed(&body[..split], &mut sink).unwrap();
            parser.feed(&body[split..], &mut sink).unwrap();
            let stats = parser.finish(&mut sink).unwrap();
            assert_eq!((out, stats), whole, "split at byte {split}");
        }
        for size in 1..8 {
            assert_eq!(
                parse_chunked(body, size).unwrap(),
                whole,
                "chunks of {size} bytes"
            );
        }
    }

    #[test]
    fn a_unit_longer_than_the_stitch_spans_chunks() {
        // A tag value of 3 stitches, cut at every few thousand bytes, among ordinary points.
        let long = "x".repeat(3 * STITCH_BYTES);
        let points: Vec<String> = (0..2_000)
            .map(|i| format!("\"{}\":{}.25", 1_700_000_000 + 60 * i, i))
            .collect();
        let body = format!(
            r#"[{{"metric":"m","tags":{{"vm":"{long}"}},"dps":{{{}}}}},{{"metric":"n","dps":{{"1":2}}}}]"#,
            points.join(",")
        );
        let whole = parse_chunked(body.as_bytes(), usize::MAX).unwrap();
        assert_eq!(whole.0.len(), 2);
        assert_eq!(whole.0[0].points.len(), 2_000);
        for size in [STITCH_BYTES - 1, STITCH_BYTES + 3, 2 * STITCH_BYTES + 17] {
            assert_eq!(
                parse_chunked(body.as_bytes(), size).unwrap(),
                whole,
                "chunks of {size}"
            );
        }
    }

    #[test]
    fn a_truncated_body_fails_at_finish_and_is_marked_truncated() {
        let body = SPLIT_SAMPLE.trim_end().as_bytes();
        for cut in 0..body.len() {
            let mut parser = ResponseParser::new();
            let mut sink = |_: Series<'_>| {};
            parser.feed(&body[..cut], &mut sink).unwrap();
            let err = parser.finish(&mut sink).unwrap_err();
            assert!(err.truncated, "cut at {cut}: {err}");
            assert_eq!(err.offset, cut as u64);
        }
        let err = parse(r#"[{"metric":"m","dps":{"1":1"#).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid response at byte 27: the body ended early (truncated response): expected the rest of an unfinished value"
        );
    }

    #[test]
    fn garbage_is_reported_with_its_byte_offset() {
        let cases: &[(&str, u64, &str)] = &[
            ("<html>", 0, "expected '[' at the start of the response, found '<'"),
            (r#"{"error":{}}"#, 0, "expected '[' at the start of the response, found '{'"),
            ("[1]", 1, "expected a series object or ']', found '1'"),
            (r#"[{"metric":"m","dps":{"1":true}}]"#, 26, "expected a number, null or NaN as a value, found 't'"),
            (r#"[{"metric":"m","dps":{"1":"4.5"}}]"#, 26, "expected a number (a string is only allowed as \"NaN\" or \"Infinity\"), found '\"'"),
            (r#"[{"metric":"m","dps":{"1x":1}}]"#, 24, "expected a timestamp of at most 18 digits as a \"dps\" key, found 'x'"),
            (r#"[{"metric":"m","dps":{"":1}}]"#, 23, "expected a timestamp of at most 18 digits as a \"dps\" key, found '\"'"),
            (r#"[{"metric":"m","dps":{"1":1.2.3}}]"#, 26, "expected a number, found '1.2.3'"),
            (r#"[{"metric":"m"}] x"#, 17, "expected nothing after the end of the response array, found 'x'"),
            (r#"[{"metric":"m"},]"#, 16, "expected a series object, found ']'"),
            (r#"[{"dps":{}}]"#, 10, "a series object without \"metric\" ends here (found '}')"),
            (r#"[{"metric":7}]"#, 11, "expected the metric name as a string, found '7'"),
            (r#"[{"metric":"m","tags":{"vm":1}}]"#, 28, "expected a tag value (a string), found '1'"),
        ];
        for &(body, offset, message) in cases {
            let err = parse(body).unwrap_err();
            assert_eq!(
                (err.offset, err.message.as_str(), err.truncated),
                (offset, message, false),
                "{body}"
            );
            // Fed byte by byte the error is the same.
            let err2 = parse_chunked(body.as_bytes(), 1).unwrap_err();
            assert_eq!(err2, err, "{body} byte by byte");
        }
    }

    /// A series' points, NaN as `None`.
    type Points = Vec<(i64, Option<f64>)>;

    /// Series objects with two `dps` members, padded so that their compact points take the
    /// fast path, each with the points of its second `dps`.
    fn two_dps_members() -> Vec<(String, Points)> {
        let firsts = [
            r#"{"1700000000":1000,"1700000060":61.77}"#,
            r#"{"1700000000":0.125,"1700000060":NaN}"#,
            r#"[[1700000000,1000],[1700000060,0.125]]"#,
            r#"{"1700000300":1,"1700000000":2}"#,
            "null",
        ];
        let seconds: [(&str, Points); 6] = [
            (
                r#"{"1700000120":61.77,"1700000180":5}"#,
                vec![
                    (1_700_000_120_000, Some(61.77)),
                    (1_700_000_180_000, Some(5.0)),
                ],
            ),
            (
                r#"{"1700000180":5,"1700000120":0.5}"#,
                vec![
                    (1_700_000_120_000, Some(0.5)),
                    (1_700_000_180_000, Some(5.0)),
                ],
            ),
            (
                r#"{"1700000120":0.125}"#,
                vec![(1_700_000_120_000, Some(0.125))],
            ),
            (
                r#"[[1700000120,61.77]]"#,
                vec![(1_700_000_120_000, Some(61.77))],
            ),
            ("null", vec![]),
            ("{}", vec![]),
        ];
        let mut cases = Vec::new();
        for first in firsts {
            for (second, points) in &seconds {
                let body = format!(
                    r#"[{{"metric":"m","dps":{first},"tags":{{"vm":"a"}},"dps":{second}}}]{}"#,
                    " ".repeat(64)
                );
                cases.push((body, points.clone()));
            }
        }
        cases
    }

    #[test]
    fn a_later_dps_member_replaces_the_earlier_one() {
        for (body, points) in two_dps_members() {
            let expected = vec![Got {
                metric: "m".to_string(),
                tags: tags(&[("vm", "a")]),
                aggregate_tags: vec![],
                query_index: None,
                points,
            }];
            // Whole (the fast path), and in chunks too small for it (the general one).
            for chunk in [usize::MAX, 1, 7] {
                let (series, stats) = parse_chunked(body.as_bytes(), chunk).unwrap();
                assert_eq!(series, expected, "{body} in chunks of {chunk}");
                assert_eq!(stats.points, expected[0].points.len() as u64);
            }
        }
    }

    #[test]
    fn a_later_dps_member_replaces_the_earlier_one_in_a_page_spooled_to_disk() {
        // A first series large enough that the page goes to disk, where series go as keys.
        let big: Vec<String> = (0..100_000)
            .map(|i| format!(r#""{}":{}.5"#, 1_600_000_000 + 60 * i, i % 1000))
            .collect();
        let big = format!(r#"{{"metric":"big","dps":{{{}}}}}"#, big.join(","));
        for (body, points) in two_dps_members() {
            let body = body.replacen('[', &format!("[{big},"), 1);
            let dir = tempfile::tempdir().unwrap();
            let mut spool = crate::extract::Spool::new(dir.path().to_path_buf());
            let mut parser = ResponseParser::new();
            for part in body.as_bytes().chunks(64 << 10) {
                parser.feed(part, &mut spool).unwrap();
            }
            parser.finish(&mut spool).unwrap();
            assert!(spool.on_disk());
            let mut out = Vec::new();
            spool.replay(&mut |s: Series<'_>| out.push(got(s))).unwrap();
            assert_eq!(out.len(), 2, "{body}");
            assert_eq!(out[1].points, points, "{}", &body[big.len()..]);
        }
    }

    #[test]
    fn a_later_member_of_any_name_wins() {
        let body = r#"[{"metric":"first","tags":{"vm":"a","dc":"d1"},"aggregateTags":["x"],
            "query":{"index":1},"dps":{"1":1},"metric":"last","tags":{"vm":"b","vm":"c","env":"e"},
            "aggregateTags":["y","z"],"query":{"index":2,"index":3},"query":{"index":4,"index":"x"}}]"#;
        assert_eq!(
            parse(body).unwrap(),
            vec![Got {
                metric: "last".to_string(),
                tags: tags(&[("env", "e"), ("vm", "c")]),
                aggregate_tags: vec!["y".to_string(), "z".to_string()],
                query_index: None,
                points: vec![(1000, Some(1.0))],
            }]
        );
        let body = r#"[{"metric":"m","tags":{"vm":"b"},"tags":null,"aggregateTags":["y"],"aggregateTags":null,"query":{"index":2},"query":7}]"#;
        assert_eq!(
            parse(body).unwrap(),
            vec![Got {
                metric: "m".to_string(),
                tags: vec![],
                aggregate_tags: vec![],
                query_index: None,
                points: vec![],
            }]
        );
    }

    #[test]
    fn a_failed_parser_keeps_failing() {
        let mut parser = ResponseParser::new();
        let mut sink = |_: Series<'_>| {};
        assert!(parser.feed(b"[x", &mut sink).is_err());
        assert!(parser.feed(b"]", &mut sink).is_err());
        assert!(parser.finish(&mut sink).is_err());
    }

    #[test]
    fn series_are_emitted_as_soon_as_their_object_closes() {
        let mut parser = ResponseParser::new();
        let mut seen = Vec::new();
        let mut sink = |s: Series<'_>| seen.push(s.metric.to_string());
        parser
            .feed(
                br#"[{"metric":"a","dps":{"1":1}},{"metric":"b","#,
                &mut sink,
            )
            .unwrap();
        assert_eq!(seen, vec!["a".to_string()]);
        // Only the unfinished member is kept, not the body read so far.
        assert!(
            parser.buf.len() <= r#""metric":"b","#.len(),
            "{}",
            parser.buf.len()
        );
    }

    #[test]
    fn each_series_has_its_own_tags_only() {
        let body = r#"[{"metric":"a","tags":{"vm":"vm-1","dc":"d1","env":"prod"},"dps":{}},
            {"metric":"b","tags":{"host":"h-1"},"dps":{}},
            {"metric":"c","dps":{}},
            {"metric":"d","tags":null,"dps":{}},
            {"metric":"e","tags":{"z":"1","a":"2"},"dps":{}}]"#;
        let got = parse(body).unwrap();
        let tags_of = |i: usize| got[i].tags.clone();
        assert_eq!(
            tags_of(0),
            tags(&[("dc", "d1"), ("env", "prod"), ("vm", "vm-1")])
        );
        assert_eq!(tags_of(1), tags(&[("host", "h-1")]));
        assert_eq!(tags_of(2), tags(&[]));
        assert_eq!(tags_of(3), tags(&[]));
        assert_eq!(tags_of(4), tags(&[("a", "2"), ("z", "1")]));
    }

    #[test]
    fn tag_lookup_uses_sorted_tags() {
        let series = [
            ("a".to_string(), "1".to_string()),
            ("vm".to_string(), "v".to_string()),
        ];
        let s = Series {
            metric: "m",
            tags: &series,
            aggregate_tags: &[],
            query_index: None,
            timestamps_ms: &[],
            values: ValuesSlice::doubles(&[]),
        };
        assert_eq!(s.tag("vm"), Some("v"));
        assert_eq!(s.tag("host"), None);
    }

    /// `cargo test --release --lib tsdb::parse::tests::throughput -- --ignored --nocapture`
    #[test]
    #[ignore]
    fn throughput() {
        let mut body = String::from("[");
        let series = 2_000;
        let points = 1_440;
        for s in 0..series {
            if s > 0 {
                body.push(',');
            }
            body.push_str(&format!(
                r#"{{"metric":"vscope.vm.cpu.usage.perc","tags":{{"datacenter":"dc1","vm":"vm-{s}","env":"prod"}},"aggregateTags":[],"query":{{"index":0}},"dps":{{"#
            ));
            for p in 0..points {
                if p > 0 {
                    body.push(',');
                }
                let ts = 1_700_000_000_000i64 + p as i64 * 60_000;
                body.push_str(&format!(r#""{ts}":{}.{:02}"#, (p * 7 + s) % 100, p % 100));
            }
            body.push_str("}}");
        }
        body.push(']');
        let bytes = body.as_bytes();
        // The best of five: the first pass also pays for faulting in the parser's buffers.
        let mut best = std::time::Duration::MAX;
        let mut stats = ParseStats::default();
        let mut total = 0.0;
        for _ in 0..5 {
            let start = std::time::Instant::now();
            // What the transform does with a series: its doubles.
            let mut doubles = Vec::new();
            let mut sink = |s: Series<'_>| {
                doubles.clear();
                s.values.append_doubles_to(&mut doubles);
                total += doubles[0];
            };
            let mut parser = ResponseParser::new();
            for chunk in bytes.chunks(16 * 1024) {
                parser.feed(chunk, &mut sink).unwrap();
            }
            stats = parser.finish(&mut sink).unwrap();
            best = best.min(start.elapsed());
        }
        eprintln!(
            "{} points, {} MB in {:?}: {:.1} ns/point (checksum {total})",
            stats.points,
            bytes.len() / 1_000_000,
            best,
            best.as_nanos() as f64 / stats.points as f64
        );
        assert_eq!(stats.points, (series * points) as u64);
    }
}

#[cfg(test)]
mod proptests;
