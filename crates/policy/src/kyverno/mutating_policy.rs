//! Kyverno's CEL `MutatingPolicy` (`policies.kyverno.io`), evaluated as a
//! MutatingAdmissionPolicy is: `matchConstraints` select the request,
//! `variables` and then `matchConditions` (which may read them, as Kyverno
//! allows) are evaluated, then each
//! of `mutations` in order, each seeing the object as the ones before it left
//! it:
//! - `ApplyConfiguration`: an expression building the fields to set
//!   (`Object{spec: Object.spec{…}}`), merged into the object as server-side
//!   apply merges (maps field by field, containers by name, atomic lists
//!   replaced; custom resources merge maps and replace lists);
//! - `JSONPatch`: an expression giving a list of JSON patch operations
//!   (`JSONPatch{op: "add", path: …, value: …}`), applied in order.
//!
//! A request the policy applies to gives a `pass` (as Kyverno reports it,
//! whether or not the object changed); a false match condition gives no
//! result (Kyverno's CLI reports `skip`). A mutation that fails gives an
//! `error` (with `failurePolicy: Ignore`, nothing).
//! Not evaluated: autogen for pod controllers, `reinvocationPolicy`,
//! `mutateExisting`, and Kyverno's own CEL libraries (`resource.Get`,
//! `http.Get`, `image(…)`, which need a cluster or a network): a policy that
//! calls them does not compile and is reported so.

use std::cell::Cell;
use std::sync::Arc;

use gitplane_cel::{Env, Program};
use gitplane_object::smp::{ListType, Shape, root_for, structured};
use gitplane_object::{Object, Value, split_api_version};

use crate::result::{Engine, Mode, RuleResult, Verdict};
use crate::shared::Shared;
use crate::vap::{self, CelPrelude, FailurePolicy, MatchResources};

use super::mutate::apply_json6902;

/// One `mutations` entry.
#[derive(Debug)]
enum Mutation {
    /// `applyConfiguration.expression`.
    ApplyConfiguration(Arc<Program>),
    /// `jsonPatch.expression`.
    JsonPatch(Arc<Program>),
}

/// A compiled MutatingPolicy.
#[derive(Debug)]
pub struct MutatingPolicy {
    /// `metadata.name`.
    pub name: String,
    matcher: MatchResources,
    prelude: CelPrelude,
    mutations: Vec<Mutation>,
}

impl MutatingPolicy {
    /// Compiles a MutatingPolicy (or a NamespacedMutatingPolicy).
    pub fn parse(env: &Env, object: &Object) -> Result<MutatingPolicy, String> {
        let spec = object.get(&["spec"]).cloned().unwrap_or(Value::Null);
        let mut mutations = Vec::new();
        for (i, entry) in spec["mutations"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let what = format!("mutations[{i}]");
            let (field, make): (&str, fn(Arc<Program>) -> Mutation) = match entry["patchType"]
                .as_str()
            {
                Some("ApplyConfiguration") => ("applyConfiguration", Mutation::ApplyConfiguration),
                Some("JSONPatch") => ("jsonPatch", Mutation::JsonPatch),
                other => {
                    return Err(format!(
                        "{what}: patchType {other:?}: must be ApplyConfiguration or JSONPatch"
                    ));
                }
            };
            let source = entry[field]["expression"]
                .as_str()
                .ok_or_else(|| format!("{what}: {field}.expression is required"))?;
            let program = env
                .compile(source)
                .map_err(|e| format!("{what}.{field}: {e}"))?;
            mutations.push(make(program));
        }
        if mutations.is_empty() {
            return Err("spec.mutations is required".into());
        }
        let mut matcher = spec["matchConstraints"].clone();
        if object.kind() == "NamespacedMutatingPolicy"
            && let Some(namespace) = object.namespace()
            && let Some(constraints) = matcher.as_object_mut()
        {
            // A namespaced policy sees only its own namespace.
            constraints.insert(
                "namespaceSelector".into(),
                serde_json::json!({"matchLabels": {"kubernetes.io/metadata.name": namespace}}),
            );
        }
        Ok(MutatingPolicy {
            name: object.name().to_string(),
            matcher: MatchResources::parse(&matcher)?,
            prelude: CelPrelude::parse(env, &spec)?.with_variables_in_conditions(),
            mutations,
        })
    }

