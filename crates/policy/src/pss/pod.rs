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
    let (metadata, spec, path): (&[&str], &[&str], &'static str) =
        match (object.group(), object.kind()) {
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
        metadata: object.get(metadata).unwrap_or(&EMPTY),
        spec: object.get(spec).unwrap_or(&EMPTY),
        path,
    })
}
