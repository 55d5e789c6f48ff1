//! Kyverno's background controller for generate rules (`data` and
//! `clone`), as a cluster with Kyverno runs it: when an object a stored
//! generate rule selects is written, the rule's object is created (for
//! `clone`, a copy of the source object), labelled with Kyverno's
//! `generate.kyverno.io/*` labels naming the policy, the rule and the
//! trigger. With `synchronize: true` it is kept so: changed or deleted, it
//! is put back; its trigger deleted, it goes; a clone's source changed,
//! every copy changes (for a source the rule names without variables).
//! Without, it is created once and left to its users.

use gitplane_object::{LabelSelector, Map, ObjectKey, json, split_api_version};
use gitplane_policy::kyverno::Generated;
use gitplane_policy::{Lookup, PolicySet, Request, Supplied};
use serde_json::Value;

use super::{name_of, target_of};
use crate::api::{Api, DeleteOptions, PatchKind, Target, WriteOptions};
use crate::store::{Event, EventKind};

/// The field manager of generated objects.
const MANAGER: &str = "kyverno-generate";
const POLICY: &str = "generate.kyverno.io/policy-name";
const RULE: &str = "generate.kyverno.io/rule-name";
const TRIGGER_GROUP: &str = "generate.kyverno.io/trigger-group";
const TRIGGER_VERSION: &str = "generate.kyverno.io/trigger-version";
const TRIGGER_KIND: &str = "generate.kyverno.io/trigger-kind";
const TRIGGER_NAMESPACE: &str = "generate.kyverno.io/trigger-namespace";
const TRIGGER_NAME: &str = "generate.kyverno.io/trigger-name";

/// The controller.
pub struct GenerateController {
    api: Api,
}

/// A label of an object, if set.
fn label<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object.pointer("/metadata/labels")?.get(key)?.as_str()
}

/// The labels that tie a generated object to its policy, rule and trigger.
fn generated_labels(generated: &Generated, trigger: &Value) -> Map<String, Value> {
    let (group, version) = split_api_version(trigger["apiVersion"].as_str().unwrap_or_default());
    let meta = &trigger["metadata"];
    let mut labels = Map::new();
    labels.insert("app.kubernetes.io/managed-by".into(), json!("kyverno"));
    labels.insert(POLICY.into(), json!(generated.policy));
    labels.insert(RULE.into(), json!(generated.rule));
    labels.insert(TRIGGER_GROUP.into(), json!(group));
    labels.insert(TRIGGER_VERSION.into(), json!(version));
    labels.insert(TRIGGER_KIND.into(), trigger["kind"].clone());
    labels.insert(
        TRIGGER_NAMESPACE.into(),
        json!(meta["namespace"].as_str().unwrap_or_default()),
    );
    labels.insert(TRIGGER_NAME.into(), meta["name"].clone());
    labels
}

impl GenerateController {
    /// A controller for the API's stored generate rules.
    pub fn new(api: Api) -> Self {
        GenerateController { api }
    }

    /// Reacts to a change: a trigger written or deleted, or a generated
    /// object changed or deleted.
    pub async fn observe(&self, event: &Event) {
        let set = self.api.policies.get(&self.api.store);
        if !set.generates() {
            return;
        }
        let object = event.object.as_ref();
        if label(object, POLICY).is_some() {
            if let Some(trigger) = self.trigger_of(object) {
                self.generate(&set, &trigger, true).await;
            }
            return;
        }
        if event.kind != EventKind::Deleted {
            self.copy_changed_source(&set, object).await;
        }
        match event.kind {
            EventKind::Deleted => self.remove_generated(&set, object).await,
            _ => self.generate(&set, object, false).await,
        }
    }

    /// A synchronized clone rule's source changed: every copy the rule made
    /// is made again from it.
    async fn copy_changed_source(&self, set: &PolicySet, object: &Value) {
        if set.clone_sources().next().is_none() {
            return;
        }
        let key = object_key(object);
        for (policy, rule, source) in set.clone_sources() {
            if *source != key {
                continue;
            }
            let Some(target) = self.api.target_for_kind(&key.group, &key.kind, None) else {
                continue;
            };
            let (copies, _) = self.api.store.list(&target.resource.key_prefix());
            for (_, copy) in copies {
                if label(&copy, POLICY) == Some(policy)
                    && label(&copy, RULE) == Some(rule)
                    && let Some(trigger) = self.trigger_of(&copy)
                {
                    self.generate(set, &trigger, true).await;
                }
            }
        }
    }

    /// The trigger a generated object names in its labels, if it exists.
    fn trigger_of(&self, generated: &Value) -> Option<Value> {
        let namespace = label(generated, TRIGGER_NAMESPACE).filter(|n| !n.is_empty());
        let target = self.api.target_for_kind(
            label(generated, TRIGGER_GROUP).unwrap_or_default(),
            label(generated, TRIGGER_KIND)?,
            namespace,
        )?;
        let key = target.key(label(generated, TRIGGER_NAME)?);
        self.api.store.get(&key).map(|o| o.as_ref().clone())
    }

