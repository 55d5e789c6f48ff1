//! `meta.k8s.io/v1` Tables, what `kubectl get` asks for: the columns kubectl
//! shows for built-in kinds, and a CRD's `additionalPrinterColumns`.

use std::sync::Arc;

use serde_json::{Value, json};

use crate::registry::ResourceType;
use gitplane_object::time::parse_rfc3339;

/// A column: header, type and priority (1 = only with `-o wide`).
type Column = (&'static str, &'static str, i64);

/// A table of objects.
pub fn table(
    t: &ResourceType,
    objects: &[Arc<Value>],
    revision: Option<u64>,
    continue_token: Option<&str>,
) -> Value {
    let (columns, custom) = columns(t);
    let rows: Vec<Value> = objects.iter().map(|o| row(t, o, &custom)).collect();
    let mut definitions: Vec<Value> = columns
        .iter()
        .map(|(name, type_, priority)| json!({"name": name, "type": type_, "format": if *name == "Name" { "name" } else { "" }, "description": "", "priority": priority}))
        .collect();
    for c in &custom {
        definitions.insert(definitions.len() - usize::from(!has_date_column(t)), json!({"name": c.name, "type": c.type_, "format": "", "description": c.description, "priority": c.priority}));
    }
    let mut metadata = json!({});
    if let Some(rv) = revision {
        metadata["resourceVersion"] = json!(rv.to_string());
    }
    if let Some(token) = continue_token {
        metadata["continue"] = json!(token);
    }
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata, "columnDefinitions": definitions, "rows": rows})
}

fn has_date_column(t: &ResourceType) -> bool {
    t.printer_columns.iter().any(|c| c.type_ == "date")
}

fn columns(t: &ResourceType) -> (Vec<Column>, Vec<crate::registry::PrinterColumn>) {
    if t.crd.is_some() {
        let mut cols: Vec<Column> = vec![("Name", "string", 0)];
        if !has_date_column(t) {
            cols.push(("Age", "date", 0));
        }
        return (cols, t.printer_columns.clone());
    }
    let cols: Vec<Column> = match (t.group.as_str(), t.kind.as_str()) {
        ("", "Namespace") => vec![
            ("Name", "string", 0),
            ("Status", "string", 0),
            ("Age", "string", 0),
        ],
        ("", "Pod") => vec![
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Status", "string", 0),
            ("Restarts", "string", 0),
            ("Age", "string", 0),
            ("IP", "string", 1),
            ("Node", "string", 1),
        ],
        ("apps", "Deployment") => vec![
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Up-to-date", "integer", 0),
            ("Available", "integer", 0),
            ("Age", "string", 0),
            ("Containers", "string", 1),
            ("Images", "string", 1),
        ],
        ("apps", "ReplicaSet") => vec![
            ("Name", "string", 0),
            ("Desired", "integer", 0),
            ("Current", "integer", 0),
            ("Ready", "integer", 0),
            ("Age", "string", 0),
        ],
        ("apps", "StatefulSet") => vec![
            ("Name", "string", 0),
            ("Ready", "string", 0),
            ("Age", "string", 0),
        ],
        ("apps", "DaemonSet") => vec![
            ("Name", "string", 0),
            ("Desired", "integer", 0),
            ("Current", "integer", 0),
            ("Ready", "integer", 0),
            ("Up-to-date", "integer", 0),
            ("Available", "integer", 0),
            ("Age", "string", 0),
        ],
        ("batch", "Job") => vec![
            ("Name", "string", 0),
            ("Status", "string", 0),
            ("Completions", "string", 0),
            ("Age", "string", 0),
        ],
        ("batch", "CronJob") => vec![
            ("Name", "string", 0),
            ("Schedule", "string", 0),
            ("Suspend", "boolean", 0),
            ("Active", "integer", 0),
            ("Age", "string", 0),
        ],
        ("", "Service") => vec![
            ("Name", "string", 0),
            ("Type", "string", 0),
            ("Cluster-IP", "string", 0),
            ("External-IP", "string", 0),
            ("Port(s)", "string", 0),
            ("Age", "string", 0),
        ],
        ("", "ConfigMap") => vec![
            ("Name", "string", 0),
            ("Data", "integer", 0),
            ("Age", "string", 0),
        ],
        ("", "Secret") => vec![
            ("Name", "string", 0),
            ("Type", "string", 0),
            ("Data", "integer", 0),
            ("Age", "string", 0),
        ],
        ("", "PersistentVolumeClaim") => vec![
            ("Name", "string", 0),
            ("Status", "string", 0),
            ("Volume", "string", 0),
            ("Capacity", "string", 0),
            ("Access Modes", "string", 0),
            ("StorageClass", "string", 0),
            ("Age", "string", 0),
        ],
        ("networking.k8s.io", "Ingress") => vec![
            ("Name", "string", 0),
            ("Class", "string", 0),
            ("Hosts", "string", 0),
            ("Address", "string", 0),
            ("Ports", "string", 0),
            ("Age", "string", 0),
        ],
        ("autoscaling", "HorizontalPodAutoscaler") => vec![
            ("Name", "string", 0),
            ("Reference", "string", 0),
            ("MinPods", "integer", 0),
            ("MaxPods", "integer", 0),
            ("Replicas", "integer", 0),
            ("Age", "string", 0),
        ],
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            vec![("Name", "string", 0), ("Created At", "date", 0)]
        }
        ("", "Endpoints") => vec![
            ("Name", "string", 0),
            ("Endpoints", "string", 0),
            ("Age", "string", 0),
        ],
        _ => vec![("Name", "string", 0), ("Age", "string", 0)],
    };
    (cols, Vec::new())
}

