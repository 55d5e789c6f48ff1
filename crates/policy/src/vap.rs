//! ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding
//! (`admissionregistration.k8s.io/v1`), evaluated as the API server does:
//! every binding of a policy, every parameter object the binding selects.
//!
//! The CEL part ([`CelValidator`]: matchConditions, variables, validations,
//! auditAnnotations) is shared with Kyverno's `validate.cel` rules.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::Arc;

use gitplane_cel::{Activation, CelError, Env, Program};
use gitplane_object::{LabelSelector, Map, Object, Value};

use crate::request::{Lookup, Request};
use crate::result::{Engine, Mode, RuleResult, Verdict};
use crate::shared::Shared;
use crate::source::strings;

/// `failurePolicy`: what an expression that fails to evaluate does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// The request fails (the default).
    Fail,
    /// The expression is ignored.
    Ignore,
}

/// One `resourceRules` entry.
#[derive(Debug, Clone)]
struct ResourceRule {
    groups: Vec<String>,
    versions: Vec<String>,
    operations: Vec<String>,
    resources: Vec<String>,
    names: Vec<String>,
}

impl ResourceRule {
    fn parse(value: &Value) -> ResourceRule {
        ResourceRule {
            groups: strings(&value["apiGroups"]),
            versions: strings(&value["apiVersions"]),
            operations: strings(&value["operations"]),
            resources: strings(&value["resources"]),
            names: strings(&value["resourceNames"]),
        }
    }

    fn matches(&self, request: &Request) -> bool {
        let (group, version) = request.group_version();
        let any = |list: &[String], value: &str| list.iter().any(|v| v == "*" || v == value);
        let resource = request.resource();
        any(&self.groups, group)
            && any(&self.versions, version)
            && any(&self.operations, request.operation.as_str())
            && self
                .resources
                .iter()
                .any(|r| r == "*" || r == "*/*" || *r == resource)
            && (self.names.is_empty() || self.names.iter().any(|n| n == request.name()))
    }
}

/// `matchConstraints` of a policy, `matchResources` of a binding.
#[derive(Debug, Clone, Default)]
pub struct MatchResources {
    rules: Vec<ResourceRule>,
    exclude: Vec<ResourceRule>,
    namespace_selector: Option<LabelSelector>,
    object_selector: Option<LabelSelector>,
}

impl MatchResources {
    pub(crate) fn parse(value: &Value) -> Result<MatchResources, String> {
        let selector = |key: &str| -> Result<Option<LabelSelector>, String> {
            match value.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(s) => LabelSelector::from_json(s)
                    .map(Some)
                    .map_err(|e| format!("{key}: {e}")),
            }
        };
        let rules = |key: &str| -> Vec<ResourceRule> {
            value[key]
                .as_array()
                .map(|a| a.iter().map(ResourceRule::parse).collect())
                .unwrap_or_default()
        };
        Ok(MatchResources {
            rules: rules("resourceRules"),
            exclude: rules("excludeResourceRules"),
            namespace_selector: selector("namespaceSelector")?,
            object_selector: selector("objectSelector")?,
        })
    }

    /// Whether the request is in scope.
    pub(crate) fn matches(&self, request: &Request) -> bool {
        let namespaced_or_namespace =
            request.namespace().is_some() || request.kind() == "Namespace";
        if let Some(selector) = &self.namespace_selector
            && namespaced_or_namespace
            && !selector.matches(request.namespace_labels())
        {
            return false;
        }
        if let Some(selector) = &self.object_selector
            && !selector.matches(request.labels())
        {
            return false;
        }
        self.rules.iter().any(|r| r.matches(request))
            && !self.exclude.iter().any(|r| r.matches(request))
    }
}

/// One `validations` entry.
#[derive(Debug)]
struct Validation {
    program: Arc<Program>,
    message: Option<String>,
    message_expression: Option<Arc<Program>>,
    reason: String,
}

/// What a policy's CEL evaluates before its own work: `matchConditions`,
/// then `variables`. Validating and mutating policies share it.
#[derive(Debug)]
pub struct CelPrelude {
    match_conditions: Vec<(String, Arc<Program>)>,
    variables: Vec<(String, Arc<Program>)>,
    /// Whether match conditions read `variables` (Kyverno's CEL policies
    /// evaluate them first; a VAP's conditions see none).
    variables_in_conditions: bool,
    /// What an expression that fails does.
    pub failure_policy: FailurePolicy,
}

