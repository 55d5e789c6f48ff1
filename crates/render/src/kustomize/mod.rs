//! Kustomize, rendering exactly what `kubectl kustomize` (kustomize v5) renders.
//!
//! A build loads a kustomization, then, as kustomize does:
//! 1. accumulates its `resources` (files, and sub-kustomizations built first),
//! 2. reads `configurations` and `crds` (extra field specs),
//! 3. runs the generators (`configMapGenerator`, `secretGenerator`),
//! 4. applies `components` to everything accumulated so far,
//! 5. runs the transformers: patches (strategic merge, then `patches`),
//!    namespace, name prefix/suffix, labels, annotations, JSON 6902 patches,
//!    replicas, images, replacements.
//!
//! At the top level it then appends content hashes to generated names, fixes
//! every reference to a renamed object ([`nameref`]), drops local-config
//! objects, and sorts the result in kustomize's legacy order ([`order`]).
//! `helmCharts` are rendered by gitplane's Helm engine (`helm`). Unsupported
//! features (remote bases, plugins, vars) are errors that say so.

mod config;
mod crds;
mod fieldspec;
mod file;
mod generate;
mod helm;
mod images;
mod nameref;
mod order;
mod patch;
mod replacement;
mod resource;
mod transform;

/// The managed-by label value kustomize v5.5.0 (kubectl 1.32) writes.
const MANAGED_BY: &str = "kustomize-v5.5.0";

use std::collections::BTreeMap;

use gitplane_object::{LoadOptions, Object, Syntax, Value, load_objects, parse_values};

use config::{ConfigurationFile, TransformerConfig};
pub use file::Kustomization;
use file::{GeneratorArgs, GeneratorOptions, KUSTOMIZATION_FILE_NAMES};
use generate::{Behavior, GeneratedKind, GeneratorData};
use resource::Resource;

use crate::RenderOptions;
use crate::error::RenderError;
use crate::fs::{EntryKind, RelPath, Root};

/// Overrides applied to the top kustomization before the build, the way Argo CD
/// applies an Application's `spec.source.kustomize` options with `kustomize edit`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KustomizeOptions {
    /// Replaces `namePrefix`.
    pub name_prefix: Option<String>,
    /// Replaces `nameSuffix`.
    pub name_suffix: Option<String>,
    /// Replaces `namespace`.
    pub namespace: Option<String>,
    /// Added to `commonLabels` (overriding equal keys).
    pub common_labels: BTreeMap<String, String>,
    /// Added to `commonAnnotations` (overriding equal keys).
    pub common_annotations: BTreeMap<String, String>,
    /// `images` entries in `kustomize edit set image` syntax:
    /// `name=newName:tag`, `name:tag`, `name@digest`.
    pub images: Vec<String>,
    /// `replicas` entries: name and count.
    pub replicas: Vec<(String, i64)>,
}

/// Returns the kustomization file in `dir`, if any. Several is an error, as in
/// kustomize.
pub fn find_kustomization_file(root: &Root, dir: &RelPath) -> Result<Option<RelPath>, RenderError> {
    let mut found = Vec::new();
    for name in KUSTOMIZATION_FILE_NAMES {
        let candidate = dir.join(name);
        if root.kind(&candidate)? == Some(EntryKind::File) {
            found.push(candidate);
        }
    }
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(RenderError::kustomize(
            dir.display(),
            "found multiple kustomization files in this directory",
        )),
    }
}

/// Builds the kustomization in `dir` (relative to the root).
pub fn build(
    root: &Root,
    dir: &RelPath,
    options: &RenderOptions,
) -> Result<Vec<Object>, RenderError> {
    let builder = Builder {
        root,
        load: &options.load,
        overrides: &options.kustomize,
        puller: options.chart_puller.as_ref(),
    };
    let (accumulated, top) = builder.build_top(dir)?;
    let mut resources = accumulated.resources;
    transform::append_hashes(&mut resources);
    nameref::fix_name_references(&mut resources, &accumulated.config.name_references)
        .map_err(|m| RenderError::kustomize(top.file.as_str(), m))?;
    resources.retain(|r| r.object.annotation("config.kubernetes.io/local-config") != Some("true"));
    transform::drop_empty_annotations(&mut resources);
    transform::apply_build_metadata(&mut resources, &top.kustomization)
        .map_err(|m| RenderError::kustomize(top.file.as_str(), m))?;
    order::sort(&mut resources, top.kustomization.sort_options.as_ref())
        .map_err(|m| RenderError::kustomize(top.file.as_str(), m))?;
    Ok(resources.into_iter().map(|r| r.object).collect())
}

