//! Secrets never leak: with known secrets (application secret, consumer key, OAuth2 client
//! secret and access token, metrics read token), every command runs at the highest verbosity, in
//! both log formats, succeeding and failing, and none of the secrets may appear in standard
//! output, standard error (panics included), or any byte or Parquet value under the workspace.
//! Also: an ovh.conf holding secrets that others can read is warned about.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Output;

use crate::common::*;
use arrow::util::display::{ArrayFormatter, FormatOptions};
use base64::Engine;

/// The sim serves one small datacenter; the window is two past hours.
const SIM_ARGS: &[&str] = &[
    "--datacenters",
    "1",
    "--hosts",
    "1",
    "--vms",
    "2",
    "--filers",
    "1",
];

fn job(endpoint: &str, token: &str) -> String {
    format!(
        r#"name = "secret"

[source]
endpoint = "{endpoint}"
{token}

[window]
start = "2026-11-01T00:00:00Z"
end = "2026-11-01T02:00:00Z"
page = "1h"

[[export]]
table = "vm_metrics"
metrics = "all"

[[export]]
table = "filer_metrics"
metrics = "all"

[output]
path = "out"
"#
    )
}

/// The forms a secret could leak in: as is, and base64-encoded after any prefix (an
/// `Authorization: Basic` header of `user:secret`), at each of the three alignments.
fn leak_forms(secret: &str) -> Vec<String> {
    let mut forms = vec![secret.to_string()];
    for shift in 0..3 {
        let padded = format!("{}{secret}", "A".repeat(shift));
        let encoded = base64::engine::general_purpose::STANDARD.encode(padded.as_bytes());
        // Skip the characters that mix prefix bits in, and the tail that mixes what follows.
        let skip = if shift == 0 { 0 } else { 4 };
        let end = encoded.len().saturating_sub(4);
        if end > skip + 8 {
            forms.push(encoded[skip..end].to_string());
        }
    }
    forms
}

/// Every value of every column of a Parquet file, as text: compressed pages hide bytes from a
/// plain search, so the values are decoded and searched too.
fn parquet_text(path: &Path) -> String {
    let mut text = String::new();
    for batch in read_parquet(path) {
        for column in batch.columns() {
            // Time columns hold no text (and need a time-zone database to print).
            if matches!(
                column.data_type(),
                arrow::datatypes::DataType::Timestamp(..)
            ) {
                continue;
            }
            let options = FormatOptions::default();
            let formatter = ArrayFormatter::try_new(column.as_ref(), &options).unwrap();
            for i in 0..column.len() {
                text.push_str(&formatter.value(i).to_string());
                text.push('\n');
            }
        }
    }
    text
}

/// Fails if any secret, in any form, is in the command's output or any file of the workspace
/// other than those the test wrote itself (`exempt`).
fn assert_no_leak(
    label: &str,
    out: &Output,
    ws: &Workspace,
    secrets: &[(&str, String)],
    exempt: &[PathBuf],
) {
    let mut places: Vec<(String, Vec<u8>)> = vec![
        ("stdout".into(), out.stdout.clone()),
        ("stderr".into(), out.stderr.clone()),
    ];
    for file in all_files(ws.path()) {
        if exempt.contains(&file) {
            continue;
        }
        let name = file.strip_prefix(ws.path()).unwrap().display().to_string();
        places.push((name.clone(), fs::read(&file).unwrap()));
        if file.extension().is_some_and(|x| x == "parquet") && !name.contains("/.") {
            places.push((format!("{name} (values)"), parquet_text(&file).into_bytes()));
        }
    }
    for (what, secret) in secrets {
        assert!(secret.len() >= 12, "{what} is long enough to search for");
        for form in leak_forms(secret) {
            for (place, bytes) in &places {
                let found = bytes.windows(form.len()).any(|w| w == form.as_bytes());
                assert!(
                    !found,
                    "{label}: the {what} appears in {place} (as {form:?}):\n{}",
                    String::from_utf8_lossy(bytes)
                        .lines()
                        .filter(|l| l.contains(form.as_str()))
                        .collect::<Vec<_>>()
                        .join("\n")
                );
            }
        }
    }
}