/// The request's variables after a [`CelPrelude`], for the policy's own
/// expressions.
pub struct Prepared {
    /// `object`, `oldObject`, `request`, `namespaceObject`, `params` and
    /// `variables`.
    pub activation: Activation,
    /// The variables that failed to evaluate, with why; an expression that
    /// reads one fails too.
    pub broken: Vec<(String, CelError)>,
}

impl Prepared {
    /// The first broken variable `program` reads.
    pub fn broken_variable(&self, program: &Program) -> Option<&(String, CelError)> {
        self.broken.iter().find(|(name, _)| {
            program
                .field_paths()
                .iter()
                .any(|p| p.len() > 1 && p[0] == "variables" && p[1] == *name)
        })
    }
}

impl CelPrelude {
    /// Compiles `matchConditions`, `variables` and reads `failurePolicy`.
    pub fn parse(env: &Env, spec: &Value) -> Result<CelPrelude, String> {
        let failure_policy = match spec["failurePolicy"].as_str() {
            None | Some("Fail") => FailurePolicy::Fail,
            Some("Ignore") => FailurePolicy::Ignore,
            Some(other) => return Err(format!("failurePolicy {other:?}: must be Fail or Ignore")),
        };
        Ok(CelPrelude {
            match_conditions: named_programs(env, spec, "matchConditions", "expression")?,
            variables: named_programs(env, spec, "variables", "expression")?,
            variables_in_conditions: false,
            failure_policy,
        })
    }

    /// As Kyverno's CEL policies: variables are evaluated before the match
    /// conditions, which may read them.
    pub fn with_variables_in_conditions(self) -> CelPrelude {
        CelPrelude {
            variables_in_conditions: true,
            ..self
        }
    }

    /// Evaluates the match conditions, then the variables, on a request
    /// with these parameters: `Ok(None)` when a condition is false, `Err`
    /// when a condition fails to evaluate (whatever the failure policy; the
    /// caller applies it).
    pub fn prepare(
        &self,
        shared: &Shared,
        params: Option<&Value>,
        cost: &Cell<u64>,
    ) -> Result<Option<Prepared>, String> {
        let eval = costed_eval(cost);
        let mut activation = shared.activation().clone();
        activation.set_json("params", params.unwrap_or(&Value::Null));
        let mut broken = Vec::new();
        if self.variables_in_conditions {
            broken = self.evaluate_variables(&mut activation, cost);
        } else {
            activation.set_json("variables", &Value::Object(Map::new()));
        }
        for (name, condition) in &self.match_conditions {
            match eval(condition, &activation) {
                Ok(Value::Bool(true)) => {}
                Ok(Value::Bool(false)) => return Ok(None),
                Ok(other) => {
                    return Err(format!(
                        "matchCondition {name:?} returned {other}, not a bool"
                    ));
                }
                Err(e) => return Err(format!("matchCondition {name:?}: {e}")),
            }
        }
        if !self.variables_in_conditions {
            broken = self.evaluate_variables(&mut activation, cost);
        }
        Ok(Some(Prepared { activation, broken }))
    }

    /// Evaluates the variables in order (each sees those before it) into
    /// the activation's `variables`, keeping their CEL types (a duration
    /// stays a duration); returns those that failed.
    fn evaluate_variables(
        &self,
        activation: &mut Activation,
        cost: &Cell<u64>,
    ) -> Vec<(String, CelError)> {
        let mut variables = Vec::new();
        let mut broken = Vec::new();
        for (name, program) in &self.variables {
            activation.set("variables", gitplane_cel::string_map(variables.clone()));
            let (result, spent) = program.evaluate_costed(activation);
            cost.set(cost.get() + spent);
            match result {
                Ok(value) => variables.push((name.clone(), value)),
                Err(e) => broken.push((name.clone(), e)),
            }
        }
        activation.set("variables", gitplane_cel::string_map(variables));
        broken
    }
}

/// A costed evaluation to JSON that adds what it spent to `cost`.
pub fn costed_eval(cost: &Cell<u64>) -> impl Fn(&Program, &Activation) -> Result<Value, CelError> {
    |program: &Program, activation: &Activation| {
        let (result, spent) = program.evaluate_costed(activation);
        cost.set(cost.get() + spent);
        result.and_then(|v| gitplane_cel::to_json(&v))
    }
}