/// The ids of an accumulation's resources, for duplicate checks.
type IdIndex = std::collections::HashSet<(gitplane_object::Gvk, String, String)>;

/// Everything accumulated so far: resources and the field specs to use.
#[derive(Debug, Clone)]
pub(crate) struct Accumulation {
    pub resources: Vec<Resource>,
    /// Shared until a kustomization extends it (`configurations`, `crds`).
    pub config: std::sync::Arc<TransformerConfig>,
    /// Current ids, built on demand; cleared when resources may have been renamed.
    ids: Option<IdIndex>,
}

impl Default for Accumulation {
    fn default() -> Self {
        Accumulation {
            resources: Vec::new(),
            config: TransformerConfig::shared_default(),
            ids: None,
        }
    }
}

impl Accumulation {
    /// Appends a resource, refusing an id that is already present.
    fn append(&mut self, resource: Resource) -> Result<(), String> {
        let resources = &self.resources;
        let ids = self
            .ids
            .get_or_insert_with(|| resources.iter().map(|r| r.current_id().key()).collect());
        let id = resource.current_id();
        if !ids.insert(id.key()) {
            return Err(format!(
                "may not add resource with an already registered id: {}",
                id.describe()
            ));
        }
        self.resources.push(resource);
        Ok(())
    }

    /// Forgets the id index after resources may have been renamed or removed.
    fn ids_changed(&mut self) {
        self.ids = None;
    }

    fn absorb(&mut self, other: Accumulation) -> Result<(), String> {
        for resource in other.resources {
            self.append(resource)?;
        }
        if !std::sync::Arc::ptr_eq(&self.config, &other.config) && *self.config != *other.config {
            std::sync::Arc::make_mut(&mut self.config).merge(&other.config);
        }
        Ok(())
    }
}

/// A loaded kustomization and where it is.
struct Loaded {
    kustomization: Kustomization,
    file: RelPath,
    dir: RelPath,
    /// Path of the directory relative to the top kustomization (for origins).
    origin_dir: String,
}

struct Builder<'a> {
    root: &'a Root,
    load: &'a LoadOptions,
    overrides: &'a KustomizeOptions,
    puller: Option<&'a crate::ChartPuller>,
}

/// Kustomize reads resource files as kyaml does (goyaml.v3 scalars).
fn kustomize_load_options(load: &LoadOptions) -> LoadOptions {
    LoadOptions {
        dialect: gitplane_object::yaml::Dialect::Kustomize,
        limits: load.limits.clone(),
    }
}

