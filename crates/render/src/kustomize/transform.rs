//! The built-in transformers, run in kustomize's order, and the steps of the top
//! build that are not transformers of one kustomization (hashes, build metadata).

use std::collections::BTreeMap;

use gitplane_object::{Map, Value};

use super::fieldspec::{FieldSpec, visit_object_field};
use super::generate::{Behavior, content_hash};
use super::resource::{Resource, is_cluster_scoped};
use super::{Accumulation, Builder, Loaded, images, patch, replacement};
use crate::error::RenderError;

/// Runs every transformer of one kustomization over the accumulation.
pub(crate) fn run_transformers(
    builder: &Builder<'_>,
    loaded: &Loaded,
    acc: &mut Accumulation,
) -> Result<(), RenderError> {
    let k = &loaded.kustomization;
    let err = |m: String| RenderError::kustomize(loaded.file.as_str(), m);
    patch::apply_strategic_merge_patches(builder, loaded, acc)?;
    patch::apply_patches(builder, loaded, acc, k.patches.iter().flatten(), "patches")?;
    if let Some(namespace) = k.namespace.as_deref().filter(|ns| !ns.is_empty()) {
        set_namespace(&mut acc.resources, namespace, &acc.config.namespace).map_err(err)?;
    }
    add_name_affixes(
        &mut acc.resources,
        k.name_prefix.as_deref().unwrap_or(""),
        k.name_suffix.as_deref().unwrap_or(""),
        &acc.config.name_affix,
    )
    .map_err(err)?;
    for label in k.labels.iter().flatten() {
        let mut specs: Vec<FieldSpec> = label.fields.iter().map(FieldSpec::from_args).collect();
        let defaults = if label.include_selectors {
            acc.config.common_labels.clone()
        } else if label.include_templates {
            acc.config.template_labels.clone()
        } else {
            vec![FieldSpec::any("metadata/labels", true)]
        };
        for spec in defaults {
            if !specs.iter().any(|s| s.same_target(&spec)) {
                specs.push(spec);
            }
        }
        set_map_entries(&mut acc.resources, &label.pairs, &specs).map_err(err)?;
    }
    if let Some(labels) = &k.common_labels {
        set_map_entries(&mut acc.resources, labels, &acc.config.common_labels).map_err(err)?;
    }
    if let Some(annotations) = &k.common_annotations {
        set_map_entries(
            &mut acc.resources,
            annotations,
            &acc.config.common_annotations,
        )
        .map_err(err)?;
    }
    patch::apply_patches(
        builder,
        loaded,
        acc,
        k.patches_json6902.iter().flatten(),
        "patchesJson6902",
    )?;
    for replica in k.replicas.iter().flatten() {
        set_replicas(
            &mut acc.resources,
            &replica.name,
            replica.count,
            &acc.config.replicas,
        )
        .map_err(err)?;
    }
    for image in k.images.iter().flatten() {
        images::update_images(&mut acc.resources, image, &acc.config.images).map_err(err)?;
    }
    replacement::apply_replacements(builder, loaded, acc)?;
    Ok(())
}

fn describe(resource: &Resource) -> String {
    resource.object.to_string()
}

/// The namespace transformer: `metadata.namespace` on namespaced objects, the name
/// of Namespace objects, RoleBinding subjects named `default`, and the other
/// namespace fields of the configuration.
fn set_namespace(
    resources: &mut [Resource],
    namespace: &str,
    specs: &[FieldSpec],
) -> Result<(), String> {
    for resource in resources.iter_mut() {
        let gvk = resource.object.gvk();
        resource.previous_ids.push(resource.current_id());
        if !is_cluster_scoped(&gvk) {
            resource.object.set_namespace(namespace);
        }
        if gvk.kind == "Namespace" && gvk.group.is_empty() {
            resource.object.set_name(namespace);
        }
        if matches!(gvk.kind.as_str(), "RoleBinding" | "ClusterRoleBinding")
            && let Some(Value::Array(subjects)) = resource.object.body_mut().get_mut("subjects")
        {
            for subject in subjects.iter_mut().filter_map(Value::as_object_mut) {
                if subject.get("name").and_then(Value::as_str) == Some("default") {
                    subject.insert("namespace".into(), Value::String(namespace.to_string()));
                }
            }
        }
        for spec in specs.iter().filter(|s| s.applies_to(&gvk)) {
            let value = Value::String(namespace.to_string());
            let result = visit_object_field(
                &mut resource.object,
                spec,
                spec.create,
                &|| value.clone(),
                &mut |node| {
                    *node = value.clone();
                    Ok(())
                },
            );
            result.map_err(|m| format!("namespace: {m} in {}", describe(resource)))?;
        }
    }
    let mut seen = std::collections::HashSet::new();
    for resource in resources.iter() {
        let id = resource.current_id();
        if !seen.insert(id.key()) {
            return Err(format!(
                "namespace transformation produces an id conflict: {}",
                id.describe()
            ));
        }
    }
    Ok(())
}

