//! OPA Gatekeeper: ConstraintTemplates and their Constraints, evaluated in
//! process (Rego by the `regorus` interpreter), with no webhook.
//!
//! A template's Rego runs as Gatekeeper runs it: Rego v0 unless the source
//! says `version: "v1"`, builtin errors are undefined (as in OPA), `input`
//! is `{review, parameters}`, `data.inventory` holds the objects the
//! template asks to be synced (its `metadata.gatekeeper.sh/requires-sync-data`
//! annotation, and the `Config`'s `syncOnly`), `data.lib.*` are its libs.
//! Each element of the `violation` set with a `msg` is one violation; an
//! evaluation error is one violation whose message is the error.
//! Evaluation is bounded in time ([`EVALUATION_LIMIT`]); `http.send` does not
//! exist and `external_data` answers with a system error (no provider is
//! ever called).

pub mod matching;
mod negation;
pub mod review;

use std::num::NonZeroU32;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use gitplane_cel::Env;
use gitplane_object::{Object, Value, json};
use regorus::utils::limits::ExecutionTimerConfig;

use crate::request::{Operation, Request, UserInfo};
use crate::result::{Engine, Mode, RuleResult, Verdict};
use crate::shared::Shared;
use crate::vap::{CelOutcome, CelValidator};
use matching::Match;

/// The API group of templates.
pub const TEMPLATES_GROUP: &str = "templates.gatekeeper.sh";
/// The API group of constraints.
pub const CONSTRAINTS_GROUP: &str = "constraints.gatekeeper.sh";
/// The one target Gatekeeper evaluates.
const ADMISSION_TARGET: &str = "admission.k8s.gatekeeper.sh";
/// The annotation naming the kinds a template reads from `data.inventory`.
const REQUIRES_SYNC_DATA: &str = "metadata.gatekeeper.sh/requires-sync-data";
/// The longest one evaluation of one template may run.
pub const EVALUATION_LIMIT: Duration = Duration::from_secs(2);
/// The most elements `numbers.range` may make: the time limit is checked
/// between steps, so one builtin call must not allocate without bound.
const RANGE_LIMIT: i64 = 100_000;
/// The widest `sprintf` field a template may write.
const WIDTH_LIMIT: usize = 4;

/// A kind `data.inventory` holds: `(apiVersion, kind)`.
pub type SyncedKind = (String, String);

/// Which source of a template with both runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The `K8sNativeValidation` (CEL) source when there is one, as
    /// Gatekeeper (and gator's default `--enable-k8s-native-validation`) does.
    PreferCel,
    /// The Rego source when there is one.
    Rego,
}

/// A compiled ConstraintTemplate.
pub struct Template {
    /// `metadata.name` (the kind in lower case).
    pub name: String,
    /// The kind of its constraints (`K8sRequiredLabels`).
    pub kind: String,
    /// The operations the template applies to (empty: all).
    operations: Vec<String>,
    /// Kinds the template reads from `data.inventory`.
    pub synced: Vec<SyncedKind>,
    /// The Rego source, compiled.
    rego: Option<Rego>,
    /// The `K8sNativeValidation` source, compiled.
    cel: Option<CelValidator>,
    /// The schema of its constraints' `spec.parameters`, when given.
    parameters_schema: Option<Value>,
}

/// A template's Rego, ready to run.
struct Rego {
    /// `data.<package>.violation`.
    rule: String,
    /// Whether it reads `data.inventory` at all.
    reads_inventory: bool,
    /// The prepared interpreter; cloned for each evaluation.
    engine: Mutex<regorus::Engine>,
}

impl std::fmt::Debug for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Template")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("rego", &self.rego.as_ref().map(|r| &r.rule))
            .field("cel", &self.cel.is_some())
            .finish_non_exhaustive()
    }
}

/// Gatekeeper's CEL variables before a template's own: `params` (the
/// constraint's parameters) and `anyObject` (the old object of a deletion).
const CEL_PRELUDE: [(&str, &str); 2] = [
    (
        "params",
        "!has(params.spec) ? null : !has(params.spec.parameters) ? null : params.spec.parameters",
    ),
    (
        "anyObject",
        "has(request.operation) && request.operation == \"DELETE\" && object == null ? oldObject : object",
    ),
];

/// The process's CEL environment for templates.
fn cel_env() -> &'static Env {
    static ENV: OnceLock<Env> = OnceLock::new();
    ENV.get_or_init(Env::default)
}

