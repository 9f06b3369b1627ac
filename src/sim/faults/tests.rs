//! The spec parser, the schedule, and every fault as a client sees it over HTTP on loopback.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::*;
use crate::domain::retry::RetryPolicy;
use crate::extract::PageStats;
use crate::secret::Secret;
use crate::sim::test_server::TestServer;
use crate::sim::{SimConfig, World};
use crate::tsdb::{self, OwnedSeries, QueryRequest, Series, SeriesSink, SubQuery, TsdbError};

const CPU: &str = "vscope.vm.cpu.usage.perc";
/// 2026-11-01T00:00:00Z.
const T0: i64 = 1_793_491_200_000;

fn spec(text: &str) -> Faults {
    text.parse()
        .unwrap_or_else(|e| panic!("{text:?} should parse: {e}"))
}

fn spec_error(text: &str) -> String {
    match text.parse::<Faults>() {
        Ok(f) => panic!("{text:?} should not parse, got {f:?}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_documented_spec_parses_and_prints_back() {
    let faults = spec(
        "5xx=0.2, 429=0.1, reset=0.05, truncate=5%, slow=0.1:200ms, invalid-json=0.02, \
         cap=500_000, apiv6-5xx=0.1, apiv6-429=0.05:2s, apiv6-reset=1%, apiv6-slow=0.1:1s, seed=3",
    );
    assert_eq!(
        faults.query,
        vec![
            (FaultKind::ServerError, 200_000),
            (
                FaultKind::TooManyRequests {
                    retry_after_secs: 1
                },
                100_000
            ),
            (FaultKind::Reset, 50_000),
            (FaultKind::Truncate, 50_000),
            (FaultKind::Slow(Duration::from_millis(200)), 100_000),
            (FaultKind::InvalidJson, 20_000),
        ]
    );
    assert_eq!(
        faults.apiv6,
        vec![
            (FaultKind::ServerError, 100_000),
            (
                FaultKind::TooManyRequests {
                    retry_after_secs: 2
                },
                50_000
            ),
            (FaultKind::Reset, 10_000),
            (FaultKind::Slow(Duration::from_secs(1)), 100_000),
        ]
    );
    assert_eq!(faults.cap, Some(500_000));
    assert_eq!(faults.seed, Some(3));
    assert_eq!(spec(&faults.to_string()), faults);
    assert!(spec("").is_none());
    assert!(spec(" , ").is_none());
    assert!(!spec("cap=10").is_none());
}

#[test]
fn a_bad_spec_names_the_item_at_fault() {
    let cases = [
        ("5xx=0.2,boom=0.1", "fault `boom=0.1`: unknown kind"),
        ("5xx", "fault `5xx`: expected kind=rate"),
        ("5xx=1.5", "fault `5xx=1.5`: the rate is 0 to 1"),
        ("5xx=150%", "fault `5xx=150%`: the rate is 0 to 1"),
        ("5xx=-0.1", "fault `5xx=-0.1`: the rate is 0 to 1"),
        ("5xx=lots", "fault `5xx=lots`: the rate is 0 to 1"),
        ("5xx=0.1,5xx=0.2", "fault `5xx=0.2`: given twice"),
        ("slow=0.1", "fault `slow=0.1`: slow needs a delay"),
        ("slow=0.1:fast", "fault `slow=0.1:fast`: slow needs a delay"),
        (
            "429=0.1:1.5s",
            "fault `429=0.1:1.5s`: Retry-After is whole seconds",
        ),
        ("reset=0.1:3", "fault `reset=0.1:3`: takes no parameter"),
        (
            "apiv6-truncate=0.1",
            "fault `apiv6-truncate=0.1`: unknown kind",
        ),
        ("apiv6-cap=10", "fault `apiv6-cap=10`: unknown kind"),
        ("cap=0", "fault `cap=0`: the cap is a positive number"),
        (
            "seed=x",
            "fault `seed=x`: the seed is a non-negative integer",
        ),
        (
            "5xx=0.6,reset=0.5",
            "the /api/query fault rates add up to 1.1, more than 1",
        ),
        (
            "apiv6-5xx=70%,apiv6-429=40%",
            "the APIv6 fault rates add up to 1.1, more than 1",
        ),
    ];
    for (text, expected) in cases {
        let message = spec_error(text);
        assert!(message.starts_with(expected), "{text:?}: {message}");
    }
}

#[test]
fn a_job_file_reads_the_spec_from_a_string() {
    #[derive(serde::Deserialize)]
    struct T {
        faults: Faults,
    }
    let t: T = toml::from_str("faults = \"5xx=0.5,cap=10\"").unwrap();
    assert_eq!(t.faults, spec("5xx=0.5,cap=10"));
    let err = toml::from_str::<T>("faults = \"5xx=2\"")
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("fault `5xx=2`"), "{err}");
}

#[test]
fn draws_follow_the_rates_and_a_retried_request_draws_again() {
    let schedule = Schedule::new(spec("5xx=0.3,reset=0.1"), 1);
    let mut counts: BTreeMap<&str, u32> = BTreeMap::new();
    for i in 0..20_000u32 {
        let body = i.to_be_bytes();
        let kind = match schedule.draw(Api::Query, &[b"POST", &body]) {
            Some(Fault {
                kind: FaultKind::ServerError,
                ..
            }) => "5xx",
            Some(Fault {
                kind: FaultKind::Reset,
                ..
            }) => "reset",
            Some(other) => panic!("not in the spec: {other:?}"),
            None => "none",
        };
        *counts.entry(kind).or_default() += 1;
    }
    let share = |k| f64::from(counts[k]) / 20_000.0;
    assert!((share("5xx") - 0.3).abs() < 0.02, "{counts:?}");
    assert!((share("reset") - 0.1).abs() < 0.02, "{counts:?}");
    assert!(
        schedule.draw(Api::Apiv6, &[b"GET"]).is_none(),
        "no APIv6 faults in this spec"
    );

    // The same request, asked again and again, is not always refused.
    let outcomes: BTreeSet<bool> = (0..50)
        .map(|_| schedule.draw(Api::Query, &[b"POST", b"same"]).is_some())
        .collect();
    assert_eq!(outcomes.len(), 2);
}

#[test]
fn the_schedule_depends_on_the_seed_and_the_request_not_on_arrival_order() {
    let faults = spec("5xx=0.5");
    let sequence = |schedule: &Schedule, order: &[u8]| {
        let mut by_request: BTreeMap<u8, Vec<bool>> = BTreeMap::new();
        for &r in order {
            let fault = schedule.draw(Api::Query, &[&[r]]).is_some();
            by_request.entry(r).or_default().push(fault);
        }
        by_request
    };
    let order: Vec<u8> = (0..40).flat_map(|r| [r, r, r]).collect();
    let reversed: Vec<u8> = order.iter().rev().copied().collect();
    let a = sequence(&Schedule::new(faults.clone(), 7), &order);
    let b = sequence(&Schedule::new(faults.clone(), 7), &reversed);
    let c = sequence(&Schedule::new(faults, 8), &order);
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn the_cap_only_ever_lowers_the_configured_one() {
    assert_eq!(Schedule::new(spec("cap=100"), 1).point_cap(1_000), 100);
    assert_eq!(Schedule::new(spec("cap=5000"), 1).point_cap(1_000), 1_000);
    assert_eq!(Schedule::new(spec(""), 1).point_cap(1_000), 1_000);
}

// Over HTTP.

fn config(faults: &str) -> SimConfig {
    SimConfig {
        seed: 11,
        datacenters: 1,
        hosts: 2,
        vms: 4,
        filers: 1,
        faults: Some(spec(faults)),
        // Names that must survive JSON escaping on both APIs and `*` grouping.
        hostile_names: true,
        ..SimConfig::default()
    }
}

fn request() -> QueryRequest {
    QueryRequest {
        start_ms: T0,
        end_ms: T0 + 3_600_000,
        queries: vec![SubQuery {
            metric: CPU.into(),
            aggregator: "none".into(),
            downsample: None,
            tags: BTreeMap::from([("vm".to_string(), "*".to_string())]),
            regexps: Vec::new(),
        }],
    }
}

fn tsdb_client(server: &TestServer) -> tsdb::Client {
    tsdb::Client::new(
        &server.url(""),
        Secret::new(server.world.credentials().token),
    )
    .unwrap()
}

struct Collect(Vec<OwnedSeries>);

impl SeriesSink for Collect {
    fn series(&mut self, series: Series<'_>) {
        self.0.push(series.to_owned_series());
    }
}

async fn query(server: &TestServer) -> Result<Vec<OwnedSeries>, TsdbError> {
    let mut sink = Collect(Vec::new());
    tsdb_client(server)
        .query(&request(), &mut sink)
        .await
        .map(|_| sink.0)
}

/// The series of the request as the simulator serves them without faults, sorted.
async fn clean_series() -> Vec<OwnedSeries> {
    let server = TestServer::start(config("")).await;
    let mut series = query(&server).await.unwrap();
    series.sort_by(|a, b| a.tags.cmp(&b.tags));
    series
}

async fn raw_post(server: &TestServer) -> reqwest::Result<reqwest::Response> {
    server
        .client
        .post(server.url("/api/query"))
        .basic_auth("read", Some(server.world.credentials().token))
        .body(request().to_json())
        .send()
        .await
}

#[tokio::test]
async fn server_errors_are_transient_in_both_dialects_and_never_too_large() {
    for flavor in [Flavor::Ovh, Flavor::Opentsdb] {
        let server = TestServer::start(SimConfig {
            flavor,
            ..config("5xx=1")
        })
        .await;
        let mut statuses = BTreeSet::new();
        for _ in 0..20 {
            let err = query(&server).await.unwrap_err();
            assert!(err.is_transient(), "{err:?}");
            match err {
                TsdbError::Http { status, .. } => statuses.insert(status),
                other => panic!("{flavor:?}: {other:?}"),
            };
        }
        assert_eq!(statuses, BTreeSet::from([500, 502, 503]), "{flavor:?}");
        if flavor == Flavor::Opentsdb {
            let text = raw_post(&server).await.unwrap().text().await.unwrap();
            let json: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert!(json["error"]["code"].as_u64().unwrap() >= 500, "{text}");
        }
    }
}

#[tokio::test]
async fn too_many_requests_says_when_to_come_back() {
    let server = TestServer::start(config("429=1:2s")).await;
    let err = query(&server).await.unwrap_err();
    assert!(
        matches!(err, TsdbError::Http { status: 429, .. }),
        "{err:?}"
    );
    assert_eq!(err.retry_after(), Some(Duration::from_secs(2)));
    assert!(err.is_transient());
}

#[tokio::test]
async fn a_reset_is_a_transport_error() {
    let server = TestServer::start(config("reset=1")).await;
    let err = query(&server).await.unwrap_err();
    assert!(matches!(err, TsdbError::Transport { .. }), "{err:?}");
    assert!(err.is_transient());
}

#[tokio::test]
async fn a_truncated_body_is_a_strict_prefix_then_an_abort_or_an_early_end() {
    let clean = TestServer::start(config("")).await;
    let whole = raw_post(&clean).await.unwrap().bytes().await.unwrap();
    let server = TestServer::start(config("truncate=1")).await;
    let (mut aborted, mut ended) = (0, 0);
    for _ in 0..16 {
        let response = raw_post(&server).await.unwrap();
        assert_eq!(response.status(), 200);
        match response.bytes().await {
            Err(_) => aborted += 1,
            Ok(body) => {
                assert!(!body.is_empty() && body.len() < whole.len());
                assert!(whole.starts_with(&body));
                ended += 1;
            }
        }
    }
    assert!(aborted > 0 && ended > 0, "{aborted} aborted, {ended} ended");
    // Both are worth another attempt to the exporter's client.
    for _ in 0..8 {
        let err = query(&server).await.unwrap_err();
        assert!(err.is_transient(), "{err:?}");
    }
}

#[tokio::test]
async fn slow_answers_are_late_but_whole() {
    let server = TestServer::start(config("slow=1:300ms")).await;
    let started = Instant::now();
    let mut series = query(&server).await.unwrap();
    assert!(started.elapsed() >= Duration::from_millis(300));
    series.sort_by(|a, b| a.tags.cmp(&b.tags));
    assert_eq!(series, clean_series().await);
}

#[tokio::test]
async fn invalid_json_is_an_html_page_with_200() {
    let server = TestServer::start(config("invalid-json=1")).await;
    let response = raw_post(&server).await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(response.text().await.unwrap().contains("<html>"));
    let err = query(&server).await.unwrap_err();
    assert!(matches!(err, TsdbError::Parse { .. }), "{err:?}");
}

#[tokio::test]
async fn a_lower_cap_makes_the_endpoint_answer_too_large_in_both_dialects() {
    // One hour of 60 s points is 61 per series; three VMs run.
    for flavor in [Flavor::Ovh, Flavor::Opentsdb] {
        let server = TestServer::start(SimConfig {
            flavor,
            ..config("cap=100")
        })
        .await;
        let err = query(&server).await.unwrap_err();
        assert!(matches!(err, TsdbError::TooLarge { .. }), "{err:?}");
    }
}

#[tokio::test]
async fn through_heavy_faults_the_retrying_exporter_gets_exactly_the_clean_answer() {
    let server = TestServer::start(config(
        "5xx=0.25,429=0.1:0s,reset=0.1,truncate=0.1,slow=0.05:10ms,cap=150",
    ))
    .await;
    let policy = RetryPolicy {
        min_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
        max_retries: 40,
        total_delay: Duration::from_secs(10),
    };
    let mut stats = PageStats::default();
    let mut series =
        crate::extract::fetch(&tsdb_client(&server), request(), "vm", policy, &mut stats)
            .await
            .unwrap();
    assert!(stats.retries > 0 && stats.splits > 0, "{stats:?}");
    // Split pages come back in pieces: merge them per series before comparing.
    let mut merged: BTreeMap<Vec<(String, String)>, OwnedSeries> = BTreeMap::new();
    for s in series.drain(..) {
        match merged.get_mut(&s.tags) {
            Some(m) => {
                m.timestamps_ms.extend(&s.timestamps_ms);
                m.values.extend(&s.values);
            }
            None => {
                merged.insert(s.tags.clone(), s);
            }
        }
    }
    let clean = clean_series().await;
    assert_eq!(merged.len(), clean.len());
    for (got, want) in merged.values().zip(&clean) {
        assert_eq!(got.tags, want.tags);
        assert_eq!(got.timestamps_ms, want.timestamps_ms);
        assert_eq!(got.values, want.values);
    }
}

// APIv6.

async fn apiv6_time(server: &TestServer) -> reqwest::Result<reqwest::Response> {
    server.client.get(server.url("/1.0/auth/time")).send().await
}

#[tokio::test]
async fn apiv6_server_errors_come_as_html_or_ovh_json() {
    let server = TestServer::start(config("apiv6-5xx=1")).await;
    let mut seen = BTreeSet::new();
    for _ in 0..16 {
        let response = apiv6_time(&server).await.unwrap();
        let status = response.status().as_u16();
        let query_id = response.headers().contains_key("x-ovh-queryid");
        let text = response.text().await.unwrap();
        match status {
            503 => assert!(text.contains("<html>") && !query_id, "{text}"),
            500 => {
                let json: serde_json::Value = serde_json::from_str(&text).unwrap();
                assert_eq!(json["class"], "Server::InternalServerError");
                assert!(query_id);
            }
            other => panic!("{other}: {text}"),
        }
        seen.insert(status);
    }
    assert_eq!(seen, BTreeSet::from([500, 503]));
}

#[tokio::test]
async fn apiv6_429_and_resets() {
    let server = TestServer::start(config("apiv6-429=1:3s")).await;
    let response = apiv6_time(&server).await.unwrap();
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "3");

    let server = TestServer::start(config("apiv6-reset=1")).await;
    let failed = match apiv6_time(&server).await {
        Err(_) => true,
        Ok(response) => response.bytes().await.is_err(),
    };
    assert!(failed, "a reset never gives a whole answer");
}

#[tokio::test]
async fn the_apiv6_client_reads_the_same_inventory_through_faults() {
    let cfg = config("apiv6-5xx=0.3,apiv6-429=0.1:0s,apiv6-reset=0.1,apiv6-slow=0.05:10ms");
    let server = TestServer::start(cfg.clone()).await;
    let creds = server.world.credentials();
    let auth = crate::ovh::Auth::Signed {
        application_key: creds.application_key,
        application_secret: Secret::new(creds.application_secret),
        consumer_key: Secret::new(creds.consumer_key),
    };
    let options = crate::ovh::ClientOptions {
        requests_per_second: 0.0,
        retry: RetryPolicy {
            min_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(5),
            max_retries: 30,
            total_delay: Duration::from_secs(10),
        },
        ..crate::ovh::ClientOptions::default()
    };
    let client = crate::ovh::Client::connect_with(&server.url("/1.0"), auth, options)
        .await
        .unwrap();
    let now = chrono::Utc::now();
    let snapshot = client
        .snapshot(&crate::job::Services::All, None, now)
        .await
        .unwrap();
    assert_eq!(snapshot, World::new(cfg).inventory(now));
    let token = client
        .metrics_token(&snapshot.services[0].service_name, crate::sim::METRICS_USER)
        .await
        .unwrap();
    assert_eq!(token.token, server.world.credentials().token);
}
