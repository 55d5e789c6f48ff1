//! A set of policies read from objects: ValidatingAdmissionPolicies and
//! their bindings, Kyverno ClusterPolicies and Policies, and the other
//! objects beside them (VAP parameters).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use gitplane_cel::Env;
use gitplane_object::{LabelSelector, Object, Value};

use crate::gatekeeper::{self, SyncedKind};
use crate::kyverno::deleting_policy::DeletingPolicy;
use crate::kyverno::exception::PolicyException;
use crate::kyverno::generating_policy::GeneratingPolicy;
use crate::kyverno::mutating_policy::MutatingPolicy;
use crate::kyverno::{self, Supplied};
use crate::request::{Lookup, Request};
use crate::result::RuleResult;
use crate::shared::Shared;
use crate::vap;

/// A policy that could not be read, named by file, line and object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadError {
    /// `ClusterPolicy require-labels`.
    pub object: String,
    /// `policies/labels.yaml:3`, when known.
    pub origin: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl LoadError {
    /// An error about `object`.
    pub fn new(object: &Object, message: String) -> LoadError {
        LoadError {
            object: describe(object),
            origin: origin(object),
            message,
        }
    }
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Some(origin) => write!(f, "{origin}: {}: {}", self.object, self.message),
            None => write!(f, "{}: {}", self.object, self.message),
        }
    }
}

/// `Kind namespace/name` or `Kind name`.
pub fn describe(object: &Object) -> String {
    match object.namespace() {
        Some(ns) => format!("{} {ns}/{}", object.kind(), object.name()),
        None => format!("{} {}", object.kind(), object.name()),
    }
}

/// `file:line` of an object, when it was read from a file.
pub fn origin(object: &Object) -> Option<String> {
    object.origin().map(|o| format!("{}:{}", o.file, o.line))
}

