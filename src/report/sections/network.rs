//! Section 6, network: the top N VMs by received and by sent volume over the span, and each
//! host NIC's load (per `nicname`).

use std::collections::BTreeMap;

use polars::prelude::*;

use super::super::model::{col as column, col_in, BarChart, Cell, Chart, Section, Table};
use super::super::scan::{floats, quantile, run, strings};
use super::super::{Context, ReportError};
use super::contention::label;
use super::note_missing;
use super::rightsizing::{vms_cached, Vm, VM_RX, VM_TX};

const HOST_RX: &str = "vscope.host.net.rx";
const HOST_TX: &str = "vscope.host.net.tx";
/// KB to GB.
const KB_PER_GB: f64 = 1024.0 * 1024.0;

pub fn section(ctx: &Context) -> Result<Section, ReportError> {
    let mut section = Section::new("network", "Network");
    if ctx.ds.has("vm_metrics") {
        vm_volume(ctx, &mut section)?;
    } else {
        note_missing(&mut section, "vm_metrics", "the VMs' volume");
    }
    if ctx.ds.has("host_metrics") {
        nic_load(ctx, &mut section)?;
    } else {
        note_missing(&mut section, "host_metrics", "the host NICs' load");
    }
    Ok(section)
}

fn vm_volume(ctx: &Context, section: &mut Section) -> Result<(), ReportError> {
    // The sums come from the per-VM pass of the rightsizing section, which reads the network
    // metrics in the same scan as the others.
    let (vms, _) = vms_cached(ctx)?;
    // A rate in KB/s held for one step is rate × step KB.
    let volume = |sum: Option<f64>, metric: &str| {
        let step = ctx.step_ms(metric)?;
        sum.map(|s| s * (step as f64 / 1000.0) / KB_PER_GB)
    };
    let rows: Vec<(&Vm, [Option<f64>; 2])> = vms
        .iter()
        .map(|v| (v, [volume(v.rx_sum, VM_RX), volume(v.tx_sum, VM_TX)]))
        .collect();
    for (which, id, title) in [(0, "rx_top", "received"), (1, "tx_top", "sent")] {
        let mut ranked: Vec<_> = rows.iter().filter(|(_, v)| v[which].is_some()).collect();
        ranked.sort_by(|a, b| {
            b.1[which]
                .partial_cmp(&a.1[which])
                .unwrap_or(std::cmp::Ordering::Equal)
                .then_with(|| (&a.0.service_name, &a.0.vm).cmp(&(&b.0.service_name, &b.0.vm)))
        });
        ranked.truncate(ctx.top);
        let mut t = Table::new(
            id,
            format!("Top {} VMs by volume {title}", ctx.top),
            [
                vec![column("rank")],
                Vm::identity_columns(),
                vec![col_in("rx", "GB"), col_in("tx", "GB")],
            ]
            .concat(),
        );
        let mut bars = Vec::new();
        for (rank, (who, v)) in ranked.iter().enumerate() {
            let mut row = vec![Cell::Int(rank as i64 + 1)];
            row.extend(who.identity());
            row.extend([v[0].into(), v[1].into()]);
            t.rows.push(row);
            bars.push((label(who), vec![v[0].unwrap_or(0.0), v[1].unwrap_or(0.0)]));
        }
        section.tables.push(t);
        section.charts.push(Chart::Bars(BarChart {
            title: format!("Top {} VMs by volume {title}", ctx.top),
            x_label: "volume".into(),
            unit: "GB".into(),
            series: vec!["received".into(), "sent".into()],
            bars,
        }));
    }
    section.notes.push(format!(
        "Volume (GB) = Σ rate ({}) × sample interval (s) / 1024²: each point's rate held for one step.",
        ctx.unit(VM_RX)
    ));
    Ok(())
}

fn nic_load(ctx: &Context, section: &mut Section) -> Result<(), ReportError> {
    let keys = ["service_name", "cluster_name", "host", "nicname"];
    let lf = ctx
        .ds
        .metrics("host_metrics", &[HOST_RX, HOST_TX], &keys, ctx.span)?
        .group_by([
            col("service_name"),
            col("cluster_name"),
            col("host"),
            col("nicname"),
            col("metric"),
        ])
        .agg([
            col("value").mean().alias("avg"),
            quantile(col("value"), 0.95).alias("p95"),
            col("value").max().alias("max"),
        ]);
    let df = run(lf, "the host NICs' load")?;
    let key_values: Vec<Vec<Option<String>>> = keys
        .iter()
        .map(|k| strings(&df, k))
        .collect::<Result<_, _>>()?;
    let metric = strings(&df, "metric")?;
    let (avg, p95, max) = (
        floats(&df, "avg")?,
        floats(&df, "p95")?,
        floats(&df, "max")?,
    );
    let mut load: BTreeMap<Vec<Option<String>>, [Option<f64>; 6]> = BTreeMap::new();
    for i in 0..df.height() {
        let key: Vec<Option<String>> = key_values.iter().map(|k| k[i].clone()).collect();
        let offset = if metric[i].as_deref() == Some(HOST_RX) {
            0
        } else {
            3
        };
        let e = load.entry(key).or_default();
        e[offset] = avg[i];
        e[offset + 1] = p95[i];
        e[offset + 2] = max[i];
    }
    let unit = ctx.unit(HOST_RX);
    let mut t = Table::new(
        "host_nics",
        "Host NIC load, per nicname",
        vec![
            column("service_name"),
            column("cluster_name"),
            column("host"),
            column("nicname"),
            col_in("rx_avg", &unit),
            col_in("rx_p95", &unit),
            col_in("rx_max", &unit),
            col_in("tx_avg", &unit),
            col_in("tx_p95", &unit),
            col_in("tx_max", &unit),
        ],
    );
    let mut bars = Vec::new();
    for (key, s) in &load {
        let mut row: Vec<Cell> = key.iter().cloned().map(Cell::from).collect();
        row.extend(s.iter().map(|v| Cell::from(*v)));
        t.rows.push(row);
        bars.push((
            format!(
                "{} {}",
                key[2].as_deref().unwrap_or("?"),
                key[3].as_deref().unwrap_or("")
            ),
            vec![s[1].unwrap_or(0.0), s[4].unwrap_or(0.0)],
        ));
    }
    t.display_limit = Some(ctx.top.max(16));
    section.tables.push(t);
    section.charts.push(Chart::Bars(BarChart {
        title: "Host NIC load (p95), per host and nicname".into(),
        x_label: "p95".into(),
        unit,
        series: vec!["received".into(), "sent".into()],
        bars,
    }));
    Ok(())
}
