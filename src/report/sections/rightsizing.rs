//! Section 3, VM rightsizing: per VM, p95 and max CPU %, p95 memory % and CPU ready against the
//! inventory's vCPUs and memory; which VMs are oversized or undersized by the rules, what
//! they would become, and the vCPUs and GB that would be freed or needed in all.

use std::collections::BTreeMap;

use super::super::model::{
    col as column, col_in, Cell, Chart, Column, ScatterChart, Section, Table,
};
use super::super::scan::{ints, run, strings};
use super::super::series::Wanted;
use super::super::{Context, ReportError};
use super::note_missing;

pub const CPU: &str = "vscope.vm.cpu.usage.perc";
pub const MEM: &str = "vscope.vm.mem.usage.perc";
pub const READY: &str = "vscope.vm.cpu.ready";
const LAT_READ: &str = "vscope.vm.disk.latency.read";
const LAT_WRITE: &str = "vscope.vm.disk.latency.write";
pub const VM_RX: &str = "vscope.vm.net.rx";
pub const VM_TX: &str = "vscope.vm.net.tx";
/// The metrics of the rightsizing and contention figures, whose percentiles are computed.
const SIZING: [&str; 5] = [CPU, MEM, READY, LAT_READ, LAT_WRITE];

/// Oversized: p95 CPU below this (percent) …
pub const OVERSIZED_CPU_P95: f64 = 10.0;
/// … and p95 memory below this (percent) …
pub const OVERSIZED_MEM_P95: f64 = 30.0;
/// … over at least this many UTC days with CPU data.
pub const OVERSIZED_MIN_DAYS: i64 = 7;
/// Undersized: p95 CPU above this (percent) …
pub const UNDERSIZED_CPU_P95: f64 = 85.0;
/// … or CPU ready above this share of the vCPUs' time (percent).
pub const UNDERSIZED_READY_PCT: f64 = 5.0;
/// A resized VM is given what puts its p95 at this utilisation (percent): headroom for peaks
/// above the p95 without paying for idle capacity.
pub const TARGET_P95: f64 = 50.0;

/// One VM's figures.
#[derive(Debug, Clone, Default)]
pub struct Vm {
    pub service_name: Option<String>,
    pub vm: Option<String>,
    pub name: Option<String>,
    pub host_name: Option<String>,
    pub cluster_name: Option<String>,
    pub vcpus: Option<i64>,
    pub memory_mb: Option<i64>,
    pub days: Option<i64>,
    pub cpu_p95: Option<f64>,
    pub cpu_max: Option<f64>,
    pub mem_p95: Option<f64>,
    pub ready_avg: Option<f64>,
    pub ready_p99: Option<f64>,
    pub ready_pct: Option<f64>,
    pub lat_read_p99: Option<f64>,
    pub lat_write_p99: Option<f64>,
    /// Σ of the received and sent rates (`vscope.vm.net.rx`, `.tx`), for the network section.
    pub rx_sum: Option<f64>,
    pub tx_sum: Option<f64>,
    /// Whether the VM has rows of the rightsizing metrics (not only network ones).
    pub sized: bool,
}

/// Every VM's figures, and the notes about what they could not include.
pub type VmFigures = (Vec<Vm>, Vec<String>);

impl Vm {
    /// The columns that name a VM in every per-VM table: its service, moRef, display name, and
    /// its host and cluster at the latest inventory snapshot.
    pub fn identity_columns() -> Vec<Column> {
        ["service_name", "vm", "vm_name", "host_name", "cluster_name"]
            .into_iter()
            .map(column)
            .collect()
    }

