//! The simulated estate: services, datacenters, hosts, VMs, datastores and users derived from the
//! seed and the sizes, the series each object has, and the value of every point as a pure function
//! of (series, timestamp). Owns no I/O; the HTTP faces (`apiv6`, `opentsdb`) only read it.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::f64::consts::TAU;

use chrono::{DateTime, Utc};

use super::{SimConfig, SimCredentials, SimSeries, METRICS_USER};
use crate::job::{Catalog, Component};
use crate::ovh::clock::VirtualClock;
use crate::ovh::inventory::{datacenter_tag, DatacenterInventory, Inventory, ServiceInventory};
use crate::ovh::model::{Datacenter, Filer, Host, Service, UnitAndValue, User, Vm};

/// `env` tag OVH adds to every series.
const ENV_TAG: &str = "prod";
/// `servicetype` tag OVH adds to every series.
const SERVICE_TYPE_TAG: &str = "vscope";
/// Host NICs as the guide names them; a host has the first two or all four.
const NICS: [&str; 4] = ["vmnic0", "vmnic1", "vmnic2", "vmnic3"];
/// A filling datastore climbs from this fraction of its size to `FILL_TO` in `FILL_DAYS`, so it
/// is always some weeks from full: 0.5 % of its size a day.
const FILL_FROM: f64 = 0.3;
const FILL_TO: f64 = 0.9;
const FILL_DAYS: f64 = 120.0;
/// One VM in this many is powered off (and so has no series), starting with the second VM of each
/// datacenter so that any datacenter with two VMs or more has one.
const POWERED_OFF_EVERY: usize = 20;
const VM_ROLES: [&str; 10] = [
    "web", "db", "app", "cache", "mq", "build", "proxy", "mail", "ci", "backup",
];

/// With `hostile_names`: what names and tag values get appended, each breaking some naive
/// handling (paths, `key=value` splitting, percent-decoding, line-based formats, quoting, escaping,
/// byte-length assumptions).
const HOSTILE: [&str; 8] = [
    "/../../etc",
    " a=b,c=d",
    " 100% %2F%00",
    "\nsecond line\r\n",
    " \"quoted\" 'single'",
    " back\\slash\\",
    " café 日本語",
    "\t=/%\"\\é日本\n..",
];

/// With `hostile_names`: the suffix of the one VM moRef and datastore name per datacenter that
/// become hostile (both are also tag values: `vm`, `datastore`).
const HOSTILE_ID: &str = "/../x=1%2F\"q\"\\é日本\n";

/// With `hostile_names`: the `env` tag OVH adds to every series.
const HOSTILE_ENV: &str = "prod/..=%\"\\\n日本";

/// The `i`-th hostile suffix; one in nine is a name of more than 300 characters.
fn hostile(i: usize) -> String {
    match HOSTILE.get(i % (HOSTILE.len() + 1)) {
        Some(s) => (*s).to_string(),
        None => format!(" {}", "long/name=é日本%\"\\ ".repeat(20)),
    }
}

/// splitmix64's finalizer: a cheap, well-mixed 64-bit hash step.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn hash2(a: u64, b: u64) -> u64 {
    mix(a ^ mix(b))
}

/// FNV-1a over `s`, then mixed with `seed`.
pub(crate) fn hash_str(seed: u64, s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    hash2(seed, h)
}

/// A uniform number in `[0, 1)` from a hash.
fn unit(h: u64) -> f64 {
    (h >> 11) as f64 / (1u64 << 53) as f64
}

/// How one series moves over time: a daily sine around `base`, plus per-point noise, clamped.
#[derive(Debug, Clone, Copy)]
struct Shape {
    base: f64,
    /// Relative amplitude of the daily cycle.
    amp: f64,
    /// Absolute half-width of the per-point noise.
    noise: f64,
    lo: f64,
    hi: f64,
    /// Phase of the daily cycle, in days.
    phase: f64,
    /// 10^decimals: values are rounded to this many decimals, like vScope's two-decimal values.
    scale: f64,
    /// A datastore that fills: a sawtooth added to `base` that climbs `ramp_span` over
    /// `ramp_days` and then drops back (a clean-up), at a phase of `ramp_offset` days. The ramp is
    /// a function of the timestamp alone, so every window sees the same values; 0 days: no ramp.
    ramp_days: f64,
    ramp_offset: f64,
    ramp_span: f64,
}

/// One series with what it takes to compute its points.
#[derive(Debug, Clone)]
pub(crate) struct SeriesDef {
    pub series: SimSeries,
    key: u64,
    shape: Shape,
}

/// A service with the objects APIv6 serves for it.
#[derive(Debug, Clone)]
pub(crate) struct SimService {
    pub service: Service,
    pub inventory: ServiceInventory,
    pub users: Vec<User>,
}

