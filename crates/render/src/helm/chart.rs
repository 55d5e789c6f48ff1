//! Loading a chart directory as Helm's loader does: `Chart.yaml`,
//! `values.yaml`, `templates/`, `crds/`, `charts/` (subchart directories)
//! and every other file as `.Files`, minus what `.helmignore` names.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use gitplane_gotemplate::{Dict, Value};
use gitplane_object::LoadOptions;
use gitplane_object::yaml::{Dialect, parse_documents};
use globset::{GlobBuilder, GlobMatcher};
use serde_json::{Map, Value as Json};

use crate::error::RenderError;
use crate::fs::{EntryKind, RelPath, Root};

/// A loaded chart.
#[derive(Debug, Clone)]
pub struct Chart {
    /// `Chart.yaml`.
    pub metadata: Map<String, Json>,
    /// `values.yaml` (every document merged), as template values.
    pub values: ChartValues,
    /// `values.schema.json`, as written.
    pub schema: Option<Vec<u8>>,
    /// `templates/…`: path inside the chart → text (shared by the
    /// chart's copies, as loaded).
    pub templates: Arc<BTreeMap<String, Arc<str>>>,
    /// Every other file (`crds/` too): path inside the chart → bytes
    /// (shared by the chart's copies, as loaded).
    pub files: Arc<BTreeMap<String, Vec<u8>>>,
    /// Subcharts from `charts/`, in directory order.
    pub dependencies: Vec<Chart>,
    /// Where the chart was read from (for errors).
    pub origin: String,
    /// The parent's `Chart.yaml` dependency entry this chart answers
    /// (condition, tags, import-values), once dependencies are resolved.
    pub requested_as: Option<Map<String, Json>>,
}

/// A chart's values, read once and never changed: every render coalesces
/// copies of them, since templates may change the values they are given
/// (`set .Values …`) and a cached chart serves many renders.
#[derive(Debug, Clone, Default)]
pub struct ChartValues(Dict);

impl ChartValues {
    /// Values read from YAML.
    pub fn from_json(values: Map<String, Json>) -> ChartValues {
        match Value::from_json(&Json::Object(values)) {
            Value::Map(d) => ChartValues(d),
            _ => ChartValues::default(),
        }
    }

    /// Values computed for this chart (imported ones); `values` must not
    /// be changed afterwards.
    pub fn of(values: Dict) -> ChartValues {
        ChartValues(values)
    }

    /// The values themselves, to read and copy from: never to be changed
    /// or handed to templates (see [`super::values::coalesce`]).
    pub(super) fn read_only(&self) -> &Dict {
        &self.0
    }
}

impl Chart {
    /// `name` from `Chart.yaml`.
    pub fn name(&self) -> &str {
        self.metadata
            .get("name")
            .and_then(Json::as_str)
            .unwrap_or("")
    }

    /// `type` is `library`.
    pub fn is_library(&self) -> bool {
        self.metadata.get("type").and_then(Json::as_str) == Some("library")
    }

    /// `dependencies` of `Chart.yaml` (or of a v1 chart's `requirements.yaml`).
    pub fn declared_dependencies(&self) -> Vec<Map<String, Json>> {
        self.metadata
            .get("dependencies")
            .and_then(Json::as_array)
            .map(|deps| deps.iter().filter_map(|d| d.as_object().cloned()).collect())
            .unwrap_or_default()
    }

    /// The bytes of its templates and files, and its subcharts'.
    fn size(&self) -> usize {
        let templates: usize = self.templates.values().map(|t| t.len()).sum();
        let files: usize = self.files.values().map(Vec::len).sum();
        templates + files + self.dependencies.iter().map(Chart::size).sum::<usize>()
    }