fn get<'v>(o: &'v Value, pointer: &str) -> Option<&'v Value> {
    o.pointer(pointer)
}

fn int(o: &Value, pointer: &str) -> i64 {
    get(o, pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn text(o: &Value, pointer: &str) -> String {
    match get(o, pointer) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

fn or_none(s: String) -> String {
    if s.is_empty() { "<none>".into() } else { s }
}

/// A row: cells and the object's metadata.
fn row(t: &ResourceType, o: &Value, custom: &[crate::registry::PrinterColumn]) -> Value {
    let name = text(o, "/metadata/name");
    let age = age(o);
    let cells: Vec<Value> = match (t.group.as_str(), t.kind.as_str(), t.crd.is_some()) {
        (_, _, true) => {
            let mut cells = vec![json!(name)];
            for c in custom {
                let value = json_path(o, &c.json_path).unwrap_or(Value::Null);
                cells.push(if c.type_ == "date" {
                    since(&value)
                } else {
                    value
                });
            }
            if !has_date_column(t) {
                cells.push(json!(age));
            }
            cells
        }
        ("", "Namespace", _) => vec![json!(name), json!(text(o, "/status/phase")), json!(age)],
        ("", "Pod", _) => {
            let statuses = get(o, "/status/containerStatuses")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let containers = get(o, "/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let ready = statuses
                .iter()
                .filter(|s| s.get("ready") == Some(&json!(true)))
                .count();
            let restarts: i64 = statuses
                .iter()
                .map(|s| s.get("restartCount").and_then(Value::as_i64).unwrap_or(0))
                .sum();
            let status = if o.pointer("/metadata/deletionTimestamp").is_some() {
                "Terminating".to_string()
            } else {
                or_unknown(text(o, "/status/phase"))
            };
            vec![
                json!(name),
                json!(format!("{ready}/{containers}")),
                json!(status),
                json!(restarts.to_string()),
                json!(age),
                json!(or_none(text(o, "/status/podIP"))),
                json!(or_none(text(o, "/spec/nodeName"))),
            ]
        }
        ("apps", "Deployment", _) => {
            let containers = get(o, "/spec/template/spec/containers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let names: Vec<String> = containers.iter().map(|c| text(c, "/name")).collect();
            let images: Vec<String> = containers.iter().map(|c| text(c, "/image")).collect();
            vec![
                json!(name),
                json!(format!(
                    "{}/{}",
                    int(o, "/status/readyReplicas"),
                    int(o, "/spec/replicas")
                )),
                json!(int(o, "/status/updatedReplicas")),
                json!(int(o, "/status/availableReplicas")),
                json!(age),
                json!(names.join(",")),
                json!(images.join(",")),
            ]
        }
        ("apps", "ReplicaSet", _) => vec![
            json!(name),
            json!(int(o, "/spec/replicas")),
            json!(int(o, "/status/replicas")),
            json!(int(o, "/status/readyReplicas")),
            json!(age),
        ],
        ("apps", "StatefulSet", _) => vec![
            json!(name),
            json!(format!(
                "{}/{}",
                int(o, "/status/readyReplicas"),
                int(o, "/spec/replicas")
            )),
            json!(age),
        ],
        ("apps", "DaemonSet", _) => vec![
            json!(name),
            json!(int(o, "/status/desiredNumberScheduled")),
            json!(int(o, "/status/currentNumberScheduled")),
            json!(int(o, "/status/numberReady")),
            json!(int(o, "/status/updatedNumberScheduled")),
            json!(int(o, "/status/numberAvailable")),
            json!(age),
        ],
        ("batch", "Job", _) => {
            let complete = condition_true(o, "Complete");
            let failed = condition_true(o, "Failed");
            let status = if complete {
                "Complete"
            } else if failed {
                "Failed"
            } else {
                "Running"
            };
            let completions = get(o, "/spec/completions")
                .and_then(Value::as_i64)
                .unwrap_or(1);
            vec![
                json!(name),
                json!(status),
                json!(format!("{}/{completions}", int(o, "/status/succeeded"))),
                json!(age),
            ]
        }
        ("batch", "CronJob", _) => vec![
            json!(name),
            json!(text(o, "/spec/schedule")),
            json!(
                get(o, "/spec/suspend")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            ),
            json!(
                get(o, "/status/active")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len)
            ),
            json!(age),
        ],
        ("", "Service", _) => {
            let ports: Vec<String> = get(o, "/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|p| {
                    let node = p
                        .get("nodePort")
                        .map(|n| format!(":{n}"))
                        .unwrap_or_default();
                    format!(
                        "{}{node}/{}",
                        text(p, "/port"),
                        or_tcp(text(p, "/protocol"))
                    )
                })
                .collect();
            let external: Vec<String> = get(o, "/status/loadBalancer/ingress")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|i| text(i, "/ip"))
                .collect();
            let external = if external.is_empty() {
                if text(o, "/spec/type") == "LoadBalancer" {
                    "<pending>".to_string()
                } else {
                    "<none>".to_string()
                }
            } else {
                external.join(",")
            };
            vec![
                json!(name),
                json!(text(o, "/spec/type")),
                json!(or_none(text(o, "/spec/clusterIP"))),
                json!(external),
                json!(or_none(ports.join(","))),
                json!(age),
            ]
        }
        ("", "ConfigMap", _) => {
            let n = get(o, "/data")
                .and_then(Value::as_object)
                .map_or(0, |m| m.len())
                + get(o, "/binaryData")
                    .and_then(Value::as_object)
                    .map_or(0, |m| m.len());
            vec![json!(name), json!(n), json!(age)]
        }
        ("", "Secret", _) => vec![
            json!(name),
            json!(text(o, "/type")),
            json!(
                get(o, "/data")
                    .and_then(Value::as_object)
                    .map_or(0, |m| m.len())
            ),
            json!(age),
        ],
        ("", "PersistentVolumeClaim", _) => {
            let modes: Vec<String> = get(o, "/spec/accessModes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .map(short_mode)
                .collect();
            vec![
                json!(name),
                json!(text(o, "/status/phase")),
                json!(text(o, "/spec/volumeName")),
                json!(text(o, "/status/capacity/storage")),
                json!(modes.join(",")),
                json!(or_unset(text(o, "/spec/storageClassName"))),
                json!(age),
            ]
        }
        ("networking.k8s.io", "Ingress", _) => {
            let hosts: Vec<String> = get(o, "/spec/rules")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|r| text(r, "/host"))
                .filter(|h| !h.is_empty())
                .collect();
            let address: Vec<String> = get(o, "/status/loadBalancer/ingress")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|i| text(i, "/ip"))
                .collect();
            let ports = if get(o, "/spec/tls").is_some() {
                "80, 443"
            } else {
                "80"
            };
            vec![
                json!(name),
                json!(or_none(text(o, "/spec/ingressClassName"))),
                json!(if hosts.is_empty() {
                    "*".to_string()
                } else {
                    hosts.join(",")
                }),
                json!(address.join(",")),
                json!(ports),
                json!(age),
            ]
        }
        ("autoscaling", "HorizontalPodAutoscaler", _) => vec![
            json!(name),
            json!(format!(
                "{}/{}",
                text(o, "/spec/scaleTargetRef/kind"),
                text(o, "/spec/scaleTargetRef/name")
            )),
            json!(
                get(o, "/spec/minReplicas")
                    .and_then(Value::as_i64)
                    .unwrap_or(1)
            ),
            json!(int(o, "/spec/maxReplicas")),
            json!(int(o, "/status/currentReplicas")),
            json!(age),
        ],
        ("apiextensions.k8s.io", "CustomResourceDefinition", _) => vec![
            json!(name),
            o.pointer("/metadata/creationTimestamp")
                .cloned()
                .unwrap_or(Value::Null),
        ],
        ("", "Endpoints", _) => {
            let mut addresses = Vec::new();
            for subset in get(o, "/subsets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let ports: Vec<String> = subset
                    .get("ports")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .map(|p| text(p, "/port"))
                    .collect();
                for a in subset
                    .get("addresses")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    for p in &ports {
                        addresses.push(format!("{}:{p}", text(a, "/ip")));
                    }
                }
            }
            vec![json!(name), json!(or_none(addresses.join(","))), json!(age)]
        }
        _ => vec![json!(name), json!(age)],
    };
    let mut meta = o.get("metadata").cloned().unwrap_or(json!({}));
    if let Some(m) = meta.as_object_mut() {
        m.shift_remove("managedFields");
    }
    json!({"cells": cells, "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": meta}})
}

