//! Helm charts rendered as `helm template` (Helm 4.1.4) renders them, with
//! no Helm binary: the chart is loaded ([`chart`]), values coalesced
//! ([`values`]), dependencies enabled by their conditions and tags,
//! templates executed by `gitplane-gotemplate` with Sprig and Helm's
//! functions ([`engine`]), and the documents sorted and printed
//! ([`manifest`]). Start with [`template`] (the text) or [`render_chart`]
//! (the objects).
//!
//! Unlike Helm, the random functions (`randAlphaNum`, `uuidv4`…) give the
//! same result on every render of a release, so a generated password does
//! not change on every sync.
//!
//! Not supported yet, each refused with a clear error: schemas that refer
//! to other documents, and the Sprig functions listed in
//! `gitplane_gotemplate::sprig::NOT_IMPLEMENTED`.

mod archive;
pub mod chart;
pub mod engine;
pub mod manifest;
pub mod schema;
pub mod value_files;
pub mod values;

use std::collections::BTreeMap;
use std::sync::Arc;

use gitplane_gotemplate::semver::{Constraint, Version};
use gitplane_gotemplate::{Dict, GoObject, Limits, Value};
use gitplane_object::{LoadOptions, Object, Syntax, load_objects, objects_of_documents};
use serde_json::Value as Json;

use crate::error::RenderError;
use crate::fs::{RelPath, Root};
use chart::Chart;
pub use chart::ChartCache;

/// The Kubernetes version `helm template` 4.1.4 assumes.
pub const DEFAULT_KUBE_VERSION: &str = "v1.35.0";

/// The API versions Helm 4.1.4 reports by default, in its order.
pub const DEFAULT_API_VERSIONS: &[&str] = &[
    "v1",
    "admissionregistration.k8s.io/v1",
    "admissionregistration.k8s.io/v1alpha1",
    "admissionregistration.k8s.io/v1beta1",
    "internal.apiserver.k8s.io/v1alpha1",
    "apps/v1",
    "apps/v1beta1",
    "apps/v1beta2",
    "authentication.k8s.io/v1",
    "authentication.k8s.io/v1alpha1",
    "authentication.k8s.io/v1beta1",
    "authorization.k8s.io/v1",
    "authorization.k8s.io/v1beta1",
    "autoscaling/v1",
    "autoscaling/v2",
    "autoscaling/v2beta1",
    "autoscaling/v2beta2",
    "batch/v1",
    "batch/v1beta1",
    "certificates.k8s.io/v1",
    "certificates.k8s.io/v1beta1",
    "certificates.k8s.io/v1alpha1",
    "coordination.k8s.io/v1alpha2",
    "coordination.k8s.io/v1beta1",
    "coordination.k8s.io/v1",
    "discovery.k8s.io/v1",
    "discovery.k8s.io/v1beta1",
    "events.k8s.io/v1",
    "events.k8s.io/v1beta1",
    "extensions/v1beta1",
    "flowcontrol.apiserver.k8s.io/v1",
    "flowcontrol.apiserver.k8s.io/v1beta1",
    "flowcontrol.apiserver.k8s.io/v1beta2",
    "flowcontrol.apiserver.k8s.io/v1beta3",
    "networking.k8s.io/v1",
    "networking.k8s.io/v1beta1",
    "node.k8s.io/v1",
    "node.k8s.io/v1alpha1",
    "node.k8s.io/v1beta1",
    "policy/v1",
    "policy/v1beta1",
    "rbac.authorization.k8s.io/v1",
    "rbac.authorization.k8s.io/v1beta1",
    "rbac.authorization.k8s.io/v1alpha1",
    "resource.k8s.io/v1",
    "resource.k8s.io/v1beta2",
    "resource.k8s.io/v1beta1",
    "resource.k8s.io/v1alpha3",
    "scheduling.k8s.io/v1alpha1",
    "scheduling.k8s.io/v1beta1",
    "scheduling.k8s.io/v1",
    "storage.k8s.io/v1beta1",
    "storage.k8s.io/v1",
    "storage.k8s.io/v1alpha1",
    "storagemigration.k8s.io/v1beta1",
    "apiextensions.k8s.io/v1beta1",
    "apiextensions.k8s.io/v1",
];

