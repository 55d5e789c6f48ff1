//! What an expansion reads from the cluster, fetched ahead of it.
//!
//! Expansion is pure and synchronous; the cluster is neither. So an
//! expansion runs against a cache: every object it asks for and the cache
//! lacks is noted and read as missing, the noted objects are fetched, and
//! the expansion runs again — until it asks for nothing new.

use std::collections::HashMap;
use std::sync::Mutex;

use gitplane_cluster::Cluster;
use gitplane_graph::{Observed, is_cluster_scoped_builtin};
use gitplane_object::{Gvk, LabelSelector, Object, split_api_version};
use serde_json::Value;

/// One read the expansion wants.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Read {
    /// An object by type, namespace and name.
    One {
        api_version: String,
        kind: String,
        namespace: String,
        name: String,
    },
    /// Objects of a type matching a selector (its JSON text).
    Select {
        api_version: String,
        kind: String,
        namespace: String,
        selector: String,
    },
}

/// The live objects an instance's expansion has read, and those it wants.
pub(super) struct LiveObserved<'a> {
    cluster: &'a Cluster,
    found: HashMap<Read, Option<Value>>,
    wanted: Mutex<Vec<Read>>,
}

impl<'a> LiveObserved<'a> {
    pub(super) fn new(cluster: &'a Cluster) -> Self {
        LiveObserved {
            cluster,
            found: HashMap::new(),
            wanted: Mutex::new(Vec::new()),
        }
    }

    /// Fetches what the last expansion wanted; `false` if it wanted nothing
    /// new (the expansion saw everything it needed).
    pub(super) async fn fetch_wanted(&mut self) -> bool {
        let wanted: Vec<Read> = std::mem::take(&mut *self.lock_wanted());
        let mut fetched = false;
        for read in wanted {
            if self.found.contains_key(&read) {
                continue;
            }
            let value = self.fetch(&read).await;
            self.found.insert(read, value);
            fetched = true;
        }
        fetched
    }

    async fn fetch(&self, read: &Read) -> Option<Value> {
        match read {
            Read::One {
                api_version,
                kind,
                namespace,
                name,
            } => {
                let gvk = Gvk::from_api_version(api_version, kind);
                match self.cluster.get(&gvk, namespace, name).await {
                    Ok(found) => found.map(|o| o.to_value()),
                    Err(e) => {
                        tracing::debug!("reading {kind} {namespace}/{name}: {e}");
                        None
                    }
                }
            }
            Read::Select {
                api_version,
                kind,
                namespace,
                selector,
            } => {
                let (group, _) = split_api_version(api_version);
                let info = self.cluster.preferred(group, kind)?;
                let selector: Value = serde_json::from_str(selector).ok()?;
                let text = LabelSelector::from_json(&selector).ok()?.to_string();
                let namespace = Some(namespace.as_str()).filter(|ns| !ns.is_empty());
                let objects = self
                    .cluster
                    .list(&info, namespace, Some(&text))
                    .await
                    .ok()?;
                Some(Value::Array(
                    objects.into_iter().map(Object::into_value).collect(),
                ))
            }
        }
    }

    /// Records what the cluster stored for an object just applied.
    pub(super) fn store(&mut self, object: &Object) {
        self.found.insert(read_of(object), Some(object.to_value()));
    }

    /// Whether the object did not exist when it was read.
    pub(super) fn was_missing(&self, object: &Object) -> bool {
        matches!(self.found.get(&read_of(object)), Some(None) | None)
    }

    /// The live object, as read or stored.
    pub(super) fn get(&self, object: &Object) -> Option<Value> {
        self.found.get(&read_of(object)).cloned().flatten()
    }

    fn lock_wanted(&self) -> std::sync::MutexGuard<'_, Vec<Read>> {
        self.wanted.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lookup(&self, read: Read) -> Option<Option<Value>> {
        match self.found.get(&read) {
            Some(value) => Some(value.clone()),
            None => {
                self.lock_wanted().push(read);
                None
            }
        }
    }
}

fn read_of(object: &Object) -> Read {
    Read::One {
        api_version: object.api_version().to_string(),
        kind: object.kind().to_string(),
        namespace: object.namespace().unwrap_or_default().to_string(),
        name: object.name().to_string(),
    }
}

impl Observed for LiveObserved<'_> {
    fn live(&self, desired: &Object) -> Option<Option<Value>> {
        Some(self.lookup(read_of(desired)).flatten())
    }

    fn external(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Value> {
        self.lookup(Read::One {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: namespace.unwrap_or_default().to_string(),
            name: name.to_string(),
        })
        .flatten()
    }

    fn select(
        &self,
        api_version: &str,
        kind: &str,
        namespace: Option<&str>,
        selector: &Value,
    ) -> Option<Vec<Value>> {
        let found = self.lookup(Read::Select {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
            namespace: namespace.unwrap_or_default().to_string(),
            selector: selector.to_string(),
        })??;
        match found {
            Value::Array(items) => Some(items),
            _ => None,
        }
    }

    fn is_namespaced(&self, api_version: &str, kind: &str) -> bool {
        let (group, _) = split_api_version(api_version);
        match self.cluster.preferred(group, kind) {
            Some(info) => info.namespaced,
            None => !is_cluster_scoped_builtin(api_version, kind),
        }
    }
}
