//! Argo CD's resource action tests: beside `actions/discovery.lua` (which
//! actions an object offers) and `actions/<name>/action.lua` (what running
//! one does), an `action_test.yaml`:
//!
//! ```yaml
//! discoveryTests:
//! - inputPath: testdata/thing.yaml
//!   result:
//!   - {name: restart, disabled: false, iconClass: "fa fa-redo"}
//! actionTests:
//! - action: scale
//!   inputPath: testdata/thing.yaml
//!   expectedOutputPath: testdata/thing-scaled.yaml
//!   parameters: {replicas: "6"}
//! - action: scale
//!   inputPath: testdata/thing.yaml
//!   expectedErrorMessage: "invalid number: x"
//!   parameters: {replicas: "x"}
//! ```
//!
//! They are judged as Argo CD's own test judges them: every discovered
//! action must be among the expected ones; an action's result (one object,
//! a patch of the input, or a list of `{operation, resource}`) must hold
//! every field the expected output holds (fields only the result has are
//! not compared, numbers compare by value), after the values actions stamp
//! with the current time are set aside on both sides.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use serde_json::{Map, Value};

use crate::HealthError;
use crate::lua::group_kind_of;
use crate::lua::{LuaLimits, compile, run_to_json};
use crate::testfile::{confined, field, first_document, read_yaml, text_field};

/// One kind's actions: the script that says which it offers, and each
/// action's script.
#[derive(Clone)]
struct KindActions {
    origin: String,
    discovery: String,
    actions: BTreeMap<String, String>,
}

/// A built-in kind's actions: group, kind, discovery script, and each
/// action's name and script.
type BuiltinActions = (
    &'static str,
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
);

/// gitplane's own scripts for the actions Argo CD offers on built-in kinds.
const BUILTIN: &[BuiltinActions] = &[
    (
        "apps",
        "Deployment",
        include_str!("../actions/deployment-discovery.lua"),
        &[
            ("restart", include_str!("../actions/restart.lua")),
            ("pause", include_str!("../actions/pause.lua")),
            ("resume", include_str!("../actions/resume.lua")),
            ("scale", include_str!("../actions/scale.lua")),
        ],
    ),
    (
        "apps",
        "StatefulSet",
        include_str!("../actions/statefulset-discovery.lua"),
        &[
            ("restart", include_str!("../actions/restart.lua")),
            ("scale", include_str!("../actions/scale.lua")),
        ],
    ),
    (
        "apps",
        "DaemonSet",
        include_str!("../actions/daemonset-discovery.lua"),
        &[("restart", include_str!("../actions/restart.lua"))],
    ),
    (
        "batch",
        "CronJob",
        include_str!("../actions/cronjob-discovery.lua"),
        &[
            ("suspend", include_str!("../actions/cronjob-suspend.lua")),
            ("resume", include_str!("../actions/cronjob-resume.lua")),
            (
                "create-job",
                include_str!("../actions/cronjob-create-job.lua"),
            ),
        ],
    ),
];

/// Argo CD's settings keys holding one kind's actions.
const ACTIONS_KEY: &str = "resource.customizations.actions.";

/// What an action does to the cluster: `create` a new object, or `patch`
/// the object it ran on into the given one.
pub type ImpactedResource = (String, Value);

/// The resource actions gitplane offers on live objects (as Argo CD's
/// `app actions`): built-in ones for Deployments, StatefulSets, DaemonSets
/// and CronJobs, replaced per kind by `argocd-cm`'s
/// `resource.customizations.actions.<group>_<Kind>`.
pub struct ResourceActions {
    kinds: HashMap<(String, String), KindActions>,
    limits: LuaLimits,
}

