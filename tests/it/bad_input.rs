//! One table of bad inputs: each gets one clear error naming what is wrong, the documented exit
//! code, and leaves no file behind (the workspace, which is the current directory, HOME and the
//! output's parent, is byte for byte what it was before the run).
//!
//! Servers are all on 127.0.0.1 and started here: a `vscope-export sim` child process (APIv6 and
//! OpenTSDB with test-only credentials), a server that answers every request with an HTML page,
//! and a proxy that only counts connections, to prove a run made none.

use std::net::TcpListener;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::*;

const SIZES: &str = "seed = 5\nservices = 1\ndatacenters = 1\nhosts = 1\nvms = 2\nfilers = 1";

/// A valid simulator job over two past hours.
fn good_job() -> String {
    sim_job(
        "bad",
        SIZES,
        "2026-11-01T00:00:00Z",
        "2026-11-01T02:00:00Z",
        "1h",
    )
}

/// A job against a real (or stand-in) APIv6 endpoint, with `token` lines for the metrics token.
fn api_job(endpoint: &str, token: &str) -> String {
    format!(
        r#"name = "bad"

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

[output]
path = "out"
"#
    )
}

/// Answers every request with `200 OK` and an HTML page, like a login portal or a wrong URL.
fn html_server() -> String {
    canned_server(
        "200 OK",
        "text/html",
        "<!DOCTYPE html><html><body><h1>Welcome</h1></body></html>",
    )
}

/// A "proxy" that counts the connections made to it and closes them.
fn counting_proxy() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    (format!("http://{addr}"), count)
}

fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Writes what a case needs in the workspace and returns the command line.
type Setup = Box<dyn Fn(&Workspace) -> Vec<String>>;

struct Case {
    name: &'static str,
    /// Writes what the case needs in the workspace and returns the command line.
    setup: Setup,
    env: Vec<(&'static str, String)>,
    /// The exit codes a user may get (one, except where noted).
    codes: &'static [i32],
    /// Each must appear in what the command prints (standard error; for exit code 1, the
    /// summary on standard output too), case aside; `a|b` means either.
    stderr: Vec<String>,
    /// Most seconds the command may take: errors found before work begins come at once.
    within: Duration,
}

fn case(
    name: &'static str,
    setup: impl Fn(&Workspace) -> Vec<String> + 'static,
    codes: &'static [i32],
    stderr: &[&str],
) -> Case {
    Case {
        name,
        setup: Box::new(setup),
        env: Vec::new(),
        codes,
        stderr: stderr.iter().map(|s| s.to_string()).collect(),
        within: Duration::from_secs(20),
    }
}

/// Writes `bad.toml` with `text` and runs `run` on it.
fn run_job(text: String) -> impl Fn(&Workspace) -> Vec<String> {
    move |ws: &Workspace| {
        ws.write("bad.toml", &text);
        vec![
            "run".into(),
            "bad.toml".into(),
            "--progress".into(),
            "never".into(),
        ]
    }
}

/// Writes `bad.toml` with `text` and runs `run` on it with extra arguments.
fn run_job_with(
    text: String,
    extra: &'static [&'static str],
) -> impl Fn(&Workspace) -> Vec<String> {
    move |ws: &Workspace| {
        ws.write("bad.toml", &text);
        let mut args: Vec<String> = vec!["run".into(), "bad.toml".into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }
}

fn replace(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} in the job");
    text.replacen(from, to, 1)
}

