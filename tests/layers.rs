//! The layer map of `src/lib.rs` is the real one: no module imports from a layer above
//! its own or from another module of its own layer. Read from the source text, so a new
//! `use crate::...` that breaks the map fails here with the file and line.

use std::path::Path;

/// The layers, top first; modules in one row are one layer.
const LAYERS: &[&[&str]] = &[
    &["applets"],
    &["daemon"],
    &["engine"],
    &["config", "track", "act", "rpc"],
    &["sys"],
    &["types", "error", "log", "json", "sort"],
];

/// The `log_*!` macros are exported at the crate root but belong to `log`.
fn module_of(name: &str) -> &str {
    if name.starts_with("log_") {
        "log"
    } else {
        name
    }
}

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

fn rust_files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Every `crate::NAME` in `line`.
fn crate_refs(line: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find("crate::") {
        let after = &rest[i + "crate::".len()..];
        let end = after
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(after.len());
        out.push(&after[..end]);
        rest = &after[end..];
    }
    out
}

#[test]
fn no_module_imports_from_its_own_layer_or_above() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    files.sort();
    let mut wrong = Vec::new();
    for f in &files {
        let rel = f.strip_prefix(&src).unwrap();
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_str()
            .unwrap();
        let own = first.trim_end_matches(".rs");
        if own == "lib" || own == "main" {
            continue;
        }
        let own_layer = layer(own).unwrap_or_else(|| {
            panic!("src/{own} is in no layer: add it to LAYERS here and to src/lib.rs")
        });
        let text = std::fs::read_to_string(f).unwrap();
        for (n, line) in text.lines().enumerate() {
            for r in crate_refs(line) {
                let to = module_of(r);
                if to == own {
                    continue;
                }
                let Some(to_layer) = layer(to) else {
                    wrong.push(format!(
                        "src/{}:{}: crate::{r} is in no layer",
                        rel.display(),
                        n + 1
                    ));
                    continue;
                };
                if to_layer <= own_layer {
                    wrong.push(format!(
                        "src/{}:{}: {own} imports crate::{r}, {}",
                        rel.display(),
                        n + 1,
                        if to_layer == own_layer {
                            "a module of its own layer"
                        } else {
                            "a layer above it"
                        }
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "layer map broken:\n{}", wrong.join("\n"));
}

#[test]
fn the_map_here_is_the_one_in_lib_rs() {
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    // The rows of the ```text block in the crate doc: the module names before the gap
    // that starts the description; continuation lines start with blanks.
    let rows: Vec<Vec<&str>> = lib
        .lines()
        .filter_map(|l| l.strip_prefix("//! "))
        .skip_while(|l| *l != "```text")
        .skip(1)
        .take_while(|l| *l != "```")
        .filter(|l| !l.starts_with(' '))
        .map(|l| l.split("   ").next().unwrap().split_whitespace().collect())
        .collect();
    let want: Vec<Vec<&str>> = LAYERS.iter().map(|l| l.to_vec()).collect();
    assert_eq!(rows, want, "src/lib.rs's layer map and this test's differ");
}