/// `namePrefix` and `nameSuffix`: every object except CustomResourceDefinitions,
/// APIServices and Namespaces.
fn add_name_affixes(
    resources: &mut [Resource],
    prefix: &str,
    suffix: &str,
    specs: &[FieldSpec],
) -> Result<(), String> {
    if prefix.is_empty() && suffix.is_empty() {
        return Ok(());
    }
    for resource in resources.iter_mut() {
        let original = resource.original_id().gvk;
        let skip = matches!(
            original.kind.as_str(),
            "CustomResourceDefinition" | "Namespace"
        ) || (original.kind == "APIService"
            && original.group == "apiregistration.k8s.io");
        if skip {
            continue;
        }
        for (affix, is_prefix) in [(prefix, true), (suffix, false)] {
            if affix.is_empty() {
                continue;
            }
            for spec in specs.iter().filter(|s| s.applies_to(&original)) {
                if spec.path_text == "metadata/name" {
                    if is_prefix {
                        resource.prefixes.push(affix.to_string());
                    } else {
                        resource.suffixes.push(affix.to_string());
                    }
                    resource.previous_ids.push(resource.current_id());
                }
                let result = visit_object_field(
                    &mut resource.object,
                    spec,
                    false,
                    &|| Value::Null,
                    &mut |node| {
                        if let Value::String(s) = node {
                            *s = if is_prefix {
                                format!("{affix}{s}")
                            } else {
                                format!("{s}{affix}")
                            };
                        }
                        Ok(())
                    },
                );
                result?;
            }
        }
    }
    Ok(())
}

/// Labels and annotations: sets each entry in the maps the specs reach.
fn set_map_entries(
    resources: &mut [Resource],
    entries: &BTreeMap<String, String>,
    specs: &[FieldSpec],
) -> Result<(), String> {
    if entries.is_empty() {
        return Ok(());
    }
    for resource in resources.iter_mut() {
        let gvk = resource.object.gvk();
        for spec in specs.iter().filter(|s| s.applies_to(&gvk)) {
            let result = visit_object_field(
                &mut resource.object,
                spec,
                spec.create,
                &|| Value::Object(Map::new()),
                &mut |node| {
                    let Value::Object(map) = node else {
                        return Err(format!("{} is not a mapping", spec.path_text));
                    };
                    for (k, v) in entries {
                        map.insert(k.clone(), Value::String(v.clone()));
                    }
                    Ok(())
                },
            );
            result.map_err(|m| format!("{m} in {}", describe(resource)))?;
        }
    }
    Ok(())
}

/// `replicas`: every object of a replicas kind that has (or had) the name.
fn set_replicas(
    resources: &mut [Resource],
    name: &str,
    count: i64,
    specs: &[FieldSpec],
) -> Result<(), String> {
    let mut found = false;
    for resource in resources.iter_mut() {
        let gvk = resource.object.gvk();
        for spec in specs {
            if !resource.any_id(|id| id.name == name && spec.applies_to(&id.gvk))
                || !spec.applies_to(&gvk)
            {
                continue;
            }
            found = true;
            let result = visit_object_field(
                &mut resource.object,
                spec,
                spec.create,
                &|| Value::Null,
                &mut |node| {
                    *node = Value::from(count);
                    Ok(())
                },
            );
            result?;
        }
    }
    if !found {
        return Err(format!(
            "replicas: no Deployment, ReplicationController, ReplicaSet or StatefulSet named {name:?}"
        ));
    }
    Ok(())
}