/// The CEL of a policy: what VAP and Kyverno `validate.cel` share.
#[derive(Debug)]
pub struct CelValidator {
    prelude: CelPrelude,
    validations: Vec<Validation>,
    audit_annotations: Vec<(String, Arc<Program>)>,
}

/// What a [`CelValidator`] decides about one request.
#[derive(Debug, Clone, PartialEq)]
pub enum CelOutcome {
    /// A match condition is false: the policy does not apply.
    NotMatched,
    /// Every validation holds.
    Passed {
        /// Audit annotations, key → value.
        annotations: BTreeMap<String, String>,
        /// CEL cost units spent.
        cost: u64,
    },
    /// These validations failed.
    Failed {
        /// The messages of the failed validations.
        messages: Vec<String>,
        /// The reason of the first failed validation (`Invalid` unless set).
        reason: String,
        /// Audit annotations, key → value.
        annotations: BTreeMap<String, String>,
        /// CEL cost units spent.
        cost: u64,
    },
}

fn compile(env: &Env, what: &str, source: &str) -> Result<Arc<Program>, String> {
    let program = env.compile(source).map_err(|e| format!("{what}: {e}"))?;
    if program.variables().iter().any(|v| v == "authorizer") {
        return Err(format!(
            "{what}: `authorizer` is not available: gitplane evaluates policies without the cluster's RBAC"
        ));
    }
    Ok(program)
}

pub(crate) fn named_programs(
    env: &Env,
    value: &Value,
    list: &str,
    field: &str,
) -> Result<Vec<(String, Arc<Program>)>, String> {
    let mut out = Vec::new();
    for (i, entry) in value[list].as_array().into_iter().flatten().enumerate() {
        let name = entry["name"]
            .as_str()
            .or_else(|| entry["key"].as_str())
            .ok_or_else(|| format!("{list}[{i}]: name is required"))?;
        let source = entry[field]
            .as_str()
            .ok_or_else(|| format!("{list}[{i}] ({name}): {field} is required"))?;
        out.push((
            name.to_string(),
            compile(env, &format!("{list}[{i}] ({name})"), source)?,
        ));
    }
    Ok(out)
}

