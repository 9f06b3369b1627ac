//! Names the build in every Parquet file's `created_by`: the commit it was built from, or
//! `unknown` outside a git checkout. A build without `.git` (the container image's) may name its
//! commit in the `VSCOPE_EXPORT_BUILD` environment variable.

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=VSCOPE_EXPORT_BUILD");
    let given = std::env::var("VSCOPE_EXPORT_BUILD").ok();
    let hash = given
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()))
        .or_else(git_head)
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=VSCOPE_EXPORT_BUILD={hash}");
    // A new commit changes HEAD's target; a checkout of another branch changes HEAD itself.
    for path in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if std::path::Path::new(path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}

fn git_head() -> Option<String> {
    Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit()))
}
