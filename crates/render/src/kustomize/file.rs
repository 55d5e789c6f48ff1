//! The kustomization file: `kustomize.config.k8s.io/v1beta1` Kustomization and
//! `v1alpha1` Component. Read strictly, as kustomize does: unknown or duplicate
//! fields are errors. Kustomization files are YAML 1.1 (`sigs.k8s.io/yaml`), so an
//! unquoted `yes` is a boolean here, exactly as for `kubectl kustomize`.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

/// The names kustomize recognizes, in its lookup order.
pub const KUSTOMIZATION_FILE_NAMES: [&str; 3] =
    ["kustomization.yaml", "kustomization.yml", "Kustomization"];

/// A parsed kustomization.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Kustomization {
    pub api_version: Option<String>,
    pub kind: Option<String>,
    pub metadata: Option<Value>,
    pub open_api: Option<Value>,
    pub name_prefix: Option<String>,
    pub name_suffix: Option<String>,
    pub namespace: Option<String>,
    pub common_labels: Option<BTreeMap<String, String>>,
    pub labels: Option<Vec<Label>>,
    pub common_annotations: Option<BTreeMap<String, String>>,
    pub patches_strategic_merge: Option<Vec<String>>,
    #[serde(rename = "patchesJson6902")]
    pub patches_json6902: Option<Vec<Patch>>,
    pub patches: Option<Vec<Patch>>,
    pub images: Option<Vec<Image>>,
    pub replacements: Option<Vec<ReplacementField>>,
    pub replicas: Option<Vec<Replica>>,
    pub vars: Option<Value>,
    pub sort_options: Option<SortOptions>,
    pub resources: Option<Vec<String>>,
    pub components: Option<Vec<String>>,
    pub crds: Option<Vec<String>>,
    pub bases: Option<Vec<String>>,
    pub config_map_generator: Option<Vec<GeneratorArgs>>,
    pub secret_generator: Option<Vec<GeneratorArgs>>,
    pub helm_globals: Option<Value>,
    pub helm_charts: Option<Value>,
    pub helm_chart_inflation_generator: Option<Value>,
    pub generator_options: Option<GeneratorOptions>,
    pub configurations: Option<Vec<String>>,
    pub generators: Option<Vec<String>>,
    pub transformers: Option<Vec<String>>,
    pub validators: Option<Vec<String>>,
    pub build_metadata: Option<Vec<String>>,
}

/// An entry of `labels`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Label {
    #[serde(default)]
    pub pairs: BTreeMap<String, String>,
    #[serde(default)]
    pub include_selectors: bool,
    #[serde(default)]
    pub include_templates: bool,
    #[serde(default)]
    pub fields: Vec<FieldSpecArgs>,
}

/// A field spec as written in a kustomization or a `configurations` file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(missing_docs)]
pub struct FieldSpecArgs {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub path: String,
    #[serde(default)]
    pub create: bool,
}

/// An entry of `patches`, `patchesJson6902`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Patch {
    pub path: Option<String>,
    pub patch: Option<String>,
    pub target: Option<Selector>,
    #[serde(default)]
    pub options: BTreeMap<String, bool>,
}

/// A resource selector (`target`, replacement `select`/`reject`).
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Selector {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub label_selector: String,
    #[serde(default)]
    pub annotation_selector: String,
}

/// An entry of `images`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Image {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub new_name: String,
    #[serde(default)]
    pub new_tag: String,
    #[serde(default)]
    pub digest: String,
}

/// An entry of `replicas`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(missing_docs)]
pub struct Replica {
    pub name: String,
    pub count: i64,
}

/// An entry of `replacements`: inline, or a `path` to a file of replacements.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(missing_docs)]
pub struct ReplacementField {
    pub path: Option<String>,
    pub source: Option<ReplacementSource>,
    #[serde(default)]
    pub targets: Vec<ReplacementTarget>,
}

/// Where a replacement reads its value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(missing_docs)]
pub struct ReplacementSource {
    #[serde(default)]
    pub group: String,
    #[serde(default)]
    pub version: String,
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub field_path: String,
    pub options: Option<FieldOptions>,
}