    /// What the stored generate rules make for `trigger`.
    fn evaluate(&self, set: &PolicySet, trigger: &Value) -> Vec<Generated> {
        let namespace = self.api.namespace_object(
            trigger
                .pointer("/metadata/namespace")
                .and_then(Value::as_str),
        );
        let request = Request {
            namespace_object: namespace.as_deref(),
            ..Request::create(trigger)
        };
        set.generate(&request, &Supplied::default(), &Stored(&self.api))
            .0
    }

    /// Creates what the rules make for `trigger` (and, for synchronized
    /// rules, puts it back as the rule says). `only_synchronized`: a
    /// generated object changed, so only rules that keep theirs act.
    async fn generate(&self, set: &PolicySet, trigger: &Value, only_synchronized: bool) {
        for generated in self.evaluate(set, trigger) {
            if only_synchronized && !generated.synchronize {
                continue;
            }
            let mut object = generated.object.to_value();
            let labels = generated_labels(&generated, trigger);
            match object
                .pointer_mut("/metadata/labels")
                .and_then(Value::as_object_mut)
            {
                Some(existing) => existing.extend(labels),
                None => object["metadata"]["labels"] = Value::Object(labels),
            }
            let Some(target) = target_of(&self.api, &object) else {
                continue;
            };
            let name = name_of(&object).to_string();
            let exists = self.api.store.get(&target.key(&name)).is_some();
            if exists && !generated.synchronize {
                continue;
            }
            let apply = WriteOptions {
                manager: Some(MANAGER.to_string()),
                force: true,
                queued: true,
                ..WriteOptions::default()
            };
            let _ = self
                .api
                .patch(&target, &name, PatchKind::Apply, object, None, &apply)
                .await;
        }
    }

    /// A trigger went: what synchronized rules made for it goes too.
    async fn remove_generated(&self, set: &PolicySet, trigger: &Value) {
        for generated in self.evaluate(set, trigger) {
            if !generated.synchronize {
                continue;
            }
            let object = generated.object.to_value();
            if let Some(target) = target_of(&self.api, &object) {
                let _ = self
                    .api
                    .delete(&target, name_of(&object), &DeleteOptions::default())
                    .await;
            }
        }
    }
}

/// The identity of a stored object.
fn object_key(object: &Value) -> ObjectKey {
    let text = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
    };
    let (group, _) = split_api_version(text("/apiVersion"));
    ObjectKey::new(
        group,
        text("/kind"),
        text("/metadata/namespace"),
        text("/metadata/name"),
    )
}

/// The stored objects, for what clone rules copy.
struct Stored<'a>(&'a Api);

impl Stored<'_> {
    /// Where objects of this type (in `namespace`) are stored.
    fn target(&self, api_version: &str, kind: &str, namespace: Option<&str>) -> Option<Target> {
        let (group, _) = split_api_version(api_version);
        self.0.target_for_kind(group, kind, namespace)
    }
}

impl Lookup for Stored<'_> {
    fn get_object(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        let target = self.target(api_version, kind, namespace)?;
        self.0
            .store
            .get(&target.key(name))
            .map(|o| o.as_ref().clone())
    }

    fn list_objects(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        selector: &LabelSelector,
    ) -> Vec<Value> {
        let Some(target) = self.target(api_version, kind, namespace) else {
            return Vec::new();
        };
        let prefix = match &target.namespace {
            Some(namespace) => format!("{}{namespace}/", target.resource.key_prefix()),
            None => target.resource.key_prefix(),
        };
        self.0
            .store
            .list(&prefix)
            .0
            .into_iter()
            .map(|(_, o)| o.as_ref().clone())
            .filter(|o| selector.matches(o.pointer("/metadata/labels").and_then(Value::as_object)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use gitplane_object::Object;

    #[test]
    fn generated_objects_name_their_policy_rule_and_trigger() {
        let generated = Generated {
            policy: "default-deny".into(),
            rule: "netpol".into(),
            object: Object::with_type("networking.k8s.io/v1", "NetworkPolicy", "deny"),
            synchronize: true,
            clone_source: None,
        };
        let trigger =
            json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "shop"}});
        let labels = Value::Object(generated_labels(&generated, &trigger));
        let object = json!({"metadata": {"labels": labels}});
        assert_eq!(label(&object, POLICY), Some("default-deny"));
        assert_eq!(label(&object, TRIGGER_KIND), Some("Namespace"));
        assert_eq!(label(&object, TRIGGER_NAMESPACE), Some(""));
        assert_eq!(label(&object, TRIGGER_VERSION), Some("v1"));
        assert_eq!(
            label(&object, "app.kubernetes.io/managed-by"),
            Some("kyverno")
        );
    }
}
