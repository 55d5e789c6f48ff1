//! The resource-graph controller: kro's ResourceGraphDefinitions and their
//! instances, reconciled in one cluster.
//!
//! For each ResourceGraphDefinition: compile it ([`gitplane_graph`]), apply
//! the CRD it generates (refusing breaking schema changes unless the graph
//! allows them), and write the status kro writes. For each instance of a
//! graph's kind: expand it against the live objects, server-side apply each
//! child in dependency order as field manager `kro.run/applyset` (waiting
//! for `readyWhen` before a dependent), prune children the graph no longer
//! wants, project the status, and on deletion delete the children in
//! reverse order before releasing the `kro.run/finalizer`. Children carry
//! kro's labels, so a cluster moved from kro keeps its objects.
//!
//! What makes an instance reconcile: a change to it (not to its status), a
//! change to a child (drift is reverted, readiness noticed), a change to its
//! graph, a retry while it waits, and a periodic resync.

mod definition;
mod instance;
mod observed;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use gitplane_cel::Env;
use gitplane_cluster::Cluster;
use gitplane_graph::{Body, Graph};
use gitplane_object::{Gvk, Object};
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher;
use tokio::task::JoinHandle;

use crate::queue::Queue;
use crate::{ControllerError, to_object};

/// The ResourceGraphDefinition CRD gitplane installs.
pub const RGD_CRD: &str = include_str!("../../crds/resourcegraphdefinitions.yaml");

/// The field manager of everything the graph controller applies.
pub const FIELD_MANAGER: &str = "kro.run/applyset";

/// The finalizer on instances, so their children go first.
pub const FINALIZER: &str = "kro.run/finalizer";

/// The annotation that pauses an instance (`suspended`).
pub const RECONCILE_ANNOTATION: &str = "kro.run/reconcile";

/// How the graph controller works.
#[derive(Debug, Clone)]
pub struct GraphOptions {
    /// Instances reconciled at once.
    pub workers: usize,
    /// Every instance is reconciled this often without a reason.
    pub resync_interval: Duration,
    /// How soon an instance waiting on a child is looked at again.
    pub wait_interval: Duration,
    /// How soon an instance that failed is retried.
    pub retry_interval: Duration,
}

impl Default for GraphOptions {
    fn default() -> Self {
        GraphOptions {
            workers: 4,
            resync_interval: Duration::from_secs(60),
            wait_interval: Duration::from_secs(1),
            retry_interval: Duration::from_secs(10),
        }
    }
}

/// A graph being served: compiled, its CRD applied, its instances watched.
struct Active {
    graph: Arc<Graph>,
    instances: Option<JoinHandle<()>>,
}

impl Drop for Active {
    fn drop(&mut self) {
        if let Some(task) = self.instances.take() {
            task.abort();
        }
    }
}

/// The controller; see the module docs.
pub struct GraphController {
    cluster: Arc<Cluster>,
    options: GraphOptions,
    env: Env,
    queue: Queue,
    graphs: Mutex<HashMap<String, Active>>,
    /// A hash of each RGD's spec and annotations, to tell a change from a
    /// status write.
    graph_prints: Mutex<HashMap<String, u64>>,
    /// Instance keys seen, by graph, for resyncs.
    known: Mutex<HashMap<String, BTreeSet<InstanceKey>>>,
    /// Fingerprints of instances, to ignore their status writes.
    fingerprints: Mutex<HashMap<InstanceKey, u64>>,
    /// Child kinds watched (by group/kind).
    child_watches: Mutex<HashMap<String, JoinHandle<()>>>,
}

/// An instance: its graph's name, namespace and name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct InstanceKey {
    /// The ResourceGraphDefinition's name.
    pub graph: String,
    /// The instance's namespace ("" when cluster-scoped).
    pub namespace: String,
    /// The instance's name.
    pub name: String,
}

impl InstanceKey {
    fn encode(&self) -> String {
        format!("{}\u{0}{}\u{0}{}", self.graph, self.namespace, self.name)
    }