/// The simulated estate and its data.
#[derive(Debug)]
pub struct World {
    config: SimConfig,
    /// With `virtual_time`: the clock APIv6 reads, shared with the run's client.
    virtual_clock: Option<VirtualClock>,
    credentials: SimCredentials,
    services: Vec<SimService>,
    /// Series by metric, sorted by tags so a series is found by binary search.
    series: HashMap<String, Vec<SeriesDef>>,
    /// The metrics the endpoint knows, in catalog order.
    metric_names: Vec<String>,
}

/// Hands out values of an arithmetic progression, so ids never collide.
struct IdSeq {
    next: i64,
    stride: i64,
}

impl IdSeq {
    fn new(seed: u64, salt: &str, min: i64, spread: u64, max_stride: u64) -> IdSeq {
        let h = hash_str(seed, salt);
        IdSeq {
            next: min + (h % spread) as i64,
            stride: 1 + (mix(h) % max_stride) as i64,
        }
    }

    fn take(&mut self) -> i64 {
        let id = self.next;
        self.next += self.stride;
        id
    }
}

impl World {
    pub fn new(config: SimConfig) -> World {
        let seed = config.seed;
        let credentials = credentials(seed);
        let mut dc_ids = IdSeq::new(seed, "datacenter", 100, 900, 7);
        let mut host_ids = IdSeq::new(seed, "host", 2_000, 5_000, 13);
        let mut vm_ids = IdSeq::new(seed, "vm", 10_000, 50_000, 3);
        let mut morefs = IdSeq::new(seed, "moref", 100, 2_000, 5);
        let mut filer_ids = IdSeq::new(seed, "filer", 1_000, 9_000, 11);
        let mut filer_numbers = IdSeq::new(seed, "filer-name", 100, 900, 9);
        let mut user_ids = IdSeq::new(seed, "user", 1_000, 9_000, 5);
        let host_ip_base = (hash_str(seed, "host-ip") % 20_000) as usize;

        let mut world_series: HashMap<String, Vec<SeriesDef>> = HashMap::new();
        let catalog = Catalog::builtin();
        let mut names_seen = HashSet::new();
        let mut services = Vec::with_capacity(config.services);
        let mut host_global = 0usize;

        for s in 0..config.services {
            let sn = service_name(seed, s, &mut names_seen);
            let mut datacenters = Vec::with_capacity(config.datacenters);
            let mut role_counts = [0usize; VM_ROLES.len()];
            for d in 0..config.datacenters {
                let dc_id = dc_ids.take();
                let dc_name = format!("datacenter{dc_id}");
                let cluster = if config.hostile_names {
                    format!("Cluster{}{}", d + 1, hostile(d))
                } else {
                    format!("Cluster{}", d + 1)
                };
                let hosts: Vec<Host> = (0..config.hosts)
                    .map(|h| {
                        let host = host(
                            seed,
                            host_ids.take(),
                            host_ip_base + host_global,
                            &cluster,
                            h,
                        );
                        host_global += 1;
                        host
                    })
                    .collect();
                let mut vms: Vec<Vm> = (0..config.vms)
                    .map(|v| {
                        let vm_id = vm_ids.take();
                        let h = hash2(seed, vm_id as u64);
                        let role = (h % VM_ROLES.len() as u64) as usize;
                        role_counts[role] += 1;
                        let name = format!("{}-{:02}", VM_ROLES[role], role_counts[role]);
                        let host = (!hosts.is_empty()).then(|| &hosts[v % hosts.len()]);
                        vm(h, vm_id, morefs.take(), name, host, &cluster, v)
                    })
                    .collect();
                // Hosts know how many VMs run on them.
                let mut hosts = hosts;
                for host in &mut hosts {
                    let on: Vec<&Vm> = vms
                        .iter()
                        .filter(|v| v.host_name.as_deref() == Some(host.name.as_str()))
                        .collect();
                    host.vm_total = Some(on.len() as i64);
                    host.vm_vcpu_total = Some(on.iter().filter_map(|v| v.cpu_num).sum());
                }
                let mut filers: Vec<Filer> = (0..config.filers)
                    .map(|_| filer(seed, filer_ids.take(), filer_numbers.take()))
                    .collect();
                if config.hostile_names {
                    make_hostile(&mut hosts, &mut vms, &mut filers);
                }
                vms.sort_by_key(|v| v.vm_id);
                datacenters.push(DatacenterInventory {
                    datacenter: datacenter(dc_id, dc_name),
                    hosts,
                    vms,
                    filers,
                });
            }
            // A few services also have datastores shared by all their datacenters.
            let shared = (hash_str(seed, &format!("{sn}/shared-filers")) % 3) as usize;
            let shared_filers: Vec<Filer> = (0..shared)
                .map(|_| filer(seed, filer_ids.take(), filer_numbers.take()))
                .collect();
            let inventory = ServiceInventory {
                service_name: sn.clone(),
                datacenters,
                filers: shared_filers,
            };

            // Series: every object that runs, plus one VM deleted from the inventory whose history
            // the metrics store still holds.
            let deleted_moref = format!("vm-{}", morefs.take());
            for (d, dc) in inventory.datacenters.iter().enumerate() {
                let dc_tag = datacenter_tag(&sn, &dc.datacenter.name);
                let env = if config.hostile_names {
                    HOSTILE_ENV
                } else {
                    ENV_TAG
                };
                let base_tags = |entity: &[(&str, &str)]| -> BTreeMap<String, String> {
                    let mut tags = BTreeMap::from([
                        ("datacenter".to_string(), dc_tag.clone()),
                        ("env".to_string(), env.to_string()),
                        ("servicename".to_string(), sn.clone()),
                        ("servicetype".to_string(), SERVICE_TYPE_TAG.to_string()),
                    ]);
                    for (k, v) in entity {
                        tags.insert((*k).to_string(), (*v).to_string());
                    }
                    tags
                };
                for metric in &catalog.metrics {
                    let list = world_series.entry(metric.name.clone()).or_default();
                    match metric.component {
                        Component::Vm => {
                            let running = dc.vms.iter().filter(|v| v.power_state == "poweredOn");
                            let mut morefs: Vec<&str> =
                                running.map(|v| v.mo_ref.as_str()).collect();
                            if d == 0 {
                                morefs.push(&deleted_moref);
                            }
                            for moref in morefs {
                                let tags = base_tags(&[("vm", moref)]);
                                list.push(series_def(seed, &metric.name, tags, None));
                            }
                        }
                        Component::Host => {
                            for host in &dc.hosts {
                                if metric.tags.iter().any(|t| t == "nicname") {
                                    for nic in &NICS[..nic_count(seed, host)] {
                                        let tags =
                                            base_tags(&[("host", &host.name), ("nicname", nic)]);
                                        list.push(series_def(seed, &metric.name, tags, None));
                                    }
                                } else {
                                    let tags = base_tags(&[("host", &host.name)]);
                                    list.push(series_def(seed, &metric.name, tags, None));
                                }
                            }
                        }
                        Component::Filer => {
                            // Shared datastores report under the service's first datacenter.
                            let shared = if d == 0 { &inventory.filers[..] } else { &[] };
                            for f in dc.filers.iter().chain(shared) {
                                let tags = base_tags(&[("datastore", &f.name)]);
                                let size_kb = f.size.as_ref().map_or(1 << 30, |s| s.value << 20);
                                list.push(series_def(
                                    seed,
                                    &metric.name,
                                    tags,
                                    Some(size_kb as f64),
                                ));
                            }
                        }
                    }
                }
            }

            let users = users(&sn, &mut user_ids);
            services.push(SimService {
                service: service(&sn),
                inventory,
                users,
            });
        }
        for list in world_series.values_mut() {
            list.sort_by(|a, b| a.series.cmp(&b.series));
        }
        World {
            virtual_clock: config
                .virtual_time
                .then(|| VirtualClock::starting_at(Utc::now().timestamp())),
            config,
            credentials,
            services,
            series: world_series,
            metric_names: catalog.metrics.iter().map(|m| m.name.clone()).collect(),
        }
    }