/// The target's `K8sNativeValidation` source compiled as a VAP's CEL.
fn cel_source(target: &Value) -> Result<Option<CelValidator>, String> {
    let code = target["code"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    let Some(entry) = code.iter().find(|c| c["engine"] == "K8sNativeValidation") else {
        return Ok(None);
    };
    let source = &entry["source"];
    let mut variables: Vec<Value> = CEL_PRELUDE
        .iter()
        .map(|(name, expression)| json!({"name": name, "expression": expression}))
        .collect();
    variables.extend(source["variables"].as_array().cloned().unwrap_or_default());
    // Gatekeeper's field is singular.
    let conditions = match &source["matchCondition"] {
        Value::Null => source["matchConditions"].clone(),
        conditions => conditions.clone(),
    };
    let spec = json!({
        "variables": variables,
        "validations": source["validations"],
        "matchConditions": conditions,
        "failurePolicy": source["failurePolicy"],
    });
    CelValidator::parse(cel_env(), &spec, "validations")
        .map(Some)
        .map_err(|e| format!("K8sNativeValidation: {e}"))
}

/// Analyses the policies once, here (evaluating a trivial query prepares
/// the interpreter without running any rule): the clones made for each
/// evaluation start prepared instead of analysing every module again.
fn prepare(engine: &mut regorus::Engine) {
    let _ = engine.eval_query("true".into(), false);
}

/// Compiles a Rego source into a prepared interpreter.
fn compile_rego(source: &RegoSource) -> Result<Rego, String> {
    check_format_widths(&source.rego)?;
    for lib in &source.libs {
        check_format_widths(lib)?;
    }
    let mut engine = new_engine(source.v1);
    add_extensions(&mut engine)?;
    let rego = end_expressions_before_parentheses(&source.rego);
    let rego = if source.v1 {
        rego
    } else {
        split_multiple_bodies(&rego)
    };
    let rego = negation::hoist_negated_call_arguments(&rego);
    let package = engine
        .add_policy("template.rego".into(), rego)
        .map_err(|e| format!("rego: {e}"))?;
    for (i, lib) in source.libs.iter().enumerate() {
        let lib_package = engine
            .add_policy(
                format!("lib_{i}.rego"),
                negation::hoist_negated_call_arguments(lib),
            )
            .map_err(|e| format!("libs[{i}]: {e}"))?;
        let name = lib_package.trim_start_matches("data.");
        if !name.starts_with("lib.") {
            return Err(format!(
                "libs[{i}]: package {name:?} must start with \"lib.\""
            ));
        }
    }
    if !engine
        .has_declared_rule_rooted_at("template.rego", "violation")
        .map_err(|e| e.to_string())?
    {
        return Err("missing required rules: [violation]".into());
    }
    let package = package.trim_start_matches("data.");
    let rule = format!("data.{package}.violation");
    // Gatekeeper's data always holds an inventory, empty unless synced.
    engine
        .add_data(regorus::Value::from(json!({"inventory": {}})))
        .map_err(|e| e.to_string())?;
    prepare(&mut engine);
    Ok(Rego {
        rule,
        reads_inventory: source.rego.contains("inventory")
            || source.libs.iter().any(|l| l.contains("inventory")),
        engine: Mutex::new(engine),
    })
}

/// The Rego source of a target: the legacy `rego`/`libs` fields win over a
/// `code` entry with `engine: Rego`.
struct RegoSource {
    rego: String,
    libs: Vec<String>,
    v1: bool,
}

fn rego_source(target: &Value) -> Result<Option<RegoSource>, String> {
    let libs = |value: &Value| -> Result<Vec<String>, String> {
        match value {
            Value::Null => Ok(Vec::new()),
            Value::Array(items) => items
                .iter()
                .map(|l| {
                    l.as_str()
                        .map(str::to_string)
                        .ok_or_else(|| "libs must be strings".to_string())
                })
                .collect(),
            _ => Err("libs must be a list of strings".into()),
        }
    };
    if let Some(rego) = target["rego"].as_str().filter(|r| !r.trim().is_empty()) {
        return Ok(Some(RegoSource {
            rego: rego.to_string(),
            libs: libs(&target["libs"])?,
            v1: false,
        }));
    }
    let code = target["code"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default();
    if let Some(entry) = code.iter().find(|c| c["engine"] == "Rego") {
        let source = &entry["source"];
        let rego = source["rego"]
            .as_str()
            .ok_or("code[engine=Rego].source.rego is required")?;
        return Ok(Some(RegoSource {
            rego: rego.to_string(),
            libs: libs(&source["libs"])?,
            v1: source["version"] == "v1",
        }));
    }
    Ok(None)
}

/// The kinds named by `requires-sync-data`: a JSON list of alternatives,
/// each a list of `{groups, versions, kinds}`.
fn requires_sync_data(object: &Object) -> Result<Vec<SyncedKind>, String> {
    let Some(text) = object.annotation(REQUIRES_SYNC_DATA) else {
        return Ok(Vec::new());
    };
    // The library writes the list as a JSON string spanning lines (raw
    // newlines inside quotes), which Gatekeeper never parses strictly.
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let parse = |text: &str| {
        serde_json::from_str::<Value>(text)
            .map_err(|e| format!("annotation {REQUIRES_SYNC_DATA}: {e}"))
    };
    // It is also often wrapped in quotes that do not make a JSON string.
    let trimmed = flat.trim();
    let unquoted = trimmed
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .unwrap_or(trimmed);
    let value = parse(unquoted)?;
    let mut kinds = Vec::new();
    for alternative in value.as_array().map(Vec::as_slice).unwrap_or_default() {
        for requirement in alternative
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            kinds.extend(group_version_kinds(requirement));
        }
    }
    kinds.sort();
    kinds.dedup();
    Ok(kinds)
}

/// `group/version`, or `version` for the core group.
pub fn api_version(group: &str, version: &str) -> String {
    if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    }
}

