//! The OpenTSDB client: the `/api/query` request model, the streaming response parser and both
//! error formats (stock OpenTSDB's JSON and OVH's plain text). Knows nothing about Parquet.

pub mod client;
pub mod parse;
pub mod query;

pub use client::{Client, TsdbError};
pub use parse::{OwnedSeries, ParseError, ParseStats, ResponseParser, Series, SeriesSink};
pub use query::{QueryRequest, SubQuery};
