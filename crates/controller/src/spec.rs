//! The parts of Argo CD's Application and AppProject specs gitplane acts on,
//! read from the objects as they are stored.

use std::collections::BTreeMap;

use gitplane_diff::IgnoreRule;
use gitplane_object::Object;
use gitplane_render::{DirectoryOptions, KustomizeOptions, RenderOptions};
use serde::{Deserialize, Serialize};

/// Argo CD's name for the cluster gitplane runs against.
pub const IN_CLUSTER_SERVER: &str = "https://kubernetes.default.svc";
/// Argo CD's cluster name for it.
pub const IN_CLUSTER_NAME: &str = "in-cluster";
/// Deleting an Application with this finalizer deletes its resources first.
pub const RESOURCES_FINALIZER: &str = "resources-finalizer.argocd.argoproj.io";
/// `normal` or `hard`: reconcile now (hard also fetches Git again).
pub const REFRESH_ANNOTATION: &str = "argocd.argoproj.io/refresh";

/// `spec` of an Application.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppSpec {
    /// One source.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// Several sources, rendered and synced together.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<Source>,
    /// Where to sync.
    #[serde(default)]
    pub destination: Destination,
    /// The AppProject (`default` when empty).
    #[serde(default)]
    pub project: String,
    /// Automation and options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_policy: Option<SyncPolicy>,
    /// Differences not to count (and, with RespectIgnoreDifferences, not to revert).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignore_differences: Vec<IgnoreRule>,
    /// History entries kept (10 when unset).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revision_history_limit: Option<u32>,
}

/// `spec.source`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Source {
    /// The Git repository.
    #[serde(rename = "repoURL", default)]
    pub repo_url: String,
    /// Branch, tag, commit or `HEAD` (the default).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub target_revision: String,
    /// The directory (or file) in the repository.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// Plain-directory options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub directory: Option<DirectorySource>,
    /// Kustomize options.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kustomize: Option<KustomizeSource>,
    /// Helm charts are not rendered by gitplane (refused with a condition).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
    /// Config management plugins run code from the repository: refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<serde_json::Value>,
}

/// `spec.source.directory`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectorySource {
    /// Descend into subdirectories.
    #[serde(default)]
    pub recurse: bool,
    /// Only these files (glob).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub include: String,
    /// Not these files (glob).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub exclude: String,
}

/// `spec.source.kustomize`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KustomizeSource {
    /// Overrides `namePrefix`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name_prefix: String,
    /// Overrides `nameSuffix`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name_suffix: String,
    /// Overrides `namespace`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
    /// Added labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub common_labels: BTreeMap<String, String>,
    /// Added annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub common_annotations: BTreeMap<String, String>,
    /// `name=newName:tag` image overrides.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
    /// Replica overrides.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<ReplicaOverride>,
}

/// One `spec.source.kustomize.replicas` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ReplicaOverride {
    /// The workload's name.
    pub name: String,
    /// How many (Argo CD accepts a number or a string).
    pub count: serde_json::Value,
}

impl Source {
    /// The options the renderer takes for this source.
    pub fn render_options(&self) -> Result<RenderOptions, String> {
        let mut options = RenderOptions::default();
        if let Some(d) = &self.directory {
            options.directory = DirectoryOptions {
                recurse: d.recurse,
                include: Some(d.include.clone()).filter(|s| !s.is_empty()),
                exclude: Some(d.exclude.clone()).filter(|s| !s.is_empty()),
            };
        }
        if let Some(k) = &self.kustomize {
            let some = |s: &String| Some(s.clone()).filter(|s| !s.is_empty());
            let mut replicas = Vec::new();
            for r in &k.replicas {
                let count = match &r.count {
                    serde_json::Value::Number(n) => n.as_i64(),
                    serde_json::Value::String(s) => s.parse().ok(),
                    _ => None,
                }
                .ok_or_else(|| format!("kustomize.replicas {}: count is not a number", r.name))?;
                replicas.push((r.name.clone(), count));
            }
            options.kustomize = KustomizeOptions {
                name_prefix: some(&k.name_prefix),
                name_suffix: some(&k.name_suffix),
                namespace: some(&k.namespace),
                common_labels: k.common_labels.clone(),
                common_annotations: k.common_annotations.clone(),
                images: k.images.clone(),
                replicas,
            };
        }
        Ok(options)
    }