/// `helm template`'s options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HelmOptions {
    /// The release name (`NAME`).
    pub release_name: String,
    /// `--namespace` (default `default`).
    pub namespace: String,
    /// Values files, in order, as Argo CD's `valueFiles` names them:
    /// relative to the chart directory, or to the root with a leading `/`;
    /// globs (`*`, `?`, `[…]`, `**`) expand in lexical order.
    pub value_files: Vec<String>,
    /// Skip values files that do not exist (and globs matching nothing).
    pub ignore_missing_value_files: bool,
    /// `--set-file`: (key, file named as in `value_files`), the file's text
    /// as a string value.
    pub set_file: Vec<(String, String)>,
    /// Values given inline (Argo CD's `values`/`valuesObject`), after the files.
    pub values_yaml: Vec<String>,
    /// `--set-json` arguments, in order.
    pub set_json: Vec<String>,
    /// `--set` arguments, in order.
    pub set: Vec<String>,
    /// `--set-string` arguments, in order.
    pub set_string: Vec<String>,
    /// `--set-literal` arguments, in order (applied last, as in Helm).
    pub set_literal: Vec<String>,
    /// `--include-crds`.
    pub include_crds: bool,
    /// `--skip-tests`.
    pub skip_tests: bool,
    /// `--no-hooks`.
    pub no_hooks: bool,
    /// `--skip-schema-validation`: values are not checked against the
    /// charts' `values.schema.json`.
    pub skip_schema_validation: bool,
    /// `--kube-version`.
    pub kube_version: Option<String>,
    /// `--api-versions`, added to the defaults.
    pub api_versions: Vec<String>,
    /// Where `lookup` is answered; without one it gives an empty map, as
    /// `helm template` does.
    pub lookup: Option<Lookup>,
    /// The checkouts of the application's other sources, by their `ref`:
    /// values files named `$ref/path` are read there.
    pub refs: BTreeMap<String, std::path::PathBuf>,
    /// Template execution limits.
    pub limits: Limits,
    /// Charts loaded once for many renders; without one every render reads
    /// its chart. Give one only where chart directories do not change
    /// while it lives (see [`ChartCache`]).
    pub chart_cache: Option<ChartCache>,
}

/// Answers Helm's `lookup apiVersion kind namespace name`, read-only: the
/// object, or for an empty name the list (`{apiVersion, kind: KindList,
/// items}`), `None` when there is nothing.
pub type LookupFn =
    dyn Fn(&str, &str, &str, &str) -> Result<Option<serde_json::Value>, String> + Send + Sync;

/// A [`LookupFn`] in the options.
pub type Lookup = crate::Callback<LookupFn>;

impl Default for HelmOptions {
    fn default() -> HelmOptions {
        HelmOptions {
            release_name: "release-name".into(),
            namespace: "default".into(),
            value_files: Vec::new(),
            ignore_missing_value_files: false,
            set_file: Vec::new(),
            values_yaml: Vec::new(),
            set_json: Vec::new(),
            set: Vec::new(),
            set_string: Vec::new(),
            set_literal: Vec::new(),
            include_crds: false,
            skip_tests: false,
            no_hooks: false,
            skip_schema_validation: false,
            kube_version: None,
            api_versions: Vec::new(),
            lookup: None,
            refs: BTreeMap::new(),
            limits: Limits::default(),
            chart_cache: None,
        }
    }
}

/// `.Release`.
#[derive(Debug, Clone)]
pub struct Release {
    name: String,
    namespace: String,
}

impl Release {
    /// The seed of the random functions: each release (name and namespace)
    /// draws its own, the same on every render.
    fn seed(&self) -> u64 {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(format!("{}/{}", self.namespace, self.name));
        digest[..8]
            .iter()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b))
    }

    fn value(&self) -> Value {
        Value::map(BTreeMap::from([
            ("Name".to_string(), Value::from(self.name.as_str())),
            (
                "Namespace".to_string(),
                Value::from(self.namespace.as_str()),
            ),
            ("IsUpgrade".to_string(), Value::Bool(false)),
            ("IsInstall".to_string(), Value::Bool(true)),
            ("Revision".to_string(), Value::Int(1)),
            ("Service".to_string(), Value::from("Helm")),
        ]))
    }
}

