//! `gitplane policy verify DIR`: OPA Gatekeeper test suites (gator's
//! `Suite`, `test.gatekeeper.sh/v1alpha1`) run against gitplane's
//! Gatekeeper engine, as `gator verify` runs them.
//!
//! Every YAML file under DIR whose kind is `Suite` is a suite (others are
//! ignored, as gator ignores them). Each test compiles its template and
//! reads its constraint; each case reviews one object (a plain object as
//! gator presents it, with no operation, or an AdmissionReview's request)
//! with `data.inventory` from the case's inventory files, and checks every
//! assertion: `violations: yes | no | N`, counting only the violations whose
//! message matches `message` (an unanchored regular expression) when given.
//! Files are read through the render crate's [`Root`]: nothing outside the
//! Git work tree (or the current directory) is read.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use gitplane_object::{Map, Object, Value, json};
use gitplane_policy::gatekeeper::{Constraint, Source, Template, review};
use gitplane_render::fs::EntryKind;
use gitplane_render::{RelPath, Root};
use regex::Regex;

use crate::output::ReportFormat;
use crate::policy_test::{find_files, parse_documents, read_objects};
use crate::render_cmd::root_and_path;

const SUITE_API_VERSION: &str = "test.gatekeeper.sh/v1alpha1";

/// One case of one test, judged.
#[derive(Debug)]
struct Row {
    suite: String,
    test: String,
    case: String,
    /// `None`: skipped (`skip: true`).
    ok: Option<bool>,
    violations: Vec<String>,
    detail: String,
}

