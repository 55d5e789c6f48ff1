#![allow(clippy::expect_used, clippy::unwrap_used)] // a test: panics are its failure reports
//! Fixture cases: each directory under `tests/fixtures/` holds `input.yaml`
//! (one or more ResourceGraphDefinitions, instances and other objects) and
//! either `expected.yaml` (the set after offline expansion) plus
//! `expected.txt` (what was left unresolved or excluded), or `error.txt`
//! (lines the error message must contain). `GITPLANE_BLESS=1` rewrites the
//! expected files from the current output, for review.

use std::path::{Path, PathBuf};

use gitplane_graph::expand_offline;
use gitplane_object::{LoadOptions, Syntax, load_objects, yaml::to_yaml_stream};

fn cases() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("input.yaml").exists())
        .collect();
    dirs.sort();
    dirs
}

fn run(dir: &Path) -> Result<(String, String), String> {
    let bytes = std::fs::read(dir.join("input.yaml")).unwrap();
    let objects = load_objects(&bytes, "input.yaml", Syntax::Yaml, &LoadOptions::default())
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let expansion = expand_offline(objects, &[], &gitplane_graph::cel_env(), "default")
        .map_err(|e| e.to_string())?;
    let values: Vec<_> = expansion.objects.iter().map(|o| o.to_value()).collect();
    let mut notes = String::new();
    for (instance, id, u) in &expansion.unresolved {
        notes.push_str(&format!("unresolved {instance} {id}: {u}\n"));
    }
    for (instance, id, reason) in &expansion.excluded {
        notes.push_str(&format!("excluded {instance} {id}: {reason}\n"));
    }
    Ok((to_yaml_stream(&values), notes))
}

#[test]
fn fixture_cases() {
    let bless = std::env::var_os("GITPLANE_BLESS").is_some();
    let cases = cases();
    assert!(cases.len() >= 10, "fixtures missing");
    let mut failures = Vec::new();
    for dir in cases {
        let name = dir.file_name().unwrap().to_string_lossy().to_string();
        let result = run(&dir);
        let error_file = dir.join("error.txt");
        if error_file.exists() {
            let expected = std::fs::read_to_string(&error_file).unwrap();
            match result {
                Ok(_) => failures.push(format!("{name}: expected an error, got none")),
                Err(message) => {
                    for line in expected.lines().filter(|l| !l.trim().is_empty()) {
                        if !message.contains(line.trim()) {
                            failures.push(format!(
                                "{name}: error {message:?} does not contain {line:?}"
                            ));
                        }
                    }
                }
            }
            continue;
        }
        match result {
            Err(message) => failures.push(format!("{name}: unexpected error: {message}")),
            Ok((yaml, notes)) => {
                if bless {
                    std::fs::write(dir.join("expected.yaml"), &yaml).unwrap();
                    std::fs::write(dir.join("expected.txt"), &notes).unwrap();
                    continue;
                }
                let expected_yaml =
                    std::fs::read_to_string(dir.join("expected.yaml")).unwrap_or_default();
                let expected_notes =
                    std::fs::read_to_string(dir.join("expected.txt")).unwrap_or_default();
                if yaml != expected_yaml {
                    failures.push(format!("{name}: output differs:\n{yaml}"));
                }
                if notes != expected_notes {
                    failures.push(format!("{name}: notes differ:\n{notes}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
