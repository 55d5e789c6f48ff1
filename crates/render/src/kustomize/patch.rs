//! Patches: `patchesStrategicMerge`, `patches` (strategic merge or JSON 6902,
//! with or without a `target`) and `patchesJson6902`.

use gitplane_object::smp::{Flavor, root_for, strategic_merge_map};
use gitplane_object::yaml::Dialect;
use gitplane_object::{LabelSelector, LoadOptions, Object, Syntax, Value, parse_values};
use regex::Regex;

use super::file::{Patch, Selector};
use super::resource::{ResId, Resource};
use super::{Accumulation, Builder, Loaded};
use crate::error::RenderError;

/// What a patch text turned out to be.
enum ParsedPatch {
    Strategic(Vec<Object>),
    Json(json_patch::Patch),
}

/// `patchesStrategicMerge`: each entry a file or an inline patch; each patch
/// document applies to the object with its own id.
pub(crate) fn apply_strategic_merge_patches(
    builder: &Builder<'_>,
    loaded: &Loaded,
    acc: &mut Accumulation,
) -> Result<(), RenderError> {
    let err = |m: String| RenderError::kustomize(loaded.file.as_str(), m);
    for entry in loaded
        .kustomization
        .patches_strategic_merge
        .iter()
        .flatten()
    {
        let (source, text) = patch_text_or_file(builder, loaded, entry)?;
        let objects = parse_strategic(&text, &source, builder.load)?.ok_or_else(|| {
            err(format!(
                "patchesStrategicMerge entry {source}: not a strategic merge patch"
            ))
        })?;
        for patch in objects {
            let index = find_by_id(&acc.resources, &patch)
                .map_err(|m| err(format!("patchesStrategicMerge {source}: {m}")))?;
            apply_strategic(&mut acc.resources, index, &patch, PatchOptions::default())
                .map_err(|m| err(format!("patchesStrategicMerge {source}: {m}")))?;
        }
    }
    Ok(())
}

/// An entry of `patchesStrategicMerge` is a path when such a file exists, an
/// inline patch otherwise.
fn patch_text_or_file(
    builder: &Builder<'_>,
    loaded: &Loaded,
    entry: &str,
) -> Result<(String, String), RenderError> {
    let looks_inline = entry.contains('\n') || entry.trim_start().starts_with('{');
    if !looks_inline
        && let Ok(rel) = builder.resolve_file(loaded, entry)
        && builder.root.kind(&rel)?.is_some()
    {
        {
            let bytes = builder.root.read(&rel)?;
            let text = String::from_utf8(bytes).map_err(|_| {
                RenderError::kustomize(rel.as_str(), "patch file is not UTF-8 text")
            })?;
            return Ok((rel.as_str().to_string(), text));
        }
    }
    if looks_inline {
        return Ok((
            format!("inline patch in {}", loaded.file.as_str()),
            entry.to_string(),
        ));
    }
    Err(RenderError::kustomize(
        loaded.file.as_str(),
        format!("patch file {entry:?} not found"),
    ))
}

