//! Kyverno's CEL libraries that read a cluster, a registry or the clock
//! (`resource.Get`, `resource.List`, `image.GetMetadata`, `time.now()`),
//! answered from what the caller supplies instead: the objects and image
//! metadata of a Kyverno CLI test's `Context` file; and the generator of a
//! GeneratingPolicy (`generator.Apply(namespace, objects)`), which gives the
//! objects to create for the caller to create. A caller binds the variables
//! `resource`, `image`, `time` and `generator` to the values
//! [`resources_variable`], [`images_variable`], [`time_variable`] and
//! [`generator_variable`] make; without them an expression calling these
//! libraries fails with "undeclared reference", as it did before.

use std::sync::Arc;

use kube_cel::cel::extractors::This;
use kube_cel::cel::objects::{Key, Map};
use kube_cel::cel::{Context, ExecutionError, ResolveResult, Value};
use serde_json::Value as Json;

/// The key under which the `resource` variable holds its objects.
const RESOURCES: &str = "gitplane.supplied.resources";
/// The key under which the `image` variable holds image metadata.
const IMAGES: &str = "gitplane.supplied.images";
/// The key that marks the `time` variable.
const TIME: &str = "gitplane.supplied.time";
/// The key that marks the `generator` variable.
const GENERATOR: &str = "gitplane.supplied.generator";

/// The `resource` variable: `objects` as `(apiVersion, resource, namespace)`
/// → objects, where `resource` is the plural the caller names each by.
pub fn resources_variable<'a>(objects: impl IntoIterator<Item = (&'a Json, String)>) -> Json {
    let mut by_collection = serde_json::Map::new();
    for (object, plural) in objects {
        let key = collection_key(
            object["apiVersion"].as_str().unwrap_or_default(),
            &plural,
            object["metadata"]["namespace"].as_str().unwrap_or_default(),
        );
        let entry = by_collection
            .entry(key)
            .or_insert_with(|| Json::Array(Vec::new()));
        if let Json::Array(items) = entry {
            items.push(object.clone());
        }
    }
    serde_json::json!({ RESOURCES: by_collection })
}

/// The `image` variable: each `{image, config, manifest…}` entry of a
/// Context's `images`, by its `image`.
pub fn images_variable(images: &[Json]) -> Json {
    let by_reference: serde_json::Map<String, Json> = images
        .iter()
        .filter_map(|entry| Some((entry["image"].as_str()?.to_string(), entry.clone())))
        .collect();
    serde_json::json!({ IMAGES: by_reference })
}

/// The `time` variable (`time.now()` reads the clock).
pub fn time_variable() -> Json {
    serde_json::json!({ TIME: true })
}

/// The `generator` variable (`generator.Apply(…)` gives what to create).
pub fn generator_variable() -> Json {
    serde_json::json!({ GENERATOR: true })
}

fn collection_key(api_version: &str, resource: &str, namespace: &str) -> String {
    format!("{api_version}|{resource}|{namespace}")
}

/// Registers `Get`, `List`, `GetMetadata` and `now`, which answer only on
/// the variables above.
pub(crate) fn register(context: &mut Context) {
    context.add_function("Get", get);
    context.add_function("List", list);
    context.add_function("GetMetadata", get_metadata);
    context.add_function("now", now);
    context.add_function("Apply", apply);
}

/// The part of a supplied variable under `key`.
fn part<'v>(this: &'v Value, key: &str, function: &str) -> Result<&'v Value, ExecutionError> {
    match this {
        Value::Map(map) => map.get(&Key::String(Arc::new(key.to_string()))),
        _ => None,
    }
    .ok_or_else(|| {
        ExecutionError::function_error(
            function,
            "gitplane answers it only from supplied data (a Kyverno test's Context file)",
        )
    })
}

/// The objects of one collection.
fn collection(this: &Value, api_version: &str, resource: &str, namespace: &str) -> Vec<Value> {
    let Ok(Value::Map(collections)) = part(this, RESOURCES, "resource") else {
        return Vec::new();
    };
    let key = collection_key(api_version, resource, namespace);
    match collections.get(&Key::String(Arc::new(key))) {
        Some(Value::List(items)) => items.iter().cloned().collect(),
        _ => Vec::new(),
    }
}