    /// CRD files (`.yaml`, `.yml`, `.json` anywhere under `crds/`, as
    /// Helm takes them), sorted by path.
    pub fn crds(&self) -> Vec<(&str, &[u8])> {
        self.files
            .iter()
            .filter(|(path, _)| {
                let lower = path.to_ascii_lowercase();
                lower.starts_with("crds/")
                    && [".yaml", ".yml", ".json"]
                        .iter()
                        .any(|e| lower.ends_with(e))
            })
            .map(|(p, b)| (p.as_str(), b.as_slice()))
            .collect()
    }
}

/// Charts kept as loaded, by where they are on disk, for renderers that
/// render one chart for many releases (a controller with many
/// applications on one commit). Only for directories that do not change
/// while the cache lives: the controller's per-commit snapshots and
/// pulled charts. Clones share the cache; it holds at most
/// [`ChartCache::MAX_BYTES`] of chart files, and starts over past that.
#[derive(Clone, Default)]
pub struct ChartCache(Arc<Mutex<CachedCharts>>);

#[derive(Default)]
struct CachedCharts {
    charts: HashMap<PathBuf, Arc<Chart>>,
    bytes: usize,
}

impl ChartCache {
    /// The most bytes of chart files kept.
    pub const MAX_BYTES: usize = 256 << 20;

    /// The chart in `dir`, loaded now or earlier.
    pub fn load(
        &self,
        root: &Root,
        dir: &RelPath,
        options: &LoadOptions,
    ) -> Result<Chart, RenderError> {
        let key = root.path().join(dir.as_str());
        let cached = self.lock().charts.get(&key).cloned();
        if let Some(chart) = cached {
            return Ok(Chart::clone(&chart));
        }
        let chart = load(root, dir, options)?;
        let size = chart.size();
        let mut cached = self.lock();
        if cached.bytes + size > Self::MAX_BYTES {
            cached.charts.clear();
            cached.bytes = 0;
        }
        cached.bytes += size;
        cached.charts.insert(key, Arc::new(chart.clone()));
        Ok(chart)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, CachedCharts> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl std::fmt::Debug for ChartCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChartCache")
    }
}

