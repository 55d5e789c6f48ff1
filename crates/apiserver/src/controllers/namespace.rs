//! Namespace deletion: a Namespace being deleted is `Terminating` until every
//! object in it is gone; then its `kubernetes` finalizer is removed and it goes.

use serde_json::{Value, json};

use super::{name_of, options, target_of};
use crate::api::{Api, DeleteOptions, PatchKind};
use crate::semantics;
use crate::store::{Event, EventKind};

/// The namespace controller.
pub struct NamespaceController {
    api: Api,
}

impl NamespaceController {
    /// A controller for the API's namespaces.
    pub fn new(api: Api) -> Self {
        NamespaceController { api }
    }

    /// Works on every terminating namespace.
    pub async fn resync(&self) {
        let (namespaces, _) = self.api.store.list("/namespaces//");
        for (_, ns) in namespaces {
            if semantics::is_deleting(&ns) {
                self.clean_up(&ns).await;
            }
        }
    }

    /// Reacts to a change: a namespace marked for deletion, or an object gone
    /// from a terminating namespace.
    pub async fn observe(&self, event: &Event) {
        if event.key.starts_with("/namespaces//")
            && event.kind != EventKind::Deleted
            && semantics::is_deleting(&event.object)
        {
            self.clean_up(&event.object).await;
        } else if event.kind == EventKind::Deleted
            && let Some(ns) = event
                .object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
            && let Some(namespace) = self.api.store.get(&format!("/namespaces//{ns}"))
            && semantics::is_deleting(&namespace)
        {
            self.clean_up(&namespace).await;
        }
    }

    async fn clean_up(&self, namespace: &Value) {
        let ns = name_of(namespace).to_string();
        let mut remaining = 0;
        for resource in self.api.registry.all().into_iter().filter(|t| t.namespaced) {
            let (items, _) = self
                .api
                .store
                .list(&format!("{}{ns}/", resource.key_prefix()));
            for (_, object) in items {
                remaining += 1;
                if semantics::is_deleting(&object) {
                    continue;
                }
                if let Some(target) = target_of(&self.api, &object) {
                    let _ = self
                        .api
                        .delete(&target, name_of(&object), &DeleteOptions::default())
                        .await;
                }
            }
        }
        if remaining > 0 {
            return;
        }
        let finalizers: Vec<Value> = namespace
            .pointer("/spec/finalizers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|f| f.as_str() != Some("kubernetes"))
            .cloned()
            .collect();
        if let Some(target) = target_of(&self.api, namespace) {
            let _ = self
                .api
                .patch(
                    &target,
                    &ns,
                    PatchKind::Merge,
                    json!({"spec": {"finalizers": finalizers}}),
                    None,
                    &options(),
                )
                .await;
        }
    }
}
