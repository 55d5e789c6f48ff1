//! The parts of Argo CD's Application and AppProject specs gitplane acts on,
//! read from the objects as they are stored.

use std::collections::BTreeMap;

use gitplane_diff::IgnoreRule;
use gitplane_object::Object;
use gitplane_render::{DirectoryOptions, HelmOptions, KustomizeOptions, RenderOptions};
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
    /// The Application's name (not part of the spec: set by [`app_spec`]);
    /// Helm's default release name.
    #[serde(skip)]
    pub name: String,
    /// Whether Helm's `lookup` reads the destination cluster (the
    /// Application's [`crate::helm_lookup::APP_ANNOTATION`]).
    #[serde(skip)]
    pub helm_lookup: bool,
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
    /// A chart from the Helm repository at `repoURL` (`targetRevision` is
    /// its version or a semver range); a chart in Git is a `path` holding
    /// `Chart.yaml` instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chart: Option<String>,
    /// Helm options, for a `path` holding a chart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub helm: Option<HelmSource>,
    /// Config management plugins run code from the repository: refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugin: Option<serde_json::Value>,
    /// A name other sources' Helm values files use (`$name/path`) to read
    /// this source's checkout; with no `path` and no `chart`, the source
    /// is only that, and renders nothing (as in Argo CD).
    #[serde(rename = "ref", default, skip_serializing_if = "String::is_empty")]
    pub reference: String,
}

impl Source {
    /// Whether the source only lends its checkout to the others.
    pub fn is_ref_only(&self) -> bool {
        !self.reference.is_empty() && self.path.is_empty() && self.chart.is_none()
    }
}

/// `spec.source.helm`, with Argo CD's meaning.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmSource {
    /// The release name (default: the Application's name).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub release_name: String,
    /// Values files: relative to the chart, or to the repository root with
    /// a leading `/`; globs allowed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub value_files: Vec<String>,
    /// Skip values files that are missing.
    #[serde(default)]
    pub ignore_missing_value_files: bool,
    /// Values as a YAML string.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub values: String,
    /// Values as an object (wins over `values`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_object: Option<serde_json::Value>,
    /// `--set` (or with `forceString`, `--set-string`) parameters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameters: Vec<HelmParameter>,
    /// `--set-file` parameters.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_parameters: Vec<HelmFileParameter>,
    /// Leave the chart's CRDs out.
    #[serde(default)]
    pub skip_crds: bool,
    /// Leave test hooks out.
    #[serde(default)]
    pub skip_tests: bool,
    /// Do not validate values against the charts' `values.schema.json`.
    #[serde(default)]
    pub skip_schema_validation: bool,
    /// `.Capabilities.KubeVersion`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kube_version: String,
    /// Added to `.Capabilities.APIVersions`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_versions: Vec<String>,
    /// `.Release.Namespace` (default: the destination's namespace).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub namespace: String,
}

/// One `spec.source.helm.parameters` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HelmParameter {
    /// The value's path (`a.b[0]`).
    pub name: String,
    /// The value.
    #[serde(default)]
    pub value: String,
    /// Keep the value a string.
    #[serde(default)]
    pub force_string: bool,
}

/// One `spec.source.helm.fileParameters` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct HelmFileParameter {
    /// The value's path.
    pub name: String,
    /// The file, named as a values file.
    pub path: String,
}

impl HelmSource {
    /// The renderer's options for this source of application `app` synced
    /// to `namespace`, as Argo CD passes them to `helm template`.
    pub fn options(&self, app: &str, namespace: &str) -> Result<HelmOptions, String> {
        let pick = |own: &str, default: &str| {
            if own.is_empty() {
                default.to_string()
            } else {
                own.to_string()
            }
        };
        let mut values_yaml = Vec::new();
        if let Some(object) = &self.values_object {
            values_yaml.push(serde_json::to_string(object).map_err(|e| e.to_string())?);
        } else if !self.values.is_empty() {
            values_yaml.push(self.values.clone());
        }
        let (mut set, mut set_string) = (Vec::new(), Vec::new());
        for p in &self.parameters {
            if p.force_string {
                set_string.push(format!("{}={}", p.name, escape_commas(&p.value)));
            } else {
                set.push(format!("{}={}", p.name, escape_commas(&p.value)));
            }
        }
        Ok(HelmOptions {
            release_name: pick(&self.release_name, app),
            namespace: pick(
                &self.namespace,
                if namespace.is_empty() {
                    "default"
                } else {
                    namespace
                },
            ),
            value_files: self.value_files.clone(),
            ignore_missing_value_files: self.ignore_missing_value_files,
            values_yaml,
            set,
            set_string,
            set_file: self
                .file_parameters
                .iter()
                .map(|f| (f.name.clone(), f.path.clone()))
                .collect(),
            include_crds: !self.skip_crds,
            skip_tests: self.skip_tests,
            skip_schema_validation: self.skip_schema_validation,
            kube_version: Some(self.kube_version.clone()).filter(|v| !v.is_empty()),
            api_versions: self.api_versions.clone(),
            ..HelmOptions::default()
        })
    }
}

/// Argo CD's escaping of a parameter value: commas escaped unless the value
/// is a `{a,b}` list.
fn escape_commas(value: &str) -> String {
    if value.starts_with('{') && value.ends_with('}') {
        return value.to_string();
    }
    let mut out = String::new();
    let mut previous = '\0';
    for c in value.chars() {
        if c == ',' && previous != '\\' {
            out.push('\\');
        }
        out.push(c);
        previous = c;
    }
    out
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
    /// The options the renderer takes for this source of application
    /// `app` synced to `namespace`.
    pub fn render_options(&self, app: &str, namespace: &str) -> Result<RenderOptions, String> {
        let mut options = RenderOptions::default();
        options.helm = self
            .helm
            .clone()
            .unwrap_or_default()
            .options(app, namespace)?;
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
    let mut spec: AppSpec = serde_json::from_value(spec).map_err(|e| format!("spec: {e}"))?;
    spec.name = app.name().to_string();
    spec.helm_lookup = app.annotation(crate::helm_lookup::APP_ANNOTATION) == Some("true");
    let sources = spec.all_sources();
    if sources.is_empty() {
        return Err("spec.source or spec.sources is required".into());
    }
    for source in &sources {
        if source.repo_url.is_empty() {
            return Err("spec.source.repoURL is required".into());
        }
        if source.chart.as_deref() == Some("") {
            return Err("spec.source.chart is empty".into());
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
