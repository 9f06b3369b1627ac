#![allow(
    clippy::unwrap_used,
    reason = "test code: its module is `cfg(all(test, …))`, which clippy does not take for a test"
)]

use std::collections::BTreeMap;
use std::sync::Arc;

use super::*;
use crate::secret::Secret;
use crate::sim::{self, SimConfig, World};

/// Every value lands in exactly one shard of a split, at every depth.
#[test]
fn shards_partition_every_value_exactly_once() {
    let values = [
        "vm-1254",
        "vm-7",
        "7",
        "172.17.86.51",
        "pcc-000443",
        "web-a",
        "x",
        "vm-10",
        "été/..%=",
    ];
    let compiled = |shards: &[Shard]| -> Vec<regex::Regex> {
        shards
            .iter()
            .map(|s| regex::Regex::new(&s.regexp()).unwrap())
            .collect()
    };
    let mut level: Vec<Option<Shard>> = vec![None];
    let mut exact: Vec<regex::Regex> = Vec::new();
    for depth in 0..3 {
        let next: Vec<Shard> = level
            .iter()
            .flat_map(|s| Shard::split(s.as_ref()))
            .collect();
        let patterns = compiled(&next);
        for value in values {
            let holders = patterns.iter().filter(|r| r.is_match(value)).count();
            // Values no longer than the suffix were caught by an `exact` shard at an earlier
            // level, which is not split again.
            let caught_earlier = exact.iter().any(|r| r.is_match(value));
            assert_eq!(
                holders + usize::from(caught_earlier),
                1,
                "{value:?} at depth {depth}"
            );
        }
        let (done, open): (Vec<Shard>, Vec<Shard>) = next.into_iter().partition(|s| s.exact);
        exact.extend(compiled(&done));
        level = open.into_iter().map(Some).collect();
    }
}

async fn simulator(
    config: SimConfig,
) -> (tsdb::Client, Arc<World>, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let world = Arc::new(World::new(config));
    let token = world.credentials().token;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(sim::serve(listener, Arc::clone(&world), async move {
        let _ = stopped.await;
    }));
    let client = tsdb::Client::new(&format!("http://{addr}"), Secret::new(token)).unwrap();
    (client, world, stop)
}

fn request(metrics: &[&str], start_ms: i64, end_ms: i64) -> QueryRequest {
    QueryRequest {
        start_ms,
        end_ms,
        queries: metrics
            .iter()
            .map(|m| SubQuery {
                metric: m.to_string(),
                aggregator: "none".into(),
                downsample: None,
                tags: BTreeMap::from([
                    ("datacenter".into(), "*".into()),
                    ("vm".into(), "*".into()),
                ]),
                regexps: Vec::new(),
            })
            .collect(),
    }
}

/// (metric, vm, ts) → value, failing on a duplicate.
fn points(series: &[OwnedSeries]) -> BTreeMap<(String, String, i64), u64> {
    let mut out = BTreeMap::new();
    for s in series {
        let vm = s
            .tags
            .iter()
            .find(|(k, _)| k == "vm")
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        for (ts, v) in s.timestamps_ms.iter().zip(&s.values) {
            assert!(
                out.insert((s.metric.clone(), vm.clone(), *ts), v.to_bits())
                    .is_none(),
                "duplicate {vm} {ts}"
            );
        }
    }
    out
}

#[tokio::test]
async fn a_page_too_large_is_split_in_time_then_by_series_and_nothing_is_lost() {
    let base = SimConfig {
        seed: 3,
        services: 1,
        datacenters: 1,
        hosts: 1,
        vms: 12,
        filers: 1,
        ..SimConfig::default()
    };
    let metrics = ["vscope.vm.cpu.usage.perc", "vscope.vm.mem.usage.perc"];
    let hour = 1_762_000_000_000 - 1_762_000_000_000 % 3_600_000;
    let (start, end) = (hour, hour + 4 * 60_000 - 1);
    let fast = RetryPolicy {
        min_delay: std::time::Duration::from_millis(1),
        ..RetryPolicy::default()
    };

    let (client, _world, _stop) = simulator(base.clone()).await;
    let mut stats = PageStats::default();
    let whole = fetch(
        &client,
        request(&metrics, start, end),
        "vm",
        fast,
        &mut stats,
    )
    .await
    .unwrap();
    assert_eq!((stats.requests, stats.splits), (1, 0));
    let expected = points(&whole);
    assert!(expected.len() > 40, "{}", expected.len());

    // A cap of 10 points per sub-query: even one minute of all the VMs is more than that, so
    // after the time splits (3, down to one minute) and the sub-query splits (4) come series
    // shards.
    let (client, _world, _stop) = simulator(SimConfig {
        point_cap: 10,
        ..base
    })
    .await;
    let mut stats = PageStats::default();
    let split = fetch(
        &client,
        request(&metrics, start, end),
        "vm",
        fast,
        &mut stats,
    )
    .await
    .unwrap();
    assert!(stats.splits > 3 + 4, "series shards were needed: {stats:?}");
    assert_eq!(points(&split), expected, "the same points, each once");
}

