//! The order of a sync: phase, then wave, then kind, then name.

use gitplane_object::Object;
use serde::{Deserialize, Serialize};

/// The annotation holding an object's wave.
pub const SYNC_WAVE_ANNOTATION: &str = "argocd.argoproj.io/sync-wave";

/// A sync phase.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Phase {
    /// Before anything is applied (database migrations).
    PreSync,
    /// Applying the application's objects.
    Sync,
    /// After every object is synced and healthy.
    PostSync,
    /// Only when the sync failed.
    SyncFail,
}

impl Phase {
    /// The phase's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::PreSync => "PreSync",
            Phase::Sync => "Sync",
            Phase::PostSync => "PostSync",
            Phase::SyncFail => "SyncFail",
        }
    }
}

/// The wave an object is in: its annotation, else `default`.
pub fn wave_of(object: &Object, default: i32) -> i32 {
    object
        .annotation(SYNC_WAVE_ANNOTATION)
        .and_then(|w| w.trim().parse().ok())
        .unwrap_or(default)
}

/// Kinds in the order they are applied within a wave: Namespaces and CRDs
/// first, then the order Helm and Argo CD use. Kinds not listed (custom
/// resources) come last.
const KIND_ORDER: [&str; 33] = [
    "Namespace",
    "CustomResourceDefinition",
    "NetworkPolicy",
    "ResourceQuota",
    "LimitRange",
    "PodSecurityPolicy",
    "PodDisruptionBudget",
    "ServiceAccount",
    "Secret",
    "SecretList",
    "ConfigMap",
    "StorageClass",
    "PersistentVolume",
    "PersistentVolumeClaim",
    "ClusterRole",
    "ClusterRoleList",
    "ClusterRoleBinding",
    "ClusterRoleBindingList",
    "Role",
    "RoleList",
    "RoleBinding",
    "RoleBindingList",
    "Service",
    "DaemonSet",
    "Pod",
    "ReplicationController",
    "ReplicaSet",
    "Deployment",
    "HorizontalPodAutoscaler",
    "StatefulSet",
    "Job",
    "CronJob",
    "Ingress",
];

/// The position of a kind in [`KIND_ORDER`] (`IngressClass` and `APIService`
/// right after it; everything else after those).
pub fn kind_rank(kind: &str) -> usize {
    match KIND_ORDER.iter().position(|k| *k == kind) {
        Some(i) => i,
        None => match kind {
            "IngressClass" => KIND_ORDER.len(),
            "APIService" => KIND_ORDER.len() + 1,
            _ => KIND_ORDER.len() + 2,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_in_order() {
        let mut kinds = [
            "Widget",
            "Deployment",
            "Service",
            "CustomResourceDefinition",
            "Namespace",
            "ConfigMap",
        ];
        kinds.sort_by_key(|k| kind_rank(k));
        assert_eq!(
            kinds,
            [
                "Namespace",
                "CustomResourceDefinition",
                "ConfigMap",
                "Service",
                "Deployment",
                "Widget"
            ]
        );
    }
}
