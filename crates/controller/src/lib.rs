//! `gitplane-controller`: keeps Argo CD Applications synced.
//!
//! Data flows one way: an Application (watched in the control namespace) →
//! its project's permission → [`gitplane_source`] (the commit and its
//! snapshot) → [`gitplane_render`] (cached by commit, path and options) →
//! [`gitplane_sync`] (compare; sync when asked or automated) → the
//! Application's `status`, written back as Argo CD writes it.
//!
//! Two kinds of work, each with its own bounded set of workers, as Argo
//! CD's `--status-processors` and `--operation-processors`:
//! - **Status** ([`reconcile`]): fetch, render, compare, health, `status`;
//!   automated sync starts an operation here. Made to happen by a change to
//!   an application's spec or refresh annotation, a change to an object it
//!   manages (self-heal and health, after a short debounce), its reconcile
//!   interval (with jitter), and a webhook naming its repository
//!   ([`Controller::refresh_repo`]).
//! - **Operations** ([`operation`]): one step of a sync at a time; a step
//!   that must wait (for a wave's health, a hook) records so and returns,
//!   and the app's next step comes when one of its objects changes or a
//!   timer falls due. Operations a person asked for go before automated
//!   ones.
//!
//! Each application is worked on by one worker of each kind at a time; no
//! worker waits while holding its slot, so one slow or broken app delays
//! only itself.

mod deletion;
pub mod graphs;
pub mod helm_lookup;
mod known;
pub mod leader;
pub mod metrics;
mod operation;
mod policy;
pub mod project;
mod queue;
mod reconcile;
pub mod secrets;
pub mod shard;
pub mod spec;
pub mod status;
pub mod webhook;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use gitplane_cluster::{ApplyOptions, Change, Cluster, ClusterError, LiveCache};
use gitplane_diff::JqEvaluator;
use gitplane_health::HealthChecker;
use gitplane_object::{Gvk, LoadOptions, Object, ObjectKey, Syntax, load_objects};
use gitplane_source::Sources;
use gitplane_sync::Comparison;
use kube::api::{Api, DynamicObject};
use kube::runtime::watcher;

pub use metrics::Metrics;
use queue::Queue;

/// The Application and AppProject CRDs gitplane installs.
pub const CRDS: &str = include_str!("../crds/applications.yaml");

/// `argoproj.io/v1alpha1`.
pub const API_VERSION: &str = "argoproj.io/v1alpha1";

/// The Application type.
pub fn application_gvk() -> Gvk {
    Gvk::new("argoproj.io", "v1alpha1", "Application")
}

/// The AppProject type.
pub fn project_gvk() -> Gvk {
    Gvk::new("argoproj.io", "v1alpha1", "AppProject")
}

/// The `data` of Argo CD's settings ConfigMap, `argocd-cm`, in `namespace`
/// (empty when there is none): resource customizations live there.
pub async fn argocd_cm_data(
    cluster: &Cluster,
    namespace: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, ClusterError> {
    let config_map = Gvk::new("", "v1", "ConfigMap");
    let settings = cluster.get(&config_map, namespace, "argocd-cm").await?;
    Ok(settings
        .and_then(|s| {
            s.get(&["data"])
                .and_then(serde_json::Value::as_object)
                .cloned()
        })
        .unwrap_or_default())
}

/// What can stop the controller from starting.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    /// The control-plane cluster refused or failed.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
    /// Something gitplane ships is broken.
    #[error("{0}")]
    Internal(String),
}