    pub fn config(&self) -> &SimConfig {
        &self.config
    }

    /// The virtual clock of a `virtual_time` world, for the client that is to share it.
    pub fn virtual_clock(&self) -> Option<&VirtualClock> {
        self.virtual_clock.as_ref()
    }

    /// The APIv6 clock in Unix seconds: this machine's (or the virtual) time plus
    /// `clock_offset_secs`.
    pub fn apiv6_now(&self) -> i64 {
        let local = self
            .virtual_clock
            .as_ref()
            .map_or_else(|| Utc::now().timestamp(), VirtualClock::unix_secs);
        local + self.config.clock_offset_secs
    }

    /// The credentials this world accepts.
    pub fn credentials(&self) -> SimCredentials {
        self.credentials.clone()
    }

    /// The inventory APIv6 serves, as the exporter's snapshot of it at `snapshot_ts` would be.
    pub fn inventory(&self, snapshot_ts: DateTime<Utc>) -> Inventory {
        Inventory {
            snapshot_ts,
            services: self.services.iter().map(|s| s.inventory.clone()).collect(),
        }
    }

    /// Every series of `metric` that has at least one point somewhere (powered-off VMs have none).
    pub fn series(&self, metric: &str) -> Vec<SimSeries> {
        self.series_defs(metric)
            .map(|list| list.iter().map(|d| d.series.clone()).collect())
            .unwrap_or_default()
    }