#[test]
fn every_bad_input_gets_one_clear_error_and_leaves_nothing_behind() {
    let sim = SimProcess::start(&[
        "--vms",
        "2",
        "--hosts",
        "1",
        "--filers",
        "1",
        "--datacenters",
        "1",
    ]);
    let html = html_server();
    let (proxy, proxied) = counting_proxy();
    let good = good_job();
    let sim_env = |secret: &str, ck: &str, ak: &str| {
        vec![
            ("OVH_APPLICATION_KEY", ak.to_string()),
            ("OVH_APPLICATION_SECRET", secret.to_string()),
            ("OVH_CONSUMER_KEY", ck.to_string()),
        ]
    };
    let right = sim_env(
        &sim.application_secret,
        &sim.consumer_key,
        &sim.application_key,
    );
    let user = format!("metrics_user = \"{}\"", sim.metrics_user);
    let direct =
        |url: &str| format!("token_env = \"VSCOPE_METRICS_TOKEN\"\nopentsdb_url = \"{url}\"");

    let mut cases = vec![
        case(
            "malformed TOML",
            run_job("name = \"bad\"\n[source\nendpoint = \"simulator\"\n".into()),
            &[2],
            &["bad.toml:2:8", "unclosed table"],
        ),
        case(
            "unknown key",
            run_job(replace(
                &good,
                "endpoint = \"simulator\"",
                "endpoint = \"simulator\"\ncolour = \"blue\"",
            )),
            &[2],
            &["bad.toml:5:", "colour", "unknown key"],
        ),
        case(
            "wrong type",
            run_job(replace(&good, "page = \"1h\"", "page = 3600")),
            &[2],
            &["bad.toml", "window.page", "string"],
        ),
        case(
            "unknown table",
            run_job(replace(
                &good,
                "table = \"vm_metrics\"",
                "table = \"vm_metric\"",
            )),
            &[2],
            &["bad.toml", "vm_metric", "did you mean vm_metrics"],
        ),
        case(
            "end before start",
            run_job_with(
                good.clone(),
                &[
                    "--start",
                    "2026-11-02T00:00:00Z",
                    "--end",
                    "2026-11-01T00:00:00Z",
                ],
            ),
            &[2],
            &["window", "2026-11-02", "2026-11-01"],
        ),
        case(
            "window in the future",
            run_job(replace(
                &replace(&good, "2026-11-01T00:00:00Z", "2099-01-01T00:00:00Z"),
                "2026-11-01T02:00:00Z",
                "2099-01-01T02:00:00Z",
            )),
            &[2],
            &["window", "in the future", "2099-01-01"],
        ),
        case(
            "page longer than the window",
            run_job(replace(&good, "page = \"1h\"", "page = \"1d\"")),
            &[2],
            &["window.page", "longer than the whole window"],
        ),
        case(
            "output path that is a file",
            move |ws: &Workspace| {
                ws.write("out", "a file, not a folder");
                run_job(good_job())(ws)
            },
            &[2],
            &["out", "is not a folder"],
        ),
        case(
            "output path below a file",
            move |ws: &Workspace| {
                ws.write("out", "a file, not a folder");
                run_job_with(good_job(), &["--output", "out/x"])(ws)
            },
            &[2],
            &["out/x", "output"],
        ),
        case(
            // /proc refuses new folders even to root.
            "output path not writable",
            run_job_with(good.clone(), &["--output", "/proc/vscope-export-test/out"]),
            &[2],
            &["/proc/vscope-export-test/out"],
        ),
        case(
            "unknown metric only warns (plan: no network, no files)",
            move |ws: &Workspace| {
                let text = replace(
                    &good_job(),
                    "metrics = \"all\"",
                    "metrics = [\"vscope.vm.cpu.usage.prc\"]",
                );
                ws.write("bad.toml", &text);
                vec!["plan".into(), "bad.toml".into()]
            },
            &[0],
            &[
                "vscope.vm.cpu.usage.prc",
                "did you mean vscope.vm.cpu.usage.perc",
            ],
        ),
        Case {
            env: vec![
                ("HTTPS_PROXY", proxy.clone()),
                ("HTTP_PROXY", proxy.clone()),
                ("ALL_PROXY", proxy.clone()),
            ],
            within: Duration::from_secs(5),
            ..case(
                "missing credentials for a real endpoint",
                run_job(api_job("ovh-eu", "metrics_user = \"reader\"")),
                &[2],
                &[
                    "OVH_APPLICATION_KEY",
                    "OVH_APPLICATION_SECRET",
                    "OVH_CONSUMER_KEY",
                ],
            )
        },
        Case {
            env: sim_env(
                "0123456789abcdef0123456789abcdef",
                &sim.consumer_key,
                &sim.application_key,
            ),
            ..case(
                "wrong application secret (APIv6 403)",
                run_job(api_job(&sim.apiv6_url(), &user)),
                &[2],
                &["Invalid signature", "400", &sim.addr, "query id"],
            )
        },
        Case {
            env: sim_env(
                &sim.application_secret,
                &sim.consumer_key,
                "0123456789abcdef",
            ),
            ..case(
                "wrong application key (APIv6 403)",
                run_job(api_job(&sim.apiv6_url(), &user)),
                &[2],
                &["Invalid application key", "403", "query id"],
            )
        },
        Case {
            env: sim_env(
                &sim.application_secret,
                "0123456789abcdef0123456789abcdef",
                &sim.application_key,
            ),
            ..case(
                "wrong consumer key (APIv6 403)",
                run_job(api_job(&sim.apiv6_url(), &user)),
                &[2],
                &["This credential does not exist", "query id"],
            )
        },
        Case {
            env: [
                right.clone(),
                vec![("VSCOPE_METRICS_TOKEN", "not-the-token".to_string())],
            ]
            .concat(),
            ..case(
                "wrong metrics token (OpenTSDB 401)",
                run_job(api_job(&sim.apiv6_url(), &direct(&sim.opentsdb_url()))),
                &[2],
                &["401", "not authorized", &sim.addr],
            )
        },
        Case {
            env: right.clone(),
            ..case(
                "missing metrics token variable",
                run_job(api_job(&sim.apiv6_url(), &direct(&sim.opentsdb_url()))),
                &[2],
                &["VSCOPE_METRICS_TOKEN", "token_env"],
            )
        },
        Case {
            env: right.clone(),
            ..case(
                "APIv6 answers an HTML page",
                run_job(api_job(&format!("http://{html}/1.0"), &user)),
                &[2],
                &[&html],
            )
        },
        Case {
            env: [
                right.clone(),
                vec![("VSCOPE_METRICS_TOKEN", sim.token.clone())],
            ]
            .concat(),
            ..case(
                // Every page fails the same way: a misconfiguration (2), or failed pages (1).
                "OpenTSDB answers an HTML page",
                run_job(api_job(
                    &sim.apiv6_url(),
                    &direct(&format!("http://{html}")),
                )),
                &[1, 2],
                &[&html, "JSON|HTML"],
            )
        },
    ];
    if !running_as_root() {
        cases.push(case(
            "output folder not writable",
            move |ws: &Workspace| {
                let dir = ws.path().join("ro");
                std::fs::create_dir(&dir).unwrap();
                std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
                run_job_with(good_job(), &["--output", "ro/out"])(ws)
            },
            &[2],
            &["ro/out"],
        ));
    }

    let mut failures = Vec::new();
    for case in &cases {
        let ws = Workspace::new();
        let args = (case.setup)(&ws);
        let before = tree(ws.path());
        let env: Vec<(&str, &str)> = case.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let started = Instant::now();
        let out = ws.run(&args, &env);
        let took = started.elapsed();
        let err = stderr(&out);
        let mut problems = Vec::new();
        match out.status.code() {
            Some(code) if case.codes.contains(&code) => {}
            code => problems.push(format!("exit code {code:?}, want {:?}", case.codes)),
        }
        // Failed pages (exit 1) are listed in the summary on standard output.
        let said = format!("{err}{}", stdout(&out)).to_lowercase();
        for want in &case.stderr {
            if !want
                .to_lowercase()
                .split('|')
                .any(|alternative| said.contains(alternative))
            {
                problems.push(format!("output lacks {want:?}"));
            }
        }
        if err.contains('\x1b') {
            problems.push("terminal colour codes on a standard error that is no terminal".into());
        }
        let code = out.status.code();
        if code == Some(2) && !err.starts_with("error: ") && !err.contains("\nerror: ") {
            problems.push("no `error: ` line".to_string());
        }
        if err.contains("panicked") {
            problems.push("panicked".to_string());
        }
        if took > case.within {
            problems.push(format!("took {took:?}, more than {:?}", case.within));
        }
        let after = tree(ws.path());
        if after != before {
            let changed: Vec<_> = after
                .keys()
                .chain(before.keys())
                .filter(|k| after.get(*k) != before.get(*k))
                .collect();
            problems.push(format!("files left behind or changed: {changed:?}"));
        }
        if Path::new("/proc/vscope-export-test").exists() {
            problems.push("created /proc/vscope-export-test".to_string());
        }
        if !problems.is_empty() {
            failures.push(format!(
                "{}:\n    {}\n    stderr: {}\n    stdout: {}",
                case.name,
                problems.join("\n    "),
                err.trim_end().replace('\n', "\n            "),
                stdout(&out).trim_end().replace('\n', "\n            ")
            ));
        }
    }
    assert_eq!(
        proxied.load(Ordering::SeqCst),
        0,
        "a run without credentials connected to the network (through the proxy)"
    );
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn validate_warns_about_an_unknown_metric_with_the_closest_catalog_name() {
    let ws = Workspace::new();
    let job = ws.write(
        "typo.toml",
        &good_job().replacen(
            "metrics = \"all\"",
            "metrics = [\"vscope.vm.cpu.usage.prc\", \"vscope.vm.mem.usage.perc\"]",
            1,
        ),
    );
    let out = ws.run(&["validate", job.to_str().unwrap()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let warning = text
        .lines()
        .find(|l| l.starts_with("warning:"))
        .unwrap_or_else(|| panic!("a warning: {text}"));
    assert!(
        warning.contains("typo.toml")
            && warning.contains("vscope.vm.cpu.usage.prc")
            && warning.contains("did you mean vscope.vm.cpu.usage.perc"),
        "{warning}"
    );
    assert_eq!(
        text.lines().filter(|l| l.starts_with("warning:")).count(),
        1,
        "only the unknown metric is warned about: {text}"
    );
}
