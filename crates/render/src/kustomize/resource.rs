//! A resource during a kustomize build: the object plus the bookkeeping kustomize
//! keeps in internal annotations — the ids it had before renames, the name
//! affixes applied to it, and whether its name still needs a content hash.

use gitplane_object::{Gvk, Object, smp::schema::is_builtin_group};

/// A resource's identity as kustomize sees it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ResId {
    /// Group, version, kind.
    pub gvk: Gvk,
    /// Name.
    pub name: String,
    /// Namespace as written (may be empty).
    pub namespace: String,
}

/// kustomize's stand-in namespace for cluster-scoped resources.
pub const NOT_NAMESPACED: &str = "_non_namespaceable_";

impl ResId {
    /// The id of an object as it is now.
    pub fn of(object: &Object) -> Self {
        ResId {
            gvk: object.gvk(),
            name: object.name().to_string(),
            namespace: object.namespace().unwrap_or("").to_string(),
        }
    }

    /// The namespace used for comparisons: `default` when empty, a marker for
    /// cluster-scoped kinds.
    pub fn effective_namespace(&self) -> &str {
        if is_cluster_scoped(&self.gvk) {
            NOT_NAMESPACED
        } else if self.namespace.is_empty() {
            "default"
        } else {
            &self.namespace
        }
    }

    /// Same group, version, kind, name and effective namespace.
    pub fn same_as(&self, other: &ResId) -> bool {
        self.gvk == other.gvk
            && self.name == other.name
            && self.effective_namespace() == other.effective_namespace()
    }

    /// A hashable form of [`ResId::same_as`].
    pub fn key(&self) -> (Gvk, String, String) {
        (
            self.gvk.clone(),
            self.name.clone(),
            self.effective_namespace().to_string(),
        )
    }

    /// kustomize's text form, used in messages: `Kind.version.group/name.namespace`.
    pub fn describe(&self) -> String {
        let or = |s: &str, d: &'static str| {
            if s.is_empty() {
                d.to_string()
            } else {
                s.to_string()
            }
        };
        format!(
            "{}/{}.{}",
            self.describe_gvk(),
            or(&self.name, "[noName]"),
            or(&self.namespace, "[noNs]")
        )
    }

    /// kustomize's `Gvk.String()`: `Kind.version.group` with placeholders.
    pub fn describe_gvk(&self) -> String {
        let or = |s: &str, d: &'static str| {
            if s.is_empty() {
                d.to_string()
            } else {
                s.to_string()
            }
        };
        format!(
            "{}.{}.{}",
            or(&self.gvk.kind, "[noKind]"),
            or(&self.gvk.version, "[noVer]"),
            or(&self.gvk.group, "[noGrp]")
        )
    }
}

/// True when kustomize knows a kind to be cluster-scoped (built-in kinds only;
/// custom resources are assumed namespaced, as kustomize does).
pub fn is_cluster_scoped(gvk: &Gvk) -> bool {
    if !is_builtin_group(&gvk.group) {
        return false;
    }
    matches!(
        gvk.kind.as_str(),
        "Namespace"
            | "Node"
            | "PersistentVolume"
            | "ComponentStatus"
            | "ClusterRole"
            | "ClusterRoleBinding"
            | "CustomResourceDefinition"
            | "APIService"
            | "StorageClass"
            | "CSIDriver"
            | "CSINode"
            | "VolumeAttachment"
            | "PriorityClass"
            | "RuntimeClass"
            | "IngressClass"
            | "MutatingWebhookConfiguration"
            | "ValidatingWebhookConfiguration"
            | "ValidatingAdmissionPolicy"
            | "ValidatingAdmissionPolicyBinding"
            | "MutatingAdmissionPolicy"
            | "MutatingAdmissionPolicyBinding"
            | "CertificateSigningRequest"
            | "PodSecurityPolicy"
            | "FlowSchema"
            | "PriorityLevelConfiguration"
            | "TokenReview"
            | "SelfSubjectReview"
            | "SubjectAccessReview"
            | "SelfSubjectAccessReview"
            | "SelfSubjectRulesReview"
            | "ClusterTrustBundle"
            | "IPAddress"
            | "ServiceCIDR"
            | "DeviceClass"
            | "ResourceSlice"
            | "VolumeAttributesClass"
            | "StorageVersion"
    )
}

/// One resource in a build.
#[derive(Debug, Clone)]
pub struct Resource {
    /// The object.
    pub object: Object,
    /// Ids before each rename, oldest first (empty if never renamed).
    pub previous_ids: Vec<ResId>,
    /// Name prefixes applied by `namePrefix`, outermost last.
    pub prefixes: Vec<String>,
    /// Name suffixes applied by `nameSuffix`, outermost last.
    pub suffixes: Vec<String>,
    /// Generated and its name still gets the content hash at the end.
    pub needs_hash: bool,
    /// Where it was defined, for `buildMetadata: [originAnnotations]`.
    pub origin: Option<String>,
}

impl Resource {
    /// A resource read from a file or generated.
    pub fn new(object: Object) -> Self {
        Resource {
            object,
            previous_ids: Vec::new(),
            prefixes: Vec::new(),
            suffixes: Vec::new(),
            needs_hash: false,
            origin: None,
        }
    }

    /// The id now.
    pub fn current_id(&self) -> ResId {
        ResId::of(&self.object)
    }

    /// The id it started with.
    pub fn original_id(&self) -> ResId {
        self.previous_ids
            .first()
            .cloned()
            .unwrap_or_else(|| self.current_id())
    }

    /// True if `pred` holds for the current id or any previous id.
    pub fn any_id(&self, pred: impl Fn(&ResId) -> bool) -> bool {
        pred(&self.current_id()) || self.previous_ids.iter().any(&pred)
    }
}
