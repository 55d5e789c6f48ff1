//! `helmCharts` (kustomize's HelmChartInflationGenerator), as
//! `kubectl kustomize --enable-helm` runs it, with gitplane's own Helm
//! engine instead of the `helm` program: each chart found under
//! `helmGlobals.chartHome` (default `charts`) is rendered with its values
//! file (default: the chart's `values.yaml`) merged with `valuesInline`,
//! then its `additionalValuesFiles`, and its objects join the resources.
//!
//! A chart missing from `chartHome` is pulled from its `repo` (a Helm
//! repository or OCI registry) when the caller gives a [`ChartPuller`],
//! and rendered from the pulled archive, where the chart's own
//! `values.yaml` applies as its defaults; without a puller, or a `repo`,
//! it is an error that says where it was looked for.

use serde::Deserialize;
use serde_json::Value;

use crate::ChartPuller;
use crate::error::RenderError;
use crate::fs::{EntryKind, RelPath, Root};
use crate::helm::{HelmOptions, chart::merged_documents, render_chart};
use gitplane_object::{LoadOptions, Object};

/// One `helmCharts` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct HelmChart {
    name: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    repo: String,
    #[serde(default)]
    release_name: String,
    #[serde(default)]
    namespace: String,
    #[serde(default)]
    values_file: String,
    #[serde(default)]
    additional_values_files: Vec<String>,
    #[serde(default)]
    values_inline: Option<Value>,
    #[serde(default)]
    values_merge: String,
    #[serde(default, rename = "includeCRDs")]
    include_crds: bool,
    #[serde(default)]
    skip_hooks: bool,
    #[serde(default)]
    skip_tests: bool,
    #[serde(default)]
    api_versions: Vec<String>,
    #[serde(default)]
    kube_version: String,
}

/// `helmGlobals` (its `configHome`, Helm's own configuration, has no use
/// here).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct HelmGlobals {
    #[serde(default)]
    chart_home: String,
}

/// Renders every `helmCharts` entry of the kustomization in `dir`.
pub fn inflate(
    root: &Root,
    dir: &RelPath,
    file: &str,
    charts: Option<&Value>,
    globals: Option<&Value>,
    load: &LoadOptions,
    puller: Option<&ChartPuller>,
) -> Result<Vec<Object>, RenderError> {
    let error = |m: String| RenderError::kustomize(file, m);
    let charts: Vec<HelmChart> = match charts {
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| error(format!("invalid helmCharts: {e}")))?,
        None => Vec::new(),
    };
    let globals: HelmGlobals = match globals {
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| error(format!("invalid helmGlobals: {e}")))?,
        None => HelmGlobals::default(),
    };
    let home = if globals.chart_home.is_empty() {
        "charts"
    } else {
        globals.chart_home.as_str()
    };
    let mut objects = Vec::new();
    for chart in &charts {
        objects.extend(
            inflate_one(root, dir, home, chart, load, puller).map_err(|e| match e {
                RenderError::Helm { file: f, message } => {
                    error(format!("helmCharts {:?}: {f}: {message}", chart.name))
                }
                other => other,
            })?,
        );
    }
    Ok(objects)
}

