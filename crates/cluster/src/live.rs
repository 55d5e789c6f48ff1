//! The live objects applications manage, found by Argo CD's tracking
//! annotation `argocd.argoproj.io/tracking-id: <app>:<group>/<Kind>:<ns>/<name>`:
//! listed once ([`Cluster::tracked_objects`]) or kept current by watches
//! ([`LiveCache`]).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use gitplane_object::{Object, ObjectKey, PackedObject};
use kube::api::{Api, DynamicObject};
use kube::runtime::{WatchStreamExt, watcher};
use serde_json::Value;
use tokio::sync::broadcast;
use tokio::task::JoinHandle;

use crate::Cluster;
use crate::discovery::ResourceInfo;
use crate::error::ClusterError;
use crate::ops::to_object;

/// The annotation that says which application manages an object.
pub const TRACKING_ANNOTATION: &str = "argocd.argoproj.io/tracking-id";

/// The tracking id of an object managed by `app`: `app:group/Kind:ns/name`.
pub fn tracking_id(app: &str, key: &ObjectKey) -> String {
    format!("{app}:{key}")
}

/// What an object's tracking annotation says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tracking {
    /// The managing application.
    pub app: String,
    /// The object the id was written for.
    pub key: ObjectKey,
}

impl Tracking {
    /// Reads an object's tracking id. An id written for a different object
    /// (copied along with the annotations by some controller) does not count:
    /// such an object is not managed by anyone, as in Argo CD.
    pub fn of(object: &Object) -> Option<Tracking> {
        let text = object.annotation(TRACKING_ANNOTATION)?;
        let (app, key) = text.split_once(':')?;
        let key = ObjectKey::parse(key)?;
        let actual = object.key();
        let same = key.group == actual.group
            && key.kind == actual.kind
            && key.name == actual.name
            && key.namespace == actual.namespace;
        same.then(|| Tracking {
            app: app.to_string(),
            key,
        })
    }
}

/// Kinds never worth listing for managed objects: high-churn records that
/// nobody keeps in Git (Argo CD excludes the same by default).
fn is_excluded(info: &ResourceInfo) -> bool {
    matches!(
        (info.resource.group.as_str(), info.resource.kind.as_str()),
        ("", "Event")
            | ("events.k8s.io", "Event")
            | ("", "Endpoints")
            | ("discovery.k8s.io", "EndpointSlice")
            | ("coordination.k8s.io", "Lease")
    ) || !(info.supports("list") && info.supports("watch"))
}

impl Cluster {
    /// Every object carrying a valid tracking id (of `app`, or of any app):
    /// from one list of every kind the cluster serves, or, given a `scope` of
    /// (group, kind, namespace), only from those (`""` for every namespace).
    pub async fn tracked_objects(
        &self,
        app: Option<&str>,
        scope: Option<&BTreeSet<(String, String, String)>>,
    ) -> Result<Vec<Object>, ClusterError> {
        let mut lists: Vec<(ResourceInfo, Option<String>)> = Vec::new();
        for info in self.kinds().into_iter().filter(|k| !is_excluded(k)) {
            let (group, kind) = (&info.resource.group, &info.resource.kind);
            match scope {
                None => lists.push((info, None)),
                Some(scope) => {
                    let namespaces: BTreeSet<&str> = scope
                        .iter()
                        .filter(|(g, k, _)| g == group && k == kind)
                        .map(|(_, _, ns)| ns.as_str())
                        .collect();
                    if namespaces.is_empty() {
                        continue;
                    }
                    if !info.namespaced || namespaces.contains("") {
                        lists.push((info, None));
                    } else {
                        for ns in namespaces {
                            lists.push((info.clone(), Some(ns.to_string())));
                        }
                    }
                }
            }
        }
        // Built in a loop, not by a closure, so the future stays provably `Send`.
        let mut pending = Vec::with_capacity(lists.len());
        for (info, ns) in &lists {
            pending.push(self.list(info, ns.as_deref(), None));
        }
        let lists = futures::stream::iter(pending)
            .buffer_unordered(8)
            .try_collect::<Vec<_>>()
            .await?;
        let mut tracked: Vec<Object> = lists
            .into_iter()
            .flatten()
            .filter(|o| Tracking::of(o).is_some_and(|t| app.is_none_or(|a| t.app == a)))
            .collect();
        tracked.sort_by_key(Object::key);
        Ok(tracked)
    }
}