/// `.Capabilities`.
#[derive(Debug, Clone)]
pub struct Capabilities {
    kube: Arc<KubeVersion>,
    api_versions: Arc<VersionSet>,
}

impl Capabilities {
    fn new(kube_version: Option<&str>, extra: &[String]) -> Result<Capabilities, String> {
        let text = kube_version.unwrap_or(DEFAULT_KUBE_VERSION);
        let parsed =
            Version::parse(text).map_err(|e| format!("invalid kube version {text:?}: {e}"))?;
        let original = if text.starts_with('v') {
            text.to_string()
        } else {
            format!("v{text}")
        };
        // Kubernetes' generic version: the numbers as given, nothing after.
        let core = original[1..]
            .split(['-', '+'])
            .next()
            .unwrap_or_default()
            .to_string();
        let mut versions: Vec<String> =
            DEFAULT_API_VERSIONS.iter().map(|s| s.to_string()).collect();
        versions.extend(extra.iter().cloned());
        Ok(Capabilities {
            kube: Arc::new(KubeVersion {
                version: original,
                normalized: format!("v{core}"),
                major: parsed.major.to_string(),
                minor: parsed.minor.to_string(),
                parsed,
            }),
            api_versions: Arc::new(VersionSet(versions)),
        })
    }

    fn value(&self) -> Value {
        Value::map(BTreeMap::from([
            ("KubeVersion".to_string(), Value::Object(self.kube.clone())),
            (
                "APIVersions".to_string(),
                Value::Object(self.api_versions.clone()),
            ),
            (
                "HelmVersion".to_string(),
                Value::map(BTreeMap::from([
                    ("Version".to_string(), Value::from("v4.1.4")),
                    (
                        "GitCommit".to_string(),
                        Value::from("05fa37973dc9e42b76e1d2883494c87174b6074f"),
                    ),
                    ("GitTreeState".to_string(), Value::from("clean")),
                    ("GoVersion".to_string(), Value::from("go1.25.9")),
                    ("KubeClientVersion".to_string(), Value::from("v1.35")),
                ])),
            ),
        ]))
    }
}

/// `.Capabilities.KubeVersion`: `Version` (and `GitVersion`) as given,
/// printed as the numbers alone (`v1.31.2` for `1.31.2-gke.7`).
#[derive(Debug)]
struct KubeVersion {
    version: String,
    normalized: String,
    major: String,
    minor: String,
    parsed: Version,
}

impl GoObject for KubeVersion {
    fn type_name(&self) -> &str {
        "common.KubeVersion"
    }

    fn member(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        if !args.is_empty() {
            return Some(Err(format!("{name} takes no arguments")));
        }
        Some(Ok(match name {
            "Version" | "GitVersion" => self.version.as_str().into(),
            "String" => self.normalized.as_str().into(),
            "Major" => self.major.as_str().into(),
            "Minor" => self.minor.as_str().into(),
            _ => return None,
        }))
    }

    fn print(&self) -> String {
        self.normalized.clone()
    }
}

/// `.Capabilities.APIVersions`: a list with `Has`.
#[derive(Debug)]
struct VersionSet(Vec<String>);

impl GoObject for VersionSet {
    fn type_name(&self) -> &str {
        "common.VersionSet"
    }

    fn member(&self, name: &str, args: &[Value]) -> Option<Result<Value, String>> {
        match (name, args) {
            ("Has", [Value::String(v)]) => Some(Ok(Value::Bool(self.0.iter().any(|x| **x == **v)))),
            ("Has", _) => Some(Err(format!(
                "wrong number of args for Has: want 1 got {}",
                args.len()
            ))),
            _ => None,
        }
    }

    fn print(&self) -> String {
        format!("[{}]", self.0.join(" "))
    }

    fn elements(&self) -> Option<Vec<Value>> {
        Some(self.0.iter().map(|v| Value::from(v.as_str())).collect())
    }
}