    /// The raw points of a series in `[start_ms, end_ms]` (both inclusive, as OpenTSDB), ascending.
    pub fn points(
        &self,
        series: &SimSeries,
        start_ms: i64,
        end_ms: i64,
    ) -> impl Iterator<Item = (i64, f64)> + '_ {
        let def = self.series_defs(&series.metric).and_then(|list| {
            list.binary_search_by(|d| d.series.cmp(series))
                .ok()
                .map(|i| &list[i])
        });
        match def {
            Some(def) => self.def_points(def, start_ms, end_ms),
            None => self.def_points_empty(),
        }
    }

    /// The services with everything APIv6 serves about them.
    pub(crate) fn services(&self) -> &[SimService] {
        &self.services
    }

    /// The metric names the endpoint knows, in catalog order.
    pub(crate) fn metric_names(&self) -> &[String] {
        &self.metric_names
    }

    /// The series of `metric`, or `None` for a metric the endpoint does not know.
    pub(crate) fn series_defs(&self, metric: &str) -> Option<&[SeriesDef]> {
        self.series.get(metric).map(Vec::as_slice)
    }

    /// Milliseconds between two raw points.
    pub(crate) fn step_ms(&self) -> i64 {
        i64::from(self.config.resolution_secs.max(1)) * 1000
    }

    /// How many grid instants `[start_ms, end_ms]` holds: what a fetch of one series would read.
    pub(crate) fn grid_len(&self, start_ms: i64, end_ms: i64) -> u64 {
        let step = self.step_ms();
        let first = first_on_grid(start_ms, step);
        if first > end_ms {
            0
        } else {
            ((end_ms - first) / step + 1) as u64
        }
    }

    /// The points of one series in `[start_ms, end_ms]`.
    pub(crate) fn def_points(&self, def: &SeriesDef, start_ms: i64, end_ms: i64) -> Points {
        let step = self.step_ms();
        Points {
            next: first_on_grid(start_ms, step),
            end: end_ms,
            step,
            key: def.key,
            shape: def.shape,
            gaps_per_mille: u64::from(self.config.gaps_per_mille),
        }
    }

    fn def_points_empty(&self) -> Points {
        Points {
            next: 1,
            end: 0,
            step: 1,
            key: 0,
            shape: Shape {
                base: 0.0,
                amp: 0.0,
                noise: 0.0,
                lo: 0.0,
                hi: 0.0,
                phase: 0.0,
                scale: 1.0,
                ramp_days: 0.0,
                ramp_offset: 0.0,
                ramp_span: 0.0,
            },
            gaps_per_mille: 0,
        }
    }
}

/// The first multiple of `step` at or after `t`.
fn first_on_grid(t: i64, step: i64) -> i64 {
    let r = t.rem_euclid(step);
    if r == 0 {
        t
    } else {
        t - r + step
    }
}

/// The points of one series, computed as they are read.
#[derive(Debug, Clone)]
pub(crate) struct Points {
    next: i64,
    end: i64,
    step: i64,
    key: u64,
    shape: Shape,
    gaps_per_mille: u64,
}

impl Iterator for Points {
    type Item = (i64, f64);

    fn next(&mut self) -> Option<(i64, f64)> {
        while self.next <= self.end {
            let ts = self.next;
            self.next += self.step;
            let h = hash2(self.key, ts as u64);
            // A rare missing point, as collectors sometimes miss a poll.
            if (h >> 48) % 1000 < self.gaps_per_mille {
                continue;
            }
            return Some((ts, value(&self.shape, ts, h)));
        }
        None
    }
}

fn value(s: &Shape, ts_ms: i64, h: u64) -> f64 {
    let day = ts_ms as f64 / 86_400_000.0;
    let cycle = (TAU * (day + s.phase)).sin();
    let noise = s.noise * (2.0 * unit(h) - 1.0);
    let ramp = if s.ramp_days > 0.0 {
        s.ramp_span * ((day + s.ramp_offset) / s.ramp_days).fract()
    } else {
        0.0
    };
    let v = (s.base * (1.0 + s.amp * cycle) + ramp + noise).clamp(s.lo, s.hi);
    (v * s.scale).round() / s.scale
}

