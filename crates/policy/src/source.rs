//! A set of policies read from objects: ValidatingAdmissionPolicies and
//! their bindings, Kyverno ClusterPolicies and Policies, and the other
//! objects beside them (VAP parameters).

use std::fmt;

use gitplane_cel::Env;
use gitplane_object::{LabelSelector, Object, Value};

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
        ("kyverno.io", "ClusterCleanupPolicy" | "CleanupPolicy" | "PolicyException") => {
            Some(PolicyKind::Unsupported(
                "this Kyverno kind acts on a running cluster; gitplane does not evaluate it",
            ))
        }
        ("policies.kyverno.io", _) => Some(PolicyKind::Unsupported(
            "Kyverno's CEL policy kinds (policies.kyverno.io) are not evaluated by gitplane yet",
        )),
        _ => None,
    }
}

/// The policies to evaluate, compiled.
#[derive(Debug, Default)]
pub struct PolicySet {
    env: Env,
    vaps: Vec<vap::Policy>,
    bindings: Vec<vap::Binding>,
    kyverno: Vec<kyverno::Policy>,
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
        (set, errors)
    }

    /// The (apiVersion, kind) of every VAP's `paramKind`.
    pub fn param_kinds(&self) -> Vec<(String, String)> {
        let mut kinds: Vec<(String, String)> = self
            .vaps
            .iter()
            .filter_map(|p| p.param_kind().cloned())
            .collect();
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

    /// How many policies (VAPs and Kyverno policies) the set holds.
    pub fn len(&self) -> usize {
        self.vaps.len() + self.kyverno.len()
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

    /// Evaluates every validating policy on a request. Parameters are
    /// looked up among the set's own objects, then in `lookup`.
    pub fn validate(
        &self,
        request: &Request,
        lookup: &dyn Lookup,
        supplied: &Supplied,
    ) -> Evaluation {
        let lookup = Chain(&self.params, lookup);
        let shared = Shared::new(*request);
        let mut evaluation = Evaluation::default();
        for binding in &self.bindings {
            for policy in self.vaps.iter().filter(|p| p.name == binding.policy_name) {
                evaluation.cost +=
                    vap::evaluate(policy, binding, &shared, &lookup, &mut evaluation.results);
            }
        }
        for policy in &self.kyverno {
            evaluation.cost += policy.validate(&shared, supplied, &lookup, &mut evaluation.results);
        }
        evaluation
    }

    /// What every Kyverno generate rule selecting the request would create,
    /// as `(policy, rule, object)`, and the generate rules' results.
    pub fn generate(
        &self,
        request: &Request,
        supplied: &Supplied,
    ) -> (Vec<(String, String, Object)>, Vec<RuleResult>) {
        let shared = Shared::new(*request);
        let mut results = Vec::new();
        let mut generated = Vec::new();
        for policy in &self.kyverno {
            for (rule, object) in policy.generate(&shared, supplied, &mut results) {
                generated.push((policy.name.clone(), rule, object));
            }
        }
        (generated, results)
    }

    /// Applies every Kyverno mutate rule, policy by policy; returns the
    /// mutated object and the mutate rules' results.
    pub fn mutate(&self, request: &Request, supplied: &Supplied) -> (Value, Vec<RuleResult>) {
        let mut results = Vec::new();
        let mut current = request.object.clone();
        for policy in self.kyverno.iter().filter(|p| p.has_mutations()) {
            let step = Request {
                object: &current,
                ..*request
            };
            current = policy.mutate(&step, supplied, &mut results);
        }
        (current, results)
    }
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
