//! Garbage collection by owner references: when an owner is deleted, its
//! dependents are deleted (background propagation); an owner deleted with
//! `Foreground` waits (its `foregroundDeletion` finalizer) until its dependents
//! are gone; one deleted with `Orphan` has its dependents' owner references
//! removed before it goes.

use std::collections::{HashMap, HashSet};

use serde_json::{Value, json};

use super::{name_of, options, target_of};
use crate::api::delete::{FOREGROUND, ORPHAN};
use crate::api::{Api, DeleteOptions, PatchKind};
use crate::semantics;
use crate::store::{Event, EventKind};

/// The garbage collector and its index of owners to dependents.
pub struct GarbageCollector {
    api: Api,
    /// Owner uid → storage keys of its dependents.
    dependents: HashMap<String, HashSet<String>>,
    /// Storage key → owner uids it lists.
    owners_of: HashMap<String, Vec<String>>,
    /// uid → storage key, of every object.
    keys: HashMap<String, String>,
}

fn owner_uids(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("uid")?.as_str().map(str::to_string))
        .collect()
}

fn uid(object: &Value) -> Option<String> {
    object
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .map(str::to_string)
}

impl GarbageCollector {
    /// A collector for the API's objects.
    pub fn new(api: Api) -> Self {
        GarbageCollector {
            api,
            dependents: HashMap::new(),
            owners_of: HashMap::new(),
            keys: HashMap::new(),
        }
    }

    fn index(&mut self, key: &str, object: &Value) {
        self.unindex(key);
        if let Some(uid) = uid(object) {
            self.keys.insert(uid, key.to_string());
        }
        let owners = owner_uids(object);
        for owner in &owners {
            self.dependents
                .entry(owner.clone())
                .or_default()
                .insert(key.to_string());
        }
        self.owners_of.insert(key.to_string(), owners);
    }

    fn unindex(&mut self, key: &str) {
        for owner in self.owners_of.remove(key).unwrap_or_default() {
            if let Some(set) = self.dependents.get_mut(&owner) {
                set.remove(key);
            }
        }
    }

    /// Rebuilds the index from the store and collects what is due.
    pub async fn resync(&mut self) {
        let (all, _) = self.api.store.list("");
        self.dependents.clear();
        self.owners_of.clear();
        self.keys.clear();
        for (key, object) in &all {
            self.index(key, object);
        }
        // Dependents whose owners no longer exist.
        for (key, object) in &all {
            let owners = owner_uids(object);
            if !owners.is_empty() && owners.iter().all(|o| !self.keys.contains_key(o)) {
                self.delete(key, object).await;
            }
        }
        for (_, object) in &all {
            self.process_deleting_owner(object).await;
        }
    }

    /// Reacts to one change.
    pub async fn observe(&mut self, event: &Event) {
        match event.kind {
            EventKind::Deleted => {
                self.unindex(&event.key);
                let Some(owner) = uid(&event.object) else {
                    return;
                };
                self.keys.remove(&owner);
                for key in self.dependents.remove(&owner).unwrap_or_default() {
                    if let Some(dependent) = self.api.store.get(&key) {
                        let others: Vec<String> = owner_uids(&dependent)
                            .into_iter()
                            .filter(|o| *o != owner && self.keys.contains_key(o))
                            .collect();
                        if others.is_empty() {
                            self.delete(&key, &dependent).await;
                        } else {
                            self.drop_owner_reference(&dependent, &owner).await;
                        }
                    }
                }
                self.release_owners_waiting_for(&event.object).await;
            }
            _ => {
                self.index(&event.key, &event.object);
                self.process_deleting_owner(&event.object).await;
            }
        }
    }

    /// An owner marked for deletion with `orphan` or `foregroundDeletion`.
    async fn process_deleting_owner(&self, object: &Value) {
        if !semantics::is_deleting(object) {
            return;
        }
        let finalizers = semantics::finalizers(object);
        let Some(owner) = uid(object) else { return };
        let dependents: Vec<String> = self
            .dependents
            .get(&owner)
            .map(|s| s.iter().cloned().collect())
            .unwrap_or_default();
        if finalizers.iter().any(|f| f == ORPHAN) {
            for key in &dependents {
                if let Some(dependent) = self.api.store.get(key) {
                    self.drop_owner_reference(&dependent, &owner).await;
                }
            }
            self.remove_finalizer(object, ORPHAN).await;
        } else if finalizers.iter().any(|f| f == FOREGROUND) {
            if dependents.is_empty() {
                self.remove_finalizer(object, FOREGROUND).await;
            }
            for key in &dependents {
                if let Some(dependent) = self.api.store.get(key) {
                    self.delete(key, &dependent).await;
                }
            }
        }
    }

    /// When a dependent goes, owners waiting in foreground deletion may finish.
    async fn release_owners_waiting_for(&self, dependent: &Value) {
        for owner in owner_uids(dependent) {
            let Some(key) = self.keys.get(&owner) else {
                continue;
            };
            let Some(object) = self.api.store.get(key) else {
                continue;
            };
            if semantics::finalizers(&object)
                .iter()
                .any(|f| f == FOREGROUND)
                && self.dependents.get(&owner).is_none_or(HashSet::is_empty)
            {
                self.remove_finalizer(&object, FOREGROUND).await;
            }
        }
    }

    async fn delete(&self, _key: &str, object: &Value) {
        let Some(target) = target_of(&self.api, object) else {
            return;
        };
        let _ = self
            .api
            .delete(
                &target,
                name_of(object),
                &DeleteOptions {
                    propagation: Some("Background".into()),
                    ..DeleteOptions::default()
                },
            )
            .await;
    }

    async fn drop_owner_reference(&self, object: &Value, owner: &str) {
        let Some(target) = target_of(&self.api, object) else {
            return;
        };
        let refs: Vec<Value> = object
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|r| r.get("uid").and_then(Value::as_str) != Some(owner))
            .cloned()
            .collect();
        let refs = if refs.is_empty() {
            Value::Null
        } else {
            json!(refs)
        };
        let _ = self
            .api
            .patch(
                &target,
                name_of(object),
                PatchKind::Merge,
                json!({"metadata": {"ownerReferences": refs}}),
                None,
                &options(),
            )
            .await;
    }

    async fn remove_finalizer(&self, object: &Value, finalizer: &str) {
        let Some(target) = target_of(&self.api, object) else {
            return;
        };
        let remaining: Vec<String> = semantics::finalizers(object)
            .into_iter()
            .filter(|f| f != finalizer)
            .collect();
        let value = if remaining.is_empty() {
            Value::Null
        } else {
            json!(remaining)
        };
        let _ = self
            .api
            .patch(
                &target,
                name_of(object),
                PatchKind::Merge,
                json!({"metadata": {"finalizers": value}}),
                None,
                &options(),
            )
            .await;
    }
}