fn series_def(
    seed: u64,
    metric: &str,
    tags: BTreeMap<String, String>,
    size_kb: Option<f64>,
) -> SeriesDef {
    let mut id = String::from(metric);
    for (k, v) in &tags {
        id.push(',');
        id.push_str(k);
        id.push('=');
        id.push_str(v);
    }
    let key = hash_str(seed, &id);
    // The entity's own traits (busy or idle, size) come from its tag alone, so that all metrics of
    // one VM agree on whether it is busy.
    let entity = ["vm", "host", "datastore"]
        .iter()
        .find_map(|k| tags.get(*k))
        .map_or(String::new(), Clone::clone);
    let e = hash_str(seed, &entity);
    let activity = match e % 10 {
        0..=2 => 0.05, // idle
        3..=7 => 1.0,
        _ => 3.0, // busy
    };
    let spread = 0.5 + unit(mix(e));
    let nic_factor = match tags.get("nicname").map(String::as_str) {
        Some("vmnic0") => 1.0,
        Some("vmnic1") => 0.6,
        Some(_) => 0.05,
        None => 1.0,
    };
    let phase = 0.05 * unit(mix(e ^ 1)) - 0.3;
    // One datastore in three fills up (and is cleaned up every `FILL_DAYS`).
    let filling = tags.contains_key("datastore") && e.is_multiple_of(3);
    let (typical, amp, noise_frac, hi, decimals) = match metric {
        "vscope.vm.cpu.usage.perc" => (25.0 * activity * spread, 0.6, 0.15, 100.0, 2),
        // Idle VMs also use little of their memory: they are the ones rightsizing must find.
        "vscope.vm.mem.usage.perc" if activity < 0.1 => {
            (8.0 + 15.0 * unit(mix(e ^ 2)), 0.05, 0.02, 100.0, 2)
        }
        "vscope.vm.mem.usage.perc" => (30.0 + 50.0 * unit(mix(e ^ 2)), 0.05, 0.02, 100.0, 2),
        "vscope.vm.cpu.ready" => (20.0 * activity * spread, 0.5, 0.3, 20_000.0, 2),
        "vscope.vm.net.rx" => (400.0 * activity * spread, 0.7, 0.2, 1e7, 2),
        "vscope.vm.net.tx" => (250.0 * activity * spread, 0.7, 0.2, 1e7, 2),
        "vscope.vm.net.packetsrx" => (300.0 * activity * spread, 0.7, 0.2, 1e7, 2),
        "vscope.vm.net.packetstx" => (220.0 * activity * spread, 0.7, 0.2, 1e7, 2),
        "vscope.vm.disk.io.read" => (80.0 * activity * spread, 0.5, 0.3, 1e6, 2),
        "vscope.vm.disk.io.write" => (60.0 * activity * spread, 0.5, 0.3, 1e6, 2),
        "vscope.vm.disk.bandwidth.read" => (2_000.0 * activity * spread, 0.5, 0.3, 1e7, 2),
        "vscope.vm.disk.bandwidth.write" => (1_500.0 * activity * spread, 0.5, 0.3, 1e7, 2),
        "vscope.vm.disk.latency.read" => (1.5 + activity * spread, 0.3, 0.2, 1e4, 2),
        "vscope.vm.disk.latency.write" => (2.5 + activity * spread, 0.3, 0.2, 1e4, 2),
        "vscope.host.cpu.usage.perc" => (35.0 * spread, 0.4, 0.05, 100.0, 2),
        "vscope.host.mem.usage.perc" => (45.0 + 30.0 * unit(mix(e ^ 2)), 0.03, 0.005, 100.0, 2),
        "vscope.host.net.tx" => (15_000.0 * spread * nic_factor, 0.6, 0.2, 1e8, 2),
        "vscope.host.net.rx" => (20_000.0 * spread * nic_factor, 0.6, 0.2, 1e8, 2),
        "vscope.host.net.packetstx" => (10_000.0 * spread * nic_factor, 0.6, 0.2, 1e8, 2),
        "vscope.host.net.packetsrx" => (12_000.0 * spread * nic_factor, 0.6, 0.2, 1e8, 2),
        "vscope.filer.datastore.diskspace.used" if filling => {
            let size = size_kb.unwrap_or(1e9);
            (FILL_FROM * size, 0.01, 0.0005, size, 0)
        }
        "vscope.filer.datastore.diskspace.used" => {
            let size = size_kb.unwrap_or(1e9);
            ((0.3 + 0.5 * unit(mix(e ^ 3))) * size, 0.01, 0.0005, size, 0)
        }
        _ => (10.0, 0.5, 0.2, 1e6, 2),
    };
    SeriesDef {
        series: SimSeries {
            metric: metric.to_string(),
            tags,
        },
        key,
        shape: Shape {
            base: typical,
            amp,
            noise: noise_frac * typical,
            lo: 0.0,
            hi,
            phase,
            scale: 10f64.powi(decimals),
            ramp_days: if filling { FILL_DAYS } else { 0.0 },
            ramp_offset: FILL_DAYS * unit(mix(e ^ 4)),
            ramp_span: (FILL_TO - FILL_FROM) * size_kb.unwrap_or(1e9),
        },
    }
}

/// Service names look like OVH's (`pcc-37-187-228-180`): an IPv4 address of the service.
fn service_name(seed: u64, index: usize, seen: &mut HashSet<String>) -> String {
    let mut attempt = 0u64;
    loop {
        let h = hash2(hash_str(seed, "service"), (index as u64) << 16 | attempt);
        let o = |i: u32| 1 + ((h >> (i * 8)) & 0xff) % 254;
        let name = format!("pcc-{}-{}-{}-{}", 5 + o(0) % 210, o(1), o(2), o(3));
        if seen.insert(name.clone()) {
            return name;
        }
        attempt += 1;
    }
}

