//! The status of one application, once: fetch, render, compare with the
//! destination, judge health, write `status` — and, when automated sync
//! says so, start an operation, which the operation workers carry out
//! ([`crate::operation`]). Nothing here waits for a sync.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use gitplane_cluster::{Cluster, LiveCache};
use gitplane_object::Object;
use gitplane_render::{RelPath, Root};
use gitplane_sync::{NamespaceMetadata, OperationPhase, RetryPolicy, SyncOptions, SyncRequest};
use serde_json::{Value, json};

use crate::project::ProjectSpec;
use crate::spec::{self, AppSpec, Operation, REFRESH_ANNOTATION, Source};
use crate::status;
use crate::{AppSummary, Controller, application_gvk, project_gvk};

/// A fetch resolved within this long is reused (fetches of one repository
/// by many applications coalesce; webhooks and hard refreshes invalidate).
const FETCH_REUSE: Duration = Duration::from_secs(3);
/// An application whose objects' kind is not served is compared again
/// after this long.
const KIND_RETRY: Duration = Duration::from_secs(5);
/// Files larger than this are refused by the renderer.
const MAX_FILE_BYTES: u64 = 8 << 20;

/// What went wrong, as the condition Argo CD would show.
pub(crate) struct Problem {
    pub(crate) kind: &'static str,
    pub(crate) message: String,
}

impl Problem {
    pub(crate) fn new(kind: &'static str, message: impl Into<String>) -> Self {
        Problem {
            kind,
            message: message.into(),
        }
    }
}

/// The condition naming a template that calls a random function.
const NONDETERMINISTIC_RENDER: &str = "NonDeterministicRenderWarning";

/// The rendered sources of an application at their commits.
pub(crate) struct Rendered {
    pub(crate) objects: Vec<Object>,
    pub(crate) revisions: Vec<String>,
    /// Where the render differs from Helm's by design (random functions).
    notes: Vec<String>,
    /// Argo CD's `sourceType` of the first source.
    source_type: &'static str,
    /// The first source's commit and checkout: where policies are read.
    checkout: Option<(String, std::path::PathBuf)>,
}

impl Rendered {
    /// The commits, as `status.sync.revision` and history write them.
    pub(crate) fn revision(&self) -> String {
        self.revisions.join(",")
    }

    /// A warning condition for each note of the render.
    pub(crate) fn note_conditions(&self) -> Vec<Value> {
        self.notes
            .iter()
            .map(|note| status::condition(NONDETERMINISTIC_RENDER, note))
            .collect()
    }
}

/// What a comparison or an operation step needs, prepared from an
/// Application.
pub(crate) struct Prepared {
    pub(crate) rendered: Rendered,
    pub(crate) cluster: Arc<Cluster>,
    pub(crate) live: Arc<LiveCache>,
    pub(crate) options: SyncOptions,
    pub(crate) namespace: String,
}

/// The policies' results, and the objects they were checked on (the
/// rendered ones, graph instances expanded).
pub(crate) type PolicyOutcome = Option<(gitplane_policy::Report, Vec<Object>)>;

/// How old a fetch (or a repository index) may be to be reused: not at all
/// for a hard refresh.
fn reuse(hard: bool) -> Duration {
    if hard { Duration::ZERO } else { FETCH_REUSE }
}

/// What a destination cluster serves, as Helm's `.Capabilities` sees it.
pub(crate) struct Capabilities {
    kube_version: Option<String>,
    api_versions: Vec<String>,
    /// Helm's `lookup` from the destination, for apps that opt in.
    lookup: Option<gitplane_render::helm::Lookup>,
}

/// One source rendered at one commit, shared by every app using it.
pub(crate) struct SourceRender {
    source_type: &'static str,
    /// Packed: the cache holds every app's objects.
    objects: Vec<gitplane_object::PackedObject>,
    notes: Vec<String>,
}

/// Parses a duration as Argo CD writes them (`5s`, `3m`, `1h`).
fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let n: u64 = number.parse().ok()?;
    Some(match unit {
        "s" => Duration::from_secs(n),
        "m" => Duration::from_secs(n * 60),
        "h" => Duration::from_secs(n * 3600),
        _ => return None,
    })
}

/// The sync options of an application (and of the operation asking for it).
pub(crate) fn sync_options(
    spec: &AppSpec,
    operation: Option<&Operation>,
) -> Result<SyncOptions, String> {
    let mut options = SyncOptions::default();
    let policy = spec.sync_policy.clone().unwrap_or_default();
    options
        .apply_strings(&policy.sync_options)
        .map_err(|e| e.to_string())?;
    options.prune = spec.automated().is_some_and(|a| a.prune);
    if let Some(op) = operation {
        options
            .apply_strings(&op.sync.sync_options)
            .map_err(|e| e.to_string())?;
        options.prune = op.sync.prune;
        options.dry_run = op.sync.dry_run;
    }
    if let Some(m) = policy.managed_namespace_metadata {
        options.namespace_metadata = Some(NamespaceMetadata {
            labels: m.labels,
            annotations: m.annotations,
        });
    }
    if let Some(retry) = policy.retry {
        let mut r = RetryPolicy {
            limit: u32::try_from(retry.limit.max(0)).unwrap_or(u32::MAX),
            ..RetryPolicy::default()
        };
        if let Some(b) = retry.backoff {
            r.duration = parse_duration(&b.duration).unwrap_or(r.duration);
            r.max_duration = parse_duration(&b.max_duration).unwrap_or(r.max_duration);
            r.factor = b.factor.unwrap_or(r.factor);
        }
        options.retry = r;
    }
    Ok(options)
}