/// Every `(apiVersion, kind)` of a `{groups, versions, kinds}` entry.
pub fn group_version_kinds(entry: &Value) -> Vec<SyncedKind> {
    let list = |field: &str| crate::strings(&entry[field]);
    let mut out = Vec::new();
    for group in list("groups") {
        for version in list("versions") {
            for kind in list("kinds") {
                out.push((api_version(&group, &version), kind));
            }
        }
    }
    out
}

/// Rego v0's shorthand for a rule with several bodies, `head { a } { b }`,
/// spelled out as one rule per body (`head { a } head { b }`, on the same
/// lines), which regorus reads. The head is the nearest line above at the
/// same indentation that opens a body.
fn split_multiple_bodies(rego: &str) -> String {
    let lines: Vec<&str> = rego.lines().collect();
    let mut out = Vec::with_capacity(lines.len());
    for (i, line) in lines.iter().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let head = (line.trim() == "} {")
            .then(|| {
                lines[..i].iter().rev().find_map(|above| {
                    let trimmed = above.trim_start();
                    (above.len() - trimmed.len() == indent
                        && !trimmed.starts_with('}')
                        && !trimmed.starts_with('#'))
                    .then(|| trimmed.trim_end().strip_suffix('{'))
                    .flatten()
                })
            })
            .flatten();
        match head {
            Some(head) => out.push(format!("{}}} {}{{", &line[..indent], head)),
            None => out.push((*line).to_string()),
        }
    }
    out.join("\n")
}

/// Ends with `;` an expression whose next line starts with `(`: in OPA a
/// newline ends it, but regorus reads `a\n(b)` as the call `a(b)`.
fn end_expressions_before_parentheses(rego: &str) -> String {
    let lines: Vec<&str> = rego.lines().collect();
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    for (i, line) in lines.iter().enumerate().skip(1) {
        if !line.trim_start().starts_with('(') {
            continue;
        }
        let Some(previous) = (0..i).rev().find(|&j| !lines[j].trim().is_empty()) else {
            continue;
        };
        let text = lines[previous].trim_end();
        let ends_expression = text
            .chars()
            .last()
            .is_some_and(|c| c.is_alphanumeric() || matches!(c, '_' | ')' | ']' | '"' | '}'));
        if ends_expression && !text.contains('#') && !text.ends_with('{') {
            out[previous] = format!("{text};");
        }
    }
    out.join("\n")
}

/// A fresh interpreter with Gatekeeper's settings.
fn new_engine(v1: bool) -> regorus::Engine {
    let mut engine = regorus::Engine::new();
    engine.set_rego_v0(!v1);
    engine.set_strict_builtin_errors(false);
    engine.set_execution_timer_config(ExecutionTimerConfig {
        limit: EVALUATION_LIMIT,
        check_interval: NonZeroU32::MIN.saturating_add(9),
    });
    engine
}

/// `numbers.range(a, b)` (and `_step`), refusing ranges longer than
/// [`RANGE_LIMIT`].
fn bounded_range(args: &[regorus::Value], step: bool) -> anyhow::Result<regorus::Value> {
    let number = |v: &regorus::Value| {
        serde_json::to_value(v)
            .ok()
            .and_then(|v| v.as_i64())
            .ok_or_else(|| anyhow::anyhow!("numbers.range: operands must be integers"))
    };
    let (from, to) = (number(&args[0])?, number(&args[1])?);
    let step = if step { number(&args[2])? } else { 1 };
    if step <= 0 {
        anyhow::bail!("numbers.range_step: step must be a positive integer");
    }
    if from.abs_diff(to) / step.unsigned_abs() >= RANGE_LIMIT as u64 {
        anyhow::bail!("numbers.range: more than {RANGE_LIMIT} elements");
    }
    let values: Vec<i64> = if from <= to {
        (from..=to).step_by(step as usize).collect()
    } else {
        (to..=from).rev().step_by(step as usize).collect()
    };
    Ok(regorus::Value::from(json!(values)))
}

/// Refuses `sprintf` fields wider than [`WIDTH_LIMIT`] digits in the
/// source: one call could otherwise allocate gigabytes.
fn check_format_widths(source: &str) -> Result<(), String> {
    let pattern = format!("%[-+# 0]*[0-9.]{{{},}}", WIDTH_LIMIT + 1);
    let wide = regex::Regex::new(&pattern).map_err(|e| e.to_string())?;
    match wide.find(source) {
        Some(m) => Err(format!(
            "format field {:?} is wider than gitplane allows ({WIDTH_LIMIT} digits)",
            m.as_str()
        )),
        None => Ok(()),
    }
}

