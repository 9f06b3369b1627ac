//! What a user of `/api/…` would notice, over HTTP against the simulator on loopback.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::sim::test_server::TestServer;
use crate::sim::{Flavor, SimConfig, SimSeries};

const CPU: &str = "vscope.vm.cpu.usage.perc";
/// 2026-11-01T00:00:00Z.
const T0: i64 = 1_793_491_200_000;

fn config() -> SimConfig {
    SimConfig {
        seed: 11,
        datacenters: 2,
        hosts: 2,
        vms: 6,
        filers: 1,
        gaps_per_mille: 0,
        ..SimConfig::default()
    }
}

async fn post(server: &TestServer, body: &Value) -> (u16, String) {
    let resp = server
        .client
        .post(server.url("/api/query"))
        .basic_auth("read", Some(server.world.credentials().token))
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

async fn post_ok(server: &TestServer, body: &Value) -> Vec<Value> {
    let (status, text) = post(server, body).await;
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

/// `dps` as (timestamp, value) pairs, ascending.
fn dps(result: &Value) -> Vec<(i64, Value)> {
    let mut v: Vec<(i64, Value)> = result["dps"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.parse().unwrap(), v.clone()))
        .collect();
    v.sort_by_key(|p| p.0);
    v
}

fn tag<'a>(result: &'a Value, k: &str) -> &'a str {
    result["tags"][k].as_str().unwrap_or("")
}

fn first_datacenter(server: &TestServer) -> String {
    server.world.series(CPU)[0].tags["datacenter"].clone()
}

#[tokio::test]
async fn raw_points_equal_world_points_with_both_ends_inclusive() {
    let server = TestServer::start(config()).await;
    let (start, end) = (T0, T0 + 3_600_000);
    for ms in [true, false] {
        let results = post_ok(
            &server,
            &json!({"start": start, "end": end, "msResolution": ms,
                    "queries": [{"metric": CPU, "aggregator": "none", "tags": {"vm": "*"}}]}),
        )
        .await;
        let series = server.world.series(CPU);
        assert_eq!(results.len(), series.len());
        for r in &results {
            let tags: BTreeMap<String, String> = serde_json::from_value(r["tags"].clone()).unwrap();
            for k in ["env", "servicename", "servicetype", "datacenter", "vm"] {
                assert!(tags.contains_key(k), "{k} in {tags:?}");
            }
            let s = SimSeries {
                metric: CPU.into(),
                tags,
            };
            let expected: Vec<(i64, f64)> = server.world.points(&s, start, end).collect();
            let got: Vec<(i64, f64)> = dps(r)
                .into_iter()
                .map(|(t, v)| (if ms { t } else { t * 1000 }, v.as_f64().unwrap()))
                .collect();
            // Bit for bit: what is served parses back to exactly what `points` says.
            assert_eq!(got, expected);
            assert_eq!(got.first().unwrap().0, start, "the start point is included");
            assert_eq!(got.last().unwrap().0, end, "the end point is included");
            assert_eq!(r["query"]["index"], 0);
        }
        if !ms {
            let keys: Vec<i64> = dps(&results[0]).iter().map(|p| p.0).collect();
            assert_eq!(
                keys[0],
                start / 1000,
                "keys in seconds without msResolution"
            );
        }
    }
}

#[tokio::test]
async fn times_in_seconds_and_relative_times_are_accepted() {
    let server = TestServer::start(config()).await;
    let results = post_ok(
        &server,
        &json!({"start": T0 / 1000, "end": (T0 + 120_000) / 1000,
                "queries": [{"metric": CPU, "aggregator": "none", "tags": {"vm": "*"}}]}),
    )
    .await;
    assert_eq!(dps(&results[0]).len(), 3);
    let results = post_ok(
        &server,
        &json!({"start": "5m-ago", "queries": [{"metric": CPU, "aggregator": "none"}]}),
    )
    .await;
    assert_eq!(results.len(), server.world.series(CPU).len());
}