/// How the controller works.
#[derive(Debug, Clone)]
pub struct ControllerOptions {
    /// The control namespace (Applications, AppProjects, Secrets).
    pub namespace: String,
    /// How often every application is reconciled without a reason.
    pub reconcile_interval: Duration,
    /// Up to this much is added to the interval, per application.
    pub jitter: Duration,
    /// Applications compared (status refreshes) at once.
    pub status_processors: usize,
    /// Operation steps run at once.
    pub operation_processors: usize,
    /// How long a wave of a sync may take to become healthy before the
    /// operation fails (and how long a hook may run is twice that).
    pub wave_timeout: Duration,
    /// A Git fetch taking longer fails with a condition.
    pub git_timeout: Duration,
    /// How long after a managed object changes its application is compared.
    pub self_heal_debounce: Duration,
    /// The share of the applications this replica works on (by destination
    /// cluster); `None` for all.
    pub shard: Option<shard::Shard>,
    /// A directory of each application's repository whose policies (VAPs,
    /// Kyverno policies) apply to the application's rendered objects, read
    /// at the commit being synced; `None` for no policies. A repository
    /// without the directory has none.
    pub policy_path: Option<String>,
}

impl Default for ControllerOptions {
    /// Argo CD's defaults: 120 s plus up to 60 s of jitter; 20 status and
    /// 10 operation processors.
    fn default() -> Self {
        ControllerOptions {
            namespace: "gitplane".into(),
            reconcile_interval: Duration::from_secs(120),
            jitter: Duration::from_secs(60),
            status_processors: 20,
            operation_processors: 10,
            wave_timeout: Duration::from_secs(300),
            git_timeout: Duration::from_secs(90),
            self_heal_debounce: Duration::from_secs(1),
            shard: None,
            policy_path: None,
        }
    }
}

/// An application as the controller last saw it, for progress views.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppSummary {
    /// Its name.
    pub name: String,
    /// Synced, OutOfSync or Unknown.
    pub sync: String,
    /// Its health.
    pub health: String,
    /// The commit compared with.
    pub revision: String,
    /// The phase of its last operation, if any.
    pub operation: String,
    /// What that operation says (what it waits for, while it runs).
    pub operation_message: String,
    /// When that operation started (RFC 3339).
    pub operation_started: String,
    /// The first condition's message, or the health message.
    pub message: String,
    /// Repository URLs of its sources.
    pub repos: Vec<String>,
}

impl AppSummary {
    /// Synced and Healthy.
    pub fn converged(&self) -> bool {
        self.sync == "Synced" && self.health == "Healthy"
    }
}

/// A render of one source at one commit, shared by every app using it.
type RenderResult = Result<Arc<reconcile::SourceRender>, String>;
/// A destination cluster and its live cache.
type Destination = (Arc<Cluster>, Arc<LiveCache>);

/// The controller; see the crate docs.
pub struct Controller {
    /// Itself, for the tasks it starts as it goes (watches of destination
    /// clusters).
    me: std::sync::Weak<Controller>,
    control: Arc<Cluster>,
    live: Arc<LiveCache>,
    options: ControllerOptions,
    sources: Arc<Sources>,
    health: Arc<HealthChecker>,
    jq: Arc<dyn JqEvaluator>,
    /// Applications and projects as last seen.
    apps: known::Known,
    projects: known::Known,
    /// Status refreshes.
    queue: Queue,
    /// Operation steps.
    operations: Queue,
    /// Comparisons from the status workers for the first step of the
    /// operations they started.
    handed: Mutex<HashMap<String, Comparison>>,
    /// Applications whose operation waits for its objects: a change to one
    /// of them brings the next step.
    waiting: Mutex<HashSet<String>>,
    /// Per application, whether an operation is asked for and the phase of
    /// the one recorded, as last seen: a change starts an operation step.
    operation_marks: Mutex<HashMap<String, (bool, String)>>,
    /// Objects an operation step is writing right now: a change to them is
    /// the step's own (it may come back before the step hears the answer).
    writing: Mutex<HashSet<ObjectKey>>,
    renders: Mutex<HashMap<String, RenderResult>>,
    /// Helm charts as loaded, shared by every application rendering one
    /// (the directories read are per-commit snapshots and pulled archives
    /// named by digest, which never change).
    charts: gitplane_render::helm::ChartCache,
    remotes: tokio::sync::Mutex<HashMap<String, Destination>>,
    fingerprints: Mutex<HashMap<String, u64>>,
    /// Kubernetes versions of destination clusters, by server URL.
    kube_versions: Mutex<HashMap<String, String>>,
    /// Per managed object, a hash of all but its status (see [`shape_of`]).
    shapes: Mutex<HashMap<ObjectKey, u64>>,
    summaries: RwLock<BTreeMap<String, AppSummary>>,
    /// Prometheus metrics.
    metrics: Metrics,
    /// Policies per commit, and the reports written.
    policy: policy::PolicyGate,
}

