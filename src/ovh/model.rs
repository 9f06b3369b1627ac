//! Typed models of the APIv6 `dedicatedCloud` objects the exporter reads, with the field names and
//! types of OVH's published schema (`reference/ovh-apiv6.md`). The client deserializes into them
//! and the simulator serializes them, so both sides speak the same wire format.
//!
//! Every field that the schema marks nullable is an `Option`; unknown fields are ignored on input,
//! because OVH adds fields without notice.

use serde::{Deserialize, Serialize};

/// `{unit, value}` pairs used by OVH for sizes and capacities.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnitAndValue<T> {
    pub unit: String,
    pub value: T,
}

/// `GET /dedicatedCloud/{serviceName}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Service {
    pub service_name: String,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub location: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub v_scope_url: Option<String>,
    #[serde(default)]
    pub version: Option<serde_json::Value>,
}

/// `GET /dedicatedCloud/{sn}/datacenter/{datacenterId}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Datacenter {
    pub datacenter_id: i64,
    /// e.g. `datacenter869`; the metrics' `datacenter` tag is `{serviceName}_{name}`.
    pub name: String,
    #[serde(default)]
    pub commercial_name: Option<String>,
    #[serde(default)]
    pub commercial_range_name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub is_removable: Option<bool>,
    #[serde(default)]
    pub horizon_view_name: Option<String>,
}

/// `GET …/datacenter/{dcId}/host/{hostId}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Host {
    pub host_id: i64,
    /// The host's IP address, e.g. `172.17.86.51`; equals the metrics' `host` tag.
    pub name: String,
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub profile_code: Option<String>,
    #[serde(default)]
    pub rack: Option<String>,
    /// adding | delivered | error | removing | unknown
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub billing_type: Option<String>,
    #[serde(default)]
    pub cpu: Option<UnitAndValue<f64>>,
    #[serde(default)]
    pub ram: Option<UnitAndValue<i64>>,
    #[serde(default)]
    pub cluster_name: Option<String>,
    /// connected | disconnected | notResponding
    #[serde(default)]
    pub connection_state: Option<String>,
    #[serde(default)]
    pub cpu_max: Option<i64>,
    #[serde(default)]
    pub cpu_max_core: Option<i64>,
    #[serde(default)]
    pub cpu_used: Option<i64>,
    #[serde(default)]
    pub cpu_num: Option<i64>,
    #[serde(default)]
    pub in_maintenance: Option<bool>,
    #[serde(default)]
    pub memory_used: Option<f64>,
    #[serde(default)]
    pub parent_host_id: Option<i64>,
    #[serde(default)]
    pub resource_name: Option<String>,
    #[serde(default)]
    pub uptime: Option<i64>,
    #[serde(default)]
    pub vm_total: Option<i64>,
    #[serde(default)]
    pub vm_vcpu_total: Option<i64>,
}

/// `GET …/datacenter/{dcId}/vm/{vmId}`. Nested lists (filers, networks, cdroms, backup) are kept
/// out of the typed model: the exporter writes scalar fields only.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vm {
    pub vm_id: i64,
    /// vCenter managed object reference, e.g. `vm-1254`; the metrics' `vm` tag.
    pub mo_ref: String,
    /// deleted | poweredOff | poweredOn | suspended
    pub power_state: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub host_name: Option<String>,
    #[serde(default)]
    pub cluster_name: Option<String>,
    #[serde(default)]
    pub folder_name: Option<String>,
    #[serde(default)]
    pub guest_os_family: Option<String>,
    #[serde(default)]
    pub license: Option<String>,
    #[serde(default)]
    pub cpu_max: Option<f64>,
    #[serde(default)]
    pub cpu_used: Option<i64>,
    #[serde(default)]
    pub cpu_num: Option<i64>,
    #[serde(default)]
    pub cpu_ready: Option<f64>,
    #[serde(default)]
    pub cpu_ready_percent: Option<f64>,
    #[serde(default)]
    pub memory_max: Option<i64>,
    #[serde(default)]
    pub memory_used: Option<i64>,
    #[serde(default)]
    pub memory_tps: Option<String>,
    #[serde(default)]
    pub net_rx: Option<f64>,
    #[serde(default)]
    pub net_tx: Option<f64>,
    #[serde(default)]
    pub net_packet_rx: Option<f64>,
    #[serde(default)]
    pub net_packet_tx: Option<f64>,
    #[serde(default)]
    pub read_rate: Option<f64>,
    #[serde(default)]
    pub write_rate: Option<f64>,
    #[serde(default)]
    pub read_latency: Option<f64>,
    #[serde(default)]
    pub write_latency: Option<f64>,
    #[serde(default)]
    pub read_per_second: Option<f64>,
    #[serde(default)]
    pub write_per_second: Option<f64>,
    #[serde(default)]
    pub snapshot_num: Option<i64>,
    #[serde(default)]
    pub vmware_tools: Option<String>,
    #[serde(default)]
    pub vmware_tools_version: Option<String>,
}

/// `GET …/datacenter/{dcId}/filer/{filerId}` and `GET /dedicatedCloud/{sn}/filer/{filerId}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Filer {
    pub filer_id: i64,
    /// e.g. `pcc-000443`; the metrics' `datastore` tag.
    pub name: String,
    #[serde(default)]
    pub full_profile: Option<String>,
    #[serde(default)]
    pub profile: Option<String>,
    #[serde(default)]
    pub master: Option<String>,
    #[serde(default)]
    pub slave: Option<String>,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub is_managed_by_ovh: Option<bool>,
    #[serde(default)]
    pub size: Option<UnitAndValue<i64>>,
    #[serde(default)]
    pub active_node: Option<String>,
    #[serde(default)]
    pub billing_type: Option<String>,
    /// offline | online
    #[serde(default)]
    pub connection_state: Option<String>,
    #[serde(default)]
    pub resource_name: Option<String>,
    #[serde(default)]
    pub space_free: Option<f64>,
    #[serde(default)]
    pub space_provisionned: Option<f64>,
    #[serde(default)]
    pub space_used: Option<f64>,
    #[serde(default)]
    pub vm_total: Option<i64>,
}

/// `GET /dedicatedCloud/{sn}/user/{userId}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub user_id: i64,
    pub login: String,
    pub name: String,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub email: Option<String>,
}

/// `POST /dedicatedCloud/{sn}/user/{userId}/metricsToken`. `Debug` hides the token.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MetricsToken {
    pub token: String,
    pub opentsdb_endpoint: String,
    #[serde(default)]
    pub warp_endpoint: Option<String>,
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsToken")
            .field("token", &"<redacted>")
            .field("opentsdb_endpoint", &self.opentsdb_endpoint)
            .field("warp_endpoint", &self.warp_endpoint)
            .finish()
    }
}

/// One item of a batch read (`X-Ovh-Batch: ,`): `{key, value, error}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BatchItem<T> {
    pub key: String,
    #[serde(default)]
    pub value: Option<T>,
    #[serde(default)]
    pub error: Option<String>,
}