impl ResourceActions {
    /// The built-in actions.
    pub fn builtin(limits: LuaLimits) -> Self {
        let kinds = BUILTIN
            .iter()
            .map(|(group, kind, discovery, actions)| {
                let scripts = KindActions {
                    origin: format!("built-in actions of {group}/{kind}"),
                    discovery: discovery.to_string(),
                    actions: actions
                        .iter()
                        .map(|(name, source)| (name.to_string(), source.to_string()))
                        .collect(),
                };
                ((group.to_string(), kind.to_string()), scripts)
            })
            .collect();
        ResourceActions { kinds, limits }
    }

    /// The built-in actions, with the kinds `argocd-cm` customizes replaced:
    /// each `resource.customizations.actions.<group>_<Kind>` (or `.<Kind>`)
    /// holds YAML with `discovery.lua` and `definitions` (`name`,
    /// `action.lua`). Every script must compile; errors name the key.
    pub fn with_argocd_cm(
        data: &Map<String, Value>,
        limits: LuaLimits,
    ) -> Result<Self, HealthError> {
        let mut actions = ResourceActions::builtin(limits);
        for (key, value) in data {
            let (Some(group_kind), Value::String(text)) = (key.strip_prefix(ACTIONS_KEY), value)
            else {
                continue;
            };
            let origin = format!("argocd-cm {key}");
            let invalid = |message: String| HealthError::Read {
                path: origin.clone(),
                message,
            };
            let config = first_document(text.as_bytes(), &origin).map_err(invalid)?;
            let discovery = text_field(&config, "discovery.lua").map_err(invalid)?;
            compile(Path::new(&origin), &discovery)?;
            let mut scripts = BTreeMap::new();
            for definition in list(&config, "definitions") {
                let name = text_field(definition, "name").map_err(invalid)?;
                let source = text_field(definition, "action.lua").map_err(invalid)?;
                compile(Path::new(&format!("{origin} {name}")), &source)?;
                scripts.insert(name, source);
            }
            let (group, kind) = group_kind_of(group_kind, '_');
            let kind_actions = KindActions {
                origin,
                discovery,
                actions: scripts,
            };
            actions.kinds.insert((group, kind), kind_actions);
        }
        Ok(actions)
    }

    /// The actions offered on an object (name, params, disabled, iconClass,
    /// displayName), in name order; none for a kind without actions.
    pub fn discover(&self, object: &Value) -> Result<Vec<Value>, String> {
        match self.kind_actions(object) {
            Some(scripts) => {
                offered_actions(&scripts.discovery, &scripts.origin, object, self.limits)
            }
            None => Ok(Vec::new()),
        }
    }

    /// Runs an action the object offers (and that is not disabled) with
    /// its parameters; returns what it creates and patches.
    pub fn run(
        &self,
        object: &Value,
        action: &str,
        params: &Map<String, Value>,
    ) -> Result<Vec<ImpactedResource>, String> {
        let offered = self.discover(object)?;
        let Some(found) = offered.iter().find(|a| a["name"] == action) else {
            let names: Vec<&str> = offered.iter().filter_map(|a| a["name"].as_str()).collect();
            return Err(format!(
                "no action {action:?} here (offered: {})",
                names.join(", ")
            ));
        };
        if found["disabled"] == true {
            return Err(format!("the action {action:?} is disabled for this object"));
        }
        let scripts = self.kind_actions(object).ok_or("no actions")?;
        let source = scripts.actions.get(action).ok_or_else(|| {
            format!(
                "{}: offers {action:?} but defines no script for it",
                scripts.origin
            )
        })?;
        let name = format!("{} {action}", scripts.origin);
        let returned = run_to_json(source, &name, object, Some(params), self.limits)?;
        impacted_resources(returned, object)
    }

    fn kind_actions(&self, object: &Value) -> Option<&KindActions> {
        self.kinds
            .get(&(group(object).to_string(), kind(object).to_string()))
    }
}

/// One discovery or action case and what went wrong, if anything.
#[derive(Debug, Clone)]
pub struct ActionCase {
    /// The action_test.yaml it came from.
    pub file: std::path::PathBuf,
    /// `discovery INPUT` or `ACTION INPUT`.
    pub name: String,
    /// Why it failed; `None` if it passed.
    pub failure: Option<String>,
}