/// A tracked object as the cache keeps it: as JSON, with what lookups need
/// without decoding it. A decoded object takes ten times the memory of its
/// JSON, and most cached objects are not read between two of their changes
/// (1,000 platform apps: 49 MiB decoded, about 7 MiB as JSON).
struct Cached {
    object: PackedObject,
    app: String,
    version: Option<u64>,
}

impl Cached {
    /// The object as cached, if it carries a valid tracking id.
    /// `metadata.managedFields` is dropped: it is often the larger part of an
    /// object and only an ignore rule naming field managers reads it (such
    /// comparisons list the objects themselves, see `gitplane_sync`).
    ///
    /// An Application managed by another (app of apps) also loses the parts
    /// of its status that only it reads: comparisons ignore `status` and its
    /// health is `status.health`, but its resource list, operation and
    /// history are most of it (an app of 5,000 apps holds them all).
    fn of(mut object: Object) -> Option<Cached> {
        let app = Tracking::of(&object)?.app;
        if let Some(Value::Object(meta)) = object.get_mut(&["metadata"]) {
            meta.shift_remove("managedFields");
        }
        let is_application =
            object.kind() == "Application" && object.api_version().starts_with("argoproj.io/");
        if is_application && let Some(Value::Object(status)) = object.get_mut(&["status"]) {
            for unread in ["resources", "operationState", "history", "summary"] {
                status.shift_remove(unread);
            }
        }
        Some(Cached {
            version: resource_version(&object),
            object: PackedObject::pack(&object),
            app,
        })
    }

    /// The object, decoded.
    fn decode(&self) -> Arc<Object> {
        Arc::new(self.object.unpack())
    }

    /// Whether the cache holds a later version than `version`.
    fn is_newer_than(&self, version: Option<u64>) -> bool {
        matches!((self.version, version), (Some(a), Some(b)) if a > b)
    }
}

#[derive(Default)]
struct State {
    /// Tracked objects by key.
    objects: BTreeMap<ObjectKey, Cached>,
    /// Kinds with a watch running.
    watched: HashSet<(String, String)>,
    /// Kinds whose initial list has arrived.
    listed: HashSet<(String, String)>,
    /// Keys of tracked objects by application.
    by_app: HashMap<String, BTreeSet<ObjectKey>>,
    /// Every namespace, tracked or not (syncs ask whether theirs exists).
    namespaces: HashSet<String>,
}

impl State {
    /// Stores an object; returns the application tracking it.
    fn insert(&mut self, key: ObjectKey, object: Cached) -> String {
        self.remove(&key);
        let app = object.app.clone();
        self.by_app
            .entry(app.clone())
            .or_default()
            .insert(key.clone());
        self.objects.insert(key, object);
        app
    }

    /// Forgets an object; returns the application that tracked it.
    fn remove(&mut self, key: &ObjectKey) -> Option<String> {
        let app = self.objects.remove(key)?.app;
        if let Some(keys) = self.by_app.get_mut(&app) {
            keys.remove(key);
            if keys.is_empty() {
                self.by_app.remove(&app);
            }
        }
        Some(app)
    }
}

/// A tracked object changed (or went away): which, and whose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The object.
    pub key: ObjectKey,
    /// The application tracking it.
    pub app: String,
}

/// Tracked objects of every kind, kept current by one watch per kind. Changes
/// are announced (by key) to subscribers, which is how self-heal notices drift.
pub struct LiveCache {
    cluster: Arc<Cluster>,
    state: Arc<RwLock<State>>,
    changes: broadcast::Sender<Change>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
}