impl PartialEq for ChartCache {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for ChartCache {}

/// Whether `dir` holds a chart (`Chart.yaml`), as Argo CD detects one.
pub fn is_chart(root: &Root, dir: &RelPath) -> Result<bool, RenderError> {
    Ok(root.kind(&dir.join("Chart.yaml"))? == Some(EntryKind::File))
}

/// Loads the chart in `dir` (a directory, or a `.tgz` archive).
pub fn load(root: &Root, dir: &RelPath, options: &LoadOptions) -> Result<Chart, RenderError> {
    if root.kind(dir)? == Some(EntryKind::File) {
        return load_archive(&root.read(dir)?, dir.display(), options);
    }
    let ignore = Ignore::read(root, dir)?;
    let mut files = BTreeMap::new();
    collect(root, dir, "", &ignore, &mut files)?;
    from_files(files, dir.display().to_string(), options)
}

/// Loads a chart packaged as a `.tgz` (as `helm package` writes it).
pub fn load_archive(
    bytes: &[u8],
    origin: &str,
    options: &LoadOptions,
) -> Result<Chart, RenderError> {
    let files = super::archive::unpack(bytes).map_err(|e| RenderError::helm(origin, e))?;
    from_files(files, origin.to_string(), options)
}

/// A chart from its files (path inside the chart → bytes); subcharts are
/// the directories and archives under `charts/`.
fn from_files(
    mut files: BTreeMap<String, Vec<u8>>,
    origin: String,
    options: &LoadOptions,
) -> Result<Chart, RenderError> {
    let error =
        |file: &str, message: String| RenderError::helm(&format!("{origin}/{file}"), message);
    let chart_yaml = files.remove("Chart.yaml").ok_or_else(|| {
        error(
            "Chart.yaml",
            "no such file: a chart needs Chart.yaml".into(),
        )
    })?;
    let mut metadata = merged_documents(&chart_yaml, &format!("{origin}/Chart.yaml"), options)?;
    for field in ["name", "version"] {
        if metadata
            .get(field)
            .and_then(Json::as_str)
            .is_none_or(str::is_empty)
        {
            return Err(error(
                "Chart.yaml",
                format!("validation: chart.metadata.{field} is required"),
            ));
        }
    }
    if !metadata.contains_key("apiVersion") {
        metadata.insert("apiVersion".into(), "v1".into());
    }
    if let Some(requirements) = files.remove("requirements.yaml")
        && !metadata.contains_key("dependencies")
    {
        let requirements = merged_documents(
            &requirements,
            &format!("{origin}/requirements.yaml"),
            options,
        )?;
        if let Some(deps) = requirements.get("dependencies") {
            metadata.insert("dependencies".into(), deps.clone());
        }
    }
    let values = match files.remove("values.yaml") {
        Some(bytes) => merged_documents(&bytes, &format!("{origin}/values.yaml"), options)?,
        None => Map::new(),
    };
    let values = ChartValues::from_json(values);
    let schema = files.remove("values.schema.json");
    for special in ["Chart.lock", "requirements.lock"] {
        files.remove(special);
    }
    let mut templates = BTreeMap::new();
    let template_paths: Vec<String> = files
        .keys()
        .filter(|p| p.starts_with("templates/"))
        .cloned()
        .collect();
    for path in template_paths {
        let bytes = files.remove(&path).unwrap_or_default();
        let text =
            String::from_utf8(bytes).map_err(|_| error(&path, "template is not UTF-8".into()))?;
        templates.insert(path, Arc::from(text));
    }
    let dependencies = subcharts(&mut files, &origin, options)?;
    if metadata.get("type").and_then(Json::as_str) == Some("library") {
        templates.retain(|path, _| base_name(path).starts_with('_'));
    }
    Ok(Chart {
        metadata,
        values,
        schema,
        templates: Arc::new(templates),
        files: Arc::new(files),
        dependencies,
        origin,
        requested_as: None,
    })
}

/// The last segment of a path.
pub fn base_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

/// Takes the files under `charts/` out of `files` and loads them as
/// subcharts: each directory and each `.tgz` (names starting with `_` or
/// `.` are skipped), by name.
fn subcharts(
    files: &mut BTreeMap<String, Vec<u8>>,
    origin: &str,
    options: &LoadOptions,
) -> Result<Vec<Chart>, RenderError> {
    let under: Vec<String> = files
        .keys()
        .filter(|p| p.starts_with("charts/"))
        .cloned()
        .collect();
    let mut directories: BTreeMap<String, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
    let mut archives = Vec::new();
    for path in under {
        let bytes = files.remove(&path).unwrap_or_default();
        let rest = &path["charts/".len()..];
        let name = rest.split('/').next().unwrap_or(rest);
        if name.starts_with('_') || name.starts_with('.') {
            continue;
        }
        match rest.split_once('/') {
            Some((dir, inner)) => {
                directories
                    .entry(dir.to_string())
                    .or_default()
                    .insert(inner.to_string(), bytes);
            }
            None if rest.ends_with(".tgz") || rest.ends_with(".tar.gz") => {
                archives.push((rest.to_string(), bytes));
            }
            None => {}
        }
    }
    let mut charts = Vec::new();
    for (name, sub) in directories {
        charts.push(from_files(sub, format!("{origin}/charts/{name}"), options)?);
    }
    for (name, bytes) in archives {
        charts.push(load_archive(
            &bytes,
            &format!("{origin}/charts/{name}"),
            options,
        )?);
    }
    Ok(charts)
}

/// Reads every file under `dir` (recursively) into `files`, keyed by path
/// inside the chart, skipping what `.helmignore` names.
fn collect(
    root: &Root,
    dir: &RelPath,
    prefix: &str,
    ignore: &Ignore,
    files: &mut BTreeMap<String, Vec<u8>>,
) -> Result<(), RenderError> {
    for (name, kind) in root.list(dir)? {
        let path = format!("{prefix}{name}");
        if ignore.ignores(&path, kind == EntryKind::Dir) {
            continue;
        }
        match kind {
            EntryKind::Dir => collect(root, &dir.join(&name), &format!("{path}/"), ignore, files)?,
            EntryKind::File => {
                files.insert(path, root.read(&dir.join(&name))?);
            }
        }
    }
    Ok(())
}

/// `.helmignore`: gitignore-like patterns (a pattern without `/` matches a
/// name at any depth, a trailing `/` only directories, `!` re-includes).
struct Ignore {
    rules: Vec<(GlobMatcher, bool, bool, bool)>,
}

impl Ignore {
    fn read(root: &Root, dir: &RelPath) -> Result<Ignore, RenderError> {
        let file = dir.join(".helmignore");
        let mut rules = Vec::new();
        if root.kind(&file)? == Some(EntryKind::File) {
            let text = String::from_utf8_lossy(&root.read(&file)?).into_owned();
            for line in text.lines().map(str::trim) {
                if line.is_empty() || line.starts_with('#') {
                    continue;
                }
                let (negate, pattern) = match line.strip_prefix('!') {
                    Some(p) => (true, p),
                    None => (false, line),
                };
                let dir_only = pattern.ends_with('/');
                let pattern = pattern.trim_end_matches('/');
                let anchored = pattern.contains('/');
                let glob = GlobBuilder::new(pattern.trim_start_matches('/'))
                    .literal_separator(true)
                    .build()
                    .map_err(|e| {
                        RenderError::helm(file.display(), format!("bad pattern {line:?}: {e}"))
                    })?
                    .compile_matcher();
                rules.push((glob, negate, dir_only, anchored));
            }
        }
        Ok(Ignore { rules })
    }

