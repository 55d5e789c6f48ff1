//! Admission the server applies on writes, as a cluster's built-in plugins
//! do: Pod Security admission from the namespace's
//! `pod-security.kubernetes.io/*` labels, and ValidatingAdmissionPolicies
//! with their bindings, Kyverno policies and Gatekeeper constraints
//! ([`validating_policies`]).
//!
//! As the upstream plugin: the `enforce` level refuses a Pod being created
//! (403, PSA's message); `warn` (and `audit`, which has no log here) adds a
//! `Warning` to writes of Pods and of workloads whose pod template fails.

use std::sync::{Arc, Mutex};

use gitplane_object::Object;
use gitplane_policy::pss::{Standard, check_pod, pod_template, summary};
use gitplane_policy::{Mode, Operation, PolicySet, Request, UserInfo, Verdict};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::pod_security::PodSecurityConfig;
use crate::registry::{Registry, ResourceType};
use crate::store::Store;

const GROUP: &str = "admissionregistration.k8s.io";
const POLICY_PREFIX: &str = "admissionregistration.k8s.io/validatingadmissionpolicies/";
const BINDING_PREFIX: &str = "admissionregistration.k8s.io/validatingadmissionpolicybindings/";
/// Kyverno's policies, stored once Kyverno's CRDs are (as in a cluster with
/// Kyverno installed): ClusterPolicies and Policies, PolicyExceptions, and
/// the CEL policies gitplane evaluates.
const KYVERNO_PREFIXES: [&str; 10] = [
    "kyverno.io/clusterpolicies/",
    "kyverno.io/policies/",
    "kyverno.io/policyexceptions/",
    "policies.kyverno.io/validatingpolicies/",
    "policies.kyverno.io/namespacedvalidatingpolicies/",
    "policies.kyverno.io/mutatingpolicies/",
    "policies.kyverno.io/namespacedmutatingpolicies/",
    "policies.kyverno.io/generatingpolicies/",
    "policies.kyverno.io/deletingpolicies/",
    "policies.kyverno.io/namespaceddeletingpolicies/",
];
/// Gatekeeper's templates and constraints (every constraint kind is in the
/// constraints group), stored once the template CRD is.
const GATEKEEPER_PREFIXES: [&str; 2] = [
    "templates.gatekeeper.sh/constrainttemplates/",
    "constraints.gatekeeper.sh/",
];

/// The stored ValidatingAdmissionPolicies and bindings, and Kyverno
/// ClusterPolicies and Policies, compiled; rebuilt when one of them changes
/// (their keys and resourceVersions differ).
#[derive(Default)]
pub struct PolicyCache {
    current: Mutex<Option<(Vec<String>, Arc<PolicySet>)>>,
}

impl PolicyCache {
    /// The policies as stored now.
    pub fn get(&self, store: &Store) -> Arc<PolicySet> {
        let (mut objects, _) = store.list(POLICY_PREFIX);
        objects.extend(store.list(BINDING_PREFIX).0);
        for prefix in KYVERNO_PREFIXES.iter().chain(&GATEKEEPER_PREFIXES) {
            objects.extend(store.list(prefix).0);
        }
        let fingerprint: Vec<String> = objects
            .iter()
            .map(|(key, object)| {
                let version = object
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                format!("{key}@{version}")
            })
            .collect();
        let mut current = self
            .current
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((seen, set)) = current.as_ref()
            && *seen == fingerprint
        {
            return set.clone();
        }
        let parsed = objects
            .into_iter()
            .filter_map(|(_, o)| o.as_object().cloned().map(Object::new))
            .collect();
        // Invalid policies were refused when written ([`check_policy`]).
        let (set, _) = PolicySet::load_valid(parsed);
        let set = Arc::new(set);
        *current = Some((fingerprint, set.clone()));
        set
    }
}

