//! Discovery: `/version`, `/api`, `/apis`, `/api/v1`, `/apis/{g}`, `/apis/{g}/{v}`,
//! in the aggregated (`apidiscovery.k8s.io/v2`) form when the client asks for it
//! and the legacy form otherwise, both built from the registry.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::registry::{Registry, ResourceType};

/// The Kubernetes version reported. kubectl's dispatcher on this workplace
/// picks a matching client from `minor`, so it must be one it has (1.27–1.33).
pub fn version() -> Value {
    json!({
        "major": "1", "minor": "32", "gitVersion": "v1.32.0-gitplane",
        "gitCommit": "gitplane", "gitTreeState": "clean", "buildDate": "2026-11-22T00:00:00Z",
        "goVersion": "n/a (gitplane embedded API server, Rust)", "compiler": "rustc", "platform": "linux/amd64",
    })
}

/// The verbs every type supports.
const VERBS: [&str; 8] = [
    "create",
    "delete",
    "deletecollection",
    "get",
    "list",
    "patch",
    "update",
    "watch",
];

/// Versions of a group, in preference order, with the types each serves.
fn groups(
    registry: &Registry,
) -> BTreeMap<String, BTreeMap<String, Vec<std::sync::Arc<ResourceType>>>> {
    let mut out: BTreeMap<String, BTreeMap<String, Vec<_>>> = BTreeMap::new();
    for t in registry.all() {
        for v in &t.versions {
            out.entry(t.group.clone())
                .or_default()
                .entry(v.clone())
                .or_default()
                .push(t.clone());
        }
    }
    out
}

fn preferred_version(
    group: &str,
    registry: &Registry,
    versions: &BTreeMap<String, Vec<std::sync::Arc<ResourceType>>>,
) -> String {
    // The storage version of the group's first type, else the highest version.
    registry
        .all()
        .into_iter()
        .find(|t| t.group == group)
        .map(|t| t.version().to_string())
        .or_else(|| versions.keys().last().cloned())
        .unwrap_or_else(|| "v1".into())
}

/// `/api` legacy: `APIVersions`.
pub fn core_versions() -> Value {
    json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ""}]})
}

/// `/apis` legacy: `APIGroupList`.
pub fn group_list(registry: &Registry) -> Value {
    let items: Vec<Value> = groups(registry)
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(g, versions)| group_entry(g, registry, versions))
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": items})
}

fn group_entry(
    group: &str,
    registry: &Registry,
    versions: &BTreeMap<String, Vec<std::sync::Arc<ResourceType>>>,
) -> Value {
    let preferred = preferred_version(group, registry, versions);
    let list: Vec<Value> = versions
        .keys()
        .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
        .collect();
    json!({"name": group, "versions": list, "preferredVersion": {"groupVersion": format!("{group}/{preferred}"), "version": preferred}})
}

/// `/apis/{group}`: `APIGroup`.
pub fn group(registry: &Registry, group: &str) -> Option<Value> {
    let all = groups(registry);
    let versions = all.get(group)?;
    let mut entry = group_entry(group, registry, versions);
    entry["kind"] = json!("APIGroup");
    entry["apiVersion"] = json!("v1");
    Some(entry)
}

/// `/api/v1`, `/apis/{g}/{v}`: `APIResourceList`.
pub fn resource_list(registry: &Registry, group: &str, version: &str) -> Option<Value> {
    let all = groups(registry);
    let types = all.get(group)?.get(version)?;
    let mut resources = Vec::new();
    for t in types {
        resources.push(json!({
            "name": t.plural, "singularName": t.singular, "namespaced": t.namespaced, "kind": t.kind,
            "verbs": VERBS, "shortNames": t.short_names, "categories": t.categories,
            "storageVersionHash": storage_version_hash(t),
        }));
        for (sub, kind_group, kind_version, kind) in subresources(t) {
            let mut entry = json!({"name": format!("{}/{sub}", t.plural), "singularName": "", "namespaced": t.namespaced, "kind": kind, "verbs": ["get", "patch", "update"]});
            if kind_group != t.group || kind_version != version {
                entry["group"] = json!(kind_group);
                entry["version"] = json!(kind_version);
            }
            resources.push(entry);
        }
    }
    let group_version = if group.is_empty() {
        version.to_string()
    } else {
        format!("{group}/{version}")
    };
    Some(
        json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": group_version, "resources": resources}),
    )
}

/// Subresources of a type: name and the group, version and kind they return.
fn subresources(t: &ResourceType) -> Vec<(&'static str, String, String, String)> {
    let mut out = Vec::new();
    if t.status_subresource {
        out.push((
            "status",
            t.group.clone(),
            t.version().to_string(),
            t.kind.clone(),
        ));
    }
    if t.scale.is_some() {
        out.push((
            "scale",
            "autoscaling".to_string(),
            "v1".to_string(),
            "Scale".to_string(),
        ));
    }
    if t.plural == "namespaces" && t.group.is_empty() {
        out.push((
            "finalize",
            String::new(),
            "v1".to_string(),
            "Namespace".to_string(),
        ));
    }
    out
}

fn storage_version_hash(t: &ResourceType) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (&t.group, t.version(), &t.kind).hash(&mut h);
    let bytes = h.finish().to_be_bytes();
    base64::Engine::encode(&base64::engine::general_purpose::STANDARD, &bytes[..8])
}

/// Aggregated discovery for `/api` (core) or `/apis` (every other group).
pub fn aggregated(registry: &Registry, core: bool) -> Value {
    let mut items = Vec::new();
    for (group, versions) in groups(registry) {
        if group.is_empty() != core {
            continue;
        }
        let preferred = preferred_version(&group, registry, &versions);
        let mut ordered: Vec<&String> = versions.keys().collect();
        ordered.sort_by_key(|v| *v != &preferred);
        let version_items: Vec<Value> = ordered
            .into_iter()
            .map(|v| {
                let resources: Vec<Value> = versions[v]
                    .iter()
                    .map(|t| {
                        let subs: Vec<Value> = subresources(t)
                            .into_iter()
                            .map(|(sub, g, sv, kind)| {
                                json!({"subresource": sub, "responseKind": {"group": g, "version": sv, "kind": kind}, "verbs": ["get", "patch", "update"]})
                            })
                            .collect();
                        let mut entry = json!({
                            "resource": t.plural,
                            "responseKind": {"group": t.group, "version": v, "kind": t.kind},
                            "scope": if t.namespaced { "Namespaced" } else { "Cluster" },
                            "singularResource": t.singular, "verbs": VERBS, "subresources": subs,
                        });
                        if !t.short_names.is_empty() {
                            entry["shortNames"] = json!(t.short_names);
                        }
                        if !t.categories.is_empty() {
                            entry["categories"] = json!(t.categories);
                        }
                        entry
                    })
                    .collect();
                json!({"version": v, "resources": resources, "freshness": "Current"})
            })
            .collect();
        items.push(json!({"metadata": {"name": group, "creationTimestamp": null}, "versions": version_items}));
    }
    json!({"kind": "APIGroupDiscoveryList", "apiVersion": "apidiscovery.k8s.io/v2", "metadata": {}, "items": items})
}

/// The Content-Type of aggregated discovery documents.
pub const AGGREGATED_CONTENT_TYPE: &str =
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList";