/// What [`template`] produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// `helm template`'s stdout.
    pub output: String,
    /// Things not done that `helm` would do (printed as warnings).
    pub warnings: Vec<String>,
    /// What keeps an app from staying Synced, or where gitplane's output
    /// differs from Helm's by design: each random function a template
    /// called and each reading of the clock (see [`random_call_note`]).
    pub notes: Vec<String>,
}

/// A chart rendered but not yet printed.
struct Documents {
    manifests: Vec<manifest::Document>,
    hooks: Vec<manifest::Document>,
    crds: Vec<(String, String)>,
    warnings: Vec<String>,
    notes: Vec<String>,
}

/// Renders the chart in `dir` as `helm template NAME DIR` would.
pub fn template(
    root: &Root,
    dir: &RelPath,
    options: &HelmOptions,
) -> Result<Rendered, RenderError> {
    let documents = render_documents(root, dir, options)?;
    let output = manifest::print(
        &documents.manifests,
        &documents.hooks,
        &manifest::Print {
            crds: documents.crds,
            hooks: !options.no_hooks,
            skip_tests: options.skip_tests,
        },
    );
    Ok(Rendered {
        output,
        warnings: documents.warnings,
        notes: documents.notes,
    })
}

/// The chart's objects, as Argo CD reads `helm template`'s output (CRDs
/// unless left out, then manifests, then hooks), each named after the
/// template it came from; and the notes on them ([`Rendered::notes`]).
pub fn render_chart(
    root: &Root,
    dir: &RelPath,
    options: &HelmOptions,
) -> Result<(Vec<Object>, Vec<String>), RenderError> {
    let documents = render_documents(root, dir, options)?;
    let mut objects = Vec::new();
    let load = LoadOptions::default();
    for (source, text) in &documents.crds {
        objects.extend(load_objects(
            text.as_bytes(),
            &on_disk(dir, source),
            Syntax::Yaml,
            &load,
        )?);
    }
    let (no_hooks, skip_tests) = (options.no_hooks, options.skip_tests);
    let hooks = documents
        .hooks
        .into_iter()
        .filter(|h| !(no_hooks || (skip_tests && h.is_test())));
    for document in documents.manifests.into_iter().chain(hooks) {
        let name = format!("{} (rendered)", on_disk(dir, &document.source));
        objects.extend(objects_of_documents(document.parsed, &name)?);
    }
    Ok((objects, documents.notes))
}

/// What to say about a template that called a random function or read
/// the clock (`function` may say where: `uuidv4 (in web.id)`): a random
/// one is stable here but would never be Synced under Helm and Argo CD; a
/// key generator makes new keys here too; the clock changes the output
/// whenever the app is rendered again.
pub fn random_call_note(template: &str, function: &str) -> String {
    let name = function.split(' ').next().unwrap_or(function);
    if gitplane_gotemplate::sprig::CLOCK_FUNCTIONS.contains(&name) {
        return format!(
            "{template} calls {function}, which reads the clock: the output changes whenever the app is rendered again (a new commit, a hard refresh), as in Helm; under Argo CD this app would never be Synced"
        );
    }
    if gitplane_gotemplate::sprig::KEY_GENERATORS.contains(&name) {
        return format!(
            "{template} calls {function}: it makes a new key on every render, as in Helm, so this app will not stay Synced (keep the key with lookup and gitplane.dev/helm-lookup)"
        );
    }
    format!(
        "{template} calls {function}: gitplane gives it the same value on every render of this release, helm template a new one each time (under Argo CD this app would never be Synced)"
    )
}

/// The file a `# Source:` path names (`chart/templates/x.yaml` is
/// `DIR/templates/x.yaml`).
fn on_disk(dir: &RelPath, source: &str) -> String {
    let inside = source.split_once('/').map_or(source, |(_, rest)| rest);
    dir.join(inside).display().to_string()
}