fn inflate_one(
    root: &Root,
    dir: &RelPath,
    home: &str,
    chart: &HelmChart,
    load: &LoadOptions,
    puller: Option<&ChartPuller>,
) -> Result<Vec<Object>, RenderError> {
    let home = root.resolve(dir, home)?;
    // kustomize keeps a pulled chart under <name>-<version> when both the
    // version and the repository are given.
    let versioned = !chart.version.is_empty() && !chart.repo.is_empty();
    let base = if versioned {
        home.join(&format!("{}-{}", chart.name, chart.version))
    } else {
        home.clone()
    };
    let chart_dir = root.resolve(&base, &chart.name)?;
    let in_repository = root.kind(&chart_dir)? == Some(EntryKind::Dir);
    let pulled = match puller {
        _ if in_repository => None,
        Some(puller) if !chart.repo.is_empty() => {
            let archive = (puller.0)(&chart.repo, &chart.name, &chart.version)
                .map_err(|e| RenderError::helm(&chart.repo, e))?;
            Some(archive_root(&archive, root.max_file_bytes())?)
        }
        _ => {
            let why = if chart.repo.is_empty() {
                "no chart here, and no repo to pull it from"
            } else {
                "no chart here: `gitplane render` and `gitplane up` pull it from its repo, other callers do not; put the chart in the repository at this path"
            };
            return Err(RenderError::helm(chart_dir.display(), why));
        }
    };
    // The values file: the chart's own `values.yaml` when none is named
    // (in a pulled archive, Helm applies it as the chart's defaults).
    let values_file = match (chart.values_file.is_empty(), &pulled) {
        (true, Some(_)) => None,
        (true, None) => Some(chart_dir.join("values.yaml")),
        (false, _) => Some(root.resolve(dir, &chart.values_file)?),
    };
    let file_values = match values_file {
        Some(values_file) => {
            within(dir, &values_file)?;
            match root.kind(&values_file)? {
                Some(EntryKind::File) => Value::Object(merged_documents(
                    &root.read(&values_file)?,
                    values_file.display(),
                    load,
                )?),
                _ => Value::Object(serde_json::Map::new()),
            }
        }
        None => Value::Object(serde_json::Map::new()),
    };
    let values = match (chart.values_merge.as_str(), chart.values_inline.clone()) {
        (_, None) => file_values,
        ("" | "override", Some(inline)) => merged(file_values, inline),
        ("merge", Some(inline)) => merged(inline, file_values),
        ("replace", Some(inline)) => inline,
        (other, Some(_)) => {
            return Err(RenderError::helm(
                &chart.name,
                format!("valuesMerge {other:?}: must be override, merge or replace"),
            ));
        }
    };
    // kustomize passes the merged values first, then each additional file.
    let mut values_yaml = vec![
        serde_json::to_string(&values)
            .map_err(|e| RenderError::helm(&chart.name, e.to_string()))?,
    ];
    for extra in &chart.additional_values_files {
        let path = root.resolve(dir, extra)?;
        within(dir, &path)?;
        let text = String::from_utf8(root.read(&path)?)
            .map_err(|_| RenderError::helm(path.display(), "not UTF-8"))?;
        values_yaml.push(text);
    }
    let options = HelmOptions {
        release_name: if chart.release_name.is_empty() {
            "release-name".into()
        } else {
            chart.release_name.clone()
        },
        namespace: if chart.namespace.is_empty() {
            "default".into()
        } else {
            chart.namespace.clone()
        },
        values_yaml,
        include_crds: chart.include_crds,
        skip_tests: chart.skip_tests,
        no_hooks: chart.skip_hooks,
        kube_version: Some(chart.kube_version.clone()).filter(|v| !v.is_empty()),
        api_versions: chart.api_versions.clone(),
        ..HelmOptions::default()
    };
    let rendered = match &pulled {
        Some((archive_root, archive)) => render_chart(archive_root, archive, &options),
        None => render_chart(root, &chart_dir, &options),
    };
    rendered.map(|(objects, _notes)| objects)
}

/// A pulled archive as a root of its own (its directory) and its path in it.
fn archive_root(
    archive: &std::path::Path,
    max_file_bytes: u64,
) -> Result<(Root, RelPath), RenderError> {
    let name = archive
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| {
            RenderError::helm(
                &archive.display().to_string(),
                "a pulled chart has no file name",
            )
        })?;
    let dir = archive.parent().unwrap_or(std::path::Path::new("."));
    let root = Root::open(dir, max_file_bytes)?;
    let path = root.resolve(&RelPath::root(), name)?;
    Ok((root, path))
}

/// kustomize's load restriction: values files are read only in or below
/// the kustomization's directory (a chart home elsewhere fails on its
/// `values.yaml`, as in kustomize).
fn within(dir: &RelPath, path: &RelPath) -> Result<(), RenderError> {
    if path.is_within(dir) {
        return Ok(());
    }
    Err(RenderError::helm(
        path.display(),
        format!(
            "security: not in or below the kustomization directory {}",
            dir.display()
        ),
    ))
}

/// `over` merged into `base`: tables merge, anything else in `over` wins.
fn merged(base: Value, over: Value) -> Value {
    match (base, over) {
        (Value::Object(mut b), Value::Object(o)) => {
            for (key, value) in o {
                let next = match b.remove(&key) {
                    Some(current) => merged(current, value),
                    None => value,
                };
                b.insert(key, next);
            }
            Value::Object(b)
        }
        (_, over) => over,
    }
}