/// `patches` / `patchesJson6902` entries.
pub(crate) fn apply_patches<'p>(
    builder: &Builder<'_>,
    loaded: &Loaded,
    acc: &mut Accumulation,
    patches: impl Iterator<Item = &'p Patch>,
    field: &str,
) -> Result<(), RenderError> {
    let err = |m: String| RenderError::kustomize(loaded.file.as_str(), format!("{field}: {m}"));
    for patch in patches {
        let (source, text) = match (&patch.patch, &patch.path) {
            (Some(_), Some(_)) => {
                return Err(err("patch and path can't be set at the same time".into()));
            }
            (Some(inline), None) => (
                format!("inline patch in {}", loaded.file.as_str()),
                inline.clone(),
            ),
            (None, Some(path)) => {
                let (rel, bytes) = builder.read_file(loaded, path)?;
                let text = String::from_utf8(bytes).map_err(|_| {
                    RenderError::kustomize(rel.as_str(), "patch file is not UTF-8 text")
                })?;
                (rel.as_str().to_string(), text)
            }
            (None, None) => return Err(err("must specify one of patch and path".into())),
        };
        let options = PatchOptions {
            allow_name_change: patch
                .options
                .get("allowNameChange")
                .copied()
                .unwrap_or(false),
            allow_kind_change: patch
                .options
                .get("allowKindChange")
                .copied()
                .unwrap_or(false),
        };
        match parse_patch(&text, &source, builder.load)? {
            ParsedPatch::Json(ops) => {
                let target = patch
                    .target
                    .as_ref()
                    .ok_or_else(|| err(format!("{source}: a JSON 6902 patch needs a target")))?;
                for index in select(&acc.resources, target).map_err(err)? {
                    apply_json(&mut acc.resources[index], &ops)
                        .map_err(|m| err(format!("{source}: {m}")))?;
                }
            }
            ParsedPatch::Strategic(_) if field == "patchesJson6902" => {
                return Err(err(format!(
                    "{source}: expected a list of JSON 6902 operations"
                )));
            }
            ParsedPatch::Strategic(objects) => match &patch.target {
                None => {
                    for object in &objects {
                        let index = find_by_id(&acc.resources, object)
                            .map_err(|m| err(format!("{source}: {m}")))?;
                        apply_strategic(&mut acc.resources, index, object, options)
                            .map_err(|m| err(format!("{source}: {m}")))?;
                    }
                }
                Some(target) => {
                    let mut targets = select(&acc.resources, target).map_err(err)?;
                    // Deleting patches remove objects; walk from the end so indexes stay valid.
                    targets.reverse();
                    for index in targets {
                        for object in &objects {
                            let mut aimed = object.clone();
                            let current = &acc.resources[index].object;
                            if !options.allow_kind_change {
                                aimed.body_mut().insert(
                                    "apiVersion".into(),
                                    Value::String(current.api_version().into()),
                                );
                                aimed
                                    .body_mut()
                                    .insert("kind".into(), Value::String(current.kind().into()));
                            }
                            if !options.allow_name_change {
                                aimed.set_name(current.name());
                            }
                            match current.namespace() {
                                Some(ns) => aimed.set_namespace(ns),
                                None => {
                                    aimed.remove(&["metadata", "namespace"]);
                                }
                            }
                            if index >= acc.resources.len() {
                                break;
                            }
                            apply_strategic(&mut acc.resources, index, &aimed, options)
                                .map_err(|m| err(format!("{source}: {m}")))?;
                        }
                    }
                }
            },
        }
    }
    Ok(())
}

fn parse_patch(text: &str, source: &str, load: &LoadOptions) -> Result<ParsedPatch, RenderError> {
    let k8s = LoadOptions {
        dialect: Dialect::Kubernetes,
        limits: load.limits.clone(),
    };
    let docs = parse_values(text.trim().as_bytes(), source, Syntax::Yaml, &k8s)?;
    if let [(Value::Array(_), _)] = docs.as_slice() {
        let ops: json_patch::Patch = serde_json::from_value(docs[0].0.clone())
            .map_err(|e| RenderError::kustomize(source, format!("invalid JSON 6902 patch: {e}")))?;
        return Ok(ParsedPatch::Json(ops));
    }
    match parse_strategic(text, source, load)? {
        Some(objects) => Ok(ParsedPatch::Strategic(objects)),
        None => Err(RenderError::kustomize(
            source,
            "unable to parse a strategic merge or JSON 6902 patch",
        )),
    }
}

/// Strategic merge patch documents, read as kustomize reads resources.
fn parse_strategic(
    text: &str,
    source: &str,
    load: &LoadOptions,
) -> Result<Option<Vec<Object>>, RenderError> {
    let options = LoadOptions {
        dialect: Dialect::Kustomize,
        limits: load.limits.clone(),
    };
    let mut out = Vec::new();
    for (value, _) in parse_values(text.as_bytes(), source, Syntax::Yaml, &options)? {
        match value {
            Value::Null => {}
            Value::Object(map) if map.is_empty() => {}
            Value::Object(map) => out.push(Object::new(map)),
            _ => return Ok(None),
        }
    }
    Ok(if out.is_empty() { None } else { Some(out) })
}

#[derive(Debug, Clone, Copy, Default)]
struct PatchOptions {
    allow_name_change: bool,
    allow_kind_change: bool,
}

