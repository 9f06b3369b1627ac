//! An APIv6 that refuses batch reads makes the inventory one request per object at the client's
//! default pace (10 a second): thousands of requests queue for minutes. Each must still carry a
//! timestamp within the API's window when it arrives, i.e. be signed as it leaves, not as it
//! joins the queue.
//!
//! The simulator runs on virtual time shared with the run's APIv6 client
//! (`[source.simulator] virtual_time`): the client's real pacing decides when each request
//! leaves (10 a second after a burst of 20), but a wait for a turn moves the shared clock instead
//! of sleeping. The server sees the timestamps a real 200-second run would give it, and the test
//! takes seconds. Scaling the rate and the window down together would have tested another
//! configuration than the one that failed; sleeping through the real 200 s would have made the
//! suite minutes longer.

use crate::common::*;

/// 2 datacenters of 1,000 VMs, 4 hosts and 3 datastores, plus 3 shared datastores: 2,016 objects
/// read one by one. A 30-second window on timestamps; batch reads refused.
const SIMULATOR: &str =
    "seed = 11\nservices = 1\ndatacenters = 2\nhosts = 4\nvms = 1000\nfilers = 3\n\
                         timestamp_tolerance_secs = 30\nbatch_reads = false\nvirtual_time = true";

fn job() -> String {
    format!(
        r#"name = "paced"

[source]
endpoint = "simulator"

[source.simulator]
{SIMULATOR}

[window]
start = "2026-11-01T00:00:00Z"
end = "2026-11-01T00:10:00Z"
page = "10m"

[[export]]
table = "vm_metrics"
metrics = ["vscope.vm.cpu.usage.perc"]

[output]
path = "out"
"#
    )
}

#[test]
fn an_estate_read_one_object_at_a_time_at_the_default_pace_is_read_in_full() {
    let ws = Workspace::new();
    let job = ws.write("job.toml", &job());
    // -v: the client says when it reads the API clock again after "Query out of time".
    let out = ws.run(
        &["run", job.to_str().unwrap(), "--progress", "never", "-v"],
        &[],
    );
    let (stdout, stderr) = (stdout(&out), stderr(&out));
    assert_eq!(
        out.status.code(),
        Some(0),
        "exit 0\nstdout: {stdout}\nstderr: {stderr}"
    );
    assert!(
        stderr.contains("batch reads are not answered"),
        "the objects were read one by one: {stderr}"
    );
    assert!(
        !stderr.contains("out of its window") && !stderr.contains("Query out of time"),
        "no request arrived stale, not even one tried again: {stderr}"
    );

    let mut vm_ids: Vec<i64> = parquet_files(&ws.out().join("vm_inventory"))
        .iter()
        .flat_map(|f| read_parquet(f))
        .flat_map(|b| i64s(&b, "vm_id"))
        .map(|v| v.expect("vm_id is never null"))
        .collect();
    vm_ids.sort_unstable();
    vm_ids.dedup();
    assert_eq!(vm_ids.len(), 2_000, "every VM is in the inventory");
    let hosts: usize = parquet_files(&ws.out().join("host_inventory"))
        .iter()
        .flat_map(|f| read_parquet(f))
        .map(|b| b.num_rows())
        .sum();
    assert_eq!(hosts, 8);
}