fn render_documents(
    root: &Root,
    dir: &RelPath,
    options: &HelmOptions,
) -> Result<Documents, RenderError> {
    let load = LoadOptions::default();
    let origin = format!("chart {}", dir.display());
    let error = |message: String| RenderError::helm(&origin, message);
    let mut chart = match &options.chart_cache {
        Some(cache) => cache.load(root, dir, &load)?,
        None => chart::load(root, dir, &load)?,
    };
    if chart.is_library() {
        return Err(error("library charts are not installable".into()));
    }
    check_release_name(&options.release_name).map_err(error)?;
    let mut warnings = Vec::new();
    let user = user_values(root, dir, options, &load)?;
    resolve_dependencies(&mut chart).map_err(error)?;
    enable_dependencies(&mut chart, &user).map_err(error)?;
    warnings.extend(import_values(&mut chart).map_err(error)?);
    let coalesced = user.deep_copy();
    let names: Vec<String> = chart
        .dependencies
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    values::coalesce(&chart, &coalesced, &names);
    if !options.skip_schema_validation {
        schema::validate(&chart, &coalesced).map_err(error)?;
    }
    let capabilities =
        Capabilities::new(options.kube_version.as_deref(), &options.api_versions).map_err(error)?;
    check_kube_version(&chart, &capabilities).map_err(error)?;
    let release = Release {
        name: options.release_name.clone(),
        namespace: options.namespace.clone(),
    };
    let rendered = engine::render(
        &chart,
        &Value::Map(coalesced),
        &release,
        &capabilities,
        &options.limits,
        options.lookup.as_ref(),
        |path, text| manifest::split(path, &text),
    )
    .map_err(error)?;
    let (manifests, hooks) = manifest::sort(rendered.files).map_err(error)?;
    let notes = rendered
        .random_calls
        .iter()
        .map(|(template, function)| random_call_note(template, function))
        .collect();
    let mut crds = Vec::new();
    if options.include_crds {
        collect_crds(&chart, chart.name(), &mut crds);
    }
    Ok(Documents {
        manifests,
        hooks,
        crds,
        warnings,
        notes,
    })
}

/// Helm's release name rule: DNS-1123 subdomain, at most 53 characters.
fn check_release_name(name: &str) -> Result<(), String> {
    let valid = !name.is_empty()
        && name.len() <= 53
        && name.split('.').all(|label| {
            !label.is_empty()
                && label
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !label.starts_with('-')
                && !label.ends_with('-')
        });
    if valid {
        Ok(())
    } else {
        Err(format!(
            "release name check failed: release name {name:?}: invalid release name, must match regex ^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$ and the length must not be longer than 53"
        ))
    }
}

/// User values: files, inline YAML, `--set-json`, `--set`, `--set-string`,
/// `--set-file`, `--set-literal`, in that order (Helm's `MergeValues`).
fn user_values(
    root: &Root,
    chart: &RelPath,
    options: &HelmOptions,
    load: &LoadOptions,
) -> Result<Dict, RenderError> {
    let user = values::empty();
    let merge_yaml = |bytes: &[u8], name: &str| -> Result<(), RenderError> {
        let map = chart::merged_documents(bytes, name, load)?;
        if let Value::Map(d) = Value::from_json(&Json::Object(map)) {
            values::merge_into(&user, &d);
        }
        Ok(())
    };
    for reference in &options.value_files {
        let ignore = options.ignore_missing_value_files;
        for (name, bytes) in value_files::read(root, chart, reference, ignore, &options.refs)? {
            merge_yaml(&bytes, &name)?;
        }
    }
    for (i, text) in options.values_yaml.iter().enumerate() {
        merge_yaml(text.as_bytes(), &format!("values #{}", i + 1))?;
    }
    for text in &options.set_json {
        values::apply_set_json(&user, text)
            .map_err(|e| RenderError::helm("--set-json", format!("{text:?}: {e}")))?;
    }
    for (flags, as_string) in [(&options.set, false), (&options.set_string, true)] {
        for text in flags {
            values::apply_set(&user, text, as_string)
                .map_err(|e| RenderError::helm("--set", format!("{text:?}: {e}")))?;
        }
    }
    for (key, reference) in &options.set_file {
        let mut text = String::new();
        for (_, bytes) in value_files::read(root, chart, reference, false, &options.refs)? {
            text.push_str(&String::from_utf8_lossy(&bytes));
        }
        values::set_string_value(&user, key, text)
            .map_err(|e| RenderError::helm("--set-file", format!("{key:?}: {e}")))?;
    }
    for text in &options.set_literal {
        values::apply_set_literal(&user, text)
            .map_err(|e| RenderError::helm("--set-literal", format!("{text:?}: {e}")))?;
    }
    Ok(user)
}