/// The verbs of a Go format string, in order (`%%` is not one).
fn format_verbs(format: &str) -> Vec<(usize, usize, char)> {
    let mut verbs = Vec::new();
    let mut chars = format.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c != '%' {
            continue;
        }
        while let Some(&(i, next)) = chars.peek() {
            chars.next();
            if next == '%' && i == start + 1 {
                break;
            }
            if next.is_ascii_alphabetic() {
                verbs.push((start, i + 1, next));
                break;
            }
        }
    }
    verbs
}

/// `sprintf` as Go's `fmt.Sprintf` (and so OPA) treats missing operands:
/// each verb without one prints `%!v(MISSING)` instead of failing the
/// call. The formatting itself is regorus's builtin, run by `formatter`.
fn go_sprintf(
    formatter: &mut regorus::Engine,
    args: &[regorus::Value],
) -> anyhow::Result<regorus::Value> {
    let format = args[0].as_string()?.to_string();
    let operands = args[1].as_array()?.len();
    let mut rewritten = String::with_capacity(format.len());
    let mut last = 0;
    for (n, (start, end, verb)) in format_verbs(&format).into_iter().enumerate() {
        if n >= operands {
            rewritten.push_str(&format[last..start]);
            rewritten.push_str(&format!("%%!{verb}(MISSING)"));
            last = end;
        }
    }
    rewritten.push_str(&format[last..]);
    let mut engine = formatter.clone();
    engine.set_input(regorus::Value::from(vec![
        regorus::Value::from(rewritten),
        args[1].clone(),
    ]));
    engine.eval_rule("data.gitplane.sprintf".into())
}

/// An interpreter whose only rule formats `input[0]` with `input[1]`.
fn formatter() -> Result<regorus::Engine, String> {
    let mut engine = regorus::Engine::new();
    engine.set_strict_builtin_errors(true);
    engine
        .add_policy(
            "sprintf.rego".into(),
            "package gitplane\nsprintf := sprintf(input[0], input[1])\n".into(),
        )
        .map_err(|e| e.to_string())?;
    prepare(&mut engine);
    Ok(engine)
}

/// Gatekeeper's extra builtins: `external_data` (never calls out: a system
/// error) and the deprecated `re_match`, which older templates still call;
/// and `numbers.range` with a bound.
fn add_extensions(engine: &mut regorus::Engine) -> Result<(), String> {
    let mut formatter = formatter()?;
    engine
        .add_extension(
            "sprintf".into(),
            2,
            Box::new(move |args: Vec<regorus::Value>| go_sprintf(&mut formatter, &args)),
        )
        .map_err(|e| e.to_string())?;
    engine
        .add_extension(
            "numbers.range".into(),
            2,
            Box::new(|args: Vec<regorus::Value>| bounded_range(&args, false)),
        )
        .map_err(|e| e.to_string())?;
    engine
        .add_extension(
            "numbers.range_step".into(),
            3,
            Box::new(|args: Vec<regorus::Value>| bounded_range(&args, true)),
        )
        .map_err(|e| e.to_string())?;
    engine
        .add_extension(
            "external_data".into(),
            1,
            Box::new(|_| {
                Ok(regorus::Value::from(json!({
                    "responses": [], "errors": [], "status_code": 0,
                    "system_error": "external data providers are not called by gitplane"
                })))
            }),
        )
        .map_err(|e| e.to_string())?;
    engine
        .add_extension(
            "re_match".into(),
            2,
            Box::new(|args: Vec<regorus::Value>| {
                let pattern = args[0].as_string()?;
                let text = args[1].as_string()?;
                let regex = regex::Regex::new(pattern)?;
                Ok(regorus::Value::from(regex.is_match(text)))
            }),
        )
        .map_err(|e| e.to_string())
}

impl Template {
    /// Compiles a ConstraintTemplate, with Gatekeeper's acceptance rules.
    pub fn parse(object: &Object) -> Result<Template, String> {
        let spec = spec_of(object);
        let kind = spec["crd"]["spec"]["names"]["kind"]
            .as_str()
            .filter(|k| !k.is_empty())
            .ok_or("spec.crd.spec.names.kind is required")?;
        if object.name() != kind.to_lowercase() {
            return Err(format!(
                "metadata.name {:?} must be the lower-case kind {:?}",
                object.name(),
                kind.to_lowercase()
            ));
        }
        let targets = spec["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        let [target] = targets else {
            return Err(format!(
                "spec.targets must hold exactly one target, not {}",
                targets.len()
            ));
        };
        if target["target"] != ADMISSION_TARGET {
            return Err(format!(
                "spec.targets[0].target must be {ADMISSION_TARGET:?}, not {}",
                target["target"]
            ));
        }
        let rego = rego_source(target)?.map(|s| compile_rego(&s)).transpose()?;
        let cel = cel_source(target)?;
        if rego.is_none() && cel.is_none() {
            return Err(
                "spec.targets[0] has no source (rego, or code with engine Rego or \
                        K8sNativeValidation)"
                    .into(),
            );
        }
        Ok(Template {
            name: object.name().to_string(),
            kind: kind.to_string(),
            operations: crate::strings(&target["operations"]),
            synced: requires_sync_data(object)?,
            rego,
            cel,
            parameters_schema: spec["crd"]["spec"]["validation"]["openAPIV3Schema"]
                .as_object()
                .map(|schema| Value::Object(schema.clone())),
        })
    }

