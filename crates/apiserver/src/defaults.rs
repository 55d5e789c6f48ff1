//! Defaults the real API server fills in for built-in kinds, for the fields
//! people see in `kubectl get -o yaml` and that a dry-run apply must return so
//! a GitOps diff shows no drift. Only values that are not set are filled in.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Map, Value, json};

/// Fills in defaults for an object of a built-in kind.
pub fn apply_defaults(group: &str, kind: &str, object: &mut Value) {
    match (group, kind) {
        ("", "Pod") => pod_spec(object.pointer_mut("/spec"), true),
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            set_missing(object, "/spec/conversion/strategy", json!("None"));
        }
        ("apps", "Deployment") => {
            set_missing(object, "/spec/replicas", json!(1));
            set_missing(object, "/spec/revisionHistoryLimit", json!(10));
            set_missing(object, "/spec/progressDeadlineSeconds", json!(600));
            set_missing(object, "/spec/strategy/type", json!("RollingUpdate"));
            if object.pointer("/spec/strategy/type") == Some(&json!("RollingUpdate")) {
                set_missing(
                    object,
                    "/spec/strategy/rollingUpdate/maxSurge",
                    json!("25%"),
                );
                set_missing(
                    object,
                    "/spec/strategy/rollingUpdate/maxUnavailable",
                    json!("25%"),
                );
            }
            template(object, true);
        }
        ("apps", "ReplicaSet") | ("", "ReplicationController") => {
            set_missing(object, "/spec/replicas", json!(1));
            template(object, true);
        }
        ("apps", "StatefulSet") => {
            set_missing(object, "/spec/replicas", json!(1));
            set_missing(object, "/spec/podManagementPolicy", json!("OrderedReady"));
            set_missing(object, "/spec/revisionHistoryLimit", json!(10));
            set_missing(object, "/spec/updateStrategy/type", json!("RollingUpdate"));
            if object.pointer("/spec/updateStrategy/type") == Some(&json!("RollingUpdate")) {
                set_missing(
                    object,
                    "/spec/updateStrategy/rollingUpdate/partition",
                    json!(0),
                );
            }
            set_missing(
                object,
                "/spec/persistentVolumeClaimRetentionPolicy/whenDeleted",
                json!("Retain"),
            );
            set_missing(
                object,
                "/spec/persistentVolumeClaimRetentionPolicy/whenScaled",
                json!("Retain"),
            );
            template(object, true);
        }
        ("apps", "DaemonSet") => {
            set_missing(object, "/spec/revisionHistoryLimit", json!(10));
            set_missing(object, "/spec/updateStrategy/type", json!("RollingUpdate"));
            if object.pointer("/spec/updateStrategy/type") == Some(&json!("RollingUpdate")) {
                set_missing(
                    object,
                    "/spec/updateStrategy/rollingUpdate/maxUnavailable",
                    json!(1),
                );
                set_missing(
                    object,
                    "/spec/updateStrategy/rollingUpdate/maxSurge",
                    json!(0),
                );
            }
            template(object, true);
        }
        ("batch", "Job") => {
            set_missing(object, "/spec/backoffLimit", json!(6));
            set_missing(object, "/spec/completionMode", json!("NonIndexed"));
            set_missing(object, "/spec/suspend", json!(false));
            if object.pointer("/spec/parallelism").is_none() {
                set_missing(object, "/spec/parallelism", json!(1));
            }
            if object.pointer("/spec/completions").is_none()
                && object.pointer("/spec/parallelism") == Some(&json!(1))
            {
                set_missing(object, "/spec/completions", json!(1));
            }
            template(object, false);
        }
        ("batch", "CronJob") => {
            set_missing(object, "/spec/concurrencyPolicy", json!("Allow"));
            set_missing(object, "/spec/suspend", json!(false));
            set_missing(object, "/spec/successfulJobsHistoryLimit", json!(3));
            set_missing(object, "/spec/failedJobsHistoryLimit", json!(1));
            pod_spec(
                object.pointer_mut("/spec/jobTemplate/spec/template/spec"),
                false,
            );
        }
        ("", "Service") => service(object),
        ("", "Secret") => secret(object),
        ("", "PersistentVolumeClaim") => {
            set_missing(object, "/spec/volumeMode", json!("Filesystem"))
        }
        _ => {}
    }
}

fn template(object: &mut Value, restart_always: bool) {
    pod_spec(object.pointer_mut("/spec/template/spec"), restart_always);
}

fn pod_spec(spec: Option<&mut Value>, restart_always: bool) {
    let Some(spec) = spec.filter(|s| s.is_object()) else {
        return;
    };
    if restart_always {
        set_missing(spec, "/restartPolicy", json!("Always"));
    }
    set_missing(spec, "/dnsPolicy", json!("ClusterFirst"));
    set_missing(spec, "/schedulerName", json!("default-scheduler"));
    set_missing(spec, "/terminationGracePeriodSeconds", json!(30));
    set_missing(spec, "/securityContext", json!({}));
    for list in ["/containers", "/initContainers"] {
        let Some(Value::Array(containers)) = spec.pointer_mut(list) else {
            continue;
        };
        for container in containers.iter_mut() {
            set_missing(
                container,
                "/terminationMessagePath",
                json!("/dev/termination-log"),
            );
            set_missing(container, "/terminationMessagePolicy", json!("File"));
            set_missing(container, "/resources", json!({}));
            let policy = match container.get("image").and_then(Value::as_str) {
                Some(image) if image_is_latest(image) => "Always",
                _ => "IfNotPresent",
            };
            set_missing(container, "/imagePullPolicy", json!(policy));
            if let Some(Value::Array(ports)) = container.get_mut("ports") {
                for port in ports.iter_mut() {
                    set_missing(port, "/protocol", json!("TCP"));
                }
            }
        }
    }
}