    fn decode(text: &str) -> Option<InstanceKey> {
        let mut parts = text.splitn(3, '\u{0}');
        Some(InstanceKey {
            graph: parts.next()?.to_string(),
            namespace: parts.next()?.to_string(),
            name: parts.next()?.to_string(),
        })
    }
}

/// Installs the ResourceGraphDefinition CRD and waits until it is served.
pub async fn install_graph_crd(cluster: &Cluster) -> Result<(), ControllerError> {
    crate::apply_manifests(cluster, RGD_CRD, "resourcegraphdefinitions.yaml").await?;
    wait_for_kind(cluster, gitplane_graph::KRO_GROUP, gitplane_graph::RGD_KIND).await
}

/// Waits (up to 5 s) until discovery serves a kind.
pub(crate) async fn wait_for_kind(
    cluster: &Cluster,
    group: &str,
    kind: &str,
) -> Result<(), ControllerError> {
    for _ in 0..50 {
        if cluster.preferred(group, kind).is_some() {
            return Ok(());
        }
        cluster.refresh_discovery().await?;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(ControllerError::Internal(format!(
        "the API server does not serve {group}/{kind}"
    )))
}

impl GraphController {
    /// A controller for the graphs and instances of `cluster`.
    pub fn new(cluster: Arc<Cluster>, options: GraphOptions) -> Arc<Self> {
        Arc::new(GraphController {
            cluster,
            options,
            env: gitplane_graph::cel_env(),
            queue: Queue::default(),
            graphs: Mutex::default(),
            graph_prints: Mutex::default(),
            known: Mutex::default(),
            fingerprints: Mutex::default(),
            child_watches: Mutex::default(),
        })
    }

    /// Runs until aborted: watches graphs, their instances and children, and
    /// reconciles with the configured number of workers.
    pub async fn run(self: Arc<Self>) -> Result<(), ControllerError> {
        let info = self
            .cluster
            .resolve(&Gvk::new(
                gitplane_graph::KRO_GROUP,
                "v1alpha1",
                gitplane_graph::RGD_KIND,
            ))
            .await?;
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(self.clone().watch_graphs(info));
        tasks.spawn(self.clone().promote_due());
        tasks.spawn(self.clone().resync());
        for _ in 0..self.options.workers.max(1) {
            tasks.spawn(self.clone().work());
        }
        while tasks.join_next().await.is_some() {}
        Ok(())
    }

    /// Stops the watches this controller started (their tasks hold it, so
    /// aborting [`GraphController::run`] alone leaves them running).
    pub fn stop(&self) {
        self.lock_graphs().clear();
        for (_, task) in self.lock_child_watches().drain() {
            task.abort();
        }
    }

    /// Instances queued or being worked on.
    pub fn busy(&self) -> usize {
        self.queue.busy()
    }

    async fn watch_graphs(self: Arc<Self>, info: gitplane_cluster::ResourceInfo) {
        let api: Api<DynamicObject> = Api::all_with(self.cluster.client().clone(), &info.resource);
        let mut events = watcher(api, watcher::Config::default()).boxed();
        while let Some(event) = events.next().await {
            match event {
                Ok(watcher::Event::Apply(rgd) | watcher::Event::InitApply(rgd)) => {
                    if let Some(rgd) = to_object(rgd) {
                        self.clone().graph_changed(rgd).await;
                    }
                }
                Ok(watcher::Event::Delete(rgd)) => {
                    if let Some(name) = rgd.metadata.name {
                        self.forget_graph(&name);
                    }
                }
                Ok(watcher::Event::Init | watcher::Event::InitDone) => {}
                Err(e) => {
                    tracing::warn!("watching ResourceGraphDefinitions: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// A graph was created or changed: serve it, and reconcile its instances.
    /// A graph being deleted stops being served and loses kro's finalizer;
    /// its CRD and instances stay, as with kro (which deletes CRDs only when
    /// told to).
    async fn graph_changed(self: Arc<Self>, rgd: Object) {
        let name = rgd.name().to_string();
        if rgd.get(&["metadata", "deletionTimestamp"]).is_some() {
            self.forget_graph(&name);
            if let Err(e) = instance::remove_finalizer(&self.cluster, &rgd).await {
                tracing::warn!("ResourceGraphDefinition {name}: removing the finalizer: {e}");
            }
            return;
        }
        if let Err(e) = instance::ensure_managed(&self.cluster, &rgd, &[]).await {
            tracing::warn!("ResourceGraphDefinition {name}: adding the finalizer: {e}");
        }
        let print = crate::hash_paths(&rgd, &[&["spec"], &["metadata", "annotations"]]);
        let previous = self
            .graph_prints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.clone(), print);
        if previous == Some(print) {
            return;
        }
        let served = definition::reconcile_definition(&self.cluster, &self.env, &rgd).await;
        match &served {
            definition::Served::Ready(graph) => {
                let graph = Arc::new(graph.clone());
                let instances = tokio::spawn(self.clone().watch_instances(graph.clone()));
                self.lock_graphs().insert(
                    name.clone(),
                    Active {
                        graph: graph.clone(),
                        instances: Some(instances),
                    },
                );
                self.watch_children(&graph);
                for key in self.known_instances(&name) {
                    self.queue.add(&key.encode());
                }
            }
            definition::Served::KindFailed(graph, reason) => {
                tracing::warn!("ResourceGraphDefinition {}: {reason}", graph.name);
                self.lock_graphs().remove(&name);
                // Not remembered: the next event for it tries again.
                self.graph_prints
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&name);
            }
            definition::Served::Invalid(error) => {
                tracing::warn!("{error}");
                self.lock_graphs().remove(&name);
            }
        }
        definition::write_status(&self.cluster, &rgd, &served).await;
    }

    /// Stops serving a graph's instances.
    fn forget_graph(&self, name: &str) {
        self.lock_graphs().remove(name);
        self.graph_prints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }

    async fn watch_instances(self: Arc<Self>, graph: Arc<Graph>) {
        let gvk = Gvk::new(
            &graph.schema.group,
            &graph.schema.version,
            &graph.schema.kind,
        );
        let info = match self.cluster.resolve(&gvk).await {
            Ok(info) => info,
            Err(e) => {
                tracing::warn!(
                    "graph {}: cannot watch {}: {e}",
                    graph.name,
                    graph.schema.kind
                );
                return;
            }
        };
        let api: Api<DynamicObject> = Api::all_with(self.cluster.client().clone(), &info.resource);
        let mut events = watcher(api, watcher::Config::default()).boxed();
        while let Some(event) = events.next().await {
            match event {
                Ok(watcher::Event::Apply(o) | watcher::Event::InitApply(o)) => {
                    if let Some(instance) = to_object(o) {
                        self.instance_changed(&graph.name, &instance);
                    }
                }
                Ok(watcher::Event::Delete(o)) => {
                    if let Some(instance) = to_object(o) {
                        let key = instance_key(&graph.name, &instance);
                        self.lock_known()
                            .entry(graph.name.clone())
                            .or_default()
                            .remove(&key);
                        self.lock_fingerprints().remove(&key);
                        self.queue.forget(&key.encode());
                    }
                }
                Ok(watcher::Event::Init | watcher::Event::InitDone) => {}
                Err(e) => {
                    tracing::warn!("watching {}: {e}", graph.schema.kind);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn instance_changed(&self, graph: &str, instance: &Object) {
        let key = instance_key(graph, instance);
        let print = crate::hash_paths(
            instance,
            &[
                &["spec"],
                &["metadata", "labels"],
                &["metadata", "annotations"],
                &["metadata", "deletionTimestamp"],
                &["metadata", "finalizers"],
            ],
        );
        self.lock_known()
            .entry(graph.to_string())
            .or_default()
            .insert(key.clone());
        let changed = self.lock_fingerprints().insert(key.clone(), print) != Some(print);
        if changed {
            self.queue.add(&key.encode());
        }
    }

    /// Watches the kinds a graph creates (objects labelled `kro.run/owned`),
    /// so drift on a child and its readiness reach its instance.
    fn watch_children(self: &Arc<Self>, graph: &Graph) {
        for resource in &graph.resources {
            if !matches!(resource.body, Body::Template) {
                continue;
            }
            let (Some(api_version), Some(kind)) = (
                resource.template.get("apiVersion").and_then(|v| v.as_str()),
                resource.template.get("kind").and_then(|v| v.as_str()),
            ) else {
                continue;
            };
            let gvk = Gvk::from_api_version(api_version, kind);
            let mut watches = self.lock_child_watches();
            let id = gvk.group_kind();
            if watches.get(&id).is_some_and(|task| !task.is_finished()) {
                continue;
            }
            watches.insert(id, tokio::spawn(self.clone().watch_child_kind(gvk)));
        }
    }

    async fn watch_child_kind(self: Arc<Self>, gvk: Gvk) {
        // The kind may not be served yet (its CRD comes later): a resync
        // starts the watch again.
        let Ok(info) = self.cluster.resolve(&gvk).await else {
            return;
        };
        let api: Api<DynamicObject> = Api::all_with(self.cluster.client().clone(), &info.resource);
        let config = watcher::Config::default().labels("kro.run/owned=true");
        let mut events = watcher(api, config).boxed();
        while let Some(event) = events.next().await {
            match event {
                Ok(watcher::Event::Apply(o) | watcher::Event::Delete(o)) => {
                    if let Some(key) = to_object(o).and_then(|child| owner_of(&child)) {
                        self.queue
                            .add_at(&key.encode(), Instant::now() + Duration::from_millis(200));
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!("watching {}: {e}", gvk.group_kind());
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    async fn promote_due(self: Arc<Self>) {
        loop {
            self.queue.promote_due(Instant::now());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn resync(self: Arc<Self>) {
        loop {
            tokio::time::sleep(self.options.resync_interval).await;
            let graphs: Vec<Arc<Graph>> = self
                .lock_graphs()
                .values()
                .map(|a| a.graph.clone())
                .collect();
            for graph in graphs {
                self.watch_children(&graph);
                for key in self.known_instances(&graph.name) {
                    self.queue.add(&key.encode());
                }
            }
        }
    }

    async fn work(self: Arc<Self>) {
        loop {
            let (encoded, _) = self.queue.next().await;
            if let Some(key) = InstanceKey::decode(&encoded) {
                let graph = self.lock_graphs().get(&key.graph).map(|a| a.graph.clone());
                if let Some(graph) = graph {
                    let next =
                        instance::reconcile_instance(&self.cluster, &graph, &key, &self.options)
                            .await;
                    if let Some(delay) = next {
                        self.queue.add_at(&encoded, Instant::now() + delay);
                    }
                }
            }
            self.queue.done(&encoded);
        }
    }

    fn known_instances(&self, graph: &str) -> Vec<InstanceKey> {
        self.lock_known()
            .get(graph)
            .map(|set| set.iter().cloned().collect())
            .unwrap_or_default()
    }

    fn lock_graphs(&self) -> std::sync::MutexGuard<'_, HashMap<String, Active>> {
        self.graphs.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_known(&self) -> std::sync::MutexGuard<'_, HashMap<String, BTreeSet<InstanceKey>>> {
        self.known.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_fingerprints(&self) -> std::sync::MutexGuard<'_, HashMap<InstanceKey, u64>> {
        self.fingerprints.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn lock_child_watches(&self) -> std::sync::MutexGuard<'_, HashMap<String, JoinHandle<()>>> {
        self.child_watches.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn instance_key(graph: &str, instance: &Object) -> InstanceKey {
    InstanceKey {
        graph: graph.to_string(),
        namespace: instance.namespace().unwrap_or_default().to_string(),
        name: instance.name().to_string(),
    }
}

/// The instance a child belongs to, from kro's labels.
fn owner_of(child: &Object) -> Option<InstanceKey> {
    Some(InstanceKey {
        graph: child
            .label("kro.run/resource-graph-definition-name")?
            .to_string(),
        namespace: child
            .label("kro.run/instance-namespace")
            .unwrap_or_default()
            .to_string(),
        name: child.label("kro.run/instance-name")?.to_string(),
    })
}
