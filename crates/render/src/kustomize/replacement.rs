//! `replacements`: copy a field of one object (the source) into fields of
//! others (the targets), optionally a delimited part of a string.
//!
//! Field paths are dot-separated; `[key=value]` picks the list element whose
//! `key` is `value`, a number picks a list element by index, and `*` walks every
//! element or field.

use gitplane_object::{Map, Syntax, Value, parse_values};

use super::file::{FieldOptions, ReplacementField, ReplacementSource, ReplacementTarget, Selector};
use super::resource::{ResId, Resource};
use super::{Accumulation, Builder, Loaded};
use crate::error::RenderError;

/// Runs every replacement of one kustomization.
pub(crate) fn apply_replacements(
    builder: &Builder<'_>,
    loaded: &Loaded,
    acc: &mut Accumulation,
) -> Result<(), RenderError> {
    let err =
        |m: String| RenderError::kustomize(loaded.file.as_str(), format!("replacements: {m}"));
    for entry in loaded.kustomization.replacements.iter().flatten() {
        for replacement in expand_entry(builder, loaded, entry)? {
            let source = replacement
                .source
                .as_ref()
                .ok_or_else(|| err("a replacement needs a source".into()))?;
            let value = source_value(&acc.resources, source).map_err(err)?;
            for target in &replacement.targets {
                apply_target(&mut acc.resources, target, &value).map_err(err)?;
            }
        }
    }
    Ok(())
}

/// An inline replacement, or the replacements in the file at `path`.
fn expand_entry(
    builder: &Builder<'_>,
    loaded: &Loaded,
    entry: &ReplacementField,
) -> Result<Vec<ReplacementField>, RenderError> {
    let Some(path) = &entry.path else {
        return Ok(vec![entry.clone()]);
    };
    let (rel, bytes) = builder.read_file(loaded, path)?;
    let mut out = Vec::new();
    for (value, _) in parse_values(&bytes, rel.as_str(), Syntax::Yaml, builder.load)? {
        let items = match value {
            Value::Array(items) => items,
            Value::Null => continue,
            other => vec![other],
        };
        for item in items {
            let replacement: ReplacementField = serde_json::from_value(item).map_err(|e| {
                RenderError::kustomize(rel.as_str(), format!("invalid replacement: {e}"))
            })?;
            out.push(replacement);
        }
    }
    Ok(out)
}

fn source_id(source: &ReplacementSource) -> Selector {
    Selector {
        group: source.group.clone(),
        version: source.version.clone(),
        kind: source.kind.clone(),
        name: source.name.clone(),
        namespace: source.namespace.clone(),
        ..Selector::default()
    }
}

/// kustomize's `ResId.IsSelectedBy`: empty fields match anything; the
/// namespace compares effective namespaces.
fn id_selected(id: &ResId, s: &Selector) -> bool {
    (s.name.is_empty() || s.name == id.name)
        && (s.namespace.is_empty() || {
            let wanted = ResId {
                gvk: id.gvk.clone(),
                name: String::new(),
                namespace: s.namespace.clone(),
            };
            wanted.effective_namespace() == id.effective_namespace()
        })
        && (s.group.is_empty() || s.group == id.gvk.group)
        && (s.version.is_empty() || s.version == id.gvk.version)
        && (s.kind.is_empty() || s.kind == id.gvk.kind)
}

fn matches_metadata_selectors(resource: &Resource, s: &Selector) -> Result<bool, String> {
    let check = |text: &str, map| -> Result<bool, String> {
        if text.is_empty() {
            return Ok(true);
        }
        Ok(gitplane_object::LabelSelector::parse(text)
            .map_err(|e| e.to_string())?
            .matches(map))
    };
    Ok(check(&s.label_selector, resource.object.labels())?
        && check(&s.annotation_selector, resource.object.annotations())?)
}

