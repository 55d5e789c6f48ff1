//! Which kinds the cluster serves, cached, and refreshed when a kind is not
//! found (a CRD applied earlier in the same sync).

use std::collections::HashMap;
use std::sync::RwLock;

use gitplane_object::Gvk;
use kube::core::discovery::{ApiCapabilities, ApiResource, Scope};
use kube::discovery::Discovery;
use tokio::sync::Mutex;

/// A kind the cluster serves, at one version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceInfo {
    /// Group, version, kind and plural.
    pub resource: ApiResource,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
    /// The verbs it supports (`get`, `list`, `watch`, `patch`, ...).
    pub verbs: Vec<String>,
}

impl ResourceInfo {
    fn new(resource: ApiResource, caps: &ApiCapabilities) -> Self {
        ResourceInfo {
            resource,
            namespaced: caps.scope == Scope::Namespaced,
            verbs: caps.operations.clone(),
        }
    }

    /// The kind's group, version and name.
    pub fn gvk(&self) -> Gvk {
        Gvk::new(
            &self.resource.group,
            &self.resource.version,
            &self.resource.kind,
        )
    }

    /// Whether it supports a verb.
    pub fn supports(&self, verb: &str) -> bool {
        self.verbs.iter().any(|v| v == verb)
    }
}

#[derive(Default)]
struct Known {
    /// Every served (group, version, kind).
    exact: HashMap<(String, String, String), ResourceInfo>,
    /// The preferred version of every (group, kind).
    preferred: HashMap<(String, String), ResourceInfo>,
}

/// The discovery cache.
pub(crate) struct Cache {
    known: RwLock<Known>,
    /// How many refreshes have been installed; held while refreshing.
    generation: Mutex<u64>,
}

impl Cache {
    pub(crate) fn new() -> Self {
        Cache {
            known: RwLock::new(Known::default()),
            generation: Mutex::new(0),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Known> {
        self.known.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Replaces what is known with a fresh discovery.
    pub(crate) fn install(&self, discovery: &Discovery) {
        let mut known = Known::default();
        for group in discovery.groups() {
            for version in group.versions() {
                for (resource, caps) in group.versioned_resources(version) {
                    let key = (
                        resource.group.clone(),
                        resource.version.clone(),
                        resource.kind.clone(),
                    );
                    known.exact.insert(key, ResourceInfo::new(resource, &caps));
                }
            }
            for (resource, caps) in group.recommended_resources() {
                let key = (resource.group.clone(), resource.kind.clone());
                known
                    .preferred
                    .insert(key, ResourceInfo::new(resource, &caps));
            }
        }
        *self.known.write().unwrap_or_else(|p| p.into_inner()) = known;
    }

    /// The current generation (to pass to [`Cache::refresh_slot`] later).
    pub(crate) async fn generation(&self) -> u64 {
        *self.generation.lock().await
    }

    /// Takes the refresh slot, unless a refresh was installed since the
    /// caller saw generation `seen` (then its miss is already answered).
    /// Concurrent misses thus share one refresh. `None` for `seen` always
    /// refreshes.
    pub(crate) async fn refresh_slot(
        &self,
        seen: Option<u64>,
    ) -> Option<tokio::sync::MutexGuard<'_, u64>> {
        let generation = self.generation.lock().await;
        match seen {
            Some(seen) if *generation != seen => None,
            _ => Some(generation),
        }
    }

    /// The served resource for a kind at a version, if known.
    pub(crate) fn lookup(&self, gvk: &Gvk) -> Option<ResourceInfo> {
        let key = (gvk.group.clone(), gvk.version.clone(), gvk.kind.clone());
        self.read().exact.get(&key).cloned()
    }

    /// The preferred version of a group and kind, if served.
    pub(crate) fn preferred(&self, group: &str, kind: &str) -> Option<ResourceInfo> {
        self.read()
            .preferred
            .get(&(group.to_string(), kind.to_string()))
            .cloned()
    }

    /// Every kind at its preferred version.
    pub(crate) fn all_preferred(&self) -> Vec<ResourceInfo> {
        let mut all: Vec<ResourceInfo> = self.read().preferred.values().cloned().collect();
        all.sort_by(|a, b| {
            (&a.resource.group, &a.resource.kind).cmp(&(&b.resource.group, &b.resource.kind))
        });
        all
    }
}
