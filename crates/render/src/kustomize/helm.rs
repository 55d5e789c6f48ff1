//! `helmCharts` (kustomize's HelmChartInflationGenerator), as
//! `kubectl kustomize --enable-helm` runs it, with gitplane's own Helm
//! engine instead of the `helm` program: each chart found under
//! `helmGlobals.chartHome` (default `charts`) is rendered with its values
//! file (default: the chart's `values.yaml`) merged with `valuesInline`,
//! then its `additionalValuesFiles`, and its objects join the resources.
//!
//! Charts are never pulled: a chart missing from `chartHome` is an error
//! that says where it was looked for.

use serde::Deserialize;
use serde_json::Value;

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
            inflate_one(root, dir, home, chart, load).map_err(|e| match e {
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
    if root.kind(&chart_dir)? != Some(EntryKind::Dir) {
        return Err(RenderError::helm(
            chart_dir.display(),
            "no chart here: gitplane does not pull charts for kustomize; put the chart in the repository at this path",
        ));
    }
    let values_file = if chart.values_file.is_empty() {
        chart_dir.join("values.yaml")
    } else {
        root.resolve(dir, &chart.values_file)?
    };
    within(dir, &values_file)?;
    let file_values = match root.kind(&values_file)? {
        Some(EntryKind::File) => Value::Object(merged_documents(
            &root.read(&values_file)?,
            values_file.display(),
            load,
        )?),
        _ => Value::Object(serde_json::Map::new()),
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
    render_chart(root, &chart_dir, &options).map(|(objects, _notes)| objects)
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