fn credentials(seed: u64) -> SimCredentials {
    let hex = |salt: &str, words: usize| -> String {
        (0..words)
            .map(|i| format!("{:016x}", hash2(hash_str(seed, salt), i as u64)))
            .collect()
    };
    let token_parts = hex("token", 4);
    SimCredentials {
        application_key: hex("application-key", 1),
        application_secret: hex("application-secret", 2),
        consumer_key: hex("consumer-key", 2),
        metrics_user: METRICS_USER.to_string(),
        token: format!(
            "{}_{}_{}-{}",
            &token_parts[..12],
            &token_parts[12..35],
            &token_parts[35..49],
            &token_parts[49..58]
        ),
    }
}

fn service(sn: &str) -> Service {
    Service {
        service_name: sn.to_string(),
        description: Some(format!("Simulated Hosted Private Cloud {sn}")),
        location: Some("rbx2".to_string()),
        state: Some("delivered".to_string()),
        v_scope_url: Some(format!("https://{sn}.ovh.de/vscope")),
        version: Some(serde_json::json!({"major": "7.0", "minor": "3", "build": "21958406"})),
    }
}

fn datacenter(id: i64, name: String) -> Datacenter {
    Datacenter {
        datacenter_id: id,
        name,
        commercial_name: Some("SDDC".to_string()),
        commercial_range_name: Some("2018v3".to_string()),
        description: Some("Simulated datacenter".to_string()),
        version: Some("7.0".to_string()),
        is_removable: Some(false),
        horizon_view_name: None,
    }
}

fn host(seed: u64, host_id: i64, ip_index: usize, cluster: &str, index: usize) -> Host {
    let h = hash2(seed, host_id as u64);
    let (profile, cores, ram_gb) = match h % 3 {
        0 => ("L", 24, 256),
        1 => ("XL", 32, 384),
        _ => ("2XL", 48, 768),
    };
    let cpu_max_core = 2_400;
    Host {
        host_id,
        name: host_ip(ip_index),
        profile: Some(profile.to_string()),
        profile_code: Some(format!("pcc-host-{}", profile.to_lowercase())),
        rack: Some(format!("R{:02}", index / 8 + 1)),
        state: Some("delivered".to_string()),
        billing_type: Some("monthly".to_string()),
        cpu: Some(UnitAndValue {
            unit: "GHz".to_string(),
            value: f64::from(cores) * 2.4,
        }),
        ram: Some(UnitAndValue {
            unit: "GB".to_string(),
            value: ram_gb,
        }),
        cluster_name: Some(cluster.to_string()),
        connection_state: Some("connected".to_string()),
        cpu_max: Some(i64::from(cores) * cpu_max_core),
        cpu_max_core: Some(cpu_max_core),
        cpu_used: Some((h >> 8) as i64 % (i64::from(cores) * cpu_max_core / 2)),
        cpu_num: Some(i64::from(cores)),
        in_maintenance: Some(false),
        memory_used: Some(((h >> 20) % (ram_gb as u64 * 1024 / 2)) as f64),
        parent_host_id: None,
        resource_name: None,
        uptime: Some(86_400 * (10 + (h >> 32) as i64 % 300)),
        vm_total: None,
        vm_vcpu_total: None,
    }
}

/// Gives one datacenter's objects hostile names: every VM name and folder and host profile, the
/// first VM's moRef and the first datastore's name (so the `vm` and `datastore` tags too). Ids,
/// host names (IPs, also the `host` tag) and every value stay as they were.
fn make_hostile(hosts: &mut [Host], vms: &mut [Vm], filers: &mut [Filer]) {
    for (i, host) in hosts.iter_mut().enumerate() {
        if let Some(profile) = &mut host.profile {
            profile.push_str(&hostile(i + 5));
        }
    }
    for (i, vm) in vms.iter_mut().enumerate() {
        if let Some(name) = &mut vm.name {
            name.push_str(&hostile(i));
        }
        if let Some(folder) = &mut vm.folder_name {
            folder.push_str(&hostile(i + 3));
        }
    }
    // The first VM is always powered on, so its moRef is a `vm` tag.
    if let Some(vm) = vms.first_mut() {
        vm.mo_ref.push_str(HOSTILE_ID);
    }
    if let Some(filer) = filers.first_mut() {
        filer.name.push_str(HOSTILE_ID);
    }
}

/// Host addresses look like vSphere management IPs: 172.16.0.0/12, one per host, never repeated.
fn host_ip(n: usize) -> String {
    let third = (n / 250) % 256;
    let second = 16 + (n / 250 / 256) % 16;
    format!("172.{second}.{third}.{}", 1 + n % 250)
}

fn nic_count(seed: u64, host: &Host) -> usize {
    if hash2(seed ^ 0x006e_6963, host.host_id as u64).is_multiple_of(3) {
        2
    } else {
        4
    }
}