impl LiveCache {
    /// Starts watching every kind the cluster serves.
    pub fn start(cluster: Arc<Cluster>) -> Arc<LiveCache> {
        // Room for bursts: a sync of a thousand apps changes many objects at once.
        let (changes, _) = broadcast::channel(1 << 16);
        let cache = Arc::new(LiveCache {
            cluster,
            state: Arc::default(),
            changes,
            tasks: std::sync::Mutex::default(),
        });
        cache.watch_new_kinds();
        cache
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Starts watches for kinds discovery knows but nothing watches yet (call
    /// after CRDs were created).
    pub fn watch_new_kinds(&self) {
        let kinds: Vec<ResourceInfo> = self
            .cluster
            .kinds()
            .into_iter()
            .filter(|k| !is_excluded(k))
            .collect();
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        let mut tasks = self.tasks.lock().unwrap_or_else(|p| p.into_inner());
        for info in kinds {
            let kind = (info.resource.group.clone(), info.resource.kind.clone());
            if state.watched.insert(kind) {
                tasks.push(tokio::spawn(watch_kind(
                    self.cluster.client().clone(),
                    info,
                    self.state.clone(),
                    self.changes.clone(),
                )));
            }
        }
    }

    /// Whether every watched kind has been listed once (so the cache knows
    /// every tracked object).
    pub fn listed(&self) -> bool {
        let state = self.read();
        state.watched.iter().all(|k| state.listed.contains(k))
    }

    /// Waits until every watched kind has been listed once.
    pub async fn wait_listed(&self, timeout: Duration) -> Result<(), ClusterError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.listed() {
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                return Err(ClusterError::Timeout(timeout));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The objects `app` manages, by key.
    pub fn objects_of(&self, app: &str) -> Vec<Arc<Object>> {
        let state = self.read();
        state
            .by_app
            .get(app)
            .into_iter()
            .flatten()
            .filter_map(|key| state.objects.get(key).map(Cached::decode))
            .collect()
    }

    /// Whether a namespace exists, once Namespaces have been listed.
    pub fn namespace_exists(&self, name: &str) -> Option<bool> {
        let state = self.read();
        state
            .listed
            .contains(&(String::new(), "Namespace".to_string()))
            .then(|| state.namespaces.contains(name))
    }

    /// One tracked object.
    pub fn get(&self, key: &ObjectKey) -> Option<Arc<Object>> {
        self.read().objects.get(key).map(Cached::decode)
    }

    /// Records an object a write just stored (the answer to an apply), so a
    /// comparison right after the write sees it even if the watch event is
    /// still on its way. Announces nothing: the writer knows. An object the
    /// cache already holds at a later resourceVersion is left alone.
    pub fn observe_written(&self, object: &Object) {
        let Some(written) = Cached::of(object.clone()) else {
            return;
        };
        let key = object.key();
        let mut state = self.state.write().unwrap_or_else(|p| p.into_inner());
        if state
            .objects
            .get(&key)
            .is_some_and(|cached| cached.is_newer_than(written.version))
        {
            return;
        }
        state.insert(key, written);
    }

    /// Keys of tracked objects as they change.
    pub fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.changes.subscribe()
    }
}

impl Drop for LiveCache {
    fn drop(&mut self) {
        for task in self
            .tasks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
        {
            task.abort();
        }
    }
}

/// One kind's watch: keeps that kind's tracked objects in `state`.
async fn watch_kind(
    client: kube::Client,
    info: ResourceInfo,
    state: Arc<RwLock<State>>,
    changes: broadcast::Sender<Change>,
) {
    let kind = (info.resource.group.clone(), info.resource.kind.clone());
    let namespaces = kind.0.is_empty() && kind.1 == "Namespace";
    let api: Api<DynamicObject> = Api::all_with(client, &info.resource);
    let mut events = watcher(api, watcher::Config::default())
        .default_backoff()
        .boxed();
    let mut relisted: Option<BTreeMap<ObjectKey, Cached>> = None;
    while let Some(event) = events.next().await {
        let event = match event {
            Ok(e) => e,
            Err(e) => {
                tracing::debug!("watch of {}: {e}", info.resource.kind);
                continue;
            }
        };
        let mut state = state.write().unwrap_or_else(|p| p.into_inner());
        if namespaces {
            note_namespace(&mut state, &event);
        }
        match event {
            watcher::Event::Init => relisted = Some(BTreeMap::new()),
            watcher::Event::InitApply(d) => {
                let key = dynamic_key(&d, &info);
                if let (Some(fresh), Some(object)) = (relisted.as_mut(), tracked(d, &info)) {
                    fresh.insert(key, object);
                }
            }
            watcher::Event::InitDone => {
                let fresh = relisted.take().unwrap_or_default();
                let stale: Vec<ObjectKey> = state
                    .objects
                    .keys()
                    .filter(|k| k.group == kind.0 && k.kind == kind.1 && !fresh.contains_key(k))
                    .cloned()
                    .collect();
                for key in stale {
                    if let Some(app) = state.remove(&key) {
                        let _ = changes.send(Change { key, app });
                    }
                }
                for (key, object) in fresh {
                    let app = state.insert(key.clone(), object);
                    let _ = changes.send(Change { key, app });
                }
                state.listed.insert(kind.clone());
            }
            watcher::Event::Apply(d) => {
                let key = dynamic_key(&d, &info);
                let app = match tracked(d, &info) {
                    // An event older than what a write already recorded.
                    Some(object)
                        if state
                            .objects
                            .get(&key)
                            .is_some_and(|cached| cached.is_newer_than(object.version)) =>
                    {
                        None
                    }
                    Some(object) => Some(state.insert(key.clone(), object)),
                    None => state.remove(&key),
                };
                if let Some(app) = app {
                    let _ = changes.send(Change { key, app });
                }
            }
            watcher::Event::Delete(d) => {
                let key = dynamic_key(&d, &info);
                if let Some(app) = state.remove(&key) {
                    let _ = changes.send(Change { key, app });
                }
            }
        }
    }
}

/// Keeps the set of namespace names current.
fn note_namespace(state: &mut State, event: &watcher::Event<DynamicObject>) {
    match event {
        watcher::Event::Init => state.namespaces.clear(),
        watcher::Event::InitApply(d) | watcher::Event::Apply(d) => {
            if let Some(name) = &d.metadata.name {
                state.namespaces.insert(name.clone());
            }
        }
        watcher::Event::Delete(d) => {
            if let Some(name) = &d.metadata.name {
                state.namespaces.remove(name);
            }
        }
        watcher::Event::InitDone => {}
    }
}

fn dynamic_key(d: &DynamicObject, info: &ResourceInfo) -> ObjectKey {
    ObjectKey::new(
        &info.resource.group,
        &info.resource.kind,
        d.metadata.namespace.clone().unwrap_or_default(),
        d.metadata.name.clone().unwrap_or_default(),
    )
}

/// An object's resourceVersion as a number. resourceVersions are opaque to
/// clients, but every API server (etcd's revisions, gitplane's counter) makes
/// them integers; anything else is never later than another.
fn resource_version(object: &Object) -> Option<u64> {
    object
        .str_at(&["metadata", "resourceVersion"])?
        .parse()
        .ok()
}

/// The object as cached, if it carries a valid tracking id. Most objects of
/// a cluster (pods, replica sets, endpoints) carry none: they are looked at
/// without being converted.
fn tracked(mut d: DynamicObject, info: &ResourceInfo) -> Option<Cached> {
    let annotations = d.metadata.annotations.as_ref()?;
    if !annotations.contains_key(TRACKING_ANNOTATION) {
        return None;
    }
    d.metadata.managed_fields = None;
    Cached::of(to_object(d, info).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(version: &str) -> Object {
        let value = serde_json::json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "a", "namespace": "ns", "resourceVersion": version,
                "annotations": {TRACKING_ANNOTATION: "app:/ConfigMap:ns/a"},
                "managedFields": [{"manager": "m"}]}});
        let Value::Object(body) = value else {
            unreachable!()
        };
        Object::new(body)
    }

