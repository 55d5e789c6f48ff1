//! `gitplane policy test DIR`: Kyverno CLI test files (`kyverno-test.yaml`,
//! `cli.kyverno.io/v1alpha1` `Test`) run against gitplane's policy engine.
//!
//! Every file a test names is read through the render crate's [`Root`], so
//! nothing outside DIR (by `..` or a symlink) is read.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, anyhow, bail};
use gitplane_object::{LoadOptions, Map, Object, Syntax, Value, json, load_objects, parse_values};
use gitplane_policy::{
    Operation, PolicySet, Request, RuleResult, Supplied, UserInfo, Verdict, strings,
};
use gitplane_render::fs::EntryKind;
use gitplane_render::{RelPath, Root};

use crate::output::ReportFormat;
use crate::render_cmd::root_and_path;

const TEST_FILES: [&str; 2] = ["kyverno-test.yaml", "kyverno-test.yml"];

/// One expected result compared with what gitplane found.
#[derive(Debug)]
struct Row {
    test: String,
    policy: String,
    rule: String,
    resource: String,
    kind: String,
    expected: Verdict,
    actual: Option<Verdict>,
    ok: bool,
    detail: String,
}

/// Runs every test under `dir`; exit 1 if any result differs.
pub fn run(dir: &Path, format: ReportFormat) -> Result<ExitCode> {
    // Reads stay inside the Git work tree holding DIR (else the current
    // directory, if it holds DIR): a test names `../policy.yaml`.
    let (root, start) = root_and_path(dir, None)?;
    let tests = if root.kind(&start)? == Some(EntryKind::File) {
        vec![start]
    } else {
        find_files(&root, &start, &|name| TEST_FILES.contains(&name))?
    };
    if tests.is_empty() {
        bail!("{}: no kyverno-test.yaml found", dir.display());
    }
    let mut rows = Vec::new();
    for test in &tests {
        rows.extend(run_test(&root, test).with_context(|| test.display().to_string())?);
    }
    let out = match format {
        ReportFormat::Text => text_table(&rows, tests.len()),
        ReportFormat::Json => format!("{}\n", serde_json::to_string_pretty(&rows_json(&rows))?),
        ReportFormat::Yaml => gitplane_object::yaml::to_yaml(&rows_json(&rows)),
    };
    std::io::stdout().lock().write_all(out.as_bytes())?;
    Ok(if rows.iter().all(|r| r.ok) {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The files under `dir` (recursively) whose name `wanted` accepts, sorted.
pub(crate) fn find_files(
    root: &Root,
    dir: &RelPath,
    wanted: &dyn Fn(&str) -> bool,
) -> Result<Vec<RelPath>> {
    let mut found = Vec::new();
    for (name, kind) in root.list(dir)? {
        let path = dir.join(&name);
        match kind {
            EntryKind::Dir => found.extend(find_files(root, &path, wanted)?),
            EntryKind::File if wanted(&name) => found.push(path),
            EntryKind::File => {}
        }
    }
    found.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    Ok(found)
}

/// The non-null YAML or JSON documents of a file.
pub(crate) fn read_values(root: &Root, path: &RelPath) -> Result<Vec<Value>> {
    parse_documents(&root.read(path)?, path)
}

/// The non-null documents of a file's bytes.
pub(crate) fn parse_documents(bytes: &[u8], path: &RelPath) -> Result<Vec<Value>> {
    let values = parse_values(
        bytes,
        path.display(),
        Syntax::from_file_name(path.as_str()),
        &LoadOptions::default(),
    )?;
    Ok(values
        .into_iter()
        .map(|(v, _)| v)
        .filter(|v| !v.is_null())
        .collect())
}

/// The objects of the files named relative to `base`.
pub(crate) fn read_objects(root: &Root, base: &RelPath, files: &[String]) -> Result<Vec<Object>> {
    let mut out = Vec::new();
    for file in files {
        let path = root.resolve(base, file)?;
        let bytes = root.read(&path)?;
        out.extend(load_objects(
            &bytes,
            path.display(),
            Syntax::from_file_name(file),
            &LoadOptions::default(),
        )?);
    }
    Ok(out)
}

/// The test's `variables` file.
struct Values {
    supplied: Supplied,
    namespaces: Vec<Value>,
}

fn read_variables(root: &Root, base: &RelPath, file: Option<&str>) -> Result<Values> {
    let mut values = Values {
        supplied: Supplied::default(),
        namespaces: Vec::new(),
    };
    let Some(file) = file else {
        return Ok(values);
    };
    let path = root.resolve(base, file)?;
    let doc = read_values(root, &path)?
        .into_iter()
        .next()
        .unwrap_or(Value::Null);
    let map = |v: &Value| v.as_object().cloned().unwrap_or_default();
    values.supplied.global = map(&doc["globalValues"]);
    for policy in doc["policies"].as_array().into_iter().flatten() {
        let name = policy["name"].as_str().unwrap_or_default().to_string();
        for rule in policy["rules"].as_array().into_iter().flatten() {
            let rule_name = rule["name"].as_str().unwrap_or_default().to_string();
            values
                .supplied
                .rules
                .push((name.clone(), rule_name, map(&rule["values"])));
        }
        for resource in policy["resources"].as_array().into_iter().flatten() {
            let resource_name = resource["name"].as_str().unwrap_or_default().to_string();
            values
                .supplied
                .resources
                .push((name.clone(), resource_name, map(&resource["values"])));
        }
    }
    // Whole Namespaces (`namespaces`), or their names and labels
    // (`namespaceSelector`).
    values
        .namespaces
        .extend(doc["namespaces"].as_array().into_iter().flatten().cloned());
    for ns in doc["namespaceSelector"].as_array().into_iter().flatten() {
        values
            .namespaces
            .push(json!({"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": ns["name"], "labels": ns["labels"]}}));
    }
    Ok(values)
}

/// A test's `Context` file (`spec.resources`, `spec.images`) as the CEL
/// variables that answer Kyverno's `resource`, `image` and `time`
/// libraries, as the Kyverno CLI answers them from it.
fn read_context(root: &Root, base: &RelPath, file: Option<&str>) -> Result<Vec<(String, Value)>> {
    use gitplane_cel::supplied::{images_variable, resources_variable, time_variable};
    let mut variables = vec![("time".to_string(), time_variable())];
    let Some(file) = file else {
        return Ok(variables);
    };
    let path = root.resolve(base, file)?;
    let doc = read_values(root, &path)?
        .into_iter()
        .next()
        .unwrap_or(Value::Null);
    let spec = &doc["spec"];
    let resources = spec["resources"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let named = resources.iter().map(|object| {
        let kind = object["kind"].as_str().unwrap_or_default();
        (object, gitplane_object::plural(kind))
    });
    variables.push(("resource".to_string(), resources_variable(named)));
    let images = spec["images"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    variables.push(("image".to_string(), images_variable(images)));
    Ok(variables)
}

fn read_user(root: &Root, base: &RelPath, file: Option<&str>) -> Result<UserInfo> {
    let Some(file) = file else {
        return Ok(UserInfo::default());
    };
    let doc = read_values(root, &root.resolve(base, file)?)?
        .into_iter()
        .next()
        .unwrap_or(Value::Null);
    let info = &doc["userInfo"];
    Ok(UserInfo {
        username: info["username"].as_str().unwrap_or_default().to_string(),
        groups: strings(&info["groups"]),
    })
}

/// What one resource got: its results and, after mutation, its object.
struct Applied {
    object: Object,
    mutated: Value,
    results: Vec<RuleResult>,
    /// What generate rules create for it: (policy, rule, object).
    generated: Vec<gitplane_policy::kyverno::Generated>,
}

fn run_test(root: &Root, test: &RelPath) -> Result<Vec<Row>> {
    let doc = read_values(root, test)?
        .into_iter()
        .next()
        .ok_or_else(|| anyhow!("empty test file"))?;
    let base = test.parent();
    let mut policy_objects = read_objects(root, &base, &strings(&doc["policies"]))?;
    // PolicyExceptions the test applies.
    policy_objects.extend(read_objects(root, &base, &strings(&doc["exceptions"]))?);
    // What a test's `checks` match policies against (only when it has some).
    let policies_by_name: Vec<Value> = if doc["checks"].is_array() {
        policy_objects.iter().map(Object::to_value).collect()
    } else {
        Vec::new()
    };
    let mut set = PolicySet::load(policy_objects).map_err(|errors| {
        let lines: Vec<String> = errors.iter().map(ToString::to_string).collect();
        anyhow!("invalid policies:\n  {}", lines.join("\n  "))
    })?;
    set.bind_unbound_policies();
    let resources = in_default_namespace(read_objects(root, &base, &strings(&doc["resources"]))?);
    // What `clone` rules copy from: the results' `cloneSourceResource`
    // files, beside the test's resources.
    let clone_files: Vec<String> = doc["results"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["cloneSourceResource"].as_str().map(str::to_string))
        .collect();
    let mut sources = resources.clone();
    sources.extend(in_default_namespace(read_objects(
        root,
        &base,
        &clone_files,
    )?));
    let mut values = read_variables(root, &base, doc["variables"].as_str())?;
    values.supplied.cel_variables = read_context(root, &base, doc["context"].as_str())?;
    let user = read_user(root, &base, doc["userinfo"].as_str())?;
    let global_operation = values.supplied.global.get("request.operation");
    let mut applied = Vec::new();
    for object in &resources {
        let body = object.to_value();
        // A resource's own values may set the operation (an UPDATE's old
        // object is the resource itself, as in Kyverno's CLI).
        let operation = values
            .supplied
            .resources
            .iter()
            .filter(|(_, name, _)| name == object.name())
            .find_map(|(_, _, v)| v.get("request.operation"))
            .or(global_operation)
            .and_then(Value::as_str)
            .and_then(Operation::parse)
            .unwrap_or(Operation::Create);
        let namespace = object.namespace().and_then(|ns| {
            values
                .namespaces
                .iter()
                .find(|n| n["metadata"]["name"] == ns)
                .cloned()
                .or_else(|| {
                    resources
                        .iter()
                        .find(|r| r.kind() == "Namespace" && r.name() == ns)
                        .map(Object::to_value)
                })
                // As Kyverno's CLI: a namespace the test does not hold is a
                // bare Namespace of that name.
                .or_else(|| {
                    Some(json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}))
                })
        });
        let request = Request {
            object: &body,
            old_object: (operation != Operation::Create).then_some(&body),
            operation,
            namespace_object: namespace.as_ref(),
            user: &user,
            resource: None,
        };
        let (mutated, mut results) = set.mutate(&request, &values.supplied);
        let after = Request {
            object: &mutated,
            ..request
        };
        let lookup: &[Object] = &resources;
        results.extend(set.validate(&after, &lookup, &values.supplied).results);
        let sources: &[Object] = &sources;
        let (generated, generate_results) = set.generate(&after, &values.supplied, &sources);
        results.extend(generate_results);
        applied.push(Applied {
            object: object.clone(),
            mutated,
            results,
            generated,
        });
    }
    let mut rows = Vec::new();
    for expected in doc["results"].as_array().into_iter().flatten() {
        rows.extend(compare(root, &base, test, expected, &applied)?);
    }
    for check in doc["checks"].as_array().into_iter().flatten() {
        rows.extend(run_check(test, check, &applied, &policies_by_name));
    }
    Ok(rows)
}

/// One of a test's `checks` (Kyverno 1.12's assertion trees): every rule
/// result whose resource, policy and rule the `match` trees select must
/// satisfy `assert` and must not satisfy `error`. A row per selected
/// result; a check that selects none is a failure.
fn run_check(test: &RelPath, check: &Value, applied: &[Applied], policies: &[Value]) -> Vec<Row> {
    use gitplane_policy::kyverno::assertion::holds;
    let selects = |key: &str, value: &Value| {
        let tree = &check["match"][key];
        tree.is_null() || holds(tree, value).is_ok()
    };
    let expected = check["assert"]["status"]
        .as_str()
        .and_then(Verdict::parse)
        .unwrap_or(Verdict::Pass);
    let mut rows = Vec::new();
    for target in applied {
        let resource = target.object.to_value();
        if !selects("resource", &resource) {
            continue;
        }
        for result in &target.results {
            let policy = policies
                .iter()
                .find(|p| p["metadata"]["name"] == result.policy.as_str())
                .cloned()
                .unwrap_or_else(|| json!({"metadata": {"name": result.policy}}));
            let response = json!({
                "name": result.rule,
                "status": result.verdict.as_str(),
                "message": result.message,
            });
            if !selects("policy", &policy) || !selects("rule", &response) {
                continue;
            }
            let asserted = match &check["assert"] {
                Value::Null => Ok(()),
                tree => holds(tree, &response),
            };
            let refuted = match &check["error"] {
                Value::Null => Ok(()),
                tree => match holds(tree, &response) {
                    Ok(()) => Err(format!("the error tree holds: {tree}")),
                    Err(_) => Ok(()),
                },
            };
            let outcome = asserted.and(refuted);
            rows.push(Row {
                test: test.display().to_string(),
                policy: result.policy.clone(),
                rule: result.rule.clone(),
                resource: target.object.name().to_string(),
                kind: target.object.kind().to_string(),
                expected,
                actual: Some(result.verdict),
                ok: outcome.is_ok(),
                detail: outcome.err().unwrap_or_default(),
            });
        }
    }
    if rows.is_empty() {
        rows.push(Row {
            test: test.display().to_string(),
            policy: String::new(),
            rule: String::new(),
            resource: String::new(),
            kind: String::new(),
            expected,
            actual: None,
            ok: false,
            detail: format!("the check selects no result: {}", check["match"]),
        });
    }
    rows
}

fn compare(
    root: &Root,
    base: &RelPath,
    test: &RelPath,
    expected: &Value,
    applied: &[Applied],
) -> Result<Vec<Row>> {
    let policy = expected["policy"].as_str().unwrap_or_default();
    let policy_name = policy.rsplit('/').next().unwrap_or(policy);
    let rule = expected["rule"].as_str().unwrap_or_default();
    let kind = expected["kind"].as_str().unwrap_or_default();
    let wanted_text = expected["result"]
        .as_str()
        .or_else(|| expected["status"].as_str())
        .unwrap_or_default();
    let wanted = Verdict::parse(wanted_text).ok_or_else(|| {
        anyhow!(
            "result {wanted_text:?} of policy {policy:?} is not pass, fail, warn, error or skip"
        )
    })?;
    let mut names = strings(&expected["resources"]);
    if let Some(one) = expected["resource"].as_str() {
        names.push(one.to_string());
    }
    let patched_files: Vec<String> = expected["patchedResources"]
        .as_str()
        .or_else(|| expected["patchedResource"].as_str())
        .map(|f| vec![f.to_string()])
        .unwrap_or_default();
    let patched = in_default_namespace(read_objects(root, base, &patched_files)?);
    let generated_files: Vec<String> = expected["generatedResource"]
        .as_str()
        .map(|f| vec![f.to_string()])
        .unwrap_or_default();
    let expected_generated = read_objects(root, base, &generated_files)?;
    let mut rows = Vec::new();
    for name in names {
        let (namespace, short) = match name.split_once('/') {
            Some((ns, n)) => (Some(ns), n),
            None => (None, name.as_str()),
        };
        let targets: Vec<&Applied> = applied
            .iter()
            .filter(|a| {
                a.object.name() == short
                    && (namespace.is_none()
                        || a.object.namespace().unwrap_or("default")
                            == namespace.unwrap_or_default())
                    && (kind.is_empty() || a.object.kind() == kind)
            })
            .collect();
        let results: Vec<&RuleResult> = targets
            .iter()
            .flat_map(|a| a.results.iter())
            .filter(|r| r.policy == policy_name && (rule.is_empty() || is_rule(&r.rule, rule)))
            .collect();
        let actual = results
            .iter()
            .find(|r| r.verdict != wanted)
            .or(results.first())
            .map(|r| r.verdict);
        let (mut ok, mut detail) = match (targets.is_empty(), actual) {
            (true, _) => (
                false,
                "no such resource in the test's resources".to_string(),
            ),
            (false, None) if wanted == Verdict::Skip => (true, "no rule matched".to_string()),
            (false, None) => (
                false,
                "no result: the rule does not match the resource".to_string(),
            ),
            (false, Some(v)) => (
                v == wanted,
                results
                    .iter()
                    .find(|r| r.verdict == v)
                    .map(|r| r.message.clone())
                    .unwrap_or_default(),
            ),
        };
        if ok
            && !generated_files.is_empty()
            && let Some(target) = targets.first()
        {
            let produced = target
                .generated
                .iter()
                .find(|g| g.policy == policy_name && (rule.is_empty() || g.rule == rule));
            match (produced, expected_generated.first()) {
                (None, _) => {
                    ok = false;
                    detail = "the rule generated nothing".into();
                }
                (Some(_), None) => {
                    ok = false;
                    detail = "the generated resource file holds no object".into();
                }
                (Some(made), Some(wanted)) if wanted.to_value() != made.object.to_value() => {
                    ok = false;
                    detail = format!(
                        "generated resource differs: {}",
                        first_difference(&wanted.to_value(), &made.object.to_value(), "")
                    );
                }
                _ => {}
            }
        }
        let mutated_as_wanted = ok || (wanted == Verdict::Fail && actual == Some(Verdict::Pass));
        if mutated_as_wanted
            && !patched.is_empty()
            && let Some(target) = targets.first()
        {
            let expected_object = patched
                .iter()
                .find(|p| p.kind() == target.object.kind() && p.name() == target.object.name());
            // As Kyverno's CLI: a patched resource that differs, or is not
            // in the file, makes the mutation's result `fail`.
            match expected_object {
                None => {
                    ok = wanted == Verdict::Fail;
                    detail = "the patched resources file does not hold this resource".into();
                }
                Some(p) if p.to_value() == target.mutated && wanted == Verdict::Fail => {
                    ok = actual == Some(Verdict::Fail);
                }
                Some(p) if p.to_value() != target.mutated => {
                    ok = wanted == Verdict::Fail;
                    detail = format!(
                        "patched resource differs: {}",
                        first_difference(&p.to_value(), &target.mutated, "")
                    );
                }
                Some(_) => {}
            }
        }
        rows.push(Row {
            test: test.display().to_string(),
            policy: policy.to_string(),
            rule: rule.to_string(),
            resource: name.clone(),
            kind: if kind.is_empty() {
                targets
                    .first()
                    .map(|a| a.object.kind().to_string())
                    .unwrap_or_default()
            } else {
                kind.to_string()
            },
            expected: wanted,
            actual,
            ok,
            detail,
        });
    }
    Ok(rows)
}

/// As Kyverno's CLI: a namespaced resource (or patched resource) that names
/// no namespace is in `default`.
fn in_default_namespace(objects: Vec<Object>) -> Vec<Object> {
    objects
        .into_iter()
        .map(|mut object| {
            if object.namespace().is_none()
                && !gitplane_graph::is_cluster_scoped_builtin(object.api_version(), object.kind())
            {
                object.set_namespace("default");
            }
            object
        })
        .collect()
}

/// Whether a result's rule is the expected one: the rule itself, or the rule
/// Kyverno generated from it for pod controllers (`autogen-R`,
/// `autogen-cronjob-R`), which Kyverno's CLI reports under the rule's name.
fn is_rule(actual: &str, expected: &str) -> bool {
    let generated = actual
        .strip_prefix("autogen-cronjob-")
        .or_else(|| actual.strip_prefix("autogen-"));
    actual == expected || generated == Some(expected)
}

/// The first path where two values differ, with both sides.
fn first_difference(expected: &Value, actual: &Value, path: &str) -> String {
    match (expected, actual) {
        (Value::Object(e), Value::Object(a)) => {
            for key in e.keys().chain(a.keys()) {
                let (x, y) = (
                    e.get(key).unwrap_or(&Value::Null),
                    a.get(key).unwrap_or(&Value::Null),
                );
                if x != y {
                    return first_difference(x, y, &format!("{path}/{key}"));
                }
            }
            format!("{path}: (same)")
        }
        (Value::Array(e), Value::Array(a)) if e.len() == a.len() => {
            for (i, (x, y)) in e.iter().zip(a).enumerate() {
                if x != y {
                    return first_difference(x, y, &format!("{path}/{i}"));
                }
            }
            format!("{path}: (same)")
        }
        _ => format!("{path}: expected {expected}, got {actual}"),
    }
}

fn text_table(rows: &[Row], files: usize) -> String {
    let mut out = String::new();
    let mut current = "";
    for (i, row) in rows.iter().enumerate() {
        if row.test != current {
            out.push_str(&format!("{}\n", row.test));
            out.push_str(&format!(
                "  {:>3}  {:<28} {:<28} {:<32} {:<8} {:<8} RESULT\n",
                "#", "POLICY", "RULE", "RESOURCE", "EXPECTED", "ACTUAL"
            ));
            current = &row.test;
        }
        let actual = row.actual.map_or("-", |v| v.as_str());
        let result = if row.ok {
            "ok".to_string()
        } else {
            format!("MISMATCH: {}", row.detail)
        };
        out.push_str(&format!(
            "  {:>3}  {:<28} {:<28} {:<32} {:<8} {:<8} {result}\n",
            i + 1,
            row.policy,
            row.rule,
            format!("{}/{}", row.kind, row.resource),
            row.expected.as_str(),
            actual,
        ));
    }
    let failed = rows.iter().filter(|r| !r.ok).count();
    out.push_str(&format!(
        "Test summary: {} passed, {failed} failed ({files} test files)\n",
        rows.len() - failed
    ));
    out
}

fn rows_json(rows: &[Row]) -> Value {
    Value::Array(
        rows.iter()
            .map(|r| {
                let mut m = Map::new();
                m.insert("test".into(), json!(r.test));
                m.insert("policy".into(), json!(r.policy));
                m.insert("rule".into(), json!(r.rule));
                m.insert("kind".into(), json!(r.kind));
                m.insert("resource".into(), json!(r.resource));
                m.insert("expected".into(), json!(r.expected.as_str()));
                m.insert("actual".into(), json!(r.actual.map(|v| v.as_str())));
                m.insert("ok".into(), json!(r.ok));
                m.insert("detail".into(), json!(r.detail));
                Value::Object(m)
            })
            .collect(),
    )
}