impl Builder<'_> {
    fn build_top(&self, dir: &RelPath) -> Result<(Accumulation, Loaded), RenderError> {
        let mut loaded = self.load_kustomization(dir, false, String::new())?;
        apply_overrides(&mut loaded.kustomization, self.overrides)
            .map_err(|m| self.err(&loaded, m))?;
        let build_metadata = loaded
            .kustomization
            .build_metadata
            .clone()
            .unwrap_or_default();
        let acc = self.accumulate(&loaded, Accumulation::default(), &build_metadata)?;
        Ok((acc, loaded))
    }

    fn err(&self, loaded: &Loaded, message: impl Into<String>) -> RenderError {
        RenderError::kustomize(loaded.file.as_str(), message)
    }

    fn load_kustomization(
        &self,
        dir: &RelPath,
        component: bool,
        origin_dir: String,
    ) -> Result<Loaded, RenderError> {
        let file = find_kustomization_file(self.root, dir)?.ok_or_else(|| {
            RenderError::kustomize(
                dir.display(),
                "no kustomization.yaml, kustomization.yml or Kustomization in this directory",
            )
        })?;
        let bytes = self.root.read(&file)?;
        let docs = parse_values(&bytes, file.as_str(), Syntax::Yaml, self.load)?;
        let value = match docs.as_slice() {
            [] => Value::Null,
            [(value, _)] => value.clone(),
            _ => {
                return Err(RenderError::kustomize(
                    file.as_str(),
                    "a kustomization file must hold one YAML document",
                ));
            }
        };
        if value.is_null() {
            return Err(RenderError::kustomize(
                file.as_str(),
                "kustomization is empty",
            ));
        }
        let kustomization: Kustomization = serde_json::from_value(value).map_err(|e| {
            RenderError::kustomize(file.as_str(), format!("invalid kustomization: {e}"))
        })?;
        let loaded = Loaded {
            kustomization,
            file,
            dir: dir.clone(),
            origin_dir,
        };
        self.check_kind(&loaded, component)?;
        self.check_supported(&loaded)?;
        if loaded.kustomization.is_empty() {
            return Err(self.err(&loaded, "kustomization is empty"));
        }
        Ok(loaded)
    }

    fn check_kind(&self, loaded: &Loaded, component: bool) -> Result<(), RenderError> {
        let k = &loaded.kustomization;
        match (k.api_version.as_deref(), k.kind.as_deref()) {
            (None | Some("kustomize.config.k8s.io/v1beta1"), None | Some("Kustomization"))
            | (None | Some("kustomize.config.k8s.io/v1alpha1"), Some("Component")) => {}
            (api_version, kind) => {
                return Err(self.err(
                    loaded,
                    format!(
                        "unknown kustomization type {}/{} (expected kustomize.config.k8s.io/v1beta1 Kustomization or v1alpha1 Component)",
                        api_version.unwrap_or(""),
                        kind.unwrap_or("")
                    ),
                ));
            }
        }
        match (component, k.is_component()) {
            (true, false) => Err(self.err(
                loaded,
                "is listed in components but is not a kind: Component",
            )),
            (false, true) => Err(self.err(
                loaded,
                "is a Component: list it under components, not resources",
            )),
            _ => Ok(()),
        }
    }

    fn check_supported(&self, loaded: &Loaded) -> Result<(), RenderError> {
        let k = &loaded.kustomization;
        let file = loaded.file.as_str();
        let unsupported: [(&str, bool, &str); 7] = [
            (
                "helmChartInflationGenerator",
                k.helm_chart_inflation_generator.is_some(),
                "use helmCharts",
            ),
            ("vars", k.vars.is_some(), "use replacements instead"),
            (
                "generators (plugins)",
                k.generators.as_ref().is_some_and(|g| !g.is_empty()),
                "plugins would run code from the repository; use configMapGenerator or secretGenerator",
            ),
            (
                "transformers (plugins)",
                k.transformers.as_ref().is_some_and(|g| !g.is_empty()),
                "plugins would run code from the repository; use the built-in fields",
            ),
            (
                "validators (plugins)",
                k.validators.as_ref().is_some_and(|g| !g.is_empty()),
                "use gitplane policy instead",
            ),
            (
                "openapi",
                k.open_api.is_some(),
                "custom OpenAPI schemas are not read; use configurations for custom field specs",
            ),
            (
                "buildMetadata: transformerAnnotations",
                k.build_metadata
                    .as_ref()
                    .is_some_and(|b| b.iter().any(|x| x == "transformerAnnotations")),
                "use originAnnotations or managedByLabel",
            ),
        ];
        for (feature, used, hint) in unsupported {
            if used {
                return Err(RenderError::unsupported(file, feature, hint));
            }
        }
        if let Some(unknown) = k.build_metadata.iter().flatten().find(|b| {
            !matches!(
                b.as_str(),
                "originAnnotations" | "managedByLabel" | "transformerAnnotations"
            )
        }) {
            return Err(self.err(loaded, format!("unknown buildMetadata option {unknown:?}")));
        }
        Ok(())
    }

    /// The kustomize loader only reads files in or below the kustomization's
    /// directory (its default load restrictions).
    fn resolve_file(&self, loaded: &Loaded, reference: &str) -> Result<RelPath, RenderError> {
        let rel = self.root.resolve(&loaded.dir, reference)?;
        if !rel.is_within(&loaded.dir) {
            return Err(self.err(
                loaded,
                format!("security: file {reference:?} is not in or below the kustomization directory {}", loaded.dir.display()),
            ));
        }
        Ok(rel)
    }

    fn read_file(
        &self,
        loaded: &Loaded,
        reference: &str,
    ) -> Result<(RelPath, Vec<u8>), RenderError> {
        let rel = self.resolve_file(loaded, reference)?;
        let bytes = self.root.read(&rel)?;
        Ok((rel, bytes))
    }

    fn accumulate(
        &self,
        loaded: &Loaded,
        mut acc: Accumulation,
        build_metadata: &[String],
    ) -> Result<Accumulation, RenderError> {
        let k = &loaded.kustomization;
        let resources = k.resources.iter().flatten().chain(k.bases.iter().flatten());
        for reference in resources {
            self.accumulate_resource(loaded, reference, &mut acc, build_metadata)?;
        }
        for reference in k.configurations.iter().flatten() {
            let (rel, bytes) = self.read_file(loaded, reference)?;
            for (value, _) in parse_values(&bytes, rel.as_str(), Syntax::Yaml, self.load)? {
                let file: ConfigurationFile = serde_json::from_value(value).map_err(|e| {
                    RenderError::kustomize(
                        rel.as_str(),
                        format!("invalid configurations file: {e}"),
                    )
                })?;
                std::sync::Arc::make_mut(&mut acc.config).merge_file(&file);
            }
        }
        for reference in k.crds.iter().flatten() {
            let (rel, bytes) = self.read_file(loaded, reference)?;
            for (document, _) in parse_values(
                &bytes,
                rel.as_str(),
                Syntax::from_file_name(rel.as_str()),
                self.load,
            )? {
                crds::load_crd_definitions(&document, std::sync::Arc::make_mut(&mut acc.config));
            }
        }
        self.run_generators(loaded, &mut acc, build_metadata)?;
        for reference in k.components.iter().flatten() {
            let dir = self.root.resolve(&loaded.dir, reference)?;
            if self.root.kind(&dir)? != Some(EntryKind::Dir) {
                return Err(self.err(
                    loaded,
                    format!("component {reference:?} is not a directory"),
                ));
            }
            let origin_dir = join_origin(&loaded.origin_dir, reference);
            let component = self.load_kustomization(&dir, true, origin_dir)?;
            acc = self.accumulate(&component, acc, build_metadata)?;
        }
        acc.ids_changed();
        transform::run_transformers(self, loaded, &mut acc)?;
        acc.ids_changed();
        Ok(acc)
    }

    fn accumulate_resource(
        &self,
        loaded: &Loaded,
        reference: &str,
        acc: &mut Accumulation,
        build_metadata: &[String],
    ) -> Result<(), RenderError> {
        let rel = self.root.resolve(&loaded.dir, reference)?;
        match self.root.kind(&rel)? {
            Some(EntryKind::File) => {
                let rel = self.resolve_file(loaded, reference)?;
                let bytes = self.root.read(&rel)?;
                let objects = load_objects(
                    &bytes,
                    rel.as_str(),
                    Syntax::from_file_name(rel.as_str()),
                    &kustomize_load_options(self.load),
                )?;
                let origin = join_origin(&loaded.origin_dir, reference);
                for object in objects {
                    let mut resource = Resource::new(object);
                    if build_metadata.iter().any(|b| b == "originAnnotations") {
                        resource.origin = Some(format!("path: {origin}\n"));
                    }
                    acc.append(resource).map_err(|m| self.err(loaded, m))?;
                }
                Ok(())
            }
            Some(EntryKind::Dir) => {
                let sub = self.load_kustomization(
                    &rel,
                    false,
                    join_origin(&loaded.origin_dir, reference),
                )?;
                let sub_acc = self.accumulate(&sub, Accumulation::default(), build_metadata)?;
                acc.absorb(sub_acc).map_err(|m| self.err(loaded, m))
            }
            None if looks_remote(reference) => Err(RenderError::unsupported(
                loaded.file.as_str(),
                format!("remote resource {reference:?}"),
                "gitplane renders only what is in the repository; vendor the base into the repository",
            )),
            None => Err(self.err(loaded, format!("resource {reference:?} not found"))),
        }
    }

    fn run_generators(
        &self,
        loaded: &Loaded,
        acc: &mut Accumulation,
        build_metadata: &[String],
    ) -> Result<(), RenderError> {
        let k = &loaded.kustomization;
        let generators = k
            .config_map_generator
            .iter()
            .flatten()
            .map(|a| (GeneratedKind::ConfigMap, a))
            .chain(
                k.secret_generator
                    .iter()
                    .flatten()
                    .map(|a| (GeneratedKind::Secret, a)),
            );
        for (kind, args) in generators {
            let options = GeneratorOptions::merged_with_global(
                args.options.as_ref(),
                k.generator_options.as_ref(),
            );
            let data = self.generator_data(loaded, args)?;
            let object = generate::generate_object(kind, args, &options, data);
            let mut resource = Resource::new(object);
            resource.needs_hash = !options.disable_name_suffix_hash;
            if build_metadata.iter().any(|b| b == "originAnnotations") {
                let config_file = join_origin(&loaded.origin_dir, loaded.file.file_name());
                resource.origin = Some(format!(
                    "configuredIn: {config_file}\nconfiguredBy:\n  apiVersion: builtin\n  kind: {}Generator\n",
                    kind.kind()
                ));
            }
            let behavior = Behavior::parse(&args.behavior).map_err(|m| self.err(loaded, m))?;
            transform::absorb_generated(acc, resource, behavior)
                .map_err(|m| self.err(loaded, m))?;
        }
        let inflated = helm::inflate(
            self.root,
            &loaded.dir,
            loaded.file.as_str(),
            k.helm_charts.as_ref(),
            k.helm_globals.as_ref(),
            self.load,
            self.puller,
        )?;
        for object in inflated {
            acc.append(Resource::new(object))
                .map_err(|m| self.err(loaded, m))?;
        }
        Ok(())
    }

    fn generator_data(
        &self,
        loaded: &Loaded,
        args: &GeneratorArgs,
    ) -> Result<GeneratorData, RenderError> {
        let context = |m: String| self.err(loaded, format!("generator {:?}: {m}", args.name));
        let mut data = GeneratorData::default();
        let env_files = args
            .envs
            .iter()
            .chain(std::iter::once(&args.env).filter(|e| !e.is_empty()));
        for env in env_files {
            let (rel, bytes) = self.read_file(loaded, env)?;
            let text = String::from_utf8(bytes)
                .map_err(|_| context(format!("{} is not UTF-8 text", rel.as_str())))?;
            for (key, value) in generate::parse_env_file(&text)
                .map_err(|m| context(format!("{}: {m}", rel.as_str())))?
            {
                data.add(&key, value.into_bytes()).map_err(context)?;
            }
        }
        for literal in &args.literals {
            let (key, value) = generate::parse_literal(literal).map_err(context)?;
            data.add(&key, value.into_bytes()).map_err(context)?;
        }
        for source in &args.files {
            let (key, path) = generate::parse_file_source(source).map_err(context)?;
            let (_, bytes) = self.read_file(loaded, &path)?;
            data.add(&key, bytes).map_err(context)?;
        }
        Ok(data)
    }
}