fn source_value(resources: &[Resource], source: &ReplacementSource) -> Result<Value, String> {
    let selector = source_id(source);
    let matches: Vec<&Resource> = resources
        .iter()
        .filter(|r| r.any_id(|id| id_selected(id, &selector)))
        .collect();
    let resource = match matches.as_slice() {
        [one] => *one,
        [] => {
            return Err(format!(
                "nothing selected by source {}",
                describe_selector(&selector)
            ));
        }
        _ => {
            return Err(format!(
                "multiple objects match source {}",
                describe_selector(&selector)
            ));
        }
    };
    let path = if source.field_path.is_empty() {
        "metadata.name"
    } else {
        &source.field_path
    };
    let mut body = resource.object.to_value();
    let mut found = Vec::new();
    walk(&mut body, &split_path(path), false, &mut |v| {
        found.push(v.clone());
        Ok(())
    })?;
    let value = found
        .into_iter()
        .next()
        .ok_or_else(|| format!("field {path:?} is missing in source {}", resource.object))?;
    match &source.options {
        Some(options) if !options.delimiter.is_empty() => {
            let text = value.as_str().ok_or_else(|| {
                format!(
                    "field {path:?} of {} is not a string, cannot split it",
                    resource.object
                )
            })?;
            let parts: Vec<&str> = text.split(options.delimiter.as_str()).collect();
            let index = usize::try_from(options.index)
                .ok()
                .filter(|&i| i < parts.len())
                .ok_or_else(|| {
                    format!(
                        "options.index {} is out of bounds for the value of {path:?} in {}",
                        options.index, resource.object
                    )
                })?;
            Ok(Value::String(parts[index].to_string()))
        }
        _ => Ok(value),
    }
}

fn apply_target(
    resources: &mut [Resource],
    target: &ReplacementTarget,
    value: &Value,
) -> Result<(), String> {
    let select = target
        .select
        .as_ref()
        .ok_or("a replacement target needs select")?;
    let options = target.options.clone().unwrap_or_default();
    for resource in resources.iter_mut() {
        if !resource.any_id(|id| id_selected(id, select))
            || !matches_metadata_selectors(resource, select)?
        {
            continue;
        }
        let mut rejected = false;
        for reject in &target.reject {
            if resource.any_id(|id| id_selected(id, reject))
                && matches_metadata_selectors(resource, reject)?
            {
                rejected = true;
            }
        }
        if rejected {
            continue;
        }
        for path in &target.field_paths {
            let mut body = resource.object.to_value();
            let mut count = 0;
            walk(&mut body, &split_path(path), options.create, &mut |node| {
                count += 1;
                write_value(node, value, &options)
            })?;
            if count == 0 {
                return Err(format!(
                    "unable to find field {path:?} in replacement target {}",
                    resource.object
                ));
            }
            if let Value::Object(map) = body {
                *resource.object.body_mut() = map;
            }
        }
    }
    Ok(())
}

fn write_value(node: &mut Value, value: &Value, options: &FieldOptions) -> Result<(), String> {
    if options.delimiter.is_empty() {
        *node = value.clone();
        return Ok(());
    }
    let replacement = match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let current = match node {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        _ => return Err("a delimited replacement target must be a string".into()),
    };
    let mut parts: Vec<String> = current
        .split(options.delimiter.as_str())
        .map(str::to_string)
        .collect();
    match usize::try_from(options.index) {
        Ok(i) if i < parts.len() => parts[i] = replacement,
        Ok(_) => parts.push(replacement),
        Err(_) => parts.insert(0, replacement),
    }
    *node = Value::String(parts.join(&options.delimiter));
    Ok(())
}

/// Splits on dots outside brackets.
fn split_path(path: &str) -> Vec<String> {
    let mut parts = Vec::new();
    let mut current = String::new();
    let mut depth = 0;
    for c in path.chars() {
        match c {
            '[' => {
                depth += 1;
                current.push(c);
            }
            ']' => {
                depth -= 1;
                current.push(c);
            }
            '.' if depth == 0 => parts.push(std::mem::take(&mut current)),
            _ => current.push(c),
        }
    }
    parts.push(current);
    parts.into_iter().filter(|p| !p.is_empty()).collect()
}