    /// Checks a constraint's parameters against the template's schema, as
    /// the API server does for the constraint CRD Gatekeeper makes.
    pub fn check_parameters(&self, constraint: &Constraint) -> Result<(), String> {
        let Some(schema) = &self.parameters_schema else {
            return Ok(());
        };
        let mut problems = Vec::new();
        gitplane_graph::openapi::validate(
            &constraint.parameters,
            schema,
            "spec.parameters",
            &mut problems,
        );
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    /// Whether the template applies to this operation (`""`: a plain object).
    pub fn applies_to(&self, operation: &str) -> bool {
        operation.is_empty()
            || self.operations.is_empty()
            || self.operations.iter().any(|o| o == "*" || o == operation)
    }

    /// Whether the source that runs reads `data.inventory` (CEL never does).
    pub fn reads_inventory(&self, source: Source) -> bool {
        match self.chosen(source) {
            Chosen::Rego(rego) => rego.reads_inventory,
            Chosen::Cel(_) | Chosen::None => false,
        }
    }

    /// The source that runs: the preferred one if the template has it.
    fn chosen(&self, source: Source) -> Chosen<'_> {
        match (&self.rego, &self.cel) {
            (Some(rego), None) => Chosen::Rego(rego),
            (None, Some(cel)) => Chosen::Cel(cel),
            (Some(_), Some(cel)) if source == Source::PreferCel => Chosen::Cel(cel),
            (Some(rego), Some(_)) => Chosen::Rego(rego),
            (None, None) => Chosen::None,
        }
    }

    /// The messages of the violations of one review, or the evaluation
    /// error. A template with one source runs it whatever `source` asks.
    pub fn violations(
        &self,
        review: &Value,
        parameters: &Value,
        inventory: Option<&Value>,
        source: Source,
    ) -> Result<Vec<String>, String> {
        match self.chosen(source) {
            Chosen::Rego(rego) => rego.violations(review, parameters, inventory),
            Chosen::Cel(cel) => cel_violations(cel, review, parameters),
            Chosen::None => Err("the template has no source".into()),
        }
    }
}

enum Chosen<'a> {
    Rego(&'a Rego),
    Cel(&'a CelValidator),
    None,
}

/// The messages of the failed validations of a CEL source, the review read
/// as the admission request it stands for (a plain object as a creation).
fn cel_violations(
    cel: &CelValidator,
    review: &Value,
    parameters: &Value,
) -> Result<Vec<String>, String> {
    let user = UserInfo {
        username: review["userInfo"]["username"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        groups: crate::strings(&review["userInfo"]["groups"]),
    };
    let present = |field: &str| review[field].is_object().then_some(&review[field]);
    let request = Request {
        object: &review["object"],
        old_object: present("oldObject"),
        operation: review["operation"]
            .as_str()
            .and_then(Operation::parse)
            .unwrap_or(Operation::Create),
        namespace_object: present("namespaceObject"),
        user: &user,
        resource: review["resource"]["resource"]
            .as_str()
            .filter(|r| !r.is_empty()),
    };
    let constraint = json!({"spec": {"parameters": parameters}});
    match cel.run(&Shared::new(request), Some(&constraint))? {
        CelOutcome::Failed { messages, .. } => Ok(messages),
        CelOutcome::Passed { .. } | CelOutcome::NotMatched => Ok(Vec::new()),
    }
}

impl Rego {
    /// The messages of the `violation` set for one review.
    fn violations(
        &self,
        review: &Value,
        parameters: &Value,
        inventory: Option<&Value>,
    ) -> Result<Vec<String>, String> {
        let mut engine = self
            .engine
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        engine.set_input(regorus::Value::from(json!({
            "review": review,
            "parameters": parameters,
        })));
        // New data makes the interpreter analyse the modules again: only
        // for a template that reads the inventory.
        if let Some(inventory) = inventory {
            engine
                .add_data(regorus::Value::from(json!({"inventory": inventory})))
                .map_err(|e| e.to_string())?;
        }
        let result = engine
            .eval_rule(self.rule.clone())
            .map_err(|e| e.to_string())?;
        let mut messages = Vec::new();
        if let Ok(set) = result.as_set() {
            for element in set.iter() {
                if let Ok(message) = element["msg"].as_string() {
                    messages.push(message.to_string());
                } else if !matches!(element["msg"], regorus::Value::Undefined) {
                    messages.push(element["msg"].to_json_str().unwrap_or_default());
                }
            }
        }
        Ok(messages)
    }
}

/// One constraint's audit, as Gatekeeper's audit writes it in the
/// constraint's `status`.
#[derive(Debug, Clone, PartialEq)]
pub struct Audit {
    /// The constraint's kind.
    pub kind: String,
    /// The constraint's name.
    pub name: String,
    /// Its enforcement action, as Gatekeeper spells it (`deny`, `warn`, `dryrun`).
    pub action: &'static str,
    /// Every violation found.
    pub total: usize,
    /// The first violations (Gatekeeper keeps 20), each `{kind, name,
    /// namespace, group, version, message, enforcementAction}`.
    pub violations: Vec<Value>,
}

/// What a violated constraint does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Refuse (`deny`).
    Deny,
    /// Warn (`warn`).
    Warn,
    /// Record only (`dryrun`).
    DryRun,
}

impl Action {
    fn parse(text: &str) -> Result<Action, String> {
        match text {
            "deny" | "" => Ok(Action::Deny),
            "warn" => Ok(Action::Warn),
            "dryrun" => Ok(Action::DryRun),
            other => Err(format!(
                "enforcementAction {other:?} is not deny, warn, dryrun or scoped"
            )),
        }
    }

    /// `deny`, `warn` or `dryrun`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Deny => "deny",
            Action::Warn => "warn",
            Action::DryRun => "dryrun",
        }
    }

    /// The result model's mode.
    pub fn mode(self) -> Mode {
        match self {
            Action::Deny => Mode::Enforce,
            Action::Warn => Mode::Warn,
            Action::DryRun => Mode::Audit,
        }
    }
}