    /// Mutates the request's object: the object as mutated, if the policy
    /// changed it, and its result. Returns the CEL cost spent.
    pub fn mutate(&self, shared: &Shared, results: &mut Vec<RuleResult>) -> (Option<Value>, u64) {
        if !self.matcher.matches(&shared.request) {
            return (None, 0);
        }
        let cost = Cell::new(0);
        let eval = vap::costed_eval(&cost);
        let outcome =
            self.prelude
                .prepare(shared, None, &cost)
                .and_then(|prepared| match prepared {
                    None => Ok(None),
                    Some(mut prepared) => {
                        let mut object = shared.request.object.clone();
                        for (i, mutation) in self.mutations.iter().enumerate() {
                            prepared.activation.set_json("object", &object);
                            object = self
                                .apply(mutation, &prepared, &eval, object)
                                .map_err(|e| format!("mutations[{i}]: {e}"))?;
                        }
                        Ok(Some(object))
                    }
                });
        let result = |verdict, message: String| {
            RuleResult::new(
                Engine::Kyverno,
                &self.name,
                "",
                verdict,
                Mode::Enforce,
                message,
            )
        };
        let mutated = match outcome {
            Ok(Some(object)) => {
                let changed = object != *shared.request.object;
                let message = if changed {
                    "mutated"
                } else {
                    "nothing to change"
                };
                results.push(result(Verdict::Pass, message.into()));
                changed.then_some(object)
            }
            Ok(None) => None,
            Err(message) => {
                if self.prelude.failure_policy == FailurePolicy::Fail {
                    results.push(result(Verdict::Error, message));
                }
                None
            }
        };
        (mutated, cost.get())
    }

    fn apply(
        &self,
        mutation: &Mutation,
        prepared: &vap::Prepared,
        eval: &impl Fn(&Program, &gitplane_cel::Activation) -> Result<Value, gitplane_cel::CelError>,
        object: Value,
    ) -> Result<Value, String> {
        let program = match mutation {
            Mutation::ApplyConfiguration(p) | Mutation::JsonPatch(p) => p,
        };
        if let Some((name, e)) = prepared.broken_variable(program) {
            return Err(format!("variable {name:?} failed: {e}"));
        }
        let produced = eval(program, &prepared.activation).map_err(|e| e.to_string())?;
        match mutation {
            Mutation::ApplyConfiguration(_) => apply_configuration(object, &produced),
            Mutation::JsonPatch(_) => {
                if !produced.is_array() {
                    return Err(format!("expected a list of JSONPatch, got {produced}"));
                }
                apply_json6902(&object, &produced)
            }
        }
    }
}

/// Merges an apply configuration into the object, by the object's type.
/// An empty list for a field the object does not have is left out, as the
/// typed objects Kubernetes merges leave empty lists out.
fn apply_configuration(object: Value, configuration: &Value) -> Result<Value, String> {
    if !configuration.is_object() {
        return Err(format!("expected an Object{{…}}, got {configuration}"));
    }
    let configuration = without_new_empty_lists(configuration, &object);
    let (group, _) = split_api_version(object["apiVersion"].as_str().unwrap_or_default());
    let shape = Shape::BuiltIn(root_for(group, object["kind"].as_str().unwrap_or_default()));
    Ok(structured::merge(
        object,
        &configuration,
        shape,
        &ListType::Atomic,
    ))
}