    /// The revision asked for (`HEAD` when empty).
    pub fn revision(&self) -> &str {
        if self.target_revision.is_empty() {
            "HEAD"
        } else {
            &self.target_revision
        }
    }
}

/// `spec.destination`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Destination {
    /// API server URL.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub server: String,
    /// Or a cluster name.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Namespace for namespaced objects that name none.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

impl Destination {
    /// True for the cluster gitplane runs against.
    pub fn is_in_cluster(&self) -> bool {
        (self.server.is_empty() || self.server == IN_CLUSTER_SERVER)
            && (self.name.is_empty() || self.name == IN_CLUSTER_NAME)
    }
}

/// `spec.syncPolicy`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncPolicy {
    /// Sync without being asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub automated: Option<Automated>,
    /// Argo CD sync options (`Prune=false`, `ServerSideApply=true`, …).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sync_options: Vec<String>,
    /// Retries of a failed sync.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    /// Labels and annotations for a namespace created by `CreateNamespace=true`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed_namespace_metadata: Option<ManagedNamespaceMetadata>,
}

/// `spec.syncPolicy.automated`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Automated {
    /// Delete what left Git.
    #[serde(default)]
    pub prune: bool,
    /// Revert changes made in the cluster.
    #[serde(default)]
    pub self_heal: bool,
    /// Allow a sync that would leave the app with no resources.
    #[serde(default)]
    pub allow_empty: bool,
}

/// `spec.syncPolicy.retry`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Retry {
    /// Retries (0: none).
    #[serde(default)]
    pub limit: i64,
    /// Backoff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
}

/// `spec.syncPolicy.retry.backoff`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Backoff {
    /// First wait (`5s`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub duration: String,
    /// Multiplier per retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub factor: Option<u32>,
    /// Longest wait (`3m`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub max_duration: String,
}

/// `spec.syncPolicy.managedNamespaceMetadata`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagedNamespaceMetadata {
    /// Labels.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// Annotations.
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
}

/// `operation`: a sync someone asked for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Operation {
    /// The sync.
    #[serde(default)]
    pub sync: OperationSync,
    /// Who asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initiated_by: Option<serde_json::Value>,
}

/// `operation.sync`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationSync {
    /// Sync this revision instead of the target (rollback).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub revision: String,
    /// Prune.
    #[serde(default)]
    pub prune: bool,
    /// Only report what would change.
    #[serde(default)]
    pub dry_run: bool,
    /// Options for this sync only.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sync_options: Vec<String>,
}

/// Reads an Application's spec, or says what is wrong with it.
pub fn app_spec(app: &Object) -> Result<AppSpec, String> {
    let spec = app.get(&["spec"]).cloned().unwrap_or_default();
    let spec: AppSpec = serde_json::from_value(spec).map_err(|e| format!("spec: {e}"))?;
    let sources = spec.all_sources();
    if sources.is_empty() {
        return Err("spec.source or spec.sources is required".into());
    }
    for source in &sources {
        if source.repo_url.is_empty() {
            return Err("spec.source.repoURL is required".into());
        }
        if source.chart.is_some() {
            return Err("Helm chart sources are not supported by gitplane yet".into());
        }
        if source.plugin.is_some() {
            return Err(
                "config management plugins are refused: they run code from the repository".into(),
            );
        }
    }
    if spec.destination.server.is_empty() && spec.destination.name.is_empty() {
        return Err("spec.destination.server or spec.destination.name is required".into());
    }
    Ok(spec)
}

impl AppSpec {
    /// `sources`, or the one `source`.
    pub fn all_sources(&self) -> Vec<Source> {
        if self.sources.is_empty() {
            self.source.iter().cloned().collect()
        } else {
            self.sources.clone()
        }
    }

    /// The project (`default` when unset).
    pub fn project(&self) -> &str {
        if self.project.is_empty() {
            "default"
        } else {
            &self.project
        }
    }

    /// The automated policy, if on.
    pub fn automated(&self) -> Option<&Automated> {
        self.sync_policy.as_ref().and_then(|p| p.automated.as_ref())
    }
}

/// Reads an Application's `operation`, if a sync was asked for.
pub fn operation(app: &Object) -> Result<Option<Operation>, String> {
    match app.get(&["operation"]) {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value) => serde_json::from_value(value.clone())
            .map(Some)
            .map_err(|e| format!("operation: {e}")),
    }
}