#[tokio::test]
async fn a_page_that_cannot_get_small_enough_fails_with_the_endpoints_answer() {
    let config = SimConfig {
        seed: 3,
        services: 1,
        datacenters: 1,
        hosts: 1,
        vms: 4,
        filers: 1,
        point_cap: 0,
        ..SimConfig::default()
    };
    let (client, _world, _stop) = simulator(config).await;
    let mut stats = PageStats::default();
    let err = fetch(
        &client,
        request(&["vscope.vm.cpu.usage.perc"], 0, 120_000),
        "vm",
        RetryPolicy::default(),
        &mut stats,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(err, FetchError::Tsdb(TsdbError::TooLarge { .. })),
        "{err}"
    );
    assert!(stats.splits > 0);
}

#[tokio::test]
async fn a_downsampled_page_too_large_is_split_by_series_never_in_time() {
    let base = SimConfig {
        seed: 3,
        services: 1,
        datacenters: 1,
        hosts: 1,
        vms: 12,
        filers: 1,
        ..SimConfig::default()
    };
    let hour = 1_762_000_000_000 - 1_762_000_000_000 % 3_600_000;
    let mut req = request(
        &["vscope.vm.cpu.usage.perc", "vscope.vm.mem.usage.perc"],
        hour,
        hour + 3_600_000 - 1,
    );
    for q in &mut req.queries {
        q.downsample = Some("7m-avg".to_string());
    }
    let fast = RetryPolicy {
        min_delay: std::time::Duration::from_millis(1),
        ..RetryPolicy::default()
    };

    let (client, _world, _stop) = simulator(base.clone()).await;
    let mut stats = PageStats::default();
    let expected = points(
        &fetch(&client, req.clone(), "vm", fast, &mut stats)
            .await
            .unwrap(),
    );

    // The cap counts raw points: an hour of 11 VMs is 660 a metric, over a cap of 200.
    let (client, _world, _stop) = simulator(SimConfig {
        point_cap: 200,
        ..base
    })
    .await;
    let mut stats = PageStats::default();
    let split = fetch(&client, req, "vm", fast, &mut stats).await.unwrap();
    assert!(stats.splits > 0, "{stats:?}");
    // `points` fails on a duplicate bucket; a time cut would also shift the 7-minute grid.
    assert_eq!(points(&split), expected);
}

/// Points are counted as each series is parsed, while its response is still being read; an
/// attempt cut short takes its points back, so the count ends as the page's own.
#[tokio::test]
async fn points_are_counted_as_series_arrive_not_when_the_request_completes() {
    use axum::body::{Body, Bytes};
    use tokio::sync::mpsc;

    // Each request is answered with the body chunks the test sends on the next channel.
    let (first_tx, first_rx) = mpsc::channel::<Bytes>(4);
    let (second_tx, second_rx) = mpsc::channel::<Bytes>(4);
    let bodies = Arc::new(std::sync::Mutex::new(vec![second_rx, first_rx]));
    let app = axum::Router::new().route(
        "/api/query",
        axum::routing::post(move || {
            let rx = bodies.lock().unwrap().pop().expect("two attempts at most");
            async move {
                let chunks = futures_util::stream::unfold(rx, |mut rx| async move {
                    rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
                });
                axum::response::Response::builder()
                    .header("content-type", "application/json")
                    .body(Body::from_stream(chunks))
                    .unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    let client = tsdb::Client::new(&format!("http://{addr}"), Secret::new("t")).unwrap();

    let series = |vm: &str, points: &[i64]| {
        let dps: Vec<String> = points.iter().map(|t| format!("\"{t}\":1.5")).collect();
        format!(
            r#"{{"metric":"vscope.vm.cpu.usage.perc","tags":{{"vm":"{vm}"}},"aggregateTags":[],"dps":{{{}}}}}"#,
            dps.join(",")
        )
    };
    let parsed = ParsedPoints::default();
    let dir = tempfile::tempdir().unwrap();
    let fetching = {
        let parsed = parsed.clone();
        let dir = dir.path().to_path_buf();
        tokio::spawn(async move {
            let fast = RetryPolicy {
                min_delay: std::time::Duration::from_millis(1),
                ..RetryPolicy::default()
            };
            let mut stats = PageStats::default();
            let request = request(&["vscope.vm.cpu.usage.perc"], 1_000, 9_000);
            let spools = fetch_spooled(&client, request, "vm", fast, &mut stats, &dir, &parsed)
                .await
                .unwrap();
            (spools.len(), stats)
        })
    };
    let counted = |want: u64| {
        let parsed = parsed.clone();
        async move {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while parsed.get() != want && std::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            parsed.get()
        }
    };

    // The first attempt brings one series, then its connection is cut.
    first_tx
        .send(Bytes::from(format!("[{},", series("vm-1", &[1, 2, 3]))))
        .await
        .unwrap();
    assert_eq!(counted(3).await, 3, "counted while the body is being read");
    assert!(!fetching.is_finished());
    drop(first_tx);
    assert_eq!(counted(0).await, 0, "the cut attempt took its points back");

    // The second attempt brings them again, and one more series.
    second_tx
        .send(Bytes::from(format!("[{},", series("vm-1", &[1, 2, 3]))))
        .await
        .unwrap();
    assert_eq!(counted(3).await, 3);
    second_tx
        .send(Bytes::from(format!("{}]", series("vm-2", &[4, 5]))))
        .await
        .unwrap();
    drop(second_tx);
    let (spools, stats) = fetching.await.unwrap();
    assert_eq!(spools, 1);
    assert_eq!((stats.requests, stats.retries), (2, 1));
    assert_eq!(stats.points, 5);
    assert_eq!(parsed.get(), 5, "the count ends as the page's");
}