impl CelValidator {
    /// Compiles the CEL fields of `spec`, with validations read from
    /// `validations_key` (`validations` for VAP, `expressions` for Kyverno).
    pub fn parse(env: &Env, spec: &Value, validations_key: &str) -> Result<CelValidator, String> {
        let mut validations = Vec::new();
        for (i, v) in spec[validations_key]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let what = format!("{validations_key}[{i}]");
            let source = v["expression"]
                .as_str()
                .ok_or_else(|| format!("{what}: expression is required"))?;
            validations.push(Validation {
                program: compile(env, &what, source)?,
                message: v["message"].as_str().map(str::to_string),
                message_expression: v["messageExpression"]
                    .as_str()
                    .map(|m| compile(env, &format!("{what}.messageExpression"), m))
                    .transpose()?,
                reason: v["reason"].as_str().unwrap_or("Invalid").to_string(),
            });
        }
        Ok(CelValidator {
            prelude: CelPrelude::parse(env, spec)?,
            validations,
            audit_annotations: named_programs(env, spec, "auditAnnotations", "valueExpression")?,
        })
    }

    /// Evaluates on a request with these parameters. `Err` is an
    /// expression that failed under `failurePolicy: Fail`.
    pub fn run(&self, shared: &Shared, params: Option<&Value>) -> Result<CelOutcome, String> {
        let cost = Cell::new(0);
        let eval = costed_eval(&cost);
        let prepared = match self.prelude.prepare(shared, params, &cost) {
            Ok(Some(prepared)) => prepared,
            Ok(None) => return Ok(CelOutcome::NotMatched),
            Err(message) => return self.fail(message),
        };
        let activation = &prepared.activation;
        let failure_policy = self.prelude.failure_policy;
        let mut messages = Vec::new();
        let mut reason = None;
        for validation in &self.validations {
            if let Some((name, e)) = prepared.broken_variable(&validation.program) {
                if failure_policy == FailurePolicy::Fail {
                    messages.push(format!("variable {name:?} failed: {e}"));
                }
                continue;
            }
            match eval(&validation.program, activation) {
                Ok(Value::Bool(true)) => {}
                Ok(Value::Bool(false)) => {
                    reason.get_or_insert_with(|| validation.reason.clone());
                    messages.push(self.message(validation, activation, &eval));
                }
                Ok(other) => {
                    if failure_policy == FailurePolicy::Fail {
                        messages.push(format!(
                            "expression '{}' returned {other}, not a bool",
                            validation.program.source()
                        ));
                    }
                }
                Err(e) => {
                    if failure_policy == FailurePolicy::Fail {
                        messages.push(format!(
                            "expression '{}' resulted in error: {e}",
                            validation.program.source()
                        ));
                    }
                }
            }
        }
        let mut annotations = BTreeMap::new();
        for (key, program) in &self.audit_annotations {
            match eval(program, activation) {
                Ok(Value::String(value)) => {
                    annotations.insert(key.clone(), value);
                }
                Ok(Value::Null) => {}
                Ok(other) => {
                    annotations.insert(key.clone(), other.to_string());
                }
                Err(e) if failure_policy == FailurePolicy::Fail => {
                    messages.push(format!("auditAnnotation {key:?}: {e}"));
                }
                Err(_) => {}
            }
        }
        let cost = cost.get();
        Ok(if messages.is_empty() {
            CelOutcome::Passed { annotations, cost }
        } else {
            CelOutcome::Failed {
                messages,
                reason: reason.unwrap_or_else(|| "Invalid".to_string()),
                annotations,
                cost,
            }
        })
    }

    fn fail(&self, message: String) -> Result<CelOutcome, String> {
        match self.prelude.failure_policy {
            FailurePolicy::Fail => Err(message),
            FailurePolicy::Ignore => Ok(CelOutcome::NotMatched),
        }
    }

    /// A failed validation's message: messageExpression if it gives a
    /// non-empty one-line string, else message, else the expression.
    fn message(
        &self,
        validation: &Validation,
        activation: &Activation,
        eval: &impl Fn(&Program, &Activation) -> Result<Value, CelError>,
    ) -> String {
        if let Some(program) = &validation.message_expression
            && let Ok(Value::String(text)) = eval(program, activation)
            && !text.trim().is_empty()
            && !text.contains('\n')
        {
            return text;
        }
        match &validation.message {
            Some(message) => message.clone(),
            None => format!("failed expression: {}", validation.program.source()),
        }
    }
}

/// A compiled ValidatingAdmissionPolicy.
#[derive(Debug)]
pub struct Policy {
    /// `metadata.name`.
    pub name: String,
    param_kind: Option<(String, String)>,
    match_constraints: MatchResources,
    cel: CelValidator,
}

impl Policy {
    /// Compiles a ValidatingAdmissionPolicy.
    pub fn parse(env: &Env, object: &Object) -> Result<Policy, String> {
        let spec = object.get(&["spec"]).cloned().unwrap_or(Value::Null);
        let param_kind = match spec.get("paramKind") {
            None | Some(Value::Null) => None,
            Some(kind) => Some((
                kind["apiVersion"]
                    .as_str()
                    .ok_or("paramKind.apiVersion is required")?
                    .to_string(),
                kind["kind"]
                    .as_str()
                    .ok_or("paramKind.kind is required")?
                    .to_string(),
            )),
        };
        let match_constraints = MatchResources::parse(&spec["matchConstraints"])
            .map_err(|e| format!("matchConstraints: {e}"))?;
        if match_constraints.rules.is_empty() {
            return Err("matchConstraints.resourceRules is required".into());
        }
        Ok(Policy {
            name: object.name().to_string(),
            param_kind,
            match_constraints,
            cel: CelValidator::parse(env, &spec, "validations")?,
        })
    }
}

impl Policy {
    /// `spec.paramKind` as (apiVersion, kind).
    pub fn param_kind(&self) -> Option<&(String, String)> {
        self.param_kind.as_ref()
    }
}

/// `paramRef.parameterNotFoundAction`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NotFound {
    Allow,
    Deny,
}

#[derive(Debug, Clone)]
struct ParamRef {
    name: Option<String>,
    namespace: Option<String>,
    selector: Option<LabelSelector>,
    not_found: NotFound,
}

