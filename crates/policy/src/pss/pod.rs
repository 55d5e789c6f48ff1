//! Where the pod is in an object: a Pod itself, or the template of a
//! workload (as the pod-security admission plugin reads them).

use gitplane_object::Object;
use serde_json::Value;

/// The pod an object runs: its metadata and spec, and where they are.
#[derive(Debug, Clone, Copy)]
pub struct PodTemplate<'a> {
    /// The pod's metadata (annotations matter for AppArmor).
    pub metadata: &'a Value,
    /// The pod's spec.
    pub spec: &'a Value,
    /// The path of the spec in the object (`spec.template.spec`).
    pub path: &'static str,
}

static EMPTY: Value = Value::Null;

/// The pod of a Pod, Deployment, StatefulSet, DaemonSet, ReplicaSet, Job,
/// CronJob or ReplicationController; `None` for other kinds.
pub fn pod_template(object: &Object) -> Option<PodTemplate<'_>> {
    pod_template_of(object.group(), object.kind(), |path| object.get(path))
}

/// [`pod_template`] on an object's JSON.
pub fn pod_template_of_value(object: &Value) -> Option<PodTemplate<'_>> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let (group, _) = gitplane_object::split_api_version(api_version);
    let kind = object["kind"].as_str().unwrap_or_default();
    pod_template_of(group, kind, |path| {
        path.iter().try_fold(object, |value, key| value.get(*key))
    })
}

/// The pod metadata and spec of an object's JSON (see [`pod_template`]).
pub fn pod_of(object: &Value) -> Option<(&Value, &Value)> {
    pod_template_of_value(object).map(|pod| (pod.metadata, pod.spec))
}

/// The pod spec of an object's JSON, if it has one.
pub fn pod_spec_of(object: &Value) -> Option<&Value> {
    pod_of(object).map(|(_, spec)| spec)
}

fn pod_template_of<'a>(
    group: &str,
    kind: &str,
    get: impl Fn(&[&str]) -> Option<&'a Value>,
) -> Option<PodTemplate<'a>> {
    let (metadata, spec, path): (&[&str], &[&str], &'static str) = match (group, kind) {
        ("", "Pod") => (&["metadata"], &["spec"], "spec"),
        ("apps", "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet")
        | ("batch", "Job")
        | ("", "ReplicationController") => (
            &["spec", "template", "metadata"],
            &["spec", "template", "spec"],
            "spec.template.spec",
        ),
        ("batch", "CronJob") => (
            &["spec", "jobTemplate", "spec", "template", "metadata"],
            &["spec", "jobTemplate", "spec", "template", "spec"],
            "spec.jobTemplate.spec.template.spec",
        ),
        _ => return None,
    };
    Some(PodTemplate {
        metadata: get(metadata).unwrap_or(&EMPTY),
        spec: get(spec).unwrap_or(&EMPTY),
        path,
    })
}