fn vm(
    h: u64,
    vm_id: i64,
    moref: i64,
    name: String,
    host: Option<&Host>,
    cluster: &str,
    index: usize,
) -> Vm {
    let powered_on = index % POWERED_OFF_EVERY != 1;
    let cpu_num = [1, 2, 2, 4, 4, 8, 16][(h >> 8) as usize % 7];
    let memory_max = 1024 * [1, 2, 4, 8, 16, 32, 64][(h >> 16) as usize % 7];
    let windows = (h >> 24).is_multiple_of(4);
    let on = |v: f64| if powered_on { v } else { 0.0 };
    let u = |shift: u32| ((h >> shift) & 0xffff) as f64 / 65_536.0;
    Vm {
        vm_id,
        mo_ref: format!("vm-{moref}"),
        power_state: if powered_on {
            "poweredOn"
        } else {
            "poweredOff"
        }
        .to_string(),
        name: Some(name),
        host_name: host.map(|h| h.name.clone()),
        cluster_name: Some(cluster.to_string()),
        folder_name: Some("Discovered virtual machine".to_string()),
        guest_os_family: Some(
            if windows {
                "windowsGuest"
            } else {
                "linuxGuest"
            }
            .to_string(),
        ),
        license: windows.then(|| "windows".to_string()),
        cpu_max: Some(f64::from(cpu_num) * 2_400.0),
        cpu_used: Some(on(f64::from(cpu_num) * 2_400.0 * u(30) * 0.5) as i64),
        cpu_num: Some(i64::from(cpu_num)),
        cpu_ready: Some(on((u(34) * 200.0).round())),
        cpu_ready_percent: Some(on((u(34) * 100.0).round() / 100.0)),
        memory_max: Some(memory_max),
        memory_used: Some(on(memory_max as f64 * u(40)) as i64),
        memory_tps: None,
        net_rx: Some(on((u(44) * 500.0).round())),
        net_tx: Some(on((u(46) * 300.0).round())),
        net_packet_rx: Some(on((u(48) * 400.0).round())),
        net_packet_tx: Some(on((u(2) * 300.0).round())),
        read_rate: Some(on((u(4) * 2_000.0).round())),
        write_rate: Some(on((u(6) * 1_500.0).round())),
        read_latency: Some(on((u(10) * 5.0).round())),
        write_latency: Some(on((u(12) * 5.0).round())),
        read_per_second: Some(on((u(14) * 100.0).round())),
        write_per_second: Some(on((u(18) * 80.0).round())),
        snapshot_num: Some(((h >> 50) % 3) as i64),
        vmware_tools: Some(
            if powered_on {
                "toolsOk"
            } else {
                "toolsNotRunning"
            }
            .to_string(),
        ),
        vmware_tools_version: Some("12352".to_string()),
    }
}

fn filer(seed: u64, filer_id: i64, number: i64) -> Filer {
    let h = hash2(seed, filer_id as u64);
    let size_gb = [1_200, 2_400, 3_200, 6_400][(h % 4) as usize];
    let used = (size_gb as f64 * (0.3 + 0.5 * unit(mix(h)))).round();
    Filer {
        filer_id,
        name: format!("pcc-{number:06}"),
        full_profile: Some(format!("{}t-nfs", size_gb / 1_000)),
        profile: Some(format!("{}t", size_gb / 1_000)),
        master: Some(format!("nfs{}a", number % 100)),
        slave: Some(format!("nfs{}b", number % 100)),
        state: Some("delivered".to_string()),
        is_managed_by_ovh: Some(false),
        size: Some(UnitAndValue {
            unit: "GB".to_string(),
            value: size_gb,
        }),
        active_node: Some("master".to_string()),
        billing_type: Some("monthly".to_string()),
        connection_state: Some("online".to_string()),
        resource_name: None,
        space_free: Some(size_gb as f64 - used),
        space_provisionned: Some((used * 1.3).round()),
        space_used: Some(used),
        vm_total: Some(((h >> 16) % 40) as i64),
    }
}