impl Controller {
    /// Reconciles `name`'s status; `Err` only for failures worth retrying
    /// soon (the control cluster); everything else ends up in the app's
    /// conditions.
    pub(crate) async fn reconcile(&self, name: &str) -> Result<(), String> {
        let Some(app) = self.application(name).await? else {
            self.forget(name);
            return Ok(());
        };
        if !self.owns(&app) {
            self.forget(name);
            return Ok(());
        }
        if app.get(&["metadata", "deletionTimestamp"]).is_some() {
            return self.delete_application(&app).await;
        }
        let outcome = self.reconcile_app(&app).await;
        self.schedule_interval(name);
        outcome
    }

    /// Refreshes only the health of `name`'s resources from the live cache
    /// (only their status changed): no fetch, no render, no comparison. An
    /// app never compared, or with something else pending, gets a full
    /// reconcile instead.
    pub(crate) async fn refresh_health(&self, name: &str) -> Result<(), String> {
        let Some(app) = self.application(name).await? else {
            self.forget(name);
            return Ok(());
        };
        let pending = app.get(&["metadata", "deletionTimestamp"]).is_some()
            || app.get(&["operation"]).is_some_and(|o| !o.is_null())
            || app
                .get(&["status", "conditions"])
                .and_then(Value::as_array)
                .is_some_and(|c| !c.is_empty());
        let entries = app.get(&["status", "resources"]).and_then(Value::as_array);
        let (Ok(spec), Some(entries), false) = (spec::app_spec(&app), entries, pending) else {
            return self.reconcile(name).await;
        };
        let Ok((_, live)) = self.destination(&spec).await else {
            return self.reconcile(name).await;
        };
        let mut resources: Vec<status::ResourceStatus> = entries
            .iter()
            .map(status::ResourceStatus::from_json)
            .collect();
        for r in &mut resources {
            if let Some(object) = live.get(&r.key) {
                r.health = self.health.check(&object);
            }
        }
        let health = status::aggregate_health(&resources);
        let patch = json!({"status": {
            "health": {"status": health.status.as_str(), "message": health.message},
            "resources": status::resources_json(&resources),
        }});
        self.finish(&app, patch).await
    }

    /// Everything a comparison or an operation step needs: the project's
    /// permission, the rendered sources (at the operation's revision, if
    /// one is given) and their check, the destination, the options.
    pub(crate) async fn prepare(
        &self,
        spec: &AppSpec,
        operation: Option<&Operation>,
        hard: bool,
    ) -> Result<Prepared, Problem> {
        let project = self.project(spec).await?;
        let (cluster, live) = self.destination(spec).await?;
        let mut capabilities = self.capabilities(&cluster).await;
        if spec.helm_lookup {
            capabilities.lookup = Some(crate::helm_lookup::cluster_lookup(cluster.clone()));
        }
        let rendered = self
            .render_sources(spec, operation, hard, &capabilities)
            .await?;
        self.check_objects(&project, spec, &rendered.objects)?;
        let mut options =
            sync_options(spec, operation).map_err(|e| Problem::new("InvalidSpecError", e))?;
        options.wave_timeout = self.options.wave_timeout;
        options.hook_timeout = self.options.wave_timeout * 2;
        let namespace = if spec.destination.namespace.is_empty() {
            "default".to_string()
        } else {
            spec.destination.namespace.clone()
        };
        Ok(Prepared {
            rendered,
            cluster,
            live,
            options,
            namespace,
        })
    }

    /// Evaluates the policies of the application's repository (at the
    /// synced commit) on its rendered objects, with the resource-graph
    /// instances among them expanded by the destination's graphs (so a
    /// WebApp's Deployment is checked before the WebApp is applied).
    /// Policies that do not compile stop the comparison: nothing is synced
    /// past a broken policy.
    pub(crate) async fn check_policies(
        &self,
        prepared: &Prepared,
    ) -> Result<PolicyOutcome, Problem> {
        let rendered = &prepared.rendered;
        let (Some(path), Some((commit, dir))) = (&self.options.policy_path, &rendered.checkout)
        else {
            return Ok(None);
        };
        let set = self
            .policy
            .policies(commit, dir.clone(), path)
            .await
            .map_err(|e| Problem::new("ComparisonError", e))?;
        tracing::debug!("{} policies at {path} of {commit}", set.len());
        if set.is_empty() {
            return Ok(None);
        }
        let cluster = &prepared.cluster;
        let placed = crate::policy::in_namespace(cluster, &rendered.objects, &prepared.namespace);
        let checked = crate::policy::expand_instances(cluster, &placed).await;
        gitplane_policy::check(&checked, None, &set)
            .map(|report| Some((report, checked)))
            .map_err(|e| Problem::new("ComparisonError", e))
    }

