//! What Kubernetes' built-in types say about merging lists.
//!
//! Strategic merge patch and server-side apply both need to know, for each list
//! field, whether it is atomic (replaced whole), a set of primitives, or a map
//! keyed by some fields of its elements (`containers` by `name`, container `ports`
//! by `containerPort`). The API publishes this as `x-kubernetes-patch-merge-key`
//! and `x-kubernetes-list-map-keys`; this module holds the same facts for the
//! built-in kinds gitplane patches, as a small type graph walked field by field.
//! Anything not described here (custom resources) merges maps and replaces lists.

/// How a list field merges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    /// Replaced as a whole (the default for lists).
    Atomic,
    /// A set of scalars: merged by value.
    Set,
    /// A list of maps identified by key fields. `patch_key` is the strategic merge
    /// key; `keys` are the server-side apply map keys (a superset).
    Map {
        /// `x-kubernetes-patch-merge-key`.
        patch_key: &'static str,
        /// `x-kubernetes-list-map-keys`.
        keys: &'static [&'static str],
    },
}

/// A position in the built-in type graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    /// Nothing known: maps merge, lists are atomic.
    Unknown,
    /// The top of an object of a known kind.
    Root(RootKind),
    /// `metadata`.
    ObjectMeta,
    /// `spec` of Deployment, ReplicaSet, StatefulSet, DaemonSet, Job,
    /// ReplicationController (they share `template`).
    WorkloadSpec,
    /// `spec` of a CronJob.
    CronJobSpec,
    /// `spec.jobTemplate` of a CronJob.
    JobTemplate,
    /// A pod template (`metadata` + `spec`).
    PodTemplateSpec,
    /// A pod's `spec`.
    PodSpec,
    /// A container, init container or ephemeral container.
    Container,
    /// `spec` of a Service.
    ServiceSpec,
    /// Any `status` with `conditions` keyed by `type`.
    StatusWithConditions,
}

/// The built-in kinds whose fields this module describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootKind {
    /// Pod.
    Pod,
    /// Kinds with `spec.template` (Deployment, ReplicaSet, StatefulSet, DaemonSet,
    /// Job, ReplicationController) and PodTemplate (`template` at the top).
    Workload,
    /// PodTemplate.
    PodTemplate,
    /// CronJob.
    CronJob,
    /// Service.
    Service,
    /// ServiceAccount.
    ServiceAccount,
    /// Any other built-in kind: only `metadata` is described.
    Other,
}

const NAME: ListKind = ListKind::Map {
    patch_key: "name",
    keys: &["name"],
};
const TYPE: ListKind = ListKind::Map {
    patch_key: "type",
    keys: &["type"],
};

/// The schema root for an object's group and kind. Kinds of groups that are not
/// built in (custom resources) get [`Node::Unknown`].
pub fn root_for(group: &str, kind: &str) -> Node {
    let root = match (group, kind) {
        ("", "Pod") => RootKind::Pod,
        ("apps", "Deployment" | "ReplicaSet" | "StatefulSet" | "DaemonSet")
        | ("batch", "Job")
        | ("", "ReplicationController") => RootKind::Workload,
        ("", "PodTemplate") => RootKind::PodTemplate,
        ("batch", "CronJob") => RootKind::CronJob,
        ("", "Service") => RootKind::Service,
        ("", "ServiceAccount") => RootKind::ServiceAccount,
        _ if is_builtin_group(group) => RootKind::Other,
        _ => return Node::Unknown,
    };
    Node::Root(root)
}

/// True for the API groups served by Kubernetes itself.
pub fn is_builtin_group(group: &str) -> bool {
    group.is_empty()
        || !group.contains('.')
        || group.ends_with(".k8s.io") && !group.ends_with(".x-k8s.io")
}

