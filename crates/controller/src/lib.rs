//! `gitplane-controller`: keeps Argo CD Applications synced.
//!
//! Data flows one way: an Application (watched in the control namespace) →
//! its project's permission → [`gitplane_source`] (the commit and its
//! snapshot) → [`gitplane_render`] (cached by commit, path and options) →
//! [`gitplane_sync`] (compare, and sync when asked or automated) → the
//! Application's `status`, written back as Argo CD writes it.
//!
//! What makes an application reconcile: a change to its spec, `operation` or
//! refresh annotation; a change to an object it manages (self-heal and
//! health, after a short debounce); its reconcile interval (with jitter);
//! and a webhook naming its repository ([`Controller::refresh_repo`]).
//! Workers are bounded; each application is worked on by one at a time.

mod deletion;
pub mod graphs;
pub mod metrics;
mod policy;
pub mod project;
mod queue;
mod reconcile;
pub mod secrets;
pub mod spec;
pub mod status;
pub mod webhook;

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use gitplane_cluster::{ApplyOptions, Change, Cluster, ClusterError, LiveCache};
use gitplane_diff::JqEvaluator;
use gitplane_health::HealthChecker;
use gitplane_object::{Gvk, LoadOptions, Object, ObjectKey, Syntax, load_objects};
use gitplane_source::Sources;
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
    /// Applications reconciled at once.
    pub workers: usize,
    /// A Git fetch taking longer fails with a condition.
    pub git_timeout: Duration,
    /// How long after a managed object changes its application is compared.
    pub self_heal_debounce: Duration,
    /// A directory of each application's repository whose policies (VAPs,
    /// Kyverno policies) apply to the application's rendered objects, read
    /// at the commit being synced; `None` for no policies. A repository
    /// without the directory has none.
    pub policy_path: Option<String>,
}

impl Default for ControllerOptions {
    /// Argo CD's defaults: 120 s plus up to 60 s of jitter.
    fn default() -> Self {
        ControllerOptions {
            namespace: "gitplane".into(),
            reconcile_interval: Duration::from_secs(120),
            jitter: Duration::from_secs(60),
            workers: 8,
            git_timeout: Duration::from_secs(90),
            self_heal_debounce: Duration::from_secs(1),
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
    control: Arc<Cluster>,
    live: Arc<LiveCache>,
    options: ControllerOptions,
    sources: Arc<Sources>,
    health: Arc<HealthChecker>,
    jq: Arc<dyn JqEvaluator>,
    queue: Queue,
    renders: Mutex<HashMap<String, RenderResult>>,
    remotes: tokio::sync::Mutex<HashMap<String, Destination>>,
    fingerprints: Mutex<HashMap<String, u64>>,
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
    let mut value = object.to_value();
    if let Some(map) = value.as_object_mut() {
        map.remove("status");
    }
    if let Some(meta) = value.get_mut("metadata").and_then(|m| m.as_object_mut()) {
        meta.remove("resourceVersion");
        meta.remove("managedFields");
    }
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    value.to_string().hash(&mut hasher);
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
        Arc::new(Controller {
            control,
            live,
            options,
            sources,
            health,
            jq,
            queue: Queue::default(),
            renders: Mutex::default(),
            remotes: tokio::sync::Mutex::default(),
            fingerprints: Mutex::default(),
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
        tasks.spawn(self.clone().watch_managed_objects());
        tasks.spawn(self.clone().promote_due());
        for _ in 0..self.options.workers.max(1) {
            tasks.spawn(self.clone().work());
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
                        self.application_changed(&app);
                    }
                }
                Ok(watcher::Event::Delete(app)) => {
                    if let Some(name) = app.metadata.name {
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
    }

    fn forget(&self, name: &str) {
        self.queue.forget(name);
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
    async fn watch_managed_objects(self: Arc<Self>) {
        let mut changes = self.live.subscribe();
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
            let object = self.live.get(&key);
            let shape = object.as_ref().map(shape_of);
            let same_shape = {
                let mut shapes = self.shapes.lock().unwrap_or_else(|p| p.into_inner());
                match shape {
                    Some(shape) => shapes.insert(key, shape) == Some(shape),
                    None => {
                        // Gone: self-heal puts it back.
                        shapes.remove(&key);
                        false
                    }
                }
            };
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
            self.queue.promote_due(Instant::now());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn work(self: Arc<Self>) {
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

    /// Schedules the next unprompted reconcile of `name`.
    fn schedule_interval(&self, name: &str) {
        let wait = self.options.reconcile_interval + jitter_for(name, self.options.jitter);
        self.queue.add_at(name, Instant::now() + wait);
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

    /// Applications queued or being reconciled.
    pub fn busy(&self) -> usize {
        self.queue.busy()
    }

    fn set_summary(&self, summary: AppSummary) {
        self.summaries
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(summary.name.clone(), summary);
    }
}

/// Converts a watched object.
fn to_object(dynamic: DynamicObject) -> Option<Object> {
    match serde_json::to_value(dynamic).ok()? {
        serde_json::Value::Object(map) => Some(Object::new(map)),
        _ => None,
    }
}