/// The strings of a JSON list (other values are left out).
pub fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether an object is a policy kind gitplane reads.
pub fn is_policy(object: &Object) -> bool {
    policy_kind(object).is_some()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PolicyKind {
    Vap,
    VapBinding,
    Kyverno,
    /// Kyverno's CEL ValidatingPolicy: evaluated as a VAP and its binding.
    KyvernoValidating,
    /// Kyverno's CEL MutatingPolicy.
    KyvernoMutating,
    /// Kyverno's CEL GeneratingPolicy.
    KyvernoGenerating,
    /// Kyverno's PolicyException.
    KyvernoException,
    /// Kyverno's CEL DeletingPolicy.
    KyvernoDeleting,
    GatekeeperTemplate,
    GatekeeperConstraint,
    /// A kind gitplane knows of but does not evaluate, with the reason.
    Unsupported(&'static str),
}

fn policy_kind(object: &Object) -> Option<PolicyKind> {
    match (object.group(), object.kind()) {
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicy") => Some(PolicyKind::Vap),
        ("admissionregistration.k8s.io", "ValidatingAdmissionPolicyBinding") => {
            Some(PolicyKind::VapBinding)
        }
        (
            "admissionregistration.k8s.io",
            "MutatingAdmissionPolicy" | "MutatingAdmissionPolicyBinding",
        ) => Some(PolicyKind::Unsupported(
            "MutatingAdmissionPolicy is not evaluated by gitplane yet",
        )),
        ("kyverno.io", "ClusterPolicy" | "Policy") => Some(PolicyKind::Kyverno),
        ("kyverno.io", "PolicyException") => Some(PolicyKind::KyvernoException),
        ("kyverno.io", "ClusterCleanupPolicy" | "CleanupPolicy") => Some(PolicyKind::Unsupported(
            "this Kyverno kind acts on a running cluster; gitplane does not evaluate it",
        )),
        (gatekeeper::TEMPLATES_GROUP, "ConstraintTemplate") => Some(PolicyKind::GatekeeperTemplate),
        (gatekeeper::CONSTRAINTS_GROUP, _) => Some(PolicyKind::GatekeeperConstraint),
        ("policies.kyverno.io", "ValidatingPolicy" | "NamespacedValidatingPolicy") => {
            Some(PolicyKind::KyvernoValidating)
        }
        ("policies.kyverno.io", "MutatingPolicy" | "NamespacedMutatingPolicy") => {
            Some(PolicyKind::KyvernoMutating)
        }
        ("policies.kyverno.io", "GeneratingPolicy") => Some(PolicyKind::KyvernoGenerating),
        ("policies.kyverno.io", "DeletingPolicy" | "NamespacedDeletingPolicy") => {
            Some(PolicyKind::KyvernoDeleting)
        }
        ("policies.kyverno.io", _) => Some(PolicyKind::Unsupported(
            "this Kyverno CEL policy kind (policies.kyverno.io) is not evaluated by gitplane (ImageValidatingPolicy verifies signatures in a registry); ValidatingPolicy, MutatingPolicy, GeneratingPolicy and DeletingPolicy are",
        )),
        _ => None,
    }
}

/// The policies to evaluate, compiled.
#[derive(Debug, Default)]
pub struct PolicySet {
    env: Env,
    vaps: Vec<vap::Policy>,
    /// How many of `vaps` are autogen variants of a Kyverno ValidatingPolicy
    /// (not counted as policies of their own).
    autogen_variants: usize,
    bindings: Vec<vap::Binding>,
    kyverno: Vec<kyverno::Policy>,
    mutating: Vec<MutatingPolicy>,
    generating: Vec<GeneratingPolicy>,
    exceptions: Vec<PolicyException>,
    deleting: Vec<DeletingPolicy>,
    templates: Vec<gatekeeper::Template>,
    constraints: Vec<gatekeeper::Constraint>,
    params: Vec<Object>,
    skipped: Vec<LoadError>,
}

/// What evaluating a set on one request gives.
#[derive(Debug, Default)]
pub struct Evaluation {
    /// One result per rule (or binding) that applied.
    pub results: Vec<RuleResult>,
    /// CEL cost units spent.
    pub cost: u64,
}

impl PolicySet {
    /// Reads the policies among `objects`; the other objects become
    /// parameters VAP bindings can refer to. Every policy that fails to
    /// compile is an error.
    pub fn load(objects: Vec<Object>) -> Result<PolicySet, Vec<LoadError>> {
        let (set, errors) = PolicySet::load_valid(objects);
        if errors.is_empty() {
            Ok(set)
        } else {
            Err(errors)
        }
    }

    /// [`PolicySet::load`], keeping the policies that compile: the set and
    /// the errors of those that do not.
    pub fn load_valid(objects: Vec<Object>) -> (PolicySet, Vec<LoadError>) {
        let mut set = PolicySet::default();
        let mut errors = Vec::new();
        for object in objects {
            let outcome = match policy_kind(&object) {
                None => {
                    set.params.push(object);
                    continue;
                }
                Some(PolicyKind::Vap) => {
                    vap::Policy::parse(&set.env, &object).map(|p| set.vaps.push(p))
                }
                Some(PolicyKind::VapBinding) => {
                    vap::Binding::parse(&object).map(|b| set.bindings.push(b))
                }
                Some(PolicyKind::Kyverno) => {
                    kyverno::Policy::parse(&set.env, &object).map(|p| set.kyverno.push(p))
                }
                Some(PolicyKind::KyvernoValidating) => set.load_validating_policy(&object),
                Some(PolicyKind::KyvernoMutating) => {
                    MutatingPolicy::parse(&set.env, &object).map(|p| set.mutating.push(p))
                }
                Some(PolicyKind::KyvernoGenerating) => {
                    GeneratingPolicy::parse(&set.env, &object).map(|p| set.generating.push(p))
                }
                Some(PolicyKind::KyvernoException) => {
                    PolicyException::parse(&object).map(|e| set.exceptions.push(e))
                }
                Some(PolicyKind::KyvernoDeleting) => {
                    DeletingPolicy::parse(&set.env, &object).map(|p| set.deleting.push(p))
                }
                Some(PolicyKind::GatekeeperTemplate) => {
                    gatekeeper::Template::parse(&object).map(|t| set.templates.push(t))
                }
                Some(PolicyKind::GatekeeperConstraint) => {
                    gatekeeper::Constraint::parse(&object).map(|c| set.constraints.push(c))
                }
                Some(PolicyKind::Unsupported(reason)) => {
                    set.skipped
                        .push(LoadError::new(&object, reason.to_string()));
                    Ok(())
                }
            };
            if let Err(message) = outcome {
                errors.push(LoadError::new(&object, message));
            }
        }
        for binding in &set.bindings {
            if !set.vaps.iter().any(|p| p.name == binding.policy_name) {
                set.skipped.push(LoadError {
                    object: format!("ValidatingAdmissionPolicyBinding {}", binding.name),
                    origin: None,
                    message: format!(
                        "binds policy {:?}, which is not in the set",
                        binding.policy_name
                    ),
                });
            }
        }
        set.constraints.retain(|constraint| {
            let checked = set
                .templates
                .iter()
                .find(|t| t.kind == constraint.kind)
                .map_or(Ok(()), |t| t.check_parameters(constraint));
            if let Err(message) = &checked {
                errors.push(LoadError {
                    object: format!("{} {}", constraint.kind, constraint.name),
                    origin: constraint.origin.clone(),
                    message: message.clone(),
                });
            }
            checked.is_ok()
        });
        for constraint in &set.constraints {
            if !set.templates.iter().any(|t| t.kind == constraint.kind) {
                set.skipped.push(LoadError {
                    object: format!("{} {}", constraint.kind, constraint.name),
                    origin: None,
                    message: format!(
                        "no ConstraintTemplate defines the kind {:?} in the set",
                        constraint.kind
                    ),
                });
            }
        }
        (set, errors)
    }

    /// Compiles a Kyverno ValidatingPolicy as the VAPs and binding it
    /// stands for.
    fn load_validating_policy(&mut self, object: &Object) -> Result<(), String> {
        let (policies, binding) = kyverno::validating_policy::as_admission_policies(object)?;
        let mut compiled = Vec::with_capacity(policies.len());
        for policy in &policies {
            compiled.push(vap::Policy::parse(&self.env, policy)?);
        }
        self.bindings
            .push(vap::Binding::parse(&binding)?.reporting_warnings_as_failures());
        self.autogen_variants += compiled.len() - 1;
        self.vaps.extend(compiled);
        Ok(())
    }

    /// The (apiVersion, kind) of every VAP's `paramKind` and of what
    /// Gatekeeper templates read from `data.inventory`: what a lookup must
    /// be able to find.
    pub fn param_kinds(&self) -> Vec<(String, String)> {
        let mut kinds: Vec<(String, String)> = self
            .vaps
            .iter()
            .filter_map(|p| p.param_kind().cloned())
            .collect();
        kinds.extend(self.synced_kinds());
        kinds.sort();
        kinds.dedup();
        kinds
    }

    /// Binds every ValidatingAdmissionPolicy that has no binding, as the
    /// Kyverno CLI does when testing one (a cluster would not evaluate it).
    pub fn bind_unbound_policies(&mut self) {
        for policy in &self.vaps {
            if !self.bindings.iter().any(|b| b.policy_name == policy.name) {
                self.bindings.push(vap::Binding::implicit(&policy.name));
            }
        }
    }

    /// How many policies (VAPs, Kyverno policies of every kind and
    /// Gatekeeper constraints) the set holds.
    pub fn len(&self) -> usize {
        self.vaps.len() - self.autogen_variants
            + self.kyverno.len()
            + self.mutating.len()
            + self.generating.len()
            + self.deleting.len()
            + self.constraints.len()
    }

    /// Whether the set holds no policy.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Policies and bindings that were read but are not evaluated, with why.
    pub fn skipped(&self) -> &[LoadError] {
        &self.skipped
    }

    /// The Kyverno policies.
    pub fn kyverno(&self) -> &[kyverno::Policy] {
        &self.kyverno
    }

    /// Kyverno's DeletingPolicies (their schedules run in the embedded API
    /// server).
    pub fn deleting_policies(&self) -> &[DeletingPolicy] {
        &self.deleting
    }

    /// Evaluates every validating policy on a request. Parameters are
    /// looked up among the set's own objects, then in `lookup`.
    pub fn validate(
        &self,
        request: &Request,
        lookup: &dyn Lookup,
        supplied: &Supplied,
    ) -> Evaluation {
        let lookup = Chain(&self.params, lookup);
        let shared = Shared::with_cel_variables(*request, &supplied.cel_variables);
        let mut evaluation = Evaluation::default();
        for binding in &self.bindings {
            for policy in self.vaps.iter().filter(|p| p.name == binding.policy_name) {
                evaluation.cost +=
                    vap::evaluate(policy, binding, &shared, &lookup, &mut evaluation.results);
            }
        }
        for policy in &self.kyverno {
            let exempt = |rule: &str| self.exception_for(&policy.name, rule, &shared);
            evaluation.cost +=
                policy.validate(&shared, supplied, &lookup, &exempt, &mut evaluation.results);
        }
        self.validate_constraints(request, &lookup, &mut evaluation.results);
        evaluation
    }

    /// The kinds every template reads from `data.inventory`.
    fn synced_kinds(&self) -> Vec<SyncedKind> {
        let mut kinds: Vec<SyncedKind> = self
            .templates
            .iter()
            .flat_map(|t| t.synced.iter().cloned())
            .collect();
        kinds.extend(self.config_synced_kinds());
        kinds
    }

    /// The kinds a Gatekeeper `Config` in the set syncs (`spec.sync.syncOnly`).
    fn config_synced_kinds(&self) -> Vec<SyncedKind> {
        let mut kinds = Vec::new();
        for config in self
            .params
            .iter()
            .filter(|o| o.group() == "config.gatekeeper.sh" && o.kind() == "Config")
        {
            for entry in config
                .get(&["spec", "sync", "syncOnly"])
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let field = |name: &str| entry[name].as_str().unwrap_or_default();
                kinds.push((
                    gatekeeper::api_version(field("group"), field("version")),
                    field("kind").to_string(),
                ));
            }
        }
        kinds
    }

    /// Gatekeeper's audit: every constraint against every object it selects
    /// (each reviewed as the audit reviews existing objects, with no
    /// operation), keeping the first `limit` violations of each.
    pub fn audit_constraints<'a>(
        &self,
        objects: &[&'a Value],
        namespace_of: &dyn Fn(&str) -> Option<&'a Value>,
        lookup: &dyn Lookup,
        limit: usize,
    ) -> Vec<gatekeeper::Audit> {
        let lookup = Chain(&self.params, lookup);
        let mut inventories = HashMap::new();
        let mut audits = Vec::new();
        for constraint in &self.constraints {
            let Some(template) = self.templates.iter().find(|t| t.kind == constraint.kind) else {
                continue;
            };
            let inventory = self.inventory_for(template, &lookup, &mut inventories);
            let mut audit = gatekeeper::Audit {
                kind: constraint.kind.clone(),
                name: constraint.name.clone(),
                action: constraint.action.as_str(),
                total: 0,
                violations: Vec::new(),
            };
            for object in objects {
                let namespace = object["metadata"]["namespace"]
                    .as_str()
                    .and_then(namespace_of);
                if !constraint.matcher.matches(object, namespace) {
                    continue;
                }
                let review = gatekeeper::review::of_object(object);
                let messages = template
                    .violations(
                        &review,
                        &constraint.parameters,
                        inventory.as_deref(),
                        gatekeeper::Source::PreferCel,
                    )
                    .unwrap_or_else(|error| vec![error]);
                audit.total += messages.len();
                for message in messages {
                    if audit.violations.len() < limit {
                        audit
                            .violations
                            .push(audited(object, &message, audit.action));
                    }
                }
            }
            audits.push(audit);
        }
        audits
    }

    /// Evaluates every Gatekeeper constraint selecting the request.
    fn validate_constraints(
        &self,
        request: &Request,
        lookup: &dyn Lookup,
        results: &mut Vec<RuleResult>,
    ) {
        if self.constraints.is_empty() {
            return;
        }
        let review = gatekeeper::review::of_request(request);
        let mut inventories = HashMap::new();
        for constraint in &self.constraints {
            let Some(template) = self.templates.iter().find(|t| t.kind == constraint.kind) else {
                continue;
            };
            if !template.applies_to(request.operation.as_str())
                || !constraint
                    .matcher
                    .matches_review(&review, request.namespace_object)
            {
                continue;
            }
            let inventory = self.inventory_for(template, lookup, &mut inventories);
            let violations = template.violations(
                &review,
                &constraint.parameters,
                inventory.as_deref(),
                gatekeeper::Source::PreferCel,
            );
            results.extend(constraint.results(violations));
        }
    }

    /// `data.inventory` for a template that reads it, built once for all
    /// the constraints of the template (kept in `built`).
    fn inventory_for(
        &self,
        template: &gatekeeper::Template,
        lookup: &dyn Lookup,
        built: &mut HashMap<String, Arc<Value>>,
    ) -> Option<Arc<Value>> {
        if !template.reads_inventory(gatekeeper::Source::PreferCel) {
            return None;
        }
        let inventory = built
            .entry(template.name.clone())
            .or_insert_with(|| Arc::new(self.inventory(template, lookup)));
        Some(inventory.clone())
    }

    /// `data.inventory` for a template: the kinds it asks for in its
    /// `requires-sync-data` annotation and those a Gatekeeper `Config`
    /// in the set syncs, looked up in the set's objects, then `lookup`.
    fn inventory(&self, template: &gatekeeper::Template, lookup: &dyn Lookup) -> Value {
        let mut kinds: Vec<SyncedKind> = template.synced.clone();
        kinds.extend(self.config_synced_kinds());
        kinds.sort();
        kinds.dedup();
        let everything = LabelSelector::everything();
        let objects: Vec<Value> = kinds
            .iter()
            .flat_map(|(api_version, kind)| {
                lookup.list_objects(api_version, kind, None, &everything)
            })
            .collect();
        gatekeeper::review::inventory(&objects)
    }

    /// What every Kyverno generate rule selecting the request would create,
    /// and the generate rules' results; `clone` rules read their source
    /// through `lookup`.
    pub fn generate(
        &self,
        request: &Request,
        supplied: &Supplied,
        lookup: &dyn Lookup,
    ) -> (Vec<kyverno::Generated>, Vec<RuleResult>) {
        let shared = Shared::with_cel_variables(*request, &supplied.cel_variables);
        let mut results = Vec::new();
        let mut generated = Vec::new();
        for policy in self.kyverno.iter().filter(|p| p.has_generations()) {
            let exempt = |rule: &str| self.exception_for(&policy.name, rule, &shared);
            generated.extend(policy.generate(&shared, supplied, lookup, &exempt, &mut results));
        }
        for policy in &self.generating {
            generated.extend(policy.generate(&shared, &mut results));
        }
        (generated, results)
    }

    /// Whether the set holds Gatekeeper constraints.
    pub fn has_constraints(&self) -> bool {
        !self.constraints.is_empty()
    }

    /// Whether any Kyverno policy has a generate rule.
    pub fn generates(&self) -> bool {
        !self.generating.is_empty() || self.kyverno.iter().any(kyverno::Policy::has_generations)
    }

    /// Every synchronized `clone` rule's source: (policy, rule, source).
    pub fn clone_sources(&self) -> impl Iterator<Item = (&str, &str, &gitplane_object::ObjectKey)> {
        self.kyverno.iter().flat_map(|policy| {
            policy
                .clone_sources()
                .iter()
                .map(|(rule, source)| (policy.name.as_str(), rule.as_str(), source))
        })
    }

    /// The PolicyException (by name) that exempts `rule` of `policy` from
    /// the request, if one does.
    fn exception_for(&self, policy: &str, rule: &str, shared: &Shared) -> Option<String> {
        self.exceptions
            .iter()
            .find(|e| e.exempts(policy, rule, &shared.request, shared.vars()))
            .map(|e| e.name.clone())
    }

    /// Whether any policy mutates (a Kyverno mutate rule or a MutatingPolicy).
    pub fn mutates(&self) -> bool {
        !self.mutating.is_empty() || self.kyverno.iter().any(kyverno::Policy::has_mutations)
    }

    /// Applies every Kyverno mutate rule, policy by policy, then every
    /// MutatingPolicy; returns the mutated object and the results.
    pub fn mutate(&self, request: &Request, supplied: &Supplied) -> (Value, Vec<RuleResult>) {
        let mut results = Vec::new();
        let mut current = request.object.clone();
        for policy in self.kyverno.iter().filter(|p| p.has_mutations()) {
            let step = Request {
                object: &current,
                ..*request
            };
            let shared = Shared::new(step);
            let exempt = |rule: &str| self.exception_for(&policy.name, rule, &shared);
            current = policy.mutate(&step, supplied, &exempt, &mut results);
        }
        for policy in &self.mutating {
            let step = Request {
                object: &current,
                ..*request
            };
            let shared = Shared::with_cel_variables(step, &supplied.cel_variables);
            if let (Some(mutated), _) = policy.mutate(&shared, &mut results) {
                current = mutated;
            }
        }
        (current, results)
    }
}

/// One violation as Gatekeeper's audit lists it.
fn audited(object: &Value, message: &str, action: &str) -> Value {
    let (group, version) =
        gitplane_object::split_api_version(object["apiVersion"].as_str().unwrap_or_default());
    let mut entry = serde_json::Map::new();
    entry.insert("enforcementAction".into(), Value::from(action));
    entry.insert("group".into(), Value::from(group));
    entry.insert("version".into(), Value::from(version));
    entry.insert("kind".into(), object["kind"].clone());
    entry.insert("name".into(), object["metadata"]["name"].clone());
    if let Some(ns) = object["metadata"]["namespace"].as_str() {
        entry.insert("namespace".into(), Value::from(ns));
    }
    entry.insert("message".into(), Value::from(message));
    Value::Object(entry)
}

/// Looks in the first, then the second.
struct Chain<'a>(&'a [Object], &'a dyn Lookup);

impl Lookup for Chain<'_> {
    fn get_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        self.0
            .get_object(api_version, kind, namespace, name)
            .or_else(|| self.1.get_object(api_version, kind, namespace, name))
    }

    fn list_objects(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        selector: &LabelSelector,
    ) -> Vec<Value> {
        let mut found = self.0.list_objects(api_version, kind, namespace, selector);
        found.extend(self.1.list_objects(api_version, kind, namespace, selector));
        found
    }
}