    /// This VM's cells of [`Vm::identity_columns`].
    pub fn identity(&self) -> Vec<Cell> {
        vec![
            self.service_name.clone().into(),
            self.vm.clone().into(),
            self.name.clone().into(),
            self.host_name.clone().into(),
            self.cluster_name.clone().into(),
        ]
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Verdict {
    Undersized,
    Oversized,
    Ok,
}

impl Verdict {
    fn of(vm: &Vm) -> Verdict {
        let lt = |v: Option<f64>, limit| v.is_some_and(|v| v < limit);
        let gt = |v: Option<f64>, limit| v.is_some_and(|v| v > limit);
        if gt(vm.cpu_p95, UNDERSIZED_CPU_P95) || gt(vm.ready_pct, UNDERSIZED_READY_PCT) {
            Verdict::Undersized
        } else if lt(vm.cpu_p95, OVERSIZED_CPU_P95)
            && lt(vm.mem_p95, OVERSIZED_MEM_P95)
            && vm.days.is_some_and(|d| d >= OVERSIZED_MIN_DAYS)
        {
            Verdict::Oversized
        } else {
            Verdict::Ok
        }
    }

    fn name(self) -> &'static str {
        match self {
            Verdict::Undersized => "undersized",
            Verdict::Oversized => "oversized",
            Verdict::Ok => "ok",
        }
    }
}

/// What a VM would be given: (vCPUs, memory GB) after rightsizing.
fn resized(vm: &Vm, verdict: Verdict) -> (Option<i64>, Option<f64>) {
    let gb = vm.memory_mb.map(|mb| mb as f64 / 1024.0);
    let scale = |size: f64, p95: f64, floor: f64| (size * p95 / TARGET_P95).ceil().max(floor);
    match verdict {
        Verdict::Oversized => (
            vm.vcpus
                .zip(vm.cpu_p95)
                .map(|(n, p)| scale(n as f64, p, 1.0) as i64),
            gb.zip(vm.mem_p95).map(|(g, p)| scale(g, p, 1.0)),
        ),
        // Ready alone is the host's contention, not the VM's size: its vCPUs stay.
        Verdict::Undersized => (
            vm.vcpus.zip(vm.cpu_p95).map(|(n, p)| {
                if p > UNDERSIZED_CPU_P95 {
                    scale(n as f64, p, n as f64) as i64
                } else {
                    n
                }
            }),
            gb,
        ),
        Verdict::Ok => (vm.vcpus, gb),
    }
}

/// The per-VM figures for `section`, or `None` (and a note saying `what` is left out) when the
/// export has no vm_metrics.
pub fn vms_for<'a>(
    ctx: &'a Context,
    section: &mut Section,
    what: &str,
) -> Result<Option<&'a VmFigures>, ReportError> {
    if !ctx.ds.has("vm_metrics") {
        note_missing(section, "vm_metrics", what);
        return Ok(None);
    }
    vms_cached(ctx).map(Some)
}

/// The per-VM figures and the notes about them, computed on first use.
pub fn vms_cached(ctx: &Context) -> Result<&VmFigures, ReportError> {
    if let Some(v) = ctx.vms.get() {
        return Ok(v);
    }
    let mut notes = Vec::new();
    let vms = vms(ctx, &mut notes)?;
    Ok(ctx.vms.get_or_init(|| (vms, notes)))
}

