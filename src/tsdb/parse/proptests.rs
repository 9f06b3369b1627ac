//! Property tests of the response parser, which reads untrusted bytes: whatever the bytes and
//! however they are cut into chunks, it never panics and gives one answer; and a valid response,
//! in any of the spellings the endpoints use, parses to what a reference built on `serde_json`
//! makes of it, on the fast path and on the general one.
//!
//! The reference applies the rules the parser documents: the last member of a name wins (as in
//! a JSON object read into a map), tags come sorted by name, a key of ten digits or fewer is
//! seconds, every spelling of "no value" is `f64::NAN`, and points are sorted by time keeping
//! the server's order among equal ones. `serde_json` reads no bare `NaN` or `Infinity`, so the
//! text it is given spells those as strings, which mean the same.

use std::collections::BTreeMap;
use std::fmt;

use proptest::prelude::*;
use proptest::sample::Index;
use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::{cents, ParseError, ParseStats, ResponseParser, Series, SeriesSink};

/// A series as the parser gives it, with each value's bits (NaN compares as NaN).
#[derive(Debug, Clone, PartialEq)]
struct Parsed {
    metric: String,
    tags: Vec<(String, String)>,
    aggregate_tags: Vec<String>,
    query_index: Option<usize>,
    points: Vec<(i64, u64)>,
}

/// Collects series, checking what every series promises its sink on the way.
struct Collect {
    series: Vec<Parsed>,
}

impl SeriesSink for Collect {
    fn series(&mut self, s: Series<'_>) {
        let n = s.timestamps_ms.len();
        assert!(s.timestamps_ms.is_sorted(), "timestamps ascending");
        assert_eq!(s.values.len(), n, "a value for each point");
        let values = s.values.to_doubles();
        if let Some(keys) = s.values.as_keys() {
            for (&v, &k) in values.iter().zip(keys) {
                assert_eq!(cents::key(v), Some(k), "a key is its value's");
            }
        }
        self.series.push(Parsed {
            metric: s.metric.to_string(),
            tags: s.tags.to_vec(),
            aggregate_tags: s.aggregate_tags.to_vec(),
            query_index: s.query_index,
            points: s
                .timestamps_ms
                .iter()
                .zip(values)
                .map(|(&t, v)| (t, v.to_bits()))
                .collect(),
        });
    }
}

type Outcome = Result<(Vec<Parsed>, ParseStats), ParseError>;

/// `body` fed in the chunks that `cuts` (positions, any order, repeats allowed) make.
fn parse(body: &[u8], cuts: &[Index], fast: bool) -> Outcome {
    let mut at: Vec<usize> = cuts.iter().map(|i| i.index(body.len() + 1)).collect();
    at.push(0);
    at.push(body.len());
    at.sort_unstable();
    let mut parser = if fast {
        ResponseParser::new()
    } else {
        ResponseParser::without_fast_path()
    };
    let mut sink = Collect { series: Vec::new() };
    for w in at.windows(2) {
        // Empty chunks too: a read may return nothing.
        parser.feed(&body[w[0]..w[1]], &mut sink)?;
    }
    let stats = parser.finish(&mut sink)?;
    Ok((sink.series, stats))
}

/// Every way of running the parser on `body`: whole and cut, fast path and general. All must
/// give the same outcome, which is returned.
fn parse_every_way(body: &[u8], cuts: &[Index]) -> Outcome {
    let whole = parse(body, &[], true);
    for fast in [true, false] {
        for cuts in [&[][..], cuts] {
            let other = parse(body, cuts, fast);
            assert_eq!(other, whole, "fast path {fast}, cut at {cuts:?}");
        }
    }
    whole
}

// The reference.

fn reference(json: &str) -> serde_json::Result<Vec<Parsed>> {
    let series: Vec<RefSeries> = serde_json::from_str(json)?;
    Ok(series.into_iter().map(|s| s.0).collect())
}