fn walk(
    node: &mut Value,
    path: &[String],
    create: bool,
    visit: &mut dyn FnMut(&mut Value) -> Result<(), String>,
) -> Result<(), String> {
    let Some((part, rest)) = path.split_first() else {
        return visit(node);
    };
    if part == "*" {
        match node {
            Value::Array(items) => items
                .iter_mut()
                .try_for_each(|i| walk(i, rest, create, visit))?,
            Value::Object(map) => map
                .values_mut()
                .try_for_each(|v| walk(v, rest, create, visit))?,
            _ => {}
        }
        return Ok(());
    }
    if let Some(matcher) = part.strip_prefix('[').and_then(|p| p.strip_suffix(']')) {
        let Some((key, wanted)) = matcher.split_once('=') else {
            // `[a.b/c]`: a map key that contains dots.
            return walk_field(node, matcher, rest, create, visit);
        };
        let Value::Array(items) = node else {
            return Ok(());
        };
        let mut matched = false;
        for item in items.iter_mut() {
            // Non-string values (ports, booleans) compare by their text.
            let hit = item.get(key).is_some_and(|v| match v {
                Value::String(s) => s == wanted,
                other => format!("{other}") == wanted,
            });
            if hit {
                matched = true;
                walk(item, rest, create, visit)?;
            }
        }
        if !matched && create {
            let mut element = Map::new();
            element.insert(key.to_string(), Value::String(wanted.to_string()));
            items.push(Value::Object(element));
            if let Some(last) = items.last_mut() {
                walk(last, rest, create, visit)?;
            }
        }
        return Ok(());
    }
    if let (Value::Array(items), Ok(index)) = (&mut *node, part.parse::<usize>()) {
        if let Some(item) = items.get_mut(index) {
            walk(item, rest, create, visit)?;
        }
        return Ok(());
    }
    walk_field(node, part, rest, create, visit)
}

fn walk_field(
    node: &mut Value,
    field: &str,
    rest: &[String],
    create: bool,
    visit: &mut dyn FnMut(&mut Value) -> Result<(), String>,
) -> Result<(), String> {
    let Value::Object(map) = node else {
        return Ok(());
    };
    if !map.contains_key(field) {
        if !create {
            return Ok(());
        }
        let fresh = if rest.is_empty() {
            Value::Null
        } else {
            Value::Object(Map::new())
        };
        map.insert(field.to_string(), fresh);
    }
    match map.get_mut(field) {
        Some(child) => walk(child, rest, create, visit),
        None => Ok(()),
    }
}

fn describe_selector(s: &Selector) -> String {
    let parts: Vec<String> = [
        ("group", &s.group),
        ("version", &s.version),
        ("kind", &s.kind),
        ("name", &s.name),
        ("namespace", &s.namespace),
    ]
    .iter()
    .filter(|(_, v)| !v.is_empty())
    .map(|(k, v)| format!("{k}={v}"))
    .collect();
    format!("[{}]", parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_with_matchers_indexes_and_wildcards() {
        assert_eq!(
            split_path("spec.template.spec.containers.[name=web].image"),
            [
                "spec",
                "template",
                "spec",
                "containers",
                "[name=web]",
                "image"
            ]
        );
        assert_eq!(
            split_path("metadata.annotations.[a.b/c]"),
            ["metadata", "annotations", "[a.b/c]"]
        );
        let mut v = json!({"spec": {"containers": [{"name": "a", "image": "x"}, {"name": "web", "image": "y"}]}});
        let mut seen = Vec::new();
        walk(
            &mut v,
            &split_path("spec.containers.*.image"),
            false,
            &mut |n| {
                seen.push(n.clone());
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(seen, [json!("x"), json!("y")]);
        walk(
            &mut v,
            &split_path("spec.containers.1.image"),
            false,
            &mut |n| {
                *n = json!("z");
                Ok(())
            },
        )
        .unwrap();
        assert_eq!(v["spec"]["containers"][1]["image"], "z");
    }

    #[test]
    fn delimited_writes() {
        let options = FieldOptions {
            delimiter: ".".into(),
            index: 1,
            ..FieldOptions::default()
        };
        let mut node = json!("a.b.c");
        write_value(&mut node, &json!("X"), &options).unwrap();
        assert_eq!(node, "a.X.c");
    }
}