/// Matches `Chart.yaml` dependencies with the charts in `charts/` (renamed
/// by `alias`), recursively; a dependency with no chart is an error, as in
/// Helm.
fn resolve_dependencies(chart: &mut Chart) -> Result<(), String> {
    let declared = chart.declared_dependencies();
    if declared.is_empty() {
        for sub in &mut chart.dependencies {
            resolve_dependencies(sub)?;
        }
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut resolved: Vec<Chart> = Vec::new();
    let mut used = vec![false; chart.dependencies.len()];
    for dep in &declared {
        let name = dep.get("name").and_then(Json::as_str).unwrap_or("");
        if !chart.dependencies.iter().any(|c| c.name() == name) {
            missing.push(name.to_string());
            continue;
        }
        // Helm uses the first chart of that name whose version is in the
        // range; a dependency no chart satisfies is left out.
        let range = dep.get("version").and_then(Json::as_str).unwrap_or("");
        let compatible = |c: &Chart| {
            let version = c
                .metadata
                .get("version")
                .and_then(Json::as_str)
                .unwrap_or("");
            match (Constraint::parse(range), Version::parse(version)) {
                (Ok(constraint), Ok(version)) => constraint.matches(&version),
                _ => false,
            }
        };
        let Some(index) = chart
            .dependencies
            .iter()
            .position(|c| c.name() == name && compatible(c))
        else {
            continue;
        };
        used[index] = true;
        let mut sub = chart.dependencies[index].clone();
        if let Some(alias) = dep
            .get("alias")
            .and_then(Json::as_str)
            .filter(|a| !a.is_empty())
        {
            sub.metadata.insert("name".into(), alias.into());
        }
        sub.requested_as = Some(dep.clone());
        resolved.push(sub);
    }
    if !missing.is_empty() {
        return Err(format!(
            "found in Chart.yaml, but missing in charts/ directory: {}",
            missing.join(", ")
        ));
    }
    // Charts in charts/ that no dependency takes are kept, first.
    let unused = chart
        .dependencies
        .iter()
        .zip(used)
        .filter(|(_, used)| !used)
        .map(|(sub, _)| sub.clone());
    let mut resolved: Vec<Chart> = unused.chain(resolved).collect();
    for sub in &mut resolved {
        resolve_dependencies(sub)?;
    }
    chart.dependencies = resolved;
    Ok(())
}

/// Removes dependencies disabled by their `condition` or `tags`, judged on
/// the values coalesced with every dependency (Helm's
/// `processDependencyEnabled`).
fn enable_dependencies(chart: &mut Chart, user: &Dict) -> Result<(), String> {
    let all = user.deep_copy();
    let names: Vec<String> = chart
        .dependencies
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    values::coalesce(chart, &all, &names);
    prune(chart, &all, &all);
    Ok(())
}

fn prune(chart: &mut Chart, values: &Dict, top: &Dict) {
    let tags = match top.get("tags") {
        Some(Value::Map(t)) => Some(t),
        _ => None,
    };
    // Helm removes every chart named as a disabled dependency (its alias
    // when it has one), also one kept whose version the entry's range
    // does not take.
    let disabled: Vec<String> = chart
        .declared_dependencies()
        .iter()
        .filter(|dep| !is_enabled(dep, values, tags.as_ref()))
        .filter_map(|dep| {
            let alias = dep
                .get("alias")
                .and_then(Json::as_str)
                .filter(|a| !a.is_empty());
            alias
                .or_else(|| dep.get("name").and_then(Json::as_str))
                .map(str::to_string)
        })
        .collect();
    chart
        .dependencies
        .retain(|sub| !disabled.iter().any(|name| name == sub.name()));
    for sub in &mut chart.dependencies {
        let section = match values.get(sub.name()) {
            Some(Value::Map(d)) => d,
            _ => values::empty(),
        };
        prune(sub, &section, top);
    }
}

/// A field of the dependency entry that brought `sub` in.
fn requested<'a>(sub: &'a Chart, key: &str) -> Option<&'a Json> {
    sub.requested_as.as_ref()?.get(key)
}