/// Installs what the controller needs in the control cluster: the CRDs, the
/// control namespace and the `default` AppProject (if missing).
pub async fn install(control: &Cluster, namespace: &str) -> Result<(), ControllerError> {
    let options = install_options();
    apply_manifests(control, CRDS, "applications.yaml").await?;
    let mut ns = Object::with_type("v1", "Namespace", namespace);
    ns.set_label("app.kubernetes.io/part-of", "gitplane");
    control.apply(&ns, &options).await?;
    // The CRDs' kinds are served once discovery sees them.
    graphs::wait_for_kind(control, "argoproj.io", "AppProject").await?;
    if control
        .get(&project_gvk(), namespace, "default")
        .await?
        .is_none()
    {
        control
            .apply(&project::default_project(namespace), &options)
            .await?;
    }
    Ok(())
}

/// How the controller applies what it installs.
fn install_options() -> ApplyOptions {
    ApplyOptions {
        field_manager: "gitplane-controller".into(),
        ..ApplyOptions::default()
    }
}

/// Applies the objects of a manifest gitplane ships (its CRDs).
pub(crate) async fn apply_manifests(
    control: &Cluster,
    text: &str,
    name: &str,
) -> Result<(), ControllerError> {
    let objects = load_objects(text.as_bytes(), name, Syntax::Yaml, &LoadOptions::default())
        .map_err(|e| ControllerError::Internal(e.to_string()))?;
    let options = install_options();
    for object in &objects {
        control.apply(object, &options).await?;
    }
    Ok(())
}

/// A hash of what, when it changes, means an application must be looked at
/// again (not its status, which the controller writes itself).
fn fingerprint(app: &Object) -> u64 {
    hash_paths(
        app,
        &[
            &["spec"],
            &["operation"],
            &["metadata", "deletionTimestamp"],
            &["metadata", "finalizers"],
            &["metadata", "annotations", spec::REFRESH_ANNOTATION],
        ],
    )
}

/// A hash of the values at some paths of an object.
pub(crate) fn hash_paths(object: &Object, paths: &[&[&str]]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for path in paths {
        object.get(path).map(|v| v.to_string()).hash(&mut hasher);
    }
    hasher.finish()
}

/// A hash of an object without what changes when only its status does
/// (`status`, `resourceVersion`, `managedFields`).
fn shape_of(object: &Object) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let mut hash = |key: &str, value: &serde_json::Value| {
        key.hash(&mut hasher);
        value.to_string().hash(&mut hasher);
    };
    for (key, value) in object.body() {
        match (key.as_str(), value) {
            ("status", _) => {}
            ("metadata", serde_json::Value::Object(meta)) => {
                for (key, value) in meta {
                    if key != "resourceVersion" && key != "managedFields" {
                        hash(key, value);
                    }
                }
            }
            _ => hash(key, value),
        }
    }
    hasher.finish()
}

/// A per-application fraction of the jitter, stable across restarts.
fn jitter_for(name: &str, jitter: Duration) -> Duration {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    name.hash(&mut hasher);
    let fraction = (hasher.finish() % 1000) as f64 / 1000.0;
    jitter.mul_f64(fraction)
}