/// A ValidatingAdmissionPolicyBinding.
#[derive(Debug, Clone)]
pub struct Binding {
    /// `metadata.name`.
    pub name: String,
    /// The policy it binds.
    pub policy_name: String,
    param_ref: Option<ParamRef>,
    match_resources: Option<MatchResources>,
    actions: Vec<Mode>,
    /// A failure under `Warn` is reported `fail` (Kyverno's
    /// ValidatingPolicy), not `warn` (a VAP binding).
    warn_fails: bool,
}

impl Binding {
    /// Reads a ValidatingAdmissionPolicyBinding.
    pub fn parse(object: &Object) -> Result<Binding, String> {
        let spec = object.get(&["spec"]).cloned().unwrap_or(Value::Null);
        let policy_name = spec["policyName"]
            .as_str()
            .ok_or("spec.policyName is required")?
            .to_string();
        let mut actions = Vec::new();
        for action in strings(&spec["validationActions"]) {
            actions.push(match action.as_str() {
                "Deny" => Mode::Enforce,
                "Warn" => Mode::Warn,
                "Audit" => Mode::Audit,
                other => {
                    return Err(format!(
                        "validationActions: {other:?} is not Deny, Warn or Audit"
                    ));
                }
            });
        }
        if actions.is_empty() {
            return Err("spec.validationActions is required (Deny, Warn and/or Audit)".into());
        }
        if actions.contains(&Mode::Enforce) && actions.contains(&Mode::Warn) {
            return Err("validationActions: Deny and Warn cannot be used together".into());
        }
        let param_ref = match spec.get("paramRef") {
            None | Some(Value::Null) => None,
            Some(r) => Some(ParamRef {
                name: r["name"].as_str().map(str::to_string),
                namespace: r["namespace"].as_str().map(str::to_string),
                selector: match r.get("selector") {
                    None | Some(Value::Null) => None,
                    Some(s) => Some(
                        LabelSelector::from_json(s)
                            .map_err(|e| format!("paramRef.selector: {e}"))?,
                    ),
                },
                not_found: match r["parameterNotFoundAction"].as_str() {
                    Some("Allow") => NotFound::Allow,
                    None | Some("Deny") => NotFound::Deny,
                    Some(other) => {
                        return Err(format!(
                            "paramRef.parameterNotFoundAction {other:?}: must be Allow or Deny"
                        ));
                    }
                },
            }),
        };
        if let Some(r) = &param_ref
            && r.name.is_some() == r.selector.is_some()
        {
            return Err("paramRef: exactly one of name and selector is required".into());
        }
        let match_resources = match spec.get("matchResources") {
            None | Some(Value::Null) => None,
            Some(m) => Some(MatchResources::parse(m).map_err(|e| format!("matchResources: {e}"))?),
        };
        Ok(Binding {
            name: object.name().to_string(),
            policy_name,
            param_ref,
            match_resources,
            actions,
            warn_fails: false,
        })
    }

    /// The same binding, reporting a failure under `Warn` as `fail`, as
    /// Kyverno reports its ValidatingPolicies' results.
    pub fn reporting_warnings_as_failures(self) -> Binding {
        Binding {
            warn_fails: true,
            ..self
        }
    }
}

impl Binding {
    /// The binding the Kyverno CLI assumes for a policy tested without one:
    /// every matching object, actions Deny.
    pub fn implicit(policy_name: &str) -> Binding {
        Binding {
            name: String::new(),
            policy_name: policy_name.to_string(),
            param_ref: None,
            match_resources: None,
            actions: vec![Mode::Enforce],
            warn_fails: false,
        }
    }
}