/// Whether a dependency entry is enabled by its `tags` and `condition`.
fn is_enabled(dep: &serde_json::Map<String, Json>, values: &Dict, tags: Option<&Dict>) -> bool {
    let mut enabled = true;
    if let (Some(Json::Array(dep_tags)), Some(tags)) = (dep.get("tags"), tags) {
        let states: Vec<bool> = dep_tags
            .iter()
            .filter_map(Json::as_str)
            .filter_map(|t| match tags.get(t) {
                Some(Value::Bool(b)) => Some(b),
                _ => None,
            })
            .collect();
        if !states.is_empty() {
            enabled = states.iter().any(|b| *b);
        }
    }
    if let Some(condition) = dep.get("condition").and_then(Json::as_str) {
        for path in condition
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
        {
            if let Some(Value::Bool(b)) = lookup_path(values, path) {
                return b;
            }
        }
    }
    enabled
}

fn lookup_path(values: &Dict, path: &str) -> Option<Value> {
    let mut current = Value::Map(values.clone());
    for key in path.split('.') {
        current = match current {
            Value::Map(d) => d.get(key)?,
            _ => return None,
        };
    }
    Some(current)
}

/// `import-values` (Helm's `processDependencyImportValues`), children
/// first: a child's `exports.X` (string form) or any table of it (`child`
/// and `parent` paths) is imported into the parent's values, under the
/// parent's own values, which win.
fn import_values(chart: &mut Chart) -> Result<Vec<String>, String> {
    let mut warnings = Vec::new();
    for sub in &mut chart.dependencies {
        warnings.extend(import_values(sub)?);
    }
    if chart.dependencies.is_empty() {
        return Ok(warnings);
    }
    let names: Vec<String> = chart
        .dependencies
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    let own = values::empty();
    values::coalesce(chart, &own, &names);
    let imported = values::empty();
    for sub in &chart.dependencies {
        let Some(Json::Array(imports)) = requested(sub, "import-values") else {
            continue;
        };
        for import in imports {
            let (child, parent) = match import {
                Json::String(name) => (format!("exports.{name}"), String::new()),
                Json::Object(map) => (
                    map.get("child")
                        .and_then(Json::as_str)
                        .unwrap_or("")
                        .to_string(),
                    map.get("parent")
                        .and_then(Json::as_str)
                        .unwrap_or("")
                        .to_string(),
                ),
                _ => {
                    return Err(format!(
                        "dependency {}: import-values entries are names or child/parent maps",
                        sub.name()
                    ));
                }
            };
            // A missing table is skipped, as Helm skips it (with a warning).
            let Some(Value::Map(table)) = lookup_path(&own, &format!("{}.{child}", sub.name()))
            else {
                warnings.push(format!(
                    "import-values of chart {}: no table {child:?} to import",
                    sub.name()
                ));
                continue;
            };
            let placed = values::empty();
            values::set_table(&placed, &parent, table);
            values::merge_into(&imported, &placed);
        }
    }
    values::coalesce_tables(&own, &imported);
    chart.values = chart::ChartValues::of(own);
    Ok(warnings)
}

/// The root chart's `kubeVersion` constraint against the capabilities.
fn check_kube_version(chart: &Chart, capabilities: &Capabilities) -> Result<(), String> {
    let Some(required) = chart.metadata.get("kubeVersion").and_then(Json::as_str) else {
        return Ok(());
    };
    let constraint = Constraint::parse(required)?;
    let plain = Version {
        prerelease: String::new(),
        ..capabilities.kube.parsed.clone()
    };
    if constraint.matches(&plain) {
        Ok(())
    } else {
        Err(format!(
            "chart requires kubeVersion: {required} which is incompatible with Kubernetes {}",
            capabilities.kube.version
        ))
    }
}

/// CRDs of the chart and its dependencies, printed raw.
fn collect_crds(chart: &Chart, full_path: &str, out: &mut Vec<(String, String)>) {
    for (path, bytes) in chart.crds() {
        out.push((
            format!("{full_path}/{path}"),
            String::from_utf8_lossy(bytes).into_owned(),
        ));
    }
    for sub in &chart.dependencies {
        collect_crds(sub, &format!("{full_path}/charts/{}", sub.name()), out);
    }
}