impl Controller {
    /// A controller for the applications in `options.namespace` of `control`.
    pub fn new(
        control: Arc<Cluster>,
        sources: Arc<Sources>,
        health: Arc<HealthChecker>,
        jq: Arc<dyn JqEvaluator>,
        options: ControllerOptions,
    ) -> Arc<Controller> {
        let live = LiveCache::start(control.clone());
        Arc::new_cyclic(|me| Controller {
            me: me.clone(),
            control,
            live,
            options,
            sources,
            health,
            jq,
            apps: known::Known::default(),
            projects: known::Known::default(),
            queue: Queue::default(),
            operations: Queue::default(),
            handed: Mutex::default(),
            waiting: Mutex::default(),
            operation_marks: Mutex::default(),
            writing: Mutex::default(),
            renders: Mutex::default(),
            charts: Default::default(),
            remotes: tokio::sync::Mutex::default(),
            fingerprints: Mutex::default(),
            kube_versions: Mutex::default(),
            shapes: Mutex::default(),
            summaries: RwLock::default(),
            metrics: Metrics::default(),
            policy: policy::PolicyGate::default(),
        })
    }

    /// Runs until the task is aborted: watches, the schedule and the workers.
    pub async fn run(self: Arc<Self>) -> Result<(), ControllerError> {
        let info = self.control.resolve(&application_gvk()).await?;
        let mut tasks = tokio::task::JoinSet::new();
        tasks.spawn(self.clone().watch_applications(info));
        let projects = self.control.resolve(&project_gvk()).await?;
        tasks.spawn(self.clone().watch_projects(projects));
        tasks.spawn(self.clone().watch_managed_objects(self.live.clone()));
        tasks.spawn(self.clone().promote_due());
        tasks.spawn(self.clone().follow_argocd_cm());
        for _ in 0..self.options.status_processors.max(1) {
            tasks.spawn(self.clone().work_status());
        }
        for _ in 0..self.options.operation_processors.max(1) {
            tasks.spawn(self.clone().work_operations());
        }
        while tasks.join_next().await.is_some() {}
        Ok(())
    }