/// A timestamp as the parser reads it: `digits` digits of ten or fewer are seconds.
fn to_ms(n: u64, digits: usize) -> i64 {
    if digits <= 10 {
        n as i64 * 1000
    } else {
        n as i64
    }
}

struct RefSeries(Parsed);

impl<'de> Deserialize<'de> for RefSeries {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(RefSeriesVisitor)
    }
}

struct RefSeriesVisitor;

impl<'de> Visitor<'de> for RefSeriesVisitor {
    type Value = RefSeries;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a series object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RefSeries, A::Error> {
        let mut metric = None;
        let mut tags = BTreeMap::new();
        let mut aggregate_tags = Vec::new();
        let mut query_index = None;
        let mut points = Vec::new();
        // Each member replaces an earlier one of its name; a map keeps a tag's last value.
        while let Some(name) = map.next_key::<String>()? {
            match name.as_str() {
                "metric" => metric = Some(map.next_value::<String>()?),
                "tags" => {
                    tags = map
                        .next_value::<Option<BTreeMap<String, String>>>()?
                        .unwrap_or_default()
                }
                "aggregateTags" => {
                    aggregate_tags = map.next_value::<Option<Vec<String>>>()?.unwrap_or_default()
                }
                "query" => {
                    let query = map.next_value::<serde_json::Value>()?;
                    query_index = query
                        .get("index")
                        .and_then(serde_json::Value::as_u64)
                        .filter(|&n| n < 10u64.pow(18))
                        .map(|n| n as usize);
                }
                "dps" => points = map.next_value::<RefDps>()?.0,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let metric = metric.ok_or_else(|| de::Error::missing_field("metric"))?;
        // Stable: points sharing a timestamp keep the server's order.
        points.sort_by_key(|&(ts, _)| ts);
        Ok(RefSeries(Parsed {
            metric,
            tags: tags.into_iter().collect(),
            aggregate_tags,
            query_index,
            points: points.into_iter().map(|(t, v)| (t, v.to_bits())).collect(),
        }))
    }
}

/// `dps` as a map of keys to values, a list of `[ts, value]` pairs, or `null`.
struct RefDps(Vec<(i64, f64)>);

impl<'de> Deserialize<'de> for RefDps {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RefDpsVisitor)
    }
}

struct RefDpsVisitor;

impl<'de> Visitor<'de> for RefDpsVisitor {
    type Value = RefDps;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"dps\"")
    }

    fn visit_unit<E: de::Error>(self) -> Result<RefDps, E> {
        Ok(RefDps(Vec::new()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RefDps, A::Error> {
        // Every point, in order: a map would keep one of the points that share a key.
        let mut points = Vec::new();
        while let Some(key) = map.next_key::<String>()? {
            let n = key
                .parse::<u64>()
                .map_err(|_| de::Error::custom(format!("key {key:?}")))?;
            let RefValue(v) = map.next_value()?;
            points.push((to_ms(n, key.len()), v));
        }
        Ok(RefDps(points))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RefDps, A::Error> {
        let mut points = Vec::new();
        while let Some((n, RefValue(v))) = seq.next_element::<(u64, RefValue)>()? {
            points.push((to_ms(n, n.to_string().len()), v));
        }
        Ok(RefDps(points))
    }
}

/// A point's value: a number, or `null`, `"NaN"`, `"Infinity"` or `"-Infinity"`: no value.
struct RefValue(f64);

impl<'de> Deserialize<'de> for RefValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RefValueVisitor)
    }
}

struct RefValueVisitor;