/// Runs every case of one `action_test.yaml` (in an `actions/` directory).
pub(crate) fn run_action_file(file: &Path, limits: LuaLimits) -> Vec<ActionCase> {
    let base = file.parent().unwrap_or(Path::new("."));
    let case = |name: String, result: Result<(), String>| ActionCase {
        file: file.to_path_buf(),
        name,
        failure: result.err(),
    };
    let tests = match read_yaml(file) {
        Ok(tests) => tests,
        Err(e) => return vec![case(String::new(), Err(e.to_string()))],
    };
    let mut cases = Vec::new();
    for test in list(&tests, "discoveryTests") {
        let input = text_field(test, "inputPath").unwrap_or_default();
        let result = discovery_case(base, test, &input, limits);
        cases.push(case(format!("discovery {input}"), result));
    }
    for test in list(&tests, "actionTests") {
        let input = text_field(test, "inputPath").unwrap_or_default();
        let action = text_field(test, "action").unwrap_or_default();
        let result = action_case(base, test, &action, &input, limits);
        cases.push(case(format!("{action} {input}"), result));
    }
    cases
}

fn list<'a>(map: &'a Value, name: &str) -> &'a [Value] {
    field(map, name)
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

fn read_input(base: &Path, input: &str) -> Result<Value, String> {
    let path = confined(base, input)?;
    read_yaml(&path).map_err(|e| e.to_string())
}