    fn cached(version: &str) -> Cached {
        Cached::of(at(version)).expect("tracked")
    }

    #[test]
    fn later_versions_are_newer_by_number() {
        assert!(cached("10").is_newer_than(cached("9").version));
        assert!(!cached("9").is_newer_than(cached("10").version));
        assert!(!cached("9").is_newer_than(cached("9").version));
        // Opaque versions never hold back an event.
        assert!(!cached("b").is_newer_than(cached("a").version));
    }

    #[test]
    fn the_cache_keeps_tracked_objects_without_managed_fields() {
        let object = cached("3");
        assert_eq!(object.app, "app");
        let decoded = object.decode();
        assert_eq!(decoded.str_at(&["metadata", "resourceVersion"]), Some("3"));
        assert!(decoded.get(&["metadata", "managedFields"]).is_none());
        let mut untracked = at("3");
        untracked.remove_annotation(TRACKING_ANNOTATION);
        assert!(Cached::of(untracked).is_none());
    }

    #[test]
    fn a_child_application_keeps_the_status_its_health_reads() {
        let value = serde_json::json!({"apiVersion": "argoproj.io/v1alpha1", "kind": "Application",
            "metadata": {"name": "child", "namespace": "argocd",
                "annotations": {TRACKING_ANNOTATION: "root:argoproj.io/Application:argocd/child"}},
            "status": {"health": {"status": "Healthy"}, "sync": {"status": "Synced"},
                "resources": [{"kind": "ConfigMap", "name": "x"}],
                "operationState": {"phase": "Succeeded"}, "history": [{"id": 0}],
                "summary": {"images": ["web:1"]}}});
        let object = Object::try_from(value).unwrap();
        let decoded = Cached::of(object).expect("tracked").decode();
        assert_eq!(
            decoded.get(&["status"]).unwrap(),
            &serde_json::json!({"health": {"status": "Healthy"}, "sync": {"status": "Synced"}})
        );
    }
}