fn image_is_latest(image: &str) -> bool {
    if image.contains('@') {
        return false;
    }
    let after_slash = image.rsplit('/').next().unwrap_or(image);
    match after_slash.split_once(':') {
        Some((_, tag)) => tag == "latest",
        None => true,
    }
}

fn service(object: &mut Value) {
    set_missing(object, "/spec/type", json!("ClusterIP"));
    set_missing(object, "/spec/sessionAffinity", json!("None"));
    let headless = object.pointer("/spec/clusterIP") == Some(&json!("None"));
    let external_name = object.pointer("/spec/type") == Some(&json!("ExternalName"));
    if !external_name {
        set_missing(object, "/spec/internalTrafficPolicy", json!("Cluster"));
        set_missing(object, "/spec/ipFamilies", json!(["IPv4"]));
        set_missing(object, "/spec/ipFamilyPolicy", json!("SingleStack"));
        if !headless && object.pointer("/spec/clusterIP").is_none() {
            let ip = cluster_ip(object);
            set_missing(object, "/spec/clusterIP", json!(ip));
        }
        if let Some(ip) = object.pointer("/spec/clusterIP").cloned() {
            set_missing(object, "/spec/clusterIPs", json!([ip]));
        }
    }
    if matches!(
        object.pointer("/spec/type").and_then(Value::as_str),
        Some("LoadBalancer" | "NodePort")
    ) {
        set_missing(object, "/spec/externalTrafficPolicy", json!("Cluster"));
    }
    let node_ports = matches!(
        object.pointer("/spec/type").and_then(Value::as_str),
        Some("LoadBalancer" | "NodePort")
    );
    if let Some(Value::Array(ports)) = object.pointer_mut("/spec/ports") {
        for (i, port) in ports.iter_mut().enumerate() {
            set_missing(port, "/protocol", json!("TCP"));
            if let Some(p) = port.get("port").cloned() {
                set_missing(port, "/targetPort", p.clone());
                if node_ports {
                    let n = 30000 + (p.as_u64().unwrap_or(0) * 7 + i as u64) % 2768;
                    set_missing(port, "/nodePort", json!(n));
                }
            }
        }
    }
}

/// A stable address in 10.96.0.0/16 derived from the Service's identity.
fn cluster_ip(object: &Value) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    object
        .pointer("/metadata/namespace")
        .map(Value::to_string)
        .hash(&mut h);
    object
        .pointer("/metadata/name")
        .map(Value::to_string)
        .hash(&mut h);
    let n = h.finish();
    format!("10.96.{}.{}", (n >> 8) % 256, 1 + n % 254)
}

/// `stringData` is write-only: its entries are encoded into `data`.
fn secret(object: &mut Value) {
    set_missing(object, "/type", json!("Opaque"));
    let Some(map) = object.as_object_mut() else {
        return;
    };
    let Some(Value::Object(string_data)) = map.shift_remove("stringData") else {
        return;
    };
    let data = map
        .entry("data")
        .or_insert_with(|| Value::Object(Map::new()));
    if let Value::Object(data) = data {
        for (k, v) in string_data {
            if let Value::String(s) = v {
                data.insert(k, Value::String(BASE64.encode(s.as_bytes())));
            }
        }
    }
}

/// Sets a JSON pointer's value if nothing is there, creating parent maps.
pub fn set_missing(object: &mut Value, pointer: &str, value: Value) {
    if object.pointer(pointer).is_some_and(|v| !v.is_null()) {
        return;
    }
    let mut node = object;
    let parts: Vec<&str> = pointer.split('/').skip(1).collect();
    for (i, part) in parts.iter().enumerate() {
        let Value::Object(map) = node else { return };
        if i + 1 == parts.len() {
            map.insert(part.to_string(), value);
            return;
        }
        let child = map
            .entry(part.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if child.is_null() {
            *child = Value::Object(Map::new());
        }
        node = child;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deployment_defaults() {
        let mut d = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx", "ports": [{"containerPort": 80}]}]}}}});
        apply_defaults("apps", "Deployment", &mut d);
        assert_eq!(d["spec"]["replicas"], 1);
        assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxSurge"], "25%");
        let c = &d["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(c["imagePullPolicy"], "Always", "no tag means latest");
        assert_eq!(c["ports"][0]["protocol"], "TCP");
        assert_eq!(d["spec"]["template"]["spec"]["restartPolicy"], "Always");
    }

    #[test]
    fn secrets_encode_string_data() {
        let mut s = json!({"data": {"a": "YQ=="}, "stringData": {"b": "b"}});
        apply_defaults("", "Secret", &mut s);
        assert_eq!(
            s,
            json!({"data": {"a": "YQ==", "b": "Yg=="}, "type": "Opaque"})
        );
    }

    #[test]
    fn services_get_an_address_and_target_ports() {
        let mut s = json!({"metadata": {"name": "web", "namespace": "a"}, "spec": {"ports": [{"port": 80}]}});
        apply_defaults("", "Service", &mut s);
        assert_eq!(s["spec"]["ports"][0]["targetPort"], 80);
        assert!(
            s["spec"]["clusterIP"]
                .as_str()
                .unwrap()
                .starts_with("10.96.")
        );
        let mut again = json!({"metadata": {"name": "web", "namespace": "a"}, "spec": {"ports": [{"port": 80}]}});
        apply_defaults("", "Service", &mut again);
        assert_eq!(s["spec"]["clusterIP"], again["spec"]["clusterIP"], "stable");
    }
}