    async fn watch_applications(self: Arc<Self>, info: gitplane_cluster::ResourceInfo) {
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.control.client().clone(),
            &self.options.namespace,
            &info.resource,
        );
        let mut events = watcher(api, watcher::Config::default()).boxed();
        while let Some(event) = events.next().await {
            match event {
                Ok(watcher::Event::Apply(app) | watcher::Event::InitApply(app)) => {
                    if let Some(app) = to_object(app) {
                        self.remember_app(app.clone());
                        self.application_changed(&app);
                    }
                }
                Ok(watcher::Event::Delete(app)) => {
                    if let Some(name) = app.metadata.name {
                        self.apps.forget(&name);
                        self.forget(&name);
                    }
                }
                Ok(watcher::Event::Init | watcher::Event::InitDone) => {}
                Err(e) => {
                    tracing::warn!("watching Applications: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    /// A project created, changed or deleted may permit or forbid what an
    /// application could not or could do: every application is looked at
    /// again (projects change rarely; Argo CD refreshes their apps too).
    /// Without this, an app created in the same sync as its project kept
    /// "project does not exist" until its next interval.
    async fn watch_projects(self: Arc<Self>, info: gitplane_cluster::ResourceInfo) {
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.control.client().clone(),
            &self.options.namespace,
            &info.resource,
        );
        let mut events = watcher(api, watcher::Config::default()).boxed();
        let mut listed = false;
        while let Some(event) = events.next().await {
            match &event {
                Ok(watcher::Event::Apply(project) | watcher::Event::InitApply(project)) => {
                    if let Some(project) = to_object(project.clone()) {
                        self.projects.remember(project);
                    }
                }
                Ok(watcher::Event::Delete(project)) => {
                    if let Some(name) = &project.metadata.name {
                        self.projects.forget(name);
                    }
                }
                _ => {}
            }
            match event {
                Ok(watcher::Event::InitDone) => listed = true,
                Ok(watcher::Event::Apply(_) | watcher::Event::Delete(_)) if listed => {
                    let names: Vec<String> = self
                        .fingerprints
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .keys()
                        .cloned()
                        .collect();
                    for name in names {
                        self.queue.add(&name);
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!("watching AppProjects: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    }

    fn application_changed(&self, app: &Object) {
        if !self.owns(app) {
            // Another shard's (or no longer this shard's) application.
            self.forget(app.name());
            return;
        }
        let print = fingerprint(app);
        let name = app.name().to_string();
        let changed = self
            .fingerprints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.clone(), print)
            != Some(print);
        if changed {
            self.queue.add(&name);
        }
        self.operation_changed(app);
    }

    /// An operation asked for, or one whose recorded phase changed to one
    /// that needs a step (Running after a restart, Terminating when someone
    /// terminates it), gets a step.
    fn operation_changed(&self, app: &Object) {
        let requested = app.get(&["operation"]).is_some_and(|o| !o.is_null());
        let phase = app
            .str_at(&["status", "operationState", "phase"])
            .unwrap_or_default()
            .to_string();
        let mark = (requested, phase.clone());
        let changed = self
            .operation_marks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(app.name().to_string(), mark.clone())
            != Some(mark);
        if !changed {
            return;
        }
        let name = app.name();
        if phase == "Terminating" || (requested && operation::asked_by_person(app)) {
            self.operations.add_urgent(name);
        } else if requested || phase == "Running" {
            self.operations.add(name);
        }
    }

    /// An Application as last seen (its watch, or the answer to a write),
    /// or as the API server has it when it was never seen.
    pub(crate) async fn application(&self, name: &str) -> Result<Option<Arc<Object>>, String> {
        if let Some(app) = self.apps.get(name) {
            return Ok(Some(app));
        }
        self.application_now(name).await
    }

    /// An Application as the API server has it now (and remembered).
    pub(crate) async fn application_now(&self, name: &str) -> Result<Option<Arc<Object>>, String> {
        let found = self
            .control
            .get(&application_gvk(), &self.options.namespace, name)
            .await
            .map_err(|e| e.to_string())?;
        Ok(found.map(|app| self.remember_app(app)))
    }

    /// Remembers the shape of what an operation wrote, so the change is known
    /// when it comes back through the live cache: not drift to compare again
    /// (a deletion, `None`, is compared again when it comes back).
    pub(crate) fn note_own_change(&self, key: &ObjectKey, stored: Option<&Object>) {
        if let Some(object) = stored {
            self.shapes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key.clone(), shape_of(object));
        }
    }

    /// Marks objects as being written by an operation step (`true`), or no
    /// longer (`false`).
    pub(crate) fn note_writing(&self, keys: &[ObjectKey], writing: bool) {
        let mut set = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        for key in keys {
            if writing {
                set.insert(key.clone());
            } else {
                set.remove(key);
            }
        }
    }

    /// Whether `key`'s disappearance is a deletion an operation made.
    /// Whether this replica's shard works on `app`.
    pub(crate) fn owns(&self, app: &Object) -> bool {
        let Some(shard) = self.options.shard else {
            return true;
        };
        let destination: spec::Destination = app
            .get(&["spec", "destination"])
            .and_then(|d| serde_json::from_value(d.clone()).ok())
            .unwrap_or_default();
        shard.owns(&destination)
    }

    fn forget(&self, name: &str) {
        self.queue.forget(name);
        self.operations.forget(name);
        self.operation_marks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        self.fingerprints
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
        self.summaries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .remove(name);
    }

    /// Self-heal and health: a change to a managed object queues its
    /// application after the debounce — a full reconcile when more than its
    /// status changed (drift to heal, or an object gone), else only a health
    /// refresh, which reads the cache and compares nothing.
    async fn watch_managed_objects(self: Arc<Self>, cache: Arc<LiveCache>) {
        let mut changes = cache.subscribe();
        loop {
            let Change { key, app } = match changes.recv().await {
                Ok(change) => change,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::warn!(
                        "{missed} changes of managed objects missed; the reconcile interval catches up"
                    );
                    continue;
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            };
            let known = self
                .fingerprints
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(&app);
            if !known {
                // Not (yet) an application of this replica: its first
                // reconcile looks at everything anyway.
                continue;
            }
            let object = cache.get(&key);
            let shape = object.as_deref().map(shape_of);
            let being_written = self
                .writing
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .contains(&key);
            let same_shape = match shape {
                Some(shape) => {
                    let mut shapes = self.shapes.lock().unwrap_or_else(|p| p.into_inner());
                    shapes.insert(key, shape) == Some(shape) || being_written
                }
                None => {
                    // Gone: compared again, whoever deleted it (self-heal puts
                    // it back; after a prune, the comparison that may have
                    // seen it still there is corrected).
                    self.shapes
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .remove(&key);
                    false
                }
            };
            // An operation waiting on this app's objects looks again now.
            if self.is_waiting(&app) {
                self.operations.add(&app);
            }
            let at = Instant::now() + self.options.self_heal_debounce;
            if same_shape {
                self.queue.add_health_at(&app, at);
            } else {
                self.queue.add_at(&app, at);
            }
        }
    }

    async fn promote_due(self: Arc<Self>) {
        loop {
            let now = Instant::now();
            self.queue.promote_due(now);
            self.operations.promote_due(now);
            self.metrics.queue_depth("status", self.queue.busy());
            self.metrics
                .queue_depth("operation", self.operations.busy());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// A status worker: compares applications, one at a time.
    async fn work_status(self: Arc<Self>) {
        loop {
            let (name, full) = self.queue.next().await;
            let started = Instant::now();
            let outcome = if full {
                self.reconcile(&name).await
            } else {
                self.refresh_health(&name).await
            };
            if let Err(e) = outcome {
                tracing::warn!("application {name}: {e}");
                self.queue
                    .add_at(&name, Instant::now() + Duration::from_secs(5));
            }
            self.metrics.reconciled(started.elapsed());
            self.queue.done(&name);
        }
    }

    /// An operation worker: takes one step of an application's operation
    /// at a time.
    async fn work_operations(self: Arc<Self>) {
        loop {
            let (name, _) = self.operations.next().await;
            if let Err(e) = self.operate(&name).await {
                // A failed step (the cluster or the API server did not
                // answer, a write failed) is tried again: the operation
                // stays Running and must not be left behind.
                tracing::warn!("operation of application {name}: {e}");
                self.operations
                    .add_at(&name, Instant::now() + operation::RETRY_STEP);
            }
            self.operations.done(&name);
        }
    }

    /// Schedules the next unprompted reconcile of `name`.
    fn schedule_interval(&self, name: &str) {
        let wait = self.options.reconcile_interval + jitter_for(name, self.options.jitter);
        self.queue.add_at(name, Instant::now() + wait);
    }

    /// Keeps the health checks' Lua customizations those of the control
    /// namespace's `argocd-cm`, as Argo CD does: a change is compiled and used
    /// at once, and every application is compared again; settings that do not
    /// compile are reported and the previous ones kept.
    async fn follow_argocd_cm(self: Arc<Self>) {
        let info = match self.control.resolve(&Gvk::new("", "v1", "ConfigMap")).await {
            Ok(info) => info,
            Err(e) => {
                tracing::warn!("argocd-cm changes are not followed: {e}");
                return;
            }
        };
        let api: Api<DynamicObject> = Api::namespaced_with(
            self.control.client().clone(),
            &self.options.namespace,
            &info.resource,
        );
        let config = watcher::Config::default().fields("metadata.name=argocd-cm");
        let mut events = watcher(api, config).boxed();
        let mut last: Option<String> = None;
        while let Some(event) = events.next().await {
            let data = match event {
                Ok(watcher::Event::Apply(cm) | watcher::Event::InitApply(cm)) => to_object(cm)
                    .and_then(|cm| {
                        cm.get(&["data"])
                            .and_then(serde_json::Value::as_object)
                            .cloned()
                    })
                    .unwrap_or_default(),
                Ok(watcher::Event::Delete(_)) => serde_json::Map::new(),
                Ok(watcher::Event::Init | watcher::Event::InitDone) => continue,
                Err(e) => {
                    tracing::warn!("watching argocd-cm: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            let print = serde_json::Value::Object(data.clone()).to_string();
            if last.as_ref() == Some(&print) {
                continue;
            }
            let first = last.replace(print).is_none();
            match gitplane_health::Customizations::from_argocd_cm(&data, Default::default()) {
                Ok(customizations) => {
                    self.health.replace(customizations);
                    if !first {
                        tracing::info!("argocd-cm changed: health customizations reloaded");
                        self.refresh_all();
                    }
                }
                Err(e) => tracing::warn!(
                    "{}/argocd-cm: {e}; the previous health customizations stay",
                    self.options.namespace
                ),
            }
        }
    }

    /// Queues every known application for a full reconcile.
    fn refresh_all(&self) {
        let names: Vec<String> = self
            .summaries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        for name in &names {
            self.queue.add(name);
        }
    }

    /// A webhook said `url` changed: fetch it again and reconcile the
    /// applications using it. Returns how many were queued.
    pub fn refresh_repo(&self, url: &str) -> usize {
        let wanted = secrets::normalize_repo_url(url);
        self.sources
            .invalidate(&|known| secrets::normalize_repo_url(known) == wanted);
        let names: Vec<String> = self
            .summaries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|s| {
                s.repos
                    .iter()
                    .any(|r| secrets::normalize_repo_url(r) == wanted)
            })
            .map(|s| s.name.clone())
            .collect();
        for name in &names {
            self.queue.add(name);
        }
        names.len()
    }

    /// Every application as last reconciled.
    pub fn summaries(&self) -> Vec<AppSummary> {
        self.summaries
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// The metrics as OpenMetrics text.
    pub fn metrics_text(&self) -> String {
        let mut requests = vec![(
            self.control.server().to_string(),
            self.control.request_counts(),
        )];
        if let Ok(remotes) = self.remotes.try_lock() {
            for (cluster, _) in remotes.values() {
                requests.push((cluster.server().to_string(), cluster.request_counts()));
            }
        }
        self.metrics.encode(&self.summaries(), &requests)
    }

    /// Applications queued or being worked on, or whose operation is under
    /// way.
    pub fn busy(&self) -> usize {
        self.queue.busy() + self.operations_busy()
    }

    /// Applications whose operation is queued, being worked on or waiting.
    /// Unlike [`Controller::busy`], periodic status refreshes do not count:
    /// with thousands of applications one is always due.
    pub fn operations_busy(&self) -> usize {
        let waiting = self.waiting.lock().unwrap_or_else(|p| p.into_inner()).len();
        self.operations.busy() + waiting
    }

    /// Updates the operation fields of an application's summary.
    /// Keeps an Application as seen (a watch event, a read, the answer to
    /// a write) unless a newer version is known, and its summary as the
    /// newest version says. The summary is never computed from a copy a
    /// worker read earlier: a status worker finishing after an operation
    /// ended would show the operation as still waiting.
    pub(crate) fn remember_app(&self, app: Object) -> Arc<Object> {
        // Under the known apps' lock, so two versions remembered at once (a
        // watch event and a write's answer) cannot leave the older one's
        // summary.
        self.apps.remember_with(app, |newest| {
            if self.owns(newest) {
                let summary = reconcile::summary_of(newest);
                self.summaries
                    .write()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(summary.name.clone(), summary);
            }
        })
    }
}

/// Converts a watched object.
fn to_object(dynamic: DynamicObject) -> Option<Object> {
    match serde_json::to_value(dynamic).ok()? {
        serde_json::Value::Object(map) => Some(Object::new(map)),
        _ => None,
    }
}