impl Visitor<'_> for RefValueVisitor {
    type Value = RefValue;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a point's value")
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<RefValue, E> {
        Ok(RefValue(v))
    }

    // `as` rounds to the nearest double, as the text's value is rounded.
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<RefValue, E> {
        Ok(RefValue(v as f64))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<RefValue, E> {
        Ok(RefValue(v as f64))
    }

    fn visit_unit<E: de::Error>(self) -> Result<RefValue, E> {
        Ok(RefValue(f64::NAN))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<RefValue, E> {
        match v {
            "NaN" | "Infinity" | "-Infinity" => Ok(RefValue(f64::NAN)),
            _ => Err(E::custom(format!("the string {v:?} as a value"))),
        }
    }
}

// Generated responses.

/// A token written one way for the parser and another for `serde_json` (a bare `NaN` for the
/// one, `"NaN"` for the other); most are written alike.
#[derive(Debug, Clone)]
struct Token {
    body: String,
    json: String,
}

impl Token {
    fn same(text: impl Into<String>) -> Token {
        let text = text.into();
        Token {
            body: text.clone(),
            json: text,
        }
    }
}

/// A JSON string, with its characters escaped as `style` says: 0 only where JSON must, 1 every
/// character past ASCII as `\u` (surrogate pairs past the BMP), 2 every character.
#[derive(Debug, Clone)]
struct Text(String, u8);

impl Text {
    fn write(&self, out: &mut Out) {
        let mut s = String::from("\"");
        for c in self.0.chars() {
            match c {
                '"' => s.push_str("\\\""),
                '\\' => s.push_str("\\\\"),
                '/' if self.1 == 2 => s.push_str("\\/"),
                '\n' if self.1 != 2 => s.push_str("\\n"),
                c if c < ' ' || (self.1 == 1 && !c.is_ascii()) || self.1 == 2 => {
                    let mut units = [0u16; 2];
                    for u in c.encode_utf16(&mut units) {
                        s.push_str(&format!("\\u{u:04x}"));
                    }
                }
                c => s.push(c),
            }
        }
        s.push('"');
        out.token(&Token::same(s));
    }
}

#[derive(Debug, Clone)]
enum Member {
    Metric(Text),
    Tags(Option<Vec<(Text, Text)>>),
    AggregateTags(Option<Vec<Text>>),
    /// `{"index": n, …}` or another value.
    Query(Json),
    DpsMap(Vec<(Text, Token)>),
    DpsList(Vec<(u64, Token)>),
    DpsNull,
    Other(Text, Json),
}

/// Any JSON value, for the members the parser skips and `query`'s.
#[derive(Debug, Clone)]
enum Json {
    Leaf(Token),
    Str(Text),
    Array(Vec<Json>),
    Object(Vec<(Text, Json)>),
}

/// The whitespace between tokens, drawn in turn from a list (none at all when it is empty:
/// the compact form, where points take the fast path).
struct Out {
    body: String,
    json: String,
    blanks: Vec<u8>,
    next: usize,
}

impl Out {
    fn token(&mut self, t: &Token) {
        self.blank();
        self.body.push_str(&t.body);
        self.json.push_str(&t.json);
    }

    fn punct(&mut self, p: &str) {
        self.token(&Token::same(p));
    }

    fn blank(&mut self) {
        if self.blanks.is_empty() {
            return;
        }
        let b = self.blanks[self.next % self.blanks.len()];
        self.next += 1;
        let blank = match b {
            0 => " ",
            1 => "\n",
            2 => "\t",
            3 => "\r\n  ",
            _ => "",
        };
        self.body.push_str(blank);
        self.json.push_str(blank);
    }

    fn list<T>(
        &mut self,
        open: &str,
        items: &[T],
        close: &str,
        mut item: impl FnMut(&mut Out, &T),
    ) {
        self.punct(open);
        for (i, x) in items.iter().enumerate() {
            if i > 0 {
                self.punct(",");
            }
            item(self, x);
        }
        self.punct(close);
    }

    fn member(&mut self, name: &str, value: impl FnOnce(&mut Out)) {
        Text(name.to_string(), 0).write(self);
        self.punct(":");
        value(self);
    }

    fn json(&mut self, v: &Json) {
        match v {
            Json::Leaf(t) => self.token(t),
            Json::Str(s) => s.write(self),
            Json::Array(items) => self.list("[", items, "]", Out::json),
            Json::Object(members) => self.list("{", members, "}", |out, (k, v)| {
                k.write(out);
                out.punct(":");
                out.json(v);
            }),
        }
    }

    fn series(&mut self, members: &[Member]) {
        self.list("{", members, "}", |out, m| match m {
            Member::Metric(s) => out.member("metric", |out| s.write(out)),
            Member::Tags(None) | Member::AggregateTags(None) | Member::DpsNull => {
                let name = match m {
                    Member::Tags(_) => "tags",
                    Member::AggregateTags(_) => "aggregateTags",
                    _ => "dps",
                };
                out.member(name, |out| out.punct("null"))
            }
            Member::Tags(Some(tags)) => out.member("tags", |out| {
                out.list("{", tags, "}", |out, (k, v)| {
                    k.write(out);
                    out.punct(":");
                    v.write(out);
                })
            }),
            Member::AggregateTags(Some(names)) => out.member("aggregateTags", |out| {
                out.list("[", names, "]", |out, s| s.write(out))
            }),
            Member::Query(v) => out.member("query", |out| out.json(v)),
            Member::DpsMap(points) => out.member("dps", |out| {
                out.list("{", points, "}", |out, (k, v)| {
                    k.write(out);
                    out.punct(":");
                    out.token(v);
                })
            }),
            Member::DpsList(points) => out.member("dps", |out| {
                out.list("[", points, "]", |out, (ts, v)| {
                    out.list("[", &[()], "]", |out, ()| {
                        out.punct(&ts.to_string());
                        out.punct(",");
                        out.token(v);
                    })
                })
            }),
            Member::Other(name, v) => {
                name.write(out);
                out.punct(":");
                out.json(v);
            }
        });
    }
}

/// A response: its text for the parser and for `serde_json`.
fn render(series: &[Vec<Member>], blanks: Vec<u8>) -> (String, String) {
    let mut out = Out {
        body: String::new(),
        json: String::new(),
        blanks,
        next: 0,
    };
    out.list("[", series, "]", |out, s| out.series(s));
    out.blank();
    (out.body, out.json)
}

fn text() -> impl Strategy<Value = Text> {
    let chars = prop_oneof![
        4 => prop::char::range('a', 'z'),
        1 => any::<char>(),
        1 => prop::sample::select(vec!['"', '\\', '/', '\n', '\u{0}', 'é', '😀', '.', '-']),
    ];
    (prop::collection::vec(chars, 0..10), 0u8..3)
        .prop_map(|(chars, style)| Text(chars.into_iter().collect(), style))
}

/// A point's value, in every spelling the endpoints use.
fn value() -> impl Strategy<Value = Token> {
    let hundredths = (-10_000_000i64..10_000_000, 0u8..3).prop_map(|(m, style)| {
        let (sign, a) = (if m < 0 { "-" } else { "" }, m.unsigned_abs());
        match style {
            0 => format!("{sign}{}.{:02}", a / 100, a % 100),
            // "4.3", "4": trailing zeros dropped.
            1 => format!("{sign}{}", a as f64 / 100.0),
            _ => format!("{sign}{}", a / 100),
        }
    });
    let exponent = (
        -99_999_999i64..99_999_999,
        0usize..8,
        prop::bool::ANY,
        -330i32..308,
    )
        .prop_map(|(m, point, upper, e)| {
            let digits = m.unsigned_abs().to_string();
            let point = point.min(digits.len() - 1);
            let (mantissa, integer_digits) = if point == 0 {
                (digits.clone(), digits.len() as i32)
            } else {
                (format!("{}.{}", &digits[..1], &digits[1..=point]), 1)
            };
            // Below 10^308: past the largest double is no number serde_json reads.
            let e = e.min(308 - integer_digits);
            let sign = if m < 0 { "-" } else { "" };
            format!("{sign}{mantissa}{}{e}", if upper { 'E' } else { 'e' })
        });
    let double = any::<f64>()
        .prop_filter("finite", |v| v.is_finite())
        .prop_flat_map(|v| {
            prop::sample::select(vec![format!("{v}"), format!("{v:e}"), format!("{v:E}")])
        });
    let single = any::<f32>()
        .prop_filter("finite", |v| v.is_finite())
        .prop_map(|v| format!("{}", v as f64));
    let integer = prop_oneof![
        any::<i64>().prop_map(|v| v.to_string()),
        any::<u64>().prop_map(|v| v.to_string()),
        // Past u64, and past what a double holds exactly.
        "[1-9][0-9]{19,30}",
    ];
    let fixed = prop::sample::select(vec![
        "4.38",
        "-0.0",
        "-0",
        "0",
        "0.0",
        "1e5",
        "1.2345678E7",
        "4.380000114440918",
        "9007199254740993",
        "0.1",
        "83886.07",
        "83886.08",
        "-83886.08",
        "-83886.09",
        "1.7976931348623157e308",
        "5e-324",
        "null",
        "\"NaN\"",
        "\"Infinity\"",
        "\"-Infinity\"",
    ])
    .prop_map(Token::same);
    let bare = prop::sample::select(vec!["NaN", "Infinity", "-Infinity"]).prop_map(|t| Token {
        body: t.to_string(),
        json: format!("\"{t}\""),
    });
    prop_oneof![
        8 => hundredths.prop_map(Token::same),
        2 => exponent.prop_map(Token::same),
        2 => double.prop_map(Token::same),
        2 => single.prop_map(Token::same),
        2 => integer.prop_map(Token::same),
        3 => fixed,
        1 => bare,
    ]
}

/// A timestamp: seconds of up to ten digits or milliseconds of up to 13, near one another (so
/// that the fast path's reuse of a key's first digits is tried) or anywhere.
fn timestamp() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => (0u64..5_000).prop_map(|k| 1_700_000_000 + 60 * k),
        2 => (0u64..5_000).prop_map(|k| 1_700_000_000_000 + 60_000 * k),
        1 => 0u64..10_000_000_000_000,
        1 => 0u64..1_000_000_000_000_000_000,
    ]
}