fn join_origin(dir: &str, reference: &str) -> String {
    let joined = if dir.is_empty() {
        reference.to_string()
    } else {
        format!("{dir}/{reference}")
    };
    // Normalize `a/./b` and `a/../b` the way filepath.Join does.
    let mut parts: Vec<&str> = Vec::new();
    for part in joined.split('/') {
        match part {
            "" | "." => {}
            ".." if parts.last().is_some_and(|p| *p != "..") => {
                parts.pop();
            }
            other => parts.push(other),
        }
    }
    parts.join("/")
}

fn looks_remote(reference: &str) -> bool {
    reference.contains("://")
        || reference.starts_with("git@")
        || reference.starts_with("github.com/")
        || reference.starts_with("gitlab.com/")
        || reference.starts_with("bitbucket.org/")
}

/// Applies Argo CD-style overrides to the top kustomization.
fn apply_overrides(k: &mut Kustomization, o: &KustomizeOptions) -> Result<(), String> {
    if let Some(prefix) = &o.name_prefix {
        k.name_prefix = Some(prefix.clone());
    }
    if let Some(suffix) = &o.name_suffix {
        k.name_suffix = Some(suffix.clone());
    }
    if let Some(namespace) = &o.namespace {
        k.namespace = Some(namespace.clone());
    }
    if !o.common_labels.is_empty() {
        k.common_labels
            .get_or_insert_with(BTreeMap::new)
            .extend(o.common_labels.clone());
    }
    if !o.common_annotations.is_empty() {
        k.common_annotations
            .get_or_insert_with(BTreeMap::new)
            .extend(o.common_annotations.clone());
    }
    for spec in &o.images {
        let image = images::parse_set_image(spec)?;
        let list = k.images.get_or_insert_with(Vec::new);
        list.retain(|i| i.name != image.name);
        list.push(image);
    }
    for (name, count) in &o.replicas {
        let list = k.replicas.get_or_insert_with(Vec::new);
        list.retain(|r| &r.name != name);
        list.push(file::Replica {
            name: name.clone(),
            count: *count,
        });
    }
    Ok(())
}