/// Runs every suite under `dir` whose test and case names match `filter`,
/// with templates' CEL or Rego source first; exit 1 if any case fails.
pub fn run(
    dir: &Path,
    filter: Option<&str>,
    source: Source,
    format: ReportFormat,
) -> Result<ExitCode> {
    let filter = filter
        .map(Regex::new)
        .transpose()
        .context("--run is not a valid regular expression")?;
    let (root, start) = root_and_path(dir, None)?;
    let files = if root.kind(&start)? == Some(EntryKind::File) {
        vec![start]
    } else {
        find_files(&root, &start, &|name| {
            name.ends_with(".yaml") || name.ends_with(".yml")
        })?
    };
    let mut suites = 0;
    let mut rows = Vec::new();
    for file in &files {
        let Some(suite) = read_suite(&root, file)? else {
            continue;
        };
        suites += 1;
        let found = run_suite(&root, file, &suite, filter.as_ref(), source)
            .with_context(|| file.display().to_string())?;
        rows.extend(found);
    }
    if suites == 0 {
        bail!(
            "{}: no Gatekeeper Suite ({SUITE_API_VERSION}) found",
            dir.display()
        );
    }
    let out = match format {
        ReportFormat::Text => text_table(&rows, suites),
        ReportFormat::Json => format!("{}\n", serde_json::to_string_pretty(&rows_json(&rows))?),
        ReportFormat::Yaml => gitplane_object::yaml::to_yaml(&rows_json(&rows)),
    };
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(if rows.iter().all(|r| r.ok != Some(false)) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The suite in `file`, or `None` if the file holds something else (a
/// file that is not even YAML is not a suite either).
fn read_suite(root: &Root, file: &RelPath) -> Result<Option<Value>> {
    let bytes = root.read(file)?;
    // Cheap test first: most YAML files in a policy library are not suites.
    if !String::from_utf8_lossy(&bytes).contains("Suite") {
        return Ok(None);
    }
    let Ok(values) = parse_documents(&bytes, file) else {
        return Ok(None);
    };
    Ok(values
        .into_iter()
        .find(|v| v["kind"] == "Suite" && v["apiVersion"] == SUITE_API_VERSION))
}

fn is_skipped(value: &Value) -> bool {
    value["skip"].as_bool().unwrap_or(false)
}

/// One file a test names, as one object.
fn read_one(root: &Root, base: &RelPath, field: &str, file: &Value) -> Result<Object> {
    let file = file
        .as_str()
        .ok_or_else(|| anyhow!("{field} must name a file"))?;
    let mut objects = read_objects(root, base, &[file.to_string()])?;
    match objects.len() {
        1 => Ok(objects.remove(0)),
        n => bail!("{field} {file}: must hold exactly one YAML document, not {n}"),
    }
}

fn run_suite(
    root: &Root,
    file: &RelPath,
    suite: &Value,
    filter: Option<&Regex>,
    source: Source,
) -> Result<Vec<Row>> {
    let base = file.parent();
    let mut rows = Vec::new();
    let tests = suite["tests"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    for test in tests {
        let test_name = test["name"].as_str().unwrap_or_default();
        let row = |case: &str, ok: Option<bool>, detail: String| Row {
            suite: file.display().to_string(),
            test: test_name.to_string(),
            case: case.to_string(),
            ok,
            violations: Vec::new(),
            detail,
        };
        // --run: a test is run if its name or one of its cases' matches.
        let selected = filter.is_none_or(|f| {
            f.is_match(test_name)
                || test["cases"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| f.is_match(c["name"].as_str().unwrap_or_default()))
        });
        if !selected {
            continue;
        }
        if is_skipped(suite) || is_skipped(test) {
            rows.push(row("", None, "skipped".into()));
            continue;
        }
        let prepared = prepare_test(root, &base, test);
        let cases = test["cases"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let (template, constraint) = match prepared {
            Ok(pair) => pair,
            Err(error) => {
                rows.push(row("", Some(false), format!("{error:#}")));
                continue;
            }
        };
        // The constraint's parameters against the template's schema: a test
        // marked `invalid` expects them refused, and has no cases.
        let checked = template.check_parameters(&constraint);
        match (test["invalid"].as_bool() == Some(true), checked) {
            (true, Err(refused)) => {
                rows.push(row(
                    "",
                    Some(true),
                    format!("refused as expected: {refused}"),
                ));
                continue;
            }
            (true, Ok(())) => {
                rows.push(row(
                    "",
                    Some(false),
                    "invalid: the constraint was expected to be refused, and was not".into(),
                ));
                continue;
            }
            (false, Err(refused)) => {
                rows.push(row(
                    "",
                    Some(false),
                    format!("constraint {}: {refused}", constraint.name),
                ));
                continue;
            }
            (false, Ok(())) => {}
        }
        for case in cases {
            let case_name = case["name"].as_str().unwrap_or_default();
            if filter.is_some_and(|f| !f.is_match(test_name) && !f.is_match(case_name)) {
                continue;
            }
            if is_skipped(case) {
                rows.push(row(case_name, None, "skipped".into()));
                continue;
            }
            match run_case(root, &base, case, &template, &constraint, source) {
                Ok((violations, failures)) => rows.push(Row {
                    violations,
                    ..row(case_name, Some(failures.is_empty()), failures.join("; "))
                }),
                Err(error) => rows.push(row(case_name, Some(false), format!("{error:#}"))),
            }
        }
    }
    Ok(rows)
}

/// The test's compiled template and its constraint.
fn prepare_test(root: &Root, base: &RelPath, test: &Value) -> Result<(Template, Constraint)> {
    let template_object = read_one(root, base, "template", &test["template"])?;
    let template = Template::parse(&template_object).map_err(|e| {
        anyhow!(
            "template {}: {e}",
            test["template"].as_str().unwrap_or_default()
        )
    })?;
    let constraint_object = read_one(root, base, "constraint", &test["constraint"])?;
    let constraint = Constraint::parse(&constraint_object).map_err(|e| {
        anyhow!(
            "constraint {}: {e}",
            test["constraint"].as_str().unwrap_or_default()
        )
    })?;
    if constraint.kind != template.kind {
        bail!(
            "constraint {} is a {}, not a {} (the template's kind)",
            constraint.name,
            constraint.kind,
            template.kind
        );
    }
    if test.get("expansion").is_some_and(|e| !e.is_null()) {
        bail!("expansion templates are not supported by gitplane yet");
    }
    Ok((template, constraint))
}

/// The violations of one case and the assertions it fails.
fn run_case(
    root: &Root,
    base: &RelPath,
    case: &Value,
    template: &Template,
    constraint: &Constraint,
    source: Source,
) -> Result<(Vec<String>, Vec<String>)> {
    let object = read_one(root, base, "object", &case["object"])?.into_value();
    let review = if review::is_admission_review(&object) {
        review::of_admission_review(&object).map_err(|e| anyhow!(e))?
    } else {
        review::of_object(&object)
    };
    let inventory_files = gitplane_policy::strings(&case["inventory"]);
    let inventory_objects: Vec<Value> = read_objects(root, base, &inventory_files)?
        .into_iter()
        .map(Object::into_value)
        .collect();
    let inventory = review::inventory(&inventory_objects);
    let violations = if constraint.matcher.matches_review(&review, None) {
        // An evaluation error is one violation whose message is the error.
        template
            .violations(&review, &constraint.parameters, Some(&inventory), source)
            .unwrap_or_else(|error| vec![error])
    } else {
        Vec::new()
    };
    let assertions = case["assertions"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if assertions.is_empty() {
        bail!("the case has no assertions");
    }
    let mut failures = Vec::new();
    for (i, assertion) in assertions.iter().enumerate() {
        if let Some(failure) =
            check_assertion(assertion, &violations).with_context(|| format!("assertions[{i}]"))?
        {
            failures.push(format!("assertions[{i}]: {failure}"));
        }
    }
    Ok((violations, failures))
}

/// What `violations:` expects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expected {
    Some,
    None,
    Exactly(u64),
}

fn expected(value: &Value) -> Result<Expected> {
    match value {
        Value::Null => Ok(Expected::Some),
        Value::Bool(true) => Ok(Expected::Some),
        Value::Bool(false) => Ok(Expected::None),
        Value::String(s) if s == "yes" => Ok(Expected::Some),
        Value::String(s) if s == "no" => Ok(Expected::None),
        Value::Number(n) => n
            .as_u64()
            .map(Expected::Exactly)
            .ok_or_else(|| anyhow!("violations must be yes, no or a count, not {n}")),
        other => bail!("violations must be yes, no or a count, not {other}"),
    }
}

/// `None` if the assertion holds, else why not.
fn check_assertion(assertion: &Value, violations: &[String]) -> Result<Option<String>> {
    let expected = expected(&assertion["violations"])?;
    let message = assertion["message"]
        .as_str()
        .map(Regex::new)
        .transpose()
        .context("message is not a valid regular expression")?;
    let count = violations
        .iter()
        .filter(|v| message.as_ref().is_none_or(|m| m.is_match(v)))
        .count() as u64;
    let holds = match expected {
        Expected::Some => count >= 1,
        Expected::None => count == 0,
        Expected::Exactly(n) => count == n,
    };
    if holds {
        return Ok(None);
    }
    let wanted = match expected {
        Expected::Some => "at least one violation".to_string(),
        Expected::None => "no violation".to_string(),
        Expected::Exactly(n) => format!("{n} violations"),
    };
    let matching = assertion["message"]
        .as_str()
        .map(|m| format!(" matching {m:?}"))
        .unwrap_or_default();
    Ok(Some(format!("expected {wanted}{matching}, got {count}")))
}

fn text_table(rows: &[Row], suites: usize) -> String {
    let mut out = String::new();
    let mut current = "";
    for row in rows {
        if row.suite != current {
            out.push_str(&format!("{}\n", row.suite));
            current = &row.suite;
        }
        let name = if row.case.is_empty() {
            row.test.clone()
        } else {
            format!("{} › {}", row.test, row.case)
        };
        let result = match row.ok {
            None => "skip".to_string(),
            Some(true) => "ok".to_string(),
            Some(false) => format!("FAIL: {}", row.detail),
        };
        out.push_str(&format!("  {name:<64} {result}\n"));
    }
    let failed = rows.iter().filter(|r| r.ok == Some(false)).count();
    let skipped = rows.iter().filter(|r| r.ok.is_none()).count();
    out.push_str(&format!(
        "Test summary: {} passed, {failed} failed, {skipped} skipped ({suites} suites)\n",
        rows.len() - failed - skipped
    ));
    out
}

fn rows_json(rows: &[Row]) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| {
                let mut m = Map::new();
                m.insert("suite".into(), json!(r.suite));
                m.insert("test".into(), json!(r.test));
                m.insert("case".into(), json!(r.case));
                let result = match r.ok {
                    None => "skip",
                    Some(true) => "pass",
                    Some(false) => "fail",
                };
                m.insert("result".into(), json!(result));
                m.insert("violations".into(), json!(r.violations));
                m.insert("detail".into(), json!(r.detail));
                Value::Object(m)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assertions_count_violations_matching_the_message() {
        let found = vec![
            "container a lacks x".to_string(),
            "initContainer b lacks x".into(),
        ];
        let check = |a: Value| check_assertion(&a, &found).unwrap();
        assert_eq!(check(json!({"violations": "yes"})), None);
        assert_eq!(check(json!({})), None, "violations defaults to yes");
        assert_eq!(check(json!({"violations": 2})), None);
        assert_eq!(check(json!({"violations": 1, "message": "^init"})), None);
        assert_eq!(
            check(json!({"violations": "no", "message": "ephemeral"})),
            None
        );
        assert_eq!(
            check(json!({"violations": "no"})).unwrap(),
            "expected no violation, got 2"
        );
        assert_eq!(
            check(json!({"violations": 1, "message": "lacks"})).unwrap(),
            "expected 1 violations matching \"lacks\", got 2"
        );
        assert_eq!(check(json!({"violations": false, "message": "zzz"})), None);
        assert!(check_assertion(&json!({"violations": "maybe"}), &found).is_err());
    }
}
