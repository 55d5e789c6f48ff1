//! Output order: kustomize's legacy order by default (Namespaces, quotas,
//! storage classes, CRDs, service accounts, RBAC, config, services... first;
//! webhook configurations last; the rest by group, version and kind, then
//! namespace and name), or the order of appearance with `sortOptions: fifo`.

use std::cmp::Ordering;

use super::file::SortOptions;
use super::resource::Resource;

const ORDER_FIRST: [&str; 22] = [
    "Namespace",
    "ResourceQuota",
    "StorageClass",
    "CustomResourceDefinition",
    "ServiceAccount",
    "PodSecurityPolicy",
    "Role",
    "ClusterRole",
    "RoleBinding",
    "ClusterRoleBinding",
    "ConfigMap",
    "Secret",
    "Endpoints",
    "Service",
    "LimitRange",
    "PriorityClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "Deployment",
    "StatefulSet",
    "CronJob",
    "PodDisruptionBudget",
];
const ORDER_LAST: [&str; 2] = [
    "MutatingWebhookConfiguration",
    "ValidatingWebhookConfiguration",
];

/// Sorts the build output.
pub(crate) fn sort(
    resources: &mut Vec<Resource>,
    options: Option<&SortOptions>,
) -> Result<(), String> {
    let (first, last): (Vec<String>, Vec<String>) = match options {
        None => (to_strings(&ORDER_FIRST), to_strings(&ORDER_LAST)),
        Some(o) if o.order == "fifo" => {
            if o.legacy_sort_options.is_some() {
                return Err(
                    "sortOptions.legacySortOptions is set but the order is 'fifo', not 'legacy'"
                        .into(),
                );
            }
            return Ok(());
        }
        Some(o) if o.order == "legacy" => match &o.legacy_sort_options {
            Some(l) => (l.order_first.clone(), l.order_last.clone()),
            None => (to_strings(&ORDER_FIRST), to_strings(&ORDER_LAST)),
        },
        Some(o) => {
            return Err(format!(
                "sortOptions.order must be legacy or fifo, not {:?}",
                o.order
            ));
        }
    };
    let rank = |kind: &str| -> i64 {
        if let Some(i) = first.iter().position(|k| k == kind) {
            i as i64 - first.len() as i64
        } else if let Some(i) = last.iter().position(|k| k == kind) {
            1 + i as i64
        } else {
            0
        }
    };
    let keys: Vec<(i64, String, String)> = resources
        .iter()
        .map(|r| {
            let id = r.current_id();
            let gvk = legacy_gvk(&id.gvk.group, &id.gvk.version, &id.gvk.kind);
            let or = |s: &str, d: &str| {
                if s.is_empty() {
                    d.to_string()
                } else {
                    s.to_string()
                }
            };
            let within = format!(
                "{}|{}|{}",
                id.describe_gvk(),
                or(&id.namespace, "~X"),
                or(&id.name, "~N")
            );
            (rank(&id.gvk.kind), gvk, within)
        })
        .collect();
    let mut keyed: Vec<((i64, String, String), Resource)> =
        keys.into_iter().zip(resources.drain(..)).collect();
    keyed.sort_by(|a, b| compare(&a.0, &b.0));
    resources.extend(keyed.into_iter().map(|(_, r)| r));
    Ok(())
}

fn compare(a: &(i64, String, String), b: &(i64, String, String)) -> Ordering {
    if a.1 != b.1 {
        return a.0.cmp(&b.0).then_with(|| a.1.cmp(&b.1));
    }
    a.2.cmp(&b.2)
}

fn legacy_gvk(group: &str, version: &str, kind: &str) -> String {
    let or = |s: &str, d: &str| {
        if s.is_empty() {
            d.to_string()
        } else {
            s.to_string()
        }
    };
    format!(
        "{}_{}_{}",
        or(group, "~G"),
        or(version, "~V"),
        or(kind, "~K")
    )
}

fn to_strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}