#[tokio::test]
async fn pipe_selects_and_filters_group_or_aggregate() {
    let server = TestServer::start(SimConfig {
        flavor: Flavor::Opentsdb,
        ..config()
    })
    .await;
    let series = server.world.series(CPU);
    let (a, b) = (&series[0].tags["vm"], &series[1].tags["vm"]);
    let (start, end) = (T0, T0 + 600_000);

    let two = post_ok(
        &server,
        &json!({"start": start, "end": end, "msResolution": true,
                "queries": [{"metric": CPU, "aggregator": "none", "tags": {"vm": format!("{a}|{b}")}}]}),
    )
    .await;
    let mut vms: Vec<&str> = two.iter().map(|r| tag(r, "vm")).collect();
    vms.sort();
    let mut want = vec![a.as_str(), b.as_str()];
    want.sort();
    assert_eq!(vms, want);

    // A filter without groupBy aggregates what it selects into one series.
    let dc = first_datacenter(&server);
    let in_dc: Vec<&SimSeries> = series
        .iter()
        .filter(|s| s.tags["datacenter"] == dc)
        .collect();
    let summed = post_ok(
        &server,
        &json!({"start": start, "end": end, "msResolution": true,
                "queries": [{"metric": CPU, "aggregator": "sum",
                             "filters": [{"type": "literal_or", "tagk": "datacenter", "filter": dc, "groupBy": false}]}]}),
    )
    .await;
    assert_eq!(summed.len(), 1);
    assert_eq!(summed[0]["aggregateTags"], json!(["vm"]));
    assert_eq!(tag(&summed[0], "datacenter"), dc);
    assert!(summed[0]["tags"].get("vm").is_none());
    for (ts, v) in dps(&summed[0]) {
        let expected: f64 = in_dc
            .iter()
            .filter_map(|s| server.world.points(s, ts, ts).next().map(|p| p.1))
            .sum();
        assert!((v.as_f64().unwrap() - expected).abs() < 1e-9, "{ts}");
    }

    // The same filter with groupBy and a wildcard on vm: one series per vm of the datacenter.
    let grouped = post_ok(
        &server,
        &json!({"start": start, "end": end,
                "queries": [{"metric": CPU, "aggregator": "sum",
                             "filters": [{"type": "wildcard", "tagk": "vm", "filter": "vm-*", "groupBy": true},
                                         {"type": "regexp", "tagk": "datacenter", "filter": format!("^{dc}$")}]}]}),
    )
    .await;
    assert_eq!(grouped.len(), in_dc.len());
}

#[tokio::test]
async fn downsampling_buckets_and_fills() {
    let server = TestServer::start(SimConfig {
        flavor: Flavor::Opentsdb,
        resolution_secs: 300,
        ..config()
    })
    .await;
    let s = &server.world.series(CPU)[0];
    let vm = s.tags["vm"].clone();
    let (start, end) = (T0, T0 + 1_200_000);
    let query = |ds: &str| {
        json!({"start": start, "end": end, "msResolution": true,
               "queries": [{"metric": CPU, "aggregator": "none", "downsample": ds, "tags": {"vm": vm}}]})
    };

    let avg = post_ok(&server, &query("10m-avg")).await;
    let got = dps(&avg[0]);
    assert_eq!(
        got.iter().map(|p| p.0).collect::<Vec<_>>(),
        [T0, T0 + 600_000, T0 + 1_200_000]
    );
    let raw: Vec<f64> = server
        .world
        .points(s, T0, T0 + 599_999)
        .map(|p| p.1)
        .collect();
    assert_eq!(raw.len(), 2);
    assert_eq!(got[0].1.as_f64().unwrap(), (raw[0] + raw[1]) / 2.0);

    // One-minute buckets over five-minute data: four empty buckets between two full ones.
    for (fill, empty) in [
        ("null", json!(null)),
        ("nan", json!("NaN")),
        ("zero", json!(0.0)),
    ] {
        let r = post_ok(&server, &query(&format!("1m-max-{fill}"))).await;
        let got = dps(&r[0]);
        assert_eq!(got.len(), 21, "{fill}");
        assert_eq!(got[1], (T0 + 60_000, empty.clone()), "{fill}");
        assert!(got[5].1.is_number(), "{fill}");
    }
    let none = post_ok(&server, &query("1m-max")).await;
    assert_eq!(dps(&none[0]).len(), 5);

    let all = post_ok(&server, &query("all-count")).await;
    assert_eq!(dps(&all[0]), [(T0, json!(5.0))]);
}

