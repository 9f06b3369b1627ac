//! The `/api/query` response parser fed arbitrary bytes cut into arbitrary chunks: it must
//! never panic, and it must give one outcome (the same series, or the same error at the same
//! byte) whole and cut, on the fast path for compact points and on the general one.
//!
//! The input's first byte picks how many of the next bytes give the chunks' lengths; the rest
//! is the body.

#![no_main]

use libfuzzer_sys::fuzz_target;
use vscope_export::tsdb::{ParseError, ParseStats, ResponseParser, Series};

/// A series with each value's bits, so that NaN compares equal to NaN.
type Parsed = (
    String,
    Vec<(String, String)>,
    Vec<String>,
    Option<usize>,
    Vec<(i64, u64)>,
);

fn parse(
    mut parser: ResponseParser,
    chunks: &[&[u8]],
) -> Result<(Vec<Parsed>, ParseStats), ParseError> {
    let mut out = Vec::new();
    let mut sink = |s: Series<'_>| {
        assert_eq!(
            s.values.len(),
            s.timestamps_ms.len(),
            "a value for each point"
        );
        assert!(s.timestamps_ms.is_sorted(), "timestamps ascending");
        out.push((
            s.metric.to_string(),
            s.tags.to_vec(),
            s.aggregate_tags.to_vec(),
            s.query_index,
            s.timestamps_ms
                .iter()
                .zip(s.values.to_doubles())
                .map(|(&t, v)| (t, v.to_bits()))
                .collect(),
        ));
    };
    for chunk in chunks {
        parser.feed(chunk, &mut sink)?;
    }
    let stats = parser.finish(&mut sink)?;
    Ok((out, stats))
}

fuzz_target!(|data: &[u8]| {
    let Some((&n, rest)) = data.split_first() else {
        return;
    };
    let (lengths, body) = rest.split_at(usize::from(n % 16).min(rest.len()));
    let mut chunks = Vec::new();
    let mut tail = body;
    for &len in lengths.iter().cycle().take(if lengths.is_empty() {
        0
    } else {
        body.len() + 1
    }) {
        if tail.is_empty() {
            break;
        }
        let (chunk, after) = tail.split_at(usize::from(len).min(tail.len()));
        chunks.push(chunk);
        tail = after;
    }
    chunks.push(tail);
    let whole = parse(ResponseParser::new(), &[body]);
    assert_eq!(parse(ResponseParser::new(), &chunks), whole, "cut");
    assert_eq!(
        parse(ResponseParser::without_fast_path(), &[body]),
        whole,
        "general path"
    );
    assert_eq!(
        parse(ResponseParser::without_fast_path(), &chunks),
        whole,
        "cut, general path"
    );
});