/// A `dps` key: a timestamp's digits, sometimes behind zeros (18 digits at most).
fn key() -> impl Strategy<Value = Text> {
    (timestamp(), 0usize..4).prop_map(|(ts, zeros)| {
        let digits = ts.to_string();
        let zeros = if zeros == 3 {
            18 - digits.len().min(18)
        } else {
            0
        };
        Text(format!("{}{digits}", "0".repeat(zeros)), 0)
    })
}

fn json() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        value().prop_map(Json::Leaf),
        prop::sample::select(vec!["true", "false", "null"])
            .prop_map(|t| Json::Leaf(Token::same(t))),
        text().prop_map(Json::Str),
    ];
    leaf.prop_recursive(3, 12, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
            prop::collection::vec((text(), inner), 0..4).prop_map(Json::Object),
        ]
    })
}

/// `query`: an object whose `index` (zero, one or more of them) is a small integer or something
/// that is no index; or a value of another kind.
fn query() -> impl Strategy<Value = Member> {
    let index = prop_oneof![
        4 => (0u64..1_000).prop_map(|n| Json::Leaf(Token::same(n.to_string()))),
        1 => prop::sample::select(vec!["-1", "1.5", "1e2", "\"3\"", "null", "999999999999999999", "1000000000000000000"])
            .prop_map(|t| Json::Leaf(Token::same(t))),
    ];
    let member = prop_oneof![
        3 => index.prop_map(|v| (Text("index".to_string(), 0), v)),
        1 => (text(), json()),
    ];
    prop_oneof![
        4 => prop::collection::vec(member, 0..4).prop_map(Json::Object),
        1 => json(),
    ]
    .prop_map(Member::Query)
}