/// The configuration without the empty lists it sets on fields `object`
/// lacks, at any depth of maps.
fn without_new_empty_lists(configuration: &Value, object: &Value) -> Value {
    let Value::Object(fields) = configuration else {
        return configuration.clone();
    };
    let kept = fields.iter().filter_map(|(key, value)| {
        let existing = object.get(key);
        match value {
            Value::Array(items) if items.is_empty() && existing.is_none() => None,
            Value::Object(_) => Some((
                key.clone(),
                without_new_empty_lists(value, existing.unwrap_or(&Value::Null)),
            )),
            _ => Some((key.clone(), value.clone())),
        }
    });
    Value::Object(kept.collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::Request;
    use serde_json::json;

    fn policy(spec: Value) -> MutatingPolicy {
        let object = Object::new(
            json!({
                "apiVersion": "policies.kyverno.io/v1alpha1",
                "kind": "MutatingPolicy",
                "metadata": {"name": "p"},
                "spec": spec,
            })
            .as_object()
            .cloned()
            .unwrap(),
        );
        MutatingPolicy::parse(&Env::default(), &object).unwrap()
    }

    fn run(policy: &MutatingPolicy, object: &Value) -> (Option<Value>, Vec<RuleResult>) {
        let request = Request::create(object);
        let mut results = Vec::new();
        let (mutated, _) = policy.mutate(&Shared::new(request), &mut results);
        (mutated, results)
    }

    fn pods() -> Value {
        json!({"resourceRules": [{"apiGroups": [""], "apiVersions": ["v1"],
            "operations": ["CREATE"], "resources": ["pods"]}]})
    }

    fn pod() -> Value {
        json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "a"},
            "spec": {"containers": [{"name": "app", "image": "x"}, {"name": "side", "image": "y"}]}})
    }

    #[test]
    fn an_apply_configuration_merges_containers_by_name() {
        let policy = policy(json!({
            "matchConstraints": pods(),
            "mutations": [{"patchType": "ApplyConfiguration", "applyConfiguration": {"expression":
                "Object{metadata: Object.metadata{labels: {'a': 'b'}}, spec: Object.spec{containers: [Object.spec.containers{name: 'side', imagePullPolicy: 'Always'}]}}"}}],
        }));
        let (mutated, results) = run(&policy, &pod());
        let mutated = mutated.unwrap();
        assert_eq!(mutated["metadata"]["labels"], json!({"a": "b"}));
        assert_eq!(
            mutated["spec"]["containers"],
            json!([{"name": "app", "image": "x"}, {"name": "side", "image": "y", "imagePullPolicy": "Always"}])
        );
        assert_eq!(results[0].verdict, Verdict::Pass);
    }

    #[test]
    fn json_patches_apply_in_order_and_see_earlier_mutations() {
        let policy = policy(json!({
            "matchConstraints": pods(),
            "mutations": [
                {"patchType": "JSONPatch", "jsonPatch": {"expression":
                    "[JSONPatch{op: 'add', path: '/metadata/labels', value: {'n': string(size(object.spec.containers))}}]"}},
                {"patchType": "JSONPatch", "jsonPatch": {"expression":
                    "[JSONPatch{op: 'add', path: '/metadata/annotations', value: {'copy': object.metadata.labels.n}}]"}},
            ],
        }));
        let mutated = run(&policy, &pod()).0.unwrap();
        assert_eq!(mutated["metadata"]["labels"], json!({"n": "2"}));
        assert_eq!(mutated["metadata"]["annotations"], json!({"copy": "2"}));
    }

    #[test]
    fn unmatched_unchanged_and_failing_policies() {
        let unmatched = policy(json!({
            "matchConstraints": pods(),
            "matchConditions": [{"name": "never", "expression": "false"}],
            "mutations": [{"patchType": "JSONPatch", "jsonPatch": {"expression": "[]"}}],
        }));
        assert_eq!(run(&unmatched, &pod()), (None, vec![]));
        let unchanged = policy(json!({
            "matchConstraints": pods(),
            "variables": [{"name": "none", "expression": "object.spec.containers.size() == 0"}],
            "matchConditions": [{"name": "reads-variables", "expression": "!variables.none"}],
            "mutations": [{"patchType": "ApplyConfiguration", "applyConfiguration": {"expression":
                "Object{spec: Object.spec{initContainers: []}}"}}],
        }));
        let (mutated, results) = run(&unchanged, &pod());
        assert_eq!(mutated, None, "no empty list where there was none");
        assert_eq!(results[0].verdict, Verdict::Pass);
        let failing = policy(json!({
            "matchConstraints": pods(),
            "mutations": [{"patchType": "JSONPatch", "jsonPatch": {"expression":
                "[JSONPatch{op: 'replace', path: '/nope/x', value: 1}]"}}],
        }));
        let (mutated, results) = run(&failing, &pod());
        assert_eq!(mutated, None);
        assert_eq!(results[0].verdict, Verdict::Error);
        let deployment =
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "d"}});
        assert_eq!(run(&failing, &deployment), (None, vec![]));
    }
}