/// `resource.Get(apiVersion, resource, namespace, name)`.
fn get(
    This(this): This<Value>,
    api_version: Arc<String>,
    resource: Arc<String>,
    namespace: Arc<String>,
    name: Arc<String>,
) -> ResolveResult {
    part(&this, RESOURCES, "resource.Get")?;
    collection(&this, &api_version, &resource, &namespace)
        .into_iter()
        .find(|object| name_of(object) == Some(name.as_str()))
        .ok_or_else(|| {
            ExecutionError::function_error(
                "resource.Get",
                format!("{resource} {namespace}/{name} ({api_version}) not found"),
            )
        })
}

/// `resource.List(apiVersion, resource, namespace)`: `{items: […]}`.
fn list(
    This(this): This<Value>,
    api_version: Arc<String>,
    resource: Arc<String>,
    namespace: Arc<String>,
) -> ResolveResult {
    part(&this, RESOURCES, "resource.List")?;
    let items = collection(&this, &api_version, &resource, &namespace);
    let mut map = std::collections::HashMap::new();
    map.insert(
        Key::String(Arc::new("items".into())),
        Value::List(items.into()),
    );
    Ok(Value::Map(Map { map: Arc::new(map) }))
}

fn name_of(object: &Value) -> Option<&str> {
    let Value::Map(object) = object else {
        return None;
    };
    let Some(Value::Map(metadata)) = object.get(&Key::String(Arc::new("metadata".into()))) else {
        return None;
    };
    match metadata.get(&Key::String(Arc::new("name".into()))) {
        Some(Value::String(name)) => Some(name.as_str()),
        _ => None,
    }
}

/// `image.GetMetadata(reference)`: the supplied entry for that image.
fn get_metadata(This(this): This<Value>, reference: Arc<String>) -> ResolveResult {
    let Value::Map(images) = part(&this, IMAGES, "image.GetMetadata")? else {
        return Err(ExecutionError::function_error(
            "image.GetMetadata",
            "no images",
        ));
    };
    images
        .get(&Key::String(reference.clone()))
        .cloned()
        .ok_or_else(|| {
            ExecutionError::function_error(
                "image.GetMetadata",
                format!("no metadata supplied for image {reference}"),
            )
        })
}

/// `time.now()`.
fn now(This(this): This<Value>) -> ResolveResult {
    part(&this, TIME, "time.now")?;
    Ok(Value::Timestamp(chrono::Utc::now().fixed_offset()))
}

/// `generator.Apply(namespace, objects)`: the objects, each placed in
/// `namespace` (when it is not empty), for the caller to create.
fn apply(This(this): This<Value>, namespace: Arc<String>, objects: Value) -> ResolveResult {
    part(&this, GENERATOR, "generator.Apply")?;
    let Value::List(objects) = objects else {
        return Err(ExecutionError::function_error(
            "generator.Apply",
            "the second argument must be a list of objects",
        ));
    };
    let placed = objects
        .iter()
        .map(|object| in_namespace(object, &namespace))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Value::List(placed.into()))
}

/// An object (a map) with `metadata.namespace` set, unless `namespace` is
/// empty.
fn in_namespace(object: &Value, namespace: &Arc<String>) -> ResolveResult {
    let Value::Map(object) = object else {
        return Err(ExecutionError::function_error(
            "generator.Apply",
            "each object must be a map",
        ));
    };
    if namespace.is_empty() {
        return Ok(Value::Map(object.clone()));
    }
    let metadata_key = Key::String(Arc::new("metadata".into()));
    let mut metadata = match object.map.get(&metadata_key) {
        Some(Value::Map(m)) => (*m.map).clone(),
        _ => std::collections::HashMap::new(),
    };
    metadata.insert(
        Key::String(Arc::new("namespace".into())),
        Value::String(namespace.clone()),
    );
    let mut fields = (*object.map).clone();
    fields.insert(
        metadata_key,
        Value::Map(Map {
            map: Arc::new(metadata),
        }),
    );
    Ok(Value::Map(Map {
        map: Arc::new(fields),
    }))
}