fn member() -> impl Strategy<Value = Member> {
    let names = ["metric", "tags", "aggregateTags", "query", "dps"];
    let other_name = text().prop_filter("not a member the parser reads", move |t| {
        !names.contains(&t.0.as_str())
    });
    prop_oneof![
        1 => text().prop_map(Member::Metric),
        2 => prop::option::weighted(0.9, prop::collection::vec((text(), text()), 0..5))
            .prop_map(Member::Tags),
        1 => prop::option::weighted(0.9, prop::collection::vec(text(), 0..3))
            .prop_map(Member::AggregateTags),
        1 => query(),
        5 => prop::collection::vec((key(), value()), 0..24).prop_map(Member::DpsMap),
        1 => prop::collection::vec((timestamp(), value()), 0..6).prop_map(Member::DpsList),
        1 => Just(Member::DpsNull),
        1 => (other_name, json()).prop_map(|(name, v)| Member::Other(name, v)),
    ]
}

/// A series object: members in any order, any of them more than once, one `metric` at least.
fn series() -> impl Strategy<Value = Vec<Member>> {
    (
        text(),
        prop::collection::vec(member(), 0..6),
        any::<Index>(),
    )
        .prop_map(|(metric, mut members, at)| {
            members.insert(at.index(members.len() + 1), Member::Metric(metric));
            members
        })
}

