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
use serde_json::Value;

use crate::actions::{ActionCase, run_action_file};
use crate::lua::{LuaLimits, compile, run_script};
use crate::{Health, HealthError, HealthStatus};

/// A field of a test file's mapping, matched as Argo CD's loader matches it
/// (YAML turned into JSON and decoded by Go, whose field names match
/// case-insensitively, an exact match first): `inputpath` is `inputPath`.
pub(crate) fn field<'a>(map: &'a Value, name: &str) -> Option<&'a Value> {
    let map = map.as_object()?;
    map.get(name).or_else(|| {
        map.iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    })
}

/// A string field; absent or null is empty, as Go's zero value.
pub(crate) fn text_field(map: &Value, name: &str) -> Result<String, String> {
    match field(map, name) {
        None | Some(Value::Null) => Ok(String::new()),
        Some(Value::String(text)) => Ok(text.clone()),
        Some(other) => Err(format!("{name}: expected a string, found {other}")),
    }
}

/// The cases of a test file: each input path and the health it expects (a
/// case without `message` expects none, as in Argo CD).
fn cases_of(file: &Value) -> Result<Vec<(String, Health)>, String> {
    let tests = match field(file, "tests") {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(tests)) => tests,
        Some(_) => return Err("tests: expected a list".into()),
    };
    tests
        .iter()
        .enumerate()
        .map(|(i, test)| {
            let at = |e: String| format!("tests[{i}]: {e}");
            let expected =
                field(test, "healthStatus").ok_or_else(|| at("no healthStatus".into()))?;
            let status = text_field(expected, "status").map_err(at)?;
            let status = HealthStatus::parse(&status)
                .ok_or_else(|| at(format!("unknown health status {status:?}")))?;
            let message = text_field(expected, "message").map_err(at)?;
            let input = text_field(test, "inputPath").map_err(at)?;
            Ok((input, Health::new(status, message)))
        })
        .collect()
}

/// One case and its outcome.
#[derive(Debug, Clone)]
pub struct TestCase {
    /// The health_test.yaml it came from.
    pub file: PathBuf,
    /// The input object's path, as the file gives it.
    pub input: String,
    /// The health the file expects; `None` when the file itself could not
    /// be read (then the case stands for the whole file, and fails).
    pub expected: Option<Health>,
    /// What the script gave (or why it could not run).
    pub actual: Result<Health, String>,
}

impl TestCase {
    /// Whether the script gave the expected status and message.
    pub fn passed(&self) -> bool {
        self.expected.is_some() && self.actual.as_ref().ok() == self.expected.as_ref()
    }
}

/// The outcome of every case found.
#[derive(Debug, Default)]
pub struct TestReport {
    /// Every health case, passed or not, in file order.
    pub cases: Vec<TestCase>,
    /// Every resource action case (`actions/action_test.yaml`), in file
    /// order.
    pub actions: Vec<ActionCase>,
}

impl TestReport {
    /// Cases that passed, health and action ones.
    pub fn passed(&self) -> usize {
        self.cases.iter().filter(|c| c.passed()).count()
            + self.actions.iter().filter(|c| c.failure.is_none()).count()
    }

    /// Action cases that failed.
    pub fn action_failures(&self) -> impl Iterator<Item = &ActionCase> {
        self.actions.iter().filter(|c| c.failure.is_some())
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

/// Every `health_test.yaml` and `action_test.yaml` under `dir`, sorted.
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
        } else if meta.is_file()
            && path
                .file_name()
                .is_some_and(|n| n == "health_test.yaml" || n == "action_test.yaml")
        {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads one YAML or JSON document.
pub(crate) fn read_yaml(path: &Path) -> Result<Value, HealthError> {
    let bytes = std::fs::read(path).map_err(|e| read_error(path, e))?;
    first_document(&bytes, &path.display().to_string()).map_err(|e| read_error(path, e))
}

/// The first YAML (or JSON) document of `bytes`, read as Kubernetes reads
/// manifests; `name` says where they came from in errors.
pub(crate) fn first_document(bytes: &[u8], name: &str) -> Result<Value, String> {
    let documents = parse_values(bytes, name, Syntax::Yaml, &LoadOptions::default())
        .map_err(|e| e.to_string())?;
    documents
        .into_iter()
        .next()
        .map(|(value, _)| value)
        .ok_or_else(|| "no document".to_string())
}

/// An input path inside the test's directory (symlinks and `..` that leave
/// it are refused).
pub(crate) fn confined(base: &Path, relative: &str) -> Result<PathBuf, String> {
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
/// sibling `health.lua`, and every case of every `actions/action_test.yaml`
/// against the actions beside it. A test file or script that cannot be read or
/// compiled fails its cases (or, unreadable, counts as one failing case);
/// it never stops the run.
pub fn run_health_tests(dir: &Path, limits: LuaLimits) -> Result<TestReport, HealthError> {
    let mut files = Vec::new();
    find_test_files(dir, &mut files)?;
    let mut report = TestReport::default();
    for file in files {
        if file.file_name().is_some_and(|n| n == "action_test.yaml") {
            report.actions.extend(run_action_file(&file, limits));
        } else {
            report.cases.extend(run_test_file(&file, limits));
        }
    }
    Ok(report)
}

/// The cases of one test file, run against the script beside it.
fn run_test_file(file: &Path, limits: LuaLimits) -> Vec<TestCase> {
    let cases = read_yaml(file)
        .map_err(|e| e.to_string())
        .and_then(|value| cases_of(&value).map_err(|e| format!("{}: {e}", file.display())));
    let cases = match cases {
        Ok(cases) => cases,
        Err(message) => {
            return vec![TestCase {
                file: file.to_path_buf(),
                input: String::new(),
                expected: None,
                actual: Err(message),
            }];
        }
    };
    let base = file.parent().unwrap_or(Path::new("."));
    let script_path = base.join("health.lua");
    let script = std::fs::read_to_string(&script_path)
        .map_err(|e| read_error(&script_path, e).to_string())
        .and_then(|source| {
            compile(&script_path, &source)
                .map(|()| source)
                .map_err(|e| e.to_string())
        });
    let name = script_path.display().to_string();
    cases
        .into_iter()
        .map(|(input, expected)| {
            let actual = script.as_ref().map_err(String::clone).and_then(|source| {
                confined(base, &input)
                    .and_then(|path| read_yaml(&path).map_err(|e| e.to_string()))
                    .and_then(|object| run_script(source, &name, &object, limits))
                    .and_then(|health| {
                        health.ok_or_else(|| format!("{name}: returned nothing (no health)"))
                    })
            });
            TestCase {
                file: file.to_path_buf(),
                input,
                expected: Some(expected),
                actual,
            }
        })
        .collect()
}