/// The enforcement points gitplane stands for: its admission path, its
/// offline checks (gator's) and any.
const POINTS: [&str; 3] = ["validation.gatekeeper.sh", "gator.gatekeeper.sh", "*"];

/// A Constraint.
#[derive(Debug, Clone)]
pub struct Constraint {
    /// The template's kind.
    pub kind: String,
    /// `metadata.name`.
    pub name: String,
    /// `spec.match`.
    pub matcher: Match,
    /// `spec.parameters` (`{}` when absent).
    pub parameters: Value,
    /// `spec.enforcementAction`; for `scoped`, the strongest action whose
    /// enforcement points include admission or gator (none: dry run).
    pub action: Action,
    /// `file:line` it was read from, when known.
    pub origin: Option<String>,
}

impl Constraint {
    /// Reads a Constraint.
    pub fn parse(object: &Object) -> Result<Constraint, String> {
        let spec = spec_of(object);
        let action = match spec["enforcementAction"].as_str().unwrap_or("deny") {
            "scoped" => scoped_action(&spec["scopedEnforcementActions"])?,
            other => Action::parse(other)?,
        };
        let parameters = match &spec["parameters"] {
            Value::Null => json!({}),
            p => p.clone(),
        };
        Ok(Constraint {
            kind: object.kind().to_string(),
            name: object.name().to_string(),
            matcher: Match::parse(&spec["match"])?,
            parameters,
            action,
            origin: crate::origin(object),
        })
    }

    /// One result per violation, or one pass.
    pub fn results(&self, violations: Result<Vec<String>, String>) -> Vec<RuleResult> {
        let mode = self.action.mode();
        let result = |verdict, message| {
            RuleResult::new(
                Engine::Gatekeeper,
                &self.name,
                &self.kind,
                verdict,
                mode,
                message,
            )
        };
        match violations {
            Err(error) => vec![result(Verdict::Error, error)],
            Ok(messages) if messages.is_empty() => vec![result(Verdict::Pass, String::new())],
            Ok(messages) => {
                let verdict = match self.action {
                    Action::Warn => Verdict::Warn,
                    _ => Verdict::Fail,
                };
                messages.into_iter().map(|m| result(verdict, m)).collect()
            }
        }
    }
}

/// `spec` of an object (null when absent).
fn spec_of(object: &Object) -> &Value {
    static NULL: Value = Value::Null;
    object.get(&["spec"]).unwrap_or(&NULL)
}