/// Where a replacement writes its value.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(missing_docs)]
pub struct ReplacementTarget {
    pub select: Option<Selector>,
    #[serde(default)]
    pub reject: Vec<Selector>,
    #[serde(default)]
    pub field_paths: Vec<String>,
    pub options: Option<FieldOptions>,
}

/// Options of a replacement source or target.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(missing_docs)]
pub struct FieldOptions {
    #[serde(default)]
    pub delimiter: String,
    #[serde(default)]
    pub index: i64,
    #[serde(default)]
    pub encoding: String,
    #[serde(default)]
    pub create: bool,
}

/// `sortOptions`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(missing_docs)]
pub struct SortOptions {
    #[serde(default)]
    pub order: String,
    pub legacy_sort_options: Option<LegacySortOptions>,
}

/// `sortOptions.legacySortOptions`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(missing_docs)]
pub struct LegacySortOptions {
    #[serde(default)]
    pub order_first: Vec<String>,
    #[serde(default)]
    pub order_last: Vec<String>,
}

/// A `configMapGenerator` or `secretGenerator` entry.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(missing_docs)]
pub struct GeneratorArgs {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub namespace: String,
    #[serde(default)]
    pub behavior: String,
    #[serde(default)]
    pub literals: Vec<String>,
    #[serde(default)]
    pub files: Vec<String>,
    #[serde(default)]
    pub envs: Vec<String>,
    #[serde(default)]
    pub env: String,
    pub options: Option<GeneratorOptions>,
    /// Secrets only.
    #[serde(rename = "type", default)]
    pub secret_type: String,
}

/// `generatorOptions` and per-generator `options`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
#[allow(missing_docs)]
pub struct GeneratorOptions {
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    #[serde(default)]
    pub annotations: BTreeMap<String, String>,
    #[serde(default)]
    pub disable_name_suffix_hash: bool,
    #[serde(default)]
    pub immutable: bool,
}

impl GeneratorOptions {
    /// `generatorOptions` combined with a generator's own `options`: labels and
    /// annotations of both (the generator's win), and flags set by either.
    pub fn merged_with_global(
        local: Option<&GeneratorOptions>,
        global: Option<&GeneratorOptions>,
    ) -> GeneratorOptions {
        let mut out = global.cloned().unwrap_or_default();
        if let Some(local) = local {
            out.labels.extend(local.labels.clone());
            out.annotations.extend(local.annotations.clone());
            out.disable_name_suffix_hash |= local.disable_name_suffix_hash;
            out.immutable |= local.immutable;
        }
        out
    }
}

impl Kustomization {
    /// True for `kind: Component`.
    pub fn is_component(&self) -> bool {
        self.kind.as_deref() == Some("Component")
    }

    /// True when no field that does anything is set (kustomize refuses these).
    pub fn is_empty(&self) -> bool {
        let text = |s: &Option<String>| s.as_deref().is_some_and(|s| !s.is_empty());
        fn list<T>(v: &Option<Vec<T>>) -> bool {
            v.as_ref().is_some_and(|v| !v.is_empty())
        }
        let map = |m: &Option<BTreeMap<String, String>>| m.as_ref().is_some_and(|m| !m.is_empty());
        let has_content = text(&self.name_prefix)
            || text(&self.name_suffix)
            || text(&self.namespace)
            || map(&self.common_labels)
            || list(&self.labels)
            || map(&self.common_annotations)
            || list(&self.patches_strategic_merge)
            || list(&self.patches_json6902)
            || list(&self.patches)
            || list(&self.images)
            || list(&self.replacements)
            || list(&self.replicas)
            || self.vars.is_some()
            || self.sort_options.is_some()
            || list(&self.resources)
            || list(&self.components)
            || list(&self.crds)
            || list(&self.bases)
            || list(&self.config_map_generator)
            || list(&self.secret_generator)
            || self.helm_globals.is_some()
            || self.helm_charts.is_some()
            || self.helm_chart_inflation_generator.is_some()
            || self.generator_options.is_some()
            || list(&self.configurations)
            || list(&self.generators)
            || list(&self.transformers)
            || list(&self.validators)
            || list(&self.build_metadata)
            || self.open_api.is_some();
        !has_content
    }
}