/// One scenario: a job, an environment, the exit code expected, and the secrets at stake.
struct Scenario {
    name: &'static str,
    job: String,
    env: Vec<(&'static str, String)>,
    /// `ovh.conf` in the workspace (mode 0600), if any.
    ovh_conf: Option<String>,
    code: i32,
    secrets: Vec<(&'static str, String)>,
}

#[test]
fn no_secret_appears_anywhere_at_the_highest_verbosity() {
    let sim = SimProcess::start(SIM_ARGS);
    let api = sim.apiv6_url();
    let user = format!("metrics_user = \"{}\"", sim.metrics_user);
    let direct = format!(
        "token_env = \"VSCOPE_METRICS_TOKEN\"\nopentsdb_url = \"{}\"",
        sim.opentsdb_url()
    );
    let signed = |secret: &str, ck: &str| {
        vec![
            ("OVH_APPLICATION_KEY", sim.application_key.clone()),
            ("OVH_APPLICATION_SECRET", secret.to_string()),
            ("OVH_CONSUMER_KEY", ck.to_string()),
        ]
    };
    let right = signed(&sim.application_secret, &sim.consumer_key);
    let sim_secrets = vec![
        ("application secret", sim.application_secret.clone()),
        ("consumer key", sim.consumer_key.clone()),
        ("metrics read token", sim.token.clone()),
    ];
    let wrong_secret = "wrong-secret-5e1d0c2b9a87f6e4".to_string();
    let wrong_ck = "wrong-consumer-key-7c3e9b1a02d4".to_string();
    let wrong_token = "wrong-token-4b8e2f61d0c9a735".to_string();
    let client_secret = "oauth2-client-secret-92f4e1c8b7a6".to_string();
    let access_token = "oauth2-access-token-e4d3c2b1a0f9".to_string();
    // Stand-ins for the OAuth2 token URL: one refuses the client, one hands out a token (which
    // the simulator, speaking only signed requests, then refuses).
    let refusing = canned_server(
        "401 Unauthorized",
        "application/json",
        r#"{"error":"invalid_client","error_description":"Invalid client credentials"}"#,
    );
    let granting = canned_server(
        "200 OK",
        "application/json",
        &format!(
            r#"{{"access_token":"{access_token}","token_type":"Bearer","expires_in":3600,"scope":"all"}}"#
        ),
    );
    let oauth2 = |token_url: &str| {
        vec![
            ("OVH_CLIENT_ID", "vscope-export-test-client".to_string()),
            ("OVH_CLIENT_SECRET", client_secret.clone()),
            (
                "OVH_OAUTH2_TOKEN_URL",
                format!("http://{token_url}/auth/oauth2/token"),
            ),
        ]
    };

    let scenarios = vec![
        Scenario {
            name: "signed, token from metricsToken",
            job: job(&api, &user),
            env: right.clone(),
            ovh_conf: None,
            code: 0,
            secrets: sim_secrets.clone(),
        },
        Scenario {
            name: "ovh.conf, token given directly",
            job: job(&api, &direct),
            env: vec![("VSCOPE_METRICS_TOKEN", sim.token.clone())],
            ovh_conf: Some(format!(
                "[default]\nendpoint={api}\n\n[{api}]\napplication_key={}\napplication_secret={}\nconsumer_key={}\n",
                sim.application_key, sim.application_secret, sim.consumer_key
            )),
            code: 0,
            secrets: sim_secrets.clone(),
        },
        Scenario {
            name: "wrong metrics token",
            job: job(&api, &direct),
            env: [right.clone(), vec![("VSCOPE_METRICS_TOKEN", wrong_token.clone())]].concat(),
            ovh_conf: None,
            code: 2,
            secrets: [sim_secrets.clone(), vec![("wrong token", wrong_token.clone())]].concat(),
        },
        Scenario {
            name: "wrong application secret",
            job: job(&api, &user),
            env: signed(&wrong_secret, &sim.consumer_key),
            ovh_conf: None,
            code: 2,
            secrets: vec![
                ("wrong application secret", wrong_secret.clone()),
                ("consumer key", sim.consumer_key.clone()),
            ],
        },
        Scenario {
            name: "wrong consumer key",
            job: job(&api, &user),
            env: signed(&sim.application_secret, &wrong_ck),
            ovh_conf: None,
            code: 2,
            secrets: vec![
                ("application secret", sim.application_secret.clone()),
                ("wrong consumer key", wrong_ck.clone()),
            ],
        },
        Scenario {
            name: "OAuth2 client refused",
            job: job(&api, &user),
            env: oauth2(&refusing),
            ovh_conf: None,
            code: 2,
            secrets: vec![("OAuth2 client secret", client_secret.clone())],
        },
        Scenario {
            name: "OAuth2 token refused by APIv6",
            job: job(&api, &user),
            env: oauth2(&granting),
            ovh_conf: None,
            code: 2,
            secrets: vec![
                ("OAuth2 client secret", client_secret.clone()),
                ("OAuth2 access token", access_token.clone()),
            ],
        },
    ];

    for scenario in &scenarios {
        for format in ["text", "json"] {
            let label = format!("{} (-vv, {format} logs)", scenario.name);
            let ws = Workspace::new();
            let job_path = ws.write("secret.toml", &scenario.job);
            let mut exempt = vec![job_path.clone()];
            if let Some(conf) = &scenario.ovh_conf {
                let path = ws.write("ovh.conf", conf);
                fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
                exempt.push(path);
            }
            let mut env: Vec<(&str, &str)> =
                scenario.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            env.push(("RUST_BACKTRACE", "1"));
            let out = ws.run(
                &[
                    "run",
                    "secret.toml",
                    "-vv",
                    "--log-format",
                    format,
                    "--progress",
                    "never",
                ],
                &env,
            );
            assert_eq!(
                out.status.code(),
                Some(scenario.code),
                "{label}: {}",
                stderr(&out)
            );
            // The highest verbosity really logs: every request at -vv.
            assert!(
                scenario.code != 0 || stderr(&out).lines().count() >= 3,
                "{label}: -vv logs the requests: {}",
                stderr(&out)
            );
            if format == "json" {
                for line in stderr(&out).lines().filter(|l| l.starts_with('{')) {
                    serde_json::from_str::<serde_json::Value>(line).unwrap_or_else(|e| {
                        panic!("{label}: a JSON log line that is not JSON ({e}): {line}")
                    });
                }
            }
            assert_no_leak(&label, &out, &ws, &scenario.secrets, &exempt);
        }
    }
}

#[test]
fn help_and_offline_commands_never_show_secrets_from_the_environment() {
    let secrets = vec![
        (
            "application secret",
            "env-app-secret-0f1e2d3c4b5a".to_string(),
        ),
        ("consumer key", "env-consumer-key-a9b8c7d6e5f4".to_string()),
        (
            "OAuth2 client secret",
            "env-client-secret-1a2b3c4d5e6f".to_string(),
        ),
        (
            "metrics read token",
            "env-metrics-token-6f5e4d3c2b1a".to_string(),
        ),
    ];
    let env = [
        ("OVH_APPLICATION_KEY", "env-app-key"),
        ("OVH_APPLICATION_SECRET", secrets[0].1.as_str()),
        ("OVH_CONSUMER_KEY", secrets[1].1.as_str()),
        ("OVH_CLIENT_ID", "env-client-id"),
        ("OVH_CLIENT_SECRET", secrets[2].1.as_str()),
        ("VSCOPE_METRICS_TOKEN", secrets[3].1.as_str()),
        ("RUST_BACKTRACE", "1"),
    ];
    let ws = Workspace::new();
    let job_path = ws.write(
        "secret.toml",
        &job(
            "ovh-eu",
            "token_env = \"VSCOPE_METRICS_TOKEN\"\nopentsdb_url = \"https://opentsdb.gra1-ovh.metrics.ovh.net\"",
        ),
    );
    let commands: &[&[&str]] = &[
        &["--help"],
        &["help"],
        &["run", "--help"],
        &["plan", "--help"],
        &["validate", "--help"],
        &["sim", "--help"],
        &["schema", "--help"],
        &["-vv", "validate", "secret.toml"],
        &["-vv", "--log-format", "json", "plan", "secret.toml"],
        &["run", "--bogus-flag", "secret.toml"],
    ];
    for args in commands {
        let out = ws.run(args, &env);
        assert!(
            !out.stdout.is_empty() || !out.stderr.is_empty(),
            "{args:?} prints something"
        );
        assert_no_leak(
            &format!("{args:?}"),
            &out,
            &ws,
            &secrets,
            std::slice::from_ref(&job_path),
        );
    }
}

#[test]
fn an_ovh_conf_with_secrets_readable_by_others_is_warned_about() {
    let sim = SimProcess::start(SIM_ARGS);
    let api = sim.apiv6_url();
    let conf = format!(
        "[default]\nendpoint={api}\n\n[{api}]\napplication_key={}\napplication_secret={}\nconsumer_key={}\n",
        sim.application_key, sim.application_secret, sim.consumer_key
    );
    for (mode, warned) in [(0o644, true), (0o640, true), (0o600, false)] {
        let ws = Workspace::new();
        ws.write(
            "secret.toml",
            &job(&api, &format!("metrics_user = \"{}\"", sim.metrics_user)),
        );
        let path = ws.write("ovh.conf", &conf);
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        let out = ws.run(&["run", "secret.toml", "--progress", "never"], &[]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "mode {mode:o}: {}",
            stderr(&out)
        );
        let err = stderr(&out);
        let warning = err
            .lines()
            .find(|l| l.contains("ovh.conf") && l.contains("readable"));
        if warned {
            let line = warning
                .unwrap_or_else(|| panic!("mode {mode:o}: no warning naming ovh.conf: {err}"));
            assert!(line.contains("WARN") || line.contains("warning"), "{line}");
        } else {
            assert!(warning.is_none(), "mode {mode:o}: needless warning: {err}");
        }
    }
}