#[tokio::test]
async fn ovh_buckets_aggregated_queries_from_the_query_end() {
    let server = TestServer::start(config()).await;
    let (start, end) = (T0 + 1_000, T0 + 3_600_000 + 1_000);
    let r = post_ok(
        &server,
        &json!({"start": start, "end": end, "msResolution": true,
                "queries": [{"metric": CPU, "aggregator": "max", "downsample": "20m-max-zero"}]}),
    )
    .await;
    assert_eq!(r.len(), 1);
    // Buckets are (stamp - 20m, stamp], stamped back from the end; the range is inclusive, so
    // the start instant has a bucket of its own, empty here (no point at T0 + 1 s) and filled.
    let got = dps(&r[0]);
    let keys: Vec<i64> = got.iter().map(|p| p.0).collect();
    assert_eq!(keys, [start, end - 2_400_000, end - 1_200_000, end]);
    assert_eq!(got[0].1, json!(0.0));
    let last_bucket: f64 = server
        .world
        .series(CPU)
        .iter()
        .flat_map(|s| {
            server
                .world
                .points(s, end - 1_200_000 + 1, end)
                .map(|p| p.1)
                .collect::<Vec<_>>()
        })
        .fold(f64::MIN, f64::max);
    assert_eq!(got[3].1.as_f64().unwrap(), last_bucket);
}

#[tokio::test]
async fn empty_series_are_omitted_and_sub_queries_are_indexed() {
    let server = TestServer::start(config()).await;
    // Between two grid points: no series has a point.
    let empty = post_ok(
        &server,
        &json!({"start": T0 + 1_000, "end": T0 + 59_000, "msResolution": true,
                "queries": [{"metric": CPU, "aggregator": "none"}]}),
    )
    .await;
    assert!(empty.is_empty());

    let two = post_ok(
        &server,
        &json!({"start": T0, "end": T0 + 60_000,
                "queries": [{"metric": CPU, "aggregator": "none"},
                            {"metric": "vscope.host.net.rx", "aggregator": "none"}]}),
    )
    .await;
    let second: Vec<&Value> = two.iter().filter(|r| r["query"]["index"] == 1).collect();
    assert_eq!(
        second.len(),
        server.world.series("vscope.host.net.rx").len()
    );
    assert!(second.iter().all(|r| r["tags"]["nicname"].is_string()));
}

#[tokio::test]
async fn the_deleted_vm_has_series_and_powered_off_vms_have_none() {
    let server = TestServer::start(config()).await;
    let inventory = server.world.inventory(chrono::Utc::now());
    let vms: Vec<_> = inventory
        .datacenters()
        .flat_map(|(_, d)| d.vms.iter())
        .collect();
    let off: Vec<&str> = vms
        .iter()
        .filter(|v| v.power_state == "poweredOff")
        .map(|v| v.mo_ref.as_str())
        .collect();
    assert!(!off.is_empty());
    let results = post_ok(
        &server,
        &json!({"start": T0, "end": T0 + 60_000, "queries": [{"metric": CPU, "aggregator": "none"}]}),
    )
    .await;
    let served: Vec<&str> = results.iter().map(|r| tag(r, "vm")).collect();
    for moref in &off {
        assert!(!served.contains(moref), "{moref} is powered off");
    }
    let orphans: Vec<&&str> = served
        .iter()
        .filter(|m| !vms.iter().any(|v| v.mo_ref == **m))
        .collect();
    assert_eq!(orphans.len(), 1, "one deleted VM: {orphans:?}");
    assert_eq!(served.len(), vms.len() - off.len() + 1);
}