/// Whitespace between tokens: none for half the responses (the compact form), else some.
fn blanks() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![Just(Vec::new()), prop::collection::vec(0u8..12, 1..32),]
}

fn response() -> impl Strategy<Value = (String, String)> {
    (prop::collection::vec(series(), 0..4), blanks())
        .prop_map(|(series, blanks)| render(&series, blanks))
}

fn cuts() -> impl Strategy<Value = Vec<Index>> {
    prop::collection::vec(any::<Index>(), 0..12)
}

/// Bytes that are mostly not a response: any bytes, bytes of JSON's alphabet after the start
/// of a series, and a response with some bytes changed, dropped or added.
fn bytes() -> impl Strategy<Value = Vec<u8>> {
    let alphabet = prop::collection::vec(
        prop::sample::select(b"[]{}\":,0123456789.eE+-NaInfityulrs \n\\/u".to_vec()),
        0..200,
    )
    .prop_map(|tail| {
        let mut body = br#"[{"metric":"m","dps":{"1700000000":4.38,"#.to_vec();
        body.extend(tail);
        body
    });
    let edits = prop::collection::vec((any::<Index>(), 0u8..3, any::<u8>()), 1..6);
    let edited = (response(), edits).prop_map(|((body, _), edits)| {
        let mut body = body.into_bytes();
        for (at, op, byte) in edits {
            let i = at.index(body.len() + 1);
            match op {
                0 if i < body.len() => body[i] = byte,
                1 if i < body.len() => {
                    body.remove(i);
                }
                _ => body.insert(i, byte),
            }
        }
        body
    });
    prop_oneof![prop::collection::vec(any::<u8>(), 0..200), alphabet, edited,]
}

// proptest's default of 256 cases a test, a few seconds in a debug build; `PROPTEST_CASES`
// asks for more.
proptest! {
    #[test]
    fn any_bytes_cut_anywhere_give_one_outcome_and_no_panic(body in bytes(), cuts in cuts()) {
        parse_every_way(&body, &cuts).ok();
    }

    #[test]
    fn a_valid_response_parses_as_serde_json_reads_it((body, json) in response(), cuts in cuts()) {
        let expected = reference(&json).unwrap_or_else(|e| panic!("{e} in {json}"));
        let (got, stats) = parse_every_way(body.as_bytes(), &cuts)
            .unwrap_or_else(|e| panic!("{e} in {body}"));
        prop_assert_eq!(&got, &expected, "{}", body);
        let points = expected.iter().map(|s| s.points.len() as u64).sum();
        prop_assert_eq!(
            stats,
            ParseStats { series: expected.len(), points, bytes: body.len() as u64 }
        );
    }
}