/// Refuses a ValidatingAdmissionPolicy or binding that does not compile,
/// as the API server's validation does (CEL syntax, actions, params).
pub fn check_policy(t: &ResourceType, object: &Value) -> ApiResult<()> {
    let is_policy = match t.group.as_str() {
        GROUP => matches!(
            t.kind.as_str(),
            "ValidatingAdmissionPolicy" | "ValidatingAdmissionPolicyBinding"
        ),
        // Kyverno's webhook refuses a policy that does not compile, and
        // Gatekeeper's a template or constraint.
        "kyverno.io" => matches!(
            t.kind.as_str(),
            "ClusterPolicy" | "Policy" | "PolicyException"
        ),
        "policies.kyverno.io" => matches!(
            t.kind.as_str(),
            "ValidatingPolicy"
                | "NamespacedValidatingPolicy"
                | "MutatingPolicy"
                | "NamespacedMutatingPolicy"
                | "GeneratingPolicy"
                | "DeletingPolicy"
                | "NamespacedDeletingPolicy"
        ),
        "templates.gatekeeper.sh" => t.kind == "ConstraintTemplate",
        "constraints.gatekeeper.sh" => true,
        _ => false,
    };
    if !is_policy {
        return Ok(());
    }
    let Some(body) = object.as_object() else {
        return Ok(());
    };
    let parsed = Object::new(body.clone());
    let name = parsed.name().to_string();
    PolicySet::load(vec![parsed]).map(|_| ()).map_err(|errors| {
        let causes = errors
            .into_iter()
            .map(|e| ("spec".to_string(), e.message))
            .collect();
        ApiError::invalid(&t.kind, &t.group, &name, causes)
    })
}

/// The objects VAP parameters may name, read before a write's store update
/// (reading the store inside one would deadlock).
pub fn param_objects(set: &PolicySet, store: &Store, registry: &Registry) -> Vec<Object> {
    let mut out = Vec::new();
    for (api_version, kind) in set.param_kinds() {
        let (group, _) = gitplane_object::split_api_version(&api_version);
        let Some(t) = registry.by_kind(group, &kind) else {
            continue;
        };
        for (_, object) in store.list(&t.key_prefix()).0 {
            if let Some(body) = object.as_object() {
                out.push(Object::new(body.clone()));
            }
        }
    }
    out
}

/// One write, as ValidatingAdmissionPolicies see it.
pub struct Write<'a> {
    /// Its type.
    pub t: &'a ResourceType,
    /// The object as it would be stored.
    pub object: &'a Value,
    /// The stored object, for an update.
    pub old: Option<&'a Value>,
    /// The object's Namespace.
    pub namespace: Option<&'a Value>,
}

/// Evaluates the policies on a write: an error when a binding with `Deny`
/// refuses it (422 `Invalid`, or the validation's `reason`) or an `Enforce`
/// Kyverno rule fails it, else the warnings of `Warn` bindings. `Audit`
/// results have no audit log or report to go to yet.
pub fn validating_policies(
    set: &PolicySet,
    params: &[Object],
    write: &Write,
) -> ApiResult<Vec<String>> {
    if set.is_empty() {
        return Ok(Vec::new());
    }
    let user = UserInfo::default();
    let request = request_of(write, &user);
    let evaluation = set.validate(&request, &params, &gitplane_policy::Supplied::default());
    let mut warnings = Vec::new();
    for result in evaluation.results {
        let (refusal, warning) = texts(&result);
        match (result.verdict, result.mode) {
            (Verdict::Fail | Verdict::Error, Mode::Enforce) => {
                return Err(denied(write, refusal, result.reason.as_deref()));
            }
            (Verdict::Fail | Verdict::Warn | Verdict::Error, Mode::Warn) => warnings.push(warning),
            _ => {}
        }
    }
    Ok(warnings)
}

/// The admission request a write stands for.
fn request_of<'a>(write: &Write<'a>, user: &'a UserInfo) -> Request<'a> {
    Request {
        object: write.object,
        old_object: write.old,
        operation: if write.old.is_some() {
            Operation::Update
        } else {
            Operation::Create
        },
        namespace_object: write.namespace,
        user,
        resource: Some(&write.t.plural),
    }
}

/// Applies the stored Kyverno mutate rules and MutatingPolicies to a
/// write, policy by policy,
/// as Kyverno's mutating webhook does before any validation: the object to
/// store if a rule changed it, and a warning for each rule that could not
/// be applied (the write goes on without that rule's change).
pub fn mutating_policies(set: &PolicySet, write: &Write) -> (Option<Value>, Vec<String>) {
    if !set.mutates() {
        return (None, Vec::new());
    }
    let user = UserInfo::default();
    let request = request_of(write, &user);
    let (mutated, results) = set.mutate(&request, &gitplane_policy::Supplied::default());
    let warnings = results
        .iter()
        .filter(|r| matches!(r.verdict, Verdict::Fail | Verdict::Error))
        .map(|r| match r.rule.as_str() {
            "" => format!(
                "Kyverno policy {}: mutation not applied: {}",
                r.policy, r.message
            ),
            rule => format!(
                "Kyverno policy {} (rule {rule}): mutation not applied: {}",
                r.policy, r.message
            ),
        })
        .collect();
    let changed = (mutated != *write.object).then_some(mutated);
    (changed, warnings)
}

