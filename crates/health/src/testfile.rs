//! Argo CD's `health_test.yaml` files: beside a `health.lua`, a list of inputs
//! and the health the script must give each:
//!
//! ```yaml
//! tests:
//! - healthStatus:
//!     status: Degraded
//!     message: "the backend is gone"
//!   inputPath: testdata/degraded.yaml
//! ```

use std::path::{Path, PathBuf};

use gitplane_object::{LoadOptions, Syntax, parse_values};
use serde::Deserialize;
use serde_json::Value;

use crate::lua::{LuaLimits, compile, run_script};
use crate::{Health, HealthError};

#[derive(Deserialize)]
struct TestFile {
    #[serde(default)]
    tests: Vec<TestEntry>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TestEntry {
    health_status: Health,
    input_path: String,
}

/// One case and its outcome.
#[derive(Debug, Clone)]
pub struct TestCase {
    /// The health_test.yaml it came from.
    pub file: PathBuf,
    /// The input object's path, as the file gives it.
    pub input: String,
    /// The health the file expects.
    pub expected: Health,
    /// What the script gave (or why it could not run).
    pub actual: Result<Health, String>,
}

impl TestCase {
    /// Whether the script gave the expected status and message.
    pub fn passed(&self) -> bool {
        self.actual.as_ref() == Ok(&self.expected)
    }
}

/// The outcome of every case found.
#[derive(Debug, Default)]
pub struct TestReport {
    /// Every case, passed or not, in file order.
    pub cases: Vec<TestCase>,
}

impl TestReport {
    /// Cases that passed.
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.passed()).count()
    }

    /// Cases that failed.
    pub fn failures(&self) -> impl Iterator<Item = &TestCase> {
        self.cases.iter().filter(|c| !c.passed())
    }
}

fn read_error(path: &Path, e: impl std::fmt::Display) -> HealthError {
    HealthError::Read {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Every `health_test.yaml` under `dir`, sorted.
fn find_test_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), HealthError> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(|e| read_error(dir, e))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        let meta = std::fs::symlink_metadata(&path).map_err(|e| read_error(&path, e))?;
        if meta.is_dir() {
            find_test_files(&path, out)?;
        } else if meta.is_file() && path.file_name().is_some_and(|n| n == "health_test.yaml") {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads one YAML or JSON document.
fn read_yaml(path: &Path) -> Result<Value, HealthError> {
    let bytes = std::fs::read(path).map_err(|e| read_error(path, e))?;
    let name = path.display().to_string();
    let mut documents = parse_values(&bytes, &name, Syntax::Yaml, &LoadOptions::default())
        .map_err(|e| read_error(path, e))?;
    if documents.is_empty() {
        return Err(read_error(path, "no document"));
    }
    Ok(documents.swap_remove(0).0)
}

/// An input path inside the test's directory (symlinks and `..` that leave
/// it are refused).
fn confined(base: &Path, relative: &str) -> Result<PathBuf, String> {
    let root = base.canonicalize().map_err(|e| e.to_string())?;
    let path = base
        .join(relative)
        .canonicalize()
        .map_err(|e| format!("{relative}: {e}"))?;
    if path.starts_with(&root) {
        Ok(path)
    } else {
        Err(format!("{relative}: leaves the directory of the test"))
    }
}

/// Runs every case of every `health_test.yaml` under `dir` against its
/// sibling `health.lua`.
pub fn run_health_tests(dir: &Path, limits: LuaLimits) -> Result<TestReport, HealthError> {
    let mut files = Vec::new();
    find_test_files(dir, &mut files)?;
    let mut report = TestReport::default();
    for file in files {
        let base = file.parent().unwrap_or(dir);
        let script_path = base.join("health.lua");
        let source =
            std::fs::read_to_string(&script_path).map_err(|e| read_error(&script_path, e))?;
        compile(&script_path, &source)?;
        let tests: TestFile =
            serde_json::from_value(read_yaml(&file)?).map_err(|e| read_error(&file, e))?;
        for test in tests.tests {
            let actual = confined(base, &test.input_path)
                .and_then(|input| read_yaml(&input).map_err(|e| e.to_string()))
                .and_then(|object| {
                    run_script(&source, &script_path.display().to_string(), &object, limits)
                });
            report.cases.push(TestCase {
                file: file.clone(),
                input: test.input_path,
                expected: test.health_status,
                actual,
            });
        }
    }
    Ok(report)
}