/// The single object whose current or previous id is the patch's id.
fn find_by_id(resources: &[Resource], patch: &Object) -> Result<usize, String> {
    let id = ResId::of(patch);
    let matches: Vec<usize> = resources
        .iter()
        .enumerate()
        .filter(|(_, r)| r.any_id(|other| other.same_as(&id)))
        .map(|(i, _)| i)
        .collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => Err(format!(
            "no object matches the patch's {} {:?} (check its apiVersion, kind, name and namespace)",
            id.gvk.kind, id.name
        )),
        _ => Err(format!(
            "several objects match the patch's {} {:?}",
            id.gvk.kind, id.name
        )),
    }
}

fn apply_strategic(
    resources: &mut Vec<Resource>,
    index: usize,
    patch: &Object,
    options: PatchOptions,
) -> Result<(), String> {
    let resource = &mut resources[index];
    let (kind, name, namespace) = (
        resource.object.kind().to_string(),
        resource.object.name().to_string(),
        resource.object.namespace().map(str::to_string),
    );
    let root = root_for(resource.object.group(), &kind);
    let id_before = resource.current_id();
    let body = std::mem::take(resource.object.body_mut());
    let merged = strategic_merge_map(body, patch.body(), root, Flavor::Kustomize)
        .map_err(|e| e.to_string())?;
    let body = match merged {
        Some(body) if !body.is_empty() => body,
        _ => {
            resources.remove(index);
            return Ok(());
        }
    };
    *resource.object.body_mut() = body;
    if options.allow_name_change || options.allow_kind_change {
        resource.previous_ids.push(id_before);
    }
    if !options.allow_kind_change {
        resource
            .object
            .body_mut()
            .insert("kind".into(), Value::String(kind));
    }
    if !options.allow_name_change {
        resource.object.set_name(&name);
    }
    match namespace {
        Some(ns) => resource.object.set_namespace(&ns),
        None => {
            resource.object.remove(&["metadata", "namespace"]);
        }
    }
    Ok(())
}

fn apply_json(resource: &mut Resource, ops: &json_patch::Patch) -> Result<(), String> {
    let mut value = resource.object.to_value();
    json_patch::patch(&mut value, ops)
        .map_err(|e| format!("JSON patch on {} failed: {e}", resource.object))?;
    match value {
        Value::Object(body) => {
            *resource.object.body_mut() = body;
            Ok(())
        }
        _ => Err(format!(
            "JSON patch on {} did not leave an object",
            resource.object
        )),
    }
}

/// The objects a patch `target` selects: group, version and kind exactly; name
/// and namespace as anchored regular expressions against the original or current
/// values; label and annotation selectors.
pub(crate) fn select(resources: &[Resource], selector: &Selector) -> Result<Vec<usize>, String> {
    let name = anchored(&selector.name)?;
    let namespace = anchored(&selector.namespace)?;
    let labels = parse_selector(&selector.label_selector)?;
    let annotations = parse_selector(&selector.annotation_selector)?;
    let mut out = Vec::new();
    for (i, r) in resources.iter().enumerate() {
        let (current, original) = (r.current_id(), r.original_id());
        let gvk = &current.gvk;
        let gvk_ok = (selector.group.is_empty() || selector.group == gvk.group)
            && (selector.version.is_empty() || selector.version == gvk.version)
            && (selector.kind.is_empty() || selector.kind == gvk.kind);
        let matches = |re: &Option<Regex>, a: &str, b: &str| {
            re.as_ref()
                .is_none_or(|re| re.is_match(a) || re.is_match(b))
        };
        if gvk_ok
            && matches(
                &namespace,
                original.effective_namespace(),
                current.effective_namespace(),
            )
            && matches(&name, &original.name, &current.name)
            && labels.as_ref().is_none_or(|s| s.matches(r.object.labels()))
            && annotations
                .as_ref()
                .is_none_or(|s| s.matches(r.object.annotations()))
        {
            out.push(i);
        }
    }
    Ok(out)
}

fn anchored(pattern: &str) -> Result<Option<Regex>, String> {
    if pattern.is_empty() {
        return Ok(None);
    }
    Regex::new(&format!("^(?:{pattern})$"))
        .map(Some)
        .map_err(|e| format!("invalid target pattern {pattern:?}: {e}"))
}

fn parse_selector(text: &str) -> Result<Option<LabelSelector>, String> {
    if text.is_empty() {
        return Ok(None);
    }
    LabelSelector::parse(text)
        .map(Some)
        .map_err(|e| e.to_string())
}