fn scoped_action(scoped: &Value) -> Result<Action, String> {
    let mut strongest: Option<Action> = None;
    for entry in scoped.as_array().map(Vec::as_slice).unwrap_or_default() {
        let action = Action::parse(entry["action"].as_str().unwrap_or_default())?;
        let points = entry["enforcementPoints"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default();
        if points
            .iter()
            .any(|p| POINTS.contains(&p["name"].as_str().unwrap_or_default()))
        {
            strongest = Some(match (strongest, action) {
                (Some(Action::Deny), _) | (_, Action::Deny) => Action::Deny,
                (Some(Action::Warn), _) | (_, Action::Warn) => Action::Warn,
                _ => Action::DryRun,
            });
        }
    }
    Ok(strongest.unwrap_or(Action::DryRun))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitplane_object::{LoadOptions, Syntax, load_objects};

    fn object(yaml: &str) -> Object {
        load_objects(
            yaml.as_bytes(),
            "t.yaml",
            Syntax::Yaml,
            &LoadOptions::default(),
        )
        .unwrap()
        .remove(0)
    }

    const TEMPLATE: &str = r#"
apiVersion: templates.gatekeeper.sh/v1
kind: ConstraintTemplate
metadata:
  name: teamlabel
spec:
  crd:
    spec:
      names:
        kind: TeamLabel
  targets:
  - target: admission.k8s.gatekeeper.sh
    libs:
    - |
      package lib.labels
      has(obj, key) { obj.metadata.labels[key] }
    rego: |
      package teamlabel
      import data.lib.labels.has
      violation[{"msg": msg}] {
        key := input.parameters.keys[_]
        not has(input.review.object, key)
        msg := sprintf("%v %v lacks label %v", [input.review.kind.kind, input.review.object.metadata.name, key])
      }
"#;

    /// The Rego violations of a template's YAML on a Pod `web` without labels.
    fn on_unlabelled_pod(template: &str, parameters: &Value) -> Result<Vec<String>, String> {
        let template = Template::parse(&object(template)).unwrap();
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"}});
        template.violations(&review::of_object(&pod), parameters, None, Source::Rego)
    }

    #[test]
    fn a_v0_template_with_a_lib_reports_each_violation() {
        let template = Template::parse(&object(TEMPLATE)).unwrap();
        assert_eq!(template.kind, "TeamLabel");
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "labels": {"team": "a"}}});
        let review = review::of_object(&pod);
        let found = template
            .violations(
                &review,
                &json!({"keys": ["team", "tier", "owner"]}),
                None,
                Source::Rego,
            )
            .unwrap();
        assert_eq!(found.len(), 2);
        assert!(
            found.contains(&"Pod web lacks label tier".to_string()),
            "{found:?}"
        );
    }

    #[test]
    fn templates_are_checked_as_gatekeeper_accepts_them() {
        let renamed = TEMPLATE.replace("name: teamlabel", "name: other");
        assert!(
            Template::parse(&object(&renamed))
                .unwrap_err()
                .contains("lower-case kind")
        );
        let no_violation = TEMPLATE.replace("violation[", "deny[");
        assert_eq!(
            Template::parse(&object(&no_violation)).unwrap_err(),
            "missing required rules: [violation]"
        );
        let bad_lib = TEMPLATE.replace("package lib.labels", "package labels");
        assert!(
            Template::parse(&object(&bad_lib))
                .unwrap_err()
                .contains("must start with")
        );
    }

    #[test]
    fn a_v0_rule_with_several_bodies_is_one_rule_per_body() {
        let rego =
            "package p\n\nkind_of(obj) = k {\n  obj.a\n  k := 1\n} {\n  obj.b\n  k := 2\n}\n";
        let split = split_multiple_bodies(rego);
        assert_eq!(
            split,
            "package p\n\nkind_of(obj) = k {\n  obj.a\n  k := 1\n} kind_of(obj) = k {\n  obj.b\n  k := 2\n}"
        );
        let template = TEMPLATE.replace(
            "violation[{\"msg\": msg}] {",
            "name(o) = n {\n        n := o.metadata.name\n      } {\n        not o.metadata.name\n        n := \"unnamed\"\n      }\n      violation[{\"msg\": msg}] {",
        );
        let found = on_unlabelled_pod(&template, &json!({"keys": ["a"]}));
        assert_eq!(found.unwrap().len(), 1);
    }

    /// As OPA: an undefined argument of a negated call makes the body fail
    /// (regorus alone would negate the undefined call and report).
    #[test]
    fn an_undefined_argument_of_a_negated_call_fails_the_body() {
        let template = TEMPLATE.replace(
            "not has(input.review.object, key)",
            "not has(input.review.object, input.parameters.missing)",
        );
        assert_eq!(
            on_unlabelled_pod(&template, &json!({"keys": ["a"]})).unwrap(),
            Vec::<String>::new()
        );
        let defined = TEMPLATE.replace(
            "not has(input.review.object, key)",
            "not has(input.review.object, input.parameters.keys[0])",
        );
        assert_eq!(
            on_unlabelled_pod(&defined, &json!({"keys": ["a"]})).unwrap(),
            ["Pod web lacks label a"]
        );
    }

    #[test]
    fn a_line_starting_with_a_parenthesis_is_a_new_expression() {
        let rego = "p {\n  input.a\n\n  (input.b - 1) > 0\n  x := f(\n    (1)\n  )\n}";
        assert_eq!(
            end_expressions_before_parentheses(rego),
            "p {\n  input.a;\n\n  (input.b - 1) > 0\n  x := f(\n    (1)\n  )\n}"
        );
        let template = TEMPLATE.replace(
            "not has(input.review.object, key)",
            "not has(input.review.object, key)\n        (count(key) + 1) > 1",
        );
        let found = on_unlabelled_pod(&template, &json!({"keys": ["a"]}));
        assert_eq!(found.unwrap(), ["Pod web lacks label a"]);
    }

    #[test]
    fn sprintf_prints_missing_operands_as_go_does() {
        assert_eq!(
            format_verbs("a %v, 100%% %-5d %q"),
            [(2, 4, 'v'), (12, 16, 'd'), (17, 19, 'q')]
        );
        let template = TEMPLATE.replace(
            "[input.review.kind.kind, input.review.object.metadata.name, key]",
            "[key]",
        );
        let found = on_unlabelled_pod(&template, &json!({"keys": ["a"]}));
        assert_eq!(found.unwrap(), ["a %!v(MISSING) lacks label %!v(MISSING)"]);
    }

    /// The Rego template with a CEL source beside it that says the same
    /// in other words, so a test can tell which ran.
    fn with_cel(rego: bool) -> String {
        let cel = r#"
    code:
    - engine: K8sNativeValidation
      source:
        variables:
        - name: missing
          expression: variables.params.keys.filter(k, !has(variables.anyObject.metadata.labels) || !(k in variables.anyObject.metadata.labels))
        validations:
        - expression: size(variables.missing) == 0
          messageExpression: "'cel: missing ' + variables.missing.join(', ')"
"#;
        let base = if rego {
            TEMPLATE.to_string()
        } else {
            TEMPLATE[..TEMPLATE.find("    libs:").unwrap()].to_string()
        };
        format!("{}{cel}", base.trim_end())
    }

    #[test]
    fn a_cel_source_runs_before_the_rego_one_unless_asked() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web", "labels": {"team": "a"}}});
        let review = review::of_object(&pod);
        let parameters = json!({"keys": ["team", "tier"]});
        let both = Template::parse(&object(&with_cel(true))).unwrap();
        let cel = both
            .violations(&review, &parameters, None, Source::PreferCel)
            .unwrap();
        assert_eq!(cel, ["cel: missing tier"]);
        let rego = both
            .violations(&review, &parameters, None, Source::Rego)
            .unwrap();
        assert_eq!(rego, ["Pod web lacks label tier"]);
        let only_cel = Template::parse(&object(&with_cel(false))).unwrap();
        assert!(!only_cel.reads_inventory(Source::Rego));
        let found = only_cel
            .violations(&review, &parameters, None, Source::Rego)
            .unwrap();
        assert_eq!(found, ["cel: missing tier"], "the only source runs");
        let deleted = json!({"operation": "DELETE", "object": null, "oldObject": pod});
        let found = only_cel
            .violations(&deleted, &parameters, None, Source::PreferCel)
            .unwrap();
        assert_eq!(
            found,
            ["cel: missing tier"],
            "anyObject is the old object of a deletion"
        );
    }

    #[test]
    fn builtins_that_would_allocate_without_bound_are_refused() {
        let long = TEMPLATE.replace(
            "key := input.parameters.keys[_]",
            "n := numbers.range(1, 100000000)[_]\n        key := sprintf(\"%v\", [n])",
        );
        let found = on_unlabelled_pod(&long, &json!({}));
        assert!(found.unwrap_err().contains("more than 100000 elements"));
        let short = TEMPLATE.replace(
            "key := input.parameters.keys[_]",
            "key := sprintf(\"l%v\", [numbers.range_step(10, 1, 3)[_]])",
        );
        let found = on_unlabelled_pod(&short, &json!({})).unwrap();
        assert_eq!(found.len(), 4, "10, 7, 4, 1: {found:?}");
        let wide = TEMPLATE.replace("%v lacks", "%999999999d lacks");
        assert!(
            Template::parse(&object(&wide))
                .unwrap_err()
                .contains("wider")
        );
    }

    #[test]
    fn a_runaway_evaluation_is_stopped_as_an_error() {
        let endless = TEMPLATE.replace(
            "key := input.parameters.keys[_]",
            "count([1 | x := numbers.range(1, 99999)[_]; y := numbers.range(1, 99999)[_]]) > 0\n        key := \"x\"",
        );
        let found = on_unlabelled_pod(&endless, &json!({}));
        assert!(found.is_err(), "{found:?}");
    }

    #[test]
    fn enforcement_actions_map_to_modes() {
        let constraint = |spec: &str| {
            Constraint::parse(&object(&format!(
                "apiVersion: constraints.gatekeeper.sh/v1beta1\nkind: TeamLabel\nmetadata: {{name: c}}\nspec: {spec}\n"
            )))
            .unwrap()
        };
        assert_eq!(constraint("{}").action, Action::Deny);
        assert_eq!(constraint("{enforcementAction: warn}").action, Action::Warn);
        assert_eq!(
            constraint(
                "{enforcementAction: scoped, scopedEnforcementActions: [{action: warn, enforcementPoints: [{name: audit.gatekeeper.sh}]}, {action: deny, enforcementPoints: [{name: validation.gatekeeper.sh}]}]}"
            )
            .action,
            Action::Deny
        );
        let results = constraint("{enforcementAction: warn}").results(Ok(vec!["m".into()]));
        assert_eq!(results[0].verdict, Verdict::Warn);
        assert!(!results[0].blocks());
        let errors = constraint("{}").results(Err("boom".into()));
        assert!(errors[0].blocks());
    }
}
