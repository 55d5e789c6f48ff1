//! `crds`: OpenAPI definitions (`{"<go.type.Name>": {"Schema": {...}}}`) of
//! custom kinds whose properties carry kustomize's extensions, teaching the
//! transformers about fields of those kinds:
//! `x-kubernetes-object-ref-kind` / `-api-version` (`-name-key`) declare a name
//! reference, `x-kubernetes-label-selector` a label field,
//! `x-kubernetes-annotation` an annotation field, `x-kubernetes-identity` a
//! field that gets the name prefix. Only a definition's own properties are read,
//! and those of definitions they `$ref`.

use gitplane_object::{Map, Value};

use super::config::{NameReference, TransformerConfig};
use super::fieldspec::FieldSpec;

/// Adds to `config` what the definitions in `document` declare.
pub(crate) fn load_crd_definitions(document: &Value, config: &mut TransformerConfig) {
    let Some(definitions) = document.as_object() else {
        return;
    };
    for (type_name, definition) in definitions {
        let properties = properties_of(definition);
        let is_k8s_type = ["kind", "apiVersion", "metadata"]
            .iter()
            .all(|p| properties.is_some_and(|m| m.contains_key(*p)));
        if !is_k8s_type {
            continue;
        }
        let kind = type_name.rsplit('.').next().unwrap_or(type_name);
        load_properties(definitions, type_name, kind, &mut Vec::new(), config, 0);
    }
}

fn properties_of(definition: &Value) -> Option<&Map<String, Value>> {
    definition.get("Schema")?.get("properties")?.as_object()
}

fn load_properties(
    definitions: &Map<String, Value>,
    type_name: &str,
    kind: &str,
    path: &mut Vec<String>,
    config: &mut TransformerConfig,
    depth: usize,
) {
    // `$ref` cycles are possible in hostile input.
    if depth > 32 {
        return;
    }
    let Some(properties) = definitions.get(type_name).and_then(properties_of) else {
        return;
    };
    for (name, property) in properties {
        path.push(name.clone());
        let spec = || FieldSpec::new("", "", kind, &path.join("/"), false);
        let has = |key: &str| property.get(key).is_some_and(Value::is_string);
        if has("x-kubernetes-annotation") {
            config.common_annotations.push(spec());
        }
        if has("x-kubernetes-label-selector") {
            config.common_labels.push(spec());
        }
        if has("x-kubernetes-identity") {
            config.name_affix.push(spec());
        }
        if let (Some(version), Some(ref_kind)) = (
            property
                .get("x-kubernetes-object-ref-api-version")
                .and_then(Value::as_str),
            property
                .get("x-kubernetes-object-ref-kind")
                .and_then(Value::as_str),
        ) {
            let name_key = property
                .get("x-kubernetes-object-ref-name-key")
                .and_then(Value::as_str)
                .unwrap_or("name");
            let referrer = FieldSpec::new(
                "",
                "",
                kind,
                &format!("{}/{name_key}", path.join("/")),
                false,
            );
            config.add_name_reference(NameReference {
                group: String::new(),
                version: version.to_string(),
                kind: ref_kind.to_string(),
                referrers: vec![referrer],
            });
        }
        if let Some(reference) = property.get("$ref").and_then(Value::as_str) {
            load_properties(definitions, reference, kind, path, config, depth + 1);
        }
        path.pop();
    }
}