fn or_unknown(s: String) -> String {
    if s.is_empty() { "Unknown".into() } else { s }
}

fn or_unset(s: String) -> String {
    if s.is_empty() { "<unset>".into() } else { s }
}

fn or_tcp(s: String) -> String {
    if s.is_empty() { "TCP".into() } else { s }
}

fn short_mode(mode: &str) -> String {
    match mode {
        "ReadWriteOnce" => "RWO",
        "ReadOnlyMany" => "ROX",
        "ReadWriteMany" => "RWX",
        "ReadWriteOncePod" => "RWOP",
        other => other,
    }
    .to_string()
}

fn condition_true(o: &Value, type_: &str) -> bool {
    get(o, "/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .any(|c| text(c, "/type") == type_ && text(c, "/status") == "True")
}

/// Age like kubectl prints it: `45s`, `3m2s`, `5m`, `2h10m`, `5h`, `3d4h`, `12d`, `2y`.
fn age(o: &Value) -> String {
    let Some(created) = o
        .pointer("/metadata/creationTimestamp")
        .and_then(Value::as_str)
        .and_then(parse_rfc3339)
    else {
        return "<unknown>".into();
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(created);
    human_duration((now - created).max(0))
}

/// A `date` column's timestamp as the time since (kubectl prints the cell
/// as it comes); other values as they are.
fn since(value: &Value) -> Value {
    match value.as_str().and_then(parse_rfc3339) {
        Some(at) => {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs() as i64)
                .unwrap_or(at);
            json!(human_duration((now - at).max(0)))
        }
        None => value.clone(),
    }
}

/// kubectl's `duration.HumanDuration`.
pub fn human_duration(secs: i64) -> String {
    let (m, h, d) = (secs / 60, secs / 3600, secs / 86_400);
    if secs < 120 {
        format!("{secs}s")
    } else if m < 10 {
        let s = secs % 60;
        if s == 0 {
            format!("{m}m")
        } else {
            format!("{m}m{s}s")
        }
    } else if h < 3 {
        format!("{m}m")
    } else if h < 8 {
        let mm = m % 60;
        if mm == 0 {
            format!("{h}h")
        } else {
            format!("{h}h{mm}m")
        }
    } else if h < 48 {
        format!("{h}h")
    } else if d < 8 {
        let hh = h % 24;
        if hh == 0 {
            format!("{d}d")
        } else {
            format!("{d}d{hh}h")
        }
    } else if d < 365 * 2 {
        format!("{d}d")
    } else {
        format!("{}y", d / 365)
    }
}

/// The subset of JSONPath printer columns use: `.a.b`, `.a[0].b`, and
/// `.a[?(@.k=="v")].b` filters.
pub fn json_path(o: &Value, path: &str) -> Option<Value> {
    let mut nodes = vec![o.clone()];
    let mut rest = path
        .trim()
        .trim_start_matches('{')
        .trim_end_matches('}')
        .trim_start_matches('$');
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix('.') {
            let end = after.find(['.', '[']).unwrap_or(after.len());
            let field = &after[..end];
            nodes = nodes.iter().filter_map(|n| n.get(field).cloned()).collect();
            rest = &after[end..];
        } else if let Some(after) = rest.strip_prefix('[') {
            let end = after.find(']')?;
            let inner = &after[..end];
            rest = &after[end + 1..];
            if let Some(filter) = inner.strip_prefix("?(@.").and_then(|f| f.strip_suffix(')')) {
                let (field, value) = filter.split_once("==")?;
                let value = value.trim().trim_matches(|c| c == '"' || c == '\'');
                nodes = nodes
                    .iter()
                    .flat_map(|n| n.as_array().cloned().unwrap_or_default())
                    .filter(|item| item.get(field.trim()).and_then(Value::as_str) == Some(value))
                    .collect();
            } else if inner == "*" {
                nodes = nodes
                    .iter()
                    .flat_map(|n| n.as_array().cloned().unwrap_or_default())
                    .collect();
            } else {
                let index: usize = inner.parse().ok()?;
                nodes = nodes.iter().filter_map(|n| n.get(index).cloned()).collect();
            }
        } else {
            return None;
        }
    }
    match nodes.len() {
        0 => None,
        1 => nodes.pop(),
        _ => Some(Value::String(
            nodes
                .iter()
                .map(|n| {
                    n.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| n.to_string())
                })
                .collect::<Vec<_>>()
                .join(","),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_paths() {
        let o = json!({"spec": {"size": 3}, "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "X", "status": "False"}]}});
        assert_eq!(json_path(&o, ".spec.size"), Some(json!(3)));
        assert_eq!(
            json_path(&o, ".status.conditions[?(@.type==\"Ready\")].status"),
            Some(json!("True"))
        );
        assert_eq!(
            json_path(&o, ".status.conditions[1].type"),
            Some(json!("X"))
        );
        assert_eq!(json_path(&o, ".nope"), None);
    }

    #[test]
    fn ages() {
        assert_eq!(human_duration(45), "45s");
        assert_eq!(human_duration(182), "3m2s");
        assert_eq!(human_duration(900), "15m");
        assert_eq!(human_duration(4 * 3600 + 600), "4h10m");
        assert_eq!(human_duration(3 * 86_400 + 3600), "3d1h");
    }
}
