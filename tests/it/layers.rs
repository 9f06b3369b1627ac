//! The layers of `src/lib.rs` hold: each top-level module imports (`crate::…`) only from the
//! layers below its own. The order is read from the `text` block under "Layers" in `lib.rs`, so
//! the map a newcomer reads is the one this test enforces. Test code (`tests.rs`, `#[cfg(test)]`
//! modules, the APIv6 fake) may reach up, as the tests of a stage drive it with higher ones.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The layers, bottom first, from the line of `lib.rs` that lists them with `←`.
fn layers() -> Vec<Vec<String>> {
    let lib = std::fs::read_to_string(src().join("lib.rs")).unwrap();
    let line = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//!"))
        .find(|l| l.contains('←'))
        .expect("lib.rs states its layers on a `//!` line with `←`");
    line.split('←')
        .map(|layer| layer.split(',').map(|m| m.trim().to_string()).collect())
        .collect()
}

/// Every `.rs` file of a top-level module (`src/x.rs` and `src/x/…`), without test-only files.
fn module_files() -> BTreeMap<String, Vec<PathBuf>> {
    let mut modules: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for entry in std::fs::read_dir(src()).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        if name == "lib" || name == "main" {
            continue;
        }
        let files = modules.entry(name).or_default();
        if path.is_dir() {
            let mut stack = vec![path];
            while let Some(dir) = stack.pop() {
                for entry in std::fs::read_dir(dir).unwrap() {
                    let p = entry.unwrap().path();
                    if p.is_dir() {
                        stack.push(p);
                    } else if p.extension().is_some_and(|e| e == "rs") {
                        files.push(p);
                    }
                }
            }
        } else {
            files.push(path);
        }
    }
    for files in modules.values_mut() {
        files.retain(|f| {
            let name = f.file_name().unwrap().to_string_lossy();
            !matches!(name.as_ref(), "tests.rs" | "proptests.rs" | "fake.rs")
        });
        files.sort();
    }
    modules
}

/// The top-level modules `text` imports with `crate::x` or `crate::{x, …}`, outside comments and
/// the `#[cfg(test)]` module at the end of the file.
fn imports(text: &str) -> Vec<String> {
    let code = &text[..test_module_start(text).unwrap_or(text.len())];
    let code: String = code
        .lines()
        .map(|l| match l.find("//") {
            Some(at) => &l[..at],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mut found = Vec::new();
    let mut rest = code.as_str();
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let end = group.find('}').unwrap_or(group.len());
            for item in group[..end].split(',') {
                let name: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                found.push(name);
            }
        } else {
            found.push(
                rest.chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect(),
            );
        }
    }
    found
}

/// Where the first inline `#[cfg(test)] mod … {` starts (a `mod tests;` declaration is no test code).
fn test_module_start(text: &str) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = text[from..].find("#[cfg(test)]") {
        let at = from + at;
        let next = text[at + "#[cfg(test)]".len()..].trim_start();
        let line = next.lines().next().unwrap_or("");
        let line = line
            .trim_start_matches("pub(crate) ")
            .trim_start_matches("pub ");
        if line.starts_with("mod ") && line.trim_end().ends_with('{') {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[test]
fn every_import_goes_down_the_layers() {
    let layers = layers();
    let rank: BTreeMap<&str, usize> = layers
        .iter()
        .enumerate()
        .flat_map(|(i, layer)| layer.iter().map(move |m| (m.as_str(), i)))
        .collect();
    let modules = module_files();
    let unplaced: Vec<&String> = modules
        .keys()
        .filter(|m| !rank.contains_key(m.as_str()))
        .collect();
    assert!(
        unplaced.is_empty(),
        "modules missing from the layers of lib.rs: {unplaced:?}"
    );

    let mut upward = Vec::new();
    for (module, files) in &modules {
        let own = rank[module.as_str()];
        for file in files {
            let text = std::fs::read_to_string(file).unwrap();
            for target in imports(&text) {
                if target == *module {
                    continue;
                }
                if let Some(&theirs) = rank.get(target.as_str()) {
                    if theirs >= own {
                        upward.push(format!(
                            "{} imports crate::{target} (layer {theirs}) from {module} (layer {own})",
                            file.strip_prefix(src()).unwrap().display()
                        ));
                    }
                }
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports that do not go down the layers of lib.rs:\n{}",
        upward.join("\n")
    );
}

#[test]
fn the_import_reader_sees_what_it_must() {
    let text = "#[cfg(test)]\nmod tests;\nuse crate::job::Job;\nuse crate::{load, plan::Plan};\n\
                // crate::run\nfn f() { crate::sim::serve(); }\n#[cfg(test)]\nmod tests {\n\
                use crate::cli;\n}\n";
    assert_eq!(imports(text), ["job", "load", "plan", "sim"]);
}