/// Evaluates one policy through one binding; appends a result per action.
/// Returns the CEL cost spent.
pub fn evaluate(
    policy: &Policy,
    binding: &Binding,
    shared: &Shared,
    lookup: &dyn Lookup,
    out: &mut Vec<RuleResult>,
) -> u64 {
    let request = &shared.request;
    if !policy.match_constraints.matches(request)
        || binding.match_resources.as_ref().is_some_and(|m| {
            // A binding's matchResources without rules narrows by selectors only.
            let mut narrowed = m.clone();
            if narrowed.rules.is_empty() {
                narrowed.rules = policy.match_constraints.rules.clone();
            }
            !narrowed.matches(request)
        })
    {
        return 0;
    }
    let push = |out: &mut Vec<RuleResult>,
                verdict: Verdict,
                message: String,
                reason: Option<&str>,
                annotations: &BTreeMap<String, String>| {
        // One result per binding, at its strongest action (Deny, then Warn,
        // then Audit): every result is also what a PolicyReport records.
        let mode = binding.actions.iter().copied().min().unwrap_or(Mode::Audit);
        let verdict = match (verdict, mode) {
            (Verdict::Fail, Mode::Warn) if !binding.warn_fails => Verdict::Warn,
            (v, _) => v,
        };
        let mut result = RuleResult::new(
            Engine::Vap,
            &policy.name,
            &binding.name,
            verdict,
            mode,
            message,
        );
        result.properties = annotations.clone();
        result.reason = reason.map(str::to_string);
        out.push(result);
    };
    let params = match resolve_params(policy, binding, request, lookup) {
        Ok(params) => params,
        Err(message) => {
            push(out, Verdict::Fail, message, None, &BTreeMap::new());
            return 0;
        }
    };
    let mut cost = 0;
    for param in &params {
        match policy.cel.run(shared, param.as_ref()) {
            Ok(CelOutcome::NotMatched) => {}
            Ok(CelOutcome::Passed {
                annotations,
                cost: spent,
            }) => {
                cost += spent;
                push(out, Verdict::Pass, String::new(), None, &annotations);
            }
            Ok(CelOutcome::Failed {
                messages,
                reason,
                annotations,
                cost: spent,
            }) => {
                cost += spent;
                push(
                    out,
                    Verdict::Fail,
                    messages.join("; "),
                    Some(&reason),
                    &annotations,
                );
            }
            Err(message) => push(out, Verdict::Fail, message, None, &BTreeMap::new()),
        }
    }
    cost
}

/// The parameter objects a binding selects: `[None]` without params. An
/// empty list means none were found and the binding allows that.
fn resolve_params(
    policy: &Policy,
    binding: &Binding,
    request: &Request,
    lookup: &dyn Lookup,
) -> Result<Vec<Option<Value>>, String> {
    let Some((api_version, kind)) = &policy.param_kind else {
        return Ok(vec![None]);
    };
    let Some(param_ref) = &binding.param_ref else {
        return Err(format!(
            "policy {:?} has paramKind {kind} but binding {:?} has no paramRef",
            policy.name, binding.name
        ));
    };
    let namespaces: Vec<Option<&str>> = match (&param_ref.namespace, request.namespace()) {
        (Some(ns), _) => vec![Some(ns.as_str())],
        // The param kind's scope is not known offline: the request's
        // namespace first, as for a namespaced kind, then cluster scope.
        (None, Some(ns)) => vec![Some(ns), None],
        (None, None) => vec![None],
    };
    let mut found = Vec::new();
    for namespace in namespaces {
        found = match (&param_ref.name, &param_ref.selector) {
            (Some(name), _) => lookup
                .get_object(api_version, kind, namespace, name)
                .into_iter()
                .collect(),
            (None, Some(selector)) => {
                let mut listed = lookup.list_objects(api_version, kind, namespace, selector);
                if namespace.is_none() {
                    // Cluster scope: not the namespaced objects of every namespace.
                    listed.retain(|o| {
                        o["metadata"]["namespace"]
                            .as_str()
                            .is_none_or(str::is_empty)
                    });
                }
                listed
            }
            (None, None) => Vec::new(),
        };
        if !found.is_empty() {
            break;
        }
    }
    if found.is_empty() {
        return match param_ref.not_found {
            NotFound::Allow => Ok(Vec::new()),
            NotFound::Deny => Err(format!(
                "no params found for policy binding with `Deny` parameterNotFoundAction ({kind} {})",
                param_ref.name.as_deref().unwrap_or("by selector")
            )),
        };
    }
    Ok(found.into_iter().map(Some).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Operation;
    use gitplane_object::json;

    #[test]
    fn resource_rules_match_group_version_operation_and_resource() {
        let rule = ResourceRule::parse(
            &json!({"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"], "resources": ["deployments"]}),
        );
        let deployment =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "a"}});
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"}});
        assert!(rule.matches(&Request::create(&deployment)));
        assert!(!rule.matches(&Request::create(&pod)));
        let mut delete = Request::create(&deployment);
        delete.operation = Operation::Delete;
        assert!(!rule.matches(&delete));
    }
}