#[tokio::test]
async fn errors_in_ovhs_plain_text() {
    let server = TestServer::start(SimConfig {
        point_cap: 100,
        ..config()
    })
    .await;
    let no_auth = server
        .client
        .post(server.url("/api/query"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(no_auth.status(), 401);
    assert_eq!(no_auth.text().await.unwrap(), "Not authorized");
    let bad_token = server
        .client
        .post(server.url("/api/query"))
        .basic_auth("read", Some("nope"))
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(bad_token.status(), 401);

    let get = server
        .client
        .get(server.url("/api/query"))
        .send()
        .await
        .unwrap();
    assert_eq!(get.status(), 501);
    assert_eq!(
        get.text().await.unwrap(),
        "Please use the POST version of queries"
    );

    let (status, text) = post(
        &server,
        &json!({"start": T0, "end": T0 + 3_600_000, "queries": [{"metric": CPU, "aggregator": "none"}]}),
    )
    .await;
    assert_eq!(status, 500);
    assert!(
        text.contains("FETCH exceeded limit of 100 datapoints"),
        "{text}"
    );

    let (status, text) = post(
        &server,
        &json!({"start": T0, "queries": [{"metric": CPU, "aggregator": "none"},
                                         {"metric": "vscope.vm.cpu.nope", "aggregator": "none"}]}),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        text.starts_with("Invalid query: ") && text.contains("vscope.vm.cpu.nope"),
        "{text}"
    );

    let (status, text) = post(
        &server,
        &json!({"queries": [{"metric": CPU, "aggregator": "none"}]}),
    )
    .await;
    assert_eq!(
        (status, text.as_str()),
        (400, "Invalid query: Missing start time")
    );
}

#[tokio::test]
async fn errors_in_stock_opentsdbs_json() {
    let server = TestServer::start(SimConfig {
        point_cap: 100,
        flavor: Flavor::Opentsdb,
        ..config()
    })
    .await;
    let (status, text) = post(
        &server,
        &json!({"start": T0, "end": T0 + 3_600_000, "queries": [{"metric": CPU, "aggregator": "none"}]}),
    )
    .await;
    assert_eq!(status, 413);
    let err: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(err["error"]["code"], 413);

    let (status, text) = post(
        &server,
        &json!({"start": T0, "queries": [{"metric": "cpu", "aggregator": "none"}]}),
    )
    .await;
    assert_eq!(status, 400);
    let err: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(err["error"]["message"], "No such name for 'metrics': 'cpu'");
}

#[tokio::test]
async fn suggest_matches_substrings_on_ovh() {
    let server = TestServer::start(config()).await;
    let resp = server
        .client
        .get(server.url("/api/suggest?type=metrics&q=net.packets&max=100"))
        .basic_auth("read", Some(server.world.credentials().token))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let names: Vec<String> = serde_json::from_slice(&resp.bytes().await.unwrap()).unwrap();
    assert_eq!(names.len(), 4, "{names:?}");
    assert!(names.iter().all(|n| n.contains("net.packets")));
}

#[tokio::test]
async fn a_large_response_streams_intact() {
    let server = TestServer::start(SimConfig {
        vms: 40,
        ..config()
    })
    .await;
    let (start, end) = (T0, T0 + 86_400_000 - 60_000);
    let results = post_ok(
        &server,
        &json!({"start": start, "end": end, "msResolution": true,
                "queries": [{"metric": CPU, "aggregator": "none", "tags": {"vm": "*"}}]}),
    )
    .await;
    let total: usize = results
        .iter()
        .map(|r| r["dps"].as_object().unwrap().len())
        .sum();
    let expected: usize = server
        .world
        .series(CPU)
        .iter()
        .map(|s| server.world.points(s, start, end).count())
        .sum();
    assert_eq!(total, expected);
    assert!(total > 100_000, "spans many chunks: {total}");
}

#[tokio::test]
async fn hostile_tag_values_are_escaped_and_grouped_by_star() {
    let server = TestServer::start(SimConfig {
        hostile_names: true,
        ..config()
    })
    .await;
    for (metric, tag) in [
        (CPU, "vm"),
        ("vscope.filer.datastore.diskspace.used", "datastore"),
    ] {
        let results = post_ok(
            &server,
            &json!({"start": T0, "end": T0 + 600_000, "msResolution": true,
                    "queries": [{"metric": metric, "aggregator": "none", "tags": {tag: "*"}}]}),
        )
        .await;
        let served: Vec<BTreeMap<String, String>> = results
            .iter()
            .map(|r| serde_json::from_value(r["tags"].clone()).unwrap())
            .collect();
        let mut expected: Vec<BTreeMap<String, String>> = server
            .world
            .series(metric)
            .into_iter()
            .map(|s: SimSeries| s.tags)
            .collect();
        let mut served = served;
        served.sort();
        expected.sort();
        assert_eq!(served, expected, "{metric}");
        assert!(served
            .iter()
            .any(|t| t[tag].contains('\n') && t[tag].contains("日本")));
    }
}
