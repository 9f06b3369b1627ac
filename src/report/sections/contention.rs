//! Section 4, contention: the top N VMs by CPU ready and by disk latency (p99 of read and of
//! write), with the host and cluster they were on at the latest inventory snapshot.

use std::cmp::Ordering;

use super::super::model::{col as column, col_in, BarChart, Cell, Chart, Section, Table};
use super::super::{Context, ReportError};
use super::rightsizing::{vms_for, Vm, READY};

const LAT_READ: &str = "vscope.vm.disk.latency.read";

pub fn section(ctx: &Context) -> Result<Section, ReportError> {
    let mut section = Section::new("contention", "Contention");
    let Some((vms, _)) = vms_for(ctx, &mut section, "contention")? else {
        return Ok(section);
    };
    let ready_unit = ctx.unit(READY);
    let lat_unit = ctx.unit(LAT_READ);
    let who_columns = || [vec![column("rank")], Vm::identity_columns()].concat();

    let ready = top(vms, ctx.top, |v| v.ready_avg);
    let mut t = Table::new(
        "cpu_ready_top",
        format!("Top {} VMs by average CPU ready", ctx.top),
        [
            who_columns(),
            vec![
                col_in("ready_avg", &ready_unit),
                col_in("ready_p99", &ready_unit),
                col_in("ready", "%"),
            ],
        ]
        .concat(),
    );
    for (rank, v) in ready.iter().enumerate() {
        let mut row = vec![Cell::Int(rank as i64 + 1)];
        row.extend(v.identity());
        row.extend([v.ready_avg.into(), v.ready_p99.into(), v.ready_pct.into()]);
        t.rows.push(row);
    }
    section.charts.push(Chart::Bars(BarChart {
        title: format!("Top {} VMs by average CPU ready", ctx.top),
        x_label: "CPU ready".into(),
        unit: ready_unit.clone(),
        series: vec!["average".into(), "p99".into()],
        bars: ready
            .iter()
            .map(|v| {
                (
                    label(v),
                    vec![v.ready_avg.unwrap_or(0.0), v.ready_p99.unwrap_or(0.0)],
                )
            })
            .collect(),
    }));
    section.tables.push(t);

    let worst = |v: &Vm| match (v.lat_read_p99, v.lat_write_p99) {
        (Some(r), Some(w)) => Some(r.max(w)),
        (r, w) => r.or(w),
    };
    let latency = top(vms, ctx.top, worst);
    let mut t = Table::new(
        "disk_latency_top",
        format!(
            "Top {} VMs by disk latency (the larger of the read and write p99)",
            ctx.top
        ),
        [
            who_columns(),
            vec![
                col_in("read_p99", &lat_unit),
                col_in("write_p99", &lat_unit),
            ],
        ]
        .concat(),
    );
    for (rank, v) in latency.iter().enumerate() {
        let mut row = vec![Cell::Int(rank as i64 + 1)];
        row.extend(v.identity());
        row.extend([v.lat_read_p99.into(), v.lat_write_p99.into()]);
        t.rows.push(row);
    }
    section.charts.push(Chart::Bars(BarChart {
        title: format!("Top {} VMs by disk latency p99", ctx.top),
        x_label: "disk latency p99".into(),
        unit: lat_unit,
        series: vec!["read".into(), "write".into()],
        bars: latency
            .iter()
            .map(|v| {
                (
                    label(v),
                    vec![
                        v.lat_read_p99.unwrap_or(0.0),
                        v.lat_write_p99.unwrap_or(0.0),
                    ],
                )
            })
            .collect(),
    }));
    section.tables.push(t);
    section.notes.push(
        "Host and cluster are the VM's at the latest vm_inventory snapshot; ranks break ties by \
         service and VM."
            .into(),
    );
    Ok(section)
}

/// The `n` VMs with the largest `key` (VMs without one are left out), ties by (service, vm).
pub fn top(vms: &[Vm], n: usize, key: impl Fn(&Vm) -> Option<f64>) -> Vec<&Vm> {
    let mut ranked: Vec<(&Vm, f64)> = vms.iter().filter_map(|v| key(v).map(|k| (v, k))).collect();
    ranked.sort_by(|a, b| {
        b.1.partial_cmp(&a.1)
            .unwrap_or(Ordering::Equal)
            .then_with(|| (&a.0.service_name, &a.0.vm).cmp(&(&b.0.service_name, &b.0.vm)))
    });
    ranked.into_iter().take(n).map(|(v, _)| v).collect()
}

/// A VM's name for a chart: its display name, else its moRef.
pub fn label(v: &Vm) -> String {
    v.name
        .clone()
        .or_else(|| v.vm.clone())
        .unwrap_or_else(|| "?".into())
}