/// The per-VM figures of vm_metrics (CPU, memory, ready, disk latency, and the network sums)
/// joined with the latest vm_inventory snapshot; shared with the contention and network sections.
pub fn vms(ctx: &Context, notes: &mut Vec<String>) -> Result<Vec<Vm>, ReportError> {
    let mut by_vm: BTreeMap<(Option<String>, Option<String>), Vm> = BTreeMap::new();
    // Keys are (service_name, datacenter, vm, metric).
    for (key, f) in ctx.series.get("vm_metrics").into_iter().flatten() {
        let [sn, _, vm, metric] = key.as_slice() else {
            continue;
        };
        let v = by_vm.entry((sn.clone(), vm.clone())).or_insert_with(|| Vm {
            service_name: sn.clone(),
            vm: vm.clone(),
            ..Vm::default()
        });
        let (p95, p99) = (f.percentile(0), f.percentile(1));
        let metric = metric.as_deref().unwrap_or_default();
        v.sized |= SIZING.contains(&metric);
        match metric {
            CPU => {
                v.cpu_p95 = p95;
                v.cpu_max = f.max;
                v.days = Some(f.days as i64);
            }
            MEM => v.mem_p95 = p95,
            READY => {
                v.ready_avg = f.mean();
                v.ready_p99 = p99;
            }
            LAT_READ => v.lat_read_p99 = p99,
            LAT_WRITE => v.lat_write_p99 = p99,
            VM_RX => v.rx_sum = Some(f.sum),
            VM_TX => v.tx_sum = Some(f.sum),
            _ => {}
        }
    }
    match ctx.ds.latest_inventory(
        "vm_inventory",
        &[
            "service_name",
            "mo_ref",
            "name",
            "host_name",
            "cluster_name",
            "cpu_num",
            "memory_max",
        ],
    )? {
        None => note_missing_into(notes),
        Some(lf) => {
            let df = run(lf, "the VM inventory")?;
            let (sn, mo_ref, name, host, cluster) = (
                strings(&df, "service_name")?,
                strings(&df, "mo_ref")?,
                strings(&df, "name")?,
                strings(&df, "host_name")?,
                strings(&df, "cluster_name")?,
            );
            let (cpu, mem) = (ints(&df, "cpu_num")?, ints(&df, "memory_max")?);
            for i in 0..df.height() {
                if let Some(v) = by_vm.get_mut(&(sn[i].clone(), mo_ref[i].clone())) {
                    v.name = name[i].clone();
                    v.host_name = host[i].clone();
                    v.cluster_name = cluster[i].clone();
                    v.vcpus = cpu[i];
                    v.memory_mb = mem[i];
                }
            }
        }
    }
    let ready_step = ctx.step_ms(READY);
    for v in by_vm.values_mut() {
        v.ready_pct = v
            .ready_avg
            .zip(v.vcpus.filter(|n| *n > 0))
            .zip(ready_step)
            .map(|((ready, n), step)| ready / (step as f64 * n as f64) * 100.0);
    }
    Ok(by_vm.into_values().collect())
}

/// What the per-series pass keeps for this section: the values of the sizing metrics, for their
/// 95th and 99th percentiles.
pub fn wanted() -> Wanted {
    Wanted {
        metrics: SIZING.iter().map(|m| m.to_string()).collect(),
        percentiles: vec![0.95, 0.99],
    }
}

fn note_missing_into(notes: &mut Vec<String>) {
    notes.push(
        "The export has no vm_inventory table: names, hosts, clusters, vCPUs and memory are left \
         empty, and so are CPU ready % and the resized sizes."
            .into(),
    );
}