    /// The sync request for `name` from what was prepared.
    pub(crate) fn request<'a>(
        &'a self,
        name: &'a str,
        spec: &'a AppSpec,
        prepared: &'a Prepared,
        revision: &'a str,
    ) -> SyncRequest<'a> {
        SyncRequest {
            app: name,
            namespace: &prepared.namespace,
            revision,
            desired: prepared.rendered.objects.clone(),
            options: prepared.options.clone(),
            ignore: &spec.ignore_differences,
            jq: self.jq.as_ref(),
            health: &self.health,
            live: Some(&prepared.live),
        }
    }

    /// How `name`'s destination differs from Git now, computed as a
    /// reconcile would (fetching again), changing nothing.
    pub async fn diff(&self, name: &str) -> Result<Vec<gitplane_diff::ObjectDiff>, String> {
        let app = self
            .control
            .get(&application_gvk(), &self.options.namespace, name)
            .await
            .map_err(|e| e.to_string())?
            .ok_or_else(|| format!("application {name} not found"))?;
        let spec = spec::app_spec(&app)?;
        let prepared = self
            .prepare(&spec, None, true)
            .await
            .map_err(|p| format!("{}: {}", p.kind, p.message))?;
        let revision = prepared.rendered.revision();
        let request = self.request(name, &spec, &prepared, &revision);
        let previous = status::operation_state_of(&app).map(|(_, state, _)| state);
        let comparison = gitplane_sync::compare(&prepared.cluster, &request, previous.as_ref())
            .await
            .map_err(|e| e.to_string())?;
        if let Some((key, message)) = comparison.failures().first() {
            return Err(format!("{key}: {message}"));
        }
        Ok(comparison.diffs())
    }

    async fn reconcile_app(&self, app: &Object) -> Result<(), String> {
        let name = app.name();
        let spec = match spec::app_spec(app) {
            Ok(spec) => spec,
            Err(e) => {
                return self
                    .write_problem(app, Problem::new("InvalidSpecError", e))
                    .await;
            }
        };
        if let Err(e) = spec::operation(app) {
            return self
                .write_problem(app, Problem::new("InvalidSpecError", e))
                .await;
        }
        let hard = app.annotation(REFRESH_ANNOTATION) == Some("hard");
        let prepared = match self.prepare(&spec, None, hard).await {
            Ok(prepared) => prepared,
            Err(problem) => return self.write_problem(app, problem).await,
        };
        let policy = match self.check_policies(&prepared).await {
            Ok(policy) => policy,
            Err(problem) => return self.write_problem(app, problem).await,
        };
        let revision = prepared.rendered.revision();
        let previous = status::operation_state_of(app);
        let request = self.request(name, &spec, &prepared, &revision);
        let compared = gitplane_sync::compare(
            &prepared.cluster,
            &request,
            previous.as_ref().map(|(_, state, _)| state),
        )
        .await;
        let comparison = match compared {
            Ok(comparison) => comparison,
            Err(e) => {
                if matches!(e, gitplane_sync::SyncError::KindNotServed(_)) {
                    // Its CRD may come from another application or a graph
                    // being expanded: nothing in Git needs to change, and no
                    // watched object tells when; look again soon.
                    self.queue.add_at(name, Instant::now() + KIND_RETRY);
                }
                let problem = Problem::new("ComparisonError", e.to_string());
                return self.write_problem(app, problem).await;
            }
        };
        if let Some((key, message)) = comparison.failures().first() {
            let problem = Problem::new("ComparisonError", format!("{key}: {message}"));
            return self.write_problem(app, problem).await;
        }
        let diffs = comparison.diffs();
        let mut patch = json!({"status": {}});
        let mut conditions = Vec::new();
        let out_of_sync = diffs
            .iter()
            .any(|d| d.modified && (d.target.is_some() || request.options.prune));
        let policy_path = self.options.policy_path.as_deref().unwrap_or_default();
        let blocked = policy
            .as_ref()
            .and_then(|(report, _)| crate::policy::blocking_message(report, policy_path));
        if let Some(message) = &blocked {
            conditions.push(status::condition("SyncError", message));
        }
        conditions.extend(prepared.rendered.note_conditions());
        let running = previous
            .as_ref()
            .is_some_and(|(_, state, _)| !state.phase.is_completed());
        let requested = app.get(&["operation"]).is_some_and(|o| !o.is_null());
        let auto = (!running && !requested)
            .then(|| self.auto_sync(app, &spec, &revision, out_of_sync))
            .flatten();
        if let Some(op) = auto {
            let source = spec.all_sources().into_iter().next().unwrap_or_default();
            if let Some(message) = &blocked {
                // Nothing is applied; the failed operation keeps auto-sync
                // from retrying this revision, as after any failed sync.
                self.metrics.synced("Failed");
                let mut state = patch_failed_operation(&op, message);
                state["syncResult"] =
                    json!({"revision": revision, "source": source, "resources": []});
                patch["status"]["operationState"] = state;
            } else {
                let mut state =
                    gitplane_sync::begin(&request, previous.as_ref().map(|(_, s, _)| s));
                state.message = "waiting for an operation processor".into();
                patch["status"]["operationState"] =
                    status::operation_state_json(&op, &state, &revision, &source);
                self.hand_over(name, comparison);
            }
        } else if let Some(skipped) = self.auto_sync_skipped(app, &spec, &revision, out_of_sync) {
            tracing::debug!("{name}: {skipped}");
        }
        if let Some((report, checked)) = &policy
            && let Err(e) = self
                .policy
                .write_reports(&prepared.cluster, name, checked, report)
                .await
        {
            tracing::warn!("{name}: writing policy reports: {e}");
        }
        let live = &prepared.live;
        let lookup = |key: &gitplane_object::ObjectKey| live.get(key);
        let health = |o: &Object| self.health.check(o);
        let resources = status::resources(&diffs, &lookup, &health);
        status::set_compared(&mut patch, &spec, &revision, &resources);
        let status_patch = &mut patch["status"];
        if spec.sources.len() > 1 {
            status_patch["sync"]["revisions"] = json!(prepared.rendered.revisions);
        }
        status_patch["summary"] = json!({"images": status::images(&prepared.rendered.objects)});
        status_patch["conditions"] = json!(conditions);
        status_patch["observedAt"] = status_patch["reconciledAt"].clone();
        status_patch["sourceType"] = prepared.rendered.source_type.into();
        if self.operation_moved(app) {
            // An operation wrote its results while this compared: what was
            // compared may predate them, and would overwrite them with a
            // stale OutOfSync. Compare again instead.
            self.queue.add(name);
            return Ok(());
        }
        let started = patch["status"].get("operationState").is_some() && blocked.is_none();
        self.finish(app, patch).await?;
        if started {
            self.operations.add(name);
        }
        Ok(())
    }

    /// The automated sync to start now, if automated sync says so.
    fn auto_sync(
        &self,
        app: &Object,
        spec: &AppSpec,
        revision: &str,
        out_of_sync: bool,
    ) -> Option<Operation> {
        let automated = spec.automated()?;
        if !out_of_sync
            || self
                .auto_sync_skipped(app, spec, revision, out_of_sync)
                .is_some()
        {
            return None;
        }
        Some(Operation {
            sync: spec::OperationSync {
                revision: revision.to_string(),
                prune: automated.prune,
                ..Default::default()
            },
            initiated_by: Some(json!({"automated": true})),
        })
    }
    /// Argo CD's rule: an automated sync does not repeat a revision it
    /// already synced (unless self-heal is on) or failed to sync.
    fn auto_sync_skipped(
        &self,
        app: &Object,
        spec: &AppSpec,
        revision: &str,
        out_of_sync: bool,
    ) -> Option<String> {
        let automated = spec.automated()?;
        if !out_of_sync {
            return None;
        }
        let last_revision = app.str_at(&["status", "operationState", "syncResult", "revision"]);
        let last_phase = app.str_at(&["status", "operationState", "phase"]);
        if last_revision != Some(revision) {
            return None;
        }
        match last_phase {
            Some("Failed" | "Error") => Some(format!(
                "skipping auto-sync: the last sync of {revision} failed"
            )),
            Some("Succeeded") if !automated.self_heal => Some(format!(
                "skipping auto-sync: {revision} is already synced and self-heal is off"
            )),
            _ => None,
        }
    }

    /// The application's project, and whether it allows the spec.
    async fn project(&self, spec: &AppSpec) -> Result<ProjectSpec, Problem> {
        let name = spec.project();
        let found = match self.projects.get(name) {
            Some(project) => Some((*project).clone()),
            None => self
                .control
                .get(&project_gvk(), &self.options.namespace, name)
                .await
                .map_err(|e| Problem::new("ComparisonError", e.to_string()))?,
        };
        let Some(project) = found else {
            return Err(Problem::new(
                "InvalidSpecError",
                format!("application references project {name} which does not exist"),
            ));
        };
        let project = ProjectSpec::of(&project).map_err(|e| Problem::new("InvalidSpecError", e))?;
        project
            .check_spec(name, spec)
            .map_err(|e| Problem::new("InvalidSpecError", e))?;
        Ok(project)
    }

    /// Every rendered object must be a kind, in a namespace, the project allows.
    fn check_objects(
        &self,
        project: &ProjectSpec,
        spec: &AppSpec,
        objects: &[Object],
    ) -> Result<(), Problem> {
        for object in objects {
            let (group, kind) = (object.group(), object.kind());
            let namespaced = self
                .control
                .preferred(group, kind)
                .map_or(object.namespace().is_some(), |i| i.namespaced);
            let shown = if group.is_empty() { "" } else { group };
            if !project.permits_kind(group, kind, namespaced) {
                return Err(Problem::new(
                    "SyncError",
                    format!(
                        "resource {shown}:{kind} {} is not permitted in project {}",
                        object.name(),
                        spec.project()
                    ),
                ));
            }
            let namespace = object.namespace().unwrap_or(&spec.destination.namespace);
            if namespaced && !project.permits_destination(&spec.destination, namespace) {
                return Err(Problem::new(
                    "SyncError",
                    format!(
                        "namespace {namespace} of {kind} {} is not permitted in project {}",
                        object.name(),
                        spec.project()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Fetches and renders every source.
    async fn render_sources(
        &self,
        spec: &AppSpec,
        operation: Option<&Operation>,
        hard: bool,
        capabilities: &Capabilities,
    ) -> Result<Rendered, Problem> {
        let mut rendered = Rendered {
            objects: Vec::new(),
            revisions: Vec::new(),
            notes: Vec::new(),
            source_type: "Directory",
            checkout: None,
        };
        let sources = spec.all_sources();
        let revision_of = |source: &Source| match operation {
            Some(op) if !op.sync.revision.is_empty() && sources.len() == 1 => {
                op.sync.revision.clone()
            }
            _ => source.revision().to_string(),
        };
        // The checkouts `$ref/…` values files read, fetched first.
        let mut refs = std::collections::BTreeMap::new();
        for source in sources.iter().filter(|s| !s.reference.is_empty()) {
            if source.chart.is_some() {
                return Err(Problem::new(
                    "InvalidSpecError",
                    format!("source {} has both chart and ref", source.repo_url),
                ));
            }
            let fetched = self.fetch(source, &revision_of(source), hard).await?;
            refs.insert(source.reference.clone(), fetched);
        }
        // `sourceType` is the first rendered source's.
        let mut typed = false;
        for source in &sources {
            let revision = revision_of(source);
            if source.is_ref_only() {
                rendered.revisions.push(refs[&source.reference].0.clone());
                continue;
            }
            let (commit, dir, path) = match &source.chart {
                Some(chart) => self.pull_chart(source, chart, &revision, hard).await?,
                None => {
                    let (commit, dir) = match refs.get(&source.reference) {
                        Some(fetched) => fetched.clone(),
                        None => self.fetch(source, &revision, hard).await?,
                    };
                    if rendered.checkout.is_none() {
                        rendered.checkout = Some((commit.clone(), dir.clone()));
                    }
                    (commit, dir, source.path.clone())
                }
            };
            let ref_dirs = refs
                .iter()
                .map(|(name, (_, dir))| (name.clone(), dir.clone()))
                .collect();
            let render = self
                .render_cached(
                    source,
                    &path,
                    &spec.name,
                    &spec.destination.namespace,
                    capabilities,
                    &commit,
                    dir,
                    ref_dirs,
                )
                .await?;
            if !typed {
                rendered.source_type = render.source_type;
                typed = true;
            }
            rendered.objects.extend(
                render
                    .objects
                    .iter()
                    .map(gitplane_object::PackedObject::unpack),
            );
            rendered.notes.extend(render.notes.iter().cloned());
            rendered.revisions.push(commit);
        }
        Ok(rendered)
    }

    /// What the destination cluster serves, for Helm's `.Capabilities`
    /// (the Kubernetes version asked once per cluster; without an answer,
    /// Helm's default is used).
    async fn capabilities(&self, cluster: &Cluster) -> Capabilities {
        let known = self
            .kube_versions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(cluster.server())
            .cloned();
        let kube_version = match known {
            Some(v) => Some(v),
            None => match cluster.kube_version().await {
                Ok(v) => {
                    self.kube_versions
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .insert(cluster.server().to_string(), v.clone());
                    Some(v)
                }
                Err(e) => {
                    tracing::debug!("the version of {}: {e}", cluster.server());
                    None
                }
            },
        };
        Capabilities {
            kube_version,
            api_versions: cluster.api_versions(),
            lookup: None,
        }
    }

    /// Pulls a chart from a Helm repository (within the Git timeout): its
    /// version (the revision), the cache directory and the archive's name.
    async fn pull_chart(
        &self,
        source: &Source,
        chart: &str,
        version: &str,
        hard: bool,
    ) -> Result<(String, std::path::PathBuf, String), Problem> {
        let version = if version == "HEAD" { "" } else { version };
        let (url, chart, version) = (
            source.repo_url.clone(),
            chart.to_string(),
            version.to_string(),
        );
        let what = format!("pulling chart {chart} from {url}");
        let pulled = self
            .with_repository(source, what, move |sources, credentials, interrupt| {
                sources.pull_chart(&url, &chart, &version, credentials, reuse(hard), interrupt)
            })
            .await?;
        Ok((pulled.version, pulled.dir, pulled.file_name))
    }

    /// Pulls the charts kustomize's `helmCharts` name (called by a render,
    /// on its blocking thread), with the repository's credentials, into
    /// the shared chart cache.
    fn chart_puller(&self) -> gitplane_render::ChartPuller {
        let handle = tokio::runtime::Handle::current();
        let (sources, control) = (self.sources.clone(), self.control.clone());
        let namespace = self.options.namespace.clone();
        gitplane_render::Callback(Arc::new(move |repo, chart, version| {
            let credentials = handle
                .block_on(crate::secrets::chart_repository_credentials(
                    &control, &namespace, repo,
                ))
                .map_err(|e| e.to_string())?;
            let pulled = sources
                .pull_chart(
                    repo,
                    chart,
                    version,
                    &credentials,
                    reuse(false),
                    &AtomicBool::new(false),
                )
                .map_err(|e| e.to_string())?;
            Ok(pulled.dir.join(pulled.file_name))
        }))
    }

    /// Resolves and snapshots a source's revision, within the Git timeout.
    async fn fetch(
        &self,
        source: &Source,
        revision: &str,
        hard: bool,
    ) -> Result<(String, std::path::PathBuf), Problem> {
        let (url, rev) = (source.repo_url.clone(), revision.to_string());
        let what = format!("fetching {url} at {revision}");
        let snapshot = self
            .with_repository(source, what, move |sources, credentials, interrupt| {
                let commit = sources.resolve(&url, &rev, credentials, reuse(hard), interrupt)?;
                sources.snapshot(&url, &commit)
            })
            .await?;
        Ok((snapshot.commit, snapshot.dir))
    }

    /// Runs `work` (a fetch or a pull, blocking) with the credentials of
    /// `source`'s repository, within the Git timeout; at the timeout it is
    /// interrupted and `what` is reported as timed out.
    async fn with_repository<T: Send + 'static>(
        &self,
        source: &Source,
        what: String,
        work: impl FnOnce(
            &gitplane_source::Sources,
            &gitplane_source::Credentials,
            &AtomicBool,
        ) -> Result<T, gitplane_source::SourceError>
        + Send
        + 'static,
    ) -> Result<T, Problem> {
        let credentials = if source.chart.is_some() {
            crate::secrets::chart_repository_credentials(
                &self.control,
                &self.options.namespace,
                &source.repo_url,
            )
            .await
        } else {
            crate::secrets::repository_credentials(
                &self.control,
                &self.options.namespace,
                &source.repo_url,
            )
            .await
        }
        .map_err(|e| Problem::new("ComparisonError", e.to_string()))?;
        let interrupt = Arc::new(AtomicBool::new(false));
        let (sources, flag) = (self.sources.clone(), interrupt.clone());
        let started = Instant::now();
        let task = tokio::task::spawn_blocking(move || work(&sources, &credentials, &flag));
        let outcome = tokio::time::timeout(self.options.git_timeout, task).await;
        self.metrics
            .fetched(started.elapsed(), !matches!(outcome, Ok(Ok(Ok(_)))));
        match outcome {
            Ok(Ok(Ok(done))) => Ok(done),
            Ok(Ok(Err(e))) => Err(Problem::new("ComparisonError", e.to_string())),
            Ok(Err(e)) => Err(Problem::new("ComparisonError", e.to_string())),
            Err(_) => {
                interrupt.store(true, Ordering::Relaxed);
                Err(Problem::new(
                    "ComparisonError",
                    format!("{what} timed out after {:?}", self.options.git_timeout),
                ))
            }
        }
    }

    /// Renders a source at a commit, once per (commit, path, options).
    #[allow(clippy::too_many_arguments)] // the cache key's parts, each needed
    async fn render_cached(
        &self,
        source: &Source,
        path: &str,
        app: &str,
        namespace: &str,
        capabilities: &Capabilities,
        commit: &str,
        dir: std::path::PathBuf,
        refs: std::collections::BTreeMap<String, std::path::PathBuf>,
    ) -> Result<Arc<SourceRender>, Problem> {
        let mut options = source
            .render_options(app, namespace)
            .map_err(|e| Problem::new("InvalidSpecError", e))?;
        // Snapshots are per commit: their paths stand for the refs' commits
        // in the cache key.
        options.helm.refs = refs;
        options.helm.chart_cache = Some(self.charts.clone());
        options.chart_puller = Some(self.chart_puller());
        // Helm sees the destination cluster, as Argo CD shows it to Helm,
        // unless the source names versions itself.
        if options.helm.kube_version.is_none() {
            options.helm.kube_version = capabilities.kube_version.clone();
        }
        if options.helm.api_versions.is_empty() {
            options.helm.api_versions = capabilities.api_versions.clone();
        }
        // The options' hash stands for them: with a cluster's API versions
        // they are kilobytes, and the cache holds thousands of keys.
        let key = {
            use std::hash::{Hash, Hasher};
            let mut hasher = std::collections::hash_map::DefaultHasher::new();
            format!("{options:?}").hash(&mut hasher);
            format!("{commit}\0{path}\0{:016x}", hasher.finish())
        };
        // What `lookup` reads can change without a commit: not cached.
        let cacheable = capabilities.lookup.is_none();
        options.helm.lookup = capabilities.lookup.clone();
        let cached = self
            .renders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
            .filter(|_| cacheable)
            .cloned();
        let result = match cached {
            Some(result) => result,
            None => {
                let path = path.to_string();
                let started = Instant::now();
                let result = tokio::task::spawn_blocking(move || {
                    let root = Root::open(&dir, MAX_FILE_BYTES).map_err(|e| e.to_string())?;
                    let path = root
                        .resolve(&RelPath::root(), if path.is_empty() { "." } else { &path })
                        .map_err(|e| e.to_string())?;
                    let source_type = match gitplane_render::detect_source(&root, &path) {
                        Ok(gitplane_render::SourceKind::Kustomize) => "Kustomize",
                        Ok(gitplane_render::SourceKind::Helm) => "Helm",
                        _ => "Directory",
                    };
                    let rendered = gitplane_render::render_with_notes(&root, &path, &options)
                        .map_err(|e| e.to_string())?;
                    Ok(Arc::new(SourceRender {
                        source_type,
                        objects: rendered
                            .objects
                            .iter()
                            .map(gitplane_object::PackedObject::pack)
                            .collect(),
                        notes: rendered.notes,
                    }))
                })
                .await
                .unwrap_or_else(|e| Err(e.to_string()));
                self.metrics.rendered(started.elapsed());
                if cacheable {
                    let mut renders = self.renders.lock().unwrap_or_else(|p| p.into_inner());
                    if renders.len() > 10_000 {
                        renders.clear();
                    }
                    renders.insert(key, result.clone());
                }
                result
            }
        };
        result.map_err(|e| Problem::new("ComparisonError", e))
    }

    /// The destination cluster and its live cache.
    pub(crate) async fn destination(
        &self,
        spec: &AppSpec,
    ) -> Result<(Arc<Cluster>, Arc<LiveCache>), Problem> {
        let d = &spec.destination;
        if d.is_in_cluster() {
            return Ok((self.control.clone(), self.live.clone()));
        }
        let key = format!("{}\0{}", d.server, d.name);
        let mut remotes = self.remotes.lock().await;
        if let Some(found) = remotes.get(&key) {
            return Ok(found.clone());
        }
        let cluster = crate::secrets::connect_destination(
            &self.control,
            &self.options.namespace,
            &d.server,
            &d.name,
        )
        .await
        .map_err(|e| Problem::new("InvalidSpecError", e))?;
        let cluster = Arc::new(cluster);
        let live = LiveCache::start(cluster.clone());
        // Changes on that cluster bring health refreshes and self-heal too.
        if let Some(me) = self.me.upgrade() {
            tokio::spawn(me.watch_managed_objects(live.clone()));
        }
        remotes.insert(key, (cluster.clone(), live.clone()));
        Ok((cluster, live))
    }

    /// Writes a status that reports `problem`, leaving the cluster as it is.
    async fn write_problem(&self, app: &Object, problem: Problem) -> Result<(), String> {
        let sync = app
            .get(&["status", "sync"])
            .cloned()
            .unwrap_or_else(|| json!({}));
        let mut sync = sync;
        sync["status"] = "Unknown".into();
        let mut patch = json!({"status": {
            "sync": sync,
            "conditions": [status::condition(problem.kind, &problem.message)],
            "reconciledAt": gitplane_object::time::now_rfc3339(),
        }});
        // What runs is left alone, so is its health; but an app that cannot
        // be synced as specified, or never was, is Degraded (so a parent's
        // wave fails with the reason instead of waiting for it).
        if problem.kind != "ComparisonError" || app.get(&["status", "health"]).is_none() {
            patch["status"]["health"] = json!({"status": "Degraded", "message": problem.message});
        }
        // An operation that cannot even start ends as Error, with the reason.
        if let Some(op) = app.get(&["operation"]).filter(|o| !o.is_null()) {
            let now = gitplane_object::time::now_rfc3339();
            patch["operation"] = Value::Null;
            patch["status"]["operationState"] = json!({
                "operation": op, "phase": "Error", "message": problem.message,
                "startedAt": now, "finishedAt": now,
            });
        }
        self.finish(app, patch).await
    }

    /// Whether the application's operation started, stepped or ended since
    /// `app` was read (the operation processors' writes are remembered as
    /// soon as they are answered).
    fn operation_moved(&self, app: &Object) -> bool {
        let Some(latest) = self.apps.get(app.name()) else {
            return false;
        };
        let mark = |o: &Object| {
            ["phase", "startedAt", "finishedAt"].map(|k| {
                o.str_at(&["status", "operationState", k])
                    .map(str::to_string)
            })
        };
        mark(&latest) != mark(app)
    }

    /// Writes the patch (unless only times would change) and the summary.
    async fn finish(&self, app: &Object, mut patch: Value) -> Result<(), String> {
        keep_transition_times(app, &mut patch);
        if app.annotation(REFRESH_ANNOTATION).is_some() {
            patch["metadata"] = json!({"annotations": {REFRESH_ANNOTATION: null}});
        }
        if !changes_anything(app, &patch) {
            return Ok(());
        }
        // Only over the version compared: an operation that wrote its
        // results meanwhile is not overwritten with what predates them.
        if !self.write_over_version(app, patch).await? {
            // Compared again, with the version that is there now (the
            // watch may not have brought it yet).
            self.application_now(app.name()).await?;
            self.queue.add(app.name());
        }
        Ok(())
    }

    /// Writes a merge patch only over `app`'s resource version; false when
    /// the Application changed since (409).
    pub(crate) async fn write_over_version(
        &self,
        app: &Object,
        mut patch: Value,
    ) -> Result<bool, String> {
        patch["metadata"]["resourceVersion"] = app
            .str_at(&["metadata", "resourceVersion"])
            .unwrap_or_default()
            .into();
        match self
            .control
            .merge_patch(app, patch, "gitplane-controller")
            .await
        {
            Ok(written) => {
                self.remember_app(written);
                Ok(true)
            }
            Err(e) if e.code() == Some(409) => Ok(false),
            Err(e) => Err(e.to_string()),
        }
    }

    pub(crate) async fn write_patch(&self, app: &Object, patch: Value) -> Result<(), String> {
        let written = self
            .control
            .merge_patch(app, patch, "gitplane-controller")
            .await
            .map_err(|e| e.to_string())?;
        self.remember_app(written);
        Ok(())
    }
}

/// `status.operationState` of an operation that failed before it ran.
pub(crate) fn patch_failed_operation(op: &Operation, message: &str) -> Value {
    let op = serde_json::to_value(op).unwrap_or_default();
    status::operation_error_json(&op, OperationPhase::Failed, message)
}

/// What progress views show of an Application.
pub(crate) fn summary_of(app: &Object) -> AppSummary {
    let text = |path: &[&str]| app.str_at(path).unwrap_or_default().to_string();
    let condition = app
        .get(&["status", "conditions"])
        .and_then(Value::as_array)
        .and_then(|c| c.first())
        .and_then(|c| c["message"].as_str())
        .map(str::to_string);
    let repos = spec::app_spec(app)
        .map(|spec| spec.all_sources().into_iter().map(|s| s.repo_url).collect())
        .unwrap_or_default();
    AppSummary {
        name: text(&["metadata", "name"]),
        sync: text(&["status", "sync", "status"]),
        health: text(&["status", "health", "status"]),
        revision: text(&["status", "sync", "revision"]),
        operation: text(&["status", "operationState", "phase"]),
        operation_message: text(&["status", "operationState", "message"]),
        operation_started: text(&["status", "operationState", "startedAt"]),
        message: condition.unwrap_or_else(|| text(&["status", "health", "message"])),
        repos,
    }
}

/// Conditions keep their `lastTransitionTime` while they stay the same.
fn keep_transition_times(app: &Object, patch: &mut Value) {
    let Some(old) = app.get(&["status", "conditions"]).and_then(Value::as_array) else {
        return;
    };
    if let Some(new) = patch["status"]["conditions"].as_array_mut() {
        for condition in new {
            if let Some(same) = old
                .iter()
                .find(|o| o["type"] == condition["type"] && o["message"] == condition["message"])
            {
                condition["lastTransitionTime"] = same["lastTransitionTime"].clone();
            }
        }
    }
}

/// Whether writing `patch` changes more than the reconcile times (those
/// alone are written at most once per minute, to keep watchers quiet).
fn changes_anything(app: &Object, patch: &Value) -> bool {
    if patch.get("operation").is_some() || patch.get("metadata").is_some() {
        return true;
    }
    let Some(new) = patch["status"].as_object() else {
        return true;
    };
    let old = app.get(&["status"]).cloned().unwrap_or_default();
    let differs = new
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "reconciledAt" | "observedAt"))
        .any(|(k, v)| old.get(k) != Some(v));
    if !new.contains_key("reconciledAt") {
        return differs;
    }
    let now = gitplane_object::time::parse_rfc3339(&gitplane_object::time::now_rfc3339());
    let stale = app
        .str_at(&["status", "reconciledAt"])
        .and_then(gitplane_object::time::parse_rfc3339)
        .zip(now)
        .is_none_or(|(at, now)| now - at > 60);
    differs || stale
}
