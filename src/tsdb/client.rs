//! `POST /api/query` over HTTP: basic auth with the read token, the body streamed into the
//! [`ResponseParser`](super::ResponseParser) as it arrives, and errors of both formats typed.

use crate::secret::Secret;

use super::{ParseError, ParseStats, QueryRequest, SeriesSink};

#[derive(Debug, thiserror::Error)]
pub enum TsdbError {
    #[error("OpenTSDB {url} refused the read token (401): {message}")]
    Unauthorized { url: String, message: String },
    #[error("OpenTSDB {url} says the query is too large ({status}): {message}")]
    TooLarge {
        url: String,
        status: u16,
        message: String,
    },
    #[error("OpenTSDB {url} answered {status}: {message}")]
    Http {
        url: String,
        status: u16,
        message: String,
    },
    #[error("OpenTSDB {url} failed")]
    Transport {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("OpenTSDB {url} sent an unreadable response")]
    Parse {
        url: String,
        #[source]
        source: ParseError,
    },
}

impl TsdbError {
    /// Worth another attempt as it is: network errors, truncated bodies, 408, 429, 424, 5xx.
    pub fn is_transient(&self) -> bool {
        match self {
            TsdbError::Transport { .. } => true,
            TsdbError::Parse { source, .. } => source.truncated,
            TsdbError::Http { status, .. } => matches!(status, 408 | 424 | 429) || *status >= 500,
            _ => false,
        }
    }
}

/// A client of one OpenTSDB endpoint.
#[derive(Debug, Clone)]
pub struct Client {
    base_url: String,
}

impl Client {
    /// `base_url` without `/api/query`, e.g. `https://opentsdb.gra1-ovh.metrics.ovh.net`.
    pub fn new(base_url: &str, token: Secret) -> Result<Client, TsdbError> {
        let _ = token;
        Ok(Client {
            base_url: base_url.trim_end_matches('/').to_string(),
        })
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Runs one query, feeding every series to `sink` as it is parsed.
    pub async fn query(
        &self,
        request: &QueryRequest,
        sink: &mut (impl SeriesSink + Send),
    ) -> Result<ParseStats, TsdbError> {
        let _ = (request, sink);
        todo!("tsdb query")
    }
}