pub fn section(ctx: &Context) -> Result<Section, ReportError> {
    let mut section = Section::new("rightsizing", "VM rightsizing");
    let Some((vms, notes)) = vms_for(ctx, &mut section, "rightsizing")? else {
        return Ok(section);
    };
    section.notes.extend(notes.iter().cloned());
    let pct = ctx.unit(CPU);
    let ready_step = ctx
        .step_ms(READY)
        .map_or("?".to_string(), |s| format!("{}", s as f64 / 1000.0));
    section.notes.push(format!(
        "Oversized: p95 CPU < {OVERSIZED_CPU_P95} % and p95 memory < {OVERSIZED_MEM_P95} % over \
         at least {OVERSIZED_MIN_DAYS} days with data. Undersized: p95 CPU > {UNDERSIZED_CPU_P95} % \
         or CPU ready > {UNDERSIZED_READY_PCT} %."
    ));
    section.notes.push(format!(
        "CPU ready % = average ready (ms) / (sample interval ({ready_step} s) × 1000 × vCPUs) × 100."
    ));
    section.notes.push(format!(
        "Resized: vCPUs and memory that put the p95 at {TARGET_P95} % (ceil(size × p95 / \
         {TARGET_P95}), at least 1); an undersized VM keeps its memory, and its vCPUs when only \
         CPU ready flags it (that is the host's contention)."
    ));
    let mut columns = Vm::identity_columns();
    columns.extend([
        column("verdict"),
        col_in("vcpus", "vCPUs"),
        col_in("memory", "GB"),
        col_in("days", "days"),
        col_in("cpu_p95", &pct),
        col_in("cpu_max", &pct),
        col_in("mem_p95", ctx.unit(MEM)),
        col_in("ready_avg", ctx.unit(READY)),
        col_in("ready", "%"),
        col_in("vcpus_new", "vCPUs"),
        col_in("memory_new", "GB"),
    ]);
    let mut candidates = Table::new(
        "candidates",
        "VMs to resize (undersized first)",
        columns.clone(),
    );
    let mut all = Table::new("vms", "Every VM", columns);
    all.display_limit = Some(0);
    let (mut freed_vcpus, mut freed_gb, mut needed_vcpus, mut needed_gb) = (0i64, 0.0, 0i64, 0.0);
    let (mut n_over, mut n_under) = (0i64, 0i64);
    let mut classes: BTreeMap<Verdict, Vec<(f64, f64)>> = BTreeMap::new();
    let mut rows: Vec<(Verdict, Vec<Cell>)> = Vec::new();
    for v in vms.iter().filter(|v| v.sized) {
        let verdict = Verdict::of(v);
        let (vcpus_new, gb_new) = resized(v, verdict);
        let gb = v.memory_mb.map(|mb| mb as f64 / 1024.0);
        let dv = vcpus_new.zip(v.vcpus).map_or(0, |(new, old)| new - old);
        let dg = gb_new.zip(gb).map_or(0.0, |(new, old)| new - old);
        match verdict {
            Verdict::Oversized => {
                n_over += 1;
                freed_vcpus -= dv;
                freed_gb -= dg;
            }
            Verdict::Undersized => {
                n_under += 1;
                needed_vcpus += dv;
                needed_gb += dg;
            }
            Verdict::Ok => {}
        }
        if let (Some(x), Some(y)) = (v.cpu_p95, v.mem_p95) {
            classes.entry(verdict).or_default().push((x, y));
        }
        let mut row = v.identity();
        row.extend([
            verdict.name().into(),
            v.vcpus.into(),
            gb.into(),
            v.days.into(),
            v.cpu_p95.into(),
            v.cpu_max.into(),
            v.mem_p95.into(),
            v.ready_avg.into(),
            v.ready_pct.into(),
            vcpus_new.into(),
            gb_new.into(),
        ]);
        rows.push((verdict, row));
    }
    for (verdict, row) in &rows {
        all.rows.push(row.clone());
        if *verdict != Verdict::Ok {
            candidates.rows.push(row.clone());
        }
    }
    // Undersized first (they hurt now), then oversized; by p95 CPU within each (rows hold
    // service and vm first, so ties are broken by them).
    let order = |r: &Vec<Cell>| -> (u8, i64) {
        let verdict = matches!(&r[5], Cell::Text(t) if t == "oversized") as u8;
        let cpu = match r[9] {
            Cell::Float(v) => (v * 100.0).round() as i64,
            _ => 0,
        };
        (verdict, if verdict == 0 { -cpu } else { cpu })
    };
    candidates.rows.sort_by_key(order);
    candidates.display_limit = Some(ctx.top);
    let mut totals = Table::new(
        "totals",
        "What rightsizing would free and need",
        vec![
            column("vms"),
            column("oversized"),
            column("undersized"),
            col_in("vcpus_freed", "vCPUs"),
            col_in("memory_freed", "GB"),
            col_in("vcpus_needed", "vCPUs"),
            col_in("memory_needed", "GB"),
        ],
    );
    totals.rows.push(vec![
        (vms.len() as i64).into(),
        n_over.into(),
        n_under.into(),
        freed_vcpus.into(),
        freed_gb.into(),
        needed_vcpus.into(),
        needed_gb.into(),
    ]);
    section.tables.push(totals);
    section.tables.push(candidates);
    section.tables.push(all);
    section.charts.push(Chart::Scatter(ScatterChart {
        title: "p95 CPU against p95 memory, per VM".into(),
        x_label: "CPU p95".into(),
        y_label: "memory p95".into(),
        unit: "%".into(),
        classes: classes
            .into_iter()
            .map(|(v, points)| (v.name().to_string(), points))
            .collect(),
        x_lines: vec![
            (OVERSIZED_CPU_P95, format!("{OVERSIZED_CPU_P95} %")),
            (UNDERSIZED_CPU_P95, format!("{UNDERSIZED_CPU_P95} %")),
        ],
        y_lines: vec![(OVERSIZED_MEM_P95, format!("{OVERSIZED_MEM_P95} %"))],
        range: (0.0, 100.0),
    }));
    Ok(section)
}