/// What a refusal and a warning say, as each engine words them in a cluster.
fn texts(result: &gitplane_policy::RuleResult) -> (String, String) {
    let subject = match result.engine {
        gitplane_policy::Engine::Gatekeeper => {
            // Gatekeeper's webhook: `[constraint] message`.
            let message = format!("[{}] {}", result.policy, result.message);
            return (
                format!(
                    "admission webhook \"validation.gatekeeper.sh\" denied the request: {message}"
                ),
                message,
            );
        }
        gitplane_policy::Engine::Kyverno => {
            format!("Kyverno policy {} (rule {})", result.policy, result.rule)
        }
        _ => format!(
            "ValidatingAdmissionPolicy '{}' with binding '{}'",
            result.policy, result.rule
        ),
    };
    (
        format!("{subject} denied request: {}", result.message),
        format!("Validation failed for {subject}: {}", result.message),
    )
}

fn denied(write: &Write, text: String, reason: Option<&str>) -> ApiError {
    let t = write.t;
    let resource = if t.group.is_empty() {
        t.plural.clone()
    } else {
        format!("{}.{}", t.plural, t.group)
    };
    let name = write
        .object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match reason {
        Some("Forbidden") => {
            ApiError::forbidden(format!("{resource} \"{name}\" is forbidden: {text}"))
        }
        _ => ApiError::invalid(&t.kind, &t.group, name, vec![(String::new(), text)]),
    }
}

/// The standard a namespace label asks for (`enforce`, `warn`, `audit`).
fn labelled(namespace: &Value, mode: &str) -> Option<Standard> {
    let labels = namespace.pointer("/metadata/labels")?;
    let level = labels
        .get(format!("pod-security.kubernetes.io/{mode}"))?
        .as_str()?;
    let version = labels
        .get(format!("pod-security.kubernetes.io/{mode}-version"))
        .and_then(Value::as_str)
        .unwrap_or("latest");
    // A label the plugin cannot read is ignored, as a malformed one is
    // upstream (it falls back to the cluster default, privileged here).
    Standard::parse(&format!("{level}:{version}")).ok()
}

/// Pod Security admission for one write: an error when a Pod being created
/// fails the namespace's `enforce` level, else the warnings to return.
pub fn pod_security(
    config: &PodSecurityConfig,
    namespace: Option<&Value>,
    t: &ResourceType,
    object: &Value,
    creating: bool,
) -> ApiResult<Vec<String>> {
    let (Some(namespace), Value::Object(body)) = (namespace, object) else {
        return Ok(Vec::new());
    };
    if t.crd.is_some() {
        return Ok(Vec::new());
    }
    let object = Object::new(body.clone());
    let Some(pod) = pod_template(&object) else {
        return Ok(Vec::new());
    };
    let namespace_name = namespace
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if config.exempts(namespace_name, pod.spec) {
        return Ok(Vec::new());
    }
    // A namespace's label wins; without one, the configured default.
    let level = |mode: &str| labelled(namespace, mode).or_else(|| config.default_for(mode));
    let is_pod = t.group.is_empty() && t.kind == "Pod";
    if is_pod
        && creating
        && let Some(standard) = level("enforce")
    {
        let failures = check_pod(pod.metadata, pod.spec, standard);
        if !failures.is_empty() {
            return Err(ApiError::forbidden(format!(
                "pods \"{}\" is forbidden: {}",
                object.name(),
                summary(standard, &failures)
            )));
        }
    }
    let mut warnings = Vec::new();
    let mut modes = vec!["warn"];
    if !is_pod {
        // Workloads are not refused; the enforce level warns about them.
        modes.insert(0, "enforce");
    }
    for mode in modes {
        let Some(standard) = level(mode) else {
            continue;
        };
        let failures = check_pod(pod.metadata, pod.spec, standard);
        let warning = format!(
            "would {}",
            summary(standard, &failures).replacen("violates", "violate", 1)
        );
        if !failures.is_empty() && !warnings.contains(&warning) {
            warnings.push(warning);
        }
    }
    Ok(warnings)
}