    fn ignores(&self, path: &str, is_dir: bool) -> bool {
        let mut ignored = false;
        for (glob, negate, dir_only, anchored) in &self.rules {
            if *dir_only && !is_dir {
                continue;
            }
            let hit = if *anchored {
                glob.is_match(path)
            } else {
                glob.is_match(base_name(path))
            };
            if hit {
                ignored = !negate;
            }
        }
        ignored
    }
}

/// Every YAML document of a values file merged into one map (later
/// documents win), as Helm reads `values.yaml`.
pub fn merged_documents(
    bytes: &[u8],
    name: &str,
    options: &LoadOptions,
) -> Result<Map<String, Json>, RenderError> {
    let text = std::str::from_utf8(bytes).map_err(|_| RenderError::helm(name, "not UTF-8"))?;
    // Helm reads values with sigs.k8s.io/yaml's lenient reading: a key
    // given twice keeps its last value.
    let limits = gitplane_object::yaml::Limits {
        last_key_wins: true,
        ..options.limits.clone()
    };
    let documents = parse_documents(text, Dialect::Kubernetes, &limits)
        .map_err(|e| RenderError::helm(name, format!("line {}: {}", e.line, e.message)))?;
    let mut merged = Map::new();
    for document in documents {
        match document.value {
            Json::Object(map) => merge_maps(&mut merged, map),
            Json::Null => {}
            _ => {
                return Err(RenderError::helm(
                    name,
                    format!(
                        "line {}: a values document must be a mapping",
                        document.line
                    ),
                ));
            }
        }
    }
    Ok(merged)
}

/// Helm's `MergeMaps`: nested maps merged, anything else replaced.
pub fn merge_maps(dst: &mut Map<String, Json>, src: Map<String, Json>) {
    for (key, value) in src {
        match (dst.get_mut(&key), value) {
            (Some(Json::Object(d)), Json::Object(s)) => merge_maps(d, s),
            (_, value) => {
                dst.insert(key, value);
            }
        }
    }
}