fn users(sn: &str, ids: &mut IdSeq) -> Vec<User> {
    ["admin", METRICS_USER, "ops"]
        .iter()
        .map(|login| User {
            user_id: ids.take(),
            login: login.to_string(),
            name: login.to_string(),
            state: Some("delivered".to_string()),
            email: Some(format!("{login}@{sn}.example.net")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn world() -> World {
        World::new(SimConfig {
            seed: 7,
            datacenters: 2,
            hosts: 3,
            vms: 12,
            filers: 2,
            ..SimConfig::default()
        })
    }

    #[test]
    fn the_same_seed_gives_the_same_world_and_another_seed_another() {
        let (a, b) = (world(), world());
        let t = Utc::now();
        assert_eq!(a.inventory(t), b.inventory(t));
        let series = &a.series("vscope.vm.cpu.usage.perc")[0];
        let pa: Vec<_> = a.points(series, 0, 3_600_000).collect();
        let pb: Vec<_> = b.points(series, 0, 3_600_000).collect();
        assert_eq!(pa, pb);
        let other = World::new(SimConfig {
            seed: 8,
            ..a.config().clone()
        });
        assert_ne!(a.inventory(t), other.inventory(t));
    }

    #[test]
    fn ids_and_names_are_unique() {
        let w = World::new(SimConfig {
            services: 3,
            datacenters: 3,
            hosts: 10,
            vms: 300,
            filers: 4,
            ..SimConfig::default()
        });
        let inv = w.inventory(Utc::now());
        let mut seen = HashSet::new();
        for (_, dc) in inv.datacenters() {
            assert!(seen.insert(format!("dc {}", dc.datacenter.datacenter_id)));
            for h in &dc.hosts {
                assert!(seen.insert(format!("host {}", h.host_id)));
                assert!(seen.insert(format!("ip {}", h.name)));
            }
            for v in &dc.vms {
                assert!(seen.insert(format!("vm {}", v.vm_id)));
                assert!(seen.insert(format!("moref {}", v.mo_ref)));
            }
        }
        let filers: Vec<i64> = inv
            .services
            .iter()
            .flat_map(|s| {
                s.filers
                    .iter()
                    .chain(s.datacenters.iter().flat_map(|d| d.filers.iter()))
            })
            .map(|f| f.filer_id)
            .collect();
        let unique: HashSet<_> = filers.iter().collect();
        assert_eq!(unique.len(), filers.len());
        assert_eq!(inv.vm_count(), 3 * 3 * 300);
    }

    #[test]
    fn hostile_names_reach_the_inventory_and_the_tags() {
        let w = World::new(SimConfig {
            hostile_names: true,
            ..world().config().clone()
        });
        let inv = w.inventory(Utc::now());
        let dc = &inv.services[0].datacenters[0];
        let names: Vec<&str> = dc.vms.iter().filter_map(|v| v.name.as_deref()).collect();
        for needle in ["/../", "=", "%", "\n", "\"", "\\", "é", "日本"] {
            assert!(
                names.iter().any(|n| n.contains(needle)),
                "{needle:?} in {names:?}"
            );
        }
        assert!(names.iter().any(|n| n.chars().count() > 300));
        let cluster = dc.vms[0].cluster_name.as_deref().unwrap_or_default();
        assert!(cluster.starts_with("Cluster1") && cluster.contains("/../"));
        assert_eq!(dc.hosts[0].cluster_name.as_deref(), Some(cluster));
        assert!(dc.vms[0].folder_name.as_deref().unwrap_or_default().len() > 26);
        assert!(dc.hosts[0].profile.as_deref().unwrap_or_default().len() > 3);

        let moref = dc.vms[0].mo_ref.clone();
        let datastore = dc.filers[0].name.clone();
        assert!(moref.contains('\n') && datastore.contains("日本"));
        let vm_tags: Vec<String> = w
            .series("vscope.vm.cpu.usage.perc")
            .into_iter()
            .map(|s| s.tags["vm"].clone())
            .collect();
        assert!(vm_tags.contains(&moref), "{vm_tags:?}");
        let filer_series = w.series("vscope.filer.datastore.diskspace.used");
        assert!(filer_series
            .iter()
            .any(|s| s.tags["datastore"] == datastore));
        assert!(filer_series.iter().all(|s| s.tags["env"] == HOSTILE_ENV));

        // Everything else is as without hostile names.
        let plain = world().inventory(Utc::now());
        let ids = |i: &Inventory| -> Vec<i64> {
            i.datacenters()
                .flat_map(|(_, d)| d.vms.iter().map(|v| v.vm_id))
                .collect()
        };
        assert_eq!(ids(&inv), ids(&plain));
        assert_eq!(
            World::new(w.config().clone()).inventory(inv.snapshot_ts),
            inv,
            "deterministic"
        );
    }

    #[test]
    fn points_sit_on_the_grid_and_include_both_ends() {
        let w = world();
        let series = &w.series("vscope.host.net.rx")[0];
        let points: Vec<_> = w.points(series, 120_000, 600_000).collect();
        assert!(points.iter().all(|(t, _)| t % 60_000 == 0));
        assert!(points.windows(2).all(|p| p[0].0 < p[1].0));
        let first = points.first().map(|p| p.0);
        let last = points.last().map(|p| p.0);
        // Unless a rare gap falls exactly there, both inclusive ends are present.
        assert!(first == Some(120_000) || first == Some(180_000));
        assert!(last == Some(600_000) || last == Some(540_000));
        let unaligned: Vec<_> = w.points(series, 120_001, 179_999).collect();
        assert!(unaligned.is_empty());
    }
}