/// Adds a generated object: appended (`create`), or merged into / replacing the
/// existing object with the same id (`merge`, `replace`).
pub(crate) fn absorb_generated(
    acc: &mut Accumulation,
    mut generated: Resource,
    behavior: Behavior,
) -> Result<(), String> {
    let id = generated.current_id();
    let matches: Vec<usize> = acc
        .resources
        .iter()
        .enumerate()
        .filter(|(_, r)| r.any_id(|other| other.same_as(&id)))
        .map(|(i, _)| i)
        .collect();
    match (matches.as_slice(), behavior) {
        ([], Behavior::Create) => acc.append(generated),
        ([], _) => Err(format!(
            "{} {:?} does not exist; cannot merge or replace",
            id.gvk.kind, id.name
        )),
        ([_], Behavior::Create) => Err(format!(
            "{} {:?} already exists; behavior must be merge or replace",
            id.gvk.kind, id.name
        )),
        ([i], behavior) => {
            let old = &acc.resources[*i];
            merge_metadata(&mut generated, old);
            if behavior == Behavior::Merge {
                for field in ["data", "binaryData"] {
                    let mut merged = old
                        .object
                        .body()
                        .get(field)
                        .and_then(Value::as_object)
                        .cloned()
                        .unwrap_or_default();
                    if let Some(new) = generated
                        .object
                        .body()
                        .get(field)
                        .and_then(Value::as_object)
                    {
                        merged.extend(new.clone());
                    }
                    if !merged.is_empty() {
                        generated
                            .object
                            .body_mut()
                            .insert(field.into(), Value::Object(merged));
                    }
                }
                if old.origin.is_some() {
                    generated.origin = old.origin.clone();
                }
            }
            acc.resources[*i] = generated;
            acc.ids_changed();
            Ok(())
        }
        (_, _) => Err(format!(
            "found several objects that could accept the merge of {} {:?}",
            id.gvk.kind, id.name
        )),
    }
}

/// kustomize's `CopyMergeMetaDataFieldsFrom`: labels and annotations merged (the
/// new ones win), name and namespace and rename history taken from the old.
fn merge_metadata(new: &mut Resource, old: &Resource) {
    for field in ["labels", "annotations"] {
        let mut merged = old
            .object
            .get(&["metadata", field])
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        if let Some(mine) = new
            .object
            .get(&["metadata", field])
            .and_then(Value::as_object)
        {
            merged.extend(mine.clone());
        }
        if !merged.is_empty() {
            new.object.set(&["metadata", field], Value::Object(merged));
        }
    }
    new.object.set_name(old.object.name());
    match old.object.namespace() {
        Some(ns) => new.object.set_namespace(ns),
        None => {
            new.object.remove(&["metadata", "namespace"]);
        }
    }
    // kustomize keeps the old object's build bookkeeping, including whether its
    // name gets a hash: a generator merged into a plain ConfigMap adds none.
    new.previous_ids = old.previous_ids.clone();
    new.prefixes = old.prefixes.clone();
    new.suffixes = old.suffixes.clone();
    new.needs_hash = old.needs_hash;
}

/// Appends the content hash to the names of generated objects.
pub(crate) fn append_hashes(resources: &mut [Resource]) {
    for resource in resources.iter_mut().filter(|r| r.needs_hash) {
        let hash = content_hash(&resource.object);
        resource.previous_ids.push(resource.current_id());
        let name = format!("{}-{hash}", resource.object.name());
        resource.object.set_name(&name);
    }
}

/// kustomize strips its internal annotations at the end of a build and removes
/// `metadata.annotations` if that leaves it empty; an empty or null map written in
/// the source goes the same way.
pub(crate) fn drop_empty_annotations(resources: &mut [Resource]) {
    for resource in resources {
        let empty = match resource.object.get(&["metadata", "annotations"]) {
            Some(Value::Null) => true,
            Some(Value::Object(m)) => m.is_empty(),
            _ => false,
        };
        if empty {
            resource.object.remove(&["metadata", "annotations"]);
        }
    }
}

/// `buildMetadata`: origin annotations and the managed-by label.
pub(crate) fn apply_build_metadata(
    resources: &mut [Resource],
    k: &super::Kustomization,
) -> Result<(), String> {
    let options = k.build_metadata.clone().unwrap_or_default();
    for resource in resources.iter_mut() {
        if options.iter().any(|o| o == "originAnnotations")
            && let Some(origin) = &resource.origin
        {
            resource
                .object
                .set_annotation("config.kubernetes.io/origin", origin);
        }
        if options.iter().any(|o| o == "managedByLabel") {
            resource
                .object
                .set_label("app.kubernetes.io/managed-by", super::MANAGED_BY);
        }
    }
    Ok(())
}
