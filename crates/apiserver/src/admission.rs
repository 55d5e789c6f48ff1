//! Admission the server applies on writes, as a cluster's built-in plugins
//! do: Pod Security admission from the namespace's
//! `pod-security.kubernetes.io/*` labels.
//!
//! As the upstream plugin: the `enforce` level refuses a Pod being created
//! (403, PSA's message); `warn` (and `audit`, which has no log here) adds a
//! `Warning` to writes of Pods and of workloads whose pod template fails.

use gitplane_object::Object;
use gitplane_policy::pss::{Standard, check_pod, pod_template, summary};
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::registry::ResourceType;

/// The standard a namespace label asks for (`enforce`, `warn`, `audit`).
fn labelled(namespace: &Value, mode: &str) -> Option<Standard> {
    let labels = namespace.pointer("/metadata/labels")?;
    let level = labels
        .get(format!("pod-security.kubernetes.io/{mode}"))?
        .as_str()?;
    let version = labels
        .get(format!("pod-security.kubernetes.io/{mode}-version"))
        .and_then(Value::as_str)
        .unwrap_or("latest");
    // A label the plugin cannot read is ignored, as a malformed one is
    // upstream (it falls back to the cluster default, privileged here).
    Standard::parse(&format!("{level}:{version}")).ok()
}

/// Pod Security admission for one write: an error when a Pod being created
/// fails the namespace's `enforce` level, else the warnings to return.
pub fn pod_security(
    namespace: Option<&Value>,
    t: &ResourceType,
    object: &Value,
    creating: bool,
) -> ApiResult<Vec<String>> {
    let (Some(namespace), Value::Object(body)) = (namespace, object) else {
        return Ok(Vec::new());
    };
    if t.crd.is_some() {
        return Ok(Vec::new());
    }
    let object = Object::new(body.clone());
    let Some(pod) = pod_template(&object) else {
        return Ok(Vec::new());
    };
    let is_pod = t.group.is_empty() && t.kind == "Pod";
    if is_pod
        && creating
        && let Some(standard) = labelled(namespace, "enforce")
    {
        let failures = check_pod(pod.metadata, pod.spec, standard);
        if !failures.is_empty() {
            return Err(ApiError::forbidden(format!(
                "pods \"{}\" is forbidden: {}",
                object.name(),
                summary(standard, &failures)
            )));
        }
    }
    let mut warnings = Vec::new();
    let mut modes = vec!["warn"];
    if !is_pod {
        // Workloads are not refused; the enforce level warns about them.
        modes.insert(0, "enforce");
    }
    for mode in modes {
        let Some(standard) = labelled(namespace, mode) else {
            continue;
        };
        let failures = check_pod(pod.metadata, pod.spec, standard);
        let warning = format!(
            "would {}",
            summary(standard, &failures).replacen("violates", "violate", 1)
        );
        if !failures.is_empty() && !warnings.contains(&warning) {
            warnings.push(warning);
        }
    }
    Ok(warnings)
}