impl Node {
    /// The node of a field and how the field merges if it is a list.
    pub fn field(self, name: &str) -> (Node, ListKind) {
        use ListKind::Atomic;
        use Node::*;
        match (self, name) {
            (Root(_), "metadata") | (PodTemplateSpec | JobTemplate, "metadata") => {
                (ObjectMeta, Atomic)
            }
            (Root(RootKind::Pod), "spec") => (PodSpec, Atomic),
            (Root(RootKind::Workload), "spec") => (WorkloadSpec, Atomic),
            (Root(RootKind::PodTemplate), "template") => (PodTemplateSpec, Atomic),
            (Root(RootKind::CronJob), "spec") => (CronJobSpec, Atomic),
            (Root(RootKind::Service), "spec") => (ServiceSpec, Atomic),
            (Root(RootKind::ServiceAccount), "secrets") => (Unknown, NAME),
            (Root(RootKind::Pod | RootKind::Workload | RootKind::Service), "status") => {
                (StatusWithConditions, Atomic)
            }
            (StatusWithConditions, "conditions") => (Unknown, TYPE),
            (ObjectMeta, "finalizers") => (Unknown, ListKind::Set),
            (ObjectMeta, "ownerReferences") => (
                Unknown,
                ListKind::Map {
                    patch_key: "uid",
                    keys: &["uid"],
                },
            ),
            (WorkloadSpec, "template") => (PodTemplateSpec, Atomic),
            (CronJobSpec, "jobTemplate") => (JobTemplate, Atomic),
            (JobTemplate, "spec") => (WorkloadSpec, Atomic),
            (PodTemplateSpec, "spec") => (PodSpec, Atomic),
            (PodSpec, "containers" | "initContainers" | "ephemeralContainers") => (Container, NAME),
            (PodSpec, "volumes" | "imagePullSecrets" | "resourceClaims" | "schedulingGates") => {
                (Unknown, NAME)
            }
            (PodSpec, "hostAliases") => (
                Unknown,
                ListKind::Map {
                    patch_key: "ip",
                    keys: &["ip"],
                },
            ),
            (PodSpec, "topologySpreadConstraints") => (
                Unknown,
                ListKind::Map {
                    patch_key: "topologyKey",
                    keys: &["topologyKey", "whenUnsatisfiable"],
                },
            ),
            (Container, "ports") => (
                Unknown,
                ListKind::Map {
                    patch_key: "containerPort",
                    keys: &["containerPort", "protocol"],
                },
            ),
            (Container, "env") => (Unknown, NAME),
            (Container, "volumeMounts") => (
                Unknown,
                ListKind::Map {
                    patch_key: "mountPath",
                    keys: &["mountPath"],
                },
            ),
            (Container, "volumeDevices") => (
                Unknown,
                ListKind::Map {
                    patch_key: "devicePath",
                    keys: &["devicePath"],
                },
            ),
            (ServiceSpec, "ports") => (
                Unknown,
                ListKind::Map {
                    patch_key: "port",
                    keys: &["port", "protocol"],
                },
            ),
            _ => (Unknown, Atomic),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_to_container_ports() {
        let root = root_for("apps", "Deployment");
        let (spec, _) = root.field("spec");
        let (tmpl, _) = spec.field("template");
        let (pod, _) = tmpl.field("spec");
        let (container, kind) = pod.field("containers");
        assert_eq!(kind, NAME);
        assert_eq!(
            container.field("ports").1,
            ListKind::Map {
                patch_key: "containerPort",
                keys: &["containerPort", "protocol"]
            }
        );
        assert_eq!(pod.field("tolerations").1, ListKind::Atomic);
    }

    #[test]
    fn custom_resources_are_unknown() {
        assert_eq!(root_for("example.com", "Widget"), Node::Unknown);
        assert_eq!(root_for("cluster.x-k8s.io", "Cluster"), Node::Unknown);
        assert_eq!(
            root_for("networking.k8s.io", "Ingress"),
            Node::Root(RootKind::Other)
        );
        assert_eq!(
            root_for("", "ConfigMap")
                .field("metadata")
                .0
                .field("finalizers")
                .1,
            ListKind::Set
        );
    }
}