fn read_script(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Every action `discovery.lua` offers for the input is among the expected.
fn discovery_case(base: &Path, test: &Value, input: &str, limits: LuaLimits) -> Result<(), String> {
    let object = read_input(base, input)?;
    let path = base.join("discovery.lua");
    let source = read_script(&path)?;
    let expected: Vec<Value> = field(test, "result")
        .and_then(Value::as_array)
        .map(|items| items.iter().map(resource_action).collect())
        .unwrap_or_default();
    let name = path.display().to_string();
    for action in offered_actions(&source, &name, &object, limits)? {
        if !expected.contains(&action) {
            return Err(format!("offers {action}, which is not among the expected"));
        }
    }
    Ok(())
}

/// The actions a discovery script offers on an object, as Argo CD's
/// `ResourceAction`s, in name order.
fn offered_actions(
    discovery: &str,
    name: &str,
    object: &Value,
    limits: LuaLimits,
) -> Result<Vec<Value>, String> {
    let offered = match run_to_json(discovery, name, object, None, limits)? {
        Value::Object(actions) => actions,
        Value::Array(items) if items.is_empty() => Map::new(),
        other => return Err(format!("{name}: returned {other}, not a table of actions")),
    };
    let mut actions: Vec<Value> = offered
        .into_iter()
        .map(|(action_name, value)| {
            let mut action = resource_action(&value);
            action["name"] = Value::String(action_name);
            action
        })
        .collect();
    actions.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
    Ok(actions)
}

/// An action as Argo CD's `ResourceAction` holds it: name, params (of which
/// Argo CD keeps only the names), disabled, iconClass and displayName,
/// absent fields at their zero values.
fn resource_action(value: &Value) -> Value {
    let text = |name: &str| text_field(value, name).unwrap_or_default();
    let params: Vec<Value> = field(value, "params")
        .and_then(Value::as_array)
        .map(|params| {
            params
                .iter()
                .map(|p| serde_json::json!({"name": text_field(p, "name").unwrap_or_default()}))
                .collect()
        })
        .unwrap_or_default();
    serde_json::json!({
        "name": text("name"),
        "params": params,
        "disabled": field(value, "disabled").and_then(Value::as_bool).unwrap_or(false),
        "iconClass": text("iconClass"),
        "displayName": text("displayName"),
    })
}

/// Runs `actions/<action>/action.lua` on the input with the parameters and
/// compares with the expected output or error.
fn action_case(
    base: &Path,
    test: &Value,
    action: &str,
    input: &str,
    limits: LuaLimits,
) -> Result<(), String> {
    let object = read_input(base, input)?;
    let path = base.join(action).join("action.lua");
    if action.is_empty() || action.contains(['/', '\\']) || action.starts_with('.') {
        return Err(format!("invalid action name {action:?}"));
    }
    let source = read_script(&path)?;
    let params: Map<String, Value> = field(test, "parameters")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let returned = run_to_json(
        &source,
        &path.display().to_string(),
        &object,
        Some(&params),
        limits,
    );
    let expected_error = text_field(test, "expectedErrorMessage").unwrap_or_default();
    if !expected_error.is_empty() {
        return match returned {
            Err(message) if message == expected_error => Ok(()),
            Err(message) => Err(format!(
                "expected the error {expected_error:?}, got {message:?}"
            )),
            Ok(_) => Err(format!(
                "expected the error {expected_error:?}, got a result"
            )),
        };
    }
    let impacted = impacted_resources(returned?, &object)?;
    let output = text_field(test, "expectedOutputPath").unwrap_or_default();
    let expected = expected_objects(read_input(base, &output)?);
    for (operation, mut result) in impacted {
        let found = expected
            .iter()
            .find(|e| same_object(e, &result, &object))
            .ok_or_else(|| format!("{operation}s {}, not in {output}", identity(&result)))?;
        if operation == "create" && matches!(kind(&result), "Job" | "Workflow") {
            // Named from the source object and the time: the expected name stands.
            result["metadata"]["name"] = found["metadata"]["name"].clone();
        }
        let (mut want, mut got) = (found.clone(), result);
        set_aside_stamped_times(&mut want);
        set_aside_stamped_times(&mut got);
        if let Some(path) = first_difference(&want, &got, "") {
            return Err(format!(
                "{} differs from {output} at {path}",
                identity(&got)
            ));
        }
    }
    Ok(())
}

/// What an action returned, as Argo CD reads it: a list of `{operation,
/// resource}`, or one object that patches the input.
fn impacted_resources(returned: Value, input: &Value) -> Result<Vec<(String, Value)>, String> {
    match returned {
        Value::Array(items) => items
            .into_iter()
            .map(|item| {
                let operation = text_field(&item, "operation")?;
                if !matches!(operation.as_str(), "create" | "patch") {
                    return Err(format!("unsupported operation {operation:?}"));
                }
                let mut resource = field(&item, "resource").cloned().unwrap_or(Value::Null);
                if operation == "patch" {
                    keep_empty_kinds(&mut resource, input);
                }
                Ok((operation, resource))
            })
            .collect(),
        mut object => {
            keep_empty_kinds(&mut object, input);
            Ok(vec![("patch".into(), object)])
        }
    }
}

/// Lua has one empty table for `{}` and `[]`: where the input had an empty
/// list and the result an empty map (or the reverse), the input's kind stays.
fn keep_empty_kinds(result: &mut Value, input: &Value) {
    match (result, input) {
        (Value::Object(result), Value::Object(input)) => {
            for (key, value) in result.iter_mut() {
                if let Some(old) = input.get(key) {
                    keep_empty_kinds(value, old);
                }
            }
        }
        (Value::Array(result), Value::Array(input)) => {
            for (value, old) in result.iter_mut().zip(input) {
                keep_empty_kinds(value, old);
            }
        }
        (result @ Value::Object(_), Value::Array(old)) if is_empty(result) && old.is_empty() => {
            *result = Value::Array(Vec::new());
        }
        _ => {}
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Object(map) => map.is_empty(),
        Value::Array(items) => items.is_empty(),
        _ => false,
    }
}

/// The expected output: a list of `{unstructuredObj: …}` or one object.
fn expected_objects(output: Value) -> Vec<Value> {
    match output {
        Value::Array(items) => items
            .iter()
            .filter_map(|item| field(item, "unstructuredObj").cloned())
            .collect(),
        object => vec![object],
    }
}

/// The API group of an object (empty for the core group).
fn group(object: &Value) -> &str {
    object["apiVersion"]
        .as_str()
        .and_then(|v| v.rsplit_once('/'))
        .map_or("", |(group, _)| group)
}

fn kind(object: &Value) -> &str {
    object["kind"].as_str().unwrap_or_default()
}

fn identity(object: &Value) -> String {
    let meta = &object["metadata"];
    format!(
        "{}/{} {}/{}",
        object["apiVersion"].as_str().unwrap_or_default(),
        kind(object),
        meta["namespace"].as_str().unwrap_or_default(),
        meta["name"].as_str().unwrap_or_default()
    )
}

/// The expected object a result stands for: same kind and place, and same
/// name, except for Jobs and Workflows created from a CronJob, CronWorkflow
/// or WorkflowTemplate, whose names only start with the source's.
fn same_object(expected: &Value, result: &Value, source: &Value) -> bool {
    let text = |o: &Value, path: &str| {
        o.pointer(path)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let derived = (kind(result) == "Job" && kind(source) == "CronJob")
        || (kind(result) == "Workflow"
            && matches!(kind(source), "CronWorkflow" | "WorkflowTemplate"));
    let names = if derived {
        text(expected, "/metadata/name").starts_with(&text(source, "/metadata/name"))
    } else {
        text(expected, "/metadata/name") == text(result, "/metadata/name")
    };
    text(expected, "/apiVersion") == text(result, "/apiVersion")
        && kind(expected) == kind(result)
        && text(expected, "/metadata/namespace") == text(result, "/metadata/namespace")
        && names
}

/// Values an action sets from the clock (restart annotations, requested-at
/// marks) or a server sets (status, uid), which no fixed expected output can
/// hold, set to one fixed value on both sides — the same fields Argo CD's
/// own action test sets aside.
fn set_aside_stamped_times(object: &mut Value) {
    const FIXED: &str = "0001-01-01T00:00:00Z";
    let group = group(object).to_string();
    let kind = kind(object).to_string();
    let annotate = |object: &mut Value, pointer: &str, key: &str, value: &str| {
        if let Some(Value::Object(meta)) = object.pointer_mut(pointer) {
            let annotations = meta
                .entry("annotations")
                .or_insert_with(|| Value::Object(Map::new()));
            if let Value::Object(annotations) = annotations {
                annotations.insert(key.into(), value.into());
            }
        }
    };
    let remove = |object: &mut Value, pointer: &str, key: &str| {
        if let Some(Value::Object(map)) = object.pointer_mut(pointer) {
            map.remove(key);
        }
    };
    match (group.as_str(), kind.as_str()) {
        ("apps", "DaemonSet" | "Deployment" | "StatefulSet") => {
            ensure_template_metadata(object);
            annotate(
                object,
                "/spec/template/metadata",
                "kubectl.kubernetes.io/restartedAt",
                FIXED,
            );
            if kind == "Deployment" {
                remove(object, "", "status");
                remove(object, "/metadata", "creationTimestamp");
                remove(object, "/metadata", "generation");
            }
        }
        ("batch", "Job") => {
            if let Some(Value::Array(conditions)) = object.pointer_mut("/status/conditions") {
                for condition in conditions {
                    if condition["type"] == "FailureTarget" {
                        condition["lastTransitionTime"] = FIXED.into();
                    }
                }
            }
        }
        ("argoproj.io", "Rollout") => remove(object, "/spec", "restartAt"),
        ("argoproj.io", "Workflow") => {
            remove(object, "/metadata", "resourceVersion");
            remove(object, "/metadata", "uid");
            remove(
                object,
                "/metadata/annotations",
                "workflows.argoproj.io/scheduled-time",
            );
        }
        ("external-secrets.io", "ExternalSecret" | "PushSecret") => {
            object["metadata"]["annotations"] = serde_json::json!({"force-sync": FIXED});
        }
        ("postgresql.cnpg.io", "Cluster") => {
            annotate(object, "/metadata", "cnpg.io/reloadedAt", FIXED);
            annotate(
                object,
                "/metadata",
                "kubectl.kubernetes.io/restartedAt",
                FIXED,
            );
            remove(object, "/status", "targetPrimaryTimestamp");
        }
        (
            "helm.toolkit.fluxcd.io"
            | "source.toolkit.fluxcd.io"
            | "image.toolkit.fluxcd.io"
            | "kustomize.toolkit.fluxcd.io"
            | "notification.toolkit.fluxcd.io",
            _,
        ) => {
            object["metadata"]["annotations"] = serde_json::json!({
                "reconcile.fluxcd.io/requestedAt": "By Argo CD at: 0001-01-01T00:00:00"
            });
        }
        _ => {}
    }
}

fn ensure_template_metadata(object: &mut Value) {
    if let Some(Value::Object(template)) = object.pointer_mut("/spec/template") {
        template
            .entry("metadata")
            .or_insert_with(|| Value::Object(Map::new()));
    }
}

/// Where `got` does not hold what `want` holds: fields `got` has and `want`
/// lacks are not compared (as a two-way diff of the expected output with
/// the result); numbers compare by value; `{}` and `[]` are one empty
/// table in Lua.
fn first_difference(want: &Value, got: &Value, at: &str) -> Option<String> {
    match (want, got) {
        (Value::Object(want), Value::Object(got)) => want.iter().find_map(|(key, value)| {
            let path = format!("{at}/{key}");
            match got.get(key) {
                Some(other) => first_difference(value, other, &path),
                None if value.is_null() => None,
                None => Some(path),
            }
        }),
        (Value::Array(want), Value::Array(got)) => {
            if want.len() != got.len() {
                return Some(format!("{at} ({} items, not {})", got.len(), want.len()));
            }
            want.iter()
                .zip(got)
                .enumerate()
                .find_map(|(i, (w, g))| first_difference(w, g, &format!("{at}/{i}")))
        }
        (Value::Number(w), Value::Number(g)) => (w.as_f64() != g.as_f64()).then(|| at.to_string()),
        (w, g) if is_empty(w) && is_empty(g) => None,
        (w, g) => (w != g).then(|| format!("{at} ({g}, not {w})")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn only_what_the_expected_output_holds_is_compared() {
        let want = json!({"spec": {"replicas": 6}, "metadata": {"name": "a"}});
        let got = json!({"spec": {"replicas": 6.0, "paused": false}, "metadata": {"name": "a", "uid": "x"}});
        assert_eq!(first_difference(&want, &got, ""), None);
        let got = json!({"spec": {"replicas": 5}, "metadata": {"name": "a"}});
        assert_eq!(
            first_difference(&want, &got, "").as_deref(),
            Some("/spec/replicas")
        );
    }

    fn deployment(paused: bool) -> Value {
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
               "metadata": {"name": "web", "namespace": "shop"},
               "spec": {"replicas": 2, "paused": paused, "template": {"spec": {"containers": []}}}})
    }

    fn params(pairs: &[(&str, &str)]) -> Map<String, Value> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), json!(v)))
            .collect()
    }

    #[test]
    fn built_in_deployment_actions() {
        let actions = ResourceActions::builtin(LuaLimits::default());
        let offered = actions.discover(&deployment(false)).unwrap();
        let names: Vec<&str> = offered.iter().filter_map(|a| a["name"].as_str()).collect();
        assert_eq!(names, ["pause", "restart", "resume", "scale"]);
        assert_eq!(offered[2]["disabled"], true, "resume: not paused");
        assert_eq!(offered[3]["params"], json!([{"name": "replicas"}]));

        let scaled = actions
            .run(&deployment(false), "scale", &params(&[("replicas", "5")]))
            .unwrap();
        assert_eq!(scaled[0].0, "patch");
        assert_eq!(scaled[0].1["spec"]["replicas"], 5.0);
        let error = actions
            .run(&deployment(false), "scale", &params(&[("replicas", "x")]))
            .unwrap_err();
        assert_eq!(error, "invalid number of replicas: x");

        let restarted = actions
            .run(&deployment(false), "restart", &Map::new())
            .unwrap();
        let stamp = &restarted[0].1["spec"]["template"]["metadata"]["annotations"]["kubectl.kubernetes.io/restartedAt"];
        assert!(
            stamp
                .as_str()
                .is_some_and(|t| t.ends_with('Z') && t.len() == 20),
            "{stamp}"
        );

        let resumed = actions
            .run(&deployment(true), "resume", &Map::new())
            .unwrap();
        assert!(resumed[0].1["spec"].get("paused").is_none());
        let error = actions
            .run(&deployment(false), "resume", &Map::new())
            .unwrap_err();
        assert!(error.contains("disabled"), "{error}");
        let error = actions
            .run(&deployment(false), "explode", &Map::new())
            .unwrap_err();
        assert!(
            error.contains("offered: pause, restart, resume, scale"),
            "{error}"
        );
    }

    #[test]
    fn a_cron_job_runs_now_as_a_job_it_owns() {
        let cron = json!({"apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": {"name": "report", "namespace": "ops", "uid": "u-1"},
            "spec": {"schedule": "0 * * * *", "jobTemplate": {"spec": {"template": {"spec": {"restartPolicy": "Never"}}}}}});
        let actions = ResourceActions::builtin(LuaLimits::default());
        let impacted = actions.run(&cron, "create-job", &Map::new()).unwrap();
        let (operation, job) = &impacted[0];
        assert_eq!(operation, "create");
        assert_eq!(job["kind"], "Job");
        assert!(
            job["metadata"]["name"]
                .as_str()
                .unwrap()
                .starts_with("report-manual-")
        );
        assert_eq!(job["metadata"]["ownerReferences"][0]["uid"], "u-1");
        assert_eq!(
            job["metadata"]["annotations"]["cronjob.kubernetes.io/instantiate"],
            "manual"
        );
        let suspended = actions.run(&cron, "suspend", &Map::new()).unwrap();
        assert_eq!(suspended[0].1["spec"]["suspend"], true);
    }

    #[test]
    fn argocd_cm_replaces_a_kinds_actions() {
        let data = params(&[(
            "resource.customizations.actions.apps_Deployment",
            "discovery.lua: |\n  return {wake = {}}\ndefinitions:\n- name: wake\n  action.lua: |\n    obj.metadata.labels = {awake = 'yes'}\n    return obj\n",
        )]);
        let actions = ResourceActions::with_argocd_cm(&data, LuaLimits::default()).unwrap();
        let names: Vec<Value> = actions
            .discover(&deployment(false))
            .unwrap()
            .into_iter()
            .map(|a| a["name"].clone())
            .collect();
        assert_eq!(names, [json!("wake")]);
        let woken = actions
            .run(&deployment(false), "wake", &Map::new())
            .unwrap();
        assert_eq!(woken[0].1["metadata"]["labels"]["awake"], "yes");
        let broken = params(&[(
            "resource.customizations.actions.apps_Deployment",
            "discovery.lua: 'return {'\n",
        )]);
        let error = ResourceActions::with_argocd_cm(&broken, LuaLimits::default())
            .err()
            .unwrap()
            .to_string();
        assert!(
            error.contains("resource.customizations.actions.apps_Deployment"),
            "{error}"
        );
    }

    #[test]
    fn empty_tables_keep_the_inputs_kind() {
        let mut result = json!({"spec": {"ports": {}, "selector": {}}});
        keep_empty_kinds(&mut result, &json!({"spec": {"ports": [], "selector": {}}}));
        assert_eq!(result, json!({"spec": {"ports": [], "selector": {}}}));
    }
}
